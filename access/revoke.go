package access

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// revoke tries once to remove r's access at the target. A failure stays in
// revoking with the next attempt persisted (invariant 4). It runs on a
// worker, for the request whose removal (or retry) is due.
func (s *Service) revoke(ctx context.Context, r *Request) error {
	r, act, unlock, err := s.claimDue(ctx, r.ID, r.Entitlement.Key(), StateRevoking)
	defer unlock()
	if err != nil || !act {
		return err
	}
	rollback := r.RemovalCause() == EventRollingBack

	// Invariant 5: another active grant of the same entitlement keeps access.
	// An approved one does not count: its grant has not been applied and may
	// still fail, and then nobody would remove this access. (The grant and
	// this revoke are serialised by the entitlement lock, so an approved
	// grant applied later restores the access.)
	if other := s.otherActive(ctx, r); other != nil {
		if other.ID == "(unknown)" {
			return fmt.Errorf("look for overlapping grants of %s: store unavailable", r.ID)
		}
		return s.removedCovered(ctx, r.ID, other.ID)
	}
	// Invariant 8: access held before the grant is left in place (and a
	// rollback of a grant that found it there has nothing to undo).
	if r.Receipt != nil && r.Receipt.PreExisting {
		if rollback {
			_, err := s.removed(ctx, r.ID, ActorBot)
			return err
		}
		return s.removedKept(ctx, r.ID)
	}
	conn, ok := s.cfg.Connectors[r.Entitlement.Connector]
	if !ok {
		return s.revokeFailed(ctx, r, PermanentError(fmt.Errorf("connector %q is not configured", r.Entitlement.Connector)))
	}
	ctx, allowed := s.gateAllow(ctx, r.Entitlement.Connector, r.ID)
	if !allowed {
		s.rearmDeferred(r)
		return nil
	}
	g, err := s.revokeSpec(ctx, r)
	if err != nil {
		return s.revokeFailed(ctx, r, RetryableError(err, 0))
	}
	g.Rollback = rollback
	start := time.Now()
	err = s.callRevoke(ctx, conn, g)
	s.obs.ConnectorCall(r.Entitlement.Connector, "revoke", time.Since(start), err)
	s.gateResult(r.Entitlement.Connector, err)
	if err != nil && rollback && g.Receipt == nil && errors.Is(err, ErrUnknownUser) {
		// Undoing a grant whose outcome was unknown: the target knows
		// nobody by that email, so the grant cannot have applied.
		err = nil
	}
	switch {
	case err == nil:
		_, err = s.removed(ctx, r.ID, ActorBot)
		return err
	case isAwaiting(err):
		return s.awaitConfirmation(ctx, r.ID, TaskRevoke)
	}
	return s.revokeFailed(ctx, r, err)
}

// revokeSpec builds what the connector needs to remove r: the receipt and
// the identity recorded at grant time (invariant 8), never a new lookup;
// the person's current email rides along when it changed. Records granted
// before receipts existed carry no receipt, and the directory's current
// profile stands in for the identity.
func (s *Service) revokeSpec(ctx context.Context, r *Request) (Grant, error) {
	g := Grant{ID: r.ID, System: r.System, Role: r.Role, Params: cloneMap(r.Entitlement.Params),
		Reason: r.Reason, ApprovedBy: r.ApprovedBy(), GrantedAt: r.GrantedAt.UTC(), ExpiresAt: r.ExpiresAt.UTC(), Ticket: r.Ticket, BreakGlass: r.BreakGlass, RequestedBy: r.RequestedBy}
	if r.Receipt != nil {
		rc := *r.Receipt
		g.Receipt = &rc
	}
	now, err := s.person(ctx, r.Entitlement.Person)
	switch {
	case r.GrantedTo != nil:
		g.User = *r.GrantedTo
		if err == nil && now.Email != "" && !strings.EqualFold(now.Email, g.User.Email) {
			g.User.CurrentEmail = now.Email
		}
	case err != nil:
		return Grant{}, err
	default:
		g.User = now
	}
	return g, nil
}

// removedCovered ends r without calling the target: another active grant
// still gives the entitlement (invariant 5).
func (s *Service) removedCovered(ctx context.Context, id, by string) error {
	now := s.clock.Now()
	_, err := s.transition(ctx, id, func(r *Request) ([]tell, error) {
		ev := endEvent(r)
		if err := Apply(r, Transition{Event: ev, Actor: ActorBot, At: now, Note: "access kept: still covered by " + by}); err != nil {
			return nil, err
		}
		r.CoveredBy = by
		r.EndedAt = now.UTC()
		r.NextAttemptAt = time.Time{}
		if ev == EventGrantFailed {
			return []tell{{kind: NoticeGrantFailed, text: r.LastError}}, nil
		}
		return []tell{{kind: NoticeRemoved}}, nil
	})
	return err
}

// removedKept ends r without calling the target: the person held the
// access before the grant, so it stays (invariant 8); requester and
// owners are told, and the audit record says so.
func (s *Service) removedKept(ctx context.Context, id string) error {
	now := s.clock.Now()
	_, err := s.transition(ctx, id, func(r *Request) ([]tell, error) {
		if err := Apply(r, Transition{Event: endEvent(r), Actor: ActorBot, At: now, Note: "access held before the grant was left in place"}); err != nil {
			return nil, err
		}
		r.EndedAt = now.UTC()
		r.NextAttemptAt, r.LastError = time.Time{}, ""
		return []tell{{kind: NoticeAccessKept}}, nil
	})
	return err
}

func endEvent(r *Request) Event {
	switch r.RemovalCause() {
	case EventExpiring:
		return EventExpired
	case EventRollingBack:
		return EventGrantFailed
	}
	return EventRevoked
}

// removed commits the end of a removal the target confirmed.
func (s *Service) removed(ctx context.Context, id, actor string) (*Request, error) {
	now := s.clock.Now()
	r, err := s.transition(ctx, id, func(r *Request) ([]tell, error) {
		if r.State != StateRevoking {
			return nil, conflictf("%s is %s", r.ID, r.State)
		}
		ev := endEvent(r)
		note := ""
		switch {
		case ev == EventGrantFailed:
			note = "rolled back: nothing of the failed grant is left"
		case r.Late:
			note = "removed late: accessbot was not running at expiry"
		}
		if err := Apply(r, Transition{Event: ev, Actor: actor, At: now, Note: note}); err != nil {
			return nil, err
		}
		wasAlerted := r.Alerted
		r.EndedAt = now.UTC()
		r.NextAttemptAt = time.Time{}
		r.AwaitingConfirmation, r.ConfirmAt = false, time.Time{}
		if ev == EventGrantFailed {
			return []tell{{kind: NoticeGrantFailed, text: r.LastError}, {kind: NoticeRolledBack, text: r.LastError}}, nil
		}
		r.LastError = ""
		tells := []tell{{kind: NoticeRemoved}}
		if wasAlerted {
			tells = append(tells, tell{kind: NoticeRevokeRecovered})
		}
		return tells, nil
	})
	if err != nil {
		return nil, err
	}
	if r.RemovalCause() == EventExpiring {
		s.obs.RevocationLag(r, now.Sub(r.ExpiresAt))
	}
	return r, nil
}

func (s *Service) revokeFailed(ctx context.Context, r *Request, cerr error) error {
	now := s.clock.Now()
	class, after := Classify(cerr)
	why := s.failure(ctx, r, "remove", cerr)
	_, err := s.transition(ctx, r.ID, func(r *Request) ([]tell, error) {
		if r.State != StateRevoking {
			return nil, conflictf("%s is %s", r.ID, r.State)
		}
		if err := Apply(r, Transition{Event: EventRevokeAttemptFailed, Actor: ActorBot, At: now, Note: why}); err != nil {
			return nil, err
		}
		r.Attempts++
		r.LastError = why
		r.NextAttemptAt = now.Add(s.backoff(r.Attempts, after)).UTC()
		if !r.Alerted && (class == Permanent || r.Attempts >= s.cfg.AlertAfter) {
			r.Alerted = true
			if r.RemovalCause() == EventRollingBack {
				return []tell{{kind: NoticeRevokeFailing, text: why}}, nil
			}
			return []tell{{kind: NoticeRevokeFailing, text: why}, {kind: NoticeRevokeDelayed}}, nil
		}
		return nil, nil
	})
	return err
}
