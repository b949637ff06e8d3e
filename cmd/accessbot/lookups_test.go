package main

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/accessbot/accessbot/access"
)

// policyBase has one lookup connector of each type and a role whose keys
// the test fills in.
const policyBase = `
slack: { admins: [U0ADMIN01] }
timezone: Europe/Berlin
connectors:
  desk: { type: manual }
  pd:
    type: pagerduty
    token: ${PD_TOKEN}
  og:
    type: opsgenie
    api_key: ${OG_KEY}
  jira:
    type: jira
    url: https://acme.atlassian.net
    email: bot@acme.example
    api_token: ${JIRA_TOKEN}
  zd:
    type: zendesk_ticket
    subdomain: acme
    email: bot@acme.example
    api_token: ${ZD_TOKEN}
systems:
  s:
    owners: [U0CAROL01]
    connector: %s
    roles:
      r:
        requesters: [everyone]
%s
`

func loadPolicy(t *testing.T, connector, role string) (*Config, error) {
	t.Helper()
	return LoadConfig(writeConfig(t, fmt.Sprintf(policyBase, connector, role)), env(nil))
}

func TestPolicyKeys(t *testing.T) {
	berlin, _ := time.LoadLocation("Europe/Berlin")
	tokyo, _ := time.LoadLocation("Asia/Tokyo")
	steps := "        approval:\n          steps:\n            - approvers: [owners]\n"
	tests := []struct {
		name, role string
		check      func(r *access.Role) string // valid: what to check
		path, says string                      // invalid: the one problem
	}{
		{name: "windows in the runbook's timezone, refused outside by default",
			role: steps + "        windows: [\"mon-fri 08:00-18:00\", \"22:00-02:00\"]\n",
			check: func(r *access.Role) string {
				if len(r.Windows) != 2 || r.OutsideWindow != access.OutsideRefuse || r.Location != nil {
					return fmt.Sprintf("windows %v, outside %q, location %v", r.Windows, r.OutsideWindow, r.Location)
				}
				// Saturday 23:00 in Berlin is inside the overnight window.
				if !r.Windows.Contains(time.Date(2026, 3, 28, 23, 0, 0, 0, berlin), berlin) {
					return "Saturday 23:00 is outside"
				}
				return ""
			}},
		{name: "role timezone and approve with auto",
			role: "        approval: auto\n        windows: [\"sat 10:00-14:00\"]\n        timezone: Asia/Tokyo\n        outside_window: APPROVE\n",
			check: func(r *access.Role) string {
				if r.Location == nil || r.Location.String() != tokyo.String() || r.OutsideWindow != access.OutsideApprove || !r.Approval.Auto {
					return fmt.Sprintf("location %v, outside %q", r.Location, r.OutsideWindow)
				}
				// Outside the window the owners approve.
				if fmt.Sprint(r.Approval.Steps) != fmt.Sprint([]access.StepPolicy{{Sources: []access.Source{{Kind: access.SourceOwners}}, Min: 1}}) {
					return fmt.Sprintf("fallback steps %v", r.Approval.Steps)
				}
				return ""
			}},
		{name: "a bad day, named", role: steps + "        windows: [\"mon-fri 08:00-18:00\", \"mon-fry 08:00-18:00\"]\n",
			path: "systems.s.roles.r.windows[1]", says: `"mon-fry 08:00-18:00": "fry" is not a day; use mon, tue, wed, thu, fri, sat or sun (did you mean "fri"?)`},
		{name: "a bad time", role: steps + "        windows: [\"sat 10:00-25:00\"]\n",
			path: "systems.s.roles.r.windows[0]", says: `end "25:00" is not a time of day`},
		{name: "empty windows", role: steps + "        windows: []\n",
			path: "systems.s.roles.r.windows", says: "empty: list at least one window"},
		{name: "windows not a list", role: steps + "        windows: mon-fri 08:00-18:00\n",
			path: "systems.s.roles.r.windows", says: "expected a list"},
		{name: "bad timezone", role: steps + "        windows: [\"08:00-18:00\"]\n        timezone: Europe/Berlinn\n",
			path: "systems.s.roles.r.timezone", says: "not a known timezone"},
		{name: "bad outside_window", role: steps + "        windows: [\"08:00-18:00\"]\n        outside_window: deny\n",
			path: "systems.s.roles.r.outside_window", says: `"deny" is not allowed; use approve`},
		{name: "outside_window typo", role: steps + "        windows: [\"08:00-18:00\"]\n        outside_windw: refuse\n",
			path: "systems.s.roles.r.outside_windw", says: `did you mean "outside_window"?`},

		{name: "on call", role: "        approval:\n          auto_if_on_call: pd:P1ABC2D\n          steps:\n            - approvers: [owners]\n",
			check: func(r *access.Role) string {
				if oc := r.Approval.AutoIfOnCall; oc == nil || *oc != (access.OnCallRule{Source: "pd", Schedule: "P1ABC2D"}) || len(r.Approval.Steps) != 1 {
					return fmt.Sprintf("approval %+v", r.Approval)
				}
				return ""
			}},
		{name: "on call with opsgenie by name", role: "        approval:\n          auto_if_on_call: \"og:Platform rota\"\n          steps:\n            - approvers: [owners]\n",
			check: func(r *access.Role) string {
				if oc := r.Approval.AutoIfOnCall; oc == nil || oc.Schedule != "Platform rota" {
					return fmt.Sprintf("approval %+v", r.Approval)
				}
				return ""
			}},
		{name: "on call without steps", role: "        approval:\n          auto_if_on_call: pd:P1ABC2D\n",
			path: "systems.s.roles.r.approval.steps", says: "missing: auto_if_on_call needs steps for requesters who are not on call"},
		{name: "on call without schedule", role: "        approval:\n          auto_if_on_call: pd\n          steps:\n            - approvers: [owners]\n",
			path: "systems.s.roles.r.approval.auto_if_on_call", says: `"pd" is not NAME:SCHEDULE`},
		{name: "on call from an undefined connector", role: "        approval:\n          auto_if_on_call: pdd:P1\n          steps:\n            - approvers: [owners]\n",
			path: "systems.s.roles.r.approval.auto_if_on_call", says: `"pdd" is not defined under connectors; auto_if_on_call needs a connector of type pagerduty or opsgenie; did you mean "pd"? (defined: og, pd)`},
		{name: "on call from a ticket connector", role: "        approval:\n          auto_if_on_call: jira:P1\n          steps:\n            - approvers: [owners]\n",
			path: "systems.s.roles.r.approval.auto_if_on_call", says: `connector "jira" is of type jira; auto_if_on_call needs a connector of type pagerduty or opsgenie`},
		{name: "on call key typo", role: "        approval:\n          auto_if_oncall: pd:P1\n          steps:\n            - approvers: [owners]\n",
			path: "systems.s.roles.r.approval.auto_if_oncall", says: `did you mean "auto_if_on_call"?`},

		{name: "ticket checked in Jira", role: steps + "        ticket:\n          pattern: \"^(SUP|INC)-[0-9]+$\"\n          verify: jira\n",
			check: func(r *access.Role) string {
				if r.Ticket == nil || r.Ticket.Verify != "jira" || r.Ticket.Pattern != "^(SUP|INC)-[0-9]+$" || !r.Ticket.Matches("SUP-1") {
					return fmt.Sprintf("ticket %+v", r.Ticket)
				}
				return ""
			}},
		{name: "ticket checked in Zendesk", role: steps + "        ticket: { pattern: \"ZD-[0-9]+\", verify: zd }\n",
			check: func(r *access.Role) string {
				if r.Ticket == nil || r.Ticket.Verify != "zd" {
					return fmt.Sprintf("ticket %+v", r.Ticket)
				}
				return ""
			}},
		{name: "ticket pattern only", role: steps + "        ticket: { pattern: \"^[A-Z]+-[0-9]+$\" }\n",
			check: func(r *access.Role) string {
				if r.Ticket == nil || r.Ticket.Verify != "" {
					return fmt.Sprintf("ticket %+v", r.Ticket)
				}
				return ""
			}},
		{name: "ticket pattern does not compile", role: steps + "        ticket: { pattern: \"^(SUP|INC-[0-9]+$\", verify: jira }\n",
			path: "systems.s.roles.r.ticket.pattern", says: `"^(SUP|INC-[0-9]+$" is not a regular expression: missing closing )`},
		{name: "ticket pattern matches nothing required", role: steps + "        ticket: { pattern: \".*\" }\n",
			path: "systems.s.roles.r.ticket.pattern", says: "matches an empty reference"},
		{name: "ticket without pattern", role: steps + "        ticket: { verify: jira }\n",
			path: "systems.s.roles.r.ticket.pattern", says: "missing: a regular expression"},
		{name: "ticket verified by an on-call connector", role: steps + "        ticket: { pattern: \"^X-[0-9]+$\", verify: pd }\n",
			path: "systems.s.roles.r.ticket.verify", says: `connector "pd" is of type pagerduty; ticket.verify needs a connector of type jira or zendesk_ticket; did you mean "zd"? (defined: jira, zd)`},
		{name: "ticket key typo", role: steps + "        ticket: { pattern: \"^X-[0-9]+$\", verfy: jira }\n",
			path: "systems.s.roles.r.ticket.verfy", says: `did you mean "verify"?`},
		{name: "ticket as a scalar", role: steps + "        ticket: required\n",
			path: "systems.s.roles.r.ticket", says: "expected a mapping with keys pattern, verify"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := loadPolicy(t, "desk", tt.role)
			if tt.path == "" {
				if err != nil {
					t.Fatalf("want valid, got %v", err)
				}
				if msg := tt.check(cfg.Runbook.Systems["s"].Roles["r"]); msg != "" {
					t.Error(msg)
				}
				return
			}
			ps := problemsOf(t, err)
			if len(ps) != 1 || ps[0].Path != tt.path || !strings.Contains(ps[0].Message, tt.says) {
				t.Errorf("want one problem %s: …%s…, got:\n%s", tt.path, tt.says, joinProblems(ps))
			}
		})
	}
}

func TestPolicyKeysWarnings(t *testing.T) {
	steps := "        approval:\n          steps:\n            - approvers: [owners]\n"
	tests := []struct{ name, role, warning string }{
		{"approve on a role with no automatic approval", steps + "        windows: [\"08:00-18:00\"]\n        outside_window: approve\n",
			"systems.s.roles.r.outside_window: approve only stops automatic approval outside the windows, and this role has none"},
		{"timezone without windows", steps + "        timezone: Asia/Tokyo\n",
			"systems.s.roles.r.timezone: only windows are read in the role's timezone"},
		{"outside_window without windows", steps + "        outside_window: refuse\n",
			"systems.s.roles.r.outside_window: this role has no windows"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := loadPolicy(t, "desk", tt.role)
			if err != nil {
				t.Fatal(err)
			}
			if !containsLine(cfg.Warnings, tt.warning) {
				t.Errorf("warnings lack %q:\n%s", tt.warning, strings.Join(cfg.Warnings, "\n"))
			}
		})
	}
}

func TestLookupConnectorCannotGrant(t *testing.T) {
	_, err := loadPolicy(t, "pd", "        approval: auto\n")
	ps := problemsOf(t, err)
	if len(ps) != 1 || ps[0].Path != "systems.s.connector" || !strings.Contains(ps[0].Message, `connector "pd" is of type pagerduty, which only answers lookups`) {
		t.Errorf("problems:\n%s", joinProblems(ps))
	}
}

// A lookup connector a role names is used: run builds it and needs its
// secrets; one nobody names is not.
func TestLookupConnectorsAreUsedByRoles(t *testing.T) {
	role := "        approval:\n          auto_if_on_call: pd:P1\n          steps:\n            - approvers: [owners]\n" +
		"        ticket: { pattern: \"^SUP-[0-9]+$\", verify: jira }\n"
	cfg, err := loadPolicy(t, "desk", role)
	if err != nil {
		t.Fatal(err)
	}
	used := cfg.usedConnectors()
	if !used["pd"] || !used["jira"] || used["og"] || used["zd"] {
		t.Errorf("usedConnectors = %v", used)
	}
	err = cfg.RequireForRun()
	if err == nil || !strings.Contains(err.Error(), "connectors.pd.token") || !strings.Contains(err.Error(), "connectors.jira.api_token") ||
		strings.Contains(err.Error(), "connectors.og.") || strings.Contains(err.Error(), "connectors.zd.") {
		t.Errorf("RequireForRun = %v", err)
	}
	for _, w := range []string{"connectors.og is not used by any system or role", "connectors.zd is not used by any system or role"} {
		if !containsLine(cfg.Warnings, w) {
			t.Errorf("warnings lack %q", w)
		}
	}
	if containsLine(cfg.Warnings, "connectors.pd is not used") || containsLine(cfg.Warnings, "connectors.jira is not used") {
		t.Errorf("a role's lookup connector reported unused: %v", cfg.Warnings)
	}

	// validate builds every block through the registry: the new types are
	// registered and check their own keys.
	probs, _ := validateConnectors(cfg, connectorRegistry(), connectorsEnv())
	if len(probs) != 0 {
		t.Errorf("validate: %s", joinProblems(probs))
	}
	broken := strings.Replace(fmt.Sprintf(policyBase, "desk", role), "url: https://acme.atlassian.net", "url: http://acme.atlassian.net", 1)
	cfg = mustLoad(t, writeConfig(t, broken), env(nil))
	probs, _ = validateConnectors(cfg, connectorRegistry(), connectorsEnv())
	if !slices.ContainsFunc(probs, func(p Problem) bool {
		return p.Path == "connectors.jira.url" && strings.Contains(p.Message, "https")
	}) {
		t.Errorf("validate of a jira block with http: %s", joinProblems(probs))
	}
}
