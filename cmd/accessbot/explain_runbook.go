package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/accessbot/accessbot/access"
)

// writeBreakGlass prints the role's break-glass availability for the
// requester (nothing for a role without break_glass).
func (o *offline) writeBreakGlass(w io.Writer, ex *access.Explanation) {
	bg := ex.BreakGlass
	if bg == nil {
		return
	}
	verdict := "not available to them"
	if bg.Allowed {
		verdict = fmt.Sprintf("available to them (rule %s)", bg.MatchedRule)
	}
	fmt.Fprintf(w, "\nBreak glass: %s; at most %s, granted without approval\n", verdict, access.FormatDuration(bg.MaxDuration))
	if !bg.Requested {
		for _, r := range bg.Requesters {
			mark := "no "
			if r.Matched {
				mark = "yes"
			}
			fmt.Fprintf(w, "  %s %-22s %s\n", mark, r.Rule, r.Why)
		}
	}
	fmt.Fprintf(w, "  told besides the owners and the audit channel: %s\n", o.showAll(bg.Notify))
}

// describeBreakGlass says what the runbook says about breaking the glass,
// for a failing case.
func describeBreakGlass(ex *access.Explanation) string {
	bg := ex.BreakGlass
	if bg == nil {
		return fmt.Sprintf("%s %s has no break_glass", ex.System, ex.Role)
	}
	if bg.Allowed {
		return fmt.Sprintf("they may (rule %s), for at most %s", bg.MatchedRule, access.FormatDuration(bg.MaxDuration))
	}
	var rules []string
	for _, r := range bg.Requesters {
		rules = append(rules, r.Rule+": "+r.Why)
	}
	return "no break_glass.requesters rule matches them (" + strings.Join(rules, "; ") + ")"
}

// writeExtras prints what issue #16 added to an explanation: whether the
// person asking on someone's behalf may, and break-glass availability.
func (o *offline) writeExtras(w io.Writer, ex *access.Explanation) {
	if ex.OnBehalf != nil {
		var who []string
		if sys := o.rb.Systems[ex.System]; sys != nil && sys.Roles[ex.Role] != nil {
			for _, s := range sys.Roles[ex.Role].OnBehalf {
				who = append(who, s.String())
			}
		}
		rules := "nobody (the role has no on_behalf)"
		if len(who) > 0 {
			rules = strings.Join(who, ", ")
		}
		verdict := "may not"
		if *ex.OnBehalf {
			verdict = "may"
		}
		fmt.Fprintf(w, "\nOn behalf: %s %s ask for %s (on_behalf: %s; manager means %s's manager)\n",
			o.show(ex.RequestedBy), verdict, o.show(ex.Requester), rules, o.show(ex.Requester))
	}
	o.writeBreakGlass(w, ex)
}

// roleOf returns the system and role an explanation is about; nil when
// there is no such role.
func (o *offline) roleOf(ex *access.Explanation) (*access.System, *access.Role) {
	sys := o.rb.Systems[ex.System]
	if sys == nil || ex.Role == "" {
		return nil, nil
	}
	return sys, sys.Roles[ex.Role]
}

// windowAt is the role's time-window status at the explanation's time
// (the policy's own WindowStatus, as Service.Check and Admit use it).
// access.Explain judges who and how long, not when: the windows come from
// here.
func (o *offline) windowAt(ex *access.Explanation) (access.WindowStatus, *access.System, *access.Role) {
	sys, role := o.roleOf(ex)
	if role == nil {
		return access.WindowStatus{Open: true}, nil, nil
	}
	return o.rb.WindowStatus(role, ex.Now), sys, role
}

// windowsText says when a role may be requested: its windows, their
// timezone, and what happens outside them.
func windowsText(st access.WindowStatus, role *access.Role) string {
	outside := "requests are refused (outside_window: refuse)"
	if st.Outside == access.OutsideApprove {
		outside = "automatic approval does not apply and the approvers are asked (outside_window: approve)"
		if !role.Approval.Auto && role.Approval.AutoIfOnCall == nil {
			outside = "requests go to the approvers as always (outside_window: approve; the role has no automatic approval)"
		}
	}
	return fmt.Sprintf("only %s, %s time; outside them %s", st.Windows, st.Location, outside)
}

// describeTicket says what ticket a role requires.
func describeTicket(t *access.TicketPolicy) string {
	s := fmt.Sprintf("the reason (or the form's ticket field) must carry a reference matching %s", t.Pattern)
	if t.Verify != "" {
		s += fmt.Sprintf("; the ticket must exist and be open in %s (checked when the request is made, not here)", t.Verify)
	}
	return s
}

// writeWhenAndTicket prints the role's time windows, with their verdict
// at the explanation's time, and its ticket requirement; nothing for a
// role with neither.
func (o *offline) writeWhenAndTicket(w io.Writer, ex *access.Explanation, breakGlass bool) {
	st, _, role := o.windowAt(ex)
	if role == nil {
		return
	}
	if st.Restricted {
		fmt.Fprintln(w, "\nWhen (time windows):")
		fmt.Fprintf(w, "  %s\n", windowsText(st, role))
		at := ex.Now.In(st.Location).Format("Mon 2 Jan 2006 15:04 MST")
		switch {
		case breakGlass:
			fmt.Fprintln(w, "  breaking the glass is not limited by them")
		case st.Open:
			fmt.Fprintf(w, "  at %s: inside; this window closes %s\n", at, st.ClosesAt.Format("Mon 2 Jan 15:04 MST"))
		default:
			fmt.Fprintf(w, "  at %s: OUTSIDE; the next window opens %s\n", at, st.NextOpen.Format("Mon 2 Jan 15:04 MST"))
		}
	}
	if role.Ticket != nil {
		fmt.Fprintln(w, "\nTicket:")
		fmt.Fprintf(w, "  required: %s\n", describeTicket(role.Ticket))
	}
}

// caseNotes says what a policy test case is not judged on: the role's time
// windows (a case has no time) and a ticket check that needs its
// connector. Empty for a role with neither.
func (o *offline) caseNotes(ex *access.Explanation, reason string) []string {
	st, _, role := o.windowAt(ex)
	if role == nil {
		return nil
	}
	var out []string
	if st.Restricted && (ex.BreakGlass == nil || !ex.BreakGlass.Requested) {
		out = append(out, fmt.Sprintf("%s %s may be requested %s; cases are judged as if inside them", ex.System, ex.Role, windowsText(st, role)))
	}
	if t := role.Ticket; t != nil {
		note := fmt.Sprintf("%s %s needs a ticket: %s", ex.System, ex.Role, describeTicket(t))
		if strings.TrimSpace(reason) == "" {
			note += "; this request gives no reason, so the request form would ask for one"
		}
		out = append(out, note)
	}
	return out
}

// applyTicket refuses, as the bot would, a request whose reason carries
// no reference the role's ticket pattern accepts (the pattern part of
// access.CheckTicket, which needs no connector). A request without a
// reason is left alone: the form asks for one.
func (o *offline) applyTicket(ex *access.Explanation, reason string) {
	sys, role := o.roleOf(ex)
	if !ex.Allowed || role == nil || role.Ticket == nil || strings.TrimSpace(reason) == "" {
		return
	}
	if _, err := role.Ticket.FindRef(sys, role, "", reason); err != nil {
		ex.Allowed, ex.Refusal, ex.RefusalText = false, err, err.Error()
	}
}
