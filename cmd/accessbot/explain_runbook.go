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
