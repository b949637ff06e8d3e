package access

import (
	"context"
	"fmt"
	"time"
)

// The policy a new request meets before its approval steps: the role's
// time windows, its ticket requirement and its automatic approval (plain
// or on-call). Each check is a function of the runbook, the request and
// the time given; the lifecycle calls them at submission.

// WindowStatus is what a role's time windows say about a request made at
// At. The zero value (no windows) is open.
type WindowStatus struct {
	Restricted bool           // the role has windows
	Open       bool           // At is inside one (always true when !Restricted)
	Outside    OutsideWindow  // what happens to a request made while !Open
	Windows    Windows        // the role's windows
	Location   *time.Location // the timezone they are read in
	At         time.Time
	// NextOpen is, while closed, when the next window opens (in
	// Location); zero while open.
	NextOpen time.Time
	// ClosesAt is, while open and restricted, when the current window
	// closes (in Location); zero otherwise.
	ClosesAt time.Time
}

// RoleLocation is the timezone a role's windows are read in: the role's
// own, else the runbook's, else UTC.
func (rb *Runbook) RoleLocation(r *Role) *time.Location {
	switch {
	case r != nil && r.Location != nil:
		return r.Location
	case rb != nil && rb.Location != nil:
		return rb.Location
	}
	return time.UTC
}

// WindowStatus reports whether role r may be requested (or auto-approved)
// at at, per its windows. It is a pure function of its arguments.
func (rb *Runbook) WindowStatus(r *Role, at time.Time) WindowStatus {
	st := WindowStatus{Open: true, At: at, Location: rb.RoleLocation(r)}
	if r == nil || len(r.Windows) == 0 {
		return st
	}
	st.Restricted, st.Windows, st.Outside = true, r.Windows, r.OutsideWindow
	if st.Outside == "" {
		st.Outside = OutsideRefuse
	}
	st.Open = r.Windows.Contains(at, st.Location)
	if st.Open {
		st.ClosesAt = r.Windows.CloseAfter(at, st.Location)
	} else {
		st.NextOpen = r.Windows.NextOpen(at, st.Location)
	}
	return st
}

// Refused reports whether a request made now must be refused
// (outside the windows, with outside_window: refuse).
func (st WindowStatus) Refused() bool { return !st.Open && st.Outside == OutsideRefuse }

// AutoAllowed reports whether automatic approval (approval: auto,
// auto_if_on_call) may apply now: inside the windows, or no windows.
func (st WindowStatus) AutoAllowed() bool { return st.Open }

// Refusal is the error for a request refused outside the windows: an
// *Error of kind ErrForbidden naming the windows, their timezone and when
// the next one opens. It is nil unless Refused.
func (st WindowStatus) Refusal(sys *System, r *Role) error {
	if !st.Refused() {
		return nil
	}
	msg := fmt.Sprintf("%s %s can be requested only %s, %s time.", sys.ID, r.ID, st.Windows, st.Location)
	if !st.NextOpen.IsZero() {
		msg += fmt.Sprintf(" The next window opens %s.", formatWhen(st.NextOpen, st.At))
	}
	e := refusef(ErrForbidden, CodeOutsideWindow, "%s", msg)
	e.System, e.Role, e.At, e.Value = sys.ID, r.ID, st.NextOpen, st.Windows.String()
	return e
}

// Note is what the requester is told when a request made outside the
// windows goes to the human approvers instead of being approved
// automatically (outside_window: approve); "" otherwise.
func (st WindowStatus) Note(sys *System, r *Role) string {
	if st.Open || st.Outside != OutsideApprove {
		return ""
	}
	msg := fmt.Sprintf("%s %s is approved automatically only %s, %s time, so this request goes to the approvers.", sys.ID, r.ID, st.Windows, st.Location)
	if !st.NextOpen.IsZero() {
		msg += fmt.Sprintf(" The next window opens %s.", formatWhen(st.NextOpen, st.At))
	}
	return msg
}

// formatWhen renders t for a person reading it at now, in t's location:
// "today 22:00 CET", "tomorrow 08:00 CEST", "Mon 30 Mar 08:00 CEST".
func formatWhen(t, now time.Time) string {
	n := now.In(t.Location())
	ty, tm, td := t.Date()
	ny, nm, nd := n.Date()
	switch {
	case ty == ny && tm == nm && td == nd:
		return "today " + t.Format("15:04 MST")
	case time.Date(ny, nm, nd+1, 0, 0, 0, 0, time.UTC).Equal(time.Date(ty, tm, td, 0, 0, 0, 0, time.UTC)):
		return "tomorrow " + t.Format("15:04 MST")
	}
	return t.Format("Mon 2 Jan 15:04 MST")
}

// Sources are the lookups the policy may consult at submission, by
// connector instance name (the NAME of auto_if_on_call and ticket.verify).
type Sources struct {
	OnCall  map[string]OnCallSource
	Tickets map[string]TicketSource
}

// SourcesOf picks the lookup connectors out of the connector instances
// (ServiceConfig.Connectors): each that implements OnCallSource or
// TicketSource is listed under its name.
func SourcesOf(conns map[string]Connector) Sources {
	s := Sources{OnCall: map[string]OnCallSource{}, Tickets: map[string]TicketSource{}}
	for name, c := range conns {
		if o, ok := c.(OnCallSource); ok {
			s.OnCall[name] = o
		}
		if t, ok := c.(TicketSource); ok {
			s.Tickets[name] = t
		}
	}
	return s
}

// AdmitRequest is what Admit needs to know about a new request.
type AdmitRequest struct {
	// Requester is the person asking; Email is matched against on-call
	// schedules.
	Requester Person
	Reason    string
	// Ticket is an explicit ticket field, when the surface has one; else
	// the reference is looked for in Reason.
	Ticket string
	At     time.Time // when the request is made (the lifecycle's clock)
}

// Admission is what the policy says about a new request before its
// approval steps run.
type Admission struct {
	Window WindowStatus
	// Ticket is the request's ticket when the role requires one (only
	// Ref when not verified); nil otherwise. Store it with the request,
	// show it on every copy and put it in the audit record.
	Ticket *Ticket
	// Auto means approve without a human. AutoBy says why, for the audit
	// log and the digest: "approval: auto" or "on call: NAME:SCHEDULE".
	Auto   bool
	AutoBy string
	// OnCall is the on-call check, when the role has auto_if_on_call
	// and the window let it run; its Err, when set, belongs in the log.
	OnCall *OnCallCheck
	// Steps are the human approval steps to run when !Auto: always the
	// role's own Approval.Steps, so that Runbook.ResolveStep(…, i, …)
	// resolves step i of them (for approval: auto with
	// outside_window: approve the loader sets them to the owners).
	Steps []StepPolicy
	// Notes are what to tell the requester about how the request was
	// handled, in order (on-call outcome, window), beyond the usual
	// "submitted to …". Each is a sentence.
	Notes []string
}

// Admit applies a role's time windows, ticket requirement and automatic
// approval to a new request, in that order. It returns an error, an *Error
// for the requester, when the request must not be created: outside the
// windows with outside_window: refuse (ErrForbidden, saying when the
// next window opens), a missing or malformed ticket reference or an
// unknown ticket (ErrInvalid, naming the pattern or the reference), a
// closed ticket (ErrForbidden), a ticket that cannot be checked
// (ErrUnavailable). Otherwise the Admission says whether to approve at
// once or which steps to run, and what to tell the requester.
//
// It consults src for the role's ticket.verify and auto_if_on_call
// connectors (network calls, bounded by the connectors' own timeouts and
// ctx); a missing source fails closed (ticket: refused as unavailable;
// on-call: humans decide). It never changes anything.
func (rb *Runbook) Admit(ctx context.Context, src Sources, sys *System, r *Role, req AdmitRequest) (Admission, error) {
	a := Admission{Window: rb.WindowStatus(r, req.At)}
	if err := a.Window.Refusal(sys, r); err != nil {
		return Admission{}, err
	}
	if r.Ticket != nil {
		t, err := CheckTicket(ctx, src.Tickets[r.Ticket.Verify], sys, r, req.Ticket, req.Reason)
		if err != nil {
			return Admission{}, err
		}
		a.Ticket = &t
	}
	hasAuto := r.Approval.Auto || r.Approval.AutoIfOnCall != nil
	switch {
	case hasAuto && !a.Window.AutoAllowed():
		a.Notes = append(a.Notes, a.Window.Note(sys, r))
	case r.Approval.Auto:
		a.Auto, a.AutoBy = true, "approval: auto"
	case r.Approval.AutoIfOnCall != nil:
		rule := *r.Approval.AutoIfOnCall
		chk := CheckOnCall(ctx, src.OnCall[rule.Source], rule, req.Requester, req.At)
		a.OnCall = &chk
		a.Notes = append(a.Notes, chk.Note)
		if chk.OnCall {
			a.Auto, a.AutoBy = true, "on call: "+rule.String()
		}
	}
	if !a.Auto {
		a.Steps = r.Approval.Steps
		if len(a.Steps) == 0 {
			// The loader gives every role that may fall back to humans
			// its steps (approval: auto with outside_window: approve gets
			// the owners); a role built otherwise is a programming error.
			return Admission{}, fmt.Errorf("%s %s is not approved automatically now and has no approval steps", sys.ID, r.ID)
		}
	}
	return a, nil
}
