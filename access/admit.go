package access

import (
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
	msg := fmt.Sprintf("%s %s can be requested only %s (%s time).", sys.ID, r.ID, st.Windows, st.Location)
	if !st.NextOpen.IsZero() {
		msg += fmt.Sprintf(" The next window opens %s.", formatWhen(st.NextOpen, st.At))
	}
	return Forbiddenf("%s", msg)
}

// Note is what the requester is told when a request made outside the
// windows goes to the human approvers instead of being approved
// automatically (outside_window: approve); "" otherwise.
func (st WindowStatus) Note(sys *System, r *Role) string {
	if st.Open || st.Outside != OutsideApprove {
		return ""
	}
	msg := fmt.Sprintf("%s %s is approved automatically only %s (%s time), so this request goes to the approvers.", sys.ID, r.ID, st.Windows, st.Location)
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
