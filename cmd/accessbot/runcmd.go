package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"golang.org/x/term"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/store"
)

// cmdRun runs the bot over Socket Mode until SIGINT/SIGTERM, then drains
// and exits 0 (DESIGN.md §1).
func cmdRun(args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	// SIGHUP too: there is no reload, and dying without draining (the
	// default for HUP) would cut in-flight Slack handlers off.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	return runBot(ctx, args, stdout, stderr, getenv, nil)
}

// runBot is `accessbot run` until ctx ends. tweak, if set, adjusts the
// App's options (tests make the bot's retry waits instant). Exit codes
// (DESIGN.md §1): 1 for a bad configuration, including an email no Slack
// user has; 2 for a runtime failure, including Slack not answering while
// the people named by email are looked up at start.
func runBot(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string, tweak func(*AppOptions)) int {
	fs, config := newFlags("run", stdout, stderr)
	if code, done := parseFlags(fs, args); done {
		return code
	}
	cfg, err := LoadConfig(*config, getenv)
	if err == nil {
		// What validate only warns about stops run: missing secrets that
		// run needs and ACCESSBOT_ variables that match no key. Only the
		// connectors some system uses are built and checked.
		err = cfg.RequireForRun()
	}
	if err == nil {
		if probs := validateUsedConnectors(cfg, connectorRegistry(), connectorsEnv()); len(probs) > 0 {
			err = &ConfigError{Problems: probs}
		}
	}
	var ce *ConfigError
	if errors.As(err, &ce) {
		for _, p := range ce.Problems {
			fmt.Fprintln(stderr, p.String())
		}
		fmt.Fprintf(stderr, "%s: %d problem(s); see above\n", *config, len(ce.Problems))
		return exitBadUse
	}
	if err != nil {
		fmt.Fprintf(stderr, "accessbot: %v\n", err)
		return exitBadUse
	}
	log := newLogger(stderr)
	for _, w := range cfg.Warnings {
		log.Warn("configuration warning", "warning", w)
	}
	opts := AppOptions{Logger: log}
	if tweak != nil {
		tweak(&opts)
	}
	app, err := NewApp(cfg, opts)
	if err != nil {
		fmt.Fprintf(stderr, "accessbot: %v\n", err)
		if errors.Is(err, store.ErrLocked) {
			return exitRuntime
		}
		return exitBadUse
	}
	// Admins and owners may be written as emails (accessbot init does):
	// they become Slack user IDs before anything is served.
	if err := resolveEmails(ctx, cfg.Runbook, app.Bot); err != nil {
		app.Close()
		return reportResolveError(*config, err, stderr)
	}
	log.Info("accessbot starting", "config", cfg.Path, "store", cfg.Store.Path, "systems", len(cfg.Runbook.Systems),
		"runbook", cfg.Runbook.Hash, "overrides", cfg.Overrides)
	runErr := app.Run(ctx)
	closeErr := app.Close()
	if runErr != nil {
		fmt.Fprintf(stderr, "accessbot: %v\n", runErr)
		return exitRuntime
	}
	if closeErr != nil {
		fmt.Fprintf(stderr, "accessbot: closing store: %v\n", closeErr)
		return exitRuntime
	}
	log.Info("accessbot stopped")
	return exitOK
}

// slackUnreachableError is a failure to ask Slack about the people the
// runbook names by email (Slack down, the network, a refused token): a
// runtime failure (exit 2), unlike an email no Slack user has (a
// configuration problem, exit 1). It wraps the first such failure.
type slackUnreachableError struct{ err error }

func (e *slackUnreachableError) Error() string {
	return fmt.Sprintf("could not look up the people the runbook names by email in Slack (%v); nothing was started: check that Slack (slack.api_url) is reachable and the bot token is valid, then start again", e.err)
}

func (e *slackUnreachableError) Unwrap() error { return e.err }

// resolveEmails replaces the emails among the runbook's admins and owners
// with Slack user IDs (access.Runbook.ResolveEmails), as run and the
// sandbox do before serving. An email no Slack user has is returned as
// ResolveEmails gives it (each key path on its own, joined); any other
// lookup failure is a *slackUnreachableError, and after the first one the
// remaining emails are not looked up (each would wait out the same
// retries).
func resolveEmails(ctx context.Context, rb *access.Runbook, dir access.Directory) error {
	rec := &lookupFailure{Directory: dir}
	err := rb.ResolveEmails(ctx, rec)
	if f := rec.failed(); f != nil {
		return &slackUnreachableError{err: f}
	}
	return err
}

// lookupFailure is a Directory that remembers the first UserByEmail
// failure other than "not found" and then fails every further lookup at
// once with it.
type lookupFailure struct {
	access.Directory
	mu  sync.Mutex
	err error
}

func (d *lookupFailure) UserByEmail(ctx context.Context, email string) (string, error) {
	if err := d.failed(); err != nil {
		return "", err
	}
	id, err := d.Directory.UserByEmail(ctx, email)
	if err != nil && !errors.Is(err, access.ErrNotFound) {
		d.mu.Lock()
		if d.err == nil {
			d.err = err
		}
		d.mu.Unlock()
	}
	return id, err
}

func (d *lookupFailure) failed() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.err
}

// reportResolveError prints a resolveEmails error and returns the exit
// code: 2 when Slack could not be asked, else 1 with one line per email
// no Slack user has (each with its key path), as validate prints
// problems.
func reportResolveError(config string, err error, stderr io.Writer) int {
	var su *slackUnreachableError
	if errors.As(err, &su) {
		fmt.Fprintf(stderr, "accessbot: %v\n", su)
		return exitRuntime
	}
	ls := leaves(err)
	for _, l := range ls {
		fmt.Fprintln(stderr, l.Error())
	}
	fmt.Fprintf(stderr, "%s: %d problem(s); see above (people named by email must have a Slack account with that email)\n", config, len(ls))
	return exitBadUse
}

// newLogger logs text to a terminal and JSON otherwise (DESIGN.md §1).
func newLogger(w io.Writer) *slog.Logger {
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		return slog.New(slog.NewTextHandler(w, nil))
	}
	return slog.New(slog.NewJSONHandler(w, nil))
}
