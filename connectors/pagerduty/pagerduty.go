// Package pagerduty is the `pagerduty` lookup connector: it says who is on
// call on a PagerDuty schedule (access.OnCallSource), for a role's
// `approval: { auto_if_on_call: NAME:SCHEDULE_ID }`. It grants nothing.
//
// API, as documented by PagerDuty (REST API v2,
// https://developer.pagerduty.com/docs/rest-api-v2/rest-api/ and the
// developer-docs repository, github.com/PagerDuty/developer-docs):
//
//   - List all of the on-calls: GET /oncalls with schedule_ids[],
//     include[]=users (expands each entry's user to a full user object,
//     with email), since and until (ISO 8601; "if an on-call period
//     overlaps with the range, it will be included"), limit and offset
//     (https://developer.pagerduty.com/api-reference/3a6b910f11050-list-all-of-the-on-calls).
//     Entries are {"user", "schedule", "escalation_policy",
//     "escalation_level", "start", "end"}; start or end is null for a
//     permanent on-call. Only schedules used by an escalation policy have
//     on-call entries; one user appears once per escalation level that
//     uses the schedule (the Go SDK's OnCall struct, PagerDuty/go-pagerduty
//     on_call.go, has the same fields);
//   - classic pagination: limit (at most 100), offset, "more"; offset plus
//     limit may not exceed 10000 (docs/REST-API/09-Pagination.md);
//   - Get a schedule: GET /schedules/{id}, 404 for an unknown schedule
//     (used only when /oncalls answers nobody, to tell an unknown schedule
//     from a gap in the rota);
//   - authentication: "Authorization: Token token=…" with an account or
//     user API key; a read-only key suffices (docs/REST-API/02-Authentication.md);
//     versioning: "Accept: application/vnd.pagerduty+json;version=2"
//     (docs/REST-API/03-Versioning.md);
//   - errors: {"error": {"message", "code", "errors": [...]}}, 401 bad
//     credentials, 403 not allowed, 404 not found, 400 invalid arguments
//     (docs/REST-API/14-Errors.md);
//   - rate limits: 429 with ratelimit-limit, ratelimit-remaining and
//     ratelimit-reset (seconds until the limit resets) and
//     {"error": {"message": "Rate Limit Exceeded", "code": 2020}}
//     (docs/REST-API/04-Rate-Limits.md);
//   - EU service region: https://api.eu.pagerduty.com (set api_url).
//
// Semantics: the lookup asks for the one-second range [at, at+1s] and keeps
// the entries whose own [start, end) holds at, so an on-call that ended at
// exactly at does not count. Answers are cached (connectors.OnCallCache,
// 60 s by default, `cache_ttl`); after a 429 no call is made until
// ratelimit-reset has passed. Every failure is an *access.LookupError: the
// caller fails closed.
package pagerduty

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/connectors"
)

// Type is the connector type this package registers under.
const Type = "pagerduty"

// Vendor names PagerDuty in messages for people.
const Vendor = "PagerDuty"

// DefaultAPIURL is PagerDuty's REST API in the US service region.
const DefaultAPIURL = "https://api.pagerduty.com"

// acceptV2 pins the REST API version (docs/REST-API/03-Versioning.md).
const acceptV2 = "application/vnd.pagerduty+json;version=2"

// pageLimit is the largest page /oncalls serves; maxPages bounds one
// lookup (a schedule used by a few escalation levels has a handful of
// entries; 20 pages is 2000).
const (
	pageLimit = 100
	maxPages  = 20
)

// Config is the `connectors.NAME` block of a pagerduty connector. Its
// api_url (connectors.OnCallConfig) replaces https://api.pagerduty.com:
// the EU service region (https://api.eu.pagerduty.com) or a test server.
type Config struct {
	// Token is a REST API key (read-only is enough); or TokenFile names a
	// file holding it.
	Token     connectors.Redacted `json:"token"`
	TokenFile string              `json:"token_file"`
	// OnCallConfig holds api_url, timeout (one whole lookup, inner
	// retries and pages included; default 5s: the requester is waiting)
	// and cache_ttl (how long an answer is reused; default 60s, at most
	// 10m).
	connectors.OnCallConfig
}

// Validate checks c; errors name keys relative to the block.
func (c *Config) Validate() error {
	var errs []error
	if c.Token == "" && c.TokenFile == "" {
		errs = append(errs, errors.New("token: required (or token_file): a PagerDuty REST API key; read-only is enough"))
	}
	return errors.Join(append(errs, c.OnCallConfig.Validate())...)
}

// api is PagerDuty's API as connectors.NewOnCall needs it (see the package
// doc for the sources).
var api = connectors.OnCallVendor{
	Vendor: Vendor, DefaultAPIURL: DefaultAPIURL, SecretKey: "token",
	Auth:            func(token string) connectors.Credentials { return connectors.StaticAuth("Token token=" + token) },
	Header:          http.Header{"Accept": {acceptV2}},
	RateLimitHeader: "ratelimit-reset",
	Fetch:           fetch,
}

// Client looks up on-call people at PagerDuty. It is safe for concurrent
// use.
type Client struct {
	connectors.LookupOnly
	oncall *connectors.OnCall
}

var (
	_ access.OnCallSource = (*Client)(nil)
	_ access.Connector    = (*Client)(nil)
	_ connectors.Factory  = Factory
)

// Factory builds a pagerduty connector from its configuration block. It
// makes no network call.
func Factory(name string, cfg connectors.Config) (access.Connector, error) {
	return New(name, cfg)
}

// New is Factory returning the concrete type.
func New(name string, cfg connectors.Config) (*Client, error) {
	oc, err := connectors.NewOnCall(cfg, &Config{}, api)
	if err != nil {
		return nil, err
	}
	return &Client{LookupOnly: connectors.LookupOnly{Type: Type}, oncall: oc}, nil
}

// OnCall returns the emails of the people on call on schedule (a PagerDuty
// schedule ID such as P1ABC2D) at at, per access.OnCallSource. Errors are
// *access.LookupError: LookupNotFound for an unknown schedule,
// LookupRejected for a refused key, LookupUnavailable otherwise.
func (c *Client) OnCall(ctx context.Context, schedule string, at time.Time) ([]string, error) {
	if schedule == "" || strings.ContainsAny(schedule, "/?#% ") {
		return nil, c.oncall.Fail(access.LookupInvalid, fmt.Sprintf("schedule %q", schedule),
			errors.New("a PagerDuty schedule ID is letters and digits, like P1ABC2D"))
	}
	return c.oncall.OnCall(ctx, schedule, at)
}

// oncall is one entry of GET /oncalls with include[]=users.
type oncall struct {
	User struct {
		ID    string `json:"id"`
		Type  string `json:"type"` // "user" when expanded, "user_reference" when not
		Email string `json:"email"`
	} `json:"user"`
	Schedule *struct {
		ID string `json:"id"`
	} `json:"schedule"`
	Start *time.Time `json:"start"`
	End   *time.Time `json:"end"`
}

type oncallsPage struct {
	Oncalls []oncall `json:"oncalls"`
	Limit   int      `json:"limit"`
	Offset  int      `json:"offset"`
	More    bool     `json:"more"`
}

// fetch asks PagerDuty through l, page by page, who is on call on
// schedule at at.
func fetch(ctx context.Context, l *connectors.Lookup, schedule string, at time.Time) ([]string, error) {
	what := "schedule " + schedule
	var emails []string
	offset := 0
	for page := 0; ; page++ {
		if page == maxPages {
			return nil, l.Fail(access.LookupUnavailable, what, fmt.Errorf("more than %d pages of on-calls for one instant", maxPages))
		}
		q := url.Values{}
		q.Add("schedule_ids[]", schedule)
		q.Add("include[]", "users")
		q.Set("since", at.UTC().Format(time.RFC3339))
		q.Set("until", at.UTC().Add(time.Second).Format(time.RFC3339))
		q.Set("limit", strconv.Itoa(pageLimit))
		q.Set("offset", strconv.Itoa(offset))
		var p oncallsPage
		if err := l.Get(ctx, what, "/oncalls", q, &p); err != nil {
			return nil, err
		}
		for _, e := range p.Oncalls {
			if e.Schedule == nil || e.Schedule.ID != schedule {
				continue // a direct user target of a policy, or another schedule
			}
			if (e.Start != nil && at.Before(*e.Start)) || (e.End != nil && !at.Before(*e.End)) {
				continue
			}
			if e.User.Email == "" {
				return nil, l.Fail(access.LookupUnavailable, what,
					fmt.Errorf("on-call entry for user %s without an email (include[]=users not honoured)", e.User.ID))
			}
			emails = append(emails, e.User.Email)
		}
		if !p.More || len(p.Oncalls) == 0 {
			break
		}
		offset += len(p.Oncalls)
	}
	emails = connectors.NormalizeEmails(emails)
	if len(emails) == 0 {
		// Nobody: a gap in the rota, or a schedule PagerDuty does not have
		// (/oncalls filters silently). Only the schedule itself can tell.
		if err := l.Get(ctx, what, "/schedules/"+url.PathEscape(schedule), url.Values{"time_zone": {"UTC"}}, nil); err != nil {
			return nil, err
		}
	}
	return emails, nil
}
