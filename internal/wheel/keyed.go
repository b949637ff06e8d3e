package wheel

import (
	"context"
	"sync"
	"time"
)

// Keyed is a wheel of string IDs with at most one timer per ID, the shape
// the expiry service consumes through its Scheduler interface (Arm replaces,
// Disarm cancels). It is a cache of the store's deadline index: callers must
// tolerate a fire for an ID whose deadline has since changed and look the
// grant up in the store before acting. All methods are safe for concurrent
// use.
type Keyed struct {
	mu     sync.Mutex
	timers map[string]*Timer[string] // pending or being fired; guarded by mu
	w      *Wheel[string]
	fire   func(id string)
}

// NewKeyed returns an empty Keyed wheel starting at start; see New for
// opts and for the contract of fire, which receives the armed ID.
func NewKeyed(opts Options, start time.Time, fire func(id string)) *Keyed {
	k := &Keyed{
		timers: make(map[string]*Timer[string]),
		w:      newWheel[string](opts, start),
		fire:   fire,
	}
	k.w.fireNode = k.fired
	return k
}

// fired runs in Advance for each collected timer. It delivers only if t is
// still the current timer for its ID: an Arm or Disarm that ran after t was
// collected but before this point suppresses the stale fire.
func (k *Keyed) fired(t *Timer[string]) {
	id := t.v
	k.mu.Lock()
	if k.timers[id] != t {
		k.mu.Unlock()
		return
	}
	delete(k.timers, id)
	k.mu.Unlock()
	k.fire(id)
}

// Arm schedules id to fire at at, replacing any timer already armed for id.
// An at not after the latest Advance fires on the next Advance. Idempotent
// for the same (id, at).
func (k *Keyed) Arm(id string, at time.Time) {
	k.mu.Lock()
	if old, ok := k.timers[id]; ok {
		k.w.Stop(old)
	}
	k.timers[id] = k.w.Schedule(at, id)
	k.mu.Unlock()
}

// Disarm cancels the timer for id; a no-op if none is armed or it already
// fired. A fire already handed to the callback cannot be recalled.
func (k *Keyed) Disarm(id string) {
	k.mu.Lock()
	if old, ok := k.timers[id]; ok {
		k.w.Stop(old)
		delete(k.timers, id)
	}
	k.mu.Unlock()
}

// Advance fires every armed ID whose deadline is <= now; see Wheel.Advance.
func (k *Keyed) Advance(now time.Time) { k.w.Advance(now) }

// Run drives Advance every Tick until ctx is done; see Wheel.Run.
func (k *Keyed) Run(ctx context.Context, clock Clock) { k.w.Run(ctx, clock) }

// Len reports the number of armed IDs not yet delivered.
func (k *Keyed) Len() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.timers)
}
