package jira_test

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/connectors/connectortest"
	"github.com/accessbot/accessbot/connectors/jira"
)

const (
	testEmail = "accessbot@acme.example"
	testToken = "ATATT3xFfGF0TESTTOKEN0123456789"
	testPAT   = "NjM0ODYxTESTPATabcdefghijklmnop"
)

// fakeJira is an httptest Jira written from the REST API documentation
// (see the package doc). In Cloud mode it serves /rest/api/3 and /rest/api/2
// with Basic email:api_token; in Data Center mode only /rest/api/2 with
// "Bearer <PAT>" (v3 is 404 there). GET …/issue/{key} resolves keys
// case-insensitively and answers the canonical key, only the fields asked
// for in `fields`; an unknown or hidden issue is 404
// {"errorMessages":["Issue does not exist or you do not have permission to
// see it."],"errors":{}}; rejected credentials are 401 with Jira's plain
// text; 429 carries Retry-After (Cloud rate limiting).
type fakeJira struct {
	connectortest.Faults

	srv    *httptest.Server
	cloud  bool
	mu     sync.Mutex
	issues map[string]fakeIssue // by upper-case key
	hidden map[string]bool      // issues the bot's account may not browse
	fields []string             // of the last request
}

type fakeIssue struct {
	summary, status, category string
}

func newFake(t *testing.T, cloud bool) *fakeJira {
	f := &fakeJira{cloud: cloud,
		issues: map[string]fakeIssue{
			"SUP-1":  {"Customer cannot log in", "In Progress", "indeterminate"},
			"SUP-2":  {"Old refund", "Done", "done"},
			"SUP-3":  {"Duplicate", "Won't Do", "done"},
			"INC-42": {"Outage", "Open", "new"},
			"SEC-9":  {"Restricted", "Open", "new"},
		},
		hidden: map[string]bool{"SEC-9": true},
	}
	f.srv = connectortest.Serve(t, f.serve)
	return f
}

func jiraErr(w http.ResponseWriter, status int, msgs ...string) {
	connectortest.ReplyJSON(w, status, "application/json;charset=UTF-8", map[string]any{"errorMessages": msgs, "errors": map[string]any{}})
}

func (f *fakeJira) serve(w http.ResponseWriter, r *http.Request) {
	f.Record(r)
	f.mu.Lock()
	defer f.mu.Unlock()
	want := "Bearer " + testPAT
	if f.cloud {
		want = "Basic " + base64.StdEncoding.EncodeToString([]byte(testEmail+":"+testToken))
	}
	if r.Header.Get("Authorization") != want {
		connectortest.Reply(w, http.StatusUnauthorized, "text/plain;charset=UTF-8", "Client must be authenticated to access this resource.")
		return
	}
	if status, ok := f.Take(); ok {
		if status == http.StatusTooManyRequests {
			w.Header().Set("Retry-After", "5")
		}
		jiraErr(w, status, http.StatusText(status))
		return
	}
	var key string
	switch {
	case f.cloud && strings.HasPrefix(r.URL.Path, "/rest/api/3/issue/"):
		key = strings.TrimPrefix(r.URL.Path, "/rest/api/3/issue/")
	case strings.HasPrefix(r.URL.Path, "/rest/api/2/issue/"):
		key = strings.TrimPrefix(r.URL.Path, "/rest/api/2/issue/")
	default:
		connectortest.Reply(w, http.StatusNotFound, "text/html", "<html><body>Oops, you've found a dead link.</body></html>")
		return
	}
	key = strings.ToUpper(key)
	is, ok := f.issues[key]
	if r.Method != http.MethodGet || !ok || f.hidden[key] {
		jiraErr(w, http.StatusNotFound, "Issue does not exist or you do not have permission to see it.")
		return
	}
	f.fields = strings.Split(r.URL.Query().Get("fields"), ",")
	fields := map[string]any{}
	if slices.Contains(f.fields, "summary") {
		fields["summary"] = is.summary
	}
	if slices.Contains(f.fields, "status") {
		fields["status"] = map[string]any{"name": is.status, "id": "10001",
			"statusCategory": map[string]any{"key": is.category, "name": is.category, "id": 3}}
	}
	connectortest.ReplyJSON(w, http.StatusOK, "application/json;charset=UTF-8", map[string]any{"id": "10042", "key": key, "self": f.srv.URL + "/rest/api/3/issue/10042", "fields": fields})
}

var now = time.Date(2026, 3, 30, 9, 0, 0, 0, time.UTC)

func build(t *testing.T, f *fakeJira, raw map[string]any) *jira.Client {
	t.Helper()
	if raw == nil {
		raw = map[string]any{"email": testEmail, "api_token": testToken}
		if !f.cloud {
			raw = map[string]any{"personal_access_token": testPAT}
		}
	}
	raw["url"] = f.srv.URL
	return connectortest.MustBuild(t, jira.Type, jira.Factory, "jira", raw, connectortest.FakeEnv(connectortest.NewClock(now))).(*jira.Client)
}

func TestTicketCloud(t *testing.T) {
	f := newFake(t, true)
	c := build(t, f, nil)
	ctx := context.Background()
	tests := []struct {
		ref  string
		want access.Ticket
	}{
		{"SUP-1", access.Ticket{Ref: "SUP-1", Title: "Customer cannot log in", URL: f.srv.URL + "/browse/SUP-1", Status: "In Progress"}},
		{"sup-1", access.Ticket{Ref: "SUP-1", Title: "Customer cannot log in", URL: f.srv.URL + "/browse/SUP-1", Status: "In Progress"}},
		{"INC-42", access.Ticket{Ref: "INC-42", Title: "Outage", URL: f.srv.URL + "/browse/INC-42", Status: "Open"}},
		{"SUP-2", access.Ticket{Ref: "SUP-2", Title: "Old refund", URL: f.srv.URL + "/browse/SUP-2", Status: "Done", Closed: true}},
		// Closed by category, whatever the workflow calls the status.
		{"SUP-3", access.Ticket{Ref: "SUP-3", Title: "Duplicate", URL: f.srv.URL + "/browse/SUP-3", Status: "Won't Do", Closed: true}},
	}
	for _, tt := range tests {
		got, err := c.Ticket(ctx, tt.ref)
		if err != nil {
			t.Fatalf("%s: %v", tt.ref, err)
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tt.ref, diff)
		}
	}
	f.mu.Lock()
	fields := f.fields
	f.mu.Unlock()
	if !slices.Equal(fields, []string{"status", "summary"}) {
		t.Errorf("fields asked: %v", fields)
	}
	if n := f.Count("GET /rest/api/3/issue/"); n != len(tests) {
		t.Errorf("%d v3 calls, want %d", n, len(tests))
	}
}

func TestTicketDataCenter(t *testing.T) {
	f := newFake(t, false)
	c := build(t, f, nil)
	got, err := c.Ticket(context.Background(), "INC-42")
	if err != nil || got.Closed || got.Status != "Open" {
		t.Fatalf("Data Center: %+v, %v", got, err)
	}
	if n := f.Count("GET /rest/api/2/issue/INC-42"); n != 1 {
		t.Errorf("calls %v, want one to /rest/api/2", f.Calls())
	}
}

func TestTicketFailures(t *testing.T) {
	tests := []struct {
		name   string
		ref    string
		setup  func(f *fakeJira, raw map[string]any)
		kind   access.LookupFailure
		reason string
		calls  int
	}{
		{"missing issue: 404", "SUP-404", nil, access.LookupNotFound, "Jira has no ticket SUP-404 (or accessbot may not see it)", 1},
		{"hidden issue: 404", "SEC-9", nil, access.LookupNotFound, "Jira has no ticket SEC-9 (or accessbot may not see it)", 1},
		{"bad token: 401", "SUP-1", func(_ *fakeJira, raw map[string]any) { raw["api_token"] = "wrong" },
			access.LookupRejected, "Jira refused accessbot's credentials or permissions", 1},
		{"forbidden: 403", "SUP-1", func(f *fakeJira, _ map[string]any) { f.FailNext(http.StatusForbidden) },
			access.LookupRejected, "Jira refused accessbot's credentials or permissions", 1},
		{"rate limited: 429", "SUP-1", func(f *fakeJira, _ map[string]any) { f.FailNext(http.StatusTooManyRequests) },
			access.LookupUnavailable, "Jira is limiting how often accessbot may ask", 1},
		{"outage: 503", "SUP-1", func(f *fakeJira, _ map[string]any) { f.FailNext(http.StatusServiceUnavailable) },
			access.LookupUnavailable, "Jira did not answer", 1},
		{"not an issue key: no call", "SUP 1", nil, access.LookupInvalid, "Jira cannot look up ticket SUP 1", 0},
		{"path tricks: no call", "../../admin", nil, access.LookupInvalid, "Jira cannot look up ticket ../../admin", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t, true)
			raw := map[string]any{"email": testEmail, "api_token": testToken}
			if tt.setup != nil {
				tt.setup(f, raw)
			}
			c := build(t, f, raw)
			_, err := c.Ticket(context.Background(), tt.ref)
			connectortest.WantLookupErr(t, err, tt.kind, tt.reason)
			if n := f.Count(""); n != tt.calls {
				t.Errorf("%d calls, want %d", n, tt.calls)
			}
			if strings.Contains(err.Error(), testToken) {
				t.Errorf("error leaks the token: %v", err)
			}
		})
	}
}

func TestThroughThePolicy(t *testing.T) {
	f := newFake(t, true)
	c := build(t, f, nil)
	p, err := access.NewTicketPolicy(`^(SUP|INC)-[0-9]+$`, "jira")
	if err != nil {
		t.Fatal(err)
	}
	sys, role := &access.System{ID: "crm"}, &access.Role{ID: "admin", Ticket: p}
	ctx := context.Background()
	if tk, err := access.CheckTicket(ctx, c, sys, role, "", "SUP-1 customer locked out"); err != nil || tk.URL == "" {
		t.Errorf("open ticket: %+v, %v", tk, err)
	}
	_, err = access.CheckTicket(ctx, c, sys, role, "", "SUP-2 again")
	if msg := err.Error(); !errors.Is(err, access.ErrForbidden) || msg != "Ticket SUP-2 is Done; access needs an open ticket." {
		t.Errorf("closed ticket: %v", err)
	}
	_, err = access.CheckTicket(ctx, c, sys, role, "", "no ticket")
	if msg := err.Error(); !strings.Contains(msg, "`^(SUP|INC)-[0-9]+$`") {
		t.Errorf("missing ticket: %q", msg)
	}
	f.srv.Close()
	_, err = access.CheckTicket(ctx, c, sys, role, "", "SUP-1")
	if msg := err.Error(); !errors.Is(err, access.ErrUnavailable) || msg != "accessbot could not check ticket SUP-1: Jira did not answer. Try again in a few minutes." {
		t.Errorf("Jira down: %v", err)
	}
}

func TestConfig(t *testing.T) {
	env := connectortest.FakeEnv(connectortest.NewClock(now))
	connectortest.ConfigCases{
		{"cloud", map[string]any{"url": "https://acme.atlassian.net", "email": testEmail, "api_token": testToken}, ""},
		{"data center", map[string]any{"url": "https://jira.acme.example/jira", "personal_access_token": testPAT}, ""},
		{"no url", map[string]any{"email": testEmail, "api_token": testToken}, "connectors.jira.url: required"},
		{"no credentials", map[string]any{"url": "https://acme.atlassian.net"}, "connectors.jira.api_token: required: set email and api_token (Jira Cloud) or personal_access_token (Data Center)"},
		{"token without email", map[string]any{"url": "https://acme.atlassian.net", "api_token": testToken}, "connectors.jira.email: required with api_token"},
		{"email without token", map[string]any{"url": "https://acme.atlassian.net", "email": testEmail}, "connectors.jira.api_token: required with email"},
		{"both", map[string]any{"url": "https://acme.atlassian.net", "email": testEmail, "api_token": testToken, "personal_access_token": testPAT}, "not both"},
		{"http", map[string]any{"url": "http://acme.atlassian.net", "personal_access_token": testPAT}, "connectors.jira.url: must be an https:// URL"},
		{"typo", map[string]any{"url": "https://acme.atlassian.net", "personal_access_token": testPAT, "timout": "5s"}, `did you mean "timeout"?`},
	}.Check(t, jira.Type, jira.Factory, "jira", env, testToken, testPAT)
}
