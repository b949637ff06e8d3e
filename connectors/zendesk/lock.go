package zendesk

import (
	"context"
	"sync"
)

// keyedLock serialises work per key (a Zendesk user ID) within this
// process: the role change is a read-modify-write of the user and of the
// stored records, and two grants for one agent must not interleave. Waiting
// honours ctx. Entries are dropped when nobody holds or waits for them, so
// the map stays as small as the number of users being worked on.
type keyedLock struct {
	mu sync.Mutex
	m  map[int64]*keyedEntry
}

type keyedEntry struct {
	ch   chan struct{} // capacity 1: full while held
	refs int           // holders and waiters
}

// lock waits for key's lock and returns the function that releases it.
func (l *keyedLock) lock(ctx context.Context, key int64) (func(), error) {
	l.mu.Lock()
	if l.m == nil {
		l.m = map[int64]*keyedEntry{}
	}
	e := l.m[key]
	if e == nil {
		e = &keyedEntry{ch: make(chan struct{}, 1)}
		l.m[key] = e
	}
	e.refs++
	l.mu.Unlock()

	release := func() {
		l.mu.Lock()
		e.refs--
		if e.refs == 0 {
			delete(l.m, key)
		}
		l.mu.Unlock()
	}
	select {
	case e.ch <- struct{}{}:
		return func() { <-e.ch; release() }, nil
	case <-ctx.Done():
		release()
		return nil, ctx.Err()
	}
}
