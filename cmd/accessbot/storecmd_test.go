package main

import (
	"bytes"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/audit"
	"github.com/accessbot/accessbot/internal/testsvc"
	"github.com/accessbot/accessbot/store"
	"github.com/accessbot/accessbot/store/postgres"
	"github.com/accessbot/accessbot/store/storetest"
	"github.com/google/go-cmp/cmp"
	"go.etcd.io/bbolt"
)

// everyState builds, with the bbolt store as accessbot writes it, a store
// holding a request in every state of the lifecycle (through the
// transition table), a config_loaded record, connector state and a
// retention pass, and returns its path and the requests.
func everyState(t *testing.T) (string, []*access.Request) {
	t.Helper()
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "accessbot.db")
	s, err := store.Open(path, store.Options{NoSync: true, Clock: access.ClockFunc(func() time.Time { return storetest.T0 })})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.AppendAudit(ctx, audit.Record{Event: "config_loaded", Actor: access.ActorBot, Note: "runbook sha256:abc"}); err != nil {
		t.Fatal(err)
	}
	at := storetest.T0
	tr := func(ev access.Event, actor string, change func(r *access.Request)) func(r *access.Request) error {
		return func(r *access.Request) error {
			at = at.Add(time.Minute)
			if err := access.Apply(r, access.Transition{Event: ev, Actor: actor, At: at, Note: "note of " + string(ev)}); err != nil {
				return err
			}
			if change != nil {
				change(r)
			}
			return nil
		}
	}
	granted := func(r *access.Request) {
		r.GrantedAt, r.ExpiresAt, r.WarnAt, r.RemindAt, r.TimeoutAt = at, at.Add(2*time.Hour), at.Add(110*time.Minute), time.Time{}, time.Time{}
		r.Receipt = &access.Receipt{UserID: "00u1", Note: "membership created"}
	}
	retry := func(r *access.Request) {
		r.NextAttemptAt = at.Add(30 * time.Second)
		r.Attempts = 1
		r.LastError = "503"
	}
	paths := map[access.State][]func(r *access.Request) error{
		access.StatePending:     nil,
		access.StateApproved:    {tr(access.EventApproved, "U0BOB0001", retry)},
		access.StateDenied:      {tr(access.EventDenied, "U0BOB0001", nil)},
		access.StateCancelled:   {tr(access.EventCancelled, "U0ALICE01", nil)},
		access.StateTimedOut:    {tr(access.EventTimedOut, access.ActorBot, nil)},
		access.StateGrantFailed: {tr(access.EventApproved, "U0BOB0001", nil), tr(access.EventGrantFailed, access.ActorBot, nil)},
		access.StateActive:      {tr(access.EventApproved, "U0BOB0001", nil), tr(access.EventGranted, access.ActorBot, granted)},
		access.StateRevoking:    {tr(access.EventApproved, "U0BOB0001", nil), tr(access.EventGranted, access.ActorBot, granted), tr(access.EventRevoking, "U0CAROL01", retry)},
		access.StateExpired: {tr(access.EventApproved, "U0BOB0001", nil), tr(access.EventGranted, access.ActorBot, granted),
			tr(access.EventExpiring, access.ActorBot, nil), tr(access.EventExpired, access.ActorBot, nil)},
		access.StateRevoked: {tr(access.EventApproved, "U0BOB0001", nil), tr(access.EventGranted, access.ActorBot, granted),
			tr(access.EventDone, "U0ALICE01", nil), tr(access.EventRevoked, access.ActorBot, nil)},
		access.StateIneligible: {tr(access.EventIneligible, access.ActorBot, nil)},
	}
	var out []*access.Request
	for i, st := range access.States {
		r, err := s.Create(ctx, storetest.NewRequest(fmt.Sprintf("U%08d", i), "crm", "viewer", at, "U0BOB0001"))
		if err != nil {
			t.Fatal(err)
		}
		for _, fn := range paths[st] {
			if r, err = s.Update(ctx, r.ID, fn); err != nil {
				t.Fatalf("%s: %v", st, err)
			}
		}
		if r.State != st {
			t.Fatalf("built %s, want %s", r.State, st)
		}
		out = append(out, r)
	}
	if err := s.KV("zendesk").Put(ctx, "AR-1007", []byte(`{"role":"agent"}`)); err != nil {
		t.Fatal(err)
	}
	if n, err := s.ApplyRetention(ctx, storetest.T0.Add(3*time.Minute)); err != nil || n == 0 {
		t.Fatalf("ApplyRetention = %d, %v", n, err)
	}
	return path, out
}

func newPGDatabase(t *testing.T, p *testsvc.Postgres, name string) string {
	t.Helper()
	p.Exec(t, fmt.Sprintf("CREATE DATABASE %s OWNER %s", name, testsvc.PostgresConnectorUser))
	u, err := url.Parse(p.DSN)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	return u.String()
}

func TestStoreMigrate(t *testing.T) {
	p := testsvc.StartPostgres(t)
	ctx := t.Context()
	path, reqs := everyState(t)
	dsn := newPGDatabase(t, p, "migrated")

	src, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var wantRecs []audit.Record
	_ = src.AuditRecords(ctx, func(r audit.Record) bool { wantRecs = append(wantRecs, r); return true })
	var wantDue []access.Due
	_ = src.Deadlines(ctx, func(d access.Due) bool { wantDue = append(wantDue, d); return true })
	wantID, _ := src.InstallationID(ctx)
	// A running bot holds the file: refused, nothing copied.
	var out, errb bytes.Buffer
	code := run([]string{"store", "migrate", "--from", "bbolt:" + path, "--to", "postgres:" + dsn}, &out, &errb, env(nil))
	if code != exitBadUse || !strings.Contains(errb.String(), "is in use: stop the accessbot that uses it first") {
		t.Errorf("migrate from a store in use: exit %d, %s", code, errb.String())
	}
	src.Close()

	out.Reset()
	errb.Reset()
	// The DSN from the environment, not the command line.
	code = run([]string{"store", "migrate", "--from", "bbolt:" + path, "--to", "postgres:"}, &out, &errb, env(map[string]string{storeDSNEnv: dsn}))
	if code != exitOK {
		t.Fatalf("migrate: exit %d\nstdout: %s\nstderr: %s", code, out.String(), errb.String())
	}
	if want := fmt.Sprintf("copied %d requests, %d audit records and 2 key-value entries", len(access.States), len(wantRecs)); !strings.Contains(out.String(), want) ||
		!strings.Contains(out.String(), "verified: every request, deadline, audit record and key-value entry is identical") {
		t.Errorf("output %q does not say %q", out.String(), want)
	}
	if strings.Contains(out.String()+errb.String(), testsvc.PostgresConnectorPassword) {
		t.Error("output shows the database password")
	}

	dst, err := postgres.Open(ctx, dsn, postgres.Options{MaxConns: 2, LockConns: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	for _, r := range reqs {
		got, err := dst.Get(ctx, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(r, got); diff != "" {
			t.Errorf("%s (%s) (-bbolt +postgres):\n%s", r.ID, r.State, diff)
		}
	}
	var gotRecs []audit.Record
	_ = dst.AuditRecords(ctx, func(r audit.Record) bool { gotRecs = append(gotRecs, r); return true })
	if diff := cmp.Diff(wantRecs, gotRecs); diff != "" {
		t.Errorf("audit records (-bbolt +postgres):\n%s", diff)
	}
	if !slices.ContainsFunc(gotRecs, func(r audit.Record) bool { return r.Redacted }) {
		t.Error("no redacted record in the copy: the fixture should hold some")
	}
	if n, err := dst.VerifyAudit(ctx); n != len(wantRecs) || err != nil {
		t.Errorf("target VerifyAudit = %d, %v", n, err)
	}
	var gotDue []access.Due
	_ = dst.Deadlines(ctx, func(d access.Due) bool { gotDue = append(gotDue, d); return true })
	if diff := cmp.Diff(wantDue, gotDue); diff != "" || len(wantDue) != 4 {
		t.Errorf("deadlines (-bbolt +postgres; want 4: pending, approved, active, revoking):\n%s", diff)
	}
	if id, _ := dst.InstallationID(ctx); id != wantID {
		t.Errorf("installation ID %s, bbolt's %s", id, wantID)
	}
	if v, ok, _ := dst.KVGet(ctx, "zendesk", "AR-1007"); !ok || string(v) != `{"role":"agent"}` {
		t.Errorf("connector state: %q %v", v, ok)
	}
	if err := dst.Check(ctx); err != nil {
		t.Error(err)
	}
	if r, err := dst.Create(ctx, storetest.NewRequest("U0NEW0001", "crm", "viewer", storetest.T0, "U0BOB0001")); err != nil || r.ID != access.FormatID(uint64(1001+len(access.States))) {
		t.Errorf("first new request on the target = %v, %v; want the next ID after the copied ones", r, err)
	}

	// A second run finds the target not empty.
	out.Reset()
	errb.Reset()
	code = run([]string{"store", "migrate", "--from", "bbolt:" + path, "--to", "postgres:" + dsn}, &out, &errb, env(nil))
	if code != exitBadUse || !strings.Contains(errb.String(), fmt.Sprintf("target store is not empty: it holds %d requests", len(access.States)+1)) {
		t.Errorf("second migrate: exit %d, %s", code, errb.String())
	}
}

func TestStoreMigrateRefuses(t *testing.T) {
	path, _ := everyState(t)
	// Break the source's chain: edit one record's actor in place.
	db, err := bbolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket([]byte("audit"))
		k, v := b.Cursor().First()
		k, v = bytes.Clone(k), bytes.Replace(v, []byte(`"actor":"accessbot"`), []byte(`"actor":"U0MALLORY"`), 1)
		return b.Put(k, v)
	}); err != nil {
		t.Fatal(err)
	}
	db.Close()
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"no subcommand", []string{"store"}, "usage: accessbot store migrate"},
		{"no --from", []string{"store", "migrate", "--to", "postgres:postgres://x@h/d"}, "--from must be bbolt:PATH"},
		{"wrong --to", []string{"store", "migrate", "--from", "bbolt:" + path, "--to", "mysql:x"}, "--to must be postgres:DSN"},
		{"no DSN", []string{"store", "migrate", "--from", "bbolt:" + path, "--to", "postgres:"}, "names no DSN and ACCESSBOT_STORE_DSN is not set"},
		{"bad DSN", []string{"store", "migrate", "--from", "bbolt:" + path, "--to", "postgres:postgres://u:hunter2@[::1"}, "the DSN does not parse"},
		{"missing file", []string{"store", "migrate", "--from", "bbolt:" + path + ".nope", "--to", "postgres:postgres://x@127.0.0.1:1/d"}, "no bbolt store at"},
		{"broken chain", []string{"store", "migrate", "--from", "bbolt:" + path, "--to", "postgres:postgres://x@127.0.0.1:1/d"}, "does not verify, so it is not copied"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := run(tc.args, &out, &errb, env(nil))
			if code != exitBadUse || !strings.Contains(errb.String(), tc.want) || strings.Contains(errb.String(), "hunter2") {
				t.Errorf("exit %d, stderr %q; want 1 and %q", code, errb.String(), tc.want)
			}
		})
	}
	if _, err := os.Stat(path + ".nope"); err == nil {
		t.Error("a missing source was created")
	}
}

const storeConfigBase = `
slack:
  app_token: xapp-1
  bot_token: xoxb-1
connectors:
  c: { type: manual }
systems:
  s:
    owners: [U0CAROL01]
    connector: c
    roles:
      r: { requesters: [everyone], approval: auto }
`

func TestStoreConfig(t *testing.T) {
	dsnFile := filepath.Join(t.TempDir(), "dsn")
	if err := os.WriteFile(dsnFile, []byte("postgres://accessbot:s3cret@db:5432/accessbot?sslmode=verify-full\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	load := func(store string, e map[string]string) (*Config, error) {
		return LoadConfig(writeConfig(t, storeConfigBase+store), env(e))
	}
	cfg, err := load("", nil)
	if err != nil || cfg.Store.Driver != "bbolt" || cfg.Store.Path != "accessbot.db" {
		t.Fatalf("default store = %+v, %v", cfg.Store, err)
	}
	cfg, err = load("store: { driver: postgres, dsn_file: "+dsnFile+" }\n", nil)
	if err != nil || cfg.Store.Driver != "postgres" || cfg.Store.DSN.Reveal() != "postgres://accessbot:s3cret@db:5432/accessbot?sslmode=verify-full" || cfg.Store.Path != "" {
		t.Fatalf("postgres store = %+v, %v", cfg.Store, err)
	}
	if s := fmt.Sprint(cfg) + fmt.Sprintf("%+v %#v", cfg.Store, cfg); strings.Contains(s, "s3cret") {
		t.Errorf("the DSN leaks when printed: %s", s)
	}
	var sum bytes.Buffer
	writeSummary(&sum, cfg)
	if !strings.Contains(sum.String(), "Store:     PostgreSQL") {
		t.Errorf("summary: %s", sum.String())
	}
	cfg, err = load("store: { driver: postgres, dsn: \"${DB}\" }\n", map[string]string{"DB": "host=db user=accessbot password=s3cret dbname=accessbot"})
	if err != nil || cfg.Store.DSN.Reveal() == "" {
		t.Errorf("DSN from ${DB}: %+v, %v", cfg.Store, err)
	}
	cfg, err = load("store: { driver: postgres }\n", map[string]string{"ACCESSBOT_STORE_DSN": "postgres://a:b@c/d"})
	if err != nil || cfg.Store.DSN.Reveal() != "postgres://a:b@c/d" {
		t.Errorf("DSN from ACCESSBOT_STORE_DSN: %+v, %v", cfg.Store, err)
	}
	// Missing: a missing secret (run refuses, validate warns).
	cfg, err = load("store: { driver: postgres }\n", nil)
	if err != nil || !slices.Contains(cfg.MissingSecrets, "store.dsn") || cfg.RequireSecrets() == nil {
		t.Errorf("missing DSN: missing %v, %v", cfg.MissingSecrets, err)
	}
	cfg, err = load("store: { driver: postgres, dsn: \"${DB}\" }\n", map[string]string{"DB": "postgres://a:b@c/d", "ACCESSBOT_STORE_PATH": "/data/accessbot.db"})
	if err != nil || cfg.Store.Path != "" || !containsLine(cfg.Warnings, "store.path: ignored") {
		t.Errorf("postgres with the image's ACCESSBOT_STORE_PATH: %+v, warnings %v, %v", cfg.Store, cfg.Warnings, err)
	}
	cfg, err = load("store: { driver: postgres, dsn: \"postgres://u:literal@h/d\" }\n", nil)
	if err != nil || !containsLine(cfg.Warnings, "store.dsn: written literally") {
		t.Errorf("literal DSN: warnings %v, %v", cfg.Warnings, err)
	}

	for _, tc := range []struct {
		store, path, want string
	}{
		{"store: { driver: postgress }\n", "store.driver", `"postgress" is not a store driver; use bbolt (one process, one file) or postgres (several replicas); did you mean "postgres"?`},
		{"store: { driver: bbolt, dsn: \"postgres://a:b@c/d\" }\n", "store.dsn", "is used only with store.driver postgres"},
		{"store: { driver: postgres, dsn: \"postgres://a:hunter2@[::1\" }\n", "store.dsn", "the DSN does not parse"},
		{"store: { driver: postgres, dsn: a, dsn_file: " + dsnFile + " }\n", "store.dsn", "set either dsn or dsn_file, not both"},
		{"store: { dns: x }\n", "store.dns", `did you mean "dsn"`},
	} {
		_, err := load(tc.store, nil)
		ps := problemsOf(t, err)
		if len(ps) != 1 || ps[0].Path != tc.path || !strings.Contains(ps[0].Message, tc.want) || strings.Contains(ps[0].Message, "hunter2") {
			t.Errorf("%s: problems %v; want one at %s saying %q", strings.TrimSpace(tc.store), ps, tc.path, tc.want)
		}
	}
}
