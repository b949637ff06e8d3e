package connectors

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/accessbot/accessbot/access"
)

// Lookup connectors: instances under `connectors:` that grant nothing but
// answer the policy's questions at submission (access.OnCallSource,
// access.TicketSource). They are built by the same Registry, from the
// same strict configuration blocks, so that validate checks them like any
// other connector. What every lookup connector shares is here:
// LookupOnly (the refusing Grant and Revoke), Lookup (the GETs and their
// failures) and LookupTimeout; what the on-call ones share is in
// oncall.go.

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
	var le *access.LookupError
	if err == nil || errors.As(err, &le) {
		return err
	}
	return lookupError(vendor, what, err)
}

// lookupError is LookupError for a non-nil err, returning the
// *access.LookupError in err's chain when there is one.
func lookupError(vendor, what string, err error) *access.LookupError {
	var le *access.LookupError
	if errors.As(err, &le) {
		return le
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
// X-RateLimit-Period-In-Sec) from an answer's headers h, falling back to
// Retry-After (seconds, or an HTTP date taken relative to now). It returns
// 0 when the answer carries neither; a vendor's hint is capped at an hour.
func RateLimitHint(h http.Header, header string, now time.Time) time.Duration {
	if header != "" {
		if v := strings.TrimSpace(h.Get(header)); v != "" {
			if n, err := strconv.ParseInt(v, 10, 64); err == nil && n >= 0 {
				return time.Duration(min(n, 3600)) * time.Second
			}
		}
	}
	d, _ := ParseRetryAfter(h.Get("Retry-After"), now)
	return d
}

// DefaultLookupTimeout bounds one whole lookup of a connector whose
// `timeout:` key is unset.
const DefaultLookupTimeout = 5 * time.Second

// LookupTimeout is the `timeout:` key of a lookup connector: embed it
// (untagged) in the connector's config struct. Unlike Timeout, which
// bounds each attempt of a call, it bounds one whole lookup, the shared
// client's inner retries and every page included: the requester is
// waiting for the answer.
type LookupTimeout struct {
	// Timeout bounds one whole lookup (default DefaultLookupTimeout).
	Timeout Duration `json:"timeout"`
}

// Whole returns the configured timeout, or DefaultLookupTimeout.
func (t LookupTimeout) Whole() time.Duration { return t.Timeout.Or(DefaultLookupTimeout) }

// Lookup is how a lookup connector asks its vendor: GETs sent through
// API.Send (so through SendJSON and the shared client, like every other
// connector call), each failure an *access.LookupError naming Vendor and
// what was looked up, so that the caller can fail closed with a reason
// people understand. It is safe for concurrent use once built.
type Lookup struct {
	// Vendor names the vendor in messages for people ("PagerDuty").
	Vendor string
	// API is the vendor's API root, the shared client, the credentials
	// (a StaticAuth: a 401 is final) and any vendor headers (a media
	// type). Its per-attempt Timeout is normally left zero: Timeout below
	// bounds the whole lookup.
	API API
	// Clock reads rate-limit hints given as HTTP dates.
	Clock access.Clock
	// Timeout bounds one whole lookup (Bound); DefaultLookupTimeout when
	// zero.
	Timeout time.Duration
	// RateLimitHeader names the vendor's header holding the seconds to
	// wait after a 429 (RateLimitHint); Retry-After is read as well.
	RateLimitHeader string
}

// Bound returns ctx limited to one whole lookup (Timeout): every GET of
// the lookup, the shared client's retries of each and every page share
// it. Call cancel when the lookup is done.
func (l *Lookup) Bound(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, Duration(l.Timeout).Or(DefaultLookupTimeout))
}

// Get sends GET API.Base+path with the query q and decodes a 2xx answer
// into out when it is non-nil (at most 8 MiB). Every failure is an
// *access.LookupError for what (see LookupError); a 429 carries the
// vendor's rate-limit hint, at least a second, as RetryAfter; a 2xx answer
// that does not decode is LookupUnavailable. The body is always drained
// and closed.
func (l *Lookup) Get(ctx context.Context, what, path string, q url.Values, out any) error {
	op := fmt.Sprintf("%s lookup of %s", l.Vendor, what)
	var h http.Header
	status, err := l.API.Send(ctx, JSONCall{
		Op: op, Method: http.MethodGet, Path: path, Query: q, Out: out, Headers: &h,
		BadAnswer: func(err error) error {
			p := path
			if u, perr := url.Parse(l.API.Base + path); perr == nil {
				p = u.Path
			}
			return l.Fail(access.LookupUnavailable, what, fmt.Errorf("%s: unexpected answer to GET %s: %v", op, p, err))
		},
	})
	if err == nil {
		return nil
	}
	le := lookupError(l.Vendor, what, err)
	if status == http.StatusTooManyRequests {
		le.RetryAfter = max(RateLimitHint(h, l.RateLimitHeader, l.Clock.Now()), time.Second)
	}
	return le
}

// Fail returns the *access.LookupError of a lookup of what that failed
// for a reason of the connector's own: a reference it cannot look up
// (access.LookupInvalid, before any call), or an answer without what it
// needs (access.LookupUnavailable).
func (l *Lookup) Fail(kind access.LookupFailure, what string, err error) *access.LookupError {
	return &access.LookupError{Vendor: l.Vendor, Kind: kind, What: what, Err: err}
}
