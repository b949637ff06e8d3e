package access

import (
	"context"
	"errors"
	"strings"
	"time"
)

// Admission in the lifecycle: Submit runs the runbook's admission policy
// (Runbook.Admit: time windows, the ticket requirement, automatic and
// on-call approval) on every new request before anything is created.
// Check runs the part of it that needs neither the reason nor a lookup
// (the time windows), so that the Slack adapter does not open a form for
// a request that would be refused anyway.

// check is Service.Check at now: the runbook's CheckRequest, then the
// role's time windows (a refusal outside them, with outside_window:
// refuse); for a break-glass request CheckBreakGlass instead (no
// windows).
func (s *Service) check(ctx context.Context, in SubmitInput, now time.Time) (*System, *Role, time.Duration, error) {
	asker := onBehalf(in)
	if in.BreakGlass {
		if asker != "" {
			return nil, nil, 0, refuse(ErrForbidden, Error{Code: CodeBreakGlassNotAllowed, System: in.System, Role: in.Role, Value: "on_behalf"})
		}
		return s.rb.CheckBreakGlass(ctx, s.cfg.Directory, in)
	}
	if asker != "" {
		if err := s.beneficiaryKnown(ctx, in.Requester); err != nil {
			return nil, nil, 0, err
		}
	}
	sys, role, d, err := s.rb.CheckRequest(ctx, s.cfg.Directory, in)
	if asker != "" {
		err = forBeneficiary(err, in.Requester)
	}
	if err != nil {
		return nil, nil, 0, err
	}
	if asker != "" {
		if err := s.rb.CheckOnBehalf(ctx, s.cfg.Directory, sys, role, asker, in.Requester); err != nil {
			return nil, nil, 0, err
		}
	}
	if err := s.rb.WindowStatus(role, now).Refusal(sys, role); err != nil {
		return nil, nil, 0, err
	}
	return sys, role, d, nil
}

// admit runs Runbook.Admit for a request of in.Requester at now, with the
// service's lookup connectors. A refusal is returned as Admit gives it
// (an *Error for the person); a failed lookup behind it, and an on-call
// check that could not be made, are logged with the lookup's detail,
// which the person never sees.
func (s *Service) admit(ctx context.Context, sys *System, role *Role, in SubmitInput, now time.Time) (Admission, error) {
	who := Person{SlackID: in.Requester}
	if role.Approval.AutoIfOnCall != nil {
		// The on-call schedule is matched by email; without one (the
		// directory failing) the check fails closed and says so.
		if p, err := s.person(ctx, in.Requester); err != nil {
			s.log.WarnContext(ctx, "requester's profile unavailable for the on-call check; the approvers are asked", "requester", in.Requester, LogError, err)
		} else {
			who = p
		}
	}
	adm, err := s.rb.Admit(ctx, s.src, sys, role, AdmitRequest{Requester: who, Reason: in.Reason, Ticket: in.Ticket, At: now})
	if err != nil {
		var le *LookupError
		if errors.As(err, &le) {
			s.log.WarnContext(ctx, "ticket check failed; the request was refused", "system", sys.ID, "role", role.ID,
				"requester", in.Requester, LogError, le)
		}
		return Admission{}, err
	}
	if adm.OnCall != nil && adm.OnCall.Err != nil {
		s.log.WarnContext(ctx, "on-call check failed; the approvers are asked", "system", sys.ID, "role", role.ID,
			"requester", in.Requester, "schedule", adm.OnCall.Rule.String(), LogError, adm.OnCall.Err)
	}
	return adm, nil
}

// sentences returns the non-empty notes, trimmed; nil when there are none.
func sentences(notes []string) []string {
	var out []string
	for _, n := range notes {
		if n = strings.TrimSpace(n); n != "" {
			out = append(out, n)
		}
	}
	return out
}

// requestNote is the audit note of a request's first transition: what
// it extends and its ticket, so that the audit log alone tells which
// ticket justified the access (TicketFromNote reads it back).
func requestNote(r *Request) string {
	var parts []string
	if r.RequestedBy != "" {
		parts = append(parts, "on behalf of "+r.Requester+", asked by "+r.RequestedBy)
	}
	if r.Extends != "" {
		parts = append(parts, "extends "+r.Extends)
	}
	if r.Ticket != nil && r.Ticket.Ref != "" {
		parts = append(parts, ticketNotePrefix+r.Ticket.Ref)
	}
	return strings.Join(parts, "; ")
}

// ticketNotePrefix introduces a ticket reference in an audit note.
const ticketNotePrefix = "ticket: "

// TicketFromNote returns the ticket reference recorded in the audit note
// of a request's first transition (requestNote), "" if there is none: for
// exports made from an audit file, which holds no requests.
func TicketFromNote(note string) string {
	for _, part := range strings.Split(note, "; ") {
		if ref, ok := strings.CutPrefix(part, ticketNotePrefix); ok {
			return strings.TrimSpace(ref)
		}
	}
	return ""
}

// extensionTicket is the explicit ticket reference of an extension of
// base: the one the new reason names, else the base grant's own (a reason
// such as "need two more hours" keeps the ticket that justified the
// grant). The policy checks it again: a ticket closed meanwhile refuses
// the extension.
func extensionTicket(role *Role, base *Request, reason string) string {
	if role == nil || role.Ticket == nil || base.Ticket == nil {
		return ""
	}
	for _, w := range strings.FieldsFunc(reason, isRefSeparator) {
		if role.Ticket.Matches(strings.TrimRight(w, ".:!?")) {
			return ""
		}
	}
	return base.Ticket.Ref
}
