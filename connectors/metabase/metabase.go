// Package metabase is the `metabase_group` connector: it grants access by
// adding a Metabase user to a permission group and revokes it by removing
// the membership.
//
// API, as documented by Metabase (the API is unversioned; these endpoints
// have been stable since v0.3x):
//
//   - authentication: an API key sent in the `x-api-key` header
//     (https://www.metabase.com/docs/latest/people-and-groups/api-keys); a
//     missing, revoked or wrong key answers 401 "Unauthenticated";
//   - users: GET /api/user?query=… matches name and email; recent versions
//     answer {"data":[…],"total":…}, older ones a bare array; status=all
//     includes deactivated users
//     (https://www.metabase.com/docs/latest/api/user);
//   - memberships: GET /api/permissions/membership answers a map
//     {"<user-id>":[{"membership_id":…,"group_id":…,"user_id":…}]};
//     POST /api/permissions/membership {"group_id":G,"user_id":U} adds one
//     (a duplicate is not rejected cleanly, so we look first);
//     DELETE /api/permissions/membership/:id removes one
//     (https://www.metabase.com/docs/latest/api/permissions).
//
// Idempotency: Grant looks for an existing membership before adding one;
// Revoke treats "no such user", "not a member" and a 404 on DELETE as done.
// The connector keeps no state of its own.
package metabase

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/connectors"
)

// Type is the connector type this package registers.
const Type = "metabase_group"

// ParamGroupID is the grant parameter naming the permission group (its
// numeric ID, as in the admin URL /admin/people/groups/ID).
const ParamGroupID = "group_id"

// Config is the `connectors.NAME` block of a metabase_group connector.
type Config struct {
	// URL is the Metabase site, e.g. https://metabase.example.com.
	// Required.
	URL string `json:"url"`
	// APIKey is the API key; or APIKeyFile names a file holding it.
	// Exactly one is required.
	APIKey     connectors.Redacted `json:"api_key"`
	APIKeyFile string              `json:"api_key_file"`
	// Timeout bounds each HTTP attempt (default 10s).
	Timeout connectors.Duration `json:"timeout"`
}

// Validate checks c; errors name keys relative to the block and never
// contain the key.
func (c *Config) Validate() error {
	var errs []error
	if err := validateURL(c.URL); err != nil {
		errs = append(errs, fmt.Errorf("url: %w", err))
	}
	if c.APIKey == "" && c.APIKeyFile == "" {
		errs = append(errs, errors.New("api_key: required (or api_key_file)"))
	}
	if c.Timeout < 0 {
		errs = append(errs, errors.New("timeout: must be positive"))
	}
	return errors.Join(errs...)
}

func validateURL(s string) error {
	if s == "" {
		return errors.New("required")
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.RawQuery != "" {
		return errors.New("must be an absolute http:// or https:// URL without credentials or query")
	}
	return nil
}

// Connector manages Metabase group memberships. It is safe for concurrent
// use.
type Connector struct {
	name    string
	base    string // without trailing slash
	key     string
	timeout time.Duration
	http    connectors.Doer
}

var (
	_ access.Connector     = (*Connector)(nil)
	_ access.Checker       = (*Connector)(nil)
	_ access.ParamsChecker = (*Connector)(nil)
	_ connectors.Factory   = Factory
)

// Factory builds a metabase_group connector from its configuration block.
func Factory(name string, cfg connectors.Config) (access.Connector, error) {
	var c Config
	if err := cfg.Decode(&c); err != nil {
		return nil, err
	}
	key, err := cfg.Secret("api_key")
	if err != nil {
		return nil, err
	}
	if cfg.HTTP == nil {
		return nil, fmt.Errorf("connectors.%s: built without an HTTP client (use Registry.Build)", name)
	}
	timeout := c.Timeout.Std()
	if timeout == 0 {
		timeout = 10 * time.Second
	}
	return &Connector{
		name: name, base: strings.TrimRight(c.URL, "/"), key: key,
		timeout: timeout, http: cfg.HTTP,
	}, nil
}

// user is the part of a Metabase user we read.
type user struct {
	ID    int    `json:"id"`
	Email string `json:"email"`
}

// membership is one entry of GET /api/permissions/membership.
type membership struct {
	MembershipID int `json:"membership_id"`
	GroupID      int `json:"group_id"`
	UserID       int `json:"user_id"`
}

// Grant implements access.Connector. It returns an empty receipt: this
// connector does not yet record what it changed.
func (c *Connector) Grant(ctx context.Context, g access.Grant) (access.Receipt, error) {
	return access.Receipt{}, c.applyGrant(ctx, g)
}

// Grant adds the person to the group; already a member is done.
func (c *Connector) applyGrant(ctx context.Context, g access.Grant) error {
	op := c.op("grant", g)
	group, err := groupID(op, g)
	if err != nil {
		return err
	}
	u, err := c.findUser(ctx, op, g.User.Email, false)
	if err != nil {
		return err
	}
	if u == nil {
		return access.PermanentError(fmt.Errorf("%s: no active Metabase user with email %q", op, g.User.Email))
	}
	m, err := c.membership(ctx, op, u.ID, group)
	if err != nil || m != nil {
		return err
	}
	body := map[string]int{"group_id": group, "user_id": u.ID}
	_, perr := c.call(ctx, op, http.MethodPost, "/api/permissions/membership", nil, body, nil)
	if perr == nil {
		return nil
	}
	// Metabase has no clean "already a member" answer: a concurrent add
	// makes the POST fail. Look again before reporting the failure.
	if class, _ := access.Classify(perr); class == access.Permanent {
		if m, err := c.membership(ctx, op, u.ID, group); err == nil && m != nil {
			return nil
		}
	}
	return perr
}

// Revoke removes the person's membership of the group; an unknown person
// or no membership is done. Deactivated users are included so that a
// later reactivation does not bring the access back.
func (c *Connector) Revoke(ctx context.Context, g access.Grant) error {
	op := c.op("revoke", g)
	group, err := groupID(op, g)
	if err != nil {
		return err
	}
	u, err := c.findUser(ctx, op, g.User.Email, true)
	if err != nil || u == nil {
		return err
	}
	m, err := c.membership(ctx, op, u.ID, group)
	if err != nil || m == nil {
		return err
	}
	_, err = c.call(ctx, op, http.MethodDelete, "/api/permissions/membership/"+strconv.Itoa(m.MembershipID), nil, nil, nil, http.StatusNotFound)
	return err
}

// Check reports whether the person is a member of the group.
func (c *Connector) Check(ctx context.Context, g access.Grant) (bool, error) {
	op := c.op("check", g)
	group, err := groupID(op, g)
	if err != nil {
		return false, err
	}
	u, err := c.findUser(ctx, op, g.User.Email, true)
	if err != nil || u == nil {
		return false, err
	}
	m, err := c.membership(ctx, op, u.ID, group)
	return m != nil, err
}

func (c *Connector) op(verb string, g access.Grant) string {
	return fmt.Sprintf("metabase %s: %s %s for %s", c.name, verb, g.ID, person(g.User))
}

func person(p access.Person) string {
	if p.Email != "" {
		return p.SlackID + " (" + p.Email + ")"
	}
	return p.SlackID
}

// groupID reads and checks the group_id grant parameter.
func groupID(op string, g access.Grant) (int, error) {
	if g.User.Email == "" {
		return 0, access.PermanentError(fmt.Errorf("%s: the person has no email address", op))
	}
	n, err := groupIDParam(g.Params)
	if err != nil {
		return 0, access.PermanentError(fmt.Errorf("%s: grant parameter %w", op, err))
	}
	return n, nil
}

// CheckParams checks a role's grant parameters without contacting
// Metabase: exactly group_id, required, a positive integer. Unknown keys
// are errors, with a did-you-mean.
func (c *Connector) CheckParams(params map[string]string) error {
	_, err := groupIDParam(params)
	return errors.Join(append(access.UnknownParams(params, ParamGroupID), err)...)
}

// groupIDParam parses group_id; groupID (so Grant, Revoke and Check) and
// CheckParams both use it. Errors start with the key.
func groupIDParam(params map[string]string) (int, error) {
	s := params[ParamGroupID]
	if s == "" {
		return 0, fmt.Errorf("%s: required (Admin → People → Groups → the number in the URL)", ParamGroupID)
	}
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%s: must be a positive integer (the group's number), not %q", ParamGroupID, s)
	}
	return n, nil
}

// findUser returns the user whose email is exactly email (case-insensitive),
// or nil. The search also matches names and partial emails, hence the
// exact comparison.
func (c *Connector) findUser(ctx context.Context, op, email string, includeDeactivated bool) (*user, error) {
	q := url.Values{"query": {email}}
	if includeDeactivated {
		q.Set("status", "all")
	}
	var raw json.RawMessage
	if _, err := c.call(ctx, op, http.MethodGet, "/api/user", q, nil, &raw); err != nil {
		return nil, err
	}
	var users []user
	trimmed := bytes.TrimSpace(raw)
	if len(trimmed) > 0 && trimmed[0] == '[' {
		if err := json.Unmarshal(trimmed, &users); err != nil {
			return nil, badAnswer(op, "user search", err)
		}
	} else {
		var page struct {
			Data []user `json:"data"`
		}
		if err := json.Unmarshal(trimmed, &page); err != nil {
			return nil, badAnswer(op, "user search", err)
		}
		users = page.Data
	}
	for i := range users {
		if strings.EqualFold(users[i].Email, email) {
			return &users[i], nil
		}
	}
	return nil, nil
}

// membership returns the user's membership of group, or nil.
func (c *Connector) membership(ctx context.Context, op string, userID, group int) (*membership, error) {
	var all map[string][]membership
	if _, err := c.call(ctx, op, http.MethodGet, "/api/permissions/membership", nil, nil, &all); err != nil {
		return nil, err
	}
	for _, m := range all[strconv.Itoa(userID)] {
		if m.GroupID == group {
			return &m, nil
		}
	}
	return nil, nil
}

func badAnswer(op, what string, err error) error {
	// The answer was 2xx but not what the documentation describes; a proxy
	// page or a version change. Retryable: it must never end a revoke.
	return access.RetryableError(fmt.Errorf("%s: unexpected %s answer: %v", op, what, err), 0)
}

// call sends one request through the shared client. A 2xx answer is
// decoded into out when out is non-nil; a status listed in accept returns
// that status and no error; anything else is classified by
// connectors.Classify.
func (c *Connector) call(ctx context.Context, op, method, path string, q url.Values, body, out any, accept ...int) (int, error) {
	return connectors.SendJSON(ctx, c.http, connectors.JSONCall{
		Op: op, Method: method, Base: c.base, Path: path, Query: q, Body: body,
		Authorize: func(req *http.Request) { req.Header.Set("x-api-key", c.key) },
		Timeout:   c.timeout, Accept: accept, Out: out, MaxBody: 32 << 20,
		BadAnswer: func(err error) error { return badAnswer(op, method+" "+path, err) },
	})
}
