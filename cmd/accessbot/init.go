package main

// accessbot init (DESIGN.md §1, issue 18): a runbook from answers, asked in
// a terminal form (init_form.go) or read from a file (--from). The answers
// are checked by the same code as validate — the loader and each
// connector's own factory and CheckParams — on the runbook they produce,
// before anything is written; the file is written atomically.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/charmbracelet/huh"
	"go.yaml.in/yaml/v3"
	"golang.org/x/term"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/connectors"
)

// initAnswers is everything init asks, in the order a person thinks of
// it. It is also the --from file's format (YAML, unknown keys refused).
// People are Slack user IDs or emails; emails are written as they are and
// resolved when the bot starts.
type initAnswers struct {
	Admins       []string     `yaml:"admins"`
	Timezone     string       `yaml:"timezone,omitempty"`      // IANA name; default UTC
	AuditChannel string       `yaml:"audit_channel,omitempty"` // optional channel ID
	ManagerField string       `yaml:"manager_field,omitempty"` // Slack profile field holding each person's manager
	Teams        []initTeam   `yaml:"teams,omitempty"`
	Systems      []initSystem `yaml:"systems"`
}

type initTeam struct {
	Name      string   `yaml:"name"`
	Members   []string `yaml:"members,omitempty"` // emails or Slack user IDs
	Usergroup string   `yaml:"slack_usergroup,omitempty"`
}

type initSystem struct {
	ID          string        `yaml:"id"`
	Name        string        `yaml:"name,omitempty"`
	Description string        `yaml:"description,omitempty"`
	Owners      []string      `yaml:"owners"`
	Channel     string        `yaml:"channel,omitempty"`
	Digest      string        `yaml:"digest,omitempty"` // default: daily 09:00 with a channel, else off
	Connector   initConnector `yaml:"connector"`
	Roles       []initRole    `yaml:"roles"`
}

// initConnector is a system's connector: its type, its settings (the
// type's own keys, as connectors.Registry.Describe lists them) and where
// each secret comes from. A secret's value is never an answer.
type initConnector struct {
	Type     string                `yaml:"type"`
	Settings map[string]string     `yaml:"settings,omitempty"`
	Secrets  map[string]initSecret `yaml:"secrets,omitempty"`
}

// initSecret says where a secret comes from: an environment variable or a
// file (exactly one).
type initSecret struct {
	Env  string `yaml:"env,omitempty"`
	File string `yaml:"file,omitempty"`
}

type initRole struct {
	ID              string            `yaml:"id"`
	Description     string            `yaml:"description,omitempty"`
	Grant           map[string]string `yaml:"grant,omitempty"`
	Requesters      []string          `yaml:"requesters"` // team:NAME, usergroup:SID, everyone
	Approval        initApproval      `yaml:"approval"`
	DefaultDuration string            `yaml:"default_duration,omitempty"`
	MaxDuration     string            `yaml:"max_duration,omitempty"`
}

// initApproval is `auto`, or steps, each a list of approver sources:
// [[manager], [owners]].
type initApproval struct {
	Auto  bool
	Steps [][]string
}

// UnmarshalYAML reads `auto` or a list of lists.
func (a *initApproval) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		if strings.EqualFold(strings.TrimSpace(n.Value), "auto") {
			a.Auto = true
			return nil
		}
		return fmt.Errorf("line %d: approval: %q is not allowed; use auto, or steps like [[manager], [owners]]", n.Line, n.Value)
	}
	if err := n.Decode(&a.Steps); err != nil {
		return fmt.Errorf("line %d: approval: use auto, or steps as a list of lists like [[manager], [owners]]", n.Line)
	}
	return nil
}

// MarshalYAML writes auto or the steps.
func (a initApproval) MarshalYAML() (any, error) {
	if a.Auto {
		return "auto", nil
	}
	return a.Steps, nil
}

// Defaults written into the runbook when an answer is left out.
const (
	initDefaultTimezone = "UTC"
	initDefaultDigest   = "daily 09:00"
	initMaxDuration     = 30 * 24 * time.Hour // longest max_duration init accepts
)

var envNameRe = regexp.MustCompile(`^[A-Z_][A-Z0-9_]*$`)

// yamlFieldRe is how the YAML decoder names an unknown key.
var yamlFieldRe = regexp.MustCompile(`field (\S+) not found in type \S+`)

// answerProblem is a bad answer: its path in the answers (systems[1].
// connector.settings.client_id) and what is wrong.
type answerProblem struct {
	Path    string
	Message string
}

func (p answerProblem) String() string { return p.Path + ": " + p.Message }

// initError lists every bad answer.
type initError struct{ Problems []answerProblem }

func (e *initError) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// cmdInit is `accessbot init [--out FILE] [--from ANSWERS] [--force]`.
func cmdInit(args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	return runInit(args, stdout, stderr, getenv, initIO{in: os.Stdin, out: os.Stdout})
}

// initIO is where the form reads keys and draws (a terminal; tests pass a
// pseudo-terminal).
type initIO struct {
	in  io.Reader
	out io.Writer
	// accessible runs the form as plain line prompts (huh's accessible
	// mode) instead of full-screen.
	accessible bool
}

// checkTerminal refuses to start the form without a terminal to ask on:
// keys read from a pipe or a file, or a screen drawn into one, would make
// it hang or write escape codes, not a runbook. The full-screen form needs
// a terminal on both sides; the accessible one reads from one.
func (tio initIO) checkTerminal() error {
	in, out := tio.in, tio.out
	if in == nil {
		in = os.Stdin
	}
	if out == nil {
		out = os.Stdout
	}
	what := ""
	switch {
	case !isTerminal(in):
		what = "standard input is not a terminal"
	case !tio.accessible && !isTerminal(out):
		what = "standard output is not a terminal"
	default:
		return nil
	}
	return fmt.Errorf("%s, so the form cannot ask its questions. Without a terminal, write the answers to a file and run accessbot init --from ANSWERS.yaml (or --from - to read them from standard input); the answers file is described in the README (Set up in five minutes)", what)
}

// isTerminal reports whether f is an *os.File on a terminal.
func isTerminal(f any) bool {
	file, ok := f.(*os.File)
	return ok && term.IsTerminal(int(file.Fd()))
}

func runInit(args []string, stdout, stderr io.Writer, getenv func(string) string, tio initIO) int {
	fs := newCmdFlags("init", stdout, stderr)
	out := fs.String("out", "./config.yaml", "the runbook to write")
	from := fs.String("from", "", "read the answers from this YAML file (- for standard input) instead of asking")
	force := fs.Bool("force", false, "overwrite --out if it exists")
	accessible := fs.Bool("accessible", false, "ask with plain line prompts (screen readers) instead of the full-screen form")
	if code, done := parseFlags(fs, args); done {
		return code
	}
	tio.accessible = tio.accessible || *accessible
	if *from == "" {
		if err := tio.checkTerminal(); err != nil {
			fmt.Fprintf(stderr, "accessbot init: %v\nnothing was written\n", err)
			return exitBadUse
		}
	}
	if !*force {
		if _, err := os.Stat(*out); err == nil {
			fmt.Fprintf(stderr, "accessbot init: %s exists; not overwriting it (use --force, or --out another file)\n", *out)
			return exitBadUse
		}
	}
	// Ctrl-C while the file is being written waits for the write to
	// finish or be undone; in the form, Ctrl-C is a key (huh aborts).
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	reg := connectorRegistry()
	var a *initAnswers
	if *from != "" {
		var err error
		if a, err = readAnswers(*from, os.Stdin); err != nil {
			fmt.Fprintf(stderr, "accessbot init: %v\nnothing was written\n", err)
			return exitBadUse
		}
	} else {
		var err error
		a, err = askAnswers(ctx, reg, tio)
		if errors.Is(err, huh.ErrUserAborted) || errors.Is(err, errInitDeclined) || ctx.Err() != nil {
			fmt.Fprintln(stderr, "accessbot init: cancelled; nothing was written")
			return exitBadUse
		}
		if err != nil {
			fmt.Fprintf(stderr, "accessbot init: %v\nnothing was written\n", err)
			return exitRuntime
		}
	}
	data, err := buildRunbook(a, reg, *out, getenv)
	if err != nil {
		fmt.Fprintf(stderr, "accessbot init: bad answers:\n%v\nnothing was written\n", err)
		if *from == "" {
			// Typed answers are not lost: they can be fixed and replayed.
			if y, merr := yaml.Marshal(a); merr == nil {
				fmt.Fprintf(stderr, "\nYour answers, to fix and replay with accessbot init --from FILE:\n\n%s", y)
			}
		}
		return exitBadUse
	}
	if err := writeNew(ctx, *out, data, *force); err != nil {
		fmt.Fprintf(stderr, "accessbot init: %v\nnothing was written\n", err)
		return exitBadUse
	}
	// The same checks as validate, on the file as written.
	cfg, warns, err := loadForValidate(*out, getenv)
	if code, bad := reportConfigError(*out, err, stderr); bad {
		for _, w := range warns {
			fmt.Fprintln(stderr, "warning: "+w)
		}
		return code
	}
	fmt.Fprintf(stdout, "Wrote %s.\n\n", *out)
	writeSummary(stdout, cfg)
	writeNextSteps(stdout, a, reg, *out)
	return exitOK
}

// readAnswers reads an answers file strictly (unknown keys are errors).
func readAnswers(path string, stdin io.Reader) (*initAnswers, error) {
	var data []byte
	var err error
	if path == "-" {
		data, err = io.ReadAll(io.LimitReader(stdin, maxConfigSize+1))
	} else {
		data, err = os.ReadFile(path)
	}
	if err != nil {
		return nil, err
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var a initAnswers
	if err := dec.Decode(&a); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%s: no answers in it", path)
		}
		msg := strings.TrimPrefix(err.Error(), "yaml: ")
		msg = yamlFieldRe.ReplaceAllString(msg, `unknown key "$1"`)
		msg = strings.ReplaceAll(msg, "unmarshal errors:\n  ", "")
		return nil, fmt.Errorf("%s: %s", path, msg)
	}
	return &a, nil
}

// checkAnswers checks what can be checked on the answers themselves, with
// the answers' paths. The runbook they produce is checked afterwards by
// validate's code (buildRunbook).
func checkAnswers(a *initAnswers, reg *connectors.Registry) []answerProblem {
	var ps []answerProblem
	bad := func(path, format string, args ...any) {
		ps = append(ps, answerProblem{path, fmt.Sprintf(format, args...)})
	}
	person := func(path, p string) {
		if !userIDRe.MatchString(p) && !emailRe.MatchString(p) {
			bad(path, "%q is neither an email address nor a Slack user ID (U…)", p)
		}
	}
	if len(a.Admins) == 0 {
		bad("admins", "name at least one admin (an email): admins may revoke anything and are the last resort for approvals")
	}
	for i, p := range a.Admins {
		person(fmt.Sprintf("admins[%d]", i), p)
	}
	if a.Timezone != "" {
		if _, err := time.LoadLocation(a.Timezone); err != nil || a.Timezone == "Local" {
			bad("timezone", "%q is not a known timezone; use an IANA name like Europe/Berlin or UTC", a.Timezone)
		}
	}
	teams := map[string]bool{}
	for i, t := range a.Teams {
		path := fmt.Sprintf("teams[%d]", i)
		switch {
		case !nameRe.MatchString(t.Name):
			bad(path+".name", "%q is not a valid team name; %s", t.Name, nameHelp)
		case teams[t.Name]:
			bad(path+".name", "team %q is defined twice", t.Name)
		}
		teams[t.Name] = true
		for j, m := range t.Members {
			person(fmt.Sprintf("%s.members[%d]", path, j), m)
		}
		if len(t.Members) == 0 && t.Usergroup == "" {
			bad(path, "a team needs members (emails) or a slack_usergroup")
		}
	}
	if len(a.Systems) == 0 {
		bad("systems", "name at least one system people will ask for")
	}
	systems := map[string]bool{}
	types := reg.Types()
	for i, s := range a.Systems {
		path := fmt.Sprintf("systems[%d]", i)
		switch {
		case !nameRe.MatchString(s.ID):
			bad(path+".id", "%q is not a valid system name (what people type in /access SYSTEM ROLE); %s", s.ID, nameHelp)
		case systems[s.ID]:
			bad(path+".id", "system %q is named twice", s.ID)
		}
		systems[s.ID] = true
		if len(s.Owners) == 0 {
			bad(path+".owners", "name at least one owner (an email): owners approve as \"owners\" and are alerted when access cannot be removed")
		}
		for j, p := range s.Owners {
			person(fmt.Sprintf("%s.owners[%d]", path, j), p)
		}
		if s.Digest != "" {
			if _, err := access.ParseSchedule(s.Digest); err != nil {
				bad(path+".digest", "%v", err)
			}
		}
		cp := path + ".connector"
		fields, err := reg.Describe(s.Connector.Type)
		switch {
		case s.Connector.Type == "":
			bad(cp+".type", "missing: choose one of %s", strings.Join(initTypes(types), ", "))
		case isLookupType(s.Connector.Type):
			bad(cp+".type", "%s only answers lookups (who is on call, whether a ticket is open) and grants nothing, so it cannot be a system's connector; choose one of %s (a role can ask %s through approval.auto_if_on_call or ticket.verify: add those by hand after init)",
				s.Connector.Type, strings.Join(initTypes(types), ", "), s.Connector.Type)
		case s.Connector.Type == "memory" || err != nil:
			msg := fmt.Sprintf("unknown connector type %q (known: %s)", s.Connector.Type, strings.Join(initTypes(types), ", "))
			if g := suggest(s.Connector.Type, initTypes(types)); g != "" {
				msg += fmt.Sprintf("; did you mean %q?", g)
			}
			bad(cp+".type", "%s", msg)
		default:
			ps = append(ps, checkConnectorAnswers(cp, s.Connector, fields)...)
		}
		if len(s.Roles) == 0 {
			bad(path+".roles", "name at least one role, like viewer")
		}
		roles := map[string]bool{}
		for j, r := range s.Roles {
			rp := fmt.Sprintf("%s.roles[%d]", path, j)
			switch {
			case !nameRe.MatchString(r.ID):
				bad(rp+".id", "%q is not a valid role name; %s", r.ID, nameHelp)
			case roles[r.ID]:
				bad(rp+".id", "role %q is named twice in %s", r.ID, s.ID)
			}
			roles[r.ID] = true
			if len(r.Requesters) == 0 {
				bad(rp+".requesters", "say who may request it: team:NAME, usergroup:SID or everyone")
			}
			for k, q := range r.Requesters {
				src, err := access.ParseSource(q, true)
				if err != nil {
					bad(fmt.Sprintf("%s.requesters[%d]", rp, k), "%v", err)
				} else if src.Kind == access.SourceTeam && !teams[src.Ref] {
					bad(fmt.Sprintf("%s.requesters[%d]", rp, k), "team %q is not among the teams%s", src.Ref, didYouMean(src.Ref, sortedKeys(teams)))
				}
			}
			if !r.Approval.Auto && len(r.Approval.Steps) == 0 {
				bad(rp+".approval", "say who approves: auto, or steps like [[manager], [owners]]")
			}
			for k, step := range r.Approval.Steps {
				sp := fmt.Sprintf("%s.approval[%d]", rp, k)
				if len(step) == 0 {
					bad(sp, "a step needs at least one approver: manager, owners, team:NAME or usergroup:SID")
				}
				for m, q := range step {
					src, err := access.ParseSource(q, false)
					if err != nil {
						bad(fmt.Sprintf("%s[%d]", sp, m), "%v", err)
					} else if src.Kind == access.SourceTeam && !teams[src.Ref] {
						bad(fmt.Sprintf("%s[%d]", sp, m), "team %q is not among the teams%s", src.Ref, didYouMean(src.Ref, sortedKeys(teams)))
					}
				}
			}
			var def, max time.Duration
			if r.DefaultDuration != "" {
				if def, err = access.ParseDuration(r.DefaultDuration); err != nil {
					bad(rp+".default_duration", "%v", err)
				}
			}
			if r.MaxDuration != "" {
				if max, err = access.ParseDuration(r.MaxDuration); err != nil {
					bad(rp+".max_duration", "%v", err)
				} else if max > initMaxDuration {
					bad(rp+".max_duration", "%s is over the longest init accepts (%s); just-in-time access is short: edit the file by hand if you really mean it", access.FormatDuration(max), access.FormatDuration(initMaxDuration))
				}
			}
			if max == 0 {
				max = defaultMaxDuration
			}
			if def > max {
				bad(rp+".default_duration", "%s is over the maximum %s; the default must not exceed max_duration", access.FormatDuration(def), access.FormatDuration(max))
			}
		}
	}
	return ps
}

// initTypes are the connector types init offers for a system: all but
// the test-only memory connector, which run refuses, and the lookup-only
// types (on-call schedules, tickets), which grant nothing and which no
// system may name (validate refuses them).
func initTypes(types []string) []string {
	return slices.DeleteFunc(slices.Clone(types), func(t string) bool { return t == "memory" || isLookupType(t) })
}

// checkConnectorAnswers checks that settings and secrets name keys of the
// connector type (its own declaration, Registry.Describe) and that every
// secret comes from exactly one of an environment variable or a file.
// Values are checked by the connector itself, in buildRunbook.
func checkConnectorAnswers(path string, c initConnector, fields []connectors.Field) []answerProblem {
	var ps []answerProblem
	var settingKeys, secretKeys []string
	for _, f := range fields {
		switch {
		case f.Secret:
			secretKeys = append(secretKeys, f.Key)
		case f.SecretFileOf != "", f.Kind == connectors.KindMapping:
		default:
			settingKeys = append(settingKeys, f.Key)
		}
	}
	unknown := func(p, k string, keys []string, what string) {
		msg := fmt.Sprintf("%s has no %s %q", c.Type, what, k)
		if len(keys) == 0 {
			msg += " (it has none)"
		} else {
			msg += " (it has: " + strings.Join(keys, ", ") + ")"
		}
		if g := suggest(k, keys); g != "" {
			msg += fmt.Sprintf("; did you mean %q?", g)
		}
		ps = append(ps, answerProblem{p, msg})
	}
	for _, k := range sortedKeys(c.Settings) {
		if slices.Contains(secretKeys, k) {
			ps = append(ps, answerProblem{path + ".settings." + k, "is a secret: give it under secrets, as {env: VARIABLE} or {file: PATH}, never its value"})
			continue
		}
		if !slices.Contains(settingKeys, k) {
			unknown(path+".settings."+k, k, settingKeys, "setting")
		}
	}
	for _, k := range sortedKeys(c.Secrets) {
		p := path + ".secrets." + k
		if !slices.Contains(secretKeys, k) {
			unknown(p, k, secretKeys, "secret")
			continue
		}
		s := c.Secrets[k]
		switch {
		case (s.Env == "") == (s.File == ""):
			ps = append(ps, answerProblem{p, "give exactly one of env: VARIABLE or file: PATH"})
		case s.Env != "" && !envNameRe.MatchString(s.Env):
			ps = append(ps, answerProblem{p + ".env", fmt.Sprintf("%q is not an environment variable name; use capital letters, digits and _, like %s", s.Env, defaultSecretEnv("crm", k))})
		}
	}
	return ps
}

// defaultSecretEnv is the environment variable init proposes for a
// system's secret: CRM_PRIVATE_KEY.
func defaultSecretEnv(system, key string) string {
	return strings.ToUpper(strings.NewReplacer("-", "_").Replace(system + "_" + key))
}

// buildRunbook checks the answers and renders the runbook. Every problem —
// the answers' own and what validate finds in the runbook they produce
// (each connector's factory and grant parameter checks included) — is
// returned in an *initError naming the answer, and nothing is written.
func buildRunbook(a *initAnswers, reg *connectors.Registry, outPath string, getenv func(string) string) ([]byte, error) {
	ps := checkAnswers(a, reg)
	data, err := renderRunbook(a, reg)
	if err != nil {
		// An unknown connector type (reported above) leaves nothing to
		// render; validate's checks need the runbook.
		if len(ps) > 0 {
			return nil, &initError{ps}
		}
		return nil, err
	}
	// validate's checks on the bytes, as validate runs them on a file.
	cfg, ce := loadConfigPartial(outPath, data, getenv, environNames(os.Environ()))
	var probs []Problem
	if ce != nil {
		probs = append(probs, ce.Problems...)
	}
	if cfg != nil {
		prior := slices.Clone(cfg.UnsetVars)
		prior = append(prior, probs...)
		more, _ := validateConnectorsAfter(cfg, reg, connectorsEnv(), prior)
		probs = append(probs, more...)
	}
	// validate's view of what the answers already reported is left out
	// (an email the answers refused is also a bad slack.admins entry).
	known := make([]Problem, len(ps))
	for i, p := range ps {
		known[i] = Problem{Path: p.Path}
	}
	seen := reported(known)
	for _, p := range probs {
		if ap := answerPath(a, p.Path); !seen(ap) {
			ps = append(ps, answerProblem{ap, p.Message})
		}
	}
	if len(ps) == 0 {
		return data, nil
	}
	return nil, &initError{ps}
}

// answerPath maps a runbook key path back to the answer it came from
// (connectors.crm.client_id → systems[1].connector.settings.client_id).
func answerPath(a *initAnswers, path string) string {
	sysIndex := func(id string) int {
		return slices.IndexFunc(a.Systems, func(s initSystem) bool { return s.ID == id })
	}
	head, rest, _ := strings.Cut(path, ".")
	switch head {
	case "slack":
		return rest // admins[0], audit_channel
	case "directory":
		return "manager_field"
	case "teams":
		name, tail, _ := strings.Cut(rest, ".")
		if i := slices.IndexFunc(a.Teams, func(t initTeam) bool { return t.Name == name }); i >= 0 {
			return join(fmt.Sprintf("teams[%d]", i), tail)
		}
	case "connectors":
		name, key, _ := strings.Cut(rest, ".")
		if i := sysIndex(name); i >= 0 {
			base := fmt.Sprintf("systems[%d].connector", i)
			key = strings.TrimSuffix(key, "_file")
			switch {
			case key == "" || key == "type":
				return join(base, key)
			case a.Systems[i].Connector.Secrets[key] != (initSecret{}) || isSecretKey(key):
				return base + ".secrets." + key
			default:
				return base + ".settings." + key
			}
		}
	case "systems":
		id, tail, _ := strings.Cut(rest, ".")
		i := sysIndex(id)
		if i < 0 {
			break
		}
		base := fmt.Sprintf("systems[%d]", i)
		if r, ok := strings.CutPrefix(tail, "roles."); ok {
			rid, rtail, _ := strings.Cut(r, ".")
			if j := slices.IndexFunc(a.Systems[i].Roles, func(x initRole) bool { return x.ID == rid }); j >= 0 {
				rtail = strings.Replace(rtail, "approval.steps", "approval", 1)
				rtail = strings.Replace(rtail, "].approvers", "]", 1)
				return join(fmt.Sprintf("%s.roles[%d]", base, j), rtail)
			}
		}
		if tail == "digest.schedule" {
			tail = "digest"
		}
		return join(base, tail)
	}
	return path
}
