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
