package connectors

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
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
	req, err := NewJSONRequest(ctx, c.Method, c.Base+c.Path, c.Query, c.Body)
	if err != nil {
		return 0, access.PermanentError(fmt.Errorf("%s: %w", c.Op, err))
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
	for _, s := range c.Accept {
		if resp.StatusCode == s {
			Drain(resp)
			return s, nil
		}
	}
	if err := Classify(resp, nil, c.Op); err != nil {
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
