package access

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestWindowStatus(t *testing.T) {
	berlin := mustLoc(t, "Europe/Berlin")
	tokyo := mustLoc(t, "Asia/Tokyo")
	rb := &Runbook{Location: berlin}
	sys := &System{ID: "crm"}
	role := &Role{ID: "admin", Windows: mustWindows(t, "mon-fri 08:00-18:00")}

	t.Run("no windows: open, nothing to say", func(t *testing.T) {
		st := rb.WindowStatus(&Role{ID: "viewer"}, utc("2026-03-28 12:00"))
		if !st.Open || st.Restricted || st.Refused() || !st.AutoAllowed() || st.Refusal(sys, role) != nil || st.Note(sys, role) != "" {
			t.Errorf("status %+v", st)
		}
	})
	t.Run("inside: open until the window closes", func(t *testing.T) {
		st := rb.WindowStatus(role, utc("2026-03-30 08:00")) // Monday 10:00 CEST
		if !st.Open || st.Refused() || !st.AutoAllowed() {
			t.Fatalf("status %+v", st)
		}
		if want := utc("2026-03-30 16:00"); !st.ClosesAt.Equal(want) {
			t.Errorf("ClosesAt = %s, want %s", st.ClosesAt, want)
		}
	})
	t.Run("outside, refuse by default: says when it opens", func(t *testing.T) {
		st := rb.WindowStatus(role, utc("2026-03-28 12:00")) // Saturday 13:00 CET
		if st.Open || !st.Refused() || st.AutoAllowed() {
			t.Fatalf("status %+v", st)
		}
		err := st.Refusal(sys, role)
		if !errors.Is(err, ErrForbidden) {
			t.Fatalf("Refusal = %v, want ErrForbidden", err)
		}
		want := "crm admin can be requested only Mon-Fri 08:00-18:00, Europe/Berlin time. The next window opens Mon 30 Mar 08:00 CEST."
		if err.Error() != want {
			t.Errorf("Refusal:\n got %q\nwant %q", err, want)
		}
		if st.Note(sys, role) != "" {
			t.Error("a refusal also has a note")
		}
	})
	t.Run("outside, approve: humans, and the requester is told why", func(t *testing.T) {
		r := *role
		r.OutsideWindow = OutsideApprove
		st := rb.WindowStatus(&r, utc("2026-03-29 19:00")) // Sunday 21:00 CEST
		if st.Open || st.Refused() || st.AutoAllowed() || st.Refusal(sys, &r) != nil {
			t.Fatalf("status %+v", st)
		}
		want := "crm admin is approved automatically only Mon-Fri 08:00-18:00, Europe/Berlin time, so this request goes to the approvers. The next window opens tomorrow 08:00 CEST."
		if got := st.Note(sys, &r); got != want {
			t.Errorf("Note:\n got %q\nwant %q", got, want)
		}
	})
	t.Run("the role's timezone wins", func(t *testing.T) {
		r := *role
		r.Location = tokyo
		st := rb.WindowStatus(&r, utc("2026-03-30 00:30")) // Monday 09:30 JST, 02:30 CEST
		if !st.Open || st.Location != tokyo {
			t.Errorf("status %+v", st)
		}
		st = rb.WindowStatus(&r, utc("2026-03-30 09:30")) // Monday 18:30 JST
		if err := st.Refusal(sys, &r); err == nil || !strings.Contains(err.Error(), ", Asia/Tokyo time. The next window opens tomorrow 08:00 JST.") {
			t.Errorf("Refusal = %v", err)
		}
	})
}

func TestFormatWhen(t *testing.T) {
	berlin := mustLoc(t, "Europe/Berlin")
	now := utc("2026-03-28 12:00")
	for _, tt := range []struct {
		t    time.Time
		want string
	}{
		{utc("2026-03-28 21:00").In(berlin), "today 22:00 CET"},
		{utc("2026-03-29 20:00").In(berlin), "tomorrow 22:00 CEST"},
		{utc("2026-03-30 06:00").In(berlin), "Mon 30 Mar 08:00 CEST"},
	} {
		if got := formatWhen(tt.t, now); got != tt.want {
			t.Errorf("formatWhen(%s) = %q, want %q", tt.t, got, tt.want)
		}
	}
}

func TestAdmit(t *testing.T) {
	ctx := context.Background()
	berlin := mustLoc(t, "Europe/Berlin")
	rb := &Runbook{Location: berlin}
	sys := &System{ID: "crm", Owners: []string{"U0CAROL01"}}
	steps := []StepPolicy{{Sources: []Source{{Kind: SourceManager}}, Min: 1}}
	alice := Person{SlackID: "U0ALICE01", Email: "alice@example.com"}
	onCallRule := &OnCallRule{Source: "pd", Schedule: "P1"}
	pd := &fakeOnCall{emails: []string{"alice@example.com"}}
	jira := &fakeTickets{tickets: map[string]Ticket{
		"SUP-1": {Ref: "SUP-1", Title: "Login", URL: "https://acme.atlassian.net/browse/SUP-1", Status: "Open"},
		"SUP-2": {Ref: "SUP-2", Closed: true, Status: "Done"},
	}}
	src := Sources{OnCall: map[string]OnCallSource{"pd": pd}, Tickets: map[string]TicketSource{"jira": jira}}
	nights := mustWindows(t, "22:00-02:00")
	springNight := utc("2026-03-29 00:30")   // 01:30 CET, inside
	springMorning := utc("2026-03-29 01:10") // 03:10 CEST: the clock jumped past 02:00
	tests := []struct {
		name    string
		role    Role
		src     Sources
		req     AdmitRequest
		err     error // kind
		errMsg  string
		auto    bool
		autoBy  string
		steps   []StepPolicy
		notes   []string
		ticket  *Ticket
		onCallq bool // the on-call source was asked
	}{
		{name: "plain steps", role: Role{ID: "viewer", Approval: Approval{Steps: steps}},
			req: AdmitRequest{Requester: alice, At: springNight}, steps: steps},
		{name: "approval: auto", role: Role{ID: "viewer", Approval: Approval{Auto: true}},
			req: AdmitRequest{Requester: alice, At: springNight}, auto: true, autoBy: "approval: auto"},
		{name: "on call: auto", role: Role{ID: "admin", Approval: Approval{Steps: steps, AutoIfOnCall: onCallRule}},
			req: AdmitRequest{Requester: alice, At: springNight}, auto: true, autoBy: "on call: pd:P1", onCallq: true,
			notes: []string{"You are on call (the on-call schedule pd:P1), so this was approved without a human."}},
		{name: "not on call: humans", role: Role{ID: "admin", Approval: Approval{Steps: steps, AutoIfOnCall: onCallRule}},
			req: AdmitRequest{Requester: Person{Email: "bob@example.com"}, At: springNight}, steps: steps, onCallq: true,
			notes: []string{"You are not on call (the on-call schedule pd:P1) right now, so the approvers are asked."}},
		{name: "PagerDuty down: humans, told why", role: Role{ID: "admin", Approval: Approval{Steps: steps, AutoIfOnCall: onCallRule}},
			src: Sources{OnCall: map[string]OnCallSource{"pd": &fakeOnCall{err: &LookupError{Vendor: "PagerDuty"}}}},
			req: AdmitRequest{Requester: alice, At: springNight}, steps: steps,
			notes: []string{"accessbot could not check the on-call schedule pd:P1: PagerDuty did not answer. The approvers are asked instead."}},
		{name: "window open across spring forward: on call", role: Role{ID: "admin", Windows: nights, OutsideWindow: OutsideApprove,
			Approval: Approval{Steps: steps, AutoIfOnCall: onCallRule}},
			req: AdmitRequest{Requester: alice, At: springNight}, auto: true, autoBy: "on call: pd:P1", onCallq: true,
			notes: []string{"You are on call (the on-call schedule pd:P1), so this was approved without a human."}},
		{name: "window closed after spring forward: humans, not asked", role: Role{ID: "admin", Windows: nights, OutsideWindow: OutsideApprove,
			Approval: Approval{Steps: steps, AutoIfOnCall: onCallRule}},
			req: AdmitRequest{Requester: alice, At: springMorning}, steps: steps,
			notes: []string{"crm admin is approved automatically only every day 22:00-02:00 (ends next day), Europe/Berlin time, so this request goes to the approvers. The next window opens today 22:00 CEST."}},
		{name: "approval: auto outside its window: the owners", role: Role{ID: "viewer", Windows: nights, OutsideWindow: OutsideApprove,
			Approval: Approval{Auto: true, Steps: []StepPolicy{{Sources: []Source{{Kind: SourceOwners}}, Min: 1}}}},
			req:   AdmitRequest{Requester: alice, At: springMorning},
			steps: []StepPolicy{{Sources: []Source{{Kind: SourceOwners}}, Min: 1}},
			notes: []string{"crm viewer is approved automatically only every day 22:00-02:00 (ends next day), Europe/Berlin time, so this request goes to the approvers. The next window opens today 22:00 CEST."}},
		{name: "refused outside the window", role: Role{ID: "admin", Windows: nights, Approval: Approval{Steps: steps}},
			req: AdmitRequest{Requester: alice, At: springMorning}, err: ErrForbidden,
			errMsg: "crm admin can be requested only every day 22:00-02:00 (ends next day), Europe/Berlin time. The next window opens today 22:00 CEST."},
		{name: "ticket verified", role: Role{ID: "admin", Ticket: mustTicketPolicy(t, "^SUP-[0-9]+$", "jira"), Approval: Approval{Steps: steps}},
			req: AdmitRequest{Requester: alice, Reason: "SUP-1 login", At: springNight}, steps: steps,
			ticket: &Ticket{Ref: "SUP-1", Title: "Login", URL: "https://acme.atlassian.net/browse/SUP-1", Status: "Open"}},
		{name: "ticket pattern only", role: Role{ID: "admin", Ticket: mustTicketPolicy(t, "^SUP-[0-9]+$", ""), Approval: Approval{Steps: steps}},
			req: AdmitRequest{Requester: alice, Reason: "login", Ticket: "SUP-77", At: springNight}, steps: steps, ticket: &Ticket{Ref: "SUP-77"}},
		{name: "ticket missing", role: Role{ID: "admin", Ticket: mustTicketPolicy(t, "^SUP-[0-9]+$", "jira"), Approval: Approval{Auto: true}},
			req: AdmitRequest{Requester: alice, Reason: "login", At: springNight}, err: ErrInvalid,
			errMsg: "crm admin needs a ticket reference matching `^SUP-[0-9]+$`: put it in the reason, like \"<ticket> customer cannot log in\"."},
		{name: "ticket closed", role: Role{ID: "admin", Ticket: mustTicketPolicy(t, "^SUP-[0-9]+$", "jira"), Approval: Approval{Auto: true}},
			req: AdmitRequest{Requester: alice, Reason: "SUP-2", At: springNight}, err: ErrForbidden, errMsg: "Ticket SUP-2 is Done; access needs an open ticket."},
		{name: "auto without fallback steps outside the window: an error, not a panic later", role: Role{ID: "viewer", Windows: nights,
			OutsideWindow: OutsideApprove, Approval: Approval{Auto: true}},
			req: AdmitRequest{Requester: alice, At: springMorning}, errMsg: "has no approval steps"},
		{name: "ticket checked before on call", role: Role{ID: "admin", Ticket: mustTicketPolicy(t, "^SUP-[0-9]+$", "jira"),
			Approval: Approval{Steps: steps, AutoIfOnCall: onCallRule}},
			req: AdmitRequest{Requester: alice, Reason: "SUP-404", At: springNight}, err: ErrInvalid, errMsg: "Ticket SUP-404 was not found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := src
			if tt.src.OnCall != nil || tt.src.Tickets != nil {
				s = tt.src
			}
			pd.asked = nil
			a, err := rb.Admit(ctx, s, sys, &tt.role, tt.req)
			if tt.errMsg != "" && tt.err == nil {
				if err == nil || !strings.Contains(err.Error(), tt.errMsg) {
					t.Fatalf("error %v, want one containing %q", err, tt.errMsg)
				}
				return
			}
			if tt.err != nil {
				msg := err.Error()
				if !errors.Is(err, tt.err) || !strings.Contains(msg, tt.errMsg) {
					t.Fatalf("error %v (%q), want %v containing %q", err, msg, tt.err, tt.errMsg)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if a.Auto != tt.auto || a.AutoBy != tt.autoBy {
				t.Errorf("auto %v %q, want %v %q", a.Auto, a.AutoBy, tt.auto, tt.autoBy)
			}
			if diff := cmp.Diff(tt.steps, a.Steps); diff != "" {
				t.Errorf("steps (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.notes, a.Notes); diff != "" {
				t.Errorf("notes (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.ticket, a.Ticket); diff != "" {
				t.Errorf("ticket (-want +got):\n%s", diff)
			}
			if asked := len(pd.asked) > 0; asked != tt.onCallq && s.OnCall["pd"] == OnCallSource(pd) {
				t.Errorf("on-call source asked: %v, want %v", asked, tt.onCallq)
			}
		})
	}
}

func TestSourcesOf(t *testing.T) {
	type both struct {
		fakeOnCall
		fakeTickets
		Connector
	}
	type grantOnly struct{ Connector }
	s := SourcesOf(map[string]Connector{"pd": &both{}, "okta": grantOnly{}})
	if len(s.OnCall) != 1 || len(s.Tickets) != 1 || s.OnCall["pd"] == nil || s.Tickets["pd"] == nil {
		t.Errorf("SourcesOf = %+v", s)
	}
}
