package main

// Attack tests against the running bot: each one is a way to break a
// promise of DESIGN.md §3–§4 through what a person can do in Slack (or
// what a flaky Slack does); each failed before its fix and guards it now.
// Each says the promise, the severity and what the defect was.

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/bot/slackemu"
)

// TestAttack_GrantTaskDoneConfirmsTheRemoval: an owner clicks Done on the
// manual GRANT task ("grant … click Done once it is in place") after the
// requester stopped the request; accessbot records it as the confirmation
// of the REMOVAL task and reports the access removed, while the owner has
// just put it in place.
//
// Breaks: invariant 4 ("a revocation is never faked: it is never marked
// done while access may still be live") and §3 ("they are told removed
// only after the target confirmed it"). Severity: HIGH (access stays live
// at the target with the audit log and the requester saying it is gone).
// It needs the grant task's copy to still show its Done button: Slack
// failing chat.update for a while (any outage) is enough, or the owner's
// click racing the update.
//
// Defect: the Done button's value is only the request ID and its block ID
// only "owner:<id>" (bot/render.go OwnerMessage); bot.action calls
// Service.Confirm(id, user) without the task's op, and Confirm
// (access/decide.go) completes whatever task is awaited now (s.removed
// when the state is revoking).
func TestAttack_GrantTaskDoneConfirmsTheRemoval(t *testing.T) {
	e := startEnv(t, "")
	id := e.submit("U0GRACE01", "payroll viewer 2h payslip check")
	e.waitDMs("U0HEIDI01", 1)
	e.click("U0HEIDI01", "Approve")
	e.waitDMs("U0FRANK01", 1)
	e.click("U0FRANK01", "Approve")
	i := e.waitMsg("U0FRANK01", "Task", "grant")
	grantTask := e.emu.Messages("U0FRANK01")[i]
	e.waitDelivered()

	// Slack cannot update messages for a while: the grant task keeps its
	// Done button.
	e.emu.FailNext("chat.update", "internal_error", 1000)
	// The requester no longer needs it: the request is stopped and the
	// removal waits for an owner.
	e.command("U0GRACE01", "revoke "+id)
	e.eventually("the removal waiting for the owners", func() bool {
		r := e.request(id)
		return r.State == access.StateRevoking && r.AwaitingConfirmation
	})

	// Frank, who has just granted it by hand, clicks Done on the grant task.
	e.clickAt("U0FRANK01", grantTask, "Done")
	// The click is handled after its ack: wait for its outcome, a
	// transition or an answer to frank.
	e.eventually("the Done click handled", func() bool {
		r := e.request(id)
		return r.State != access.StateRevoking || !r.AwaitingConfirmation || len(e.emu.Ephemerals("U0FRANK01")) > 0
	})
	r := e.request(id)
	if r.State != access.StateRevoking || !r.AwaitingConfirmation {
		t.Errorf("Done on the GRANT task ended the removal: %s is %s (last %+v); the access frank just put in place is reported removed",
			id, r.State, r.Last())
	}
	for _, m := range e.emu.Messages("U0GRACE01") {
		if strings.Contains(m.Text, "removed") && strings.Contains(m.Text, id) {
			t.Errorf("grace was told %q", m.Text)
		}
	}
}

// TestAttack_OwnersAlertLostWhenBotLeavesTheChannel: someone removes the
// bot from the owners' channel (any member may remove an app from a
// channel), then a removal fails for good at the target. The
// "revocation failing" alert gets not_in_channel, a permanent error, and
// the outbox drops it: no owner is ever told that a person still holds
// access that should be gone.
//
// Breaks: invariant 4 (a failed revoke "is reported to owners") and 11
// (every owners' alert "is delivered at least once … never lost").
// Severity: MEDIUM (the removal is still retried, but silently; an
// insider in the owners' channel can arrange the silence).
//
// Defect: access/outbox.go settle drops a notice at once on a Permanent
// delivery error; bot/notifier.go deliveryError classes not_in_channel,
// channel_not_found and is_archived as permanent, and nothing falls back
// to the owners' DMs (which ForOwners uses when no channel is set).
func TestAttack_OwnersAlertLostWhenBotLeavesTheChannel(t *testing.T) {
	e := startEnv(t, "")
	e.approveStep1()
	e.click("U0CAROL01", "Approve")
	e.waitState("AR-1001", access.StateActive)
	e.waitDelivered()

	// The bot is removed from the owners' channel.
	e.emu.AddChannel(slackemu.Channel{ID: "C0CRMOWN1", Name: "c0crmown1", Private: true, BotIsMember: false})
	// The target refuses the removal for good (say, a permission was lost).
	e.conns["crm_idp"].FailNext(1000, access.PermanentError(errors.New("403: insufficient permissions")))
	e.command("U0ALICE01", "revoke AR-1001")
	e.eventually("the revoke to fail", func() bool {
		r := e.request("AR-1001")
		return r.State == access.StateRevoking && r.Alerted
	})
	e.waitDelivered()

	told := false
	for _, who := range []string{"C0CRMOWN1", "U0CAROL01", "U0ERIN001"} {
		for _, m := range e.emu.Messages(who) {
			if strings.Contains(m.Text, "Revocation failing") {
				told = true
			}
		}
	}
	refused := false
	for _, c := range e.emu.Calls("chat.postMessage") {
		refused = refused || ((c.Error == "not_in_channel" || c.Error == "channel_not_found") && c.Params["channel"] == "C0CRMOWN1")
	}
	if !refused {
		t.Fatalf("setup: the alert was not refused by the channel")
	}
	if !told {
		t.Errorf("no owner was told that AR-1001's removal keeps failing; the alert was dropped (Slack failures: %d)", len(e.emu.Failures()))
	}
}

// TestAttack_ProfileEditUndoesIdPOffboarding: the identity provider
// reports alice suspended and she is offboarded (her requests end, she
// gets nothing new). Her Slack account is still active, and she edits her
// Slack profile (a status, a title): Slack sends user_change, the bot
// reads her profile, sees an active account and reinstates her. Her next
// request for an auto-approved role is granted, until the next
// offboarding pass (every 15 min by default) takes it back.
//
// Breaks: invariant 12 (a person the IdP reports suspended has every grant
// revoked at once; they must not be granted new access in the meantime).
// Severity: MEDIUM (needs Slack to outlive the IdP suspension, which is
// common when Slack sessions are not revoked with the IdP account; the
// person chooses when, and auto roles need no human).
//
// Defect: bot.userChanged (bot/handlers.go) calls svc.Reinstate for every
// user_change of an active Slack account, whatever offboarded the person;
// Offboard/Reinstate (access/offboard.go) do not record why someone is
// gone, so a Slack event undoes an IdP's verdict.
func TestAttack_ProfileEditUndoesIdPOffboarding(t *testing.T) {
	e := startEnv(t, "")
	if err := e.app.Service.Offboard(context.Background(), "U0ALICE01", "account suspended or deprovisioned in okta"); err != nil {
		t.Fatal(err)
	}
	// Offboarded: a new request is refused at once.
	if got := e.command("U0ALICE01", "analytics viewer 1h"); !strings.Contains(got, "offboarded (account suspended or deprovisioned in okta)") {
		t.Fatalf("setup: a request right after offboarding got %q", got)
	}

	calls := len(e.emu.Calls("users.info"))
	e.emu.UserChanged(slackemu.User{ID: "U0ALICE01", Name: "alice", RealName: "Alice (on leave)", Email: "alice@example.com", TZ: "Europe/Berlin"})
	e.eventually("the bot to read alice's profile", func() bool { return len(e.emu.Calls("users.info")) > calls })

	if got := e.command("U0ALICE01", "analytics viewer 1h"); !strings.Contains(got, "offboarded") {
		t.Fatalf("alice, suspended in the IdP, could ask again after editing her Slack profile: %q", got)
	}
	if rs, _ := e.app.Store.List(context.Background(), access.Filter{Requester: "U0ALICE01"}); len(rs) != 0 {
		t.Errorf("alice, suspended in the IdP, has requests after editing her Slack profile: %d", len(rs))
	}
}
