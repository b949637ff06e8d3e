package main

// End-to-end tests of the approval path: accessbot against the Slack
// emulator over a real websocket, on a real bbolt file and a fake clock.
// They use the shared harness in harness_test.go; helpers that only these
// tests need are below.

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/bot"
	"github.com/accessbot/accessbot/bot/slackemu"
	"github.com/accessbot/accessbot/connectors/memory"
)

// ---- helpers ----

// texts returns every "text" string in raw Block Kit JSON, decoded (so
// that entities and mentions read as Slack receives them).
func texts(raw json.RawMessage) []string {
	var v any
	if json.Unmarshal(raw, &v) != nil {
		return nil
	}
	var out []string
	var walk func(x any)
	walk = func(x any) {
		switch t := x.(type) {
		case map[string]any:
			if s, ok := t["text"].(string); ok {
				out = append(out, s)
			}
			for _, c := range t {
				walk(c)
			}
		case []any:
			for _, c := range t {
				walk(c)
			}
		}
	}
	walk(v)
	return out
}

// body is a message's top-level text and every text in its blocks.
func body(m slackemu.Message) string {
	return m.Text + "\n" + strings.Join(texts(m.Blocks), "\n")
}

// ackText is the text and block texts of a slash command's ack payload.
func ackText(payload string) string {
	var p struct {
		Text   string          `json:"text"`
		Blocks json.RawMessage `json:"blocks"`
	}
	_ = json.Unmarshal([]byte(payload), &p)
	return p.Text + "\n" + strings.Join(texts(p.Blocks), "\n")
}

// eventually polls cond until it holds or 5 s pass (a condition, not time
// passing: effects run on workers).
func (e *world) eventually(what string, cond func() bool) {
	e.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			e.t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// dmWith waits for a DM to user whose body contains substr and returns it.
func (e *world) dmWith(user, substr string) slackemu.Message {
	e.t.Helper()
	var got slackemu.Message
	e.eventually(fmt.Sprintf("a DM to %s containing %q", user, substr), func() bool {
		for _, m := range e.emu.Messages(user) {
			if !m.Deleted && strings.Contains(body(m), substr) {
				got = m
				return true
			}
		}
		return false
	})
	return got
}

// ephemeralWith waits for an ephemeral shown to user containing substr.
func (e *world) ephemeralWith(user, substr string) slackemu.Message {
	e.t.Helper()
	var got slackemu.Message
	e.eventually(fmt.Sprintf("an ephemeral to %s containing %q", user, substr), func() bool {
		for _, m := range e.emu.Ephemerals(user) {
			if strings.Contains(body(m), substr) {
				got = m
				return true
			}
		}
		return false
	})
	return got
}

// approvalCopies returns the stored approval copies of request id (DMs and
// the audit channel) as the emulator holds them now.
func (e *world) approvalCopies(id string) []slackemu.Message {
	e.t.Helper()
	var out []slackemu.Message
	for _, ref := range e.request(id).Messages {
		if ref.Kind != "approval" && ref.Kind != "audit" {
			continue
		}
		m, ok := e.emu.Message(ref.Channel, ref.TS)
		if !ok {
			e.t.Fatalf("stored copy %s/%s of %s is not in Slack", ref.Channel, ref.TS, id)
		}
		out = append(out, m)
	}
	return out
}

// waitCopiesFinal waits until every stored approval copy of id shows want
// and has no buttons, and returns the copies.
func (e *world) waitCopiesFinal(id, want string) []slackemu.Message {
	e.t.Helper()
	var ms []slackemu.Message
	deadline := time.Now().Add(5 * time.Second)
	for {
		ms = e.approvalCopies(id)
		ok := len(ms) > 0
		for _, m := range ms {
			if len(m.Buttons()) > 0 || !strings.Contains(body(m), want) {
				ok = false
			}
		}
		if ok {
			return ms
		}
		if time.Now().After(deadline) {
			for _, m := range ms {
				e.t.Logf("copy %s/%s buttons=%d: %s", m.Channel, m.TS, len(m.Buttons()), body(m))
			}
			e.t.Fatalf("not every copy of %s shows %q without buttons", id, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// clickAt presses button on the message (channel, ts) as user and waits for the ack.
func (e *world) clickAt(user string, m slackemu.Message, button string) {
	e.t.Helper()
	envl, err := e.emu.ClickButton(user, m.Channel, m.TS, button)
	if err != nil {
		e.t.Fatal(err)
	}
	if _, err := envl.WaitAck(3 * time.Second); err != nil {
		e.t.Fatal(err)
	}
}

// noFailures fails the test if Slack would have shown a failure or
// rejected a message the bot sent.
func (e *world) noFailures() {
	e.t.Helper()
	for _, f := range e.emu.Failures() {
		e.t.Errorf("Slack failure: %+v", f)
	}
	for _, c := range e.emu.Calls("") {
		if c.Error != "" && c.Error != "ratelimited" {
			e.t.Errorf("%s failed: %s (%v)", c.Method, c.Error, c.Params["channel"])
		}
	}
}

// noRequest fails the test if request id exists.
func (e *world) noRequest(id string) {
	e.t.Helper()
	if _, err := e.app.Store.Get(context.Background(), id); err == nil {
		e.t.Fatalf("%s exists, want no request created", id)
	}
}

// waitRefs waits until request id holds n message references (they are
// stored after the messages are posted).
func (e *world) waitRefs(id string, n int) *access.Request {
	e.t.Helper()
	var r *access.Request
	e.eventually(fmt.Sprintf("%d message references on %s", n, id), func() bool {
		r = e.request(id)
		return len(r.Messages) >= n
	})
	return r
}

// approveStep1 runs the usual start: Alice asks for crm viewer, Bob
// approves step 1; Carol and Erin then hold step 2 DMs.
func (e *world) approveStep1() {
	e.t.Helper()
	if out := e.command("U0ALICE01", "crm viewer 2h ticket 4411"); !strings.Contains(out, "AR-1001") {
		e.t.Fatalf("ack = %s", out)
	}
	e.waitDMs("U0BOB0001", 1)
	e.click("U0BOB0001", "Approve")
	e.waitDMs("U0CAROL01", 1)
	e.waitDMs("U0ERIN001", 1)
	e.waitRefs("AR-1001", 4) // Bob, the audit channel, Carol, Erin
}

// ---- the approval path ----

func TestE2ETwoStepApproval(t *testing.T) {
	e := startEnv(t, "")
	ack := ackText(e.command("U0ALICE01", "crm viewer 2h ticket 4411"))
	if !strings.Contains(ack, "AR-1001") || !strings.Contains(ack, "<@U0BOB0001>") {
		t.Fatalf("ack does not name the request and the first approver: %s", ack)
	}
	e.dmWith("U0ALICE01", "was sent to <@U0BOB0001> for approval (step 1 of 2")
	bob := e.waitDMs("U0BOB0001", 1)[0]
	for _, want := range []string{"<@U0ALICE01>", "Salesforce CRM · viewer", "2h", "Read-only customer records", "ticket 4411", "*Manager:* <@U0BOB0001>", "support"} {
		if !strings.Contains(body(bob), want) {
			t.Errorf("approval DM lacks %q:\n%s", want, body(bob))
		}
	}
	if len(bob.Buttons()) != 2 {
		t.Fatalf("approval DM buttons = %+v", bob.Buttons())
	}
	for _, b := range bob.Buttons() {
		if b.Value != "AR-1001" {
			t.Errorf("button %s carries %q, want only the request ID", b.ActionID, b.Value)
		}
	}
	if len(e.emu.Messages("U0CAROL01")) != 0 {
		t.Fatal("owners were asked before the manager decided")
	}

	e.click("U0BOB0001", "Approve")
	e.eventually("step 2", func() bool { return e.request("AR-1001").CurrentStep == 1 })
	e.dmWith("U0ALICE01", "Step 1 of *AR-1001* approved by <@U0BOB0001>")
	carol := e.waitDMs("U0CAROL01", 1)[0]
	e.waitDMs("U0ERIN001", 1)
	if len(carol.Buttons()) != 2 {
		t.Fatalf("owner DM buttons = %+v", carol.Buttons())
	}
	e.eventually("the manager's copy to lose its buttons", func() bool {
		m, _ := e.emu.Message(bob.Channel, bob.TS)
		return len(m.Buttons()) == 0
	})

	e.click("U0CAROL01", "Approve")
	r := e.waitState("AR-1001", access.StateActive)
	if got := r.ApprovedBy(); strings.Join(got, ",") != "U0BOB0001,U0CAROL01" {
		t.Fatalf("approved by %v", got)
	}
	if n := e.conns["crm_idp"].Calls().Grant; n != 1 {
		t.Fatalf("grant calls = %d", n)
	}
	e.dmWith("U0ALICE01", "was approved by <@U0BOB0001>, <@U0CAROL01>")
	e.dmWith("U0ALICE01", "you now have *Salesforce CRM · viewer* until")
	copies := e.waitCopiesFinal("AR-1001", "Approved")
	if len(copies) != 4 { // Bob, Carol, Erin, audit channel
		t.Fatalf("%d stored copies, want 4", len(copies))
	}
	e.noFailures()
}

func TestE2EDenyNeedsReason(t *testing.T) {
	e := startEnv(t, "")
	e.command("U0ALICE01", "crm viewer 2h ticket 4411")
	e.waitDMs("U0BOB0001", 1)
	e.click("U0BOB0001", "Deny")
	views, err := e.emu.WaitOpenViews("U0BOB0001", 1, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	v := views[0]
	if v.CallbackID != bot.CallbackDeny || v.PrivateMetadata != "AR-1001#0" {
		t.Fatalf("deny modal = %+v", v)
	}
	// A blank reason: the client submits it (it is not empty), the bot
	// keeps the modal open with an error next to the field.
	envl, err := e.emu.SubmitView("U0BOB0001", v.ID, map[string]map[string]slackemu.Value{
		bot.BlockDenyReason: {bot.ActionDenyReason: {Value: "   "}}})
	if err != nil {
		t.Fatal(err)
	}
	res, err := envl.WaitAck(3 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(res.Payload), `"response_action":"errors"`) {
		t.Fatalf("blank reason ack = %s", res.Payload)
	}
	views = e.emu.OpenViews("U0BOB0001")
	if len(views) != 1 || views[0].Errors[bot.BlockDenyReason] == "" {
		t.Fatalf("modal after blank reason = %+v", views)
	}
	if r := e.request("AR-1001"); r.State != access.StatePending {
		t.Fatalf("state %s after a blank deny", r.State)
	}
	envl, err = e.emu.SubmitView("U0BOB0001", v.ID, map[string]map[string]slackemu.Value{
		bot.BlockDenyReason: {bot.ActionDenyReason: {Value: "no ticket <b>& no need"}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := envl.WaitAck(3 * time.Second); err != nil {
		t.Fatal(err)
	}
	if _, err := e.emu.WaitOpenViews("U0BOB0001", 0, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	r := e.waitState("AR-1001", access.StateDenied)
	if d, _ := r.Denial(); d.Actor != "U0BOB0001" || d.Reason != "no ticket <b>& no need" {
		t.Fatalf("denial = %+v", d)
	}
	e.dmWith("U0ALICE01", "was *denied* by <@U0BOB0001>: no ticket &lt;b&gt;&amp; no need")
	e.waitCopiesFinal("AR-1001", "*Denied* by <@U0BOB0001>")
	if n := e.conns["crm_idp"].Calls().Grant; n != 0 {
		t.Fatalf("grant calls = %d after a deny", n)
	}
	if len(e.emu.Messages("U0CAROL01")) != 0 {
		t.Fatal("step 2 was asked after a deny")
	}
	e.noFailures()
}

// A step-2 owner denies while the other owner's copy still shows buttons
// (its update failed): the late Approve is refused, saying who decided.
func TestE2EStaleApproveAfterDeny(t *testing.T) {
	e := startEnv(t, "")
	e.approveStep1()
	carol := e.waitDMs("U0CAROL01", 1)[0]
	e.emu.FailNext("chat.update", "internal_error", 1000) // copies stay stale
	e.click("U0ERIN001", "Deny")
	views, err := e.emu.WaitOpenViews("U0ERIN001", 1, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	envl, err := e.emu.SubmitView("U0ERIN001", views[0].ID, map[string]map[string]slackemu.Value{
		bot.BlockDenyReason: {bot.ActionDenyReason: {Value: "not this quarter"}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := envl.WaitAck(3 * time.Second); err != nil {
		t.Fatal(err)
	}
	before := e.waitState("AR-1001", access.StateDenied)
	if len(carol.Buttons()) == 0 {
		t.Fatal("setup: Carol's copy has no buttons")
	}
	e.clickAt("U0CAROL01", carol, "Approve")
	msg := e.ephemeralWith("U0CAROL01", "already denied by <@U0ERIN001>")
	if !strings.Contains(body(msg), "nothing was changed") {
		t.Errorf("refusal = %s", body(msg))
	}
	after := e.request("AR-1001")
	// (The version moves on: the outbox keeps retrying the copy updates.)
	if after.State != access.StateDenied || len(after.History) != len(before.History) || len(after.Decisions) != len(before.Decisions) {
		t.Fatalf("a stale approve changed the request: %s %v → %s %v", before.State, len(before.History), after.State, len(after.History))
	}
	// Nothing replaced Carol's copy with the refusal.
	if m, _ := e.emu.Message(carol.Channel, carol.TS); strings.Contains(body(m), "already denied") {
		t.Fatalf("the refusal replaced the approval message: %s", body(m))
	}
	if n := e.conns["crm_idp"].Calls().Grant; n != 0 {
		t.Fatalf("grant calls = %d", n)
	}
}

// Bob approved step 1; a copy that still shows buttons (its update failed)
// lets him click again: the click counts only for the step of the message
// it was made on (step 1, done), so he is told so privately and nothing
// changes.
func TestE2ENonApproverClick(t *testing.T) {
	e := startEnv(t, "")
	e.command("U0ALICE01", "crm viewer 2h ticket 4411")
	bob := e.waitDMs("U0BOB0001", 1)[0]
	e.emu.FailNext("chat.update", "internal_error", 1000)
	e.click("U0BOB0001", "Approve")
	e.waitDMs("U0CAROL01", 1)
	before := e.waitRefs("AR-1001", 4)
	for i, button := range []string{"Approve", "Deny"} {
		e.clickAt("U0BOB0001", bob, button)
		e.eventually("a refusal", func() bool {
			n := 0
			for _, m := range e.emu.Ephemerals("U0BOB0001") {
				if strings.Contains(body(m), "asked about step 1 of *AR-1001*, which is no longer the step waiting") {
					n++
				}
			}
			return n == i+1
		})
	}
	if views := e.emu.OpenViews("U0BOB0001"); len(views) != 0 {
		t.Fatalf("a non-approver got the deny modal: %+v", views)
	}
	after := e.request("AR-1001")
	if len(after.History) != len(before.History) || len(after.Decisions) != len(before.Decisions) || after.State != access.StatePending || after.CurrentStep != 1 {
		t.Fatalf("a non-approver's click changed the request")
	}
	if m, _ := e.emu.Message(bob.Channel, bob.TS); len(m.Edits) != 0 {
		t.Fatalf("the refusal edited the approval message: %+v", m.Edits)
	}
}

// Carol is in team support and an owner of crm. Asking for crm admin (two
// owners) she is never asked to approve; the fallback adds the admins so
// two other approvers exist, and she is told who was asked instead.
func TestE2ERequesterOwnerCannotApprove(t *testing.T) {
	e := startEnv(t, "")
	ack := ackText(e.command("U0CAROL01", "crm admin 1h export for audit"))
	if !strings.Contains(ack, "AR-1001") {
		t.Fatalf("ack = %s", ack)
	}
	r := e.request("AR-1001")
	st := r.Steps[0]
	sort.Strings(st.Approvers)
	if strings.Join(st.Approvers, ",") != "U0ADMIN01,U0ERIN001" || st.Fallback != "admins" || st.Min != 2 {
		t.Fatalf("step = %+v", st)
	}
	sub := e.dmWith("U0CAROL01", "asked instead")
	for _, want := range []string{"admins", "<@U0ERIN001>", "<@U0ADMIN01>"} {
		if !strings.Contains(body(sub), want) {
			t.Errorf("submitted DM lacks %q: %s", want, body(sub))
		}
	}
	e.waitDMs("U0ERIN001", 1)
	e.waitDMs("U0ADMIN01", 1)
	for _, m := range e.emu.Messages("U0CAROL01") {
		for _, b := range m.Buttons() {
			if b.ActionID == bot.ActionApprove || b.ActionID == bot.ActionDeny {
				t.Fatalf("the requester got an approval button: %s", body(m))
			}
		}
	}
	if _, err := e.app.Service.Decide(context.Background(), "AR-1001", "U0CAROL01", true, "", access.AnyStep); err == nil {
		t.Fatal("the requester approved her own request")
	}
	e.click("U0ERIN001", "Approve")
	e.eventually("one approval", func() bool { return len(e.request("AR-1001").Approvals(0)) == 1 })
	if e.request("AR-1001").State != access.StatePending {
		t.Fatal("one approval of two approved the request")
	}
	e.click("U0ADMIN01", "Approve")
	e.waitState("AR-1001", access.StateActive)
	e.noFailures()
}

// Both owners of a min-1 step click Approve at the same moment: one
// decision, one grant; the other is told who decided.
func TestE2EConcurrentApprove(t *testing.T) {
	e := startEnv(t, "")
	e.approveStep1()
	carol := e.waitDMs("U0CAROL01", 1)[0]
	erin := e.waitDMs("U0ERIN001", 1)[0]
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for _, c := range []struct {
		user string
		m    slackemu.Message
	}{{"U0CAROL01", carol}, {"U0ERIN001", erin}} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			envl, err := e.emu.ClickButton(c.user, c.m.Channel, c.m.TS, "Approve")
			if err == nil {
				_, err = envl.WaitAck(3 * time.Second)
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	r := e.waitState("AR-1001", access.StateActive)
	if got := r.Approvals(1); len(got) != 1 {
		t.Fatalf("step 2 approvals = %v, want exactly one", got)
	}
	winner := r.Approvals(1)[0]
	loser := "U0CAROL01"
	if winner == loser {
		loser = "U0ERIN001"
	}
	e.ephemeralWith(loser, "already approved by <@"+winner+">")
	e.waitCopiesFinal("AR-1001", "Approved")
	if n := e.conns["crm_idp"].Calls().Grant; n != 1 {
		t.Fatalf("grant calls = %d, want 1", n)
	}
	approvedDMs := 0
	for _, m := range e.emu.Messages("U0ALICE01") {
		if strings.Contains(body(m), "was approved by") {
			approvedDMs++
		}
	}
	if approvedDMs != 1 {
		t.Fatalf("requester told %d times that it was approved", approvedDMs)
	}
}

// A request approved after the bot restarted still updates every copy:
// the references are in the store, not in memory.
func TestE2ERestartBetweenSteps(t *testing.T) {
	e := startEnv(t, "")
	e.approveStep1()
	e.restart()
	e.click("U0CAROL01", "Approve")
	e.waitState("AR-1001", access.StateActive)
	copies := e.waitCopiesFinal("AR-1001", "by <@U0BOB0001>, <@U0CAROL01>")
	have := map[string]bool{}
	for _, m := range copies {
		have[m.Channel] = true
	}
	for _, where := range []string{e.emu.DMChannel("U0BOB0001"), e.emu.DMChannel("U0CAROL01"), e.emu.DMChannel("U0ERIN001"), "C0AUDIT01"} {
		if !have[where] {
			t.Errorf("no stored copy in %s", where)
		}
	}
	// Every message in those places, not only the referenced ones.
	for _, who := range []string{"U0BOB0001", "U0CAROL01", "U0ERIN001", "C0AUDIT01"} {
		for _, m := range e.emu.Messages(who) {
			if len(m.Buttons()) > 0 {
				t.Errorf("%s still has buttons: %s", who, body(m))
			}
		}
	}
}

// A 10,000-character reason full of mentions and fake links is shown
// escaped and within Block Kit limits everywhere (the emulator rejects
// what Slack would reject, so a failed post would show).
func TestE2EHostileReason(t *testing.T) {
	e := startEnv(t, "")
	evil := " <!channel> <@U0ADMIN01> <https://evil|Approve here> <!here|here> <!subteam^S0HRTEAM1> & ünïcødé 🔐 "
	reason := "ticket 4411"
	for len([]rune(reason))+len([]rune(evil)) <= access.MaxReasonRunes {
		reason += evil
	}
	for len([]rune(reason)) < access.MaxReasonRunes {
		reason += "x"
	}
	reason = strings.TrimSpace(reason)
	for len([]rune(reason)) < access.MaxReasonRunes {
		reason += "y"
	}
	if n := len([]rune(reason)); n != access.MaxReasonRunes {
		t.Fatalf("reason has %d runes", n)
	}
	ack := e.command("U0ALICE01", "crm viewer 2h "+reason)
	if !strings.Contains(ack, "AR-1001") {
		t.Fatalf("ack = %.300s", ack)
	}
	if got := e.request("AR-1001").Reason; got != reason {
		t.Fatalf("stored reason differs (%d runes)", len([]rune(got)))
	}
	e.waitDMs("U0BOB0001", 1)
	e.click("U0BOB0001", "Approve")
	e.waitDMs("U0ERIN001", 1)
	e.click("U0ERIN001", "Deny")
	views, err := e.emu.WaitOpenViews("U0ERIN001", 1, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	envl, err := e.emu.SubmitView("U0ERIN001", views[0].ID, map[string]map[string]slackemu.Value{
		bot.BlockDenyReason: {bot.ActionDenyReason: {Value: strings.Repeat("<!everyone> <https://x|y> ", 110)}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := envl.WaitAck(3 * time.Second); err != nil {
		t.Fatal(err)
	}
	e.waitState("AR-1001", access.StateDenied)
	e.waitCopiesFinal("AR-1001", "Denied")
	e.dmWith("U0ALICE01", "denied")
	bots := []string{"U0ALICE01", "U0BOB0001", "U0CAROL01", "U0ERIN001"} // the bot's own mentions
	for _, where := range []string{"U0ALICE01", "U0BOB0001", "U0CAROL01", "U0ERIN001", "C0AUDIT01"} {
		if got := e.emu.UnsafeMentionsIn(where, bots...); len(got) > 0 {
			t.Errorf("unsafe mentions in %s: %q", where, got)
		}
	}
	for _, v := range e.emu.OpenViews("U0ERIN001") {
		t.Errorf("modal left open: %s", v.ID)
	}
	e.noFailures()
}

// ---- the modal ----

// options returns the option values of a select in a view.
func options(t *testing.T, v slackemu.View, blockID string) (values []string, initial string) {
	t.Helper()
	var blocks []struct {
		BlockID string `json:"block_id"`
		Element struct {
			Options []struct {
				Value string `json:"value"`
			} `json:"options"`
			InitialOption *struct {
				Value string `json:"value"`
			} `json:"initial_option"`
		} `json:"element"`
	}
	if err := json.Unmarshal(v.Blocks, &blocks); err != nil {
		t.Fatal(err)
	}
	for _, b := range blocks {
		if b.BlockID != blockID {
			continue
		}
		for _, o := range b.Element.Options {
			values = append(values, o.Value)
		}
		if b.Element.InitialOption != nil {
			initial = b.Element.InitialOption.Value
		}
		return values, initial
	}
	t.Fatalf("view has no block %s", blockID)
	return nil, ""
}

func TestE2EModal(t *testing.T) {
	e := startEnv(t, "")
	if out := ackText(e.command("U0ALICE01", "")); strings.TrimSpace(out) != "" {
		t.Fatalf("empty /access answered %q, want the modal only", out)
	}
	views, err := e.emu.WaitOpenViews("U0ALICE01", 1, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	v := views[0]
	if v.CallbackID != bot.CallbackRequest {
		t.Fatalf("callback %q", v.CallbackID)
	}
	if sys, _ := options(t, v, bot.BlockSystem); strings.Join(sys, ",") != "analytics,crm" {
		t.Fatalf("systems offered = %v (payroll is for hr only)", sys)
	}

	// Choosing a system updates the role choices (views.update).
	choose := func(block, action, value string) slackemu.View {
		t.Helper()
		hash := e.emu.OpenViews("U0ALICE01")[0].Hash
		envl, err := e.emu.SelectOption("U0ALICE01", v.ID, block, action, value)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := envl.WaitAck(3 * time.Second); err != nil {
			t.Fatal(err)
		}
		var got slackemu.View
		e.eventually("views.update after choosing "+value, func() bool {
			vs := e.emu.OpenViews("U0ALICE01")
			if len(vs) == 1 && vs[0].Hash != hash {
				got = vs[0]
				return true
			}
			return false
		})
		return got
	}
	v = choose(bot.BlockSystem, bot.ActionSystemSelect, "analytics")
	if roles, init := options(t, v, bot.BlockRole); strings.Join(roles, ",") != "viewer" || init != "viewer" {
		t.Fatalf("analytics roles = %v (%s)", roles, init)
	}
	if durs, _ := options(t, v, bot.BlockDuration); durs[len(durs)-1] != "4h" {
		t.Fatalf("analytics durations = %v, want up to 4h", durs)
	}
	v = choose(bot.BlockSystem, bot.ActionSystemSelect, "crm")
	roles, _ := options(t, v, bot.BlockRole)
	if strings.Join(roles, ",") != "admin,viewer" {
		t.Fatalf("crm roles = %v", roles)
	}
	v = choose(bot.BlockRole, bot.ActionRoleSelect, "viewer")
	durs, init := options(t, v, bot.BlockDuration)
	if init != "2h" || durs[len(durs)-1] != "8h" {
		t.Fatalf("crm viewer durations = %v (initial %s)", durs, init)
	}

	submit := func(values map[string]map[string]slackemu.Value) json.RawMessage {
		t.Helper()
		envl, err := e.emu.SubmitView("U0ALICE01", v.ID, values)
		if err != nil {
			t.Fatal(err)
		}
		res, err := envl.WaitAck(3 * time.Second)
		if err != nil {
			t.Fatal(err)
		}
		return res.Payload
	}
	// Over the maximum: admin (1h max) picked with a viewer duration before
	// the form caught up.
	out := submit(map[string]map[string]slackemu.Value{
		bot.BlockRole:     {bot.ActionRoleSelect: {SelectedOption: "admin"}},
		bot.BlockDuration: {bot.ActionDuration: {SelectedOption: "8h"}},
		bot.BlockReason:   {bot.ActionReason: {Value: "ticket 1"}},
	})
	if !strings.Contains(string(out), `"response_action":"errors"`) || !strings.Contains(string(out), `"`+bot.BlockDuration+`"`) {
		t.Fatalf("over-max submit ack = %s", out)
	}
	if vs := e.emu.OpenViews("U0ALICE01"); len(vs) != 1 || vs[0].Errors[bot.BlockDuration] == "" {
		t.Fatalf("modal after over-max = %+v", vs)
	}
	// A blank reason where one is required.
	out = submit(map[string]map[string]slackemu.Value{
		bot.BlockRole:     {bot.ActionRoleSelect: {SelectedOption: "viewer"}},
		bot.BlockDuration: {bot.ActionDuration: {SelectedOption: "2h"}},
		bot.BlockReason:   {bot.ActionReason: {Value: "  "}},
	})
	if !strings.Contains(string(out), `"response_action":"errors"`) || !strings.Contains(string(out), `"`+bot.BlockReason+`"`) {
		t.Fatalf("blank reason submit ack = %s", out)
	}
	e.noRequest("AR-1001")

	out = submit(map[string]map[string]slackemu.Value{
		bot.BlockRole:     {bot.ActionRoleSelect: {SelectedOption: "viewer"}},
		bot.BlockDuration: {bot.ActionDuration: {SelectedOption: "4h"}},
		bot.BlockReason:   {bot.ActionReason: {Value: "ticket 4411"}},
	})
	if len(out) != 0 {
		t.Fatalf("valid submit ack = %s, want the modal closed", out)
	}
	if _, err := e.emu.WaitOpenViews("U0ALICE01", 0, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	r := e.request("AR-1001")
	if r.System != "crm" || r.Role != "viewer" || r.Duration != 4*time.Hour || r.Reason != "ticket 4411" {
		t.Fatalf("request = %s %s %s %q", r.System, r.Role, r.Duration, r.Reason)
	}
	e.waitDMs("U0BOB0001", 1)
	e.noFailures()
}

func TestE2EModalNothingToRequest(t *testing.T) {
	e := startEnv(t, "")
	out := ackText(e.command("U0MALLO01", ""))
	if !strings.Contains(out, "nothing you may request") || !strings.Contains(out, "<@U0ADMIN01>") {
		t.Fatalf("ack = %s", out)
	}
	if vs := e.emu.OpenViews("U0MALLO01"); len(vs) != 0 {
		t.Fatalf("an empty form was opened: %+v", vs)
	}
	if c := e.emu.Calls("views.open"); len(c) != 0 {
		t.Fatalf("views.open called %d times", len(c))
	}
}

// ---- the direct form ----

func TestE2EDirectForm(t *testing.T) {
	e := startEnv(t, "")
	for _, tc := range []struct {
		name, text string
		want       []string
	}{
		{"unknown system", "zzz viewer 2h ticket", []string{"zzz", "crm"}},
		{"unknown role", "crm superuser 2h ticket", []string{"superuser", "viewer"}},
		{"banana duration", "crm viewer banana ticket", []string{"“banana” is not a duration", "30m"}},
		{"over max", "crm admin 2h ticket", []string{"1h"}},
		{"not eligible", "payroll viewer 1h payslip", []string{"may not request payroll viewer"}},
		{"help", "help", []string{"SYSTEM ROLE DURATION REASON", "/access list"}},
		{"list", "list", []string{"no active grants"}},
		{"pending", "pending", []string{"Nothing is waiting for your approval"}},
		{"systems", "systems", []string{"Salesforce CRM", "`viewer`", "up to 8h", "manager → owners", "Dashboards", "automatic"}},
		{"cancel unknown", "cancel AR-9999", []string{"AR-9999"}},
		{"cancel no id", "cancel", []string{"Which request?"}},
		{"cancel bad id", "cancel banana", []string{"not a request ID"}},
		{"extend bad duration", "extend AR-1001 forever", []string{"“forever” is not a duration"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := ackText(e.command("U0ALICE01", tc.text))
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("/access %s → %q, want it to contain %q", tc.text, out, w)
				}
			}
			if strings.Contains(out, "payroll") && tc.name == "systems" {
				t.Errorf("systems lists payroll to a non-hr person: %s", out)
			}
		})
	}
	e.noRequest("AR-1001")
	if vs := e.emu.OpenViews("U0ALICE01"); len(vs) != 0 {
		t.Fatalf("a modal was opened: %+v", vs)
	}

	// A missing reason where one is required opens the modal pre-filled.
	if out := ackText(e.command("U0ALICE01", "crm viewer 4h")); strings.TrimSpace(out) != "" {
		t.Fatalf("missing reason answered %q, want the modal", out)
	}
	vs, err := e.emu.WaitOpenViews("U0ALICE01", 1, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	for block, want := range map[string]string{bot.BlockSystem: "crm", bot.BlockRole: "viewer", bot.BlockDuration: "4h"} {
		if _, init := options(t, vs[0], block); init != want {
			t.Errorf("pre-filled %s = %q, want %q", block, init, want)
		}
	}
	e.noRequest("AR-1001")

	// Optional reason, auto approval: created and granted at once.
	if out := ackText(e.command("U0ALICE01", "analytics viewer 1h")); !strings.Contains(out, "approved automatically") {
		t.Fatalf("auto request ack = %s", out)
	}
	e.waitState("AR-1001", access.StateActive)
	if out := ackText(e.command("U0ALICE01", "list")); !strings.Contains(out, "AR-1001") || !strings.Contains(out, "active until") {
		t.Fatalf("list = %s", out)
	}
	e.noFailures()
}

func TestE2EDuplicateRequest(t *testing.T) {
	e := startEnv(t, "")
	e.command("U0ALICE01", "crm viewer 2h ticket 4411")
	e.waitDMs("U0BOB0001", 1) // the approval DM follows the ack
	out := ackText(e.command("U0ALICE01", "CRM Viewer 1h another ticket"))
	if !strings.Contains(out, "You already have AR-1001") || !strings.Contains(out, "waiting for approval") {
		t.Fatalf("duplicate ack = %s", out)
	}
	e.noRequest("AR-1002")
	if n := len(e.emu.Messages("U0BOB0001")); n != 1 {
		t.Fatalf("Bob has %d DMs, want 1", n)
	}
	// Once active, the answer offers an extension.
	e.click("U0BOB0001", "Approve")
	e.waitDMs("U0CAROL01", 1)
	e.click("U0CAROL01", "Approve")
	e.waitState("AR-1001", access.StateActive)
	out = ackText(e.command("U0ALICE01", "crm viewer 1h again"))
	if !strings.Contains(out, "AR-1001") || !strings.Contains(out, "extend AR-1001") {
		t.Fatalf("duplicate of an active grant = %s", out)
	}
	e.noRequest("AR-1002")
}

// startEnvEmu is startEnv with emulator options (the shared harness takes
// none).
func startEnvEmu(t *testing.T, eo slackemu.Options) *world {
	t.Helper()
	clock := slackemu.NewFakeClock(time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC))
	eo.Clock = clock
	emu := slackemu.New(eo)
	t.Cleanup(emu.Close)
	for _, id := range testPeople {
		name := strings.ToLower(strings.TrimRight(strings.TrimPrefix(id, "U0"), "0123456789"))
		emu.AddUser(slackemu.User{ID: id, Name: name, RealName: name, Email: name + "@example.com", TZ: "Europe/Berlin"})
	}
	for _, c := range []string{"C0AUDIT01", "C0CRMOWN1"} {
		emu.AddChannel(slackemu.Channel{ID: c, Name: strings.ToLower(c), Private: true, BotIsMember: true})
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(path, []byte(testRunbook), 0o600); err != nil {
		t.Fatal(err)
	}
	e := &world{t: t, emu: emu, clock: clock, dir: dir, conns: map[string]*memory.Connector{}}
	e.cfg = e.load(path)
	e.start()
	return e
}

// Slack redelivers an events_api envelope whose ack came late, with the
// same envelope ID: the bot handles it once.
func TestE2EDuplicateEnvelope(t *testing.T) {
	e := startEnv(t, "")
	if _, err := e.app.Service.Submit(context.Background(), access.SubmitInput{Requester: "U0ALICE01", System: "crm", Role: "viewer", Duration: time.Hour, Reason: "t"}); err != nil {
		t.Fatal(err)
	}
	e.waitDelivered() // its DMs are sent; a later one would refresh the Home legitimately
	envl := e.emu.OpenAppHome("U0ALICE01")
	if _, err := envl.WaitAck(3 * time.Second); err != nil {
		t.Fatal(err)
	}
	// Slack delivers the same envelope again when it did not get the ack
	// (lost with a dropped connection): three more deliveries.
	for range 3 {
		if err := e.emu.Redeliver(envl.ID); err != nil {
			t.Fatal(err)
		}
	}
	// The bot acks every delivery (the ack of a duplicate is only recorded).
	e.eventually("every redelivery acked", func() bool {
		n := 0
		for _, a := range e.emu.Acks() {
			if a.EnvelopeID == envl.ID {
				n++
			}
		}
		return n >= 4
	})
	e.eventually("the App Home to be published", func() bool { return len(e.emu.Calls("views.publish")) > 0 })
	if calls := e.emu.Calls("views.publish"); len(calls) != 1 {
		for _, c := range calls {
			t.Logf("views.publish at %v: error %q status %d", c.At, c.Error, c.HTTPStatus)
		}
		t.Fatalf("views.publish called %d times for one envelope delivered 4 times", len(calls))
	}
	if _, ok := e.emu.HomeView("U0ALICE01"); !ok {
		t.Fatal("no App Home published")
	}
}

// ---- time ----

func TestE2EReminderAndTimeout(t *testing.T) {
	e := startEnv(t, "")
	e.command("U0ALICE01", "crm viewer 2h ticket 4411")
	e.waitDMs("U0BOB0001", 1)
	e.advance(time.Hour)
	if n := len(e.emu.Messages("U0BOB0001")); n != 1 {
		t.Fatalf("reminded early: %d DMs", n)
	}
	e.advance(time.Hour + time.Minute) // past reminder_after (2h)
	rem := e.waitDMs("U0BOB0001", 2)[1]
	if !strings.Contains(body(rem), "Reminder") || len(rem.Buttons()) != 2 {
		t.Fatalf("reminder = %s (%d buttons)", body(rem), len(rem.Buttons()))
	}
	if r := e.request("AR-1001"); r.State != access.StatePending {
		t.Fatalf("state %s after the reminder", r.State)
	}
	e.advance(22 * time.Hour) // past approval_timeout (24h)
	e.waitState("AR-1001", access.StateTimedOut)
	e.dmWith("U0ALICE01", "*timed out*")
	e.waitCopiesFinal("AR-1001", "Timed out")
	for _, m := range e.emu.Messages("U0BOB0001") {
		if len(m.Buttons()) > 0 {
			t.Fatalf("Bob's DM still has buttons after the timeout: %s", body(m))
		}
	}
	if len(e.emu.Messages("U0CAROL01")) != 0 {
		t.Fatal("owners asked after a timeout")
	}
	e.noFailures()
}

// ---- Slack under load ----

func TestE2ERateLimitedPosts(t *testing.T) {
	e := startEnv(t, "")
	e.emu.RateLimit("chat.postMessage", time.Second, 3)
	e.command("U0ALICE01", "crm viewer 2h ticket 4411")
	// A delivery sits out a short Retry-After in place a few times, then
	// leaves the notice in the outbox, retried when its backoff is due.
	e.settleOutbox()
	e.dmWith("U0ALICE01", "was sent to")
	e.waitDMs("U0BOB0001", 1)
	if _, err := e.emu.WaitMessages("C0AUDIT01", 1, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	limited := 0
	for _, c := range e.emu.Calls("chat.postMessage") {
		if c.Error == "ratelimited" {
			limited++
		}
	}
	if limited != 3 {
		t.Fatalf("%d rate-limited posts, want 3", limited)
	}
	e.click("U0BOB0001", "Approve")
	e.waitDMs("U0CAROL01", 1)
	e.emu.RateLimit("chat.update", time.Second, 3)
	e.emu.RateLimit("chat.postMessage", time.Second, 3)
	e.click("U0CAROL01", "Approve")
	e.waitState("AR-1001", access.StateActive)
	e.settleOutbox()
	e.dmWith("U0ALICE01", "you now have")
	e.waitCopiesFinal("AR-1001", "Approved")
	e.noFailures()
}

// p99 ack latency of 50 /access commands sent at once.
func TestE2EAckLatency(t *testing.T) {
	const n = 50
	var users []string
	for i := 0; i < n; i++ {
		users = append(users, fmt.Sprintf("U0LOAD%03d", i))
	}
	rb := strings.Replace(testRunbook, "support: { members: [U0ALICE01, U0DAVE001, U0CAROL01] }",
		"support: { members: [U0ALICE01, U0DAVE001, U0CAROL01, "+strings.Join(users, ", ")+"] }", 1)
	e := startEnv(t, rb)
	for _, u := range users {
		e.emu.AddUser(slackemu.User{ID: u, Name: strings.ToLower(u), RealName: u, TZ: "Europe/Berlin"})
	}
	lat := make([]time.Duration, n)
	acks := make([]string, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i, u := range users {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			envl := e.emu.SlashCommand(u, e.emu.DMChannel(u), "/access", "crm viewer 1h load test")
			res, err := envl.WaitAck(3 * time.Second)
			if err != nil {
				t.Errorf("%s: %v", u, err)
				return
			}
			lat[i], acks[i] = res.Latency, string(res.Payload)
		}()
	}
	close(start)
	wg.Wait()
	if t.Failed() {
		return
	}
	sorted := append([]time.Duration(nil), lat...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i] < sorted[j] })
	p50, p99 := sorted[n/2], sorted[(n*99+99)/100-1]
	t.Logf("ack latency of %d concurrent /access commands: p50 %v, p99 %v, max %v", n, p50, p99, sorted[n-1])
	// A loose bound: Slack shows dispatch_failed after 3 s. Without -race
	// p99 is a few hundred ms; with -race on a busy machine it nears 2 s,
	// because the ack waits for the request's notifications (see report).
	if p99 > 2500*time.Millisecond {
		t.Errorf("p99 ack latency %v > 2.5s", p99)
	}
	ids := map[string]bool{}
	for i, a := range acks {
		if !strings.Contains(a, "AR-") && !strings.Contains(a, "Working on it") {
			t.Errorf("%s ack = %s", users[i], a)
		}
	}
	e.eventually("50 requests", func() bool {
		rs, err := e.app.Store.List(context.Background(), access.Filter{States: []access.State{access.StatePending}})
		if err != nil {
			return false
		}
		for _, r := range rs {
			ids[r.ID] = true
		}
		return len(rs) == n
	})
	e.noFailures()
}
