package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/audit"
	"github.com/accessbot/accessbot/bot"
	"github.com/accessbot/accessbot/bot/slackemu"
)

// TestE2EAutoBurstWithListAndHome: 50 people ask for an auto-approved role
// at once while the same people run `/access list` and open their App
// Home. An auto request is created approved in one write, so nobody ever
// sees one pending without steps (that crashed renderers before); nothing
// crashes and every request ends active.
func TestE2EAutoBurstWithListAndHome(t *testing.T) {
	const n = 50
	var users []string
	for i := range n {
		users = append(users, fmt.Sprintf("U0BURST%02d", i))
	}
	rb := strings.Replace(testRunbook, "support: { members: [U0ALICE01, U0DAVE001, U0CAROL01] }",
		"support: { members: [U0ALICE01, U0DAVE001, U0CAROL01, "+strings.Join(users, ", ")+"] }", 1)
	e := startEnv(t, rb)
	for _, u := range users {
		e.emu.AddUser(slackemu.User{ID: u, Name: strings.ToLower(u), RealName: u, TZ: "Europe/Berlin"})
	}
	var wg sync.WaitGroup
	start := make(chan struct{})
	errs := make(chan error, 3*n)
	for _, u := range users {
		for _, text := range []string{"analytics viewer 1h", "list", ""} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				var envl *slackemu.Envelope
				if text == "" {
					envl = e.emu.OpenAppHome(u)
				} else {
					envl = e.emu.SlashCommand(u, e.emu.DMChannel(u), "/access", text)
				}
				ack, err := envl.WaitAck(5 * time.Second)
				if err != nil {
					errs <- fmt.Errorf("%s %q: %w", u, text, err)
					return
				}
				if strings.Contains(string(ack.Payload), "Something went wrong") {
					errs <- fmt.Errorf("%s %q answered %s", u, text, ack.Payload)
				}
			}()
		}
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		rs, err := e.app.Store.List(context.Background(), access.Filter{System: "analytics"})
		if err != nil {
			t.Fatal(err)
		}
		active := 0
		for _, r := range rs {
			if r.State == access.StateActive {
				active++
			}
			if r.State == access.StatePending {
				t.Fatalf("%s is pending: an auto request is never stored pending", r.ID)
			}
		}
		if len(rs) == n && active == n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d requests, %d active; want %d active", len(rs), active, n)
		}
		time.Sleep(10 * time.Millisecond) // polling a condition, not waiting for time to pass
	}
	// Still serving after the burst.
	if out := e.command("U0ALICE01", "list"); !strings.Contains(out, "no active grants") {
		t.Errorf("list after the burst: %s", out)
	}
	e.waitDelivered()
	if got := e.app.Metrics.panicCount(); got != 0 {
		t.Errorf("%v panics recovered during the burst", got)
	}
}

// TestE2EWebhookFailureKeepsURLSecret: for automation platforms' catch
// hooks the URL path is the credential. A grant that the hook refuses
// reaches people only as the system and a reference: no Slack message, no
// audit note and no owners' alert contains the path (or the error body).
func TestE2EWebhookFailureKeepsURLSecret(t *testing.T) {
	const secretPath = "/hooks/catch/4711/s3cr3tPathToken"
	h := newHookReceiver(t)
	h.setDecide(func(hookCall) int { return http.StatusForbidden })
	rb := strings.Replace(hookRunbook(h, ""), h.srv.URL+"/accessbot", h.srv.URL+secretPath, 1)
	e := startEnv(t, rb)
	id := e.submit("U0ALICE01", "crm r1 1h")
	e.waitState(id, access.StateGrantFailed)
	e.waitDelivered()
	if len(h.Calls("access.grant", id)) == 0 {
		t.Fatal("the hook was never called")
	}
	for _, ch := range []string{"U0ALICE01", "C0CRMOWN1", "C0AUDIT01", "U0CAROL01", "U0ERIN001"} {
		for _, m := range e.emu.Messages(ch) {
			if b := body(m); strings.Contains(b, "s3cr3t") || strings.Contains(b, "4711") || strings.Contains(b, "403") {
				t.Errorf("%s got a message with the hook's details: %s", ch, b)
			}
		}
	}
	if msgIndex(e.emu, "C0CRMOWN1", id, "(reference E-") < 0 {
		t.Error("owners were not told, with a reference")
	}
	err := e.app.Store.AuditRecords(context.Background(), func(rec audit.Record) bool {
		if strings.Contains(rec.Note, "s3cr3t") || strings.Contains(rec.Note, "4711") || strings.Contains(rec.Reason, "s3cr3t") {
			t.Errorf("audit record %d holds the hook's path: %q", rec.Seq, rec.Note)
		}
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	r := e.request(id)
	if strings.Contains(r.LastError, "s3cr3t") {
		t.Errorf("the request's last error holds the path: %q", r.LastError)
	}
}

// panicCount sums accessbot_panics_recovered_total over its labels.
func (m *Metrics) panicCount() float64 {
	mfs, err := m.reg.Gather()
	if err != nil {
		return -1
	}
	total := 0.0
	for _, mf := range mfs {
		if mf.GetName() != "accessbot_panics_recovered_total" {
			continue
		}
		for _, x := range mf.GetMetric() {
			total += x.GetCounter().GetValue()
		}
	}
	return total
}

// panicDirectory makes directory lookups of one person panic: a bug deep
// in a worker's call chain.
type panicDirectory struct {
	access.Directory
	victim string
}

func (d panicDirectory) Person(ctx context.Context, user string) (access.Person, error) {
	if user == d.victim {
		panic("injected: directory lookup of " + user)
	}
	return d.Directory.Person(ctx, user)
}

// panicLifecycle makes one person's `/access list` panic inside the Slack
// handler.
type panicLifecycle struct {
	bot.Lifecycle
	victim string
}

func (l panicLifecycle) Mine(ctx context.Context, user string) ([]*access.Request, error) {
	if user == l.victim {
		panic("injected: list for " + user)
	}
	return l.Lifecycle.Mine(ctx, user)
}

// TestE2EPanicIsRecovered: a panic in a Slack handler is recovered: the
// person gets a clear answer with a reference, the panic is counted, and
// the bot keeps serving; a panic in a worker (here the directory lookup of
// a grant) is recovered the same way and the grant is retried.
func TestE2EPanicIsRecovered(t *testing.T) {
	e := startEnv(t, "", func(o *AppOptions) {
		o.WrapLifecycle = func(l bot.Lifecycle) bot.Lifecycle { return panicLifecycle{Lifecycle: l, victim: "U0DAVE001"} }
		o.Service = func(c *access.ServiceConfig) {
			c.Rand = func() float64 { return 0.5 }
			c.Directory = panicDirectory{Directory: c.Directory, victim: "U0CAROL01"}
		}
	})
	out := e.command("U0DAVE001", "list")
	if !strings.Contains(out, "Something went wrong on our side (reference E-") {
		t.Fatalf("the panicking handler answered %s", out)
	}
	if got := e.app.Metrics.panicCount(); got != 1 {
		t.Errorf("%v panics counted, want 1", got)
	}
	if out := e.command("U0ALICE01", "list"); !strings.Contains(out, "no active grants") {
		t.Fatalf("after the panic: %s", out)
	}

	// A worker: Carol's auto grant panics in its directory lookup.
	if out := e.command("U0CAROL01", "analytics viewer 1h"); !strings.Contains(out, "AR-1001") {
		t.Fatalf("ack %s", out)
	}
	deadline := time.Now().Add(5 * time.Second)
	for e.app.Metrics.panicCount() < 2 {
		if time.Now().After(deadline) {
			t.Fatal("the injected worker panic never happened")
		}
		time.Sleep(5 * time.Millisecond) // polling a condition, not waiting for time to pass
	}
	if out := e.command("U0ALICE01", "analytics viewer 1h"); !strings.Contains(out, "AR-1002") {
		t.Fatalf("after the worker panic: %s", out)
	}
	e.waitState("AR-1002", access.StateActive)
	if r := e.request("AR-1001"); r.State != access.StateApproved {
		t.Errorf("AR-1001 is %s, want approved (its grant is retried)", r.State)
	}
}

// busyLifecycle says the lifecycle is at capacity.
type busyLifecycle struct{ bot.Lifecycle }

func (busyLifecycle) Busy() bool { return true }

// TestE2EBusyIsAnsweredAtOnce: beyond what it can sustain, the bot answers
// a new request "busy, try again in a moment" in the ack, creates nothing,
// and counts it; everything else (list) still works.
func TestE2EBusyIsAnsweredAtOnce(t *testing.T) {
	e := startEnv(t, "", func(o *AppOptions) {
		o.WrapLifecycle = func(l bot.Lifecycle) bot.Lifecycle { return busyLifecycle{l} }
	})
	envl := e.emu.SlashCommand("U0ALICE01", e.emu.DMChannel("U0ALICE01"), "/access", "analytics viewer 1h")
	ack, err := envl.WaitAck(3 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(ack.Payload), "very busy") || ack.Latency > 2*time.Second {
		t.Fatalf("ack after %s: %s", ack.Latency, ack.Payload)
	}
	if rs, _ := e.app.Store.List(context.Background(), access.Filter{}); len(rs) != 0 {
		t.Fatalf("%d requests created while busy", len(rs))
	}
	if out := e.command("U0ALICE01", "list"); !strings.Contains(out, "no active grants") {
		t.Errorf("list while busy: %s", out)
	}
	if !strings.Contains(scrape(t, e.app.Metrics), "accessbot_requests_refused_busy_total 1") {
		t.Error("the refusal was not counted")
	}
}

// scrape returns the metrics page.
func scrape(t *testing.T, m *Metrics) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	return rec.Body.String()
}
