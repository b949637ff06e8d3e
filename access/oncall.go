package access

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// OnCallSource says who is on call on a schedule (PagerDuty, Opsgenie):
// the lookup behind `approval: { auto_if_on_call: NAME:SCHEDULE }`.
//
// OnCall returns the email addresses of the people on call on schedule at
// at, lower-cased, each once, in no particular order; an empty list means
// nobody is. People are matched by email because that is what both
// vendors and Slack share; the caller maps emails to Slack users.
//
// Implementations may cache answers briefly (connectors/pagerduty and
// connectors/opsgenie: 60 s by default), so an answer may be that old.
// Any failure is an error, preferably a *LookupError; the caller fails
// closed (treats the person as not on call and asks humans). OnCall must
// honour ctx and be safe for concurrent use. It never changes anything.
type OnCallSource interface {
	OnCall(ctx context.Context, schedule string, at time.Time) (emails []string, err error)
}

// OnCallRule is a role's `approval.auto_if_on_call: NAME:SCHEDULE`: the
// requester is approved without a human when on call on Schedule of the
// connector instance Source (of type pagerduty or opsgenie).
type OnCallRule struct {
	Source   string // connector instance name
	Schedule string // the schedule's ID at that vendor (Opsgenie: ID or name)
}

// ParseOnCallRule parses "NAME:SCHEDULE". The schedule is everything after
// the first colon (trimmed); both parts are required.
func ParseOnCallRule(s string) (OnCallRule, error) {
	name, sched, ok := strings.Cut(strings.TrimSpace(s), ":")
	name, sched = strings.TrimSpace(name), strings.TrimSpace(sched)
	if !ok || name == "" || sched == "" {
		return OnCallRule{}, fmt.Errorf("%q is not NAME:SCHEDULE; name a connector of type pagerduty or opsgenie and a schedule ID, like pagerduty:P1ABC2D", s)
	}
	return OnCallRule{Source: name, Schedule: sched}, nil
}

func (r OnCallRule) String() string { return r.Source + ":" + r.Schedule }

// OnCallCheck is the outcome of a role's on-call rule for one requester.
type OnCallCheck struct {
	Rule OnCallRule
	// OnCall is set when the requester is on call: approve without a
	// human (Request.Auto), recording Rule in the audit log.
	OnCall bool
	// Err is why the schedule could not be read (nil when it was): the
	// request goes to the approvers. It is logged; Note says it to the
	// requester in words.
	Err error
	// Note is what to tell the requester, in every case.
	Note string
}

// CheckOnCall asks src whether requester is on call on rule's schedule at
// at. It fails closed: a nil src, a requester without an email and any
// lookup error all mean "not on call", with Err and Note saying why. The
// comparison of emails ignores case and surrounding space.
func CheckOnCall(ctx context.Context, src OnCallSource, rule OnCallRule, requester Person, at time.Time) OnCallCheck {
	c := OnCallCheck{Rule: rule}
	where := fmt.Sprintf("the on-call schedule %s", rule)
	email := strings.ToLower(strings.TrimSpace(requester.Email))
	switch {
	case src == nil:
		c.Err = fmt.Errorf("on-call source %q is not available", rule.Source)
		c.Note = fmt.Sprintf("accessbot could not check %s (the connector %s is not available), so the approvers are asked.", where, rule.Source)
		return c
	case email == "":
		c.Err = fmt.Errorf("requester %s has no email address", requester.SlackID)
		c.Note = fmt.Sprintf("Your Slack profile has no email address, so accessbot cannot tell whether you are on call (%s); the approvers are asked.", where)
		return c
	}
	emails, err := src.OnCall(ctx, rule.Schedule, at)
	if err != nil {
		c.Err = err
		c.Note = fmt.Sprintf("accessbot could not check %s: %s. The approvers are asked instead.", where, LookupReason(err))
		return c
	}
	for _, e := range emails {
		if strings.EqualFold(strings.TrimSpace(e), email) {
			c.OnCall = true
			c.Note = fmt.Sprintf("You are on call (%s), so this was approved without a human.", where)
			return c
		}
	}
	c.Note = fmt.Sprintf("You are not on call (%s) right now, so the approvers are asked.", where)
	return c
}
