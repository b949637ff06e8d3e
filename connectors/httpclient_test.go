package connectors_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/connectors"
)

// server answers with the statuses in order (the last one repeats) and
// records what it received.
type server struct {
	mu       sync.Mutex
	srv      *httptest.Server
	statuses []int
	header   http.Header // set on every answer
	body     string      // answer body
	got      []string    // request bodies
}

func newServer(t *testing.T, body string, statuses ...int) *server {
	s := &server{statuses: statuses, header: http.Header{}, body: body}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		defer s.mu.Unlock()
		s.got = append(s.got, string(b))
		status := s.statuses[0]
		if len(s.statuses) > 1 {
			s.statuses = s.statuses[1:]
		}
		for k, v := range s.header {
			w.Header()[k] = v
		}
		w.WriteHeader(status)
		io.WriteString(w, s.body)
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *server) calls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.got)
}

func fast(opts connectors.HTTPOptions) *connectors.HTTPClient {
	opts.BackoffBase, opts.BackoffMax = time.Millisecond, 2*time.Millisecond
	return connectors.NewHTTPClient(opts)
}

func do(t *testing.T, c connectors.Doer, method, url string, hdr map[string]string) error {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(`{"x":1}`))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(t.Context(), req)
	if err == nil && resp.StatusCode < 300 {
		resp.Body.Close()
		return nil
	}
	return connectors.Classify(resp, err, "test op")
}

func TestClassifyStatuses(t *testing.T) {
	tests := []struct {
		status int
		want   string // "", "retryable", "permanent"
	}{
		{200, ""}, {204, ""},
		{400, "permanent"}, {401, "permanent"}, {403, "permanent"}, {404, "permanent"}, {409, "permanent"}, {422, "permanent"},
		{408, "retryable"}, {425, "retryable"}, {429, "retryable"},
		{500, "retryable"}, {501, "retryable"}, {502, "retryable"}, {503, "retryable"}, {504, "retryable"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.status), func(t *testing.T) {
			s := newServer(t, `{"error":"nope"}`, tt.status)
			err := do(t, fast(connectors.HTTPOptions{RetryMax: -1}), "GET", s.srv.URL+"/p?token=QUERYSECRET", nil)
			got := ""
			if err != nil {
				got = classOf(err)
			}
			if got != tt.want {
				t.Fatalf("class %q, want %q (%v)", got, tt.want, err)
			}
			if err == nil {
				return
			}
			if strings.Contains(err.Error(), "QUERYSECRET") {
				t.Errorf("error leaks the query: %v", err)
			}
			var se *connectors.StatusError
			if !errors.As(err, &se) || se.StatusCode != tt.status {
				t.Errorf("no StatusError with %d in %v", tt.status, err)
			}
			if !strings.Contains(err.Error(), `"nope"`) {
				t.Errorf("error lacks the vendor message: %v", err)
			}
			if (tt.status == 401 || tt.status == 403) != strings.Contains(err.Error(), "rejected the connector's credentials") {
				t.Errorf("credentials wording wrong: %v", err)
			}
		})
	}
}

func classOf(err error) string {
	c, _ := access.Classify(err)
	return c.String()
}

func TestSecretsNotInErrors(t *testing.T) {
	s := newServer(t, `{"error":"invalid token xoxb-123456789012-abcdefghijklmnopqrstuvwx","message_extra":"x"}`, 401)
	url := strings.Replace(s.srv.URL, "http://", "http://user:PASSWORD@", 1) + "/p?api_key=QUERYSECRET#frag"
	err := do(t, fast(connectors.HTTPOptions{RetryMax: -1}), "GET", url, nil)
	for _, leak := range []string{"xoxb-123456789012", "QUERYSECRET", "PASSWORD", "frag"} {
		if strings.Contains(err.Error(), leak) {
			t.Errorf("error leaks %q: %v", leak, err)
		}
	}
	if !strings.Contains(err.Error(), "invalid token [redacted]") {
		t.Errorf("excerpt not kept: %v", err)
	}
}

func TestExcerptIsShortAndNoHTML(t *testing.T) {
	s := newServer(t, strings.Repeat("word ", 500), 400)
	err := do(t, fast(connectors.HTTPOptions{RetryMax: -1}), "GET", s.srv.URL, nil)
	var se *connectors.StatusError
	if !errors.As(err, &se) || len([]rune(se.Message)) > 201 {
		t.Fatalf("excerpt too long: %d", len(se.Message))
	}
	s = newServer(t, "<html><body>Bad gateway page</body></html>", 502)
	err = do(t, fast(connectors.HTTPOptions{RetryMax: -1}), "GET", s.srv.URL, nil)
	if errors.As(err, &se); se.Message != "" {
		t.Fatalf("HTML excerpt %q", se.Message)
	}
}

func TestRetryAfterBeyondCapDoesNotBlock(t *testing.T) {
	for _, status := range []int{429, 503} {
		s := newServer(t, "", status)
		s.header.Set("Retry-After", "3600")
		start := time.Now()
		err := do(t, fast(connectors.HTTPOptions{}), "GET", s.srv.URL, nil)
		if took := time.Since(start); took > 2*time.Second {
			t.Fatalf("%d: took %v", status, took)
		}
		class, ra := access.Classify(err)
		if class != access.Retryable || ra != time.Hour || s.calls() != 1 {
			t.Fatalf("%d: class %v, retry after %v, %d calls; want retryable, 1h, 1", status, class, ra, s.calls())
		}
	}
}

func TestRetryAfterHTTPDate(t *testing.T) {
	now := time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)
	d, ok := connectors.ParseRetryAfter(now.Add(90*time.Second).Format(http.TimeFormat), now)
	if !ok || d != 90*time.Second {
		t.Fatalf("date: %v %v", d, ok)
	}
	if d, ok := connectors.ParseRetryAfter("120", now); !ok || d != 2*time.Minute {
		t.Fatalf("seconds: %v %v", d, ok)
	}
	if d, ok := connectors.ParseRetryAfter(now.Add(-time.Hour).Format(http.TimeFormat), now); !ok || d != 0 {
		t.Fatalf("past date: %v %v", d, ok)
	}
	for _, bad := range []string{"", "-1", "soon"} {
		if _, ok := connectors.ParseRetryAfter(bad, now); ok {
			t.Errorf("%q parsed", bad)
		}
	}
	// Within the cap, an HTTP-date Retry-After in the past means "now":
	// honoured without a real wait, and retried.
	s := newServer(t, "", 503, 200)
	s.header.Set("Retry-After", time.Now().Add(-time.Minute).UTC().Format(http.TimeFormat))
	if err := do(t, fast(connectors.HTTPOptions{}), "GET", s.srv.URL, nil); err != nil || s.calls() != 2 {
		t.Fatalf("err %v, %d calls", err, s.calls())
	}
}

func TestRetriesOnlyIdempotent(t *testing.T) {
	tests := []struct {
		name   string
		method string
		hdr    map[string]string
		calls  int
	}{
		{"GET", "GET", nil, 3},
		{"PUT", "PUT", nil, 3},
		{"DELETE", "DELETE", nil, 3},
		{"POST", "POST", nil, 1},
		{"PATCH", "PATCH", nil, 1},
		{"POST with Idempotency-Key", "POST", map[string]string{"Idempotency-Key": "AR-1.grant"}, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newServer(t, "", 503)
			err := do(t, fast(connectors.HTTPOptions{}), tt.method, s.srv.URL, tt.hdr)
			if class, _ := access.Classify(err); err == nil || class != access.Retryable {
				t.Fatalf("err %v", err)
			}
			if s.calls() != tt.calls {
				t.Fatalf("%d calls, want %d", s.calls(), tt.calls)
			}
			for i, b := range s.got {
				if b != `{"x":1}` {
					t.Errorf("attempt %d body %q: not replayed", i, b)
				}
			}
		})
	}
}

func TestRecoversWithinInnerLoop(t *testing.T) {
	s := newServer(t, "", 500, 429, 200)
	if err := do(t, fast(connectors.HTTPOptions{}), "GET", s.srv.URL, nil); err != nil {
		t.Fatal(err)
	}
	if s.calls() != 3 {
		t.Fatalf("%d calls", s.calls())
	}
}

func TestTransportError(t *testing.T) {
	s := newServer(t, "", 200)
	url := s.srv.URL
	s.srv.Close()
	err := do(t, fast(connectors.HTTPOptions{}), "GET", url+"/p?token=QUERYSECRET", nil)
	if class, _ := access.Classify(err); err == nil || class != access.Retryable {
		t.Fatalf("err %v", err)
	}
	if strings.Contains(err.Error(), "QUERYSECRET") || !strings.Contains(err.Error(), "test op: GET http://") {
		t.Fatalf("error text: %v", err)
	}
}

func TestAttemptTimeout(t *testing.T) {
	release := make(chan struct{})
	var mu sync.Mutex
	calls := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		calls++
		mu.Unlock()
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	c := fast(connectors.HTTPOptions{AttemptTimeout: time.Hour, RetryMax: 1})
	req, _ := http.NewRequest("GET", srv.URL, nil)
	// The per-request override (a connector's `timeout:`) wins.
	resp, err := c.Do(connectors.WithAttemptTimeout(t.Context(), 20*time.Millisecond), req)
	err = connectors.Classify(resp, err, "slow")
	if class, _ := access.Classify(err); err == nil || class != access.Retryable || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if calls != 2 {
		t.Fatalf("%d calls, want 2 (each attempt timed out on its own)", calls)
	}
}

func TestCancelledContextIsPrompt(t *testing.T) {
	s := newServer(t, "", 503)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	req, _ := http.NewRequest("GET", s.srv.URL, nil)
	start := time.Now()
	resp, err := fast(connectors.HTTPOptions{}).Do(ctx, req)
	err = connectors.Classify(resp, err, "cancelled")
	if time.Since(start) > time.Second || !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v after %v", err, time.Since(start))
	}
}

// A probe of a failing target (access.WithProbe) is one request: the
// lifecycle already paces probes, and inner retries would multiply them.
func TestProbeIsOneAttempt(t *testing.T) {
	s := newServer(t, "down", 503)
	c := fast(connectors.HTTPOptions{})
	req, err := http.NewRequest(http.MethodGet, s.srv.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Do(access.WithProbe(t.Context()), req)
	if class, _ := access.Classify(connectors.Classify(resp, err, "probe")); class != access.Retryable {
		t.Fatalf("class %v", class)
	}
	if n := s.calls(); n != 1 {
		t.Fatalf("a probe made %d requests, want 1", n)
	}
	req2, _ := http.NewRequest(http.MethodGet, s.srv.URL, nil)
	resp, err = c.Do(t.Context(), req2)
	_ = connectors.Classify(resp, err, "normal")
	if n := s.calls(); n != 1+3 {
		t.Fatalf("a normal call made %d requests, want 3 (inner retries)", n-1)
	}
}
