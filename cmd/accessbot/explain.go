package main

// accessbot explain (DESIGN.md §1, issue 16): what the bot would decide for
// one request and why, from the runbook alone (plus a people file), with
// the same policy functions the bot runs (access.Runbook.Explain).

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/accessbot/accessbot/access"
)

// cmdExplain is `accessbot explain [--config FILE] [--people FILE] --as
// PERSON SYSTEM ROLE [DURATION]`. It prints the explanation and exits 0,
// whether the request would be allowed or refused; bad input (an invalid
// runbook or people file, an unknown person, a malformed duration) exits 1
// with one line per problem.
func cmdExplain(args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	fs, config := newFlags("explain", stdout, stderr)
	peopleFile := fs.String("people", "", "YAML file with a people: section (a test case file will do): managers and user groups the runbook only knows at run time")
	as := fs.String("as", "", "the requester: a Slack user ID, or an email from the runbook or the people file (required)")
	breakGlass := fs.Bool("break-glass", false, "explain breaking the glass (the role's break_glass:) instead of an ordinary request")
	forWho := fs.String("for", "", "explain a request --as makes on behalf of this person (the role's on_behalf:): a Slack user ID or email")
	atFlag := fs.String("at", "", "explain a request made at this time (the role's time windows): RFC 3339, or \"2006-01-02 15:04\" in the runbook's timezone (default: now)")
	pos, code, done := parseInterleaved(fs, args)
	if done {
		return code
	}
	if *as == "" || len(pos) < 2 || len(pos) > 3 {
		fmt.Fprintln(stderr, "accessbot explain: need --as PERSON, SYSTEM and ROLE, and at most a DURATION; e.g. accessbot explain --as alice@example.com crm viewer 2h")
		return exitBadUse
	}
	var d time.Duration
	if len(pos) == 3 {
		var err error
		if d, err = access.ParseDuration(pos[2]); err != nil {
			fmt.Fprintf(stderr, "accessbot explain: DURATION: %v\n", err)
			return exitBadUse
		}
	}
	off, code := openOffline(*config, *peopleFile, getenv, stderr)
	if off == nil {
		return code
	}
	who, err := off.person(*as, false)
	if err != nil {
		fmt.Fprintf(stderr, "accessbot explain: --as: %v\n", err)
		return exitBadUse
	}
	asker := ""
	if *forWho != "" {
		ben, err := off.person(*forWho, false)
		if err != nil {
			fmt.Fprintf(stderr, "accessbot explain: --for: %v\n", err)
			return exitBadUse
		}
		who, asker = ben, who
	}
	at, err := parseAt(*atFlag, off.rb.Location, time.Now())
	if err != nil {
		fmt.Fprintf(stderr, "accessbot explain: --at: %v\n", err)
		return exitBadUse
	}
	ex, err := off.rb.Explain(context.Background(), off.dir, access.ExplainInput{
		Requester: who, System: pos[0], Role: pos[1], Duration: d, Now: at, BreakGlass: *breakGlass, RequestedBy: asker,
	})
	if err != nil {
		fmt.Fprintf(stderr, "accessbot explain: %v\n", err)
		return exitRuntime
	}
	off.writeExplanation(stdout, ex)
	return exitOK
}

// parseAt reads explain's --at: RFC 3339, or a wall-clock "2006-01-02
// 15:04" (or with a T) in loc (nil: UTC); "" is now.
func parseAt(s string, loc *time.Location, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return now, nil
	}
	if loc == nil {
		loc = time.UTC
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	for _, layout := range []string{"2006-01-02 15:04", "2006-01-02T15:04"} {
		if t, err := time.ParseInLocation(layout, s, loc); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is not a time: use RFC 3339 (2026-12-05T10:00:00+01:00) or \"2026-12-05 10:00\" in the runbook's timezone (%s)", s, loc)
}

// parseInterleaved parses flags that may come before, between or after
// positional arguments (the flag package stops at the first positional
// one). It returns the positional arguments in order.
func parseInterleaved(fs *flagSet, args []string) (pos []string, code int, done bool) {
	for {
		if help, err := fs.parse(args); err != nil {
			if help {
				return nil, exitOK, true
			}
			return nil, exitBadUse, true
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, 0, false
		}
		if args[0] == "--" {
			return append(pos, args[1:]...), 0, false
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// offline is a runbook evaluated with no Slack: a StaticDirectory built
// from a people section, and the set of people the runbook or the people
// section name (to tell a typo from a person).
type offline struct {
	cfg   *Config
	rb    *access.Runbook
	dir   *access.StaticDirectory
	named map[string]bool // Slack IDs and lower-case emails named anywhere
	// warnings are about the people section: parts the runbook never reads.
	warnings []string
}

// openOffline loads the runbook (problems printed, exit 1) and the people
// file, if any. A nil *offline means: return the code.
func openOffline(config, peopleFile string, getenv func(string) string, stderr io.Writer) (*offline, int) {
	cfg, err := LoadConfig(config, getenv)
	if code, bad := reportConfigError(config, err, stderr); bad {
		return nil, code
	}
	var people []access.StaticPerson
	if peopleFile != "" {
		data, err := os.ReadFile(peopleFile)
		if err != nil {
			fmt.Fprintf(stderr, "accessbot: %v\n", err)
			return nil, exitBadUse
		}
		root, probs := parseYAMLFile(peopleFile, data)
		if len(probs) == 0 {
			var ps []access.StaticPerson
			ps, probs = readPeople(mapValue(root, "people"))
			people = ps
			probs = append(probs, checkKeys(root, "", []string{"people", "cases"})...)
		}
		if printProblems(stderr, peopleFile, probs) {
			return nil, exitBadUse
		}
	}
	off, err := newOffline(cfg, people)
	if err != nil {
		fmt.Fprintf(stderr, "accessbot: %s: %v\n", peopleFile, err)
		return nil, exitBadUse
	}
	return off, exitOK
}

// reportConfigError prints a runbook's problems the way validate does.
func reportConfigError(path string, err error, stderr io.Writer) (int, bool) {
	var ce *ConfigError
	switch {
	case errors.As(err, &ce):
		for _, p := range ce.Problems {
			fmt.Fprintln(stderr, p.String())
		}
		fmt.Fprintf(stderr, "%s: %d problem(s); see above (accessbot validate lists them too)\n", path, len(ce.Problems))
		return exitBadUse, true
	case err != nil:
		fmt.Fprintf(stderr, "accessbot: %v\n", err)
		return exitBadUse, true
	}
	return exitOK, false
}

// newOffline builds the static directory and the set of named people.
func newOffline(cfg *Config, people []access.StaticPerson) (*offline, error) {
	dir, err := access.NewStaticDirectory(people)
	if err != nil {
		return nil, err
	}
	// Owners and admins written as emails are resolved the way run
	// resolves them (with the static directory an unlisted email stays
	// itself: never an error), on a copy: each people section resolves
	// them anew.
	rb := cloneForPeople(cfg.Runbook)
	if err := rb.ResolveEmails(context.Background(), dir); err != nil {
		return nil, err
	}
	off := &offline{cfg: cfg, rb: rb, dir: dir, named: map[string]bool{}}
	name := func(refs ...string) {
		for _, r := range refs {
			if r = strings.TrimSpace(r); r != "" {
				off.named[strings.ToLower(r)] = true
				off.named[r] = true
			}
		}
	}
	name(rb.Admins...)
	for req, mgr := range rb.Managers.Static {
		name(req, mgr)
	}
	for _, t := range rb.Teams {
		name(t.Members...)
	}
	for _, sys := range rb.Systems {
		name(sys.Owners...)
		for _, r := range sys.Roles {
			for _, p := range r.Requesters {
				if p.Kind == access.SourceUser {
					name(p.Ref)
				}
			}
			for _, st := range r.Approval.Steps {
				for _, s := range st.Sources {
					if s.Kind == access.SourceUser {
						name(s.Ref)
					}
				}
			}
			var more []access.Source
			if r.BreakGlass != nil {
				more = append(more, r.BreakGlass.Requesters...)
			}
			for _, s := range append(more, r.OnBehalf...) {
				if s.Kind == access.SourceUser {
					name(s.Ref)
				}
			}
		}
	}
	for _, p := range people {
		name(p.ID, p.Email, p.Manager)
		_, static := rb.Managers.Static[p.ID]
		switch {
		case p.Manager == "":
		case static:
			off.warnings = append(off.warnings, fmt.Sprintf("people.%s.manager is not used: directory.managers.static names their manager, and it comes first", p.ID))
		case rb.Managers.ProfileField == "":
			off.warnings = append(off.warnings, fmt.Sprintf("people.%s.manager is not used: the runbook finds managers only in directory.managers.static (no slack_profile_field), as the bot would", p.ID))
		}
	}
	return off, nil
}

// cloneForPeople copies what ResolveEmails changes (admins, systems and
// their owners); roles and teams are shared, read-only.
func cloneForPeople(rb *access.Runbook) *access.Runbook {
	c := *rb
	c.Admins = slices.Clone(rb.Admins)
	c.Systems = make(map[string]*access.System, len(rb.Systems))
	for id, sys := range rb.Systems {
		s := *sys
		s.Owners = slices.Clone(sys.Owners)
		c.Systems[id] = &s
	}
	return &c
}

// person turns a reference (Slack user ID or email) into the identity the
// policy uses: the listed person's ID, a Slack ID as it is, or an email
// the runbook names only by email (which stands for that person). strict
// also refuses a Slack ID that neither the runbook nor the people section
// names, so that a typo in a test case is an error, not a stranger.
func (o *offline) person(ref string, strict bool) (string, error) {
	ref = strings.TrimSpace(ref)
	if id, ok := o.dir.Listed(ref); ok {
		return id, nil
	}
	switch {
	case userIDRe.MatchString(ref):
		if strict && !o.named[ref] {
			return "", fmt.Errorf("%s is neither in the runbook nor in the people section; add them to people: (with their email, manager and user groups)", ref)
		}
		return ref, nil
	case emailRe.MatchString(ref):
		if !o.named[strings.ToLower(ref)] {
			return "", fmt.Errorf("%s is neither in the runbook nor in the people section; use their Slack user ID, or add them to people: with this email", ref)
		}
		id, _ := o.dir.UserByEmail(context.Background(), ref)
		return id, nil
	}
	return "", fmt.Errorf("%q is neither a Slack user ID (U…/W…) nor an email", ref)
}

// show renders a person for people: "U0BOB0001 (bob@example.com)", or the
// email alone for a person known only by email.
func (o *offline) show(id string) string {
	p, _ := o.dir.Person(context.Background(), id)
	if p.Email != "" && p.Email != id {
		return fmt.Sprintf("%s (%s)", id, p.Email)
	}
	return id
}

func (o *offline) showAll(ids []string) string {
	if len(ids) == 0 {
		return "nobody"
	}
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = o.show(id)
	}
	return strings.Join(out, ", ")
}

// writeExplanation prints ex for people.
func (o *offline) writeExplanation(w io.Writer, ex *access.Explanation) {
	target := strings.TrimSpace(ex.System + " " + ex.Role)
	if sys := o.rb.Systems[ex.System]; sys != nil && sys.Name != "" {
		target += " (" + sys.Name + ")"
	}
	if ex.RequestedBy != "" {
		fmt.Fprintf(w, "%s asking on behalf of %s for %s\n", o.show(ex.RequestedBy), o.show(ex.Requester), target)
	} else {
		fmt.Fprintf(w, "%s asking for %s\n", o.show(ex.Requester), target)
	}
	bgRequested := ex.BreakGlass != nil && ex.BreakGlass.Requested
	win, sys, role := o.windowAt(ex)
	if ex.Allowed {
		verdict := "ALLOWED"
		if bgRequested {
			verdict += ", granted at once by breaking the glass (no approval; the owners, the role's approvers and the audit channel are told)"
		} else if ex.Auto && win.AutoAllowed() {
			verdict += ", granted at once with no human (approval: auto)"
		} else if ex.Auto {
			verdict += ", but not at once: outside its time windows approval: auto does not apply, so the approvers are asked"
		} else {
			verdict += fmt.Sprintf(", after %d approval step(s)", len(ex.Steps))
		}
		if !bgRequested && win.Refused() {
			// The policy allows it, the clock does not (Service.Check
			// refuses it outside the windows).
			fmt.Fprintf(w, "  REFUSED at this time: %s\n", win.Refusal(sys, role).Error())
			fmt.Fprintf(w, "  inside its time windows: %s\n", verdict)
		} else {
			fmt.Fprintf(w, "  %s\n", verdict)
		}
	} else {
		fmt.Fprintf(w, "  REFUSED: %s\n", ex.RefusalText)
	}
	for _, warn := range o.warnings {
		fmt.Fprintf(w, "  note: %s\n", warn)
	}
	if ex.Role == "" {
		return
	}
	if bgRequested {
		fmt.Fprintln(w, "\nWho may break the glass (any rule of break_glass.requesters):")
	} else {
		fmt.Fprintln(w, "\nWho may request (any rule):")
	}
	if len(ex.Requesters) == 0 {
		fmt.Fprintln(w, "  no rules: nobody may")
	}
	for _, r := range ex.Requesters {
		mark := "no "
		if r.Matched {
			mark = "yes"
		}
		fmt.Fprintf(w, "  %s %-22s %s\n", mark, r.Rule, r.Why)
	}
	du := ex.Duration
	fmt.Fprintln(w, "\nDuration:")
	if du.Effective > 0 {
		how := "the role default"
		if du.Requested > 0 {
			how = "as requested"
		}
		fmt.Fprintf(w, "  granted for %s (%s)\n", access.FormatDuration(du.Effective), how)
	}
	fmt.Fprintf(w, "  default %s  from %s\n", access.FormatDuration(du.Default), orDash(du.DefaultFrom))
	fmt.Fprintf(w, "  max     %s  from %s\n", access.FormatDuration(du.Max), orDash(du.MaxFrom))
	if !ex.Auto && !bgRequested {
		fmt.Fprintf(w, "  pending requests time out after %s  from %s\n", access.FormatDuration(du.ApprovalTimeout), orDash(du.ApprovalTimeoutFrom))
	}
	reason := "optional"
	if ex.ReasonRequired {
		reason = "required"
	}
	fmt.Fprintf(w, "  reason  %s  from %s\n", reason, orDash(ex.ReasonFrom))
	o.writeWhenAndTicket(w, ex, bgRequested) // explain_runbook.go
	defer o.writeExtras(w, ex)
	if bgRequested {
		fmt.Fprintln(w, "\nApproval: none (break glass; audited, flagged in the digest, the owners may revoke it at once)")
		return
	}
	if ex.Auto {
		fmt.Fprintln(w, "\nApproval: auto (no human; audited and in the digest)")
		return
	}
	fmt.Fprintln(w, "\nApproval steps, in order (one deny ends the request):")
	if !ex.Distinct {
		fmt.Fprintln(w, "  (approval.distinct: false: one person may approve several steps)")
	}
	for _, st := range ex.Steps {
		var srcs []string
		for _, s := range st.Sources {
			srcs = append(srcs, s.Source)
		}
		fmt.Fprintf(w, "  step %d: %d of %s\n", st.Number, st.Min, strings.Join(srcs, ", "))
		for _, s := range st.Sources {
			line := fmt.Sprintf("    %-10s -> %s", s.Source, o.showAll(s.People))
			if s.Note != "" {
				line += "  (" + s.Note + ")"
			}
			fmt.Fprintln(w, line)
		}
		if len(st.Excluded) > 0 {
			why := "the requester never approves their own request"
			if ex.RequestedBy != "" {
				why = "neither the requester nor the person who asked for them approves it"
			}
			fmt.Fprintf(w, "    not asked: %s (%s)\n", o.showAll(st.Excluded), why)
		}
		switch st.Fallback {
		case "owners":
			fmt.Fprintln(w, "    fallback: too few people, so the system owners are asked instead")
		case "admins":
			fmt.Fprintln(w, "    fallback: too few people even with the owners, so slack.admins are asked too")
		}
		if st.Error != "" {
			fmt.Fprintf(w, "    CANNOT BE MET: %s\n", st.Error)
			continue
		}
		fmt.Fprintf(w, "    asks: %s\n", o.showAll(st.Approvers))
		if len(st.Shared) > 0 && ex.Distinct {
			fmt.Fprintf(w, "    separation of duties: %s also asked in an earlier step; whoever of them approves it is not asked here (too few left: the owners, then the admins)\n",
				o.showAll(st.Shared))
		}
	}
}

// --- strict YAML reading for the tools' own files (people, cases) ---

// fileProblem is a problem in a tools file: its key path and line.
type fileProblem struct {
	Path    string // cases[2].expect.allowed
	Line    int
	Message string
}

func (p fileProblem) String() string {
	loc := p.Path
	if p.Line > 0 {
		loc = fmt.Sprintf("line %d: %s", p.Line, p.Path)
	}
	if p.Path == "" && p.Line == 0 {
		return p.Message
	}
	return loc + ": " + p.Message
}

// printProblems prints each problem as "FILE: line N: path: message" and
// reports whether there were any.
func printProblems(w io.Writer, file string, probs []fileProblem) bool {
	for _, p := range probs {
		fmt.Fprintf(w, "%s: %s\n", file, p)
	}
	return len(probs) > 0
}

// parseYAMLFile parses one YAML document into its root mapping.
func parseYAMLFile(file string, data []byte) (*yaml.Node, []fileProblem) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, []fileProblem{{Message: "not valid YAML: " + yamlMessage(err, data)}}
	}
	if len(doc.Content) == 0 {
		return nil, []fileProblem{{Message: "the file is empty"}}
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, []fileProblem{{Line: root.Line, Message: "expected a mapping at the top"}}
	}
	return root, nil
}

// mapValue returns the value of key in mapping n, or nil.
func mapValue(n *yaml.Node, key string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

// checkKeys reports the keys of mapping n (at path) that are not in known,
// with a did-you-mean, and repeated keys.
func checkKeys(n *yaml.Node, path string, known []string) []fileProblem {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	var out []fileProblem
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := n.Content[i]
		kp := join(path, k.Value)
		switch {
		case seen[k.Value]:
			out = append(out, fileProblem{Path: kp, Line: k.Line, Message: "repeated key"})
		case !slices.Contains(known, k.Value):
			msg := "unknown key"
			if s := suggest(k.Value, known); s != "" {
				msg += fmt.Sprintf("; did you mean %q?", s)
			}
			out = append(out, fileProblem{Path: kp, Line: k.Line, Message: msg + " (known: " + strings.Join(known, ", ") + ")"})
		}
		seen[k.Value] = true
	}
	return out
}

// scalar returns a scalar's value, or a problem.
func scalar(n *yaml.Node, path string) (string, *fileProblem) {
	if n.Kind != yaml.ScalarNode {
		return "", &fileProblem{Path: path, Line: n.Line, Message: "expected a single value"}
	}
	return strings.TrimSpace(n.Value), nil
}

// scalarList returns a list of scalars (a single scalar counts as a list
// of one).
func scalarList(n *yaml.Node, path string) ([]string, []fileProblem) {
	if n.Kind == yaml.ScalarNode {
		return []string{strings.TrimSpace(n.Value)}, nil
	}
	if n.Kind != yaml.SequenceNode {
		return nil, []fileProblem{{Path: path, Line: n.Line, Message: "expected a list"}}
	}
	var out []string
	var probs []fileProblem
	for i, e := range n.Content {
		v, p := scalar(e, fmt.Sprintf("%s[%d]", path, i))
		if p != nil {
			probs = append(probs, *p)
			continue
		}
		out = append(out, v)
	}
	return out, probs
}

// readPeople reads a people section: `U0…: {email, name, manager,
// usergroups}` (DESIGN.md §9).
func readPeople(n *yaml.Node) ([]access.StaticPerson, []fileProblem) {
	if n == nil || n.Tag == "!!null" {
		return nil, nil
	}
	if n.Kind != yaml.MappingNode {
		return nil, []fileProblem{{Path: "people", Line: n.Line, Message: "expected a mapping of Slack user ID to {email, manager, usergroups}"}}
	}
	var out []access.StaticPerson
	var probs []fileProblem
	add := func(p *fileProblem) {
		if p != nil {
			probs = append(probs, *p)
		}
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		path := "people." + k.Value
		if !userIDRe.MatchString(k.Value) {
			probs = append(probs, fileProblem{Path: path, Line: k.Line, Message: fmt.Sprintf("%q is not a Slack user ID; %s", k.Value, userIDHelp)})
			continue
		}
		p := access.StaticPerson{ID: k.Value}
		if v.Kind != yaml.MappingNode && v.Tag != "!!null" {
			probs = append(probs, fileProblem{Path: path, Line: v.Line, Message: "expected {email, name, manager, usergroups}"})
			continue
		}
		probs = append(probs, checkKeys(v, path, []string{"email", "name", "manager", "usergroups"})...)
		if e := mapValue(v, "email"); e != nil {
			s, pr := scalar(e, path+".email")
			add(pr)
			if pr == nil && !emailRe.MatchString(s) {
				add(&fileProblem{Path: path + ".email", Line: e.Line, Message: fmt.Sprintf("%q is not an email address", s)})
			}
			p.Email = s
		}
		if e := mapValue(v, "name"); e != nil {
			s, pr := scalar(e, path+".name")
			add(pr)
			p.Name = s
		}
		if e := mapValue(v, "manager"); e != nil {
			s, pr := scalar(e, path+".manager")
			add(pr)
			if pr == nil && !userIDRe.MatchString(s) && !emailRe.MatchString(s) {
				add(&fileProblem{Path: path + ".manager", Line: e.Line, Message: fmt.Sprintf("%q is neither a Slack user ID nor an email", s)})
			}
			if s == k.Value {
				add(&fileProblem{Path: path + ".manager", Line: e.Line, Message: "a person cannot be their own manager"})
			}
			p.Manager = s
		}
		if e := mapValue(v, "usergroups"); e != nil {
			gs, ps := scalarList(e, path+".usergroups")
			probs = append(probs, ps...)
			for j, g := range gs {
				if !usergroupIDRe.MatchString(g) {
					add(&fileProblem{Path: fmt.Sprintf("%s.usergroups[%d]", path, j), Line: e.Line, Message: fmt.Sprintf("%q is not a Slack user group ID; %s", g, usergroupIDHelp)})
				}
			}
			p.Usergroups = gs
		}
		out = append(out, p)
	}
	return out, probs
}
