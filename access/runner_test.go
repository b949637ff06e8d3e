package access

import (
	"sync"
	"testing"
	"time"
)

// Busy: due work waiting longer than OverloadLag on average, or a queue
// nearly full, makes the service refuse new work; the average decays when
// nothing waits any more.
func TestBusy(t *testing.T) {
	wall := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	h := newHarness(t, func(c *ServiceConfig) {
		c.Queue = 64
		c.WallClock = func() time.Time { return wall }
	})
	if h.svc.Busy() {
		t.Fatal("busy at rest")
	}
	for range 20 {
		h.svc.observeWait(10 * time.Second)
	}
	if !h.svc.Busy() {
		t.Fatalf("not busy with work waiting 10 s (average %v)", h.svc.averageWait(wall))
	}
	wall = wall.Add(10 * DefaultOverloadLag) // nothing waited since: the average decays
	if h.svc.Busy() {
		t.Fatalf("still busy after the backlog cleared (average %v)", h.svc.averageWait(wall))
	}
	for i := range 60 {
		h.svc.Enqueue(FormatID(uint64(1001 + i)))
	}
	if !h.svc.Busy() {
		t.Fatal("not busy with the queue nearly full")
	}
}

// Notices delivered inline (no paced sender) by two goroutines at once —
// a worker and a reconcile pass — reach people once.
func TestInlineDeliveryIsNotDoubled(t *testing.T) {
	h := newHarness(t, func(c *ServiceConfig) { c.InlineDelivery = true })
	for i := range 20 {
		r, err := h.svc.Submit(h.ctx, SubmitInput{Requester: alice, System: "crm", Role: "viewer", Reason: "x"})
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		for range 4 {
			wg.Add(1)
			go func() { defer wg.Done(); _ = h.svc.HandleDue(h.ctx, r.ID) }()
		}
		wg.Wait()
		if got := h.notes.kindsFor(r.ID, bob); len(got) != 1 {
			t.Fatalf("round %d: bob got %v, want one approval DM", i, got)
		}
		if _, err := h.svc.Cancel(h.ctx, r.ID, alice); err != nil {
			t.Fatal(err)
		}
		h.settle()
	}
}
