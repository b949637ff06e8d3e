package pagerduty_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/connectors"
	"github.com/accessbot/accessbot/connectors/connectortest"
	"github.com/accessbot/accessbot/connectors/pagerduty"
)

const testToken = "u+PDTESTTOKENabcdefghij"

// fakePagerDuty is an httptest PagerDuty REST API v2 written from its
// documentation (see the package doc): "Token token=…" authentication
// answering 401 {"error":{"message":"Authentication failed","code":2006}}
// (error codes, docs/REST-API/14-Errors.md); GET /oncalls filtering by
// schedule_ids[], expanding users only with include[]=users, keeping
// entries that overlap [since, until], refusing unparsable or reversed
// ranges with 400 (codes 2004, 2005) and offset+limit over 10000 (classic
// pagination), clamping limit to 100 and to maxLimit (so tests can force
// several pages); an unknown schedule simply matches nothing there, and
// GET /schedules/{id} answers 404 {"error":{"message":"Not Found",
// "code":2100}}; 429 with the ratelimit-* headers and
// {"error":{"message":"Rate Limit Exceeded","code":2020}}
// (docs/REST-API/04-Rate-Limits.md).
type fakePagerDuty struct {
	connectortest.Faults

	srv       *httptest.Server
	mu        sync.Mutex
	users     map[string]string // ID → email
	schedules map[string]bool
	oncalls   []fakeOncall
	maxLimit  int
	lastQuery url.Values
	lastHdr   http.Header
}

type fakeOncall struct {
	user, schedule, policy string
	level                  int
	start, end             *time.Time // nil: permanent
}

func newFake(t *testing.T) *fakePagerDuty {
	f := &fakePagerDuty{
		users: map[string]string{
			"PALICE1": "Alice@Example.com",
			"PBOB001": "bob@example.com",
			"PCAROL1": "carol@example.com",
		},
		schedules: map[string]bool{"PSCHED1": true, "PEMPTY1": true, "POTHER1": true},
		maxLimit:  100,
	}
	f.srv = connectortest.Serve(t, f.serve)
	return f
}

func ptr(t time.Time) *time.Time { return &t }

func pdError(w http.ResponseWriter, status, code int, msg string, details ...string) {
	body := map[string]any{"error": map[string]any{"message": msg, "code": code}}
	if len(details) > 0 {
		body["error"].(map[string]any)["errors"] = details
	}
	connectortest.ReplyJSON(w, status, "application/json; charset=utf-8", body)
}

func ref(typ, id string) map[string]any {
	return map[string]any{"id": id, "type": typ + "_reference", "summary": id,
		"self": "https://api.pagerduty.com/" + typ + "s/" + id, "html_url": "https://acme.pagerduty.com/" + typ + "s/" + id}
}

func (f *fakePagerDuty) serve(w http.ResponseWriter, r *http.Request) {
	f.Record(r)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lastQuery, f.lastHdr = r.URL.Query(), r.Header.Clone()
	if r.Header.Get("Authorization") != "Token token="+testToken {
		pdError(w, http.StatusUnauthorized, 2006, "Authentication failed")
		return
	}
	if status, ok := f.Take(); ok {
		switch status {
		case http.StatusTooManyRequests:
			w.Header().Set("ratelimit-limit", "960")
			w.Header().Set("ratelimit-remaining", "0")
			w.Header().Set("ratelimit-reset", "20")
			pdError(w, status, 2020, "Rate Limit Exceeded")
		case http.StatusForbidden:
			pdError(w, status, 2010, "Access Denied")
		default:
			pdError(w, status, 2000, "An internal error has occurred. PagerDuty team has been notified.")
		}
		return
	}
	if r.Method != http.MethodGet {
		pdError(w, http.StatusNotFound, 2100, "Not Found")
		return
	}
	switch {
	case r.URL.Path == "/oncalls":
		f.listOncalls(w, r.URL.Query())
	case strings.HasPrefix(r.URL.Path, "/schedules/"):
		id := strings.TrimPrefix(r.URL.Path, "/schedules/")
		if !f.schedules[id] {
			pdError(w, http.StatusNotFound, 2100, "Not Found")
			return
		}
		connectortest.ReplyJSON(w, http.StatusOK, "application/json", map[string]any{"schedule": map[string]any{"id": id, "type": "schedule", "name": "Rota " + id, "time_zone": "UTC"}})
	default:
		pdError(w, http.StatusNotFound, 2100, "Not Found")
	}
}

func (f *fakePagerDuty) listOncalls(w http.ResponseWriter, q url.Values) {
	now := time.Now()
	since, until := now, now
	var err error
	if s := q.Get("since"); s != "" {
		if since, err = time.Parse(time.RFC3339, s); err != nil {
			pdError(w, http.StatusBadRequest, 2004, "Invalid time values in 'since' and/or 'until' parameters")
			return
		}
	}
	if s := q.Get("until"); s != "" {
		if until, err = time.Parse(time.RFC3339, s); err != nil {
			pdError(w, http.StatusBadRequest, 2004, "Invalid time values in 'since' and/or 'until' parameters")
			return
		}
	}
	if until.Before(since) || until.Sub(since) > 90*24*time.Hour {
		pdError(w, http.StatusBadRequest, 2005, "Invalid Query Date Range")
		return
	}
	limit, offset := 25, 0
	if s := q.Get("limit"); s != "" {
		limit, _ = strconv.Atoi(s)
	}
	if s := q.Get("offset"); s != "" {
		offset, _ = strconv.Atoi(s)
	}
	if limit <= 0 || offset < 0 || offset+limit > 10000 {
		pdError(w, http.StatusBadRequest, 2001, "Invalid Input Provided", "offset plus limit may not exceed 10000")
		return
	}
	limit = min(limit, 100, f.maxLimit)
	ids := q["schedule_ids[]"]
	expand := slices.Contains(q["include[]"], "users")
	var match []map[string]any
	for _, o := range f.oncalls {
		if len(ids) > 0 && !slices.Contains(ids, o.schedule) {
			continue
		}
		if (o.start != nil && !o.start.Before(until)) || (o.end != nil && !o.end.After(since)) {
			continue
		}
		user := ref("user", o.user)
		if expand {
			user = map[string]any{"id": o.user, "type": "user", "name": "User " + o.user, "summary": "User " + o.user,
				"email": f.users[o.user], "time_zone": "Europe/Berlin", "self": "https://api.pagerduty.com/users/" + o.user}
		}
		e := map[string]any{"user": user, "schedule": ref("schedule", o.schedule), "escalation_policy": ref("escalation_policy", o.policy),
			"escalation_level": o.level, "start": nil, "end": nil}
		if o.start != nil {
			e["start"] = o.start.Format(time.RFC3339Nano)
		}
		if o.end != nil {
			e["end"] = o.end.Format(time.RFC3339Nano)
		}
		match = append(match, e)
	}
	page := []map[string]any{}
	if offset < len(match) {
		page = match[offset:min(offset+limit, len(match))]
	}
	connectortest.ReplyJSON(w, http.StatusOK, "application/json", map[string]any{"oncalls": page, "limit": limit, "offset": offset,
		"more": offset+len(page) < len(match), "total": nil})
}

var now = time.Date(2026, 3, 30, 9, 0, 0, 0, time.UTC)

func build(t *testing.T, f *fakePagerDuty, clock access.Clock, extra map[string]any) *pagerduty.Client {
	t.Helper()
	raw := connectortest.With(map[string]any{"token": testToken, "api_url": f.srv.URL}, extra)
	return connectortest.MustBuild(t, pagerduty.Type, pagerduty.Factory, "pd", raw, connectortest.FakeEnv(clock)).(*pagerduty.Client)
}

func TestOnCall(t *testing.T) {
	f := newFake(t)
	f.oncalls = []fakeOncall{
		{user: "PALICE1", schedule: "PSCHED1", policy: "PEP1", level: 1, start: ptr(now.Add(-2 * time.Hour)), end: ptr(now.Add(6 * time.Hour))},
		{user: "PALICE1", schedule: "PSCHED1", policy: "PEP2", level: 2, start: ptr(now.Add(-2 * time.Hour)), end: ptr(now.Add(6 * time.Hour))},
		// Bob's shift ended exactly now: not on call.
		{user: "PBOB001", schedule: "PSCHED1", policy: "PEP1", level: 1, start: ptr(now.Add(-10 * time.Hour)), end: ptr(now)},
		// Carol's starts half a second after now: inside [since, until]
		// as PagerDuty reads it, but not on call yet.
		{user: "PCAROL1", schedule: "PSCHED1", policy: "PEP1", level: 1, start: ptr(now.Add(500 * time.Millisecond)), end: ptr(now.Add(8 * time.Hour))},
		// Carol is on call now, but on another schedule.
		{user: "PCAROL1", schedule: "POTHER1", policy: "PEP3", level: 1, start: nil, end: nil},
	}
	c := build(t, f, connectortest.NewClock(now), nil)
	got, err := c.OnCall(context.Background(), "PSCHED1", now)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"alice@example.com"}, got); diff != "" {
		t.Errorf("on call (-want +got):\n%s", diff)
	}
	// The request as documented.
	f.mu.Lock()
	q, h := f.lastQuery, f.lastHdr
	f.mu.Unlock()
	want := url.Values{
		"schedule_ids[]": {"PSCHED1"}, "include[]": {"users"},
		"since": {"2026-03-30T09:00:00Z"}, "until": {"2026-03-30T09:00:01Z"},
		"limit": {"100"}, "offset": {"0"},
	}
	if diff := cmp.Diff(want, q); diff != "" {
		t.Errorf("query (-want +got):\n%s", diff)
	}
	if got := h.Get("Accept"); got != "application/vnd.pagerduty+json;version=2" {
		t.Errorf("Accept = %q", got)
	}

	// A permanent on-call (no start, no end) counts.
	got, err = c.OnCall(context.Background(), "POTHER1", now)
	if err != nil || !slices.Equal(got, []string{"carol@example.com"}) {
		t.Errorf("permanent on-call: %v, %v", got, err)
	}

	// Through the policy: on call → auto; not on call → humans.
	rule := access.OnCallRule{Source: "pd", Schedule: "PSCHED1"}
	if chk := access.CheckOnCall(context.Background(), c, rule, access.Person{SlackID: "U0ALICE01", Email: "alice@EXAMPLE.com"}, now); !chk.OnCall || chk.Err != nil {
		t.Errorf("alice: %+v", chk)
	}
	chk := access.CheckOnCall(context.Background(), c, rule, access.Person{SlackID: "U0BOB0001", Email: "bob@example.com"}, now)
	if chk.OnCall || chk.Err != nil || !strings.Contains(chk.Note, "You are not on call (the on-call schedule pd:PSCHED1) right now") {
		t.Errorf("bob: %+v", chk)
	}
}

func TestNobodyOnCallIsNotAnError(t *testing.T) {
	f := newFake(t)
	c := build(t, f, connectortest.NewClock(now), nil)
	got, err := c.OnCall(context.Background(), "PEMPTY1", now)
	if err != nil || len(got) != 0 {
		t.Fatalf("OnCall = %v, %v; want nobody, no error", got, err)
	}
	// Only an empty answer costs the schedule check.
	if n := f.Count("GET /schedules/PEMPTY1"); n != 1 {
		t.Errorf("schedule checked %d times, want 1", n)
	}
}

func TestUnknownSchedule(t *testing.T) {
	f := newFake(t)
	c := build(t, f, connectortest.NewClock(now), nil)
	_, err := c.OnCall(context.Background(), "PNOPE01", now)
	connectortest.WantLookupErr(t, err, access.LookupNotFound, "PagerDuty has no schedule PNOPE01 (or accessbot may not see it)")
	// The requester is told, and humans decide.
	chk := access.CheckOnCall(context.Background(), c, access.OnCallRule{Source: "pd", Schedule: "PNOPE01"},
		access.Person{Email: "alice@example.com"}, now)
	if chk.OnCall || chk.Err == nil || !strings.Contains(chk.Note, "PagerDuty has no schedule PNOPE01") || !strings.Contains(chk.Note, "The approvers are asked instead.") {
		t.Errorf("check: %+v", chk)
	}
	if _, err := c.OnCall(context.Background(), "P/../x", now); connectortest.LookupErr(t, err).Kind != access.LookupInvalid {
		t.Errorf("a schedule ID with a slash was sent: %v", err)
	}
}

func TestPagination(t *testing.T) {
	f := newFake(t)
	f.maxLimit = 2
	for i, u := range []string{"PBOB001", "PBOB001", "PCAROL1", "PBOB001", "PALICE1"} {
		f.oncalls = append(f.oncalls, fakeOncall{user: u, schedule: "PSCHED1", policy: fmt.Sprintf("PEP%d", i), level: 1,
			start: ptr(now.Add(-time.Hour)), end: ptr(now.Add(time.Hour))})
	}
	c := build(t, f, connectortest.NewClock(now), nil)
	got, err := c.OnCall(context.Background(), "PSCHED1", now)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"bob@example.com", "carol@example.com", "alice@example.com"}, got); diff != "" {
		t.Errorf("on call (-want +got):\n%s", diff)
	}
	if n := f.Count("GET /oncalls"); n != 3 {
		t.Errorf("%d pages fetched, want 3", n)
	}
}

func TestFailuresFailClosed(t *testing.T) {
	tests := []struct {
		name     string
		setup    func(f *fakePagerDuty, extra map[string]any)
		kind     access.LookupFailure
		reason   string
		noServer bool
	}{
		{"bad token: 401", func(f *fakePagerDuty, extra map[string]any) { extra["token"] = "wrong" },
			access.LookupRejected, "PagerDuty refused accessbot's credentials or permissions", false},
		{"forbidden: 403", func(f *fakePagerDuty, _ map[string]any) { f.FailNext(http.StatusForbidden) },
			access.LookupRejected, "PagerDuty refused accessbot's credentials or permissions", false},
		{"outage: 500", func(f *fakePagerDuty, _ map[string]any) { f.FailNext(http.StatusInternalServerError) },
			access.LookupUnavailable, "PagerDuty did not answer", false},
		{"down: connection refused", nil, access.LookupUnavailable, "PagerDuty did not answer", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t)
			f.oncalls = []fakeOncall{{user: "PALICE1", schedule: "PSCHED1", policy: "PEP1", level: 1}}
			extra := map[string]any{}
			if tt.setup != nil {
				tt.setup(f, extra)
			}
			c := build(t, f, connectortest.NewClock(now), extra)
			if tt.noServer {
				f.srv.Close()
			}
			chk := access.CheckOnCall(context.Background(), c, access.OnCallRule{Source: "pd", Schedule: "PSCHED1"},
				access.Person{Email: "alice@example.com"}, now)
			if chk.OnCall {
				t.Fatal("approved without a human although PagerDuty did not say so")
			}
			connectortest.WantLookupErr(t, chk.Err, tt.kind, tt.reason)
			if !strings.Contains(chk.Note, tt.reason) || strings.Contains(chk.Note, f.srv.URL) || strings.Contains(fmt.Sprint(chk.Err), testToken) {
				t.Errorf("note %q", chk.Note)
			}
			// A failure is not cached: the next lookup asks again.
			if !tt.noServer {
				before := f.Count("")
				_, _ = c.OnCall(context.Background(), "PSCHED1", now)
				if f.Count("") == before {
					t.Error("a failure was cached")
				}
			}
		})
	}
}

func TestRateLimitedWaitsForReset(t *testing.T) {
	f := newFake(t)
	f.oncalls = []fakeOncall{{user: "PALICE1", schedule: "PSCHED1", policy: "PEP1", level: 1}}
	clock := connectortest.NewClock(now)
	c := build(t, f, clock, nil)
	f.FailNext(http.StatusTooManyRequests)
	_, err := c.OnCall(context.Background(), "PSCHED1", now)
	le := connectortest.WantLookupErr(t, err, access.LookupUnavailable, "PagerDuty is limiting how often accessbot may ask")
	if le.RetryAfter != 20*time.Second {
		t.Fatalf("RetryAfter %v, want 20s (ratelimit-reset)", le.RetryAfter)
	}
	calls := f.Count("")
	clock.Add(19 * time.Second)
	if _, err := c.OnCall(context.Background(), "PSCHED1", clock.Now()); err == nil {
		t.Error("asked again before ratelimit-reset passed")
	}
	if f.Count("") != calls {
		t.Error("a request was sent while rate-limited")
	}
	clock.Add(2 * time.Second)
	got, err := c.OnCall(context.Background(), "PSCHED1", clock.Now())
	if err != nil || !slices.Equal(got, []string{"alice@example.com"}) {
		t.Errorf("after the reset: %v, %v", got, err)
	}
}

func TestCachedBriefly(t *testing.T) {
	f := newFake(t)
	f.oncalls = []fakeOncall{{user: "PALICE1", schedule: "PSCHED1", policy: "PEP1", level: 1}}
	clock := connectortest.NewClock(now)
	c := build(t, f, clock, nil)
	ctx := context.Background()
	for range 3 {
		if _, err := c.OnCall(ctx, "PSCHED1", clock.Now()); err != nil {
			t.Fatal(err)
		}
		clock.Add(10 * time.Second)
	}
	if n := f.Count("GET /oncalls"); n != 1 {
		t.Errorf("%d lookups within a minute, want 1", n)
	}
	// The hand-over: Bob takes over; within the TTL the old answer stands,
	// after it the new one is seen.
	f.mu.Lock()
	f.oncalls = []fakeOncall{{user: "PBOB001", schedule: "PSCHED1", policy: "PEP1", level: 1}}
	f.mu.Unlock()
	clock.Set(now.Add(61 * time.Second))
	got, err := c.OnCall(ctx, "PSCHED1", clock.Now())
	if err != nil || !slices.Equal(got, []string{"bob@example.com"}) {
		t.Errorf("after the TTL: %v, %v", got, err)
	}
	// Another instant (explain for tomorrow) is not served from the cache.
	if _, err := c.OnCall(ctx, "PSCHED1", clock.Now().Add(24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if n := f.Count("GET /oncalls"); n != 3 {
		t.Errorf("%d lookups, want 3", n)
	}
}

func TestCacheTTLConfigurable(t *testing.T) {
	f := newFake(t)
	f.oncalls = []fakeOncall{{user: "PALICE1", schedule: "PSCHED1", policy: "PEP1", level: 1}}
	clock := connectortest.NewClock(now)
	c := build(t, f, clock, map[string]any{"cache_ttl": "5s"})
	_, _ = c.OnCall(context.Background(), "PSCHED1", clock.Now())
	clock.Add(6 * time.Second)
	_, _ = c.OnCall(context.Background(), "PSCHED1", clock.Now())
	if n := f.Count("GET /oncalls"); n != 2 {
		t.Errorf("%d lookups with cache_ttl 5s over 6s, want 2", n)
	}
}

func TestConfig(t *testing.T) {
	env := connectors.Env{HTTP: connectortest.FastHTTP(-1), Clock: connectortest.NewClock(now),
		ReadFile: func(name string) ([]byte, error) {
			if name == "/run/secrets/pd" {
				return []byte(testToken + "\n"), nil
			}
			return nil, fmt.Errorf("open %s: no such file", name)
		}}
	connectortest.ConfigCases{
		{"token", map[string]any{"token": testToken}, ""},
		{"token file", map[string]any{"token_file": "/run/secrets/pd"}, ""},
		{"EU region", map[string]any{"token": testToken, "api_url": "https://api.eu.pagerduty.com"}, ""},
		{"no token", map[string]any{}, "connectors.pd.token: required"},
		{"both", map[string]any{"token": testToken, "token_file": "/run/secrets/pd"}, "set only one of them"},
		{"plain http", map[string]any{"token": testToken, "api_url": "http://api.pagerduty.com"}, "connectors.pd.api_url: must be an https:// URL"},
		{"typo", map[string]any{"token": testToken, "cache_tl": "1m"}, `connectors.pd.cache_tl: unknown key; did you mean "cache_ttl"?`},
		{"long cache", map[string]any{"token": testToken, "cache_ttl": "1h"}, "connectors.pd.cache_ttl: at most 10m"},
	}.Check(t, pagerduty.Type, pagerduty.Factory, "pd", env, testToken)
}

func TestGrantsNothing(t *testing.T) {
	f := newFake(t)
	c := build(t, f, connectortest.NewClock(now), nil)
	_, err := c.Grant(context.Background(), access.Grant{ID: "AR-1"})
	if class, _ := access.Classify(err); err == nil || class != access.Permanent {
		t.Errorf("Grant = %v, want a permanent refusal", err)
	}
	if err := c.Revoke(context.Background(), access.Grant{ID: "AR-1"}); err == nil {
		t.Error("Revoke succeeded")
	}
	if f.Count("") != 0 {
		t.Error("Grant or Revoke called PagerDuty")
	}
}
