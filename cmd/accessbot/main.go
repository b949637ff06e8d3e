// Command accessbot is a Slack bot for just-in-time access approval
// (DESIGN.md §1). This file is the command-line dispatcher; config.go
// loads the runbook.
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"

	// Embedded zone database: time.LoadLocation must work in a scratch or
	// distroless container that has no /usr/share/zoneinfo.
	_ "time/tzdata"
)

// Exit codes (DESIGN.md §1).
const (
	exitOK      = 0
	exitBadUse  = 1 // bad configuration or input
	exitRuntime = 2 // runtime failure
)

// Build information, set with -ldflags "-X main.version=… -X main.commit=…".
var (
	version = "dev"
	commit  = ""
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr, os.Getenv))
}

// command is one subcommand. run gets the arguments after the subcommand
// name and returns the exit code.
type command struct {
	run func(args []string, stdout, stderr io.Writer, getenv func(string) string) int
}

// commands is the dispatch table. Add a subcommand here and its help in
// helpTexts.
func commands() map[string]command {
	return map[string]command{
		"init":     {cmdInit},
		"run":      {cmdRun},
		"explain":  {cmdExplain},
		"demo":     {cmdDemo},
		"audit":    {auditCommand},
		"test":     {cmdTest},
		"validate": {cmdValidate},
		"sandbox":  {cmdSandbox},
		"store":    {storeCommand},
		"version":  {cmdVersion},
	}
}

// helpText is a command's help: how to call it and what it does.
type helpText struct {
	name     string // "run", "audit verify"
	synopsis string // the arguments after the name
	summary  string
}

// helpTexts is every command's help, in the order `accessbot help` lists
// them: the top-level list, and the first lines of `accessbot COMMAND -h`.
var helpTexts = []helpText{
	{"init", "[--out FILE] [--from ANSWERS.yaml|-] [--force] [--accessible]", "build a runbook by answering questions (a terminal form, or an answers file)"},
	{"validate", "[--config FILE]", "check a runbook and summarise it; every problem by key path"},
	{"explain", "[--config FILE] [--people FILE] [--at TIME] [--break-glass | --for PERSON] --as PERSON SYSTEM ROLE [DURATION]", "who may request it, the limits, the time windows and ticket, who would approve, and why"},
	{"test", "[--config FILE] [--junit FILE] CASES.yaml…", "run runbook policy tests (no Slack); exit 1 on any failure"},
	{"sandbox", "[--config FILE] [--listen ADDR] [--store PATH] [--people FILE] [--live NAME]…", "try your runbook in a browser: a Slack-like page over the real bot, connectors as dry-run stand-ins"},
	{"demo", "[--config config.example.yaml]", "a scripted request → approve → grant → expiry story on config.example.yaml, against a built-in Slack emulator"},
	{"run", "[--config FILE]", "run the bot over Socket Mode until SIGINT/SIGTERM"},
	{"audit verify", "FILE", "check the hash chain of an audit log file"},
	{"audit export", "[--file FILE | --config FILE] [--format csv|jsonl] [--since T] [--until T] [--system S] [--person U] [--out FILE]", "export audit records as CSV or JSON Lines"},
	{"store migrate", "--from bbolt:PATH --to postgres:DSN", "copy a stopped bot's store into an empty PostgreSQL database"},
	{"version", "", "print version, commit and Go version"},
	{"help", "[COMMAND]", "this list, or a command's flags (as accessbot COMMAND -h)"},
}

// helpFor returns the help of the command called name ("audit export").
func helpFor(name string) (helpText, bool) {
	for _, h := range helpTexts {
		if h.name == name {
			return h, true
		}
	}
	return helpText{}, false
}

// run is the whole program minus os.Exit, so tests call it in-process.
// Errors go to stderr, one readable line each.
func run(args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	cmds := commands()
	if len(args) == 0 {
		usage(stderr)
		return exitBadUse
	}
	name := args[0]
	switch name {
	case "help", "-h", "-help", "--help":
		if len(args) > 1 && name == "help" {
			// accessbot help COMMAND [SUB] is accessbot COMMAND [SUB] -h.
			if c, ok := cmds[args[1]]; ok {
				return c.run(append(slices.Clone(args[2:]), "-h"), stdout, stderr, getenv)
			}
			fmt.Fprintf(stderr, "accessbot help: unknown command %q; run accessbot help\n", args[1])
			return exitBadUse
		}
		usage(stdout)
		return exitOK
	}
	c, ok := cmds[name]
	if !ok {
		fmt.Fprintf(stderr, "accessbot: unknown command %q; run accessbot help\n", name)
		return exitBadUse
	}
	return c.run(args[1:], stdout, stderr, getenv)
}

// usage prints every command with its synopsis and summary.
func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: accessbot COMMAND [FLAGS] [ARGUMENTS]")
	fmt.Fprintln(w, "\ncommands:")
	for _, h := range helpTexts {
		fmt.Fprintf(w, "  %-14s %s\n", h.name, h.summary)
		fmt.Fprintf(w, "  %-14s   %s\n", "", strings.TrimSpace("accessbot "+h.name+" "+h.synopsis))
	}
	fmt.Fprintln(w, "\nRun accessbot COMMAND -h (or accessbot help COMMAND) for a command's flags.")
	fmt.Fprintln(w, "--config defaults to ./config.yaml (config.example.yaml for sandbox and demo).")
	fmt.Fprintln(w, "Exit codes: 0 ok, 1 bad configuration or input, 2 runtime failure.")
}

// flagSet is a subcommand's flags with what its help needs: where a
// requested help goes (stdout; flag errors go to stderr) and the
// command's name.
type flagSet struct {
	*flag.FlagSet
	stdout, stderr io.Writer
}

// newCmdFlags returns the flag set of the command called name ("run",
// "audit export"). -h prints its help (helpTexts, then the flags) to
// stdout; a flag error prints the error and the help to stderr.
func newCmdFlags(name string, stdout, stderr io.Writer) *flagSet {
	fs := &flagSet{FlagSet: flag.NewFlagSet("accessbot "+name, flag.ContinueOnError), stdout: stdout, stderr: stderr}
	fs.SetOutput(stderr)
	fs.Usage = func() {
		w := fs.Output()
		h, _ := helpFor(name)
		fmt.Fprintf(w, "usage: accessbot %s\n", strings.TrimSpace(name+" "+h.synopsis))
		if h.summary != "" {
			fmt.Fprintf(w, "\n%s\n", h.summary)
		}
		n := 0
		fs.VisitAll(func(*flag.Flag) { n++ })
		if n > 0 {
			fmt.Fprintln(w, "\nflags:")
			fs.PrintDefaults()
		}
	}
	return fs
}

// newFlags is newCmdFlags with the shared --config flag.
func newFlags(name string, stdout, stderr io.Writer) (*flagSet, *string) {
	fs := newCmdFlags(name, stdout, stderr)
	config := fs.String("config", "./config.yaml", "configuration file (the runbook)")
	return fs, config
}

// parse parses args, sending a requested help to stdout and a flag error
// (with the help) to stderr. help is true when -h was given.
func (fs *flagSet) parse(args []string) (help bool, err error) {
	var buf bytes.Buffer
	fs.SetOutput(&buf)
	err = fs.Parse(args)
	fs.SetOutput(fs.stderr)
	switch {
	case errors.Is(err, flag.ErrHelp):
		_, _ = fs.stdout.Write(buf.Bytes())
		return true, err
	case err != nil:
		_, _ = fs.stderr.Write(buf.Bytes())
	}
	return false, err
}

// parseFlags parses args that take no positional arguments; done is true
// when the caller should return code (0 after -h).
func parseFlags(fs *flagSet, args []string) (code int, done bool) {
	if help, err := fs.parse(args); err != nil {
		if help {
			return exitOK, true
		}
		return exitBadUse, true
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.stderr, "%s: unexpected argument %q; run %s -h for its usage\n", fs.Name(), fs.Arg(0), fs.Name())
		return exitBadUse, true
	}
	return 0, false
}

// cmdValidate loads the configuration and prints a summary (exit 0), or
// every problem, one "path: message" line each (exit 1). Missing secrets are
// warnings here: validate runs where the secrets may not be available.
func cmdValidate(args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	fs, config := newFlags("validate", stdout, stderr)
	if code, done := parseFlags(fs, args); done {
		return code
	}
	cfg, warns, err := loadForValidate(*config, getenv)
	var ce *ConfigError
	switch {
	case errors.As(err, &ce):
		for _, p := range ce.Problems {
			fmt.Fprintln(stderr, p.String())
		}
		// The warnings too, so that one run names everything to fix.
		for _, w := range warns {
			fmt.Fprintln(stderr, "warning: "+w)
		}
		fmt.Fprintf(stderr, "%s: %d problem(s); see above\n", *config, len(ce.Problems))
		return exitBadUse
	case err != nil:
		fmt.Fprintf(stderr, "accessbot: %v\n", err)
		return exitBadUse
	}
	writeSummary(stdout, cfg)
	return exitOK
}

// loadForValidate is LoadConfig followed by the connector checks
// (validateConnectors). When LoadConfig finds problems but could build
// the runbook, the connector blocks and grant parameters are checked too
// and their problems added, so that one run reports all it can. A
// *ConfigError lists every problem, sorted; the Config is nil then, and
// warnings are what would have been its Warnings.
func loadForValidate(path string, getenv func(string) string) (cfg *Config, warnings []string, err error) {
	data, err := readConfigFile(path)
	if err != nil {
		return nil, nil, err
	}
	cfg, ce := loadConfigPartial(path, data, getenv, environNames(os.Environ()))
	if cfg == nil {
		return nil, nil, ce
	}
	prior := slices.Clone(cfg.UnsetVars)
	if ce != nil {
		prior = append(prior, ce.Problems...)
	}
	probs, warns := validateConnectorsAfter(cfg, connectorRegistry(), connectorsEnv(), prior)
	cfg.Warnings = append(cfg.Warnings, warns...)
	if len(prior)+len(probs) > 0 {
		// An unset ${VAR} is a problem here: not also a warning.
		cfg.Warnings = slices.DeleteFunc(cfg.Warnings, func(w string) bool {
			return slices.ContainsFunc(cfg.UnsetVars, func(p Problem) bool { return strings.HasPrefix(w, p.Path+": ${") })
		})
		all := append(prior, probs...)
		sortProblems(all)
		return nil, cfg.Warnings, &ConfigError{Problems: all}
	}
	return cfg, cfg.Warnings, nil
}

// cmdVersion prints the version, the VCS commit and the Go version.
func cmdVersion(args []string, stdout, stderr io.Writer, _ func(string) string) int {
	fs := newCmdFlags("version", stdout, stderr)
	if code, done := parseFlags(fs, args); done {
		return code
	}
	c := commit
	if info, ok := debug.ReadBuildInfo(); ok && c == "" {
		for _, s := range info.Settings {
			if s.Key == "vcs.revision" {
				c = s.Value
			}
		}
	}
	if c == "" {
		c = "unknown"
	}
	fmt.Fprintf(stdout, "accessbot %s (commit %s, %s %s/%s)\n", version, strings.TrimSpace(c), runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return exitOK
}

// subcommands dispatches a command group (`audit verify`, `store
// migrate`): the first argument names the subcommand; none, or -h, prints
// the group's help (to stderr and exit 1 when nothing was asked for).
func subcommands(group string, args []string, stdout, stderr io.Writer, subs map[string]func([]string) int) int {
	groupHelp := func(w io.Writer) {
		lead := "usage:"
		for _, h := range helpTexts {
			if name, ok := strings.CutPrefix(h.name, group+" "); ok && subs[name] != nil {
				fmt.Fprintf(w, "%-6s accessbot %s %s\n         %s\n", lead, h.name, h.synopsis, h.summary)
				lead = ""
			}
		}
		fmt.Fprintf(w, "Run accessbot %s SUBCOMMAND -h for its flags.\n", group)
	}
	if len(args) == 0 {
		groupHelp(stderr)
		return exitBadUse
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		groupHelp(stdout)
		return exitOK
	}
	sub, ok := subs[args[0]]
	if !ok {
		names := make([]string, 0, len(subs))
		for n := range subs {
			names = append(names, n)
		}
		slices.Sort(names)
		fmt.Fprintf(stderr, "accessbot %s: unknown subcommand %q; use %s (accessbot %s -h)\n", group, args[0], strings.Join(names, " or "), group)
		return exitBadUse
	}
	return sub(args[1:])
}
