package access

import (
	"context"
	"time"
	"unicode/utf8"
)

// Decide records an approver's click. actor comes from the Slack payload
// and is checked against the request at the time of the click: the
// requester can never approve their own request, only approvers of the
// current step may decide, a request already decided is refused with who
// decided, and a deny needs a reason. The last approval needed moves the
// request to approved; the grant is applied by the workers, never on the
// caller's goroutine (a Slack handler).
func (s *Service) Decide(ctx context.Context, id, actor string, approve bool, reason string) (*Request, error) {
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
	if err := s.stillApprover(ctx, cur, actor); err != nil {
		return nil, err
	}
	now := s.clock.Now()
	return s.transition(ctx, cur.ID, func(r *Request) ([]tell, error) {
		if r.State != StatePending {
			return nil, AlreadyDecided(r)
		}
		if actor == r.Requester {
			return nil, refuse(ErrForbidden, Error{Code: CodeOwnRequest, Request: r.ID})
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

// stillApprover checks the clicker against the policy as it is now: the
// approvers stored with the request were resolved when its step started,
// and since then a manager may have changed or someone left a team or user
// group. A person no longer among the step's approvers is refused. If the
// current resolution cannot be made (directory down), the stored
// approvers decide.
func (s *Service) stillApprover(ctx context.Context, r *Request, actor string) error {
	if r.State != StatePending || r.Auto || !r.IsApprover(actor) {
		return nil // the transition itself explains what is wrong
	}
	sys, role, err := s.rb.Lookup(r.System, r.Role)
	if err != nil || role.Approval.Auto || r.CurrentStep >= len(role.Approval.Steps) {
		return nil
	}
	st, err := s.rb.ResolveStep(ctx, s.cfg.Directory, sys, role, r.CurrentStep, r.Requester)
	if err != nil {
		return nil
	}
	if !contains(st.Approvers, actor) {
		return refuse(ErrForbidden, Error{Code: CodeNoLongerApprover, Request: r.ID, Step: r.CurrentStep + 1, People: st.Approvers})
	}
	return nil
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
		if actor != r.Requester && !s.rb.IsAdmin(actor) {
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
func (s *Service) startRemoval(ctx context.Context, id string, ev Event, actor, reason string) (*Request, error) {
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
		return nil, nil
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
