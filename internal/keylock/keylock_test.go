package keylock

import (
	"context"
	"errors"
	"sync"
	"testing"
)

func TestExclusion(t *testing.T) {
	var l Locks
	var wg sync.WaitGroup
	inside := map[string]int{}
	var mu sync.Mutex
	for i := range 200 {
		key := []string{"a", "b", "c"}[i%3]
		wg.Go(func() {
			unlock, err := l.Lock(t.Context(), key)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			inside[key]++
			if inside[key] != 1 {
				t.Errorf("%d holders of %s", inside[key], key)
			}
			mu.Unlock()
			mu.Lock()
			inside[key]--
			mu.Unlock()
			unlock()
			unlock() // idempotent
		})
	}
	wg.Wait()
	if n := l.Len(); n != 0 {
		t.Errorf("%d entries left", n)
	}
}

func TestCancelWhileWaiting(t *testing.T) {
	var l Locks
	unlock, err := l.Lock(t.Context(), "k")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error)
	go func() {
		u, err := l.Lock(ctx, "k")
		if u != nil {
			u()
		}
		done <- err
	}()
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("waiter: %v, want context.Canceled", err)
	}
	unlock()
	// Free again at once, and nothing leaked.
	u, err := l.Lock(t.Context(), "k")
	if err != nil {
		t.Fatal(err)
	}
	u()
	if n := l.Len(); n != 0 {
		t.Errorf("%d entries left", n)
	}
	if _, err := l.Lock(ctx, "k"); !errors.Is(err, context.Canceled) {
		t.Errorf("Lock with an ended ctx: %v", err)
	}
}
