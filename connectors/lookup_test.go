package connectors_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/connectors"
	"github.com/accessbot/accessbot/connectors/connectortest"
)

func TestGetLookupClassifies(t *testing.T) {
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
			err := connectors.GetLookup(context.Background(), connectortest.FastHTTPShortRetryAfter(-1), time.Now(), connectors.LookupCall{
				Vendor: "Acme", What: "ticket A-1", URL: srv.URL + "/x", RateLimitHeader: "X-Wait",
			})
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

func TestGetLookupBadAnswerIsUnavailable(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`<html>proxy login</html>`))
	}))
	defer srv.Close()
	var out struct{ X int }
	err := connectors.GetLookup(context.Background(), connectortest.FastHTTP(-1), time.Now(), connectors.LookupCall{
		Vendor: "Acme", What: "x", URL: srv.URL, Out: &out,
	})
	var le *access.LookupError
	if !errors.As(err, &le) || le.Kind != access.LookupUnavailable {
		t.Errorf("error %v, want unavailable", err)
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
