package main

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/bot/slackemu"
	"github.com/accessbot/accessbot/connectors/memory"
	"github.com/accessbot/accessbot/directory"
)

// identityRunbook: support is a Slack user group (S0SUPPORT), managers come
// from a profile field, finance (a team with the manager in it) approves
// payouts after the manager; crm is reached through a memory target that
// resolves people by email, like the vendors' APIs.
const identityRunbook = `
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
    slack_profile_field: Xf0MANAGER
teams:
  support: { slack_usergroup: S0SUPPORT }
  finance: { members: [U0BOB0001] }
connectors:
  crm_idp: { type: memory }
  dash: { type: memory }
systems:
  crm:
    name: Salesforce CRM
    owners: [U0CAROL01, U0ERIN001]
    channel: C0CRMOWN1
    connector: crm_idp
    roles:
      viewer:
        grant: { group_id: 00g1viewer }
        requesters: [team:support]
        approval: { steps: [ { approvers: [manager] }, { approvers: [owners] } ] }
      payout:
        grant: { group_id: 00g1payout }
        requesters: [team:support]
        approval: { steps: [ { approvers: [manager] }, { approvers: [team:finance] } ] }
      payout_same:
        grant: { group_id: 00g1payout2 }
        requesters: [team:support]
        approval: { distinct: false, steps: [ { approvers: [manager] }, { approvers: [team:finance] } ] }
  analytics:
    name: Dashboards
    owners: [U0OSCAR01]
    channel: C0CRMOWN1
    connector: dash
    roles:
      viewer:
        grant: { group_id: "12" }
        requesters: [team:support]
        approval: auto
        reason: optional
`

// startIdentity starts the identity runbook: alice and dave in support,
// bob their manager (profile field), crm's target knowing people by email.
func startIdentity(t *testing.T) *world {
	t.Helper()
	e := startEnv(t, identityRunbook)
	e.emu.AddUserGroup(slackemu.UserGroup{ID: "S0SUPPORT", Handle: "support", Members: []string{"U0ALICE01", "U0DAVE001"}})
	for _, u := range []string{"U0ALICE01", "U0DAVE001"} {
		e.setUser(u, func(u *slackemu.User) { u.Fields = map[string]string{"Xf0MANAGER": "U0BOB0001"} })
	}
	crm := e.conns["crm_idp"]
	crm.AddUser("00u-alice", "alice@example.com")
	crm.AddUser("00u-dave", "dave@example.com")
	return e
}

// setUser changes an emulated user in place (no event).
func (e *world) setUser(id string, change func(u *slackemu.User)) slackemu.User {
	e.t.Helper()
	for _, u := range e.emu.Users() {
		if u.ID == id {
			change(&u)
			e.emu.AddUser(u)
			return u
		}
	}
	e.t.Fatalf("no emulated user %s", id)
	return slackemu.User{}
}

// changeUser changes a user and sends Slack's user_change event for it,
// waiting for the bot to acknowledge it.
func (e *world) changeUser(id string, change func(u *slackemu.User)) {
	e.t.Helper()
	u := e.setUser(id, change)
	if _, err := e.emu.UserChanged(u).WaitAck(3 * time.Second); err != nil {
		e.t.Fatal(err)
	}
}

// #13: the revoke acts on the receipt's target identity. Alice's email
// changes (in Slack and at the target) between grant and expiry; the
// revoke still removes her membership, checked in the target, and she is
// told "removed" only after that.
func TestE2EEmailChangedBetweenGrantAndExpiry(t *testing.T) {
	e := startIdentity(t)
	crm := e.conns["crm_idp"]
	id := e.submit("U0ALICE01", "crm viewer 2h ticket 4411")
	e.waitDMs("U0BOB0001", 1)
	e.click("U0BOB0001", "Approve")
	e.waitDMs("U0CAROL01", 1)
	e.click("U0CAROL01", "Approve")
	r := e.waitState(id, access.StateActive)
	if r.Receipt == nil || r.Receipt.UserID != "00u-alice" {
		t.Fatalf("receipt %+v", r.Receipt)
	}
	key := memory.ParamsKey(map[string]string{"group_id": "00g1viewer"})
	if !crm.HasUser(key, "00u-alice") {
		t.Fatal("not granted at the target")
	}
	// A marriage: the email changes everywhere.
	crm.SetEmail("00u-alice", "alice.smith@example.com")
	e.changeUser("U0ALICE01", func(u *slackemu.User) { u.Email = "alice.smith@example.com" })
	var removedBefore bool
	crm.SetHook(func(_ context.Context, op string, g access.Grant) error {
		if op == memory.OpRevoke {
			removedBefore = msgIndex(e.emu, "U0ALICE01", id, "has been removed") >= 0
			if g.Receipt == nil || g.Receipt.UserID != "00u-alice" || g.User.Email != "alice@example.com" || g.User.CurrentEmail != "alice.smith@example.com" {
				t.Errorf("revoke got receipt %+v, user %+v", g.Receipt, g.User)
			}
		}
		return nil
	})
	e.advance(2 * time.Hour)
	e.waitState(id, access.StateExpired)
	if crm.HasUser(key, "00u-alice") {
		t.Fatal("access still live at the target after the revoke reported done")
	}
	e.waitMsg("U0ALICE01", id, "has been removed")
	if removedBefore {
		t.Error("the requester was told 'removed' before the target removed it")
	}
}

// #13: a two-call grant whose second call fails for good leaves nothing in
// the target: the first change is rolled back, then the request is
// grant_failed and the owners are told what was rolled back.
func TestE2EHalfAppliedGrantRolledBack(t *testing.T) {
	e := startIdentity(t)
	crm := e.conns["crm_idp"]
	crm.FailSecondStep(1, access.PermanentError(errors.New("group 00g1viewer: 403 expiry not allowed")))
	id := e.submit("U0ALICE01", "crm viewer 2h ticket 4411")
	e.waitDMs("U0BOB0001", 1)
	e.click("U0BOB0001", "Approve")
	e.waitDMs("U0CAROL01", 1)
	e.click("U0CAROL01", "Approve")
	r := e.waitState(id, access.StateGrantFailed)
	if !contains(events(r), access.EventRollingBack) {
		t.Fatalf("history %v: no rollback", events(r))
	}
	key := memory.ParamsKey(map[string]string{"group_id": "00g1viewer"})
	if crm.HasUser(key, "00u-alice") {
		t.Fatal("the half-applied grant was left at the target")
	}
	e.waitMsg("C0CRMOWN1", id, "Grant rolled back")
	e.waitMsg("U0ALICE01", id, "granting it failed")
}

// #14: a requester removed from the requesting team while pending gets no
// grant: the next approval ends the request, with that reason on every
// copy; requester and owners are told.
func TestE2ERequesterRemovedFromTeamWhilePending(t *testing.T) {
	e := startIdentity(t)
	id := e.submit("U0ALICE01", "crm viewer 2h ticket 4411")
	e.waitDMs("U0BOB0001", 1)
	e.emu.AddUserGroup(slackemu.UserGroup{ID: "S0SUPPORT", Handle: "support", Members: []string{"U0DAVE001"}})
	// Decisions use directory answers at most directory.DefaultDecisionTTL
	// old: past it, the click sees the change.
	e.clock.Advance(directory.DefaultDecisionTTL + time.Second)
	e.click("U0BOB0001", "Approve")
	e.ephemeralWith("U0BOB0001", "has ended")
	r := e.waitState(id, access.StateIneligible)
	if n := e.conns["crm_idp"].Calls().Grant; n != 0 {
		t.Fatalf("%d grants", n)
	}
	if len(r.Decisions) != 0 {
		t.Errorf("the approval counted: %+v", r.Decisions)
	}
	e.waitMsg("U0ALICE01", id, "has ended without a grant")
	e.waitMsg("C0CRMOWN1", id, "ended without a grant")
	e.waitCopiesFinal(id, "Ended")
}

// #14: the manager changes while the request is pending: Slack's
// user_change brings the new manager in at once; the old one can no
// longer approve, the new one can.
func TestE2EManagerChangedWhilePending(t *testing.T) {
	e := startIdentity(t)
	id := e.submit("U0ALICE01", "crm viewer 2h ticket 4411")
	bob := e.waitDMs("U0BOB0001", 1)[0]
	e.changeUser("U0ALICE01", func(u *slackemu.User) { u.Fields = map[string]string{"Xf0MANAGER": "U0HEIDI01"} })
	e.waitDMs("U0HEIDI01", 1)
	// Bob's copy lost its buttons; a click he made before it did is refused.
	e.eventually("Bob's copy without buttons", func() bool {
		m, _ := e.emu.Message(bob.Channel, bob.TS)
		return len(m.Buttons()) == 0
	})
	if _, err := e.app.Service.Decide(context.Background(), id, "U0BOB0001", true, "", 0); err == nil || !strings.Contains(err.Error(), "not an approver") {
		t.Fatalf("the old manager's approval: %v", err)
	}
	e.click("U0HEIDI01", "Approve")
	e.waitDMs("U0CAROL01", 1)
	if r := e.request(id); r.CurrentStep != 1 || r.Approvals(0)[0] != "U0HEIDI01" {
		t.Fatalf("after the new manager: step %d approvals %v", r.CurrentStep, r.Approvals(0))
	}
}

// #14: separation of duties. Bob is Alice's manager (step 1) and the only
// member of finance (step 2): his approval counts for step 1 only, a
// second click on his step-1 message is refused, the owners are asked for
// step 2 instead and Alice is told. With distinct: false he may approve both.
func TestE2ESeparationOfDuties(t *testing.T) {
	e := startIdentity(t)
	id := e.submit("U0ALICE01", "crm payout 1h quarterly payout")
	bob := e.waitDMs("U0BOB0001", 1)[0]
	e.click("U0BOB0001", "Approve")
	e.waitDMs("U0CAROL01", 1) // the owners, instead of finance (Bob)
	r := e.request(id)
	if r.CurrentStep != 1 || contains(r.Steps[1].Approvers, "U0BOB0001") || r.Steps[1].Fallback != "owners" {
		t.Fatalf("step 2: %+v", r.Steps[1])
	}
	// A second click on the same message (its update may be late).
	envl, err := e.emu.ClickButton("U0BOB0001", bob.Channel, bob.TS, "Approve")
	if err == nil {
		if _, err := envl.WaitAck(3 * time.Second); err != nil {
			t.Fatal(err)
		}
	}
	if r := e.request(id); len(r.Approvals(1)) != 0 {
		t.Fatalf("Bob's second click counted for step 2: %+v", r.Decisions)
	}
	// Directly, as if he had a step-2 message.
	if _, err := e.app.Service.Decide(context.Background(), id, "U0BOB0001", true, "", 1); err == nil || !strings.Contains(err.Error(), "one step only") {
		t.Fatalf("Bob's step-2 approval: %v", err)
	}
	e.click("U0CAROL01", "Approve")
	e.waitState(id, access.StateActive)

	// distinct: false
	id2 := e.submit("U0DAVE001", "crm payout_same 1h quarterly payout")
	e.waitDMs("U0BOB0001", 2)
	e.click("U0BOB0001", "Approve")
	e.eventually("Bob asked for step 2", func() bool { return len(e.emu.Messages("U0BOB0001")) >= 3 })
	e.click("U0BOB0001", "Approve")
	e.waitState(id2, access.StateActive)
}

// #14: Slack deactivates Alice: within seconds of the user_change event her
// grants are revoked at the targets, her pending requests end, and the
// owners are told.
func TestE2EOffboardingOnDeactivation(t *testing.T) {
	e := startIdentity(t)
	dash := e.conns["dash"]
	active := e.submit("U0ALICE01", "analytics viewer 1h")
	e.waitState(active, access.StateActive)
	pending := e.submit("U0ALICE01", "crm viewer 2h ticket 4411")
	e.waitDMs("U0BOB0001", 1)
	start := time.Now()
	e.changeUser("U0ALICE01", func(u *slackemu.User) { u.Deleted = true })
	e.waitState(active, access.StateRevoked)
	e.waitState(pending, access.StateIneligible)
	t.Logf("offboarded %s after the user_change event", time.Since(start).Round(time.Millisecond))
	if dash.Has(access.Grant{Params: map[string]string{"group_id": "12"}, User: access.Person{SlackID: "U0ALICE01"}}) {
		t.Fatal("the deactivated person still has access at the target")
	}
	e.waitMsg("C0CRMOWN1", "Offboarding", active, "deactivated in Slack")
	e.waitCopiesFinal(pending, "Ended")
}

func events(r *access.Request) []access.Event {
	var out []access.Event
	for _, h := range r.History {
		out = append(out, h.Event)
	}
	return out
}

func contains[T comparable](xs []T, x T) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}
