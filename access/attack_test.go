package access

// Attack tests: each one is a way an attacker (or bad luck) broke a
// promise of DESIGN.md §3–§4; each failed before its fix and guards it
// now. Each says the promise, the severity and what the defect was.

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"
)

// pauseGate pauses the first directory lookup made with a context that carries
// it, so that a test can interleave two Decide calls deterministically:
// the call has read the request (getFor) and is about to re-check it on
// fresh directory data when it stops.
type pauseGate struct {
	once    sync.Once
	arrived chan struct{}
	release chan struct{}
}

type pauseKey struct{}

func newPauseGate() *pauseGate {
	return &pauseGate{arrived: make(chan struct{}), release: make(chan struct{})}
}

// gated wires h's directory so that a context carrying a *pauseGate stops at
// its first Person lookup until the pauseGate is released.
func gated(h *harness) {
	h.dir.PersonFunc = func(ctx context.Context, user string) (Person, error) {
		if g, ok := ctx.Value(pauseKey{}).(*pauseGate); ok {
			g.once.Do(func() {
				close(g.arrived)
				<-g.release
			})
		}
		h.dir.mu.Lock()
		defer h.dir.mu.Unlock()
		if p, ok := h.dir.people[user]; ok {
			return p, nil
		}
		return Person{SlackID: user, Name: "Person " + user}, nil
	}
}

type decideResult struct {
	r   *Request
	err error
}

// decideGated starts Decide in a goroutine behind pauseGate g and returns once
// it has read the request and stopped at the pauseGate.
func decideGated(h *harness, g *pauseGate, id, actor string, step int) <-chan decideResult {
	out := make(chan decideResult, 1)
	ctx := context.WithValue(h.ctx, pauseKey{}, g)
	go func() {
		r, err := h.svc.Decide(ctx, id, actor, true, "", step)
		out <- decideResult{r, err}
	}()
	<-g.arrived
	return out
}

// withTrio adds team trio (bob, dave, eve) and role crm/twice: step 1 needs
// two of trio, step 2 one of trio; separation of duties applies (no
// same_approver), so nobody may approve both steps.
func withTrio(min0 int) func(*ServiceConfig) {
	return func(c *ServiceConfig) {
		c.Runbook.Teams["trio"] = Team{Members: []string{bob, dave, eve}}
		trio := []Source{{Kind: SourceTeam, Ref: "trio"}}
		c.Runbook.Systems["crm"].Roles["twice"] = &Role{
			ID: "twice", Description: "twice role", Grant: map[string]string{"group_id": "00g1twice"},
			Requesters:      []Principal{{Kind: SourceTeam, Ref: "support"}},
			Approval:        Approval{Steps: []StepPolicy{{Sources: trio, Min: min0}, {Sources: trio}}},
			DefaultDuration: 2 * time.Hour, MaxDuration: 8 * time.Hour,
			ApprovalTimeout: 24 * time.Hour, ReminderAfter: 2 * time.Hour, ExpiryWarning: 10 * time.Minute,
			ReasonRequired: true,
		}
	}
}

// TestAttack_DoubleClickApprovesTwoSteps: a double click on one Approve
// button of a step-1 message, while a second approver completes step 1,
// makes the same person the approver of step 1 AND step 2.
//
// Breaks: invariant 10, "one person's approval counts for one step only
// (separation of duties); a click counts only for the step of the message
// it was made on". Severity: HIGH (separation of duties is the point of a
// two-step policy; a double click on a slow button is ordinary behaviour).
//
// Defect: Service.Decide (access/decide.go) checks the click's step and
// the separation of duties on the copy it read before the transition
// (cur); the change function passed to s.transition re-checks only
// IsApprover and AlreadyApproved on the fresh r, so a click that read
// step 1 is recorded for step 2 when step 1 was completed in between. And
// when the completing approval read the request before anyone had approved
// (next == nil), step 2 keeps the approvers resolved at submit, with
// nobody excluded.
func TestAttack_DoubleClickApprovesTwoSteps(t *testing.T) {
	h := newHarness(t, withTrio(2))
	r := h.submit(SubmitInput{Requester: alice, System: "crm", Role: "twice"})
	gated(h)

	// dave clicks Approve on his step-1 message; his call has read the
	// request (nobody approved yet) when bob's clicks arrive.
	gDave := newPauseGate()
	daveDone := decideGated(h, gDave, r.ID, dave, 0)
	// bob's first click is recorded for step 1.
	if _, err := h.svc.Decide(h.ctx, r.ID, bob, true, "", 0); err != nil {
		t.Fatalf("bob's first click: %v", err)
	}
	// bob's second click on the same button (a double click) reads the
	// request while step 1 is still current.
	gBob := newPauseGate()
	bobDone := decideGated(h, gBob, r.ID, bob, 0)
	// dave's approval completes step 1.
	close(gDave.release)
	if res := <-daveDone; res.err != nil {
		t.Fatalf("dave's click: %v", res.err)
	}
	close(gBob.release)
	res := <-bobDone
	h.settle()

	got := h.get(r.ID)
	if res.err == nil || contains(got.Approvals(1), bob) {
		t.Errorf("bob's second click on his step-1 message was counted for step 2 (err %v): state %s, decisions %+v",
			res.err, got.State, got.Decisions)
	}
	if got.State != StatePending {
		t.Errorf("request is %s with step approvals %v / %v; bob approved both steps", got.State, got.Approvals(0), got.Approvals(1))
	}
}

// TestAttack_SeparationOfDutiesRacesAnOldMessage: the same as above but
// from a message that does not say its step (an older copy: its block ID
// has no ":sN", so the click is AnyStep). Only the separation-of-duties
// rule can refuse it, and that rule is not checked inside the transition.
//
// Breaks: invariant 10 (one person's approval counts for one step only).
// Severity: HIGH.
//
// Defect: access/decide.go, the loop over cur.Decisions that refuses
// CodeOtherStep runs on the stale copy, never inside the change function.
func TestAttack_SeparationOfDutiesRacesAnOldMessage(t *testing.T) {
	h := newHarness(t, withTrio(2))
	r := h.submit(SubmitInput{Requester: alice, System: "crm", Role: "twice"})
	gated(h)

	gDave := newPauseGate()
	daveDone := decideGated(h, gDave, r.ID, dave, AnyStep)
	if _, err := h.svc.Decide(h.ctx, r.ID, bob, true, "", AnyStep); err != nil {
		t.Fatalf("bob's first click: %v", err)
	}
	gBob := newPauseGate()
	bobDone := decideGated(h, gBob, r.ID, bob, AnyStep)
	close(gDave.release)
	if res := <-daveDone; res.err != nil {
		t.Fatalf("dave's click: %v", res.err)
	}
	close(gBob.release)
	<-bobDone
	h.settle()

	got := h.get(r.ID)
	if contains(got.Approvals(0), bob) && contains(got.Approvals(1), bob) {
		t.Errorf("bob is counted for both steps: state %s, decisions %+v", got.State, got.Decisions)
	}
}

// TestAttack_StepOneClickCountsForStepTwo: eve clicks Approve on her
// step-1 message at the moment bob's approval completes step 1; her click
// is recorded as the step-2 approval and the request is approved, though
// nobody ever saw or clicked a step-2 message.
//
// Breaks: invariant 10, "a click counts only for the step of the message
// it was made on". Severity: MEDIUM (two distinct people approved, but the
// second step's decision was never made; e.g. a manager step's click ends
// up satisfying the owners' step).
//
// Defect: access/decide.go: `step != cur.CurrentStep` is compared on the
// copy read before the transition; the change function never compares
// step with r.CurrentStep.
func TestAttack_StepOneClickCountsForStepTwo(t *testing.T) {
	h := newHarness(t, withTrio(1))
	r := h.submit(SubmitInput{Requester: alice, System: "crm", Role: "twice"})
	gated(h)

	gEve := newPauseGate()
	eveDone := decideGated(h, gEve, r.ID, eve, 0)
	if _, err := h.svc.Decide(h.ctx, r.ID, bob, true, "", 0); err != nil {
		t.Fatalf("bob's click: %v", err)
	}
	if got := h.get(r.ID); got.CurrentStep != 1 || !slices.Contains(got.Steps[1].Approvers, eve) {
		t.Fatalf("setup: after bob, step %d approvers %v", got.CurrentStep, got.Steps)
	}
	close(gEve.release)
	res := <-eveDone
	h.settle()
	got := h.get(r.ID)
	if res.err == nil || contains(got.Approvals(1), eve) {
		t.Errorf("eve's click on her step-1 message counted for step 2 (err %v): state %s, decisions %+v", res.err, got.State, got.Decisions)
	}
}

// TestAttack_GrantAfterApproverOffboarded: carol approves the owners'
// step, the first grant attempt fails (the target answers 503), carol is
// deactivated in Slack and offboarded, and the retried grant then gives
// alice the access on the approval of a person who is gone.
//
// Breaks: invariant 10, "at every approval and again right before the
// grant, the requester must still be allowed to request it and the
// approver still be an approver of that step; otherwise the request ends
// … or the new approver is asked", and invariant 12 (offboarding re-routes
// their pending approvals; an approval not yet acted on is one).
// Severity: MEDIUM (bounded by the grant retry window, 15 min by default,
// but unbounded for a manual connector's task, which waits days).
//
// Defect: Service.grant (access/grant.go) re-checks only s.eligible(r)
// (the requester) before each attempt, never that each approval still
// comes from an approver of its step; Offboard (access/offboard.go)
// re-checks only pending requests waiting on the person.
func TestAttack_GrantAfterApproverOffboarded(t *testing.T) {
	h := newHarness(t)
	h.conn.setGrant(func(Grant) error { return RetryableError(errorString("okta: 503"), 0) })
	r := h.submit(SubmitInput{Requester: alice, System: "crm", Role: "viewer"})
	h.decide(r.ID, bob, true, "")
	r = h.decide(r.ID, carol, true, "")
	if r.State != StateApproved || r.Attempts == 0 {
		t.Fatalf("setup: %s is %s after %d attempts, want approved with a failed attempt", r.ID, r.State, r.Attempts)
	}
	h.dir.mu.Lock()
	h.dir.people[carol] = Person{SlackID: carol, Name: "Carol", Deactivated: true}
	h.dir.mu.Unlock()
	if err := h.svc.Offboard(h.ctx, carol, "deactivated in Slack"); err != nil {
		t.Fatal(err)
	}
	h.conn.setGrant(nil)
	h.advance(5 * time.Minute)
	h.advance(5 * time.Minute)
	got := h.get(r.ID)
	if got.State == StateActive || h.conn.hasAccess(alice, viewerParams) {
		t.Errorf("granted on the approval of offboarded carol: %s is %s, decisions %+v", got.ID, got.State, got.Decisions)
	}
}

type errorString string

func (e errorString) Error() string { return string(e) }

// TestAttack_StopDuringGrantRemovesAccessHeldBefore: eve already holds the
// group before asking (her receipt will say PreExisting). While the grant
// call is in flight she clicks "I'm done" (or an owner revokes); the
// connector answers "already a member", but the receipt is thrown away
// because the request is no longer approved, and the removal that follows
// takes away the membership she held before accessbot was involved.
//
// Breaks: invariant 8, "revoke exactly what was granted … the revoke acts
// on the receipt and never re-resolves the person. Access the person held
// before the grant is not removed by the revoke". Severity: MEDIUM-HIGH
// (removes standing access someone legitimately had: an outage for them,
// and a revoke that acts without a receipt, on a fresh email lookup).
//
// Defect: Service.grant (access/grant.go) calls s.granted after the
// connector answered; granted's transition fails (revoking cannot take
// EventGranted) and the receipt and GrantedTo it carried are dropped;
// nothing records them on the revoking request, so revoke
// (access/revoke.go) sees r.Receipt == nil and calls the connector.
func TestAttack_StopDuringGrantRemovesAccessHeldBefore(t *testing.T) {
	h := newHarness(t)
	h.conn.mu.Lock()
	h.conn.members[memberKey(Grant{Params: autoParams, User: Person{SlackID: eve}})] = true // held before
	h.conn.mu.Unlock()
	h.conn.ReceiptFunc = func(g Grant) Receipt { return Receipt{UserID: "00u-eve", PreExisting: true} }
	inGrant, proceed := make(chan struct{}), make(chan struct{})
	var once sync.Once
	h.conn.setGrant(func(Grant) error {
		once.Do(func() { close(inGrant); <-proceed })
		return nil
	})
	r, err := h.svc.Submit(h.ctx, SubmitInput{Requester: eve, System: "crm", Role: "auto", Duration: time.Hour, Reason: "x"})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- h.svc.Reconcile(h.ctx) }()
	<-inGrant
	if _, err := h.svc.Revoke(h.ctx, r.ID, eve, "I'm done"); err != nil {
		t.Fatalf("I'm done during the grant: %v", err)
	}
	close(proceed)
	<-done
	h.advance(time.Minute)
	got := h.get(r.ID)
	if !got.State.Terminal() {
		t.Fatalf("setup: %s is %s", r.ID, got.State)
	}
	if !h.conn.hasAccess(eve, autoParams) {
		_, rv := h.conn.counts()
		t.Errorf("the membership eve held before the request was removed (%d revoke calls; %s is %s, receipt %+v)", rv, got.ID, got.State, got.Receipt)
	}
}

// failingStore is the harness store with one Update made to fail on
// demand (a disk full, a lost database connection, or the process killed
// right there: nothing of that write is committed).
type failingStore struct {
	*fakeStore
	mu       sync.Mutex
	failNext bool
}

func (s *failingStore) Update(ctx context.Context, id string, fn func(r *Request) error) (*Request, error) {
	s.mu.Lock()
	fail := s.failNext
	s.failNext = false
	s.mu.Unlock()
	if fail {
		return nil, errorString("store: write failed (disk I/O error)")
	}
	return s.fakeStore.Update(ctx, id, fn)
}

// TestAttack_LostGrantCommitMakesAccessPermanent: the connector applies
// the grant, then the write of "active" fails (a store error, or a crash
// between the target's answer and the commit). The request stays
// approved and the grant is retried, as designed; but the target now
// finds the membership there (our own, from the first attempt) and
// answers as real stateless connectors do (Okta reads the user's groups
// before the PUT, connectors/okta/okta.go): PreExisting. The receipt of
// the retry is stored, and at expiry the access "held before the grant"
// is left in place, for ever.
//
// Breaks: invariant 4 ("a revocation is never dropped or faked") and 2
// ("effects are idempotent and keyed by request ID, so a repeat after a
// crash is harmless"); the audit log says the person held the access
// before. Severity: HIGH (permanent access with no one told to remove it;
// one failed write or an ill-timed crash is enough). The in-process
// memory connector hides it in the E2E crash tests: it remembers grant
// IDs across the bot's restarts (connectors/memory Grant: c.granted).
//
// Defect: access/grant.go grant/granted: nothing durable records that a
// grant attempt was started before the connector call (so a retry cannot
// tell "held before" from "our own earlier attempt"), and a grant retry
// trusts Receipt.PreExisting from the target.
func TestAttack_LostGrantCommitMakesAccessPermanent(t *testing.T) {
	var fs *failingStore
	h := newHarness(t, func(c *ServiceConfig) {
		fs = &failingStore{fakeStore: c.Store.(*fakeStore)}
		c.Store = fs
	})
	// A target like Okta: PreExisting when the person is a member already.
	h.conn.ReceiptFunc = func(g Grant) Receipt {
		h.conn.mu.Lock()
		defer h.conn.mu.Unlock()
		return Receipt{UserID: "00u-eve", PreExisting: h.conn.members[memberKey(g)]}
	}
	var once sync.Once
	h.conn.setGrant(func(Grant) error {
		// The target applied it; the commit that follows is lost.
		once.Do(func() { fs.mu.Lock(); fs.failNext = true; fs.mu.Unlock() })
		return nil
	})
	r, err := h.svc.Submit(h.ctx, SubmitInput{Requester: eve, System: "crm", Role: "auto", Duration: time.Hour, Reason: "x"})
	if err != nil {
		t.Fatal(err)
	}
	_ = h.svc.Reconcile(h.ctx) // the first attempt: applied, not committed
	h.advance(time.Minute)     // the retry
	got := h.get(r.ID)
	if got.State != StateActive {
		t.Fatalf("setup: %s is %s (last %+v)", r.ID, got.State, got.Last())
	}
	h.advance(time.Hour) // expiry
	h.advance(time.Minute)
	got = h.get(r.ID)
	if h.conn.hasAccess(eve, autoParams) {
		t.Errorf("eve keeps the access after expiry: %s is %s, receipt %+v, last %q", got.ID, got.State, got.Receipt, got.Last().Note)
	}
}

// oktaLikeReceipts makes h's connector answer like the real stateless
// connectors (Okta reads the user's groups before the PUT,
// connectors/okta/okta.go): PreExisting when the person is already a
// member at the time of the grant, whoever put them there.
func oktaLikeReceipts(h *harness) {
	h.conn.ReceiptFunc = func(g Grant) Receipt {
		h.conn.mu.Lock()
		defer h.conn.mu.Unlock()
		return Receipt{UserID: "00u-" + g.User.SlackID, PreExisting: h.conn.members[memberKey(g)]}
	}
}

// TestAttack_RegrantWhileRemovalRetriesIsNeverRemoved: eve's grant
// expires but the target fails the revoke for a while (it stays
// revoking, retried, as designed). She asks again, the new grant (auto)
// reaches the target, which finds her still a member: PreExisting. The
// old removal then finds the new grant active and ends "covered" without
// calling the target; when the new grant expires its receipt says the
// access was held before, so it is left in place. Nothing ever removes it.
//
// Breaks: invariant 4 (a revocation is never dropped), 5 (the revoke is
// sent when the last overlapping grant ends) and 8 (only access held
// before the grant is kept). Severity: HIGH (permanent access after a
// flaky target and an ordinary second request; the audit log says "held
// before the grant").
//
// Defect: Service.granted (access/grant.go) corrects PreExisting only
// from another ACTIVE grant of the entitlement (otherActive); a grant
// being removed (revoking) is ours too, but is not considered. Submit's
// duplicate check (access/submit.go) also lets a new request in while the
// old one is revoking.
func TestAttack_RegrantWhileRemovalRetriesIsNeverRemoved(t *testing.T) {
	h := newHarness(t)
	oktaLikeReceipts(h)
	first := h.submit(SubmitInput{Requester: eve, System: "crm", Role: "auto", Duration: time.Hour})
	if first.State != StateActive || first.Receipt.PreExisting {
		t.Fatalf("setup: first %s, receipt %+v", first.State, first.Receipt)
	}
	h.conn.setRevoke(func(Grant) error { return RetryableError(errorString("okta: 503"), 0) })
	h.advance(time.Hour)
	h.wantState(first.ID, StateRevoking)

	second := h.submit(SubmitInput{Requester: eve, System: "crm", Role: "auto", Duration: time.Hour})
	// The target is flaky, not down: the new grant goes through on the
	// next probe while the old removal keeps failing.
	for i := 0; i < 60 && second.State != StateActive; i++ {
		h.advance(5 * time.Second)
		second = h.get(second.ID)
	}
	if second.State != StateActive {
		t.Fatalf("setup: second is %s", second.State)
	}
	h.conn.setRevoke(nil) // the target is back
	for range 10 {
		h.advance(10 * time.Minute)
	}
	h.wantState(first.ID, StateExpired)
	h.wantState(second.ID, StateExpired)
	if h.conn.hasAccess(eve, autoParams) {
		got := h.get(second.ID)
		_, rv := h.conn.counts()
		t.Errorf("eve keeps the access after both grants ended (%d revoke calls, all failed): first ended %q, second receipt %+v, ended %q",
			rv, h.get(first.ID).Last().Note, got.Receipt, got.Last().Note)
	}
}

// TestAttack_ManualGrantConfirmedForIneligibleRequester: a manual task
// (a human applies the grant and clicks Done) waits for the owners; in
// the meantime the requester leaves the team the role is for. The owner's
// Done still makes the grant active: nothing re-checks the requester.
//
// Breaks: invariant 10, "again right before the grant, the requester must
// still be allowed to request it … otherwise the request ends (requester
// and owners told why)". Severity: MEDIUM (tasks wait days, reminded every
// ConfirmReminder; the rechecks job and user_change re-check only pending
// requests).
//
// Defect: Service.Confirm (access/decide.go) goes straight to s.granted
// without s.eligible; RechecksJob and Recheck (access/recheck.go) list
// only StatePending.
func TestAttack_ManualGrantConfirmedForIneligibleRequester(t *testing.T) {
	h := newHarness(t, func(c *ServiceConfig) {
		c.Runbook.Systems["payroll"].Roles["desk"] = &Role{
			ID: "desk", Description: "desk role", Grant: map[string]string{"task": "add to desk"},
			Requesters: []Principal{{Kind: SourceTeam, Ref: "support"}}, Approval: Approval{Auto: true},
			DefaultDuration: 2 * time.Hour, MaxDuration: 8 * time.Hour, ApprovalTimeout: 24 * time.Hour,
		}
	})
	r := h.submit(SubmitInput{Requester: alice, System: "payroll", Role: "desk"})
	if r.State != StateApproved || !r.AwaitingConfirmation {
		t.Fatalf("setup: %s is %s, awaiting %v", r.ID, r.State, r.AwaitingConfirmation)
	}
	// Alice leaves support.
	h.cfg.Runbook.Teams["support"] = Team{Members: []string{dave, carol}}
	if err := h.svc.RechecksJob(0).Run(h.ctx, h.clock.Now()); err != nil {
		t.Fatal(err)
	}
	if err := h.svc.Recheck(h.ctx, alice); err != nil {
		t.Fatal(err)
	}
	h.advance(2 * time.Hour)
	_, err := h.svc.Confirm(h.ctx, r.ID, owner2, TaskGrant)
	h.settle()
	if got := h.get(r.ID); got.State == StateActive {
		t.Errorf("the task's Done granted %s to alice, who may no longer request it (Confirm err %v)", r.ID, err)
	}
}

// TestAttack_InvisibleReason: a reason made only of characters that
// render as nothing but are letters or symbols to Unicode (HANGUL FILLER
// U+3164, HALFWIDTH HANGUL FILLER U+FFA0, HANGUL CHOSEONG FILLER U+115F,
// BRAILLE PATTERN BLANK U+2800, and the combining grapheme joiner U+034F)
// passes as a reason where one is required, and as a deny reason.
//
// Breaks: access.CleanText's own contract, "a reason made only of
// invisible characters counts as no reason", and so `reason: required`
// (DESIGN.md §2) and "Deny opens a modal that asks for the reason
// (required)" (§3). Severity: LOW (approvers see an empty reason and may
// deny; the requester sees an empty denial reason).
//
// Defect: CleanText (access/submit.go) drops only Cf and control
// characters; these are Lo, So and Mn.
func TestAttack_InvisibleReason(t *testing.T) {
	for _, blank := range []string{"\u3164\u3164\u3164", "\uffa0", "\u115f\u1160", "\u2800\u2800", "\u034f"} {
		h := newHarness(t)
		_, err := h.svc.Submit(h.ctx, SubmitInput{Requester: alice, System: "crm", Role: "viewer", Duration: time.Hour, Reason: blank})
		if err == nil {
			t.Errorf("Submit with reason %+q (renders as nothing) was accepted", blank)
		}
		h = newHarness(t)
		r := h.submit(SubmitInput{Requester: alice, System: "crm", Role: "viewer", Duration: time.Hour})
		if _, err := h.svc.Decide(h.ctx, r.ID, bob, false, blank, AnyStep); err == nil {
			t.Errorf("deny with reason %+q (renders as nothing) was accepted", blank)
		}
	}
}

// TestAttack_OwnerConfirmsOwnRemoval: a system owner who asked for access
// to their own system cannot click Done on the removal task of their own
// grant (marking it removed while they keep it); another owner or an
// admin confirms it. Found by the attack review without a test; the
// weakness: Confirm checked only that the clicker owns the system.
func TestAttack_OwnerConfirmsOwnRemoval(t *testing.T) {
	h := newHarness(t, func(c *ServiceConfig) {
		c.Runbook.Systems["payroll"].Roles["desk"] = &Role{
			ID: "desk", Description: "desk role", Grant: map[string]string{"task": "add to desk"},
			Requesters: []Principal{{Kind: SourceEveryone}}, Approval: Approval{Auto: true},
			DefaultDuration: 2 * time.Hour, MaxDuration: 8 * time.Hour, ApprovalTimeout: 24 * time.Hour,
		}
	})
	r := h.submit(SubmitInput{Requester: owner2, System: "payroll", Role: "desk"})
	_, err := h.svc.Confirm(h.ctx, r.ID, owner2, TaskGrant)
	wantUserError(t, err, ErrForbidden)
	if _, err := h.svc.Confirm(h.ctx, r.ID, admin, TaskGrant); err != nil {
		t.Fatal(err)
	}
	h.advance(2 * time.Hour)
	h.wantState(r.ID, StateRevoking)
	_, err = h.svc.Confirm(h.ctx, r.ID, owner2, TaskRevoke)
	wantUserError(t, err, ErrForbidden)
	h.wantState(r.ID, StateRevoking)
}
