package access

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"regexp/syntax"
	"strings"
	"unicode"
)

// Ticket is a ticket as its system reports it (Jira issue, Zendesk
// ticket).
type Ticket struct {
	Ref    string `json:"ref"`              // as the system knows it: "SUP-123", "4411"
	Title  string `json:"title,omitempty"`  // summary or subject; untrusted text, escape before showing
	URL    string `json:"url,omitempty"`    // where a person opens it; "" when unknown
	Closed bool   `json:"closed,omitempty"` // done, solved or closed: it cannot justify new access
	Status string `json:"status,omitempty"` // the system's own status name, for display
}

// TicketSource looks tickets up (the `ticket.verify` connector of a role).
//
// Ticket returns the ticket named by ref, a reference that matched the
// role's pattern (the source extracts what it needs from it, such as the
// digits of "ZD-4411"). A ticket that does not exist, or that the
// source's credentials may not see, is a *LookupError of kind
// LookupNotFound; other failures are *LookupError too. Ticket must honour
// ctx, be safe for concurrent use and change nothing.
type TicketSource interface {
	Ticket(ctx context.Context, ref string) (Ticket, error)
}

// TicketPolicy is a role's `ticket: { pattern, verify }`: a request must
// carry a reference matching Pattern, and when Verify names a connector
// (of type jira or zendesk_ticket) the ticket must exist there and not be
// closed. Build it with NewTicketPolicy.
type TicketPolicy struct {
	Pattern string // as written in the runbook
	Verify  string // connector instance name; "" = the pattern only
	whole   *regexp.Regexp
}

// NewTicketPolicy compiles pattern (Go RE2 syntax). A reference must
// match it as a whole: "SUP-[0-9]+" and "^SUP-[0-9]+$" mean the same. The
// error names the pattern and what is wrong with it.
func NewTicketPolicy(pattern, verify string) (*TicketPolicy, error) {
	if strings.TrimSpace(pattern) == "" {
		return nil, errors.New("empty pattern; write a regular expression a ticket reference matches, like ^(SUP|INC)-[0-9]+$")
	}
	re, err := regexp.Compile(`^(?:` + pattern + `)$`)
	if err != nil {
		var se *syntax.Error
		if errors.As(err, &se) {
			return nil, fmt.Errorf("%q is not a regular expression: %s: %q", pattern, se.Code, se.Expr)
		}
		return nil, fmt.Errorf("%q is not a regular expression: %v", pattern, err)
	}
	if re.MatchString("") {
		return nil, fmt.Errorf("%q matches an empty reference, so it requires nothing; make it match only real ticket references", pattern)
	}
	return &TicketPolicy{Pattern: pattern, Verify: verify, whole: re}, nil
}

// Matches reports whether ref, trimmed, is a whole reference the pattern
// accepts.
func (p *TicketPolicy) Matches(ref string) bool {
	return p != nil && p.whole != nil && p.whole.MatchString(strings.TrimSpace(ref))
}

// FindRef returns the ticket reference of a request: explicit (a ticket
// field, when the surface has one), which must match the pattern as a
// whole, else the first word of reason that does. Words are split at
// white space and at , ; ( ) [ ] { } < > | / " ' ` and lose trailing
// . : ! ? so that "INC-42." and links such as
// https://acme.atlassian.net/browse/INC-42 are found. A nil policy
// requires nothing and returns "". The errors are *Error of kind
// ErrInvalid naming the pattern, for the requester.
func (p *TicketPolicy) FindRef(sys *System, r *Role, explicit, reason string) (string, error) {
	if p == nil {
		return "", nil
	}
	if e := strings.TrimSpace(explicit); e != "" {
		if p.Matches(e) {
			return e, nil
		}
		return "", refusef(ErrInvalid, CodeTicket, "%q is not a ticket reference %s %s accepts: it must match %s.", e, sys.ID, r.ID, "`"+p.Pattern+"`")
	}
	for _, w := range strings.FieldsFunc(reason, isRefSeparator) {
		w = strings.TrimRight(w, ".:!?")
		if w != "" && p.whole.MatchString(w) {
			return w, nil
		}
	}
	return "", refusef(ErrInvalid, CodeTicket, "%s %s needs a ticket reference matching %s: put it in the reason, like \"<ticket> customer cannot log in\".", sys.ID, r.ID, "`"+p.Pattern+"`")
}

func isRefSeparator(r rune) bool {
	return unicode.IsSpace(r) || strings.ContainsRune(",;()[]{}<>|/\"'`", r)
}

// CheckTicket returns the ticket of a request for role r: its reference
// (FindRef) and, when the policy names a verifying connector, the ticket
// as src reports it. It returns the zero Ticket when r needs none. Errors
// are *Error for the requester:
//
//   - no or a malformed reference, a ticket the source does not know:
//     ErrInvalid, naming the pattern or the reference;
//   - a closed ticket: ErrForbidden, naming its status;
//   - src nil or failing otherwise: ErrUnavailable (nothing the requester
//     did wrong; try again later), saying why in words. A request is
//     never let through unverified: the check fails closed.
//
// The *LookupError, when there is one, stays in the chain (errors.As) for
// the log.
func CheckTicket(ctx context.Context, src TicketSource, sys *System, r *Role, explicit, reason string) (Ticket, error) {
	p := r.Ticket
	ref, err := p.FindRef(sys, r, explicit, reason)
	if err != nil || p == nil {
		return Ticket{}, err
	}
	if p.Verify == "" {
		return Ticket{Ref: ref}, nil
	}
	if src == nil {
		return Ticket{}, &Error{Kind: ErrUnavailable, Code: CodeUnavailable, Message: fmt.Sprintf("%s %s needs ticket %s checked through %s, which is not available. Try again later, or ask an admin.", sys.ID, r.ID, ref, p.Verify)}
	}
	t, err := src.Ticket(ctx, ref)
	if err != nil {
		var le *LookupError
		errors.As(err, &le)
		switch {
		case le != nil && le.Kind == LookupNotFound:
			return Ticket{}, userLookupErr(&Error{Kind: ErrInvalid, Code: CodeTicket, Message: fmt.Sprintf("Ticket %s was not found: %s. Check the reference.", ref, le.Reason())}, err)
		case le != nil && le.Kind == LookupInvalid:
			return Ticket{}, userLookupErr(&Error{Kind: ErrInvalid, Code: CodeTicket, Message: fmt.Sprintf("Ticket %s cannot be checked: %s.", ref, le.Reason())}, err)
		case le != nil && le.Kind == LookupRejected:
			return Ticket{}, userLookupErr(&Error{Kind: ErrUnavailable, Code: CodeUnavailable, Message: fmt.Sprintf("accessbot could not check ticket %s: %s. Ask an admin to fix the %s connector.", ref, le.Reason(), p.Verify)}, err)
		}
		return Ticket{}, userLookupErr(&Error{Kind: ErrUnavailable, Code: CodeUnavailable, Message: fmt.Sprintf("accessbot could not check ticket %s: %s. Try again in a few minutes.", ref, LookupReason(err))}, err)
	}
	if t.Ref == "" {
		t.Ref = ref
	}
	if t.Closed {
		status := t.Status
		if status == "" {
			status = "closed"
		}
		return Ticket{}, refusef(ErrForbidden, CodeTicket, "Ticket %s is %s; access needs an open ticket.", t.Ref, status)
	}
	return t, nil
}

// lookupUserError is an *Error for the requester that also carries the
// lookup failure behind it, for the log: errors.As finds both the *Error
// (UserMessage) and the *LookupError, and errors.Is the *Error's kind.
type lookupUserError struct {
	user  *Error
	cause error
}

func userLookupErr(user *Error, cause error) error { return &lookupUserError{user: user, cause: cause} }

func (e *lookupUserError) Error() string   { return e.user.Message }
func (e *lookupUserError) Unwrap() []error { return []error{e.user, e.cause} }
