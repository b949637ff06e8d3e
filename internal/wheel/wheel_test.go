package wheel

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// The service consumes Keyed through this interface.
var _ interface {
	Arm(id string, at time.Time)
	Disarm(id string)
} = (*Keyed)(nil)

var t0 = time.Date(2025, 3, 3, 9, 0, 0, 0, time.UTC)

// recorder collects fired values; safe for concurrent use.
type recorder[T any] struct {
	mu  sync.Mutex
	got []T
}

func (r *recorder[T]) fire(v T) {
	r.mu.Lock()
	r.got = append(r.got, v)
	r.mu.Unlock()
}

// take returns and clears what fired so far.
func (r *recorder[T]) take() []T {
	r.mu.Lock()
	defer r.mu.Unlock()
	g := r.got
	r.got = nil
	return g
}

func newTestWheel(opts Options) (*Wheel[string], *recorder[string]) {
	r := &recorder[string]{}
	return New(opts, t0, r.fire), r
}

func checkFired[T any](t *testing.T, r *recorder[T], want []T) {
	t.Helper()
	if diff := cmp.Diff(want, r.take(), cmpopts.EquateEmpty()); diff != "" {
		t.Fatalf("fired (-want +got):\n%s", diff)
	}
}

func TestDefaults(t *testing.T) {
	w := New(Options{}, t0, func(int) {})
	if w.tick != int64(10*time.Millisecond) || len(w.slots) != 4096 {
		t.Fatalf("defaults: tick %v slots %d", time.Duration(w.tick), len(w.slots))
	}
	w = New(Options{Tick: time.Second, Slots: 1000}, t0, func(int) {})
	if len(w.slots) != 1024 {
		t.Fatalf("Slots 1000 rounded to %d, want 1024", len(w.slots))
	}
}

func TestOrderWithinAndAcrossTicks(t *testing.T) {
	w, r := newTestWheel(Options{Tick: 10 * time.Millisecond, Slots: 8})
	ms := time.Millisecond
	// Scheduled out of order; "c1" and "c2" tie and must keep scheduling order.
	w.Schedule(t0.Add(25*ms), "e")
	w.Schedule(t0.Add(3*ms), "b")
	w.Schedule(t0.Add(7*ms), "c1")
	w.Schedule(t0.Add(1*ms), "a")
	w.Schedule(t0.Add(7*ms), "c2")
	w.Schedule(t0.Add(12*ms), "d")
	w.Schedule(t0.Add(40*ms), "f")

	w.Advance(t0.Add(5 * ms)) // mid-tick: only deadlines <= now
	checkFired(t, r, []string{"a", "b"})
	w.Advance(t0.Add(30 * ms))
	checkFired(t, r, []string{"c1", "c2", "d", "e"})
	if got := w.Len(); got != 1 {
		t.Fatalf("Len = %d, want 1", got)
	}
	w.Advance(t0.Add(40 * ms)) // deadline == now fires
	checkFired(t, r, []string{"f"})
}

func TestFiresExactlyOnce(t *testing.T) {
	w, r := newTestWheel(Options{Slots: 16})
	for i := range 100 {
		w.Schedule(t0.Add(time.Duration(i)*7*time.Millisecond), fmt.Sprint(i))
	}
	now := t0
	seen := map[string]int{}
	for range 200 {
		now = now.Add(5 * time.Millisecond)
		w.Advance(now)
		w.Advance(now)                   // same now: nothing new
		w.Advance(now.Add(-time.Second)) // earlier now: treated as latest
		for _, v := range r.take() {
			seen[v]++
		}
	}
	if len(seen) != 100 {
		t.Fatalf("fired %d distinct, want 100", len(seen))
	}
	for v, n := range seen {
		if n != 1 {
			t.Errorf("%s fired %d times", v, n)
		}
	}
	if w.Len() != 0 {
		t.Fatalf("Len = %d after all fired", w.Len())
	}
}

func TestStop(t *testing.T) {
	w, r := newTestWheel(Options{})
	a := w.Schedule(t0.Add(time.Second), "a")
	b := w.Schedule(t0.Add(time.Second), "b")
	if !w.Stop(a) {
		t.Fatal("Stop of pending timer = false")
	}
	if w.Stop(a) {
		t.Fatal("second Stop = true")
	}
	if w.Len() != 1 {
		t.Fatalf("Len = %d, want 1", w.Len())
	}
	w.Advance(t0.Add(time.Second))
	checkFired(t, r, []string{"b"})
	if w.Stop(b) {
		t.Fatal("Stop after fire = true")
	}
	if w.Stop(nil) {
		t.Fatal("Stop(nil) = true")
	}
	w.Advance(t0.Add(time.Hour))
	checkFired(t, r, nil)
}

func TestStopAndScheduleFromFire(t *testing.T) {
	// fire runs outside the lock, so it may Schedule and Stop (the
	// service re-arms retries this way).
	var w *Wheel[int]
	var got []int
	var victim *Timer[int]
	w = New(Options{Slots: 8}, t0, func(v int) {
		got = append(got, v)
		if v == 1 {
			w.Schedule(t0.Add(time.Hour), 3) // far: lives across revolutions
			w.Schedule(t0, 4)                // past: next Advance
			if !w.Stop(victim) {
				t.Error("Stop from fire = false")
			}
		}
	})
	w.Schedule(t0.Add(time.Millisecond), 1)
	victim = w.Schedule(t0.Add(50*time.Millisecond), 2) // not in 1's batch
	w.Schedule(t0.Add(time.Millisecond), 5)             // same batch: collected, so it fires
	w.Advance(t0.Add(time.Millisecond))
	if !slices.Equal(got, []int{1, 5}) {
		t.Fatalf("got %v, want [1 5]", got)
	}
	w.Advance(t0.Add(time.Millisecond))
	w.Advance(t0.Add(2 * time.Hour))
	if !slices.Equal(got, []int{1, 5, 4, 3}) {
		t.Fatalf("got %v, want [1 5 4 3]", got)
	}
}

func TestPastDeadlines(t *testing.T) {
	w, r := newTestWheel(Options{})
	w.Schedule(time.Time{}, "zero")                   // zero time: long past
	w.Schedule(t0.Add(-72*time.Hour), "before start") // before the wheel's start
	w.Advance(t0)
	checkFired(t, r, []string{"zero", "before start"})

	now := t0.Add(time.Minute)
	w.Advance(now)
	w.Schedule(now.Add(-time.Second), "late")
	w.Schedule(now, "now")
	w.Advance(now) // same now still fires what was scheduled in the past
	checkFired(t, r, []string{"late", "now"})
}

func TestLongDeadlines(t *testing.T) {
	// 10ms × 4096 ≈ 41 s per revolution; these wait thousands of revolutions.
	w, r := newTestWheel(Options{})
	deadlines := map[string]time.Duration{
		"8h":    8 * time.Hour,
		"1d":    24 * time.Hour,
		"7d":    7 * 24 * time.Hour,
		"90d":   90 * 24 * time.Hour,
		"never": 200 * 365 * 24 * time.Hour, // past year 2262: clamped, still orderly
	}
	for id, d := range deadlines {
		w.Schedule(t0.Add(d), id)
	}
	// Walk in steps shorter and longer than a revolution, stopping 1ns
	// before and exactly at each deadline.
	for _, id := range []string{"8h", "1d", "7d", "90d"} {
		d := t0.Add(deadlines[id])
		w.Advance(d.Add(-time.Nanosecond))
		checkFired(t, r, nil)
		w.Advance(d)
		checkFired(t, r, []string{id})
	}
	if w.Len() != 1 {
		t.Fatalf("Len = %d, want 1", w.Len())
	}
}

func TestTickByTickAcrossRevolutions(t *testing.T) {
	w, r := newTestWheel(Options{Tick: time.Millisecond, Slots: 4})
	for i := range 20 {
		w.Schedule(t0.Add(time.Duration(i)*time.Millisecond+time.Microsecond), fmt.Sprint(i))
	}
	var got []string
	for i := range 25 {
		w.Advance(t0.Add(time.Duration(i) * time.Millisecond))
		got = append(got, r.take()...)
		if len(got) != min(i, 20) {
			t.Fatalf("after %dms fired %d, want %d", i, len(got), min(i, 20))
		}
	}
}

func TestBigJump(t *testing.T) {
	w, r := newTestWheel(Options{})
	rng := rand.New(rand.NewPCG(1, 2))
	type item struct {
		id   string
		when time.Time
	}
	var due []item
	for i := range 5000 {
		at := t0.Add(time.Duration(rng.Int64N(int64(96 * time.Hour))))
		id := fmt.Sprint(i)
		w.Schedule(at, id)
		if !at.After(t0.Add(72 * time.Hour)) {
			due = append(due, item{id, at})
		}
	}
	slices.SortStableFunc(due, func(a, b item) int { return a.when.Compare(b.when) })
	want := make([]string, len(due))
	for i, d := range due {
		want[i] = d.id
	}
	w.Advance(t0.Add(72 * time.Hour)) // ≈ 25 M ticks: one sweep
	checkFired(t, r, want)
	if w.Len() != 5000-len(due) {
		t.Fatalf("Len = %d, want %d", w.Len(), 5000-len(due))
	}
	// The rest fire after another jump, and a schedule after the jump
	// lands correctly relative to the new position.
	w.Schedule(t0.Add(72*time.Hour+time.Second), "after-jump")
	w.Advance(t0.Add(72*time.Hour + time.Second))
	checkFired(t, r, []string{"after-jump"})
	w.Advance(t0.Add(1000 * time.Hour))
	if got := len(r.take()); got != 5000-len(due) {
		t.Fatalf("second jump fired %d, want %d", got, 5000-len(due))
	}
}

func TestConcurrent(t *testing.T) {
	var fired atomic.Int64
	const workers, per = 4, 2000
	seen := make([]atomic.Int32, workers*per)
	w := New(Options{Tick: time.Millisecond, Slots: 64}, t0, func(v int) {
		seen[v].Add(1)
		fired.Add(1)
	})
	var stopped atomic.Int64
	var nowNs atomic.Int64 // the advancer's position, read by schedulers
	nowNs.Store(t0.UnixNano())
	done := make(chan struct{})
	var adv sync.WaitGroup
	adv.Add(2)
	for range 2 { // two advancers: Advance must serialise itself
		go func() {
			defer adv.Done()
			for i := 0; ; i++ {
				select {
				case <-done:
					return
				default:
				}
				n := nowNs.Add(int64(time.Millisecond))
				w.Advance(time.Unix(0, n))
				_ = w.Len()
			}
		}()
	}
	var wg sync.WaitGroup
	for g := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(g), 9))
			for i := range per {
				base := time.Unix(0, nowNs.Load())
				tm := w.Schedule(base.Add(time.Duration(rng.Int64N(int64(200*time.Millisecond)))-50*time.Millisecond), g*per+i)
				if rng.IntN(3) == 0 && w.Stop(tm) {
					stopped.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	close(done)
	adv.Wait()
	w.Advance(time.Unix(0, nowNs.Load()).Add(time.Hour))
	if f, s := fired.Load(), stopped.Load(); f+s != workers*per {
		t.Fatalf("fired %d + stopped %d != scheduled %d", f, s, workers*per)
	}
	for i := range seen {
		if n := seen[i].Load(); n > 1 {
			t.Fatalf("timer %d fired %d times", i, n)
		}
	}
	if w.Len() != 0 {
		t.Fatalf("Len = %d, want 0", w.Len())
	}
}

func TestRunStopsOnCancel(t *testing.T) {
	// Run does one Advance at entry; with ctx already done it returns
	// without waiting on real time for anything else to happen.
	w, r := newTestWheel(Options{})
	w.Schedule(t0.Add(time.Second), "due")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	w.Run(ctx, fakeClock{t0.Add(time.Second)})
	checkFired(t, r, []string{"due"})
}

type fakeClock struct{ now time.Time }

func (c fakeClock) Now() time.Time { return c.now }

func TestKeyed(t *testing.T) {
	r := &recorder[string]{}
	k := NewKeyed(Options{}, t0, r.fire)

	k.Arm("g1", t0.Add(time.Hour))
	k.Arm("g2", t0.Add(2*time.Hour))
	k.Arm("g3", t0.Add(3*time.Hour))
	k.Arm("g1", t0.Add(4*time.Hour)) // replaces: extended grant
	k.Arm("g3", t0.Add(30*time.Minute))
	k.Disarm("g2") // revoked early
	k.Disarm("nope")
	if k.Len() != 2 {
		t.Fatalf("Len = %d, want 2", k.Len())
	}
	k.Advance(t0.Add(time.Hour))
	checkFired(t, r, []string{"g3"})
	k.Advance(t0.Add(3 * time.Hour))
	checkFired(t, r, nil)
	k.Advance(t0.Add(4 * time.Hour))
	checkFired(t, r, []string{"g1"})
	if k.Len() != 0 {
		t.Fatalf("Len = %d, want 0", k.Len())
	}
	// Arm after fire works again; Disarm after fire is a no-op.
	k.Arm("g1", t0) // overdue: next Advance
	k.Disarm("g3")
	k.Advance(t0.Add(4 * time.Hour))
	checkFired(t, r, []string{"g1"})
}

func TestKeyedRearmDuringFireSuppressesStale(t *testing.T) {
	// g1 and g2 are collected in one batch. g1's fire re-arms g2 for
	// later and disarms g3: the already collected g2 and g3 must not be
	// delivered, and the new g2 must fire at its new deadline.
	var k *Keyed
	var got []string
	k = NewKeyed(Options{}, t0, func(id string) {
		got = append(got, id)
		if id == "g1" {
			k.Arm("g2", t0.Add(time.Hour))
			k.Disarm("g3")
		}
	})
	k.Arm("g1", t0.Add(time.Second))
	k.Arm("g2", t0.Add(2*time.Second))
	k.Arm("g3", t0.Add(3*time.Second))
	k.Advance(t0.Add(time.Minute))
	if !slices.Equal(got, []string{"g1"}) {
		t.Fatalf("got %v, want [g1]", got)
	}
	if k.Len() != 1 {
		t.Fatalf("Len = %d, want 1", k.Len())
	}
	k.Advance(t0.Add(time.Hour))
	if !slices.Equal(got, []string{"g1", "g2"}) {
		t.Fatalf("got %v, want [g1 g2]", got)
	}
}

func TestKeyedConcurrent(t *testing.T) {
	var fired atomic.Int64
	k := NewKeyed(Options{Tick: time.Millisecond, Slots: 32}, t0, func(string) { fired.Add(1) })
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 1000 {
				id := fmt.Sprint(i % 50)
				switch i % 3 {
				case 0, 1:
					k.Arm(id, t0.Add(time.Duration(i+g)*time.Millisecond))
				default:
					k.Disarm(id)
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range 500 {
			k.Advance(t0.Add(time.Duration(i) * time.Millisecond))
		}
	}()
	wg.Wait()
	k.Advance(t0.Add(time.Hour))
	if k.Len() != 0 || k.w.Len() != 0 {
		t.Fatalf("Len = %d, wheel Len = %d after final Advance", k.Len(), k.w.Len())
	}
}

// TestAgainstReference runs random operations against the wheel and a
// sorted-slice model and requires identical fire sequences.
func TestAgainstReference(t *testing.T) {
	for seed := range uint64(30) {
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 42))
			tick := time.Duration(1+rng.IntN(20)) * time.Millisecond
			slots := 1 << rng.IntN(7) // 1..64: revolutions are short
			var got []int
			w := New(Options{Tick: tick, Slots: slots}, t0, func(v int) { got = append(got, v) })

			type ref struct {
				id   int
				when time.Time
				h    *Timer[int]
			}
			var pending []ref // kept in scheduling order
			now := t0
			for op := range 3000 {
				switch x := rng.IntN(100); {
				case x < 50:
					var at time.Time
					switch rng.IntN(10) {
					case 0: // past
						at = now.Add(-time.Duration(rng.Int64N(int64(time.Second))))
					case 1: // far future: many revolutions
						at = now.Add(time.Duration(rng.Int64N(int64(24 * time.Hour))))
					case 2: // exactly now
						at = now
					default:
						at = now.Add(time.Duration(rng.Int64N(int64(2 * time.Second))))
					}
					pending = append(pending, ref{op, at, w.Schedule(at, op)})
				case x < 65:
					if len(pending) == 0 {
						continue
					}
					i := rng.IntN(len(pending))
					if !w.Stop(pending[i].h) {
						t.Fatalf("op %d: Stop of pending timer %d = false", op, pending[i].id)
					}
					pending = slices.Delete(pending, i, i+1)
				default:
					switch rng.IntN(20) {
					case 0:
						now = now.Add(time.Duration(rng.Int64N(int64(48 * time.Hour))))
					case 1:
						// backwards: no effect
						w.Advance(now.Add(-time.Duration(rng.Int64N(int64(time.Minute)))))
					case 2: // same now
					default:
						now = now.Add(time.Duration(rng.Int64N(int64(300 * time.Millisecond))))
					}
					w.Advance(now)
					var want []int
					var firedRefs []ref
					keep := pending[:0:0]
					for _, p := range pending {
						if !p.when.After(now) {
							firedRefs = append(firedRefs, p)
						} else {
							keep = append(keep, p)
						}
					}
					slices.SortStableFunc(firedRefs, func(a, b ref) int { return a.when.Compare(b.when) })
					for _, p := range firedRefs {
						want = append(want, p.id)
						if w.Stop(p.h) {
							t.Fatalf("op %d: Stop after fire of %d = true", op, p.id)
						}
					}
					pending = keep
					if diff := cmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
						t.Fatalf("op %d: Advance(%v) fired (-want +got):\n%s", op, now.Sub(t0), diff)
					}
					got = got[:0]
				}
				if w.Len() != len(pending) {
					t.Fatalf("op %d: Len = %d, want %d", op, w.Len(), len(pending))
				}
			}
		})
	}
}

func TestLargeBatchOrderIsStable(t *testing.T) {
	// Batches above the small-sort cutoff are radix sorted; ties must
	// still fire in scheduling order, within a tick and across a jump.
	for _, spread := range []time.Duration{5 * time.Millisecond, 30 * 24 * time.Hour} {
		var got []int
		w := New(Options{}, t0, func(v int) { got = append(got, v) })
		rng := rand.New(rand.NewPCG(3, 4))
		type item struct {
			id   int
			when time.Time
		}
		var items []item
		for i := range 3000 {
			at := t0.Add(time.Second + time.Duration(rng.Int64N(20))*spread/20) // 20 distinct deadlines
			items = append(items, item{i, at})
			w.Schedule(at, i)
		}
		slices.SortStableFunc(items, func(a, b item) int { return a.when.Compare(b.when) })
		want := make([]int, len(items))
		for i, it := range items {
			want[i] = it.id
		}
		w.Advance(t0.Add(time.Second + spread))
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("spread %v: order (-want +got):\n%s", spread, diff)
		}
	}
}
