package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/accessbot/accessbot/internal/testsvc"
	"github.com/accessbot/accessbot/store/postgres"
	"github.com/accessbot/accessbot/store/storetest"
)

var _ storetest.Store = (*postgres.Store)(nil)

// server is one PostgreSQL per test binary run, started by the first test
// that needs it; each test gets a database of its own (newDatabase).
var (
	server  *testsvc.Postgres
	dbCount atomic.Int64
)

// pg returns the shared server, starting it under t the first time. The
// server lives until the test that started it ends, so every test calls
// pg from its top-level test, which the package's tests run one by one.
func pg(t *testing.T) *testsvc.Postgres {
	t.Helper()
	if server != nil {
		return server
	}
	server = testsvc.StartPostgres(t)
	t.Cleanup(func() { server = nil })
	return server
}

// newDatabase creates an empty database owned by the connector login and
// returns a DSN for it.
func newDatabase(t testing.TB, p *testsvc.Postgres) string {
	t.Helper()
	name := fmt.Sprintf("accessbot_test_%d", dbCount.Add(1))
	p.Exec(t, fmt.Sprintf("CREATE DATABASE %s OWNER %s", name, testsvc.PostgresConnectorUser))
	u, err := url.Parse(p.DSN)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	return u.String()
}

// testOptions keeps pools small: the test server allows 30 connections.
func testOptions(o storetest.Options) postgres.Options {
	opts := postgres.Options{Clock: o.Clock, MaxConns: 5, LockConns: 3}
	if o.Observer != nil {
		opts.Observer = o.Observer
	}
	return opts
}

// openStore opens a store on dsn, checks it (Check) and closes it at
// cleanup; if the test closed it, a new one is opened to check.
func openStore(t *testing.T, dsn string, opts postgres.Options) *postgres.Store {
	t.Helper()
	s, err := postgres.Open(t.Context(), dsn, opts)
	if err != nil {
		t.Fatalf("open postgres store: %v", err)
	}
	t.Cleanup(func() {
		ctx := context.Background()
		err := s.Check(ctx)
		if errors.Is(err, postgres.ErrClosed) {
			c, err := postgres.Open(ctx, dsn, postgres.Options{MaxConns: 2, LockConns: 1})
			if err != nil {
				t.Errorf("reopen to check: %v", err)
				return
			}
			defer c.Close()
			err = c.Check(ctx)
			if err != nil {
				t.Errorf("store check: %v", err)
			}
			return
		}
		if err != nil {
			t.Errorf("store check: %v", err)
		}
		if err := s.Close(); err != nil && !errors.Is(err, postgres.ErrClosed) {
			t.Errorf("close: %v", err)
		}
	})
	return s
}

// TestConformance runs the store conformance suite on PostgreSQL, with a
// second store on the same database as a replica.
func TestConformance(t *testing.T) {
	p := pg(t)
	dsns := map[storetest.Store]string{}
	var mu sync.Mutex
	storetest.Run(t, storetest.Harness{
		Open: func(t *testing.T, o storetest.Options) storetest.Store {
			dsn := newDatabase(t, p)
			s := openStore(t, dsn, testOptions(o))
			mu.Lock()
			dsns[s] = dsn
			mu.Unlock()
			return s
		},
		Replica: func(t *testing.T, s storetest.Store, o storetest.Options) storetest.Store {
			mu.Lock()
			dsn := dsns[s]
			mu.Unlock()
			return openStore(t, dsn, testOptions(o))
		},
		SmallChunks: postgres.SetChunks,
	})
}
