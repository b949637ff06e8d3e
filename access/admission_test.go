package access

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// noGrant is the Connector half of a lookup connector: it grants nothing
// (like connectors.LookupOnly).
type noGrant struct{}

func (noGrant) Grant(context.Context, Grant) (Receipt, error) {
	return Receipt{}, PermanentError(errors.New("a lookup connector grants nothing"))
}
func (noGrant) Revoke(context.Context, Grant) error {
	return PermanentError(errors.New("a lookup connector grants nothing"))
}

// onCallConn and ticketConn are lookup connectors as the service finds
// them among its Connectors (SourcesOf).
type onCallConn struct {
	noGrant
	*fakeOnCall
}

type ticketConn struct {
	noGrant
	*fakeTickets
}

// withRole adds role to system sys of the harness runbook.
func withRole(sys string, role *Role) func(*ServiceConfig) {
	return func(c *ServiceConfig) { c.Runbook.Systems[sys].Roles[role.ID] = role }
}

// withConnector adds a connector instance (a lookup connector).
func withConnector(name string, conn Connector) func(*ServiceConfig) {
	return func(c *ServiceConfig) { c.Connectors[name] = conn }
}

// policyRole is a role of the crm system (connector okta) with the given
// approval; support may request it.
func policyRole(id string, ap Approval) *Role {
	return &Role{
		ID: id, Description: id, Grant: map[string]string{"group_id": "00g1" + id},
		Requesters: []Principal{{Kind: SourceTeam, Ref: "support"}}, Approval: ap,
		DefaultDuration: time.Hour, MaxDuration: 4 * time.Hour, ApprovalTimeout: 24 * time.Hour, ReasonRequired: true,
	}
}

var ownersStep = []StepPolicy{{Sources: []Source{{Kind: SourceOwners}}, Min: 1}}

// storeEmpty fails if any request exists: a refusal creates nothing.
func (h *harness) storeEmpty() {
	h.t.Helper()
	rs, err := h.store.List(h.ctx, Filter{})
	if err != nil {
		h.t.Fatal(err)
	}
	if len(rs) != 0 {
		h.t.Fatalf("%d request(s) created, want none (first: %s %s)", len(rs), rs[0].ID, rs[0].State)
	}
}

func TestSubmitTicketRefusalsCreateNothing(t *testing.T) {
	tickets := &fakeTickets{tickets: map[string]Ticket{
		"SUP-1": {Ref: "SUP-1", Title: "Login <broken>", URL: "https://acme.atlassian.net/browse/SUP-1", Status: "In Progress"},
		"SUP-2": {Ref: "SUP-2", Title: "Old", Closed: true, Status: "Done"},
	}}
	role := policyRole("ticketed", Approval{Steps: ownersStep})
	role.Ticket = mustTicketPolicy(t, "^(SUP|INC)-[0-9]+$", "jira")
	for _, tc := range []struct {
		name, reason, ticket string
		fail                 error
		kind                 error
		says                 []string
	}{
		{"missing", "customer cannot log in", "", nil, ErrInvalid, []string{"needs a ticket reference matching `^(SUP|INC)-[0-9]+$`"}},
		{"malformed field", "customer", "JIRA-1", nil, ErrInvalid, []string{`"JIRA-1" is not a ticket reference`, "^(SUP|INC)-[0-9]+$"}},
		{"unknown", "SUP-99 customer", "", nil, ErrInvalid, []string{"Ticket SUP-99 was not found", "Jira has no ticket SUP-99"}},
		{"closed", "SUP-2 again", "", nil, ErrForbidden, []string{"Ticket SUP-2 is Done; access needs an open ticket."}},
		{"unavailable", "SUP-1", "", &LookupError{Vendor: "Jira", Kind: LookupUnavailable, Err: errors.New("503")}, ErrUnavailable, []string{"could not check ticket SUP-1: Jira did not answer"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := &fakeTickets{tickets: tickets.tickets, err: tc.fail}
			h := newHarness(t, withRole("crm", role), withConnector("jira", ticketConn{fakeTickets: src}))
			_, err := h.svc.Submit(h.ctx, SubmitInput{Requester: alice, System: "crm", Role: "ticketed", Reason: tc.reason, Ticket: tc.ticket})
			e := wantUserError(t, err, tc.kind, tc.says...)
			if e.Code != CodeTicket && e.Code != CodeUnavailable {
				t.Errorf("code %s", e.Code)
			}
			h.storeEmpty()
		})
	}
	t.Run("no source configured fails closed", func(t *testing.T) {
		h := newHarness(t, withRole("crm", role))
		_, err := h.svc.Submit(h.ctx, SubmitInput{Requester: alice, System: "crm", Role: "ticketed", Reason: "SUP-1"})
		wantUserError(t, err, ErrUnavailable, "checked through jira, which is not available")
		h.storeEmpty()
	})
}

func TestSubmitStoresTicket(t *testing.T) {
	src := &fakeTickets{tickets: map[string]Ticket{
		"SUP-1": {Ref: "SUP-1", Title: "Login broken", URL: "https://acme.atlassian.net/browse/SUP-1", Status: "In Progress"},
		"INC-7": {Ref: "INC-7", Title: "Outage", Status: "Open"},
	}}
	role := policyRole("ticketed", Approval{Steps: ownersStep})
	role.Ticket = mustTicketPolicy(t, "^(SUP|INC)-[0-9]+$", "jira")
	h := newHarness(t, withRole("crm", role), withConnector("jira", ticketConn{fakeTickets: src}))

	r := h.submit(SubmitInput{Requester: alice, System: "crm", Role: "ticketed", Reason: "see https://acme.atlassian.net/browse/SUP-1."})
	want := &Ticket{Ref: "SUP-1", Title: "Login broken", URL: "https://acme.atlassian.net/browse/SUP-1", Status: "In Progress"}
	if diff := cmp.Diff(want, r.Ticket); diff != "" {
		t.Fatalf("ticket (-want +got):\n%s", diff)
	}
	if note := r.History[0].Note; note != "ticket: SUP-1" || TicketFromNote(note) != "SUP-1" {
		t.Errorf("requested note %q", note)
	}
	if r.State != StatePending || len(r.Steps) != 1 {
		t.Fatalf("%s with %d steps", r.State, len(r.Steps))
	}

	// The explicit field wins over the reason; the extension keeps the
	// grant's ticket unless its reason names another.
	h2 := newHarness(t, withRole("crm", role), withConnector("jira", ticketConn{fakeTickets: src}))
	r = h2.submit(SubmitInput{Requester: alice, System: "crm", Role: "ticketed", Reason: "outage", Ticket: "INC-7"})
	if r.Ticket == nil || r.Ticket.Ref != "INC-7" || r.Ticket.Title != "Outage" {
		t.Fatalf("explicit ticket = %+v", r.Ticket)
	}
	h2.decide(r.ID, carol, true, "")
	h2.wantState(r.ID, StateActive)
	ext, err := h2.svc.Extend(h2.ctx, r.ID, alice, time.Hour, "need more time")
	if err != nil {
		t.Fatal(err)
	}
	if ext.Ticket == nil || ext.Ticket.Ref != "INC-7" {
		t.Errorf("extension ticket = %+v, want the grant's INC-7", ext.Ticket)
	}
	ext2, err := h2.svc.Extend(h2.ctx, r.ID, alice, time.Hour, "now SUP-1 too")
	if err == nil || ext2 != nil {
		// A second extension while one is pending is refused; cancel the
		// first and extend naming another ticket.
		t.Fatalf("second pending extension accepted")
	}
	if _, err := h2.svc.Cancel(h2.ctx, ext.ID, alice); err != nil {
		t.Fatal(err)
	}
	ext2, err = h2.svc.Extend(h2.ctx, r.ID, alice, time.Hour, "now SUP-1 too")
	if err != nil {
		t.Fatal(err)
	}
	if ext2.Ticket == nil || ext2.Ticket.Ref != "SUP-1" {
		t.Errorf("extension naming SUP-1 has ticket %+v", ext2.Ticket)
	}
	// A ticket closed since the grant refuses the extension.
	src.tickets["INC-7"] = Ticket{Ref: "INC-7", Closed: true, Status: "Resolved"}
	if _, err := h2.svc.Cancel(h2.ctx, ext2.ID, alice); err != nil {
		t.Fatal(err)
	}
	_, err = h2.svc.Extend(h2.ctx, r.ID, alice, time.Hour, "")
	wantUserError(t, err, ErrForbidden, "INC-7 is Resolved")
}

func TestSubmitOnCall(t *testing.T) {
	rule := OnCallRule{Source: "pd", Schedule: "PSCHED1"}
	role := policyRole("oncall", Approval{AutoIfOnCall: &rule, Steps: ownersStep})
	for _, tc := range []struct {
		name     string
		src      *fakeOnCall
		wantAuto bool
		note     string
	}{
		{"on call: approved without a human", &fakeOnCall{emails: []string{"bob@example.com", "ALICE@example.com"}}, true,
			"You are on call (the on-call schedule pd:PSCHED1), so this was approved without a human."},
		{"not on call: the owners", &fakeOnCall{emails: []string{"bob@example.com"}}, false,
			"You are not on call (the on-call schedule pd:PSCHED1) right now, so the approvers are asked."},
		{"PagerDuty down: the owners, told why", &fakeOnCall{err: &LookupError{Vendor: "PagerDuty", Kind: LookupUnavailable, Err: errors.New("503")}}, false,
			"accessbot could not check the on-call schedule pd:PSCHED1: PagerDuty did not answer. The approvers are asked instead."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, withRole("crm", role), withConnector("pd", onCallConn{fakeOnCall: tc.src}))
			r := h.submit(SubmitInput{Requester: alice, System: "crm", Role: "oncall", Duration: time.Hour})
			if diff := cmp.Diff([]string{tc.note}, r.Notes); diff != "" {
				t.Errorf("notes (-want +got):\n%s", diff)
			}
			if !tc.wantAuto {
				if r.State != StatePending || r.Auto || len(r.Steps) != 1 || r.Steps[0].Sources != "owners" {
					t.Fatalf("%s auto=%v steps=%+v", r.State, r.Auto, r.Steps)
				}
				return
			}
			if r.State != StateActive || !r.Auto || r.AutoBy != "on call: pd:PSCHED1" || len(r.Steps) != 0 {
				t.Fatalf("%s auto=%v by %q steps=%d", r.State, r.Auto, r.AutoBy, len(r.Steps))
			}
			if diff := cmp.Diff([]Event{EventRequested, EventApproved, EventGranted}, events(r)); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
			if h := r.History[1]; h.Actor != ActorAuto || h.Note != "on call: pd:PSCHED1" {
				t.Errorf("approval recorded as %+v", h)
			}
		})
	}
	t.Run("no email: the owners", func(t *testing.T) {
		h := newHarness(t, withRole("crm", role), withConnector("pd", onCallConn{fakeOnCall: &fakeOnCall{emails: []string{"dave@example.com"}}}))
		r := h.submit(SubmitInput{Requester: dave, System: "crm", Role: "oncall"})
		if r.State != StatePending || len(r.Notes) != 1 || !strings.Contains(r.Notes[0], "no email address") {
			t.Fatalf("%s notes %q", r.State, r.Notes)
		}
	})
}

func TestSubmitWindows(t *testing.T) {
	berlin := mustLoc(t, "Europe/Berlin")
	refuse := policyRole("night", Approval{Auto: true})
	refuse.Windows, refuse.OutsideWindow, refuse.Location = mustWindows(t, "22:00-02:00"), OutsideRefuse, berlin
	approve := policyRole("nightauto", Approval{Auto: true, Steps: ownersStep})
	approve.Windows, approve.OutsideWindow, approve.Location = mustWindows(t, "22:00-02:00"), OutsideApprove, berlin

	h := newHarness(t, withRole("crm", refuse), withRole("crm", approve))
	// t0 is Sunday 29 Nov 2026 09:00 UTC, 10:00 in Berlin: outside.
	in := SubmitInput{Requester: alice, System: "crm", Role: "night", Reason: "night shift"}
	_, _, _, err := h.svc.Check(h.ctx, in)
	e := wantUserError(t, err, ErrForbidden, "crm night can be requested only every day 22:00-02:00 (ends next day), Europe/Berlin time.", "The next window opens today 22:00 CET.")
	if e.Code != CodeOutsideWindow {
		t.Errorf("code %s", e.Code)
	}
	_, err = h.svc.Submit(h.ctx, in)
	wantUserError(t, err, ErrForbidden, "can be requested only")
	h.storeEmpty()

	r := h.submit(SubmitInput{Requester: alice, System: "crm", Role: "nightauto"})
	if r.State != StatePending || r.Auto || len(r.Steps) != 1 || r.Steps[0].Sources != "owners" {
		t.Fatalf("outside, approve: %s auto=%v steps %+v", r.State, r.Auto, r.Steps)
	}
	if len(r.Notes) != 1 || !strings.Contains(r.Notes[0], "approved automatically only every day 22:00-02:00") {
		t.Errorf("notes %q", r.Notes)
	}

	h.clock.Advance(12*time.Hour + 30*time.Minute) // 22:30 CET
	r = h.submit(in)
	if r.State != StateActive || !r.Auto || r.AutoBy != "approval: auto" || r.Notes != nil {
		t.Fatalf("inside: %s auto=%v by %q notes %q", r.State, r.Auto, r.AutoBy, r.Notes)
	}
}
