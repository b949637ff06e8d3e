package main

// Attack tests against the running bot: each one shows a way to break a
// promise of DESIGN.md §3–§4 through what a person can do in Slack (or
// what a flaky Slack does), and FAILS on the code as it is; it passes
// once the defect is fixed. Each says the promise it breaks and a
// severity.

import (
	"strings"
	"testing"

	"github.com/accessbot/accessbot/access"
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
