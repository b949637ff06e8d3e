package connectors_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/connectors"
	"github.com/accessbot/accessbot/connectors/connectortest"
)

func TestLookupGetClassifies(t *testing.T) {
	tests := []struct {
		status int
		header map[string]string
		kind   access.LookupFailure
		retry  time.Duration
	}{
		{http.StatusBadRequest, nil, access.LookupInvalid, 0},
		{http.StatusUnauthorized, nil, access.LookupRejected, 0},
		{http.StatusForbidden, nil, access.LookupRejected, 0},
		{http.StatusNotFound, nil, access.LookupNotFound, 0},
		{http.StatusUnprocessableEntity, nil, access.LookupInvalid, 0},
		{http.StatusTooManyRequests, map[string]string{"X-Wait": "7"}, access.LookupUnavailable, 7 * time.Second},
		{http.StatusTooManyRequests, map[string]string{"Retry-After": "9"}, access.LookupUnavailable, 9 * time.Second},
		// The vendor's own header wins over Retry-After.
		{http.StatusTooManyRequests, map[string]string{"X-Wait": "3", "Retry-After": "9"}, access.LookupUnavailable, 3 * time.Second},
		{http.StatusTooManyRequests, nil, access.LookupUnavailable, time.Second},
		{http.StatusBadGateway, nil, access.LookupUnavailable, 0},
	}
	for _, tt := range tests {
		t.Run(http.StatusText(tt.status), func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				for k, v := range tt.header {
					w.Header().Set(k, v)
				}
				w.WriteHeader(tt.status)
				w.Write([]byte(`{"message":"nope"}`))
			}))
			defer srv.Close()
			l := &connectors.Lookup{Vendor: "Acme", Clock: connectortest.NewClock(time.Now()), RateLimitHeader: "X-Wait",
				API: connectors.API{Base: srv.URL, HTTP: connectortest.FastHTTPShortRetryAfter(-1)}}
			err := l.Get(context.Background(), "ticket A-1", "/x", nil, nil)
			var le *access.LookupError
			if !errors.As(err, &le) {
				t.Fatalf("error %v is not a LookupError", err)
			}
			if le.Kind != tt.kind || le.RetryAfter != tt.retry || le.Vendor != "Acme" || le.What != "ticket A-1" {
				t.Errorf("got %+v, want kind %v retry %v", le, tt.kind, tt.retry)
			}
		})
	}
}

func TestLookupGetSendsCredentialsAndHeaders(t *testing.T) {
	var got *http.Request
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.Clone(context.Background())
		w.Write([]byte(`{"x":1}`))
	}))
	defer srv.Close()
	l := &connectors.Lookup{Vendor: "Acme", Clock: connectortest.NewClock(time.Now()),
		API: connectors.API{Base: srv.URL + "/api", HTTP: connectortest.FastHTTP(-1), Auth: connectors.BasicAuth("a@example.com/token", "s3cret"),
			Header: http.Header{"Accept": {"application/vnd.acme+json"}}}}
	var out struct{ X int }
	if err := l.Get(context.Background(), "x", "/things/1", url.Values{"fields": {"a,b"}}, &out); err != nil || out.X != 1 {
		t.Fatalf("Get = %v, out %+v", err, out)
	}
	user, pass, ok := got.BasicAuth()
	if !ok || user != "a@example.com/token" || pass != "s3cret" {
		t.Errorf("basic auth %q %q %v", user, pass, ok)
	}
	if got.Method != http.MethodGet || got.URL.Path != "/api/things/1" || got.URL.RawQuery != "fields=a%2Cb" ||
		got.Header.Get("Accept") != "application/vnd.acme+json" {
		t.Errorf("request %s %s?%s Accept %q", got.Method, got.URL.Path, got.URL.RawQuery, got.Header.Get("Accept"))
	}
}

func TestLookupGetBadAnswerIsUnavailable(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`<html>proxy login</html>`))
	}))
	defer srv.Close()
	l := &connectors.Lookup{Vendor: "Acme", Clock: connectortest.NewClock(time.Now()),
		API: connectors.API{Base: srv.URL + "/api/v2", HTTP: connectortest.FastHTTP(-1)}}
	var out struct{ X int }
	err := l.Get(context.Background(), "x", "/tickets/1", nil, &out)
	var le *access.LookupError
	if !errors.As(err, &le) || le.Kind != access.LookupUnavailable || le.RetryAfter != 0 {
		t.Fatalf("error %v, want unavailable", err)
	}
	// The error names the whole path asked for, not only the part below
	// the API root.
	if want := "Acme lookup of x: unexpected answer to GET /api/v2/tickets/1: "; !strings.HasPrefix(le.Err.Error(), want) {
		t.Errorf("error %q, want it to start %q", le.Err, want)
	}
}

func TestLookupBound(t *testing.T) {
	l := &connectors.Lookup{}
	ctx, cancel := l.Bound(context.Background())
	defer cancel()
	if d, ok := ctx.Deadline(); !ok || time.Until(d) > connectors.DefaultLookupTimeout || time.Until(d) < connectors.DefaultLookupTimeout-time.Second {
		t.Errorf("deadline %v, %v; want about %v from now", d, ok, connectors.DefaultLookupTimeout)
	}
	if got := (connectors.LookupTimeout{}).Whole(); got != connectors.DefaultLookupTimeout {
		t.Errorf("LookupTimeout{}.Whole() = %v", got)
	}
	if got := (connectors.LookupTimeout{Timeout: connectors.Duration(2 * time.Second)}).Whole(); got != 2*time.Second {
		t.Errorf("Whole() = %v, want 2s", got)
	}
}

func TestOnCallConfig(t *testing.T) {
	type block struct {
		Token string `json:"token"`
		connectors.OnCallConfig
	}
	tests := []struct {
		name string
		raw  map[string]any
		want []string // error substrings; none = valid
		base string
	}{
		{"defaults", map[string]any{}, nil, "https://default.example"},
		{"all set", map[string]any{"api_url": "https://eu.example/", "timeout": "3s", "cache_ttl": "2m"}, nil, "https://eu.example"},
		{"bad", map[string]any{"api_url": "http://eu.example", "cache_ttl": "11m"},
			[]string{"connectors.oc.api_url: must be an https:// URL", "connectors.oc.cache_ttl: at most 10m"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Decode runs the promoted Validate and qualifies its errors.
			var b block
			err := connectors.Config{Name: "oc", Raw: tt.raw}.Decode(&b)
			for _, w := range tt.want {
				if err == nil || !strings.Contains(err.Error(), w) {
					t.Errorf("error %v, want %q", err, w)
				}
			}
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				if got := b.Base("https://default.example"); got != tt.base {
					t.Errorf("Base = %q, want %q", got, tt.base)
				}
			}
		})
	}
}

func TestOnCallCacheDoesNotCacheFailures(t *testing.T) {
	clock := connectortest.NewClock(time.Date(2026, 3, 30, 9, 0, 0, 0, time.UTC))
	calls := 0
	fail := true
	c := connectors.NewOnCallCache(clock, 0, func(context.Context, string, time.Time) ([]string, error) {
		calls++
		if fail {
			return nil, &access.LookupError{Vendor: "X"}
		}
		return []string{"a@example.com"}, nil
	})
	if _, err := c.OnCall(context.Background(), "S", clock.Now()); err == nil {
		t.Fatal("no error")
	}
	fail = false
	got, err := c.OnCall(context.Background(), "S", clock.Now())
	if err != nil || !slices.Equal(got, []string{"a@example.com"}) || calls != 2 {
		t.Errorf("after a failure: %v %v, %d calls", got, err, calls)
	}
	got[0] = "changed"
	again, _ := c.OnCall(context.Background(), "S", clock.Now())
	if again[0] != "a@example.com" || calls != 2 {
		t.Errorf("the cache handed out its own slice or fetched again: %v, %d calls", again, calls)
	}
	clock.Add(connectors.DefaultOnCallTTL)
	_, _ = c.OnCall(context.Background(), "S", clock.Now())
	if calls != 3 {
		t.Errorf("%d calls after the default TTL, want 3", calls)
	}
}

func TestNormalizeEmails(t *testing.T) {
	got := connectors.NormalizeEmails([]string{" B@x.com", "a@x.com", "b@X.com", ""})
	if !slices.Equal(got, []string{"b@x.com", "a@x.com"}) {
		t.Errorf("NormalizeEmails = %v", got)
	}
}
