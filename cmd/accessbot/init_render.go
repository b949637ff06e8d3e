package main

// accessbot init: the runbook as YAML nodes with comments, written
// atomically, and the next steps.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/connectors"
)

func yStr(v string) *yaml.Node { return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: v} }

func yMap(head string) *yaml.Node {
	return &yaml.Node{Kind: yaml.MappingNode, HeadComment: head}
}

func yFlow(vals []string) *yaml.Node {
	n := &yaml.Node{Kind: yaml.SequenceNode, Style: yaml.FlowStyle}
	for _, v := range vals {
		n.Content = append(n.Content, yStr(v))
	}
	return n
}

// yAdd appends key: val to mapping m; head is a comment above the key,
// line one at the end of the value's line.
func yAdd(m *yaml.Node, key string, val *yaml.Node, head, line string) {
	k := yStr(key)
	k.Tag = ""
	k.HeadComment = head
	if line != "" {
		if val.Kind == yaml.ScalarNode || val.Style == yaml.FlowStyle {
			val.LineComment = line
		} else {
			k.LineComment = line
		}
	}
	m.Content = append(m.Content, k, val)
}

// settingNode renders a connector setting by its declared kind, so that
// a bool is written as a bool; a value that does not fit its kind is
// written as text and left to the connector to refuse with a clear error.
func settingNode(kind connectors.FieldKind, v string) *yaml.Node {
	switch kind {
	case connectors.KindBool:
		if b, err := strconv.ParseBool(v); err == nil {
			return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: strconv.FormatBool(b)}
		}
	case connectors.KindInt:
		if _, err := strconv.Atoi(v); err == nil {
			return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: v}
		}
	case connectors.KindList:
		var items []string
		for _, s := range strings.Split(v, ",") {
			if s = strings.TrimSpace(s); s != "" {
				items = append(items, s)
			}
		}
		return yFlow(items)
	}
	return yStr(v)
}

// renderRunbook writes the answers as a commented runbook.
func renderRunbook(a *initAnswers, reg *connectors.Registry) ([]byte, error) {
	root := yMap("")
	doc := &yaml.Node{Kind: yaml.DocumentNode, Content: []*yaml.Node{root},
		HeadComment: "accessbot runbook, written by `accessbot init`: who may ask for access to what,\n" +
			"who approves it, and for how long.\n\n" +
			"Check a change:  accessbot validate --config FILE\n" +
			"Ask \"why\":       accessbot explain --config FILE --as EMAIL SYSTEM ROLE\n" +
			"Every key is described in config.example.yaml. People are emails or Slack\n" +
			"user IDs; emails are looked up in Slack when accessbot starts. Durations\n" +
			"take s, m, h and d (90m, 1d). Unknown keys are errors."}

	slack := yMap("")
	yAdd(slack, "app_token", yStr("${SLACK_APP_TOKEN}"), "", "xapp-… app-level token (connections:write), for Socket Mode")
	yAdd(slack, "bot_token", yStr("${SLACK_BOT_TOKEN}"), "", "xoxb-… bot token")
	yAdd(slack, "command", yStr(defaultCommand), "", "the slash command of slack-app-manifest.yaml")
	yAdd(slack, "admins", yFlow(a.Admins), "Admins may revoke anything and see every request; they are the last\nresort when an approval step finds nobody to ask.", "")
	if a.AuditChannel != "" {
		yAdd(slack, "audit_channel", yStr(a.AuditChannel), "", "every decision is copied here, for auditors")
	}
	yAdd(root, "slack", slack, "", "")

	store := yMap("")
	yAdd(store, "path", yStr(defaultStorePath), "", "one file; only one accessbot process may open it")
	yAdd(root, "store", store, "", "")
	tz := a.Timezone
	if tz == "" {
		tz = initDefaultTimezone
	}
	yAdd(root, "timezone", yStr(tz), "", "digests and the times people see (IANA name)")

	defs := yMap("")
	yAdd(defs, "default_duration", yStr(access.FormatDuration(defaultDefaultDuration)), "", "when the requester does not say")
	yAdd(defs, "max_duration", yStr(access.FormatDuration(defaultMaxDuration)), "", "longer requests are refused, not cut")
	yAdd(defs, "approval_timeout", yStr(access.FormatDuration(defaultApprovalTimeout)), "", "pending longer than this: timed out")
	yAdd(defs, "reminder_after", yStr(access.FormatDuration(defaultReminderAfter)), "", "approvers who have not answered are reminded once")
	yAdd(defs, "expiry_warning", yStr(access.FormatDuration(defaultExpiryWarning)), "", "the requester is warned this long before access ends")
	yAdd(defs, "reason", yStr("required"), "", "required | optional")
	yAdd(root, "defaults", defs, "", "every role gets these unless it sets its own")

	if a.ManagerField != "" {
		mg := yMap("")
		yAdd(mg, "slack_profile_field", yStr(a.ManagerField), "", "a custom Slack profile field holding each person's manager")
		dir := yMap("")
		yAdd(dir, "managers", mg, "Add `static: { U0ALICE01: U0BOB0001 }` to name managers here instead.", "")
		yAdd(root, "directory", dir, "How accessbot finds a requester's manager (approver \"manager\").", "")
	}

	if len(a.Teams) > 0 {
		teams := yMap("")
		for _, t := range a.Teams {
			tm := yMap("")
			if len(t.Members) > 0 {
				yAdd(tm, "members", yFlow(t.Members), "", "")
			}
			if t.Usergroup != "" {
				yAdd(tm, "slack_usergroup", yStr(t.Usergroup), "", "its members are looked up in Slack when needed")
			}
			yAdd(teams, t.Name, tm, "", "")
		}
		yAdd(root, "teams", teams, "Named groups of people, used as team:NAME in requesters and approvers.", "")
	}

	conns := yMap("")
	for _, s := range a.Systems {
		fields, err := reg.Describe(s.Connector.Type)
		if err != nil {
			return nil, err
		}
		cm := yMap("")
		yAdd(cm, "type", yStr(s.Connector.Type), "", "")
		for _, f := range fields {
			if v := strings.TrimSpace(s.Connector.Settings[f.Key]); v != "" && !f.Secret {
				yAdd(cm, f.Key, settingNode(f.Kind, v), "", "")
			}
			sec, ok := s.Connector.Secrets[f.Key]
			switch {
			case !ok || !f.Secret:
			case sec.Env != "":
				yAdd(cm, f.Key, yStr("${"+sec.Env+"}"), "", "secret, from the environment")
			default:
				yAdd(cm, f.Key+"_file", yStr(sec.File), "", "secret, read from this file")
			}
		}
		yAdd(conns, s.ID, cm, "", "grants access to "+s.ID)
	}
	yAdd(root, "connectors", conns, "How access is granted and removed; each system names one.", "")

	systems := yMap("")
	for _, s := range a.Systems {
		sm := yMap("")
		if s.Name != "" {
			yAdd(sm, "name", yStr(s.Name), "", "")
		}
		if s.Description != "" {
			yAdd(sm, "description", yStr(s.Description), "", "")
		}
		yAdd(sm, "owners", yFlow(s.Owners), "", "approve as \"owners\"; alerted when access cannot be removed")
		if s.Channel != "" {
			yAdd(sm, "channel", yStr(s.Channel), "", "owners' channel: digests and alerts")
		}
		digest := s.Digest
		if digest == "" {
			digest = "off"
			if s.Channel != "" {
				digest = initDefaultDigest
			}
		}
		dm := yMap("")
		dm.Style = yaml.FlowStyle
		yAdd(dm, "schedule", yStr(digest), "", "")
		yAdd(sm, "digest", dm, "", "")
		yAdd(sm, "connector", yStr(s.ID), "", "")
		roles := yMap("")
		for _, r := range s.Roles {
			rm := yMap("")
			if r.Description != "" {
				yAdd(rm, "description", yStr(r.Description), "", "")
			}
			if len(r.Grant) > 0 {
				g := yMap("")
				g.Style = yaml.FlowStyle
				for _, k := range sortedKeys(r.Grant) {
					yAdd(g, k, yStr(r.Grant[k]), "", "")
				}
				yAdd(rm, "grant", g, "", "the connector's parameters for this role")
			}
			yAdd(rm, "requesters", yFlow(r.Requesters), "", "who may ask")
			if r.Approval.Auto {
				yAdd(rm, "approval", yStr("auto"), "", "granted at once, without a human; still audited")
			} else {
				steps := &yaml.Node{Kind: yaml.SequenceNode}
				for _, st := range r.Approval.Steps {
					sm := yMap("")
					yAdd(sm, "approvers", yFlow(st), "", "")
					steps.Content = append(steps.Content, sm)
				}
				ap := yMap("")
				yAdd(ap, "steps", steps, "", "in order; nobody approves their own request")
				yAdd(rm, "approval", ap, "", "")
			}
			if r.DefaultDuration != "" {
				yAdd(rm, "default_duration", yStr(r.DefaultDuration), "", "")
			}
			if r.MaxDuration != "" {
				yAdd(rm, "max_duration", yStr(r.MaxDuration), "", "")
			}
			yAdd(roles, r.ID, rm, "", "")
		}
		yAdd(sm, "roles", roles, "", "")
		yAdd(systems, s.ID, sm, "", "")
	}
	yAdd(root, "systems", systems, "What people ask for: /access SYSTEM ROLE [DURATION] [REASON]", "")

	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(doc); err != nil {
		return nil, fmt.Errorf("render the runbook: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("render the runbook: %w", err)
	}
	return buf.Bytes(), nil
}

// writeNew writes data to path atomically: a temporary file in the same
// directory, synced, then linked into place (refusing an existing path)
// or, with force, renamed over it. An interruption (ctx done) or any error
// removes the temporary file, so nothing is left behind.
func writeNew(ctx context.Context, path string, data []byte, force bool) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // after a link, the name is a second one: drop it
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(0o644)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = ctx.Err()
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if force {
		return os.Rename(tmp, path)
	}
	if err := os.Link(tmp, path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("%s exists; not overwriting it (use --force)", path)
		}
		// A file system without hard links: check, then rename.
		if _, serr := os.Stat(path); serr == nil {
			return fmt.Errorf("%s exists; not overwriting it (use --force)", path)
		}
		return os.Rename(tmp, path)
	}
	return nil
}

// writeNextSteps tells the administrator what to do after init: the Slack
// app, the two tokens, each connector's secrets, and the commands.
func writeNextSteps(w io.Writer, a *initAnswers, reg *connectors.Registry, out string) {
	fmt.Fprintln(w, "\nNext steps")
	fmt.Fprintln(w, "1. Create the Slack app: https://api.slack.com/apps → Create New App → From a manifest,")
	fmt.Fprintln(w, "   paste slack-app-manifest.yaml (in the accessbot repository; its command is /access),")
	fmt.Fprintln(w, "   and install it to your workspace.")
	fmt.Fprintln(w, "2. Create the two tokens and put them in the environment of accessbot:")
	fmt.Fprintln(w, "     SLACK_APP_TOKEN   Basic Information → App-Level Tokens, scope connections:write (xapp-…)")
	fmt.Fprintln(w, "     SLACK_BOT_TOKEN   OAuth & Permissions → Bot User OAuth Token (xoxb-…)")
	var secrets []string
	for _, s := range a.Systems {
		fields, _ := reg.Describe(s.Connector.Type)
		for _, f := range fields {
			sec, ok := s.Connector.Secrets[f.Key]
			switch {
			case !ok || !f.Secret:
			case sec.Env != "":
				secrets = append(secrets, fmt.Sprintf("     %-17s %s of %s (%s)", sec.Env, f.Key, s.ID, s.Connector.Type))
			default:
				secrets = append(secrets, fmt.Sprintf("     file %-12s %s of %s (%s): make sure accessbot can read it", sec.File, f.Key, s.ID, s.Connector.Type))
			}
		}
	}
	n := 3
	if len(secrets) > 0 {
		fmt.Fprintf(w, "%d. Give the connectors their secrets:\n", n)
		for _, s := range secrets {
			fmt.Fprintln(w, s)
		}
		n++
	}
	fmt.Fprintf(w, "%d. Invite the bot to the owners' channels and the audit channel you named.\n", n)
	n++
	fmt.Fprintf(w, "%d. Check it, ask it why, try it, run it:\n", n)
	fmt.Fprintf(w, "     accessbot validate --config %s\n", out)
	if as, sys, role := exampleRequest(a); as != "" {
		fmt.Fprintf(w, "     accessbot explain --config %s --as %s %s %s\n", out, as, sys, role)
	}
	fmt.Fprintf(w, "     accessbot sandbox --config %s     # the whole thing in a browser, no Slack needed\n", out)
	fmt.Fprintf(w, "     accessbot run --config %s\n", out)
}

// exampleRequest picks someone who may request a role, for the explain
// example: the first member of a team that is a requester.
func exampleRequest(a *initAnswers) (as, system, role string) {
	for _, s := range a.Systems {
		for _, r := range s.Roles {
			for _, q := range r.Requesters {
				name, ok := strings.CutPrefix(q, "team:")
				if !ok {
					continue
				}
				for _, t := range a.Teams {
					if t.Name == name && len(t.Members) > 0 {
						return t.Members[0], s.ID, r.ID
					}
				}
			}
		}
	}
	return "", "", ""
}

// nodeValue is the Go value of a rendered node, as the loader would read
// it (bool, int, list or string).
func nodeValue(n *yaml.Node) any {
	var v any
	if err := n.Decode(&v); err != nil {
		return n.Value
	}
	return v
}
