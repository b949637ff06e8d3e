package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzLoadConfig feeds arbitrary bytes to loadConfigBytes, the whole of
// LoadConfig after reading the file: it never panics; a refusal is a
// *ConfigError listing at least one problem, each with a message, or a
// plain error with text; a success has a runbook.
func FuzzLoadConfig(f *testing.F) {
	if b, err := os.ReadFile(filepath.Join("..", "..", "config.example.yaml")); err == nil {
		f.Add(b)
	}
	for _, s := range []string{
		testRunbook, "", "{}", "slack: 3", "systems: [1, 2]", "- a\n- b", ":", "\t", "a: b: c",
		"slack:\n  bot_token: ${",
		"defaults:\n  max_duration: banana\n",
		"defaults:\n  max_duration: -1h\n",
		"systems:\n  crm:\n    roles:\n      viewer:\n        approval: { steps: [ { approvers: [nobody], min: -1 } ] }\n",
		"systems:\n  crm:\n    connector: nope\n    roles: { viewer: { approval: auto } }\n",
		"teams: { t: { members: [team:t] } }\nsystems: { s: { roles: { r: { requesters: [team:t] } } } }\n",
		"anchors: &a [*a]\n",
		"x: !!binary AAAA\n",
		"timezone: Mars/Olympus\n",
	} {
		f.Add([]byte(s))
	}
	env := map[string]string{"SLACK_APP_TOKEN": "xapp-1-fuzz", "SLACK_BOT_TOKEN": "xoxb-fuzz", "STORE_PATH": "/nonexistent/fuzz.db"}
	getenv := func(k string) string { return env[k] }
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := loadConfigBytes("fuzz.yaml", data, getenv)
		if err == nil {
			if cfg == nil || cfg.Runbook == nil {
				t.Fatalf("loadConfigBytes accepted %q without a runbook", data)
			}
			return
		}
		if cfg != nil {
			t.Fatalf("loadConfigBytes returned a config with error %v", err)
		}
		var ce *ConfigError
		if errors.As(err, &ce) {
			if len(ce.Problems) == 0 {
				t.Fatalf("loadConfigBytes(%q): *ConfigError with no problems", data)
			}
			for _, p := range ce.Problems {
				if strings.TrimSpace(p.Message) == "" {
					t.Fatalf("loadConfigBytes(%q): problem at %q without a message", data, p.Path)
				}
			}
		}
		if strings.TrimSpace(err.Error()) == "" {
			t.Fatalf("loadConfigBytes(%q): empty error text", data)
		}
	})
}
