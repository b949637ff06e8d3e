package postgres

import (
	"fmt"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/fstest"
	"time"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/audit"
	"github.com/accessbot/accessbot/internal/testsvc"
	"github.com/accessbot/accessbot/store/storetest"
	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5/pgxpool"
)

// These tests are internal (package postgres) to drive migrate with other
// step lists; they start their own server.

var internalDBs atomic.Int64

func internalDatabase(t *testing.T, p *testsvc.Postgres) string {
	t.Helper()
	name := fmt.Sprintf("accessbot_internal_%d", internalDBs.Add(1))
	p.Exec(t, fmt.Sprintf("CREATE DATABASE %s OWNER %s", name, testsvc.PostgresConnectorUser))
	u, err := url.Parse(p.DSN)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	return u.String()
}

func newPool(t *testing.T, dsn string) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

func TestMigrations(t *testing.T) {
	p := testsvc.StartPostgres(t)
	ctx := t.Context()
	if len(migrations) != 2 {
		t.Fatalf("%d migrations embedded; this test knows 2", len(migrations))
	}

	t.Run("from an empty database", func(t *testing.T) {
		dsn := internalDatabase(t, p)
		s, err := Open(ctx, dsn, Options{MaxConns: 2, LockConns: 1})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if v, err := s.SchemaVersion(ctx); v != 2 || err != nil {
			t.Errorf("SchemaVersion = %d, %v; want 2", v, err)
		}
		var names []string
		rows, _ := s.pool.Query(ctx, `SELECT name FROM accessbot_schema_version ORDER BY version`)
		for rows.Next() {
			var n string
			_ = rows.Scan(&n)
			names = append(names, n)
		}
		if want := []string{"core", "claims"}; !cmp.Equal(want, names) {
			t.Errorf("applied %v, want %v", names, want)
		}
		r, err := s.Create(ctx, storetest.NewRequest("U0ALICE01", "crm", "viewer", storetest.T0, "U0BOB0001"))
		if err != nil || r.ID != "AR-1001" {
			t.Fatalf("first Create = %v, %v; want AR-1001", r, err)
		}
	})

	t.Run("from the previous version, with data", func(t *testing.T) {
		dsn := internalDatabase(t, p)
		pool := newPool(t, dsn)
		if err := migrate(ctx, pool, migrations[:1]); err != nil {
			t.Fatal(err)
		}
		// A v1 store at work: everything but claims uses only v1 columns.
		v1 := &Store{pool: pool, lockPool: pool, clock: access.ClockFunc(func() time.Time { return storetest.T0 }), opTimeout: time.Second}
		v1.start()
		defer v1.Close()
		r, err := v1.Create(ctx, storetest.NewRequest("U0ALICE01", "crm", "viewer", storetest.T0, "U0BOB0001"))
		if err != nil {
			t.Fatal(err)
		}
		r, err = v1.Update(ctx, r.ID, func(r *access.Request) error {
			return access.Apply(r, access.Transition{Event: access.EventApproved, Actor: "U0BOB0001", At: storetest.T0})
		})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := v1.AppendAudit(ctx, audit.Record{Event: "config_loaded", Actor: access.ActorBot}); err != nil {
			t.Fatal(err)
		}
		if err := v1.KVPut(ctx, "zendesk", "AR-1001", []byte("agent")); err != nil {
			t.Fatal(err)
		}
		id, err := v1.InstallationID(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := v1.ClaimDue(ctx, "a", storetest.T0.Add(time.Hour), time.Minute, 1); err == nil || !strings.Contains(err.Error(), "claim_owner") {
			t.Fatalf("ClaimDue on v1: %v, want an error about the missing column", err)
		}

		s, err := Open(ctx, dsn, Options{MaxConns: 2, LockConns: 1})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if v, _ := s.SchemaVersion(ctx); v != 2 {
			t.Errorf("SchemaVersion after upgrade = %d, want 2", v)
		}
		got, err := s.Get(ctx, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(r, got); diff != "" {
			t.Errorf("request after upgrade (-before +after):\n%s", diff)
		}
		if nid, _ := s.InstallationID(ctx); nid != id {
			t.Errorf("installation ID %s after upgrade, was %s", nid, id)
		}
		if v, ok, _ := s.KVGet(ctx, "zendesk", "AR-1001"); !ok || string(v) != "agent" {
			t.Errorf("KV after upgrade: %q %v", v, ok)
		}
		if n, err := s.VerifyAudit(ctx); n != 3 || err != nil {
			t.Errorf("VerifyAudit after upgrade = %d, %v", n, err)
		}
		if err := s.Check(ctx); err != nil {
			t.Error(err)
		}
		// The new version's feature works on the old data: a's pending
		// reminder is not due (approved: no deadline), so claim b's.
		b, err := s.Create(ctx, storetest.NewRequest("U0DAVE001", "crm", "viewer", storetest.T0, "U0BOB0001"))
		if err != nil || b.ID != "AR-1002" {
			t.Fatalf("Create after upgrade = %v, %v; want AR-1002", b, err)
		}
		if got, err := s.ClaimDue(ctx, "a", storetest.T0.Add(3*time.Hour), time.Minute, 10); err != nil || len(got) != 1 || got[0].ID != b.ID {
			t.Errorf("ClaimDue after upgrade = %v, %v", got, err)
		}
	})

	t.Run("replicas starting together", func(t *testing.T) {
		dsn := internalDatabase(t, p)
		const n = 4
		stores := make([]*Store, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() { stores[i], errs[i] = Open(ctx, dsn, Options{MaxConns: 2, LockConns: 1}) })
		}
		wg.Wait()
		ids := map[string]bool{}
		for i, s := range stores {
			if errs[i] != nil {
				t.Errorf("Open %d: %v", i, errs[i])
				continue
			}
			id, err := s.InstallationID(ctx)
			if err != nil {
				t.Error(err)
			}
			ids[id] = true
			s.Close()
		}
		if len(ids) != 1 {
			t.Errorf("installation IDs %v, want one", ids)
		}
		var rowsN int
		newPool(t, dsn).QueryRow(ctx, `SELECT count(*) FROM accessbot_schema_version`).Scan(&rowsN)
		if rowsN != 2 {
			t.Errorf("%d version rows, want 2", rowsN)
		}
	})

	t.Run("a failing step changes nothing", func(t *testing.T) {
		dsn := internalDatabase(t, p)
		pool := newPool(t, dsn)
		broken, err := parseMigrations(fstest.MapFS{
			"migrations/0001_core.sql":   {Data: []byte(migrations[0].sql)},
			"migrations/0002_broken.sql": {Data: []byte("CREATE TABLE half (x int); SELECT no_such_function();")},
		})
		if err != nil {
			t.Fatal(err)
		}
		err = migrate(ctx, pool, broken)
		if err == nil || !strings.Contains(err.Error(), "migrate schema 1→2 (broken)") {
			t.Fatalf("migrate = %v", err)
		}
		var v int
		var half bool
		pool.QueryRow(ctx, `SELECT coalesce(max(version), 0), to_regclass('half') IS NOT NULL FROM accessbot_schema_version`).Scan(&v, &half)
		if v != 1 || half {
			t.Errorf("after a failed step: version %d, table half exists %v; want 1, false", v, half)
		}
	})

	t.Run("a newer database is refused", func(t *testing.T) {
		dsn := internalDatabase(t, p)
		pool := newPool(t, dsn)
		if err := migrate(ctx, pool, migrations); err != nil {
			t.Fatal(err)
		}
		if _, err := pool.Exec(ctx, `INSERT INTO accessbot_schema_version (version, name) VALUES (99, 'future')`); err != nil {
			t.Fatal(err)
		}
		if _, err := Open(ctx, dsn, Options{}); err == nil || !strings.Contains(err.Error(), "schema version 99 is newer than this accessbot supports (2)") {
			t.Errorf("Open newer: %v", err)
		}
	})

	t.Run("misnumbered files are refused", func(t *testing.T) {
		_, err := parseMigrations(fstest.MapFS{
			"migrations/0001_a.sql": {Data: []byte("SELECT 1")},
			"migrations/0003_c.sql": {Data: []byte("SELECT 1")},
		})
		if err == nil || !strings.Contains(err.Error(), "numbered 3, expected 2") {
			t.Errorf("parseMigrations: %v", err)
		}
	})

	t.Run("a DSN that does not parse is not echoed", func(t *testing.T) {
		_, err := Open(ctx, "postgres://u:hunter2@[::1", Options{})
		if err == nil || strings.Contains(err.Error(), "hunter2") {
			t.Errorf("Open with a bad DSN: %v", err)
		}
	})
}

// TestLostDatabase: a replica whose database goes away finds out within
// OpTimeout (Ping and ClaimDue fail, nothing hangs), and so does one
// whose server hangs.
func TestLostDatabase(t *testing.T) {
	p := testsvc.StartPostgres(t)
	ctx := t.Context()
	s, err := Open(ctx, internalDatabase(t, p), Options{OpTimeout: 2 * time.Second, MaxConns: 2, LockConns: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	p.Stop()
	start := time.Now()
	if err := s.Ping(ctx); err == nil || !strings.Contains(err.Error(), "unreachable") {
		t.Errorf("Ping after the server stopped: %v", err)
	}
	if _, err := s.ClaimDue(ctx, "a", storetest.T0, time.Minute, 10); err == nil {
		t.Error("ClaimDue after the server stopped: no error")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("failing took %v", d)
	}

	// A server that accepts connections and never answers: Open gives up
	// after the DSN's connect_timeout.
	start = time.Now()
	hung, err := Open(ctx, "postgres://u:secret@"+testsvc.SilentServer(t)+"/db?sslmode=disable&connect_timeout=1", Options{})
	if err == nil {
		hung.Close()
		t.Fatal("Open against a hung server succeeded")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Open against a hung server took %v", d)
	}
	if strings.Contains(err.Error(), "secret") {
		t.Errorf("error shows the password: %v", err)
	}
}

// TestLockAcrossReplicas: a lock held by one store makes another store's
// Lock wait in the database (a waiting advisory lock in pg_locks) until
// it is released.
func TestLockAcrossReplicas(t *testing.T) {
	p := testsvc.StartPostgres(t)
	ctx := t.Context()
	dsn := internalDatabase(t, p)
	a, err := Open(ctx, dsn, Options{MaxConns: 2, LockConns: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := Open(ctx, dsn, Options{MaxConns: 2, LockConns: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	unlock, err := a.Lock(ctx, "okta|00g1|U0ALICE01")
	if err != nil {
		t.Fatal(err)
	}
	acquired := make(chan func())
	go func() {
		u, err := b.Lock(ctx, "okta|00g1|U0ALICE01")
		if err != nil {
			t.Error(err)
			close(acquired)
			return
		}
		acquired <- u
	}()
	// Bounded readiness polling of the server: until b's wait shows.
	deadline := time.Now().Add(10 * time.Second)
	for {
		var waiting int
		if err := a.pool.QueryRow(ctx, `SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted`).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
		if waiting == 1 {
			break
		}
		select {
		case <-acquired:
			t.Fatal("b acquired a lock a holds")
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("b never waited for the lock")
		}
	}
	unlock()
	u := <-acquired
	if u == nil {
		t.Fatal("b failed to lock")
	}
	u()
	var held int
	a.pool.QueryRow(ctx, `SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'`).Scan(&held)
	if held != 0 {
		t.Errorf("%d advisory locks left after both unlocked", held)
	}
}
