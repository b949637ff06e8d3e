package connectors_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/connectors"
)

type sub struct {
	GroupID string `json:"group_id"`
}

type testConfig struct {
	URL     string              `json:"url"`
	Token   connectors.Redacted `json:"token"`
	Timeout connectors.Duration `json:"timeout"`
	Retries int                 `json:"retries"`
	Nested  sub                 `json:"nested"`
	Roles   map[string]sub      `json:"roles"`
}

func (c *testConfig) Validate() error {
	var errs []error
	if c.URL == "" {
		errs = append(errs, errors.New("url: required"))
	}
	if c.Retries < 0 {
		errs = append(errs, errors.New("retries: must not be negative"))
	}
	return errors.Join(errs...)
}

func config(raw map[string]any) connectors.Config {
	return connectors.Config{Name: "crm", Raw: raw}
}

func TestDecode(t *testing.T) {
	var c testConfig
	err := config(map[string]any{
		"type": "x", "url": "https://e.example", "token": "tok", "timeout": "1d", "retries": 3,
		"nested": map[string]any{"group_id": "g1"},
		"roles":  map[any]any{"viewer": map[string]any{"group_id": "g2"}},
	}).Decode(&c)
	if err != nil {
		t.Fatal(err)
	}
	if c.URL != "https://e.example" || c.Token != "tok" || c.Timeout.Std() != 24*time.Hour || c.Retries != 3 ||
		c.Nested.GroupID != "g1" || c.Roles["viewer"].GroupID != "g2" {
		t.Fatalf("decoded %+v", c)
	}
	if s := fmt.Sprintf("%v %+v %#v %s", c, c, c.Token, c.Token); strings.Contains(s, "tok}") || strings.Contains(s, "tok ") {
		t.Fatalf("Redacted printed: %s", s)
	}
}

func TestDecodeErrorsNameKeyPaths(t *testing.T) {
	var c testConfig
	err := config(map[string]any{
		"url": "https://e.example", "tiemout": "5s", "retries": "SECRETVALUE",
		"nested": map[string]any{"groupid": "g"},
		"roles":  map[string]any{"viewer": map[string]any{"group": "g"}},
	}).Decode(&c)
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{
		`connectors.crm.tiemout: unknown key; did you mean "timeout"?`,
		`connectors.crm.retries: must be a whole number, not string`,
		`connectors.crm.nested.groupid: unknown key; did you mean "group_id"?`,
		`connectors.crm.roles.viewer.group: unknown key`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in:\n%v", want, err)
		}
	}
	if strings.Contains(err.Error(), "SECRETVALUE") {
		t.Errorf("error echoes a value: %v", err)
	}

	err = config(map[string]any{"timeout": "banana", "retries": -1}).Decode(&c)
	if err == nil || !strings.Contains(err.Error(), "connectors.crm.timeout:") {
		t.Fatalf("bad duration: %v", err)
	}
	var fresh testConfig
	err = config(map[string]any{"retries": -1}).Decode(&fresh)
	for _, want := range []string{"connectors.crm.url: required", "connectors.crm.retries: must not be negative"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate errors not qualified: missing %q in %v", want, err)
		}
	}
}

func TestSecret(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "tok")
	os.WriteFile(file, []byte("  s3cret\n"), 0o600)
	reg := connectors.NewRegistry()
	var got connectors.Config
	reg.Add("probe", func(name string, cfg connectors.Config) (access.Connector, error) {
		got = cfg
		return nil, nil
	})
	build := func(raw map[string]any) connectors.Config {
		if _, err := reg.Build("crm", "probe", raw, connectors.Env{}); err != nil {
			t.Fatal(err)
		}
		return got
	}
	if s, err := build(map[string]any{"token": "abc"}).Secret("token"); err != nil || s != "abc" {
		t.Fatalf("value: %q %v", s, err)
	}
	if s, err := build(map[string]any{"token_file": file}).Secret("token"); err != nil || s != "s3cret" {
		t.Fatalf("file: %q %v", s, err)
	}
	_, err := build(map[string]any{}).Secret("token")
	if !errors.Is(err, connectors.ErrNoSecret) || !strings.Contains(err.Error(), "connectors.crm.token: required") {
		t.Fatalf("missing: %v", err)
	}
	_, err = build(map[string]any{"token": "SECRETVALUE", "token_file": file}).Secret("token")
	if err == nil || strings.Contains(err.Error(), "SECRETVALUE") {
		t.Fatalf("both: %v", err)
	}
	_, err = build(map[string]any{"token_file": filepath.Join(dir, "absent")}).Secret("token")
	if err == nil || !strings.Contains(err.Error(), "connectors.crm.token_file:") {
		t.Fatalf("absent file: %v", err)
	}
	if got.HTTP == nil || got.Clock == nil {
		t.Fatal("Build did not fill Env defaults")
	}
}

func TestRegistry(t *testing.T) {
	reg := connectors.NewRegistry()
	f := func(string, connectors.Config) (access.Connector, error) { return nil, nil }
	reg.Add("webhook", f)
	reg.Add("okta_group", f)
	if got := strings.Join(reg.Types(), ","); got != "okta_group,webhook" {
		t.Fatalf("Types = %s", got)
	}
	_, err := reg.Build("automation", "webhok", nil, connectors.Env{})
	if err == nil || !strings.Contains(err.Error(), `connectors.automation.type: unknown connector type "webhok" (known: okta_group, webhook); did you mean "webhook"?`) {
		t.Fatalf("unknown type: %v", err)
	}
}
