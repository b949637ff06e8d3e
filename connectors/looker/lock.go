package looker

import (
	"context"
	"sync"
)

// keyedLock serialises work per key (a Looker user ID) within this
// process: setting a user's roles replaces the whole list, so a grant and
// a revoke for one user must not interleave their read and write. Waiting
// honours ctx. Entries are dropped when nobody holds or waits for them, so
// the map stays as small as the number of users being worked on.
type keyedLock struct {
	mu sync.Mutex
	m  map[string]*keyedEntry
}

type keyedEntry struct {
	ch   chan struct{} // capacity 1: full while held
	refs int           // holders and waiters
}

// lock waits for key's lock and returns the function that releases it.
func (l *keyedLock) lock(ctx context.Context, key string) (func(), error) {
	l.mu.Lock()
	if l.m == nil {
		l.m = map[string]*keyedEntry{}
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
