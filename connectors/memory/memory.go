// Package memory is an in-memory access.Connector for tests and for
// `accessbot demo`: it keeps memberships in a map, counts calls, and can be
// told to fail. It passes the conformance suite.
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
// entitlement is (grant parameters, person's Slack ID). It is safe for
// concurrent use; the zero value is not usable, call New.
type Connector struct {
	mu      sync.Mutex
	members map[string]map[string]bool // ParamsKey → Slack IDs
	known   map[string]bool            // nil: everyone is known
	counts  Counts
	failN   int
	failErr error
	hook    func(ctx context.Context, op string, g access.Grant) error
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

// New returns an empty Connector that knows every person.
func New() *Connector {
	return &Connector{members: map[string]map[string]bool{}}
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

// SetKnown restricts the people the target knows to these Slack IDs.
func (c *Connector) SetKnown(slackIDs ...string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.known = map[string]bool{}
	for _, id := range slackIDs {
		c.known[id] = true
	}
}

// FailNext makes the next n calls (Grant, Revoke or Check) return err
// without changing anything. err should be classified
// (access.RetryableError / access.PermanentError) to mimic a target.
func (c *Connector) FailNext(n int, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.failN, c.failErr = n, err
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

// Members returns the Slack IDs holding the access of paramsKey (see
// ParamsKey), sorted.
func (c *Connector) Members(paramsKey string) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Sorted(maps.Keys(c.members[paramsKey]))
}

// Has reports whether g's person holds g's access.
func (c *Connector) Has(g access.Grant) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.members[ParamsKey(g.Params)][g.User.SlackID]
}

// Calls returns the calls received so far.
func (c *Connector) Calls() Counts {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.counts
}

// Grant implements access.Connector. It returns an empty receipt: this
// connector does not yet record what it changed.
func (c *Connector) Grant(ctx context.Context, g access.Grant) (access.Receipt, error) {
	return access.Receipt{}, c.applyGrant(ctx, g)
}

// Grant gives g's person g's access; nil if they already have it.
func (c *Connector) applyGrant(ctx context.Context, g access.Grant) error {
	return c.do(ctx, OpGrant, g, func(key string) {
		if c.members[key] == nil {
			c.members[key] = map[string]bool{}
		}
		c.members[key][g.User.SlackID] = true
	})
}

// Revoke removes g's access from g's person; nil if they do not have it.
func (c *Connector) Revoke(ctx context.Context, g access.Grant) error {
	return c.do(ctx, OpRevoke, g, func(key string) {
		delete(c.members[key], g.User.SlackID)
		if len(c.members[key]) == 0 {
			delete(c.members, key)
		}
	})
}

// Check reports whether g's person holds g's access (access.Checker).
func (c *Connector) Check(ctx context.Context, g access.Grant) (bool, error) {
	var has bool
	err := c.do(ctx, OpCheck, g, func(key string) { has = c.members[key][g.User.SlackID] })
	return has, err
}

// do runs one call: count, honour ctx, hook, injected failure, validation,
// then apply under the lock, so nothing partial is ever visible.
func (c *Connector) do(ctx context.Context, op string, g access.Grant, apply func(key string)) error {
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
	if g.User.SlackID == "" {
		return access.PermanentError(fmt.Errorf("memory: %s: the grant names no person", what))
	}
	if op == OpGrant && c.known != nil && !c.known[g.User.SlackID] {
		return access.PermanentError(fmt.Errorf("memory: %s: unknown user %s (%s)", what, g.User.SlackID, g.User.Email))
	}
	if err := ctx.Err(); err != nil {
		return access.RetryableError(fmt.Errorf("memory: %s: %w", what, err), 0)
	}
	apply(ParamsKey(g.Params))
	return nil
}
