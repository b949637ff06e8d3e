package access

import (
	"context"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"
)

// Break-glass (issue #16): a role may let some people take it at once,
// without approval, in an emergency. The lifecycle records who broke the
// glass and why (EventBreakGlass, in the audit log), grants it like any
// approved request, and tells the system owners (a review with "Revoke
// now"), every approver of the role and the audit channel
// (NoticeBreakGlass). A break-glass grant is capped at the policy's
// MaxDuration and is never extended by breaking the glass again: an
// extension (Service.Extend) is an ordinary request under the role's own
// requesters and approval.

// BreakGlassPolicy is a role's `break_glass: { max_duration, requesters }`.
type BreakGlassPolicy struct {
	// MaxDuration caps a break-glass grant; longer is refused, never cut.
	MaxDuration time.Duration
	// Requesters may break the glass on the role (the same principals as
	// a role's requesters: team:NAME, user:UID, usergroup:SID,
	// everyone). They need not be among the role's own requesters.
	Requesters []Principal
	// Origin is the key path that set MaxDuration, for explain
	// ("systems.crm.roles.admin.break_glass.max_duration"); the loader
	// fills it in.
	Origin string
}

// CheckBreakGlass validates a break-glass request (in.BreakGlass) against
// the runbook without creating anything: the role has break_glass, the
// person is one of its requesters, the duration is within its
// MaxDuration (0: the role's default, capped there) and a reason is
// given (always required). Time windows do not apply: break-glass is for
// when the usual rules cannot wait. It returns the system, role and
// effective duration, or an *Error: CodeBreakGlassNotAllowed
// (ErrForbidden), CodeBreakGlassTooLong, CodeBreakGlassReason or the
// usual reason and duration codes (ErrInvalid); a directory failure is
// returned wrapped.
func (rb *Runbook) CheckBreakGlass(ctx context.Context, dir Directory, in SubmitInput) (*System, *Role, time.Duration, error) {
	sys, role, d, err := rb.checkBreakGlass(ctx, dir, in, nil)
	if err != nil {
		return nil, nil, 0, err
	}
	if err := checkBreakGlassReason(sys, role, in.Reason); err != nil {
		return nil, nil, 0, err
	}
	return sys, role, d, nil
}

// checkBreakGlass is CheckBreakGlass without the reason; rules, when not
// nil, receives every break-glass requester rule's verdict (Explain).
func (rb *Runbook) checkBreakGlass(ctx context.Context, dir Directory, in SubmitInput, rules *[]RuleMatch) (*System, *Role, time.Duration, error) {
	sys, role, err := rb.Lookup(in.System, in.Role)
	if err != nil {
		return nil, nil, 0, err
	}
	bg := role.BreakGlass
	if bg == nil {
		return sys, role, 0, refuse(ErrForbidden, Error{Code: CodeBreakGlassNotAllowed, System: sys.ID, Role: role.ID})
	}
	ok := false
	for _, p := range bg.Requesters {
		if ok && rules == nil {
			break
		}
		m, why, err := rb.matchRequester(ctx, dir, in.Requester, p)
		if err != nil {
			return nil, nil, 0, fmt.Errorf("check break-glass requesters of %s %s: %w", sys.ID, role.ID, err)
		}
		if rules != nil {
			*rules = append(*rules, RuleMatch{Rule: p.String(), Matched: m, Why: why})
		}
		ok = ok || m
	}
	if !ok {
		var who []string
		for _, p := range bg.Requesters {
			who = append(who, p.String())
		}
		return sys, role, 0, refuse(ErrForbidden, Error{Code: CodeBreakGlassNotAllowed, System: sys.ID, Role: role.ID, Allowed: who})
	}
	d := in.Duration
	switch {
	case d < 0:
		return sys, role, 0, refuse(ErrInvalid, Error{Code: CodeBadDuration, System: sys.ID, Role: role.ID, Duration: d})
	case d == 0:
		d = min(role.DefaultDuration, bg.MaxDuration)
	case d > bg.MaxDuration:
		return sys, role, 0, refuse(ErrInvalid, Error{Code: CodeBreakGlassTooLong, System: sys.ID, Role: role.ID, Duration: d, Limit: bg.MaxDuration})
	}
	return sys, role, d, nil
}

// checkBreakGlassReason refuses a break-glass request without a reason
// (whatever the role's reason setting), an overlong one and one that is
// not valid text.
func checkBreakGlassReason(sys *System, role *Role, reason string) error {
	if !utf8.ValidString(reason) {
		return refuse(ErrInvalid, Error{Code: CodeReasonInvalid})
	}
	reason = CleanText(reason)
	if reason == "" {
		return refuse(ErrInvalid, Error{Code: CodeBreakGlassReason, System: sys.ID, Role: role.ID})
	}
	if n := utf8.RuneCountInString(reason); n > MaxReasonRunes {
		return refuse(ErrInvalid, Error{Code: CodeReasonTooLong, N: n, N2: MaxReasonRunes})
	}
	return nil
}

// breakGlass fills in the new break-glass request r (Submit, after the
// duplicate check) and moves it through the table: requested, then
// break_glass (approved, the grant due now), both by the requester. The
// role's ticket policy still applies, except that a ticket system that
// cannot be asked does not stop an emergency: the reference is kept
// unverified, the requester is told, and the owners see it on the review.
// It returns the notices to plan.
func (s *Service) breakGlass(ctx context.Context, sys *System, role *Role, r *Request, in SubmitInput, now time.Time) ([]tell, error) {
	if role.Ticket != nil {
		t, err := CheckTicket(ctx, s.src.Tickets[role.Ticket.Verify], sys, role, in.Ticket, in.Reason)
		switch {
		case errors.Is(err, ErrUnavailable):
			ref, ferr := role.Ticket.FindRef(sys, role, in.Ticket, in.Reason)
			if ferr != nil {
				return nil, ferr
			}
			s.log.WarnContext(ctx, "break-glass ticket could not be checked; going ahead unverified", "system", sys.ID, "role", role.ID,
				"requester", r.Requester, LogError, err)
			t = Ticket{Ref: ref}
			r.Notes = append(r.Notes, fmt.Sprintf("Ticket %s could not be checked (%s); break-glass went ahead with it unverified.", ref, LookupReason(err)))
		case err != nil:
			return nil, err
		}
		r.Ticket = &t
	}
	r.BreakGlass = true
	r.Broadcast = s.breakGlassAudience(ctx, sys, role, r.Requester)
	if err := Apply(r, Transition{Event: EventRequested, Actor: r.Requester, At: now, Note: requestNote(r)}); err != nil {
		return nil, err
	}
	note := fmt.Sprintf("break glass: granted without approval (at most %s)", FormatDuration(role.BreakGlass.MaxDuration))
	if err := Apply(r, Transition{Event: EventBreakGlass, Actor: r.Requester, At: now, Note: note}); err != nil {
		return nil, err
	}
	r.DecidedAt = now.UTC()
	r.NextAttemptAt = now.UTC() // the grant is due now: a worker applies it
	return []tell{{kind: NoticeSubmitted}, {kind: NoticeBreakGlass}}, nil
}

// breakGlassAudience is every approver the role's steps resolve to for
// requester (never the requester), each once, in step order. A step that
// cannot be resolved (the directory down, nobody to ask) is logged and
// skipped: telling fewer people must not stop an emergency, and the
// owners and the audit channel are told in any case.
func (s *Service) breakGlassAudience(ctx context.Context, sys *System, role *Role, requester string) []string {
	var out []string
	for i := range role.Approval.Steps {
		st, err := s.rb.ResolveStep(ctx, s.cfg.Directory, sys, role, i, requester)
		if err != nil {
			s.log.WarnContext(ctx, "break-glass: approvers of a step not resolved; they are not told", "system", sys.ID, "role", role.ID,
				"step", i+1, LogError, err)
			continue
		}
		out = appendPeople(out, st.Approvers, requester)
	}
	return out
}

// breakGlassAvailability explains whether requester may break the glass
// on role (nil when it has no break_glass), with the audience a
// break-glass grant would be told. Only a directory failure is an error.
func (rb *Runbook) breakGlassAvailability(ctx context.Context, dir Directory, sys *System, role *Role, requester string) (*BreakGlassExplanation, error) {
	if role.BreakGlass == nil {
		return nil, nil
	}
	bg := &BreakGlassExplanation{MaxDuration: role.BreakGlass.MaxDuration, Requesters: []RuleMatch{}}
	_, _, _, err := rb.checkBreakGlass(ctx, dir, SubmitInput{Requester: requester, System: sys.ID, Role: role.ID}, &bg.Requesters)
	if err != nil && !isPolicyError(err) {
		return nil, err
	}
	bg.Allowed = err == nil
	for _, r := range bg.Requesters {
		if r.Matched {
			bg.MatchedRule = r.Rule
			break
		}
	}
	for i := range role.Approval.Steps {
		st, err := rb.ResolveStep(ctx, dir, sys, role, i, requester)
		if err != nil && !isPolicyError(err) {
			return nil, err
		}
		bg.Notify = appendPeople(bg.Notify, st.Approvers, requester)
	}
	return bg, nil
}

// explainBreakGlass is Explain for a break-glass request: the verdict is
// CheckBreakGlass's (reason checked only when given), the durations are
// the break-glass ones, and nobody is asked to approve.
func (rb *Runbook) explainBreakGlass(ctx context.Context, dir Directory, in ExplainInput) (*Explanation, error) {
	ex := &Explanation{Requester: in.Requester, Now: in.Now, ReasonRequired: true, ReasonFrom: "break-glass (always required)"}
	ex.Duration.Requested = in.Duration
	sub := SubmitInput{Requester: in.Requester, System: in.System, Role: in.Role, Duration: in.Duration, BreakGlass: true}
	sys, role, d, refusal := rb.checkBreakGlass(ctx, dir, sub, nil)
	if refusal != nil && !isPolicyError(refusal) {
		return nil, refusal
	}
	if sys != nil {
		ex.System = sys.ID
	}
	if role == nil {
		ex.setRefusal(refusal)
		return ex, nil
	}
	ex.Role = role.ID
	bg, err := rb.breakGlassAvailability(ctx, dir, sys, role, in.Requester)
	if err != nil {
		return nil, err
	}
	if bg == nil {
		bg = &BreakGlassExplanation{Requesters: []RuleMatch{}}
	}
	bg.Requested = true
	ex.BreakGlass = bg
	ex.Requesters, ex.MatchedRule = bg.Requesters, bg.MatchedRule
	ex.Duration.Effective = d
	ex.Duration.Default, ex.Duration.DefaultFrom = min(role.DefaultDuration, bg.MaxDuration), role.Origin.DefaultDuration
	ex.Duration.Max = bg.MaxDuration
	if role.BreakGlass != nil {
		ex.Duration.MaxFrom = role.BreakGlass.Origin
	}
	if refusal == nil && in.Reason != "" {
		refusal = checkBreakGlassReason(sys, role, in.Reason)
	}
	ex.setRefusal(refusal)
	return ex, nil
}

// MayBreakGlass reports whether user may break the glass on role (one of
// its break-glass requesters); false for a role without break_glass. The
// request form offers its break-glass box on that answer; Submit checks
// again (CheckBreakGlass).
func (rb *Runbook) MayBreakGlass(ctx context.Context, dir Directory, user string, role *Role) (bool, error) {
	if role == nil || role.BreakGlass == nil {
		return false, nil
	}
	for _, p := range role.BreakGlass.Requesters {
		ok, _, err := rb.matchRequester(ctx, dir, user, p)
		if err != nil || ok {
			return ok, err
		}
	}
	return false, nil
}
