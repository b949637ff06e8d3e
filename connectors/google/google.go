// Package google is the `google_group` connector: a grant adds the person
// to a Google Workspace group, a revoke removes them, through the Admin SDK
// Directory API, authenticated as a service account with domain-wide
// delegation. Where the group allows it, the grant also sets the
// membership's own expiry through the Cloud Identity Groups API, so that
// Google removes the access at expiry even if accessbot is down (a native
// backstop; accessbot's own revoke still runs).
//
// API pages followed:
//   - Directory API members.insert / members.delete / members.get:
//     https://developers.google.com/workspace/admin/directory/reference/rest/v1/members
//     (POST admin/directory/v1/groups/{groupKey}/members, 409 "Member
//     already exists."; DELETE …/members/{memberKey}, 204, 404 "Resource
//     Not Found: memberKey" when not a member);
//   - Directory API errors and limits:
//     https://developers.google.com/workspace/admin/directory/v1/limits
//     (403 rateLimitExceeded / userRateLimitExceeded and 429 are retried
//     with exponential backoff; 503 backendError);
//   - Domain-wide delegation with a service account:
//     https://developers.google.com/identity/protocols/oauth2/service-account#delegatingauthority
//     (JWT bearer grant, sub = the admin to impersonate; invalid_grant
//     when the key is revoked or the client is not authorised);
//   - Cloud Identity groups.lookup, memberships.lookup and
//     memberships.modifyMembershipRoles with expiry_detail.expire_time:
//     https://cloud.google.com/identity/docs/reference/rest/v1/groups.memberships/modifyMembershipRoles
//     and https://cloud.google.com/identity/docs/how-to/memberships-google-groups
//     (membership expiry is only allowed for some groups and members,
//     e.g. not for members outside the organisation; a refusal is a 400
//     FAILED_PRECONDITION or INVALID_ARGUMENT);
//   - Go client options: https://pkg.go.dev/google.golang.org/api/option
//     (WithHTTPClient, WithEndpoint) and
//     https://pkg.go.dev/golang.org/x/oauth2/google#JWTConfigFromJSON.
//
// Receipts: Receipt.UserID is the Directory member ID of the person (the
// Google user ID, from members.insert's answer or members.get);
// PreExisting is set when they were already a direct member (members.get
// before the change; the revoke then leaves the membership); Backstop is
// the membership expiry set in Google, zero when none was set, and then
// Note says why. The revoke deletes the member by that ID (memberKey
// accepts a member's ID), so a renamed user, or one deleted since (404),
// does not matter. Only records granted before receipts existed are
// revoked by email; a 404 is then told apart with users.get: the user
// exists (not a member, done) or is unknown (a permanent error wrapping
// access.ErrUnknownUser).
//
// Scopes are requested per use, each with its own delegated token, so
// that a scope the Workspace admin did not delegate breaks only what
// needs it (a token request naming an undelegated scope fails whole,
// with unauthorized_client):
//   - admin.directory.group.member: every grant and revoke;
//   - cloud-identity.groups: only with native_expiry (the default). A
//     grant whose expiry cannot be set after the member was added is
//     still a grant, without backstop, when the reason is lasting and
//     not about this grant: the scope not delegated, the Cloud Identity
//     API disabled or the edition without membership expiry (403; only
//     Enterprise Standard/Plus, Enterprise for Education and Cloud
//     Identity Premium have it,
//     https://cloud.google.com/identity/docs/how-to/manage-expirations),
//     or a membership Google will not expire (400 FAILED_PRECONDITION or
//     INVALID_ARGUMENT). A transient failure is retryable, and any other
//     refusal is permanent; both return the partial receipt (membership
//     added) so that the lifecycle can roll the membership back;
//   - admin.directory.user.readonly: only for AccountActive (suspended or
//     archived), Manager (relations of type manager,
//     https://developers.google.com/workspace/admin/directory/reference/rest/v1/users)
//     and the legacy revoke's users.get.
//
// A renamed user keeps the old address as an alias
// (https://support.google.com/a/answer/182084), so the Directory resolves
// it to the same member; the receipt's ID does not depend on it.
//
// Every request, token requests included, goes through the shared
// connectors.Doer via an http.RoundTripper adapter (the Google API
// clients build and send their requests themselves).
package google

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"time"

	"golang.org/x/oauth2"
	googleoauth "golang.org/x/oauth2/google"
	"golang.org/x/oauth2/jwt"
	admin "google.golang.org/api/admin/directory/v1"
	"google.golang.org/api/cloudidentity/v1"
	"google.golang.org/api/googleapi"
	"google.golang.org/api/option"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/connectors"
)

// Type is the connector type this package registers under.
const Type = "google_group"

// The scopes the service account may be granted in the domain-wide
// delegation settings; see the package comment for which needs which.
const (
	MemberScope = admin.AdminDirectoryGroupMemberScope
	ExpiryScope = cloudidentity.CloudIdentityGroupsScope
	UserScope   = admin.AdminDirectoryUserReadonlyScope
)

// ErrUnknownMember is wrapped (with access.ErrUnknownUser) by the
// permanent error when Google knows neither the person nor (perhaps) the
// group.
var ErrUnknownMember = errors.New("unknown user or group")

// ParamGroup is the grant parameter naming the group.
const ParamGroup = "group"

var (
	// emailRE is a plausible email address: local@domain.tld, no spaces.
	emailRE = regexp.MustCompile(`^[^@\s]+@[^@\s]+\.[^@\s.]+$`)
	// groupIDRE is a Directory API group ID (e.g. 03ep43zb2r8a0ke).
	groupIDRE = regexp.MustCompile(`^[A-Za-z0-9]+$`)
)

// params are the grant parameters: group, required, an email address
// (the group's or an alias) or a Directory group ID.
var params = connectors.Params{{
	Key: ParamGroup, What: "the group's email or ID",
	Check: func(v string) error {
		if !emailRE.MatchString(v) && !groupIDRE.MatchString(v) {
			return fmt.Errorf("%q is neither a group email (eng@example.com) nor a group ID", v)
		}
		return nil
	},
}}

// Config is the `connectors.NAME` block of a google_group connector.
type Config struct {
	// Credentials is the service account's JSON key (or CredentialsFile
	// names a file holding it). Required.
	Credentials     connectors.Redacted `json:"credentials"`
	CredentialsFile string              `json:"credentials_file"`
	// AdminEmail is the Workspace admin the service account impersonates
	// (domain-wide delegation). Required.
	AdminEmail string `json:"admin_email"`
	// NativeExpiry sets the membership's expiry in Google as a backstop
	// where the group allows it (default true). False: the Cloud Identity
	// scope is never requested.
	NativeExpiry *bool `json:"native_expiry"`
	// TokenURL, DirectoryEndpoint and CloudIdentityEndpoint override
	// Google's endpoints (tests, proxies).
	TokenURL              string `json:"token_url"`
	DirectoryEndpoint     string `json:"directory_endpoint"`
	CloudIdentityEndpoint string `json:"cloudidentity_endpoint"`
	connectors.Timeout
}

// Validate checks c; errors name keys relative to the block and never
// contain a secret.
func (c *Config) Validate() error {
	var errs []error
	if c.Credentials == "" && c.CredentialsFile == "" {
		errs = append(errs, errors.New("credentials: required (or credentials_file): the service account's JSON key"))
	}
	if c.Credentials != "" {
		if _, err := googleoauth.JWTConfigFromJSON([]byte(c.Credentials), MemberScope); err != nil {
			errs = append(errs, errors.New("credentials: not a service account JSON key (the value is not shown)"))
		}
	}
	if c.AdminEmail == "" {
		errs = append(errs, errors.New("admin_email: required (the admin the service account acts as)"))
	} else if !strings.Contains(c.AdminEmail, "@") {
		errs = append(errs, errors.New("admin_email: must be an email address"))
	}
	for key, v := range map[string]string{"token_url": c.TokenURL, "directory_endpoint": c.DirectoryEndpoint, "cloudidentity_endpoint": c.CloudIdentityEndpoint} {
		if v != "" {
			if err := connectors.CheckBaseURL(v); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", key, err))
			}
		}
	}
	return errors.Join(errs...)
}

// Connector adds and removes Google group members, and reads people's
// account state and manager. Safe for concurrent use.
type Connector struct {
	name    string
	timeout time.Duration
	clock   access.Clock
	intents *connectors.Intents

	members *admin.Service         // MemberScope
	users   *admin.Service         // UserScope
	ci      *cloudidentity.Service // ExpiryScope; nil without native_expiry
	// Each service's own delegated token.
	memberTok, userTok, ciTok *resettableSource
}

var (
	_ access.Connector      = (*Connector)(nil)
	_ access.Checker        = (*Connector)(nil)
	_ access.ParamsChecker  = (*Connector)(nil)
	_ access.AccountChecker = (*Connector)(nil)
	_ access.ManagerLookup  = (*Connector)(nil)
	_ connectors.Factory    = Factory
)

// Factory builds a google_group connector; it has the connectors.Factory
// signature. It needs the durable State (connectors.Env.State).
func Factory(name string, cfg connectors.Config) (access.Connector, error) {
	var c Config
	if err := cfg.DecodeStateful(&c); err != nil {
		return nil, err
	}
	key, err := cfg.Secret("credentials")
	if err != nil {
		return nil, err
	}
	base := &http.Client{Transport: doerTransport{cfg.HTTP}}
	source := func(scope string) (*resettableSource, *http.Client, error) {
		jc, err := googleoauth.JWTConfigFromJSON([]byte(key), scope)
		if err != nil {
			return nil, nil, fmt.Errorf("connectors.%s.credentials: not a service account JSON key (the value is not shown)", name)
		}
		jc.Subject = c.AdminEmail
		if c.TokenURL != "" {
			jc.TokenURL = c.TokenURL
		}
		src := &resettableSource{conf: jc, client: base}
		src.reset()
		return src, &http.Client{Transport: &oauth2.Transport{Source: src, Base: base.Transport}}, nil
	}
	endpoint := func(u string) []option.ClientOption {
		if u == "" {
			return nil
		}
		return []option.ClientOption{option.WithEndpoint(connectors.TrimBase(u) + "/")}
	}
	ctx := context.Background()
	conn := &Connector{name: name, timeout: c.Attempt(), clock: cfg.Clock, intents: connectors.NewIntents(cfg.State)}
	var hc *http.Client
	if conn.memberTok, hc, err = source(MemberScope); err != nil {
		return nil, err
	}
	if conn.members, err = admin.NewService(ctx, append(endpoint(c.DirectoryEndpoint), option.WithHTTPClient(hc))...); err != nil {
		return nil, fmt.Errorf("connectors.%s: directory client: %w", name, err)
	}
	if conn.userTok, hc, err = source(UserScope); err != nil {
		return nil, err
	}
	if conn.users, err = admin.NewService(ctx, append(endpoint(c.DirectoryEndpoint), option.WithHTTPClient(hc))...); err != nil {
		return nil, fmt.Errorf("connectors.%s: directory client: %w", name, err)
	}
	if c.NativeExpiry == nil || *c.NativeExpiry {
		if conn.ciTok, hc, err = source(ExpiryScope); err != nil {
			return nil, err
		}
		if conn.ci, err = cloudidentity.NewService(ctx, append(endpoint(c.CloudIdentityEndpoint), option.WithHTTPClient(hc))...); err != nil {
			return nil, fmt.Errorf("connectors.%s: cloud identity client: %w", name, err)
		}
	}
	return conn, nil
}

// CheckParams checks a role's grant parameters without contacting Google:
// exactly group, required, an email address (the group's or an alias) or
// a Directory group ID. Unknown keys are errors, with a did-you-mean.
func (c *Connector) CheckParams(p map[string]string) error { return params.CheckParams(p) }

// Grant adds the person to params.group (connectors.GrantMembership),
// then, with native_expiry and an expiry, sets it on the membership as a
// backstop (see the package comment for what a refusal does).
func (c *Connector) Grant(ctx context.Context, g access.Grant) (access.Receipt, error) {
	op := c.op("grant", g)
	group, err := params.Get(op, g.Params, ParamGroup)
	if err != nil {
		return access.Receipt{}, err
	}
	if err := connectors.CheckEmail(op, g.User); err != nil {
		return access.Receipt{}, err
	}
	email := g.User.Email
	return connectors.GrantMembership(ctx, c.intents, g, connectors.Member{
		Find: func(ctx context.Context) (connectors.Intent, bool, error) {
			m, err := c.member(ctx, op, group, email)
			if err != nil || m == nil {
				// Not a member, or not a user: insert tells which.
				return connectors.Intent{}, false, err
			}
			return connectors.Intent{UserID: m.Id}, true, nil
		},
		Add: func(ctx context.Context, in connectors.Intent) (access.Receipt, error) {
			id, err := c.insert(ctx, op, g, group, email)
			if err != nil {
				return access.Receipt{}, err
			}
			r := access.Receipt{UserID: id, Note: "added to Google group " + group}
			if c.ci == nil || g.ExpiresAt.IsZero() {
				return r, nil
			}
			r, err = c.setExpiry(ctx, op, group, email, g.ExpiresAt, r)
			return r, err
		},
	}, "")
}

// insert adds email to group and returns the member ID; already a
// member (409) reads it with members.get.
func (c *Connector) insert(ctx context.Context, op string, g access.Grant, group, email string) (string, error) {
	var m *admin.Member
	err := c.call(ctx, c.memberTok, func(ctx context.Context) error {
		call := c.members.Members.Insert(group, &admin.Member{Email: email, Role: "MEMBER"}).Context(ctx)
		// Inserting is idempotent (a repeat answers 409), so the shared
		// client may retry the POST.
		call.Header().Set("Idempotency-Key", g.ID+".grant")
		var err error
		m, err = call.Do()
		return err
	})
	var ge *googleapi.Error
	switch {
	case err == nil && m.Id != "":
		return m.Id, nil
	case err == nil:
		return "", access.RetryableError(fmt.Errorf("%s: Google answered the insert without a member id", op), 0)
	case errors.As(err, &ge) && ge.Code == http.StatusConflict:
		if m, err = c.member(ctx, op, group, email); err == nil && m == nil {
			err = access.RetryableError(fmt.Errorf("%s: Google says %s is a member of %s and then that they are not", op, connectors.PersonName(g.User), group), 0)
		}
		if err != nil {
			return "", err
		}
		return m.Id, nil
	case errors.As(err, &ge) && ge.Code == http.StatusNotFound:
		return "", access.PermanentError(fmt.Errorf("%s: %w (%w): Google Workspace has no user %q or no group %q (%s)",
			op, access.ErrUnknownUser, ErrUnknownMember, email, group, connectors.PersonName(g.User)))
	}
	return "", c.classify(err, op)
}

// member reads a direct membership (members.get); nil when Google says
// 404 (not a member, or no such user).
func (c *Connector) member(ctx context.Context, op, group, key string) (*admin.Member, error) {
	var m *admin.Member
	err := c.call(ctx, c.memberTok, func(ctx context.Context) error {
		var err error
		m, err = c.members.Members.Get(group, key).Context(ctx).Do()
		return err
	})
	var ge *googleapi.Error
	switch {
	case err == nil:
		return m, nil
	case errors.As(err, &ge) && ge.Code == http.StatusNotFound:
		return nil, nil
	}
	return nil, c.classify(err, op)
}

// Revoke removes the receipt's member ID from params.group. Not a member,
// or the user deleted since (404), is done.
func (c *Connector) Revoke(ctx context.Context, g access.Grant) error {
	op := c.op("revoke", g)
	group, err := params.Get(op, g.Params, ParamGroup)
	if err != nil {
		return err
	}
	key, legacy := "", g.Receipt == nil || g.Receipt.UserID == ""
	if legacy {
		if err := connectors.CheckEmail(op, g.User); err != nil {
			return err
		}
		key = g.User.Email
	} else {
		key = g.Receipt.UserID
	}
	err = c.call(ctx, c.memberTok, func(ctx context.Context) error {
		return c.members.Members.Delete(group, key).Context(ctx).Do()
	})
	var ge *googleapi.Error
	switch {
	case err == nil:
	case errors.As(err, &ge) && ge.Code == http.StatusNotFound && !legacy:
	case errors.As(err, &ge) && ge.Code == http.StatusNotFound:
		// By email: not a member, or nobody has that address any more.
		if _, err := c.user(ctx, op, g.User); err != nil {
			return err
		}
	default:
		return c.classify(err, op)
	}
	c.intents.Forget(ctx, g.ID)
	return nil
}

// Check reports whether the person (the receipt's member ID, else their
// email) is a direct member of params.group.
func (c *Connector) Check(ctx context.Context, g access.Grant) (bool, error) {
	op := c.op("check", g)
	group, err := params.Get(op, g.Params, ParamGroup)
	if err != nil {
		return false, err
	}
	key := g.User.Email
	if g.Receipt != nil && g.Receipt.UserID != "" {
		key = g.Receipt.UserID
	} else if err := connectors.CheckEmail(op, g.User); err != nil {
		return false, err
	}
	m, err := c.member(ctx, op, group, key)
	return m != nil, err
}

// setExpiry looks the membership up in Cloud Identity and sets the MEMBER
// role's expiry, returning r with the Backstop, or with a Note saying why
// there is none (see the package comment).
func (c *Connector) setExpiry(ctx context.Context, op, group, email string, at time.Time, r access.Receipt) (access.Receipt, error) {
	at = at.UTC().Truncate(time.Second)
	groupName := "groups/" + group // a Directory group ID is the Cloud Identity group's resource ID
	var membership string
	var err error
	if strings.Contains(group, "@") {
		err = c.call(ctx, c.ciTok, func(ctx context.Context) error {
			res, err := c.ci.Groups.Lookup().GroupKeyId(group).Context(ctx).Do()
			if err == nil {
				groupName = res.Name
			}
			return err
		})
	}
	if err == nil {
		err = c.call(ctx, c.ciTok, func(ctx context.Context) error {
			res, err := c.ci.Groups.Memberships.Lookup(groupName).MemberKeyId(email).Context(ctx).Do()
			if err == nil {
				membership = res.Name
			}
			return err
		})
	}
	if err == nil {
		req := &cloudidentity.ModifyMembershipRolesRequest{UpdateRolesParams: []*cloudidentity.UpdateMembershipRolesParams{{
			FieldMask: "expiryDetail.expireTime",
			MembershipRole: &cloudidentity.MembershipRole{
				Name: "MEMBER", ExpiryDetail: &cloudidentity.ExpiryDetail{ExpireTime: at.Format(time.RFC3339)},
			},
		}}}
		err = c.call(ctx, c.ciTok, func(ctx context.Context) error {
			_, err := c.ci.Groups.Memberships.ModifyMembershipRoles(membership, req).Context(ctx).Do()
			return err
		})
	}
	if err == nil {
		r.Backstop = at
		r.Note += "; expires in Google at the grant's end"
		return r, nil
	}
	if why := noBackstop(err); why != "" {
		r.Note += "; no expiry backstop: " + why
		return r, nil
	}
	// The membership is in place but its expiry is not: the partial
	// receipt lets the lifecycle roll it back if this stays a failure.
	r.Data = []byte(`{"membership":"added","expiry":"not set"}`)
	r.Note += "; setting its expiry failed"
	return r, c.classify(err, op+": set membership expiry")
}

// noBackstop says why a Cloud Identity failure leaves the grant without
// backstop rather than failing it, or "" when it must fail it.
func noBackstop(err error) string {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) && (re.Response == nil || !connectors.RetryableStatus(re.Response.StatusCode)) {
		return "the Cloud Identity scope is not delegated to the service account"
	}
	var ge *googleapi.Error
	if !errors.As(err, &ge) {
		return ""
	}
	switch {
	case ge.Code == http.StatusForbidden && !rateLimited(ge):
		return "Cloud Identity refused (API disabled, or an edition without membership expiry)"
	case ge.Code == http.StatusBadRequest && (strings.Contains(ge.Body, "FAILED_PRECONDITION") || strings.Contains(ge.Body, "INVALID_ARGUMENT") || len(ge.Errors) > 0 && (ge.Errors[0].Reason == "failedPrecondition" || ge.Errors[0].Reason == "invalid")):
		return "Google does not allow an expiry on this membership"
	}
	return ""
}

// googleUser is the part of a Directory user this connector reads.
type googleUser struct {
	ID        string
	Suspended bool
	Archived  bool
	Relations []struct {
		Value string `json:"value"`
		Type  string `json:"type"`
	}
}

// user reads p with users.get (UserScope); unknown is a permanent
// ErrUnknownUser.
func (c *Connector) user(ctx context.Context, op string, p access.Person) (*googleUser, error) {
	if err := connectors.CheckEmail(op, p); err != nil {
		return nil, err
	}
	var u *admin.User
	err := c.call(ctx, c.userTok, func(ctx context.Context) error {
		var err error
		u, err = c.users.Users.Get(p.Email).Context(ctx).Do()
		return err
	})
	var ge *googleapi.Error
	switch {
	case errors.As(err, &ge) && ge.Code == http.StatusNotFound:
		return nil, access.PermanentError(fmt.Errorf("%s: %w: nobody with email %q in Google Workspace (%s)", op, access.ErrUnknownUser, p.Email, connectors.PersonName(p)))
	case err != nil:
		return nil, c.classify(err, op)
	}
	out := &googleUser{ID: u.Id, Suspended: u.Suspended, Archived: u.Archived}
	if u.Relations != nil {
		b, _ := json.Marshal(u.Relations)
		if err := json.Unmarshal(b, &out.Relations); err != nil {
			return nil, access.RetryableError(fmt.Errorf("%s: unreadable relations in Google's user answer", op), 0)
		}
	}
	return out, nil
}

// AccountActive implements access.AccountChecker: false for a suspended
// or archived Workspace user.
func (c *Connector) AccountActive(ctx context.Context, p access.Person) (bool, error) {
	u, err := c.user(ctx, connectors.PersonOp("google", c.name, "account status", p), p)
	if err != nil {
		return false, err
	}
	return !u.Suspended && !u.Archived, nil
}

// Manager implements access.ManagerLookup: the value (an email address)
// of the user's first relation of type manager, "" when none.
func (c *Connector) Manager(ctx context.Context, p access.Person) (string, error) {
	op := connectors.PersonOp("google", c.name, "manager lookup", p)
	u, err := c.user(ctx, op, p)
	if err != nil {
		return "", err
	}
	for _, r := range u.Relations {
		if r.Type == "manager" && r.Value != "" {
			return r.Value, nil
		}
	}
	return "", nil
}

// call runs fn with the attempt timeout; a 401 (the access token expired
// or was revoked early) fetches a new token from src once and runs fn
// again.
func (c *Connector) call(ctx context.Context, src *resettableSource, fn func(context.Context) error) error {
	ctx = connectors.WithAttemptTimeout(ctx, c.timeout)
	err := fn(ctx)
	var ge *googleapi.Error
	if errors.As(err, &ge) && ge.Code == http.StatusUnauthorized {
		src.reset()
		err = fn(ctx)
	}
	return err
}

// rateLimited reports whether a 403 is the Directory API's rate limit
// answer rather than a refusal.
func rateLimited(ge *googleapi.Error) bool {
	if len(ge.Errors) == 0 {
		return false
	}
	switch ge.Errors[0].Reason {
	case "rateLimitExceeded", "userRateLimitExceeded", "quotaExceeded":
		return true
	}
	return false
}

// classify maps a Directory / Cloud Identity failure to our classes.
func (c *Connector) classify(err error, what string) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		if re.Response != nil && connectors.RetryableStatus(re.Response.StatusCode) {
			return access.RetryableError(fmt.Errorf("%s: token request: %d", what, re.Response.StatusCode), 0)
		}
		code := re.ErrorCode
		if code == "" {
			// x/oauth2/jwt does not parse the body; it is the RFC 6749
			// §5.2 error object.
			var e struct {
				Error string `json:"error"`
			}
			_ = json.Unmarshal(re.Body, &e)
			code = e.Error
		}
		return access.PermanentError(fmt.Errorf("%s: Google refused the service account's token request (%s): the key may be revoked or expired, or domain-wide delegation not granted for the scopes", what, connectors.OAuthCode(code)))
	}
	var ge *googleapi.Error
	if !errors.As(err, &ge) {
		// Transport errors and cancellation (url.Error, scrubbed of queries).
		return connectors.Classify(nil, err, what)
	}
	msg := ge.Message
	if len(msg) > 200 {
		msg = msg[:200] + "…"
	}
	reason := ""
	if len(ge.Errors) > 0 {
		reason = ge.Errors[0].Reason
	}
	e := fmt.Errorf("%s: Google API %d %s: %q", what, ge.Code, reason, msg)
	switch {
	case ge.Code == http.StatusTooManyRequests || ge.Code >= 500 || ge.Code == http.StatusForbidden && rateLimited(ge):
		ra, _ := connectors.ParseRetryAfter(ge.Header.Get("Retry-After"), c.clock.Now())
		return access.RetryableError(e, ra)
	case ge.Code == http.StatusUnauthorized || ge.Code == http.StatusForbidden:
		return access.PermanentError(fmt.Errorf("%w: the service account's credentials or delegated scopes were rejected", e))
	}
	return access.PermanentError(e)
}

func (c *Connector) op(op string, g access.Grant) string {
	return connectors.Op("google", c.name, op, g)
}

// doerTransport sends requests through the shared connectors.Doer.
type doerTransport struct{ d connectors.Doer }

func (t doerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	return t.d.Do(req.Context(), req)
}

// resettableSource caches a delegated access token (oauth2's
// ReuseTokenSource) and can drop it when Google rejects it early.
type resettableSource struct {
	conf   *jwt.Config
	client *http.Client

	mu  sync.Mutex
	src oauth2.TokenSource
}

func (s *resettableSource) reset() {
	ctx := context.WithValue(context.Background(), oauth2.HTTPClient, s.client)
	s.mu.Lock()
	s.src = s.conf.TokenSource(ctx)
	s.mu.Unlock()
}

// Token implements oauth2.TokenSource.
func (s *resettableSource) Token() (*oauth2.Token, error) {
	s.mu.Lock()
	src := s.src
	s.mu.Unlock()
	return src.Token()
}
