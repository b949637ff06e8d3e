package zendeskticket_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/connectors/connectortest"
	"github.com/accessbot/accessbot/connectors/zendeskticket"
)

const (
	testEmail = "bot@acme.example"
	testToken = "ZDTOKENabcdefghijklmnopqrstuvwxyz0123456789"
)

// fakeZendesk is an httptest Zendesk Support API v2 serving Show Ticket,
// written from the API reference (see the package doc): Basic
// "{email}/token:{token}" answering 401 {"error":"Couldn't authenticate
// you"}; GET /api/v2/tickets/{id} answering {"ticket": {...}} with the
// system status; 404 {"error":"RecordNotFound","description":"Not
// found"} for unknown and deleted tickets; 403 for tickets the token's
// user may not see; 429 with Retry-After.
type fakeZendesk struct {
	connectortest.Faults

	srv     *httptest.Server
	mu      sync.Mutex
	tickets map[int64][2]string // id → subject, status
	deleted map[int64]bool
	denied  map[int64]bool
}

func newFake(t *testing.T) *fakeZendesk {
	f := &fakeZendesk{
		tickets: map[int64][2]string{
			4411: {"Refund for order 991", "open"},
			4412: {"Waiting on customer", "pending"},
			4413: {"Fixed", "solved"},
			4414: {"Archived", "closed"},
			4415: {"Deleted", "open"},
			4416: {"VIP only", "new"},
		},
		deleted: map[int64]bool{4415: true},
		denied:  map[int64]bool{4416: true},
	}
	f.srv = connectortest.Serve(t, f.serve)
	return f
}

func zerr(w http.ResponseWriter, status int, body string) {
	connectortest.Reply(w, status, "application/json; charset=utf-8", body)
}

func (f *fakeZendesk) serve(w http.ResponseWriter, r *http.Request) {
	f.Record(r)
	f.mu.Lock()
	defer f.mu.Unlock()
	if r.Header.Get("Authorization") != "Basic "+base64.StdEncoding.EncodeToString([]byte(testEmail+"/token:"+testToken)) {
		zerr(w, http.StatusUnauthorized, `{"error":"Couldn't authenticate you"}`)
		return
	}
	if status, ok := f.Take(); ok {
		if status == http.StatusTooManyRequests {
			w.Header().Set("Retry-After", "7")
			zerr(w, status, `{"error":"APIRateLimitExceeded","description":"Number of allowed API requests per minute exceeded"}`)
			return
		}
		zerr(w, status, fmt.Sprintf(`{"error":"injected %d"}`, status))
		return
	}
	rest, ok := strings.CutPrefix(r.URL.Path, "/api/v2/tickets/")
	rest = strings.TrimSuffix(rest, ".json")
	id, err := strconv.ParseInt(rest, 10, 64)
	if r.Method != http.MethodGet || !ok || err != nil {
		zerr(w, http.StatusNotFound, `{"error":"InvalidEndpoint","description":"Not found"}`)
		return
	}
	tk, ok := f.tickets[id]
	if !ok || f.deleted[id] {
		zerr(w, http.StatusNotFound, `{"error":"RecordNotFound","description":"Not found"}`)
		return
	}
	if f.denied[id] {
		zerr(w, http.StatusForbidden, `{"error":"Forbidden","description":"You do not have access to this page. Please contact the account owner of this help desk for further help."}`)
		return
	}
	connectortest.ReplyJSON(w, http.StatusOK, "application/json; charset=utf-8", map[string]any{"ticket": map[string]any{
		"id": id, "url": f.srv.URL + "/api/v2/tickets/" + rest + ".json", "subject": tk[0], "status": tk[1],
		"custom_status_id": 1, "requester_id": 20978392, "type": "incident",
	}})
}

var now = time.Date(2026, 3, 30, 9, 0, 0, 0, time.UTC)

func build(t *testing.T, f *fakeZendesk, extra map[string]any) *zendeskticket.Client {
	t.Helper()
	raw := connectortest.With(map[string]any{"base_url": f.srv.URL + "/api/v2", "email": testEmail, "api_token": testToken}, extra)
	return connectortest.MustBuild(t, zendeskticket.Type, zendeskticket.Factory, "zd", raw, connectortest.FakeEnv(connectortest.NewClock(now))).(*zendeskticket.Client)
}

func TestTicket(t *testing.T) {
	f := newFake(t)
	c := build(t, f, nil)
	tests := []struct {
		ref  string
		want access.Ticket
	}{
		{"ZD-4411", access.Ticket{Ref: "4411", Title: "Refund for order 991", URL: f.srv.URL + "/agent/tickets/4411", Status: "open"}},
		{"#4412", access.Ticket{Ref: "4412", Title: "Waiting on customer", URL: f.srv.URL + "/agent/tickets/4412", Status: "pending"}},
		{"4413", access.Ticket{Ref: "4413", Title: "Fixed", URL: f.srv.URL + "/agent/tickets/4413", Status: "solved", Closed: true}},
		{"ZD-4414", access.Ticket{Ref: "4414", Title: "Archived", URL: f.srv.URL + "/agent/tickets/4414", Status: "closed", Closed: true}},
	}
	for _, tt := range tests {
		got, err := c.Ticket(context.Background(), tt.ref)
		if err != nil {
			t.Fatalf("%s: %v", tt.ref, err)
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tt.ref, diff)
		}
	}
	if n := f.Count("GET /api/v2/tickets/4411"); n != 1 {
		t.Errorf("calls %v", f.Calls())
	}
}

func TestTicketFailures(t *testing.T) {
	tests := []struct {
		name   string
		ref    string
		setup  func(f *fakeZendesk, extra map[string]any)
		kind   access.LookupFailure
		reason string
		calls  int
	}{
		{"missing: 404", "ZD-9999", nil, access.LookupNotFound, "Zendesk has no ticket ZD-9999 (or accessbot may not see it)", 1},
		{"deleted: 404", "ZD-4415", nil, access.LookupNotFound, "Zendesk has no ticket ZD-4415 (or accessbot may not see it)", 1},
		{"not visible: 403", "ZD-4416", nil, access.LookupRejected, "Zendesk refused accessbot's credentials or permissions", 1},
		{"bad token: 401", "ZD-4411", func(_ *fakeZendesk, extra map[string]any) { extra["api_token"] = "wrong" },
			access.LookupRejected, "Zendesk refused accessbot's credentials or permissions", 1},
		{"rate limited: 429", "ZD-4411", func(f *fakeZendesk, _ map[string]any) { f.FailNext(http.StatusTooManyRequests) },
			access.LookupUnavailable, "Zendesk is limiting how often accessbot may ask", 1},
		{"outage: 500", "ZD-4411", func(f *fakeZendesk, _ map[string]any) { f.FailNext(http.StatusInternalServerError) },
			access.LookupUnavailable, "Zendesk did not answer", 1},
		{"no number: no call", "ZD-", nil, access.LookupInvalid, "Zendesk cannot look up ticket ZD-", 0},
		{"zero: no call", "ZD-0", nil, access.LookupInvalid, "Zendesk cannot look up ticket ZD-0", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t)
			extra := map[string]any{}
			if tt.setup != nil {
				tt.setup(f, extra)
			}
			c := build(t, f, extra)
			_, err := c.Ticket(context.Background(), tt.ref)
			le := connectortest.WantLookupErr(t, err, tt.kind, tt.reason)
			if tt.kind == access.LookupUnavailable && strings.Contains(tt.name, "429") && le.RetryAfter != 7*time.Second {
				t.Errorf("RetryAfter %v, want 7s", le.RetryAfter)
			}
			if n := f.Count(""); n != tt.calls {
				t.Errorf("%d calls, want %d", n, tt.calls)
			}
		})
	}
}

func TestThroughThePolicy(t *testing.T) {
	f := newFake(t)
	c := build(t, f, nil)
	p, err := access.NewTicketPolicy(`^ZD-[0-9]+$`, "zd")
	if err != nil {
		t.Fatal(err)
	}
	sys, role := &access.System{ID: "support"}, &access.Role{ID: "agent", Ticket: p}
	tk, err := access.CheckTicket(context.Background(), c, sys, role, "", "refund ZD-4411")
	if err != nil || tk.URL != f.srv.URL+"/agent/tickets/4411" {
		t.Errorf("open: %+v, %v", tk, err)
	}
	_, err = access.CheckTicket(context.Background(), c, sys, role, "", "ZD-4413 again")
	if msg := err.Error(); msg != "Ticket 4413 is solved; access needs an open ticket." {
		t.Errorf("solved: %q", msg)
	}
}

func TestConfig(t *testing.T) {
	env := connectortest.FakeEnv(connectortest.NewClock(now))
	connectortest.ConfigCases{
		{"subdomain", map[string]any{"subdomain": "acme", "email": testEmail, "api_token": testToken}, ""},
		{"base url", map[string]any{"base_url": "https://help.acme.example/api/v2", "email": testEmail, "api_token": testToken}, ""},
		{"neither", map[string]any{"email": testEmail, "api_token": testToken}, "connectors.zd.subdomain: required"},
		{"full host as subdomain", map[string]any{"subdomain": "acme.zendesk.com", "email": testEmail, "api_token": testToken}, "must be the bare subdomain"},
		{"base url without /api/v2", map[string]any{"base_url": "https://help.acme.example", "email": testEmail, "api_token": testToken}, "must end with /api/v2"},
		{"no token", map[string]any{"subdomain": "acme", "email": testEmail}, "connectors.zd.api_token: required"},
		{"no email", map[string]any{"subdomain": "acme", "api_token": testToken}, "connectors.zd.email: required"},
	}.Check(t, zendeskticket.Type, zendeskticket.Factory, "zd", env, testToken)
}
