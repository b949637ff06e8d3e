package main

// accessbot test (DESIGN.md §1, §9; issue 16): runbook policy tests. Each
// case is evaluated by access.Runbook.Explain — the bot's own policy
// functions — against a static directory (the runbook plus the file's
// people section), with no Slack and no network.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/jstemmer/go-junit-report/v2/junit"
	"go.yaml.in/yaml/v3"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/bot"
)

// The keys of a case file (DESIGN.md §9). Unknown keys are errors: a
// misspelt expectation must not make a test pass by checking nothing.
var (
	caseFileKeys = []string{"people", "cases"}
	caseKeys     = []string{"name", "as", "request", "expect"}
	expectKeys   = []string{"allowed", "auto", "steps", "not_approvers", "max_duration", "error", "break_glass"}
)

// policyCase is one case of a case file, as written.
type policyCase struct {
	File    string
	Path    string // cases[3]
	Line    int
	Name    string
	As      string
	Request string
	Expect  expectation
}

// expectation holds what a case expects; nil fields are not checked.
type expectation struct {
	Allowed      *bool
	Auto         *bool
	Steps        [][]string // nil: not checked; people as written
	StepsSet     bool
	NotApprovers []string
	MaxDuration  *time.Duration
	Error        *string
	// BreakGlass: may the person break the glass on the role (its
	// break_glass: requesters); with --break-glass in the request,
	// allowed is break-glass's verdict.
	BreakGlass *bool
}

// caseResult is a case's outcome: Failures are the expectations the
// runbook does not meet, each a paragraph; Err is a case that could not be
// evaluated (a person nobody names, a request that does not parse).
type caseResult struct {
	Case     policyCase
	Failures []string
	Err      error
	Context  []string // what the runbook says, printed under failures
	// Notes are what the case is not judged on (time windows) or how
	// (the ticket), printed under the case whether it passes or fails.
	Notes []string
}

func (r caseResult) ok() bool { return r.Err == nil && len(r.Failures) == 0 }

// cmdTest is `accessbot test [--config FILE] [--junit FILE] CASES.yaml…`.
// It prints one line per case and, for each failing one, what was expected
// and what the runbook says; it exits 1 when any case fails or a file is
// invalid (every problem listed with its path), 0 otherwise.
func cmdTest(args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	fs, config := newFlags("test", stdout, stderr)
	junitFile := fs.String("junit", "", "also write the results as JUnit XML to this file (for CI)")
	files, code, done := parseInterleaved(fs, args)
	if done {
		return code
	}
	if len(files) == 0 {
		fmt.Fprintln(stderr, "accessbot test: name at least one case file, e.g. accessbot test --config config.yaml config.test.yaml")
		return exitBadUse
	}
	cfg, err := LoadConfig(*config, getenv)
	if code, bad := reportConfigError(*config, err, stderr); bad {
		return code
	}
	type fileRun struct {
		file    string
		off     *offline
		cases   []policyCase
		results []caseResult
	}
	var runs []*fileRun
	bad := false
	for _, f := range files {
		off, cases, probs, err := readCaseFile(cfg, f)
		if err != nil {
			fmt.Fprintf(stderr, "accessbot test: %v\n", err)
			bad = true
			continue
		}
		if printProblems(stderr, f, probs) {
			bad = true
			continue
		}
		runs = append(runs, &fileRun{file: f, off: off, cases: cases})
	}
	if bad {
		fmt.Fprintln(stderr, "accessbot test: fix the case files above; no case was run")
		return exitBadUse
	}
	passed, failed := 0, 0
	for _, r := range runs {
		for _, w := range r.off.warnings {
			fmt.Fprintf(stdout, "%s: note: %s\n", r.file, w)
		}
		for _, c := range r.cases {
			res := runCase(r.off, c)
			r.results = append(r.results, res)
			if res.ok() {
				passed++
				fmt.Fprintf(stdout, "ok    %s\n", c.Name)
				for _, n := range res.Notes {
					fmt.Fprintf(stdout, "      note: %s\n", n)
				}
				continue
			}
			failed++
			writeFailure(stdout, res)
		}
	}
	fmt.Fprintf(stdout, "\n%s: %d case(s): %d passed, %d failed\n", *config, passed+failed, passed, failed)
	if *junitFile != "" {
		var suites junit.Testsuites
		for i, r := range runs {
			suites.AddSuite(junitSuite(i, r.file, r.results))
		}
		if err := writeJUnit(*junitFile, &suites); err != nil {
			fmt.Fprintf(stderr, "accessbot test: --junit: %v\n", err)
			return exitRuntime
		}
	}
	if failed > 0 {
		return exitBadUse
	}
	return exitOK
}

// readCaseFile reads a case file: its people section (for a static
// directory over cfg's runbook) and its cases. Structural problems (unknown
// keys, wrong types, missing keys) are returned with their paths; err is
// for a file that cannot be read.
func readCaseFile(cfg *Config, file string) (*offline, []policyCase, []fileProblem, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, nil, nil, err
	}
	root, probs := parseYAMLFile(file, data)
	if len(probs) > 0 {
		return nil, nil, probs, nil
	}
	probs = append(probs, checkKeys(root, "", caseFileKeys)...)
	people, pp := readPeople(mapValue(root, "people"))
	probs = append(probs, pp...)
	cases, cp := readCases(file, mapValue(root, "cases"), root.Line)
	probs = append(probs, cp...)
	if len(probs) > 0 {
		return nil, nil, probs, nil
	}
	off, err := newOffline(cfg, people)
	if err != nil {
		return nil, nil, []fileProblem{{Path: "people", Message: err.Error()}}, nil
	}
	return off, cases, nil, nil
}

// readCases reads the cases list.
func readCases(file string, n *yaml.Node, line int) ([]policyCase, []fileProblem) {
	if n == nil {
		return nil, []fileProblem{{Path: "cases", Line: line, Message: "missing: list the cases, each with name, as, request and expect"}}
	}
	if n.Kind != yaml.SequenceNode || len(n.Content) == 0 {
		return nil, []fileProblem{{Path: "cases", Line: n.Line, Message: "expected a list of cases, each with name, as, request and expect"}}
	}
	var out []policyCase
	var probs []fileProblem
	names := map[string]string{}
	for i, cn := range n.Content {
		path := fmt.Sprintf("cases[%d]", i)
		if cn.Kind != yaml.MappingNode {
			probs = append(probs, fileProblem{Path: path, Line: cn.Line, Message: "expected a mapping with name, as, request and expect"})
			continue
		}
		probs = append(probs, checkKeys(cn, path, caseKeys)...)
		c := policyCase{File: file, Path: path, Line: cn.Line}
		for _, k := range []struct {
			key string
			dst *string
		}{{"name", &c.Name}, {"as", &c.As}, {"request", &c.Request}} {
			v := mapValue(cn, k.key)
			if v == nil {
				probs = append(probs, fileProblem{Path: path + "." + k.key, Line: cn.Line, Message: "missing"})
				continue
			}
			s, p := scalar(v, path+"."+k.key)
			if p != nil {
				probs = append(probs, *p)
			} else if s == "" {
				probs = append(probs, fileProblem{Path: path + "." + k.key, Line: v.Line, Message: "empty"})
			}
			*k.dst = s
		}
		if prev, dup := names[c.Name]; dup && c.Name != "" {
			probs = append(probs, fileProblem{Path: path + ".name", Line: cn.Line, Message: fmt.Sprintf("%q is also the name of %s; names must tell cases apart in reports", c.Name, prev)})
		}
		names[c.Name] = path
		e, ep := readExpect(mapValue(cn, "expect"), path+".expect", cn.Line)
		probs = append(probs, ep...)
		c.Expect = e
		out = append(out, c)
	}
	return out, probs
}

// readExpect reads a case's expect mapping.
func readExpect(n *yaml.Node, path string, line int) (expectation, []fileProblem) {
	var e expectation
	if n == nil {
		return e, []fileProblem{{Path: path, Line: line, Message: "missing: say what to expect (" + strings.Join(expectKeys, ", ") + ")"}}
	}
	if n.Kind != yaml.MappingNode || len(n.Content) == 0 {
		return e, []fileProblem{{Path: path, Line: n.Line, Message: "expected a mapping with at least one of " + strings.Join(expectKeys, ", ")}}
	}
	probs := checkKeys(n, path, expectKeys)
	boolean := func(key string) *bool {
		v := mapValue(n, key)
		if v == nil {
			return nil
		}
		var b bool
		if v.Kind != yaml.ScalarNode || v.Decode(&b) != nil || v.Tag != "!!bool" {
			probs = append(probs, fileProblem{Path: path + "." + key, Line: v.Line, Message: "must be true or false"})
			return nil
		}
		return &b
	}
	e.Allowed, e.Auto, e.BreakGlass = boolean("allowed"), boolean("auto"), boolean("break_glass")
	if v := mapValue(n, "steps"); v != nil {
		e.StepsSet = true
		e.Steps = [][]string{}
		if v.Kind != yaml.SequenceNode {
			probs = append(probs, fileProblem{Path: path + ".steps", Line: v.Line, Message: "expected a list of steps, each a list of people: [[U0BOB0001], [U0CAROL01, U0ERIN001]]"})
		} else {
			for i, sn := range v.Content {
				sp := fmt.Sprintf("%s.steps[%d]", path, i)
				if sn.Kind != yaml.SequenceNode {
					probs = append(probs, fileProblem{Path: sp, Line: sn.Line, Message: "expected a list of the people asked in this step, like [U0CAROL01, U0ERIN001]"})
					continue
				}
				people, ps := scalarList(sn, sp)
				probs = append(probs, ps...)
				e.Steps = append(e.Steps, people)
			}
		}
	}
	if v := mapValue(n, "not_approvers"); v != nil {
		people, ps := scalarList(v, path+".not_approvers")
		probs = append(probs, ps...)
		e.NotApprovers = people
	}
	if v := mapValue(n, "max_duration"); v != nil {
		s, p := scalar(v, path+".max_duration")
		if p != nil {
			probs = append(probs, *p)
		} else if d, err := access.ParseDuration(s); err != nil {
			probs = append(probs, fileProblem{Path: path + ".max_duration", Line: v.Line, Message: err.Error()})
		} else {
			e.MaxDuration = &d
		}
	}
	if v := mapValue(n, "error"); v != nil {
		s, p := scalar(v, path+".error")
		if p != nil {
			probs = append(probs, *p)
		} else if s == "" {
			probs = append(probs, fileProblem{Path: path + ".error", Line: v.Line, Message: "empty: give a part of the refusal's text"})
		} else {
			e.Error = &s
		}
	}
	if e.Error != nil && e.Allowed != nil && *e.Allowed {
		probs = append(probs, fileProblem{Path: path + ".error", Line: n.Line, Message: "expects a refusal, but allowed is true"})
	}
	return e, probs
}

// runCase evaluates c with the bot's policy and compares.
func runCase(off *offline, c policyCase) caseResult {
	res := caseResult{Case: c}
	who, err := off.person(c.As, true)
	if err != nil {
		res.Err = fmt.Errorf("as: %w", err)
		return res
	}
	cmd, err := bot.ParseCommand(c.Request)
	if err == nil && (cmd.Verb != bot.VerbRequest && cmd.Verb != bot.VerbModal || cmd.System == "" || cmd.Role == "") {
		err = errors.New("not a request; write SYSTEM ROLE [DURATION] [REASON…], like crm viewer 2h")
	}
	if err != nil {
		res.Err = fmt.Errorf("request: %w", err)
		return res
	}
	asker := ""
	if cmd.For != "" {
		// `for PERSON …`: as asks on PERSON's behalf; PERSON is the
		// requester the policy judges.
		ben, err := off.person(cmd.For, true)
		if err != nil {
			res.Err = fmt.Errorf("request: for: %w", err)
			return res
		}
		who, asker = ben, who
	}
	ex, err := off.rb.Explain(context.Background(), off.dir, access.ExplainInput{
		Requester: who, System: cmd.System, Role: cmd.Role, Duration: cmd.Duration, Reason: cmd.Reason, Now: time.Now(),
		BreakGlass: cmd.BreakGlass, RequestedBy: asker,
	})
	if err != nil {
		res.Err = err
		return res
	}
	// What Explain leaves to admission: the ticket pattern is checked
	// here as the bot checks it; the time windows are noted.
	off.applyTicket(ex, cmd.Reason)
	res.Notes = off.caseNotes(ex, cmd.Reason)
	want := c.Expect
	fail := func(format string, args ...any) { res.Failures = append(res.Failures, fmt.Sprintf(format, args...)) }
	refusedOr := func() string {
		if ex.Allowed {
			return "the runbook allows it" + off.matched(ex)
		}
		return "the runbook refuses it: " + ex.RefusalText
	}
	if want.Allowed != nil && *want.Allowed != ex.Allowed {
		fail("allowed: expected %v; %s", *want.Allowed, refusedOr())
	}
	if want.Error != nil {
		switch {
		case ex.Allowed:
			fail("error: expected a refusal containing %q; the runbook allows it%s", *want.Error, off.matched(ex))
		case !strings.Contains(strings.ToLower(ex.RefusalText), strings.ToLower(*want.Error)):
			fail("error: expected a refusal containing %q; the runbook says: %s", *want.Error, ex.RefusalText)
		}
	}
	if want.Auto != nil {
		got := ex.Auto && ex.Allowed
		switch {
		case *want.Auto && !ex.Allowed:
			fail("auto: expected a grant with no human; %s", refusedOr())
		case *want.Auto != got:
			fail("auto: expected %v; the role has %s", *want.Auto, describeApprovalOf(ex))
		}
	}
	if want.BreakGlass != nil && ex.Role != "" {
		got := ex.BreakGlass != nil && ex.BreakGlass.Allowed
		if *want.BreakGlass != got {
			fail("break_glass: expected %v; %s", *want.BreakGlass, describeBreakGlass(ex))
		}
	}
	if want.MaxDuration != nil && ex.Role != "" && *want.MaxDuration != ex.Duration.Max {
		fail("max_duration: expected %s; the runbook says %s (set at %s)", access.FormatDuration(*want.MaxDuration), access.FormatDuration(ex.Duration.Max), orDash(ex.Duration.MaxFrom))
	}
	if want.StepsSet {
		res.Failures = append(res.Failures, off.compareSteps(want.Steps, ex, &res)...)
	}
	for _, ref := range want.NotApprovers {
		id, err := off.person(ref, true)
		if err != nil {
			res.Err = fmt.Errorf("not_approvers: %w", err)
			return res
		}
		for _, st := range ex.Steps {
			if slices.Contains(st.Approvers, id) {
				fail("not_approvers: %s would be asked in step %d (%s)", off.show(id), st.Number, off.stepWhy(st))
			}
		}
	}
	if res.Err == nil && len(res.Failures) > 0 {
		res.Context = off.context(ex)
	}
	return res
}

// compareSteps compares the expected people per step with the
// explanation's approvers, as sets, step by step.
func (o *offline) compareSteps(want [][]string, ex *access.Explanation, res *caseResult) []string {
	var out []string
	resolved := make([][]string, len(want))
	for i, step := range want {
		for _, ref := range step {
			id, err := o.person(ref, true)
			if err != nil {
				res.Err = fmt.Errorf("steps[%d]: %w", i, err)
				return nil
			}
			resolved[i] = append(resolved[i], id)
		}
	}
	if len(want) != len(ex.Steps) {
		got := "no approval steps (" + describeApprovalOf(ex) + ")"
		if len(ex.Steps) > 0 {
			var parts []string
			for _, st := range ex.Steps {
				parts = append(parts, fmt.Sprintf("step %d asks %s", st.Number, o.showAll(st.Approvers)))
			}
			got = fmt.Sprintf("%d step(s): %s", len(ex.Steps), strings.Join(parts, "; "))
		}
		return []string{fmt.Sprintf("steps: expected %d step(s); the runbook has %s", len(want), got)}
	}
	for i, st := range ex.Steps {
		w := slices.Clone(resolved[i])
		g := slices.Clone(st.Approvers)
		slices.Sort(w)
		slices.Sort(g)
		w, g = slices.Compact(w), slices.Compact(g)
		if slices.Equal(w, g) {
			continue
		}
		got := "asks " + o.showAll(st.Approvers)
		if st.Error != "" {
			got = "cannot be met: " + st.Error
		}
		out = append(out, fmt.Sprintf("steps: step %d: expected %s; the runbook %s (%s)", st.Number, o.showAll(resolved[i]), got, o.stepWhy(st)))
	}
	return out
}

// stepWhy says how a step found its approvers: each source's people and
// the fallback.
func (o *offline) stepWhy(st access.StepExplanation) string {
	var parts []string
	for _, s := range st.Sources {
		p := s.Source + " -> " + o.showAll(s.People)
		if s.Note != "" {
			p += " [" + s.Note + "]"
		}
		parts = append(parts, p)
	}
	switch st.Fallback {
	case "owners":
		parts = append(parts, "too few, so it falls back to the system owners")
	case "admins":
		parts = append(parts, "too few even with the owners, so it falls back to slack.admins")
	}
	return strings.Join(parts, "; ")
}

// matched is ", by rule R (why)" for an allowed request.
func (o *offline) matched(ex *access.Explanation) string {
	for _, r := range ex.Requesters {
		if r.Matched {
			return fmt.Sprintf(" (rule %s: %s)", r.Rule, r.Why)
		}
	}
	return ""
}

// context is what the runbook says about the case, printed under its
// failures: the requester rules and the approval.
func (o *offline) context(ex *access.Explanation) []string {
	var out []string
	if ex.Role == "" {
		return nil
	}
	var rules []string
	for _, r := range ex.Requesters {
		mark := "no"
		if r.Matched {
			mark = "MATCHED"
		}
		rules = append(rules, fmt.Sprintf("%s %s (%s)", r.Rule, mark, r.Why))
	}
	out = append(out, "requester rules: "+orDash(strings.Join(rules, "; ")))
	if ex.Auto {
		out = append(out, "approval: auto")
	}
	for _, st := range ex.Steps {
		line := fmt.Sprintf("step %d (%d of %s) asks %s", st.Number, st.Min, sourcesOf(st), o.showAll(st.Approvers))
		out = append(out, line+"  <- "+o.stepWhy(st))
	}
	return out
}

func sourcesOf(st access.StepExplanation) string {
	var s []string
	for _, src := range st.Sources {
		s = append(s, src.Source)
	}
	return strings.Join(s, ", ")
}

func describeApprovalOf(ex *access.Explanation) string {
	if ex.Auto {
		return "approval: auto"
	}
	return fmt.Sprintf("%d approval step(s)", len(ex.Steps))
}

// writeFailure prints a failing case: where it is, what it asked, each
// unmet expectation, and what the runbook says.
func writeFailure(w io.Writer, r caseResult) {
	c := r.Case
	fmt.Fprintf(w, "FAIL  %s\n", c.Name)
	fmt.Fprintf(w, "      %s: line %d: %s: as %s, request %q\n", c.File, c.Line, c.Path, c.As, c.Request)
	if r.Err != nil {
		fmt.Fprintf(w, "      cannot evaluate: %v\n", r.Err)
		return
	}
	for _, f := range r.Failures {
		fmt.Fprintf(w, "      %s\n", f)
	}
	for _, l := range r.Context {
		fmt.Fprintf(w, "        | %s\n", l)
	}
	for _, n := range r.Notes {
		fmt.Fprintf(w, "      note: %s\n", n)
	}
}

// junitSuite is one case file as a JUnit test suite: a failing
// expectation is a <failure>, a case that could not be evaluated an
// <error>.
func junitSuite(id int, file string, results []caseResult) junit.Testsuite {
	s := junit.Testsuite{Name: file, ID: id, Time: "0", File: file}
	class := strings.TrimSuffix(filepath.Base(file), filepath.Ext(file))
	for _, r := range results {
		tc := junit.Testcase{Name: r.Case.Name, Classname: class, Time: "0"}
		var b strings.Builder
		writeFailure(&b, r)
		switch {
		case r.Err != nil:
			tc.Error = &junit.Result{Message: r.Err.Error(), Type: "invalid case", Data: b.String()}
		case len(r.Failures) > 0:
			tc.Failure = &junit.Result{Message: r.Failures[0], Type: "policy", Data: b.String()}
		}
		s.AddTestcase(tc)
	}
	return s
}

// writeJUnit writes the report atomically (temp file, then rename), so a
// CI job never reads half a report, creating its directory if needed.
func writeJUnit(path string, suites *junit.Testsuites) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return writeFileAtomic(path, func(w io.Writer) error {
		if _, err := io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?>`+"\n"); err != nil {
			return err
		}
		return suites.WriteXML(w)
	}, 0o644)
}

// writeFileAtomic writes path through a temporary file in the same
// directory and renames it into place, so that an interruption at any
// point leaves either the old file or the complete new one, never part of
// one. The temporary file is removed on any error.
func writeFileAtomic(path string, write func(io.Writer) error, perm os.FileMode) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if err = write(f); err != nil {
		return err
	}
	if err = f.Chmod(perm); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}
