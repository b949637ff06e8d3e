package connectors

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/accessbot/accessbot/access"
)

// StatusError is a non-2xx answer from a target, as built by Classify. It
// is always wrapped in an access.ConnectorError; use errors.As to read it.
// Its text holds the operation, method, the URL without userinfo, query or
// fragment, the status, and at most a short sanitised excerpt of the
// target's error message; never request or response bodies as such.
type StatusError struct {
	Op         string // what we were doing, e.g. "grant AR-1042"
	Method     string
	URL        string // scheme://host/path only
	StatusCode int
	Message    string // sanitised excerpt of the target's error message; may be ""
	// CredentialsRejected is set for 401 and 403.
	CredentialsRejected bool
}

func (e *StatusError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s %s: %d %s", e.Op, e.Method, e.URL, e.StatusCode, http.StatusText(e.StatusCode))
	if e.CredentialsRejected {
		b.WriteString(": the target rejected the connector's credentials (check its token or secret, and its permissions)")
	}
	if e.Message != "" {
		fmt.Fprintf(&b, ": %q", e.Message)
	}
	return b.String()
}

// transportError is a failure with no HTTP answer, its text scrubbed of
// URL query strings; it unwraps to the underlying cause (for errors.Is
// with context.DeadlineExceeded and the like).
type transportError struct {
	msg string
	err error
}

func (e *transportError) Error() string { return e.msg }
func (e *transportError) Unwrap() error { return e.err }

// RetryableStatus reports whether an HTTP status is worth retrying: 408,
// 425, 429 and every 5xx. Status 0 (no valid status) is retryable too.
func RetryableStatus(code int) bool {
	switch {
	case code == 0, code == http.StatusRequestTimeout, code == http.StatusTooEarly,
		code == http.StatusTooManyRequests, code >= 500:
		return true
	}
	return false
}

// Classify turns the outcome of Doer.Do into a connector error for op (a
// short description such as "grant AR-1042 in crm"), following DESIGN.md
// §4 and §6:
//
//   - a 2xx response: nil; the body is left to the caller;
//   - a transport error, timeout or cancellation, 408, 425, 429 and 5xx:
//     access.RetryableError, with RetryAfter from a Retry-After header
//     (seconds or HTTP date) on 429 and 503;
//   - 401 and 403: access.PermanentError saying the credentials were
//     rejected;
//   - any other status: access.PermanentError.
//
// For non-2xx answers Classify reads at most 4 KiB of the body for an
// excerpt of the target's error message and closes it (closing it again is
// harmless). Connectors that treat some statuses as success (404 on
// revoke) check resp.StatusCode before calling Classify.
//
// The error never contains a URL query string, userinfo, a request body or
// a raw response body; the excerpt is cut to 200 characters with
// control characters removed and token-like words replaced by [redacted].
func Classify(resp *http.Response, err error, op string) error {
	if err != nil {
		if resp != nil && resp.Body != nil {
			resp.Body.Close()
		}
		return access.RetryableError(scrubTransport(op, err), 0)
	}
	if resp == nil {
		return access.RetryableError(fmt.Errorf("%s: no response", op), 0)
	}
	if resp.StatusCode >= 200 && resp.StatusCode <= 299 {
		return nil
	}
	se := &StatusError{Op: op, StatusCode: resp.StatusCode}
	if resp.Request != nil {
		se.Method = resp.Request.Method
		se.URL = cleanURL(resp.Request.URL)
	}
	if resp.Body != nil {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
		resp.Body.Close()
		se.Message = excerpt(b, resp.Header.Get("Content-Type"))
	}
	switch {
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		se.CredentialsRejected = true
		return access.PermanentError(se)
	case RetryableStatus(resp.StatusCode):
		var ra time.Duration
		if d, ok := retryAfter(resp, time.Now()); ok {
			ra = d
		}
		return access.RetryableError(se, ra)
	}
	return access.PermanentError(se)
}

// ParseRetryAfter parses a Retry-After value (RFC 9110 §10.2.3): either
// non-negative delay seconds or an HTTP date, taken relative to now (a date
// in the past is a zero wait).
func ParseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n < 0 {
			return 0, false
		}
		if n > int64(100*365*24*time.Hour/time.Second) {
			n = int64(100 * 365 * 24 * time.Hour / time.Second)
		}
		return time.Duration(n) * time.Second, true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	return max(t.Sub(now), 0), true
}

// retryAfter reads Retry-After from a 429 or 503 response (the statuses it
// means "come back later" for).
func retryAfter(resp *http.Response, now time.Time) (time.Duration, bool) {
	if resp == nil || (resp.StatusCode != http.StatusTooManyRequests && resp.StatusCode != http.StatusServiceUnavailable) {
		return 0, false
	}
	return ParseRetryAfter(resp.Header.Get("Retry-After"), now)
}

// cleanURL drops userinfo, query and fragment.
func cleanURL(u *url.URL) string {
	if u == nil {
		return ""
	}
	c := *u
	c.User = nil
	c.RawQuery = ""
	c.ForceQuery = false
	c.Fragment = ""
	c.RawFragment = ""
	return c.String()
}

var urlInText = regexp.MustCompile(`(?i)\b[a-z][a-z0-9+.-]*://[^\s"'<>]+`)

// scrubURLs rewrites every URL in s to scheme://host/path.
func scrubURLs(s string) string {
	return urlInText.ReplaceAllStringFunc(s, func(m string) string {
		u, err := url.Parse(m)
		if err != nil {
			if i := strings.IndexAny(m, "?#"); i >= 0 {
				return m[:i]
			}
			return m
		}
		return cleanURL(u)
	})
}

func scrubTransport(op string, err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		method := strings.ToUpper(ue.Op)
		u, perr := url.Parse(ue.URL)
		where := "(unparsable URL)"
		if perr == nil {
			where = cleanURL(u)
		}
		return &transportError{
			msg: fmt.Sprintf("%s: %s %s: %s", op, method, where, scrubURLs(ue.Err.Error())),
			err: ue.Err,
		}
	}
	return &transportError{msg: fmt.Sprintf("%s: %s", op, scrubURLs(err.Error())), err: err}
}

// excerpt extracts the target's error message from a response body: a
// well-known field of a JSON object, else plain text. HTML pages give "".
func excerpt(b []byte, contentType string) string {
	if len(b) == 0 || !utf8.Valid(b) {
		return ""
	}
	var msg string
	var obj map[string]any
	if json.Unmarshal(b, &obj) == nil {
		msg = jsonMessage(obj)
	} else if strings.Contains(contentType, "html") || strings.HasPrefix(strings.TrimSpace(string(b)), "<") {
		return ""
	} else if !strings.HasPrefix(strings.TrimSpace(string(b)), "{") {
		msg = string(b)
	}
	return sanitize(msg, 200)
}

// jsonMessage looks for the error message in the shapes vendors use:
// {"error": "…"}, {"error": {"message": "…"}}, {"message": "…"},
// {"errorSummary": "…"} (Okta), {"errors": [{"message": "…"}]}, …
func jsonMessage(obj map[string]any) string {
	for _, k := range []string{"error_description", "errorSummary", "message", "detail", "title", "error", "msg", "errors"} {
		switch v := obj[k].(type) {
		case string:
			if v != "" {
				return v
			}
		case map[string]any:
			if m := jsonMessage(v); m != "" {
				return m
			}
		case []any:
			if len(v) > 0 {
				if o, ok := v[0].(map[string]any); ok {
					if m := jsonMessage(o); m != "" {
						return m
					}
				}
				if s, ok := v[0].(string); ok {
					return s
				}
			}
		}
	}
	return ""
}

// tokenLike matches words that may be credentials echoed back by a target:
// long runs of base64/hex-ish characters, or well-known token prefixes.
var tokenLike = regexp.MustCompile(`(?i)\b(?:bearer\s+\S+|(?:xox[abpr]|xapp|ghp|whsec|sk|pk)[-_][A-Za-z0-9._~+/=-]+|[A-Za-z0-9._~+/=-]*[0-9][A-Za-z0-9._~+/=-]*[A-Za-z][A-Za-z0-9._~+/=-]*|[A-Za-z0-9._~+/=-]*[A-Za-z][A-Za-z0-9._~+/=-]*[0-9][A-Za-z0-9._~+/=-]*)`)

// sanitize collapses white space, drops control characters, redacts
// token-like words of 24 characters or more, scrubs URLs and cuts to n
// runes.
func sanitize(s string, n int) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == utf8.RuneError {
			return ' '
		}
		return r
	}, s)
	s = strings.Join(strings.Fields(s), " ")
	s = scrubURLs(s)
	s = tokenLike.ReplaceAllStringFunc(s, func(w string) string {
		if len(w) >= 24 || strings.HasPrefix(strings.ToLower(w), "bearer ") || strings.HasPrefix(strings.ToLower(w), "whsec_") || strings.HasPrefix(strings.ToLower(w), "xox") {
			return "[redacted]"
		}
		return w
	})
	if utf8.RuneCountInString(s) > n {
		r := []rune(s)
		s = string(r[:n]) + "…"
	}
	return s
}
