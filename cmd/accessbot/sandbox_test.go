package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// sandboxT is a running `accessbot sandbox` in this process.
type sandboxT struct {
	t      *testing.T
	url    string
	stderr *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// sandboxStart is the simulated start of every sandbox test: a Monday
// morning, so screenshots read the same each run.
var sandboxStart = time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)

// startSandbox runs `accessbot sandbox ARGS` on a free port until the
// test ends.
func startSandbox(t *testing.T, getenv func(string) string, args ...string) *sandboxT {
	t.Helper()
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan int, 1)
	s := &sandboxT{t: t, stderr: &syncBuffer{}}
	var stdout syncBuffer
	go func() {
		done <- runSandboxCmd(ctx, append([]string{"--listen", "127.0.0.1:0"}, args...), &stdout, s.stderr, getenv, func(o *sandboxOptions) {
			o.Start = sandboxStart
			o.Ready = func(u string) { ready <- u }
		})
	}()
	select {
	case s.url = <-ready:
	case code := <-done:
		cancel()
		t.Fatalf("sandbox exited %d before serving: %s%s", code, stdout.String(), s.stderr.String())
	case <-time.After(20 * time.Second):
		cancel()
		t.Fatal("sandbox did not start")
	}
	t.Cleanup(func() {
		cancel()
		if code := <-done; code != 0 {
			t.Errorf("sandbox exit %d: %s", code, s.stderr.String())
		}
	})
	return s
}

type sbState struct {
	As     string `json:"as"`
	People []struct {
		ID, Name, Note string
		Unread         int
	} `json:"people"`
	Sidebar    string `json:"sidebar"`
	Messages   string `json:"messages"`
	Connectors string `json:"connectors"`
	Audit      string `json:"audit"`
	AuditOK    bool   `json:"audit_ok"`
	Modal      *struct {
		ID, HTML string
	} `json:"modal"`
	Clock struct {
		Now, Next string
	} `json:"clock"`
}

func (s *sandboxT) state(as, conv string) sbState {
	s.t.Helper()
	r, err := http.Get(s.url + "api/state?" + url.Values{"as": {as}, "conv": {conv}}.Encode())
	if err != nil {
		s.t.Fatal(err)
	}
	defer r.Body.Close()
	var st sbState
	if err := json.NewDecoder(r.Body).Decode(&st); err != nil {
		s.t.Fatal(err)
	}
	return st
}

func (s *sandboxT) post(path string, body any) map[string]any {
	s.t.Helper()
	b, _ := json.Marshal(body)
	r, err := http.Post(s.url+path, "application/json", bytes.NewReader(b))
	if err != nil {
		s.t.Fatal(err)
	}
	defer r.Body.Close()
	var res map[string]any
	_ = json.NewDecoder(r.Body).Decode(&res)
	return res
}

func (s *sandboxT) act(body map[string]any) {
	s.t.Helper()
	if res := s.post("api/act", body); res["ok"] != true {
		s.t.Fatalf("act %v: %v", body, res)
	}
}

// waitFor polls the state of as until cond holds (the bot works in the
// background, as it does behind Slack).
func (s *sandboxT) waitFor(as, conv, what string, cond func(sbState) bool) sbState {
	s.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st := s.state(as, conv)
		if cond(st) {
			return st
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("waiting for %s as %s: messages %s\nconnectors %s", what, as, st.Messages, st.Connectors)
		}
		time.Sleep(20 * time.Millisecond) // polling a condition, not waiting for time to pass
	}
}

var articleRE = regexp.MustCompile(`(?s)<article class="msg[^"]*" data-channel="([^"]+)" data-ts="([^"]+)".*?</article>`)

// click presses the newest button with actionID in as's DM.
func (s *sandboxT) click(as, actionID string) {
	s.t.Helper()
	st := s.waitFor(as, "", actionID+" button", func(st sbState) bool { return strings.Contains(st.Messages, `data-action-id="`+actionID+`"`) })
	arts := articleRE.FindAllStringSubmatch(st.Messages, -1)
	for i := len(arts) - 1; i >= 0; i-- {
		if strings.Contains(arts[i][0], `data-action-id="`+actionID+`"`) {
			v := regexp.MustCompile(`data-action-id="` + actionID + `" data-block-id="[^"]*" data-value="([^"]*)"`).FindStringSubmatch(arts[i][0])
			s.act(map[string]any{"as": as, "kind": "button", "channel": arts[i][1], "ts": arts[i][2], "action_id": actionID, "value": v[1]})
			return
		}
	}
	s.t.Fatalf("%s has no %s button", as, actionID)
}

func has(sub string) func(sbState) bool {
	return func(st sbState) bool { return strings.Contains(st.Messages, sub) }
}

// A runbook error stops the sandbox at start, shown as validate shows it.
func TestSandboxRunbookErrorShownLikeValidate(t *testing.T) {
	data, err := os.ReadFile("../../config.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	bad := strings.Replace(string(data), "max_duration: 8h\n", "max_duratoin: 8h\n", 1)
	bad = strings.Replace(bad, "expiry_warning: 10m", "expiry_warning: soon", 1)
	path := filepath.Join(t.TempDir(), "broken.yaml")
	if err := os.WriteFile(path, []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	getenv := func(string) string { return "" }
	var vout, verr, sout, serr bytes.Buffer
	if code := run([]string{"validate", "--config", path}, &vout, &verr, getenv); code != exitBadUse {
		t.Fatalf("validate exit %d", code)
	}
	code := runSandboxCmd(context.Background(), []string{"--config", path, "--listen", "127.0.0.1:0"}, &sout, &serr, getenv, nil)
	if code != exitBadUse {
		t.Fatalf("sandbox exit %d, want %d; stderr %s", code, exitBadUse, serr.String())
	}
	var problems int
	for _, line := range strings.Split(strings.TrimSpace(verr.String()), "\n") {
		if strings.HasPrefix(line, "warning: ") {
			continue
		}
		problems++
		if !strings.Contains(serr.String(), line+"\n") {
			t.Errorf("sandbox does not show validate's line %q; it printed:\n%s", line, serr.String())
		}
	}
	if problems < 3 || !strings.Contains(serr.String(), "max_duratoin") || !strings.Contains(serr.String(), "expiry_warning") {
		t.Errorf("problems not named:\n%s", serr.String())
	}
	if sout.Len() != 0 {
		t.Errorf("nothing is served, nothing printed to stdout: %s", sout.String())
	}

	serr.Reset()
	if code := runSandboxCmd(context.Background(), []string{"--config", "no-such-runbook.yaml"}, &sout, &serr, getenv, nil); code != exitBadUse ||
		!strings.Contains(serr.String(), "no-such-runbook.yaml: no such file") {
		t.Errorf("missing runbook: exit %d, %s", code, serr.String())
	}
	serr.Reset()
	if code := runSandboxCmd(context.Background(), []string{"--config", "../../config.example.yaml", "--live", "okta"}, &sout, &serr, getenv, nil); code != exitBadUse ||
		!strings.Contains(serr.String(), "--live okta: no system uses this connector") {
		t.Errorf("--live of an unused connector: exit %d, %s", code, serr.String())
	}
	serr.Reset()
	if code := runSandboxCmd(context.Background(), []string{"--config", "../../config.example.yaml", "--live", "salesforce"}, &sout, &serr, getenv, nil); code != exitBadUse ||
		!strings.Contains(serr.String(), "connectors.salesforce.private_key: ${SF_PRIVATE_KEY} is not set: set SF_PRIVATE_KEY in the environment (or ACCESSBOT_CONNECTORS_SALESFORCE_PRIVATE_KEY, or private_key_file: a file holding the secret); a --live connector reaches its target and needs it") {
		t.Errorf("--live without its secret: exit %d, %s", code, serr.String())
	}
}

// The example's people get their names, never IDs, and notes saying what
// the runbook makes them.
func TestSandboxExamplePeople(t *testing.T) {
	s := startSandbox(t, nil, "--config", "../../config.example.yaml")
	st := s.state("", "")
	names := map[string]string{}
	for _, p := range st.People {
		names[p.ID] = p.Name + " — " + p.Note
	}
	for id, want := range map[string]string{
		"U0ALICE01": "Alice — support", "U0BOB0001": "Bob — support, manager of Alice and Dave", "U0CAROL01": "Carol — crm owner",
		"U0GRACE01": "Grace — hr", "U0HEIDI01": "Heidi — hr, manager of Grace", "U0ADMIN01": "Ada — admin",
		"U0MALLO01": "Mallory — marketing", "U0OSCAR01": "Oscar — analytics owner, warehouse owner",
	} {
		if names[id] != want {
			t.Errorf("%s is %q, want %q", id, names[id], want)
		}
	}
	if len(st.People) != 12 {
		t.Errorf("%d people, want the example's 12", len(st.People))
	}
	if !strings.Contains(st.Clock.Now, "Mon 30 Nov 2026, 10:00 CET") {
		t.Errorf("clock %q", st.Clock.Now)
	}
	carol := s.state("U0CAROL01", "")
	if !strings.Contains(carol.Sidebar, "crm-owners") || strings.Contains(carol.Sidebar, "access-audit") {
		t.Errorf("Carol's channels: %s", carol.Sidebar)
	}
	if ada := s.state("U0ADMIN01", ""); !strings.Contains(ada.Sidebar, "access-audit") {
		t.Errorf("Ada's channels: %s", ada.Sidebar)
	}
}

// A runbook that shares nothing with the example: its people (from a
// people file, with emails for team members), its own command, a Zendesk
// stand-in, a Slack channel connector acting on the emulated workspace,
// and a webhook kept live against a local receiver.
func TestSandboxOtherRunbook(t *testing.T) {
	var mu sync.Mutex
	var hooks []map[string]any
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body map[string]any
		data, _ := io.ReadAll(r.Body)
		_ = json.Unmarshal(data, &body)
		mu.Lock()
		hooks = append(hooks, body)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"receipt":{"row":42}}`)
	}))
	defer recv.Close()
	env := map[string]string{"HOOK_URL": recv.URL + "/hook", "HOOK_SECRET": "whsec_c2FuZGJveC10ZXN0LXNlY3JldC0xMjM0NTY3OA=="}
	s := startSandbox(t, func(k string) string { return env[k] },
		"--config", "testdata/other-runbook.yaml", "--people", "testdata/other-people.yaml", "--live", "automation")
	const (
		rosa, sam, ivy = "U07QK2MNB4R", "U05ZX81HQ2C", "U06LR3JD9VA"
		nina           = "U04NPTL7QZ1"
	)
	st := s.state("", "")
	names := map[string]string{}
	for _, p := range st.People {
		names[p.Name] = p.ID
		if regexp.MustCompile(`^[UW][A-Z0-9]{6,}$`).MatchString(p.Name) {
			t.Errorf("a raw ID as a name: %+v", p)
		}
	}
	kai := names["Kai Moreau"]
	for _, n := range []string{"Rosa Alvarez", "Sam Okafor", "Ivy Chen", "Nina Patel", "Omar Haddad", "Kai Moreau"} {
		if names[n] == "" {
			t.Errorf("nobody called %s in %v", n, names)
		}
	}
	if len(st.People) != 6 || names["Nina Patel"] != nina {
		t.Fatalf("people %v: team members given by email are the people file's IDs", names)
	}
	if !strings.Contains(st.Clock.Now, "EST") {
		t.Errorf("times in the runbook's zone: %q", st.Clock.Now)
	}

	// The configured command, not /access.
	if res := s.post("api/act", map[string]any{"as": nina, "kind": "command", "text": "/access billing_desk agent 1h x"}); !strings.Contains(res["error"].(string), "/access is not a valid command. This workspace has /jit.") {
		t.Errorf("/access in a /jit workspace: %v", res)
	}
	s.act(map[string]any{"as": nina, "kind": "command", "text": "/jit billing_desk agent 1h ticket 7"})
	s.click(sam, "access_approve")
	s.click(ivy, "access_approve")
	s.waitFor(nina, "", "the granted DM", has("you now have"))
	st = s.waitFor(nina, "", "the helpdesk grant", func(st sbState) bool { return strings.Contains(st.Connectors, "helpdesk") })
	for _, want := range []string{"(zendesk, dry run)", "custom_role_id=360001234567", "Nina Patel &lt;nina.patel@clinic.example&gt;", "user dryrun-u04nptl7qz1"} {
		if !strings.Contains(st.Connectors, want) {
			t.Errorf("connector panel lacks %q: %s", want, st.Connectors)
		}
	}

	// Auto-approved, through the live webhook.
	s.act(map[string]any{"as": kai, "kind": "command", "text": "/jit grants_db editor 1h"})
	s.waitFor(kai, "", "the webhook grant", func(st sbState) bool { return strings.Contains(st.Connectors, "webhook, live") })
	mu.Lock()
	if len(hooks) != 1 || hooks[0]["type"] != "access.grant" || hooks[0]["system"] != "grants_db" {
		t.Errorf("webhook received %v", hooks)
	}
	mu.Unlock()

	// The Slack channel connector acts on the emulated workspace.
	s.act(map[string]any{"as": kai, "kind": "command", "text": "/jit lab_results reader 1h results for study 12"})
	s.click(ivy, "access_approve")
	s.waitFor(kai, "", "lab channel access", has("you now have"))
	s.waitFor(kai, "", "the lab channel in Kai's sidebar", func(st sbState) bool { return strings.Contains(st.Sidebar, "lab_results-reader") })

	// A day later everything has expired and been removed.
	if res := s.post("api/clock", map[string]string{"advance": "1d"}); res["ok"] != true {
		t.Fatalf("advance: %v", res)
	}
	s.waitFor(kai, "", "lab channel removed", func(st sbState) bool {
		return !strings.Contains(st.Sidebar, "lab_results-reader") && strings.Count(st.Connectors, "revoke") >= 2
	})
	st = s.waitFor(nina, "", "Nina's removal DM", has("expired and has been removed"))
	if !st.AuditOK {
		t.Errorf("audit chain: %s", st.Audit)
	}
	mu.Lock()
	if len(hooks) != 2 || hooks[1]["type"] != "access.revoke" {
		t.Errorf("webhook received %v", hooks)
	}
	mu.Unlock()
	if st := s.state(rosa, ""); !strings.Contains(st.Sidebar, "jit-audit") {
		t.Errorf("the admin's audit channel: %s", st.Sidebar)
	}
}

// App Home per person: opened from the page, its buttons act as that
// person (here "I'm done" on an auto-approved grant, which is revoked).
func TestSandboxAppHome(t *testing.T) {
	s := startSandbox(t, nil, "--config", "../../config.example.yaml")
	const alice = "U0ALICE01"
	s.act(map[string]any{"as": alice, "kind": "command", "text": "/access analytics viewer 1h"})
	s.waitFor(alice, "", "the auto grant", has("you now have"))
	s.act(map[string]any{"as": alice, "kind": "open_home"})
	st := s.waitFor(alice, "home", "Alice's App Home", func(st sbState) bool {
		return strings.Contains(st.Messages, "Temporary access") && strings.Contains(st.Messages, `data-action-id="access_done"`)
	})
	view := regexp.MustCompile(`<div class="home" data-view-id="([^"]+)"`).FindStringSubmatch(st.Messages)
	if view == nil {
		t.Fatalf("no home view id in %s", st.Messages)
	}
	s.act(map[string]any{"as": alice, "kind": "button", "view_id": view[1], "action_id": "access_done", "value": "AR-1001"})
	st = s.waitFor(alice, "", "the revoke after I'm done", func(st sbState) bool {
		return strings.Contains(st.Connectors, "metabase_group, dry run") && strings.Contains(st.Connectors, `<span class="op">revoke</span>`)
	})
	if !strings.Contains(st.Sidebar, `data-kind="home"`) {
		t.Errorf("no Home in the sidebar: %s", st.Sidebar)
	}
	// Bob's App Home is his own.
	s.act(map[string]any{"as": "U0BOB0001", "kind": "open_home"})
	s.waitFor("U0BOB0001", "home", "Bob's App Home", func(st sbState) bool {
		return strings.Contains(st.Messages, "Temporary access") && !strings.Contains(st.Messages, "AR-1001")
	})
}

// A runbook as accessbot init writes it names people by email: the
// owners, the admins and the team members. The sandbox resolves the
// owners and admins to Slack IDs as run does, so the owner is asked to
// approve and gets the DM with the buttons.
func TestSandboxResolvesEmailApprovers(t *testing.T) {
	dir := t.TempDir()
	answers := filepath.Join(dir, "answers.yaml")
	if err := os.WriteFile(answers, []byte(`
admins: [ada@example.com]
teams:
  - { name: support, members: [alice@example.com, dave@example.com] }
systems:
  - id: crm
    owners: [carol@example.com]
    connector: { type: manual }
    roles:
      - id: viewer
        grant: { profile: read_only }
        requesters: [team:support]
        approval: [[owners]]
`), 0o600); err != nil {
		t.Fatal(err)
	}
	runbook := filepath.Join(dir, "config.yaml")
	if code, stdout, stderr := runInitCmd(t, "", "--from", answers, "--out", runbook); code != 0 {
		t.Fatalf("init exit %d\n%s\n%s", code, stdout, stderr)
	}
	s := startSandbox(t, nil, "--config", runbook)
	ids := map[string]string{}
	for _, p := range s.state("", "").People {
		ids[p.Name] = p.ID
	}
	alice, carol := ids["Alice"], ids["Carol"]
	if alice == "" || carol == "" {
		t.Fatalf("people %v", ids)
	}
	s.act(map[string]any{"as": alice, "kind": "command", "text": "/access crm viewer 1h customer call"})
	s.click(carol, "access_approve")
	s.waitFor(alice, "", "the approval reaching Alice", has("approved"))
}

// The sandbox has no login, so its page refuses requests naming another
// host (DNS rebinding) and state changes from other sites (CSRF), and
// warns when --listen makes it reachable from other machines.
func TestSandboxRefusesForeignHostsAndWarnsWhenExposed(t *testing.T) {
	s := startSandbox(t, nil, "--config", "../../config.example.yaml", "--listen", "0.0.0.0:0")
	if !strings.HasPrefix(s.url, "http://127.0.0.1:") {
		t.Errorf("the page's address %s is not one a browser opens", s.url)
	}
	if !strings.Contains(s.stderr.String(), "warning: --listen 0.0.0.0:0 is reachable from other machines") {
		t.Errorf("no warning about the exposed address: %s", s.stderr.String())
	}
	s.state("", "") // the printed address works
	req, _ := http.NewRequest("GET", s.url+"api/state", nil)
	req.Host = "rebound.evil.example"
	r, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(r.Body)
	r.Body.Close()
	if r.StatusCode != http.StatusForbidden || !strings.Contains(string(body), "rebound.evil.example") {
		t.Errorf("a foreign Host: %d %s", r.StatusCode, body)
	}
	req, _ = http.NewRequest("POST", s.url+"api/clock", strings.NewReader(`{"advance":"1d"}`))
	req.Header.Set("Origin", "https://evil.example")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	r, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(r.Body)
	r.Body.Close()
	if r.StatusCode != http.StatusForbidden || !strings.Contains(string(body), "from another web site") {
		t.Errorf("a cross-site POST: %d %s", r.StatusCode, body)
	}

	local := startSandbox(t, nil, "--config", "../../config.example.yaml")
	if strings.Contains(local.stderr.String(), "reachable from other machines") {
		t.Errorf("a loopback sandbox warned: %s", local.stderr.String())
	}
}
