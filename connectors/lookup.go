package connectors

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/accessbot/accessbot/access"
)

// Lookup connectors: instances under `connectors:` that grant nothing but
// answer the policy's questions at submission (access.OnCallSource,
// access.TicketSource). They are built by the same Registry, from the
// same strict configuration blocks, so that validate checks them like any
// other connector.

// LookupOnly gives a lookup connector the access.Connector methods the
// Registry's Factory type requires. Grant and Revoke refuse with a
// permanent error: validation keeps systems from pointing at a lookup
// connector, so they are never called in a correct deployment. Embed it
// and set Type.
type LookupOnly struct {
	Type string // the connector type, for the error ("pagerduty")
}

// Grant refuses: a lookup connector grants nothing.
func (l LookupOnly) Grant(context.Context, access.Grant) (access.Receipt, error) {
	return access.Receipt{}, access.PermanentError(fmt.Errorf("a %s connector only answers lookups; it cannot grant access (point the system at another connector)", l.Type))
}

// Revoke refuses: a lookup connector never granted anything.
func (l LookupOnly) Revoke(context.Context, access.Grant) error {
	return access.PermanentError(fmt.Errorf("a %s connector only answers lookups; it cannot revoke access", l.Type))
}

// LookupError turns a failure of SendJSON (or Classify) during a lookup
// into an *access.LookupError for vendor and what: 401 and 403 are
// LookupRejected, 404 LookupNotFound, 400 and 422 LookupInvalid, and
// everything else (transport, timeouts, 429, 5xx, undecodable answers)
// LookupUnavailable, keeping the connector error's retry hint. A nil err
// stays nil; an *access.LookupError is returned unchanged.
func LookupError(vendor, what string, err error) error {
	if err == nil {
		return nil
	}
	var le *access.LookupError
	if errors.As(err, &le) {
		return err
	}
	out := &access.LookupError{Vendor: vendor, What: what, Kind: access.LookupUnavailable, Err: err}
	var se *StatusError
	if errors.As(err, &se) {
		switch se.StatusCode {
		case http.StatusUnauthorized, http.StatusForbidden:
			out.Kind = access.LookupRejected
		case http.StatusNotFound:
			out.Kind = access.LookupNotFound
		case http.StatusBadRequest, http.StatusUnprocessableEntity:
			out.Kind = access.LookupInvalid
		}
	}
	if out.Kind == access.LookupUnavailable {
		_, out.RetryAfter = access.Classify(err)
	}
	return out
}

// RateLimitHint reads a vendor's rate-limit header holding a number of
// seconds to wait (PagerDuty's ratelimit-reset, Opsgenie's
// X-RateLimit-Period-In-Sec), falling back to Retry-After. It returns 0
// when the response carries none.
func RateLimitHint(resp *http.Response, header string, now time.Time) time.Duration {
	if resp == nil {
		return 0
	}
	if v := strings.TrimSpace(resp.Header.Get(header)); v != "" {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil && n >= 0 {
			return time.Duration(min(n, 3600)) * time.Second
		}
	}
	d, _ := ParseRetryAfter(resp.Header.Get("Retry-After"), now)
	return d
}

// LookupCall is one GET of a lookup connector, sent by GetLookup.
type LookupCall struct {
	Vendor string // "PagerDuty", for access.LookupError
	What   string // what is looked up, "schedule P1ABC2D"
	URL    string // the full URL without query
	Query  url.Values
	// Authorize sets credentials and vendor headers (it may replace the
	// default Accept: application/json).
	Authorize func(*http.Request)
	// RateLimitHeader names the vendor's header holding the seconds to
	// wait after a 429 (RateLimitHint); Retry-After is read as well.
	RateLimitHeader string
	// Out receives the decoded body of a 2xx answer when non-nil.
	Out any
}

// GetLookup sends c through d and decodes a 2xx answer into c.Out. Every
// failure is an *access.LookupError (see LookupError); a 429 carries the
// vendor's rate-limit hint (at least a second) as RetryAfter, read at
// now. The body is always drained and closed; at most 8 MiB is decoded.
func GetLookup(ctx context.Context, d Doer, now time.Time, c LookupCall) error {
	op := fmt.Sprintf("%s lookup of %s", c.Vendor, c.What)
	req, err := NewJSONRequest(ctx, http.MethodGet, c.URL, c.Query, nil)
	if err != nil {
		return LookupError(c.Vendor, c.What, access.PermanentError(fmt.Errorf("%s: %w", op, err)))
	}
	if c.Authorize != nil {
		c.Authorize(req)
	}
	resp, err := d.Do(ctx, req)
	if err != nil {
		return LookupError(c.Vendor, c.What, Classify(resp, err, op))
	}
	if resp.StatusCode == http.StatusTooManyRequests {
		hint := RateLimitHint(resp, c.RateLimitHeader, now)
		le := LookupError(c.Vendor, c.What, Classify(resp, nil, op)).(*access.LookupError)
		le.RetryAfter = max(hint, time.Second)
		return le
	}
	if err := Classify(resp, nil, op); err != nil {
		return LookupError(c.Vendor, c.What, err)
	}
	defer Drain(resp)
	if c.Out == nil {
		return nil
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 8<<20)).Decode(c.Out); err != nil {
		return &access.LookupError{Vendor: c.Vendor, Kind: access.LookupUnavailable, What: c.What,
			Err: fmt.Errorf("%s: unexpected answer to GET %s: %v", op, req.URL.Path, err)}
	}
	return nil
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
