package connectors

import (
	"sync"
	"time"

	"github.com/accessbot/accessbot/access"
)

// TTLCache remembers values by key for a fixed time, measured on an
// injected clock. Connectors use it to reuse a person's resolved vendor
// user ID for a few minutes instead of looking it up on every call.
//
// It is safe for concurrent use. Lookups for one key are not coalesced:
// two callers that miss at the same time both compute the value and the
// later Put wins. An entry stays until it is overwritten or deleted; an
// expired one is never returned but is not removed either, so the map
// holds at most one entry per key ever stored (for user IDs: per person).
type TTLCache[K comparable, V any] struct {
	clock access.Clock
	ttl   time.Duration

	mu sync.Mutex
	m  map[K]ttlEntry[V]
}

type ttlEntry[V any] struct {
	v       V
	expires time.Time
}

// NewTTLCache returns an empty cache whose entries are fresh for ttl after
// they are stored, by clock.
func NewTTLCache[K comparable, V any](clock access.Clock, ttl time.Duration) *TTLCache[K, V] {
	return &TTLCache[K, V]{clock: clock, ttl: ttl, m: map[K]ttlEntry[V]{}}
}

// Get returns key's value if one is stored and the clock is still before
// its expiry.
func (c *TTLCache[K, V]) Get(key K) (V, bool) {
	return c.getAt(key, c.clock.Now())
}

// Put stores v for key, fresh for the TTL from now.
func (c *TTLCache[K, V]) Put(key K, v V) {
	c.putAt(key, v, c.clock.Now())
}

// Delete forgets key, so that the next Get misses and the value is looked
// up again. Deleting an absent key does nothing.
func (c *TTLCache[K, V]) Delete(key K) {
	c.mu.Lock()
	delete(c.m, key)
	c.mu.Unlock()
}

// GetOrFill returns key's fresh value, or calls fill (without holding the
// cache's lock) and stores what it returns. The entry's TTL counts from
// when GetOrFill was called, not from when fill returned. An error from
// fill is returned as is and nothing is stored.
func (c *TTLCache[K, V]) GetOrFill(key K, fill func() (V, error)) (V, error) {
	now := c.clock.Now()
	if v, ok := c.getAt(key, now); ok {
		return v, nil
	}
	v, err := fill()
	if err != nil {
		var zero V
		return zero, err
	}
	c.putAt(key, v, now)
	return v, nil
}

func (c *TTLCache[K, V]) getAt(key K, now time.Time) (V, bool) {
	c.mu.Lock()
	e, ok := c.m[key]
	c.mu.Unlock()
	if !ok || !now.Before(e.expires) {
		var zero V
		return zero, false
	}
	return e.v, true
}

func (c *TTLCache[K, V]) putAt(key K, v V, now time.Time) {
	c.mu.Lock()
	c.m[key] = ttlEntry[V]{v: v, expires: now.Add(c.ttl)}
	c.mu.Unlock()
}
