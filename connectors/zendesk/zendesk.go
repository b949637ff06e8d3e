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
//     {"users":[…]}; GET /api/v2/users/{id}.json answers {"user":…} or 404
//     RecordNotFound once the user is deleted; PUT /api/v2/users/{id}.json
//     with {"user":{"custom_role_id":N}} changes an agent's role and
//     answers the user (https://developer.zendesk.com/api-reference/ticketing/users/users/).
//     custom_role_id exists only for agents on Enterprise plans ("A custom
//     role if the user is an agent on the Enterprise plan or above", same
//     page; https://support.zendesk.com/hc/en-us/articles/4408882153882:
//     custom roles need Suite Enterprise / Enterprise Plus or Support
//     Enterprise), so the answer to the PUT is checked;
//   - group memberships: GET /api/v2/users/{id}/group_memberships.json,
//     POST /api/v2/group_memberships.json (201; 422 RecordInvalid when the
//     agent is already a member) and DELETE
//     /api/v2/group_memberships/{id}.json (204; 404 RecordNotFound)
//     (https://developer.zendesk.com/api-reference/ticketing/groups/group_memberships/);
//   - rate limits: 429 with Retry-After in seconds
//     (https://developer.zendesk.com/api-reference/introduction/rate-limits/).
//
// # Receipts
//
// A grant's receipt (DESIGN.md §4 invariant 8) holds the agent's Zendesk
// user ID, the custom role it replaced (Previous) and, in Data, which role
// it set, which group membership it created (its ID) and which parts the
// agent already had. Revoke acts on it alone: it restores Previous if the
// agent still has the granted role (someone who changed the role by hand
// since is not overruled) and deletes exactly the membership the grant
// created. A grant whose group membership fails after the role changed
// returns the partial receipt with the error, and the rollback revoke puts
// the role back (invariant 9).
//
// Records granted before receipts existed are revoked by email, with the
// previous role read from the durable record "prev-role/<grant ID>" the
// connector kept in its State then; an email Zendesk no longer knows is a
// permanent error wrapping access.ErrUnknownUser.
//
// # Concurrent temporary roles
//
// An agent has exactly one custom role. A per-agent record
// "agent/<user ID>" in State notes the temporary role a live grant gave
// and what it replaced: a second overlapping grant of the same role gets
// the true previous role in its receipt (not the temporary one), and a
// grant of a different temporary role while one is live is refused
// (restoring either would leave the other's role behind). The record is
// written before the role changes and deleted by the revoke that restores
// or gives up the role; it never outlives the grants it describes. Role
// changes and the record for one agent run under a per-agent lock.
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
	connectors.Timeout
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
		if err := connectors.CheckBaseURL(c.BaseURL); err != nil {
			errs = append(errs, fmt.Errorf("base_url: %w", err))
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
	if c.Timeout.Timeout < 0 {
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
	api     *connectors.API // …/api/v2, Basic credentials (never printed)
	state   connectors.State
	intents *connectors.Intents
	users   *connectors.Users
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
// needs the durable State (connectors.Env.State) for the records of the
// grants it started (connectors.Intents), the per-agent temporary-role
// records, and the previous roles of records granted before receipts
// existed.
func Factory(name string, cfg connectors.Config) (access.Connector, error) {
	var c Config
	if err := cfg.DecodeStateful(&c); err != nil {
		return nil, err
	}
	token, err := cfg.Secret("api_token")
	if err != nil {
		return nil, err
	}
	base := connectors.TrimBase(c.BaseURL)
	if base == "" {
		base = "https://" + c.Subdomain + ".zendesk.com/api/v2"
	}
	z := &Connector{
		name: name, state: cfg.State, intents: connectors.NewIntents(cfg.State),
		api: &connectors.API{
			Base: base, HTTP: cfg.HTTP, Timeout: c.Attempt(),
			Auth: connectors.StaticAuth("Basic " + base64.StdEncoding.EncodeToString([]byte(c.Email+"/token:"+token))),
		},
	}
	z.users = connectors.NewUsers(cfg.Clock, "Zendesk account "+base, z.lookup)
	return z, nil
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

func (u *user) agent() bool { return u.Role == "agent" || u.Role == "admin" }

type groupMembership struct {
	ID      int64 `json:"id"`
	UserID  int64 `json:"user_id"`
	GroupID int64 `json:"group_id"`
}

// roleRecord is what is stored, as JSON, under agent/<user ID> (and, by
// versions before receipts, under prev-role/<grant ID>).
type roleRecord struct {
	UserID  int64  `json:"user_id"`
	Prev    int64  `json:"prev_custom_role_id"`
	Granted int64  `json:"custom_role_id"`
	GrantID string `json:"grant_id"`
}

// Data is the connector-specific part of a zendesk grant's receipt
// (access.Receipt.Data, JSON). Receipt.UserID is the Zendesk user ID and
// Receipt.Previous the custom role ID the grant replaced.
type Data struct {
	// CustomRoleID is the role this grant set (0: the role was not part
	// of the grant, or the agent already had it).
	CustomRoleID int64 `json:"custom_role_id,omitempty"`
	// RolePreExisting: the agent had the role before the grant.
	RolePreExisting bool `json:"role_pre_existing,omitempty"`
	// GroupID is the group of the grant (0: none).
	GroupID int64 `json:"group_id,omitempty"`
	// MembershipID is the group membership this grant created (0: none,
	// or not known because the create's answer was lost).
	MembershipID int64 `json:"group_membership_id,omitempty"`
	// GroupPreExisting: the agent was a member before the grant.
	GroupPreExisting bool `json:"group_pre_existing,omitempty"`
}

// params are a grant's parsed parameters; zero means absent.
type params struct {
	role, group int64
}

// grantParams are the connector's grant parameters: at least one of them.
var grantParams = connectors.Params{
	{Key: ParamCustomRoleID, What: "the role's ID in Admin Center", Optional: true, Check: positiveID},
	{Key: ParamGroupID, What: "the group's ID in Admin Center", Optional: true, Check: positiveID},
}

func positiveID(v string) error {
	if n, err := strconv.ParseInt(v, 10, 64); err != nil || n <= 0 {
		return fmt.Errorf("must be a positive integer (the ID in Admin Center), not %q", v)
	}
	return nil
}

// errNoParam is the error for a role with neither parameter.
var errNoParam = fmt.Errorf("%s: required (or %s; set at least one)", ParamCustomRoleID, ParamGroupID)

func parseParams(op string, g access.Grant) (params, error) {
	v, err := grantParams.Read(op, g.Params)
	if err != nil {
		return params{}, err
	}
	var p params
	p.role, _ = strconv.ParseInt(v[ParamCustomRoleID], 10, 64)
	p.group, _ = strconv.ParseInt(v[ParamGroupID], 10, 64)
	if p.role == 0 && p.group == 0 {
		return p, access.PermanentError(fmt.Errorf("%s: grant parameter %w", op, errNoParam))
	}
	return p, nil
}

// CheckParams checks a role's grant parameters without contacting
// Zendesk: custom_role_id and group_id, at least one, each a positive
// integer. Unknown keys are errors, with a did-you-mean.
func (c *Connector) CheckParams(params map[string]string) error {
	err := grantParams.CheckParams(params)
	if strings.TrimSpace(params[ParamCustomRoleID]) == "" && strings.TrimSpace(params[ParamGroupID]) == "" {
		err = errors.Join(err, errNoParam)
	}
	return err
}

// Grant gives the agent the custom role and/or group membership and
// returns what it did (see the package comment). A failure after the role
// changed returns the partial receipt with the error.
//
// A repeat of a grant (the same ID, after a lost answer or a restart)
// acts on the agent its first attempt recorded (connectors.Intents) and
// counts what it finds as its own, not as pre-existing.
func (c *Connector) Grant(ctx context.Context, g access.Grant) (access.Receipt, error) {
	op := c.op("grant", g)
	p, err := parseParams(op, g)
	if err != nil {
		return access.Receipt{}, err
	}
	in, repeat, err := c.intents.Get(ctx, g.ID)
	if err != nil {
		return access.Receipt{}, err
	}
	sid := in.UserID
	if !repeat {
		if sid, err = c.users.ByEmail(ctx, op, g.User); err != nil {
			return access.Receipt{}, err
		}
	}
	u, id, unlock, err := c.lockUser(ctx, op, sid)
	if err != nil {
		return access.Receipt{}, err
	}
	defer unlock()
	switch {
	case u == nil && repeat:
		// Deleted between two attempts: whatever the first did is gone.
		c.intents.Forget(ctx, g.ID)
		return access.Receipt{}, access.PermanentError(fmt.Errorf("%s: Zendesk user %d, whom an earlier attempt of this grant acted on, no longer exists: %w", op, id, access.ErrUnknownUser))
	case u == nil:
		c.users.Forget(g.User)
		return access.Receipt{}, c.users.Unknown(op, g.User)
	case !u.agent():
		return access.Receipt{}, access.PermanentError(fmt.Errorf("%s: Zendesk user %d (%s) is an %s, not an agent", op, id, connectors.PersonName(g.User), u.Role))
	}
	s := grantState{c: c, op: op, g: g, u: u, repeat: repeat}
	s.rc.UserID = strconv.FormatInt(u.ID, 10)
	if p.role != 0 {
		if err := s.role(ctx, p.role); err != nil {
			return s.partial(ctx), err
		}
	}
	if p.group != 0 {
		if err := s.group(ctx, p.group); err != nil {
			return s.partial(ctx), err
		}
	}
	return s.receipt(p), nil
}

// lockUser takes the lock of Zendesk user sid and reads them (nil when
// Zendesk no longer has them). On success the caller must call unlock.
func (c *Connector) lockUser(ctx context.Context, op, sid string) (u *user, id int64, unlock func(), err error) {
	if id, err = parseUserID(op, sid); err != nil {
		return nil, 0, nil, err
	}
	if unlock, err = c.locks.Lock(ctx, id); err != nil {
		return nil, 0, nil, access.RetryableError(fmt.Errorf("%s: %w", op, err), 0)
	}
	if u, err = c.getUser(ctx, op, id); err != nil {
		unlock()
		return nil, 0, nil, err
	}
	return u, id, unlock, nil
}

func parseUserID(op, s string) (int64, error) {
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id <= 0 {
		return 0, access.PermanentError(fmt.Errorf("%s: %q is not a Zendesk user ID", op, s))
	}
	return id, nil
}

// grantState is one Grant call's progress: what it has changed so far.
type grantState struct {
	c      *Connector
	op     string
	g      access.Grant
	u      *user
	repeat bool // an earlier attempt of this grant recorded its intent
	rc     access.Receipt
	data   Data
	// recorded is set once this grant's intent is stored.
	recorded bool
	// uncertain is set when a change's outcome is unknown (no answer).
	uncertain bool
}

// record stores the grant's intent before its first change, so that a
// repeat knows the agent and that what it finds is its own.
func (s *grantState) record(ctx context.Context) error {
	if s.repeat || s.recorded {
		return nil
	}
	if err := s.c.intents.Record(ctx, s.g.ID, connectors.Intent{UserID: s.rc.UserID}); err != nil {
		return err
	}
	s.recorded = true
	return nil
}

func (s *grantState) role(ctx context.Context, role int64) error {
	c, op, u := s.c, s.op, s.u
	agentKey := agentKey(u.ID)
	rec, hasRec, err := c.load(ctx, op, agentKey)
	if err != nil {
		return err
	}
	ours := hasRec && rec.UserID == u.ID && rec.Granted == u.role() && u.role() != 0
	cur := u.role()
	switch {
	case cur == role && ours:
		// A live grant of accessbot's gave the agent this role (or this
		// grant's earlier attempt did): record the role from before it.
		s.rc.Previous, s.data.CustomRoleID = strconv.FormatInt(rec.Prev, 10), role
		return nil
	case cur == role:
		s.data.RolePreExisting = true
		return nil
	case cur == 0:
		return access.PermanentError(fmt.Errorf("%s: agent %d has no custom role that could be restored afterwards (custom roles need a Zendesk Enterprise plan)", op, u.ID))
	case ours:
		return access.PermanentError(fmt.Errorf("%s: agent %d already has temporary custom role %d from grant %s; a Zendesk agent has one role at a time, so end that grant first", op, u.ID, rec.Granted, rec.GrantID))
	}
	// Durable first: the records exist before the role changes.
	if err := s.record(ctx); err != nil {
		return err
	}
	if err := c.store(ctx, op, agentKey, roleRecord{UserID: u.ID, Prev: cur, Granted: role, GrantID: s.g.ID}); err != nil {
		return err
	}
	s.rc.Previous, s.data.CustomRoleID = strconv.FormatInt(cur, 10), role
	got, err := c.setRole(ctx, op, u.ID, role)
	switch {
	case err == nil && got == role:
		return nil
	case err == nil:
		c.forgetIf(ctx, op, u.ID, role)
		s.rc.Previous, s.data.CustomRoleID = "", 0
		return access.PermanentError(fmt.Errorf("%s: Zendesk accepted custom role %d for agent %d but kept %d (custom roles need a Zendesk Enterprise plan)", op, role, u.ID, got))
	}
	if class, _ := access.Classify(err); class == access.Permanent {
		// Refused (422: no such role, not an agent): nothing changed.
		c.forgetIf(ctx, op, u.ID, role)
		s.rc.Previous, s.data.CustomRoleID = "", 0
		return err
	}
	// No answer: the role may have changed. Look again.
	if now, lerr := c.getUser(ctx, op, u.ID); lerr == nil && now != nil && now.role() == role {
		return nil
	}
	s.uncertain = true
	return err
}

func (s *grantState) group(ctx context.Context, group int64) error {
	c, op, u := s.c, s.op, s.u
	s.data.GroupID = group
	m, err := c.groupMembership(ctx, op, u.ID, group)
	if err != nil {
		return err
	}
	switch {
	case m != nil && s.repeat:
		// Made by an earlier attempt of this grant.
		s.data.MembershipID = m.ID
		return nil
	case m != nil:
		s.data.GroupPreExisting = true
		return nil
	}
	if err := s.record(ctx); err != nil {
		return err
	}
	body := map[string]any{"group_membership": map[string]int64{"user_id": u.ID, "group_id": group}}
	var out struct {
		M groupMembership `json:"group_membership"`
	}
	status, perr := c.call(ctx, op, http.MethodPost, "/group_memberships.json", nil, body, &out, http.StatusUnprocessableEntity)
	switch {
	case perr == nil && status != http.StatusUnprocessableEntity && out.M.ID != 0:
		s.data.MembershipID = out.M.ID
		return nil
	case perr == nil && status == http.StatusUnprocessableEntity:
		// 422 is how Zendesk says "already a member" (someone else added
		// them meanwhile) but also "no such group" or "not an agent": look
		// again to tell them apart.
		m, err := c.groupMembership(ctx, op, u.ID, group)
		if err != nil {
			return err
		}
		if m != nil {
			s.data.GroupPreExisting = true
			return nil
		}
		return access.PermanentError(fmt.Errorf("%s: Zendesk refused to add the agent to group %d (422: check that the group exists and the user is an agent)", op, group))
	case perr != nil:
		if class, _ := access.Classify(perr); class == access.Permanent {
			return perr
		}
	}
	// No answer, or a 2xx without the membership: it may exist now.
	m, err = c.groupMembership(ctx, op, u.ID, group)
	if err == nil && m != nil {
		s.data.MembershipID = m.ID
		return nil
	}
	s.uncertain = true
	if perr == nil {
		perr = access.RetryableError(fmt.Errorf("%s: Zendesk answered the membership create without the membership", op), 0)
	}
	return perr
}

// receipt is the receipt of a grant that succeeded. A grant that changed
// nothing keeps no intent.
func (s *grantState) receipt(p params) access.Receipt {
	rc := s.rc
	rc.PreExisting = (p.role == 0 || s.data.RolePreExisting) && (p.group == 0 || s.data.GroupPreExisting)
	rc.Data, _ = json.Marshal(s.data)
	rc.Note = s.note()
	return rc
}

// partial is the receipt of a grant that failed: the zero receipt if
// nothing changed (and then the intent is forgotten), else what changed
// (or may have).
func (s *grantState) partial(ctx context.Context) access.Receipt {
	changed := s.data.CustomRoleID != 0 || s.data.MembershipID != 0 || s.uncertain
	if !changed {
		if s.recorded {
			s.c.intents.Forget(ctx, s.g.ID)
		}
		return access.Receipt{}
	}
	rc := s.rc
	rc.Data, _ = json.Marshal(s.data)
	rc.Note = s.note()
	if s.uncertain {
		rc.Note += " (the last change's outcome is unknown)"
	}
	return rc
}

func (s *grantState) note() string {
	var parts []string
	switch {
	case s.data.CustomRoleID != 0:
		parts = append(parts, fmt.Sprintf("custom role %s → %d", s.rc.Previous, s.data.CustomRoleID))
	case s.data.RolePreExisting:
		parts = append(parts, "already had the custom role")
	}
	switch {
	case s.data.MembershipID != 0:
		parts = append(parts, fmt.Sprintf("added to group %d (membership %d)", s.data.GroupID, s.data.MembershipID))
	case s.data.GroupPreExisting:
		parts = append(parts, fmt.Sprintf("already in group %d", s.data.GroupID))
	case s.data.GroupID != 0:
		parts = append(parts, fmt.Sprintf("group %d not added", s.data.GroupID))
	}
	return strings.Join(parts, "; ")
}

// Revoke undoes what g.Receipt says the grant did: it restores the
// previous custom role (unless the role was changed by hand since, or the
// agent is no longer an agent) and deletes the membership the grant
// created. A Zendesk user that no longer exists has no access left. A
// record without a receipt is revoked by email (see the package comment).
func (c *Connector) Revoke(ctx context.Context, g access.Grant) error {
	op := c.op("revoke", g)
	p, err := parseParams(op, g)
	if err != nil {
		return err
	}
	if g.Receipt == nil || g.Receipt.UserID == "" {
		if g.Receipt != nil {
			return nil // the grant changed nothing at Zendesk
		}
		return c.revokeLegacy(ctx, op, g, p)
	}
	var d Data
	if len(g.Receipt.Data) > 0 {
		if err := json.Unmarshal(g.Receipt.Data, &d); err != nil {
			return access.PermanentError(fmt.Errorf("%s: the grant's receipt is unreadable: %v", op, err))
		}
	}
	u, id, unlock, err := c.lockUser(ctx, op, g.Receipt.UserID)
	if err != nil {
		return err
	}
	defer unlock()
	if u == nil {
		// Deleted at Zendesk: no access is left.
		if err := c.forgetIf(ctx, op, id, d.CustomRoleID); err != nil {
			return err
		}
		c.intents.Forget(ctx, g.ID)
		return nil
	}
	if d.CustomRoleID != 0 && g.Receipt.Previous != "" {
		prev, err := strconv.ParseInt(g.Receipt.Previous, 10, 64)
		if err != nil || prev <= 0 {
			return access.PermanentError(fmt.Errorf("%s: the grant's receipt has no usable previous role (%q)", op, g.Receipt.Previous))
		}
		if err := c.restoreRole(ctx, op, u, d.CustomRoleID, prev); err != nil {
			return err
		}
	}
	switch {
	case d.MembershipID != 0:
		if err := c.deleteMembership(ctx, op, d.MembershipID); err != nil {
			return err
		}
	case d.GroupID != 0 && !d.GroupPreExisting && !g.Receipt.PreExisting:
		// A grant whose membership create got no answer (a partial
		// receipt): remove the membership if it was made.
		if err := c.leaveGroup(ctx, op, u.ID, d.GroupID); err != nil {
			return err
		}
	}
	c.intents.Forget(ctx, g.ID)
	return nil
}

// restoreRole puts prev back if the agent still has the granted role, then
// forgets the agent record about it.
func (c *Connector) restoreRole(ctx context.Context, op string, u *user, granted, prev int64) error {
	if u.agent() && u.role() == granted && granted != prev {
		if _, err := c.setRole(ctx, op, u.ID, prev); err != nil {
			return err
		}
	}
	// Restored, or the role is no longer ours (changed by hand, or the
	// agent became an end user): leave it alone and forget.
	return c.forgetIf(ctx, op, u.ID, granted)
}

// revokeLegacy revokes a record granted before receipts existed: the
// person is found by email (nobody found is a permanent ErrUnknownUser:
// their email may have changed while the access is still live), the
// previous role comes from the prev-role record kept then (or the agent
// record, when it is about the granted role), and the group membership is
// looked up.
func (c *Connector) revokeLegacy(ctx context.Context, op string, g access.Grant, p params) error {
	sid, err := c.users.ForRevoke(ctx, op, g)
	if err != nil {
		return err
	}
	u, id, unlock, err := c.lockUser(ctx, op, sid)
	if err != nil {
		return err
	}
	defer unlock()
	if u == nil {
		// Found by email a moment ago (or cached), gone now: look again.
		c.users.Forget(g.User)
		return access.RetryableError(fmt.Errorf("%s: Zendesk user %d vanished while being revoked", op, id), 0)
	}
	if p.role != 0 {
		rec, ok, err := c.load(ctx, op, "prev-role/"+g.ID)
		if err != nil {
			return err
		}
		if !ok {
			// No grant record: the agent record, if it is about this
			// role, still knows what the role replaced.
			if rec, ok, err = c.load(ctx, op, agentKey(u.ID)); err != nil {
				return err
			}
			ok = ok && rec.Granted == p.role
		}
		// No record at all: the grant never changed the role (the records
		// are written before the change), or this revoke already finished.
		if ok && rec.UserID == u.ID {
			if err := c.restoreRole(ctx, op, u, rec.Granted, rec.Prev); err != nil {
				return err
			}
		}
		if err := c.forget(ctx, op, "prev-role/"+g.ID); err != nil {
			return err
		}
	}
	if p.group != 0 {
		if err := c.leaveGroup(ctx, op, u.ID, p.group); err != nil {
			return err
		}
	}
	c.intents.Forget(ctx, g.ID)
	return nil
}

// leaveGroup deletes the user's membership of group, if any.
func (c *Connector) leaveGroup(ctx context.Context, op string, userID, group int64) error {
	m, err := c.groupMembership(ctx, op, userID, group)
	if err != nil || m == nil {
		return err
	}
	return c.deleteMembership(ctx, op, m.ID)
}

// Check reports whether the agent has everything the grant gives; with a
// receipt it looks at the receipt's user, else it finds them by email.
func (c *Connector) Check(ctx context.Context, g access.Grant) (bool, error) {
	op := c.op("check", g)
	p, err := parseParams(op, g)
	if err != nil {
		return false, err
	}
	var sid string
	if g.Receipt != nil && g.Receipt.UserID != "" {
		sid = g.Receipt.UserID
	} else if sid, err = c.users.ByEmail(ctx, op, g.User); errors.Is(err, access.ErrUnknownUser) {
		return false, nil
	} else if err != nil {
		return false, err
	}
	id, err := parseUserID(op, sid)
	if err != nil {
		return false, err
	}
	u, err := c.getUser(ctx, op, id)
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
	return connectors.Op("zendesk", c.name, verb, g)
}

func agentKey(userID int64) string { return "agent/" + strconv.FormatInt(userID, 10) }

// setRole sets the agent's custom role and returns the role Zendesk
// answers the user with.
func (c *Connector) setRole(ctx context.Context, op string, userID, role int64) (int64, error) {
	body := map[string]any{"user": map[string]int64{"custom_role_id": role}}
	var out struct {
		User user `json:"user"`
	}
	if _, err := c.call(ctx, op, http.MethodPut, "/users/"+strconv.FormatInt(userID, 10)+".json", nil, body, &out); err != nil {
		return 0, err
	}
	return out.User.role(), nil
}

func (c *Connector) deleteMembership(ctx context.Context, op string, id int64) error {
	_, err := c.call(ctx, op, http.MethodDelete, "/group_memberships/"+strconv.FormatInt(id, 10)+".json", nil, nil, nil, http.StatusNotFound)
	return err
}

// getUser returns user id, or nil when Zendesk no longer has it (404).
func (c *Connector) getUser(ctx context.Context, op string, id int64) (*user, error) {
	var out struct {
		User user `json:"user"`
	}
	status, err := c.call(ctx, op, http.MethodGet, "/users/"+strconv.FormatInt(id, 10)+".json", nil, nil, &out, http.StatusNotFound)
	if err != nil || status == http.StatusNotFound {
		return nil, err
	}
	if out.User.ID != id {
		return nil, access.RetryableError(fmt.Errorf("%s: Zendesk answered user %d with user %d", op, id, out.User.ID), 0)
	}
	return &out.User, nil
}

// lookup finds the Zendesk user ID of the agent whose email is exactly
// email (case-insensitive), or "" (connectors.Users).
func (c *Connector) lookup(ctx context.Context, op, email string) (string, error) {
	var out struct {
		Users []user `json:"users"`
	}
	q := url.Values{"query": {"email:" + email}}
	if _, err := c.call(ctx, op, http.MethodGet, "/users/search.json", q, nil, &out); err != nil {
		return "", err
	}
	for i := range out.Users {
		if strings.EqualFold(out.Users[i].Email, email) {
			return strconv.FormatInt(out.Users[i].ID, 10), nil
		}
	}
	return "", nil
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

// forgetIf deletes the agent record of userID if it is about the
// temporary role granted (0: nothing to forget), and the intent of the
// grant that first gave the role: an overlapping grant of the same role
// that ended covered by this one was never revoked itself, and its record
// must not outlive the role.
func (c *Connector) forgetIf(ctx context.Context, op string, userID, granted int64) error {
	if granted == 0 {
		return nil
	}
	rec, ok, err := c.load(ctx, op, agentKey(userID))
	if err != nil || !ok || rec.Granted != granted {
		return err
	}
	if err := c.forget(ctx, op, agentKey(userID)); err != nil {
		return err
	}
	if rec.GrantID != "" {
		c.intents.Forget(ctx, rec.GrantID)
	}
	return nil
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

// call sends one request through the connector's API (Basic
// credentials, timeout). A 2xx answer is decoded into out when out is
// non-nil; a status listed in accept returns that status and no error;
// anything else is classified by connectors.Classify.
func (c *Connector) call(ctx context.Context, op, method, path string, q url.Values, body, out any, accept ...int) (int, error) {
	return c.api.Send(ctx, connectors.JSONCall{
		Op: op, Method: method, Path: path, Query: q, Body: body, Accept: accept, Out: out,
	})
}
