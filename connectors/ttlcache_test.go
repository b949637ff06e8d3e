package connectors

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/accessbot/accessbot/access"
)

func TestTTLCache(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	clock := access.ClockFunc(func() time.Time { mu.Lock(); defer mu.Unlock(); return now })
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	c := NewTTLCache[string, string](clock, time.Minute)

	if _, ok := c.Get("a"); ok {
		t.Fatal("empty cache hit")
	}
	c.Put("a", "1")
	if v, ok := c.Get("a"); !ok || v != "1" {
		t.Fatalf("Get = %q, %v", v, ok)
	}
	advance(time.Minute - time.Nanosecond)
	if _, ok := c.Get("a"); !ok {
		t.Fatal("expired early")
	}
	advance(time.Nanosecond)
	if _, ok := c.Get("a"); ok {
		t.Fatal("not expired at TTL")
	}
	c.Put("a", "2")
	c.Delete("a")
	if _, ok := c.Get("a"); ok {
		t.Fatal("hit after Delete")
	}

	calls := 0
	fill := func() (string, error) { calls++; advance(30 * time.Second); return "x", nil }
	if v, err := c.GetOrFill("b", fill); err != nil || v != "x" || calls != 1 {
		t.Fatalf("GetOrFill = %q, %v after %d calls", v, err, calls)
	}
	if v, _ := c.GetOrFill("b", fill); v != "x" || calls != 1 {
		t.Fatalf("second GetOrFill called fill (%d)", calls)
	}
	advance(30 * time.Second) // a minute after the first GetOrFill began
	if _, ok := c.Get("b"); ok {
		t.Fatal("GetOrFill's TTL should count from the call, not from fill's return")
	}
	boom := errors.New("boom")
	if _, err := c.GetOrFill("c", func() (string, error) { return "", boom }); err != boom {
		t.Fatalf("err = %v", err)
	}
	if _, ok := c.Get("c"); ok {
		t.Fatal("a failed fill was stored")
	}
}

func TestTTLCacheConcurrent(t *testing.T) {
	c := NewTTLCache[int, int](access.ClockFunc(time.Now), time.Hour)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 100 {
				c.Put(j, i)
				c.Get(j)
				_, _ = c.GetOrFill(j+100, func() (int, error) { return i, nil })
				c.Delete(j)
			}
		}()
	}
	wg.Wait()
}
