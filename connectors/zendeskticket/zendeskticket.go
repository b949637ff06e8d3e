// Package zendeskticket is the `zendesk_ticket` lookup connector: it
// checks that a ticket reference names a Zendesk Support ticket that is
// not solved or closed (access.TicketSource), for a role's
// `ticket: { pattern, verify: NAME }`. It grants nothing. (The `zendesk`
// connector, which changes agents' roles, is a separate package.)
//
// API, as documented by Zendesk (Support API v2,
// https://developer.zendesk.com/api-reference/):
//
//   - Show Ticket: GET /api/v2/tickets/{ticket_id}, answering
//     {"ticket": {"id", "subject", "status", ...}} where status is one of
//     new, open, pending, hold, solved or closed
//     (https://developer.zendesk.com/api-reference/ticketing/tickets/tickets/#show-ticket);
//     with custom ticket statuses active, status is still the system
//     status category of the ticket, closed tickets belonging to
//     "solved" (https://developer.zendesk.com/api-reference/ticketing/tickets/custom_ticket_statuses/);
//   - authentication: HTTP Basic "{email}/token:{api_token}"; a bad token
//     answers 401 {"error":"Couldn't authenticate you"}
//     (https://developer.zendesk.com/api-reference/introduction/security-and-auth/);
//   - errors: 404 {"error":"RecordNotFound","description":"Not found"} for
//     a ticket that does not exist (or was deleted), 403 for one the
//     token's user may not see;
//   - rate limits: 429 with Retry-After in seconds
//     (https://developer.zendesk.com/api-reference/introduction/rate-limits/).
//
// A reference's ticket number is its last run of digits ("ZD-4411",
// "#4411" and "4411" all name ticket 4411). The people-facing link is the
// agent interface, https://{subdomain}.zendesk.com/agent/tickets/{id}. A
// ticket is closed when its status is solved or closed. Every failure is
// an *access.LookupError; access.CheckTicket fails closed on it.
package zendeskticket

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/connectors"
)

// Type is the connector type this package registers under.
const Type = "zendesk_ticket"

// Vendor names Zendesk in messages for people.
const Vendor = "Zendesk"

// Config is the `connectors.NAME` block of a zendesk_ticket connector.
type Config struct {
	// Subdomain is the account's subdomain, the ACME in
	// https://acme.zendesk.com. Set it or BaseURL.
	Subdomain string `json:"subdomain"`
	// BaseURL replaces https://{subdomain}.zendesk.com/api/v2 (a
	// host-mapped domain, or a test server); it ends with /api/v2.
	BaseURL string `json:"base_url"`
	// Email is the address of the user owning the API token; the user
	// must be an agent who can see the tickets.
	Email string `json:"email"`
	// APIToken is the API token; or APITokenFile names a file holding it.
	APIToken     connectors.Redacted `json:"api_token"`
	APITokenFile string              `json:"api_token_file"`
	// LookupTimeout is the timeout key: it bounds one lookup, inner
	// retries included (default 5s).
	connectors.LookupTimeout
}

var subdomainRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9-]*$`)

// Validate checks c; errors name keys relative to the block.
func (c *Config) Validate() error {
	var errs []error
	switch {
	case c.Subdomain == "" && c.BaseURL == "":
		errs = append(errs, errors.New("subdomain: required (or base_url)"))
	case c.Subdomain != "" && c.BaseURL != "":
		errs = append(errs, errors.New("subdomain and base_url: set only one of them"))
	case c.Subdomain != "" && !subdomainRe.MatchString(c.Subdomain):
		errs = append(errs, errors.New("subdomain: must be the bare subdomain (acme for acme.zendesk.com)"))
	case c.BaseURL != "":
		if err := connectors.CheckBaseURL(c.BaseURL); err != nil {
			errs = append(errs, fmt.Errorf("base_url: %w", err))
		} else if !strings.HasSuffix(strings.TrimRight(c.BaseURL, "/"), "/api/v2") {
			errs = append(errs, errors.New("base_url: must end with /api/v2, like https://help.acme.example/api/v2"))
		}
	}
	if c.Email == "" {
		errs = append(errs, errors.New("email: required (the token owner's email)"))
	} else if !strings.Contains(c.Email, "@") {
		errs = append(errs, errors.New("email: must be an email address"))
	}
	if c.APIToken == "" && c.APITokenFile == "" {
		errs = append(errs, errors.New("api_token: required (or api_token_file)"))
	}
	return errors.Join(errs...)
}

// Client looks up Zendesk tickets. It is safe for concurrent use.
type Client struct {
	connectors.LookupOnly
	agent  string // https://host/agent/tickets/
	lookup *connectors.Lookup
}

var (
	_ access.TicketSource = (*Client)(nil)
	_ access.Connector    = (*Client)(nil)
	_ connectors.Factory  = Factory
)

// Factory builds a zendesk_ticket connector from its configuration block.
// It makes no network call.
func Factory(name string, cfg connectors.Config) (access.Connector, error) {
	return New(name, cfg)
}

// New is Factory returning the concrete type.
func New(name string, cfg connectors.Config) (*Client, error) {
	var c Config
	if err := cfg.DecodeHTTP(&c); err != nil {
		return nil, err
	}
	token, err := cfg.Secret("api_token")
	if err != nil {
		return nil, err
	}
	base := connectors.TrimBase(c.BaseURL) // …/api/v2
	if base == "" {
		base = "https://" + c.Subdomain + ".zendesk.com/api/v2"
	}
	return &Client{
		LookupOnly: connectors.LookupOnly{Type: Type},
		agent:      strings.TrimSuffix(base, "/api/v2") + "/agent/tickets/",
		lookup: &connectors.Lookup{Vendor: Vendor, Clock: cfg.Clock, Timeout: c.Whole(),
			API: connectors.API{Base: base, HTTP: cfg.HTTP, Auth: connectors.BasicAuth(c.Email+"/token", token)}},
	}, nil
}

var trailingDigits = regexp.MustCompile(`([0-9]+)$`)

type ticketAnswer struct {
	Ticket *struct {
		ID      int64  `json:"id"`
		Subject string `json:"subject"`
		Status  string `json:"status"`
	} `json:"ticket"`
}

// Ticket looks up the ticket whose number ends ref, per
// access.TicketSource. A ref without a number is LookupInvalid without a
// call; a 404 is LookupNotFound.
func (c *Client) Ticket(ctx context.Context, ref string) (access.Ticket, error) {
	what := "ticket " + ref
	m := trailingDigits.FindString(strings.TrimSpace(ref))
	id, err := strconv.ParseInt(m, 10, 64)
	if m == "" || err != nil || id <= 0 {
		return access.Ticket{}, c.lookup.Fail(access.LookupInvalid, what,
			errors.New("a Zendesk ticket reference ends with the ticket number, like ZD-4411 or 4411"))
	}
	ctx, cancel := c.lookup.Bound(ctx)
	defer cancel()
	num := strconv.FormatInt(id, 10)
	var ans ticketAnswer
	if err := c.lookup.Get(ctx, what, "/tickets/"+num, nil, &ans); err != nil {
		return access.Ticket{}, err
	}
	if ans.Ticket == nil || ans.Ticket.Status == "" {
		return access.Ticket{}, c.lookup.Fail(access.LookupUnavailable, what, errors.New("answer without ticket.status"))
	}
	st := strings.ToLower(ans.Ticket.Status)
	return access.Ticket{
		Ref:    num,
		Title:  ans.Ticket.Subject,
		URL:    c.agent + num,
		Closed: st == "solved" || st == "closed",
		Status: st,
	}, nil
}
