// Package ldap is the `ldap_group` connector: it grants access by adding a
// person to an LDAP group and revokes it by removing them, with one LDAP
// Modify operation (RFC 4511 §4.6) on the group's member attribute:
// `member` (groupOfNames / groupOfUniqueNames style, the value is the
// person's entry DN) or `memberUid` (posixGroup, RFC 2307, the value is the
// person's uid).
//
// The person is found by searching user_base_dn with user_filter, whose %s
// is replaced by their Slack email escaped per RFC 4515 (ldap.EscapeFilter),
// so filter metacharacters in an email cannot change the filter.
//
// Receipts: Receipt.UserID is the person's entry DN and Receipt.Data the
// exact member value added ({"attr":"member","value":"<DN>"} or
// {"attr":"memberUid","value":"<uid>"}); PreExisting is set when the
// value was already in the group (an LDAP Compare before the change), and
// the revoke then leaves it. The revoke deletes exactly the recorded value
// from the recorded attribute, without searching for the person, so a
// changed mail, or an entry deleted since, does not matter. Only records
// granted before receipts existed are looked up by email, and then nobody
// matching is a permanent error wrapping access.ErrUnknownUser.
//
// Result codes (RFC 4511 §4.1.9 and Appendix A) are mapped as follows:
//
//   - grant: attributeOrValueExists (20) means already a member: done;
//     Active Directory answers a duplicate member with entryAlreadyExists
//     (68, "00000562: UpdErr: … problem 6005 (ENTRY_EXISTS)", Win32
//     ERROR_MEMBER_IN_ALIAS), which is checked with a Compare and done
//     when the value is there;
//   - revoke: noSuchAttribute (16) means not a member: done; Active
//     Directory answers the removal of a non-member with
//     unwillingToPerform (53, "00000561: SvcErr: … problem 5003
//     (WILL_NOT_PERFORM)", ERROR_MEMBER_NOT_IN_ALIAS). AD also answers 53
//     for real refusals (e.g. a user's primary group; see
//     https://github.com/Adldap2/Adldap2/issues/706), so a 53 is checked
//     with a Compare: value absent, done; value present, permanent;
//   - invalidCredentials (49): permanent, "bind rejected";
//   - insufficientAccessRights (50), noSuchObject (32, the group or the
//     user base does not exist), invalidDNSyntax (34),
//     objectClassViolation (65, e.g. removing the last member of a
//     groupOfNames) and other server answers: permanent;
//   - busy (51), unavailable (52), timeLimitExceeded (3),
//     adminLimitExceeded (11), other (80), and every transport failure
//     (connection refused, TLS handshake, timeout, cancellation): retryable.
//
// Each operation opens its own connection (grants are rare; a pooled
// connection would go stale between them), binds, and closes it. Changes
// to one group are serialised within the process, so that two grants to
// the same group never race in the directory.
package ldap

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/connectors"
)

// Type is the connector type of the `type:` key.
const Type = "ldap_group"

// ParamGroupDN is the grant parameter naming the group.
const ParamGroupDN = "group_dn"

// Member attributes.
const (
	AttrMember    = "member"
	AttrMemberUID = "memberUid"
)

// DefaultUserFilter finds a person by email.
const DefaultUserFilter = "(mail=%s)"

// Config is the `connectors.NAME` block of an ldap_group connector.
type Config struct {
	// URL is ldaps://host[:port] or ldap://host[:port]. ldap:// needs
	// start_tls: true, or insecure_no_tls: true for local tests. Required.
	URL string `json:"url"`
	// BindDN is the connector's account. Required.
	BindDN string `json:"bind_dn"`
	// BindPassword (usually ${ENV}) or BindPasswordFile: exactly one.
	BindPassword     connectors.Redacted `json:"bind_password"`
	BindPasswordFile string              `json:"bind_password_file"`
	// UserBaseDN is where people are searched (subtree). Required.
	UserBaseDN string `json:"user_base_dn"`
	// UserFilter has one %s for the escaped email (default "(mail=%s)").
	UserFilter string `json:"user_filter"`
	// MemberAttribute is "member" (default; the value is the person's DN)
	// or "memberUid" (the value is the person's uid).
	MemberAttribute string `json:"member_attribute"`
	// Timeout bounds each operation: dial, bind, search and modify
	// (default 10s).
	connectors.Timeout
	// CAFile is a PEM bundle to verify the server with instead of the
	// system roots.
	CAFile string `json:"ca_file"`
	// StartTLS upgrades an ldap:// connection (RFC 4511 §4.14) before
	// binding.
	StartTLS bool `json:"start_tls"`
	// InsecureNoTLS allows a plain ldap:// connection: the bind password
	// and changes cross the network in clear. For local tests only; it
	// must be set explicitly.
	InsecureNoTLS bool `json:"insecure_no_tls"`
}

// Validate checks c; errors name keys relative to the block and never
// contain the password.
func (c *Config) Validate() error {
	var errs []error
	var scheme string
	if c.URL == "" {
		errs = append(errs, errors.New("url: required"))
	} else if u, err := url.Parse(c.URL); err != nil || (u.Scheme != "ldap" && u.Scheme != "ldaps") || u.Host == "" {
		errs = append(errs, errors.New("url: must be ldaps://host[:port] or ldap://host[:port]"))
	} else {
		scheme = u.Scheme
		if u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
			errs = append(errs, errors.New("url: only scheme, host and port are allowed (set the DNs with their own keys)"))
		}
	}
	switch {
	case scheme == "ldaps" && c.StartTLS:
		errs = append(errs, errors.New("start_tls: not with ldaps:// (already TLS)"))
	case c.InsecureNoTLS && (scheme == "ldaps" || c.StartTLS):
		errs = append(errs, errors.New("insecure_no_tls: contradicts ldaps:// or start_tls; remove it"))
	case scheme == "ldap" && !c.StartTLS && !c.InsecureNoTLS:
		errs = append(errs, errors.New("url: ldap:// sends the bind password in clear; use ldaps://, or start_tls: true, or (local tests only) insecure_no_tls: true"))
	}
	if c.InsecureNoTLS && c.CAFile != "" {
		errs = append(errs, errors.New("ca_file: no TLS with insecure_no_tls"))
	}
	if c.BindDN == "" {
		errs = append(errs, errors.New("bind_dn: required"))
	} else if _, err := ldap.ParseDN(c.BindDN); err != nil {
		errs = append(errs, errors.New("bind_dn: not a valid DN"))
	}
	if c.BindPassword == "" && c.BindPasswordFile == "" {
		errs = append(errs, errors.New("bind_password: required (or bind_password_file)"))
	}
	if c.UserBaseDN == "" {
		errs = append(errs, errors.New("user_base_dn: required"))
	} else if _, err := ldap.ParseDN(c.UserBaseDN); err != nil {
		errs = append(errs, errors.New("user_base_dn: not a valid DN"))
	}
	if c.UserFilter != "" {
		if err := checkFilter(c.UserFilter); err != nil {
			errs = append(errs, fmt.Errorf("user_filter: %w", err))
		}
	}
	switch c.MemberAttribute {
	case "", AttrMember, AttrMemberUID:
	default:
		errs = append(errs, fmt.Errorf("member_attribute: must be %q or %q", AttrMember, AttrMemberUID))
	}
	return errors.Join(errs...)
}

// checkFilter requires exactly one %s (and no other verb) and a filter
// that compiles with a sample email in place.
func checkFilter(f string) error {
	if strings.Count(f, "%s") != 1 || strings.Count(f, "%") != 1 {
		return errors.New(`must contain exactly one %s (the email) and no other % verb`)
	}
	if _, err := ldap.CompileFilter(fmt.Sprintf(f, "a@example.com")); err != nil {
		return errors.New("not a valid LDAP filter (RFC 4515)")
	}
	return nil
}

// Connector adds people to and removes them from LDAP groups. It is safe
// for concurrent use.
type Connector struct {
	name       string
	url        string
	scheme     string
	tls        *tls.Config // nil with insecure_no_tls
	startTLS   bool
	bindDN     string
	password   string
	userBase   string
	userFilter string
	attr       string
	timeout    time.Duration
	intents    *connectors.Intents

	locks connectors.KeyedMutex[string] // by lower-cased group DN
}

var (
	_ access.Connector     = (*Connector)(nil)
	_ access.Checker       = (*Connector)(nil)
	_ access.ParamsChecker = (*Connector)(nil)
	_ connectors.Factory   = Factory
)

// params are the grant parameters: group_dn, a DN that parses, required.
var params = connectors.Params{{
	Key: ParamGroupDN, What: "the group's DN",
	Check: func(v string) error {
		if _, err := ldap.ParseDN(v); err != nil {
			return fmt.Errorf("%q is not a valid DN", v)
		}
		return nil
	},
}}

// Factory builds an ldap_group connector from its configuration block; it
// has the connectors.Factory signature. It needs the durable State
// (connectors.Env.State).
func Factory(name string, cfg connectors.Config) (access.Connector, error) {
	var c Config
	if err := cfg.Decode(&c); err != nil {
		return nil, err
	}
	if err := cfg.RequireState(); err != nil {
		return nil, err
	}
	password, err := cfg.Secret("bind_password")
	if err != nil {
		return nil, err
	}
	u, _ := url.Parse(c.URL) // validated
	conn := &Connector{
		name: name, url: c.URL, scheme: u.Scheme, startTLS: c.StartTLS,
		bindDN: c.BindDN, password: password, userBase: c.UserBaseDN,
		userFilter: c.UserFilter, attr: c.MemberAttribute, timeout: c.Attempt(),
		intents: connectors.NewIntents(cfg.State),
	}
	if conn.userFilter == "" {
		conn.userFilter = DefaultUserFilter
	}
	if conn.attr == "" {
		conn.attr = AttrMember
	}
	if !c.InsecureNoTLS {
		conn.tls = &tls.Config{ServerName: u.Hostname(), MinVersion: tls.VersionTLS12}
		if c.CAFile != "" {
			pem, err := os.ReadFile(c.CAFile)
			if err != nil {
				return nil, fmt.Errorf("connectors.%s.ca_file: %w", name, err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("connectors.%s.ca_file: no PEM certificates in %s", name, c.CAFile)
			}
			conn.tls.RootCAs = pool
		}
	}
	return conn, nil
}

// memberValue is what a grant added to the group, kept in Receipt.Data.
type memberValue struct {
	Attr  string `json:"attr"`
	Value string `json:"value"`
}

// CheckParams checks a role's grant parameters without contacting the
// directory: exactly group_dn, required, a DN that parses. Unknown keys are
// errors, with a did-you-mean.
func (c *Connector) CheckParams(p map[string]string) error { return params.CheckParams(p) }

// Grant adds the person to the group named by the group_dn parameter
// (connectors.GrantMembership): the receipt names their entry DN and the
// value added, and says PreExisting when the value was already there.
func (c *Connector) Grant(ctx context.Context, g access.Grant) (access.Receipt, error) {
	op := c.what("grant", g)
	group, unlock, err := c.lockGroup(ctx, op, g)
	if err != nil {
		return access.Receipt{}, err
	}
	defer unlock()
	var r access.Receipt
	err = c.session(ctx, op, func(conn *ldap.Conn) error {
		var err error
		r, err = connectors.GrantMembership(ctx, c.intents, g, connectors.Member{
			Find: func(ctx context.Context) (connectors.Intent, bool, error) {
				dn, mv, err := c.findPerson(ctx, conn, op, g)
				if err != nil {
					return connectors.Intent{}, false, err
				}
				data, _ := json.Marshal(mv)
				in, err := c.compare(ctx, conn, op, group, mv)
				return connectors.Intent{UserID: dn, Data: data}, in, err
			},
			Add: func(ctx context.Context, in connectors.Intent) (access.Receipt, error) {
				var mv memberValue
				if err := json.Unmarshal(in.Data, &mv); err != nil || mv.Value == "" {
					return access.Receipt{}, access.PermanentError(fmt.Errorf("%s: the stored record of this grant has no member value", op))
				}
				return access.Receipt{}, c.modify(ctx, conn, op, group, mv, true)
			},
		}, "added to LDAP group "+group)
		return err
	})
	return r, err
}

// Revoke deletes the receipt's member value from the group. A value not
// in the group is success (DESIGN.md §4 invariant 4: "not a member"
// counts as revoked). A group that does not exist is a permanent error,
// not success: the connector cannot tell whether access lives on
// elsewhere.
func (c *Connector) Revoke(ctx context.Context, g access.Grant) error {
	op := c.what("revoke", g)
	group, unlock, err := c.lockGroup(ctx, op, g)
	if err != nil {
		return err
	}
	defer unlock()
	return c.session(ctx, op, func(conn *ldap.Conn) error {
		mv, err := c.revokeValue(ctx, conn, op, g)
		if err != nil {
			return err
		}
		if err := c.modify(ctx, conn, op, group, mv, false); err != nil {
			return err
		}
		c.intents.Forget(ctx, g.ID)
		return nil
	})
}

// Check reports whether the person is in the group, with an LDAP Compare
// (RFC 4511 §4.10) of the member attribute.
func (c *Connector) Check(ctx context.Context, g access.Grant) (bool, error) {
	op := c.what("check", g)
	group, err := params.Get(op, g.Params, ParamGroupDN)
	if err != nil {
		return false, err
	}
	var member bool
	err = c.session(ctx, op, func(conn *ldap.Conn) error {
		mv, err := c.revokeValue(ctx, conn, op, g)
		if err == nil {
			member, err = c.compare(ctx, conn, op, group, mv)
		}
		return err
	})
	return member, err
}

func (c *Connector) what(op string, g access.Grant) string {
	return connectors.Op("ldap_group", c.name, op, g)
}

// lockGroup reads the group parameter and serialises changes to that
// group within the process, honouring ctx while waiting.
func (c *Connector) lockGroup(ctx context.Context, op string, g access.Grant) (string, func(), error) {
	group, err := params.Get(op, g.Params, ParamGroupDN)
	if err != nil {
		return "", nil, err
	}
	unlock, err := c.locks.Lock(ctx, strings.ToLower(group))
	if err != nil {
		return "", nil, access.RetryableError(fmt.Errorf("%s: waiting for another change to %s: %w", op, group, err), 0)
	}
	return group, unlock, nil
}

// revokeValue is the member value a revoke removes: the receipt's, or,
// for a record granted before receipts existed, the person's found by
// email now.
func (c *Connector) revokeValue(ctx context.Context, conn *ldap.Conn, op string, g access.Grant) (memberValue, error) {
	if r := g.Receipt; r != nil && r.UserID != "" {
		var mv memberValue
		if len(r.Data) > 0 {
			if err := json.Unmarshal(r.Data, &mv); err != nil || mv.Value == "" || (mv.Attr != AttrMember && mv.Attr != AttrMemberUID) {
				return memberValue{}, access.PermanentError(fmt.Errorf("%s: the receipt's member value is unreadable", op))
			}
			return mv, nil
		}
		if c.attr == AttrMember {
			return memberValue{Attr: AttrMember, Value: r.UserID}, nil
		}
		return memberValue{}, access.PermanentError(fmt.Errorf("%s: the receipt does not record the memberUid value", op))
	}
	_, mv, err := c.findPerson(ctx, conn, op, g)
	return mv, err
}

// compare reports whether mv is in the group's attribute.
func (c *Connector) compare(ctx context.Context, conn *ldap.Conn, op, group string, mv memberValue) (bool, error) {
	in, err := conn.Compare(group, mv.Attr, mv.Value)
	switch {
	case ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchAttribute):
		return false, nil // the group has no members at all
	case ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchObject):
		return false, access.PermanentError(fmt.Errorf("%s: group %s does not exist", op, group))
	case err != nil:
		return false, c.classify(ctx, fmt.Sprintf("%s: compare %s in %s", op, mv.Attr, group), err)
	}
	return in, nil
}

// modify adds (add) or deletes mv in the group, mapping the result codes
// as the package comment says.
func (c *Connector) modify(ctx context.Context, conn *ldap.Conn, op, group string, mv memberValue, add bool) error {
	req := ldap.NewModifyRequest(group, nil)
	if add {
		req.Add(mv.Attr, []string{mv.Value})
	} else {
		req.Delete(mv.Attr, []string{mv.Value})
	}
	err := conn.Modify(req)
	// verify asks the directory whether the value is there, for the
	// result codes that Active Directory overloads.
	verify := func(want bool, code string) error {
		in, cerr := c.compare(ctx, conn, op, group, mv)
		switch {
		case cerr != nil:
			return cerr
		case in == want:
			return nil
		}
		return access.PermanentError(fmt.Errorf("%s: the directory refused to change %s in %s (%s): %w", op, mv.Attr, group, code, err))
	}
	switch {
	case err == nil:
		return nil
	case add && ldap.IsErrorWithCode(err, ldap.LDAPResultAttributeOrValueExists):
		return nil // already a member (RFC 4511 §4.6)
	case add && ldap.IsErrorWithCode(err, ldap.LDAPResultEntryAlreadyExists):
		return verify(true, "entryAlreadyExists")
	case !add && ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchAttribute):
		return nil // not a member (RFC 4511 §4.6)
	case !add && ldap.IsErrorWithCode(err, ldap.LDAPResultUnwillingToPerform):
		return verify(false, "unwillingToPerform")
	case ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchObject):
		return access.PermanentError(fmt.Errorf("%s: group %s does not exist", op, group))
	case !add && ldap.IsErrorWithCode(err, ldap.LDAPResultObjectClassViolation):
		return access.PermanentError(fmt.Errorf("%s: the directory refused to remove the member from %s (objectClassViolation: a groupOfNames must keep at least one member)", op, group))
	}
	verb := "add " + mv.Attr + " to"
	if !add {
		verb = "delete " + mv.Attr + " from"
	}
	return c.classify(ctx, fmt.Sprintf("%s: %s %s", op, verb, group), err)
}

// session dials, binds and runs fn within the operation timeout. A
// cancelled ctx closes the connection, which unblocks any pending
// request (go-ldap has no per-request context).
func (c *Connector) session(ctx context.Context, what string, fn func(*ldap.Conn) error) error {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	if err := ctx.Err(); err != nil {
		return access.RetryableError(fmt.Errorf("%s: %w", what, err), 0)
	}
	conn, err := c.dial(ctx)
	if err != nil {
		return c.classify(ctx, fmt.Sprintf("%s: connect to %s", what, c.url), err)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetTimeout(time.Until(dl))
	}
	if c.startTLS {
		if err := conn.StartTLS(c.tls); err != nil {
			return c.classify(ctx, fmt.Sprintf("%s: StartTLS with %s", what, c.url), err)
		}
	}
	if err := conn.Bind(c.bindDN, c.password); err != nil {
		if ldap.IsErrorWithCode(err, ldap.LDAPResultInvalidCredentials) {
			return access.PermanentError(fmt.Errorf("%s: bind rejected for %s at %s (invalidCredentials): check bind_dn and bind_password", what, c.bindDN, c.url))
		}
		return c.classify(ctx, fmt.Sprintf("%s: bind as %s", what, c.bindDN), err)
	}
	return fn(conn)
}

// dial connects with ctx (go-ldap's DialURL takes no context).
func (c *Connector) dial(ctx context.Context) (*ldap.Conn, error) {
	u, err := url.Parse(c.url)
	if err != nil {
		return nil, err
	}
	port := u.Port()
	if port == "" {
		port = ldap.DefaultLdapPort
		if c.scheme == "ldaps" {
			port = ldap.DefaultLdapsPort
		}
	}
	addr := net.JoinHostPort(u.Hostname(), port)
	var nc net.Conn
	if c.scheme == "ldaps" {
		d := tls.Dialer{Config: c.tls}
		nc, err = d.DialContext(ctx, "tcp", addr)
	} else {
		var d net.Dialer
		nc, err = d.DialContext(ctx, "tcp", addr)
	}
	if err != nil {
		return nil, ldap.NewError(ldap.ErrorNetwork, err)
	}
	conn := ldap.NewConn(nc, c.scheme == "ldaps")
	conn.Start()
	return conn, nil
}

// findPerson finds the person's entry by email and returns its DN and
// the member value for it: the DN, or its uid for memberUid. Nobody is a
// permanent error wrapping access.ErrUnknownUser.
func (c *Connector) findPerson(ctx context.Context, conn *ldap.Conn, op string, g access.Grant) (string, memberValue, error) {
	p := g.User
	if err := connectors.CheckEmail(op, p); err != nil {
		return "", memberValue{}, err
	}
	filter := fmt.Sprintf(c.userFilter, ldap.EscapeFilter(p.Email))
	attrs := []string{"1.1"} // no attributes (RFC 4511 §4.5.1.8)
	if c.attr == AttrMemberUID {
		attrs = []string{"uid"}
	}
	// SizeLimit 2: one is the answer, two is an ambiguity.
	req := ldap.NewSearchRequest(c.userBase, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 2, 0, false, filter, attrs, nil)
	res, err := conn.Search(req)
	if err != nil && !ldap.IsErrorWithCode(err, ldap.LDAPResultSizeLimitExceeded) {
		if ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchObject) {
			return "", memberValue{}, access.PermanentError(fmt.Errorf("%s: user_base_dn %s does not exist", op, c.userBase))
		}
		return "", memberValue{}, c.classify(ctx, fmt.Sprintf("%s: search %s", op, c.userBase), err)
	}
	if res == nil || len(res.Entries) == 0 {
		return "", memberValue{}, access.PermanentError(fmt.Errorf("%s: %w: no user %s in %s (no LDAP entry matches %s under %s)", op, access.ErrUnknownUser, p.Email, system(g), filter, c.userBase))
	}
	if len(res.Entries) > 1 {
		return "", memberValue{}, access.PermanentError(fmt.Errorf("%s: %w: more than one LDAP user matches %s under %s; make user_filter unique", op, connectors.ErrAmbiguousUser, filter, c.userBase))
	}
	e := res.Entries[0]
	if c.attr == AttrMemberUID {
		uid := e.GetAttributeValue("uid")
		if uid == "" {
			return "", memberValue{}, access.PermanentError(fmt.Errorf("%s: LDAP user %s has no uid for memberUid", op, e.DN))
		}
		return e.DN, memberValue{Attr: AttrMemberUID, Value: uid}, nil
	}
	return e.DN, memberValue{Attr: AttrMember, Value: e.DN}, nil
}

// classify turns an LDAP or transport error into a connector error (see
// the package comment for the mapping).
func (c *Connector) classify(ctx context.Context, what string, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		// The connection was closed under the request by our own
		// cancellation or deadline: retry later.
		return access.RetryableError(fmt.Errorf("%s: %w (%v)", what, ctxErr, err), 0)
	}
	wrapped := fmt.Errorf("%s: %w", what, err)
	var le *ldap.Error
	if !errors.As(err, &le) {
		return access.RetryableError(wrapped, 0)
	}
	if Retryable(le.ResultCode) {
		return access.RetryableError(wrapped, 0)
	}
	return access.PermanentError(wrapped)
}

// Retryable reports whether an LDAP result code is worth retrying: the
// server is busy (51) or unavailable (52), a time or admin limit (3, 11)
// or "other" (80) (RFC 4511 Appendix A), or a client-side code of go-ldap
// (network error, timeout, ≥ 80 and not a server answer).
func Retryable(code uint16) bool {
	switch code {
	case ldap.LDAPResultBusy, ldap.LDAPResultUnavailable, ldap.LDAPResultTimeLimitExceeded,
		ldap.LDAPResultAdminLimitExceeded, ldap.LDAPResultOther, ldap.LDAPResultTimeout,
		ldap.LDAPResultServerDown, ldap.LDAPResultConnectError:
		return true
	}
	return code >= ldap.ErrorNetwork
}

// system names the target system in errors.
func system(g access.Grant) string {
	if g.System != "" {
		return g.System
	}
	return "the directory"
}
