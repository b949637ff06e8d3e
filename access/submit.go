package access

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// SubmitInput is a request as a person made it.
type SubmitInput struct {
	Requester string
	System    string
	Role      string
	Duration  time.Duration // 0: the role default
	Reason    string
	Extends   string // request ID of the active grant this extends
	// Ticket is an explicit ticket reference (the request form's ticket
	// field); "" means the reference is looked for in Reason. Only roles
	// with a ticket policy use it.
	Ticket string
	// BreakGlass asks for the role's break-glass access: granted at once
	// without approval (CheckBreakGlass says who may, for how long).
	BreakGlass bool
	// RequestedBy, when set and not Requester, is the person asking on
	// Requester's behalf (the role's on_behalf: says who may;
	// CheckOnBehalf). Requester is the beneficiary: the requesters rules,
	// the grant and the duplicate check are theirs.
	RequestedBy string
}

// CleanText removes what a person cannot see from user text: format
// characters (zero-width spaces and joiners, word joiners, byte-order
// marks, bidirectional controls), the other default-ignorable code points
// (Unicode's Other_Default_Ignorable_Code_Point: Hangul fillers U+115F,
// U+1160, U+3164, U+FFA0, the combining grapheme joiner U+034F) and
// control characters other than newline and tab; then it trims
// surrounding space. Text with nothing visible left (spaces, the Braille
// blank U+2800, variation selectors or lone combining marks only) is "".
// A reason is judged (required or not) and stored after cleaning, so
// that a reason made only of invisible characters counts as no reason.
func CleanText(s string) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "")
	}
	s = strings.Map(func(r rune) rune {
		switch {
		case r == '\n' || r == '\t':
			return r
		case unicode.Is(unicode.Cf, r), unicode.IsControl(r), unicode.Is(unicode.Other_Default_Ignorable_Code_Point, r):
			return -1
		}
		return r
	}, s)
	s = strings.TrimSpace(s)
	if !strings.ContainsFunc(s, visible) {
		return ""
	}
	return s
}

// visible reports whether r draws something on its own.
func visible(r rune) bool {
	return unicode.IsGraphic(r) && !unicode.IsSpace(r) && r != '\u2800' &&
		!unicode.Is(unicode.Variation_Selector, r) && !unicode.In(r, unicode.Mn, unicode.Me)
}

// Check validates in against the runbook without creating anything: the
// system and role exist, the person may request it, the duration is within
// the maximum, the reason is present when required, and the role's time
// windows allow a request now (a refusal says when the next one opens).
// It returns the system, role and effective duration, or an *Error
// saying what is allowed. The ticket and on-call checks need the reason
// and a lookup; Submit makes them.
func (s *Service) Check(ctx context.Context, in SubmitInput) (*System, *Role, time.Duration, error) {
	return s.check(ctx, in, s.clock.Now()) // admission.go; the policy part is shared with Explain
}

// Submit creates a request. It refuses, with an *Error and without creating
// anything, a request the runbook does not allow (Check), one for a system
// and role the person already holds or has pending (Error.Existing names
// that request) unless it is an extension of it, and one the role's
// admission policy refuses (Runbook.Admit: outside its time windows with
// outside_window: refuse; a missing, malformed, unknown or closed ticket;
// a ticket system that cannot be asked). Admit may call the role's
// lookup connectors (ticket, on-call), bounded by their own timeouts.
//
// A request the policy approves without a human (approval: auto, or the
// requester on call) is created already approved, in the same single
// write, with the reason in its audit note, and granted by the workers;
// other requests are created pending, approvers of every step resolved
// now and their messages in the outbox. The ticket and what the requester
// must be told about the admission (Request.Notes) are stored with it.
func (s *Service) Submit(ctx context.Context, in SubmitInput) (*Request, error) {
	now := s.clock.Now()
	for _, p := range []string{in.Requester, in.RequestedBy} {
		if v, gone := s.gone.Load(p); gone && p != "" {
			// Invariant 12: an offboarded person is given nothing new.
			return nil, refuse(ErrForbidden, Error{Code: CodeOffboarded, Value: v.(offboarded).why})
		}
	}
	sys, role, d, err := s.check(ctx, in, now)
	if err != nil {
		return nil, policyOrDirectory(err)
	}
	if in.BreakGlass && in.Extends != "" {
		// Extend never asks for it: an extension is an ordinary request.
		return nil, refuse(ErrForbidden, Error{Code: CodeBreakGlassNotAllowed, System: sys.ID, Role: role.ID, Request: canonicalID(in.Extends), Value: "extend"})
	}
	person := in.Requester
	ent := Entitlement{Connector: sys.Connector, Params: cloneMap(role.Grant), Person: person}
	// One submission per person at a time, so that the duplicate check
	// below and the create cannot interleave with a double submit.
	unlock := s.lockEntitlement("submit\x00" + person)
	defer unlock()

	existing, err := s.store.List(ctx, Filter{Requester: person, System: sys.ID, States: []State{StatePending, StateApproved, StateActive}})
	if err != nil {
		return nil, fmt.Errorf("look for existing requests: %w", err)
	}
	if in.Extends != "" {
		base, err := s.store.Get(ctx, in.Extends)
		if err != nil {
			return nil, err
		}
		if base.Requester != person || base.State != StateActive || base.System != sys.ID || base.Role != role.ID {
			return nil, refuse(ErrConflict, Error{Code: CodeNotExtendable, Request: base.ID, State: base.State})
		}
		in.Extends = base.ID
	}
	for _, e := range existing {
		if e.Role != role.ID || e.ID == in.Extends {
			continue
		}
		if in.Extends != "" && e.Extends == in.Extends && e.State == StatePending {
			return nil, refuse(ErrConflict, Error{Code: CodeExtensionPending, Request: e.ID, Value: in.Extends})
		}
		if in.Extends == "" {
			return nil, refuse(ErrConflict, Error{Code: CodeDuplicate, Request: e.ID, System: sys.ID, Role: role.ID, State: e.State, At: e.ExpiresAt})
		}
	}

	r := &Request{
		Requester: person, RequestedBy: onBehalf(in), System: sys.ID, Role: role.ID, Duration: d,
		Reason: CleanText(in.Reason), Extends: in.Extends, Entitlement: ent, CreatedAt: now.UTC(),
	}
	if in.BreakGlass {
		tells, err := s.breakGlass(ctx, sys, role, r, in, now)
		if err != nil {
			return nil, err
		}
		if r, err = s.create(ctx, r, tells); err != nil {
			return nil, err
		}
		s.log.WarnContext(ctx, "break glass: granted without approval", LogRequest, r.ID, "system", r.System, "role", r.Role,
			"requester", r.Requester, "duration", r.Duration.String())
		return r, nil
	}
	adm, err := s.admit(ctx, sys, role, in, now)
	if err != nil {
		return nil, err
	}
	r.Ticket, r.Notes = adm.Ticket, sentences(adm.Notes)
	if !adm.Auto {
		// adm.Steps are the role's own Approval.Steps (Admit), which
		// ResolveStep indexes.
		for i := range adm.Steps {
			// Neither the beneficiary nor the person who asked for them
			// approves it.
			st, err := s.rb.ResolveStepExcluding(ctx, s.cfg.Directory, sys, role, i, person, askerOf(r))
			if err != nil {
				return nil, policyOrDirectory(err)
			}
			r.Steps = append(r.Steps, st)
		}
		r.TimeoutAt = now.Add(role.ApprovalTimeout).UTC()
		if role.ReminderAfter > 0 && role.ReminderAfter < role.ApprovalTimeout {
			r.RemindAt = now.Add(role.ReminderAfter).UTC()
		}
	}
	if err := Apply(r, Transition{Event: EventRequested, Actor: r.asker(), At: now, Note: requestNote(r)}); err != nil {
		return nil, err
	}
	tells := []tell{{kind: NoticeSubmitted}}
	if adm.Auto {
		r.Auto, r.AutoBy = true, adm.AutoBy
		if err := Apply(r, Transition{Event: EventApproved, Actor: ActorAuto, At: now, Note: adm.AutoBy}); err != nil {
			return nil, err
		}
		r.DecidedAt = now.UTC()
		r.NextAttemptAt = now.UTC() // the grant is due now: a worker applies it
	} else {
		tells = append(tells, tell{kind: NoticeApprovalNeeded})
	}
	r, err = s.create(ctx, r, tells)
	if err != nil {
		return nil, err
	}
	s.log.InfoContext(ctx, "request submitted", LogRequest, r.ID, "system", r.System, "role", r.Role, "auto", r.Auto, "auto_by", r.AutoBy,
		"requested_by", r.RequestedBy)
	return r, nil
}

// Extend asks for more time on an active grant: a new request for the same
// system and role, admitted and approved per the role's policy (at once
// for approval: auto), whose grant overlaps the old one (invariant 5). It
// keeps the grant's ticket unless the new reason names another; the
// ticket is checked again.
func (s *Service) Extend(ctx context.Context, id, actor string, d time.Duration, reason string) (*Request, error) {
	r, err := s.getFor(ctx, id, actor)
	if err != nil {
		return nil, err
	}
	if r.Requester != actor {
		return nil, refuse(ErrForbidden, Error{Code: CodeOnlyRequester, Request: r.ID, Value: "extend"})
	}
	if r.State != StateActive {
		return nil, refuse(ErrConflict, Error{Code: CodeNotExtendable, Request: r.ID, State: r.State})
	}
	if CleanText(reason) == "" {
		reason = r.Reason
	}
	return s.Submit(ctx, SubmitInput{Requester: actor, System: r.System, Role: r.Role, Duration: d, Reason: reason, Extends: r.ID,
		Ticket: extensionTicket(s.role(r), r, reason)})
}

// getFor reads request id for actor: a request that does not exist, and
// one actor is not party to, give the same "not found or not yours"
// refusal (CodeNotFound), so that refusals reveal nothing to outsiders.
func (s *Service) getFor(ctx context.Context, id, actor string) (*Request, error) {
	r, err := s.store.Get(ctx, id)
	if err != nil {
		if IsNotFound(err) {
			return nil, notFound(canonicalID(id))
		}
		return nil, err
	}
	if !r.IsParty(s.rb, actor) {
		return nil, notFound(r.ID)
	}
	return r, nil
}

// IsNotFound reports whether err means "no such request".
func IsNotFound(err error) bool { return errors.Is(err, ErrNotFound) }

func canonicalID(id string) string {
	if seq, err := ParseID(id); err == nil {
		return FormatID(seq)
	}
	return id
}

// policyOrDirectory passes a refusal through and turns any other error of
// a policy evaluation (Slack or the identity provider could not be asked)
// into the CodeDirectory refusal: the person is told to try again, and
// nothing was created.
func policyOrDirectory(err error) error {
	var e *Error
	if errors.As(err, &e) {
		return err
	}
	return directoryDown("", err)
}
