package access

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
)

// Re-checks (DESIGN.md §4 invariant 10). A decision is made at one moment
// and acted on later; what can change in between is checked again on
// fresh directory data (Fresh): at every click (Decide), right before the
// grant (grant), when Slack reports a profile change (Recheck), and every
// RecheckEvery for every pending request (the "rechecks" job).

// DefaultRecheckEvery is how often the rechecks job re-evaluates every
// pending request: a manager change, or someone leaving an approving team,
// reaches the new approvers within this time even if nobody clicks.
const DefaultRecheckEvery = 5 * time.Minute

// directoryDown is the refusal when the directory cannot be asked for a
// decision: nothing is decided on data older than its bound.
func directoryDown(id string, err error) error {
	e := refusef(ErrUnavailable, CodeDirectory, "accessbot cannot check the directory right now, so nothing was decided for %s; please try again in a moment.", id)
	if id == "" {
		e.Message = "accessbot cannot check the directory right now, so nothing was created; please try again in a moment."
	}
	e.Request = id
	return errors.Join(e, err)
}

// exclusions are the people who may not approve step i of r: those who
// approved another step (separation of duties, unless the role allows the
// same approver), and people offboarded since.
func (s *Service) exclusions(r *Request, i int, extra []string) []string {
	var out []string
	if role := s.role(r); role == nil || !role.Approval.SameApprover {
		for _, d := range r.Decisions {
			if d.Approve && d.Step != i {
				out = append(out, d.Actor)
			}
		}
		out = append(out, extra...)
	}
	out = append(out, askerOf(r)...) // never the person who asked for the requester

	s.gone.Range(func(k, _ any) bool {
		out = append(out, k.(string))
		return true
	})
	return out
}

// resolveFresh resolves step i of r on fresh directory data, leaving out
// exclude (and the usual exclusions). A directory failure is the
// CodeDirectory refusal.
func (s *Service) resolveFresh(ctx context.Context, r *Request, i int, exclude []string) (Step, error) {
	sys, role, err := s.rb.Lookup(r.System, r.Role)
	if err != nil || i >= len(role.Approval.Steps) {
		return r.Steps[i], nil // the runbook no longer has it: keep what was resolved
	}
	st, err := s.rb.ResolveStepExcluding(Fresh(ctx), s.cfg.Directory, sys, role, i, r.Requester, s.exclusions(r, i, exclude))
	var e *Error
	if errors.As(err, &e) {
		return Step{}, err
	}
	if err != nil {
		return Step{}, directoryDown(r.ID, err)
	}
	return st, nil
}

// eligible reports whether r's requester may still request it, on fresh
// data. A directory failure is the CodeDirectory refusal.
func (s *Service) eligible(ctx context.Context, r *Request) (bool, error) {
	if _, gone := s.gone.Load(r.Requester); gone {
		return false, nil
	}
	_, role, err := s.rb.Lookup(r.System, r.Role)
	if err != nil {
		return false, nil // the role is gone from the runbook
	}
	ok, err := s.mayStillRequest(Fresh(ctx), r, role) // behalf.go: break-glass and on-behalf rules too
	if err != nil {
		return false, directoryDown(r.ID, err)
	}
	if ok && s.cfg.Directory != nil {
		if p, err := s.cfg.Directory.Person(Fresh(ctx), r.Requester); err == nil && p.Deactivated {
			return false, nil
		}
	}
	return ok, nil
}

// recheck re-evaluates pending r: a requester no longer eligible ends it
// (ineligible); a changed set of approvers for its current step is
// reassigned. It returns r as it is afterwards.
func (s *Service) recheck(ctx context.Context, r *Request) (*Request, error) {
	if r.State != StatePending {
		return r, nil
	}
	ok, err := s.eligible(ctx, r)
	if err != nil {
		return nil, err
	}
	if !ok {
		return s.endIneligible(ctx, r.ID, "the requester may no longer request it")
	}
	st, err := s.resolveFresh(ctx, r, r.CurrentStep, nil)
	if err != nil {
		return nil, err
	}
	cur, _ := r.Current()
	if slices.Equal(st.Approvers, cur.Approvers) {
		return r, nil
	}
	return s.reassign(ctx, r.ID, r.CurrentStep, st)
}

// approvalsHold reports why r's approvals no longer hold ("" when they
// do): each approval must still come from an approver of its step, on
// fresh directory data (invariant 10, "again right before the grant").
// An approver offboarded or no longer in the step's sources is one whose
// approval no longer holds. A directory failure is the CodeDirectory
// refusal.
func (s *Service) approvalsHold(ctx context.Context, r *Request) (string, error) {
	resolved := map[int]Step{}
	for _, d := range r.Decisions {
		if !d.Approve || d.Step >= len(r.Steps) {
			continue
		}
		st, ok := resolved[d.Step]
		if !ok {
			var err error
			if st, err = s.resolveFresh(ctx, r, d.Step, nil); err != nil {
				return "", err
			}
			resolved[d.Step] = st
		}
		if !contains(st.Approvers, d.Actor) {
			return fmt.Sprintf("the approval of step %d by %s no longer holds: they are no longer an approver of it", d.Step+1, d.Actor), nil
		}
	}
	return "", nil
}

// mayGrant is the check right before a grant is applied or confirmed:
// the requester may still request it and every approval still holds.
// why is "" when the grant may go ahead.
func (s *Service) mayGrant(ctx context.Context, r *Request) (why string, err error) {
	ok, err := s.eligible(ctx, r)
	if err != nil {
		return "", err
	}
	if !ok {
		return "the requester may no longer request it", nil
	}
	return s.approvalsHold(ctx, r)
}

// recheckTask re-evaluates an approved request whose manual grant task
// waits for the owners: it ends (ineligible) when the grant may no
// longer be given.
func (s *Service) recheckTask(ctx context.Context, r *Request) error {
	if r.State != StateApproved || !r.AwaitingConfirmation {
		return nil
	}
	why, err := s.mayGrant(ctx, r)
	if err != nil || why == "" {
		return err
	}
	_, err = s.endIneligible(ctx, r.ID, why)
	return err
}

// endIneligible ends a pending or approved request whose requester may no
// longer request it; requester and owners are told why.
func (s *Service) endIneligible(ctx context.Context, id, why string) (*Request, error) {
	now := s.clock.Now()
	return s.transition(ctx, id, func(r *Request) ([]tell, error) {
		if r.State != StatePending && r.State != StateApproved {
			return nil, conflictf("%s is %s", r.ID, r.State)
		}
		if err := Apply(r, Transition{Event: EventIneligible, Actor: ActorBot, At: now, Note: why}); err != nil {
			return nil, err
		}
		r.DecidedAt, r.EndedAt = now.UTC(), now.UTC()
		r.NextAttemptAt, r.LastError = time.Time{}, why
		r.AwaitingConfirmation, r.ConfirmAt = false, time.Time{}
		return []tell{{kind: NoticeIneligible, text: why}}, nil
	})
}

// reassign replaces the approvers of step i (still current) with st: the
// new approvers are asked, approvals already given by people still among
// them are kept, and every posted copy is brought up to date (the removed
// approvers' copies lose their buttons).
func (s *Service) reassign(ctx context.Context, id string, i int, st Step) (*Request, error) {
	now := s.clock.Now()
	return s.transition(ctx, id, func(r *Request) ([]tell, error) {
		if r.State != StatePending || r.CurrentStep != i {
			return nil, conflictf("%s moved on", r.ID)
		}
		old := r.Steps[i].Approvers
		var added, removed []string
		for _, p := range st.Approvers {
			if !contains(old, p) {
				added = append(added, p)
			}
		}
		for _, p := range old {
			if !contains(st.Approvers, p) {
				removed = append(removed, p)
			}
		}
		note := fmt.Sprintf("step %d approvers now %v (added %v, removed %v)", i+1, st.Approvers, added, removed)
		if err := Apply(r, Transition{Event: EventReassigned, Actor: ActorBot, At: now, Note: note}); err != nil {
			return nil, err
		}
		r.Steps[i] = st
		// Approvals of this step by people no longer among its approvers
		// no longer count.
		r.Decisions = slices.DeleteFunc(r.Decisions, func(d Decision) bool {
			return d.Step == i && d.Approve && !contains(st.Approvers, d.Actor)
		})
		if len(added) == 0 {
			return nil, nil
		}
		return []tell{{kind: NoticeApprovalNeeded, only: added}}, nil
	})
}

// Recheck re-evaluates the pending requests user made (and their
// approved ones whose manual grant task waits), at once: Slack
// reported a change to their profile (a new manager, say), so the right
// approvers are asked now rather than at the next rechecks pass.
func (s *Service) Recheck(ctx context.Context, user string) error {
	rs, err := s.store.List(ctx, Filter{Requester: user, States: []State{StatePending, StateApproved}})
	if err != nil {
		return err
	}
	return s.recheckAll(ctx, rs)
}

// recheckAll re-evaluates rs: pending requests (recheck) and approved ones
// whose manual grant task waits (recheckTask).
func (s *Service) recheckAll(ctx context.Context, rs []*Request) error {
	var errs []error
	for _, r := range rs {
		var err error
		if r.State == StatePending {
			_, err = s.recheck(ctx, r)
		} else {
			err = s.recheckTask(ctx, r)
		}
		if err != nil && !errors.Is(err, ErrConflict) {
			errs = append(errs, fmt.Errorf("recheck %s: %w", r.ID, err))
		}
	}
	return errors.Join(errs...)
}

// RechecksJob re-evaluates every pending request, and every approved one
// whose manual grant task waits for the owners, every `every`
// (DefaultRecheckEvery when zero).
func (s *Service) RechecksJob(every time.Duration) Job {
	if every <= 0 {
		every = DefaultRecheckEvery
	}
	return Job{Name: "rechecks", Every: every, Run: func(ctx context.Context, _ time.Time) error {
		rs, err := s.store.List(ctx, Filter{States: []State{StatePending, StateApproved}})
		if err != nil {
			return err
		}
		return s.recheckAll(ctx, rs)
	}}
}
