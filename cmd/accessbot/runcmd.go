package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/term"

	"github.com/accessbot/accessbot/store"
)

// cmdRun runs the bot over Socket Mode until SIGINT/SIGTERM, then drains
// and exits 0 (DESIGN.md §1).
func cmdRun(args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	fs, config := newFlags("run", stderr)
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
	app, err := NewApp(cfg, AppOptions{Logger: log})
	if err != nil {
		fmt.Fprintf(stderr, "accessbot: %v\n", err)
		if errors.Is(err, store.ErrLocked) {
			return exitRuntime
		}
		return exitBadUse
	}
	// SIGHUP too: there is no reload, and dying without draining (the
	// default for HUP) would cut in-flight Slack handlers off.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	// Admins and owners may be written as emails (accessbot init does):
	// they become Slack user IDs before anything is served.
	if err := cfg.Runbook.ResolveEmails(ctx, app.Bot); err != nil {
		app.Close()
		fmt.Fprintf(stderr, "accessbot: %v\n", err)
		return exitBadUse
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

// newLogger logs text to a terminal and JSON otherwise (DESIGN.md §1).
func newLogger(w io.Writer) *slog.Logger {
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		return slog.New(slog.NewTextHandler(w, nil))
	}
	return slog.New(slog.NewJSONHandler(w, nil))
}
