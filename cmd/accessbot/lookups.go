package main

import (
	"fmt"
	"github.com/accessbot/accessbot/connectors/entra"
	"github.com/accessbot/accessbot/connectors/google"
	"github.com/accessbot/accessbot/connectors/okta"
	"github.com/accessbot/accessbot/connectors/scim"
	"slices"
	"strings"
	"time"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/connectors/jira"
	"github.com/accessbot/accessbot/connectors/opsgenie"
	"github.com/accessbot/accessbot/connectors/pagerduty"
	"github.com/accessbot/accessbot/connectors/zendeskticket"
)

// The runbook keys of a role's time windows, on-call auto-approval and
// ticket requirement (issue #16), and the lookup connectors they name.

// Connector types that answer the policy's lookups and grant nothing.
var (
	onCallTypes = []string{pagerduty.Type, opsgenie.Type}
	ticketTypes = []string{jira.Type, zendeskticket.Type}
)

// isLookupType reports whether typ is a lookup connector type, which no
// system may use to grant access.
func isLookupType(typ string) bool {
	return slices.Contains(onCallTypes, typ) || slices.Contains(ticketTypes, typ)
}

// lookupRefs returns the connector names the roles of the raw systems
// tree name in approval.auto_if_on_call and ticket.verify: run builds
// them and needs their secrets, like the connectors systems use.
func lookupRefs(systems map[string]any) map[string]bool {
	out := map[string]bool{}
	for _, sid := range sortedKeys(systems) {
		roles := child(child(systems, sid), "roles")
		for _, rid := range sortedKeys(roles) {
			rm := child(roles, rid)
			if v, ok := child(rm, "approval")["auto_if_on_call"]; ok && isScalar(v) {
				if name, _, ok := strings.Cut(scalarString(v), ":"); ok && strings.TrimSpace(name) != "" {
					out[strings.TrimSpace(name)] = true
				}
			}
			if v := text(child(rm, "ticket"), "verify"); v != "" {
				out[v] = true
			}
		}
	}
	return out
}

// idpTypes are the identity-provider connector types that know managers
// (access.ManagerLookup) and account status (access.AccountChecker), for
// directory.managers.source and directory.offboarding.
var idpTypes = []string{okta.Type, google.Type, entra.Type, scim.Type}

// checkLookupRef reports at path a reference to connector name that is
// not defined, or not of one of types (what says what the key needs).
func (l *loader) checkLookupRef(path, name string, types []string, what string, conns map[string]ConnectorConfig) {
	cc, ok := conns[name]
	var fit []string
	for _, n := range sortedKeys(conns) {
		if slices.Contains(types, conns[n].Type) {
			fit = append(fit, n)
		}
	}
	kinds := strings.Join(types, " or ")
	switch {
	case !ok:
		l.problem(path, "%q is not defined under connectors; %s needs a connector of type %s%s", name, what, kinds, didYouMean(name, fit))
	case cc.Type != "" && !slices.Contains(types, cc.Type):
		l.problem(path, "connector %q is of type %s; %s needs a connector of type %s%s", name, cc.Type, what, kinds, didYouMean(name, fit))
	}
}

// windowsAndTicket reads a role's windows, timezone, outside_window and
// ticket keys into r. hasAuto says whether the role approves
// automatically (approval: auto or auto_if_on_call), which is all that
// outside_window: approve changes.
func (l *loader) windowsAndTicket(path string, m map[string]any, r *access.Role, hasAuto bool, conns map[string]ConnectorConfig) {
	if v, ok := m["windows"]; ok {
		if list, isList := v.([]any); isList && len(list) == 0 {
			l.problem(path+".windows", "empty: list at least one window, like \"mon-fri 08:00-18:00\", or leave windows out to allow any time")
		}
		for i, spec := range stringList(m, "windows") {
			w, err := access.ParseWindow(spec)
			if err != nil {
				l.problem(fmt.Sprintf("%s.windows[%d]", path, i), "%v", err)
				continue
			}
			r.Windows = append(r.Windows, w)
		}
	}
	_, hasWindows := m["windows"]
	if tz := text(m, "timezone"); tz != "" {
		loc, err := time.LoadLocation(tz)
		switch {
		case err != nil || tz == "Local":
			l.problem(path+".timezone", "%q is not a known timezone; use an IANA name like Europe/Berlin, America/New_York or UTC", tz)
		case !hasWindows:
			l.warn(path+".timezone", "only windows are read in the role's timezone, and this role has none; remove it, or add windows")
		default:
			r.Location = loc
		}
	}
	if _, ok := m["outside_window"]; ok {
		o, err := access.ParseOutsideWindow(text(m, "outside_window"))
		switch {
		case err != nil:
			l.problem(path+".outside_window", "%v", err)
		case !hasWindows:
			l.warn(path+".outside_window", "this role has no windows, so it is never outside one; remove it, or add windows")
		case o == access.OutsideApprove && !hasAuto:
			l.warn(path+".outside_window", "approve only stops automatic approval outside the windows, and this role has none (no approval: auto or auto_if_on_call): the windows change nothing; use refuse (the default) to restrict when it may be requested")
		}
		r.OutsideWindow = o
	}
	if hasWindows && r.OutsideWindow == "" {
		r.OutsideWindow = access.OutsideRefuse
	}
	if r.Approval.Auto && hasWindows && r.OutsideWindow == access.OutsideApprove && len(r.Approval.Steps) == 0 {
		// approval: auto has no steps of its own; outside its windows
		// the system owners approve (access.Approval).
		r.Approval.Steps = []access.StepPolicy{{Sources: []access.Source{{Kind: access.SourceOwners}}, Min: 1}}
	}

	if tm, ok := m["ticket"].(map[string]any); ok { // any other shape: reported by checkShape
		tp := path + ".ticket"
		verify := text(tm, "verify")
		if verify != "" {
			l.checkLookupRef(tp+".verify", verify, ticketTypes, "ticket.verify", conns)
		}
		if _, ok := tm["pattern"]; !ok {
			l.problem(tp+".pattern", "missing: a regular expression every ticket reference matches, like ^(SUP|INC)-[0-9]+$")
			return
		}
		p, err := access.NewTicketPolicy(text(tm, "pattern"), verify)
		if err != nil {
			l.problem(tp+".pattern", "%v", err)
			return
		}
		r.Ticket = p
	}
}
