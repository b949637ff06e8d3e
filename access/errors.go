package access

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Sentinel kinds. Errors returned by this package wrap exactly one of them,
// so that each surface (Slack, CLI) can decide how to answer in one place.
var (
	// ErrInvalid: the input is wrong (unknown system, bad duration, missing reason).
	ErrInvalid = errors.New("invalid")
	// ErrNotFound: no such request, or not one the person is party to.
	ErrNotFound = errors.New("not found")
	// ErrForbidden: the person may not do this (not an approver, not eligible).
	ErrForbidden = errors.New("forbidden")
	// ErrConflict: the request is not in a state that allows this (already
	// decided, already holds access). Someone else's transition won.
	ErrConflict = errors.New("conflict")
	// ErrBusy: accessbot is at capacity; nothing was done, try again shortly.
	ErrBusy = errors.New("busy")
)

// Code says which refusal an *Error is. Surfaces switch on it to word the
// answer (the Slack adapter in bot/errors.go); the data the wording needs
// is in the Error's fields, never pre-rendered markup.
type Code string

// The refusals of the lifecycle. The fields each one sets are listed; a
// surface must not rely on others.
const (
	CodeUnknownSystem    Code = "unknown_system"     // Value; Allowed = system IDs
	CodeUnknownRole      Code = "unknown_role"       // System, Value; Allowed = role IDs
	CodeNotEligible      Code = "not_eligible"       // System, Role; Allowed = requester principals
	CodeBadDuration      Code = "bad_duration"       // Duration (not positive)
	CodeDurationTooLong  Code = "duration_too_long"  // System, Role, Duration, Limit
	CodeReasonRequired   Code = "reason_required"    // System, Role
	CodeReasonTooLong    Code = "reason_too_long"    // N (runes), Limit (as a count in N2)
	CodeReasonInvalid    Code = "reason_invalid"     // (not valid text)
	CodeDuplicate        Code = "duplicate"          // Request (the existing one), System, Role, State, At (expiry when active)
	CodeExtensionPending Code = "extension_pending"  // Request (the pending extension), Value (the grant it extends)
	CodeNotExtendable    Code = "not_extendable"     // Request, State
	CodeNotFound         Code = "not_found"          // Request: no such request, or the person is not party to it
	CodeOwnRequest       Code = "own_request"        // Request
	CodeNotApprover      Code = "not_approver"       // Request, Step (1-based), People (who it waits for)
	CodeNoLongerApprover Code = "no_longer_approver" // Request, Step, People (who it waits for now)
	CodeAlreadyApproved  Code = "already_approved"   // Request, Step, N (approvals still needed)
	CodeAlreadyDecided   Code = "already_decided"    // Request, State (the decision), Actor ("" for accessbot), At
	CodeDenyReason       Code = "deny_reason"        // (a denial needs a reason)
	CodeOnlyRequester    Code = "only_requester"     // Request, Value ("cancel" or "extend")
	CodeUseRevoke        Code = "use_revoke"         // Request (already granted: cancel does not apply)
	CodeUseCancel        Code = "use_cancel"         // Request (still pending: revoke does not apply)
	CodeRevokeForbidden  Code = "revoke_forbidden"   // Request, System
	CodeNotActive        Code = "not_active"         // Request, State
	CodeBeingRemoved     Code = "being_removed"      // Request
	CodeConfirmForbidden Code = "confirm_forbidden"  // Request, System
	CodeNoTask           Code = "no_task"            // Request, State, Value (the task clicked: "grant", "revoke", "" unknown)
	CodeNoApprovers      Code = "no_approvers"       // System, Role, Step (1-based), N (needed), N2 (found)
	CodeBusy             Code = "busy"               // (at capacity)
	// Policy lookups (time windows, tickets, on-call). Their Message is
	// complete plain text; Value holds the user input it quotes.
	CodeOutsideWindow Code = "outside_window" // System, Role, At (next window opens), Value (the windows)
	CodeTicket        Code = "ticket"         // System, Role, Value (the ticket reference or pattern)
	CodeUnavailable   Code = "unavailable"    // a system the policy needs did not answer; try later
	CodeIneligible    Code = "ineligible"     // Request: ended, the requester may no longer request it
	CodeOffboarded    Code = "offboarded"     // Value (why: "deactivated in Slack", "account suspended … in okta")
	CodeDirectory     Code = "directory_down" // the directory could not be asked; nothing was decided
	CodeStaleStep     Code = "stale_step"     // Request, Step (the message's, 1-based), N (the current step, 1-based)
	CodeOtherStep     Code = "other_step"     // Request, Step (1-based): the clicker approved another step already
	// Break-glass (the role's break_glass:).
	CodeBreakGlassNotAllowed Code = "break_glass_not_allowed" // System, Role; Allowed = break-glass requesters (empty: the role has no break_glass); Value "extend" with Request: an extension is never break-glass
	CodeBreakGlassTooLong    Code = "break_glass_too_long"    // System, Role, Duration, Limit (the break-glass maximum)
	CodeBreakGlassReason     Code = "break_glass_reason"      // System, Role (a break-glass request always needs a reason)
	// Requests on behalf of someone (the role's on_behalf:).
	CodeOnBehalfNotAllowed     Code = "on_behalf_not_allowed"    // System, Role, Value (the beneficiary); Allowed = on_behalf sources (empty: the role has none)
	CodeBeneficiaryNotEligible Code = "beneficiary_not_eligible" // System, Role, Value (the beneficiary); Allowed = the role's requesters
	CodeUnknownPerson          Code = "unknown_person"           // Value (the Slack user ID named), N2 = 1 when deactivated
)

// Error is a refusal meant for the person who caused it. Kind is one of
// the sentinels above and Code says which refusal it is; the other fields
// carry what a surface needs to word it (see each Code). Message is a
// plain-text rendering with no markup, for logs and the command line;
// Slack wording is the bot's (DESIGN.md §5: one place per surface).
type Error struct {
	Kind error
	Code Code

	Request  string // request ID the refusal is about
	System   string
	Role     string
	State    State
	Step     int      // 1-based approval step
	People   []string // Slack user IDs (approvers waited for)
	Actor    string   // who decided ("" when accessbot did)
	At       time.Time
	Duration time.Duration
	Limit    time.Duration
	N, N2    int
	Value    string   // the offending input, verbatim (surfaces must escape it)
	Allowed  []string // what would have been allowed (IDs or principals)

	// Message is the plain-text form; set by the constructors.
	Message string
}

func (e *Error) Error() string { return e.Message }
func (e *Error) Unwrap() error { return e.Kind }

// Existing returns the ID of the existing request a duplicate or pending
// extension refusal points at ("" for other refusals), which the person
// is offered instead.
func (e *Error) Existing() string {
	if e.Code == CodeDuplicate || e.Code == CodeExtensionPending {
		return e.Request
	}
	return ""
}

// refuse builds an *Error and its plain-text Message.
func refuse(kind error, e Error) *Error {
	e.Kind = kind
	e.Message = plainText(&e)
	return &e
}

// plainText words e for logs and the command line: no markup, user input
// quoted with %q.
func plainText(e *Error) string {
	what := e.System + " " + e.Role
	switch e.Code {
	case CodeUnknownSystem:
		return fmt.Sprintf("There is no system called %q. Systems: %s.", e.Value, strings.Join(e.Allowed, ", "))
	case CodeUnknownRole:
		return fmt.Sprintf("%s has no role called %q. Roles: %s.", e.System, e.Value, strings.Join(e.Allowed, ", "))
	case CodeNotEligible:
		return fmt.Sprintf("You may not request %s; it is for %s.", what, strings.Join(e.Allowed, ", "))
	case CodeBadDuration:
		return "The duration must be positive."
	case CodeDurationTooLong:
		return fmt.Sprintf("%s is longer than the maximum for %s, which is %s.", FormatDuration(e.Duration), what, FormatDuration(e.Limit))
	case CodeReasonRequired:
		return fmt.Sprintf("A reason is required for %s: say why you need it, e.g. the ticket number.", what)
	case CodeReasonTooLong:
		return fmt.Sprintf("The reason is %d characters long; the limit is %d.", e.N, e.N2)
	case CodeReasonInvalid:
		return "The reason is not valid text."
	case CodeDuplicate:
		return fmt.Sprintf("You already have %s for %s (%s).", e.Request, what, e.State)
	case CodeExtensionPending:
		return fmt.Sprintf("You already asked to extend %s: %s is waiting for approval.", e.Value, e.Request)
	case CodeNotExtendable:
		return fmt.Sprintf("%s is %s, not active, so it cannot be extended.", e.Request, e.State)
	case CodeNotFound:
		return fmt.Sprintf("%s was not found, or it is not yours.", e.Request)
	case CodeOwnRequest:
		return fmt.Sprintf("You cannot approve or deny your own request %s.", e.Request)
	case CodeNotApprover:
		return fmt.Sprintf("You are not an approver of step %d of %s; it waits for %s.", e.Step, e.Request, strings.Join(e.People, ", "))
	case CodeNoLongerApprover:
		return fmt.Sprintf("You are no longer an approver of step %d of %s; it now waits for %s.", e.Step, e.Request, strings.Join(e.People, ", "))
	case CodeAlreadyApproved:
		return fmt.Sprintf("You already approved step %d of %s; it still needs %d more approval(s).", e.Step, e.Request, e.N)
	case CodeAlreadyDecided:
		who := e.Actor
		if who == "" {
			who = "accessbot"
		}
		return fmt.Sprintf("%s was already %s by %s at %s; nothing was changed.", e.Request, PastTense(e.State), who, e.At.UTC().Format("2006-01-02 15:04 MST"))
	case CodeDenyReason:
		return "Please give a reason for the denial; the requester will see it."
	case CodeOnlyRequester:
		return fmt.Sprintf("Only the requester can %s %s.", e.Value, e.Request)
	case CodeUseRevoke:
		return fmt.Sprintf("%s is already granted; revoke it to give the access back.", e.Request)
	case CodeUseCancel:
		return fmt.Sprintf("%s is still waiting for approval; cancel it instead.", e.Request)
	case CodeRevokeForbidden:
		return fmt.Sprintf("Only the requester, the owners of %s and admins can revoke %s.", e.System, e.Request)
	case CodeNotActive:
		return fmt.Sprintf("%s is %s, not active; there is no access to remove.", e.Request, e.State)
	case CodeBeingRemoved:
		return fmt.Sprintf("%s is already being removed.", e.Request)
	case CodeConfirmForbidden:
		return fmt.Sprintf("Only the owners of %s can confirm this task.", e.System)
	case CodeOffboarded:
		return fmt.Sprintf("access requests for this person are suspended: they were offboarded (%s).", e.Value)
	case CodeNoTask:
		if e.Value == "" {
			return fmt.Sprintf("this task message of %s does not say which task it is; use the newest task message (it is %s).", e.Request, e.State)
		}
		return fmt.Sprintf("%s has no %s task waiting for confirmation (it is %s): this task message is out of date.", e.Request, e.Value, e.State)
	case CodeNoApprovers:
		return fmt.Sprintf("Step %d of %s needs %d approver(s) other than the requester, but only %d can be found (including the system owners and admins).", e.Step, what, e.N, e.N2)
	case CodeBusy:
		return "accessbot is very busy right now; nothing was changed. Please try again in a moment."
	case CodeOnBehalfNotAllowed:
		if len(e.Allowed) == 0 {
			return fmt.Sprintf("%s cannot be requested for someone else.", what)
		}
		return fmt.Sprintf("You may not request %s for %s; on behalf of someone, it may be requested by %s.", what, e.Value, strings.Join(e.Allowed, ", "))
	case CodeBeneficiaryNotEligible:
		return fmt.Sprintf("%s may not have %s; it is for %s.", e.Value, what, strings.Join(e.Allowed, ", "))
	case CodeUnknownPerson:
		if e.N2 == 1 {
			return fmt.Sprintf("%s's account is deactivated.", e.Value)
		}
		return fmt.Sprintf("There is no Slack user %s.", e.Value)
	case CodeBreakGlassNotAllowed:
		if e.Value == "on_behalf" {
			return "Break-glass is only for yourself: the person who breaks the glass is the one who gets the access."
		}
		if e.Value == "extend" {
			return fmt.Sprintf("%s cannot be extended by breaking the glass: an extension is an ordinary request that needs %s's approval.", e.Request, what)
		}
		if len(e.Allowed) == 0 {
			return fmt.Sprintf("%s has no break-glass access; request it the usual way.", what)
		}
		return fmt.Sprintf("You may not break the glass on %s; break-glass is for %s. Request it the usual way.", what, strings.Join(e.Allowed, ", "))
	case CodeBreakGlassTooLong:
		return fmt.Sprintf("%s is longer than break-glass allows for %s, which is %s.", FormatDuration(e.Duration), what, FormatDuration(e.Limit))
	case CodeBreakGlassReason:
		return fmt.Sprintf("Breaking the glass on %s needs a reason: say what the emergency is.", what)
	case CodeIneligible:
		return fmt.Sprintf("%s has ended: the requester may no longer request it.", e.Request)
	case CodeStaleStep:
		return fmt.Sprintf("The message you clicked asked about step %d of %s, which is no longer the step waiting for a decision (it is step %d); nothing was changed.", e.Step, e.Request, e.N)
	case CodeOtherStep:
		return fmt.Sprintf("You already approved step %d of %s; one person's approval counts for one step only, so someone else must approve this one.", e.Step, e.Request)
	}
	if e.Message != "" {
		return e.Message
	}
	return string(e.Code)
}

// PastTense words a decision state for people ("timed out", "approved").
func PastTense(s State) string {
	switch s {
	case StateTimedOut:
		return "timed out"
	case StateGrantFailed, StateActive, StateRevoking, StateExpired, StateRevoked, StateApproved:
		return "approved"
	}
	return strings.ReplaceAll(string(s), "_", " ")
}

// refusef returns an *Error of kind and code whose Message is the plain
// text given (for refusals whose wording needs more than the fields).
func refusef(kind error, code Code, format string, args ...any) *Error {
	return &Error{Kind: kind, Code: code, Message: fmt.Sprintf(format, args...)}
}

// Invalidf returns an *Error of kind ErrInvalid with a plain message, for
// adapters whose input checks have no Code (a malformed ID).
func Invalidf(format string, args ...any) error {
	return &Error{Kind: ErrInvalid, Message: fmt.Sprintf(format, args...)}
}

// NotFoundf returns an *Error of kind ErrNotFound with a plain message.
func NotFoundf(format string, args ...any) error {
	return &Error{Kind: ErrNotFound, Message: fmt.Sprintf(format, args...)}
}

// notFound is the refusal for a request that does not exist or that the
// person is not party to: the same answer for both, so that a stranger
// learns nothing about other people's requests.
func notFound(id string) error { return refuse(ErrNotFound, Error{Code: CodeNotFound, Request: id}) }

// conflictf is an internal, unworded conflict: a transition that lost a
// race inside the lifecycle (HandleDue treats ErrConflict as "nothing to
// do"). People never see it.
func conflictf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrConflict, fmt.Sprintf(format, args...))
}

// ErrorClass says what the lifecycle should do after a connector call failed.
type ErrorClass int

const (
	// Retryable failures (timeouts, 429, 5xx) are tried again with backoff.
	Retryable ErrorClass = iota
	// Permanent failures (403, user not found, bad parameters) end a grant in
	// grant_failed; a permanent revoke failure is still retried (a revoke is
	// never given up) but owners are alerted at once.
	Permanent
)

func (c ErrorClass) String() string {
	if c == Permanent {
		return "permanent"
	}
	return "retryable"
}

// ConnectorError classifies a connector (or notifier) failure. Connectors
// return nil for "already done" (already a member on grant, already absent
// on revoke).
type ConnectorError struct {
	Class ErrorClass
	// RetryAfter is the target's own hint (Retry-After, rate-limit reset);
	// zero when it gave none. The lifecycle caps it.
	RetryAfter time.Duration
	Err        error
}

func (e *ConnectorError) Error() string { return e.Err.Error() }
func (e *ConnectorError) Unwrap() error { return e.Err }

// RetryableError wraps err as a retryable failure.
func RetryableError(err error, retryAfter time.Duration) error {
	return &ConnectorError{Class: Retryable, RetryAfter: retryAfter, Err: err}
}

// PermanentError wraps err as a permanent failure.
func PermanentError(err error) error { return &ConnectorError{Class: Permanent, Err: err} }

// Classify returns the class of a connector error and the target's retry
// hint. Errors that are not *ConnectorError are retryable (an unknown
// failure must never end a revoke), context cancellation included.
func Classify(err error) (ErrorClass, time.Duration) {
	var ce *ConnectorError
	if errors.As(err, &ce) {
		return ce.Class, ce.RetryAfter
	}
	return Retryable, 0
}

// ErrAwaitingConfirmation is returned by connectors that cannot apply a
// change themselves (the manual connector): the task was handed to the
// system owners and the change counts only once an owner confirms it
// (Service.Confirm). It is not a failure.
var ErrAwaitingConfirmation = errors.New("awaiting confirmation by a system owner")

type probeKey struct{}

// WithProbe marks ctx as carrying a probe of a target that is failing: the
// lifecycle is already pacing calls to it (about one per ProbeInterval), so
// a connector should make one attempt and not retry on its own.
func WithProbe(ctx context.Context) context.Context { return context.WithValue(ctx, probeKey{}, true) }

// IsProbe reports whether ctx carries a probe (see WithProbe).
func IsProbe(ctx context.Context) bool { v, _ := ctx.Value(probeKey{}).(bool); return v }
