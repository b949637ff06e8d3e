package connectors

import (
	"context"
	"io"
	"math/rand/v2"
	"net/http"
	"time"

	"github.com/accessbot/accessbot/access"

	"github.com/hashicorp/go-cleanhttp"
	"github.com/hashicorp/go-retryablehttp"
)

// Doer sends one logical HTTP request, retrying within its own short inner
// loop as it sees fit. *HTTPClient implements it; tests may pass fakes.
//
// Do returns the final response even when its status is an error (the
// caller classifies it, see Classify), or a nil response and the transport
// error (or ctx's error) when no response arrived. The caller owns and must
// close the response body.
type Doer interface {
	Do(ctx context.Context, req *http.Request) (*http.Response, error)
}

// HTTPOptions tunes NewHTTPClient. Zero fields take the defaults noted.
type HTTPOptions struct {
	// AttemptTimeout bounds each attempt, including reading the response
	// body (default 10 s). WithAttemptTimeout overrides it per request.
	AttemptTimeout time.Duration
	// RetryMax is how many times a failed attempt is retried in the inner
	// loop (default 2, so 3 attempts). Negative: never retry.
	RetryMax int
	// BackoffBase and BackoffMax shape the full-jitter exponential backoff
	// between attempts: a uniform random wait in [0, min(max, base·2^n)]
	// (defaults 250 ms and 5 s). Tests set them to a millisecond or so.
	BackoffBase time.Duration
	BackoffMax  time.Duration
	// MaxRetryAfter caps how long the inner loop waits for a Retry-After
	// (default 30 s). A longer Retry-After ends the inner loop at once; the
	// caller's Classify then returns a retryable error carrying it, and the
	// durable outer loop waits instead of a blocked worker.
	MaxRetryAfter time.Duration
	// Transport is the underlying round tripper (default
	// cleanhttp.DefaultPooledTransport()).
	Transport http.RoundTripper
	// Now is the wall clock used to read Retry-After HTTP dates (default
	// time.Now).
	Now func() time.Time
	// Jitter returns a uniform random number in [0, n) (default
	// math/rand/v2.Int64N). Tests may fix it.
	Jitter func(n int64) int64
}

// HTTPClient is the shared HTTP client of all connectors: a thin policy
// layer over github.com/hashicorp/go-retryablehttp v0.7.8 used only for the
// short inner retry loop. It is safe for concurrent use.
//
// Facts about go-retryablehttp v0.7.8 that shape it (client.go; see
// /work/shared/reference/engine-notes.md §5):
//   - its default Logger prints "METHOD URL" for every attempt, query string
//     included (hashicorp/go-retryablehttp#206), so Logger is nil: nothing
//     about requests is logged here;
//   - its DefaultBackoff has no jitter and honours Retry-After on 429/503
//     without any cap (#247): a "Retry-After: 3600" would block a worker
//     for an hour. Our Backoff is full-jitter exponential and our CheckRetry
//     stops the loop when Retry-After exceeds MaxRetryAfter;
//   - its CheckRetry does not look at the method, so a POST that timed out
//     after the server applied it would be sent again. We retry only
//     requests that are idempotent: GET, HEAD, OPTIONS, TRACE, PUT, DELETE,
//     or any request carrying an Idempotency-Key or X-Idempotency-Key header
//     (the rule net/http's Transport uses for replaying requests);
//   - without ErrorHandler = PassthroughErrorHandler the final response is
//     drained and discarded and only "giving up after N attempt(s)" is
//     returned, losing the status we need (404 on revoke is success, 403 is
//     a permanent failure), so the passthrough handler is set;
//   - cleanhttp sets no overall timeout, so each attempt gets its own
//     deadline (AttemptTimeout) from our transport wrapper;
//   - on giving up it calls CloseIdleConnections, which would tear down the
//     pool shared by all connectors; our transport wrapper does not expose
//     CloseIdleConnections, so that call is a no-op.
//
// Bodies are replayed between attempts: a non-replayable body is read into
// memory once (retryablehttp.FromRequest), which is fine for the small JSON
// bodies connectors send.
type HTTPClient struct {
	rc   *retryablehttp.Client
	opts HTTPOptions
}

var _ Doer = (*HTTPClient)(nil)

// NewHTTPClient returns a client with opts applied over the defaults.
func NewHTTPClient(opts HTTPOptions) *HTTPClient {
	if opts.AttemptTimeout <= 0 {
		opts.AttemptTimeout = 10 * time.Second
	}
	switch {
	case opts.RetryMax == 0:
		opts.RetryMax = 2
	case opts.RetryMax < 0:
		opts.RetryMax = 0
	}
	if opts.BackoffBase <= 0 {
		opts.BackoffBase = 250 * time.Millisecond
	}
	if opts.BackoffMax <= 0 {
		opts.BackoffMax = 5 * time.Second
	}
	if opts.BackoffMax < opts.BackoffBase {
		opts.BackoffMax = opts.BackoffBase
	}
	if opts.MaxRetryAfter <= 0 {
		opts.MaxRetryAfter = 30 * time.Second
	}
	if opts.Transport == nil {
		opts.Transport = cleanhttp.DefaultPooledTransport()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Jitter == nil {
		opts.Jitter = rand.Int64N
	}
	c := &HTTPClient{opts: opts}
	c.rc = &retryablehttp.Client{
		HTTPClient: &http.Client{
			Transport: &attemptTransport{base: opts.Transport, timeout: opts.AttemptTimeout},
		},
		Logger:       nil, // never log URLs or bodies
		RetryWaitMin: opts.BackoffBase,
		RetryWaitMax: opts.BackoffMax,
		RetryMax:     opts.RetryMax,
		CheckRetry:   c.checkRetry,
		Backoff:      c.backoff,
		ErrorHandler: retryablehttp.PassthroughErrorHandler,
	}
	return c
}

// Do sends req with ctx, retrying per the policy described on HTTPClient.
// See Doer for what it returns. req's own context is replaced by ctx.
func (c *HTTPClient) Do(ctx context.Context, req *http.Request) (*http.Response, error) {
	ctx = context.WithValue(ctx, idempotentKey{}, isIdempotent(req))
	rreq, err := retryablehttp.FromRequest(req.WithContext(ctx))
	if err != nil {
		return nil, err
	}
	return c.rc.Do(rreq)
}

type idempotentKey struct{}

type attemptTimeoutKey struct{}

// WithAttemptTimeout returns a context that makes HTTPClient use d as the
// per-attempt timeout of requests sent with it (a connector's own
// `timeout:` setting). It does not bound the whole inner loop; use a
// context deadline for that.
func WithAttemptTimeout(ctx context.Context, d time.Duration) context.Context {
	return context.WithValue(ctx, attemptTimeoutKey{}, d)
}

// isIdempotent reports whether req may be sent again after a failure whose
// effect at the server is unknown.
func isIdempotent(req *http.Request) bool {
	switch req.Method {
	case "", http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace,
		http.MethodPut, http.MethodDelete:
		return true
	}
	return req.Header.Get("Idempotency-Key") != "" || req.Header.Get("X-Idempotency-Key") != ""
}

// checkRetry is the inner loop's retry policy.
func (c *HTTPClient) checkRetry(ctx context.Context, resp *http.Response, err error) (bool, error) {
	if ctx.Err() != nil {
		return false, ctx.Err()
	}
	if idem, _ := ctx.Value(idempotentKey{}).(bool); !idem {
		return false, nil
	}
	if access.IsProbe(ctx) {
		return false, nil // the lifecycle paces probes of a failing target itself
	}
	if err != nil {
		// Transport errors: retryablehttp's own judgement (it refuses to
		// retry TLS certificate, scheme, header and redirect-loop errors).
		return retryablehttp.DefaultRetryPolicy(ctx, resp, err)
	}
	if !RetryableStatus(resp.StatusCode) {
		return false, nil
	}
	if d, ok := retryAfter(resp, c.opts.Now()); ok && d > c.opts.MaxRetryAfter {
		return false, nil // the outer loop waits; see HTTPOptions.MaxRetryAfter
	}
	return true, nil
}

// backoff is the wait before retry attempt n+1: Retry-After when the
// server sent one on 429/503 (checkRetry already refused those beyond the
// cap), else full jitter ("Exponential Backoff And Jitter", AWS
// Architecture Blog, 2015): uniform in [0, min(max, base·2^n)].
func (c *HTTPClient) backoff(base, max time.Duration, n int, resp *http.Response) time.Duration {
	if d, ok := retryAfter(resp, c.opts.Now()); ok {
		return min(d, c.opts.MaxRetryAfter)
	}
	return fullJitter(base, max, n, c.opts.Jitter)
}

func fullJitter(base, max time.Duration, n int, jitter func(int64) int64) time.Duration {
	ceil := max
	if n < 32 && base<<n > 0 && base<<n < max {
		ceil = base << n
	}
	return time.Duration(jitter(int64(ceil) + 1))
}

// attemptTransport gives every attempt its own deadline, which also covers
// reading the body: the deadline is cancelled when the body is closed. It
// deliberately has no CloseIdleConnections method (see HTTPClient).
type attemptTransport struct {
	base    http.RoundTripper
	timeout time.Duration
}

func (t *attemptTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	d := t.timeout
	if v, ok := req.Context().Value(attemptTimeoutKey{}).(time.Duration); ok && v > 0 {
		d = v
	}
	ctx, cancel := context.WithTimeout(req.Context(), d)
	resp, err := t.base.RoundTrip(req.WithContext(ctx))
	if err != nil {
		cancel()
		return nil, err
	}
	resp.Body = &cancelBody{ReadCloser: resp.Body, cancel: cancel}
	return resp, nil
}

type cancelBody struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (b *cancelBody) Close() error {
	err := b.ReadCloser.Close()
	b.cancel()
	return err
}
