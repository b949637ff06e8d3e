package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/accessbot/accessbot/access"
)

// validate checks break_glass and on_behalf with key paths.
func TestRunbookKeysBreakGlassAndBehalf(t *testing.T) {
	const base = `
slack: { admins: [U0ADMIN01] }
directory: { managers: { static: { U0ALICE01: U0BOB0001 } } }
teams:
  oncall: { members: [U0CAROL01, U0ERIN001] }
connectors: { c: { type: manual } }
systems:
  s:
    owners: [U0CAROL01]
    connector: c
    roles:
      r:
        requesters: [everyone]
        approval: { steps: [ { approvers: [owners] } ] }
        max_duration: 2h
        %s
`
	tests := []struct {
		name, role string
		path, says string // empty: valid
	}{
		{"valid", "break_glass: { max_duration: 1h, requesters: [team:oncall, user:U0ADMIN01] }\n        on_behalf: [manager, team:oncall, owners]", "", ""},
		{"no max", "break_glass: { requesters: [team:oncall] }", "systems.s.roles.r.break_glass.max_duration", "missing: the longest a break-glass grant may last"},
		{"bad max", "break_glass: { max_duration: soon, requesters: [team:oncall] }", "systems.s.roles.r.break_glass.max_duration", "not a duration"},
		{"max over the role's", "break_glass: { max_duration: 3h, requesters: [team:oncall] }", "systems.s.roles.r.break_glass.max_duration", "3h is longer than the role's max_duration 2h (systems.s.roles.r.max_duration)"},
		{"no requesters", "break_glass: { max_duration: 1h }", "systems.s.roles.r.break_glass.requesters", "missing: say who may break the glass"},
		{"empty requesters", "break_glass: { max_duration: 1h, requesters: [] }", "systems.s.roles.r.break_glass.requesters", "missing: say who may break the glass"},
		{"unknown team", "break_glass: { max_duration: 1h, requesters: [team:oncal] }", "systems.s.roles.r.break_glass.requesters[0]", `team "oncal" is not defined under teams; did you mean "oncall"?`},
		{"bad requester", "break_glass: { max_duration: 1h, requesters: [manager] }", "systems.s.roles.r.break_glass.requesters[0]", "is not a requester"},
		{"typo in a key", "break_glass: { max_duraton: 1h, requesters: [team:oncall] }", "systems.s.roles.r.break_glass.max_duraton", `did you mean "max_duration"`},
		{"not a mapping", "break_glass: yes", "systems.s.roles.r.break_glass", "expected a mapping"},
		{"on_behalf empty", "on_behalf: []", "systems.s.roles.r.on_behalf", "empty: list who may ask for someone else"},
		{"on_behalf everyone", "on_behalf: [everyone]", "systems.s.roles.r.on_behalf[0]", `"everyone" is not allowed; use manager`},
		{"on_behalf unknown team", "on_behalf: [team:it]", "systems.s.roles.r.on_behalf[0]", `team "it" is not defined under teams`},
		{"on_behalf not a list", "on_behalf: manager", "systems.s.roles.r.on_behalf", "expected a list"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := LoadConfig(writeConfig(t, fmt.Sprintf(base, tt.role)), env(nil))
			if tt.path == "" {
				if err != nil {
					t.Fatalf("want valid, got %v", err)
				}
				r := cfg.Runbook.Systems["s"].Roles["r"]
				if r.BreakGlass == nil || r.BreakGlass.MaxDuration != time.Hour || len(r.BreakGlass.Requesters) != 2 ||
					r.BreakGlass.Origin != "systems.s.roles.r.break_glass.max_duration" {
					t.Errorf("break glass %+v", r.BreakGlass)
				}
				if fmt.Sprint(r.OnBehalf) != fmt.Sprint([]access.Source{{Kind: access.SourceManager}, {Kind: access.SourceTeam, Ref: "oncall"}, {Kind: access.SourceOwners}}) {
					t.Errorf("on behalf %v", r.OnBehalf)
				}
				return
			}
			ps := problemsOf(t, err)
			if tt.name == "typo in a key" && len(ps) == 2 {
				ps = ps[1:] // and max_duration is missing, which it is
			}
			if len(ps) != 1 || ps[0].Path != tt.path || !strings.Contains(ps[0].Message, tt.says) {
				t.Errorf("want one problem %s: …%s…, got:\n%s", tt.path, tt.says, joinProblems(ps))
			}
		})
	}
	// everyone may break the glass: valid, with a warning.
	cfg, err := LoadConfig(writeConfig(t, fmt.Sprintf(base, "break_glass: { max_duration: 1h, requesters: [everyone] }")), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if w := strings.Join(cfg.Warnings, "\n"); !strings.Contains(w, "systems.s.roles.r.break_glass.requesters[0]: everyone may break the glass") {
		t.Errorf("warnings %q", w)
	}
	// "for" cannot name a system or role: /access for @person … reads it.
	_, err = LoadConfig(writeConfig(t, strings.Replace(fmt.Sprintf(base, ""), "      r:\n", "      for:\n", 1)), env(nil))
	if ps := problemsOf(t, err); len(ps) != 1 || ps[0].Path != "systems.s.roles.for" || !strings.Contains(ps[0].Message, "is an /access subcommand") {
		t.Errorf("role named for: %s", joinProblems(ps))
	}
}

// explain tells who may break the glass, and explains a break-glass
// request on the example runbook.
func TestExplainBreakGlassCommand(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"--as", "U0DAVE001", "crm", "admin"}, []string{
			"Break glass: available to them (rule team:support); at most 30m, granted without approval",
			"yes team:support", "told besides the owners and the audit channel: U0CAROL01, U0ERIN001"}},
		{[]string{"--break-glass", "--as", "U0DAVE001", "crm", "admin", "30m"}, []string{
			"ALLOWED, granted at once by breaking the glass", "Who may break the glass", "max     30m  from systems.crm.roles.admin.break_glass.max_duration",
			"Approval: none (break glass"}},
		{[]string{"--break-glass", "--as", "mallory@example.com", "crm", "admin"}, []string{
			"REFUSED: You may not break the glass on crm admin; break-glass is for team:support.", "Break glass: not available to them"}},
		{[]string{"--as", "U0DAVE001", "crm", "viewer"}, nil},
	} {
		code, stdout, stderr := runCmd(t, append([]string{"explain", "--config", examplePath}, tc.args...)...)
		if code != 0 {
			t.Fatalf("%v: exit %d: %s", tc.args, code, stderr)
		}
		for _, w := range tc.want {
			if !strings.Contains(stdout, w) {
				t.Errorf("%v: stdout lacks %q:\n%s", tc.args, w, stdout)
			}
		}
		if tc.want == nil && strings.Contains(stdout, "Break glass") {
			t.Errorf("%v: a role without break_glass mentions it:\n%s", tc.args, stdout)
		}
	}
}
