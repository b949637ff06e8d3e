package access

import (
	"context"
	"fmt"
	"time"
	"unicode/utf8"
)

// CheckRequest is the policy part of Service.Check: it validates in against
// the runbook without creating anything — the system and role exist, the
// person may request it, the duration is within the maximum and the reason
// is present when required. It returns the system, role and effective
// duration, or an *Error saying what is allowed (ErrInvalid, ErrForbidden),
// or a wrapped directory error when a requester rule could not be resolved.
//
// It is a pure function of the runbook, dir and in; Service.Check and
// Explain (accessbot explain, accessbot test) both call it, so that what
// the tools say is what the bot does.
func (rb *Runbook) CheckRequest(ctx context.Context, dir Directory, in SubmitInput) (*System, *Role, time.Duration, error) {
	sys, role, d, err := rb.checkPolicy(ctx, dir, in, nil)
	if err != nil {
		return nil, nil, 0, err
	}
	if err := checkReason(sys, role, in.Reason); err != nil {
		return nil, nil, 0, err
	}
	return sys, role, d, nil
}

// checkPolicy is CheckRequest without the reason: lookup, requesters,
// duration. When rules is not nil, every requester rule's verdict is
// appended to it (all of them, not only up to the first match), for
// Explain. On a refusal the system and role are returned when known.
func (rb *Runbook) checkPolicy(ctx context.Context, dir Directory, in SubmitInput, rules *[]RuleMatch) (*System, *Role, time.Duration, error) {
	sys, role, err := rb.Lookup(in.System, in.Role)
	if err != nil {
		return sys, nil, 0, err
	}
	ok := false
	for _, p := range role.Requesters {
		if ok && rules == nil {
			break
		}
		m, why, err := rb.matchRequester(ctx, dir, in.Requester, p)
		if err != nil {
			return nil, nil, 0, fmt.Errorf("check requesters of %s %s: %w", sys.ID, role.ID, err)
		}
		if rules != nil {
			*rules = append(*rules, RuleMatch{Rule: p.String(), Matched: m, Why: why})
		}
		ok = ok || m
	}
	if !ok {
		var who []string
		for _, p := range role.Requesters {
			who = append(who, p.String())
		}
		return sys, role, 0, refuse(ErrForbidden, Error{Code: CodeNotEligible, System: sys.ID, Role: role.ID, Allowed: who})
	}
	d, err := role.EffectiveDuration(sys.ID, in.Duration)
	if err != nil {
		return sys, role, 0, err
	}
	return sys, role, d, nil
}

// checkReason refuses a reason that is not valid text, a missing one
// where the role requires it (judged after CleanText, so invisible
// characters alone are no reason) and an overlong one.
func checkReason(sys *System, role *Role, reason string) error {
	if !utf8.ValidString(reason) {
		return refuse(ErrInvalid, Error{Code: CodeReasonInvalid})
	}
	reason = CleanText(reason)
	if role.ReasonRequired && reason == "" {
		return refuse(ErrInvalid, Error{Code: CodeReasonRequired, System: sys.ID, Role: role.ID})
	}
	if n := utf8.RuneCountInString(reason); n > MaxReasonRunes {
		return refuse(ErrInvalid, Error{Code: CodeReasonTooLong, N: n, N2: MaxReasonRunes})
	}
	return nil
}
