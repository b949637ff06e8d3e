// Package keylock is an in-process keyed mutex whose Lock honours a
// context: the stores' Lock (bbolt's, and the PostgreSQL store's first,
// local stage before its advisory lock) serialise work per key with it.
// Standard library only.
package keylock

import (
	"context"
	"sync"
)

// Locks is a set of mutexes, one per key, created on first use and
// dropped when nobody holds or waits for them. The zero value is ready.
// Safe for concurrent use.
type Locks struct {
	mu    sync.Mutex
	locks map[string]*entry
}

type entry struct {
	sem  chan struct{} // holds one token while the key is locked
	refs int           // holders and waiters; guarded by Locks.mu
}

// Lock waits until key is free or ctx ends. On success it returns the
// function that unlocks the key; calling it more than once is harmless.
// On ctx's end it returns ctx's error and holds nothing. Locks are not
// reentrant: a holder that locks its own key again waits for ctx's end.
func (l *Locks) Lock(ctx context.Context, key string) (unlock func(), err error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	l.mu.Lock()
	if l.locks == nil {
		l.locks = map[string]*entry{}
	}
	e := l.locks[key]
	if e == nil {
		e = &entry{sem: make(chan struct{}, 1)}
		l.locks[key] = e
	}
	e.refs++
	l.mu.Unlock()

	select {
	case e.sem <- struct{}{}:
	case <-ctx.Done():
		l.drop(key, e)
		return nil, ctx.Err()
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			<-e.sem
			l.drop(key, e)
		})
	}, nil
}

// drop releases one reference to key's entry, deleting it when unused.
func (l *Locks) drop(key string, e *entry) {
	l.mu.Lock()
	defer l.mu.Unlock()
	e.refs--
	if e.refs == 0 {
		delete(l.locks, key)
	}
}

// Len returns how many keys are held or waited for (tests check that
// nothing leaks).
func (l *Locks) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.locks)
}
