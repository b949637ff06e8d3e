package connectors

import (
	"context"
	"sync"
)

// KeyedMutex serialises work per key within this process, for example a
// read-modify-write of one vendor user's roles or one group's members that
// a concurrent grant and revoke must not interleave. The zero value is
// ready to use and it must not be copied after first use.
//
// Each key's lock is reference counted: an entry exists only while someone
// holds or waits for it, so the map stays as small as the number of keys
// being worked on. Lock is not reentrant.
type KeyedMutex[K comparable] struct {
	mu sync.Mutex
	m  map[K]*keyedEntry
}

type keyedEntry struct {
	ch   chan struct{} // capacity 1: full while held
	refs int           // holders and waiters
}

// Lock waits for key's lock and returns the function that releases it
// (call it exactly once). If ctx ends first, Lock gives up its place and
// returns ctx.Err() with a nil unlock.
func (k *KeyedMutex[K]) Lock(ctx context.Context, key K) (unlock func(), err error) {
	k.mu.Lock()
	if k.m == nil {
		k.m = map[K]*keyedEntry{}
	}
	e := k.m[key]
	if e == nil {
		e = &keyedEntry{ch: make(chan struct{}, 1)}
		k.m[key] = e
	}
	e.refs++
	k.mu.Unlock()

	release := func() {
		k.mu.Lock()
		if e.refs--; e.refs == 0 {
			delete(k.m, key)
		}
		k.mu.Unlock()
	}
	select {
	case e.ch <- struct{}{}:
		return func() { <-e.ch; release() }, nil
	case <-ctx.Done():
		release()
		return nil, ctx.Err()
	}
}
