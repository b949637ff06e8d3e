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
}

// CleanText removes what a person cannot see from user text: format
// characters (zero-width spaces and joiners, word joiners, byte-order
// marks, bidirectional controls) and control characters other than
// newline and tab; then it trims surrounding space. A reason is judged
// (required or not) and stored after cleaning, so that a reason made only
// of invisible characters counts as no reason.
func CleanText(s string) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "")
	}
	s = strings.Map(func(r rune) rune {
		switch {
		case r == '\n' || r == '\t':
			return r
		case unicode.Is(unicode.Cf, r), unicode.IsControl(r):
			return -1
		}
		return r
	}, s)
	return strings.TrimSpace(s)
}

// Check validates in against the runbook without creating anything: the
// system and role exist, the person may request it, the duration is within
// the maximum and the reason is present when required. It returns the
// system, role and effective duration, or an *Error saying what is allowed.
func (s *Service) Check(ctx context.Context, in SubmitInput) (*System, *Role, time.Duration, error) {
	return s.rb.CheckRequest(ctx, s.cfg.Directory, in) // check.go; shared with Explain
}

// Submit creates a request. It refuses, with an *Error and without creating
// anything, a request the runbook does not allow, and one for a system and
// role the person already holds or has pending (Error.Existing names that
// request) unless it is an extension of it. Approvers of every step are
// resolved now. A role with approval: auto is created already approved, in
// the same single write, and granted by the workers; other requests are
// created pending with their approvers' messages in the outbox.
func (s *Service) Submit(ctx context.Context, in SubmitInput) (*Request, error) {
	sys, role, d, err := s.Check(ctx, in)
	if err != nil {
		return nil, policyOrDirectory(err)
	}
	now := s.clock.Now()
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
		Requester: person, System: sys.ID, Role: role.ID, Duration: d,
		Reason: CleanText(in.Reason), Extends: in.Extends, Entitlement: ent, CreatedAt: now.UTC(),
	}
	if !role.Approval.Auto {
		for i := range role.Approval.Steps {
			st, err := s.rb.ResolveStep(ctx, s.cfg.Directory, sys, role, i, person)
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
	if err := Apply(r, Transition{Event: EventRequested, Actor: person, At: now, Note: noteExtends(in.Extends)}); err != nil {
		return nil, err
	}
	tells := []tell{{kind: NoticeSubmitted}}
	if role.Approval.Auto {
		r.Auto = true
		if err := Apply(r, Transition{Event: EventApproved, Actor: ActorAuto, At: now, Note: "approval: auto"}); err != nil {
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
	s.log.InfoContext(ctx, "request submitted", LogRequest, r.ID, "system", r.System, "role", r.Role, "auto", r.Auto)
	return r, nil
}

func noteExtends(id string) string {
	if id == "" {
		return ""
	}
	return "extends " + id
}

// Extend asks for more time on an active grant: a new request for the same
// system and role, approved per the role's policy (at once for approval:
// auto), whose grant overlaps the old one (invariant 5).
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
	return s.Submit(ctx, SubmitInput{Requester: actor, System: r.System, Role: r.Role, Duration: d, Reason: reason, Extends: r.ID})
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
