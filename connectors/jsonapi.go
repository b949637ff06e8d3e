package connectors

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/accessbot/accessbot/access"
)

// JSONCall is one request to a target's JSON API, sent by SendJSON.
type JSONCall struct {
	// Op names what we are doing in errors ("grant AR-1042 in crm").
	Op     string
	Method string
	// Base and Path make the URL; Path alone names the request in the
	// error for an unreadable answer.
	Base, Path string
	// Query is appended to the URL when non-empty.
	Query url.Values
	// Body is JSON-encoded and sent when non-nil.
	Body any
	// Form, when non-nil, is sent instead of Body as
	// application/x-www-form-urlencoded (OAuth token requests).
	Form url.Values
	// Header holds extra request headers (Idempotency-Key, a vendor's
	// media type); they are set after the JSON defaults, so they win.
	Header http.Header
	// Authorize, when set, adds credentials and any other vendor headers
	// to the request before it is sent.
	Authorize func(*http.Request)
	// Timeout is the per-attempt timeout (see WithAttemptTimeout); zero
	// leaves the client's default.
	Timeout time.Duration
	// Accept lists non-2xx statuses that SendJSON returns with a nil error
	// (the body drained, Out untouched): 404 on revoke, or a 401 the
	// caller answers by refreshing its token.
	Accept []int
	// Out receives the decoded body of a 2xx answer when non-nil.
	Out any
	// Headers, when non-nil, receives the answer's headers (Link paging).
	Headers *http.Header
	// ErrorOut, when non-nil, receives the decoded JSON body of a non-2xx
	// answer (at most 4 KiB; left as is when it does not decode), for
	// vendor errors whose body carries the meaning (Graph's error.code,
	// SCIM's scimType). The error SendJSON returns still quotes it.
	ErrorOut any
	// RetryAfter, when set, reads the wait a 429 answer asks for from
	// the target's own headers (Okta's X-Rate-Limit-Reset); it is used
	// when the answer carries no Retry-After.
	RetryAfter func(h http.Header) time.Duration
	// MaxBody caps the decoded body (default 8 MiB).
	MaxBody int64
	// BadAnswer, when set, makes the error for a 2xx body that does not
	// decode into Out; by default a retryable "unexpected answer to
	// METHOD PATH" error.
	BadAnswer func(err error) error
}

// NewJSONRequest builds a request for a JSON API: u with q appended when
// non-empty, body JSON-encoded when non-nil, and the Accept (and, with a
// body, Content-Type) headers set to application/json. Its errors hold no
// body or URL.
func NewJSONRequest(ctx context.Context, method, u string, q url.Values, body any) (*http.Request, error) {
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, fmt.Errorf("encode body: %w", err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return req, nil
}

// SendJSON sends c through d and returns the answer's status:
//
//   - a transport failure: 0 and the error classified by Classify;
//   - a status listed in c.Accept: that status and nil;
//   - any other non-2xx status: the status and Classify's error;
//   - 2xx: the status, and nil once the body is decoded into c.Out (when
//     set); a body that does not decode is retryable (c.BadAnswer): a 2xx
//     answer in an undocumented shape, such as a proxy's page, must never
//     end a revoke.
//
// The body is always drained and closed. Vendor rules (token refresh on
// 401, error bodies with a meaning) stay with the caller, which sees the
// status.
func SendJSON(ctx context.Context, d Doer, c JSONCall) (int, error) {
	var req *http.Request
	var err error
	if c.Form != nil {
		req, err = newFormRequest(ctx, c.Method, c.Base+c.Path, c.Form)
	} else {
		req, err = NewJSONRequest(ctx, c.Method, c.Base+c.Path, c.Query, c.Body)
	}
	if err != nil {
		return 0, access.PermanentError(fmt.Errorf("%s: %w", c.Op, err))
	}
	for k, vs := range c.Header {
		req.Header[http.CanonicalHeaderKey(k)] = vs
	}
	if c.Authorize != nil {
		c.Authorize(req)
	}
	if c.Timeout > 0 {
		ctx = WithAttemptTimeout(ctx, c.Timeout)
	}
	resp, err := d.Do(ctx, req)
	if err != nil {
		return 0, Classify(resp, err, c.Op)
	}
	if c.Headers != nil {
		*c.Headers = resp.Header
	}
	if c.ErrorOut != nil && (resp.StatusCode < 200 || resp.StatusCode > 299) {
		peekJSON(resp, c.ErrorOut)
	}
	for _, s := range c.Accept {
		if resp.StatusCode == s {
			Drain(resp)
			return s, nil
		}
	}
	if err := Classify(resp, nil, c.Op); err != nil {
		var ce *access.ConnectorError
		if c.RetryAfter != nil && resp.StatusCode == http.StatusTooManyRequests && errors.As(err, &ce) && ce.RetryAfter == 0 {
			ce.RetryAfter = c.RetryAfter(resp.Header)
		}
		return resp.StatusCode, err
	}
	defer Drain(resp)
	if c.Out != nil {
		limit := c.MaxBody
		if limit <= 0 {
			limit = 8 << 20
		}
		if err := json.NewDecoder(io.LimitReader(resp.Body, limit)).Decode(c.Out); err != nil {
			if c.BadAnswer != nil {
				return resp.StatusCode, c.BadAnswer(err)
			}
			return resp.StatusCode, access.RetryableError(fmt.Errorf("%s: unexpected answer to %s %s: %v", c.Op, c.Method, c.Path, err), 0)
		}
	}
	return resp.StatusCode, nil
}

// newFormRequest builds a form-encoded request that expects JSON back.
func newFormRequest(ctx context.Context, method, u string, form url.Values) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, method, u, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	return req, nil
}

// peekJSON decodes up to 4 KiB of resp's body into v and puts the bytes
// back, so that Classify can still quote the target's message.
func peekJSON(resp *http.Response, v any) {
	if resp.Body == nil {
		return
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(b))
	_ = json.Unmarshal(b, v)
}

// Drain reads what is left of a response body, up to 64 KiB, so that the
// connection can be reused, and closes it. A nil response or body is
// ignored.
func Drain(resp *http.Response) {
	if resp == nil || resp.Body == nil {
		return
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
}
