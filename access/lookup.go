package access

import (
	"errors"
	"fmt"
	"time"
)

// Lookups: read-only questions the policy asks other systems at
// submission (who is on call, whether a ticket exists). They are declared
// here and implemented by connectors (connectors/pagerduty,
// connectors/opsgenie, connectors/jira, connectors/zendeskticket).

// ErrUnavailable is the kind of an *Error meaning "a system the policy
// needs to consult could not answer": the person did nothing wrong and may
// try again later.
var ErrUnavailable = errors.New("unavailable")

// LookupFailure classifies a failed lookup.
type LookupFailure int

const (
	// LookupUnavailable: no usable answer (transport failure, timeout,
	// 5xx, 429, an answer in an unexpected shape). Worth trying again.
	LookupUnavailable LookupFailure = iota
	// LookupRejected: the system refused accessbot's credentials or
	// permissions (401, 403). An admin must fix the connector.
	LookupRejected
	// LookupNotFound: the system does not know what was asked for (an
	// unknown schedule, a ticket that does not exist or that accessbot
	// may not see).
	LookupNotFound
	// LookupInvalid: the system refused the question itself (400, 422),
	// or the reference cannot be asked about (a ticket reference with no
	// ticket number in it).
	LookupInvalid
)

func (k LookupFailure) String() string {
	switch k {
	case LookupRejected:
		return "rejected"
	case LookupNotFound:
		return "not found"
	case LookupInvalid:
		return "invalid"
	}
	return "unavailable"
}

// LookupError is a failed lookup at an OnCallSource or TicketSource. Its
// Reason is safe to show people; Err holds the detail for logs (status,
// URL without query, a short excerpt of the vendor's message; never
// credentials).
type LookupError struct {
	Vendor string // "PagerDuty", "Opsgenie", "Jira", "Zendesk"
	Kind   LookupFailure
	What   string // what was looked up: "schedule P1ABC2D", "ticket SUP-12"
	// RetryAfter is the vendor's own hint after a 429 (Retry-After,
	// ratelimit-reset, X-RateLimit-Period-In-Sec); zero when none.
	RetryAfter time.Duration
	Err        error
}

func (e *LookupError) Error() string {
	if e.Err == nil {
		return e.Reason()
	}
	return fmt.Sprintf("%s: %v", e.Reason(), e.Err)
}

func (e *LookupError) Unwrap() error { return e.Err }

// Reason says in a few words, for people, what went wrong:
// "PagerDuty did not answer", "Jira has no ticket SUP-12 (or accessbot
// may not see it)". It holds no URL, status detail or secret.
func (e *LookupError) Reason() string {
	v := e.Vendor
	if v == "" {
		v = "the system"
	}
	switch e.Kind {
	case LookupRejected:
		return v + " refused accessbot's credentials or permissions"
	case LookupNotFound:
		if e.What != "" {
			return fmt.Sprintf("%s has no %s (or accessbot may not see it)", v, e.What)
		}
		return v + " did not find it"
	case LookupInvalid:
		if e.What != "" {
			return fmt.Sprintf("%s cannot look up %s", v, e.What)
		}
		return v + " refused the question"
	}
	if e.RetryAfter > 0 {
		return v + " is limiting how often accessbot may ask"
	}
	return v + " did not answer"
}

// LookupReason returns the Reason of a *LookupError in err's chain, or a
// generic text for any other error.
func LookupReason(err error) string {
	var le *LookupError
	if errors.As(err, &le) {
		return le.Reason()
	}
	return "the lookup failed"
}
