package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/bot/slackemu"
	"github.com/accessbot/accessbot/connectors/memory"
)

// testRunbook is a small runbook for end-to-end tests: a CRM with a
// two-step approval (manager, then owners), an admin role needing two
// owners, an auto-approved dashboard role, and a manual payroll system.
const testRunbook = `
slack:
  app_token: ${SLACK_APP_TOKEN}
  bot_token: ${SLACK_BOT_TOKEN}
  api_url: ${SLACK_API_URL}
  admins: [U0ADMIN01]
  audit_channel: C0AUDIT01
store:
  path: ${STORE_PATH}
timezone: Europe/Berlin
defaults:
  default_duration: 1h
  max_duration: 8h
  approval_timeout: 24h
  reminder_after: 2h
  expiry_warning: 10m
  reason: required
directory:
  managers:
    static: { U0ALICE01: U0BOB0001, U0DAVE001: U0BOB0001, U0GRACE01: U0HEIDI01 }
teams:
  support: { members: [U0ALICE01, U0DAVE001, U0CAROL01] }
  hr: { members: [U0GRACE01] }
connectors:
  crm_idp: { type: memory }
  dash: { type: memory }
  payroll_desk: { type: manual }
systems:
  crm:
    name: Salesforce CRM
    owners: [U0CAROL01, U0ERIN001]
    channel: C0CRMOWN1
    connector: crm_idp
    roles:
      viewer:
        description: Read-only customer records
        grant: { group_id: 00g1viewer }
        requesters: [team:support]
        approval: { steps: [ { approvers: [manager] }, { approvers: [owners] } ] }
        default_duration: 2h
      admin:
        description: Edit customer records
        grant: { group_id: 00g1admin }
        requesters: [team:support]
        approval: { steps: [ { approvers: [owners], min: 2 } ] }
        max_duration: 1h
  analytics:
    name: Dashboards
    owners: [U0OSCAR01]
    connector: dash
    roles:
      viewer:
        description: View dashboards
        grant: { group_id: "12" }
        requesters: [team:support]
        approval: auto
        max_duration: 4h
        reason: optional
  payroll:
    name: Payroll
    owners: [U0FRANK01]
    connector: payroll_desk
    roles:
      viewer:
        description: View payslips
        grant: { profile: view_only }
        requesters: [team:hr]
        approval: { steps: [ { approvers: [manager] }, { approvers: [owners] } ] }
`

// world is a running accessbot against an emulated Slack, on a fake clock.
type world struct {
	t     *testing.T
	emu   *slackemu.Server
	clock *slackemu.FakeClock
	app   *App
	conns map[string]*memory.Connector
	dir   string
	cfg   *Config
	stop  func()
}

var testPeople = []string{"U0ADMIN01", "U0ALICE01", "U0BOB0001", "U0CAROL01", "U0DAVE001", "U0ERIN001", "U0FRANK01", "U0GRACE01", "U0HEIDI01", "U0OSCAR01", "U0MALLO01"}

// startEnv starts the emulator and accessbot with testRunbook (or the
// given runbook text). Durations and deadlines follow the fake clock; the
// test drives time with advance. opts may adjust the app.
func startEnv(t *testing.T, runbook string, opts ...func(*AppOptions)) *world {
	t.Helper()
	if runbook == "" {
		runbook = testRunbook
	}
	clock := slackemu.NewFakeClock(time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC))
	emu := slackemu.New(slackemu.Options{Clock: clock})
	t.Cleanup(emu.Close)
	for _, id := range testPeople {
		name := strings.Title(strings.ToLower(strings.TrimRight(strings.TrimPrefix(id, "U0"), "0123456789")))
		emu.AddUser(slackemu.User{ID: id, Name: strings.ToLower(name), RealName: name, Email: strings.ToLower(name) + "@example.com", TZ: "Europe/Berlin"})
	}
	for _, c := range []string{"C0AUDIT01", "C0CRMOWN1"} {
		emu.AddChannel(slackemu.Channel{ID: c, Name: strings.ToLower(c), Private: true, BotIsMember: true})
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(path, []byte(runbook), 0o600); err != nil {
		t.Fatal(err)
	}
	e := &world{t: t, emu: emu, clock: clock, dir: dir, conns: map[string]*memory.Connector{}}
	e.cfg = e.load(path)
	e.start(opts...)
	return e
}

func (e *world) load(path string) *Config {
	e.t.Helper()
	getenv := func(k string) string {
		switch k {
		case "SLACK_APP_TOKEN":
			return e.emu.AppToken()
		case "SLACK_BOT_TOKEN":
			return e.emu.BotToken()
		case "SLACK_API_URL":
			return e.emu.APIURL()
		case "STORE_PATH":
			return filepath.Join(e.dir, "accessbot.db")
		}
		return ""
	}
	cfg, err := LoadConfig(path, getenv)
	if err != nil {
		e.t.Fatalf("load config: %v", err)
	}
	return cfg
}

// start (re)starts accessbot on the same store and connectors.
func (e *world) start(opts ...func(*AppOptions)) {
	e.t.Helper()
	swapped := map[string]access.Connector{}
	for name, cc := range e.cfg.Connectors {
		if cc.Type != "memory" {
			continue
		}
		if e.conns[name] == nil {
			e.conns[name] = memory.New()
		}
		swapped[name] = e.conns[name]
	}
	o := AppOptions{Clock: e.clock, Connectors: swapped, NoWheelRun: true, StoreNoSync: true, PaceInterval: -1,
		BotSleep: func(ctx context.Context, d time.Duration) error { return ctx.Err() }, // 429s are retried at once in tests
		Service:  func(c *access.ServiceConfig) { c.Rand = func() float64 { return 0.5 } }}
	for _, f := range opts {
		f(&o)
	}
	app, err := NewApp(e.cfg, o)
	if err != nil {
		e.t.Fatalf("NewApp: %v", err)
	}
	e.app = app
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	connects := e.emu.Connects()
	go func() { done <- app.Run(ctx) }()
	e.stop = func() {
		cancel()
		if err := <-done; err != nil {
			e.t.Errorf("app.Run: %v", err)
		}
		app.Close()
		e.stop = nil
	}
	e.t.Cleanup(func() {
		if e.stop != nil {
			e.stop()
		}
	})
	if err := e.emu.WaitConnects(connects+1, 10*time.Second); err != nil {
		e.t.Fatalf("bot did not connect: %v", err)
	}
	select {
	case <-app.Ready():
	case <-time.After(10 * time.Second):
		e.t.Fatal("the lifecycle did not start")
	}
}

// restart stops accessbot and starts it again on the same store.
func (e *world) restart(opts ...func(*AppOptions)) {
	e.t.Helper()
	e.stop()
	e.start(opts...)
}

// command runs a slash command as user and returns the ack payload text.
func (e *world) command(user, text string) string {
	e.t.Helper()
	envl := e.emu.SlashCommand(user, e.emu.DMChannel(user), "/access", text)
	ack, err := envl.WaitAck(3 * time.Second)
	if err != nil {
		e.t.Fatalf("/access %s: %v", text, err)
	}
	return string(ack.Payload)
}

// waitDMs waits until user's DM with the bot has at least n messages.
func (e *world) waitDMs(user string, n int) []slackemu.Message {
	e.t.Helper()
	ms, err := e.emu.WaitMessages(user, n, 5*time.Second)
	if err != nil {
		e.t.Fatalf("waiting for %d DMs to %s: %v (have %d)", n, user, err, len(e.emu.Messages(user)))
	}
	return ms
}

// click presses a button (by label or action ID) on the newest message in
// user's DM that has it, and waits for the ack.
func (e *world) click(user, button string) {
	e.t.Helper()
	ms := e.emu.Messages(user)
	for i := len(ms) - 1; i >= 0; i-- {
		for _, b := range ms[i].Buttons() {
			if b.Text == button || b.ActionID == button {
				envl, err := e.emu.ClickButton(user, ms[i].Channel, ms[i].TS, button)
				if err != nil {
					e.t.Fatal(err)
				}
				if _, err := envl.WaitAck(3 * time.Second); err != nil {
					e.t.Fatal(err)
				}
				return
			}
		}
	}
	e.t.Fatalf("%s has no %q button", user, button)
}

// request returns the request id, failing the test if it does not exist.
func (e *world) request(id string) *access.Request {
	e.t.Helper()
	r, err := e.app.Store.Get(context.Background(), id)
	if err != nil {
		e.t.Fatal(err)
	}
	return r
}

// waitState waits until request id is in state s (effects run on workers).
func (e *world) waitState(id string, s access.State) *access.Request {
	e.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		r := e.request(id)
		if r.State == s {
			return r
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("%s is %s, want %s", id, r.State, s)
		}
		time.Sleep(5 * time.Millisecond) // polling a condition, not waiting for time to pass
	}
}

// waitDelivered waits until no request has a notice left in its outbox
// (every DM and message update of what happened so far was delivered).
func (e *world) waitDelivered() {
	e.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		rs, err := e.app.Store.List(context.Background(), access.Filter{})
		if err != nil {
			e.t.Fatal(err)
		}
		left := 0
		for _, r := range rs {
			left += len(r.Outbox)
		}
		if left == 0 {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("%d notices still in the outbox", left)
		}
		time.Sleep(5 * time.Millisecond) // polling a condition, not waiting for time to pass
	}
}

// settleOutbox lets every notice that failed and was rescheduled come due
// (a minute of fake time per round, the outbox's retry cap) until the
// outboxes are empty: Slack recovered and the retries went through.
func (e *world) settleOutbox() {
	e.t.Helper()
	for range 20 {
		rs, err := e.app.Store.List(context.Background(), access.Filter{})
		if err != nil {
			e.t.Fatal(err)
		}
		left := 0
		for _, r := range rs {
			left += len(r.Outbox)
		}
		if left == 0 {
			return
		}
		e.advance(access.DefaultNoticeRetryCap)
		time.Sleep(20 * time.Millisecond) // polling a condition, not waiting for time to pass
	}
	e.t.Fatal("notices still in the outbox after 20 rounds of retries")
}

// advance moves the fake clock and runs the reconcile pass, as the wheel
// and the periodic reconcile would.
func (e *world) advance(d time.Duration) {
	e.t.Helper()
	e.clock.Advance(d)
	if err := e.app.Service.Reconcile(context.Background()); err != nil {
		e.t.Fatal(err)
	}
}

func TestHarnessSmoke(t *testing.T) {
	e := startEnv(t, "")
	out := e.command("U0ALICE01", "crm viewer 2h ticket 4411")
	if !strings.Contains(out, "AR-1001") {
		t.Fatalf("ack = %s", out)
	}
	e.waitDMs("U0BOB0001", 1)
	e.click("U0BOB0001", "Approve")
	e.waitDMs("U0CAROL01", 1)
	e.click("U0CAROL01", "Approve")
	r := e.waitState("AR-1001", access.StateActive)
	if got := r.ExpiresAt.Sub(r.GrantedAt); got != 2*time.Hour {
		t.Fatalf("duration %s", got)
	}
	e.advance(2 * time.Hour)
	e.waitState("AR-1001", access.StateExpired)
	if n := e.conns["crm_idp"].Calls().Revoke; n != 1 {
		t.Fatalf("revoke calls = %d", n)
	}
}
