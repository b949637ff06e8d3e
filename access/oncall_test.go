package access

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// fakeOnCall is an OnCallSource with a fixed answer.
type fakeOnCall struct {
	emails []string
	err    error
	asked  []string
}

func (f *fakeOnCall) OnCall(_ context.Context, schedule string, _ time.Time) ([]string, error) {
	f.asked = append(f.asked, schedule)
	return f.emails, f.err
}

func TestParseOnCallRule(t *testing.T) {
	r, err := ParseOnCallRule(" pagerduty : P1ABC2D ")
	if err != nil || r != (OnCallRule{Source: "pagerduty", Schedule: "P1ABC2D"}) || r.String() != "pagerduty:P1ABC2D" {
		t.Errorf("ParseOnCallRule = %+v, %v", r, err)
	}
	r, err = ParseOnCallRule("og:Platform rota: nights")
	if err != nil || r.Schedule != "Platform rota: nights" {
		t.Errorf("schedule with a colon: %+v, %v", r, err)
	}
	for _, bad := range []string{"", "pagerduty", "pagerduty:", ":P1ABC2D"} {
		if _, err := ParseOnCallRule(bad); err == nil || !strings.Contains(err.Error(), "NAME:SCHEDULE") {
			t.Errorf("ParseOnCallRule(%q) = %v", bad, err)
		}
	}
}

func TestCheckOnCallFailsClosed(t *testing.T) {
	ctx := context.Background()
	at := time.Date(2026, 3, 30, 9, 0, 0, 0, time.UTC)
	rule := OnCallRule{Source: "pd", Schedule: "P1"}
	alice := Person{SlackID: "U0ALICE01", Email: " Alice@Example.com "}
	tests := []struct {
		name   string
		src    OnCallSource
		who    Person
		onCall bool
		errOK  bool
		note   string
	}{
		{"on call", &fakeOnCall{emails: []string{"bob@example.com", "alice@example.com"}}, alice, true, false,
			"You are on call (the on-call schedule pd:P1), so this was approved without a human."},
		{"not on call", &fakeOnCall{emails: []string{"bob@example.com"}}, alice, false, false,
			"You are not on call (the on-call schedule pd:P1) right now, so the approvers are asked."},
		{"nobody on call", &fakeOnCall{}, alice, false, false, "You are not on call"},
		{"API down", &fakeOnCall{err: &LookupError{Vendor: "PagerDuty", Kind: LookupUnavailable, Err: errors.New("GET /oncalls: 503")}}, alice, false, true,
			"accessbot could not check the on-call schedule pd:P1: PagerDuty did not answer. The approvers are asked instead."},
		{"unknown schedule", &fakeOnCall{err: &LookupError{Vendor: "PagerDuty", Kind: LookupNotFound, What: "schedule P1"}}, alice, false, true,
			"PagerDuty has no schedule P1 (or accessbot may not see it)"},
		{"a plain error", &fakeOnCall{err: errors.New("boom https://secret.example/?token=x")}, alice, false, true,
			"accessbot could not check the on-call schedule pd:P1: the lookup failed."},
		{"no source", nil, alice, false, true, "the connector pd is not available"},
		{"no email", &fakeOnCall{emails: []string{""}}, Person{SlackID: "U0BOT"}, false, true, "Your Slack profile has no email address"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := CheckOnCall(ctx, tt.src, rule, tt.who, at)
			if c.OnCall != tt.onCall || (c.Err != nil) != tt.errOK {
				t.Errorf("check = %+v", c)
			}
			if !strings.Contains(c.Note, tt.note) {
				t.Errorf("note %q does not contain %q", c.Note, tt.note)
			}
			if strings.Contains(c.Note, "secret.example") || strings.Contains(c.Note, "503") {
				t.Errorf("note leaks the error detail: %q", c.Note)
			}
			if c.Rule != rule {
				t.Errorf("rule %v", c.Rule)
			}
		})
	}
}

func TestLookupErrorReason(t *testing.T) {
	tests := []struct {
		e    LookupError
		want string
	}{
		{LookupError{Vendor: "Jira", Kind: LookupNotFound, What: "ticket SUP-1"}, "Jira has no ticket SUP-1 (or accessbot may not see it)"},
		{LookupError{Vendor: "Jira", Kind: LookupRejected}, "Jira refused accessbot's credentials or permissions"},
		{LookupError{Vendor: "Zendesk", Kind: LookupInvalid, What: "ticket ZD"}, "Zendesk cannot look up ticket ZD"},
		{LookupError{Vendor: "Opsgenie", Kind: LookupUnavailable, RetryAfter: time.Minute}, "Opsgenie is limiting how often accessbot may ask"},
		{LookupError{Kind: LookupUnavailable}, "the system did not answer"},
	}
	for _, tt := range tests {
		if got := tt.e.Reason(); got != tt.want {
			t.Errorf("Reason() = %q, want %q", got, tt.want)
		}
	}
	inner := errors.New("GET https://x/oncalls: 503")
	e := &LookupError{Vendor: "PagerDuty", Err: inner}
	if !errors.Is(e, inner) || !strings.Contains(e.Error(), "PagerDuty did not answer: GET") {
		t.Errorf("Error() = %q", e.Error())
	}
}
