package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/bot"
	"github.com/accessbot/accessbot/bot/slackemu"
)

// runCmd runs the accessbot command line in-process with an empty
// environment.
func runCmd(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(args, &out, &errb, func(string) string { return "" })
	return code, out.String(), errb.String()
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

const explainPeople = `
people:
  U0HANA001: { email: hana@example.com, manager: U0HEIDI01, usergroups: [S0HRTEAM1] }
  U0GRACE01: { email: grace@example.com, usergroups: [S0HRTEAM1] }
  U0ALICE01: { email: alice@example.com }
`

func TestExplainCommand(t *testing.T) {
	people := writeFile(t, "people.yaml", explainPeople)
	tests := []struct {
		name   string
		args   []string
		code   int
		stdout []string // each must appear
		stderr string
	}{
		{"manager then owners", []string{"--as", "U0ALICE01", "crm", "viewer", "4h"}, 0, []string{
			"U0ALICE01 asking for crm viewer (Salesforce CRM)", "ALLOWED, after 2 approval step(s)",
			"yes team:support", "granted for 4h (as requested)",
			"default 2h  from systems.crm.roles.viewer.default_duration", "max     8h  from systems.crm.roles.viewer.max_duration",
			"reason  required  from defaults.reason",
			"manager    -> U0BOB0001  (directory.managers.static)", "asks: U0CAROL01, U0ERIN001"}, ""},
		{"flags after the arguments", []string{"crm", "admin", "--as", "U0ALICE01"}, 0, []string{
			"step 1: 2 of owners", "granted for 1h (the role default)", "max     1h  from systems.crm.roles.admin.max_duration",
			"default 1h  from defaults.default_duration"}, ""},
		{"auto for a member by email", []string{"--as", "mallory@example.com", "analytics", "viewer"}, 0, []string{
			"mallory@example.com asking for analytics viewer", "granted at once with no human (approval: auto)",
			"yes team:marketing", "reason  optional  from systems.analytics.roles.viewer.reason"}, ""},
		{"not a requester", []string{"--as", "U0FRANK01", "payroll", "viewer"}, 0, []string{
			"REFUSED: You may not request payroll viewer; it is for team:hr.",
			"no  team:hr                not a member of team hr (0 member(s) found, user group S0HRTEAM1 included)"}, ""},
		{"over the maximum", []string{"--as", "U0ALICE01", "crm", "viewer", "9h"}, 0, []string{
			"REFUSED: 9h is longer than the maximum for crm viewer, which is 8h."}, ""},
		{"an owner who is no requester", []string{"--as", "U0CAROL01", "analytics", "editor"}, 0, []string{"REFUSED: You may not request"}, ""},
		{"unknown system", []string{"--as", "U0ALICE01", "crn", "viewer"}, 0, []string{`REFUSED: There is no system called "crn"`}, ""},
		{"people: user group and profile-field manager", []string{"--people", people, "--as", "hana@example.com", "payroll", "viewer"}, 0, []string{
			"U0HANA001 (hana@example.com) asking for payroll viewer", "ALLOWED",
			"yes team:hr", "manager    -> U0HEIDI01  (Slack profile field Xf0MANAGER)", "owners     -> U0FRANK01"}, ""},
		{"people: static manager wins", []string{"--people", people, "--as", "grace@example.com", "payroll", "viewer"}, 0, []string{
			"manager    -> U0HEIDI01  (directory.managers.static)"}, ""},
		{"people: email of a listed person", []string{"--people", people, "--as", "alice@example.com", "crm", "viewer"}, 0, []string{
			"U0ALICE01 (alice@example.com) asking"}, ""},

		{"no --as", []string{"crm", "viewer"}, 1, nil, "need --as PERSON"},
		{"too many arguments", []string{"--as", "U0ALICE01", "crm", "viewer", "2h", "why"}, 1, nil, "at most a DURATION"},
		{"bad duration", []string{"--as", "U0ALICE01", "crm", "viewer", "banana"}, 1, nil, `DURATION: "banana" is not a duration`},
		{"unknown email", []string{"--as", "nobody@example.com", "crm", "viewer"}, 1, nil, "nobody@example.com is neither in the runbook nor in the people section"},
		{"not a person", []string{"--as", "alice", "crm", "viewer"}, 1, nil, `"alice" is neither a Slack user ID`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			config := examplePath
			if strings.Contains(tt.name, "profile-field") {
				// The example keeps managers static; this case reads them from
				// a profile field, as a runbook may.
				raw, err := os.ReadFile(examplePath)
				if err != nil {
					t.Fatal(err)
				}
				config = writeFile(t, "config.yaml", strings.Replace(string(raw), "    # slack_profile_field: Xf0MANAGER", "    slack_profile_field: Xf0MANAGER", 1))
			}
			args := append([]string{"explain", "--config", config}, tt.args...)
			code, stdout, stderr := runCmd(t, args...)
			ok := code == tt.code && strings.Contains(stderr, tt.stderr)
			for _, s := range tt.stdout {
				ok = ok && strings.Contains(stdout, s)
			}
			if !ok {
				t.Errorf("exit %d (want %d)\nstdout:\n%s\nstderr:\n%s", code, tt.code, stdout, stderr)
			}
		})
	}
}

func TestExplainBadFiles(t *testing.T) {
	badPeople := writeFile(t, "people.yaml", `
people:
  U0HANA001: { emial: hana@example.com }
  alice: {}
  U0BOB0001: { manager: U0BOB0001, usergroups: [hr] }
cases: []
extra: 1
`)
	code, _, stderr := runCmd(t, "explain", "--config", examplePath, "--people", badPeople, "--as", "U0ALICE01", "crm", "viewer")
	for _, want := range []string{
		`line 3: people.U0HANA001.emial: unknown key; did you mean "email"?`,
		`people.alice: "alice" is not a Slack user ID`,
		"people.U0BOB0001.manager: a person cannot be their own manager",
		`people.U0BOB0001.usergroups[0]: "hr" is not a Slack user group ID`,
		"line 7: extra: unknown key",
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("missing %q in:\n%s", want, stderr)
		}
	}
	if code != 1 {
		t.Errorf("exit %d", code)
	}
	code, _, stderr = runCmd(t, "explain", "--config", "testdata/mistakes.yaml", "--as", "U0ALICE01", "crm", "viewer")
	if code != 1 || !strings.Contains(stderr, "systems.crm.roles.viewer.max_duraton: unknown key") {
		t.Errorf("invalid runbook: exit %d\n%s", code, stderr)
	}
	code, _, stderr = runCmd(t, "explain", "--config", examplePath, "--people", "testdata/absent.yaml", "--as", "U0ALICE01", "crm", "viewer")
	if code != 1 || !strings.Contains(stderr, "absent.yaml") {
		t.Errorf("absent people file: exit %d\n%s", code, stderr)
	}
}

// Admins and owners may be emails (accessbot init writes them): validate
// accepts them, and explain resolves them through the people section as
// run resolves them through Slack.
func TestOwnersByEmail(t *testing.T) {
	cfg := writeFile(t, "c.yaml", `
slack: { admins: [ada@example.com] }
teams: { support: { members: [alice@example.com] } }
connectors: { desk: { type: manual } }
systems:
  payroll:
    owners: [frank@example.com, "not a person"]
    connector: desk
    roles:
      viewer: { requesters: [team:support], approval: { steps: [{ approvers: [manager] }] } }
`)
	code, _, stderr := runCmd(t, "validate", "--config", cfg)
	if code != 1 || !strings.Contains(stderr, `systems.payroll.owners[1]: "not a person" is neither a Slack user ID nor an email address`) ||
		strings.Contains(stderr, "owners[0]") || strings.Contains(stderr, "slack.admins") {
		t.Errorf("validate: exit %d\n%s", code, stderr)
	}
	data, _ := os.ReadFile(cfg)
	if err := os.WriteFile(cfg, bytes.Replace(data, []byte(`, "not a person"`), nil, 1), 0o600); err != nil {
		t.Fatal(err)
	}
	people := writeFile(t, "p.yaml", "people:\n  U0FRANK01: { email: frank@example.com }\n")
	code, stdout, stderr := runCmd(t, "explain", "--config", cfg, "--people", people, "--as", "alice@example.com", "payroll", "viewer")
	if code != 0 || !strings.Contains(stdout, "asks: U0FRANK01 (frank@example.com)") {
		t.Errorf("explain with people: exit %d\n%s%s", code, stdout, stderr)
	}
	code, stdout, stderr = runCmd(t, "explain", "--config", cfg, "--as", "alice@example.com", "payroll", "viewer")
	if code != 0 || !strings.Contains(stdout, "asks: frank@example.com") {
		t.Errorf("explain without people: exit %d\n%s%s", code, stdout, stderr)
	}
}

// run resolves emails through Slack itself (users.lookupByEmail, here the
// emulator) before serving: the same call cmdRun makes.
func TestRunResolvesEmailsThroughSlack(t *testing.T) {
	emu := slackemu.New(slackemu.Options{})
	t.Cleanup(emu.Close)
	emu.AddUser(slackemu.User{ID: "U0FRANK01", Name: "frank", RealName: "Frank", Email: "frank@example.com"})
	emu.AddUser(slackemu.User{ID: "U0ADA0001", Name: "ada", RealName: "Ada", Email: "ada@example.com"})
	b := bot.New(bot.Config{AppToken: emu.AppToken(), BotToken: emu.BotToken(), APIURL: emu.APIURL(), Command: "/access"})
	rb := &access.Runbook{Admins: []string{"ada@example.com", "U0OTHER01"}, Systems: map[string]*access.System{
		"payroll": {ID: "payroll", Owners: []string{"frank@example.com", "gone@example.com"}},
	}}
	err := rb.ResolveEmails(context.Background(), b)
	if err == nil || !strings.Contains(err.Error(), "systems.payroll.owners[1]: no Slack user has the email gone@example.com") {
		t.Errorf("ResolveEmails = %v", err)
	}
	if !slices.Equal(rb.Admins, []string{"U0ADA0001", "U0OTHER01"}) || rb.Systems["payroll"].Owners[0] != "U0FRANK01" {
		t.Errorf("admins %v, owners %v", rb.Admins, rb.Systems["payroll"].Owners)
	}
}

// explain shows a role's time windows with their verdict at --at (a
// request the policy allows is refused outside them) and its ticket
// requirement; test notes both and checks the ticket pattern as the bot
// does.
func TestExplainAndTestShowWindowsAndTicket(t *testing.T) {
	code, out, errs := runCmd(t, "explain", "--config", examplePath, "--as", "U0ALICE01", "--at", "2026-12-05 10:00", "crm", "admin", "1h")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	for _, want := range []string{
		"REFUSED at this time: crm admin can be requested only Mon-Fri 08:00-18:00, Europe/Berlin time. The next window opens Mon 7 Dec 08:00 CET.",
		"inside its time windows: ALLOWED, after 1 approval step(s)",
		"When (time windows):\n  only Mon-Fri 08:00-18:00, Europe/Berlin time; outside them requests are refused",
		"at Sat 5 Dec 2026 10:00 CET: OUTSIDE; the next window opens Mon 7 Dec 08:00 CET",
		"Ticket:\n  required: the reason (or the form's ticket field) must carry a reference matching ^(SUP|INC)-[0-9]+$; the ticket must exist and be open in jira",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("explain on a Saturday lacks %q:\n%s", want, out)
		}
	}
	_, out, _ = runCmd(t, "explain", "--config", examplePath, "--as", "U0ALICE01", "--at", "2026-12-07T10:00:00+01:00", "crm", "admin")
	if !strings.Contains(out, "  ALLOWED, after 1 approval step(s)\n") || !strings.Contains(out, "at Mon 7 Dec 2026 10:00 CET: inside; this window closes Mon 7 Dec 18:00 CET") {
		t.Errorf("explain on a Monday morning:\n%s", out)
	}
	_, out, _ = runCmd(t, "explain", "--config", examplePath, "--as", "mallory@example.com", "--at", "2026-12-07 10:00", "warehouse", "oncall")
	if !strings.Contains(out, "outside them automatic approval does not apply and the approvers are asked (outside_window: approve)") {
		t.Errorf("outside_window: approve is not explained:\n%s", out)
	}
	_, out, _ = runCmd(t, "explain", "--config", examplePath, "--as", "U0ALICE01", "crm", "viewer")
	if strings.Contains(out, "When (time windows)") || strings.Contains(out, "Ticket:") {
		t.Errorf("a role with neither windows nor ticket shows them:\n%s", out)
	}
	if code, _, errs := runCmd(t, "explain", "--config", examplePath, "--as", "U0ALICE01", "--at", "saturday", "crm", "admin"); code != 1 || !strings.Contains(errs, `--at: "saturday" is not a time`) {
		t.Errorf("bad --at: exit %d %s", code, errs)
	}

	cases := writeFile(t, "cases.yaml", `
cases:
  - name: admin with a ticket in the reason
    as: U0DAVE001
    request: crm admin 1h SUP-42 export for the customer
    expect: { allowed: true }
  - name: admin without a ticket in the reason
    as: U0DAVE001
    request: crm admin 1h export for the customer
    expect: { allowed: true }
  - name: the refusal names the ticket pattern
    as: U0DAVE001
    request: crm admin 1h export for the customer
    expect: { error: needs a ticket reference }
`)
	code, out, errs = runCmd(t, "test", "--config", examplePath, cases)
	if code != 1 {
		t.Fatalf("test: exit %d\n%s%s", code, out, errs)
	}
	for _, want := range []string{
		"ok    admin with a ticket in the reason\n      note: crm admin may be requested only Mon-Fri 08:00-18:00, Europe/Berlin time; outside them requests are refused (outside_window: refuse); cases are judged as if inside them\n      note: crm admin needs a ticket: the reason (or the form's ticket field) must carry a reference matching ^(SUP|INC)-[0-9]+$",
		"FAIL  admin without a ticket in the reason",
		"allowed: expected true; the runbook refuses it: crm admin needs a ticket reference matching `^(SUP|INC)-[0-9]+$`",
		"ok    the refusal names the ticket pattern",
		"2 passed, 1 failed",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("test output lacks %q:\n%s", want, out)
		}
	}
}
