package access

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"
)

// A requester removed from the requesting team while their request is
// pending gets no grant: the next click ends the request (ineligible), and
// requester and owners are told why.
func TestRequesterRemovedWhilePending(t *testing.T) {
	h := newHarness(t)
	r := h.submit(SubmitInput{Requester: alice, System: "crm", Role: "viewer"})
	h.cfg.Runbook.Teams["support"] = Team{Members: []string{dave, carol}} // alice left support
	_, err := h.svc.Decide(h.ctx, r.ID, bob, true, "", 0)
	wantUserError(t, err, ErrConflict, "has ended")
	h.settle()
	got := h.wantState(r.ID, StateIneligible)
	if g, _ := h.conn.counts(); g != 0 || len(got.Decisions) != 0 {
		t.Errorf("%d grants, decisions %v", g, got.Decisions)
	}
	if k := h.notes.kindsFor(r.ID, alice); !slices.Contains(k, NoticeIneligible) {
		t.Errorf("requester told %v", k)
	}
	if k := h.notes.kindsFor(r.ID, "C0CRMOWN1"); !slices.Equal(k, []NoticeKind{NoticeIneligible}) {
		t.Errorf("owners told %v", k)
	}
}

// The re-check right before the grant: approved, then the requester left
// the team before the workers granted it.
func TestRequesterRemovedBeforeGrant(t *testing.T) {
	h := newHarness(t)
	r := h.submit(SubmitInput{Requester: alice, System: "crm", Role: "viewer"})
	h.decide(r.ID, bob, true, "")
	if _, err := h.svc.Decide(h.ctx, r.ID, carol, true, "", 1); err != nil {
		t.Fatal(err)
	}
	h.cfg.Runbook.Teams["support"] = Team{Members: []string{dave, carol}}
	h.settle()
	h.wantState(r.ID, StateIneligible)
	if g, _ := h.conn.counts(); g != 0 {
		t.Errorf("%d grants after the requester left", g)
	}
}

// Separation of duties: bob is alice's manager (step 1) and the only
// member of finance (step 2). His approval counts for step 1 only: step 2
// falls back to the owners, and his clicks on either message cannot
// satisfy it. With `distinct: false` (payout_same) the same person may.
func TestSeparationOfDuties(t *testing.T) {
	h := newHarness(t)
	r := h.submit(SubmitInput{Requester: alice, System: "crm", Role: "payout"})
	if got := r.Steps[1].Approvers; !slices.Equal(got, []string{bob}) {
		t.Fatalf("step 2 at submit: %v", got)
	}
	r = h.decide(r.ID, bob, true, "")
	if r.CurrentStep != 1 || !slices.Equal(r.Steps[1].Approvers, []string{carol, owner2}) || r.Steps[1].Fallback != "owners" {
		t.Fatalf("step 2 after bob's approval: %+v", r.Steps[1])
	}
	// A second click on his step-1 message is not a step-2 approval.
	_, err := h.svc.Decide(h.ctx, r.ID, bob, true, "", 0)
	wantUserError(t, err, ErrConflict, "asked about step 1")
	// Nor is a click on a step-2 message (had he got one).
	_, err = h.svc.Decide(h.ctx, r.ID, bob, true, "", 1)
	wantUserError(t, err, ErrForbidden, "one step only")
	if got := h.get(r.ID); got.State != StatePending || len(got.Approvals(1)) != 0 {
		t.Fatalf("bob's second click counted: %+v", got.Decisions)
	}
	if k := h.notes.kindsFor(r.ID, carol); !slices.Equal(k, []NoticeKind{NoticeApprovalNeeded}) {
		t.Errorf("the owners were not asked instead: carol got %v", k)
	}
	h.decide(r.ID, carol, true, "")
	h.wantState(r.ID, StateActive)

	// distinct: false — bob may approve both steps.
	r2 := h.submit(SubmitInput{Requester: dave, System: "crm", Role: "payout_same"})
	r2 = h.decide(r2.ID, bob, true, "")
	if !slices.Equal(r2.Steps[1].Approvers, []string{bob}) {
		t.Fatalf("payout_same step 2: %+v", r2.Steps[1])
	}
	h.decide(r2.ID, bob, true, "")
	h.wantState(r2.ID, StateActive)
}

// A manager change reaches the new manager without anyone clicking: the
// rechecks job reassigns the step; the old manager's copy loses its
// buttons (updated) and the new one is asked.
func TestRechecksJobReassigns(t *testing.T) {
	h := newHarness(t)
	h.cfg.Jobs = []Job{}
	h.svc = NewService(h.cfg)
	r := h.submit(SubmitInput{Requester: alice, System: "crm", Role: "viewer"})
	h.cfg.Runbook.Managers.Static[alice] = dave
	if err := h.svc.RechecksJob(0).Run(h.ctx, h.clock.Now()); err != nil {
		t.Fatal(err)
	}
	h.settle()
	got := h.get(r.ID)
	if !slices.Equal(got.Steps[0].Approvers, []string{dave}) || got.Last().Event != EventReassigned {
		t.Fatalf("after the job: %+v, last %+v", got.Steps[0], got.Last())
	}
	if k := h.notes.kindsFor(r.ID, dave); !slices.Equal(k, []NoticeKind{NoticeApprovalNeeded}) {
		t.Errorf("dave told %v", k)
	}
	updated := false
	for _, u := range h.notes.updates {
		updated = updated || u.User == bob
	}
	if !updated {
		t.Error("bob's copy was not updated (it would keep live buttons)")
	}
	_, err := h.svc.Decide(h.ctx, r.ID, bob, true, "", 0)
	wantUserError(t, err, ErrForbidden, "not an approver")
	h.decide(r.ID, dave, true, "")
	if h.get(r.ID).CurrentStep != 1 {
		t.Error("the new manager's approval did not count")
	}
}

// When the directory cannot be asked, nothing is decided on old data.
func TestDecisionRefusedWhenDirectoryDown(t *testing.T) {
	h := newHarness(t)
	h.cfg.Runbook.Teams["support"] = Team{Usergroup: "S0SUPPORT", Members: []string{alice}}
	h.dir.usergroups = map[string][]string{"S0SUPPORT": {alice}}
	r := h.submit(SubmitInput{Requester: alice, System: "crm", Role: "viewer"})
	h.dir.mu.Lock()
	h.dir.usergroupErr = errors.New("slack: 503")
	h.dir.mu.Unlock()
	_, err := h.svc.Decide(h.ctx, r.ID, bob, true, "", 0)
	wantUserError(t, err, ErrUnavailable, "cannot check the directory")
	if got := h.get(r.ID); len(got.Decisions) != 0 || got.State != StatePending {
		t.Fatalf("decided on stale data: %+v", got)
	}
}

// Offboarding: a deactivated person's grants are revoked at once (owners
// told), their pending requests end, and requests waiting on their
// approval go to someone else.
func TestOffboard(t *testing.T) {
	h := newHarness(t)
	active := h.activeViewer()                                                       // alice holds crm viewer
	pending := h.submit(SubmitInput{Requester: alice, System: "crm", Role: "admin"}) // waits for two owners
	waiting := h.submit(SubmitInput{Requester: dave, System: "crm", Role: "viewer"}) // waits for bob
	if err := h.svc.Offboard(h.ctx, alice, "deactivated in Slack"); err != nil {
		t.Fatal(err)
	}
	if err := h.svc.Offboard(h.ctx, bob, "deactivated in Slack"); err != nil {
		t.Fatal(err)
	}
	h.settle()
	got := h.wantState(active.ID, StateRevoked)
	if got.RemovalCause() != EventRevoking || h.conn.hasAccess(alice, viewerParams) {
		t.Errorf("grant of the deactivated person: %s, access %v", got.RemovalCause(), h.conn.hasAccess(alice, viewerParams))
	}
	if k := h.notes.kindsFor(active.ID, "C0CRMOWN1"); !slices.Contains(k, NoticeOffboarded) {
		t.Errorf("owners told %v", k)
	}
	h.wantState(pending.ID, StateIneligible)
	w := h.get(waiting.ID)
	if contains(w.Steps[0].Approvers, bob) || len(w.Steps[0].Approvers) == 0 {
		t.Errorf("dave's request still waits on bob: %+v", w.Steps[0])
	}
	// A second report changes nothing.
	if err := h.svc.Offboard(h.ctx, alice, "deactivated in Slack"); err != nil {
		t.Fatal(err)
	}
	// Their requests are refused from now on.
	r, _ := h.svc.Submit(h.ctx, SubmitInput{Requester: alice, System: "crm", Role: "viewer", Reason: "again"})
	h.settle()
	if r != nil && h.get(r.ID).State == StateActive {
		t.Error("an offboarded person was granted access")
	}
}

type fakeAccounts struct{ inactive map[string]bool }

func (f fakeAccounts) AccountActive(_ context.Context, p Person) (bool, error) {
	if p.Email == "" {
		return false, ErrUnknownUser
	}
	return !f.inactive[p.SlackID], nil
}

// The offboarding job asks the identity provider about everyone holding
// or waiting for access and offboards the suspended.
func TestOffboardingJob(t *testing.T) {
	h := newHarness(t)
	r := h.activeViewer()
	jobs := h.svc.OffboardingJob(map[string]AccountChecker{"okta": fakeAccounts{inactive: map[string]bool{alice: true}}}, time.Minute)
	if len(jobs) != 1 {
		t.Fatal("no job")
	}
	if err := jobs[0].Run(h.ctx, h.clock.Now()); err != nil {
		t.Fatal(err)
	}
	h.settle()
	got := h.wantState(r.ID, StateRevoked)
	if n := got.History[len(got.History)-2].Note; n != "offboarding: account suspended or deprovisioned in okta" {
		t.Errorf("removal note %q", n)
	}
}

// An IdP's offboarding outlives Slack's word (a profile edit: Reinstate)
// and ends only when the IdP reports the account active again; a Slack
// deactivation is undone by Slack.
func TestOffboardingOnlyItsSourceReinstates(t *testing.T) {
	h := newHarness(t)
	h.activeViewer()
	suspended := map[string]bool{alice: true}
	job := h.svc.OffboardingJob(map[string]AccountChecker{"okta": fakeAccounts{inactive: suspended}}, time.Minute)[0]
	if err := job.Run(h.ctx, h.clock.Now()); err != nil {
		t.Fatal(err)
	}
	h.settle()
	h.svc.Reinstate(alice) // Slack: alice edited her profile
	_, err := h.svc.Submit(h.ctx, SubmitInput{Requester: alice, System: "crm", Role: "viewer", Duration: time.Hour, Reason: "x"})
	wantUserError(t, err, ErrForbidden, "offboarded (account suspended or deprovisioned in okta)")
	delete(suspended, alice) // okta reactivates her
	if err := job.Run(h.ctx, h.clock.Now()); err != nil {
		t.Fatal(err)
	}
	r := h.submit(SubmitInput{Requester: alice, System: "crm", Role: "viewer", Duration: time.Hour})
	if r.State != StatePending {
		t.Errorf("after okta reactivated alice, her request is %s", r.State)
	}

	// Slack's own deactivation is undone by Slack.
	if err := h.svc.Offboard(h.ctx, dave, OffboardedInSlack); err != nil {
		t.Fatal(err)
	}
	h.svc.Reinstate(dave)
	if _, gone := h.svc.gone.Load(dave); gone {
		t.Error("Reinstate did not undo a Slack deactivation")
	}
}
