package main

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/connectors"
)

func TestValidateConnectors(t *testing.T) {
	const text = `
slack: { admins: [U0ADMIN01] }
connectors:
  good: { type: fake, url: "https://x.example.com/" }
  bad: { type: fake, url: "not-a-url", token: LEAKYTOKEN123 }
  unset: { type: fake, url: "https://x.example.com/", token: "${UNSET}" }
  typo: { type: fak }
  later: { type: okta_group }
systems:
  s:
    owners: [U0CAROL01]
    connector: good
    roles:
      r: { requesters: [everyone], approval: auto }
`
	cfg := mustLoad(t, writeConfig(t, text), nil)
	reg := connectors.NewRegistry()
	reg.Add("fake", func(name string, c connectors.Config) (access.Connector, error) {
		var errs []error
		if u, _ := c.Raw["url"].(string); !strings.HasPrefix(u, "https://") {
			// A careless factory that echoes values.
			errs = append(errs, fmt.Errorf("connectors.%s.url: %q is not https (token %v)", name, u, c.Raw["token"]))
		}
		if _, err := c.Secret("token"); err != nil && c.Raw["token"] != nil {
			errs = append(errs, err)
		}
		return nil, errors.Join(errs...)
	})
	probs, warns := validateConnectors(cfg, reg, connectors.Env{})
	got := joinProblems(probs)
	for _, want := range []string{"connectors.bad.url: ", "connectors.typo.type: unknown connector type", "connectors.later.type: unknown connector type"} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %q in:\n%s", want, got)
		}
	}
	if len(probs) != 3 {
		t.Errorf("want 3 problems (the unset secret is only a warning), got:\n%s", got)
	}
	if strings.Contains(got, "LEAKYTOKEN123") {
		t.Errorf("secret in problems:\n%s", got)
	}
	if len(warns) != 0 {
		t.Errorf("warnings = %v", warns)
	}
}

// fakeParams is a connector type with the ParamsChecker capability: it
// wants exactly one grant parameter, group_id, starting with "g".
type fakeParams struct{ access.Connector }

func (fakeParams) CheckParams(p map[string]string) error {
	var errs []error
	if p["group_id"] == "" {
		errs = append(errs, errors.New("group_id: required"))
	} else if !strings.HasPrefix(p["group_id"], "g") {
		errs = append(errs, fmt.Errorf("group_id: %q does not start with g", p["group_id"]))
	}
	for k := range p {
		if k != "group_id" {
			errs = append(errs, fmt.Errorf("%s: unknown parameter", k))
		}
	}
	return errors.Join(errs...)
}

func TestConnectorGrantParams(t *testing.T) {
	const text = `
slack: { admins: [U0ADMIN01] }
connectors:
  checked: { type: fake, token: "${FAKE_TOKEN}" }
  plain: { type: plain }
systems:
  crm:
    owners: [U0CAROL01]
    connector: checked
    roles:
      good: { grant: { group_id: g1 }, requesters: [everyone], approval: auto }
      typo: { grant: { groupid: g1 }, requesters: [everyone], approval: auto }
      wrong: { grant: { group_id: x1 }, requesters: [everyone], approval: auto }
  wiki:
    owners: [U0CAROL01]
    connector: plain
    roles:
      any: { grant: { whatever: 1 }, requesters: [everyone], approval: auto }
`
	reg := connectors.NewRegistry()
	reg.Add("fake", func(name string, c connectors.Config) (access.Connector, error) {
		if _, err := c.Secret("token"); err != nil {
			return nil, err // built only with a secret: validate uses a placeholder
		}
		return fakeParams{}, nil
	})
	reg.Add("plain", func(string, connectors.Config) (access.Connector, error) { return fakeParams{}.Connector, nil })

	want := []string{
		"systems.crm.roles.typo.grant.group_id: required",
		"systems.crm.roles.typo.grant.groupid: unknown parameter",
		`systems.crm.roles.wrong.grant.group_id: "x1" does not start with g`,
	}
	for _, secret := range []string{"", "s3cret"} {
		cfg := mustLoad(t, writeConfig(t, text), env(map[string]string{"FAKE_TOKEN": secret}))
		probs, _ := validateConnectors(cfg, reg, connectors.Env{})
		var got []string
		for _, p := range probs {
			got = append(got, p.String())
		}
		if !slices.Equal(got, want) {
			t.Errorf("token %q: validate problems\n%s\nwant\n%s", secret, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
		if got := joinProblems(validateUsedConnectors(cfg, reg, connectors.Env{})); got != joinProblems(probs) {
			t.Errorf("run and validate disagree:\n%s\n%s", got, joinProblems(probs))
		}
	}
}

func TestConnectorRunBuildsOnlyUsed(t *testing.T) {
	const text = `
slack: { app_token: xapp-1-x, bot_token: xoxb-1-x, admins: [U0ADMIN01] }
store: { path: "${STORE}" }
connectors:
  desk: { type: manual }
  broken: { type: nonsense }
  okta: { type: okta_group, org_url: "https://x.okta.com", token: "${OKTA_TOKEN}" }
systems:
  crm:
    owners: [U0CAROL01]
    connector: desk
    roles:
      viewer: { requesters: [everyone], approval: auto }
`
	cfg := mustLoad(t, writeConfig(t, text), env(map[string]string{"STORE": filepath.Join(t.TempDir(), "a.db")}))
	if probs, _ := validateConnectors(cfg, connectorRegistry(), connectorsEnv()); len(probs) != 1 || probs[0].Path != "connectors.broken.type" {
		t.Errorf("validate checks every block: %v", probs)
	}
	if probs := validateUsedConnectors(cfg, connectorRegistry(), connectorsEnv()); len(probs) != 0 {
		t.Errorf("run checks only used connectors: %v", probs)
	}
	if err := cfg.RequireForRun(); err != nil {
		t.Errorf("RequireForRun = %v", err)
	}
	app, err := NewApp(cfg, AppOptions{StoreNoSync: true})
	if err != nil {
		t.Fatalf("NewApp: %v", err)
	}
	defer app.Close()
	if _, ok := app.Connectors["desk"]; !ok || len(app.Connectors) != 1 {
		t.Errorf("NewApp built %v, want only desk", app.Connectors)
	}
}
