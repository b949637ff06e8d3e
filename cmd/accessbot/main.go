// Command accessbot is a Slack bot for just-in-time access approval
// (DESIGN.md §1). This file is the command-line dispatcher; config.go
// loads the runbook.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"sort"
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
	summary string
	run     func(args []string, stdout, stderr io.Writer, getenv func(string) string) int
}

// commands is the dispatch table. Add a subcommand here.
func commands() map[string]command {
	return map[string]command{
		"init":     {"init [--out FILE] [--from ANSWERS] [--force]: build a runbook by answering questions", cmdInit},
		"run":      {"run the bot over Socket Mode until SIGINT/SIGTERM", cmdRun},
		"explain":  {"explain --as PERSON SYSTEM ROLE [DURATION]: who may request it, the limits, who would approve, and why", cmdExplain},
		"demo":     {"run a scripted request → approve → grant → expiry story against a built-in Slack emulator", cmdDemo},
		"audit":    {"audit verify FILE | audit export …: check or export the audit log", auditCommand},
		"test":     {"test [--junit FILE] CASES.yaml…: run runbook policy tests (no Slack); exit 1 on any failure", cmdTest},
		"validate": {"check a configuration file and summarise it", cmdValidate},
		"sandbox":  {"try your runbook in a browser: a Slack-like page over the real bot, connectors as dry-run stand-ins", cmdSandbox},
		"store":    {"store migrate --from bbolt:PATH --to postgres:DSN: copy a stopped bot's store into an empty PostgreSQL database", storeCommand},
		"version":  {"print version, commit and Go version", cmdVersion},
	}
}

// run is the whole program minus os.Exit, so tests call it in-process.
// Errors go to stderr, one readable line each.
func run(args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	cmds := commands()
	if len(args) == 0 {
		usage(stderr, cmds)
		return exitBadUse
	}
	name := args[0]
	switch name {
	case "help", "-h", "-help", "--help":
		usage(stdout, cmds)
		return exitOK
	}
	c, ok := cmds[name]
	if !ok {
		fmt.Fprintf(stderr, "accessbot: unknown command %q; run accessbot help\n", name)
		return exitBadUse
	}
	return c.run(args[1:], stdout, stderr, getenv)
}

func usage(w io.Writer, cmds map[string]command) {
	names := make([]string, 0, len(cmds))
	for n := range cmds {
		names = append(names, n)
	}
	sort.Strings(names)
	fmt.Fprintln(w, "usage: accessbot COMMAND [--config FILE]")
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %s\n", n, cmds[n].summary)
	}
}

// newFlags returns a flag set for a subcommand with the shared --config
// flag. Flag errors are printed to stderr by the flag package.
func newFlags(name string, stderr io.Writer) (*flag.FlagSet, *string) {
	fs := flag.NewFlagSet("accessbot "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	config := fs.String("config", "./config.yaml", "configuration file (the runbook)")
	return fs, config
}

// parseFlags parses args; done is true when the caller should return code.
func parseFlags(fs *flag.FlagSet, args []string) (code int, done bool) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK, true
		}
		return exitBadUse, true
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "%s: unexpected argument %q\n", fs.Name(), fs.Arg(0))
		return exitBadUse, true
	}
	return 0, false
}

// cmdValidate loads the configuration and prints a summary (exit 0), or
// every problem, one "path: message" line each (exit 1). Missing secrets are
// warnings here: validate runs where the secrets may not be available.
func cmdValidate(args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	fs, config := newFlags("validate", stderr)
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
	fs := flag.NewFlagSet("accessbot version", flag.ContinueOnError)
	fs.SetOutput(stderr)
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
