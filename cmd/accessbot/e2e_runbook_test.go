package main

// End-to-end tests of the runbook's admission policy and its special
// requests (issue #16): time windows across a DST change, on-call
// auto-approval against a PagerDuty fake, required tickets against a Jira
// fake, break-glass and requests on behalf of someone. accessbot runs
// against the Slack emulator over a real websocket, on a real bbolt file
// and a fake clock (harness_test.go); the vendors' APIs are httptest
// fakes written from their documentation.

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/audit"
	"github.com/accessbot/accessbot/bot"
	"github.com/accessbot/accessbot/bot/slackemu"
	"github.com/accessbot/accessbot/connectors"
	"github.com/accessbot/accessbot/connectors/memory"
)

// policyRunbook is testRunbook with the lookup connectors (their URLs the
// fakes') and an ops system whose roles use the runbook's policy keys.
func policyRunbook(pdURL, jiraURL string) string {
	conns := "connectors:\n" +
		"  pd:\n    type: pagerduty\n    token: " + pdToken + "\n    api_url: " + pdURL + "\n" +
		"  jira:\n    type: jira\n    url: " + jiraURL + "\n    email: " + jiraEmail + "\n    api_token: " + jiraToken + "\n"
	rb := strings.Replace(testRunbook, "connectors:\n", conns, 1)
	return rb + `
  ops:
    name: Operations console
    owners: [U0ERIN001, U0OSCAR01]
    channel: C0OPSOWN1
    connector: crm_idp
    roles:
      night:
        description: Night shift console
        grant: { group_id: 00g1night }
        requesters: [team:support]
        approval: auto
        windows: ["22:00-02:00"]
        timezone: Europe/Berlin
        max_duration: 1h
        reason: optional
      nightly:
        description: Night shift console, owners by day
        grant: { group_id: 00g1nightly }
        requesters: [team:support]
        approval: auto
        windows: ["22:00-02:00"]
        outside_window: approve
        max_duration: 1h
        reason: optional
      oncall:
        description: Fix a broken load
        grant: { group_id: 00g1oncall }
        requesters: [team:support]
        approval:
          auto_if_on_call: pd:PSCHED1
          steps: [ { approvers: [owners] } ]
        max_duration: 4h
        reason: optional
      console:
        description: Production console
        grant: { group_id: 00g1console }
        requesters: [team:support]
        approval: { steps: [ { approvers: [manager] }, { approvers: [owners] } ] }
        max_duration: 4h
        break_glass: { max_duration: 1h, requesters: [team:support] }
        on_behalf: [manager]
      ticketed:
        description: Customer data exports
        grant: { group_id: 00g1ticket }
        requesters: [team:support]
        approval: { steps: [ { approvers: [owners] } ] }
        max_duration: 4h
        ticket: { pattern: "^(SUP|INC)-[0-9]+$", verify: jira }
`
}

// startPolicyEnv starts accessbot on policyRunbook against fresh vendor
// fakes. The connectors' inner retries do not wait (a vendor that is down
// answers at once), and the ops channel exists.
func startPolicyEnv(t *testing.T) (*world, *fakePD, *fakeJira) {
	t.Helper()
	pd, jira := newFakePD(t), newFakeJira(t)
	e := startEnv(t, policyRunbook(pd.srv.URL, jira.srv.URL), func(o *AppOptions) {
		o.HTTP = connectors.HTTPOptions{RetryMax: -1}
	})
	e.emu.AddChannel(slackemu.Channel{ID: "C0OPSOWN1", Name: "ops-owners", Private: true, BotIsMember: true, Members: []string{"U0ERIN001", "U0OSCAR01"}})
	return e, pd, jira
}

// setClock moves the world's fake clock forward to at (it only advances)
// and runs the reconcile pass.
func (e *world) setClock(at time.Time) {
	e.t.Helper()
	d := at.Sub(e.clock.Now())
	if d < 0 {
		e.t.Fatalf("the clock cannot go back from %s to %s", e.clock.Now(), at)
	}
	e.advance(d)
}

// lastAck runs a command and returns its ack text.
func (e *world) ack(user, text string) string {
	e.t.Helper()
	return ackText(e.command(user, text))
}

// auditRecords returns the audit records of request id.
func (e *world) auditRecords(id string) []audit.Record {
	e.t.Helper()
	var out []audit.Record
	err := e.app.Store.AuditRecords(context.Background(), func(r audit.Record) bool {
		if r.RequestID == id {
			out = append(out, r)
		}
		return true
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return out
}

// ---- time windows ----

// A window "22:00-02:00" in Europe/Berlin, across the spring-forward night
// of 2027-03-28 (02:00 CET jumps to 03:00 CEST): it opens at 22:00 local
// time on both sides of the change, which is 21:00 UTC before it and 20:00
// UTC after it. A fixed UTC offset would get one side wrong.
func TestE2ETimeWindowAcrossDST(t *testing.T) {
	e, _, _ := startPolicyEnv(t)
	utc := func(s string) time.Time {
		at, err := time.Parse("2006-01-02 15:04", s)
		if err != nil {
			t.Fatal(err)
		}
		return at
	}
	n := 1000
	for _, step := range []struct {
		at     string // UTC
		local  string // for the reader
		inside bool
		opens  string // the refusal's "next window opens …"
	}{
		{"2027-03-27 20:30", "Sat 21:30 CET", false, "today 22:00 CET"},
		{"2027-03-27 21:30", "Sat 22:30 CET", true, ""},
		{"2027-03-28 00:30", "Sun 01:30 CET", true, ""},
		{"2027-03-28 01:30", "Sun 03:30 CEST, after the jump", false, "today 22:00 CEST"},
		{"2027-03-28 19:30", "Sun 21:30 CEST", false, "today 22:00 CEST"},
		{"2027-03-28 20:30", "Sun 22:30 CEST (21:30 at the old offset)", true, ""},
		{"2027-03-28 23:30", "Mon 01:30 CEST", true, ""},
		{"2027-03-29 00:30", "Mon 02:30 CEST (01:30 at the old offset)", false, "today 22:00 CEST"},
	} {
		e.setClock(utc(step.at))
		out := e.ack("U0ALICE01", "ops night 30m")
		if !step.inside {
			for _, want := range []string{"ops night can be requested only every day 22:00-02:00 (ends next day), Europe/Berlin time.", "The next window opens " + step.opens + "."} {
				if !strings.Contains(out, want) {
					t.Fatalf("%s: ack %q, want %q", step.local, out, want)
				}
			}
			e.noRequest(access.FormatID(uint64(n + 1)))
			continue
		}
		n++
		id := access.FormatID(uint64(n))
		if !strings.Contains(out, id) || !strings.Contains(out, "approved automatically") {
			t.Fatalf("%s: ack %q, want %s approved automatically", step.local, out, id)
		}
		e.waitState(id, access.StateActive)
		e.advance(30 * time.Minute) // the grant ends before the next step
		e.waitState(id, access.StateExpired)
	}

	// outside_window: approve sends the request to the owners instead of
	// approving it, and the requester is told why.
	e.setClock(utc("2027-03-29 10:00")) // Mon 12:00 CEST
	out := e.ack("U0DAVE001", "ops nightly 30m")
	n++
	id := access.FormatID(uint64(n))
	if !strings.Contains(out, id) || !strings.Contains(out, "waiting for") {
		t.Fatalf("nightly ack %q", out)
	}
	for _, want := range []string{"approved automatically only every day 22:00-02:00 (ends next day), Europe/Berlin time, so this request goes to the approvers.", "The next window opens today 22:00 CEST."} {
		if !strings.Contains(out, want) {
			t.Errorf("nightly ack %q, want %q", out, want)
		}
		e.dmWith("U0DAVE001", want)
	}
	r := e.waitState(id, access.StatePending)
	if r.Auto || len(r.Steps) != 1 || r.Steps[0].Sources != "owners" {
		t.Fatalf("nightly outside the window: auto=%v steps %+v", r.Auto, r.Steps)
	}
	e.dmWith("U0ERIN001", id)
	e.noFailures()
}

// ---- on-call approval ----

func TestE2EOnCallApproval(t *testing.T) {
	e, pd, _ := startPolicyEnv(t)
	now := e.clock.Now()
	pd.setOnCall("PSCHED1", "PALICE1", now.Add(-time.Hour), now.Add(8*time.Hour))

	// On call: approved without a human, and the audit log says why.
	out := e.ack("U0ALICE01", "ops oncall 1h fixing the load")
	if !strings.Contains(out, "AR-1001") || !strings.Contains(out, "approved automatically (you are on call on pd:PSCHED1)") {
		t.Fatalf("on-call ack %q", out)
	}
	r := e.waitState("AR-1001", access.StateActive)
	if !r.Auto || r.AutoBy != "on call: pd:PSCHED1" || len(r.Steps) != 0 {
		t.Fatalf("on-call request auto=%v by %q steps %d", r.Auto, r.AutoBy, len(r.Steps))
	}
	recs := e.auditRecords("AR-1001")
	if len(recs) < 2 || recs[1].Event != "approved" || recs[1].Actor != access.ActorAuto || recs[1].Note != "on call: pd:PSCHED1" {
		t.Fatalf("audit records %+v", recs)
	}
	e.dmWith("U0ALICE01", "approved automatically by the on-call rule (pd:PSCHED1)")
	if got := pd.requests(); len(got) == 0 || !strings.Contains(got[0], "schedule_ids[]=PSCHED1") || !strings.Contains(got[0], "include[]=users") {
		t.Errorf("PagerDuty was asked %q", got)
	}

	// Not on call: the owners decide, and the requester is told why.
	out = e.ack("U0DAVE001", "ops oncall 1h")
	notOnCall := "You are not on call (the on-call schedule pd:PSCHED1) right now, so the approvers are asked."
	if !strings.Contains(out, "AR-1002") || !strings.Contains(out, notOnCall) {
		t.Fatalf("not-on-call ack %q", out)
	}
	r = e.waitState("AR-1002", access.StatePending)
	if r.Auto || len(r.Steps) != 1 {
		t.Fatalf("not on call: auto=%v steps %+v", r.Auto, r.Steps)
	}
	e.dmWith("U0DAVE001", notOnCall)
	e.dmWith("U0ERIN001", "AR-1002")

	// PagerDuty down (after the cached answer aged out): fail closed, to
	// the owners, with the reason told.
	e.advance(2 * time.Hour) // AR-1001 expires; the 60 s cache is stale
	e.waitState("AR-1001", access.StateExpired)
	pd.setDown(true)
	out = e.ack("U0ALICE01", "ops oncall 1h fixing the load again")
	down := "accessbot could not check the on-call schedule pd:PSCHED1: PagerDuty did not answer. The approvers are asked instead."
	if !strings.Contains(out, "AR-1003") || !strings.Contains(out, down) {
		t.Fatalf("PagerDuty-down ack %q", out)
	}
	r = e.waitState("AR-1003", access.StatePending)
	if r.Auto || len(r.Steps) != 1 {
		t.Fatalf("PagerDuty down: auto=%v steps %+v", r.Auto, r.Steps)
	}
	e.dmWith("U0ALICE01", down)
	e.dmWith("U0OSCAR01", "AR-1003")
	e.noFailures()
}

// ---- required tickets ----

func TestE2ERequiredTicket(t *testing.T) {
	e, _, jira := startPolicyEnv(t)
	pattern := "^(SUP|INC)-[0-9]+$"

	// Missing: a clear error naming the pattern; nothing created.
	out := e.ack("U0ALICE01", "ops ticketed 1h customer cannot log in")
	if !strings.Contains(out, "ops ticketed needs a ticket reference matching `"+pattern+"`") {
		t.Fatalf("no-ticket ack %q", out)
	}
	e.noRequest("AR-1001")
	// Closed in Jira: refused, saying so.
	out = e.ack("U0ALICE01", "ops ticketed 1h SUP-2 again")
	if !strings.Contains(out, "Ticket SUP-2 is Done; access needs an open ticket.") {
		t.Fatalf("closed-ticket ack %q", out)
	}
	// Unknown in Jira.
	out = e.ack("U0ALICE01", "ops ticketed 1h SUP-404")
	if !strings.Contains(out, "Ticket SUP-404 was not found") {
		t.Fatalf("unknown-ticket ack %q", out)
	}
	e.noRequest("AR-1001")
	// Jira down: refused (an unverified ticket never lets a request
	// through), try again later.
	jira.setDown(true)
	out = e.ack("U0ALICE01", "ops ticketed 1h SUP-1")
	if !strings.Contains(out, "could not check ticket SUP-1: Jira did not answer") {
		t.Fatalf("Jira-down ack %q", out)
	}
	e.noRequest("AR-1001")
	jira.setDown(false)

	// Open: created, the ticket stored and shown, linked, on every copy.
	out = e.ack("U0ALICE01", "ops ticketed 1h see https://acme.atlassian.net/browse/SUP-1 please")
	if !strings.Contains(out, "AR-1001") {
		t.Fatalf("open-ticket ack %q", out)
	}
	r := e.waitState("AR-1001", access.StatePending)
	want := &access.Ticket{Ref: "SUP-1", Title: "Customer <cannot> log in", URL: jira.srv.URL + "/browse/SUP-1", Status: "In Progress"}
	if r.Ticket == nil || *r.Ticket != *want {
		t.Fatalf("ticket %+v, want %+v", r.Ticket, want)
	}
	link := "<" + jira.srv.URL + "/browse/SUP-1|SUP-1> Customer &lt;cannot&gt; log in (In Progress)"
	e.waitRefs("AR-1001", 3) // Erin, Oscar, the audit channel
	for _, m := range e.approvalCopies("AR-1001") {
		if !strings.Contains(body(m), "Ticket: "+link) && !strings.Contains(body(m), "*Ticket:* "+link) {
			t.Errorf("copy in %s does not show the linked ticket: %s", m.Channel, body(m))
		}
	}
	e.dmWith("U0ALICE01", link)
	if recs := e.auditRecords("AR-1001"); len(recs) == 0 || recs[0].Note != "ticket: SUP-1" {
		t.Errorf("requested audit record %+v", recs)
	}

	// The audit export (/access audit) has the ticket column.
	e.click("U0ERIN001", "Approve")
	e.waitState("AR-1001", access.StateActive)
	e.command("U0ERIN001", "audit ops")
	var files []slackemu.File
	e.eventually("the audit export file", func() bool { files = e.emu.Files("U0ERIN001"); return len(files) > 0 })
	if !strings.Contains(string(files[0].Content), "ticket,ticket_url") || !strings.Contains(string(files[0].Content), "SUP-1,"+jira.srv.URL+"/browse/SUP-1") {
		t.Errorf("audit export:\n%s", files[0].Content)
	}

	// The form's ticket field counts like a reference in the reason.
	e.command("U0DAVE001", "ops ticketed")
	vs, err := e.emu.WaitOpenViews("U0DAVE001", 1, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	form := func(ticket string) map[string]map[string]slackemu.Value {
		return map[string]map[string]slackemu.Value{
			bot.BlockSystem:   {bot.ActionSystemSelect: {SelectedOption: "ops"}},
			bot.BlockRole:     {bot.ActionRoleSelect: {SelectedOption: "ticketed"}},
			bot.BlockDuration: {bot.ActionDuration: {SelectedOption: "1h"}},
			bot.BlockReason:   {bot.ActionReason: {Value: "export for a customer"}},
			bot.BlockTicket:   {bot.ActionTicket: {Value: ticket}},
		}
	}
	envl, err := e.emu.SubmitView("U0DAVE001", vs[0].ID, form("SUP-2"))
	if err != nil {
		t.Fatal(err)
	}
	ack, err := envl.WaitAck(3 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if p := string(ack.Payload); !strings.Contains(p, `"`+bot.BlockTicket+`"`) || !strings.Contains(p, "SUP-2 is Done") {
		t.Fatalf("closed ticket in the form: ack %s, want the error next to the ticket field", p)
	}
	envl, err = e.emu.SubmitView("U0DAVE001", vs[0].ID, form("INC-42"))
	if err != nil {
		t.Fatal(err)
	}
	if ack, err := envl.WaitAck(3 * time.Second); err != nil || len(ack.Payload) != 0 {
		t.Fatalf("valid form: ack %s, %v", ack.Payload, err)
	}
	if r := e.waitState("AR-1002", access.StatePending); r.Ticket == nil || r.Ticket.Ref != "INC-42" || r.Ticket.Title != "Outage" {
		t.Fatalf("form ticket %+v", r.Ticket)
	}
	e.noFailures()
}

// ---- break-glass ----

// submitForm submits the open request form of user with values, and
// returns the ack payload.
func (e *world) submitForm(user string, values map[string]map[string]slackemu.Value) (slackemu.View, string) {
	e.t.Helper()
	vs, err := e.emu.WaitOpenViews(user, 1, 5*time.Second)
	if err != nil {
		e.t.Fatal(err)
	}
	envl, err := e.emu.SubmitView(user, vs[0].ID, values)
	if err != nil {
		e.t.Fatal(err)
	}
	ack, err := envl.WaitAck(3 * time.Second)
	if err != nil {
		e.t.Fatal(err)
	}
	return vs[0], string(ack.Payload)
}

func TestE2EBreakGlass(t *testing.T) {
	e, _, _ := startPolicyEnv(t)

	// Refused at once, nothing created: over the cap, not a break-glass
	// requester, a role without break_glass.
	for user, tc := range map[string]struct{ text, want string }{
		"U0ALICE01": {"ops console 2h db on fire --break-glass", "2h is longer than break-glass allows for ops console, which is 1h."},
		"U0MALLO01": {"ops console 30m db on fire --break-glass", "You may not break the glass on ops console; break-glass is for team:support."},
		"U0DAVE001": {"ops ticketed 30m SUP-1 --break-glass", "ops ticketed has no break-glass access"},
	} {
		if out := e.ack(user, tc.text); !strings.Contains(out, tc.want) {
			t.Errorf("%s: /access %s → %q, want %q", user, tc.text, out, tc.want)
		}
	}
	if vs := e.emu.OpenViews("U0ALICE01"); len(vs) != 0 {
		t.Fatalf("a form was opened for a refused break-glass: %+v", vs)
	}
	e.noRequest("AR-1001")

	// The confirm step: the command opens the break-glass form, which
	// Slack will not submit until the emergency is confirmed.
	if out := e.ack("U0ALICE01", "ops console 30m db on fire --break-glass"); strings.TrimSpace(out) != "" {
		t.Fatalf("ack %q, want the confirmation form only", out)
	}
	vs, err := e.emu.WaitOpenViews("U0ALICE01", 1, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if body := strings.Join(texts(vs[0].Blocks), "\n"); vs[0].CallbackID != bot.CallbackRequest || !strings.Contains(body, "without approval") || !strings.Contains(body, "I confirm this is an emergency") {
		t.Fatalf("break-glass form: %s", body)
	}
	unconfirmed := map[string]map[string]slackemu.Value{
		bot.BlockSystem:   {bot.ActionSystemSelect: {SelectedOption: "ops"}},
		bot.BlockRole:     {bot.ActionRoleSelect: {SelectedOption: "console"}},
		bot.BlockDuration: {bot.ActionDuration: {SelectedOption: "30m"}},
		bot.BlockReason:   {bot.ActionReason: {Value: "db on fire"}},
	}
	if _, err := e.emu.SubmitView("U0ALICE01", vs[0].ID, unconfirmed); err == nil {
		t.Fatal("the break-glass form was submitted without the confirmation")
	}
	e.noRequest("AR-1001")
	confirmed := unconfirmed
	confirmed[bot.BlockBreakGlass] = map[string]slackemu.Value{bot.ActionBreakGlass: {SelectedOptions: []string{"confirm"}}}
	if _, ack := e.submitForm("U0ALICE01", confirmed); ack != "" {
		t.Fatalf("confirmed form: ack %s, want it closed", ack)
	}

	// Granted at once, without approval, for 30m.
	r := e.waitState("AR-1001", access.StateActive)
	if !r.BreakGlass || len(r.Decisions) != 0 || r.ExpiresAt.Sub(r.GrantedAt) != 30*time.Minute {
		t.Fatalf("break-glass grant: bg=%v decisions=%d for %s", r.BreakGlass, len(r.Decisions), r.ExpiresAt.Sub(r.GrantedAt))
	}
	if recs := e.auditRecords("AR-1001"); len(recs) < 2 || recs[1].Event != "break_glass" || recs[1].Actor != "U0ALICE01" || recs[1].Outcome != "approved" {
		t.Fatalf("audit records %+v", recs)
	}
	e.dmWith("U0ALICE01", "You broke the glass: AR-1001")

	// Broadcast to everyone listed: the owners' channel (the review, with
	// Revoke now), every approver of the role (Bob the manager, Erin and
	// Oscar the owners) and the audit channel, none with Approve.
	review := e.dmWith("C0OPSOWN1", "Break glass: review this.")
	if !slices.ContainsFunc(review.Buttons(), func(b slackemu.Button) bool { return b.Text == "Revoke now" }) {
		t.Fatalf("review without Revoke now: %s", body(review))
	}
	for _, who := range []string{"U0BOB0001", "U0ERIN001", "U0OSCAR01", "C0AUDIT01"} {
		m := e.dmWith(who, "*Break glass*: <@U0ALICE01> took this access *without approval*")
		if len(m.Buttons()) != 0 {
			t.Errorf("%s's copy has buttons: %+v", who, m.Buttons())
		}
	}
	if e.waitRefs("AR-1001", 5); len(e.emu.Messages("U0CAROL01")) != 0 {
		t.Error("Carol (neither approver nor owner of ops) was told")
	}

	// Never extended without normal approval: the extension waits for
	// Bob, then the owners, like any request.
	out := e.ack("U0ALICE01", "extend AR-1001 30m")
	if !strings.Contains(out, "AR-1002") || !strings.Contains(out, "waiting for <@U0BOB0001>") {
		t.Fatalf("extend ack %q", out)
	}
	if ext := e.waitState("AR-1002", access.StatePending); ext.BreakGlass || ext.Extends != "AR-1001" {
		t.Fatalf("extension bg=%v extends=%q", ext.BreakGlass, ext.Extends)
	}
	m := e.dmWith("U0BOB0001", "AR-1002")
	if !slices.ContainsFunc(m.Buttons(), func(b slackemu.Button) bool { return b.ActionID == bot.ActionApprove }) {
		t.Errorf("Bob's extension copy has no Approve: %s", body(m))
	}

	// Revoke now, by an owner, from the review.
	e.clickAt("U0ERIN001", review, "Revoke now")
	e.waitState("AR-1001", access.StateRevoked)
	if n := e.conns["crm_idp"].Calls().Revoke; n != 1 {
		t.Errorf("revoke calls %d", n)
	}
	e.eventually("the review loses Revoke now", func() bool {
		m, _ := e.emu.Message(review.Channel, review.TS)
		return len(m.Buttons()) == 0 && strings.Contains(body(m), "revoked")
	})
	e.dmWith("U0ALICE01", "revoked by <@U0ERIN001>")

	// The ordinary form offers the box to a break-glass requester; ticking
	// it is the confirmation.
	e.command("U0DAVE001", "ops console")
	form := map[string]map[string]slackemu.Value{
		bot.BlockSystem:     {bot.ActionSystemSelect: {SelectedOption: "ops"}},
		bot.BlockRole:       {bot.ActionRoleSelect: {SelectedOption: "console"}},
		bot.BlockDuration:   {bot.ActionDuration: {SelectedOption: "1h"}},
		bot.BlockReason:     {bot.ActionReason: {Value: "payments stuck"}},
		bot.BlockBreakGlass: {bot.ActionBreakGlass: {SelectedOptions: []string{"confirm"}}},
	}
	if v, ack := e.submitForm("U0DAVE001", form); ack != "" || !strings.Contains(strings.Join(texts(v.Blocks), "\n"), "Emergency: grant it now, no approval") {
		t.Fatalf("ordinary form with the box: ack %s", ack)
	}
	if r := e.waitState("AR-1003", access.StateActive); !r.BreakGlass {
		t.Fatal("the ticked box did not break the glass")
	}
	e.settleOutbox()
	e.noFailures()
}

// ---- on behalf of someone ----

func TestE2EOnBehalf(t *testing.T) {
	e, _, _ := startPolicyEnv(t)

	// Refused at once, nothing created.
	for _, tc := range []struct{ user, text, want string }{
		{"U0DAVE001", "for <@U0ALICE01|alice> ops console 2h onboarding", "You may not request ops console for <@U0ALICE01>; on behalf of someone, it may be requested by manager"},
		{"U0BOB0001", "for <@U0MALLO01|mallory> ops console 2h onboarding", "<@U0MALLO01> may not have ops console; it is for team:support."},
		{"U0BOB0001", "for <@U0NOBODY1> ops console 2h onboarding", "There is no Slack user “U0NOBODY1”"},
		{"U0BOB0001", "for <@U0ALICE01|alice> ops console", "A request for someone else is made in one line"},
		{"U0BOB0001", "for alice ops console 2h x", "“alice” is not a Slack user: mention the person"},
		{"U0BOB0001", "for <@U0ALICE01|alice> ops ticketed 2h SUP-1", "ops ticketed cannot be requested for someone else"},
	} {
		if out := e.ack(tc.user, tc.text); !strings.Contains(out, tc.want) {
			t.Errorf("%s: /access %s → %q, want %q", tc.user, tc.text, out, tc.want)
		}
	}
	e.noRequest("AR-1001")

	// Bob, Alice's manager, asks for her (Slack sends the mention as
	// <@U…|name>).
	out := e.ack("U0BOB0001", "for <@U0ALICE01|alice> ops console 2h onboarding")
	if !strings.Contains(out, "Request *AR-1001* for <@U0ALICE01>") || !strings.Contains(out, "waiting for <@U0ERIN001>, <@U0OSCAR01>") {
		t.Fatalf("ack %q", out)
	}
	r := e.waitState("AR-1001", access.StatePending)
	if r.Requester != "U0ALICE01" || r.RequestedBy != "U0BOB0001" || r.Entitlement.Person != "U0ALICE01" {
		t.Fatalf("requester %s, requested by %s, entitlement for %s", r.Requester, r.RequestedBy, r.Entitlement.Person)
	}
	// Bob is the manager step's candidate and asked: never an approver.
	for i, st := range r.Steps {
		if slices.Contains(st.Approvers, "U0BOB0001") || slices.Contains(st.Approvers, "U0ALICE01") {
			t.Fatalf("step %d asks %v", i+1, st.Approvers)
		}
	}
	if recs := e.auditRecords("AR-1001"); len(recs) == 0 || recs[0].Actor != "U0BOB0001" || recs[0].Subject != "U0ALICE01" ||
		recs[0].Note != "on behalf of U0ALICE01, asked by U0BOB0001" {
		t.Fatalf("requested audit record %+v", recs)
	}
	// Both are told, and both names are on every copy.
	e.dmWith("U0ALICE01", "Requested for <@U0ALICE01> by <@U0BOB0001>.")
	e.dmWith("U0BOB0001", "Request *AR-1001* for <@U0ALICE01>")
	e.waitRefs("AR-1001", 3) // Erin, Oscar, the audit channel
	for _, m := range e.approvalCopies("AR-1001") {
		if !strings.Contains(body(m), "*<@U0BOB0001>* asks on behalf of *<@U0ALICE01>*") {
			t.Errorf("copy in %s: %s", m.Channel, body(m))
		}
	}
	for _, m := range e.emu.Messages("U0BOB0001") {
		if slices.ContainsFunc(m.Buttons(), func(b slackemu.Button) bool { return b.ActionID == bot.ActionApprove }) {
			t.Fatalf("Bob was asked to approve: %s", body(m))
		}
	}
	// The person who asked cannot approve it.
	_, err := e.app.Service.Decide(context.Background(), "AR-1001", "U0BOB0001", true, "", access.AnyStep)
	var ae *access.Error
	if !errors.As(err, &ae) || ae.Code != access.CodeOwnRequest {
		t.Fatalf("Bob approving: %v", err)
	}

	// Erin approves step 1; step 2 goes to the other owner (one person's
	// approval counts for one step); Oscar approves: Alice gets it.
	e.click("U0ERIN001", "Approve")
	e.eventually("step 2", func() bool { return e.request("AR-1001").CurrentStep == 1 })
	e.waitDMs("U0OSCAR01", 2) // step 1's copy, then step 2's request
	e.click("U0OSCAR01", "Approve")
	e.waitState("AR-1001", access.StateActive)
	if m := e.conns["crm_idp"].Members(memory.ParamsKey(map[string]string{"group_id": "00g1console"})); !slices.Equal(m, []string{"U0ALICE01"}) {
		t.Fatalf("members %v, want Alice only", m)
	}
	e.dmWith("U0ALICE01", "you now have")
	e.dmWith("U0BOB0001", "<@U0ALICE01> now has")
	e.settleOutbox()
	for _, f := range e.emu.Failures() {
		t.Errorf("Slack failure: %+v", f)
	}
	for _, c := range e.emu.Calls("") {
		if c.Error != "" && !(c.Method == "users.info" && c.Error == "user_not_found") { // U0NOBODY1, above
			t.Errorf("%s failed: %s", c.Method, c.Error)
		}
	}
}

// ---- vendor fakes ----

const (
	pdToken   = "u+PDE2ETOKEN0123456789"
	jiraEmail = "accessbot@acme.example"
	jiraToken = "ATATT3xE2ETOKEN0123456789"
)

// fakePD is the part of PagerDuty's REST API v2 the pagerduty connector
// uses, written from its documentation and as strict as it: "Token
// token=…" authentication, 401 {"error":{"message":"Authentication
// failed","code":2006}} otherwise (docs/REST-API/14-Errors.md); GET
// /oncalls filtering by schedule_ids[], expanding users (with email) only
// with include[]=users, keeping entries whose [start, end) overlaps
// [since, until] (List all of the on-calls,
// https://developer.pagerduty.com/api-reference/3a6b910f11050-list-all-of-the-on-calls),
// classic pagination (limit, offset, more); GET /schedules/{id}, 404
// {"error":{"message":"Not Found","code":2100}} for an unknown schedule.
// Down, it answers 503 with PagerDuty's error body.
type fakePD struct {
	srv *httptest.Server

	mu      sync.Mutex
	users   map[string]string // ID → email
	oncalls []pdOncall
	down    bool
	asked   []string // raw queries of /oncalls
}

type pdOncall struct {
	user, schedule string
	start, end     time.Time
}

func newFakePD(t *testing.T) *fakePD {
	f := &fakePD{users: map[string]string{"PALICE1": "alice@example.com", "PDAVE01": "dave@example.com"}}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakePD) setOnCall(schedule, user string, start, end time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.oncalls = append(f.oncalls, pdOncall{user: user, schedule: schedule, start: start, end: end})
}

func (f *fakePD) setDown(v bool) { f.mu.Lock(); f.down = v; f.mu.Unlock() }

func (f *fakePD) requests() []string { f.mu.Lock(); defer f.mu.Unlock(); return slices.Clone(f.asked) }

func pdErr(w http.ResponseWriter, status, code int, msg string) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{"message": msg, "code": code}})
}

func (f *fakePD) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if r.Header.Get("Authorization") != "Token token="+pdToken {
		pdErr(w, http.StatusUnauthorized, 2006, "Authentication failed")
		return
	}
	if f.down {
		pdErr(w, http.StatusServiceUnavailable, 2000, "An internal error has occurred. PagerDuty team has been notified.")
		return
	}
	if r.Method != http.MethodGet {
		pdErr(w, http.StatusNotFound, 2100, "Not Found")
		return
	}
	q := r.URL.Query()
	switch {
	case r.URL.Path == "/oncalls":
		raw, _ := url.QueryUnescape(r.URL.RawQuery)
		f.asked = append(f.asked, raw)
		since, err1 := time.Parse(time.RFC3339, q.Get("since"))
		until, err2 := time.Parse(time.RFC3339, q.Get("until"))
		if err1 != nil || err2 != nil || until.Before(since) {
			pdErr(w, http.StatusBadRequest, 2004, "Invalid time values in 'since' and/or 'until' parameters")
			return
		}
		expand := slices.Contains(q["include[]"], "users")
		entries := []map[string]any{}
		for _, o := range f.oncalls {
			if !slices.Contains(q["schedule_ids[]"], o.schedule) || !o.start.Before(until) || !o.end.After(since) {
				continue
			}
			user := map[string]any{"id": o.user, "type": "user_reference"}
			if expand {
				user = map[string]any{"id": o.user, "type": "user", "name": o.user, "email": f.users[o.user]}
			}
			entries = append(entries, map[string]any{"user": user, "escalation_level": 1,
				"schedule":          map[string]any{"id": o.schedule, "type": "schedule_reference"},
				"escalation_policy": map[string]any{"id": "PPOLICY", "type": "escalation_policy_reference"},
				"start":             o.start.Format(time.RFC3339), "end": o.end.Format(time.RFC3339)})
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"oncalls": entries, "limit": 100, "offset": 0, "more": false, "total": nil})
	case r.URL.Path == "/schedules/PSCHED1":
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"schedule": map[string]any{"id": "PSCHED1", "type": "schedule", "name": "Ops rota", "time_zone": "UTC"}})
	default:
		pdErr(w, http.StatusNotFound, 2100, "Not Found")
	}
}

// fakeJira is Jira Cloud's Get issue (GET /rest/api/3/issue/{key} with
// fields=status,summary, Basic email:api_token authentication), written
// from Atlassian's REST API v3 documentation
// (https://developer.atlassian.com/cloud/jira/platform/rest/v3/api-group-issues/#api-rest-api-3-issue-issueidorkey-get):
// rejected credentials are 401 with Jira's plain text; an unknown issue is
// 404 {"errorMessages":["Issue does not exist or you do not have
// permission to see it."],"errors":{}}; only the fields asked for are
// returned; a status's statusCategory.key is new, indeterminate or done.
// Down, it answers 503.
type fakeJira struct {
	srv *httptest.Server

	mu     sync.Mutex
	issues map[string][3]string // key → summary, status, category
	down   bool
}

func newFakeJira(t *testing.T) *fakeJira {
	f := &fakeJira{issues: map[string][3]string{
		"SUP-1":  {"Customer <cannot> log in", "In Progress", "indeterminate"},
		"SUP-2":  {"Old refund", "Done", "done"},
		"INC-42": {"Outage", "Open", "new"},
	}}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeJira) setDown(v bool) { f.mu.Lock(); f.down = v; f.mu.Unlock() }

func (f *fakeJira) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if r.Header.Get("Authorization") != "Basic "+base64.StdEncoding.EncodeToString([]byte(jiraEmail+":"+jiraToken)) {
		w.Header().Set("Content-Type", "text/plain;charset=UTF-8")
		w.WriteHeader(http.StatusUnauthorized)
		w.Write([]byte("Client must be authenticated to access this resource."))
		return
	}
	jerr := func(status int, msg string) {
		w.Header().Set("Content-Type", "application/json;charset=UTF-8")
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(map[string]any{"errorMessages": []string{msg}, "errors": map[string]any{}})
	}
	if f.down {
		jerr(http.StatusServiceUnavailable, "Service Unavailable")
		return
	}
	key, ok := strings.CutPrefix(r.URL.Path, "/rest/api/3/issue/")
	is, known := f.issues[strings.ToUpper(key)]
	if !ok || r.Method != http.MethodGet || !known {
		jerr(http.StatusNotFound, "Issue does not exist or you do not have permission to see it.")
		return
	}
	want := strings.Split(r.URL.Query().Get("fields"), ",")
	fields := map[string]any{}
	if slices.Contains(want, "summary") {
		fields["summary"] = is[0]
	}
	if slices.Contains(want, "status") {
		fields["status"] = map[string]any{"name": is[1], "statusCategory": map[string]any{"key": is[2], "name": is[2]}}
	}
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	json.NewEncoder(w).Encode(map[string]any{"id": "10042", "key": strings.ToUpper(key), "fields": fields})
}
