package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The demo is the README's run command: it must tell the whole story and
// leave an audit log that verifies, and that stops verifying once edited.
func TestDemoAndAuditVerify(t *testing.T) {
	audit := filepath.Join(t.TempDir(), "audit.jsonl")
	getenv := func(k string) string {
		if k == "ACCESSBOT_AUDIT_FILE" {
			return audit
		}
		return ""
	}
	var out, errOut bytes.Buffer
	if code := run([]string{"demo", "--config", "../../config.example.yaml"}, &out, &errOut, getenv); code != 0 {
		t.Fatalf("demo exit %d: %s\n%s", code, errOut.String(), out.String())
	}
	for _, want := range []string{
		"Alice types: /access crm viewer 2h",
		"[Approve] [Deny]",
		"you now have Salesforce CRM",
		"[Extend 2h] [I'm done]",
		"remove alice@example.com",
		"expired and has been removed",
		"was denied by @Heidi",
		"hash chain intact",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("demo output lacks %q", want)
		}
	}

	out.Reset()
	if code := run([]string{"audit", "verify", audit}, &out, &errOut, getenv); code != 0 {
		t.Fatalf("audit verify of the demo's log: exit %d: %s", code, errOut.String())
	}
	data, err := os.ReadFile(audit)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) < 8 {
		t.Fatalf("only %d audit records", len(lines))
	}
	edited := strings.Replace(lines[3], `"actor":"U0`, `"actor":"U9`, 1)
	if edited == lines[3] {
		t.Fatalf("record 4 has no actor to edit: %s", lines[3])
	}
	lines[3] = edited
	if err := os.WriteFile(audit, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	errOut.Reset()
	if code := run([]string{"audit", "verify", audit}, &out, &errOut, getenv); code != 1 {
		t.Fatalf("audit verify accepted an edited log (exit %d)", code)
	}
	if !strings.Contains(errOut.String(), "after 3 good record") {
		t.Errorf("verify did not pinpoint the edited record: %s", errOut.String())
	}
}

// demo plays one story, written for config.example.yaml: a runbook it
// does not fit is refused at once, saying why and pointing at sandbox,
// instead of being half-played.
func TestDemoRefusesARunbookItDoesNotFit(t *testing.T) {
	data, err := os.ReadFile("../../config.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	oneStep := strings.Replace(string(data), `          steps:
            - approvers: [manager]
            - approvers: [owners]
        default_duration: 2h`, `          steps:
            - approvers: [owners]
        default_duration: 2h`, 1)
	if oneStep == string(data) {
		t.Fatal("the example changed: edit the test")
	}
	edited := filepath.Join(t.TempDir(), "edited.yaml")
	if err := os.WriteFile(edited, []byte(oneStep), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ config, want string }{
		{"testdata/other-runbook.yaml", `the story types /access, and slack.command is /jit; Alice crm viewer 2h is refused: There is no system called "crm"`},
		{edited, "Alice crm viewer 2h has 1 approval step(s), and the story has 2"},
	} {
		var out, errOut bytes.Buffer
		code := run([]string{"demo", "--config", tc.config}, &out, &errOut, func(string) string { return "" })
		if code != exitBadUse || out.Len() != 0 {
			t.Errorf("%s: exit %d, stdout %q", tc.config, code, out.String())
		}
		for _, want := range []string{"does not fit the demo's story, which is written for config.example.yaml", tc.want, "use accessbot sandbox --config " + tc.config} {
			if !strings.Contains(errOut.String(), want) {
				t.Errorf("%s: stderr lacks %q:\n%s", tc.config, want, errOut.String())
			}
		}
	}
}
