package access

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Offboarding (DESIGN.md §4 invariant 12): when Slack reports a person
// deactivated, or an identity provider reports their account suspended,
// everything of theirs ends at once.

// Offboard ends what user holds and waits for: every live grant (approved
// or active) is revoked now, like an owner's revocation committed by
// accessbot, and the owners are told; their pending requests end
// (ineligible); pending requests waiting on their approval are reassigned
// to the step's other approvers (or the fallbacks). why says what
// happened ("deactivated in Slack", "suspended in okta") and goes into the
// audit log. It is idempotent: a second report changes nothing.
func (s *Service) Offboard(ctx context.Context, user, why string) error {
	s.gone.Store(user, offboarded{at: s.clock.Now(), why: why})
	note := "offboarding: " + why
	var errs []error
	mine, err := s.store.List(ctx, Filter{Requester: user, States: []State{StatePending, StateApproved, StateActive}})
	if err != nil {
		return err
	}
	for _, r := range mine {
		switch r.State {
		case StatePending:
			_, err = s.endIneligible(ctx, r.ID, note)
		default:
			_, err = s.startRemoval(ctx, r.ID, EventRevoking, ActorBot, note, tell{kind: NoticeOffboarded, text: why})
		}
		if err != nil && !errors.Is(err, ErrConflict) {
			errs = append(errs, fmt.Errorf("offboard %s: %w", r.ID, err))
		}
	}
	waiting, err := s.store.List(ctx, Filter{Approver: user, States: []State{StatePending}})
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	for _, r := range waiting {
		if _, err := s.recheck(ctx, r); err != nil && !errors.Is(err, ErrConflict) {
			errs = append(errs, fmt.Errorf("reassign %s: %w", r.ID, err))
		}
	}
	s.log.InfoContext(ctx, "offboarded", "user", user, "why", why, "grants_and_requests", len(mine), "approvals_reassigned", len(waiting))
	return errors.Join(errs...)
}

// OffboardedInSlack is Offboard's why when Slack reported the person
// deactivated; only such an offboarding is undone by Reinstate.
const OffboardedInSlack = "deactivated in Slack"

// offboarded is what the service remembers of an offboarded person.
type offboarded struct {
	at  time.Time
	why string
}

// Reinstate forgets that user was offboarded because Slack reported them
// deactivated (Slack now reports them active again). An offboarding an
// identity provider caused stays: Slack cannot overrule the IdP (a Slack
// profile edit of a suspended person must not restore them); the
// offboarding job reinstates them once every IdP reports them active.
// Nothing that ended comes back; they may ask again.
func (s *Service) Reinstate(user string) {
	if v, ok := s.gone.Load(user); ok && v.(offboarded).why == OffboardedInSlack {
		s.gone.CompareAndDelete(user, v)
	}
}

// DefaultAccountCheckEvery is how often the offboarding job asks the
// identity providers whether the people holding or waiting for access are
// still active.
const DefaultAccountCheckEvery = 15 * time.Minute

// OffboardingJob asks each of checkers (identity-provider connectors, by
// name) whether every person with a live grant or a pending request is
// still active, and offboards those reported suspended or deprovisioned.
// A person an IdP does not know is left alone (they may live in another);
// a failing IdP is logged and asked again next time. No checkers: no job.
func (s *Service) OffboardingJob(checkers map[string]AccountChecker, every time.Duration) []Job {
	if len(checkers) == 0 {
		return nil
	}
	if every <= 0 {
		every = DefaultAccountCheckEvery
	}
	return []Job{{Name: "offboarding", Every: every, Run: func(ctx context.Context, _ time.Time) error {
		rs, err := s.store.List(ctx, Filter{States: []State{StatePending, StateApproved, StateActive}})
		if err != nil {
			return err
		}
		people := map[string]bool{}
		for _, r := range rs {
			people[r.Requester] = true
		}
		var errs []error
		// People an IdP offboarded are reinstated once no IdP reports them
		// inactive any more (and one at least knows them as active).
		s.gone.Range(func(k, v any) bool {
			user, o := k.(string), v.(offboarded)
			if o.why == OffboardedInSlack {
				return true
			}
			p, err := s.person(ctx, user)
			if err != nil || p.Deactivated {
				return true
			}
			active, known := true, false
			for name, c := range checkers {
				ok, err := c.AccountActive(ctx, p)
				switch {
				case errors.Is(err, ErrUnknownUser):
				case err != nil:
					errs = append(errs, fmt.Errorf("ask %s about %s: %w", name, user, err))
					active = false
				default:
					known = true
					active = active && ok
				}
			}
			if active && known {
				s.gone.CompareAndDelete(user, v)
				s.log.InfoContext(ctx, "reinstated: every identity provider reports the account active", "user", user)
			}
			return true
		})
		for user := range people {
			if _, gone := s.gone.Load(user); gone {
				continue
			}
			p, err := s.person(ctx, user)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			for name, c := range checkers {
				active, err := c.AccountActive(ctx, p)
				switch {
				case errors.Is(err, ErrUnknownUser):
					continue
				case err != nil:
					errs = append(errs, fmt.Errorf("ask %s about %s: %w", name, user, err))
					continue
				case !active:
					if err := s.Offboard(ctx, user, "account suspended or deprovisioned in "+name); err != nil {
						errs = append(errs, err)
					}
				}
				if !active {
					break
				}
			}
		}
		return errors.Join(errs...)
	}}}
}
