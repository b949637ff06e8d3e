package access

import (
	"context"
	"errors"
	"testing"
	"time"
)

// A grant still being applied (approved) must not count as covering the
// entitlement: if it then fails, nobody would ever remove the access.
func TestPendingGrantDoesNotCoverAnExpiry(t *testing.T) {
	h := newHarness(t)
	first := h.submit(SubmitInput{Requester: eve, System: "crm", Role: "auto", Duration: time.Hour})
	h.clock.Advance(59 * time.Minute)
	h.conn.setGrant(func(Grant) error { return RetryableError(errors.New("okta: 503 on grant"), 0) })
	second := h.submit(SubmitInput{Requester: eve, System: "crm", Role: "auto2", Duration: time.Hour})
	if second.State != StateApproved {
		t.Fatalf("second is %s, want approved (grant retrying)", second.State)
	}
	h.advance(time.Minute) // first expires while second is still approved
	// The target just failed second's retry: calls to it are paced to one
	// probe per second, so first's removal goes out a second later.
	h.advance(2 * time.Second)
	got := h.wantState(first.ID, StateExpired)
	if got.CoveredBy != "" {
		t.Errorf("first expired as covered by %s, which does not hold access yet", got.CoveredBy)
	}
	// The second grant now fails for good.
	h.conn.setGrant(func(Grant) error { return PermanentError(errors.New("okta: 403")) })
	h.advance(time.Minute)
	h.wantState(second.ID, StateGrantFailed)
	if live, _ := h.store.List(h.ctx, Filter{States: []State{StateApproved, StateActive, StateRevoking}}); len(live) != 0 {
		t.Fatalf("live requests left: %d", len(live))
	}
	if h.conn.hasAccess(eve, autoParams) {
		t.Error("access left at the target with no live grant covering it")
	}
}

// The cleanup revoke after a grant that kept failing must not remove access
// another active grant of the same entitlement still covers.
func TestFailedGrantCleanupKeepsCoveredAccess(t *testing.T) {
	h := newHarness(t)
	first := h.submit(SubmitInput{Requester: eve, System: "crm", Role: "auto", Duration: 4 * time.Hour})
	h.conn.setGrant(func(Grant) error { return RetryableError(errors.New("okta: timeout"), 0) })
	second := h.submit(SubmitInput{Requester: eve, System: "crm", Role: "auto2", Duration: time.Hour})
	for i := 0; i < 1000 && h.get(second.ID).State == StateApproved; i++ {
		h.advance(time.Second)
	}
	h.wantState(second.ID, StateGrantFailed)
	h.wantState(first.ID, StateActive)
	if _, rv := h.conn.counts(); rv != 0 || !h.conn.hasAccess(eve, autoParams) {
		t.Errorf("cleanup after a failed grant removed access %s still covers (%d revokes)", first.ID, rv)
	}
}

// firingScheduler is a Scheduler whose timers fire at once when already
// due, the way the timer wheel hands an overdue deadline to a worker: the
// worst interleaving, the worker finishing before the caller goes on.
type firingScheduler struct {
	fakeScheduler
	svc    *Service
	clock  Clock
	firing bool
}

func (s *firingScheduler) Arm(id string, at time.Time) {
	s.fakeScheduler.Arm(id, at)
	if s.firing || at.After(s.clock.Now()) {
		return
	}
	s.firing = true
	defer func() { s.firing = false }()
	_ = s.svc.HandleDue(context.Background(), id)
}

// Only the caller that won a transition performs its effect (invariant 2):
// when the wheel fires the due grant (NextAttemptAt = now) while Decide is
// still about to grant, the target sees one grant and the approver no error.
func TestDueTimerAndCallerGrantOnce(t *testing.T) {
	h := newHarness(t)
	fs := &firingScheduler{clock: h.clock}
	h.cfg.Scheduler = fs
	h.svc = NewService(h.cfg)
	fs.svc = h.svc
	r := h.submit(SubmitInput{Requester: alice, System: "crm", Role: "viewer"})
	h.decide(r.ID, bob, true, "")
	got, err := h.svc.Decide(h.ctx, r.ID, carol, true, "", AnyStep)
	if err != nil {
		t.Fatalf("the approver who completed the approval got an error: %v", err)
	}
	if got.State != StateApproved {
		t.Errorf("Decide returned %s, want approved (the workers grant)", got.State)
	}
	h.settle()
	h.wantState(r.ID, StateActive)
	if g, _ := h.conn.counts(); g != 1 {
		t.Errorf("%d grant calls, want 1", g)
	}
	if n := h.notes.count(r.ID, NoticeGranted); n != 1 {
		t.Errorf("%d granted notices", n)
	}

	if _, err = h.svc.Revoke(h.ctx, r.ID, alice, ""); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	h.settle()
	h.wantState(r.ID, StateRevoked)
	if _, rv := h.conn.counts(); rv != 1 {
		t.Errorf("%d revoke calls, want 1", rv)
	}
}
