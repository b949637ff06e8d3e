package main

import (
	"fmt"

	"github.com/accessbot/accessbot/access"
)

// The runbook keys of break-glass and requests on behalf of someone
// (issue #16):
//
//	break_glass:                 # the role may be taken at once, without approval
//	  max_duration: 1h           # required; at most the role's max_duration
//	  requesters: [team:oncall]  # required; team:NAME, user:UID, usergroup:SID, everyone
//	on_behalf: [manager, team:it] # who may ask for someone else: manager (the
//	                              # beneficiary's), owners, team:NAME, user:UID, usergroup:SID

// breakGlassAndBehalf reads a role's break_glass and on_behalf keys into r.
// It runs after the role's durations are merged (the break-glass maximum
// is checked against the role's own).
func (l *loader) breakGlassAndBehalf(path string, m map[string]any, r *access.Role, rb *access.Runbook) {
	if bm, ok := m["break_glass"].(map[string]any); ok { // any other shape: reported by checkShape
		bp := path + ".break_glass"
		bg := &access.BreakGlassPolicy{Origin: bp + ".max_duration"}
		bad := false
		if _, ok := bm["max_duration"]; !ok {
			l.problem(bp+".max_duration", "missing: the longest a break-glass grant may last, like 1h (it cannot be extended without normal approval)")
			bad = true
		} else if d, ok := l.duration(bm, bp, "max_duration"); !ok {
			bad = true
		} else if r.MaxDuration > 0 && d > r.MaxDuration {
			l.problem(bp+".max_duration", "%s is longer than the role's max_duration %s (%s); access taken without approval may not outlast access that was approved",
				access.FormatDuration(d), access.FormatDuration(r.MaxDuration), r.Origin.MaxDuration)
			bad = true
		} else {
			bg.MaxDuration = d
		}
		list, present := bm["requesters"].([]any)
		if _, ok := bm["requesters"]; !ok || (present && len(list) == 0) {
			l.problem(bp+".requesters", "missing: say who may break the glass (team:NAME, user:UID, usergroup:SID or everyone), like [team:oncall]")
			bad = true
		}
		for i, s := range stringList(bm, "requesters") {
			ip := fmt.Sprintf("%s.requesters[%d]", bp, i)
			p, err := access.ParseSource(s, true)
			if err != nil {
				l.problem(ip, "%v", err)
				bad = true
				continue
			}
			l.checkRef(ip, p, rb)
			if p.Kind == access.SourceEveryone {
				l.warn(ip, "everyone may break the glass: anyone in Slack can take this role at once, without approval; name the people who handle emergencies instead")
			}
			bg.Requesters = append(bg.Requesters, p)
		}
		if !bad {
			r.BreakGlass = bg
		}
	}
	if _, ok := m["on_behalf"]; ok {
		op := path + ".on_behalf"
		if list, isList := m["on_behalf"].([]any); isList && len(list) == 0 {
			l.problem(op, "empty: list who may ask for someone else (manager, owners, team:NAME, user:UID, usergroup:SID), or leave on_behalf out")
		}
		for i, s := range stringList(m, "on_behalf") {
			ip := fmt.Sprintf("%s[%d]", op, i)
			src, err := access.ParseSource(s, false)
			if err != nil {
				l.problem(ip, "%q is not allowed; use manager (the beneficiary's manager), owners, team:NAME, user:UID or usergroup:SID", s)
				continue
			}
			l.checkRef(ip, src, rb)
			if src.Kind == access.SourceManager && len(rb.Managers.Static) == 0 && rb.Managers.ProfileField == "" {
				l.warn(ip, "manager may ask on behalf of their reports, but directory.managers is empty, so no manager is ever found")
			}
			r.OnBehalf = append(r.OnBehalf, src)
		}
	}
}
