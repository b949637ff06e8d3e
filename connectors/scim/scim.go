// Package scim is the `scim_group` connector: a grant adds the person to a
// group of any application that exposes SCIM 2.0, a revoke removes them,
// with PATCH on the group.
//
// Specifications followed:
//   - RFC 7644 (SCIM protocol) https://www.rfc-editor.org/rfc/rfc7644 :
//     §3.4.2 filtering (GET /Users?filter=userName eq "…", ListResponse
//     with totalResults and Resources), §3.5.2 PATCH with the PatchOp
//     message, §3.5.2.1 "add" to members (a value already present is not
//     added again; 200 or 204), §3.5.2.2 "remove" with a value filter
//     path members[value eq "…"] (204; "noTarget" when nothing matched),
//     §3.12 error responses (urn:ietf:params:scim:api:messages:2.0:Error
//     with status, scimType, detail), §2 bearer authentication;
//   - RFC 7643 (SCIM core schema) https://www.rfc-editor.org/rfc/rfc7643 :
//     §4.1 User (userName, emails), §4.2 Group (members with value = the
//     member's id).
//
// Receipts: Receipt.UserID is the person's SCIM id; PreExisting is set
// when they were already a member (read from the group before the
// change; the revoke then leaves the membership). The revoke removes
// exactly that id (members[value eq "<id>"]) without looking the person
// up, so a changed userName or email does not matter; a user deleted
// since is "noTarget" or not in the group, counted as done. Only records
// granted before receipts existed are looked up, and then an unknown
// person is a permanent error wrapping access.ErrUnknownUser.
//
// Identity provider: AccountActive reads the User's "active" attribute
// (RFC 7643 §4.1.1; a service that omits it is taken to mean active, as
// the attribute is optional); Manager reads the enterprise extension's
// manager.value (RFC 7643 §4.3, the id of the manager's User resource)
// and returns that User's primary email (or first email, or a userName
// that is an email address). Neither is defined for every SCIM service:
// the README says which ones fill them.
//
// Semantics: already a member is done (any 2xx; a 409 "uniqueness" some
// servers send on a duplicate add is checked against the group and done
// if the person is in it). On revoke, 2xx, 404 (group gone) and 400
// "noTarget" (not a member) are done. PATCH requests carry an
// Idempotency-Key (the grant ID and operation) because the operations are
// idempotent, which lets the shared client retry them. 429 and 5xx are
// retryable (Retry-After honoured); 401/403 (expired or revoked token)
// and other 4xx are permanent.
package scim

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/connectors"
)

// Type is the connector type this package registers under.
const Type = "scim_group"

// SCIM message schema URIs (RFC 7644 §3.5.2, §3.4.2, §3.12) and the
// enterprise User extension (RFC 7643 §4.3).
const (
	PatchOpSchema    = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
	ListSchema       = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
	ErrorSchema      = "urn:ietf:params:scim:api:messages:2.0:Error"
	EnterpriseSchema = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
	scimJSON         = "application/scim+json"
)

// ParamGroupID is the grant parameter naming the group.
const ParamGroupID = "group_id"

// params are the grant parameters: group_id, the group's SCIM id. A SCIM
// id is opaque and server-defined, so its value is not checked further.
var params = connectors.Params{{Key: ParamGroupID, What: "the group's SCIM id"}}

// Config is the `connectors.NAME` block of a scim_group connector.
type Config struct {
	// BaseURL is the SCIM service root, e.g. https://app.example.com/scim/v2
	// (the URL /Users and /Groups are relative to). Required; https (plain
	// http is accepted only for loopback test servers).
	BaseURL string `json:"base_url"`
	// Token is the bearer token (or TokenFile names a file holding it).
	Token     connectors.Redacted `json:"token"`
	TokenFile string              `json:"token_file"`
	// UserAttribute is how the person is found: "userName" (default;
	// filter userName eq "<email>") or "emails" (filter emails[value eq
	// "<email>"]).
	UserAttribute string `json:"user_attribute"`
	connectors.Timeout
}

// Validate checks c; errors name keys relative to the block and never
// contain a secret.
func (c *Config) Validate() error {
	var errs []error
	if c.BaseURL == "" {
		errs = append(errs, errors.New("base_url: required"))
	} else if err := connectors.CheckBaseURL(c.BaseURL); err != nil {
		errs = append(errs, fmt.Errorf("base_url: %w", err))
	}
	if c.Token == "" && c.TokenFile == "" {
		errs = append(errs, errors.New("token: required (or token_file)"))
	}
	switch c.UserAttribute {
	case "", "userName", "emails":
	default:
		errs = append(errs, errors.New(`user_attribute: must be "userName" or "emails"`))
	}
	return errors.Join(errs...)
}

// Connector adds and removes SCIM group members, and reads people's
// active flag and manager. Safe for concurrent use.
type Connector struct {
	// GroupMembers gives Grant, Revoke, Check and CheckParams.
	*connectors.GroupMembers
	name string
	attr string
	api  *connectors.API
}

var (
	_ access.Connector      = (*Connector)(nil)
	_ access.Checker        = (*Connector)(nil)
	_ access.ParamsChecker  = (*Connector)(nil)
	_ access.AccountChecker = (*Connector)(nil)
	_ access.ManagerLookup  = (*Connector)(nil)
	_ connectors.Factory    = Factory
)

// Factory builds a scim_group connector; it has the connectors.Factory
// signature. It needs the durable State (connectors.Env.State).
func Factory(name string, cfg connectors.Config) (access.Connector, error) {
	var c Config
	if err := cfg.DecodeStateful(&c); err != nil {
		return nil, err
	}
	tok, err := cfg.Secret("token")
	if err != nil {
		return nil, err
	}
	base := connectors.TrimBase(c.BaseURL)
	conn := &Connector{name: name, attr: c.UserAttribute}
	if conn.attr == "" {
		conn.attr = "userName"
	}
	conn.api = &connectors.API{
		Base: base, HTTP: cfg.HTTP, Timeout: c.Attempt(), Auth: connectors.StaticAuth("Bearer " + tok),
		Header: http.Header{"Accept": {scimJSON}},
	}
	conn.GroupMembers = &connectors.GroupMembers{
		Kind: "scim", Name: name, Params: params, Key: ParamGroupID, Target: "SCIM group",
		Users:   connectors.NewUsers(cfg.Clock, "the SCIM service "+base, conn.lookupUser),
		Intents: connectors.NewIntents(cfg.State), IsMember: conn.isMember, Add: conn.add, Remove: conn.remove,
	}
	return conn, nil
}

// patchOp is one PATCH operation (RFC 7644 §3.5.2).
type patchOp struct {
	Op    string `json:"op"`
	Path  string `json:"path"`
	Value any    `json:"value,omitempty"`
}

type patchRequest struct {
	Schemas    []string  `json:"schemas"`
	Operations []patchOp `json:"Operations"`
}

type member struct {
	Value string `json:"value"`
}

// scimError is the RFC 7644 §3.12 error body.
type scimError struct {
	Status   string `json:"status"`
	ScimType string `json:"scimType"`
	Detail   string `json:"detail"`
}

// CheckParams checks a role's grant parameters without contacting the
// target: exactly group_id, the group's SCIM id, required. Unknown keys are errors, with a did-you-mean.
func (c *Connector) CheckParams(p map[string]string) error { return params.CheckParams(p) }

// add patches uid into the group's members (RFC 7644 §3.5.2.1).
func (c *Connector) add(ctx context.Context, op string, g access.Grant, group, uid string) error {
	status, err := c.patch(ctx, op, group, g.ID+".grant", patchOp{Op: "add", Path: "members", Value: []member{{Value: uid}}}, nil, nil)
	switch {
	case err == nil:
		return nil
	case status == http.StatusNotFound:
		return access.PermanentError(fmt.Errorf("%s: SCIM group %q (or the user) not found at %s: %w", op, group, c.api.Base, err))
	case status == http.StatusConflict:
		// Some services refuse a duplicate member with 409 uniqueness
		// instead of ignoring it: done if the person is indeed in.
		in, cerr := c.isMember(ctx, op, group, uid)
		if cerr != nil {
			return cerr
		}
		if in {
			return nil
		}
		return access.PermanentError(fmt.Errorf("%s: PATCH %s/Groups/%s: 409 Conflict, and the person is not a member", op, c.api.Base, group))
	}
	return err
}

// remove patches uid out of the group's members (RFC 7644 §3.5.2.2).
// Not a member (noTarget, or 2xx) and a group that is gone (404) are
// done.
func (c *Connector) remove(ctx context.Context, op string, g access.Grant, group, uid string) error {
	var se scimError
	status, err := c.patch(ctx, op, group, g.ID+".revoke", patchOp{Op: "remove", Path: `members[value eq ` + strconv.Quote(uid) + `]`}, &se, []int{http.StatusNotFound})
	// scimType keywords are case-sensitive in the RFC; some services
	// capitalise them anyway.
	if err != nil && !(status == http.StatusBadRequest && strings.EqualFold(se.ScimType, "noTarget")) {
		return err
	}
	return nil
}

// isMember reads the group's members (GET /Groups/{id}?attributes=members);
// a group that is gone has no members.
func (c *Connector) isMember(ctx context.Context, op, group, uid string) (bool, error) {
	var gr struct {
		Members []member `json:"members"`
	}
	status, err := c.api.Send(ctx, connectors.JSONCall{
		Op: op, Method: http.MethodGet, Path: "/Groups/" + url.PathEscape(group),
		Query: url.Values{"attributes": {"members"}}, Accept: []int{http.StatusNotFound}, Out: &gr, MaxBody: 32 << 20,
	})
	if err != nil || status == http.StatusNotFound {
		return false, err
	}
	for _, m := range gr.Members {
		if m.Value == uid {
			return true, nil
		}
	}
	return false, nil
}

// patch sends one PatchOp to the group; the operations are idempotent,
// so the Idempotency-Key lets the shared client retry them.
func (c *Connector) patch(ctx context.Context, op, group, idemKey string, o patchOp, errOut *scimError, accept []int) (int, error) {
	if errOut == nil {
		errOut = &scimError{}
	}
	return c.api.Send(ctx, connectors.JSONCall{
		Op: op, Method: http.MethodPatch, Path: "/Groups/" + url.PathEscape(group),
		Body:     patchRequest{Schemas: []string{PatchOpSchema}, Operations: []patchOp{o}},
		Header:   http.Header{"Content-Type": {scimJSON}, "Idempotency-Key": {idemKey}},
		ErrorOut: errOut, Accept: accept,
	})
}

// scimUser is the part of a SCIM User this connector reads.
type scimUser struct {
	ID       string `json:"id"`
	UserName string `json:"userName"`
	Active   *bool  `json:"active"`
	Emails   []struct {
		Value   string `json:"value"`
		Primary bool   `json:"primary"`
	} `json:"emails"`
	Enterprise struct {
		Manager struct {
			Value string `json:"value"`
		} `json:"manager"`
	} `json:"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"`
}

// findUser filters /Users by userName or emails (user_attribute),
// asking for attrs; nil when nobody matches.
func (c *Connector) findUser(ctx context.Context, op, email, attrs string) (*scimUser, error) {
	f := "userName eq " + strconv.Quote(email)
	if c.attr == "emails" {
		// A value filter on the multi-valued attribute (RFC 7644
		// §3.4.2.2), which servers support more widely than emails.value.
		f = "emails[value eq " + strconv.Quote(email) + "]"
	}
	var lr struct {
		TotalResults int        `json:"totalResults"`
		Resources    []scimUser `json:"Resources"`
	}
	if _, err := c.api.Send(ctx, connectors.JSONCall{
		Op: op, Method: http.MethodGet, Path: "/Users",
		Query: url.Values{"filter": {f}, "count": {"2"}, "attributes": {attrs}}, Out: &lr,
	}); err != nil {
		return nil, err
	}
	switch {
	case len(lr.Resources) == 0:
		return nil, nil
	case len(lr.Resources) > 1 || lr.TotalResults > 1:
		return nil, access.PermanentError(fmt.Errorf("%s: %w: several SCIM users at %s match %s %q", op, connectors.ErrAmbiguousUser, c.api.Base, c.attr, email))
	case lr.Resources[0].ID == "":
		return nil, access.PermanentError(fmt.Errorf("%s: the SCIM user with %s %q has no id", op, c.attr, email))
	}
	return &lr.Resources[0], nil
}

// lookupUser is the connectors.Users lookup.
func (c *Connector) lookupUser(ctx context.Context, op, email string) (string, error) {
	u, err := c.findUser(ctx, op, email, "id")
	if err != nil || u == nil {
		return "", err
	}
	return u.ID, nil
}

// person finds p's User with attrs; unknown is a permanent ErrUnknownUser.
func (c *Connector) person(ctx context.Context, op string, p access.Person, attrs string) (*scimUser, error) {
	if err := connectors.CheckEmail(op, p); err != nil {
		return nil, err
	}
	u, err := c.findUser(ctx, op, p.Email, attrs)
	if err == nil && u == nil {
		err = c.Users.Unknown(op, p)
	}
	return u, err
}

// AccountActive implements access.AccountChecker with the User's active
// attribute; a service that omits it is taken to mean active.
func (c *Connector) AccountActive(ctx context.Context, p access.Person) (bool, error) {
	u, err := c.person(ctx, connectors.PersonOp("scim", c.name, "account status", p), p, "id,active")
	if err != nil {
		return false, err
	}
	return u.Active == nil || *u.Active, nil
}

// Manager implements access.ManagerLookup with the enterprise extension's
// manager.value, the id of the manager's User: that User's primary email
// (else the first, else a userName that is an email address). "" when no
// manager is on record; a manager id the service does not know, or a
// manager without an email, is a permanent error.
func (c *Connector) Manager(ctx context.Context, p access.Person) (string, error) {
	op := connectors.PersonOp("scim", c.name, "manager lookup", p)
	u, err := c.person(ctx, op, p, "id,"+EnterpriseSchema+":manager")
	if err != nil {
		return "", err
	}
	mid := u.Enterprise.Manager.Value
	if mid == "" {
		return "", nil
	}
	var m scimUser
	status, err := c.api.Send(ctx, connectors.JSONCall{
		Op: op, Method: http.MethodGet, Path: "/Users/" + url.PathEscape(mid),
		Query: url.Values{"attributes": {"userName,emails"}}, Accept: []int{http.StatusNotFound}, Out: &m,
	})
	switch {
	case err != nil:
		return "", err
	case status == http.StatusNotFound:
		return "", access.PermanentError(fmt.Errorf("%s: the manager on record (SCIM id %s) is not a User at %s", op, mid, c.api.Base))
	}
	for _, e := range m.Emails {
		if e.Primary && e.Value != "" {
			return e.Value, nil
		}
	}
	for _, e := range m.Emails {
		if e.Value != "" {
			return e.Value, nil
		}
	}
	if strings.Contains(m.UserName, "@") {
		return m.UserName, nil
	}
	return "", access.PermanentError(fmt.Errorf("%s: the manager on record (SCIM id %s) has no email", op, mid))
}
