package main

import (
	"bytes"
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
