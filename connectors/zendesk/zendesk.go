// Package zendesk is the `zendesk` connector: for the duration of a grant
// it gives a Zendesk Support agent a custom role (restoring the previous
// role at revoke) and/or a group membership.
//
// API, as documented by Zendesk (Support API v2,
// https://developer.zendesk.com/api-reference/):
//
//   - authentication: HTTP Basic with "{email}/token:{api_token}"
//     (https://developer.zendesk.com/api-reference/introduction/security-and-auth/);
//     a bad or deleted token answers 401 {"error":"Couldn't authenticate you"};
//   - users: GET /api/v2/users/search.json?query=email:… answers
//     {"users":[…]}; PUT /api/v2/users/{id}.json with
//     {"user":{"custom_role_id":N}} changes an agent's role and answers 200
//     (https://developer.zendesk.com/api-reference/ticketing/users/users/);
//   - group memberships: GET /api/v2/users/{id}/group_memberships.json,
//     POST /api/v2/group_memberships.json (201; 422 RecordInvalid when the
//     agent is already a member) and DELETE
//     /api/v2/group_memberships/{id}.json (204; 404 RecordNotFound)
//     (https://developer.zendesk.com/api-reference/ticketing/groups/group_memberships/);
//   - rate limits: 429 with Retry-After in seconds
//     (https://developer.zendesk.com/api-reference/introduction/rate-limits/).
//
// # Remembering the previous role
//
// An agent has exactly one custom role, so granting one replaces another.
// Before the change, the previous role is stored durably in the State lent
// by accessbot under "prev-role/<grant ID>"; revoke puts it back and then
// deletes the record. A per-agent record ("agent/<user ID>") notes which
// temporary role accessbot gave and what it replaced, so that a second
// overlapping grant of the same role inherits the true previous role
// instead of recording the temporary one, and a grant of a different
// temporary role while one is active is refused (restoring either one
// would leave the other's role behind). If at revoke the agent's role is no
// longer the granted one, someone changed it by hand: it is left alone and
// the record deleted. All of this runs under a per-agent lock.
package zendesk

import (
	"context"
	"encoding/base64"
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
const Type = "zendesk"

// Grant parameters.
const (
	ParamCustomRoleID = "custom_role_id"
	ParamGroupID      = "group_id"
)

// Config is the `connectors.NAME` block of a zendesk connector.
type Config struct {
	// Subdomain is the account's subdomain, the ACME in
	// https://acme.zendesk.com. Required unless BaseURL is set.
	Subdomain string `json:"subdomain"`
	// BaseURL overrides https://{subdomain}.zendesk.com/api/v2 (a host
	// mapped domain, or a test server).
	BaseURL string `json:"base_url"`
	// Email is the address of the agent or admin owning the API token.
	Email string `json:"email"`
	// APIToken is the API token; or APITokenFile names a file holding it.
	APIToken     connectors.Redacted `json:"api_token"`
	APITokenFile string              `json:"api_token_file"`
	// Timeout bounds each HTTP attempt (default 10s).
	Timeout connectors.Duration `json:"timeout"`
}

// Validate checks c; errors name keys relative to the block and never
// contain the token.
func (c *Config) Validate() error {
	var errs []error
	switch {
	case c.Subdomain == "" && c.BaseURL == "":
		errs = append(errs, errors.New("subdomain: required (or base_url)"))
	case c.Subdomain != "" && c.BaseURL != "":
		errs = append(errs, errors.New("subdomain and base_url: set only one of them"))
	case c.Subdomain != "" && !validSubdomain(c.Subdomain):
		errs = append(errs, errors.New("subdomain: must be the bare subdomain (acme for acme.zendesk.com)"))
	case c.BaseURL != "":
		u, err := url.Parse(c.BaseURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.RawQuery != "" {
			errs = append(errs, errors.New("base_url: must be an absolute http:// or https:// URL without credentials or query"))
		}
	}
	if c.Email == "" {
		errs = append(errs, errors.New("email: required (the token owner's email)"))
	} else if !strings.Contains(c.Email, "@") {
		errs = append(errs, errors.New("email: must be an email address"))
	}
	if c.APIToken == "" && c.APITokenFile == "" {
		errs = append(errs, errors.New("api_token: required (or api_token_file)"))
	}
	if c.Timeout < 0 {
		errs = append(errs, errors.New("timeout: must be positive"))
	}
	return errors.Join(errs...)
}

func validSubdomain(s string) bool {
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
			return false
		}
	}
	return s != ""
}

// Connector manages Zendesk agents' custom roles and group memberships.
// It is safe for concurrent use.
type Connector struct {
	name    string
	base    string // …/api/v2, without trailing slash
	auth    string // Basic credentials; never printed
	timeout time.Duration
	http    connectors.Doer
	state   connectors.State
	// locks serialises work per Zendesk user ID: the role change is a
	// read-modify-write of the user and of the stored records, and two
	// grants for one agent must not interleave.
	locks connectors.KeyedMutex[int64]
}

var (
	_ access.Connector     = (*Connector)(nil)
	_ access.Checker       = (*Connector)(nil)
	_ access.ParamsChecker = (*Connector)(nil)
	_ connectors.Factory   = Factory
)

// Factory builds a zendesk connector from its configuration block. It
// needs the durable State (connectors.Env.State) to remember previous
// roles.
func Factory(name string, cfg connectors.Config) (access.Connector, error) {
	var c Config
	if err := cfg.Decode(&c); err != nil {
		return nil, err
	}
	token, err := cfg.Secret("api_token")
	if err != nil {
		return nil, err
	}
	if cfg.HTTP == nil {
		return nil, fmt.Errorf("connectors.%s: built without an HTTP client (use Registry.Build)", name)
	}
	if cfg.State == nil {
		return nil, fmt.Errorf("connectors.%s: the zendesk connector needs durable state to remember agents' previous roles, and none was provided", name)
	}
	base := strings.TrimRight(c.BaseURL, "/")
	if base == "" {
		base = "https://" + c.Subdomain + ".zendesk.com/api/v2"
	}
	timeout := c.Timeout.Std()
	if timeout == 0 {
		timeout = 10 * time.Second
	}
	return &Connector{
		name: name, base: base, timeout: timeout, http: cfg.HTTP, state: cfg.State,
		auth: "Basic " + base64.StdEncoding.EncodeToString([]byte(c.Email+"/token:"+token)),
	}, nil
}

// user is the part of a Zendesk user we read.
type user struct {
	ID           int64  `json:"id"`
	Email        string `json:"email"`
	Role         string `json:"role"` // end-user, agent, admin
	CustomRoleID *int64 `json:"custom_role_id"`
	Suspended    bool   `json:"suspended"`
}

func (u *user) role() int64 {
	if u.CustomRoleID == nil {
		return 0
	}
	return *u.CustomRoleID
}

type groupMembership struct {
	ID      int64 `json:"id"`
	UserID  int64 `json:"user_id"`
	GroupID int64 `json:"group_id"`
}

// roleRecord is what is stored, as JSON, under prev-role/<grant ID> and
// agent/<user ID>.
type roleRecord struct {
	UserID  int64  `json:"user_id"`
	Prev    int64  `json:"prev_custom_role_id"`
	Granted int64  `json:"custom_role_id"`
	GrantID string `json:"grant_id"`
}

// params are a grant's parsed parameters; zero means absent.
type params struct {
	role, group int64
}

func parseParams(op string, g access.Grant) (params, error) {
	var p params
	if g.User.Email == "" {
		return p, access.PermanentError(fmt.Errorf("%s: the person has no email address", op))
	}
	p, err := readParams(g.Params)
	if err != nil {
		return p, access.PermanentError(fmt.Errorf("%s: grant parameter %w", op, err))
	}
	return p, nil
}

// CheckParams checks a role's grant parameters without contacting
// Zendesk: custom_role_id and group_id, at least one, each a positive
// integer. Unknown keys are errors, with a did-you-mean.
func (c *Connector) CheckParams(params map[string]string) error {
	_, err := readParams(params)
	return errors.Join(append(access.UnknownParams(params, ParamCustomRoleID, ParamGroupID), err)...)
}

// readParams parses the grant parameters; parseParams (so Grant, Revoke
// and Check) and CheckParams both use it. Errors start with the key,
// several joined.
func readParams(m map[string]string) (params, error) {
	var p params
	var errs []error
	read := func(key string) int64 {
		s := m[key]
		if s == "" {
			return 0
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n <= 0 {
			errs = append(errs, fmt.Errorf("%s: must be a positive integer (the ID in Admin Center), not %q", key, s))
			return 0
		}
		return n
	}
	p.role, p.group = read(ParamCustomRoleID), read(ParamGroupID)
	if len(errs) > 0 {
		return p, errors.Join(errs...)
	}
	if p.role == 0 && p.group == 0 {
		return p, fmt.Errorf("%s: required (or %s; set at least one)", ParamCustomRoleID, ParamGroupID)
	}
	return p, nil
}

// Grant implements access.Connector. It returns an empty receipt: this
// connector does not yet record what it changed.
func (c *Connector) Grant(ctx context.Context, g access.Grant) (access.Receipt, error) {
	return access.Receipt{}, c.applyGrant(ctx, g)
}

// Grant gives the agent the custom role and/or group membership.
func (c *Connector) applyGrant(ctx context.Context, g access.Grant) error {
	op := c.op("grant", g)
	p, err := parseParams(op, g)
	if err != nil {
		return err
	}
	u, err := c.findUser(ctx, op, g.User.Email)
	if err != nil {
		return err
	}
	if u == nil {
		return access.PermanentError(fmt.Errorf("%s: no Zendesk user with email %q", op, g.User.Email))
	}
	if u.Role != "agent" && u.Role != "admin" {
		return access.PermanentError(fmt.Errorf("%s: Zendesk user %q is an %s, not an agent", op, g.User.Email, u.Role))
	}
	unlock, err := c.locks.Lock(ctx, u.ID)
	if err != nil {
		return access.RetryableError(fmt.Errorf("%s: %w", op, err), 0)
	}
	defer unlock()
	if p.role != 0 {
		if err := c.grantRole(ctx, op, g, u, p.role); err != nil {
			return err
		}
	}
	if p.group != 0 {
		return c.grantGroup(ctx, op, u.ID, p.group)
	}
	return nil
}

func (c *Connector) grantRole(ctx context.Context, op string, g access.Grant, u *user, role int64) error {
	prevKey, agentKey := "prev-role/"+g.ID, "agent/"+strconv.FormatInt(u.ID, 10)
	rec, ok, err := c.load(ctx, op, prevKey)
	if err != nil {
		return err
	}
	if !ok {
		// First attempt of this grant: work out what the role replaces.
		cur := u.role()
		if cur == 0 {
			return access.PermanentError(fmt.Errorf("%s: agent %q has no custom role that could be restored afterwards (custom roles need Zendesk Suite Growth or above)", op, g.User.Email))
		}
		rec = roleRecord{UserID: u.ID, Prev: cur, Granted: role, GrantID: g.ID}
		other, hasOther, err := c.load(ctx, op, agentKey)
		if err != nil {
			return err
		}
		if hasOther && other.UserID == u.ID && other.Granted == cur {
			// Another grant of accessbot's gave the agent their current
			// role and is still active.
			if other.Granted != role {
				return access.PermanentError(fmt.Errorf("%s: agent %q already has temporary custom role %d from grant %s; a Zendesk agent has one role at a time, so end that grant first", op, g.User.Email, other.Granted, other.GrantID))
			}
			rec.Prev = other.Prev // the role before the first grant
		}
		// Durable first: the record exists before the role changes.
		if err := c.store(ctx, op, prevKey, rec); err != nil {
			return err
		}
		if !hasOther || other.Granted != cur || other.UserID != u.ID {
			if err := c.store(ctx, op, agentKey, rec); err != nil {
				return err
			}
		}
	}
	if u.role() == role {
		return nil
	}
	return c.setRole(ctx, op, u.ID, role)
}

func (c *Connector) grantGroup(ctx context.Context, op string, userID, group int64) error {
	m, err := c.groupMembership(ctx, op, userID, group)
	if err != nil || m != nil {
		return err
	}
	body := map[string]any{"group_membership": map[string]int64{"user_id": userID, "group_id": group}}
	status, err := c.call(ctx, op, http.MethodPost, "/group_memberships.json", nil, body, nil, http.StatusUnprocessableEntity)
	if err != nil || status != http.StatusUnprocessableEntity {
		return err
	}
	// 422 is how Zendesk says "already a member" (a concurrent add) but
	// also "no such group" or "not an agent": look again to tell them apart.
	if m, err := c.groupMembership(ctx, op, userID, group); err != nil || m != nil {
		return err
	}
	return access.PermanentError(fmt.Errorf("%s: Zendesk refused to add the agent to group %d (422: check that the group exists and the user is an agent)", op, group))
}

// Revoke restores the agent's previous custom role (unless it was changed
// by hand since the grant) and removes the group membership. An unknown
// person, no stored record and no membership are all done.
func (c *Connector) Revoke(ctx context.Context, g access.Grant) error {
	op := c.op("revoke", g)
	p, err := parseParams(op, g)
	if err != nil {
		return err
	}
	u, err := c.findUser(ctx, op, g.User.Email)
	if err != nil {
		return err
	}
	if u == nil {
		// The user was deleted: no access is left. Forget the records.
		if p.role == 0 {
			return nil
		}
		rec, ok, err := c.load(ctx, op, "prev-role/"+g.ID)
		if err != nil || !ok {
			return err
		}
		return c.forgetRecords(ctx, op, g.ID, rec)
	}
	unlock, err := c.locks.Lock(ctx, u.ID)
	if err != nil {
		return access.RetryableError(fmt.Errorf("%s: %w", op, err), 0)
	}
	defer unlock()
	if p.role != 0 {
		if err := c.revokeRole(ctx, op, g, u, p.role); err != nil {
			return err
		}
	}
	if p.group != 0 {
		m, err := c.groupMembership(ctx, op, u.ID, p.group)
		if err != nil || m == nil {
			return err
		}
		_, err = c.call(ctx, op, http.MethodDelete, "/group_memberships/"+strconv.FormatInt(m.ID, 10)+".json", nil, nil, nil, http.StatusNotFound)
		return err
	}
	return nil
}

func (c *Connector) revokeRole(ctx context.Context, op string, g access.Grant, u *user, role int64) error {
	rec, ok, err := c.load(ctx, op, "prev-role/"+g.ID)
	if err != nil || !ok {
		// No record: the grant never changed the role (the record is
		// written before the change), or this revoke already finished.
		return err
	}
	if rec.UserID == u.ID && u.role() == rec.Granted && u.role() != rec.Prev {
		if err := c.setRole(ctx, op, u.ID, rec.Prev); err != nil {
			return err
		}
	}
	// Either restored, or the role is no longer ours (changed by hand, or
	// restored before a crash): leave it alone and forget.
	return c.forgetRecords(ctx, op, g.ID, rec)
}

// forgetRecords deletes grant grantID's record and the agent's record if
// it is about the same temporary role. The grant's record goes last, so
// that a failure in between is retried.
func (c *Connector) forgetRecords(ctx context.Context, op, grantID string, rec roleRecord) error {
	agentKey := "agent/" + strconv.FormatInt(rec.UserID, 10)
	if agent, ok, err := c.load(ctx, op, agentKey); err != nil {
		return err
	} else if ok && agent.Granted == rec.Granted {
		if err := c.forget(ctx, op, agentKey); err != nil {
			return err
		}
	}
	return c.forget(ctx, op, "prev-role/"+grantID)
}

// Check reports whether the agent has everything the grant gives.
func (c *Connector) Check(ctx context.Context, g access.Grant) (bool, error) {
	op := c.op("check", g)
	p, err := parseParams(op, g)
	if err != nil {
		return false, err
	}
	u, err := c.findUser(ctx, op, g.User.Email)
	if err != nil || u == nil {
		return false, err
	}
	if p.role != 0 && u.role() != p.role {
		return false, nil
	}
	if p.group != 0 {
		m, err := c.groupMembership(ctx, op, u.ID, p.group)
		return m != nil, err
	}
	return true, nil
}

func (c *Connector) op(verb string, g access.Grant) string {
	who := g.User.SlackID
	if g.User.Email != "" {
		who += " (" + g.User.Email + ")"
	}
	return fmt.Sprintf("zendesk %s: %s %s for %s", c.name, verb, g.ID, who)
}

func (c *Connector) setRole(ctx context.Context, op string, userID, role int64) error {
	body := map[string]any{"user": map[string]int64{"custom_role_id": role}}
	_, err := c.call(ctx, op, http.MethodPut, "/users/"+strconv.FormatInt(userID, 10)+".json", nil, body, nil)
	return err
}

// findUser returns the user whose email is exactly email
// (case-insensitive), or nil.
func (c *Connector) findUser(ctx context.Context, op, email string) (*user, error) {
	var out struct {
		Users []user `json:"users"`
	}
	q := url.Values{"query": {"email:" + email}}
	if _, err := c.call(ctx, op, http.MethodGet, "/users/search.json", q, nil, &out); err != nil {
		return nil, err
	}
	for i := range out.Users {
		if strings.EqualFold(out.Users[i].Email, email) {
			return &out.Users[i], nil
		}
	}
	return nil, nil
}

// groupMembership returns the user's membership of group, or nil. An agent
// belongs to few groups; pages are followed all the same.
func (c *Connector) groupMembership(ctx context.Context, op string, userID, group int64) (*groupMembership, error) {
	path := "/users/" + strconv.FormatInt(userID, 10) + "/group_memberships.json"
	q := url.Values{"per_page": {"100"}}
	for page := 1; page <= 100; page++ {
		q.Set("page", strconv.Itoa(page))
		var out struct {
			Memberships []groupMembership `json:"group_memberships"`
			NextPage    *string           `json:"next_page"`
		}
		if _, err := c.call(ctx, op, http.MethodGet, path, q, nil, &out); err != nil {
			return nil, err
		}
		for i := range out.Memberships {
			if out.Memberships[i].GroupID == group {
				return &out.Memberships[i], nil
			}
		}
		if out.NextPage == nil || *out.NextPage == "" {
			return nil, nil
		}
	}
	return nil, access.RetryableError(fmt.Errorf("%s: too many pages of group memberships", op), 0)
}

func (c *Connector) load(ctx context.Context, op, key string) (roleRecord, bool, error) {
	var rec roleRecord
	b, ok, err := c.state.Get(ctx, key)
	if err != nil {
		return rec, false, access.RetryableError(fmt.Errorf("%s: read state %s: %w", op, key, err), 0)
	}
	if !ok {
		return rec, false, nil
	}
	if err := json.Unmarshal(b, &rec); err != nil {
		return rec, false, access.PermanentError(fmt.Errorf("%s: state %s is corrupt: %v", op, key, err))
	}
	return rec, true, nil
}

func (c *Connector) store(ctx context.Context, op, key string, rec roleRecord) error {
	b, err := json.Marshal(rec)
	if err != nil {
		return access.PermanentError(fmt.Errorf("%s: encode state: %w", op, err))
	}
	if err := c.state.Put(ctx, key, b); err != nil {
		return access.RetryableError(fmt.Errorf("%s: write state %s: %w", op, key, err), 0)
	}
	return nil
}

func (c *Connector) forget(ctx context.Context, op, key string) error {
	if err := c.state.Delete(ctx, key); err != nil {
		return access.RetryableError(fmt.Errorf("%s: delete state %s: %w", op, key, err), 0)
	}
	return nil
}

// call sends one request through the shared client. A 2xx answer is
// decoded into out when out is non-nil; a status listed in accept returns
// that status and no error; anything else is classified by
// connectors.Classify.
func (c *Connector) call(ctx context.Context, op, method, path string, q url.Values, body, out any, accept ...int) (int, error) {
	return connectors.SendJSON(ctx, c.http, connectors.JSONCall{
		Op: op, Method: method, Base: c.base, Path: path, Query: q, Body: body,
		Authorize: func(req *http.Request) { req.Header.Set("Authorization", c.auth) },
		Timeout:   c.timeout, Accept: accept, Out: out,
	})
}
