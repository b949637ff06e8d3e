package main

// Tests of what a new user meets first: run's start-up failures, the help
// of every command, audit verify on an empty file.

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/accessbot/accessbot/bot/slackemu"
)

// runbookWithEmailAdmin is a minimal runbook naming its admin and owner
// by email, as accessbot init writes them, with Slack at apiURL.
func runbookWithEmailAdmin(t *testing.T, apiURL string) string {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "config.yaml")
	data := `slack:
  app_token: ${SLACK_APP_TOKEN}
  bot_token: ${SLACK_BOT_TOKEN}
  api_url: ` + apiURL + `
  admins: [ada@example.com]
store:
  path: ` + filepath.Join(dir, "accessbot.db") + `
connectors:
  desk: { type: manual }
systems:
  crm:
    owners: [carol@example.com]
    connector: desk
    roles:
      viewer:
        grant: { profile: read_only }
        requesters: [everyone]
        approval: { steps: [ { approvers: [owners] } ] }
`
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// run looks up the people named by email before serving. Slack not
// answering is a runtime failure (exit 2, DESIGN.md §1), told as such and
// quickly (one failed lookup stops the others); an email no Slack user
// has is a configuration problem (exit 1) naming its key path.
func TestRunResolveEmailsExitCodes(t *testing.T) {
	tokens := func(k string) string {
		switch k {
		case "SLACK_APP_TOKEN":
			return "xapp-1-test"
		case "SLACK_BOT_TOKEN":
			return "xoxb-test"
		}
		return ""
	}
	instantRetries := func(o *AppOptions) {
		o.BotSleep = func(ctx context.Context, d time.Duration) error { return ctx.Err() }
	}

	t.Run("slack unreachable", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close() // nothing listens there now: connection refused
		path := runbookWithEmailAdmin(t, "http://"+addr+"/api/")
		var stdout, stderr bytes.Buffer
		code := runBot(context.Background(), []string{"--config", path}, &stdout, &stderr, tokens, instantRetries)
		if code != exitRuntime {
			t.Errorf("exit %d, want %d (runtime failure)\n%s", code, exitRuntime, stderr.String())
		}
		if !strings.Contains(stderr.String(), "could not look up the people the runbook names by email in Slack") ||
			!strings.Contains(stderr.String(), "users.lookupByEmail") {
			t.Errorf("stderr does not say Slack could not be asked:\n%s", stderr.String())
		}
	})

	t.Run("unknown email", func(t *testing.T) {
		emu := slackemu.New(slackemu.Options{})
		defer emu.Close()
		emu.AddUser(slackemu.User{ID: "U0ADA0001", Name: "ada", Email: "ada@example.com"})
		path := runbookWithEmailAdmin(t, emu.APIURL())
		env := func(k string) string {
			switch k {
			case "SLACK_APP_TOKEN":
				return emu.AppToken()
			case "SLACK_BOT_TOKEN":
				return emu.BotToken()
			}
			return ""
		}
		var stdout, stderr bytes.Buffer
		code := runBot(context.Background(), []string{"--config", path}, &stdout, &stderr, env, instantRetries)
		if code != exitBadUse {
			t.Errorf("exit %d, want %d (bad configuration)\n%s", code, exitBadUse, stderr.String())
		}
		if !strings.Contains(stderr.String(), "systems.crm.owners[0]: no Slack user has the email carol@example.com") {
			t.Errorf("stderr does not name the key path:\n%s", stderr.String())
		}
	})
}

// A missing secret stops run with a line naming the variable to set.
func TestRunMissingSecretNamesVariable(t *testing.T) {
	path := runbookWithEmailAdmin(t, "https://slack.com/api/")
	var stdout, stderr bytes.Buffer
	code := runBot(context.Background(), []string{"--config", path}, &stdout, &stderr, func(string) string { return "" }, nil)
	if code != exitBadUse {
		t.Fatalf("exit %d\n%s", code, stderr.String())
	}
	for _, want := range []string{
		"slack.bot_token: ${SLACK_BOT_TOKEN} is not set: set SLACK_BOT_TOKEN in the environment (or ACCESSBOT_SLACK_BOT_TOKEN, or bot_token_file: a file holding the secret)",
		"slack.app_token: ${SLACK_APP_TOKEN} is not set: set SLACK_APP_TOKEN",
	} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr.String())
		}
	}
}

// Every command and subcommand is listed in accessbot help, and -h works
// on each the same way: its usage line, what it does, its flags, on
// stdout, exit 0. accessbot help COMMAND is COMMAND -h.
func TestHelpEveryCommand(t *testing.T) {
	getenv := func(string) string { return "" }
	var top, topErr bytes.Buffer
	if code := run([]string{"help"}, &top, &topErr, getenv); code != exitOK {
		t.Fatalf("help: exit %d", code)
	}
	for name := range commands() {
		if !strings.Contains(top.String(), "\n  "+name) {
			t.Errorf("accessbot help does not list %s:\n%s", name, top.String())
		}
		if _, ok := helpFor(name); !ok && name != "audit" && name != "store" {
			t.Errorf("%s has no helpTexts entry", name)
		}
	}
	for _, h := range helpTexts {
		if h.name == "help" {
			continue
		}
		if !strings.Contains(top.String(), "accessbot "+h.name) {
			t.Errorf("accessbot help lacks the synopsis of %s", h.name)
		}
		args := append(strings.Fields(h.name), "-h")
		var out, errb bytes.Buffer
		code := run(args, &out, &errb, getenv)
		if code != exitOK || !strings.HasPrefix(out.String(), "usage: accessbot "+h.name) || !strings.Contains(out.String(), h.summary) || errb.Len() != 0 {
			t.Errorf("%v: exit %d\nstdout:\n%s\nstderr:\n%s", args, code, out.String(), errb.String())
		}
		var viaHelp bytes.Buffer
		if code := run(append([]string{"help"}, strings.Fields(h.name)...), &viaHelp, &errb, getenv); code != exitOK || viaHelp.String() != out.String() {
			t.Errorf("accessbot help %s: exit %d, differs from %s -h:\n%s", h.name, code, h.name, viaHelp.String())
		}
	}
	for _, group := range []string{"audit", "store"} {
		var out, errb bytes.Buffer
		if code := run([]string{group, "-h"}, &out, &errb, getenv); code != exitOK || !strings.HasPrefix(out.String(), "usage: accessbot "+group+" ") {
			t.Errorf("%s -h: exit %d\n%s%s", group, code, out.String(), errb.String())
		}
	}
	// A flag error goes to stderr with the usage, exit 1.
	var out, errb bytes.Buffer
	if code := run([]string{"run", "--nope"}, &out, &errb, getenv); code != exitBadUse || out.Len() != 0 ||
		!strings.Contains(errb.String(), "flag provided but not defined: -nope") || !strings.Contains(errb.String(), "usage: accessbot run") {
		t.Errorf("run --nope: exit %d\nstdout:\n%s\nstderr:\n%s", code, out.String(), errb.String())
	}
}

// An empty audit file holds nothing to verify: said so, exit 1, not a
// clean "verified".
func TestAuditVerifyEmptyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	code := run([]string{"audit", "verify", path}, &out, &errb, func(string) string { return "" })
	if code != exitBadUse || !strings.Contains(errb.String(), "holds no audit records: there is nothing to verify") || out.Len() != 0 {
		t.Errorf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out.String(), errb.String())
	}
}

// The grant parameters of a role are checked by its connector type even
// when the connector's secret is not in the environment (validate and init
// usually run without the secrets, and a salesforce private key or a
// google service account key must parse before the connector builds); the
// missing secret is reported on its own line, naming its variable.
func TestValidateChecksGrantParamsWithoutSecrets(t *testing.T) {
	getenv := func(string) string { return "" }
	data, err := os.ReadFile(examplePath)
	if err != nil {
		t.Fatal(err)
	}
	bad := strings.Replace(string(data), "grant: { permission_set: Support_Read_Only }", `grant: { permission_set: "Support Read-Only!" }`, 1)
	bad = strings.Replace(bad, "    connector: metabase\n", "    connector: gws\n", 1)
	bad = strings.Replace(bad, `grant: { group_id: 12 }`, `grant: { group: marketing dashboards }`, 1)
	bad = strings.Replace(bad, `grant: { group_id: 13 }`, `grant: { group: dashboards-edit@example.com }`, 1)
	if bad == string(data) {
		t.Fatal("the example changed: edit the test")
	}
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	code := run([]string{"validate", "--config", path}, &out, &errb, getenv)
	if code != exitBadUse {
		t.Fatalf("exit %d\n%s%s", code, out.String(), errb.String())
	}
	for _, want := range []string{
		`systems.crm.roles.viewer.grant.permission_set: "Support Read-Only!" is neither an API name nor a record Id`,
		`systems.analytics.roles.viewer.grant.group: "marketing dashboards" is neither a group email`,
		"warning: connectors.salesforce.private_key: ${SF_PRIVATE_KEY} is not set",
		"warning: connectors.gws.credentials: ${GWS_SA_JSON} is not set",
	} {
		if !strings.Contains(errb.String(), want) {
			t.Errorf("validate does not say %q:\n%s", want, errb.String())
		}
	}

	// init, from answers: the same check, on the answer.
	dir := t.TempDir()
	answers := filepath.Join(dir, "answers.yaml")
	os.WriteFile(answers, []byte(strings.Replace(initAnswersYAML, "permission_set: Support_Read_Only", "permission_set: Support-Read-Only", 1)), 0o600)
	code, stdout, stderr := runInitCmd(t, "", "--from", answers, "--out", filepath.Join(dir, "config.yaml"))
	if code != exitBadUse || !strings.Contains(stderr, `systems[1].roles[0].grant.permission_set: "Support-Read-Only" is neither an API name`) {
		t.Errorf("init: exit %d\n%s\n%s", code, stdout, stderr)
	}
}

// Every connector type that grants has its grant-parameter check listed
// for use without an instance, and the zero instance checks for real.
func TestParamCheckersCoverGrantingTypes(t *testing.T) {
	for _, typ := range connectorRegistry().Types() {
		if typ == "memory" || isLookupType(typ) {
			continue
		}
		pc, ok := paramCheckers[typ]
		if !ok {
			t.Errorf("connector type %s has no entry in paramCheckers", typ)
			continue
		}
		if err := checkParams(pc, map[string]string{"no_such_parameter": "x", "": "y"}); err == nil {
			t.Errorf("%s: a blank parameter name passes the zero instance's check", typ)
		}
	}
}

// A digest schedule on a system with no owners' channel has nowhere to go
// (digests are posted only there): validate warns, naming both keys.
func TestValidateWarnsDigestWithoutChannel(t *testing.T) {
	path := runbookWithEmailAdmin(t, "https://slack.com/api/")
	data, _ := os.ReadFile(path)
	withDigest := strings.Replace(string(data), "    connector: desk\n", "    connector: desk\n    digest: { schedule: daily 09:00 }\n", 1)
	os.WriteFile(path, []byte(withDigest), 0o600)
	var out, errb bytes.Buffer
	if code := run([]string{"validate", "--config", path}, &out, &errb, func(string) string { return "" }); code != exitOK {
		t.Fatalf("exit %d\n%s", code, errb.String())
	}
	want := `systems.crm.digest.schedule: "daily 09:00", but crm has no channel: digests are posted only to the owners' channel, so none is ever sent; set systems.crm.channel`
	if !strings.Contains(out.String(), want) {
		t.Errorf("validate does not warn %q:\n%s", want, out.String())
	}
	// With a channel, or with digests off, no such warning.
	for _, fix := range []string{"    channel: C0CRMOWN1\n", ""} {
		fixed := withDigest
		if fix != "" {
			fixed = strings.Replace(withDigest, "    connector: desk\n", "    connector: desk\n"+fix, 1)
		} else {
			fixed = strings.Replace(withDigest, "daily 09:00", "off", 1)
		}
		os.WriteFile(path, []byte(fixed), 0o600)
		out.Reset()
		run([]string{"validate", "--config", path}, &out, &errb, func(string) string { return "" })
		if strings.Contains(out.String(), "digest.schedule") {
			t.Errorf("warned although the digest has somewhere to go (%q):\n%s", fix, out.String())
		}
	}
}

// README's "Slack scopes" says, for every bot scope the manifest asks for,
// what it is used for and whether it is required or optional; a scope the
// README calls optional is marked so in the manifest too.
func TestReadmeExplainsEveryManifestScope(t *testing.T) {
	manifest, err := os.ReadFile("../../slack-app-manifest.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(manifest, &doc); err != nil {
		t.Fatal(err)
	}
	scopes := mapValue(mapValue(mapValue(doc.Content[0], "oauth_config"), "scopes"), "bot")
	if scopes == nil || len(scopes.Content) < 5 {
		t.Fatal("no oauth_config.scopes.bot in the manifest")
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(readme), "\n### Slack scopes\n")
	if !ok {
		t.Fatal(`README has no "### Slack scopes" section`)
	}
	section, _, _ = strings.Cut(section, "\n#")
	rows := map[string]string{} // scope → its "needed" cell
	for _, line := range strings.Split(section, "\n") {
		cells := strings.Split(strings.Trim(line, "|"), "|")
		if len(cells) != 3 {
			continue
		}
		for _, sc := range strings.Split(cells[0], ",") {
			rows[strings.Trim(strings.TrimSpace(sc), "`")] = strings.TrimSpace(cells[2])
		}
	}
	for _, n := range scopes.Content {
		needed, ok := rows[n.Value]
		switch {
		case !ok:
			t.Errorf("README's Slack scopes table does not explain %s", n.Value)
		case !strings.HasPrefix(needed, "required") && !strings.HasPrefix(needed, "optional"):
			t.Errorf("%s: %q says neither required nor optional", n.Value, needed)
		case strings.HasPrefix(needed, "optional:") && !strings.Contains(n.LineComment, "optional"):
			t.Errorf("%s is optional in README but not marked so in the manifest: %s", n.Value, n.LineComment)
		}
	}
}
