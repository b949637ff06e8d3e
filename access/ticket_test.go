package access

import (
	"context"
	"errors"
	"strings"
	"testing"
)

func mustTicketPolicy(t *testing.T, pattern, verify string) *TicketPolicy {
	t.Helper()
	p, err := NewTicketPolicy(pattern, verify)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestNewTicketPolicyRefuses(t *testing.T) {
	tests := []struct{ pattern, want string }{
		{"", "empty pattern"},
		{"(SUP|INC-[0-9]+", `"(SUP|INC-[0-9]+" is not a regular expression: missing closing )`},
		{"[0-9]*", "matches an empty reference"},
		{"x(?!y)", "is not a regular expression: invalid or unsupported Perl syntax"},
	}
	for _, tt := range tests {
		if _, err := NewTicketPolicy(tt.pattern, ""); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("NewTicketPolicy(%q) = %v, want %q", tt.pattern, err, tt.want)
		}
	}
}

func TestFindRef(t *testing.T) {
	sys, role := &System{ID: "crm"}, &Role{ID: "admin"}
	anchored := mustTicketPolicy(t, "^(SUP|INC)-[0-9]+$", "")
	bare := mustTicketPolicy(t, "(SUP|INC)-[0-9]+", "")
	tests := []struct {
		name             string
		p                *TicketPolicy
		explicit, reason string
		want             string
		err              string
	}{
		{"first word", anchored, "", "SUP-123 customer cannot log in", "SUP-123", ""},
		{"later word with punctuation", anchored, "", "customer cannot log in (see INC-42).", "INC-42", ""},
		{"a link", anchored, "", "per https://acme.atlassian.net/browse/SUP-77 please", "SUP-77", ""},
		{"a Slack link", anchored, "", "see <https://acme.atlassian.net/browse/SUP-78|SUP-78>", "SUP-78", ""},
		{"first of two", anchored, "", "INC-1 and SUP-2", "INC-1", ""},
		{"unanchored pattern is whole-word too", bare, "", "xSUP-1 SUP-2", "SUP-2", ""},
		{"explicit field", anchored, " SUP-9 ", "nothing here", "SUP-9", ""},
		{"explicit wins over reason", anchored, "INC-5", "SUP-1", "INC-5", ""},
		{"missing", anchored, "", "customer cannot log in", "", "crm admin needs a ticket reference matching `^(SUP|INC)-[0-9]+$`: put it in the reason"},
		{"partial word is not a reference", anchored, "", "SUP-12abc", "", "needs a ticket reference matching"},
		{"case matters unless the pattern says so", anchored, "", "sup-1", "", "needs a ticket reference"},
		{"explicit must match", anchored, "SUP 12", "SUP-1", "", "\"SUP 12\" is not a ticket reference crm admin accepts: it must match `^(SUP|INC)-[0-9]+$`."},
		{"no policy", nil, "", "anything", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.p.FindRef(sys, role, tt.explicit, tt.reason)
			if tt.err != "" {
				if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error %v, want ErrInvalid containing %q", err, tt.err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("FindRef = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
	if ci := mustTicketPolicy(t, "(?i)sup-[0-9]+", ""); !ci.Matches("SUP-1") || !ci.Matches("sup-1") {
		t.Error("(?i) is not honoured")
	}
}

type fakeTickets struct {
	tickets map[string]Ticket
	err     error
}

func (f *fakeTickets) Ticket(_ context.Context, ref string) (Ticket, error) {
	if f.err != nil {
		return Ticket{}, f.err
	}
	t, ok := f.tickets[ref]
	if !ok {
		return Ticket{}, &LookupError{Vendor: "Jira", Kind: LookupNotFound, What: "ticket " + ref}
	}
	return t, nil
}

func TestCheckTicket(t *testing.T) {
	ctx := context.Background()
	sys := &System{ID: "crm"}
	role := &Role{ID: "admin", Ticket: mustTicketPolicy(t, "^(SUP|INC)-[0-9]+$", "jira")}
	src := &fakeTickets{tickets: map[string]Ticket{
		"SUP-1": {Ref: "SUP-1", Title: "Login broken", URL: "https://acme.atlassian.net/browse/SUP-1", Status: "In Progress"},
		"SUP-2": {Ref: "SUP-2", Title: "Old", Closed: true, Status: "Done"},
	}}

	got, err := CheckTicket(ctx, src, sys, role, "", "SUP-1 customer locked out")
	if err != nil || got.URL != "https://acme.atlassian.net/browse/SUP-1" || got.Title != "Login broken" {
		t.Fatalf("open ticket: %+v, %v", got, err)
	}

	tests := []struct {
		name   string
		src    TicketSource
		reason string
		kind   error
		msg    string
	}{
		{"missing reference", src, "please", ErrInvalid, "needs a ticket reference matching `^(SUP|INC)-[0-9]+$`"},
		{"closed ticket", src, "SUP-2", ErrForbidden, "Ticket SUP-2 is Done; access needs an open ticket."},
		{"unknown ticket", src, "SUP-404", ErrInvalid, "Ticket SUP-404 was not found: Jira has no ticket SUP-404 (or accessbot may not see it). Check the reference."},
		{"Jira down", &fakeTickets{err: &LookupError{Vendor: "Jira", Kind: LookupUnavailable, Err: errors.New("503")}}, "SUP-1", ErrUnavailable,
			"accessbot could not check ticket SUP-1: Jira did not answer. Try again in a few minutes."},
		{"bad credentials", &fakeTickets{err: &LookupError{Vendor: "Jira", Kind: LookupRejected}}, "SUP-1", ErrUnavailable,
			"Jira refused accessbot's credentials or permissions. Ask an admin to fix the jira connector."},
		{"no source", nil, "SUP-1", ErrUnavailable, "needs ticket SUP-1 checked through jira, which is not available"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := CheckTicket(ctx, tt.src, sys, role, "", tt.reason)
			if !errors.Is(err, tt.kind) {
				t.Fatalf("error %v is not %v", err, tt.kind)
			}
			msg, ok := err.Error(), errors.As(err, new(*Error))
			if !ok || !strings.Contains(msg, tt.msg) {
				t.Errorf("UserMessage = %q, %v; want %q", msg, ok, tt.msg)
			}
			if strings.Contains(msg, "503") {
				t.Errorf("the message leaks the detail: %q", msg)
			}
		})
	}
	// The lookup failure stays in the chain for the log.
	_, err = CheckTicket(ctx, &fakeTickets{err: &LookupError{Vendor: "Jira", Err: errors.New("GET /rest/api/3/issue/SUP-1: 503")}}, sys, role, "", "SUP-1")
	var le *LookupError
	if !errors.As(err, &le) || !strings.Contains(err.Error(), "Jira did not answer") {
		t.Errorf("cause lost: %v", err)
	}

	// Pattern only: no lookup, the reference is the ticket.
	plain := &Role{ID: "viewer", Ticket: mustTicketPolicy(t, "^ZD-[0-9]+$", "")}
	if got, err := CheckTicket(ctx, nil, sys, plain, "", "ZD-4411 refund"); err != nil || got != (Ticket{Ref: "ZD-4411"}) {
		t.Errorf("pattern only: %+v, %v", got, err)
	}
	// No ticket policy: nothing required, nothing returned.
	if got, err := CheckTicket(ctx, nil, sys, &Role{ID: "x"}, "", ""); err != nil || got != (Ticket{}) {
		t.Errorf("no policy: %+v, %v", got, err)
	}
}
