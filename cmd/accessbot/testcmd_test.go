package main

import (
	"encoding/xml"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The example runbook's own policy tests pass: CI runs them through go
// test, so the example and its tests cannot drift apart.
func TestExampleRunbookCases(t *testing.T) {
	code, stdout, stderr := runCmd(t, "test", "--config", examplePath, "../../config.example.test.yaml")
	data, err := os.ReadFile("../../config.example.test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	n := strings.Count(string(data), "\n  - name: ")
	if want := fmt.Sprintf("%d case(s): %d passed, 0 failed", n, n); code != 0 || !strings.Contains(stdout, want) || strings.Contains(stdout, "FAIL") {
		t.Errorf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
}

// A runbook validate accepts, with two mistakes only its authors' intent
// reveals: the wrong (existing) team may request payroll, and a step whose
// team resolves to nobody silently falls back to the owner. The case file
// catches both, naming the rule that matched and the step that differs.
func TestHiddenMistakeCaught(t *testing.T) {
	if code, stdout, stderr := runCmd(t, "validate", "--config", "testdata/hidden-mistake.yaml"); code != 0 {
		t.Fatalf("validate should accept the runbook (the mistakes are hidden): exit %d\n%s%s", code, stdout, stderr)
	}
	junitPath := filepath.Join(t.TempDir(), "report.xml")
	code, stdout, stderr := runCmd(t, "test", "--config", "testdata/hidden-mistake.yaml", "--junit", junitPath, "testdata/hidden-mistake.test.yaml")
	if code != 1 {
		t.Errorf("exit %d, want 1\n%s%s", code, stdout, stderr)
	}
	for _, want := range []string{
		"FAIL  HR reads payroll with their manager, then finance",
		"hidden-mistake.test.yaml: line 5: cases[0]: as grace@example.com, request \"payroll viewer 2h\"",
		"allowed: expected true; the runbook refuses it: You may not request payroll viewer; it is for team:support.",
		"steps: step 2: expected U0FIONA01 (fiona@example.com); the runbook asks U0FRANK01 (team:finance -> nobody [team finance includes Slack user group S0FINANCE; resolves to nobody]; too few, so it falls back to the system owners)",
		"| requester rules: team:support no (not a member of team support (2 member(s)))",
		"FAIL  support may not read payroll",
		"allowed: expected false; the runbook allows it (rule team:support: a member of team support (2 member(s)))",
		"| requester rules: team:support MATCHED",
		"2 case(s): 0 passed, 2 failed",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, stdout)
		}
	}
	data, err := os.ReadFile(junitPath)
	if err != nil {
		t.Fatal(err)
	}
	var report struct {
		Tests    int `xml:"tests,attr"`
		Failures int `xml:"failures,attr"`
		Suites   []struct {
			Name  string `xml:"name,attr"`
			Cases []struct {
				Name    string `xml:"name,attr"`
				Failure *struct {
					Message string `xml:"message,attr"`
					Body    string `xml:",chardata"`
				} `xml:"failure"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	if err := xml.Unmarshal(data, &report); err != nil {
		t.Fatalf("JUnit report does not parse: %v\n%s", err, data)
	}
	if report.Tests != 2 || report.Failures != 2 || len(report.Suites) != 1 || len(report.Suites[0].Cases) != 2 {
		t.Fatalf("JUnit report: %+v", report)
	}
	c := report.Suites[0].Cases[0]
	if c.Name != "HR reads payroll with their manager, then finance" || c.Failure == nil ||
		!strings.HasPrefix(c.Failure.Message, "allowed: expected true") || !strings.Contains(c.Failure.Body, "steps: step 2") {
		t.Errorf("JUnit case: %+v", c)
	}
}

func TestCaseFileProblems(t *testing.T) {
	bad := writeFile(t, "bad.test.yaml", `
people:
  U0NEW0001: { email: new@example.com, usergroupz: [S0HRTEAM1] }
cases:
  - name: typo in an expectation
    as: U0ALICE01
    request: crm viewer
    expect: { alowed: true, steps: [U0BOB0001] }
  - name: typo in a case key
    as: U0ALICE01
    requst: crm viewer
    expect: { allowed: true, max_duration: forever, auto: yes please }
  - name: typo in an expectation
    as: U0ALICE01
    request: crm viewer
    expect: {}
  - as: U0ALICE01
    request: crm viewer
    expect: { allowed: true, error: nope }
settings: {}
`)
	code, stdout, stderr := runCmd(t, "test", "--config", examplePath, bad)
	if code != 1 || stdout != "" {
		t.Errorf("exit %d, stdout %q", code, stdout)
	}
	for _, want := range []string{
		`line 3: people.U0NEW0001.usergroupz: unknown key; did you mean "usergroups"?`,
		`line 8: cases[0].expect.alowed: unknown key; did you mean "allowed"?`,
		"cases[0].expect.steps[0]: expected a list of the people asked in this step",
		`line 11: cases[1].requst: unknown key; did you mean "request"?`,
		"cases[1].request: missing",
		`cases[1].expect.max_duration: "forever" is not a duration`,
		"cases[1].expect.auto: must be true or false",
		`cases[2].name: "typo in an expectation" is also the name of cases[0]`,
		"cases[2].expect: expected a mapping with at least one of allowed, auto",
		"cases[3].name: missing",
		"cases[3].expect.error: expects a refusal, but allowed is true",
		"line 20: settings: unknown key",
		"no case was run",
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
}

func TestCaseErrorsAndFailures(t *testing.T) {
	cases := writeFile(t, "c.test.yaml", `
cases:
  - name: a person nobody names
    as: U0ALICX01
    request: crm viewer
    expect: { allowed: true }
  - name: not a request
    as: U0ALICE01
    request: list
    expect: { allowed: true }
  - name: a bad duration
    as: U0ALICE01
    request: crm viewer banana
    expect: { allowed: true }
  - name: an approver nobody names
    as: U0ALICE01
    request: crm viewer
    expect: { steps: [[U0BOB0001], [U0CAROL02]] }
  - name: wrong maximum, auto and approver
    as: U0ALICE01
    request: crm viewer
    expect: { max_duration: 4h, auto: true, not_approvers: [U0ERIN001] }
  - name: wrong step count
    as: U0ALICE01
    request: crm admin
    expect: { steps: [[U0CAROL01, U0ERIN001], [U0ADMIN01]] }
  - name: error text that differs
    as: U0ALICE01
    request: payroll viewer
    expect: { error: it is for team:support }
  - name: expects a refusal of an allowed request
    as: U0ALICE01
    request: crm viewer
    expect: { error: may not }
  - name: expects steps of an auto role
    as: U0ALICE01
    request: analytics viewer
    expect: { auto: false, steps: [[U0OSCAR01]] }
  - name: passes
    as: U0ALICE01
    request: crm viewer
    expect: { allowed: true }
`)
	junitPath := filepath.Join(t.TempDir(), "out", "r.xml")
	code, stdout, stderr := runCmd(t, "test", "--config", examplePath, cases, "--junit", junitPath)
	if code != 1 {
		t.Errorf("exit %d", code)
	}
	for _, want := range []string{
		"cannot evaluate: as: U0ALICX01 is neither in the runbook nor in the people section",
		"cannot evaluate: request: not a request",
		"cannot evaluate: request: “banana” is not a duration",
		"cannot evaluate: steps[1]: U0CAROL02 is neither in the runbook nor in the people section",
		"max_duration: expected 4h; the runbook says 8h (set at systems.crm.roles.viewer.max_duration)",
		"auto: expected true; the role has 2 approval step(s)",
		"not_approvers: U0ERIN001 would be asked in step 2 (owners -> U0CAROL01, U0ERIN001)",
		"steps: expected 2 step(s); the runbook has 1 step(s): step 1 asks U0CAROL01, U0ERIN001",
		`error: expected a refusal containing "it is for team:support"; the runbook says: You may not request payroll viewer; it is for team:hr.`,
		`error: expected a refusal containing "may not"; the runbook allows it (rule team:support: a member of team support (3 member(s)))`,
		"auto: expected false; the role has approval: auto",
		"steps: expected 1 step(s); the runbook has no approval steps (approval: auto)",
		"ok    passes",
		"10 case(s): 1 passed, 9 failed",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, stdout)
		}
	}
	if stderr != "" {
		t.Errorf("stderr: %s", stderr)
	}
	// The report's directory is created; errors and failures are told apart.
	data, err := os.ReadFile(junitPath)
	if err != nil {
		t.Fatal(err)
	}
	var report struct {
		Tests    int `xml:"tests,attr"`
		Failures int `xml:"failures,attr"`
		Errors   int `xml:"errors,attr"`
	}
	if err := xml.Unmarshal(data, &report); err != nil || report.Tests != 10 || report.Failures != 5 || report.Errors != 4 {
		t.Errorf("JUnit totals %+v (%v), want 10 tests, 5 failures, 4 errors", report, err)
	}
	if code, _, stderr := runCmd(t, "test", "--config", examplePath); code != 1 || !strings.Contains(stderr, "name at least one case file") {
		t.Errorf("no files: exit %d %s", code, stderr)
	}
	if code, _, stderr := runCmd(t, "test", "--config", examplePath, "testdata/absent.test.yaml"); code != 1 || !strings.Contains(stderr, "absent.test.yaml") {
		t.Errorf("absent file: exit %d %s", code, stderr)
	}
}
