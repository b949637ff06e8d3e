// Package directory answers accessbot's questions about people: who they
// are, which user groups they are in, who their manager is. It implements
// access.Directory over Slack's lookups (the bot's uncached Web API
// calls) and, optionally, an identity provider's manager records
// (access.ManagerLookup, directory.managers.source), with a cache whose
// staleness is bounded twice:
//
//   - for display and for submitting a request, answers up to TTL old
//     (default 5 min) are used;
//   - for an authorisation decision (an approval, the re-check right
//     before a grant: a ctx marked with access.Fresh), answers older than
//     DecisionTTL (default 10 s) are fetched again, and a failed fetch is
//     an error, never an older answer (DESIGN.md §4 invariant 10).
//
// Concurrent lookups of the same key share one fetch.
package directory

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/accessbot/accessbot/access"
)

// Slack is what Slack knows about people, uncached (the bot's Web API
// calls). Errors wrap access.ErrNotFound for unknown people and emails.
type Slack interface {
	Person(ctx context.Context, user string) (access.Person, error)
	ProfileField(ctx context.Context, user, field string) (string, error)
	UsergroupMembers(ctx context.Context, group string) ([]string, error)
	UserByEmail(ctx context.Context, email string) (string, error)
}

// Defaults for Options left zero.
const (
	DefaultTTL         = 5 * time.Minute
	DefaultDecisionTTL = 10 * time.Second
	DefaultManagerTTL  = 10 * time.Minute
)

// Options configures a Directory.
type Options struct {
	// TTL bounds the age of answers used outside decisions (default 5 min).
	TTL time.Duration
	// DecisionTTL bounds the age of answers used for decisions (default
	// 10 s); negative: always fetch.
	DecisionTTL time.Duration
	// Managers, when set, is the identity provider the managers are read
	// from (IdPManager); ManagerTTL bounds its answers outside decisions
	// (default 10 min).
	Managers   access.ManagerLookup
	ManagerTTL time.Duration
	Clock      access.Clock
}

// Directory is the cached directory. It is safe for concurrent use.
type Directory struct {
	slack Slack
	opts  Options

	mu      sync.Mutex
	entries map[string]*entry
}

type entry struct {
	at    time.Time
	value any
	ready chan struct{} // closed when a fetch in flight finishes
}

var (
	_ access.Directory        = (*Directory)(nil)
	_ access.ManagerDirectory = (*Directory)(nil)
)

// New returns a Directory over slack.
func New(slack Slack, o Options) *Directory {
	if o.TTL <= 0 {
		o.TTL = DefaultTTL
	}
	if o.DecisionTTL == 0 {
		o.DecisionTTL = DefaultDecisionTTL
	}
	o.DecisionTTL = max(o.DecisionTTL, 0)
	if o.ManagerTTL <= 0 {
		o.ManagerTTL = DefaultManagerTTL
	}
	if o.Clock == nil {
		o.Clock = access.ClockFunc(time.Now)
	}
	return &Directory{slack: slack, opts: o, entries: map[string]*entry{}}
}

// cached returns the value under key if it is younger than the bound for
// ctx (ttl outside decisions, DecisionTTL for them), else fetches it;
// concurrent callers of one key share a fetch. A failed fetch is returned
// and not cached.
func (d *Directory) cached(ctx context.Context, key string, ttl time.Duration, fetch func() (any, error)) (any, error) {
	if access.IsFresh(ctx) {
		ttl = d.opts.DecisionTTL
	}
	for {
		now := d.opts.Clock.Now()
		d.mu.Lock()
		e := d.entries[key]
		switch {
		case e != nil && e.ready != nil:
			ready := e.ready
			d.mu.Unlock()
			select {
			case <-ready:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
			continue // look again: the fetch may have been for an older bound
		case e != nil && now.Sub(e.at) < ttl:
			d.mu.Unlock()
			return e.value, nil
		}
		prev := e
		mine := &entry{ready: make(chan struct{})}
		d.entries[key] = mine
		d.mu.Unlock()
		v, err := fetch()
		d.mu.Lock()
		mine.at, mine.value = now, v
		close(mine.ready)
		mine.ready = nil
		if err != nil {
			// A failure is not cached, and does not evict the older
			// answer, still good for callers with a longer bound.
			if prev != nil {
				d.entries[key] = prev
			} else {
				delete(d.entries, key)
			}
		}
		d.mu.Unlock()
		return v, err
	}
}

// Forget drops everything cached about user (Slack reported a change to
// their profile), so the next question about them asks again.
func (d *Directory) Forget(user string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for k := range d.entries {
		if strings.HasSuffix(k, ":"+user) {
			delete(d.entries, k)
		}
	}
}

// Person implements access.Directory.
func (d *Directory) Person(ctx context.Context, user string) (access.Person, error) {
	v, err := d.cached(ctx, "person:"+user, d.opts.TTL, func() (any, error) { return d.slack.Person(ctx, user) })
	if err != nil {
		return access.Person{}, err
	}
	return v.(access.Person), nil
}

// ProfileField implements access.Directory.
func (d *Directory) ProfileField(ctx context.Context, user, field string) (string, error) {
	v, err := d.cached(ctx, "field:"+field+":"+user, d.opts.TTL, func() (any, error) { return d.slack.ProfileField(ctx, user, field) })
	if err != nil {
		return "", err
	}
	return v.(string), nil
}

// UsergroupMembers implements access.Directory.
func (d *Directory) UsergroupMembers(ctx context.Context, group string) ([]string, error) {
	v, err := d.cached(ctx, "group:"+group, d.opts.TTL, func() (any, error) { return d.slack.UsergroupMembers(ctx, group) })
	if err != nil {
		return nil, err
	}
	return append([]string(nil), v.([]string)...), nil
}

// UserByEmail implements access.Directory.
func (d *Directory) UserByEmail(ctx context.Context, email string) (string, error) {
	v, err := d.cached(ctx, "email:"+strings.ToLower(email), d.opts.TTL, func() (any, error) { return d.slack.UserByEmail(ctx, email) })
	if err != nil {
		return "", err
	}
	return v.(string), nil
}

// ErrNoManagerSource is returned by IdPManager when no identity provider
// was configured.
var ErrNoManagerSource = errors.New("no identity provider is configured as the managers' source")

// IdPManager implements access.ManagerDirectory: the identity provider's
// manager of user, mapped to a Slack user by email; "" when the IdP
// records none, or names someone Slack does not know (the step then falls
// back like an empty one). An IdP that cannot be asked is an error (for a
// decision: never an answer older than DecisionTTL).
func (d *Directory) IdPManager(ctx context.Context, user string) (string, error) {
	if d.opts.Managers == nil {
		return "", ErrNoManagerSource
	}
	v, err := d.cached(ctx, "manager:"+user, d.opts.ManagerTTL, func() (any, error) {
		p, err := d.Person(ctx, user)
		if err != nil {
			return "", err
		}
		email, err := d.opts.Managers.Manager(ctx, p)
		if err != nil {
			return "", fmt.Errorf("the identity provider: %w", err)
		}
		if email == "" {
			return "", nil
		}
		id, err := d.UserByEmail(ctx, email)
		if errors.Is(err, access.ErrNotFound) {
			return "", nil
		}
		return id, err
	})
	if err != nil {
		return "", err
	}
	return v.(string), nil
}
