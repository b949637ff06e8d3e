package web

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/accessbot/accessbot/bot/slackemu"
)

type fakeClock struct {
	mu       sync.Mutex
	now      time.Time
	next     Due
	advanced []time.Duration
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *fakeClock) Advance(ctx context.Context, d time.Duration) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	c.advanced = append(c.advanced, d)
	return nil
}
func (c *fakeClock) NextDue(ctx context.Context) (Due, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.next, !c.next.At.IsZero()
}

type fakeLogs struct {
	calls []ConnectorCall
	recs  []AuditRecord
	err   error
}

func (f *fakeLogs) ConnectorCalls() []ConnectorCall { return f.calls }
func (f *fakeLogs) AuditRecords(ctx context.Context) ([]AuditRecord, error) {
	return f.recs, nil
}
func (f *fakeLogs) VerifyAudit(ctx context.Context) (int, error) { return len(f.recs), f.err }

const alice, bob = "U0ALICE01", "U0BOB0001"

func newSandbox(t *testing.T) (*Server, *slackemu.Server, *fakeClock, *fakeLogs, *httptest.Server) {
	t.Helper()
	t0 := time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)
	emu := slackemu.New(slackemu.Options{Clock: slackemu.NewFakeClock(t0)})
	t.Cleanup(emu.Close)
	emu.AddUser(slackemu.User{ID: alice, Name: "alice", RealName: "Alice", Email: "alice@example.com"})
	emu.AddUser(slackemu.User{ID: bob, Name: "bob", RealName: "Bob", Email: "bob@example.com"})
	emu.AddChannel(slackemu.Channel{ID: "C0CRMOWN1", Name: "crm-owners", Private: true, Members: []string{bob}, BotIsMember: true})
	clock := &fakeClock{now: t0}
	logs := &fakeLogs{}
	s := New(Options{Emu: emu, Clock: clock, Connectors: logs, Audit: logs, Title: "config.yaml", AckTimeout: 200 * time.Millisecond,
		Notes: map[string]string{bob: "manager of Alice"}})
	hs := httptest.NewServer(s.Handler())
	t.Cleanup(func() { s.Close(); hs.Close() })
	return s, emu, clock, logs, hs
}

// postAsBot posts a message with the bot token, as the bot would.
func postAsBot(t *testing.T, emu *slackemu.Server, channel, text, blocks string) {
	t.Helper()
	form := url.Values{"token": {emu.BotToken()}, "channel": {channel}, "text": {text}}
	if blocks != "" {
		form.Set("blocks", blocks)
	}
	r, err := http.PostForm(emu.APIURL()+"chat.postMessage", form)
	if err != nil {
		t.Fatal(err)
	}
	var res struct {
		OK    bool   `json:"ok"`
		Error string `json:"error"`
	}
	_ = json.NewDecoder(r.Body).Decode(&res)
	r.Body.Close()
	if !res.OK {
		t.Fatalf("chat.postMessage: %s", res.Error)
	}
}

func getState(t *testing.T, hs *httptest.Server, as, conv string) stateJSON {
	t.Helper()
	r, err := http.Get(hs.URL + "/api/state?" + url.Values{"as": {as}, "conv": {conv}}.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	var st stateJSON
	if err := json.NewDecoder(r.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	return st
}

func postJSON(t *testing.T, u string, body any) (int, actResponse) {
	t.Helper()
	b, _ := json.Marshal(body)
	r, err := http.Post(u, "application/json", strings.NewReader(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	var res actResponse
	_ = json.NewDecoder(r.Body).Decode(&res)
	return r.StatusCode, res
}

func TestStateShowsConversationsUnreadAndPanels(t *testing.T) {
	_, emu, clock, logs, hs := newSandbox(t)
	postAsBot(t, emu, emu.DMChannel(bob), "AR-1001 needs you", `[{"type":"section","text":{"type":"mrkdwn","text":"*<@U0ALICE01>* asks &lt;crm&gt;"}},{"type":"actions","elements":[{"type":"button","action_id":"access_approve","value":"AR-1001","style":"primary","text":{"type":"plain_text","text":"Approve"}}]}]`)
	postAsBot(t, emu, "C0CRMOWN1", "digest", "")
	clock.next = Due{At: clock.now.Add(90 * time.Minute), What: "AR-1001: reminder"}
	logs.calls = []ConnectorCall{{At: clock.now, Connector: "okta", Type: "okta_group", Op: "grant", Request: "AR-1001", System: "crm", Role: "viewer",
		Person: "Alice <alice@example.com>", Params: map[string]string{"group_id": "00g1"}, Receipt: "user 00u1", Result: "done"}}
	logs.recs = []AuditRecord{{Seq: 1, Time: clock.now, Event: "submitted", Actor: alice, Request: "AR-1001", System: "crm", Role: "viewer"}}

	st := getState(t, hs, alice, "")
	if st.As != alice || st.ConvKind != "dm" || !st.Composer || st.ConvTitle != "accessbot" {
		t.Fatalf("Alice's default view: %+v", st)
	}
	var bobEntry person
	for _, p := range st.People {
		if p.ID == bob {
			bobEntry = p
		}
	}
	if bobEntry.Name != "Bob" || bobEntry.Note != "manager of Alice" || bobEntry.Unread != 2 {
		t.Errorf("Bob in the switcher: %+v, want 2 unread (DM and channel)", bobEntry)
	}
	if strings.Contains(st.Sidebar, "crm-owners") {
		t.Error("Alice sees a channel she is not a member of")
	}
	for _, want := range []string{"Mon 30 Nov 2026, 09:00 UTC"} {
		if st.Clock.Now != want {
			t.Errorf("clock now %q, want %q", st.Clock.Now, want)
		}
	}
	if st.Clock.Next != "AR-1001: reminder" || st.Clock.NextIn != "in 1h30m" {
		t.Errorf("next due %+v", st.Clock)
	}
	for _, want := range []string{"grant", "AR-1001", "okta", "okta_group, dry run", "group_id=00g1", "user 00u1", "Alice &lt;alice@example.com&gt;"} {
		if !strings.Contains(st.Connectors, want) {
			t.Errorf("connector panel lacks %q: %s", want, st.Connectors)
		}
	}
	if !st.AuditOK || !strings.Contains(st.Audit, "Hash chain verified: 1 record") || !strings.Contains(st.Audit, "by Alice") {
		t.Errorf("audit panel: %s", st.Audit)
	}

	// Bob reads his DM: its unread mark goes, the channel's stays.
	st = getState(t, hs, bob, "")
	if !strings.Contains(st.Messages, `<span class="mk-mention">@Alice</span>`) || !strings.Contains(st.Messages, "asks &lt;crm&gt;") ||
		!strings.Contains(st.Messages, `data-action-id="access_approve"`) || !strings.Contains(st.Messages, "APP") {
		t.Errorf("Bob's DM: %s", st.Messages)
	}
	if !strings.Contains(st.Sidebar, `data-conv="C0CRMOWN1" data-kind="channel"`) || !strings.Contains(st.Sidebar, `aria-label="1 unread"`) {
		t.Errorf("Bob's sidebar: %s", st.Sidebar)
	}
	st = getState(t, hs, alice, "")
	for _, p := range st.People {
		if p.ID == bob && p.Unread != 1 {
			t.Errorf("Bob has %d unread after reading his DM, want 1", p.Unread)
		}
	}

	logs.err = errorString("record 1: hash mismatch")
	st = getState(t, hs, alice, "")
	if st.AuditOK || !strings.Contains(st.Audit, "NOT verified: record 1: hash mismatch") {
		t.Errorf("a broken chain must show: %s", st.Audit)
	}
}

type errorString string

func (e errorString) Error() string { return string(e) }

func TestComposerRefusesWhatSlackWould(t *testing.T) {
	_, emu, _, _, hs := newSandbox(t)
	for _, tc := range []struct{ text, want string }{
		{"hello", "accessbot reads commands, not messages"},
		{"/acess crm", "/acess is not a valid command. This workspace has /access."},
		{"  ", "Type a command"},
	} {
		code, res := postJSON(t, hs.URL+"/api/act", actRequest{As: alice, Kind: "command", Text: tc.text})
		if code != http.StatusBadRequest || !strings.Contains(res.Error, tc.want) {
			t.Errorf("%q: %d %+v, want %q", tc.text, code, res, tc.want)
		}
	}
	code, res := postJSON(t, hs.URL+"/api/act", actRequest{As: "U0NOBODY1", Kind: "command", Text: "/access help"})
	if code != http.StatusBadRequest || !strings.Contains(res.Error, "nobody called") {
		t.Errorf("unknown person: %d %+v", code, res)
	}
	// With no bot connected the command is sent but never acked: the
	// person is told, as Slack tells them dispatch_failed.
	_, res = postJSON(t, hs.URL+"/api/act", actRequest{As: alice, Kind: "command", Text: "/access help"})
	if !strings.Contains(res.Error, "dispatch_failed") {
		t.Errorf("unacked command: %+v", res)
	}
	st := getState(t, hs, alice, "")
	if !strings.Contains(st.Messages, "/access help") || !strings.Contains(st.Messages, "Only visible to you") {
		t.Errorf("the typed command is not shown to its author: %s", st.Messages)
	}
	if st := getState(t, hs, bob, emu.DMChannel(bob)); strings.Contains(st.Messages, "/access help") {
		t.Error("Bob sees Alice's command")
	}
	// A click on a message that does not exist is refused.
	code, res = postJSON(t, hs.URL+"/api/act", actRequest{As: bob, Kind: "button", Channel: emu.DMChannel(bob), TS: "1.000001", ActionID: "access_approve"})
	if code != http.StatusConflict || res.Error == "" {
		t.Errorf("click on nothing: %d %+v", code, res)
	}
}

func TestClockEndpoint(t *testing.T) {
	_, _, clock, _, hs := newSandbox(t)
	code, res := postJSON(t, hs.URL+"/api/clock", map[string]string{"advance": "next"})
	if code != http.StatusConflict || res.Error != "Nothing is scheduled." {
		t.Errorf("next with nothing due: %d %+v", code, res)
	}
	clock.next = Due{At: clock.now.Add(110 * time.Minute), What: "AR-1: expiry warning"}
	for _, a := range []string{"10m", "1h", "1d", "next"} {
		if code, res := postJSON(t, hs.URL+"/api/clock", map[string]string{"advance": a}); code != 200 || !res.OK {
			t.Fatalf("%s: %d %+v", a, code, res)
		}
	}
	want := []time.Duration{10 * time.Minute, time.Hour, 24 * time.Hour, time.Nanosecond} // next was overdue by then: run now
	if len(clock.advanced) != 4 || clock.advanced[0] != want[0] || clock.advanced[1] != want[1] || clock.advanced[2] != want[2] || clock.advanced[3] != want[3] {
		t.Errorf("advanced %v, want %v", clock.advanced, want)
	}
	if code, _ := postJSON(t, hs.URL+"/api/clock", map[string]string{"advance": "-1h"}); code != http.StatusBadRequest {
		t.Errorf("a backwards move is refused, got %d", code)
	}
}

func TestEventsStreamWakesOnChange(t *testing.T) {
	s, emu, _, _, hs := newSandbox(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", hs.URL+"/api/events", nil)
	r, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	if ct := r.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("content type %q", ct)
	}
	lines := bufio.NewScanner(r.Body)
	next := func() string {
		for lines.Scan() {
			if strings.HasPrefix(lines.Text(), "data: ") {
				return lines.Text()
			}
		}
		t.Fatalf("stream ended: %v", lines.Err())
		return ""
	}
	if got := next(); got != "data: start" {
		t.Fatalf("first event %q", got)
	}
	postAsBot(t, emu, emu.DMChannel(alice), "hi", "")
	if got := next(); got != "data: x" {
		t.Fatalf("after a post: %q", got)
	}
	s.Notify()
	if got := next(); got != "data: x" {
		t.Fatalf("after Notify: %q", got)
	}
}

func TestPageAndAssetsAreSelfContained(t *testing.T) {
	_, _, _, _, hs := newSandbox(t)
	r, err := http.Get(hs.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	var b strings.Builder
	sc := bufio.NewScanner(r.Body)
	for sc.Scan() {
		b.WriteString(sc.Text() + "\n")
	}
	page := b.String()
	for _, want := range []string{"Sandbox</strong> — not a real Slack workspace", `<code>config.yaml</code>`, `href="/static/app.css"`, `src="/static/app.js"`} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if csp := r.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") {
		t.Errorf("CSP %q", csp)
	}
	for _, asset := range []string{"/static/app.css", "/static/app.js"} {
		r, err := http.Get(hs.URL + asset)
		if err != nil || r.StatusCode != 200 {
			t.Fatalf("%s: %v %v", asset, err, r.StatusCode)
		}
		var body strings.Builder
		sc := bufio.NewScanner(r.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			body.WriteString(sc.Text())
		}
		r.Body.Close()
		if strings.Contains(body.String(), "http://") || strings.Contains(body.String(), "https://") {
			t.Errorf("%s refers to the internet", asset)
		}
	}
}

// The package serves the emulator and nothing else: no Slack client
// library, no adapter of the bot.
func TestImportsOnlySlackemu(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "github.com/accessbot/accessbot/bot/slackemu/web").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, p := range strings.Fields(string(out)) {
		if strings.HasPrefix(p, "github.com/slack-go/") || p == "github.com/accessbot/accessbot/bot" ||
			strings.HasPrefix(p, "github.com/accessbot/accessbot/") && p != "github.com/accessbot/accessbot/bot/slackemu" && p != "github.com/accessbot/accessbot/bot/slackemu/web" {
			t.Errorf("bot/slackemu/web depends on %s", p)
		}
	}
}
