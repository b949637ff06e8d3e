package access

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Sentinel kinds. Errors returned by this package wrap exactly one of them,
// so that each surface (Slack, CLI) can turn them into user text in one place.
var (
	// ErrInvalid: the input is wrong (unknown system, bad duration, missing reason).
	ErrInvalid = errors.New("invalid")
	// ErrNotFound: no such request.
	ErrNotFound = errors.New("not found")
	// ErrForbidden: the person may not do this (not an approver, not eligible).
	ErrForbidden = errors.New("forbidden")
	// ErrConflict: the request is not in a state that allows this (already
	// decided, already holds access). Someone else's transition won.
	ErrConflict = errors.New("conflict")
)

// Error is an error meant for the person who caused it: Message is safe and
// useful to show them as is. Kind is one of the sentinels above.
type Error struct {
	Kind    error
	Message string
	// Existing is set when the conflict is with an existing request the
	// person should be offered instead (duplicate request).
	Existing string
}

func (e *Error) Error() string { return e.Message }
func (e *Error) Unwrap() error { return e.Kind }

// Invalidf returns an *Error of kind ErrInvalid.
func Invalidf(format string, args ...any) error {
	return &Error{Kind: ErrInvalid, Message: fmt.Sprintf(format, args...)}
}

// Forbiddenf returns an *Error of kind ErrForbidden.
func Forbiddenf(format string, args ...any) error {
	return &Error{Kind: ErrForbidden, Message: fmt.Sprintf(format, args...)}
}

// Conflictf returns an *Error of kind ErrConflict.
func Conflictf(format string, args ...any) error {
	return &Error{Kind: ErrConflict, Message: fmt.Sprintf(format, args...)}
}

// NotFoundf returns an *Error of kind ErrNotFound.
func NotFoundf(format string, args ...any) error {
	return &Error{Kind: ErrNotFound, Message: fmt.Sprintf(format, args...)}
}

// UserMessage returns the text to show a person for err and whether err was
// expected (a user error). Unexpected errors get a generic text; callers log
// them with a reference the person can quote.
func UserMessage(err error) (string, bool) {
	var e *Error
	if errors.As(err, &e) {
		return e.Message, true
	}
	switch {
	case errors.Is(err, ErrNotFound):
		return "That request does not exist.", true
	case errors.Is(err, ErrConflict):
		return "That request has already moved on; nothing was changed.", true
	case errors.Is(err, ErrForbidden):
		return "You are not allowed to do that.", true
	case errors.Is(err, ErrInvalid):
		return err.Error(), true
	}
	return "", false
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

// ConnectorError classifies a connector failure. Connectors return nil for
// "already done" (already a member on grant, already absent on revoke).
type ConnectorError struct {
	Class ErrorClass
	// RetryAfter is the target's own hint (Retry-After, rate-limit reset);
	// zero when it gave none. The lifecycle caps it.
	RetryAfter time.Duration
	Err        error
}

func (e *ConnectorError) Error() string { return e.Err.Error() }
func (e *ConnectorError) Unwrap() error { return e.Err }

// RetryableError wraps err as a retryable connector failure.
func RetryableError(err error, retryAfter time.Duration) error {
	return &ConnectorError{Class: Retryable, RetryAfter: retryAfter, Err: err}
}

// PermanentError wraps err as a permanent connector failure.
func PermanentError(err error) error { return &ConnectorError{Class: Permanent, Err: err} }

// Classify returns the class of a connector error and the target's retry
// hint. Errors that are not *ConnectorError are retryable (an unknown
// failure must never end a revoke), except context cancellation by us,
// which is also retryable.
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
