package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRun(t *testing.T) {
	tests := []struct {
		name           string
		args           []string
		code           int
		stdout, stderr string // substrings
	}{
		{"validate example", []string{"validate", "--config", examplePath}, 0,
			"1. manager → 2. owners (U0CAROL01, U0ERIN001)", ""},
		{"validate example shows auto", []string{"validate", "-config", examplePath}, 0, "auto (granted without a human", ""},
		{"validate mistakes", []string{"validate", "--config", "testdata/mistakes.yaml"}, 1,
			"", "systems.crm.roles.viewer.max_duraton: unknown key"},
		{"validate absent file", []string{"validate", "--config", "testdata/absent.yaml"}, 1, "", "read config"},
		{"validate default path", []string{"validate"}, 1, "", "config.yaml"},
		{"validate bad flag", []string{"validate", "--nope"}, 1, "", "flag provided but not defined"},
		{"validate extra argument", []string{"validate", "x"}, 1, "", "unexpected argument"},
		{"version", []string{"version"}, 0, "accessbot dev", ""},
		{"no command", nil, 1, "", "usage"},
		{"unknown command", []string{"launch"}, 1, "", `unknown command "launch"`},
		{"help", []string{"help"}, 0, "validate", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(tt.args, &stdout, &stderr, func(string) string { return "" })
			if code != tt.code || !strings.Contains(stdout.String(), tt.stdout) || !strings.Contains(stderr.String(), tt.stderr) {
				t.Errorf("exit %d (want %d)\nstdout:\n%s\nstderr:\n%s", code, tt.code, stdout.String(), stderr.String())
			}
		})
	}
}

// TestValidateNamesEveryProblem checks the CLI contract: one line per
// problem, each starting with its key path, and no secret anywhere.
func TestValidateNamesEveryProblem(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run([]string{"validate", "--config", "testdata/mistakes.yaml"}, &stdout, &stderr, func(string) string { return "" }); code != 1 {
		t.Fatalf("exit %d", code)
	}
	lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
	if len(lines) < 11 {
		t.Errorf("want at least 10 problems and a total, got:\n%s", stderr.String())
	}
	for _, l := range lines[:len(lines)-1] {
		if path, _, ok := strings.Cut(l, ": "); !ok || strings.Contains(path, " ") {
			t.Errorf("line does not start with a key path: %q", l)
		}
	}
	if strings.Contains(stdout.String()+stderr.String(), "TOPSECRET") {
		t.Error("a secret was printed")
	}
}

// TestRunRefusesUnknownEnv: an ACCESSBOT_ variable that matches no key is
// a warning for validate and an error for run.
func TestRunRefusesUnknownEnv(t *testing.T) {
	t.Setenv("ACCESSBOT_DEFAULT_MAX_DURATION", "30d")
	t.Setenv("ACCESSBOT_STORE_PATH", filepath.Join(t.TempDir(), "x.db"))
	var stdout, stderr bytes.Buffer
	if code := run([]string{"validate", "--config", examplePath}, &stdout, &stderr, os.Getenv); code != 0 {
		t.Fatalf("validate: exit %d\n%s", code, stderr.String())
	}
	for _, want := range []string{"ACCESSBOT_DEFAULT_MAX_DURATION: set, but no configuration key has this name", "did you mean ACCESSBOT_DEFAULTS_MAX_DURATION?", "Environment overrides (in the sha256): ACCESSBOT_STORE_PATH="} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("validate output lacks %q:\n%s", want, stdout.String())
		}
	}
	stdout.Reset()
	stderr.Reset()
	if code := run([]string{"run", "--config", examplePath}, &stdout, &stderr, os.Getenv); code != 1 || !strings.Contains(stderr.String(), "ACCESSBOT_DEFAULT_MAX_DURATION: ") {
		t.Errorf("run: exit %d\n%s", code, stderr.String())
	}
}

// TestValidateReportsEverythingAtOnce: one validate run names every
// mistake of testdata/many_mistakes.yaml by key path, whatever the kind:
// case duplicates do not stop the loading, connector blocks and grant
// parameters are checked despite other problems, unset ${VAR}s are named,
// and missing secret files are warnings.
func TestValidateReportsEverythingAtOnce(t *testing.T) {
	want := []struct{ line string }{
		{"slack.Command: duplicates slack.command"},
		{"slack.admins[0]: "},
		{"slack.api_url: "},
		{"timezone: "},
		{"http.listen: "},
		{"audit.retension: unknown key"},
		{"defaults.MAX_DURATION: duplicates defaults.max_duration"},
		{"defaults.approval_timeout: "},
		{"defaults.default_duration: 10h is above max_duration 8h"},
		{"directory.managers.static.u0alice01: U0ALICE01 is listed as their own manager"},
		{"teams.support.members[1]: "},
		{"connectors.desk.type: missing"},
		{`connectors.okta2.type: unknown connector type "okta_grop"`},
		{"connectors.okta3.org_url: ${OKTA_URL} is not set"},
		{"systems.CRM: duplicates systems.crm"},
		{"systems.crm.channel: "},
		{`systems.crm.digest.schedule: "daily 25:00"`},
		{"systems.crm.owners[0]: "},
		{"systems.crm.roles.admin.approval.steps[0].approvers[0]: "},
		{"systems.crm.roles.admin.reason: "},
		{"systems.crm.roles.editor.grant.group_id: ${GID} is not set"},
		{`systems.crm.roles.editor.max_duration: "0s" must be positive`},
		{"systems.crm.roles.reader.approval: missing"},
		{"systems.crm.roles.viewer.grant.groupid: unknown grant parameter"},
		{"systems.crm.roles.viewer.grant.group_id: required"},
		{`systems.crm.roles.viewer.requesters[0]: team "suport" is not defined`},
		{`systems.hr.connector: "okat" is not defined`},
		{"systems.hr.roles.list: "},
		{"systems.hr.roles.list.approval: "},
		{"warning: slack.app_token_file: cannot read the secret file: open /nonexistent/accessbot/app_token"},
		{"warning: slack.bot_token_file: cannot read the secret file: open /nonexistent/accessbot/bot_token"},
		{"warning: connectors.hook.secret_file: cannot read the secret file: open /nonexistent/accessbot/hook_secret"},
		{"warning: connectors.okta.token: ${OKTA_TOKEN} is not set"},
	}
	var stdout, stderr bytes.Buffer
	if code := run([]string{"validate", "--config", "testdata/many_mistakes.yaml"}, &stdout, &stderr, func(string) string { return "" }); code != 1 {
		t.Fatalf("exit %d", code)
	}
	lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
	problems := 0
	for _, l := range lines[:len(lines)-1] {
		if !strings.HasPrefix(l, "warning: ") {
			problems++
		}
	}
	wantProblems := 0
	for _, w := range want {
		if !strings.HasPrefix(w.line, "warning: ") {
			wantProblems++
		}
		n := 0
		for _, l := range lines {
			if strings.HasPrefix(l, w.line) {
				n++
			}
		}
		if n != 1 {
			t.Errorf("%d lines start with %q", n, w.line)
		}
	}
	if len(want) < 25 || problems != wantProblems {
		t.Errorf("%d problems, want %d:\n%s", problems, wantProblems, stderr.String())
	}
	if !strings.HasSuffix(lines[len(lines)-1], fmt.Sprintf("%d problem(s); see above", wantProblems)) {
		t.Errorf("total line: %q", lines[len(lines)-1])
	}
	for _, l := range lines[:len(lines)-1] {
		if path, _, ok := strings.Cut(l, ": "); !ok || strings.Contains(path, " ") {
			t.Errorf("line does not start with a key path: %q", l)
		}
	}
}

// TestValidateAndRunOneMistake: each kind of mistake alone, as validate
// and run report it.
func TestValidateAndRunOneMistake(t *testing.T) {
	const base = `
slack: { app_token: xapp-1, bot_token: xoxb-1, admins: [U0ADMIN01] }
connectors:
  okta: { type: okta_group, org_url: "https://example.okta.com", token: tok1 }
systems:
  crm:
    owners: [U0CAROL01]
    connector: okta
    roles:
      viewer: { grant: { group_id: 00gABC }, requesters: [everyone], approval: auto }
`
	tests := []struct {
		name, old, new string
		validate       int
		want           string // in validate's stderr
		runWant        string // in run's stderr
	}{
		{"case duplicate continues", "    owners: [U0CAROL01]\n", "    owners: [U0CAROL01]\n    Owners: [carol]\n    channel: X1\n", 1,
			"the later one is ignored for the other checks", "systems.crm.channel: "},
		{"grant checked despite other problems", "group_id: 00gABC", "groupid: 00gABC }, channel: X1, x: { a: b", 1,
			"systems.crm.roles.viewer.grant.groupid: unknown grant parameter", "systems.crm.roles.viewer.x: unknown key"},
		{"unset variable in a grant", "group_id: 00gABC", `group_id: "${GID}"`, 1,
			"systems.crm.roles.viewer.grant.group_id: ${GID} is not set", "systems.crm.roles.viewer.grant.group_id: ${GID} is not set"},
		{"unset variable in a connector", `org_url: "https://example.okta.com"`, `org_url: "${OKTA_URL}"`, 1,
			"connectors.okta.org_url: ${OKTA_URL} is not set", "connectors.okta.org_url: ${OKTA_URL} is not set"},
		{"missing bot token file", "bot_token: xoxb-1", "bot_token_file: /nonexistent/bot", 0,
			"slack.bot_token_file: cannot read the secret file: open /nonexistent/bot", "slack.bot_token_file: cannot read the secret file: open /nonexistent/bot"},
		{"missing app token file", "app_token: xapp-1", "app_token_file: /nonexistent/app", 0,
			"slack.app_token_file: cannot read the secret file: open /nonexistent/app", "slack.app_token_file: cannot read the secret file: open /nonexistent/app"},
		{"missing connector secret file", "token: tok1", "token_file: /nonexistent/tok", 0,
			"connectors.okta.token_file: cannot read the secret file: open /nonexistent/tok", "connectors.okta.token_file: open /nonexistent/tok"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			text := strings.Replace(base, tt.old, tt.new, 1)
			if text == base {
				t.Fatal("no change")
			}
			path := writeConfig(t, text)
			var stdout, stderr bytes.Buffer
			code := run([]string{"validate", "--config", path}, &stdout, &stderr, func(string) string { return "" })
			if code != tt.validate || !strings.Contains(stdout.String()+stderr.String(), tt.want) {
				t.Errorf("validate: exit %d (want %d), want %q\n%s%s", code, tt.validate, tt.want, stdout.String(), stderr.String())
			}
			stdout.Reset()
			stderr.Reset()
			if code := run([]string{"run", "--config", path}, &stdout, &stderr, func(string) string { return "" }); code != 1 || !strings.Contains(stderr.String(), tt.runWant) {
				t.Errorf("run: exit %d, want %q\n%s", code, tt.runWant, stderr.String())
			}
		})
	}
}
