package store

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
	"go.etcd.io/bbolt"
)

// Benchmarks for the project's store issue. Run (fsync on, real disk):
//
//	go test ./store -run '^$' -bench . -benchtime 3s
//	BENCH_GRANTS=1000000 go test ./store -run '^$' -bench Restart -benchtime 3x
//
// Results and their reading are in BENCH_RESULTS.md.

var benchT0 = time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)

// benchRequest is a realistic pending request: two approval steps, posted
// message references, reason and grant parameters; about 1 KiB of JSON.
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

// bulkLoad writes n requests made by mk, 10,000 per transaction, with
// their indexes and one audit record each: a file as the store writes it,
// built quickly. It returns the first seq.
func bulkLoad(tb testing.TB, s *Store, n int, mk func(i int) *access.Request) uint64 {
	tb.Helper()
	var first uint64
	for done := 0; done < n; {
		err := s.db.Update(func(tx *bbolt.Tx) error {
			a := &auditAppender{tx: tx}
			for count := 0; done < n && count < 10_000; done, count = done+1, count+1 {
				r := mk(done)
				seq, err := tx.Bucket(bucketRequests).NextSequence()
				if err != nil {
					return err
				}
				if first == 0 {
					first = seq
				}
				r.Seq, r.ID, r.Version = seq, access.FormatID(seq), 1
				if err := putRequest(tx, nil, r, nil); err != nil {
					return err
				}
				if err := a.appendHistory(r, r.History); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			tb.Fatal(err)
		}
	}
	return first
}

func approve(at time.Time) func(r *access.Request) error {
	return func(r *access.Request) error {
		if err := access.Apply(r, access.Transition{Event: access.EventApproved, Actor: "U0BOB0001", At: at}); err != nil {
			return err
		}
		r.Decisions = append(r.Decisions, access.Decision{Actor: "U0BOB0001", Approve: true, At: at})
		r.DecidedAt = at
		r.NextAttemptAt = at // grant attempt due now: the deadline index entry moves
		return nil
	}
}

// plainUpdate performs the same transition as Store.Update (read, decode,
// fn on a clone, encode, put, move indexes, append audit) in a db.Update of
// its own: the baseline without group commit.
func (s *Store) plainUpdate(ctx context.Context, seq uint64, fn func(r *access.Request) error) error {
	o, _ := updateOp(ctx, seq, fn)
	return s.db.Update(func(tx *bbolt.Tx) error {
		w, err := o.prepare(tx)
		if err != nil {
			return err
		}
		_, err = w(tx, &auditAppender{tx: tx})
		return err
	})
}

// BenchmarkTransitions measures durable (fsync on) pending → approved
// transitions of ~1 KiB requests, each request transitioned once, through
// Store.Update (group commit) and through a plain db.Update per transition.
func BenchmarkTransitions(b *testing.B) {
	if raw, _ := json.Marshal(benchRequest(0)); len(raw) < 900 {
		b.Fatalf("benchmark request is %d bytes of JSON, want ~1 KiB", len(raw))
	}
	for _, mode := range []string{"store", "plain"} {
		for _, writers := range []int{1, 16, 64} {
			b.Run(fmt.Sprintf("%s/writers=%d", mode, writers), func(b *testing.B) {
				var batches, batched atomic.Int64
				commitHook = func(n int, _ time.Duration) { batches.Add(1); batched.Add(int64(n)) }
				defer func() { commitHook = nil }()
				s, err := Open(filepath.Join(b.TempDir(), "bench.db"), Options{})
				if err != nil {
					b.Fatal(err)
				}
				defer s.Close()
				first := bulkLoad(b, s, b.N, benchRequest)
				batches.Store(0)
				batched.Store(0)
				ctx := context.Background()
				var next atomic.Int64
				lat := make([][]time.Duration, writers)
				var wg sync.WaitGroup
				b.ResetTimer()
				start := time.Now()
				for w := range writers {
					wg.Go(func() {
						for {
							i := next.Add(1) - 1
							if i >= int64(b.N) {
								return
							}
							seq := first + uint64(i)
							t := time.Now()
							var err error
							if mode == "store" {
								_, err = s.Update(ctx, access.FormatID(seq), approve(benchT0))
							} else {
								err = s.plainUpdate(ctx, seq, approve(benchT0))
							}
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
				if mode == "store" {
					b.ReportMetric(float64(batched.Load())/float64(batches.Load()), "ops/commit")
				}
			})
		}
	}
}

var restartFile struct {
	once sync.Once
	path string
	n    int
	err  error
}

// restartPath builds, once per run, a file with BENCH_GRANTS (default
// 100,000) active grants, each with an expiry-warning deadline indexed.
func restartPath(b *testing.B) (string, int) {
	restartFile.once.Do(func() {
		n := 100_000
		if v := os.Getenv("BENCH_GRANTS"); v != "" {
			if n, restartFile.err = strconv.Atoi(v); restartFile.err != nil {
				return
			}
		}
		dir, err := os.MkdirTemp("", "accessbot-restart-")
		if err != nil {
			restartFile.err = err
			return
		}
		restartFile.path, restartFile.n = filepath.Join(dir, "grants.db"), n
		s, err := Open(restartFile.path, Options{NoSync: true}) // the build is setup, not measured
		if err != nil {
			restartFile.err = err
			return
		}
		start := time.Now()
		bulkLoad(b, s, n, func(i int) *access.Request {
			r := benchRequest(i)
			at := r.CreatedAt.Add(time.Minute)
			_ = access.Apply(r, access.Transition{Event: access.EventApproved, Actor: "U0BOB0001", At: at})
			_ = access.Apply(r, access.Transition{Event: access.EventGranted, Actor: access.ActorBot, At: at})
			r.GrantedAt, r.ExpiresAt = at, at.Add(time.Duration(1+i%480)*time.Minute)
			r.WarnAt = r.ExpiresAt.Add(-10 * time.Minute)
			return r
		})
		restartFile.err = s.Close()
		fi, _ := os.Stat(restartFile.path)
		fmt.Fprintf(os.Stderr, "restart file: %d grants, %d MiB, built in %v\n", n, fi.Size()>>20, time.Since(start).Round(time.Millisecond))
	})
	if restartFile.err != nil {
		b.Fatal(restartFile.err)
	}
	return restartFile.path, restartFile.n
}

// BenchmarkRestart measures start-up with N active grants, from Open to
// every deadline known: through the deadline index only (Deadlines), and the
// Vault way, reading and JSON-decoding every request. Same file, warm page
// cache (set BENCH_DROP_CACHES=1 as root to drop it before each iteration).
func BenchmarkRestart(b *testing.B) {
	path, n := restartPath(b)
	b.Cleanup(func() { // the file is large (about 3.8 GiB for 1 M grants)
		os.RemoveAll(filepath.Dir(path))
		restartFile.once, restartFile.err = sync.Once{}, nil
	})
	variants := []struct {
		name string
		scan func(s *Store) (int, error)
	}{
		{"index-only", func(s *Store) (int, error) {
			count := 0
			err := s.Deadlines(context.Background(), func(access.Due) bool { count++; return true })
			return count, err
		}},
		{"decode-all", func(s *Store) (int, error) {
			count := 0
			err := s.db.View(func(tx *bbolt.Tx) error {
				return tx.Bucket(bucketRequests).ForEach(func(k, v []byte) error {
					var r access.Request
					if err := json.Unmarshal(v, &r); err != nil {
						return err
					}
					if !r.NextDeadline().IsZero() {
						count++
					}
					return nil
				})
			})
			return count, err
		}},
	}
	for _, v := range variants {
		b.Run(fmt.Sprintf("%s/grants=%d", v.name, n), func(b *testing.B) {
			var total time.Duration
			for range b.N {
				b.StopTimer()
				dropCaches(b)
				b.StartTimer()
				start := time.Now()
				s, err := Open(path, Options{})
				if err != nil {
					b.Fatal(err)
				}
				count, err := v.scan(s)
				total += time.Since(start)
				b.StopTimer()
				if err != nil || count != n {
					b.Fatalf("scanned %d deadlines, %v; want %d", count, err, n)
				}
				if err := s.Close(); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
			b.ReportMetric(total.Seconds()*1000/float64(b.N), "ms/restart")
			b.ReportMetric(float64(n)/total.Seconds()*float64(b.N), "grants/s")
		})
	}
}

func dropCaches(b *testing.B) {
	if os.Getenv("BENCH_DROP_CACHES") != "1" {
		return
	}
	if err := os.WriteFile("/proc/sys/vm/drop_caches", []byte("3\n"), 0); err != nil {
		b.Fatalf("drop caches: %v", err)
	}
}
