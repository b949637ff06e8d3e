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
		Service: func(c *access.ServiceConfig) { c.LateAfter = childLateAfter }})
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
		t.Fatal(err)
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
	if err := emu.WaitConnects(connects+1, 15*time.Second); err != nil {
		t.Fatalf("child %d did not connect to Slack: %v", n, err)
	}
	return c
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
		if len(rv) != 1 || rv[0].Status != 200 || rv[0].ID != r.id+".revoke" || !rv[0].SigOK {
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
