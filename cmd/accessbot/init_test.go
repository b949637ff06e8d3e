package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/charmbracelet/x/ansi"
	"github.com/creack/pty"
)

// initAnswersYAML is a --from file with the three systems of the issue: a
// manual payroll task (two-step approval), a Salesforce permission set and
// a Metabase group (auto-approved).
const initAnswersYAML = `
admins: [ada@example.com]
timezone: Europe/Berlin
manager_field: Xf0MANAGER
teams:
  - { name: hr, members: [grace@example.com, heidi@example.com] }
  - { name: support, members: [alice@example.com, dave@example.com] }
  - { name: marketing, slack_usergroup: S0MKTTEAM }
systems:
  - id: payroll
    name: Payroll
    owners: [frank@example.com]
    channel: C0PAYROLL
    digest: weekly mon 09:00
    connector: { type: manual }
    roles:
      - id: viewer
        grant: { profile: view_only }
        requesters: [team:hr]
        approval: [[manager], [owners]]
        max_duration: 4h
  - id: crm
    owners: [carol@example.com, erin@example.com]
    connector:
      type: salesforce_permission_set
      settings: { client_id: 3MVG9example, username: accessbot@example.com, set_expiration: "true" }
      secrets: { private_key: { env: CRM_PRIVATE_KEY } }
    roles:
      - id: viewer
        grant: { permission_set: Support_Read_Only }
        requesters: [team:support]
        approval: [[owners]]
  - id: analytics
    owners: [oscar@example.com]
    connector:
      type: metabase_group
      settings: { url: https://metabase.example.com }
      secrets: { api_key: { file: /run/secrets/metabase_api_key } }
    roles:
      - id: viewer
        grant: { group_id: "12" }
        requesters: [team:marketing, team:support]
        approval: auto
        max_duration: 4h
`

// initPeople maps the emails the runbook uses to Slack IDs, for explain.
const initPeople = `
people:
  U0GRACE01: { email: grace@example.com, manager: heidi@example.com }
  U0HEIDI01: { email: heidi@example.com }
  U0FRANK01: { email: frank@example.com }
  U0CAROL01: { email: carol@example.com }
  U0ERIN001: { email: erin@example.com }
  U0ALICE01: { email: alice@example.com }
`

// runInitCmd runs init in-process with no terminal.
func runInitCmd(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	old := os.Stdin
	if stdin != "" {
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		go func() { w.WriteString(stdin); w.Close() }()
		os.Stdin = r
		defer func() { os.Stdin = old; r.Close() }()
	}
	code := runInit(args, &out, &errb, func(string) string { return "" }, initIO{})
	return code, out.String(), errb.String()
}

// dirFiles lists a directory's entries (to see that nothing, not even a
// temporary file, was left behind).
func dirFiles(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		out = append(out, e.Name())
	}
	return out
}

func TestInitFromAnswers(t *testing.T) {
	dir := t.TempDir()
	answers := filepath.Join(dir, "answers.yaml")
	os.WriteFile(answers, []byte(initAnswersYAML), 0o600)
	out := filepath.Join(dir, "config.yaml")
	code, stdout, stderr := runInitCmd(t, "", "--from", answers, "--out", out)
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	for _, want := range []string{
		"Wrote " + out, "is valid",
		"payroll — Payroll (connector payroll, type manual)", "1. manager → 2. owners (frank@example.com)",
		"auto (granted without a human",
		"SLACK_APP_TOKEN", "SLACK_BOT_TOKEN", "CRM_PRIVATE_KEY   private_key of crm (salesforce_permission_set)",
		"file /run/secrets/metabase_api_key api_key of analytics",
		"accessbot validate --config " + out, "accessbot explain --config " + out + " --as grace@example.com payroll viewer",
		"accessbot sandbox --config " + out, "accessbot run --config " + out,
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, stdout)
		}
	}
	data, _ := os.ReadFile(out)
	for _, want := range []string{
		"# accessbot runbook, written by `accessbot init`",
		"private_key: ${CRM_PRIVATE_KEY} # secret, from the environment",
		"api_key_file: /run/secrets/metabase_api_key # secret, read from this file",
		"set_expiration: true", "owners: [frank@example.com]",
	} {
		if !strings.Contains(string(data), want) {
			t.Errorf("runbook lacks %q:\n%s", want, data)
		}
	}
	checkWrittenRunbook(t, out)
	// The same answers on standard input give the same file.
	out2 := filepath.Join(dir, "config2.yaml")
	if code, _, stderr := runInitCmd(t, initAnswersYAML, "--from", "-", "--out", out2); code != 0 {
		t.Fatalf("--from -: exit %d\n%s", code, stderr)
	}
	data2, _ := os.ReadFile(out2)
	if !bytes.Equal(data, data2) {
		t.Errorf("--from - wrote a different file")
	}
}

// checkWrittenRunbook validates the file and asks explain who approves.
func checkWrittenRunbook(t *testing.T, path string) {
	t.Helper()
	if code, stdout, stderr := runCmd(t, "validate", "--config", path); code != 0 {
		t.Fatalf("validate: exit %d\n%s%s", code, stdout, stderr)
	}
	people := writeFile(t, "people.yaml", initPeople)
	code, stdout, stderr := runCmd(t, "explain", "--config", path, "--people", people, "--as", "grace@example.com", "payroll", "viewer", "2h")
	for _, want := range []string{"ALLOWED, after 2 approval step(s)", "asks: U0HEIDI01 (heidi@example.com)", "asks: U0FRANK01 (frank@example.com)", "max     4h"} {
		if code != 0 || !strings.Contains(stdout, want) {
			t.Errorf("explain payroll: exit %d, lacks %q\n%s%s", code, want, stdout, stderr)
		}
	}
	code, stdout, _ = runCmd(t, "explain", "--config", path, "--people", people, "--as", "alice@example.com", "crm", "viewer")
	if code != 0 || !strings.Contains(stdout, "asks: U0CAROL01 (carol@example.com), U0ERIN001 (erin@example.com)") {
		t.Errorf("explain crm: exit %d\n%s", code, stdout)
	}
	code, stdout, _ = runCmd(t, "explain", "--config", path, "--people", people, "--as", "alice@example.com", "analytics", "viewer")
	if code != 0 || !strings.Contains(stdout, "granted at once with no human (approval: auto)") {
		t.Errorf("explain analytics: exit %d\n%s", code, stdout)
	}
}

func TestInitBadAnswers(t *testing.T) {
	tests := []struct {
		name, from, to string
		want           []string
	}{
		{"unknown connector type", "type: metabase_group", "type: metabse_group",
			[]string{`systems[2].connector.type: unknown connector type "metabse_group"`, `did you mean "metabase_group"?`}},
		{"malformed email", "owners: [frank@example.com]", "owners: [frank.example.com]",
			[]string{`systems[0].owners[0]: "frank.example.com" is neither an email address nor a Slack user ID`}},
		{"malformed admin", "admins: [ada@example.com]", "admins: [ada@]",
			[]string{`admins[0]: "ada@" is neither an email address`}},
		{"default over the maximum", "max_duration: 4h\n  - id: crm", "max_duration: 4h\n        default_duration: 6h\n  - id: crm",
			[]string{"systems[0].roles[0].default_duration: 6h is over the maximum 4h"}},
		{"maximum over the longest", "approval: auto\n        max_duration: 4h", "approval: auto\n        max_duration: 90d",
			[]string{"systems[2].roles[0].max_duration: 90d is over the longest init accepts (30d)"}},
		{"the connector's own check", "client_id: 3MVG9example, ", "",
			[]string{"systems[1].connector.settings.client_id: required (the connected app's consumer key)"}},
		{"a grant parameter the connector refuses", `group_id: "12"`, `group_id: twelve`,
			[]string{`systems[2].roles[0].grant.group_id: must be a positive integer`}},
		{"a secret given as a setting", "url: https://metabase.example.com }", "url: https://metabase.example.com, api_key: hunter22 }",
			[]string{"systems[2].connector.settings.api_key: is a secret: give it under secrets"}},
		{"a setting the connector does not have", "username: accessbot@example.com", "usrname: accessbot@example.com",
			[]string{`systems[1].connector.settings.usrname: salesforce_permission_set has no setting "usrname"`, `did you mean "username"?`}},
		{"an unknown team", "requesters: [team:hr]", "requesters: [team:hhr]",
			[]string{`systems[0].roles[0].requesters[0]: team "hhr" is not among the teams; did you mean "hr"?`}},
		{"an unknown answer key", "timezone: Europe/Berlin", "timezone: Europe/Berlin\ntimezon: UTC",
			[]string{`answers.yaml: line 4: unknown key "timezon"`}},
		{"a bad approver", "[[manager], [owners]]", "[[manager], [ownerz]]",
			[]string{`systems[0].roles[0].approval[1][0]: "ownerz" is not an approver source`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if !strings.Contains(initAnswersYAML, tt.from) {
				t.Fatalf("test bug: %q not in the answers", tt.from)
			}
			answers := filepath.Join(dir, "answers.yaml")
			os.WriteFile(answers, []byte(strings.Replace(initAnswersYAML, tt.from, tt.to, 1)), 0o600)
			code, stdout, stderr := runInitCmd(t, "", "--from", answers, "--out", filepath.Join(dir, "config.yaml"))
			if code != 1 || !strings.Contains(stderr, "nothing was written") {
				t.Errorf("exit %d\n%s%s", code, stdout, stderr)
			}
			for _, w := range tt.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, stderr)
				}
			}
			if strings.Contains(stderr, "hunter22") {
				t.Errorf("a secret value was echoed:\n%s", stderr)
			}
			if files := dirFiles(t, dir); len(files) != 1 {
				t.Errorf("files left: %v", files)
			}
		})
	}
}

func TestInitNeverOverwritesWithoutForce(t *testing.T) {
	dir := t.TempDir()
	answers := filepath.Join(dir, "answers.yaml")
	os.WriteFile(answers, []byte(initAnswersYAML), 0o600)
	out := filepath.Join(dir, "config.yaml")
	os.WriteFile(out, []byte("mine\n"), 0o600)
	code, _, stderr := runInitCmd(t, "", "--from", answers, "--out", out)
	if data, _ := os.ReadFile(out); code != 1 || string(data) != "mine\n" || !strings.Contains(stderr, "exists; not overwriting it (use --force") {
		t.Errorf("exit %d, file %q\n%s", code, data, stderr)
	}
	if code, _, stderr := runInitCmd(t, "", "--from", answers, "--out", out, "--force"); code != 0 {
		t.Fatalf("--force: exit %d\n%s", code, stderr)
	}
	if data, _ := os.ReadFile(out); !strings.HasPrefix(string(data), "# accessbot runbook") {
		t.Errorf("--force did not overwrite: %q", data)
	}
	// The link that puts the file in place refuses an existing file too
	// (one created after the first check).
	if err := writeNew(context.Background(), out, []byte("x"), false); err == nil || !strings.Contains(err.Error(), "exists") {
		t.Errorf("writeNew over an existing file: %v", err)
	}
	// An interruption before the file is in place leaves nothing.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := writeNew(ctx, filepath.Join(dir, "new.yaml"), []byte("x"), false); err == nil {
		t.Error("writeNew after an interruption succeeded")
	}
	if files := dirFiles(t, dir); len(files) != 2 {
		t.Errorf("files: %v, want answers.yaml and config.yaml only", files)
	}
}

// terminal is a pseudo-terminal the form runs on, and a reader of what it
// draws that waits for a text to appear (no sleeping: it wakes on output).
type terminal struct {
	t    *testing.T
	ptmx *os.File
	tty  *os.File
	mu   sync.Mutex
	cond *sync.Cond
	out  bytes.Buffer
	mark int
	done bool
}

func newTerminal(t *testing.T) *terminal {
	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Skipf("no pseudo-terminal: %v", err)
	}
	if err := pty.Setsize(ptmx, &pty.Winsize{Rows: 60, Cols: 160}); err != nil {
		t.Fatal(err)
	}
	term := &terminal{t: t, ptmx: ptmx, tty: tty}
	term.cond = sync.NewCond(&term.mu)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := ptmx.Read(buf)
			// Answer the queries a terminal emulator answers.
			if oscQuery.Match(buf[:n]) {
				ptmx.WriteString("\x1b]11;rgb:0000/0000/0000\x1b\\")
			}
			if bytes.Contains(buf[:n], []byte("\x1b[6n")) {
				ptmx.WriteString("\x1b[1;1R")
			}
			term.mu.Lock()
			term.out.Write(buf[:n])
			if err != nil {
				term.done = true
			}
			term.cond.Broadcast()
			term.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	return term
}

var oscQuery = regexp.MustCompile(`\x1b\]11;\?(\x07|\x1b\\)`)

// waitFor waits until text appears in what was drawn since the last mark
// (ANSI sequences stripped).
func (term *terminal) waitFor(text string) {
	term.t.Helper()
	deadline := time.AfterFunc(20*time.Second, func() { // a safety net, not a pause
		term.mu.Lock()
		term.done = true
		term.cond.Broadcast()
		term.mu.Unlock()
	})
	defer deadline.Stop()
	term.mu.Lock()
	defer term.mu.Unlock()
	for {
		raw := term.out.Bytes()[term.mark:]
		if strings.Contains(ansi.Strip(string(raw)), text) {
			return
		}
		if term.done {
			term.t.Fatalf("the form never showed %q; it showed:\n%s", text, ansi.Strip(string(raw)))
		}
		term.cond.Wait()
	}
}

// drawn is what was drawn since the last mark, ANSI sequences stripped.
func (term *terminal) drawn() string {
	term.mu.Lock()
	defer term.mu.Unlock()
	return ansi.Strip(string(term.out.Bytes()[term.mark:]))
}

// answer waits for the field titled title to be focused, then types value
// and Enter.
func (term *terminal) answer(title, value string) {
	term.t.Helper()
	term.waitFor("┃ " + title)
	term.send(value + "\r")
}

// send types keys, marking the output so that later waits see only what
// is drawn after them.
func (term *terminal) send(keys string) {
	term.mu.Lock()
	term.mark = term.out.Len()
	term.mu.Unlock()
	if _, err := term.ptmx.WriteString(keys); err != nil {
		term.t.Fatal(err)
	}
}

// startInit runs init on the terminal; the result arrives on the channel.
func startInit(t *testing.T, term *terminal, args ...string) <-chan [3]string {
	res := make(chan [3]string, 1)
	go func() {
		var out, errb bytes.Buffer
		code := runInit(args, &out, &errb, func(string) string { return "" }, initIO{in: term.tty, out: term.tty})
		res <- [3]string{strings.Repeat("x", code), out.String(), errb.String()}
	}()
	t.Cleanup(func() { term.tty.Close(); term.ptmx.Close() })
	return res
}

// The interactive form, driven key by key through a pseudo-terminal:
// three systems (manual payroll with two steps, Salesforce, Metabase
// auto-approved), with a wrong answer corrected on the way.
func TestInitInteractive(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "config.yaml")
	term := newTerminal(t)
	res := startInit(t, term, "--out", out)

	term.answer("Slack admins", "ada@example.com")
	term.answer("Timezone", "Europe/Berlin")
	term.answer("Audit channel (optional)", "")
	term.answer("Managers' profile field (optional)", "Xf0MANAGER")
	term.answer("Systems", "payroll, crm, analytics")

	// payroll: manual, two steps, a new team.
	term.waitFor("System payroll")
	term.answer("Display name", "")
	term.answer("Description (optional)", "Salaries and payslips")
	term.answer("Owners", "frank.example.com") // wrong: not an email
	term.waitFor(`"frank.example.com" is not an email address`)
	term.send("\x15frank@example.com\r") // Ctrl-U clears the line
	term.answer("Owners' channel (optional)", "C0PAYROLL")
	term.answer("Digest", "weekly mon 09:00")
	term.answer("Connector", "")
	term.answer("Roles", "")
	term.waitFor("Role viewer of payroll")
	term.answer("Description (optional)", "View payslips")
	term.answer("Grant", "profile=view_only")
	term.answer("Who may request", "team:hr")
	term.answer("Who approves", "manager; owners")
	term.answer("Default duration", "")
	term.answer("Maximum duration", "4h")
	term.answer("Team hr", "grace@example.com, heidi@example.com")

	// crm: Salesforce; the connector's own checks and its secret.
	term.waitFor("System crm")
	term.answer("Display name", "Salesforce CRM")
	term.answer("Description (optional)", "")
	term.answer("Owners", "carol@example.com, erin@example.com")
	term.answer("Owners' channel (optional)", "")
	term.answer("Digest", "")
	term.answer("Connector", "salesforce_p\t") // Tab completes
	term.answer("Roles", "viewer")
	term.waitFor("Connector salesforce_permission_set for crm")
	term.answer("client_id", "") // required, says the connector
	term.waitFor("required (the connected app's consumer key)")
	term.send("3MVG9example\r")
	term.answer("username", "accessbot@example.com")
	term.answer("private_key comes from", "")
	term.waitFor("┃ Change its")
	term.send("y")
	term.answer("login_url", "")
	term.answer("token_url", "")
	term.answer("audience", "")
	term.answer("api_version", "")
	term.answer("user_field", "")
	term.answer("username_suffix", "")
	term.answer("set_expiration", "true")
	term.answer("timeout", "")
	term.waitFor("Role viewer of crm")
	term.answer("Description (optional)", "")
	term.answer("Grant", "permission_set=Support_Read_Only")
	term.answer("Who may request", "team:support")
	term.answer("Who approves", "owners")
	term.answer("Default duration", "2h")
	term.answer("Maximum duration", "")
	term.answer("Team support", "alice@example.com, dave@example.com")

	// analytics: Metabase, auto-approved; the grant checked by Metabase.
	term.waitFor("System analytics")
	term.answer("Display name", "")
	term.answer("Description (optional)", "")
	term.answer("Owners", "oscar@example.com")
	term.answer("Owners' channel (optional)", "")
	term.answer("Digest", "off")
	term.answer("Connector", "metabase_group")
	term.answer("Roles", "viewer")
	term.waitFor("Connector metabase_group for analytics")
	term.answer("url", "https://metabase.example.com")
	term.answer("api_key comes from", "/run/secrets/metabase_api_key")
	term.waitFor("┃ Change its")
	term.send("n")
	term.waitFor("Role viewer of analytics")
	term.answer("Description (optional)", "")
	term.answer("Grant", "group_id=twelve")
	term.waitFor("must be a positive integer")
	term.send("\x15group_id=12\r")
	term.answer("Who may request", "team:support, usergroup:S0MKTTEAM")
	term.answer("Who approves", "auto")
	term.answer("Default duration", "")
	term.answer("Maximum duration", "4h")

	term.waitFor("Summary")
	term.waitFor("Write the runbook?")
	term.send("y")
	r := <-res
	if r[0] != "" {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", len(r[0]), r[1], r[2])
	}
	if !strings.Contains(r[1], "Wrote "+out) || !strings.Contains(r[1], "CRM_PRIVATE_KEY") {
		t.Errorf("stdout:\n%s", r[1])
	}
	checkWrittenRunbook(t, out)
	data, _ := os.ReadFile(out)
	for _, want := range []string{"description: Salaries and payslips", "requesters: ['team:support', 'usergroup:S0MKTTEAM']", "set_expiration: true", "default_duration: 2h"} {
		if !strings.Contains(string(data), want) {
			t.Errorf("runbook lacks %q:\n%s", want, data)
		}
	}
}

// Ctrl-C anywhere in the form: nothing written, not even a temporary file.
func TestInitCtrlC(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "config.yaml")
	term := newTerminal(t)
	res := startInit(t, term, "--out", out)
	term.answer("Slack admins", "ada@example.com")
	term.answer("Timezone", "")
	term.answer("Audit channel (optional)", "")
	term.answer("Managers' profile field (optional)", "")
	term.answer("Systems", "payroll")
	term.answer("Display name", "")
	term.answer("Description (optional)", "half-way thr")
	term.send("\x03")
	r := <-res
	if len(r[0]) != 1 || !strings.Contains(r[2], "cancelled; nothing was written") {
		t.Errorf("exit %d\n%s%s", len(r[0]), r[1], r[2])
	}
	if files := dirFiles(t, dir); len(files) != 0 {
		t.Errorf("files left behind: %v", files)
	}
}

// Enter through a role's questions: the requesters default to a named
// team (asked for next), never everyone; the summary shows names with
// underscores as typed; lookup-only connector types are not offered.
func TestInitDefaultsAndVerbatimSummary(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "config.yaml")
	term := newTerminal(t)
	res := startInit(t, term, "--out", out)
	term.answer("Slack admins", "ada@example.com")
	term.answer("Timezone", "")
	term.answer("Audit channel (optional)", "")
	term.answer("Managers' profile field (optional)", "")
	term.answer("Systems", "crm_eu")
	term.waitFor("System crm_eu")
	term.answer("Display name", "")
	term.answer("Description (optional)", "")
	term.answer("Owners", "carol@example.com")
	term.answer("Owners' channel (optional)", "")
	term.answer("Digest", "")
	term.waitFor("┃ Connector")
	if drawn := term.drawn(); strings.Contains(drawn, "pagerduty") || strings.Contains(drawn, "zendesk_ticket") || strings.Contains(drawn, "opsgenie") {
		t.Errorf("lookup-only connector types offered:\n%s", drawn)
	}
	term.answer("Connector", "")
	term.answer("Roles", "read_only")
	term.waitFor("Role read_only of crm_eu")
	term.answer("Description (optional)", "")
	term.answer("Grant", "")
	term.answer("Who may request", "") // the default
	term.answer("Who approves", "")
	term.answer("Default duration", "")
	term.answer("Maximum duration", "")
	term.answer("Team crm_eu-users", "alice@example.com")
	term.waitFor("Write the runbook?")
	summary := term.drawn()
	for _, want := range []string{"crm_eu (Crm eu), owners carol@example.com, connector manual", "read_only: team:crm_eu-users may request"} {
		if !strings.Contains(summary, want) {
			t.Errorf("the summary lacks %q:\n%s", want, summary)
		}
	}
	term.send("y")
	r := <-res
	if r[0] != "" {
		t.Fatalf("exit %d\n%s\n%s", len(r[0]), r[1], r[2])
	}
	data, _ := os.ReadFile(out)
	if !strings.Contains(string(data), "requesters: ['team:crm_eu-users']") || strings.Contains(string(data), "everyone") {
		t.Errorf("runbook:\n%s", data)
	}
}

// The lookup-only types are not system connectors: init refuses them in
// answers, saying why.
func TestInitRefusesLookupConnectorTypes(t *testing.T) {
	for _, typ := range []string{"pagerduty", "opsgenie", "jira", "zendesk_ticket"} {
		if slices.Contains(initTypes(connectorRegistry().Types()), typ) {
			t.Errorf("init offers %s", typ)
		}
	}
	dir := t.TempDir()
	answers := filepath.Join(dir, "answers.yaml")
	os.WriteFile(answers, []byte(strings.Replace(initAnswersYAML, "connector: { type: manual }", "connector: { type: pagerduty }", 1)), 0o600)
	code, _, stderr := runInitCmd(t, "", "--from", answers, "--out", filepath.Join(dir, "config.yaml"))
	if code != exitBadUse || !strings.Contains(stderr, "systems[0].connector.type: pagerduty only answers lookups (who is on call, whether a ticket is open) and grants nothing") {
		t.Errorf("exit %d\n%s", code, stderr)
	}
}

// Without a terminal and without --from, init fails at once saying how to
// run it without one, and writes nothing.
func TestInitWithoutTerminal(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "config.yaml")
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	var stdout, stderr bytes.Buffer
	code := runInit([]string{"--out", out}, &stdout, &stderr, func(string) string { return "" }, initIO{in: r, out: &stdout})
	if code != exitBadUse || !strings.Contains(stderr.String(), "standard input is not a terminal, so the form cannot ask its questions") ||
		!strings.Contains(stderr.String(), "accessbot init --from ANSWERS.yaml") {
		t.Errorf("stdin a pipe: exit %d\n%s", code, stderr.String())
	}
	term := newTerminal(t)
	defer term.tty.Close()
	defer term.ptmx.Close()
	stderr.Reset()
	code = runInit([]string{"--out", out}, &stdout, &stderr, func(string) string { return "" }, initIO{in: term.tty, out: &bytes.Buffer{}})
	if code != exitBadUse || !strings.Contains(stderr.String(), "standard output is not a terminal") {
		t.Errorf("stdout redirected: exit %d\n%s", code, stderr.String())
	}
	if files := dirFiles(t, dir); len(files) != 0 {
		t.Errorf("files written: %v", files)
	}
}

// The form's notes show names verbatim: huh renders _…_ as italics.
func TestNoteTextKeepsUnderscores(t *testing.T) {
	text := "crm_admin: team:support_eu may request; *not* `code`"
	f := &formAsker{}
	view := ansi.Strip(f.note("Summary", text).WithWidth(120).View())
	if !strings.Contains(view, text) {
		t.Errorf("note shows %q, want %q", view, text)
	}
	if got := noteText(text, true); got != text {
		t.Errorf("accessible mode changes the text: %q", got)
	}
}
