package connectors

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/accessbot/accessbot/access"
)

// On-call lookup connectors (pagerduty, opsgenie) answer
// access.OnCallSource. What they share is here: OnCallConfig (the keys no
// vendor changes), OnCallVendor and NewOnCall (the factory, from the
// vendor's facts), OnCall (the schedule answers, cached) and
// OnCallCache. A vendor's package keeps its credentials key, its API
// facts, its schedule check and its Fetch.

// MaxOnCallTTL is the longest `cache_ttl` an on-call connector accepts: a
// hand-over must be seen soon.
const MaxOnCallTTL = 10 * time.Minute

// OnCallConfig is the part of an on-call lookup connector's block that no
// vendor changes: `api_url`, `timeout` (LookupTimeout) and `cache_ttl`.
// Embed it (untagged) after the vendor's credentials and join its
// Validate into the block's own; the vendor's default API root and what
// api_url may point at instead (another service region) belong in the
// vendor's Config comment.
type OnCallConfig struct {
	// APIURL replaces the vendor's API root: another service region, or a
	// test server. An https URL (CheckBaseURL).
	APIURL string `json:"api_url"`
	LookupTimeout
	// CacheTTL is how long an answer is reused (default DefaultOnCallTTL,
	// at most MaxOnCallTTL).
	CacheTTL Duration `json:"cache_ttl"`
}

// Validate checks api_url and cache_ttl; errors name keys relative to the
// block.
func (c *OnCallConfig) Validate() error {
	var errs []error
	if c.APIURL != "" {
		errs = append(errs, RequireBaseURL("api_url", c.APIURL, ""))
	}
	if c.CacheTTL.Std() > MaxOnCallTTL {
		errs = append(errs, errors.New("cache_ttl: at most 10m; an on-call hand-over must be seen soon"))
	}
	return errors.Join(errs...)
}

// Base returns api_url without trailing slashes, or def when it is unset.
func (c *OnCallConfig) Base(def string) string {
	if c.APIURL == "" {
		return def
	}
	return TrimBase(c.APIURL)
}

// OnCallBlock is a vendor's config struct that embeds OnCallConfig (a
// pointer to it, as Config.Decode needs).
type OnCallBlock interface {
	onCallConfig() *OnCallConfig
}

func (c *OnCallConfig) onCallConfig() *OnCallConfig { return c }

// OnCallVendor is what an on-call lookup connector says about its vendor;
// NewOnCall builds the rest from it.
type OnCallVendor struct {
	// Vendor names the vendor in messages for people ("PagerDuty").
	Vendor string
	// DefaultAPIURL is the API root when api_url is unset.
	DefaultAPIURL string
	// SecretKey is the block's key holding the API credential, read with
	// Config.Secret (so KEY, or a file named by KEY_file).
	SecretKey string
	// Auth makes the credentials every request carries from the secret.
	Auth func(secret string) Credentials
	// Header is set on every request (a media type pinning the API
	// version). Optional.
	Header http.Header
	// RateLimitHeader is the vendor's header holding the seconds to wait
	// after a 429 (Lookup.RateLimitHeader). Optional.
	RateLimitHeader string
	// Fetch asks the vendor, through l, who is on call on schedule at at:
	// their emails (NormalizeEmails), none for a gap in the rota. It runs
	// within one lookup's timeout (Lookup.Bound) and behind the cache; its
	// errors are *access.LookupError (Lookup.Get and Lookup.Fail make
	// them).
	Fetch func(ctx context.Context, l *Lookup, schedule string, at time.Time) ([]string, error)
}

// OnCall is the vendor-independent part of an on-call lookup connector:
// the vendor's Lookup and an OnCallCache (cache_ttl) in front of its
// Fetch. It is safe for concurrent use.
type OnCall struct {
	// Lookup asks the vendor; its Fail makes the connector's own
	// refusals (a schedule it cannot name).
	*Lookup
	cache *OnCallCache
}

// NewOnCall is the factory preamble of an on-call lookup connector: it
// decodes cfg's block into block (Config.DecodeHTTP: the vendor's Config,
// with its Validate), reads the credential under v.SecretKey, and builds
// the Lookup (api_url or v.DefaultAPIURL, the lookup timeout, the shared
// client and clock) and the cache over v.Fetch. It makes no network call.
func NewOnCall(cfg Config, block OnCallBlock, v OnCallVendor) (*OnCall, error) {
	if err := cfg.DecodeHTTP(block); err != nil {
		return nil, err
	}
	secret, err := cfg.Secret(v.SecretKey)
	if err != nil {
		return nil, err
	}
	c := block.onCallConfig()
	l := &Lookup{
		Vendor: v.Vendor, Clock: cfg.Clock, Timeout: c.Whole(), RateLimitHeader: v.RateLimitHeader,
		API: API{Base: c.Base(v.DefaultAPIURL), HTTP: cfg.HTTP, Auth: v.Auth(secret), Header: v.Header},
	}
	fetch := func(ctx context.Context, schedule string, at time.Time) ([]string, error) {
		ctx, cancel := l.Bound(ctx)
		defer cancel()
		return v.Fetch(ctx, l, schedule, at)
	}
	return &OnCall{Lookup: l, cache: NewOnCallCache(cfg.Clock, c.CacheTTL.Std(), fetch)}, nil
}

// OnCall returns the emails of the people on call on schedule at at, from
// the cache or the vendor (see OnCallCache); the connector checks the
// schedule first. The returned slice is the caller's.
func (o *OnCall) OnCall(ctx context.Context, schedule string, at time.Time) ([]string, error) {
	return o.cache.OnCall(ctx, schedule, at)
}

// DefaultOnCallTTL is how long an on-call answer is reused: long enough
// that a burst of requests asks the vendor once, short enough that a
// hand-over is seen within a minute.
const DefaultOnCallTTL = 60 * time.Second

// maxRateLimitWait caps how long a vendor's rate-limit hint keeps
// OnCallCache from asking again.
const maxRateLimitWait = 5 * time.Minute

// OnCallCache wraps an on-call lookup (fetch) with what every on-call
// connector needs:
//
//   - answers are reused for TTL after they were fetched (on the injected
//     clock) for any `at` within TTL of the instant they were fetched for;
//   - concurrent lookups of one schedule and instant are coalesced into
//     one call (golang.org/x/sync/singleflight), made with the first
//     caller's ctx: if that caller gives up, the others see its error;
//   - after an answer carrying a rate-limit hint (*access.LookupError with
//     RetryAfter), no call is made until the hint has passed (capped at
//     5 minutes): each lookup fails at once with that error, so a burst of
//     requests does not hammer a vendor that asked us to slow down;
//   - other failures are not cached: the next lookup asks again.
//
// It is safe for concurrent use.
type OnCallCache struct {
	fetch func(ctx context.Context, schedule string, at time.Time) ([]string, error)
	clock access.Clock
	ttl   time.Duration
	cache *TTLCache[string, onCallEntry] // by schedule

	group singleflight.Group
	mu    sync.Mutex
	// blockedUntil and blockErr hold the last rate-limit hint.
	blockedUntil time.Time
	blockErr     error
}

type onCallEntry struct {
	at     time.Time // the instant the answer is for
	emails []string
}

// NewOnCallCache returns a cache over fetch with entries fresh for ttl
// (DefaultOnCallTTL when ttl <= 0), measured on clock.
func NewOnCallCache(clock access.Clock, ttl time.Duration, fetch func(ctx context.Context, schedule string, at time.Time) ([]string, error)) *OnCallCache {
	if ttl <= 0 {
		ttl = DefaultOnCallTTL
	}
	return &OnCallCache{fetch: fetch, clock: clock, ttl: ttl, cache: NewTTLCache[string, onCallEntry](clock, ttl)}
}

// cached returns the fresh answer for schedule if it is for an instant
// within TTL of at.
func (c *OnCallCache) cached(schedule string, at time.Time) ([]string, bool) {
	e, ok := c.cache.Get(schedule)
	if !ok || absDuration(at.Sub(e.at)) >= c.ttl {
		return nil, false
	}
	return e.emails, true
}

// OnCall returns the cached answer for schedule at at, or fetches it. The
// returned slice is a copy the caller owns.
func (c *OnCallCache) OnCall(ctx context.Context, schedule string, at time.Time) ([]string, error) {
	if emails, ok := c.cached(schedule, at); ok {
		return append([]string(nil), emails...), nil
	}
	c.mu.Lock()
	blocked, berr := c.clock.Now().Before(c.blockedUntil), c.blockErr
	c.mu.Unlock()
	if blocked {
		return nil, berr
	}
	key := schedule + "\x00" + at.UTC().Truncate(time.Second).Format(time.RFC3339)
	v, err, _ := c.group.Do(key, func() (any, error) {
		// A call for this key may have finished between the check above
		// and here: its answer is in the cache.
		if emails, ok := c.cached(schedule, at); ok {
			return emails, nil
		}
		now := c.clock.Now()
		emails, err := c.fetch(ctx, schedule, at)
		if err != nil {
			var le *access.LookupError
			if errors.As(err, &le) && le.RetryAfter > 0 {
				c.mu.Lock()
				c.blockedUntil = now.Add(min(le.RetryAfter, maxRateLimitWait))
				c.blockErr = err
				c.mu.Unlock()
			}
			return nil, err
		}
		c.cache.Put(schedule, onCallEntry{at: at, emails: emails})
		return emails, nil
	})
	if err != nil {
		return nil, err
	}
	return append([]string(nil), v.([]string)...), nil
}

func absDuration(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}

// NormalizeEmails lower-cases and trims emails, dropping empty ones and
// repeats, keeping the first-seen order.
func NormalizeEmails(in []string) []string {
	out := make([]string, 0, len(in))
	seen := map[string]bool{}
	for _, e := range in {
		e = strings.ToLower(strings.TrimSpace(e))
		if e == "" || seen[e] {
			continue
		}
		seen[e] = true
		out = append(out, e)
	}
	return out
}
