// Package metabase is the `metabase_group` connector: it grants access by
// adding a Metabase user to a permission group and revokes it by removing
// that membership.
//
// API, as documented by Metabase (the API is unversioned; these endpoints
// have been stable since v0.3x) and as its source implements it
// (src/metabase/api/permissions.clj, src/metabase/api/user.clj,
// src/metabase/models/permissions_group_membership.clj):
//
//   - authentication: an API key sent in the `x-api-key` header (Metabase
//     49+, https://www.metabase.com/docs/latest/people-and-groups/api-keys);
//     a missing, revoked or wrong key answers 401 "Unauthenticated"; a key
//     outside the Administrators group answers 403;
//   - users: GET /api/user?query=… matches name and email; recent versions
//     answer {"data":[…],"total":…}, older ones a bare array; status=all
//     includes deactivated users; GET /api/user/:id answers one user with
//     is_active (https://www.metabase.com/docs/latest/api/user). Metabase
//     never deletes users: "deleting" one deactivates it and keeps its
//     group memberships;
//   - groups and memberships: GET /api/permissions/group/:id (404
//     "Not found."); GET /api/permissions/membership answers a map
//     {"<user-id>":[{"membership_id":…,"group_id":…,"user_id":…}]}; POST
//     /api/permissions/membership {"group_id":G,"user_id":U} adds one and
//     answers the group's members, each with its membership_id; DELETE
//     /api/permissions/membership/:id removes one (204; 404 "Not found.")
//     (https://www.metabase.com/docs/latest/api/permissions). The "All
//     Users" group refuses both with 400, and removing the last
//     administrator is refused with 400. The POST has no duplicate or
//     group check of its own: a duplicate or an unknown group fails in the
//     database (unique and foreign key constraints), which surfaces as an
//     error that says nothing useful, so the connector checks both itself.
//
// # Receipts
//
// A grant's receipt holds the Metabase user ID and, in Data, the ID of the
// membership it created. The revoke deletes that membership by its ID; it
// never looks the person up again. A membership that existed before the
// grant is reported as PreExisting. A repeat of a grant (the same request
// ID) counts the membership it finds as its own (connectors.Intents).
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

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/connectors"
)

// Type is the connector type this package registers.
const Type = "metabase_group"

// ParamGroupID is the grant parameter naming the permission group (its
// numeric ID, as in the admin URL /admin/people/groups/ID).
const ParamGroupID = "group_id"

// allUsersGroup is the built-in group every user is in; Metabase refuses
// to add or remove its members.
const allUsersGroup = 1

// Config is the `connectors.NAME` block of a metabase_group connector.
type Config struct {
	// URL is the Metabase site, e.g. https://metabase.example.com.
	// Required.
	URL string `json:"url"`
	// APIKey is the API key; or APIKeyFile names a file holding it.
	// Exactly one is required.
	APIKey     connectors.Redacted `json:"api_key"`
	APIKeyFile string              `json:"api_key_file"`
	connectors.Timeout
}

// Validate checks c; errors name keys relative to the block and never
// contain the key.
func (c *Config) Validate() error {
	var errs []error
	if c.URL == "" {
		errs = append(errs, errors.New("url: required"))
	} else if err := connectors.CheckBaseURL(c.URL); err != nil {
		errs = append(errs, fmt.Errorf("url: %w", err))
	}
	if c.APIKey == "" && c.APIKeyFile == "" {
		errs = append(errs, errors.New("api_key: required (or api_key_file)"))
	}
	if c.Timeout.Timeout < 0 {
		errs = append(errs, errors.New("timeout: must be positive"))
	}
	return errors.Join(errs...)
}

// Connector manages Metabase group memberships. It is safe for concurrent
// use.
type Connector struct {
	name    string
	api     *connectors.API
	users   *connectors.Users
	intents *connectors.Intents
}

var (
	_ access.Connector     = (*Connector)(nil)
	_ access.Checker       = (*Connector)(nil)
	_ access.ParamsChecker = (*Connector)(nil)
	_ connectors.Factory   = Factory
)

// Factory builds a metabase_group connector from its configuration block.
// It needs durable State (Env.State) for the records of the grants it
// started (connectors.Intents).
func Factory(name string, cfg connectors.Config) (access.Connector, error) {
	var c Config
	if err := cfg.DecodeStateful(&c); err != nil {
		return nil, err
	}
	key, err := cfg.Secret("api_key")
	if err != nil {
		return nil, err
	}
	base := connectors.TrimBase(c.URL)
	m := &Connector{
		name: name, intents: connectors.NewIntents(cfg.State),
		api: &connectors.API{Base: base, HTTP: cfg.HTTP, Timeout: c.Attempt(), Header: http.Header{"X-Api-Key": {key}}},
	}
	m.users = connectors.NewUsers(cfg.Clock, "Metabase "+base, m.lookup)
	return m, nil
}

// user is the part of a Metabase user we read.
type user struct {
	ID       int    `json:"id"`
	Email    string `json:"email"`
	IsActive bool   `json:"is_active"`
}

// membership is one entry of GET /api/permissions/membership.
type membership struct {
	MembershipID int `json:"membership_id"`
	GroupID      int `json:"group_id"`
	UserID       int `json:"user_id"`
}

// Data is the connector-specific part of a grant's receipt
// (access.Receipt.Data, JSON).
type Data struct {
	GroupID int `json:"group_id"`
	// MembershipID is the membership the grant created (or found, when
	// pre-existing); 0 when a create's answer was lost.
	MembershipID int `json:"membership_id,omitempty"`
}

var grantParams = connectors.Params{{
	Key: ParamGroupID, What: "Admin → People → Groups → the number in the URL",
	Check: func(v string) error {
		n, err := strconv.Atoi(v)
		switch {
		case err != nil || n <= 0:
			return fmt.Errorf("must be a positive integer (the group's number), not %q", v)
		case n == allUsersGroup:
			return errors.New(`1 is the "All Users" group, which everyone is in and Metabase does not let anyone join or leave`)
		}
		return nil
	},
}}

// CheckParams checks a role's grant parameters without contacting
// Metabase: exactly group_id, required, a positive integer other than the
// All Users group. Unknown keys are errors, with a did-you-mean.
func (c *Connector) CheckParams(params map[string]string) error {
	return grantParams.CheckParams(params)
}

func groupParam(op string, g access.Grant) (int, error) {
	v, err := grantParams.Get(op, g.Params, ParamGroupID)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(v)
}

func userID(op, s string) (int, error) {
	id, err := strconv.Atoi(s)
	if err != nil || id <= 0 {
		return 0, access.PermanentError(fmt.Errorf("%s: %q is not a Metabase user ID", op, s))
	}
	return id, nil
}

// Grant adds the person to the group and returns the receipt (see the
// package comment). A deactivated user is refused.
func (c *Connector) Grant(ctx context.Context, g access.Grant) (access.Receipt, error) {
	op := c.op("grant", g)
	group, err := groupParam(op, g)
	if err != nil {
		return access.Receipt{}, err
	}
	return connectors.GrantMembership(ctx, c.intents, g, connectors.Member{
		Find: func(ctx context.Context) (connectors.Intent, bool, error) {
			uid, err := c.users.ByEmail(ctx, op, g.User)
			if err != nil {
				return connectors.Intent{}, false, err
			}
			id, err := userID(op, uid)
			if err != nil {
				return connectors.Intent{}, false, err
			}
			u, err := c.getUser(ctx, op, id)
			switch {
			case err != nil:
				return connectors.Intent{}, false, err
			case u == nil:
				c.users.Forget(g.User)
				return connectors.Intent{}, false, c.users.Unknown(op, g.User)
			case !u.IsActive:
				return connectors.Intent{}, false, access.PermanentError(fmt.Errorf("%s: Metabase user %d is deactivated", op, id))
			}
			if err := c.checkGroup(ctx, op, group); err != nil {
				return connectors.Intent{}, false, err
			}
			m, err := c.membership(ctx, op, id, group)
			return connectors.Intent{UserID: uid}, m != nil, err
		},
		Add: func(ctx context.Context, in connectors.Intent) (access.Receipt, error) {
			id, err := userID(op, in.UserID)
			if err != nil {
				return access.Receipt{}, err
			}
			return c.add(ctx, op, id, group)
		},
	}, "")
}

// add makes user id a member of group; already a member (a repeat, or a
// concurrent add) is success, and its membership ID goes in the receipt.
func (c *Connector) add(ctx context.Context, op string, id, group int) (access.Receipt, error) {
	done := func(mid int) (access.Receipt, error) {
		d, _ := json.Marshal(Data{GroupID: group, MembershipID: mid})
		return access.Receipt{Data: d, Note: fmt.Sprintf("added to group %d (membership %d)", group, mid)}, nil
	}
	var members []membership
	_, perr := c.call(ctx, op, http.MethodPost, "/api/permissions/membership", nil, map[string]int{"group_id": group, "user_id": id}, &members)
	if perr == nil {
		for _, m := range members {
			if m.UserID == id && m.MembershipID != 0 {
				return done(m.MembershipID)
			}
		}
	}
	if class, _ := access.Classify(perr); perr != nil && class == access.Permanent {
		return access.Receipt{}, perr // refused: nothing was created
	}
	// No answer, a 5xx (a duplicate or a foreign key violation surfaces as
	// one), or members without ours: look.
	m, err := c.membership(ctx, op, id, group)
	if err == nil && m != nil {
		return done(m.MembershipID)
	}
	if err == nil {
		if gerr := c.checkGroup(ctx, op, group); gerr != nil {
			return access.Receipt{}, gerr
		}
	}
	if perr == nil {
		perr = access.RetryableError(fmt.Errorf("%s: Metabase answered the membership create without the membership", op), 0)
	}
	d, _ := json.Marshal(Data{GroupID: group})
	return access.Receipt{Data: d, Note: fmt.Sprintf("the membership of group %d may have been created (no clear answer); a rollback removes it", group)}, perr
}

// Revoke deletes the membership g.Receipt names; a 404 (removed
// meanwhile) is done. Without the membership's ID (a lost create) it looks
// the membership up by the receipt's user. A record without a receipt
// finds the user by email: nobody found is a permanent error wrapping
// access.ErrUnknownUser. Deactivated users are included, so that a later
// reactivation does not bring the access back.
func (c *Connector) Revoke(ctx context.Context, g access.Grant) error {
	op := c.op("revoke", g)
	group, err := groupParam(op, g)
	if err != nil {
		return err
	}
	var d Data
	if g.Receipt != nil && len(g.Receipt.Data) > 0 {
		if err := json.Unmarshal(g.Receipt.Data, &d); err != nil {
			return access.PermanentError(fmt.Errorf("%s: the grant's receipt is unreadable: %v", op, err))
		}
	}
	mid := d.MembershipID
	if mid == 0 {
		if g.Receipt != nil && g.Receipt.UserID == "" {
			return nil // the grant changed nothing
		}
		uid, err := c.users.ForRevoke(ctx, op, g)
		if err != nil {
			return err
		}
		id, err := userID(op, uid)
		if err != nil {
			return err
		}
		m, err := c.membership(ctx, op, id, group)
		if err != nil {
			return err
		}
		if m == nil {
			c.intents.Forget(ctx, g.ID)
			return nil
		}
		mid = m.MembershipID
	}
	if _, err := c.call(ctx, op, http.MethodDelete, "/api/permissions/membership/"+strconv.Itoa(mid), nil, nil, nil, http.StatusNotFound); err != nil {
		return err
	}
	c.intents.Forget(ctx, g.ID)
	return nil
}

// Check reports whether the person (the receipt's user, or found by email)
// is a member of the group.
func (c *Connector) Check(ctx context.Context, g access.Grant) (bool, error) {
	op := c.op("check", g)
	group, err := groupParam(op, g)
	if err != nil {
		return false, err
	}
	uid, err := c.users.ForRevoke(ctx, op, g)
	if errors.Is(err, access.ErrUnknownUser) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	id, err := userID(op, uid)
	if err != nil {
		return false, err
	}
	m, err := c.membership(ctx, op, id, group)
	return m != nil, err
}

func (c *Connector) op(verb string, g access.Grant) string {
	return connectors.Op("metabase", c.name, verb, g)
}

// lookup finds the user whose email is exactly email (case-insensitive),
// deactivated ones included (connectors.Users). The search also matches
// names and partial emails, hence the exact comparison.
func (c *Connector) lookup(ctx context.Context, op, email string) (string, error) {
	var raw json.RawMessage
	if _, err := c.call(ctx, op, http.MethodGet, "/api/user", url.Values{"query": {email}, "status": {"all"}}, nil, &raw); err != nil {
		return "", err
	}
	var users []user
	trimmed := bytes.TrimSpace(raw)
	if len(trimmed) > 0 && trimmed[0] == '[' {
		if err := json.Unmarshal(trimmed, &users); err != nil {
			return "", badAnswer(op, "user search", err)
		}
	} else {
		var page struct {
			Data []user `json:"data"`
		}
		if err := json.Unmarshal(trimmed, &page); err != nil {
			return "", badAnswer(op, "user search", err)
		}
		users = page.Data
	}
	found := ""
	for _, u := range users {
		if strings.EqualFold(u.Email, email) && (found == "" || u.IsActive) {
			found = strconv.Itoa(u.ID)
		}
	}
	return found, nil
}

// getUser returns user id, or nil if Metabase has none (404).
func (c *Connector) getUser(ctx context.Context, op string, id int) (*user, error) {
	var u user
	status, err := c.call(ctx, op, http.MethodGet, "/api/user/"+strconv.Itoa(id), nil, nil, &u, http.StatusNotFound)
	if err != nil || status == http.StatusNotFound {
		return nil, err
	}
	return &u, nil
}

// checkGroup refuses a group Metabase does not have.
func (c *Connector) checkGroup(ctx context.Context, op string, group int) error {
	status, err := c.call(ctx, op, http.MethodGet, "/api/permissions/group/"+strconv.Itoa(group), nil, nil, nil, http.StatusNotFound)
	if err == nil && status == http.StatusNotFound {
		return access.PermanentError(fmt.Errorf("%s: grant parameter %s: Metabase has no group %d", op, ParamGroupID, group))
	}
	return err
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

// call sends one request through the connector's API (the x-api-key
// header, timeout). A 2xx answer is decoded into out when out is non-nil;
// a status listed in accept returns that status and no error; anything
// else is classified by connectors.Classify.
func (c *Connector) call(ctx context.Context, op, method, path string, q url.Values, body, out any, accept ...int) (int, error) {
	return c.api.Send(ctx, connectors.JSONCall{
		Op: op, Method: method, Path: path, Query: q, Body: body, Accept: accept, Out: out, MaxBody: 32 << 20,
		BadAnswer: func(err error) error { return badAnswer(op, method+" "+path, err) },
	})
}
