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
//     .../methods/ApiAuth/login); bad credentials answer 404;
//   - users: GET /api/4.0/users/search?email=… answers an array of users
//     (.../methods/User/search_users; % and _ are wildcards); GET
//     /api/4.0/users/{id} answers one, or 404 once it is deleted
//     (.../methods/User/user);
//   - roles: GET /api/4.0/users/{id}/roles answers the user's roles, those
//     given through groups included unless direct_association_only=true
//     ("Get only roles associated directly with the user: exclude those
//     only associated through groups", .../methods/User/user_roles; 400,
//     404, 429 documented); PUT /api/4.0/users/{id}/roles with the full
//     array of role IDs replaces the direct roles and answers "Roles of
//     user" (.../methods/User/set_user_roles), which may include roles held
//     through groups: so the result is verified by reading the direct
//     roles again, never from that answer. IDs are strings in API 4.0.
//
// Because PUT replaces the whole list, a grant or revoke is a
// read-modify-write: it runs under an in-process per-user lock, so
// concurrent grants and revokes for one user never drop each other's role.
// Only direct roles are read and written, so roles a user has through a
// group are never turned into direct ones, nor removed.
//
// # Receipts
//
// A grant's receipt holds the Looker user ID and, in Previous, the user's
// direct roles before the grant (for the audit log). The revoke removes the
// granted role from that user's direct roles, acting on the receipt's user
// ID alone; roles added by hand since are kept. A role the user already
// held directly is reported as PreExisting. A repeat of a grant (the same
// request ID) counts the role it finds as its own (connectors.Intents).
package looker

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/connectors"
)

// Type is the connector type this package registers.
const Type = "looker_role"

// ParamRoleID is the grant parameter naming the Looker role (its ID, as
// in Admin → Roles → the role's URL).
const ParamRoleID = "role_id"

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
	connectors.Timeout
}

// Validate checks c; errors name keys relative to the block and never
// contain the secret.
func (c *Config) Validate() error {
	var errs []error
	if c.URL == "" {
		errs = append(errs, errors.New("url: required"))
	} else if err := connectors.CheckBaseURL(c.URL); err != nil {
		errs = append(errs, fmt.Errorf("url: %w", err))
	}
	if c.ClientID == "" {
		errs = append(errs, errors.New("client_id: required"))
	}
	if c.ClientSecret == "" && c.ClientSecretFile == "" {
		errs = append(errs, errors.New("client_secret: required (or client_secret_file)"))
	}
	if c.Timeout.Timeout < 0 {
		errs = append(errs, errors.New("timeout: must be positive"))
	}
	return errors.Join(errs...)
}

// Connector manages Looker users' roles. It is safe for concurrent use.
type Connector struct {
	name    string
	api     *connectors.API // …/api/4.0, bearer token from /login
	users   *connectors.Users
	intents *connectors.Intents
	// locks serialises work per Looker user ID: setting a user's roles
	// replaces the whole list, so a grant and a revoke for one user must
	// not interleave their read and write.
	locks connectors.KeyedMutex[string]
}

var (
	_ access.Connector     = (*Connector)(nil)
	_ access.Checker       = (*Connector)(nil)
	_ access.ParamsChecker = (*Connector)(nil)
	_ connectors.Factory   = Factory
)

// Factory builds a looker_role connector from its configuration block. It
// needs durable State (Env.State) for the records of the grants it started
// (connectors.Intents).
func Factory(name string, cfg connectors.Config) (access.Connector, error) {
	var c Config
	if err := cfg.DecodeStateful(&c); err != nil {
		return nil, err
	}
	secret, err := cfg.Secret("client_secret")
	if err != nil {
		return nil, err
	}
	api := connectors.TrimBase(c.URL) + "/api/4.0"
	l := &Connector{
		name: name, intents: connectors.NewIntents(cfg.State),
		api: &connectors.API{
			Base: api, HTTP: cfg.HTTP, Timeout: c.Attempt(),
			// Logging in has no side effect at Looker beyond issuing a
			// token; it answers 404 to bad credentials.
			Auth: &connectors.ClientCredentials{
				Name: "looker " + name + ": login", TokenURL: api + "/login", HTTP: cfg.HTTP, Clock: cfg.Clock,
				Form: func(time.Time) (url.Values, error) {
					return url.Values{"client_id": {c.ClientID}, "client_secret": {secret}}, nil
				},
				Who: "Looker", Hint: "check the API3 client ID and secret, and that their user is not disabled",
			},
		},
	}
	l.users = connectors.NewUsers(cfg.Clock, "Looker "+connectors.TrimBase(c.URL), l.lookup)
	return l, nil
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

var grantParams = connectors.Params{{
	Key: ParamRoleID, What: "Admin → Roles → the role's ID",
	Check: func(v string) error {
		if n, err := strconv.ParseInt(v, 10, 64); err != nil || n <= 0 {
			return fmt.Errorf("must be a positive integer (the role's ID), not %q", v)
		}
		return nil
	},
}}

// CheckParams checks a role's grant parameters without contacting
// Looker: exactly role_id, required, a positive integer. Unknown keys are
// errors, with a did-you-mean.
func (c *Connector) CheckParams(params map[string]string) error {
	return grantParams.CheckParams(params)
}

// Grant adds the role to the user's direct roles and returns the receipt
// (see the package comment). A disabled user is refused.
func (c *Connector) Grant(ctx context.Context, g access.Grant) (access.Receipt, error) {
	op := c.op("grant", g)
	roleID, err := grantParams.Get(op, g.Params, ParamRoleID)
	if err != nil {
		return access.Receipt{}, err
	}
	return connectors.GrantMembership(ctx, c.intents, g, connectors.Member{
		Find: func(ctx context.Context) (connectors.Intent, bool, error) {
			id, err := c.users.ByEmail(ctx, op, g.User)
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
			case u.IsDisabled:
				return connectors.Intent{}, false, access.PermanentError(fmt.Errorf("%s: Looker user %s is disabled", op, id))
			}
			ids, found, err := c.directRoles(ctx, op, id)
			if err == nil && !found {
				err = c.users.Unknown(op, g.User)
			}
			return connectors.Intent{UserID: id}, slices.Contains(ids, roleID), err
		},
		Add: func(ctx context.Context, in connectors.Intent) (access.Receipt, error) {
			var before []string
			_, err := c.modify(ctx, op, in.UserID, func(ids []string) []string {
				before = slices.Clone(ids)
				if slices.Contains(ids, roleID) {
					return nil
				}
				return append(ids, roleID)
			}, func(ids []string) bool { return slices.Contains(ids, roleID) })
			if err != nil {
				return access.Receipt{}, err
			}
			prev := slices.DeleteFunc(before, func(id string) bool { return id == roleID })
			slices.Sort(prev)
			return access.Receipt{
				Previous: strings.Join(prev, ","),
				Note:     fmt.Sprintf("role %s added to the user's direct roles (%d before)", roleID, len(prev)),
			}, nil
		},
	}, "")
}

// Revoke removes the role from the direct roles of the receipt's user
// (or, for a record without a receipt, the user found by email: nobody
// found is a permanent error wrapping access.ErrUnknownUser). A user
// Looker no longer has, or a role not held directly (a role held only
// through a group was never this grant's), is done.
func (c *Connector) Revoke(ctx context.Context, g access.Grant) error {
	op := c.op("revoke", g)
	roleID, err := grantParams.Get(op, g.Params, ParamRoleID)
	if err != nil {
		return err
	}
	if g.Receipt != nil && g.Receipt.UserID == "" {
		return nil // the grant changed nothing
	}
	id, err := c.users.ForRevoke(ctx, op, g)
	if err != nil {
		return err
	}
	found, err := c.modify(ctx, op, id, func(ids []string) []string {
		if !slices.Contains(ids, roleID) {
			return nil
		}
		return slices.DeleteFunc(ids, func(id string) bool { return id == roleID })
	}, func(ids []string) bool { return !slices.Contains(ids, roleID) })
	if err != nil {
		return err
	}
	if !found && g.Receipt == nil {
		// Found by email a moment ago, gone now: look again next time.
		c.users.Forget(g.User)
	}
	c.intents.Forget(ctx, g.ID)
	return nil
}

// Check reports whether the user (the receipt's, or found by email) holds
// the role directly.
func (c *Connector) Check(ctx context.Context, g access.Grant) (bool, error) {
	op := c.op("check", g)
	roleID, err := grantParams.Get(op, g.Params, ParamRoleID)
	if err != nil {
		return false, err
	}
	id, err := c.users.ForRevoke(ctx, op, g)
	if errors.Is(err, access.ErrUnknownUser) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	ids, _, err := c.directRoles(ctx, op, id)
	return slices.Contains(ids, roleID), err
}

// modify is the serialised read-modify-write of a user's direct roles.
// change returns the new list, or nil when nothing needs to change; done
// checks the direct roles read back after the PUT. found is false when
// Looker has no such user (404), and then nothing is done.
func (c *Connector) modify(ctx context.Context, op, userID string, change func([]string) []string, done func([]string) bool) (found bool, err error) {
	unlock, err := c.locks.Lock(ctx, userID)
	if err != nil {
		return false, access.RetryableError(fmt.Errorf("%s: %w", op, err), 0)
	}
	defer unlock()
	ids, found, err := c.directRoles(ctx, op, userID)
	if err != nil || !found {
		return found, err
	}
	next := change(ids)
	if next == nil {
		return true, nil
	}
	// The answer lists the user's roles, group roles included: it is not
	// what was set. Read the direct roles back instead.
	if _, perr := c.call(ctx, op, http.MethodPut, "/users/"+url.PathEscape(userID)+"/roles", nil, next, nil); perr != nil {
		if class, _ := access.Classify(perr); class == access.Permanent {
			return true, perr
		}
		// No answer: the change may have been made; look.
		if got, _, err := c.directRoles(ctx, op, userID); err == nil && done(got) {
			return true, nil
		}
		return true, perr
	}
	got, _, err := c.directRoles(ctx, op, userID)
	if err != nil {
		return true, err
	}
	if !done(got) {
		return true, access.RetryableError(fmt.Errorf("%s: Looker accepted the role update, but the user's direct roles do not reflect it", op), 0)
	}
	return true, nil
}

// directRoles returns the roles given to the user directly; found is false
// when Looker has no such user.
func (c *Connector) directRoles(ctx context.Context, op, userID string) (ids []string, found bool, err error) {
	var rs []role
	q := url.Values{"direct_association_only": {"true"}, "fields": {"id,name"}}
	status, err := c.call(ctx, op, http.MethodGet, "/users/"+url.PathEscape(userID)+"/roles", q, nil, &rs, http.StatusNotFound)
	if err != nil || status == http.StatusNotFound {
		return nil, false, err
	}
	ids = make([]string, 0, len(rs)+1)
	for _, r := range rs {
		ids = append(ids, r.ID)
	}
	return ids, true, nil
}

// getUser returns user id, or nil if Looker has none (404).
func (c *Connector) getUser(ctx context.Context, op, id string) (*user, error) {
	var u user
	status, err := c.call(ctx, op, http.MethodGet, "/users/"+url.PathEscape(id), url.Values{"fields": {"id,email,is_disabled"}}, nil, &u, http.StatusNotFound)
	if err != nil || status == http.StatusNotFound {
		return nil, err
	}
	return &u, nil
}

// lookup finds the user whose email is exactly email (case-insensitive)
// (connectors.Users). The search treats % and _ as wildcards, hence the
// exact comparison.
func (c *Connector) lookup(ctx context.Context, op, email string) (string, error) {
	var us []user
	q := url.Values{"email": {email}, "fields": {"id,email,is_disabled"}}
	if _, err := c.call(ctx, op, http.MethodGet, "/users/search", q, nil, &us); err != nil {
		return "", err
	}
	for _, u := range us {
		if strings.EqualFold(u.Email, email) {
			return u.ID, nil
		}
	}
	return "", nil
}

func (c *Connector) op(verb string, g access.Grant) string {
	return connectors.Op("looker", c.name, verb, g)
}

// call sends one API request with a token (logging in again once if the
// token is refused). A 2xx answer is decoded into out when out is non-nil;
// a status listed in accept returns that status and no error; anything
// else is classified by connectors.Classify.
func (c *Connector) call(ctx context.Context, op, method, path string, q url.Values, body, out any, accept ...int) (int, error) {
	return c.api.Send(ctx, connectors.JSONCall{
		Op: op, Method: method, Path: path, Query: q, Body: body, Accept: accept, Out: out,
	})
}
