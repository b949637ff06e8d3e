package main

import (
	"errors"
	"fmt"
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
