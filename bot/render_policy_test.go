package bot

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/accessbot/accessbot/access"
)

// hostileTicket is a ticket as a compromised or careless ticket system
// could describe it: markup in the title and status, a URL that tries to
// break out of the link syntax.
var hostileTicket = &access.Ticket{Ref: "SUP-12", Title: "Refund <!channel> & <@U0EVIL001>", URL: "https://acme.atlassian.net/browse/SUP-12?a=1&b=2", Status: "In <b>Progress"}

func TestTicketText(t *testing.T) {
	for _, tc := range []struct {
		name string
		t    *access.Ticket
		want string
	}{
		{"none", nil, ""},
		{"reference only", &access.Ticket{Ref: "4411"}, "4411"},
		{"linked, escaped", hostileTicket, "<https://acme.atlassian.net/browse/SUP-12?a=1&amp;b=2|SUP-12> Refund &lt;!channel&gt; &amp; &lt;@U0EVIL001&gt; (In &lt;b&gt;Progress)"},
		{"a URL that would break the link is not linked", &access.Ticket{Ref: "SUP-1", URL: "https://evil.example/x|Approve here"}, "SUP-1"},
		{"not http", &access.Ticket{Ref: "SUP-1", URL: "javascript:alert(1)"}, "SUP-1"},
		{"a hostile reference is escaped", &access.Ticket{Ref: "<!here>"}, "&lt;!here&gt;"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := TicketText(tc.t); got != tc.want {
				t.Errorf("TicketText = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestPolicyMessagesGolden(t *testing.T) {
	v := testView(t)
	ticketed := at("pending")
	ticketed.Ticket = hostileTicket
	ticketed.Notes = []string{"You are not on call (the on-call schedule pd:PSCHED1) right now, so the approvers are asked."}
	onCall := at("approved")
	onCall.Steps, onCall.Decisions, onCall.Auto, onCall.AutoBy = nil, nil, true, "on call: pd:PSCHED1"
	onCall.Notes = []string{"You are on call (the on-call schedule pd:PSCHED1), so this was approved without a human."}
	for _, tc := range []struct {
		name string
		n    access.Notice
	}{
		{"requester_submitted_ticket_notes", access.Notice{Kind: access.NoticeSubmitted, Request: ticketed}},
		{"requester_submitted_oncall", access.Notice{Kind: access.NoticeSubmitted, Request: onCall}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.n.State = tc.n.Request.State
			text, blocks := RequesterMessage(tc.n, v)
			checkSafe(t, tc.name, blocks)
			golden(t, tc.name, msg(text, blocks))
		})
	}
	t.Run("approval_pending_ticket", func(t *testing.T) {
		text, blocks := ApprovalMessage(ticketed, v, "U0BOB0001")
		checkSafe(t, "approval_pending_ticket", blocks)
		if !strings.Contains(plainJSON(t, blocks), "*Ticket:* <https://acme.atlassian.net/browse/SUP-12?a=1&amp;b=2|SUP-12>") {
			t.Error("the approver's copy does not link the ticket")
		}
		golden(t, "approval_pending_ticket", msg(text, blocks))
	})
	t.Run("approval_active_oncall_audit", func(t *testing.T) {
		r := at("active")
		r.Steps, r.Decisions, r.Auto, r.AutoBy = nil, nil, true, "on call: pd:PSCHED1"
		text, blocks := ApprovalMessage(r, v, "")
		if !strings.Contains(mustJSON(t, blocks), "the on-call rule (pd:PSCHED1)") {
			t.Error("the audit copy does not say the on-call rule approved it")
		}
		golden(t, "approval_active_oncall_audit", msg(text, blocks))
	})
	t.Run("modal_ticket", func(t *testing.T) {
		rb := testRunbook(t)
		p, err := access.NewTicketPolicy("^(SUP|INC)-[0-9]+$", "jira")
		if err != nil {
			t.Fatal(err)
		}
		rb.Systems["crm"].Roles["admin"].Ticket = p
		eligible := map[string][]string{"crm": {"admin", "viewer"}}
		view := RequestModal(rb, eligible, modalState{System: "crm", Role: "admin", Ticket: "INC-9"})
		if !strings.Contains(mustJSON(t, view), `"block_id":"ticket"`) {
			t.Error("no ticket field for a role with a ticket policy")
		}
		if strings.Contains(mustJSON(t, RequestModal(rb, eligible, modalState{System: "crm", Role: "viewer"})), `"block_id":"ticket"`) {
			t.Error("a ticket field for a role without a ticket policy")
		}
		golden(t, "modal_ticket", view)
	})
}

// plainJSON is v as JSON without HTML escaping, as the golden files show it.
func plainJSON(t *testing.T, v any) string {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}
