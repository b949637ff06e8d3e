package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"maps"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/audit"
	"github.com/accessbot/accessbot/store"
	"github.com/accessbot/accessbot/store/postgres"
)

// storeDSNEnv is where `store migrate --to postgres:` (no DSN on the
// command line, where ps would show it) reads the DSN from; it is also the
// environment override of store.dsn.
const storeDSNEnv = "ACCESSBOT_STORE_DSN"

// storeCommand dispatches `accessbot store SUBCOMMAND`.
func storeCommand(args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	return subcommands("store", args, stdout, stderr, map[string]func([]string) int{
		"migrate": func(args []string) int { return cmdStoreMigrate(args, stdout, stderr, getenv) },
	})
}

// cmdStoreMigrate copies a stopped bot's bbolt store into an empty
// PostgreSQL database (DESIGN.md §1, §7): every request with its history
// and version, the deadline index, the audit chain record for record with
// its hashes, connectors' key-value state and the installation ID. It
// verifies the source chain first, copies in one transaction (Ctrl-C or
// any error leaves the target empty), then reads both stores back and
// compares everything, the target's chain included.
func cmdStoreMigrate(args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	fs := newCmdFlags("store migrate", stdout, stderr)
	from := fs.String("from", "", "bbolt:PATH, the store to copy (stop the bot that uses it first)")
	to := fs.String("to", "", "postgres:DSN, an empty database; postgres: alone reads the DSN from "+storeDSNEnv)
	if code, done := parseFlags(fs, args); done {
		return code
	}
	fail := func(code int, format string, a ...any) int {
		fmt.Fprintf(stderr, "accessbot store migrate: "+format+"\n", a...)
		return code
	}
	path, ok := strings.CutPrefix(*from, "bbolt:")
	if !ok || path == "" {
		return fail(exitBadUse, "--from must be bbolt:PATH (the bbolt file to copy), got %q", *from)
	}
	dsn, ok := strings.CutPrefix(*to, "postgres:")
	if !ok {
		return fail(exitBadUse, "--to must be postgres:DSN (or postgres: with the DSN in %s)", storeDSNEnv)
	}
	if dsn == "" {
		dsn = getenv(storeDSNEnv)
	}
	if dsn == "" {
		return fail(exitBadUse, "--to postgres: names no DSN and %s is not set", storeDSNEnv)
	}
	if err := postgres.CheckDSN(dsn); err != nil {
		return fail(exitBadUse, "--to: %v", err)
	}
	if _, err := os.Stat(path); err != nil {
		// Opening would create an empty store.
		return fail(exitBadUse, "no bbolt store at %s: %v", path, err)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	src, err := store.Open(path, store.Options{LockTimeout: 2 * time.Second})
	if errors.Is(err, store.ErrLocked) {
		return fail(exitBadUse, "%s is in use: stop the accessbot that uses it first (a running bot would keep writing to it)", path)
	}
	if err != nil {
		return fail(exitRuntime, "%v", err)
	}
	defer src.Close()
	nAudit, err := src.VerifyAudit(ctx)
	if err != nil {
		return fail(exitBadUse, "the audit chain of %s does not verify, so it is not copied: %v", path, err)
	}
	dst, err := postgres.Open(ctx, dsn, postgres.Options{})
	if err != nil {
		return fail(exitRuntime, "%v", err)
	}
	defer dst.Close()
	st, err := dst.Import(ctx, src)
	switch {
	case errors.Is(err, postgres.ErrNotEmpty):
		return fail(exitBadUse, "%v", err)
	case err != nil:
		return fail(exitRuntime, "%v (nothing was copied)", err)
	}
	if st.AuditRecords != nAudit {
		return fail(exitRuntime, "copied %d audit records, but the source verified %d", st.AuditRecords, nAudit)
	}
	head, err := compareStores(ctx, src, dst)
	if err != nil {
		return fail(exitRuntime, "the copy was committed but does not match the source: %v; drop the target's tables before trying again", err)
	}
	id, _ := dst.InstallationID(ctx)
	fmt.Fprintf(stdout, "copied %d requests, %d audit records and %d key-value entries from %s to PostgreSQL (installation ID %s)\n",
		st.Requests, st.AuditRecords, st.KV, path, id)
	fmt.Fprintf(stdout, "verified: every request, deadline, audit record and key-value entry is identical on both sides; both chains verify (head %s)\n", head)
	fmt.Fprintln(stdout, "next: set store.driver: postgres and store.dsn in the runbook, keep the bbolt file as a backup")
	return exitOK
}

// exporter is what compareStores reads from either store.
type exporter interface {
	InstallationID(ctx context.Context) (string, error)
	ExportRequests(ctx context.Context, fn func(r *access.Request) bool) error
	Deadlines(ctx context.Context, fn func(d access.Due) bool) error
	AuditRecords(ctx context.Context, fn func(rec audit.Record) bool) error
	ExportKV(ctx context.Context, fn func(ns, key string, value []byte) bool) error
	VerifyAudit(ctx context.Context) (int, error)
}

// compareStores reads a and b back and reports the first difference:
// installation ID, each request (as its JSON), the deadline index, each
// audit record (as its JSON line, hashes included), the key-value state,
// and both chains' verification. It streams requests, deadlines and
// records in lockstep, so memory does not grow with the store. It returns
// the chain head's hash, shortened.
func compareStores(ctx context.Context, a, b exporter) (string, error) {
	ida, erra := a.InstallationID(ctx)
	idb, errb := b.InstallationID(ctx)
	if err := errors.Join(erra, errb); err != nil {
		return "", err
	}
	if ida != idb {
		return "", fmt.Errorf("installation ID %s, source's %s", idb, ida)
	}
	reqJSON := func(r *access.Request) (string, []byte) {
		j, err := json.Marshal(r)
		if err != nil {
			return r.ID, []byte(err.Error())
		}
		return r.ID, j
	}
	if err := lockstep(ctx, "request", a.ExportRequests, b.ExportRequests, reqJSON); err != nil {
		return "", err
	}
	dueKey := func(d access.Due) (string, []byte) { return d.ID, []byte(d.At.Format(time.RFC3339Nano)) }
	if err := lockstep(ctx, "deadline", a.Deadlines, b.Deadlines, dueKey); err != nil {
		return "", err
	}
	var head string
	recLine := func(r audit.Record) (string, []byte) {
		head = r.Hash
		return fmt.Sprint("audit record ", r.Seq), r.MarshalLine()
	}
	if err := lockstep(ctx, "audit record", a.AuditRecords, b.AuditRecords, recLine); err != nil {
		return "", err
	}
	kv := func(e exporter) (map[string]string, error) {
		m := map[string]string{}
		err := e.ExportKV(ctx, func(ns, key string, v []byte) bool { m[ns+"\x00"+key] = string(v); return true })
		return m, err
	}
	ka, erra := kv(a)
	kb, errb := kv(b)
	if err := errors.Join(erra, errb); err != nil {
		return "", err
	}
	if !maps.Equal(ka, kb) {
		return "", fmt.Errorf("key-value state differs (%d entries, source %d)", len(kb), len(ka))
	}
	na, erra := a.VerifyAudit(ctx)
	nb, errb := b.VerifyAudit(ctx)
	if err := errors.Join(erra, errb); err != nil {
		return "", err
	}
	if na != nb {
		return "", fmt.Errorf("the target's chain verifies %d records, the source's %d", nb, na)
	}
	if len(head) > 12 {
		head = head[:12]
	}
	return head, nil
}

// lockstep walks two ordered exports side by side and fails at the first
// item whose key or bytes differ, or when one ends first.
func lockstep[T any](ctx context.Context, what string,
	a, b func(ctx context.Context, fn func(T) bool) error, enc func(T) (string, []byte)) error {
	seq := func(export func(ctx context.Context, fn func(T) bool) error, errp *error) iter.Seq[T] {
		return func(yield func(T) bool) { *errp = export(ctx, yield) }
	}
	var erra, errb error
	nextB, stop := iter.Pull(seq(b, &errb))
	defer stop()
	n := 0
	for x := range seq(a, &erra) {
		y, ok := nextB()
		if !ok {
			return errors.Join(errb, fmt.Errorf("the target has %d %ss, the source more", n, what))
		}
		kx, bx := enc(x)
		ky, by := enc(y)
		if kx != ky || !bytes.Equal(bx, by) {
			return fmt.Errorf("%s: source has %s %s, target %s %s", what, kx, bx, ky, by)
		}
		n++
	}
	if erra != nil {
		return erra
	}
	if _, ok := nextB(); ok {
		return fmt.Errorf("the target has more %ss than the source's %d", what, n)
	}
	return errb
}
