package access

import (
	"context"
	"errors"
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
	// The checks below read the request, then ask the directory (no lock
	// is held across I/O); the write then goes through only if nothing a
	// copy shows changed in between (Rev), else the click is judged again
	// on the new request. So a click made on step 1's message can never
	// be counted for step 2 because step 1 completed meanwhile, and the
	// separation of duties holds against concurrent clicks (a double click).
	for range maxDecideRounds {
		r, err := s.decideOnce(ctx, id, actor, approve, reason, step)
		if !errors.Is(err, errRaced) {
			return r, err
		}
	}
	return nil, conflictf("%s changed several times while your click was recorded; please try again", id)
}

// maxDecideRounds bounds how often Decide judges a click again because
// the request changed under it.
const maxDecideRounds = 8

// errRaced says the request changed between Decide's read and its write.
var errRaced = errors.New("request changed during the decision")

func (s *Service) decideOnce(ctx context.Context, id, actor string, approve bool, reason string, step int) (*Request, error) {
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
	if err := s.checkStep(cur, actor, approve, step); err != nil {
		return nil, err
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
	rev := cur.Rev
	return s.transition(ctx, cur.ID, func(r *Request) ([]tell, error) {
		if r.State != StatePending {
			return nil, AlreadyDecided(r)
		}
		if r.Rev != rev {
			return nil, errRaced
		}
		// Judged again on the copy being written (cheap, no I/O): the
		// step of the click's message and the separation of duties.
		if err := s.checkStep(r, actor, approve, step); err != nil {
			return nil, err
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

// checkStep refuses a click on r made on the message of step (AnyStep
// when the message did not say) when r is at another step, and, under
// separation of duties, an approval by someone who approved another step.
func (s *Service) checkStep(r *Request, actor string, approve bool, step int) error {
	if step != AnyStep && step != r.CurrentStep {
		return refuse(ErrConflict, Error{Code: CodeStaleStep, Request: r.ID, Step: step + 1, N: r.CurrentStep + 1})
	}
	if role := s.role(r); !approve || (role != nil && role.Approval.SameApprover) {
		return nil
	}
	for _, d := range r.Decisions {
		if d.Approve && d.Actor == actor && d.Step != r.CurrentStep {
			return refuse(ErrForbidden, Error{Code: CodeOtherStep, Request: r.ID, Step: d.Step + 1})
		}
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

// TaskGrant and TaskRevoke name a manual task: what an owner's Done
// confirms (Confirm's op, Notice.Op of NoticeTask).
const (
	TaskGrant  = "grant"
	TaskRevoke = "revoke"
)

// Confirm records a system owner's "Done" on the manual task op
// (TaskGrant or TaskRevoke, from the task message clicked): the grant or
// the removal was applied at the target. Only owners of the system and
// admins may confirm. A Done is accepted only for the task that waits
// now: a Done on a grant task never confirms a removal (the owner just
// put the access in place), and one from a message that does not say
// its task is refused (CodeNoTask): a newer task message, or a
// reminder, carries it. Nobody confirms a task of their own request
// (CodeOwnRequest). A confirmed grant re-checks invariant 10 first.
func (s *Service) Confirm(ctx context.Context, id, actor, op string) (*Request, error) {
	r, err := s.getFor(ctx, id, actor)
	if err != nil {
		return nil, err
	}
	sys := s.rb.Systems[r.System]
	if !s.rb.IsAdmin(actor) && (sys == nil || !sys.IsOwner(actor)) {
		return nil, refuse(ErrForbidden, Error{Code: CodeConfirmForbidden, Request: r.ID, System: r.System})
	}
	if actor == r.Requester || actor == r.RequestedBy {
		// An owner's own access is confirmed by another owner or an
		// admin: nobody marks their own removal done.
		return nil, refuse(ErrForbidden, Error{Code: CodeOwnRequest, Request: r.ID})
	}
	waiting := ""
	switch {
	case !r.AwaitingConfirmation:
	case r.State == StateApproved:
		waiting = TaskGrant
	case r.State == StateRevoking:
		waiting = TaskRevoke
	}
	if waiting == "" || op != waiting {
		return nil, refuse(ErrConflict, Error{Code: CodeNoTask, Request: r.ID, State: r.State, Value: op})
	}
	if r.State == StateApproved {
		// Invariant 10 holds for a grant an owner applied by hand too.
		why, err := s.mayGrant(ctx, r)
		if err != nil {
			return nil, err
		}
		if why != "" {
			if _, err := s.endIneligible(ctx, r.ID, why); err != nil {
				return nil, err
			}
			return nil, refuse(ErrConflict, Error{Code: CodeIneligible, Request: r.ID})
		}
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
