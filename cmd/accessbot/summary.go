package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/accessbot/accessbot/access"
)

// writeSummary prints what a valid configuration means for people: per
// system and role, who may request, the approval steps, the durations and
// the connector; then the warnings. It prints no secret: tokens are shown
// only as set or missing.
func writeSummary(w io.Writer, cfg *Config) {
	rb := cfg.Runbook
	fmt.Fprintf(w, "%s is valid (sha256 %s)\n\n", cfg.Path, short(rb.Hash))
	fmt.Fprintf(w, "Slack:     command %s, API %s, app token %s, bot token %s\n",
		cfg.Slack.Command, cfg.Slack.APIURL, secretState(cfg.Slack.AppToken), secretState(cfg.Slack.BotToken))
	fmt.Fprintf(w, "Admins:    %s\n", listOrNone(cfg.Slack.Admins))
	if cfg.Slack.AuditChannel != "" {
		fmt.Fprintf(w, "Audit:     decisions copied to %s\n", cfg.Slack.AuditChannel)
	}
	store := cfg.Store.Path
	if cfg.Store.Driver == storeDriverPostgres {
		store = "PostgreSQL (store.dsn; several replicas may run)"
	}
	fmt.Fprintf(w, "Store:     %s; timezone %s", store, cfg.Timezone)
	if cfg.HTTP.Listen != "" {
		fmt.Fprintf(w, "; HTTP on %s", cfg.HTTP.Listen)
	}
	fmt.Fprintln(w)
	if cfg.Audit.File != "" || cfg.Audit.Retention > 0 {
		ret := "kept forever"
		if cfg.Audit.Retention > 0 {
			ret = "kept " + access.FormatDuration(cfg.Audit.Retention)
		}
		fmt.Fprintf(w, "Audit log: %s, %s\n", orDash(cfg.Audit.File), ret)
	}
	if len(cfg.Overrides) > 0 {
		fmt.Fprintf(w, "Environment overrides (in the sha256): %s\n", strings.Join(cfg.Overrides, ", "))
	}
	for _, name := range sortedKeys(rb.Teams) {
		fmt.Fprintf(w, "Team %s: %s\n", name, describeTeam(rb.Teams[name]))
	}

	for _, id := range rb.SystemIDs() {
		sys := rb.Systems[id]
		cc := cfg.Connectors[sys.Connector]
		fmt.Fprintf(w, "\n%s — %s (connector %s, type %s)\n", id, sys.DisplayName(), sys.Connector, cc.Type)
		if sys.Description != "" {
			fmt.Fprintf(w, "  %s\n", sys.Description)
		}
		fmt.Fprintf(w, "  owners %s; channel %s; digest %s\n", strings.Join(sys.Owners, ", "), orDash(sys.Channel), sys.Digest)
		for _, rid := range sys.RoleIDs() {
			r := sys.Roles[rid]
			fmt.Fprintf(w, "  %s", rid)
			if r.Description != "" {
				fmt.Fprintf(w, ": %s", r.Description)
			}
			fmt.Fprintln(w)
			fmt.Fprintf(w, "    who may request: %s\n", describePrincipals(r.Requesters, rb))
			fmt.Fprintf(w, "    approval:        %s\n", describeApproval(r.Approval, sys, rb))
			if ws := describeWindows(r, rb); ws != "" {
				fmt.Fprintf(w, "    windows:         %s\n", ws)
			}
			if tp := r.Ticket; tp != nil {
				check := "pattern only"
				if tp.Verify != "" {
					check = "checked open in " + tp.Verify
				}
				fmt.Fprintf(w, "    ticket:          required, matching %s; %s\n", tp.Pattern, check)
			}
			if bg := r.BreakGlass; bg != nil {
				fmt.Fprintf(w, "    break glass:     %s, at most %s, without approval\n", describePrincipals(bg.Requesters, rb), access.FormatDuration(bg.MaxDuration))
			}
			if len(r.OnBehalf) > 0 {
				var who []string
				for _, s := range r.OnBehalf {
					who = append(who, s.String())
				}
				fmt.Fprintf(w, "    on behalf:       %s may ask for someone else\n", strings.Join(who, ", "))
			}
			reason := "optional"
			if r.ReasonRequired {
				reason = "required"
			}
			fmt.Fprintf(w, "    duration:        default %s, max %s; reason %s\n",
				access.FormatDuration(r.DefaultDuration), access.FormatDuration(r.MaxDuration), reason)
			if !r.Approval.Auto {
				fmt.Fprintf(w, "    timing:          times out after %s, reminder after %s, expiry warning %s before\n",
					access.FormatDuration(r.ApprovalTimeout), access.FormatDuration(r.ReminderAfter), access.FormatDuration(r.ExpiryWarning))
			}
			if len(r.Grant) > 0 {
				var g []string
				for _, k := range sortedKeys(r.Grant) {
					g = append(g, k+"="+r.Grant[k])
				}
				fmt.Fprintf(w, "    grant:           %s\n", strings.Join(g, ", "))
			}
		}
	}
	if len(cfg.Warnings) > 0 {
		fmt.Fprintf(w, "\nWarnings (%d):\n", len(cfg.Warnings))
		for _, warn := range cfg.Warnings {
			fmt.Fprintf(w, "  - %s\n", warn)
		}
	}
}

func short(hash string) string {
	if len(hash) > 12 {
		return hash[:12]
	}
	return hash
}

func secretState(s Secret) string {
	if s == "" {
		return "MISSING"
	}
	return "set"
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func listOrNone(l []string) string {
	if len(l) == 0 {
		return "none"
	}
	return strings.Join(l, ", ")
}

func describeTeam(t access.Team) string {
	var parts []string
	if len(t.Members) > 0 {
		parts = append(parts, fmt.Sprintf("%d member(s) (%s)", len(t.Members), strings.Join(t.Members, ", ")))
	}
	if t.Usergroup != "" {
		parts = append(parts, "user group "+t.Usergroup+" (resolved at run time)")
	}
	return strings.Join(parts, " + ")
}

// describePrincipals renders requesters with the counts the file gives.
func describePrincipals(ps []access.Principal, rb *access.Runbook) string {
	var out []string
	for _, p := range ps {
		out = append(out, describeSource(p, nil, rb))
	}
	return listOrNone(out)
}

// describeApproval renders "1. manager → 2. 2 of owners (U0CAROL01, U0ERIN001)" or "auto".
func describeApproval(a access.Approval, sys *access.System, rb *access.Runbook) string {
	if a.Auto {
		return "auto (granted without a human; recorded in the audit log and digest)"
	}
	var steps []string
	for i, st := range a.Steps {
		var srcs []string
		for _, s := range st.Sources {
			srcs = append(srcs, describeSource(s, sys, rb))
		}
		step := strings.Join(srcs, " or ")
		if st.Min > 1 {
			step = fmt.Sprintf("%d of %s", st.Min, step)
		}
		steps = append(steps, fmt.Sprintf("%d. %s", i+1, step))
	}
	out := strings.Join(steps, " → ")
	if oc := a.AutoIfOnCall; oc != nil {
		out = fmt.Sprintf("auto when on call on %s, else %s", oc, out)
	}
	return out
}

// describeWindows renders a role's windows for the summary ("" when it
// has none).
func describeWindows(r *access.Role, rb *access.Runbook) string {
	if len(r.Windows) == 0 {
		return ""
	}
	what := "requests refused outside them"
	if r.OutsideWindow == access.OutsideApprove {
		what = "outside them humans approve"
	}
	return fmt.Sprintf("%s (%s time); %s", r.Windows, rb.RoleLocation(r), what)
}

func describeSource(s access.Source, sys *access.System, rb *access.Runbook) string {
	switch s.Kind {
	case access.SourceOwners:
		if sys != nil {
			return fmt.Sprintf("owners (%s)", strings.Join(sys.Owners, ", "))
		}
	case access.SourceTeam:
		if t, ok := rb.Teams[s.Ref]; ok {
			return fmt.Sprintf("%s (%s)", s, describeTeam(t))
		}
	case access.SourceUsergroup:
		return s.String() + " (resolved at run time)"
	case access.SourceEveryone:
		return "everyone in the workspace"
	}
	return s.String()
}
