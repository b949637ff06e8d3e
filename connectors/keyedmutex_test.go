package connectors

import (
	"context"
	"sync"
	"testing"
	"time"
)

func TestKeyedMutex(t *testing.T) {
	var k KeyedMutex[string]
	ctx := context.Background()
	unlockA, err := k.Lock(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	// Another key is independent.
	unlockB, err := k.Lock(ctx, "b")
	if err != nil {
		t.Fatal(err)
	}
	unlockB()

	// The same key waits, and gives up with ctx.
	short, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
	defer cancel()
	if _, err := k.Lock(short, "a"); err != context.DeadlineExceeded {
		t.Fatalf("Lock on a held key = %v, want DeadlineExceeded", err)
	}
	got := make(chan struct{})
	go func() {
		u, err := k.Lock(ctx, "a")
		if err == nil {
			u()
		}
		close(got)
	}()
	select {
	case <-got:
		t.Fatal("second holder did not wait")
	case <-time.After(10 * time.Millisecond):
	}
	unlockA()
	<-got
	if n := len(k.m); n != 0 {
		t.Fatalf("%d entries left after every unlock, want 0", n)
	}
}

func TestKeyedMutexExclusive(t *testing.T) {
	var k KeyedMutex[int64]
	var wg sync.WaitGroup
	var counts [2]int // one per key: the two keys' holders may run at once
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			key := int64(i % 2)
			for range 50 {
				u, err := k.Lock(context.Background(), key)
				if err != nil {
					t.Error(err)
					return
				}
				counts[key]++ // the race detector checks the lock
				u()
			}
		}()
	}
	wg.Wait()
	if counts[0]+counts[1] != 800 {
		t.Fatalf("counts = %v", counts)
	}
}
