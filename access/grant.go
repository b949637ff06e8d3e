package access

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// claimDue locks r's entitlement and re-reads r under the lock. The timer
// wheel, the reconcile pass and a click may all reach the same due request
// at once; only one caller may apply its effect (invariant 2), so act is
// true only if r is still in state, not waiting for an owner's
// confirmation, and due. The caller must call unlock, even on error.
func (s *Service) claimDue(ctx context.Context, id, key string, state State) (cur *Request, act bool, unlock func(), err error) {
	unlock = s.lockEntitlement(key)
	cur, err = s.store.Get(ctx, id)
	if err != nil {
		return nil, false, unlock, err
	}
	act = cur.State == state && !cur.AwaitingConfirmation && !cur.NextAttemptAt.IsZero() && !cur.NextAttemptAt.After(s.clock.Now())
	return cur, act, unlock, nil
}

// failure is what people are told about a failed connector call: the
// system and a reference that owners find in the logs with the full error.
// A connector's own error text never reaches Slack or the audit log: it
// may hold a catch-hook URL whose path is the credential, or an email.
func (s *Service) failure(ctx context.Context, r *Request, op string, err error) string {
	ref := newRef()
	class, _ := Classify(err)
	s.log.WarnContext(ctx, op+" attempt failed", LogRequest, r.ID, LogConnector, r.Entitlement.Connector,
		"class", class.String(), LogRef, ref, LogError, err)
	what := "could not " + op + " it"
	if class == Permanent {
		what = "refused to " + op + " it"
	}
	return fmt.Sprintf("%s %s (reference %s)", s.systemName(r.System), what, ref)
}

// grant applies an approved request at its target. It runs on a worker,
// for the request whose approval (or retry) is due.
func (s *Service) grant(ctx context.Context, r *Request) error {
	r, act, unlock, err := s.claimDue(ctx, r.ID, r.Entitlement.Key(), StateApproved)
	defer unlock()
	if err != nil || !act {
		return err
	}
	conn, ok := s.cfg.Connectors[r.Entitlement.Connector]
	if !ok {
		return s.grantFailed(ctx, r.ID, fmt.Sprintf("%s has no connector configured (%q)", s.systemName(r.System), r.Entitlement.Connector))
	}
	// Invariant 10: right before each grant attempt, the requester must
	// still be allowed to request it and every approval still come from
	// an approver of its step, on fresh directory data.
	switch why, err := s.mayGrant(ctx, r); {
	case err != nil:
		return s.grantRetry(ctx, r.ID, "the directory could not be asked before the grant", 0)
	case why != "":
		_, err := s.endIneligible(ctx, r.ID, why)
		return err
	}
	ctx, allowed := s.gateAllow(ctx, r.Entitlement.Connector, r.ID)
	if !allowed {
		s.rearmDeferred(r)
		return nil
	}
	now := s.clock.Now()
	g, err := s.grantSpec(ctx, r, now)
	var rc Receipt
	switch {
	case errors.Is(err, ErrNotFound):
		return s.grantFailed(ctx, r.ID, fmt.Sprintf("the requester is not known to Slack (reference %s)", s.logRef(ctx, r, err)))
	case err != nil:
		// A directory hiccup is not the target's fault and not final.
		err = RetryableError(err, 0)
	default:
		if err := s.markGrantCall(ctx, r.ID); err != nil {
			return err
		}
		start := time.Now()
		rc, err = s.callGrant(ctx, conn, g)
		s.obs.ConnectorCall(r.Entitlement.Connector, "grant", time.Since(start), err)
		s.gateResult(r.Entitlement.Connector, err)
	}
	switch {
	case err == nil:
		_, err = s.granted(ctx, r.ID, ActorBot, &grantResult{receipt: rc, person: g.User})
		return err
	case isAwaiting(err):
		return s.awaitConfirmation(ctx, r.ID, TaskGrant)
	}
	why := s.failure(ctx, r, "grant", err)
	class, after := Classify(err)
	giveUp := class == Permanent || s.clock.Now().Sub(r.DecidedAt) >= s.cfg.GrantRetryWindow
	// What a failed attempt may have left at the target: this attempt's
	// partial receipt, else the last one an earlier attempt reported.
	left := rc
	if !left.Changed() && r.Receipt != nil {
		left = *r.Receipt
	}
	switch {
	case !giveUp:
		_, err = s.transition(ctx, r.ID, func(r *Request) ([]tell, error) {
			if r.State != StateApproved {
				return nil, conflictf("%s is %s", r.ID, r.State)
			}
			if err := Apply(r, Transition{Event: EventGrantAttemptFailed, Actor: ActorBot, At: now, Note: why}); err != nil {
				return nil, err
			}
			r.Attempts++
			r.LastError = why
			r.NextAttemptAt = now.Add(s.backoff(r.Attempts, after)).UTC()
			r.GrantCalling = false
			if after <= 0 {
				// Not a rate limit (refused before acting): the target
				// may have applied it before failing.
				r.GrantUncertain = true
			}
			if rc.Changed() {
				c := rc // kept for the rollback should the grant be given up
				r.Receipt = &c
			}
			return nil, nil
		})
		return err
	case left.PreExisting:
		// The person held the access before: nothing of ours to undo.
		return s.grantFailed(ctx, r.ID, why)
	case left.Changed() || class == Retryable:
		// Something may be left at the target: what the partial receipt
		// says, or a grant whose answer was lost. Roll it back with a
		// compensating revoke, retried like any revoke (invariant 9),
		// unless another active grant still covers the entitlement.
		if !left.Changed() && s.coveredByOther(ctx, r) {
			return s.grantFailed(ctx, r.ID, why)
		}
		return s.rollBack(ctx, r.ID, left, g.User, why)
	}
	return s.grantFailed(ctx, r.ID, why)
}

// grantRetry records a grant attempt that could not be made (the
// directory was down) and schedules the next.
func (s *Service) grantRetry(ctx context.Context, id, why string, after time.Duration) error {
	now := s.clock.Now()
	_, err := s.transition(ctx, id, func(r *Request) ([]tell, error) {
		if r.State != StateApproved {
			return nil, conflictf("%s is %s", r.ID, r.State)
		}
		if err := Apply(r, Transition{Event: EventGrantAttemptFailed, Actor: ActorBot, At: now, Note: why}); err != nil {
			return nil, err
		}
		r.Attempts++
		r.LastError = why
		r.NextAttemptAt = now.Add(s.backoff(r.Attempts, after)).UTC()
		return nil, nil
	})
	return err
}

// markGrantCall durably records that a grant call is about to be made
// (Request.GrantCalling); an earlier mark still set means an earlier
// call's outcome was lost, which makes the grant uncertain. It is
// bookkeeping, not a state change: no history, no notices.
func (s *Service) markGrantCall(ctx context.Context, id string) error {
	_, err := s.store.Update(ctx, id, func(r *Request) error {
		if r.State != StateApproved {
			return conflictf("%s is %s", r.ID, r.State)
		}
		if r.GrantCalling {
			r.GrantUncertain = true
		}
		r.GrantCalling = true
		return nil
	})
	return err
}

// callGrant calls the connector, turning a panic into a retryable failure.
func (s *Service) callGrant(ctx context.Context, conn Connector, g Grant) (rc Receipt, err error) {
	defer func() {
		if p := recover(); p != nil {
			ref := s.panicked(ctx, "connector grant", p)
			rc, err = Receipt{}, RetryableError(fmt.Errorf("connector panicked (reference %s)", ref), 0)
		}
	}()
	return conn.Grant(ctx, g)
}

// callRevoke calls the connector, turning a panic into a retryable failure.
func (s *Service) callRevoke(ctx context.Context, conn Connector, g Grant) (err error) {
	defer func() {
		if p := recover(); p != nil {
			ref := s.panicked(ctx, "connector revoke", p)
			err = RetryableError(fmt.Errorf("connector panicked (reference %s)", ref), 0)
		}
	}()
	return conn.Revoke(ctx, g)
}

func (s *Service) logRef(ctx context.Context, r *Request, err error) string {
	ref := newRef()
	s.log.WarnContext(ctx, "grant failed", LogRequest, r.ID, LogRef, ref, LogError, err)
	return ref
}

func isAwaiting(err error) bool { return errors.Is(err, ErrAwaitingConfirmation) }

// coveredByOther reports whether another active grant gives r's
// entitlement. On a store error it answers true: skipping a cleanup is
// safer than removing access someone still holds.
func (s *Service) coveredByOther(ctx context.Context, r *Request) bool {
	return s.otherActive(ctx, r) != nil
}

// otherActive returns another active grant of r's entitlement (the one
// ending last), nil if none; on a store error a placeholder so that
// callers err on the side of keeping access.
func (s *Service) otherActive(ctx context.Context, r *Request) *Request {
	others, err := s.store.List(ctx, Filter{Entitlement: r.Entitlement.Key(), States: []State{StateActive}})
	if err != nil {
		return &Request{ID: "(unknown)"}
	}
	var best *Request
	for _, o := range others {
		if o.ID != r.ID && (best == nil || o.ExpiresAt.After(best.ExpiresAt)) {
			best = o
		}
	}
	return best
}

// otherOurs returns another grant of r's entitlement that accessbot gave
// and has not finished removing: active (the one ending last), else one
// being removed. A connector that finds the access present because of
// such a grant must not make it "held before" (invariant 8). On a store
// error, the same placeholder as otherActive.
func (s *Service) otherOurs(ctx context.Context, r *Request) *Request {
	if o := s.otherActive(ctx, r); o != nil {
		return o
	}
	others, err := s.store.List(ctx, Filter{Entitlement: r.Entitlement.Key(), States: []State{StateRevoking}})
	if err != nil {
		return &Request{ID: "(unknown)"}
	}
	for _, o := range others {
		if o.ID != r.ID && o.Receipt != nil {
			return o
		}
	}
	return nil
}

// grantSpec builds what the connector needs for a grant. GrantedAt is
// now, so that expires_at = granted_at + duration (invariant 6).
func (s *Service) grantSpec(ctx context.Context, r *Request, now time.Time) (Grant, error) {
	p, err := s.person(ctx, r.Entitlement.Person)
	if err != nil {
		return Grant{}, err
	}
	exp := r.ExpiresAt
	if exp.IsZero() {
		exp = s.expiryFor(ctx, r, now)
	}
	return Grant{ID: r.ID, System: r.System, Role: r.Role, Params: cloneMap(r.Entitlement.Params), User: p,
		Reason: r.Reason, ApprovedBy: r.ApprovedBy(), GrantedAt: now.UTC(), ExpiresAt: exp.UTC(), Ticket: r.Ticket, BreakGlass: r.BreakGlass, RequestedBy: r.RequestedBy}, nil
}

// person looks a Slack user up in the directory (just the ID without one).
func (s *Service) person(ctx context.Context, id string) (Person, error) {
	p := Person{SlackID: id}
	if s.cfg.Directory == nil {
		return p, nil
	}
	got, err := s.cfg.Directory.Person(ctx, id)
	if err != nil {
		return Person{}, fmt.Errorf("look up %s in Slack: %w", id, err)
	}
	got.SlackID = id
	return got, nil
}

// expiryFor is when a grant applied at granted ends: granted + duration
// (the clock starts at grant, invariant 6), except that an extension adds
// its duration to the end of the grant it extends while that is still
// active, so "extend by 2h" means two more hours, never fewer.
func (s *Service) expiryFor(ctx context.Context, r *Request, granted time.Time) time.Time {
	end := granted.Add(r.Duration)
	if r.Extends != "" {
		if base, err := s.store.Get(ctx, r.Extends); err == nil && base.State == StateActive && base.ExpiresAt.After(granted) {
			end = base.ExpiresAt.Add(r.Duration)
		}
	}
	return end.UTC()
}

// grantResult is what a successful connector grant returned.
type grantResult struct {
	receipt Receipt
	person  Person
}

// granted commits approved → active with the receipt (invariant 8): the
// revoke acts on what it records. A grant while another active grant of
// the same entitlement exists inherits that grant's view of what
// pre-existed: the connector found the access present because of our own
// earlier grant, which must not make it "held before" and never removed.
func (s *Service) granted(ctx context.Context, id, actor string, got *grantResult) (*Request, error) {
	now := s.clock.Now()
	cur, err := s.store.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	end := s.expiryFor(ctx, cur, now)
	var rc *Receipt
	var person *Person
	if got != nil {
		c := got.receipt
		if other := s.otherOurs(ctx, cur); other != nil && other.Receipt != nil {
			c.PreExisting = other.Receipt.PreExisting
			if other.Receipt.Previous != "" {
				c.Previous = other.Receipt.Previous
			}
		} else if other != nil {
			c.PreExisting = false
		}
		if len(c.Data) > MaxReceiptBytes {
			c.Data = nil // a connector bug; the revoke falls back to the other fields
		}
		rc = &c
		p := got.person
		person = &p
	}
	return s.transition(ctx, id, func(r *Request) ([]tell, error) {
		note := ""
		var c *Receipt
		if rc != nil {
			cc := *rc
			c = &cc
			note = c.Note
			if c.PreExisting && r.GrantUncertain {
				// An earlier attempt may have applied it: what the target
				// found may be ours, so it is not trusted as held before.
				c.PreExisting = false
				note = joinNote(note, "the target already had this access, but an earlier grant attempt may have given it: it will be removed at the end")
			}
			if c.PreExisting {
				note = joinNote(note, "access already held before this grant: it will be left in place at the end")
			}
		}
		if r.State == StateRevoking && got != nil && !r.GrantCalling {
			return nil, conflictf("%s is %s", r.ID, r.State)
		}
		if r.State == StateRevoking && got != nil {
			// Stopped (I'm done, a revoke, offboarding) while the grant
			// call was in flight: the removal that follows must act on
			// what this grant did (invariant 8), so the receipt and the
			// identity are recorded on the request being removed.
			if err := Apply(r, Transition{Event: EventNoted, Actor: ActorBot, At: now, Note: joinNote("the grant reached the target while it was being stopped", note)}); err != nil {
				return nil, err
			}
			r.Receipt, r.GrantedTo = c, person
			r.GrantCalling = false
			return nil, nil
		}
		if err := Apply(r, Transition{Event: EventGranted, Actor: actor, At: now, Note: note}); err != nil {
			return nil, err
		}
		r.GrantCalling = false
		r.GrantedAt = now.UTC()
		r.ExpiresAt = end
		r.Receipt, r.GrantedTo = c, person
		r.Attempts, r.LastError, r.NextAttemptAt = 0, "", time.Time{}
		r.AwaitingConfirmation, r.ConfirmAt = false, time.Time{}
		if role := s.role(r); role != nil && role.ExpiryWarning > 0 && r.ExpiresAt.Sub(r.GrantedAt) > role.ExpiryWarning {
			r.WarnAt = r.ExpiresAt.Add(-role.ExpiryWarning)
		}
		return []tell{{kind: NoticeGranted}}, nil
	})
}

// grantFailed ends an approved request whose grant left nothing behind.
func (s *Service) grantFailed(ctx context.Context, id, why string) error {
	now := s.clock.Now()
	_, err := s.transition(ctx, id, func(r *Request) ([]tell, error) {
		if err := Apply(r, Transition{Event: EventGrantFailed, Actor: ActorBot, At: now, Note: why}); err != nil {
			return nil, err
		}
		r.LastError = why
		r.EndedAt = now.UTC()
		r.NextAttemptAt = time.Time{}
		r.GrantCalling = false
		return []tell{{kind: NoticeGrantFailed, text: why}}, nil
	})
	return err
}

// rollBack commits approved → revoking for a grant that failed after
// changing something (or whose outcome is unknown): the revoke workers
// undo it with the partial receipt, and only then is it grant_failed.
func (s *Service) rollBack(ctx context.Context, id string, rc Receipt, p Person, why string) error {
	now := s.clock.Now()
	_, err := s.transition(ctx, id, func(r *Request) ([]tell, error) {
		if err := Apply(r, Transition{Event: EventRollingBack, Actor: ActorBot, At: now, Note: why}); err != nil {
			return nil, err
		}
		if rc.Changed() {
			c := rc
			r.Receipt = &c
		}
		pp := p
		r.GrantedTo = &pp
		r.GrantCalling = false
		r.LastError = why
		r.Attempts = 0
		r.NextAttemptAt = now.UTC()
		return nil, nil
	})
	return err
}

// awaitConfirmation records that a manual task was handed to the owners.
func (s *Service) awaitConfirmation(ctx context.Context, id, what string) error {
	now := s.clock.Now()
	_, err := s.transition(ctx, id, func(r *Request) ([]tell, error) {
		if r.AwaitingConfirmation {
			return nil, conflictf("%s already waits for confirmation", r.ID)
		}
		if err := Apply(r, Transition{Event: EventNoted, Actor: ActorBot, At: now, Note: what + " task sent to the system owners"}); err != nil {
			return nil, err
		}
		r.AwaitingConfirmation = true
		r.GrantCalling = false
		r.NextAttemptAt = time.Time{}
		r.ConfirmAt = now.Add(s.cfg.ConfirmReminder).UTC()
		return []tell{{kind: NoticeTask, op: what}}, nil
	})
	return err
}

// remindTask reminds the owners of an unconfirmed manual task and keeps
// reminding every ConfirmReminder.
func (s *Service) remindTask(ctx context.Context, id, what string) error {
	now := s.clock.Now()
	_, err := s.transition(ctx, id, func(r *Request) ([]tell, error) {
		if !r.AwaitingConfirmation || r.ConfirmAt.After(now) {
			return nil, conflictf("task reminder no longer due")
		}
		if err := Apply(r, Transition{Event: EventNoted, Actor: ActorBot, At: now, Note: what + " task still not confirmed; owners reminded"}); err != nil {
			return nil, err
		}
		r.ConfirmAt = now.Add(s.cfg.ConfirmReminder).UTC()
		if what == "revoke" {
			r.Alerted = true
		}
		return []tell{{kind: NoticeTask, op: what, text: "reminder"}}, nil
	})
	return err
}
