package access

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestTwoStepApprovalThenGrant(t *testing.T) {
	h := newHarness(t)
	// The transition authorising the grant is durable before the grant runs.
	h.conn.GrantFunc = func(g Grant) error {
		if r := h.get(g.ID); r.State != StateApproved {
			t.Errorf("grant ran while %s is %s in the store, want approved", g.ID, r.State)
		}
		return nil
	}
	r := h.submit(SubmitInput{Requester: alice, System: "crm", Role: "viewer", Duration: 2 * time.Hour, Reason: " ticket 4411 "})
	id := r.ID
	if r.State != StatePending || r.Reason != "ticket 4411" || r.Duration != 2*time.Hour {
		t.Fatalf("submitted: %+v", r)
	}
	wantSteps := []Step{
		{Approvers: []string{bob}, Min: 1, Sources: "manager"},
		{Approvers: []string{carol, owner2}, Min: 1, Sources: "owners"},
	}
	if diff := cmp.Diff(wantSteps, r.Steps); diff != "" {
		t.Errorf("steps (-want +got):\n%s", diff)
	}
	if !r.TimeoutAt.Equal(t0.Add(24*time.Hour)) || !r.RemindAt.Equal(t0.Add(2*time.Hour)) {
		t.Errorf("timeout %v, remind %v", r.TimeoutAt, r.RemindAt)
	}
	if at, ok := h.sched.at(id); !ok || !at.Equal(r.RemindAt) {
		t.Errorf("scheduler armed at %v (%v), want the reminder %v", at, ok, r.RemindAt)
	}
	// The approval DM's reference is stored with the request.
	if diff := cmp.Diff([]MessageRef{{Kind: "approval", Channel: "D" + bob, TS: "1.000100", User: bob, Rev: 1}}, r.Messages); diff != "" {
		t.Errorf("messages (-want +got):\n%s", diff)
	}
	if got, _ := h.svc.PendingFor(h.ctx, bob); len(got) != 1 || got[0].ID != id {
		t.Errorf("PendingFor(bob) = %v", got)
	}

	r = h.decide(id, bob, true, "")
	if r.State != StatePending || r.CurrentStep != 1 {
		t.Fatalf("after the manager: %s step %d", r.State, r.CurrentStep)
	}
	if got, _ := h.svc.PendingFor(h.ctx, bob); len(got) != 0 {
		t.Errorf("PendingFor(bob) after his step = %v", got)
	}
	if got, _ := h.svc.PendingFor(h.ctx, owner2); len(got) != 1 {
		t.Errorf("PendingFor(owner2) = %v", got)
	}

	h.clock.Advance(5 * time.Minute)
	grantAt := h.clock.Now()
	r = h.decide(id, carol, true, "looks fine")
	if r.State != StateActive {
		t.Fatalf("after the owner: %s", r.State)
	}
	if !r.GrantedAt.Equal(grantAt) || !r.ExpiresAt.Equal(grantAt.Add(2*time.Hour)) {
		t.Errorf("granted %v expires %v, want %v and 2h later", r.GrantedAt, r.ExpiresAt, grantAt)
	}
	if !r.WarnAt.Equal(r.ExpiresAt.Add(-10 * time.Minute)) {
		t.Errorf("warn at %v", r.WarnAt)
	}
	if g, _ := h.conn.counts(); g != 1 {
		t.Errorf("grant calls = %d, want 1", g)
	}
	want := Grant{ID: id, System: "crm", Role: "viewer", Params: viewerParams,
		User:   Person{SlackID: alice, Email: "alice@example.com", Name: "Alice"},
		Reason: "ticket 4411", ApprovedBy: []string{bob, carol}, GrantedAt: grantAt, ExpiresAt: grantAt.Add(2 * time.Hour)}
	if diff := cmp.Diff(want, h.conn.lastGrant); diff != "" {
		t.Errorf("grant sent (-want +got):\n%s", diff)
	}
	wantEvents := []Event{EventRequested, EventStepApproved, EventApproved, EventGranted}
	if diff := cmp.Diff(wantEvents, events(h.get(id))); diff != "" {
		t.Errorf("history (-want +got):\n%s", diff)
	}
	// One notice per person: bob's DM, then carol's and owner2's.
	wantNotices := []NoticeKind{NoticeSubmitted, NoticeApprovalNeeded, NoticeProgress, NoticeApprovalNeeded, NoticeApprovalNeeded, NoticeDecided, NoticeGranted}
	if diff := cmp.Diff(wantNotices, h.notes.kinds(id)); diff != "" {
		t.Errorf("notices (-want +got):\n%s", diff)
	}
	// Every history entry was audited, once.
	if n := len(h.store.audit); n != len(h.get(id).History) {
		t.Errorf("%d audit records for %d history entries", n, len(h.get(id).History))
	}
	// Approval copies of both steps were stored.
	if n := len(h.get(id).Messages); n != 3 {
		t.Errorf("%d message refs stored, want 3 (bob, carol, owner2)", n)
	}
	if at, _ := h.sched.at(id); !at.Equal(r.WarnAt) {
		t.Errorf("scheduler armed at %v, want the warning %v", at, r.WarnAt)
	}
	if mine, _ := h.svc.Mine(h.ctx, alice); len(mine) != 1 {
		t.Errorf("Mine(alice) = %d requests", len(mine))
	}
}

func TestClockStartsAtGrant(t *testing.T) {
	h := newHarness(t)
	h.conn.setGrant(func(Grant) error { return RetryableError(errors.New("okta: 503"), 0) })
	r := h.submit(SubmitInput{Requester: alice, System: "crm", Role: "viewer", Duration: 2 * time.Hour})
	h.decide(r.ID, bob, true, "")
	r = h.decide(r.ID, carol, true, "")
	if r.State != StateApproved || r.Attempts != 1 || !strings.HasPrefix(r.LastError, "Salesforce CRM could not grant it (reference E-") {
		t.Fatalf("after a failed grant: %s attempts %d error %q", r.State, r.Attempts, r.LastError)
	}
	if !r.NextAttemptAt.After(t0) || r.NextAttemptAt.After(t0.Add(time.Second)) {
		t.Errorf("next attempt at %v, want within the first backoff (1s)", r.NextAttemptAt)
	}
	if h.notes.count(r.ID, NoticeGranted) != 0 {
		t.Error("requester told granted while the grant failed")
	}

	h.conn.setGrant(nil)
	h.advance(10 * time.Minute)
	r = h.wantState(r.ID, StateActive)
	grantAt := t0.Add(10 * time.Minute)
	if !r.GrantedAt.Equal(grantAt) || !r.ExpiresAt.Equal(grantAt.Add(2*time.Hour)) {
		t.Errorf("granted %v expires %v; the clock must start at grant (%v)", r.GrantedAt, r.ExpiresAt, grantAt)
	}
	if r.Attempts != 0 || r.LastError != "" || !r.NextAttemptAt.IsZero() {
		t.Errorf("retry state not cleared: %+v", r)
	}
	// The requester is told "granted" only after the connector said yes.
	log := h.log.all()
	iNotice := indexOf(log, "notice granted "+r.ID+" "+alice)
	iGrant := lastIndexOf(log, "okta grant "+r.ID)
	if iNotice < 0 || iGrant < 0 || iNotice < iGrant {
		t.Errorf("granted notice at %d, last grant call at %d: %v", iNotice, iGrant, log)
	}
}

func indexOf(xs []string, x string) int {
	for i, y := range xs {
		if y == x {
			return i
		}
	}
	return -1
}

func lastIndexOf(xs []string, x string) int {
	for i := len(xs) - 1; i >= 0; i-- {
		if xs[i] == x {
			return i
		}
	}
	return -1
}

func TestDeny(t *testing.T) {
	h := newHarness(t)
	r := h.submit(SubmitInput{Requester: alice, System: "crm", Role: "viewer"})

	_, err := h.svc.Decide(h.ctx, r.ID, bob, false, "   ", AnyStep)
	wantUserError(t, err, ErrInvalid, "reason")
	h.wantState(r.ID, StatePending)

	h.clock.Advance(time.Minute)
	r = h.decide(r.ID, bob, false, "not for this ticket")
	if r.State != StateDenied || !r.DecidedAt.Equal(t0.Add(time.Minute)) {
		t.Fatalf("denied: %s at %v", r.State, r.DecidedAt)
	}
	d, ok := r.Denial()
	if !ok || d.Actor != bob || d.Reason != "not for this ticket" {
		t.Errorf("denial %+v", d)
	}
	if got := h.notes.kinds(r.ID); got[len(got)-1] != NoticeDecided {
		t.Errorf("notices %v, want decided last", got)
	}
	if g, _ := h.conn.counts(); g != 0 {
		t.Errorf("%d grants after a deny", g)
	}
	if _, ok := h.sched.at(r.ID); ok {
		t.Error("a denied request is still armed")
	}

	// A stale click after the deny is refused and says who decided.
	_, err = h.svc.Decide(h.ctx, r.ID, bob, true, "", AnyStep)
	wantUserError(t, err, ErrConflict, "already denied by "+bob, "2026-11-29 09:01 UTC")
	_, err = h.svc.Decide(h.ctx, r.ID, carol, true, "", AnyStep)
	wantUserError(t, err, ErrConflict, "already denied by "+bob)
	h.wantState(r.ID, StateDenied)
}

func TestWhoMayDecide(t *testing.T) {
	h := newHarness(t)
	// carol is a crm owner and asks herself: she is not an approver of her
	// own request at any step, and she is not asked.
	r := h.submit(SubmitInput{Requester: carol, System: "crm", Role: "viewer"})
	if contains(r.Steps[1].Approvers, carol) {
		t.Fatalf("requester is an approver: %+v", r.Steps)
	}
	_, err := h.svc.Decide(h.ctx, r.ID, carol, true, "", AnyStep)
	wantUserError(t, err, ErrForbidden, "your own request")
	h.decide(r.ID, bob, true, "")
	_, err = h.svc.Decide(h.ctx, r.ID, carol, true, "", AnyStep)
	wantUserError(t, err, ErrForbidden, "your own request")
	_, err = h.svc.Decide(h.ctx, r.ID, carol, false, "no", AnyStep)
	wantUserError(t, err, ErrForbidden, "your own request")
	h.wantState(r.ID, StatePending)
	if ps, _ := h.svc.PendingFor(h.ctx, carol); len(ps) != 0 {
		t.Errorf("carol sees her own request as pending for her: %v", ps)
	}

	// Non-approvers: a stranger, an owner at the manager's step, the manager at the owners' step.
	r2 := h.submit(SubmitInput{Requester: alice, System: "crm", Role: "viewer"})
	// A stranger learns nothing about the request.
	_, err = h.svc.Decide(h.ctx, r2.ID, eve, true, "", AnyStep)
	wantUserError(t, err, ErrNotFound, r2.ID+" was not found, or it is not yours")
	for _, who := range []string{owner2, admin} {
		_, err := h.svc.Decide(h.ctx, r2.ID, who, true, "", AnyStep)
		wantUserError(t, err, ErrForbidden, "not an approver of step 1", bob)
	}
	h.decide(r2.ID, bob, true, "")
	_, err = h.svc.Decide(h.ctx, r2.ID, bob, true, "", AnyStep)
	wantUserError(t, err, ErrForbidden, "You already approved step 1", "one step only")
	if got := h.get(r2.ID); got.State != StatePending || len(got.Decisions) != 1 {
		t.Errorf("refused clicks changed the request: %s %+v", got.State, got.Decisions)
	}
	_, err = h.svc.Decide(h.ctx, "AR-9999", bob, true, "", AnyStep)
	if !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown request: %v", err)
	}
}

func TestSameApproverTwiceOnMinTwoStep(t *testing.T) {
	h := newHarness(t)
	r := h.submit(SubmitInput{Requester: alice, System: "crm", Role: "admin"})
	r = h.decide(r.ID, carol, true, "")
	if r.State != StatePending || r.Last().Event != EventApprovalRecorded {
		t.Fatalf("after one of two: %s %s", r.State, r.Last().Event)
	}
	_, err := h.svc.Decide(h.ctx, r.ID, carol, true, "", AnyStep)
	wantUserError(t, err, ErrConflict, "already approved", "1 more")
	if got := h.get(r.ID); got.State != StatePending || len(got.Approvals(0)) != 1 {
		t.Fatalf("a repeat click counted: %+v", got.Decisions)
	}
	r = h.decide(r.ID, owner2, true, "")
	if r.State != StateActive {
		t.Errorf("after two distinct owners: %s", r.State)
	}
	if diff := cmp.Diff([]string{carol, owner2}, r.ApprovedBy()); diff != "" {
		t.Errorf("approved by (-want +got):\n%s", diff)
	}
}

func TestConcurrentApprovalsGrantOnce(t *testing.T) {
	h := newHarness(t)
	r := h.submit(SubmitInput{Requester: alice, System: "crm", Role: "flat"})
	if n := len(r.Steps[0].Approvers); n != 50 {
		t.Fatalf("%d approvers, want 50", n)
	}
	start := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	var won, conflicts int
	for _, a := range r.Steps[0].Approvers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			_, err := h.svc.Decide(h.ctx, r.ID, a, true, "", AnyStep)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				won++
			case errors.Is(err, ErrConflict):
				conflicts++
			default:
				t.Errorf("Decide by %s: %v", a, err)
			}
		}()
	}
	close(start)
	wg.Wait()
	h.settle()
	if won != 1 || conflicts != 49 {
		t.Errorf("%d won, %d conflicts; want 1 and 49", won, conflicts)
	}
	if g, _ := h.conn.counts(); g != 1 {
		t.Errorf("%d grant calls, want exactly 1", g)
	}
	got := h.wantState(r.ID, StateActive)
	if n := len(got.Decisions); n != 1 {
		t.Errorf("%d decisions recorded, want 1", n)
	}
	if h.notes.count(r.ID, NoticeGranted) != 1 {
		t.Errorf("granted notices: %v", h.notes.kinds(r.ID))
	}
}

func TestSubmitRefusals(t *testing.T) {
	tests := []struct {
		name  string
		in    SubmitInput
		kind  error
		parts []string
	}{
		{"over max", SubmitInput{Requester: alice, System: "crm", Role: "viewer", Duration: 9 * time.Hour, Reason: "x"},
			ErrInvalid, []string{"9h", "maximum", "8h"}},
		{"missing reason", SubmitInput{Requester: alice, System: "crm", Role: "viewer", Reason: "  "},
			ErrInvalid, []string{"reason is required", "crm viewer"}},
		{"reason too long", SubmitInput{Requester: alice, System: "crm", Role: "viewer", Reason: strings.Repeat("é", MaxReasonRunes+1)},
			ErrInvalid, []string{"limit is 10000"}},
		{"unknown system", SubmitInput{Requester: alice, System: "erp", Role: "viewer", Reason: "x"},
			ErrInvalid, []string{`no system called "erp"`, "crm, payroll"}},
		{"unknown role", SubmitInput{Requester: alice, System: "crm", Role: "owner", Reason: "x"},
			ErrInvalid, []string{`no role called "owner"`, "admin, auto, auto2, flat, payout, payout_same, viewer"}},
		{"not a requester", SubmitInput{Requester: eve, System: "crm", Role: "viewer", Reason: "x"},
			ErrForbidden, []string{"may not request crm viewer", "team:support"}},
		{"negative duration", SubmitInput{Requester: alice, System: "crm", Role: "viewer", Duration: -time.Hour, Reason: "x"},
			ErrInvalid, []string{"positive"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			r, err := h.svc.Submit(h.ctx, tt.in)
			if r != nil {
				t.Errorf("Submit returned %+v with an error", r)
			}
			wantUserError(t, err, tt.kind, tt.parts...)
			if all, _ := h.store.List(h.ctx, Filter{}); len(all) != 0 {
				t.Errorf("%d requests created", len(all))
			}
			if len(h.log.all()) != 0 {
				t.Errorf("effects after a refusal: %v", h.log.all())
			}
		})
	}
}

func TestDuplicateRequestRefused(t *testing.T) {
	h := newHarness(t)
	first := h.submit(SubmitInput{Requester: alice, System: "crm", Role: "viewer"})
	_, err := h.svc.Submit(h.ctx, SubmitInput{Requester: alice, System: "CRM", Role: "viewer", Reason: "again"})
	e := wantUserError(t, err, ErrConflict, first.ID, "(pending)")
	if e.Existing() != first.ID {
		t.Errorf("Existing = %q, want %q", e.Existing(), first.ID)
	}
	// Another role, or another person, is fine.
	h.submit(SubmitInput{Requester: alice, System: "crm", Role: "admin"})
	h.submit(SubmitInput{Requester: dave, System: "crm", Role: "viewer"})

	h.decide(first.ID, bob, true, "")
	h.decide(first.ID, carol, true, "")
	_, err = h.svc.Submit(h.ctx, SubmitInput{Requester: alice, System: "crm", Role: "viewer", Reason: "again"})
	e = wantUserError(t, err, ErrConflict, "You already have "+first.ID+" for crm viewer (active)")
	if e.Existing() != first.ID {
		t.Errorf("Existing = %q, want %q", e.Existing(), first.ID)
	}
	if all, _ := h.store.List(h.ctx, Filter{}); len(all) != 3 {
		t.Errorf("%d requests, want 3", len(all))
	}
}

func TestAutoApprovalGrantsAtOnce(t *testing.T) {
	h := newHarness(t)
	r := h.submit(SubmitInput{Requester: eve, System: "crm", Role: "auto", Duration: time.Hour})
	if r.State != StateActive || !r.Auto || len(r.Steps) != 0 {
		t.Fatalf("auto request: %s auto=%v steps=%v", r.State, r.Auto, r.Steps)
	}
	if !r.GrantedAt.Equal(t0) || !r.ExpiresAt.Equal(t0.Add(time.Hour)) {
		t.Errorf("granted %v expires %v", r.GrantedAt, r.ExpiresAt)
	}
	if g, _ := h.conn.counts(); g != 1 {
		t.Errorf("%d grants", g)
	}
	got := h.get(r.ID)
	if diff := cmp.Diff([]Event{EventRequested, EventApproved, EventGranted}, events(got)); diff != "" {
		t.Errorf("history (-want +got):\n%s", diff)
	}
	if a := got.History[1]; a.Actor != ActorAuto || a.Note != "approval: auto" {
		t.Errorf("auto approval recorded as %+v", a)
	}
	if diff := cmp.Diff([]NoticeKind{NoticeSubmitted, NoticeGranted}, h.notes.kinds(r.ID)); diff != "" {
		t.Errorf("notices (-want +got):\n%s", diff)
	}
}

func TestReminderThenTimeout(t *testing.T) {
	h := newHarness(t)
	r := h.submit(SubmitInput{Requester: alice, System: "crm", Role: "viewer"})
	h.advance(time.Hour)
	if n := h.notes.count(r.ID, NoticeReminder); n != 0 {
		t.Fatalf("%d reminders after 1h", n)
	}
	h.advance(time.Hour)
	got := h.wantState(r.ID, StatePending)
	if n := h.notes.count(r.ID, NoticeReminder); n != 1 {
		t.Fatalf("%d reminders after 2h, want 1", n)
	}
	if !got.RemindAt.Equal(t0.Add(4 * time.Hour)) {
		t.Errorf("next reminder %v, want +4h", got.RemindAt)
	}
	// A second pass at the same time reminds nobody again.
	h.reconcile()
	if n := h.notes.count(r.ID, NoticeReminder); n != 1 {
		t.Errorf("%d reminders after a repeated pass, want 1", n)
	}
	for i := 0; i < 21; i++ {
		h.advance(time.Hour) // up to 23h
	}
	h.wantState(r.ID, StatePending)
	if n := h.notes.count(r.ID, NoticeReminder); n != 11 { // 2h, 4h, … 22h
		t.Errorf("%d reminders in 23h, want 11", n)
	}
	h.advance(time.Hour)
	got = h.wantState(r.ID, StateTimedOut)
	if !got.DecidedAt.Equal(t0.Add(24*time.Hour)) || got.Last().Actor != ActorBot {
		t.Errorf("timed out at %v by %s", got.DecidedAt, got.Last().Actor)
	}
	if k := h.notes.kinds(r.ID); k[len(k)-1] != NoticeDecided {
		t.Errorf("notices end with %v", k[len(k)-1])
	}
	if _, ok := h.sched.at(r.ID); ok {
		t.Error("timed-out request still armed")
	}
	_, err := h.svc.Decide(h.ctx, r.ID, bob, true, "", AnyStep)
	wantUserError(t, err, ErrConflict, "already timed out by accessbot")
}

func TestExpiryWarningThenExpiry(t *testing.T) {
	h := newHarness(t)
	r := h.activeViewer()
	h.advance(time.Hour + 49*time.Minute)
	if n := h.notes.count(r.ID, NoticeExpiryWarning); n != 0 {
		t.Fatalf("warned early")
	}
	h.advance(time.Minute)
	got := h.wantState(r.ID, StateActive)
	if n := h.notes.count(r.ID, NoticeExpiryWarning); n != 1 || !got.WarnAt.IsZero() {
		t.Fatalf("%d warnings, WarnAt %v", n, got.WarnAt)
	}
	h.reconcile()
	if n := h.notes.count(r.ID, NoticeExpiryWarning); n != 1 {
		t.Errorf("warned %d times", n)
	}
	h.conn.setRevoke(func(g Grant) error {
		if s := h.get(g.ID).State; s != StateRevoking {
			t.Errorf("revoke ran while %s is %s in the store, want revoking", g.ID, s)
		}
		return nil
	})
	h.advance(10 * time.Minute)
	got = h.wantState(r.ID, StateExpired)
	if _, rv := h.conn.counts(); rv != 1 {
		t.Errorf("%d revokes, want 1", rv)
	}
	if got.Late || !got.EndedAt.Equal(t0.Add(2*time.Hour)) || got.CoveredBy != "" {
		t.Errorf("expired: late=%v ended=%v covered=%q", got.Late, got.EndedAt, got.CoveredBy)
	}
	if h.conn.hasAccess(alice, viewerParams) {
		t.Error("access still at the target")
	}
	wantTail := []Event{EventGranted, EventWarned, EventExpiring, EventExpired}
	if ev := events(got); !cmp.Equal(wantTail, ev[len(ev)-4:]) {
		t.Errorf("history %v", ev)
	}
	if k := h.notes.kinds(r.ID); k[len(k)-1] != NoticeRemoved {
		t.Errorf("notices %v, want removed last", k)
	}
	if _, ok := h.sched.at(r.ID); ok {
		t.Error("expired request still armed")
	}
}

func TestNoWarningForShortGrants(t *testing.T) {
	h := newHarness(t)
	r := h.submit(SubmitInput{Requester: eve, System: "crm", Role: "auto", Duration: 10 * time.Minute})
	if !r.WarnAt.IsZero() {
		t.Errorf("WarnAt %v for a grant no longer than the warning", r.WarnAt)
	}
	h.advance(10 * time.Minute)
	h.wantState(r.ID, StateExpired)
	if h.notes.count(r.ID, NoticeExpiryWarning) != 0 {
		t.Error("warned")
	}
}

func TestCancel(t *testing.T) {
	h := newHarness(t)
	r := h.submit(SubmitInput{Requester: alice, System: "crm", Role: "viewer"})
	_, err := h.svc.Cancel(h.ctx, r.ID, eve)
	wantUserError(t, err, ErrNotFound, "not found, or it is not yours")
	for _, who := range []string{bob, carol} {
		_, err := h.svc.Cancel(h.ctx, r.ID, who)
		wantUserError(t, err, ErrForbidden, "Only the requester")
	}
	got, err := h.svc.Cancel(h.ctx, r.ID, alice)
	if err != nil || got.State != StateCancelled {
		t.Fatalf("Cancel by requester: %v %v", got, err)
	}
	h.settle()
	_, err = h.svc.Cancel(h.ctx, r.ID, alice)
	wantUserError(t, err, ErrConflict, "already cancelled by "+alice)
	_, err = h.svc.Decide(h.ctx, r.ID, bob, true, "", AnyStep)
	wantUserError(t, err, ErrConflict, "already cancelled")

	r2 := h.submit(SubmitInput{Requester: alice, System: "crm", Role: "viewer"})
	if got, err := h.svc.Cancel(h.ctx, r2.ID, admin); err != nil || got.State != StateCancelled {
		t.Errorf("Cancel by admin: %v %v", got, err)
	}

	r3 := h.activeViewer()
	_, err = h.svc.Cancel(h.ctx, r3.ID, alice)
	wantUserError(t, err, ErrConflict, "already granted", "revoke it")
	h.wantState(r3.ID, StateActive)
}

func TestRevokeRules(t *testing.T) {
	tests := []struct {
		name    string
		actor   string
		want    Event
		wantErr error
	}{
		{"requester: I'm done", alice, EventDone, nil},
		{"owner", owner2, EventRevoking, nil},
		{"admin", admin, EventRevoking, nil},
		{"manager approved but may not revoke", bob, "", ErrForbidden},
		{"stranger", eve, "", ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			r := h.activeViewer()
			h.clock.Advance(time.Minute)
			got, err := h.svc.Revoke(h.ctx, r.ID, tt.actor, "no longer needed")
			if tt.wantErr != nil {
				msg := "Only the requester, the owners of crm and admins"
				if tt.wantErr == ErrNotFound {
					msg = "not found, or it is not yours"
				}
				wantUserError(t, err, tt.wantErr, msg)
				h.wantState(r.ID, StateActive)
				if _, rv := h.conn.counts(); rv != 0 {
					t.Errorf("%d revokes", rv)
				}
				return
			}
			if err != nil {
				t.Fatalf("Revoke: %v", err)
			}
			if got.State != StateRevoking {
				t.Errorf("Revoke returned %s, want revoking (the workers remove it)", got.State)
			}
			h.settle()
			got = h.get(r.ID)
			if got.State != StateRevoked || got.RemovalCause() != tt.want {
				t.Errorf("revoked: %s cause %s", got.State, got.RemovalCause())
			}
			if _, rv := h.conn.counts(); rv != 1 || h.conn.hasAccess(alice, viewerParams) {
				t.Errorf("%d revokes, access %v", rv, h.conn.hasAccess(alice, viewerParams))
			}
			cause := got.History[len(got.History)-2]
			if cause.Actor != tt.actor || cause.Note != "no longer needed" {
				t.Errorf("removal recorded as %+v", cause)
			}
			_, err = h.svc.Revoke(h.ctx, r.ID, tt.actor, "")
			wantUserError(t, err, ErrConflict, "not active")
		})
	}
	t.Run("pending is cancelled, not revoked", func(t *testing.T) {
		h := newHarness(t)
		r := h.submit(SubmitInput{Requester: alice, System: "crm", Role: "viewer"})
		_, err := h.svc.Revoke(h.ctx, r.ID, alice, "")
		wantUserError(t, err, ErrConflict, "cancel it instead")
	})
}

func TestPermanentGrantFailure(t *testing.T) {
	h := newHarness(t)
	h.conn.setGrant(func(Grant) error { return PermanentError(errors.New("okta: 403 group not assignable")) })
	r := h.submit(SubmitInput{Requester: eve, System: "crm", Role: "auto"})
	if r.State != StateGrantFailed || !strings.HasPrefix(r.LastError, "Salesforce CRM refused to grant it (reference E-") || r.EndedAt.IsZero() {
		t.Fatalf("after a permanent failure: %s %q", r.State, r.LastError)
	}
	// People are told the system and a reference, never the connector's
	// own error (it may hold a URL or an email).
	n, ok := h.notes.last(r.ID, NoticeGrantFailed)
	if !ok || n.Text != r.LastError || strings.Contains(n.Text, "403") {
		t.Errorf("grant_failed notice %+v", n)
	}
	for _, e := range r.History {
		if strings.Contains(e.Note, "okta") || strings.Contains(e.Note, "403") {
			t.Errorf("history (and so the audit log) holds the connector's error: %+v", e)
		}
	}
	if h.notes.count(r.ID, NoticeGranted) != 0 {
		t.Error("told granted")
	}
	if g, rv := h.conn.counts(); g != 1 || rv != 0 {
		t.Errorf("%d grants, %d revokes", g, rv)
	}
	if _, ok := h.sched.at(r.ID); ok {
		t.Error("still armed")
	}
}

func TestRetryableGrantFailuresGiveUpAfterWindow(t *testing.T) {
	h := newHarness(t)
	h.conn.setGrant(func(Grant) error { return RetryableError(errors.New("okta: 503"), 0) })
	r := h.submit(SubmitInput{Requester: eve, System: "crm", Role: "auto"})
	for i := 0; i < 1000 && !h.get(r.ID).State.Terminal(); i++ {
		got := h.get(r.ID)
		if d := got.NextAttemptAt.Sub(h.clock.Now()); d > DefaultRetryCap {
			t.Fatalf("backoff %v over the cap", d)
		}
		h.clock.Advance(max(got.NextAttemptAt.Sub(h.clock.Now()), DefaultProbeInterval))
		h.reconcile()
	}
	got := h.wantState(r.ID, StateGrantFailed)
	if d := got.EndedAt.Sub(got.DecidedAt); d < DefaultGrantRetryWindow || d > DefaultGrantRetryWindow+DefaultRetryCap+DefaultProbeInterval {
		t.Errorf("gave up after %v, want about %v", d, DefaultGrantRetryWindow)
	}
	if got := h.notes.kindsFor(r.ID, eve); !slices.Equal(got, []NoticeKind{NoticeSubmitted, NoticeGrantFailed}) {
		t.Errorf("requester notices %v", got)
	}
	if got := h.notes.kindsFor(r.ID, "C0CRMOWN1"); !slices.Equal(got, []NoticeKind{NoticeGrantFailed, NoticeRolledBack}) {
		t.Errorf("owners' notices %v", got)
	}
	// A lost answer may have applied the grant: it is rolled back (one
	// compensating revoke) before the request is grant_failed.
	if _, rv := h.conn.counts(); rv != 1 {
		t.Errorf("%d cleanup revokes, want 1", rv)
	}
	if diff := cmp.Diff([]Event{EventRequested, EventApproved}, events(got)[:2]); diff != "" {
		t.Errorf("history start (-want +got):\n%s", diff)
	}
	if evs := events(got); evs[len(evs)-2] != EventRollingBack || evs[len(evs)-1] != EventGrantFailed {
		t.Errorf("history ends %v, want rolling_back then grant_failed", evs[len(evs)-2:])
	}
}

func TestOverlappingGrants(t *testing.T) {
	h := newHarness(t)
	first := h.submit(SubmitInput{Requester: eve, System: "crm", Role: "auto", Duration: time.Hour})
	second := h.submit(SubmitInput{Requester: eve, System: "crm", Role: "auto2", Duration: 2 * time.Hour})
	if first.Entitlement.Key() != second.Entitlement.Key() || second.State != StateActive {
		t.Fatalf("setup: %s %s", first.Entitlement.Key(), second.State)
	}
	h.advance(time.Hour)
	got := h.wantState(first.ID, StateExpired)
	if got.CoveredBy != second.ID {
		t.Errorf("CoveredBy = %q, want %s", got.CoveredBy, second.ID)
	}
	if _, rv := h.conn.counts(); rv != 0 {
		t.Errorf("the first grant to end revoked access the second still covers (%d revokes)", rv)
	}
	if !h.conn.hasAccess(eve, autoParams) {
		t.Error("access gone")
	}
	h.advance(time.Hour)
	got = h.wantState(second.ID, StateExpired)
	if _, rv := h.conn.counts(); rv != 1 || h.conn.hasAccess(eve, autoParams) || got.CoveredBy != "" {
		t.Errorf("the last grant to end: %d revokes, access %v", rv, h.conn.hasAccess(eve, autoParams))
	}
}

func TestExtend(t *testing.T) {
	h := newHarness(t)
	old := h.submit(SubmitInput{Requester: eve, System: "crm", Role: "auto", Duration: time.Hour})
	h.clock.Advance(50 * time.Minute)

	_, err := h.svc.Extend(h.ctx, old.ID, alice, time.Hour, "")
	wantUserError(t, err, ErrNotFound, "not found, or it is not yours")
	_, err = h.svc.Extend(h.ctx, old.ID, owner2, time.Hour, "")
	wantUserError(t, err, ErrForbidden, "Only the requester can extend")
	_, err = h.svc.Extend(h.ctx, old.ID, eve, 9*time.Hour, "")
	wantUserError(t, err, ErrInvalid, "maximum")

	ext, err := h.svc.Extend(h.ctx, old.ID, eve, 2*time.Hour, "")
	if err != nil {
		t.Fatalf("Extend: %v", err)
	}
	h.settle()
	ext = h.get(ext.ID)
	if ext.ID == old.ID || ext.Extends != old.ID || ext.State != StateActive || ext.Reason != old.Reason {
		t.Fatalf("extension %+v", ext)
	}
	// An extension adds its duration to the end of the grant it extends.
	if !ext.ExpiresAt.Equal(t0.Add(time.Hour + 2*time.Hour)) {
		t.Errorf("extension expires %v", ext.ExpiresAt)
	}
	h.advance(10 * time.Minute) // the old grant's expiry
	got := h.wantState(old.ID, StateExpired)
	if got.CoveredBy != ext.ID {
		t.Errorf("old grant CoveredBy %q, want %s", got.CoveredBy, ext.ID)
	}
	if _, rv := h.conn.counts(); rv != 0 || !h.conn.hasAccess(eve, autoParams) {
		t.Errorf("the old grant's end removed access: %d revokes", rv)
	}
	_, err = h.svc.Extend(h.ctx, old.ID, eve, time.Hour, "")
	wantUserError(t, err, ErrConflict, "not active")

	h.advance(2 * time.Hour)
	h.wantState(ext.ID, StateExpired)
	if _, rv := h.conn.counts(); rv != 1 || h.conn.hasAccess(eve, autoParams) {
		t.Errorf("after the extension ended: %d revokes", rv)
	}
}

func TestExtendWithApproval(t *testing.T) {
	h := newHarness(t)
	old := h.activeViewer()
	ext, err := h.svc.Extend(h.ctx, old.ID, alice, 3*time.Hour, "more time")
	if err != nil || ext.State != StatePending || ext.Extends != old.ID {
		t.Fatalf("Extend: %+v %v", ext, err)
	}
	_, err = h.svc.Extend(h.ctx, old.ID, alice, time.Hour, "more")
	e := wantUserError(t, err, ErrConflict, "already asked to extend")
	if e.Existing() != ext.ID {
		t.Errorf("Existing %q, want %s", e.Existing(), ext.ID)
	}
	h.decide(ext.ID, bob, true, "")
	h.decide(ext.ID, owner2, true, "")
	h.wantState(ext.ID, StateActive)
	h.advance(2 * time.Hour)
	if got := h.wantState(old.ID, StateExpired); got.CoveredBy != ext.ID {
		t.Errorf("CoveredBy %q", got.CoveredBy)
	}
	if _, rv := h.conn.counts(); rv != 0 {
		t.Errorf("%d revokes while the extension is active", rv)
	}
}

func TestManualConfirm(t *testing.T) {
	h := newHarness(t)
	r := h.submit(SubmitInput{Requester: eve, System: "payroll", Role: "clerk", Duration: 3 * time.Hour})
	if r.State != StateApproved || !r.AwaitingConfirmation || !r.ConfirmAt.Equal(t0.Add(time.Hour)) {
		t.Fatalf("manual grant: %s awaiting=%v confirmAt=%v", r.State, r.AwaitingConfirmation, r.ConfirmAt)
	}
	if n, _ := h.notes.last(r.ID, NoticeTask); n.Op != "grant" {
		t.Errorf("task notice %+v", n)
	}
	if h.notes.count(r.ID, NoticeGranted) != 0 {
		t.Error("told granted before the owner confirmed")
	}
	h.advance(30 * time.Minute)
	if n := h.notes.count(r.ID, NoticeTask); n != 1 {
		t.Errorf("%d task notices after 30m", n)
	}
	h.advance(30 * time.Minute)
	h.advance(time.Hour)
	if n := h.notes.count(r.ID, NoticeTask); n != 3 {
		t.Errorf("%d task notices after 2h, want 3 (task + 2 reminders)", n)
	}
	if g, _ := h.manual.counts(); g != 1 {
		t.Errorf("%d manual grant calls, want 1 (reminders do not redo the task)", g)
	}
	_, err := h.svc.Confirm(h.ctx, r.ID, eve, TaskGrant)
	wantUserError(t, err, ErrForbidden, "Only the owners of payroll")
	_, err = h.svc.Confirm(h.ctx, r.ID, carol, TaskGrant) // owns crm, not payroll: not party to it
	wantUserError(t, err, ErrNotFound)
	h.wantState(r.ID, StateApproved)

	h.clock.Advance(10 * time.Minute)
	confirmAt := h.clock.Now()
	_, err = h.svc.Confirm(h.ctx, r.ID, owner2, TaskRevoke) // not the task that waits
	wantUserError(t, err, ErrConflict, "no revoke task")
	got, err := h.svc.Confirm(h.ctx, r.ID, owner2, TaskGrant)
	if err != nil || got.State != StateActive {
		t.Fatalf("Confirm: %v %v", got, err)
	}
	h.settle()
	if !got.GrantedAt.Equal(confirmAt) || !got.ExpiresAt.Equal(confirmAt.Add(3*time.Hour)) || got.AwaitingConfirmation {
		t.Errorf("confirmed grant %v..%v awaiting=%v", got.GrantedAt, got.ExpiresAt, got.AwaitingConfirmation)
	}
	if got.Last().Actor != owner2 || h.notes.count(r.ID, NoticeGranted) != 1 {
		t.Errorf("granted by %s, notices %v", got.Last().Actor, h.notes.kinds(r.ID))
	}
	_, err = h.svc.Confirm(h.ctx, r.ID, owner2, TaskGrant)
	wantUserError(t, err, ErrConflict, "no grant task")

	// Removal is a task too, and counts only when confirmed.
	h.advance(3 * time.Hour)
	got = h.wantState(r.ID, StateRevoking)
	if !got.AwaitingConfirmation || h.notes.count(r.ID, NoticeRemoved) != 0 {
		t.Fatalf("removal task: awaiting=%v", got.AwaitingConfirmation)
	}
	h.advance(time.Hour)
	if n, _ := h.notes.last(r.ID, NoticeTask); n.Op != "revoke" || n.Text != "reminder" {
		t.Errorf("last task %+v", n)
	}
	_, err = h.svc.Confirm(h.ctx, r.ID, admin, TaskGrant) // a stale grant task's Done
	wantUserError(t, err, ErrConflict, "no grant task")
	h.wantState(r.ID, StateRevoking)
	got, err = h.svc.Confirm(h.ctx, r.ID, admin, TaskRevoke)
	if err != nil || got.State != StateExpired {
		t.Fatalf("Confirm removal: %v %v", got, err)
	}
	h.settle()
	if h.notes.count(r.ID, NoticeRemoved) != 1 {
		t.Errorf("notices %v", h.notes.kinds(r.ID))
	}
}

func TestReconcileAfterCrash(t *testing.T) {
	h := newHarness(t)
	h.clock.Advance(3 * time.Hour)
	now := h.clock.Now()
	ent := Entitlement{Connector: "okta", Params: autoParams, Person: eve}
	approved := h.store.put(&Request{State: StateApproved, Requester: eve, System: "crm", Role: "auto", Duration: time.Hour,
		Entitlement: ent, DecidedAt: now.Add(-time.Minute), NextAttemptAt: now.Add(-time.Minute),
		History: []HistoryEntry{{To: StatePending, Event: EventRequested}, {From: StatePending, To: StateApproved, Event: EventApproved}}})
	ent2 := Entitlement{Connector: "okta", Params: viewerParams, Person: alice}
	active := h.store.put(&Request{State: StateActive, Requester: alice, System: "crm", Role: "viewer", Duration: time.Hour,
		Entitlement: ent2, GrantedAt: t0, ExpiresAt: t0.Add(time.Hour), WarnAt: t0.Add(50 * time.Minute),
		History: []HistoryEntry{{To: StatePending, Event: EventRequested}, {From: StateApproved, To: StateActive, Event: EventGranted}}})
	future := h.store.put(&Request{State: StatePending, Requester: dave, System: "crm", Role: "viewer",
		RemindAt: now.Add(time.Hour), TimeoutAt: now.Add(5 * time.Hour),
		History: []HistoryEntry{{To: StatePending, Event: EventRequested}}})

	// Restart: the wheel is armed from the index, overdue work is queued.
	n, err := h.svc.Arm(h.ctx)
	if err != nil || n != 3 {
		t.Fatalf("Arm = %d, %v", n, err)
	}
	if at, ok := h.sched.at(future.ID); !ok || !at.Equal(now.Add(time.Hour)) {
		t.Errorf("future deadline armed at %v %v", at, ok)
	}
	if len(h.svc.queue) != 2 {
		t.Errorf("%d overdue requests queued, want 2", len(h.svc.queue))
	}

	h.reconcile()
	got := h.wantState(approved.ID, StateActive)
	if !got.GrantedAt.Equal(now) || !got.ExpiresAt.Equal(now.Add(time.Hour)) {
		t.Errorf("late grant %v..%v", got.GrantedAt, got.ExpiresAt)
	}
	got = h.wantState(active.ID, StateExpired)
	if !got.Late || !strings.Contains(got.Last().Note, "late") {
		t.Errorf("late removal not recorded: late=%v note=%q", got.Late, got.Last().Note)
	}
	if h.notes.count(active.ID, NoticeRemoved) != 1 || h.notes.count(active.ID, NoticeExpiryWarning) != 0 {
		t.Errorf("notices for the late removal: %v", h.notes.kinds(active.ID))
	}
	if _, rv := h.conn.counts(); rv != 1 {
		t.Errorf("%d revokes", rv)
	}
	h.wantState(future.ID, StatePending)
}

func TestRevokeFailingIsRetriedNeverFaked(t *testing.T) {
	h := newHarness(t, func(c *ServiceConfig) { c.ProbeInterval = time.Millisecond })
	r := h.submit(SubmitInput{Requester: eve, System: "crm", Role: "auto", Duration: time.Hour})
	var failing = true
	var mu sync.Mutex
	retryAfter := time.Duration(0)
	h.conn.setRevoke(func(Grant) error {
		mu.Lock()
		defer mu.Unlock()
		if failing {
			return RetryableError(errors.New("okta: 503"), retryAfter)
		}
		return nil
	})
	h.advance(time.Hour)
	got := h.wantState(r.ID, StateRevoking)
	if got.Attempts != 1 || !strings.HasPrefix(got.LastError, "Salesforce CRM could not remove it (reference E-") || !got.NextAttemptAt.After(h.clock.Now()) {
		t.Fatalf("after one failure: attempts %d next %v", got.Attempts, got.NextAttemptAt)
	}
	if at, _ := h.sched.at(r.ID); !at.Equal(got.NextAttemptAt) {
		t.Errorf("armed at %v, want %v", at, got.NextAttemptAt)
	}
	var maxGap time.Duration
	for attempt := 2; attempt <= 12; attempt++ {
		prev := h.get(r.ID)
		h.clock.Advance(prev.NextAttemptAt.Sub(h.clock.Now()) - time.Nanosecond)
		h.reconcile()
		if a := h.get(r.ID).Attempts; a != prev.Attempts {
			t.Fatalf("retried before NextAttemptAt (attempts %d → %d)", prev.Attempts, a)
		}
		h.advance(time.Nanosecond)
		got = h.wantState(r.ID, StateRevoking)
		if got.Attempts != attempt {
			t.Fatalf("attempts %d, want %d", got.Attempts, attempt)
		}
		gap := got.NextAttemptAt.Sub(h.clock.Now())
		if gap > DefaultRetryCap {
			t.Errorf("attempt %d: backoff %v over the cap %v", attempt, gap, DefaultRetryCap)
		}
		maxGap = max(maxGap, gap)
		if wantAlert := attempt >= DefaultAlertAfter; got.Alerted != wantAlert {
			t.Errorf("attempt %d: alerted=%v", attempt, got.Alerted)
		}
	}
	if maxGap < DefaultRetryCap*9/10 {
		t.Errorf("backoff never grew near the cap: max %v", maxGap)
	}
	if n := h.notes.count(r.ID, NoticeRevokeFailing); n != 1 {
		t.Errorf("%d revoke_failing alerts, want 1", n)
	}
	if n := h.notes.count(r.ID, NoticeRevokeDelayed); n != 1 {
		t.Errorf("%d revoke_delayed notices, want 1", n)
	}
	if h.notes.count(r.ID, NoticeRemoved) != 0 || !h.conn.hasAccess(eve, autoParams) {
		t.Fatal("told removed while the revoke fails")
	}

	// A Retry-After hint is honoured, capped.
	mu.Lock()
	retryAfter = time.Hour
	mu.Unlock()
	h.advance(h.get(r.ID).NextAttemptAt.Sub(h.clock.Now()))
	if gap := h.get(r.ID).NextAttemptAt.Sub(h.clock.Now()); gap != DefaultRetryAfterCap {
		t.Errorf("Retry-After 1h gave a backoff of %v, want the cap %v", gap, DefaultRetryAfterCap)
	}

	mu.Lock()
	failing = false
	mu.Unlock()
	h.advance(DefaultRetryAfterCap)
	got = h.wantState(r.ID, StateExpired)
	if h.conn.hasAccess(eve, autoParams) {
		t.Error("access still there")
	}
	if got.Attempts == 0 || got.LastError != "" {
		t.Logf("attempts %d kept for the record", got.Attempts)
	}
	k := h.notes.kinds(r.ID)
	if diff := cmp.Diff([]NoticeKind{NoticeRemoved, NoticeRevokeRecovered}, k[len(k)-2:]); diff != "" {
		t.Errorf("last notices (-want +got):\n%s", diff)
	}
}

func TestPermanentRevokeFailureAlertsAtOnceAndRetries(t *testing.T) {
	h := newHarness(t)
	r := h.submit(SubmitInput{Requester: eve, System: "crm", Role: "auto", Duration: time.Hour})
	h.conn.setRevoke(func(Grant) error { return PermanentError(errors.New("okta: 403")) })
	h.advance(time.Hour)
	got := h.wantState(r.ID, StateRevoking)
	if got.Attempts != 1 || !got.Alerted || h.notes.count(r.ID, NoticeRevokeFailing) != 1 {
		t.Fatalf("permanent revoke failure: attempts %d alerted %v", got.Attempts, got.Alerted)
	}
	h.advance(2 * time.Minute)
	if got := h.wantState(r.ID, StateRevoking); got.Attempts < 2 {
		t.Errorf("a permanent revoke failure was not retried")
	}
	h.conn.setRevoke(nil)
	h.advance(2 * time.Minute)
	h.wantState(r.ID, StateExpired)
	if h.notes.count(r.ID, NoticeRevokeRecovered) != 1 {
		t.Errorf("owners not told of recovery: %v", h.notes.kinds(r.ID))
	}
}

func TestTargetDownManyExpiries(t *testing.T) {
	h := newHarness(t)
	var mu sync.Mutex
	down := false
	h.conn.setRevoke(func(Grant) error {
		mu.Lock()
		defer mu.Unlock()
		if down {
			return RetryableError(errors.New("okta: 503"), 0)
		}
		return nil
	})
	const n = 20
	var ids []string
	for i := 0; i < n; i++ {
		who := fmt.Sprintf("U0P%06d", i)
		r := h.submit(SubmitInput{Requester: who, System: "crm", Role: "auto", Duration: time.Minute + time.Duration(i)*time.Minute})
		ids = append(ids, r.ID)
	}
	mu.Lock()
	down = true
	mu.Unlock()
	_, before := h.conn.counts()
	if before != 0 {
		t.Fatalf("%d revokes before the outage", before)
	}
	outageEnd := t0.Add(30 * time.Minute)
	for h.clock.Now().Before(outageEnd) {
		h.advance(250 * time.Millisecond)
		for _, id := range ids {
			if s := h.get(id).State; s == StateExpired {
				t.Fatalf("%s marked expired while the target is down", id)
			}
		}
	}
	h.conn.mu.Lock()
	calls := append([]time.Time(nil), h.conn.revokeAt...)
	h.conn.mu.Unlock()
	for i := 1; i < len(calls); i++ {
		if gap := calls[i].Sub(calls[i-1]); gap < DefaultProbeInterval {
			t.Fatalf("calls %d and %d to a failing target %v apart, want at least %v", i-1, i, gap, DefaultProbeInterval)
		}
	}
	if max := int(29*time.Minute/DefaultProbeInterval) + 1; len(calls) > max {
		t.Errorf("%d calls during the outage, want at most %d", len(calls), max)
	}
	t.Logf("%d probes in a 29-minute outage", len(calls))

	mu.Lock()
	down = false
	mu.Unlock()
	for i := 0; i < 4*120; i++ { // two minutes: longer than the capped backoff
		h.advance(250 * time.Millisecond)
	}
	for _, id := range ids {
		h.wantState(id, StateExpired)
	}
	for i := 0; i < n; i++ {
		if h.conn.hasAccess(fmt.Sprintf("U0P%06d", i), autoParams) {
			t.Errorf("U0P%06d still has access", i)
		}
	}
}

// A double submit (two clicks, two slash commands at once) creates one
// request; the other is told about it.
func TestConcurrentDuplicateSubmit(t *testing.T) {
	h := newHarness(t)
	var wg sync.WaitGroup
	errs := make([]error, 10)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = h.svc.Submit(h.ctx, SubmitInput{Requester: alice, System: "crm", Role: "viewer", Duration: time.Hour, Reason: "ticket 1"})
		}()
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		if err == nil {
			ok++
			continue
		}
		var ue *Error
		if !errors.As(err, &ue) || ue.Existing() == "" {
			t.Errorf("duplicate refused with %v, want an *Error naming the existing request", err)
		}
	}
	if ok != 1 {
		t.Fatalf("%d requests created, want 1", ok)
	}
}

// Notices are written with the transition that causes them (invariant
// 11): a request whose approvers' DMs could not be sent (Slack down) keeps
// them in its outbox, a new Service on the same store (a restart)
// delivers them once Slack is back, and each is delivered exactly once.
func TestNoticesSurviveOutageAndRestart(t *testing.T) {
	h := newHarness(t)
	down := errors.New("slack: 500")
	h.notes.fail = func(Notice) error { return RetryableError(down, 0) }
	r := h.submit(SubmitInput{Requester: alice, System: "crm", Role: "viewer", Duration: time.Hour, Reason: "ticket 1"})
	if len(r.Outbox) != 2 {
		t.Fatalf("outbox after a failed delivery: %+v, want the submitted DM and bob's approval DM", r.Outbox)
	}
	for _, n := range r.Outbox {
		if n.Attempts != 1 || !n.Due.After(h.clock.Now()) {
			t.Errorf("notice %s to %s: attempts %d due %s; want one failed attempt and a later retry", n.Kind, n.To, n.Attempts, n.Due)
		}
	}
	// The restart: a new Service on the same store; Slack is back.
	h.notes.fail = nil
	h.svc = NewService(h.cfg)
	h.advance(time.Minute)
	r = h.get(r.ID)
	if len(r.Outbox) != 0 {
		t.Fatalf("outbox after recovery: %+v", r.Outbox)
	}
	if got := h.notes.kindsFor(r.ID, bob); !slices.Equal(got, []NoticeKind{NoticeApprovalNeeded}) {
		t.Errorf("bob got %v, want one approval DM", got)
	}
	if got := h.notes.kindsFor(r.ID, alice); !slices.Equal(got, []NoticeKind{NoticeSubmitted}) {
		t.Errorf("alice got %v, want one submitted DM", got)
	}
	if !hasRef(r, RefApproval) {
		t.Error("bob's DM reference was not stored")
	}
	h.advance(2 * time.Hour) // nothing is delivered twice later
	if got := h.notes.kindsFor(r.ID, bob); len(got) != 2 || got[1] != NoticeReminder {
		t.Errorf("bob got %v after two hours, want the approval DM then only a reminder", got)
	}
}

// A grant that an extension outlasts gets no expiry warning: the access
// does not end then.
func TestNoWarningWhenExtended(t *testing.T) {
	h := newHarness(t)
	old := h.submit(SubmitInput{Requester: eve, System: "crm", Role: "auto", Duration: time.Hour})
	h.clock.Advance(30 * time.Minute)
	ext, err := h.svc.Extend(h.ctx, old.ID, eve, time.Hour, "")
	if err != nil {
		t.Fatalf("Extend: %v", err)
	}
	h.settle()
	h.wantState(ext.ID, StateActive)
	h.advance(25 * time.Minute) // past old's warning time
	if n := h.notes.count(old.ID, NoticeExpiryWarning); n != 0 {
		t.Errorf("the extended grant was warned %d times", n)
	}
	if !h.get(old.ID).WarnAt.IsZero() {
		t.Error("the warning deadline was not consumed")
	}
	h.advance(60 * time.Minute) // t0+1h55m: past ext's warning (t0+1h50m), before its end (t0+2h)
	if n := h.notes.count(ext.ID, NoticeExpiryWarning); n != 1 {
		t.Errorf("the extension was warned %d times, want 1", n)
	}
}

// The clicker is checked against the policy at the time of the click: a
// manager who changed since the request was sent can no longer approve.
func TestDecideChecksPolicyAtClickTime(t *testing.T) {
	h := newHarness(t)
	r := h.submit(SubmitInput{Requester: alice, System: "crm", Role: "viewer", Duration: time.Hour, Reason: "ticket"})
	if got := r.Steps[0].Approvers; len(got) != 1 || got[0] != bob {
		t.Fatalf("step 1 approvers %v, want bob", got)
	}
	h.cfg.Runbook.Managers.Static[alice] = carol // alice changed teams
	_, err := h.svc.Decide(h.ctx, r.ID, bob, true, "", AnyStep)
	wantUserError(t, err, ErrForbidden, "no longer an approver", carol)
	h.settle()
	got := h.get(r.ID)
	if got.State != StatePending || len(got.Decisions) != 0 || !slices.Equal(got.Steps[0].Approvers, []string{carol}) {
		t.Fatalf("after the refused click: %s decisions %v step 1 %v; want the step reassigned to carol", got.State, got.Decisions, got.Steps[0].Approvers)
	}
	if k := h.notes.kindsFor(r.ID, carol); !slices.Equal(k, []NoticeKind{NoticeApprovalNeeded}) {
		t.Errorf("carol was told %v, want asked", k)
	}
	// The new manager can approve.
	h.decide(r.ID, carol, true, "")
	if got := h.get(r.ID); got.CurrentStep != 1 {
		t.Fatalf("carol's approval did not count: step %d", got.CurrentStep)
	}
}

// An owner can stop a grant that is approved but still being retried: the
// removal runs (the grant may have reached the target after all) and the
// request ends revoked; the retrying grant does not resurrect it.
func TestRevokeWhileGrantRetries(t *testing.T) {
	h := newHarness(t)
	h.conn.GrantFunc = func(Grant) error { return RetryableError(errors.New("503 from target"), 0) }
	r := h.submit(SubmitInput{Requester: eve, System: "crm", Role: "auto", Duration: time.Hour})
	if r = h.get(r.ID); r.State != StateApproved || r.Attempts == 0 {
		t.Fatalf("want a grant being retried, got %s with %d attempts", r.State, r.Attempts)
	}
	_, err := h.svc.Revoke(h.ctx, r.ID, alice, "")
	wantUserError(t, err, ErrNotFound, "not found, or it is not yours")
	got, err := h.svc.Revoke(h.ctx, r.ID, carol, "not needed any more")
	if err != nil {
		t.Fatalf("owner Revoke of an approved request: %v", err)
	}
	if got.State != StateRevoking {
		t.Fatalf("state %s, want revoking", got.State)
	}
	// The target just failed, so the removal waits for the next probe slot.
	h.advance(2 * time.Second)
	if got = h.get(r.ID); got.State != StateRevoked {
		t.Fatalf("state %s, want revoked", got.State)
	}
	if _, rv := h.conn.counts(); rv != 1 {
		t.Errorf("%d revoke calls, want 1 (the grant may have landed)", rv)
	}
	h.conn.GrantFunc = nil
	h.advance(time.Minute) // a retry that was due must not grant again
	if got := h.get(r.ID); got.State != StateRevoked {
		t.Fatalf("after the retry time: %s", got.State)
	}
}
