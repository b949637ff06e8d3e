package opsgenie_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/connectors/connectortest"
	"github.com/accessbot/accessbot/connectors/opsgenie"
)

const testKey = "eb243592-faa2-4ba2-a551-1afdf565c889"

const (
	rotaID     = "d875e654-9b4e-4219-a83c-0c26936d18de"
	disabledID = "11111111-2222-3333-4444-555555555555"
)

// fakeOpsgenie is an httptest Opsgenie API written from its documentation
// (see the package doc): "GenieKey <key>" authentication answering 401;
// GET /v2/schedules/{identifier}/on-calls resolving the identifier by id
// or, with scheduleIdentifierType=name, by name (anything else 422);
// onCallRecipients only with flat=true (onCallParticipants otherwise);
// the timeline read at `date` (now when absent; an unparsable date is
// 422); 404 for an unknown schedule; every answer wrapped as {"data",
// "took", "requestId"} and every error as {"message", "took",
// "requestId"} (docs/response; the Go SDK's ApiError has the same
// fields); 403 with code 40301 for a key whose team may not read the
// schedule; 429 with X-RateLimit-State THROTTLED, X-RateLimit-Reason and
// X-RateLimit-Period-In-Sec (docs/api-rate-limiting; body as in the Go
// SDK's client tests).
type fakeOpsgenie struct {
	connectortest.Faults

	srv       *httptest.Server
	mu        sync.Mutex
	schedules []*fakeSchedule
	forbidden map[string]bool // schedule IDs this key's team may not read
	lastQuery url.Values
	// gate, when set, holds the first request until it is closed.
	gate chan struct{}
	once sync.Once
}

type fakeSchedule struct {
	id, name string
	enabled  bool
	shifts   []shift
}

type shift struct {
	user       string // the username, an email
	start, end time.Time
}

var now = time.Date(2026, 3, 30, 9, 0, 0, 0, time.UTC)

// newFake starts the fake; a gate, when given, holds its first request
// until the gate is closed.
func newFake(t *testing.T, gate ...chan struct{}) *fakeOpsgenie {
	f := &fakeOpsgenie{
		schedules: []*fakeSchedule{
			{id: rotaID, name: "Platform rota", enabled: true, shifts: []shift{
				{"Alice@Example.com", now.Add(-2 * time.Hour), now.Add(6 * time.Hour)},
				{"bob@example.com", now.Add(-10 * time.Hour), now}, // ended exactly now
				{"carol@example.com", now.Add(time.Minute), now.Add(8 * time.Hour)},
			}},
			{id: disabledID, name: "Old rota", enabled: false, shifts: []shift{
				{"alice@example.com", now.Add(-time.Hour), now.Add(time.Hour)},
			}},
		},
		forbidden: map[string]bool{},
	}
	if len(gate) > 0 {
		f.gate = gate[0]
	}
	f.srv = connectortest.Serve(t, f.serve)
	return f
}

func ogAnswer(w http.ResponseWriter, status int, body map[string]any) {
	body["took"] = 0.012
	body["requestId"] = "9ae63dd7-ed00-4c81-86f0-c4ffd33142c9"
	w.Header().Set("X-Request-Id", "9ae63dd7-ed00-4c81-86f0-c4ffd33142c9")
	connectortest.ReplyJSON(w, status, "application/json", body)
}

func (f *fakeOpsgenie) serve(w http.ResponseWriter, r *http.Request) {
	if f.gate != nil {
		f.once.Do(func() { <-f.gate })
	}
	f.Record(r)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lastQuery = r.URL.Query()
	if r.Header.Get("Authorization") != "GenieKey "+testKey {
		ogAnswer(w, http.StatusUnauthorized, map[string]any{"message": "Could not authenticate"})
		return
	}
	if status, ok := f.Take(); ok {
		if status == http.StatusTooManyRequests {
			w.Header().Set("X-RateLimit-State", "THROTTLED")
			w.Header().Set("X-RateLimit-Reason", "ACCOUNT")
			w.Header().Set("X-RateLimit-Period-In-Sec", "60")
			ogAnswer(w, status, map[string]any{"message": "TooManyRequests"})
			return
		}
		ogAnswer(w, status, map[string]any{"message": http.StatusText(status)})
		return
	}
	rest, ok := strings.CutPrefix(r.URL.Path, "/v2/schedules/")
	ident, ok2 := strings.CutSuffix(rest, "/on-calls")
	if r.Method != http.MethodGet || !ok || !ok2 || strings.Contains(ident, "/") {
		ogAnswer(w, http.StatusNotFound, map[string]any{"message": "Could not find handler for request"})
		return
	}
	q := r.URL.Query()
	byName := false
	switch q.Get("scheduleIdentifierType") {
	case "", "id":
	case "name":
		byName = true
	default:
		ogAnswer(w, http.StatusUnprocessableEntity, map[string]any{"message": "Schedule identifier type is not valid"})
		return
	}
	at := time.Now()
	if d := q.Get("date"); d != "" {
		var err error
		if at, err = time.Parse("2006-01-02T15:04:05.000Z07:00", d); err != nil {
			if at, err = time.Parse("2006-01-02T15:04:05Z07:00", d); err != nil {
				ogAnswer(w, http.StatusUnprocessableEntity, map[string]any{"message": "Date is not valid"})
				return
			}
		}
	}
	var s *fakeSchedule
	for _, c := range f.schedules {
		if (!byName && c.id == ident) || (byName && c.name == ident) {
			s = c
		}
	}
	if s == nil {
		ogAnswer(w, http.StatusNotFound, map[string]any{"message": fmt.Sprintf("Schedule with identifier [%s] does not exist", ident)})
		return
	}
	if f.forbidden[s.id] {
		ogAnswer(w, http.StatusForbidden, map[string]any{"message": "You are not authorized to access the schedule", "code": 40301})
		return
	}
	var who []string
	if s.enabled {
		for _, sh := range s.shifts {
			if !at.Before(sh.start) && at.Before(sh.end) {
				who = append(who, sh.user)
			}
		}
	}
	data := map[string]any{"_parent": map[string]any{"id": s.id, "name": s.name, "enabled": s.enabled}}
	if q.Get("flat") == "true" {
		data["onCallRecipients"] = append([]string{}, who...)
	} else {
		var parts []map[string]any
		for _, u := range who {
			parts = append(parts, map[string]any{"id": "u-" + u, "name": u, "type": "user"})
		}
		data["onCallParticipants"] = parts
	}
	ogAnswer(w, http.StatusOK, map[string]any{"data": data})
}

func build(t *testing.T, f *fakeOpsgenie, clock access.Clock, extra map[string]any) *opsgenie.Client {
	t.Helper()
	raw := connectortest.With(map[string]any{"api_key": testKey, "api_url": f.srv.URL}, extra)
	return connectortest.MustBuild(t, opsgenie.Type, opsgenie.Factory, "og", raw, connectortest.FakeEnv(clock)).(*opsgenie.Client)
}

func TestOnCall(t *testing.T) {
	f := newFake(t)
	c := build(t, f, connectortest.NewClock(now), nil)
	ctx := context.Background()
	got, err := c.OnCall(ctx, rotaID, now)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"alice@example.com"}, got); diff != "" {
		t.Errorf("on call (-want +got):\n%s", diff)
	}
	f.mu.Lock()
	q := f.lastQuery
	f.mu.Unlock()
	want := url.Values{"flat": {"true"}, "date": {"2026-03-30T09:00:00.000Z"}, "scheduleIdentifierType": {"id"}}
	if diff := cmp.Diff(want, q); diff != "" {
		t.Errorf("query (-want +got):\n%s", diff)
	}

	// By name, at another instant (Carol's shift has begun).
	got, err = c.OnCall(ctx, "Platform rota", now.Add(2*time.Minute))
	if err != nil || !slices.Equal(got, []string{"alice@example.com", "carol@example.com"}) {
		t.Errorf("by name: %v, %v", got, err)
	}

	rule := access.OnCallRule{Source: "og", Schedule: rotaID}
	if chk := access.CheckOnCall(ctx, c, rule, access.Person{Email: "ALICE@example.com"}, now); !chk.OnCall {
		t.Errorf("alice: %+v", chk)
	}
	if chk := access.CheckOnCall(ctx, c, rule, access.Person{Email: "bob@example.com"}, now); chk.OnCall || chk.Err != nil {
		t.Errorf("bob, whose shift just ended: %+v", chk)
	}
}

func TestDisabledScheduleHasNobody(t *testing.T) {
	f := newFake(t)
	c := build(t, f, connectortest.NewClock(now), nil)
	got, err := c.OnCall(context.Background(), disabledID, now)
	if err != nil || len(got) != 0 {
		t.Errorf("disabled schedule: %v, %v", got, err)
	}
}

func TestFailuresFailClosed(t *testing.T) {
	tests := []struct {
		name     string
		schedule string
		setup    func(f *fakeOpsgenie, extra map[string]any)
		kind     access.LookupFailure
		reason   string
		retry    time.Duration
		down     bool
	}{
		{"unknown schedule: 404", "00000000-0000-0000-0000-000000000000", nil, access.LookupNotFound,
			"Opsgenie has no schedule 00000000-0000-0000-0000-000000000000 (or accessbot may not see it)", 0, false},
		{"unknown name: 404", "Nightly", nil, access.LookupNotFound, "Opsgenie has no schedule Nightly (or accessbot may not see it)", 0, false},
		{"bad key: 401", rotaID, func(_ *fakeOpsgenie, extra map[string]any) { extra["api_key"] = "wrong" },
			access.LookupRejected, "Opsgenie refused accessbot's credentials or permissions", 0, false},
		{"team key without access: 403", rotaID, func(f *fakeOpsgenie, _ map[string]any) { f.forbidden[rotaID] = true },
			access.LookupRejected, "Opsgenie refused accessbot's credentials or permissions", 0, false},
		{"throttled: 429", rotaID, func(f *fakeOpsgenie, _ map[string]any) { f.FailNext(http.StatusTooManyRequests) },
			access.LookupUnavailable, "Opsgenie is limiting how often accessbot may ask", 60 * time.Second, false},
		{"outage: 503", rotaID, func(f *fakeOpsgenie, _ map[string]any) { f.FailNext(http.StatusServiceUnavailable) },
			access.LookupUnavailable, "Opsgenie did not answer", 0, false},
		{"down", rotaID, nil, access.LookupUnavailable, "Opsgenie did not answer", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t)
			extra := map[string]any{}
			if tt.setup != nil {
				tt.setup(f, extra)
			}
			c := build(t, f, connectortest.NewClock(now), extra)
			if tt.down {
				f.srv.Close()
			}
			chk := access.CheckOnCall(context.Background(), c, access.OnCallRule{Source: "og", Schedule: tt.schedule},
				access.Person{Email: "alice@example.com"}, now)
			if chk.OnCall {
				t.Fatal("approved without a human although Opsgenie did not say so")
			}
			if le := connectortest.WantLookupErr(t, chk.Err, tt.kind, tt.reason); le.RetryAfter != tt.retry {
				t.Errorf("retry %v, want %v", le.RetryAfter, tt.retry)
			}
			if !strings.Contains(chk.Note, tt.reason) {
				t.Errorf("note %q does not say %q", chk.Note, tt.reason)
			}
			if strings.Contains(fmt.Sprint(chk.Err), testKey) {
				t.Errorf("error leaks the key: %v", chk.Err)
			}
		})
	}
}

func TestThrottledWaitsForThePeriod(t *testing.T) {
	f := newFake(t)
	clock := connectortest.NewClock(now)
	c := build(t, f, clock, nil)
	f.FailNext(http.StatusTooManyRequests)
	if _, err := c.OnCall(context.Background(), rotaID, now); err == nil {
		t.Fatal("429 answered")
	}
	clock.Add(59 * time.Second)
	n := f.Count("")
	if _, err := c.OnCall(context.Background(), rotaID, clock.Now()); err == nil || f.Count("") != n {
		t.Errorf("asked again within X-RateLimit-Period-In-Sec: %v", err)
	}
	clock.Add(2 * time.Second)
	if got, err := c.OnCall(context.Background(), rotaID, clock.Now()); err != nil || !slices.Contains(got, "alice@example.com") {
		t.Errorf("after the period: %v, %v", got, err)
	}
}

func TestCachedBriefly(t *testing.T) {
	f := newFake(t)
	clock := connectortest.NewClock(now)
	c := build(t, f, clock, nil)
	for range 4 {
		if _, err := c.OnCall(context.Background(), rotaID, clock.Now()); err != nil {
			t.Fatal(err)
		}
		clock.Add(15 * time.Second)
	}
	if n := f.Count(""); n != 1 {
		t.Errorf("%d lookups within a minute, want 1", n)
	}
	clock.Add(time.Second)
	if _, err := c.OnCall(context.Background(), rotaID, clock.Now()); err != nil {
		t.Fatal(err)
	}
	if n := f.Count(""); n != 2 {
		t.Errorf("%d lookups after the TTL, want 2", n)
	}
}

func TestConcurrentLookupsShareOneCall(t *testing.T) {
	release := make(chan struct{})
	f := newFake(t, release)
	c := build(t, f, connectortest.NewClock(now), nil)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() {
			_, err := c.OnCall(context.Background(), rotaID, now)
			errs <- err
		})
	}
	// Let the goroutines pile up on the first call, then answer it. The
	// count is checked after all returned, so no timing is assumed: any
	// caller that arrived after the first call finished was served from
	// the cache, and any that arrived during it shared it.
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := f.Count(""); n != 1 {
		t.Errorf("%d calls for 8 concurrent lookups, want 1", n)
	}
}

func TestConfig(t *testing.T) {
	env := connectortest.FakeEnv(connectortest.NewClock(now))
	connectortest.ConfigCases{
		{"key", map[string]any{"api_key": testKey}, ""},
		{"EU instance", map[string]any{"api_key": testKey, "api_url": "https://api.eu.opsgenie.com"}, ""},
		{"no key", map[string]any{}, "connectors.og.api_key: required"},
		{"typo", map[string]any{"api_key": testKey, "api_ur": "https://api.eu.opsgenie.com"}, `did you mean "api_url"?`},
		{"not https", map[string]any{"api_key": testKey, "api_url": "http://api.eu.opsgenie.com"}, "connectors.og.api_url: must be an https:// URL"},
	}.Check(t, opsgenie.Type, opsgenie.Factory, "og", env, testKey)
}
