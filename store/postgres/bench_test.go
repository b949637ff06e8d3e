package postgres_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/audit"
	"github.com/accessbot/accessbot/internal/testsvc"
	"github.com/accessbot/accessbot/store"
	"github.com/accessbot/accessbot/store/postgres"
)

// Benchmarks of the PostgreSQL store against the bbolt store, in the same
// run, both durable (PostgreSQL with fsync, full_page_writes and
// synchronous_commit on; bbolt with fsync), both on the same disk
// (t.TempDir()). Commands and figures: see the report in the branch's
// history (the lead keeps BENCHMARKS.md).
//
//	go test ./store/postgres -run '^$' -bench Transitions -benchtime 5000x
//	BENCH_GRANTS=1000000 go test ./store/postgres -run '^$' -bench Restart -benchtime 3x -timeout 60m

var benchT0 = time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)

// benchRequest is the bbolt benchmark's realistic pending request: two
// approval steps, message references, reason and grant parameters, about
// 1 KiB of JSON.
func benchRequest(i int) *access.Request {
	user := fmt.Sprintf("U%08d", i%5000)
	at := benchT0.Add(time.Duration(i) * time.Second)
	r := &access.Request{
		Requester: user, System: "crm", Role: "viewer", Duration: 2 * time.Hour,
		Reason: "customer ticket 4411: export of the Q3 renewal pipeline for the EMEA accounts",
		Entitlement: access.Entitlement{Connector: "okta",
			Params: map[string]string{"group_id": "00g1viewer0abcdefgh", "app": "salesforce"}, Person: user},
		Steps: []access.Step{
			{Approvers: []string{"U0BOB0001"}, Min: 1, Sources: "manager"},
			{Approvers: []string{"U0CAROL01", "U0ERIN001", "U0FRANK01"}, Min: 1, Sources: "owners"},
		},
		CreatedAt: at, RemindAt: at.Add(2 * time.Hour), TimeoutAt: at.Add(24 * time.Hour),
		Messages: []access.MessageRef{
			{Kind: "request", Channel: "D0ALICE0001", TS: "1764410400.000100"},
			{Kind: "approval", Channel: "D0BOB00001", TS: "1764410400.000200", User: "U0BOB0001"},
			{Kind: "audit", Channel: "C0AUDIT01", TS: "1764410400.000300"},
		},
	}
	if err := access.Apply(r, access.Transition{Event: access.EventRequested, Actor: user, At: at}); err != nil {
		panic(err)
	}
	return r
}

// activeGrant is benchRequest approved and granted, with its expiry
// warning indexed: what a restart arms the timer wheel from.
func activeGrant(i int) *access.Request {
	r := benchRequest(i)
	at := r.CreatedAt.Add(time.Minute)
	for _, ev := range []access.Event{access.EventApproved, access.EventGranted} {
		if err := access.Apply(r, access.Transition{Event: ev, Actor: "U0BOB0001", At: at}); err != nil {
			panic(err)
		}
	}
	r.GrantedAt, r.ExpiresAt, r.WarnAt = at, at.Add(8*time.Hour), at.Add(8*time.Hour-10*time.Minute)
	r.RemindAt, r.TimeoutAt = time.Time{}, time.Time{}
	return r
}

// genSource generates a store's content for postgres.Import (COPY is the
// fast way to load a benchmark database): n requests made by mk, numbered
// from AR-1001, with a sealed audit record per history entry.
type genSource struct {
	n  int
	mk func(i int) *access.Request
}

func (g genSource) InstallationID(context.Context) (string, error) {
	return "00000000-0000-4000-8000-000000000000", nil
}

func (g genSource) request(i int) *access.Request {
	r := g.mk(i)
	r.Seq = uint64(1001 + i)
	r.ID, r.Version = access.FormatID(r.Seq), uint64(len(r.History))
	return r
}

func (g genSource) ExportRequests(_ context.Context, fn func(*access.Request) bool) error {
	for i := range g.n {
		if !fn(g.request(i)) {
			return nil
		}
	}
	return nil
}

func (g genSource) AuditRecords(_ context.Context, fn func(audit.Record) bool) error {
	seq, hash := uint64(0), audit.ZeroHash
	for i := range g.n {
		r := g.request(i)
		for _, h := range r.History {
			rec := audit.Record{Time: h.At, Event: string(h.Event), Actor: h.Actor, Subject: r.Requester, System: r.System,
				Role: r.Role, RequestID: r.ID, Reason: r.Reason, Outcome: string(h.To), Note: h.Note}
			rec.Seal(seq, hash)
			seq, hash = rec.Seq, rec.Hash
			if !fn(rec) {
				return nil
			}
		}
	}
	return nil
}

func (g genSource) ExportKV(context.Context, func(ns, key string, value []byte) bool) error {
	return nil
}

// benchServer starts a durable PostgreSQL for one top-level benchmark
// (each sub-benchmark takes a database of its own with newDatabase).
func benchServer(b *testing.B) *testsvc.Postgres {
	b.Helper()
	return testsvc.StartPostgresWith(b, testsvc.PostgresOptions{Durable: true,
		Settings: []string{"max_connections=100", "shared_buffers=256MB"}})
}

func approve(at time.Time) func(r *access.Request) error {
	return func(r *access.Request) error {
		if err := access.Apply(r, access.Transition{Event: access.EventApproved, Actor: "U0BOB0001", At: at}); err != nil {
			return err
		}
		r.Decisions = append(r.Decisions, access.Decision{Actor: "U0BOB0001", Approve: true, At: at})
		r.DecidedAt = at
		r.NextAttemptAt = at // grant attempt due now: the deadline moves
		return nil
	}
}

// loadBbolt writes n requests made by mk into a new bbolt file in dir
// through Create (group commit, fsync off while loading) and returns its
// path.
func loadBbolt(b *testing.B, dir string, n int, mk func(i int) *access.Request) string {
	b.Helper()
	path := filepath.Join(dir, fmt.Sprintf("bench-%d.db", time.Now().UnixNano()))
	s, err := store.Open(path, store.Options{NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 64 {
		wg.Go(func() {
			for i := next.Add(1) - 1; i < int64(n); i = next.Add(1) - 1 {
				if _, err := s.Create(context.Background(), mk(int(i))); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := s.Close(); err != nil {
		b.Fatal(err)
	}
	return path
}

// BenchmarkTransitions measures durable pending → approved transitions of
// ~1 KiB requests (access.Apply, a decision, the deadline moved, one audit
// record appended to the chain), each request transitioned once, with 1
// and 64 concurrent writers, on PostgreSQL (one store, a pool of writers+2
// connections; and three stores on one database, as three replicas), and
// on bbolt (group-commit writer).
func BenchmarkTransitions(b *testing.B) {
	if raw, _ := json.Marshal(benchRequest(0)); len(raw) < 900 {
		b.Fatalf("benchmark request is %d bytes of JSON, want ~1 KiB", len(raw))
	}
	p := benchServer(b)
	for _, driver := range []string{"postgres", "postgres-3-replicas", "bbolt"} {
		for _, writers := range []int{1, 64} {
			if driver == "postgres-3-replicas" && writers == 1 {
				continue
			}
			b.Run(fmt.Sprintf("%s/writers=%d", driver, writers), func(b *testing.B) {
				var batches, batched atomic.Int64
				postgres.SetCommitHook(func(n int) { batches.Add(1); batched.Add(int64(n)) })
				defer postgres.SetCommitHook(nil)
				ctx := context.Background()
				var update func(id string) error
				switch driver {
				case "postgres":
					dsn := newDatabase(b, p)
					s, err := postgres.Open(ctx, dsn, postgres.Options{MaxConns: int32(writers + 2)})
					if err != nil {
						b.Fatal(err)
					}
					defer s.Close()
					if _, err := s.Import(ctx, genSource{n: b.N, mk: benchRequest}); err != nil {
						b.Fatal(err)
					}
					batches.Store(0)
					batched.Store(0)
					update = func(id string) error { _, err := s.Update(ctx, id, approve(benchT0)); return err }
				case "postgres-3-replicas":
					// Three stores on one database, as three replicas would
					// be (each its own writer and pool), writers spread
					// over them: their batches contend for the chain head.
					dsn := newDatabase(b, p)
					var stores []*postgres.Store
					for range 3 {
						s, err := postgres.Open(ctx, dsn, postgres.Options{MaxConns: int32(writers/3 + 2)})
						if err != nil {
							b.Fatal(err)
						}
						defer s.Close()
						stores = append(stores, s)
					}
					if _, err := stores[0].Import(ctx, genSource{n: b.N, mk: benchRequest}); err != nil {
						b.Fatal(err)
					}
					batches.Store(0)
					batched.Store(0)
					update = func(id string) error {
						seq, _ := access.ParseID(id)
						_, err := stores[seq%3].Update(ctx, id, approve(benchT0))
						return err
					}
				case "bbolt":
					path := loadBbolt(b, b.TempDir(), b.N, benchRequest)
					s, err := store.Open(path, store.Options{})
					if err != nil {
						b.Fatal(err)
					}
					defer s.Close()
					update = func(id string) error { _, err := s.Update(ctx, id, approve(benchT0)); return err }
				}
				var next atomic.Int64
				lat := make([][]time.Duration, writers)
				var wg sync.WaitGroup
				b.ResetTimer()
				start := time.Now()
				for w := range writers {
					wg.Go(func() {
						for i := next.Add(1) - 1; i < int64(b.N); i = next.Add(1) - 1 {
							t := time.Now()
							err := update(access.FormatID(uint64(1001 + i)))
							lat[w] = append(lat[w], time.Since(t))
							if err != nil {
								b.Error(err)
								return
							}
						}
					})
				}
				wg.Wait()
				elapsed := time.Since(start)
				b.StopTimer()
				all := slices.Concat(lat...)
				slices.Sort(all)
				b.ReportMetric(float64(b.N)/elapsed.Seconds(), "transitions/s")
				b.ReportMetric(float64(all[len(all)/2].Microseconds()), "p50-µs")
				b.ReportMetric(float64(all[len(all)*99/100].Microseconds()), "p99-µs")
				if driver != "bbolt" {
					b.ReportMetric(float64(batched.Load())/float64(batches.Load()), "ops/commit")
				}
			})
		}
	}
}

// benchGrants is how many active grants BenchmarkRestart loads
// (BENCH_GRANTS, default 100,000).
func benchGrants(b *testing.B) int {
	n := 100_000
	if v := os.Getenv("BENCH_GRANTS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil {
			b.Fatal(err)
		}
	}
	return n
}

// BenchmarkRestart measures what a replica's restart costs with N active
// grants in the store: Open (for PostgreSQL: connect and check the schema
// version under the migration lock), then the Deadlines scan that arms the
// timer wheel (every grant has an indexed expiry warning), then Close.
// The load (COPY for PostgreSQL, Create for bbolt) is not timed, and done
// once per driver (the framework runs each sub-benchmark again with a
// larger b.N).
func BenchmarkRestart(b *testing.B) {
	n := benchGrants(b)
	p := benchServer(b)
	dir := b.TempDir() // outlives the sub-benchmarks' runs
	ctx := context.Background()
	loaded := map[string]string{} // driver → DSN or path
	load := map[string]func(b *testing.B) string{
		"postgres": func(b *testing.B) string {
			dsn := newDatabase(b, p)
			s, err := postgres.Open(ctx, dsn, postgres.Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			if _, err := s.Import(ctx, genSource{n: n, mk: activeGrant}); err != nil {
				b.Fatal(err)
			}
			return dsn
		},
		"bbolt": func(sub *testing.B) string { return loadBbolt(sub, dir, n, activeGrant) },
	}
	type deadliner interface {
		Deadlines(ctx context.Context, fn func(access.Due) bool) error
		Close() error
	}
	open := map[string]func(where string) (deadliner, error){
		"postgres": func(dsn string) (deadliner, error) { return postgres.Open(ctx, dsn, postgres.Options{}) },
		"bbolt":    func(path string) (deadliner, error) { return store.Open(path, store.Options{}) },
	}
	for _, driver := range []string{"postgres", "bbolt"} {
		b.Run(fmt.Sprintf("%s/grants=%d", driver, n), func(b *testing.B) {
			where, ok := loaded[driver]
			if !ok {
				start := time.Now()
				where = load[driver](b)
				loaded[driver] = where
				b.Logf("%s: loaded %d grants in %v", driver, n, time.Since(start).Round(time.Millisecond))
			}
			b.ResetTimer()
			start := time.Now()
			for range b.N {
				s, err := open[driver](where)
				if err != nil {
					b.Fatal(err)
				}
				k := 0
				err = s.Deadlines(ctx, func(access.Due) bool { k++; return true })
				s.Close()
				if err != nil || k != n {
					b.Fatalf("restart scanned %d deadlines, %v; want %d", k, err, n)
				}
			}
			per := time.Since(start) / time.Duration(b.N)
			b.ReportMetric(float64(per.Milliseconds()), "ms/restart")
			b.ReportMetric(float64(n)/per.Seconds(), "deadlines/s")
		})
	}
}
