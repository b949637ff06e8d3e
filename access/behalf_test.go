package access

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// withOnBehalf lets the requester's manager and eve ask for crm viewer on
// someone's behalf.
func withOnBehalf(c *ServiceConfig) {
	c.Runbook.Systems["crm"].Roles["viewer"].OnBehalf = []Source{{Kind: SourceManager}, {Kind: SourceUser, Ref: eve}}
}

func forInput(beneficiary, asker string) SubmitInput {
	return SubmitInput{Requester: beneficiary, RequestedBy: asker, System: "crm", Role: "viewer", Duration: time.Hour, Reason: "onboarding"}
}

func TestOnBehalfBeneficiaryGetsTheGrant(t *testing.T) {
	h := newHarness(t, withOnBehalf)
	// Bob, Alice's manager, asks for her.
	r := h.submit(forInput(alice, bob))
	if r.Requester != alice || r.RequestedBy != bob || r.Entitlement.Person != alice {
		t.Fatalf("requester %s, requested by %s, entitlement for %s", r.Requester, r.RequestedBy, r.Entitlement.Person)
	}
	if h := r.History[0]; h.Actor != bob || h.Note != "on behalf of U0ALICE01, asked by U0BOB0001" {
		t.Errorf("requested entry %+v", h)
	}
	// Bob is the manager step's only candidate, and he asked: the step
	// falls back to the owners; neither he nor Alice is asked anywhere.
	if r.Steps[0].Fallback != "owners" || slices.Contains(r.Steps[0].Approvers, bob) {
		t.Fatalf("step 1 %+v", r.Steps[0])
	}
	for i, st := range r.Steps {
		if slices.Contains(st.Approvers, bob) || slices.Contains(st.Approvers, alice) {
			t.Errorf("step %d asks %v", i+1, st.Approvers)
		}
	}
	// Both are told it was submitted.
	for _, who := range []string{alice, bob} {
		if got := h.notes.kindsFor(r.ID, who); !slices.Equal(got, []NoticeKind{NoticeSubmitted}) {
			t.Errorf("notices to %s: %v", who, got)
		}
	}
	// The person who asked may not approve it, at any step.
	for _, step := range []int{AnyStep, 0} {
		_, err := h.svc.Decide(h.ctx, r.ID, bob, true, "", step)
		if e := wantUserError(t, err, ErrForbidden); e.Code != CodeOwnRequest {
			t.Errorf("Bob approving: code %s", e.Code)
		}
	}
	if ex := h.svc.exclusions(r, 1, nil); !slices.Contains(ex, bob) {
		t.Errorf("re-check exclusions %v leave Bob in", ex)
	}
	h.decide(r.ID, carol, true, "")
	r = h.decide(r.ID, owner2, true, "")
	if r.State != StateActive {
		t.Fatalf("%s after both steps", r.State)
	}
	if !h.conn.hasAccess(alice, viewerParams) || h.conn.hasAccess(bob, viewerParams) {
		t.Error("the grant is not Alice's")
	}
	for who, want := range map[string][]NoticeKind{
		alice: {NoticeSubmitted, NoticeProgress, NoticeDecided, NoticeGranted},
		bob:   {NoticeSubmitted, NoticeDecided, NoticeGranted},
	} {
		if diff := cmp.Diff(want, h.notes.kindsFor(r.ID, who)); diff != "" {
			t.Errorf("notices to %s (-want +got):\n%s", who, diff)
		}
	}
	// It is Alice's request: asking again, for her or by her, is a
	// duplicate; only she (or an admin) may revoke or extend it.
	_, err := h.svc.Submit(h.ctx, forInput(alice, bob))
	if e := wantUserError(t, err, ErrConflict); e.Code != CodeDuplicate {
		t.Errorf("second request for Alice: code %s", e.Code)
	}
	mine, err := h.svc.Mine(h.ctx, alice)
	if err != nil || len(mine) != 1 || mine[0].ID != r.ID {
		t.Errorf("Alice's list %v, %v", mine, err)
	}
	if _, err := h.svc.Revoke(h.ctx, r.ID, bob, ""); err == nil {
		t.Error("the person who asked revoked the grant")
	}
}

func TestOnBehalfRefusals(t *testing.T) {
	h := newHarness(t, withOnBehalf, func(c *ServiceConfig) {
		d := c.Directory.(*fakeDirectory)
		d.PersonFunc = func(_ context.Context, user string) (Person, error) {
			switch user {
			case "U0NOBODY1":
				return Person{}, fmt.Errorf("user %s: %w", user, ErrNotFound)
			case "U0GONE001":
				return Person{SlackID: user, Deactivated: true}, nil
			}
			return Person{SlackID: user}, nil
		}
	})
	for _, tc := range []struct {
		name string
		in   SubmitInput
		kind error
		code Code
		says string
	}{
		{"not the beneficiary's manager", forInput(alice, dave), ErrForbidden, CodeOnBehalfNotAllowed, "You may not request crm viewer for U0ALICE01; on behalf of someone, it may be requested by manager, user:U0EVE0001."},
		{"the beneficiary may not have it", forInput(eve, bob), ErrForbidden, CodeBeneficiaryNotEligible, "U0EVE0001 may not have crm viewer; it is for team:support."},
		{"a role without on_behalf", SubmitInput{Requester: alice, RequestedBy: bob, System: "crm", Role: "admin", Duration: time.Hour, Reason: "x"}, ErrForbidden, CodeOnBehalfNotAllowed, "crm admin cannot be requested for someone else."},
		{"nobody in Slack", forInput("U0NOBODY1", bob), ErrInvalid, CodeUnknownPerson, "There is no Slack user U0NOBODY1."},
		{"a deactivated account", forInput("U0GONE001", bob), ErrForbidden, CodeUnknownPerson, "deactivated"},
		{"break glass for someone else", SubmitInput{Requester: alice, RequestedBy: dave, System: "crm", Role: "viewer", Reason: "x", BreakGlass: true}, ErrForbidden, CodeBreakGlassNotAllowed, "Break-glass is only for yourself"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := h.svc.Submit(h.ctx, tc.in)
			if e := wantUserError(t, err, tc.kind, tc.says); e.Code != tc.code {
				t.Errorf("code %s, want %s", e.Code, tc.code)
			}
			h.storeEmpty()
		})
	}
	// eve (user:U0EVE0001 in on_behalf) may ask for any eligible person;
	// asking "for yourself" is an ordinary request.
	r := h.submit(forInput(dave, eve))
	if r.Requester != dave || r.RequestedBy != eve {
		t.Errorf("eve for dave: %s by %s", r.Requester, r.RequestedBy)
	}
	r = h.submit(forInput(alice, alice))
	if r.RequestedBy != "" || r.History[0].Actor != alice {
		t.Errorf("for oneself: requested by %q, actor %s", r.RequestedBy, r.History[0].Actor)
	}
}

// The person who asked may cancel; and before the grant the re-check
// ends the request if they may no longer ask for the beneficiary.
func TestOnBehalfCancelAndRecheck(t *testing.T) {
	h := newHarness(t, withOnBehalf)
	r := h.submit(forInput(alice, bob))
	if _, err := h.svc.Cancel(h.ctx, r.ID, bob); err != nil {
		t.Fatalf("Bob cancelling what he asked for: %v", err)
	}
	h.settle()
	h.wantState(r.ID, StateCancelled)
	if got := h.notes.kindsFor(r.ID, bob); !slices.Equal(got, []NoticeKind{NoticeSubmitted, NoticeDecided}) {
		t.Errorf("Bob told %v", got)
	}

	r = h.submit(forInput(dave, bob))
	h.decide(r.ID, carol, true, "")
	// Dave's manager changes before the last approval: Bob may no
	// longer ask for him, and the grant is not made.
	h.cfg.Runbook.Managers.Static[dave] = owner2
	if ok, err := h.svc.eligible(h.ctx, h.get(r.ID)); err != nil || ok {
		t.Fatalf("eligible after the manager changed = %v, %v", ok, err)
	}
	h.cfg.Runbook.Managers.Static[dave] = bob
	if ok, err := h.svc.eligible(h.ctx, h.get(r.ID)); err != nil || !ok {
		t.Fatalf("eligible with Bob as manager = %v, %v", ok, err)
	}
}

// A break-glass grant is re-checked against the break-glass requesters,
// not the role's: someone allowed only to break the glass still gets it.
func TestBreakGlassRecheckUsesBreakGlassRequesters(t *testing.T) {
	h := newHarness(t, withBreakGlass, func(c *ServiceConfig) {
		c.Runbook.Systems["crm"].Roles["admin"].BreakGlass.Requesters = []Principal{{Kind: SourceUser, Ref: eve}}
	})
	r := h.submit(bgInput(eve, time.Hour, "prod down"))
	if r.State != StateActive {
		t.Fatalf("%s (last %+v): eve, a break-glass requester but not a requester of the role, did not get it", r.State, r.Last())
	}
}

func TestExplainOnBehalf(t *testing.T) {
	h := newHarness(t, withOnBehalf)
	ex, err := h.cfg.Runbook.Explain(h.ctx, h.cfg.Directory, ExplainInput{Requester: alice, RequestedBy: bob, System: "crm", Role: "viewer"})
	if err != nil {
		t.Fatal(err)
	}
	if !ex.Allowed || ex.RequestedBy != bob || ex.OnBehalf == nil || !*ex.OnBehalf {
		t.Fatalf("explanation %+v", ex)
	}
	if st := ex.Steps[0]; slices.Contains(st.Approvers, bob) || !slices.Contains(st.Excluded, bob) || st.Fallback != "owners" {
		t.Errorf("step 1 %+v", st)
	}
	ex, err = h.cfg.Runbook.Explain(h.ctx, h.cfg.Directory, ExplainInput{Requester: alice, RequestedBy: dave, System: "crm", Role: "viewer"})
	if err != nil {
		t.Fatal(err)
	}
	if ex.Allowed || ex.OnBehalf == nil || *ex.OnBehalf {
		t.Errorf("dave for alice: allowed=%v on_behalf=%v %q", ex.Allowed, ex.OnBehalf, ex.RefusalText)
	}
}
