package main

// accessbot init: the keyboard-driven terminal form (charmbracelet/huh).
// One screen at a time, in the order a person thinks: Slack admins, the
// systems, then for each system its details and connector, its connector's
// settings (the connector's own keys, from connectors.Registry.Describe,
// each answer checked by building the connector as validate does), its
// roles, and the teams they name; a summary and a last "write it?". Every
// question has a default where one makes sense (Enter takes it).

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"unicode"

	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/huh"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/connectors"
)

// errInitDeclined is returned when the person answers no at the summary.
var errInitDeclined = errors.New("not written")

// formAsker runs one screen (a huh form) at a time on the terminal.
type formAsker struct {
	ctx context.Context
	reg *connectors.Registry
	tio initIO
}

// run shows one screen. The form runs in a bubbletea program of our own
// rather than through Form.Run, so that Ctrl-C quits the program the
// graceful way (Form.Run turns it into an interrupt, whose shutdown
// closes the terminal reader while its read loop may still be using it)
// and is reported as huh.ErrUserAborted.
func (f *formAsker) run(groups ...*huh.Group) error {
	form := huh.NewForm(groups...).WithShowHelp(true).WithAccessible(f.tio.accessible).WithKeyMap(initKeyMap())
	in, out := f.tio.in, f.tio.out
	if in == nil {
		in = os.Stdin
	}
	if out == nil {
		out = os.Stdout
	}
	if f.tio.accessible {
		return form.WithInput(in).WithOutput(out).RunWithContext(f.ctx)
	}
	form.SubmitCmd, form.CancelCmd = tea.Quit, tea.Quit
	_, err := tea.NewProgram(form, tea.WithInput(in), tea.WithOutput(out), tea.WithContext(f.ctx), tea.WithReportFocus()).Run()
	switch {
	case form.State == huh.StateAborted:
		return huh.ErrUserAborted
	case err != nil:
		return fmt.Errorf("terminal form: %w", err)
	case form.State != huh.StateCompleted:
		return huh.ErrUserAborted
	}
	return nil
}

// note is a form note whose description is shown verbatim. huh renders a
// note's description as a little markdown (_italic_, *bold*, `code`), so
// names like crm_admin would lose their underscores; in the full-screen
// form each of those characters is escaped with a backslash (which huh's
// renderer honours). The accessible mode prints descriptions as they are.
func (f *formAsker) note(title, description string) *huh.Note {
	return huh.NewNote().Title(title).Description(noteText(description, f.tio.accessible))
}

// noteText escapes description for huh's note renderer (not in
// accessible mode, which prints it unrendered).
func noteText(description string, accessible bool) string {
	if accessible {
		return description
	}
	return strings.NewReplacer(`\`, `\\`, "_", `\_`, "*", `\*`, "`", "\\`").Replace(description)
}

// initKeyMap is huh's, with Tab completing a suggestion (as shells do)
// rather than moving on; Enter moves on.
func initKeyMap() *huh.KeyMap {
	km := huh.NewDefaultKeyMap()
	km.Input.AcceptSuggestion = key.NewBinding(key.WithKeys("tab", "ctrl+e"), key.WithHelp("tab", "complete"))
	km.Input.Next = key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "next"))
	return km
}

// splitAnswers splits "a, b c" into items (commas or spaces).
func splitAnswers(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ',' || unicode.IsSpace(r) })
}

// orDefault is v, or def when v is blank.
func orDefault(v, def string) string {
	if strings.TrimSpace(v) == "" {
		return def
	}
	return strings.TrimSpace(v)
}

func checkPeopleAnswer(s string, required bool) error {
	ps := splitAnswers(s)
	if required && len(ps) == 0 {
		return errors.New("name at least one person, by email")
	}
	for _, p := range ps {
		if !userIDRe.MatchString(p) && !emailRe.MatchString(p) {
			return fmt.Errorf("%q is not an email address (or a Slack user ID)", p)
		}
	}
	return nil
}

// askAnswers asks everything, screen by screen.
func askAnswers(ctx context.Context, reg *connectors.Registry, tio initIO) (*initAnswers, error) {
	f := &formAsker{ctx: ctx, reg: reg, tio: tio}
	a := &initAnswers{}

	var admins, tz, audit, managerField, systems string
	err := f.run(huh.NewGroup(
		f.note("accessbot init", "A runbook in a few minutes: who may ask for access to what, who approves, for how long.\nEnter takes the suggested answer; Ctrl-C stops without writing anything."),
		huh.NewInput().Title("Slack admins").Description("Emails, comma-separated. Admins may revoke anything, and are asked when no one else can approve.").
			Value(&admins).Validate(func(s string) error { return checkPeopleAnswer(s, true) }),
		huh.NewInput().Title("Timezone").Description("For digests and the times people see (IANA name).").Placeholder(initDefaultTimezone).
			Suggestions([]string{"UTC", "Europe/London", "Europe/Berlin", "Europe/Paris", "America/New_York", "America/Los_Angeles", "Asia/Tokyo"}).
			Value(&tz).Validate(func(s string) error {
			return firstProblem(checkAnswers(&initAnswers{Timezone: strings.TrimSpace(s)}, reg), "timezone")
		}),
		huh.NewInput().Title("Audit channel (optional)").Description("A channel ID (C…) where every decision is copied, for auditors. Enter to skip.").
			Value(&audit).Validate(func(s string) error {
			if s = strings.TrimSpace(s); s != "" && !channelIDRe.MatchString(s) {
				return errors.New(channelIDHelp)
			}
			return nil
		}),
		huh.NewInput().Title("Managers' profile field (optional)").Description("The ID (Xf…) of a custom Slack profile field that holds each person's manager, for approver \"manager\". Enter to skip.").
			Value(&managerField).Validate(func(s string) error {
			if s = strings.TrimSpace(s); s != "" && !profileFieldRe.MatchString(s) {
				return errors.New("a profile field ID starts with Xf, like Xf0MANAGER")
			}
			return nil
		}),
		huh.NewInput().Title("Systems").Description("What people will ask for, comma-separated: the names they type in /access NAME ROLE.").
			Placeholder("crm").Value(&systems).Validate(func(s string) error {
			for _, id := range splitAnswers(orDefault(s, "crm")) {
				if !nameRe.MatchString(id) {
					return fmt.Errorf("%q: %s", id, nameHelp)
				}
			}
			return nil
		}),
	))
	if err != nil {
		return nil, err
	}
	a.Admins = splitAnswers(admins)
	a.Timezone = orDefault(tz, initDefaultTimezone)
	a.AuditChannel = strings.TrimSpace(audit)
	a.ManagerField = strings.TrimSpace(managerField)
	var ids []string
	for _, id := range splitAnswers(orDefault(systems, "crm")) {
		if !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	for _, id := range ids {
		s, err := f.askSystem(a, id)
		if err != nil {
			return nil, err
		}
		a.Systems = append(a.Systems, s)
	}

	write := true
	err = f.run(huh.NewGroup(
		f.note("Summary", summarizeAnswers(a)),
		huh.NewConfirm().Title("Write the runbook?").Affirmative("Write it").Negative("Cancel").Value(&write),
	))
	if err != nil {
		return nil, err
	}
	if !write {
		return nil, errInitDeclined
	}
	return a, nil
}

// firstProblem is the message of the first problem at path, or nil.
func firstProblem(ps []answerProblem, path string) error {
	for _, p := range ps {
		if p.Path == path || strings.HasPrefix(p.Path, path+".") || strings.HasPrefix(p.Path, path+"[") {
			return errors.New(p.Message)
		}
	}
	return nil
}

// askSystem is one system: its screen, its connector's settings, its
// roles.
func (f *formAsker) askSystem(a *initAnswers, id string) (initSystem, error) {
	s := initSystem{ID: id}
	var owners, digest, typ, roles string
	types := initTypes(f.reg.Types())
	err := f.run(huh.NewGroup(
		f.note("System "+id, fmt.Sprintf("People will ask with /access %s ROLE.", id)),
		huh.NewInput().Title("Display name").Placeholder(titleCase(id)).Value(&s.Name),
		huh.NewInput().Title("Description (optional)").Value(&s.Description),
		huh.NewInput().Title("Owners").Description("Emails, comma-separated. Owners approve as \"owners\" and are alerted when access cannot be removed.").
			Value(&owners).Validate(func(v string) error { return checkPeopleAnswer(v, true) }),
		huh.NewInput().Title("Owners' channel (optional)").Description("A channel ID (C…) for the owners' digests and alerts. Enter to skip.").
			Value(&s.Channel).Validate(func(v string) error {
			if v = strings.TrimSpace(v); v != "" && !channelIDRe.MatchString(v) {
				return errors.New(channelIDHelp)
			}
			return nil
		}),
		huh.NewInput().Title("Digest").Description(`"daily HH:MM", "weekly mon HH:MM" or "off" (a digest needs the owners' channel).`).
			Placeholder(initDefaultDigest).Suggestions([]string{"daily 09:00", "weekly mon 09:00", "off"}).Value(&digest).
			Validate(func(v string) error {
				_, err := access.ParseSchedule(orDefault(v, initDefaultDigest))
				return err
			}),
		huh.NewInput().Title("Connector").Description("How access is granted: "+strings.Join(types, ", ")+". Tab completes; manual means the owners do it by hand.").
			Placeholder("manual").Suggestions(types).Value(&typ).Validate(func(v string) error {
			v = orDefault(v, "manual")
			if !slices.Contains(types, v) {
				msg := fmt.Sprintf("%q is not a connector type", v)
				if g := suggest(v, types); g != "" {
					msg += fmt.Sprintf("; did you mean %q?", g)
				}
				return errors.New(msg)
			}
			return nil
		}),
		huh.NewInput().Title("Roles").Description("The kinds of access, comma-separated: what people type after the system name.").
			Placeholder("viewer").Value(&roles).Validate(func(v string) error {
			for _, r := range splitAnswers(orDefault(v, "viewer")) {
				if !nameRe.MatchString(r) {
					return fmt.Errorf("%q: %s", r, nameHelp)
				}
			}
			return nil
		}),
	))
	if err != nil {
		return s, err
	}
	s.Name = orDefault(s.Name, titleCase(id))
	s.Description = strings.TrimSpace(s.Description)
	s.Owners = splitAnswers(owners)
	s.Channel = strings.TrimSpace(s.Channel)
	s.Digest = orDefault(digest, initDefaultDigest)
	if s.Channel == "" {
		s.Digest = "off"
	}
	s.Connector.Type = orDefault(typ, "manual")
	if s.Connector, err = f.askConnector(id, s.Connector.Type); err != nil {
		return s, err
	}
	var rids []string
	for _, r := range splitAnswers(orDefault(roles, "viewer")) {
		if !slices.Contains(rids, r) {
			rids = append(rids, r)
		}
	}
	for _, rid := range rids {
		r, err := f.askRole(a, s, rid)
		if err != nil {
			return s, err
		}
		s.Roles = append(s.Roles, r)
	}
	return s, nil
}

func titleCase(id string) string {
	if id == "" {
		return id
	}
	return strings.ToUpper(id[:1]) + strings.ReplaceAll(id[1:], "_", " ")
}

// connectorCheck builds a connector block from answers exactly as
// validate does (secrets from the environment are placeholders) and
// returns its problems by key, "" for problems not tied to a key.
func connectorCheck(reg *connectors.Registry, name string, c initConnector) (map[string]string, access.Connector) {
	a := &initAnswers{Systems: []initSystem{{ID: name, Connector: c}}}
	raw := map[string]any{"type": c.Type}
	fields, _ := reg.Describe(c.Type)
	placeholders := map[string]bool{}
	for _, fd := range fields {
		if v := strings.TrimSpace(c.Settings[fd.Key]); v != "" && !fd.Secret {
			raw[fd.Key] = nodeValue(settingNode(fd.Kind, v))
		}
		if _, ok := c.Secrets[fd.Key]; ok && fd.Secret {
			// The value is not known here: a placeholder, and what the
			// connector says about it is left out, as validate does for
			// a missing secret.
			raw[fd.Key] = placeholderSecret
			placeholders[fd.Key] = true
		}
	}
	built, err := reg.Build(name, c.Type, raw, connectorsEnv())
	out := map[string]string{}
	for _, leaf := range leaves(err) {
		p := toProblem("connectors."+name, leaf.Error())
		key := strings.TrimPrefix(answerPath(a, p.Path), "systems[0].connector")
		key = strings.TrimPrefix(strings.TrimPrefix(key, ".settings."), ".secrets.")
		if placeholders[key] {
			continue
		}
		if _, dup := out[key]; !dup {
			out[key] = p.Message
		}
	}
	return out, built
}

// askConnector asks the connector's own keys: the required ones first
// (those a build with nothing set complains about), each secret's source,
// and, on request, the optional ones with their defaults.
func (f *formAsker) askConnector(system, typ string) (initConnector, error) {
	c := initConnector{Type: typ, Settings: map[string]string{}, Secrets: map[string]initSecret{}}
	fields, err := f.reg.Describe(typ)
	if err != nil {
		return c, err
	}
	empty, _ := connectorCheck(f.reg, system, initConnector{Type: typ})
	values := map[string]*string{}
	var required, optional []huh.Field
	for _, fd := range fields {
		if fd.SecretFileOf != "" || fd.Kind == connectors.KindMapping {
			continue
		}
		v := new(string)
		values[fd.Key] = v
		key := fd.Key
		if fd.Secret {
			desc := "A secret: never typed here. The environment variable that will hold it, or a file path (starting with / or ./); - if not used."
			if msg, ok := empty[key]; ok {
				desc = msg + ". " + desc
			}
			def := defaultSecretEnv(system, key)
			if _, req := empty[key]; !req {
				def = "-"
			}
			*v = ""
			required = append(required, huh.NewInput().Title(key+" comes from").Description(desc).Placeholder(def).Value(v).
				Validate(func(s string) error {
					_, err := secretAnswer(orDefault(s, def))
					return err
				}))
			continue
		}
		title := key
		desc := string(fd.Kind)
		if fd.Default != "" {
			desc += ", default " + fd.Default
		}
		in := huh.NewInput().Title(title).Value(v).Validate(func(s string) error {
			cur := f.connectorAnswers(c.Type, fields, values, system)
			probs, _ := connectorCheck(f.reg, system, cur)
			if msg, ok := probs[key]; ok && (strings.TrimSpace(s) != "" || strings.HasPrefix(msg, "required")) {
				return errors.New(msg)
			}
			return nil
		})
		if msg, ok := empty[key]; ok {
			required = append(required, in.Description(msg))
		} else {
			optional = append(optional, in.Description("optional, "+desc))
		}
	}
	if len(required)+len(optional) == 0 {
		return c, nil // nothing to ask (manual, slack_channel, …)
	}
	more := false
	var groups []*huh.Group
	intro := f.note(fmt.Sprintf("Connector %s for %s", typ, system), "Its own settings, checked as validate checks them.")
	first := append([]huh.Field{intro}, required...)
	if len(optional) > 0 {
		first = append(first, huh.NewConfirm().Title(fmt.Sprintf("Change its %d optional settings?", len(optional))).
			Affirmative("Yes").Negative("No, keep the defaults").Value(&more))
	}
	groups = append(groups, huh.NewGroup(first...))
	if len(optional) > 0 {
		groups = append(groups, huh.NewGroup(optional...).WithHideFunc(func() bool { return !more }))
	}
	for {
		if err := f.run(groups...); err != nil {
			return c, err
		}
		c = f.connectorAnswers(typ, fields, values, system)
		probs, _ := connectorCheck(f.reg, system, c)
		if len(probs) == 0 {
			return c, nil
		}
		// Problems that span keys (set token or client_id, not both):
		// show them and ask again.
		var lines []string
		for _, k := range sortedKeys(probs) {
			lines = append(lines, strings.TrimPrefix(k+": ", ": ")+probs[k])
		}
		groups[0] = huh.NewGroup(append([]huh.Field{
			f.note(fmt.Sprintf("Connector %s for %s: please fix", typ, system), strings.Join(lines, "\n")),
		}, first[1:]...)...)
	}
}

// connectorAnswers turns the form's values into settings and secrets.
func (f *formAsker) connectorAnswers(typ string, fields []connectors.Field, values map[string]*string, system string) initConnector {
	c := initConnector{Type: typ, Settings: map[string]string{}, Secrets: map[string]initSecret{}}
	empty, _ := connectorCheck(f.reg, system, initConnector{Type: typ})
	for _, fd := range fields {
		v, ok := values[fd.Key]
		if !ok {
			continue
		}
		if fd.Secret {
			def := defaultSecretEnv(system, fd.Key)
			if _, req := empty[fd.Key]; !req {
				def = "-"
			}
			if sec, err := secretAnswer(orDefault(*v, def)); err == nil && sec != (initSecret{}) {
				c.Secrets[fd.Key] = sec
			}
			continue
		}
		if s := strings.TrimSpace(*v); s != "" {
			c.Settings[fd.Key] = s
		}
	}
	return c
}

// secretAnswer reads "where a secret comes from": a variable name, a file
// path (/… or ./…), or - for none.
func secretAnswer(s string) (initSecret, error) {
	s = strings.TrimSpace(s)
	switch {
	case s == "-":
		return initSecret{}, nil
	case strings.HasPrefix(s, "/") || strings.HasPrefix(s, "./") || strings.HasPrefix(s, "../"):
		return initSecret{File: s}, nil
	case envNameRe.MatchString(s):
		return initSecret{Env: s}, nil
	}
	return initSecret{}, fmt.Errorf("%q is neither an environment variable name (CAPITALS_AND_UNDERSCORES) nor a file path (/… or ./…); the secret itself never goes in the runbook", s)
}

// askRole is one role's screen, then a screen per team it names that is
// not defined yet.
func (f *formAsker) askRole(a *initAnswers, s initSystem, rid string) (initRole, error) {
	r := initRole{ID: rid}
	var grant, requesters, approval, def, max string
	// The type's own check when the connector cannot be built here (its
	// secret is only a placeholder: a salesforce key must parse).
	_, built := connectorCheck(f.reg, s.ID, s.Connector)
	pc := paramsCheckerFor(s.Connector.Type, built)
	grantHelp := "key=value pairs, comma-separated, for the connector (" + s.Connector.Type + ")."
	if pc != nil {
		if err := checkParams(pc, map[string]string{}); err != nil {
			grantHelp += " It says: " + strings.ReplaceAll(err.Error(), "\n", "; ")
		}
	}
	// "manager" only where a manager can be found; otherwise the step
	// would always fall back to the owners.
	defApproval := "owners"
	if a.ManagerField != "" {
		defApproval = "manager; owners"
	}
	// Never "everyone" by default (guests included, DESIGN.md §2 warns
	// about everyone + auto): a named team, asked for next when new.
	defRequesters := "team:" + s.ID + "-users"
	if len(a.Teams) > 0 {
		defRequesters = "team:" + a.Teams[0].Name
	}
	err := f.run(huh.NewGroup(
		f.note(fmt.Sprintf("Role %s of %s", rid, s.ID), fmt.Sprintf("/access %s %s DURATION REASON", s.ID, rid)),
		huh.NewInput().Title("Description (optional)").Value(&r.Description),
		huh.NewInput().Title("Grant").Description(grantHelp).Value(&grant).Validate(func(v string) error {
			params, err := parseGrant(v)
			if err != nil || pc == nil {
				return err
			}
			return checkParams(pc, params)
		}),
		huh.NewInput().Title("Who may request").Description("Comma-separated: team:NAME (a new team is asked for next), usergroup:S…, or everyone (anyone in the workspace, guests included).").
			Placeholder(defRequesters).Value(&requesters).Validate(func(v string) error {
			for _, q := range splitAnswers(orDefault(v, defRequesters)) {
				if _, err := access.ParseSource(q, true); err != nil {
					return err
				}
			}
			return nil
		}),
		huh.NewInput().Title("Who approves").Description("auto (no human), or steps in order separated by ';', each a comma-separated list of manager, owners, team:NAME, usergroup:S…: like manager; owners").
			Placeholder(defApproval).Value(&approval).Validate(func(v string) error {
			_, err := parseApproval(orDefault(v, defApproval))
			return err
		}),
		huh.NewInput().Title("Default duration").Placeholder("1h").Value(&def).Validate(func(v string) error {
			_, err := access.ParseDuration(orDefault(v, "1h"))
			return err
		}),
		huh.NewInput().Title("Maximum duration").Description("Longer requests are refused, not cut.").Placeholder("8h").Value(&max).Validate(func(v string) error {
			m, err := access.ParseDuration(orDefault(v, "8h"))
			if err != nil {
				return err
			}
			if m > initMaxDuration {
				return fmt.Errorf("at most %s here; just-in-time access is short", access.FormatDuration(initMaxDuration))
			}
			if d, err := access.ParseDuration(orDefault(def, "1h")); err == nil && d > m {
				return fmt.Errorf("shorter than the default %s; the default must not exceed the maximum", access.FormatDuration(d))
			}
			return nil
		}),
	))
	if err != nil {
		return r, err
	}
	r.Description = strings.TrimSpace(r.Description)
	r.Grant, _ = parseGrant(grant)
	r.Requesters = splitAnswers(orDefault(requesters, defRequesters))
	r.Approval, _ = parseApproval(orDefault(approval, defApproval))
	r.DefaultDuration, r.MaxDuration = orDefault(def, "1h"), orDefault(max, "8h")
	var names []string
	for _, q := range r.Requesters {
		names = append(names, q)
	}
	for _, st := range r.Approval.Steps {
		names = append(names, st...)
	}
	for _, q := range names {
		name, ok := strings.CutPrefix(q, "team:")
		if !ok || slices.ContainsFunc(a.Teams, func(t initTeam) bool { return t.Name == name }) {
			continue
		}
		t, err := f.askTeam(name)
		if err != nil {
			return r, err
		}
		a.Teams = append(a.Teams, t)
	}
	return r, nil
}

// askTeam asks who is in a team named by a role.
func (f *formAsker) askTeam(name string) (initTeam, error) {
	t := initTeam{Name: name}
	var who string
	err := f.run(huh.NewGroup(
		huh.NewInput().Title("Team " + name).Description("Its members' emails, comma-separated, and/or a Slack user group ID (S…) whose members are looked up at run time.").
			Value(&who).Validate(func(v string) error {
			if len(splitAnswers(v)) == 0 {
				return errors.New("name at least one member (an email) or a user group (S…)")
			}
			for _, p := range splitAnswers(v) {
				if !usergroupIDRe.MatchString(p) && !emailRe.MatchString(p) && !userIDRe.MatchString(p) {
					return fmt.Errorf("%q is neither an email nor a Slack user group ID (S…)", p)
				}
			}
			return nil
		}),
	))
	for _, p := range splitAnswers(who) {
		if usergroupIDRe.MatchString(p) && t.Usergroup == "" {
			t.Usergroup = p
		} else {
			t.Members = append(t.Members, p)
		}
	}
	return t, err
}

// parseGrant reads "key=value, key=value".
func parseGrant(s string) (map[string]string, error) {
	out := map[string]string{}
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part == "" {
			continue
		}
		k, v, ok := strings.Cut(part, "=")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if !ok || k == "" || v == "" {
			return nil, fmt.Errorf("%q is not key=value", part)
		}
		out[k] = v
	}
	return out, nil
}

// parseApproval reads "auto" or "manager; owners, team:hr".
func parseApproval(s string) (initApproval, error) {
	if strings.EqualFold(strings.TrimSpace(s), "auto") {
		return initApproval{Auto: true}, nil
	}
	var a initApproval
	for _, step := range strings.Split(s, ";") {
		srcs := splitAnswers(step)
		if len(srcs) == 0 {
			return a, errors.New("an empty step; separate steps with ; and name who approves in each")
		}
		for _, q := range srcs {
			if _, err := access.ParseSource(q, false); err != nil {
				return a, err
			}
		}
		a.Steps = append(a.Steps, srcs)
	}
	return a, nil
}

// summarizeAnswers is the last screen's text.
func summarizeAnswers(a *initAnswers) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Admins: %s. Timezone %s.\n", strings.Join(a.Admins, ", "), a.Timezone)
	for _, t := range a.Teams {
		who := strings.Join(t.Members, ", ")
		if t.Usergroup != "" {
			who = strings.TrimPrefix(who+", user group "+t.Usergroup, ", ")
		}
		fmt.Fprintf(&b, "Team %s: %s.\n", t.Name, who)
	}
	for _, s := range a.Systems {
		fmt.Fprintf(&b, "\n%s (%s), owners %s, connector %s", s.ID, s.Name, strings.Join(s.Owners, ", "), s.Connector.Type)
		if len(s.Connector.Secrets) > 0 {
			var srcs []string
			for _, k := range sortedKeys(s.Connector.Secrets) {
				sec := s.Connector.Secrets[k]
				srcs = append(srcs, k+" from "+orDefault(sec.Env, sec.File))
			}
			fmt.Fprintf(&b, " (%s)", strings.Join(srcs, ", "))
		}
		b.WriteString("\n")
		for _, r := range s.Roles {
			appr := "auto"
			if !r.Approval.Auto {
				var steps []string
				for _, st := range r.Approval.Steps {
					steps = append(steps, strings.Join(st, " or "))
				}
				appr = strings.Join(steps, ", then ")
			}
			fmt.Fprintf(&b, "  %s: %s may request; approved by %s; %s by default, at most %s\n",
				r.ID, strings.Join(r.Requesters, ", "), appr, r.DefaultDuration, r.MaxDuration)
		}
	}
	return b.String()
}
