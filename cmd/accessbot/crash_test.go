package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/bot/slackemu"
	"github.com/accessbot/accessbot/connectors/webhook"
	"github.com/accessbot/accessbot/store"
)

// crashChildEnv makes TestCrashChild run accessbot instead of skipping:
// the crash test re-executes the test binary as the process it kills.
const crashChildEnv = "ACCESSBOT_CRASH_CHILD_CONFIG"

// childLateAfter is the child's LateAfter: how far past expiry a removal
// counts as late. Production's 1 min would make the test wait a minute.
const childLateAfter = time.Second

// childNoticeRetryCap caps the child's backoff between attempts to deliver
// a notice while Slack fails (production: 1 min), so that the test sees
// the deliveries within seconds of Slack's recovery.
const childNoticeRetryCap = 3 * time.Second

// TestCrashChild is not a test: with crashChildEnv set it is the accessbot
// process of TestE2ECrashSIGKILL. It does what `accessbot run` does
// (LoadConfig, NewApp, Run until SIGTERM, Close) with production options
// except LateAfter, and exits with run's exit codes.
func TestCrashChild(t *testing.T) {
	path := os.Getenv(crashChildEnv)
	if path == "" {
		t.Skip("only runs as the child process of TestE2ECrashSIGKILL")
	}
	os.Exit(crashChild(path))
}

func crashChild(path string) int {
	cfg, err := LoadConfig(path, os.Getenv)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return exitBadUse
	}
	app, err := NewApp(cfg, AppOptions{Logger: newLogger(os.Stderr),
		Service: func(c *access.ServiceConfig) {
			c.LateAfter = childLateAfter
			c.NoticeRetryCap = childNoticeRetryCap
		}})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return exitRuntime
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	runErr := app.Run(ctx)
	if err := app.Close(); err != nil || runErr != nil {
		fmt.Fprintln(os.Stderr, runErr, err)
		return exitRuntime
	}
	return exitOK
}

// crashRunbook: crm viewer needs the manager; r1 is auto-approved; all
// through a webhook at h. Durations are real seconds in the child.
func crashRunbook(h *hookReceiver) string {
	return fmt.Sprintf(e2eHeader, "") + fmt.Sprintf(`
connectors:
  hook: { type: webhook, url: "%s/accessbot", secret: "%s" }
systems:
  crm:
    name: Salesforce CRM
    owners: [U0CAROL01]
    channel: C0CRMOWN1
    connector: hook
    roles:
      viewer:
        description: Read-only customer records
        grant: { group_id: 00g1viewer }
        requesters: [team:support]
        approval: { steps: [ { approvers: [manager] } ] }
`, h.srv.URL, hookSecret) + autoRoles("r", 1, "g")
}

// crashProc is one accessbot process.
type crashProc struct {
	cmd *exec.Cmd
	log string
}

func startChild(t *testing.T, emu *slackemu.Server, dir, config string, n int) *crashProc {
	t.Helper()
	connects := emu.Connects()
	c, err := startChildNoWait(t, dir, config, emu, n)
	if err != nil {
		t.Fatal(err)
	}
	if err := emu.WaitConnects(connects+1, 15*time.Second); err != nil {
		t.Fatalf("child %d did not connect to Slack: %v", n, err)
	}
	return c
}

// startChildNoWait starts child n without waiting for its Slack socket.
func startChildNoWait(t *testing.T, dir, config string, emu *slackemu.Server, n int) (*crashProc, error) {
	t.Helper()
	logPath := filepath.Join(dir, fmt.Sprintf("child%d.log", n))
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+config,
		"SLACK_APP_TOKEN="+emu.AppToken(), "SLACK_BOT_TOKEN="+emu.BotToken(), "SLACK_API_URL="+emu.APIURL(),
		"STORE_PATH="+filepath.Join(dir, "accessbot.db"))
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	logf.Close()
	c := &crashProc{cmd: cmd, log: logPath}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("child %d log:\n%s", n, b)
		}
	})
	return c, nil
}

func (c *crashProc) kill(t *testing.T) {
	t.Helper()
	if err := c.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = c.cmd.Wait()
	if ws, ok := c.cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("child did not die of SIGKILL: %v", c.cmd.ProcessState)
	}
}

// waitReal polls cond for up to d of real time (the child runs on it).
func waitReal(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestE2ECrashSIGKILL kills a real accessbot process with SIGKILL between
// approval and grant, and again while grants are active that expire while
// it is down. After each restart nothing is lost: the approved request is
// granted by the start-up reconcile, the expired grants are revoked at once
// and their requesters told it was late, and the webhook target sees exactly
// the calls it should.
func TestE2ECrashSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real processes")
	}
	emu := slackemu.New(slackemu.Options{})
	t.Cleanup(emu.Close)
	for _, id := range testPeople {
		name := strings.Title(strings.ToLower(strings.TrimRight(strings.TrimPrefix(id, "U0"), "0123456789")))
		emu.AddUser(slackemu.User{ID: id, Name: strings.ToLower(name), RealName: name, Email: strings.ToLower(name) + "@example.com", TZ: "Europe/Berlin"})
	}
	for _, c := range []string{"C0AUDIT01", "C0CRMOWN1"} {
		emu.AddChannel(slackemu.Channel{ID: c, Name: strings.ToLower(c), Private: true, BotIsMember: true})
	}
	h := newHookReceiver(t)
	killed := make(chan struct{})
	h.setDecide(func(c hookCall) int {
		if c.P.Type == webhook.TypeGrant && c.P.GrantID == "AR-1001" && len(h.Calls(webhook.TypeGrant, "AR-1001")) == 1 {
			<-killed // hold the first grant until its sender is dead
		}
		return http.StatusOK
	})
	dir := t.TempDir()
	config := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(config, []byte(crashRunbook(h)), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := func(user, text string) string {
		t.Helper()
		ack, err := emu.SlashCommand(user, emu.DMChannel(user), "/access", text).WaitAck(5 * time.Second)
		if err != nil {
			t.Fatalf("/access %s: %v", text, err)
		}
		return string(ack.Payload)
	}
	dm := func(user string, parts ...string) func() bool {
		return func() bool { return msgIndex(emu, user, parts...) >= 0 }
	}

	// 1. Killed between approval and grant.
	c1 := startChild(t, emu, dir, config, 1)
	if out := cmd("U0ALICE01", "crm viewer 3s crash drill"); !strings.Contains(out, "AR-1001") {
		t.Fatalf("ack %s", out)
	}
	if _, err := emu.WaitMessages("U0BOB0001", 1, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	ms := emu.Messages("U0BOB0001")
	if _, err := emu.ClickButton("U0BOB0001", ms[len(ms)-1].Channel, ms[len(ms)-1].TS, "Approve"); err != nil {
		t.Fatal(err)
	}
	waitReal(t, 5*time.Second, "the grant to reach the target", func() bool { return len(h.Calls(webhook.TypeGrant, "AR-1001")) == 1 })
	c1.kill(t)
	close(killed)
	if dm("U0ALICE01", "you now have")() {
		t.Fatal("granted before the target answered")
	}
	c2 := startChild(t, emu, dir, config, 2)
	waitReal(t, 5*time.Second, "the start-up reconcile to grant AR-1001", dm("U0ALICE01", "AR-1001", "you now have"))
	// It expires 3 s later with the process running: an ordinary removal.
	waitReal(t, 8*time.Second, "AR-1001 to expire", dm("U0ALICE01", "AR-1001", "expired and has been removed"))

	// 2. Killed while grants are active; they expire during the downtime.
	for _, u := range []string{"U0ALICE01", "U0DAVE001"} {
		// The ack comes once the request is stored; the grant follows.
		if out := cmd(u, "crm r1 4s"); !strings.Contains(out, "approved automatically") {
			t.Fatalf("%s: ack %s", u, out)
		}
	}
	for _, c := range []struct{ user, id string }{{"U0ALICE01", "AR-1002"}, {"U0DAVE001", "AR-1003"}} {
		waitReal(t, 5*time.Second, c.id+" to be granted", dm(c.user, c.id, "you now have"))
	}
	c2.kill(t)
	var expires time.Time
	for _, id := range []string{"AR-1002", "AR-1003"} {
		calls := h.Calls(webhook.TypeGrant, id)
		if len(calls) != 1 || calls[0].Status != 200 {
			t.Fatalf("%s grant calls %+v", id, calls)
		}
		exp, err := time.Parse(time.RFC3339, calls[0].P.ExpiresAt)
		if err != nil {
			t.Fatal(err)
		}
		if exp.After(expires) {
			expires = exp
		}
	}
	// Wait (polling the wall clock the child runs on) until both are more
	// than LateAfter past their expiry; nothing may be revoked meanwhile.
	late := expires.Add(childLateAfter + 1500*time.Millisecond)
	waitReal(t, 10*time.Second, "the grants to be overdue", func() bool { return time.Now().After(late) })
	if n := len(h.Calls(webhook.TypeRevoke, "AR-1002")) + len(h.Calls(webhook.TypeRevoke, "AR-1003")); n != 0 {
		t.Fatalf("%d revokes while accessbot was down", n)
	}
	restarted := time.Now()
	c3 := startChild(t, emu, dir, config, 3)
	for _, r := range []struct{ user, id string }{{"U0ALICE01", "AR-1002"}, {"U0DAVE001", "AR-1003"}} {
		waitReal(t, 5*time.Second, r.id+" removed late", dm(r.user, r.id, "removed late"))
		rv := h.Calls(webhook.TypeRevoke, r.id)
		if len(rv) != 1 || rv[0].Status != 200 || !isMessageID(rv[0].ID, r.id, "revoke") || !rv[0].SigOK {
			t.Fatalf("%s revoke calls %+v", r.id, rv)
		}
		t.Logf("%s revoked %s after restart", r.id, rv[0].At.Sub(restarted).Round(time.Millisecond))
	}

	// Clean stop, then the store tells the same story.
	if err := c3.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := c3.cmd.Wait(); err != nil {
		t.Fatalf("child 3 after SIGTERM: %v", err)
	}
	st, err := store.Open(filepath.Join(dir, "accessbot.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for id, wantLate := range map[string]bool{"AR-1001": false, "AR-1002": true, "AR-1003": true} {
		r, err := st.Get(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if r.State != access.StateExpired || r.Late != wantLate {
			t.Errorf("%s is %s late=%v, want expired late=%v", id, r.State, r.Late, wantLate)
		}
	}
	// Per the connector's calls: AR-1001 granted twice (the attempt that was
	// cut off, then the reconcile), every grant revoked exactly once.
	if g, rv := h.Calls(webhook.TypeGrant, "AR-1001"), h.Calls(webhook.TypeRevoke, "AR-1001"); len(g) != 2 || g[0].ID != g[1].ID || len(rv) != 1 {
		t.Errorf("AR-1001: %d grant calls (ids %v), %d revokes", len(g), g, len(rv))
	}
	if n := len(h.Calls("", "")); n != 2+1+2+2 {
		t.Errorf("target saw %d calls, want 7", n)
	}
}

// crashOutage is how long Slack answers 500 to every Web API call in
// TestE2ECrashDuringSlackOutage (issue #12: 30 s; CRASH_OUTAGE overrides).
func crashOutage(t *testing.T) time.Duration {
	if v := os.Getenv("CRASH_OUTAGE"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("CRASH_OUTAGE=%q: %v", v, err)
		}
		return d
	}
	return 30 * time.Second
}

// TestE2ECrashDuringSlackOutage: the approval that grants AR-1001 commits
// while Slack answers 500 to every Web API call; the bot is SIGKILLed
// right after the grant's transition committed (its "granted" DM has been
// attempted and refused), restarted while Slack is still down, and Slack
// recovers after the outage. Every DM and every message update of those
// transitions then arrives exactly once per channel: the notices were in
// the outbox, written with the transitions, and no message Slack refused
// was stored (so none can be duplicated; a duplicate is possible only when
// a process dies after Slack accepted a message and before the outbox
// recorded it, which this kill point excludes).
func TestE2ECrashDuringSlackOutage(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real processes")
	}
	outage := crashOutage(t)
	emu := slackemu.New(slackemu.Options{})
	t.Cleanup(emu.Close)
	for _, id := range testPeople {
		name := strings.Title(strings.ToLower(strings.TrimRight(strings.TrimPrefix(id, "U0"), "0123456789")))
		emu.AddUser(slackemu.User{ID: id, Name: strings.ToLower(name), RealName: name, Email: strings.ToLower(name) + "@example.com", TZ: "Europe/Berlin"})
	}
	for _, c := range []string{"C0AUDIT01", "C0CRMOWN1"} {
		emu.AddChannel(slackemu.Channel{ID: c, Name: strings.ToLower(c), Private: true, BotIsMember: true})
	}
	h := newHookReceiver(t)
	dir := t.TempDir()
	config := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(config, []byte(crashRunbook(h)), 0o600); err != nil {
		t.Fatal(err)
	}
	c1 := startChild(t, emu, dir, config, 1)
	ack, err := emu.SlashCommand("U0ALICE01", emu.DMChannel("U0ALICE01"), "/access", "crm viewer 1h outage drill").WaitAck(5 * time.Second)
	if err != nil || !strings.Contains(string(ack.Payload), "AR-1001") {
		t.Fatalf("ack %s, %v", ack.Payload, err)
	}
	bob, err := emu.WaitMessages("U0BOB0001", 1, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := emu.WaitMessages("C0AUDIT01", 1, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	waitReal(t, 5*time.Second, "the submitted DM", func() bool { return msgIndex(emu, "U0ALICE01", "AR-1001", "was sent to") >= 0 })

	// Slack goes down; Bob's click (over the open socket) approves AR-1001
	// and the workers grant it at the webhook target.
	emu.Outage(http.StatusInternalServerError)
	down := time.Now()
	if _, err := emu.ClickButton("U0BOB0001", bob[0].Channel, bob[0].TS, "Approve"); err != nil {
		t.Fatal(err)
	}
	attempted := func(text string) func() bool {
		return func() bool {
			for _, c := range emu.Calls("chat.postMessage") {
				if c.HTTPStatus == http.StatusInternalServerError && strings.Contains(c.Params["text"], text) {
					return true
				}
			}
			return false
		}
	}
	// The "granted" DM is attempted only after the granted transition
	// committed (durable first): kill right then.
	waitReal(t, 10*time.Second, "the granted DM to be attempted", attempted("you now have"))
	c1.kill(t)
	if g := h.Calls(webhook.TypeGrant, "AR-1001"); len(g) != 1 {
		t.Fatalf("grant calls %+v", g)
	}
	before := map[string]int{}
	for _, ch := range []string{"U0ALICE01", "U0BOB0001", "C0AUDIT01"} {
		before[ch] = len(emu.Messages(ch))
	}

	// Restarted while Slack is still down; it cannot even open its socket.
	connects := emu.Connects()
	c2, err := startChildNoWait(t, dir, config, emu, 2)
	if err != nil {
		t.Fatal(err)
	}
	waitReal(t, outage+5*time.Second, "the rest of the outage", func() bool { return time.Since(down) >= outage })
	emu.Outage(0)
	if err := emu.WaitConnects(connects+1, 30*time.Second); err != nil {
		t.Fatalf("child 2 did not connect after the outage: %v", err)
	}
	recovered := time.Now()

	// Exactly once per channel: Alice's "approved" and "granted" DMs, and
	// one update of each approval copy (Bob's DM, the audit channel) to
	// its final form.
	waitReal(t, 20*time.Second, "the granted DM after recovery", func() bool { return msgIndex(emu, "U0ALICE01", "AR-1001", "you now have") >= 0 })
	final := func(ch, ts string) bool {
		m, _ := emu.Message(ch, ts)
		return strings.Contains(body(m), "Granted") && len(m.Buttons()) == 0
	}
	audit := emu.Messages("C0AUDIT01")[0]
	waitReal(t, 20*time.Second, "every copy in its final form", func() bool {
		return final(bob[0].Channel, bob[0].TS) && final(audit.Channel, audit.TS)
	})
	t.Logf("outage %s; everything delivered %s after Slack recovered", outage, time.Since(recovered).Round(time.Millisecond))
	count := func(ch string, parts ...string) int {
		n := 0
		for _, m := range emu.Messages(ch) {
			ok := true
			for _, p := range parts {
				ok = ok && strings.Contains(body(m), p)
			}
			if ok {
				n++
			}
		}
		return n
	}
	for _, c := range []struct {
		ch    string
		parts []string
	}{
		{"U0ALICE01", []string{"AR-1001", "was approved by"}},
		{"U0ALICE01", []string{"AR-1001", "you now have"}},
	} {
		if n := count(c.ch, c.parts...); n != 1 {
			t.Errorf("%s got %d messages with %q, want exactly 1", c.ch, n, c.parts)
		}
	}
	if n := len(emu.Messages("U0BOB0001")); n != before["U0BOB0001"] {
		t.Errorf("Bob's DM has %d messages, had %d: his copy must be updated, not re-posted", n, before["U0BOB0001"])
	}
	if n := len(emu.Messages("C0AUDIT01")); n != before["C0AUDIT01"] {
		t.Errorf("the audit channel has %d messages, had %d", n, before["C0AUDIT01"])
	}
	// Successful updates after recovery: one per copy (the approved and
	// granted states coalesce into one update when both are pending).
	updates := map[string]int{}
	for _, c := range emu.Calls("chat.update") {
		if c.Error == "" {
			updates[c.Params["channel"]]++
		}
	}
	for _, ch := range []string{bob[0].Channel, audit.Channel} {
		if updates[ch] != 1 {
			t.Errorf("%d successful updates of the copy in %s, want exactly 1 (all: %v)", updates[ch], ch, updates)
		}
	}
	if err := c2.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := c2.cmd.Wait(); err != nil {
		t.Fatalf("child 2 after SIGTERM: %v", err)
	}
	st, err := store.Open(filepath.Join(dir, "accessbot.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	r, err := st.Get(context.Background(), "AR-1001")
	if err != nil {
		t.Fatal(err)
	}
	if r.State != access.StateActive || len(r.Outbox) != 0 {
		t.Errorf("AR-1001 is %s with %d notices left", r.State, len(r.Outbox))
	}
}
