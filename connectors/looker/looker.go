// Package looker is the `looker_role` connector: it adds a Looker role to
// a user for the duration of a grant and removes it at revoke, keeping the
// user's other roles.
//
// API, as documented by Google for Looker API 4.0
// (https://cloud.google.com/looker/docs/reference/looker-api/latest):
//
//   - authentication: POST /api/4.0/login with form fields client_id and
//     client_secret (API3 credentials) answers {"access_token":…,
//     "token_type":"Bearer","expires_in":3600}; requests then carry
//     "Authorization: Bearer <token>"; an expired or revoked token answers
//     401 (https://cloud.google.com/looker/docs/api-auth,
//     .../methods/ApiAuth/login);
//   - users: GET /api/4.0/users/search?email=… answers an array of users
//     (.../methods/User/search_users);
//   - roles: GET /api/4.0/users/{id}/roles?direct_association_only=true
//     answers the roles given to the user directly, not through groups
//     (.../methods/User/user_roles); PUT /api/4.0/users/{id}/roles with the
//     full array of role IDs replaces them and answers the new roles
//     (.../methods/User/set_user_roles). IDs are strings in API 4.0.
//
// Because PUT replaces the whole list, a grant or revoke is a
// read-modify-write: it runs under an in-process per-user lock, so
// concurrent grants and revokes for one user never drop each other's role.
// Only direct roles are read and written back, so roles a user has through
// a group are never turned into direct ones. The token is cached until
// shortly before it expires and fetched again once on a 401.
package looker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/connectors"
)

// Type is the connector type this package registers.
const Type = "looker_role"

// ParamRoleID is the grant parameter naming the Looker role (its ID, as
// in Admin → Roles → the role's URL).
const ParamRoleID = "role_id"

// tokenMargin is how long before its stated expiry a token is replaced,
// so that a request never starts with a token about to lapse.
const tokenMargin = time.Minute

// Config is the `connectors.NAME` block of a looker_role connector.
type Config struct {
	// URL is the Looker instance's API host, e.g.
	// https://acme.cloud.looker.com (or https://acme.looker.com:19999 on
	// older instances). /api/4.0 is appended. Required.
	URL string `json:"url"`
	// ClientID is the API3 client ID. Required.
	ClientID string `json:"client_id"`
	// ClientSecret is the API3 client secret; or ClientSecretFile names a
	// file holding it. Exactly one is required.
	ClientSecret     connectors.Redacted `json:"client_secret"`
	ClientSecretFile string              `json:"client_secret_file"`
	// Timeout bounds each HTTP attempt (default 10s).
	Timeout connectors.Duration `json:"timeout"`
}

// Validate checks c; errors name keys relative to the block and never
// contain the secret.
func (c *Config) Validate() error {
	var errs []error
	if c.URL == "" {
		errs = append(errs, errors.New("url: required"))
	} else if u, err := url.Parse(c.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.RawQuery != "" {
		errs = append(errs, errors.New("url: must be an absolute http:// or https:// URL without credentials or query"))
	}
	if c.ClientID == "" {
		errs = append(errs, errors.New("client_id: required"))
	}
	if c.ClientSecret == "" && c.ClientSecretFile == "" {
		errs = append(errs, errors.New("client_secret: required (or client_secret_file)"))
	}
	if c.Timeout < 0 {
		errs = append(errs, errors.New("timeout: must be positive"))
	}
	return errors.Join(errs...)
}

// Connector manages Looker users' roles. It is safe for concurrent use.
type Connector struct {
	name     string
	api      string // …/api/4.0
	clientID string
	secret   string
	timeout  time.Duration
	http     connectors.Doer
	clock    access.Clock
	// locks serialises work per Looker user ID: setting a user's roles
	// replaces the whole list, so a grant and a revoke for one user must
	// not interleave their read and write.
	locks connectors.KeyedMutex[string]

	mu      sync.Mutex
	token   string
	expires time.Time
}

var (
	_ access.Connector     = (*Connector)(nil)
	_ access.Checker       = (*Connector)(nil)
	_ access.ParamsChecker = (*Connector)(nil)
	_ connectors.Factory   = Factory
)

// Factory builds a looker_role connector from its configuration block.
func Factory(name string, cfg connectors.Config) (access.Connector, error) {
	var c Config
	if err := cfg.Decode(&c); err != nil {
		return nil, err
	}
	secret, err := cfg.Secret("client_secret")
	if err != nil {
		return nil, err
	}
	if cfg.HTTP == nil || cfg.Clock == nil {
		return nil, fmt.Errorf("connectors.%s: built without an HTTP client or clock (use Registry.Build)", name)
	}
	timeout := c.Timeout.Std()
	if timeout == 0 {
		timeout = 10 * time.Second
	}
	return &Connector{
		name: name, api: strings.TrimRight(c.URL, "/") + "/api/4.0",
		clientID: c.ClientID, secret: secret, timeout: timeout,
		http: cfg.HTTP, clock: cfg.Clock,
	}, nil
}

type user struct {
	ID         string `json:"id"`
	Email      string `json:"email"`
	IsDisabled bool   `json:"is_disabled"`
}

type role struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// Grant implements access.Connector. It returns an empty receipt: this
// connector does not yet record what it changed.
func (c *Connector) Grant(ctx context.Context, g access.Grant) (access.Receipt, error) {
	return access.Receipt{}, c.applyGrant(ctx, g)
}

// Grant adds the role to the user's direct roles; already held is done.
func (c *Connector) applyGrant(ctx context.Context, g access.Grant) error {
	op := c.op("grant", g)
	roleID, err := roleParam(op, g)
	if err != nil {
		return err
	}
	u, err := c.findUser(ctx, op, g.User.Email)
	if err != nil {
		return err
	}
	if u == nil {
		return access.PermanentError(fmt.Errorf("%s: no Looker user with email %q", op, g.User.Email))
	}
	if u.IsDisabled {
		return access.PermanentError(fmt.Errorf("%s: Looker user %q is disabled", op, g.User.Email))
	}
	return c.modify(ctx, op, u.ID, func(ids []string) []string {
		if slices.Contains(ids, roleID) {
			return nil
		}
		return append(ids, roleID)
	}, func(ids []string) bool { return slices.Contains(ids, roleID) })
}

// Revoke removes the role from the user's direct roles; an unknown user or
// a role not held is done.
func (c *Connector) Revoke(ctx context.Context, g access.Grant) error {
	op := c.op("revoke", g)
	roleID, err := roleParam(op, g)
	if err != nil {
		return err
	}
	u, err := c.findUser(ctx, op, g.User.Email)
	if err != nil || u == nil {
		return err
	}
	return c.modify(ctx, op, u.ID, func(ids []string) []string {
		if !slices.Contains(ids, roleID) {
			return nil
		}
		return slices.DeleteFunc(ids, func(id string) bool { return id == roleID })
	}, func(ids []string) bool { return !slices.Contains(ids, roleID) })
}

// Check reports whether the user holds the role directly.
func (c *Connector) Check(ctx context.Context, g access.Grant) (bool, error) {
	op := c.op("check", g)
	roleID, err := roleParam(op, g)
	if err != nil {
		return false, err
	}
	u, err := c.findUser(ctx, op, g.User.Email)
	if err != nil || u == nil {
		return false, err
	}
	ids, err := c.roles(ctx, op, u.ID)
	return slices.Contains(ids, roleID), err
}

// modify is the serialised read-modify-write of a user's direct roles.
// change returns the new list, or nil when nothing needs to change; done
// checks the list Looker answers after the PUT.
func (c *Connector) modify(ctx context.Context, op, userID string, change func([]string) []string, done func([]string) bool) error {
	unlock, err := c.locks.Lock(ctx, userID)
	if err != nil {
		return access.RetryableError(fmt.Errorf("%s: %w", op, err), 0)
	}
	defer unlock()
	ids, err := c.roles(ctx, op, userID)
	if err != nil {
		return err
	}
	next := change(ids)
	if next == nil {
		return nil
	}
	var out []role
	if _, err := c.call(ctx, op, http.MethodPut, "/users/"+url.PathEscape(userID)+"/roles", nil, next, &out); err != nil {
		return err
	}
	got := make([]string, len(out))
	for i, r := range out {
		got[i] = r.ID
	}
	if !done(got) {
		return access.RetryableError(fmt.Errorf("%s: Looker answered the role update with a list that does not reflect it", op), 0)
	}
	return nil
}

func (c *Connector) roles(ctx context.Context, op, userID string) ([]string, error) {
	var rs []role
	q := url.Values{"direct_association_only": {"true"}, "fields": {"id,name"}}
	if _, err := c.call(ctx, op, http.MethodGet, "/users/"+url.PathEscape(userID)+"/roles", q, nil, &rs); err != nil {
		return nil, err
	}
	ids := make([]string, 0, len(rs)+1)
	for _, r := range rs {
		ids = append(ids, r.ID)
	}
	return ids, nil
}

// findUser returns the user whose email is exactly email
// (case-insensitive), or nil. The search treats % and _ as wildcards,
// hence the exact comparison.
func (c *Connector) findUser(ctx context.Context, op, email string) (*user, error) {
	var us []user
	q := url.Values{"email": {email}, "fields": {"id,email,is_disabled"}}
	if _, err := c.call(ctx, op, http.MethodGet, "/users/search", q, nil, &us); err != nil {
		return nil, err
	}
	for i := range us {
		if strings.EqualFold(us[i].Email, email) {
			return &us[i], nil
		}
	}
	return nil, nil
}

func roleParam(op string, g access.Grant) (string, error) {
	if g.User.Email == "" {
		return "", access.PermanentError(fmt.Errorf("%s: the person has no email address", op))
	}
	id, err := roleID(g.Params)
	if err != nil {
		return "", access.PermanentError(fmt.Errorf("%s: grant parameter %w", op, err))
	}
	return id, nil
}

// CheckParams checks a role's grant parameters without contacting
// Looker: exactly role_id, required, a positive integer. Unknown keys are
// errors, with a did-you-mean.
func (c *Connector) CheckParams(params map[string]string) error {
	_, err := roleID(params)
	return errors.Join(append(access.UnknownParams(params, ParamRoleID), err)...)
}

// roleID returns the role_id grant parameter, trimmed and checked;
// roleParam (so Grant, Revoke and Check) and CheckParams both use it.
// Errors start with the key.
func roleID(params map[string]string) (string, error) {
	id := strings.TrimSpace(params[ParamRoleID])
	if id == "" {
		return "", fmt.Errorf("%s: required (Admin → Roles → the role's ID)", ParamRoleID)
	}
	if n, err := strconv.ParseInt(id, 10, 64); err != nil || n <= 0 {
		return "", fmt.Errorf("%s: must be a positive integer (the role's ID), not %q", ParamRoleID, id)
	}
	return id, nil
}

func (c *Connector) op(verb string, g access.Grant) string {
	who := g.User.SlackID
	if g.User.Email != "" {
		who += " (" + g.User.Email + ")"
	}
	return fmt.Sprintf("looker %s: %s %s for %s", c.name, verb, g.ID, who)
}

// accessToken returns a cached token or logs in. Concurrent callers share
// one login.
func (c *Connector) accessToken(ctx context.Context, op string, stale string) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.token != "" && c.token != stale && c.clock.Now().Before(c.expires) {
		return c.token, nil
	}
	c.token = ""
	form := url.Values{"client_id": {c.clientID}, "client_secret": {c.secret}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.api+"/login", strings.NewReader(form.Encode()))
	if err != nil {
		return "", access.PermanentError(fmt.Errorf("%s: build login request: %w", op, err))
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	// Logging in has no side effect at Looker beyond issuing a token, so
	// it may be replayed: the key lets the shared client's inner loop
	// retry it on 429/5xx like a GET (Looker ignores the header).
	req.Header.Set("Idempotency-Key", fmt.Sprintf("accessbot-login-%d", c.clock.Now().UnixNano()))
	resp, err := c.http.Do(connectors.WithAttemptTimeout(ctx, c.timeout), req)
	if err := connectors.Classify(resp, err, op+": login"); err != nil {
		// 400/401/403/404 here mean wrong or disabled API3 credentials:
		// permanent, as Classify says.
		return "", err
	}
	defer connectors.Drain(resp)
	var tok struct {
		AccessToken string `json:"access_token"`
		ExpiresIn   int    `json:"expires_in"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&tok); err != nil || tok.AccessToken == "" {
		return "", access.RetryableError(fmt.Errorf("%s: login: unexpected answer", op), 0)
	}
	life := time.Duration(tok.ExpiresIn) * time.Second
	if life <= 0 {
		life = time.Hour
	}
	c.token = tok.AccessToken
	c.expires = c.clock.Now().Add(max(life-tokenMargin, life/2))
	return c.token, nil
}

// call sends one API request with a token, logging in again once if the
// token is rejected (expired or revoked). A 2xx answer is decoded into out
// when out is non-nil; anything else is classified by connectors.Classify.
func (c *Connector) call(ctx context.Context, op, method, path string, q url.Values, body, out any) (int, error) {
	stale := ""
	for attempt := 0; ; attempt++ {
		token, err := c.accessToken(ctx, op, stale)
		if err != nil {
			return 0, err
		}
		var accept []int
		if attempt == 0 {
			accept = []int{http.StatusUnauthorized} // log in again, once
		}
		status, err := connectors.SendJSON(ctx, c.http, connectors.JSONCall{
			Op: op, Method: method, Base: c.api, Path: path, Query: q, Body: body,
			Authorize: func(req *http.Request) { req.Header.Set("Authorization", "Bearer "+token) },
			Timeout:   c.timeout, Accept: accept, Out: out,
		})
		if err == nil && status == http.StatusUnauthorized {
			stale = token
			continue
		}
		return status, err
	}
}
