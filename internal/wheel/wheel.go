// Package wheel is a hashed timing wheel that hands due items to a callback
// without a goroutine or runtime timer per item.
//
// It exists for the expiry engine: the store's deadline index is the truth and
// the wheel is a cache of it, rebuilt on start and re-armed by reconcile. What
// the wheel buys over time.AfterFunc is memory (one small intrusive list node
// per timer) and mass expiry: a million grants created at 09:00 for 8 h are
// handed to the callback in one pass instead of spawning a million goroutines.
// The price is precision: a timer fires on the first Advance whose now is at or
// after its deadline, so when driven by Run it fires up to one Tick late (plus
// scheduling noise), never early.
//
// Design: a single level of Slots buckets, each a circular doubly linked list
// with a sentinel. A timer lives in bucket (deadline tick) mod Slots and keeps
// its absolute deadline, so deadlines many revolutions away (hours, days) just
// stay in their bucket and are skipped while scanning until their turn; nothing
// is rewritten per revolution. Advance scans the buckets of the ticks that
// elapsed; if more than a revolution elapsed (process suspended, fake clock
// jumped by days) it sweeps every bucket once instead of iterating tick by
// tick.
//
// Time is taken from time.Time wall-clock nanoseconds (UnixNano), not the
// monotonic reading, on purpose: after a VM or laptop suspend the wall clock
// has moved on and everything that came due during the suspend fires on the
// next Advance, whereas runtime timers (CLOCK_MONOTONIC) would fire late by
// the length of the suspend.
package wheel

import (
	"cmp"
	"context"
	"math"
	"slices"
	"sync"
	"time"
)

// Clock is the time source; tests inject a fake. Now must be safe for
// concurrent use.
type Clock interface{ Now() time.Time }

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

// Options configure a Wheel. Zero values select the defaults.
type Options struct {
	// Tick is the bucket width and, under Run, the interval between
	// Advances. It bounds firing precision: a timer fires at most one Tick
	// after its deadline when driven by Run. Default 10ms.
	Tick time.Duration
	// Slots is the number of buckets, a power of two (other values are
	// rounded up). One revolution spans Tick*Slots (≈41 s by default);
	// longer deadlines work but are visited once per revolution while
	// they wait. Default 4096.
	Slots int
}

const (
	defaultTick  = 10 * time.Millisecond
	defaultSlots = 4096
	// maxKeptBatch is the capacity above which the dispatch buffer is
	// released after a mass expiry rather than kept for reuse.
	maxKeptBatch = 1 << 14
)

// Timer is a handle to one scheduled item, returned by Schedule and used only
// to Stop it. It is an intrusive list node: 2 pointers, the deadline and the
// value (32 bytes for an int or pointer T). A Timer belongs to the Wheel that
// created it and must only be passed to that Wheel's Stop.
type Timer[T any] struct {
	next, prev *Timer[T] // nil when not armed (fired, stopped or being fired)
	when       int64     // deadline, Unix nanoseconds
	v          T
}

// Wheel is a hashed timing wheel delivering values of type T to a fire
// callback. All methods are safe for concurrent use.
type Wheel[T any] struct {
	mu     sync.Mutex // guards everything below except batch
	slots  []Timer[T] // bucket sentinels
	mask   int64
	origin int64 // Unix ns of tick 0 (the start passed to New)
	tick   int64 // ns
	cur    int64 // lowest tick whose bucket may still hold due timers
	now    int64 // greatest now seen by Advance, Unix ns
	n      int

	advMu   sync.Mutex // serialises Advance so fires come out in order
	batch   []due[T]   // collected due timers; guarded by advMu
	scratch []due[T]   // radix sort buffer; guarded by advMu

	fire     func(v T)
	fireNode func(t *Timer[T]) // used by Keyed instead of fire
}

type due[T any] struct {
	when int64
	t    *Timer[T]
}

// New returns an empty wheel whose clock starts at start. fire is called for
// each due value from the goroutine calling Advance (or Run), outside the
// wheel's lock, so it may call Schedule and Stop but must not call Advance.
// fire should be quick (a non-blocking send to a worker queue); a slow fire
// delays every later timer. fire must not panic: the panic propagates out of
// Advance and the rest of that batch is lost.
func New[T any](opts Options, start time.Time, fire func(v T)) *Wheel[T] {
	w := newWheel[T](opts, start)
	w.fire = fire
	return w
}

func newWheel[T any](opts Options, start time.Time) *Wheel[T] {
	tick := opts.Tick
	if tick <= 0 {
		tick = defaultTick
	}
	slots := opts.Slots
	if slots <= 0 {
		slots = defaultSlots
	}
	p := 1
	for p < slots {
		p <<= 1
	}
	w := &Wheel[T]{
		slots:  make([]Timer[T], p),
		mask:   int64(p - 1),
		origin: unixNano(start),
		tick:   int64(tick),
	}
	w.now = w.origin
	for i := range w.slots {
		s := &w.slots[i]
		s.next, s.prev = s, s
	}
	return w
}

var (
	minTime = time.Unix(0, math.MinInt64)
	maxTime = time.Unix(0, math.MaxInt64)
)

// unixNano is t.UnixNano clamped to the representable range (years
// 1678–2262), so a zero time means "long past" and a far-future time means
// "never in practice" instead of an undefined result.
func unixNano(t time.Time) int64 {
	if t.Before(minTime) {
		return math.MinInt64
	}
	if t.After(maxTime) {
		return math.MaxInt64
	}
	return t.UnixNano()
}

// tickOf returns the tick index holding ns, or -1 for instants before the
// origin (callers clamp to cur anyway).
func (w *Wheel[T]) tickOf(ns int64) int64 {
	if ns < w.origin {
		return -1
	}
	return int64((uint64(ns) - uint64(w.origin)) / uint64(w.tick))
}

// Schedule arms a timer that fires v at the first Advance with now >= at. An
// at not after the latest Advance fires on the next Advance. The returned
// handle is only needed to Stop the timer. Safe for concurrent use; O(1).
func (w *Wheel[T]) Schedule(at time.Time, v T) *Timer[T] {
	t := &Timer[T]{when: unixNano(at), v: v}
	w.mu.Lock()
	k := max(w.tickOf(t.when), w.cur)
	head := &w.slots[k&w.mask]
	t.prev, t.next = head.prev, head
	head.prev.next = t
	head.prev = t
	w.n++
	w.mu.Unlock()
	return t
}

// Stop cancels t, unlinking it immediately (O(1)). It returns true if this
// call cancelled a pending timer, and false if t already fired, was already
// stopped, is nil, or has been collected by an in-progress Advance (its fire
// is then imminent or running: stop-after-fire is a no-op, never an error).
// Safe for concurrent use.
func (w *Wheel[T]) Stop(t *Timer[T]) bool {
	if t == nil {
		return false
	}
	w.mu.Lock()
	ok := w.unlink(t)
	w.mu.Unlock()
	return ok
}

// unlink removes t from its bucket; w.mu must be held.
func (w *Wheel[T]) unlink(t *Timer[T]) bool {
	if t.next == nil {
		return false
	}
	t.prev.next = t.next
	t.next.prev = t.prev
	t.next, t.prev = nil, nil
	w.n--
	return true
}

// Advance moves the wheel to now and calls fire, in the calling goroutine
// and outside the wheel's lock, for every pending timer whose deadline is <=
// now, in deadline order (ties in scheduling order). Each timer fires at most
// once. A now before the latest one seen is treated as that latest one, so
// repeating a now fires nothing new except timers scheduled in the past since.
// Concurrent calls are serialised. Cost is proportional to the buckets of the
// elapsed ticks plus the timers in them; if more than a revolution elapsed,
// every bucket is swept once, whatever the gap.
func (w *Wheel[T]) Advance(now time.Time) {
	nowNs := unixNano(now)
	w.advMu.Lock()
	defer w.advMu.Unlock()
	defer w.resetBatch()

	w.mu.Lock()
	nowNs = max(nowNs, w.now)
	w.now = nowNs
	target := max(w.tickOf(nowNs), w.cur)
	if target-w.cur > w.mask {
		// More than a revolution elapsed: one sweep finds everything due.
		for i := range w.slots {
			w.collect(&w.slots[i], nowNs)
		}
		w.cur = target
		w.mu.Unlock()
		w.dispatch()
		return
	}
	for {
		k := w.cur
		w.collect(&w.slots[k&w.mask], nowNs)
		last := k >= target
		if !last {
			// Timers scheduled into an already scanned tick while
			// the lock is released below land in k+1's bucket.
			w.cur = k + 1
		}
		w.mu.Unlock()
		w.dispatch()
		if last {
			return
		}
		w.mu.Lock()
	}
}

// collect unlinks the timers of one bucket that are due at nowNs into
// w.batch; w.mu must be held.
func (w *Wheel[T]) collect(head *Timer[T], nowNs int64) {
	for t := head.next; t != head; {
		next := t.next
		if t.when <= nowNs {
			w.unlink(t)
			w.batch = append(w.batch, due[T]{t.when, t})
		}
		t = next
	}
}

// dispatch fires w.batch in deadline order; only advMu is held.
func (w *Wheel[T]) dispatch() {
	b := w.sortBatch()
	for i := range b {
		t := b[i].t
		b[i].t = nil
		if w.fireNode != nil {
			w.fireNode(t)
		} else {
			w.fire(t.v)
		}
	}
	w.batch = b[:0]
}

// sortBatch orders w.batch by deadline, keeping collection order (bucket
// order, which is scheduling order) for ties. A mass expiry collects a whole
// cohort in one batch, where a comparison sort was the dominant cost
// (≈0.6 s for 1M), so large batches use a stable LSD radix sort on the
// deadline's offset from the batch minimum: 11 bits per pass, and only as
// many passes as the spread needs (3 for a batch within one 10ms tick).
func (w *Wheel[T]) sortBatch() []due[T] {
	b := w.batch
	byWhen := func(a, b due[T]) int { return cmp.Compare(a.when, b.when) }
	if len(b) < 2 || slices.IsSortedFunc(b, byWhen) {
		return b
	}
	if len(b) <= 256 {
		slices.SortStableFunc(b, byWhen)
		return b
	}
	lo, hi := b[0].when, b[0].when
	for _, e := range b {
		lo, hi = min(lo, e.when), max(hi, e.when)
	}
	spread := uint64(hi) - uint64(lo)
	if cap(w.scratch) < len(b) {
		w.scratch = make([]due[T], len(b))
	}
	src, dst := b, w.scratch[:len(b)]
	const bits = 11
	var count [1 << bits]int
	for shift := 0; shift < 64 && spread>>shift != 0; shift += bits {
		clear(count[:])
		for _, e := range src {
			count[(uint64(e.when)-uint64(lo))>>shift&(1<<bits-1)]++
		}
		sum := 0
		for i, c := range count {
			count[i] = sum
			sum += c
		}
		for _, e := range src {
			d := (uint64(e.when) - uint64(lo)) >> shift & (1<<bits - 1)
			dst[count[d]] = e
			count[d]++
		}
		src, dst = dst, src
	}
	// Keep the other buffer for next time; dst is whichever src is not.
	w.batch, w.scratch = src, dst
	clear(dst) // drop stale timer pointers from the spare buffer
	return src
}

// resetBatch drops references to collected timers (after a panic in fire)
// and releases buffers grown by a mass expiry.
func (w *Wheel[T]) resetBatch() {
	clear(w.batch)
	if cap(w.batch) > maxKeptBatch {
		w.batch = nil
	} else {
		w.batch = w.batch[:0]
	}
	if cap(w.scratch) > maxKeptBatch {
		w.scratch = nil
	}
}

// Run calls Advance(clock.Now()) at once and then every Tick, using a real
// ticker, until ctx is done. It is the production driver; tests call Advance
// directly. A nil clock means the system clock. Run blocks; start it in a
// goroutine owned by the caller.
func (w *Wheel[T]) Run(ctx context.Context, clock Clock) {
	if clock == nil {
		clock = systemClock{}
	}
	tk := time.NewTicker(time.Duration(w.tick))
	defer tk.Stop()
	w.Advance(clock.Now())
	for {
		select {
		case <-ctx.Done():
			return
		case <-tk.C:
			w.Advance(clock.Now())
		}
	}
}

// Len reports the number of pending timers (scheduled, not yet collected
// for firing, not stopped).
func (w *Wheel[T]) Len() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.n
}
