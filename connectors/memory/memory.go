// Package memory is an in-memory access.Connector for tests and for
// `accessbot demo`: it keeps memberships in a map, counts calls, and can be
// told to fail. It passes the conformance suite.
//
// The target has users of its own. By default a person's target-side user
// ID is their Slack ID, as for Slack-native targets, and everyone is known
// (SetKnown restricts that). After AddUser the target resolves people by
// email instead, the way most SaaS targets do: then an email that changes
// between grant and revoke (SetEmail) is what the receipt protects against
// (DESIGN.md §4 invariant 8).
//
// Grants return real receipts: UserID is the target-side user ID,
// PreExisting is set when the membership was already there. Revoke acts on
// the receipt's user ID; only a record without a receipt is resolved by
// Slack ID or email, and then an unknown person is a permanent error
// wrapping access.ErrUnknownUser.
package memory

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/connectors"
)

// Connector is an in-memory target system plus its connector. An
// entitlement is (grant parameters, target user ID). It is safe for
// concurrent use; the zero value is not usable, call New.
type Connector struct {
	mu      sync.Mutex
	members map[string]map[string]bool // ParamsKey → target user IDs
	known   map[string]bool            // Slack-ID mode: nil means everyone is known
	emails  map[string]string          // email mode: user ID → email; nil in Slack-ID mode
	// granted maps the grants that added a membership (by grant ID) to
	// the user they acted on, until revoked: a repeated Grant (same ID)
	// is the same grant, not pre-existing access. Being in memory is
	// fine: the target itself is in memory.
	granted map[string]string
	counts  Counts
	failN   int
	failErr error
	// failSecondN grants apply the membership and then fail with
	// failSecondErr, as a two-call grant whose second call fails.
	failSecondN   int
	failSecondErr error
	hook          func(ctx context.Context, op string, g access.Grant) error
}

var (
	_ access.Connector     = (*Connector)(nil)
	_ access.Checker       = (*Connector)(nil)
	_ access.ParamsChecker = (*Connector)(nil)
)

// Counts are the calls a Connector received, failed ones included.
type Counts struct {
	Grant, Revoke, Check int
}

// Operation names passed to the hook.
const (
	OpGrant  = "grant"
	OpRevoke = "revoke"
	OpCheck  = "check"
)

// Receipt notes, for the audit log.
const (
	NoteAdded       = "membership added"
	NotePreExisting = "membership already existed"
)

// New returns an empty Connector that knows every person, by Slack ID.
func New() *Connector {
	return &Connector{members: map[string]map[string]bool{}, granted: map[string]string{}}
}

// Config is the `connectors.NAME` block of a memory connector.
type Config struct {
	// KnownUsers, when set, are the only Slack IDs the target knows;
	// a grant for anyone else fails permanently. Empty: everyone is known.
	KnownUsers []string `json:"known_users"`
}

// Validate checks c.
func (c *Config) Validate() error {
	for i, u := range c.KnownUsers {
		if strings.TrimSpace(u) == "" {
			return fmt.Errorf("known_users[%d]: empty user ID", i)
		}
	}
	return nil
}

// Factory builds a memory connector from its configuration block; it has
// the connectors.Factory signature.
func Factory(name string, cfg connectors.Config) (access.Connector, error) {
	var c Config
	if err := cfg.Decode(&c); err != nil {
		return nil, err
	}
	m := New()
	if len(c.KnownUsers) > 0 {
		m.SetKnown(c.KnownUsers...)
	}
	return m, nil
}

var _ connectors.Factory = Factory

// CheckParams accepts any grant parameters: the in-memory target keys its
// entitlements by whatever the role passes.
func (c *Connector) CheckParams(params map[string]string) error { return nil }

// ParamsKey is the canonical form of grant parameters: "k=v" pairs sorted
// by key and joined by ",". Members takes it.
func ParamsKey(params map[string]string) string {
	keys := slices.Sorted(maps.Keys(params))
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + params[k]
	}
	return strings.Join(parts, ",")
}

// SetKnown restricts the people the target knows to these Slack IDs
// (Slack-ID mode).
func (c *Connector) SetKnown(slackIDs ...string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.known = map[string]bool{}
	for _, id := range slackIDs {
		c.known[id] = true
	}
}

// AddUser adds a target user with its own ID and email, and switches the
// target to email mode: from now on people are resolved by email, and
// only the users added are known.
func (c *Connector) AddUser(id, email string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.emails == nil {
		c.emails = map[string]string{}
	}
	c.emails[id] = email
}

// SetEmail changes a target user's email (a rename at the target). It
// returns false if there is no such user.
func (c *Connector) SetEmail(id, email string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.emails[id]; !ok {
		return false
	}
	c.emails[id] = email
	return true
}

// DeleteUser deletes a target user and every membership they had.
func (c *Connector) DeleteUser(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.emails, id)
	if c.known != nil {
		delete(c.known, id)
	}
	for key, m := range c.members {
		delete(m, id)
		if len(m) == 0 {
			delete(c.members, key)
		}
	}
}

// AddMember gives target user id the access of paramsKey directly, as an
// administrator would by hand (access that pre-exists a grant).
func (c *Connector) AddMember(paramsKey, id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.addLocked(paramsKey, id)
}

// FailNext makes the next n calls (Grant, Revoke or Check) return err
// without changing anything. err should be classified
// (access.RetryableError / access.PermanentError) to mimic a target.
func (c *Connector) FailNext(n int, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.failN, c.failErr = n, err
}

// FailSecondStep makes the next n grants that add a membership apply it
// and then fail with err, returning the partial receipt: a two-call grant
// whose second call failed (DESIGN.md §4 invariant 9). err nil means a
// permanent error.
func (c *Connector) FailSecondStep(n int, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.failSecondN, c.failSecondErr = n, err
}

// SetHook installs fn, called at the start of every call (after the
// context check, before FailNext); a non-nil result is returned as the
// call's error and nothing changes. fn runs without the lock held, so it
// may block (to test timeouts) or call c's other methods. nil removes it.
func (c *Connector) SetHook(fn func(ctx context.Context, op string, g access.Grant) error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.hook = fn
}

// Members returns the target user IDs holding the access of paramsKey
// (see ParamsKey), sorted. In Slack-ID mode they are Slack IDs.
func (c *Connector) Members(paramsKey string) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Sorted(maps.Keys(c.members[paramsKey]))
}

// Has reports whether g's person holds g's access, resolving the person
// the way a grant would (Slack ID, or email in email mode).
func (c *Connector) Has(g access.Grant) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	id, ok := c.resolveLocked(g.User)
	return ok && c.members[ParamsKey(g.Params)][id]
}

// HasUser reports whether target user id holds the access of paramsKey.
func (c *Connector) HasUser(paramsKey, id string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.members[paramsKey][id]
}

// Calls returns the calls received so far.
func (c *Connector) Calls() Counts {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.counts
}

// Grant gives g's person g's access. The receipt holds their target user
// ID and, if they already had the access, PreExisting. A repeat of a grant
// that added the membership (the same grant ID, before its revoke) acts on
// the same user and is not pre-existing.
func (c *Connector) Grant(ctx context.Context, g access.Grant) (access.Receipt, error) {
	var rc access.Receipt
	err := c.do(ctx, OpGrant, g, func(key string) error {
		id, repeat := c.granted[g.ID]
		if !repeat {
			var ok bool
			if id, ok = c.resolveLocked(g.User); !ok {
				return unknown("grant", g)
			}
		}
		rc.UserID = id
		if c.members[key][id] && !repeat {
			rc.PreExisting, rc.Note = true, NotePreExisting
			return nil
		}
		c.granted[g.ID] = id
		c.addLocked(key, id)
		rc.Note = NoteAdded
		if c.failSecondN > 0 {
			c.failSecondN--
			err := c.failSecondErr
			if err == nil {
				err = access.PermanentError(fmt.Errorf("memory: grant %s for %s: injected failure of the grant's second step", g.ID, g.User.SlackID))
			}
			return err
		}
		return nil
	})
	if err != nil && !rc.Changed() {
		rc = access.Receipt{}
	}
	return rc, err
}

// Revoke removes g's access from the target user g.Receipt names; a user
// the target no longer knows has no access left. Without a receipt (a
// record from before receipts) the person is resolved like a grant does,
// and an unknown person is a permanent error wrapping ErrUnknownUser.
func (c *Connector) Revoke(ctx context.Context, g access.Grant) error {
	return c.do(ctx, OpRevoke, g, func(key string) error {
		var id string
		if g.Receipt != nil && g.Receipt.UserID != "" {
			id = g.Receipt.UserID
		} else {
			var ok bool
			if id, ok = c.resolveLocked(g.User); !ok {
				return unknown("revoke", g)
			}
		}
		delete(c.members[key], id)
		if len(c.members[key]) == 0 {
			delete(c.members, key)
		}
		delete(c.granted, g.ID)
		return nil
	})
}

// Check reports whether g's person holds g's access (access.Checker).
func (c *Connector) Check(ctx context.Context, g access.Grant) (bool, error) {
	var has bool
	err := c.do(ctx, OpCheck, g, func(key string) error {
		id, ok := c.resolveLocked(g.User)
		has = ok && c.members[key][id]
		return nil
	})
	return has, err
}

// resolveLocked finds p's target user ID. Caller holds c.mu.
func (c *Connector) resolveLocked(p access.Person) (string, bool) {
	if c.emails == nil {
		if p.SlackID == "" || c.known != nil && !c.known[p.SlackID] {
			return "", false
		}
		return p.SlackID, true
	}
	for _, id := range slices.Sorted(maps.Keys(c.emails)) {
		if p.Email != "" && strings.EqualFold(c.emails[id], p.Email) {
			return id, true
		}
	}
	return "", false
}

func (c *Connector) addLocked(key, id string) {
	if c.members[key] == nil {
		c.members[key] = map[string]bool{}
	}
	c.members[key][id] = true
}

func unknown(op string, g access.Grant) error {
	return access.PermanentError(fmt.Errorf("memory: %s %s: unknown user %s (%s): %w", op, g.ID, g.User.SlackID, g.User.Email, access.ErrUnknownUser))
}

// do runs one call: count, honour ctx, hook, injected failure, validation,
// then apply under the lock, so that only what apply changed is visible.
func (c *Connector) do(ctx context.Context, op string, g access.Grant, apply func(key string) error) error {
	c.mu.Lock()
	switch op {
	case OpGrant:
		c.counts.Grant++
	case OpRevoke:
		c.counts.Revoke++
	case OpCheck:
		c.counts.Check++
	}
	hook := c.hook
	c.mu.Unlock()

	what := fmt.Sprintf("%s %s for %s", op, g.ID, g.User.SlackID)
	if err := ctx.Err(); err != nil {
		return access.RetryableError(fmt.Errorf("memory: %s: %w", what, err), 0)
	}
	if hook != nil {
		if err := hook(ctx, op, g); err != nil {
			return err
		}
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	if c.failN > 0 {
		c.failN--
		err := c.failErr
		if err == nil {
			err = access.RetryableError(errors.New("memory: injected failure"), 0)
		}
		return err
	}
	if g.User.SlackID == "" && (g.Receipt == nil || g.Receipt.UserID == "") {
		return access.PermanentError(fmt.Errorf("memory: %s: the grant names no person", what))
	}
	if err := ctx.Err(); err != nil {
		return access.RetryableError(fmt.Errorf("memory: %s: %w", what, err), 0)
	}
	return apply(ParamsKey(g.Params))
}
