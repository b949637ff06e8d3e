package access

import (
	"context"
	"time"
	"unicode/utf8"
)

// AnyStep is the step argument of Decide when the click's message did not
// say which step it asked for.
const AnyStep = -1

// Decide records an approver's click on the message that asked for step
// (0-based; AnyStep when unknown). actor comes from the Slack payload and
// everything is checked at the time of the click, on fresh directory data
// (invariant 10): the requester must still be allowed to request it (else
// the request ends, ineligible), the current step's approvers are
// re-resolved (a changed set is reassigned: new approvers asked, approvals
// of people still eligible kept), the click counts only for the step its
// message asked for, and under separation of duties a person's approval
// counts for one step only. The requester can never decide their own
// request, a request already decided is refused with who decided, and a
// deny needs a reason. When the directory cannot be asked, nothing is
// decided (CodeDirectory). The last approval needed moves the request to
// approved; the grant is applied by the workers, never on the caller's
// goroutine (a Slack handler).
func (s *Service) Decide(ctx context.Context, id, actor string, approve bool, reason string, step int) (*Request, error) {
	reason = CleanText(reason)
	if !approve && reason == "" {
		return nil, refuse(ErrInvalid, Error{Code: CodeDenyReason})
	}
	if n := utf8.RuneCountInString(reason); n > MaxReasonRunes {
		return nil, refuse(ErrInvalid, Error{Code: CodeReasonTooLong, N: n, N2: MaxReasonRunes})
	}
	cur, err := s.getFor(ctx, id, actor)
	if err != nil {
		return nil, err
	}
	if cur.State != StatePending {
		return nil, AlreadyDecided(cur)
	}
	if actor == cur.Requester || actor == cur.RequestedBy {
		return nil, refuse(ErrForbidden, Error{Code: CodeOwnRequest, Request: cur.ID})
	}
	wasApprover := cur.IsApprover(actor)
	cur, err = s.recheck(ctx, cur)
	if err != nil {
		return nil, err
	}
	if cur.State != StatePending {
		return nil, refuse(ErrConflict, Error{Code: CodeIneligible, Request: cur.ID})
	}
	if st, _ := cur.Current(); wasApprover && !cur.IsApprover(actor) {
		return nil, refuse(ErrForbidden, Error{Code: CodeNoLongerApprover, Request: cur.ID, Step: cur.CurrentStep + 1, People: st.Approvers})
	}
	if step != AnyStep && step != cur.CurrentStep {
		return nil, refuse(ErrConflict, Error{Code: CodeStaleStep, Request: cur.ID, Step: step + 1, N: cur.CurrentStep + 1})
	}
	distinct := true
	if role := s.role(cur); role != nil && role.Approval.SameApprover {
		distinct = false
	}
	if distinct && approve {
		for _, d := range cur.Decisions {
			if d.Approve && d.Actor == actor && d.Step != cur.CurrentStep {
				return nil, refuse(ErrForbidden, Error{Code: CodeOtherStep, Request: cur.ID, Step: d.Step + 1})
			}
		}
	}
	// The next step, if this approval completes the current one, is
	// resolved now (fresh, without anyone who approved an earlier step).
	var next *Step
	if st, ok := cur.Current(); ok && approve && cur.CurrentStep+1 < len(cur.Steps) &&
		contains(st.Approvers, actor) && len(cur.Approvals(cur.CurrentStep))+1 >= st.Min {
		ns, err := s.resolveFresh(ctx, cur, cur.CurrentStep+1, append(cur.ApprovedBy(), actor))
		if err != nil {
			return nil, err
		}
		next = &ns
	}
	now := s.clock.Now()
	return s.transition(ctx, cur.ID, func(r *Request) ([]tell, error) {
		if r.State != StatePending {
			return nil, AlreadyDecided(r)
		}
		step := r.CurrentStep
		st, ok := r.Current()
		if !ok || !r.IsApprover(actor) {
			return nil, refuse(ErrForbidden, Error{Code: CodeNotApprover, Request: r.ID, Step: step + 1, People: st.Approvers})
		}
		if approve && contains(r.Approvals(step), actor) {
			return nil, refuse(ErrConflict, Error{Code: CodeAlreadyApproved, Request: r.ID, Step: step + 1, N: st.Min - len(r.Approvals(step))})
		}
		r.Decisions = append(r.Decisions, Decision{Step: step, Actor: actor, Approve: approve, Reason: reason, At: now.UTC()})
		var ev Event
		switch {
		case !approve:
			ev = EventDenied
		case !StepMet(r, step):
			ev = EventApprovalRecorded
		case step+1 < len(r.Steps):
			ev = EventStepApproved
		default:
			ev = EventApproved
		}
		if err := Apply(r, Transition{Event: ev, Actor: actor, At: now, Note: reason}); err != nil {
			return nil, err
		}
		switch ev {
		case EventApprovalRecorded:
			return []tell{{kind: NoticeProgress}}, nil
		case EventStepApproved:
			r.CurrentStep++
			if next != nil {
				r.Steps[r.CurrentStep] = *next
			}
			return []tell{{kind: NoticeProgress}, {kind: NoticeApprovalNeeded}}, nil
		case EventApproved:
			r.DecidedAt = now.UTC()
			r.NextAttemptAt = now.UTC() // the grant is due now; the workers apply it
		case EventDenied:
			r.DecidedAt = now.UTC()
		}
		return []tell{{kind: NoticeDecided}}, nil
	})
}

// AlreadyDecided is the refusal that tells a late clicker what happened to
// r (who decided, when); it wraps ErrConflict. Only parties of r may be
// told (Service methods check that first).
func AlreadyDecided(r *Request) error {
	last := r.Last()
	for i := len(r.History) - 1; i >= 0; i-- {
		if h := r.History[i]; h.From == StatePending && h.To != StatePending {
			last = h
			break
		}
	}
	actor := last.Actor
	if actor == ActorBot || actor == ActorAuto {
		actor = ""
	}
	return refuse(ErrConflict, Error{Code: CodeAlreadyDecided, Request: r.ID, State: last.To, Actor: actor, At: last.At})
}

// Cancel withdraws a pending request. Only the requester or an admin may.
func (s *Service) Cancel(ctx context.Context, id, actor string) (*Request, error) {
	cur, err := s.getFor(ctx, id, actor)
	if err != nil {
		return nil, err
	}
	now := s.clock.Now()
	return s.transition(ctx, cur.ID, func(r *Request) ([]tell, error) {
		if actor != r.Requester && actor != r.RequestedBy && !s.rb.IsAdmin(actor) {
			return nil, refuse(ErrForbidden, Error{Code: CodeOnlyRequester, Request: r.ID, Value: "cancel"})
		}
		if r.State != StatePending {
			if r.State == StateActive {
				return nil, refuse(ErrConflict, Error{Code: CodeUseRevoke, Request: r.ID})
			}
			return nil, AlreadyDecided(r)
		}
		if err := Apply(r, Transition{Event: EventCancelled, Actor: actor, At: now}); err != nil {
			return nil, err
		}
		r.DecidedAt = now.UTC()
		return []tell{{kind: NoticeDecided}}, nil
	})
}

// Revoke ends an active grant early, or stops one that is approved but
// not yet applied (a grant being retried): the removal then runs like an
// expiry, committed first and retried until the target confirms, so a
// grant that reached the target after all is taken back. The requester
// may end their own ("I'm done"); system owners and admins anyone's.
func (s *Service) Revoke(ctx context.Context, id, actor, reason string) (*Request, error) {
	r, err := s.getFor(ctx, id, actor)
	if err != nil {
		return nil, err
	}
	sys := s.rb.Systems[r.System]
	ev := EventRevoking
	switch {
	case actor == r.Requester:
		ev = EventDone
	case s.rb.IsAdmin(actor) || (sys != nil && sys.IsOwner(actor)):
	default:
		return nil, refuse(ErrForbidden, Error{Code: CodeRevokeForbidden, Request: r.ID, System: r.System})
	}
	if r.State == StatePending {
		return nil, refuse(ErrConflict, Error{Code: CodeUseCancel, Request: r.ID})
	}
	return s.startRemoval(ctx, r.ID, ev, actor, CleanText(reason))
}

// Confirm records a system owner's "Done" on a manual task: the grant or
// the removal is applied at the target. Only owners of the system and
// admins may confirm.
func (s *Service) Confirm(ctx context.Context, id, actor string) (*Request, error) {
	r, err := s.getFor(ctx, id, actor)
	if err != nil {
		return nil, err
	}
	sys := s.rb.Systems[r.System]
	if !s.rb.IsAdmin(actor) && (sys == nil || !sys.IsOwner(actor)) {
		return nil, refuse(ErrForbidden, Error{Code: CodeConfirmForbidden, Request: r.ID, System: r.System})
	}
	if !r.AwaitingConfirmation || (r.State != StateApproved && r.State != StateRevoking) {
		return nil, refuse(ErrConflict, Error{Code: CodeNoTask, Request: r.ID, State: r.State})
	}
	if r.State == StateApproved {
		return s.granted(ctx, r.ID, actor, nil)
	}
	return s.removed(ctx, r.ID, actor)
}

// startRemoval commits the move to revoking (the transition that
// authorises the revoke); the workers then apply it.
func (s *Service) startRemoval(ctx context.Context, id string, ev Event, actor, reason string, tells ...tell) (*Request, error) {
	now := s.clock.Now()
	return s.transition(ctx, id, func(r *Request) ([]tell, error) {
		approvedStop := r.State == StateApproved && ev != EventExpiring
		if r.State != StateActive && !approvedStop {
			if r.State == StateRevoking {
				return nil, refuse(ErrConflict, Error{Code: CodeBeingRemoved, Request: r.ID})
			}
			return nil, refuse(ErrConflict, Error{Code: CodeNotActive, Request: r.ID, State: r.State})
		}
		if ev == EventExpiring && r.ExpiresAt.After(now) {
			return nil, conflictf("%s does not expire until %s", r.ID, r.ExpiresAt)
		}
		if err := Apply(r, Transition{Event: ev, Actor: actor, At: now, Note: reason}); err != nil {
			return nil, err
		}
		r.WarnAt = time.Time{}
		r.NextAttemptAt = now.UTC()
		r.Attempts, r.LastError = 0, ""
		r.AwaitingConfirmation, r.ConfirmAt = false, time.Time{}
		if ev == EventExpiring && now.Sub(r.ExpiresAt) > s.cfg.LateAfter {
			r.Late = true
		}
		return tells, nil
	})
}

// RemovalCause returns the event that started the removal of r
// (EventExpiring, EventRevoking, EventDone or EventRollingBack), "" if none.
func (r *Request) RemovalCause() Event {
	for i := len(r.History) - 1; i >= 0; i-- {
		switch e := r.History[i].Event; e {
		case EventExpiring, EventRevoking, EventDone, EventRollingBack:
			return e
		}
	}
	return ""
}
