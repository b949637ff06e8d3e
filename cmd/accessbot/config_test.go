package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/accessbot/accessbot/access"
)

const examplePath = "../../config.example.yaml"

// env returns a getenv over m.
func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

// writeConfig writes text to a file in a fresh temporary directory.
func writeConfig(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func mustLoad(t *testing.T, path string, getenv func(string) string) *Config {
	t.Helper()
	cfg, err := LoadConfig(path, getenv)
	if err != nil {
		t.Fatalf("LoadConfig(%s): %v", path, err)
	}
	return cfg
}

func problemsOf(t *testing.T, err error) []Problem {
	t.Helper()
	var ce *ConfigError
	if !errors.As(err, &ce) {
		t.Fatalf("want a *ConfigError, got %v", err)
	}
	return ce.Problems
}

// TestExampleConfig keeps config.example.yaml from rotting: it must load,
// mean what its comments say, and need only secrets from the environment.
func TestExampleConfig(t *testing.T) {
	cfg := mustLoad(t, examplePath, env(nil))
	rb := cfg.Runbook

	data, err := os.ReadFile(examplePath)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	if rb.Hash != hex.EncodeToString(sum[:]) {
		t.Errorf("Hash = %q, want the SHA-256 of the file", rb.Hash)
	}
	if got := rb.SystemIDs(); !slices.Equal(got, []string{"analytics", "crm", "payroll", "warehouse"}) {
		t.Errorf("systems = %v", got)
	}
	if rb.Location == nil || rb.Location.String() != "Europe/Berlin" {
		t.Errorf("Location = %v", rb.Location)
	}
	if cfg.Slack.APIURL != "https://slack.com/api/" || cfg.Slack.Command != "/access" {
		t.Errorf("slack = %+v", cfg.Slack)
	}
	if rb.Managers.Static["U0ALICE01"] != "U0BOB0001" {
		t.Errorf("static managers = %v (keys must keep their case)", rb.Managers.Static)
	}

	crm := rb.Systems["crm"]
	viewer, admin := crm.Roles["viewer"], crm.Roles["admin"]
	wantSteps := []access.StepPolicy{
		{Sources: []access.Source{{Kind: access.SourceManager}}, Min: 1},
		{Sources: []access.Source{{Kind: access.SourceOwners}}, Min: 1},
	}
	if fmt.Sprint(viewer.Approval.Steps) != fmt.Sprint(wantSteps) {
		t.Errorf("crm viewer steps = %v, want %v", viewer.Approval.Steps, wantSteps)
	}
	if len(admin.Approval.Steps) != 1 || admin.Approval.Steps[0].Min != 2 || len(crm.Owners) < 2 {
		t.Errorf("crm admin needs two of at least two owners: steps %v, owners %v", admin.Approval.Steps, crm.Owners)
	}
	if admin.MaxDuration != time.Hour || admin.DefaultDuration != time.Hour || admin.ApprovalTimeout != 4*time.Hour {
		t.Errorf("crm admin durations = %v/%v/%v", admin.DefaultDuration, admin.MaxDuration, admin.ApprovalTimeout)
	}
	if viewer.ReminderAfter != 2*time.Hour || viewer.ExpiryWarning != 10*time.Minute || !viewer.ReasonRequired {
		t.Errorf("crm viewer did not inherit defaults: %+v", viewer)
	}
	if viewer.Grant["permission_set"] != "Support_Read_Only" || crm.Connector != "salesforce" {
		t.Errorf("grant = %v", viewer.Grant)
	}

	payroll := rb.Systems["payroll"].Roles["viewer"]
	if len(payroll.Approval.Steps) != 2 || payroll.Approval.Auto {
		t.Errorf("payroll viewer: manager then owner, got %+v", payroll.Approval)
	}
	av := rb.Systems["analytics"].Roles["viewer"]
	if !av.Approval.Auto || av.MaxDuration != 4*time.Hour || av.ReasonRequired {
		t.Errorf("analytics viewer: auto up to 4h, got %+v", av)
	}
	if g := rb.Systems["analytics"].Roles["editor"].Grant["group_id"]; g != "13" {
		t.Errorf("numeric grant values are stringified: got %q", g)
	}
	if ed := rb.Systems["analytics"].Roles["editor"]; ed.Approval.Auto || len(ed.Approval.Steps) != 1 {
		t.Errorf("analytics editor: owner approval, got %+v", ed.Approval)
	}
	if cfg.Connectors["okta"].Type != "okta_group" || cfg.Connectors["metabase"].Type != "metabase_group" {
		t.Errorf("connectors = %v", cfg.Connectors)
	}
	if _, ok := cfg.Connectors["okta"].Raw["type"]; ok {
		t.Error("Raw must not contain type")
	}

	// Unset secrets are warnings for validate and errors for run.
	wantMissing := []string{"slack.app_token", "slack.bot_token", "connectors.automation.secret", "connectors.corp_ldap.bind_password",
		"connectors.entra.client_secret", "connectors.gws.credentials", "connectors.jira.api_token", "connectors.looker.client_secret",
		"connectors.metabase.api_key", "connectors.okta.token", "connectors.opsgenie.api_key", "connectors.pagerduty.token",
		"connectors.salesforce.private_key", "connectors.warehouse_pg.password", "connectors.wiki_scim.token",
		"connectors.zendesk.api_token", "connectors.zendesk_tickets.api_token"}
	if !slices.Equal(cfg.MissingSecrets, wantMissing) {
		t.Errorf("MissingSecrets = %v, want %v", cfg.MissingSecrets, wantMissing)
	}
	if err := cfg.RequireSecrets(); err == nil {
		t.Error("RequireSecrets with missing secrets: want an error")
	}

	full := mustLoad(t, examplePath, env(map[string]string{
		"SLACK_APP_TOKEN": "xapp-1-A0-1-abc", "SLACK_BOT_TOKEN": "xoxb-1-abc",
		"OKTA_API_TOKEN": "00okta", "METABASE_API_KEY": "mb_key", "WEBHOOK_SECRET": "whsec_c2VjcmV0",
		"LDAP_BIND_PASSWORD": "p", "ENTRA_CLIENT_SECRET": "s", "GWS_SA_JSON": "{}", "LOOKER_CLIENT_SECRET": "s",
		"SF_PRIVATE_KEY": "k", "WAREHOUSE_PASSWORD": "p", "WIKI_SCIM_TOKEN": "t", "ZENDESK_API_TOKEN": "t",
		"PAGERDUTY_TOKEN": "t", "OPSGENIE_API_KEY": "k", "JIRA_API_TOKEN": "t",
	}))
	if err := full.RequireSecrets(); err != nil {
		t.Errorf("with every secret set: RequireSecrets = %v", err)
	}
	// The only warnings left: the template connectors no system uses, and
	// the roles whose own maximum is above the defaults'.
	for _, w := range full.Warnings {
		if !strings.Contains(w, "is not used by any system") && !strings.Contains(w, "is longer than defaults.max_duration") {
			t.Errorf("with every secret set: unexpected warning %q", w)
		}
	}
	if !slices.Contains(full.Warnings, "connectors.okta is not used by any system or role; run does not build it and does not need its secrets") {
		t.Errorf("want okta reported as unused, got %v", full.Warnings)
	}

	// The README quick start: only the slack tokens and the secrets of the
	// connectors systems use, and of the lookups roles name (PagerDuty for
	// warehouse oncall, Jira for crm admin's tickets), are needed to run.
	quick := mustLoad(t, examplePath, env(map[string]string{
		"SLACK_APP_TOKEN": "xapp-1-A0-1-abc", "SLACK_BOT_TOKEN": "xoxb-1-abc",
		"METABASE_API_KEY": "mb_key", "SF_PRIVATE_KEY": "k", "WAREHOUSE_PASSWORD": "p",
		"PAGERDUTY_TOKEN": "t", "JIRA_API_TOKEN": "t",
	}))
	if err := quick.RequireForRun(); err != nil {
		t.Errorf("quick start: RequireForRun = %v", err)
	}
	for _, w := range quick.Warnings {
		if strings.Contains(w, "connectors.okta.token") {
			t.Errorf("quick start: warning about an unused connector's secret: %q", w)
		}
	}
	if full.Slack.BotToken.Reveal() != "xoxb-1-abc" || full.Connectors["okta"].Raw["token"] != "00okta" {
		t.Error("secrets not expanded")
	}
	noLookups := mustLoad(t, examplePath, env(map[string]string{
		"SLACK_APP_TOKEN": "xapp-1-A0-1-abc", "SLACK_BOT_TOKEN": "xoxb-1-abc",
		"METABASE_API_KEY": "mb_key", "SF_PRIVATE_KEY": "k", "WAREHOUSE_PASSWORD": "p",
	}))
	if err := noLookups.RequireForRun(); err == nil || !strings.Contains(err.Error(), "connectors.pagerduty.token") || !strings.Contains(err.Error(), "connectors.jira.api_token") {
		t.Errorf("run without the lookups' secrets: RequireForRun = %v", err)
	}

	// The policy keys of issue #16, as the comments say.
	if !admin.Windows.Contains(time.Date(2026, 3, 30, 9, 0, 0, 0, rb.Location), rb.RoleLocation(admin)) ||
		admin.Windows.Contains(time.Date(2026, 3, 28, 9, 0, 0, 0, rb.Location), rb.RoleLocation(admin)) ||
		admin.OutsideWindow != access.OutsideRefuse || admin.Location != nil {
		t.Errorf("crm admin: office hours in Berlin, refused outside, got %v %q %v", admin.Windows, admin.OutsideWindow, admin.Location)
	}
	if admin.Ticket == nil || admin.Ticket.Verify != "jira" || !admin.Ticket.Matches("INC-42") || admin.Ticket.Matches("INC 42") {
		t.Errorf("crm admin ticket = %+v", admin.Ticket)
	}
	oc := rb.Systems["warehouse"].Roles["oncall"]
	if oc.Approval.AutoIfOnCall == nil || *oc.Approval.AutoIfOnCall != (access.OnCallRule{Source: "pagerduty", Schedule: "P1DATA2"}) ||
		len(oc.Approval.Steps) != 1 || oc.Approval.Auto {
		t.Errorf("warehouse oncall approval = %+v", oc.Approval)
	}
	if oc.Location == nil || oc.Location.String() != "Europe/London" || oc.OutsideWindow != access.OutsideApprove || len(oc.Windows) != 2 {
		t.Errorf("warehouse oncall windows = %v in %v, %q", oc.Windows, oc.Location, oc.OutsideWindow)
	}
	// The roles the demo's story uses are untouched by the new keys.
	if viewer.Ticket != nil || len(viewer.Windows) != 0 || payroll.Ticket != nil || len(payroll.Windows) != 0 {
		t.Error("the demo's roles gained windows or tickets")
	}
	if cfg.Connectors["pagerduty"].Type != "pagerduty" || cfg.Connectors["zendesk_tickets"].Type != "zendesk_ticket" {
		t.Errorf("lookup connectors = %v", cfg.Connectors)
	}
}

func TestEnvOverrides(t *testing.T) {
	base := map[string]string{"TEST_APP_TOKEN": "xapp-file", "TEST_BOT_TOKEN": "xoxb-file"}
	tests := []struct {
		name  string
		env   map[string]string
		check func(*Config) string
	}{
		{"slack bot token", map[string]string{"ACCESSBOT_SLACK_BOT_TOKEN": "xoxb-from-env"}, func(c *Config) string {
			return cmpStr(c.Slack.BotToken.Reveal(), "xoxb-from-env")
		}},
		{"store path (key absent from file)", map[string]string{"ACCESSBOT_STORE_PATH": "/data/x.db"}, func(c *Config) string {
			return cmpStr(c.Store.Path, "/data/x.db")
		}},
		{"defaults max duration reaches roles", map[string]string{"ACCESSBOT_DEFAULTS_MAX_DURATION": "3d"}, func(c *Config) string {
			return cmpStr(c.Runbook.Systems["crm"].Roles["viewer"].MaxDuration.String(), (72 * time.Hour).String())
		}},
		{"role key", map[string]string{"ACCESSBOT_SYSTEMS_CRM_ROLES_VIEWER_MAX_DURATION": "30m"}, func(c *Config) string {
			r := c.Runbook.Systems["crm"].Roles["viewer"]
			// The inherited 1h default is lowered to the role's own maximum.
			return cmpStr(fmt.Sprint(r.MaxDuration, r.DefaultDuration), "30m0s 30m0s")
		}},
		{"list key", map[string]string{"ACCESSBOT_SLACK_ADMINS": "U0ADMIN01, U0ERIN001"}, func(c *Config) string {
			return cmpStr(strings.Join(c.Slack.Admins, " "), "U0ADMIN01 U0ERIN001")
		}},
		{"timezone", map[string]string{"ACCESSBOT_TIMEZONE": "Asia/Tokyo"}, func(c *Config) string {
			return cmpStr(c.Runbook.Location.String(), "Asia/Tokyo")
		}},
		{"connector key", map[string]string{"ACCESSBOT_CONNECTORS_OKTA_ORG_URL": "https://other.okta.com"}, func(c *Config) string {
			return cmpStr(fmt.Sprint(c.Connectors["okta"].Raw["org_url"]), "https://other.okta.com")
		}},
		{"empty variable is no override", map[string]string{"ACCESSBOT_STORE_PATH": ""}, func(c *Config) string {
			return cmpStr(c.Store.Path, "accessbot.db")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := map[string]string{}
			for k, v := range base {
				e[k] = v
			}
			for k, v := range tt.env {
				e[k] = v
			}
			cfg := mustLoad(t, "testdata/minimal.yaml", env(e))
			if msg := tt.check(cfg); msg != "" {
				t.Error(msg)
			}
		})
	}

	t.Run("overridden value is validated", func(t *testing.T) {
		_, err := LoadConfig("testdata/minimal.yaml", env(map[string]string{"ACCESSBOT_DEFAULTS_MAX_DURATION": "soon"}))
		ps := problemsOf(t, err)
		if len(ps) != 1 || ps[0].Path != "defaults.max_duration" {
			t.Errorf("problems = %v", ps)
		}
	})
}

func cmpStr(got, want string) string {
	if got != want {
		return fmt.Sprintf("got %q, want %q", got, want)
	}
	return ""
}

func TestExpansion(t *testing.T) {
	cfg := mustLoad(t, "testdata/minimal.yaml", env(map[string]string{
		"TEST_APP_TOKEN": "xapp-x", "TEST_BOT_TOKEN": "xoxb-x",
		"OKTA_URL": "https://acme.okta.com", "OKTA_API_TOKEN": "tok", "VIEWER_GROUP": "00gABC",
	}))
	grant := cfg.Runbook.Systems["crm"].Roles["viewer"].Grant
	if grant["group_id"] != "00gABC" || grant["seats"] != "3" || grant["sso"] != "true" {
		t.Errorf("grant = %v", grant)
	}
	if cfg.Connectors["okta"].Raw["org_url"] != "https://acme.okta.com" {
		t.Errorf("connector raw = %v", cfg.Connectors["okta"].Raw)
	}
	if len(cfg.Warnings) != 0 {
		t.Errorf("warnings = %v", cfg.Warnings)
	}

	// An unset variable in a plain value is a warning naming it.
	cfg = mustLoad(t, "testdata/minimal.yaml", env(map[string]string{"TEST_APP_TOKEN": "xapp-x", "TEST_BOT_TOKEN": "xoxb-x", "OKTA_API_TOKEN": "tok"}))
	if !containsLine(cfg.Warnings, "connectors.okta.org_url: ${OKTA_URL} is not set") {
		t.Errorf("warnings = %v", cfg.Warnings)
	}
}

func containsLine(lines []string, prefix string) bool {
	for _, l := range lines {
		if strings.HasPrefix(l, prefix) {
			return true
		}
	}
	return false
}

const fileSecretConfig = `
slack:
  app_token: ${APP}
  bot_token_file: %s
connectors:
  c: { type: manual }
systems:
  s:
    owners: [U0CAROL01]
    connector: c
    roles:
      r: { requesters: [everyone], approval: auto }
`

func TestSecretFiles(t *testing.T) {
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "bot_token")
	if err := os.WriteFile(tokenFile, []byte("xoxb-from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	e := env(map[string]string{"APP": "xapp-1"})

	cfg := mustLoad(t, writeConfig(t, fmt.Sprintf(fileSecretConfig, tokenFile)), e)
	if cfg.Slack.BotToken.Reveal() != "xoxb-from-file" || len(cfg.MissingSecrets) != 0 {
		t.Errorf("bot token %q, missing %v", cfg.Slack.BotToken.Reveal(), cfg.MissingSecrets)
	}

	cfg = mustLoad(t, writeConfig(t, fmt.Sprintf(fileSecretConfig, filepath.Join(dir, "nope"))), e)
	if !slices.Equal(cfg.MissingSecrets, []string{"slack.bot_token"}) || cfg.RequireSecrets() == nil {
		t.Errorf("unreadable file: missing %v", cfg.MissingSecrets)
	}

	// The environment beats the file's twin.
	cfg = mustLoad(t, writeConfig(t, fmt.Sprintf(fileSecretConfig, tokenFile)), env(map[string]string{"APP": "xapp-1", "ACCESSBOT_SLACK_BOT_TOKEN": "xoxb-env"}))
	if cfg.Slack.BotToken.Reveal() != "xoxb-env" {
		t.Errorf("env override: got %q", cfg.Slack.BotToken.Reveal())
	}

	both := strings.Replace(fmt.Sprintf(fileSecretConfig, tokenFile), "bot_token_file:", "bot_token: xoxb-literal\n  bot_token_file:", 1)
	_, err := LoadConfig(writeConfig(t, both), e)
	if ps := problemsOf(t, err); len(ps) != 1 || ps[0].Path != "slack.bot_token" {
		t.Errorf("both set: %v", ps)
	}

	literal := strings.Replace(fmt.Sprintf(fileSecretConfig, tokenFile), "bot_token_file: "+tokenFile, "bot_token: xoxb-literal", 1)
	cfg = mustLoad(t, writeConfig(t, literal), e)
	if !containsLine(cfg.Warnings, "slack.bot_token: written literally") {
		t.Errorf("literal secret: warnings %v", cfg.Warnings)
	}
}

// TestMistakes checks that every mistake is reported, once, by key path.
func TestMistakes(t *testing.T) {
	want := []struct{ path, says string }{
		{"slack.admins[0]", "neither a Slack user ID nor an email address"},
		{"slack.api_url", `must end with "/"`},
		{"slack.audit_channel", "not a Slack channel ID"},
		{"slack.bot_tokn", `did you mean "bot_token"`},
		{"timezone", "not a known timezone"},
		{"audit.retension", `did you mean "retention"`},
		{"defaults.approval_timeout", "must be positive"},
		{"defaults.default_duration", "above max_duration 8h"},
		{"teams.support.members[1]", "neither a Slack user ID nor an email"},
		{"connectors.okta.type", "every connector needs a type"},
		{"systems.crm.connector", `did you mean "okta"`},
		{"systems.crm.digest.schedule", "daily HH:MM"},
		{"systems.crm.roles.admin.approval.steps[0].min", "3 is more than the 2 people"},
		{"systems.crm.roles.admin.reason", "use required or optional"},
		{"systems.crm.roles.editor.approval", "use approval: auto"},
		{"systems.crm.roles.reader.approval", "missing"},
		{"systems.crm.roles.viewer.approval.steps[0].approvers[0]", `did you mean "owners"`},
		{"systems.crm.roles.viewer.default_duration", "not a duration"},
		{"systems.crm.roles.viewer.max_duraton", `did you mean "max_duration"`},
		{"systems.crm.roles.viewer.requesters[0]", `did you mean "support"`},
		{"systems.payroll.owners[0]", "neither a Slack user ID nor an email address"},
	}
	_, err := LoadConfig("testdata/mistakes.yaml", env(nil))
	got := problemsOf(t, err)
	if len(got) != len(want) {
		t.Errorf("got %d problems, want %d:\n%s", len(got), len(want), joinProblems(got))
	}
	for _, w := range want {
		found := false
		for _, p := range got {
			if p.Path == w.path && strings.Contains(p.Message, w.says) {
				found = true
			}
		}
		if !found {
			t.Errorf("missing problem %s: …%s…", w.path, w.says)
		}
	}
}

func joinProblems(ps []Problem) string {
	var b strings.Builder
	for _, p := range ps {
		b.WriteString(p.String() + "\n")
	}
	return b.String()
}

func TestProblems(t *testing.T) {
	const base = `
slack: { admins: [U0ADMIN01] }
directory: { managers: { static: { U0ALICE01: U0BOB0001 } } }
teams:
  two: { members: [U0CAROL01, U0ERIN001] }
  group: { slack_usergroup: S0GROUP01 }
connectors: { c: { type: manual } }
systems:
  s:
    owners: [U0CAROL01, U0ERIN001]
    connector: c
    roles:
      r:
        requesters: [%s]
        %s
`
	tests := []struct {
		name, requesters, role string
		path, says             string // empty: valid
	}{
		{"two of two owners", "everyone", "approval: {steps: [{approvers: [owners], min: 2}]}", "", ""},
		{"three of two owners", "everyone", "approval: {steps: [{approvers: [owners], min: 3}]}",
			"systems.s.roles.r.approval.steps[0].min", "3 is more than the 2 people"},
		{"owners requesting from owners", "team:two", "approval: {steps: [{approvers: [owners], min: 2}]}",
			"systems.s.roles.r.approval.steps[0].min", "every requester is among them"},
		{"manager and owners", "team:two", "approval: {steps: [{approvers: [manager, owners], min: 2}]}", "", ""},
		{"usergroup is not counted", "everyone", "approval: {steps: [{approvers: [team:group], min: 9}]}", "", ""},
		{"user source", "everyone", "approval: {steps: [{approvers: [user:U0ADMIN01, user:U0ADMIN01], min: 2}]}",
			"systems.s.roles.r.approval.steps[0].min", "2 is more than the 1 people"},
		{"min zero", "everyone", "approval: {steps: [{approvers: [owners], min: 0}]}",
			"systems.s.roles.r.approval.steps[0].min", "1 or more"},
		{"no steps", "everyone", "approval: {steps: []}", "systems.s.roles.r.approval.steps", "at least one step"},
		{"bad approval key", "everyone", "approval: {stepz: []}", "systems.s.roles.r.approval.stepz", `did you mean "steps"`},
		{"approval list", "everyone", "approval: [owners]", "systems.s.roles.r.approval", "expected a mapping"},
		{"bad user ref", "user:alice", "approval: auto", "systems.s.roles.r.requesters[0]", "not a Slack user ID"},
		{"bad usergroup ref", "usergroup:G1", "approval: auto", "systems.s.roles.r.requesters[0]", "not a Slack user group ID"},
		{"bad requester", "manager", "approval: auto", "systems.s.roles.r.requesters[0]", "is not a requester"},
		{"role default above own max", "everyone", "approval: auto\n        default_duration: 2h\n        max_duration: 1h",
			"systems.s.roles.r.default_duration", "above max_duration 1h"},
		{"role default above inherited max", "everyone", "approval: auto\n        default_duration: 9h",
			"systems.s.roles.r.default_duration", "above max_duration 8h (built-in default)"},
		{"negative duration", "everyone", "approval: auto\n        max_duration: -1h",
			"systems.s.roles.r.max_duration", "not a duration"},
		{"grant must be flat", "everyone", "approval: auto\n        grant: { groups: [a, b] }",
			"systems.s.roles.r.grant.groups", "expected a single value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadConfig(writeConfig(t, fmt.Sprintf(base, tt.requesters, tt.role)), env(nil))
			if tt.path == "" {
				if err != nil {
					t.Fatalf("want valid, got %v", err)
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

func TestUnreadableAndMalformed(t *testing.T) {
	if _, err := LoadConfig(filepath.Join(t.TempDir(), "absent.yaml"), nil); err == nil || errors.As(err, new(*ConfigError)) {
		t.Errorf("absent file: want a plain error, got %v", err)
	}
	_, err := LoadConfig(writeConfig(t, "slack: [unclosed\n"), nil)
	if ps := problemsOf(t, err); len(ps) != 1 || !strings.Contains(ps[0].Message, "not valid YAML") {
		t.Errorf("malformed: %v", ps)
	}
}

// TestSecretsNeverPrinted feeds a distinctive token through every path that
// prints: problems, warnings, Redacted, fmt, JSON and slog.
func TestSecretsNeverPrinted(t *testing.T) {
	const token = "xoxb-DISTINCTIVE-7f3a9c"
	const hookSecret = "whsec_DISTINCTIVEhook"
	text := `
slack:
  app_token: xapp-1-DISTINCTIVEapp
  bot_token: ` + token + `
  admins: [U0ADMIN01]
connectors:
  hook: { type: webhook, url: "https://h.example.com/", secret: ` + hookSecret + ` }
systems:
  s:
    owners: [U0CAROL01]
    connector: hook
    roles:
      r: { requesters: [everyone], approval: auto }
`
	cfg := mustLoad(t, writeConfig(t, text), nil)
	var logBuf strings.Builder
	slog.New(slog.NewJSONHandler(&logBuf, nil)).Info("loaded", "config", cfg, "token", cfg.Slack.BotToken)
	js, _ := json.Marshal(cfg.Slack)
	var summary strings.Builder
	writeSummary(&summary, cfg)
	outputs := map[string]string{
		"warnings": strings.Join(cfg.Warnings, "\n"),
		"fmt %v":   fmt.Sprintf("%v %+v %s", cfg, cfg.Slack, cfg.Connectors),
		"fmt %#v":  fmt.Sprintf("%#v", cfg.Slack),
		"json":     string(js),
		"slog":     logBuf.String(),
		"summary":  summary.String(),
		"redacted": fmt.Sprint(cfg.Redacted()),
	}
	if !strings.Contains(outputs["warnings"], "written literally") {
		t.Errorf("want literal-secret warnings, got %v", cfg.Warnings)
	}

	// Invalid configurations: a secret pasted into the wrong key is
	// scrubbed from the problem that quotes it.
	bad := strings.Replace(text, "admins: [U0ADMIN01]", "admins: [U0ADMIN01]\n  command: "+token+"\n  audit_channel: "+token, 1)
	bad = strings.Replace(bad, "url: \"https://h.example.com/\"", "url: "+hookSecret, 1)
	_, err := LoadConfig(writeConfig(t, bad), nil)
	if err == nil {
		t.Fatal("want an error")
	}
	outputs["error"] = err.Error()

	for name, out := range outputs {
		for _, secret := range []string{token, hookSecret, "DISTINCTIVE"} {
			if strings.Contains(out, secret) {
				t.Errorf("%s contains a secret:\n%s", name, out)
			}
		}
	}
}

// hardenBase is a small valid runbook; %s is spliced in where a test needs
// to add or change something.
const hardenBase = `
slack:
  app_token: ${APP}
  bot_token: ${BOT}
  admins: [U0ADMIN01]
defaults:
  max_duration: 8h
directory:
  managers:
    static: { U0ALICE01: U0BOB0001 }
teams:
  support: { members: [U0ALICE01, U0DAVE001] }
connectors:
  desk: { type: manual }
  spare: { type: okta_group, org_url: "https://x.okta.com", token: "${SPARE_TOKEN}" }
systems:
  crm:
    owners: [U0CAROL01]
    connector: desk
    roles:
      viewer:
        requesters: [team:support]
        approval: { steps: [ { approvers: [owners] } ] }
%s`

func TestConfigCaseDuplicates(t *testing.T) {
	text := fmt.Sprintf(hardenBase, `
  CRM:
    owners: [U0CAROL01]
    connector: desk
    roles:
      viewer: { requesters: [everyone], approval: auto }
`)
	text = strings.Replace(text, "defaults:\n  max_duration: 8h\n", "defaults:\n  max_duration: 8h\n  MAX_DURATION: 30d\n", 1)
	_, err := LoadConfig(writeConfig(t, text), env(nil))
	got := joinProblems(problemsOf(t, err))
	for _, want := range []string{
		"systems.CRM: duplicates systems.crm (line ",
		"defaults.MAX_DURATION: duplicates defaults.max_duration (line ",
		"keys are case-insensitive",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %q in:\n%s", want, got)
		}
	}

	// Nested levels, and Slack IDs (upper case) stay usable as keys.
	text = fmt.Sprintf(hardenBase, "")
	text = strings.Replace(text, "static: { U0ALICE01: U0BOB0001 }", "static: { U0ALICE01: U0BOB0001, U0DAVE001: U0BOB0001 }", 1)
	cfg := mustLoad(t, writeConfig(t, text), env(nil))
	if cfg.Runbook.Managers.Static["U0DAVE001"] != "U0BOB0001" {
		t.Errorf("static = %v", cfg.Runbook.Managers.Static)
	}
	text = strings.Replace(text, "approvers: [owners] }", "approvers: [owners], Approvers: [team:support] }", 1)
	_, err = LoadConfig(writeConfig(t, text), env(nil))
	if got := joinProblems(problemsOf(t, err)); !strings.Contains(got, "systems.crm.roles.viewer.approval.steps[0].Approvers: duplicates systems.crm.roles.viewer.approval.steps[0].approvers") {
		t.Errorf("nested duplicate: %s", got)
	}
}

func TestConfigUnknownEnv(t *testing.T) {
	data := []byte(fmt.Sprintf(hardenBase, ""))
	e := map[string]string{"ACCESSBOT_DEFAULT_MAX_DURATION": "30d", "ACCESSBOT_NOTHING_LIKE_IT": "x", "ACCESSBOT_STORE_PATH": "/tmp/x.db", "ACCESSBOT_UNSET": ""}
	names := slices.Sorted(func(yield func(string) bool) {
		for k := range e {
			if !yield(k) {
				return
			}
		}
	})
	cfg, err := loadConfigEnv("c.yaml", data, env(e), names)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.UnknownEnv) != 2 {
		t.Fatalf("UnknownEnv = %v", cfg.UnknownEnv)
	}
	if !containsLine(cfg.Warnings, "ACCESSBOT_DEFAULT_MAX_DURATION: set, but no configuration key has this name") ||
		!strings.Contains(strings.Join(cfg.Warnings, "\n"), "did you mean ACCESSBOT_DEFAULTS_MAX_DURATION?") {
		t.Errorf("warnings = %v", cfg.Warnings)
	}
	if err := cfg.RequireForRun(); err == nil || !strings.Contains(err.Error(), "ACCESSBOT_NOTHING_LIKE_IT") {
		t.Errorf("RequireForRun = %v", err)
	}
}

func TestConfigOverridesInHash(t *testing.T) {
	data := []byte(fmt.Sprintf(hardenBase, ""))
	load := func(e map[string]string) *Config {
		t.Helper()
		var names []string
		for k := range e {
			names = append(names, k)
		}
		cfg, err := loadConfigEnv("c.yaml", data, env(e), names)
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	plain := load(nil)
	sum := sha256.Sum256(data)
	if plain.Runbook.Hash != hex.EncodeToString(sum[:]) || len(plain.Overrides) != 0 {
		t.Errorf("without overrides the hash is the file's: %s, overrides %v", plain.Runbook.Hash, plain.Overrides)
	}
	longer := load(map[string]string{"ACCESSBOT_DEFAULTS_MAX_DURATION": "30d"})
	longer2 := load(map[string]string{"ACCESSBOT_DEFAULTS_MAX_DURATION": "31d"})
	if longer.Runbook.Hash == plain.Runbook.Hash || longer.Runbook.Hash == longer2.Runbook.Hash {
		t.Error("an override that takes effect must change the hash")
	}
	if !slices.Equal(longer.Overrides, []string{"ACCESSBOT_DEFAULTS_MAX_DURATION=30d"}) {
		t.Errorf("Overrides = %v", longer.Overrides)
	}
	// Secrets: the name counts, the value does not, and is never listed.
	s1 := load(map[string]string{"ACCESSBOT_SLACK_BOT_TOKEN": "xoxb-SECRETONE"})
	s2 := load(map[string]string{"ACCESSBOT_SLACK_BOT_TOKEN": "xoxb-SECRETTWO"})
	if s1.Runbook.Hash != s2.Runbook.Hash || s1.Runbook.Hash == plain.Runbook.Hash {
		t.Error("a secret override counts by name only")
	}
	if !slices.Equal(s1.Overrides, []string{"ACCESSBOT_SLACK_BOT_TOKEN"}) {
		t.Errorf("Overrides = %v", s1.Overrides)
	}
	var out strings.Builder
	writeSummary(&out, s1)
	writeSummary(&out, longer)
	if !strings.Contains(out.String(), "Environment overrides (in the sha256): ACCESSBOT_SLACK_BOT_TOKEN\n") ||
		!strings.Contains(out.String(), "ACCESSBOT_DEFAULTS_MAX_DURATION=30d") || strings.Contains(out.String(), "SECRETONE") {
		t.Errorf("summary:\n%s", out.String())
	}
}

func TestConfigRunNeedsOnlyUsedConnectors(t *testing.T) {
	cfg := mustLoad(t, writeConfig(t, fmt.Sprintf(hardenBase, "")), env(map[string]string{"APP": "xapp-1", "BOT": "xoxb-1"}))
	if !slices.Contains(cfg.MissingSecrets, "connectors.spare.token") {
		t.Errorf("MissingSecrets = %v (validate still checks every block)", cfg.MissingSecrets)
	}
	if err := cfg.RequireForRun(); err != nil {
		t.Errorf("RequireForRun = %v; spare is not used", err)
	}
	if !slices.Contains(cfg.Warnings, "connectors.spare is not used by any system or role; run does not build it and does not need its secrets") {
		t.Errorf("warnings = %v", cfg.Warnings)
	}
	for _, w := range cfg.Warnings {
		if strings.HasPrefix(w, "connectors.spare.token") {
			t.Errorf("warning about an unused connector's secret: %q", w)
		}
	}
	// A used connector's secret is required.
	used := strings.Replace(fmt.Sprintf(hardenBase, ""), "connector: desk", "connector: spare", 1)
	cfg = mustLoad(t, writeConfig(t, used), env(map[string]string{"APP": "xapp-1", "BOT": "xoxb-1"}))
	if err := cfg.RequireForRun(); err == nil || !strings.Contains(err.Error(), "connectors.spare.token") {
		t.Errorf("RequireForRun = %v", err)
	}
}

func TestConfigHardenedProblems(t *testing.T) {
	role := func(id, body string) string {
		return fmt.Sprintf(hardenBase, "") + "      " + id + ": " + body + "\n"
	}
	tests := []struct {
		name, text, path, says string
	}{
		{"empty approvers", strings.Replace(fmt.Sprintf(hardenBase, ""), "approvers: [owners]", "approvers: []", 1),
			"systems.crm.roles.viewer.approval.steps[0].approvers", "empty: a step needs at least one approver"},
		{"second document", fmt.Sprintf(hardenBase, "") + "---\nsystems:\n  crm: {}\n", "", "second YAML document"},
		{"role named like a verb", role("revoke", "{ requesters: [everyone], approval: auto }"),
			"systems.crm.roles.revoke", "/access subcommand"},
		{"role named like a duration", role("2h", "{ requesters: [everyone], approval: auto }"),
			"systems.crm.roles.2h", "reads as a duration"},
		{"system named like a verb", strings.Replace(fmt.Sprintf(hardenBase, ""), "\n  crm:\n", "\n  pending:\n", 1),
			"systems.pending", "/access subcommand"},
		{"own manager", strings.Replace(fmt.Sprintf(hardenBase, ""), "U0ALICE01: U0BOB0001", "U0ALICE01: U0ALICE01", 1),
			"directory.managers.static.u0alice01", "own manager"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadConfig(writeConfig(t, tt.text), env(nil))
			ps := problemsOf(t, err)
			if len(ps) != 1 || !strings.EqualFold(ps[0].Path, tt.path) || !strings.Contains(ps[0].Message, tt.says) {
				t.Errorf("want one problem %s: …%s…, got:\n%s", tt.path, tt.says, joinProblems(ps))
			}
		})
	}
}

func TestConfigParseErrorsHaveLines(t *testing.T) {
	for _, text := range []string{
		"slack: [unclosed\n",
		"slack:\n  admins: [U0ADMIN01]\n  admins: [U0ADMIN02]\n",
		"slack:\n  command: \"/x\x01\"\n",
		"slack:\n  command: \xff\xfe\n",
		"a: b: c\n",
		"slack:\n\tadmins: []\n",
		"a: 1\n---\nb: [\n",
	} {
		_, err := LoadConfig(writeConfig(t, text), env(nil))
		ps := problemsOf(t, err)
		if len(ps) != 1 || !lineRef.MatchString(ps[0].Message) {
			t.Errorf("%q: want one problem with a line number, got %v", text, ps)
		}
	}
	_, err := LoadConfig(writeConfig(t, "slack:\n  admins: []\n  command: \"/ok\x07\"\n"), env(nil))
	if ps := problemsOf(t, err); len(ps) != 1 || !strings.Contains(ps[0].Message, "line 3") {
		t.Errorf("control character: %v", ps)
	}
}

func TestConfigTooLarge(t *testing.T) {
	p := filepath.Join(t.TempDir(), "big.yaml")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	// Sparse: 10 MiB + 1 byte of NULs, which the parser would reject with
	// another message if it ever saw them.
	if err := f.Truncate(maxConfigSize + 1); err != nil {
		t.Fatal(err)
	}
	f.Close()
	_, err = LoadConfig(p, env(nil))
	if ps := problemsOf(t, err); len(ps) != 1 || !strings.Contains(ps[0].Message, "larger than 10 MiB") {
		t.Errorf("problems = %v", ps)
	}
	if _, err := loadConfigBytes("big", make([]byte, maxConfigSize+1), env(nil)); err == nil || !strings.Contains(err.Error(), "10 MiB") {
		t.Errorf("loadConfigBytes = %v", err)
	}
}

func TestConfigRoleMaxAboveDefaults(t *testing.T) {
	text := strings.Replace(fmt.Sprintf(hardenBase, ""), "approval: { steps: [ { approvers: [owners] } ] }",
		"approval: { steps: [ { approvers: [owners] } ] }\n        max_duration: 30d", 1)
	cfg := mustLoad(t, writeConfig(t, text), env(nil))
	if !containsLine(cfg.Warnings, "systems.crm.roles.viewer.max_duration: 30d is longer than defaults.max_duration 8h") {
		t.Errorf("warnings = %v", cfg.Warnings)
	}
	if cfg.Runbook.Systems["crm"].Roles["viewer"].MaxDuration != 30*24*time.Hour {
		t.Error("the role's own maximum applies (DESIGN.md §2)")
	}
}
