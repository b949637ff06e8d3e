package access

import (
	"context"
	"errors"
	"fmt"
)

// Requests on behalf of someone (issue #16): a role's `on_behalf:` lets
// some people ask for it for another person (a manager for a new hire, IT
// for anyone). The request is the beneficiary's in every respect the
// policy knows: Request.Requester is the beneficiary, who must be one of
// the role's requesters, whose manager "manager" means, who holds the
// entitlement, who is refused a duplicate, whose DMs say "your access".
// The person who asked is Request.RequestedBy: the actor of the
// request's first history entry (and so of its audit record), told of
// the outcome, allowed to cancel it, and never one of its approvers (nor
// is the beneficiary), in every step, at submission and at every
// re-check.

// onBehalf is the person asking for in.Requester, "" when they ask for
// themselves.
func onBehalf(in SubmitInput) string {
	if in.RequestedBy == in.Requester {
		return ""
	}
	return in.RequestedBy
}

// askerOf is the person who asked for r's requester, as an exclusion
// list for approver resolution (nil when the requester asked).
func askerOf(r *Request) []string {
	if r.RequestedBy == "" || r.RequestedBy == r.Requester {
		return nil
	}
	return []string{r.RequestedBy}
}

// asker is the person who made the request: RequestedBy, else Requester.
func (r *Request) asker() string {
	if r.RequestedBy != "" {
		return r.RequestedBy
	}
	return r.Requester
}

// askerTold reports whether a notice of kind about r also goes to the
// person who asked for its requester: what became of the request
// (submitted, decided, granted, failed, ended), not the beneficiary's own
// reminders about their access (expiry warnings, removals).
func askerTold(r *Request, kind NoticeKind) bool {
	if len(askerOf(r)) == 0 {
		return false
	}
	switch kind {
	case NoticeSubmitted, NoticeDecided, NoticeGranted, NoticeGrantFailed, NoticeIneligible:
		return true
	}
	return false
}

// CheckOnBehalf reports whether asker may request role of sys for
// beneficiary: asker is one of the role's on_behalf sources, resolved for
// the beneficiary (manager means the beneficiary's manager; owners the
// system's owners). It returns nil, an *Error CodeOnBehalfNotAllowed
// (ErrForbidden) naming who may, or a wrapped directory error. Whether
// the beneficiary may have the role is CheckRequest's question.
func (rb *Runbook) CheckOnBehalf(ctx context.Context, dir Directory, sys *System, role *Role, asker, beneficiary string) error {
	ok, err := rb.mayAskFor(ctx, dir, sys, role, asker, beneficiary)
	if err != nil {
		return err
	}
	if ok {
		return nil
	}
	var who []string
	for _, s := range role.OnBehalf {
		who = append(who, s.String())
	}
	return refuse(ErrForbidden, Error{Code: CodeOnBehalfNotAllowed, System: sys.ID, Role: role.ID, Value: beneficiary, Allowed: who})
}

// mayAskFor reports whether asker is among the role's on_behalf sources
// for beneficiary.
func (rb *Runbook) mayAskFor(ctx context.Context, dir Directory, sys *System, role *Role, asker, beneficiary string) (bool, error) {
	for _, src := range role.OnBehalf {
		people, err := rb.resolve(ctx, dir, src, sys, beneficiary, nil)
		if err != nil {
			return false, fmt.Errorf("check on_behalf of %s %s: %w", sys.ID, role.ID, err)
		}
		if contains(people, asker) {
			return true, nil
		}
	}
	return false, nil
}

// beneficiaryKnown refuses a request for someone Slack does not know, or
// whose account is deactivated (CodeUnknownPerson); a directory failure
// is returned wrapped.
func (s *Service) beneficiaryKnown(ctx context.Context, who string) error {
	if s.cfg.Directory == nil {
		return nil
	}
	p, err := s.cfg.Directory.Person(ctx, who)
	switch {
	case errors.Is(err, ErrNotFound):
		return refuse(ErrInvalid, Error{Code: CodeUnknownPerson, Value: who})
	case err != nil:
		return fmt.Errorf("look up %s: %w", who, err)
	case p.Deactivated:
		return refuse(ErrForbidden, Error{Code: CodeUnknownPerson, Value: who, N2: 1})
	}
	return nil
}

// forBeneficiary rewords CheckRequest's "you may not request it" for a
// request made for someone else: it is the beneficiary who may not.
func forBeneficiary(err error, beneficiary string) error {
	var e *Error
	if errors.As(err, &e) && e.Code == CodeNotEligible {
		return refuse(ErrForbidden, Error{Code: CodeBeneficiaryNotEligible, System: e.System, Role: e.Role, Value: beneficiary, Allowed: e.Allowed})
	}
	return err
}

// mayStillRequest is the re-check of invariant 10 for r (before each
// grant, at every click): a break-glass request's requester must still be
// one of the role's break-glass requesters; any other's one of its
// requesters, and for a request made on someone's behalf the person who
// asked must still be allowed to ask for them (a manager who is no longer
// the beneficiary's manager, say).
func (s *Service) mayStillRequest(ctx context.Context, r *Request, role *Role) (bool, error) {
	if r.BreakGlass {
		return s.rb.MayBreakGlass(ctx, s.cfg.Directory, r.Requester, role)
	}
	ok, err := s.rb.MayRequest(ctx, s.cfg.Directory, r.Requester, role)
	if err != nil || !ok || len(askerOf(r)) == 0 {
		return ok, err
	}
	sys := s.rb.Systems[r.System]
	if sys == nil {
		return false, nil
	}
	return s.rb.mayAskFor(ctx, s.cfg.Directory, sys, role, r.RequestedBy, r.Requester)
}

// askerList is asker as an exclusion list (nil for "").
func askerList(asker string) []string {
	if asker == "" {
		return nil
	}
	return []string{asker}
}
