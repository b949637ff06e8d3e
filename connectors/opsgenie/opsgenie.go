// Package opsgenie is the `opsgenie` lookup connector: it says who is on
// call on an Opsgenie schedule (access.OnCallSource), for a role's
// `approval: { auto_if_on_call: NAME:SCHEDULE }`. It grants nothing.
//
// API, as documented by Opsgenie (https://docs.opsgenie.com/docs/):
//
//   - Who is On Call API, Get On Calls:
//     GET /v2/schedules/{scheduleIdentifier}/on-calls with
//     scheduleIdentifierType (id, the default, or name), flat (true: the
//     answer's data.onCallRecipients lists the usernames, which are email
//     addresses, of everyone on call) and date ("yyyy-MM-dd'T'HH:mm:ssZ",
//     default now) (https://docs.opsgenie.com/docs/who-is-on-call-api).
//     The answer is {"data": {"_parent": {"id", "name", "enabled"},
//     "onCallRecipients": [...]}, "took", "requestId"}; the Go SDK
//     (github.com/opsgenie/opsgenie-go-sdk-v2, schedule/who_is_oncall_*.go)
//     sends the date as UTC "2006-01-02T15:04:05.000Z", as this does. The
//     answer is one object, not paged;
//   - authentication: "Authorization: GenieKey <API key>" from an API
//     integration; a team's key must be allowed to read the schedule, or
//     the answer is 403 with internal code 40301 (same page);
//   - responses and errors: {"message", "took", "requestId"}; 401 invalid
//     key or disabled integration, 403 not permitted, 404 no such
//     resource, 422 semantic errors, 429 throttled
//     (https://docs.opsgenie.com/docs/response);
//   - rate limits: 429 with X-RateLimit-State: THROTTLED,
//     X-RateLimit-Reason and X-RateLimit-Period-In-Sec (60 or 1, the
//     minute or second bucket that was exceeded); on-call lookups have
//     their own "Schedule-oncalls" domain
//     (https://docs.opsgenie.com/docs/api-rate-limiting; header names as
//     read by the Go SDK, client/client.go);
//   - the EU instance answers only at https://api.eu.opsgenie.com (set
//     api_url).
//
// A schedule is named by its ID (a UUID) or, when the configured schedule
// is not a UUID, by its name (scheduleIdentifierType=name). A disabled
// schedule (_parent.enabled false) has nobody on call. Answers are cached
// (connectors.OnCallCache, 60 s by default, `cache_ttl`); after a 429 no
// call is made until X-RateLimit-Period-In-Sec has passed. Every failure is
// an *access.LookupError: the caller fails closed.
package opsgenie

import (
	"context"
	"errors"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/connectors"
)

// Type is the connector type this package registers under.
const Type = "opsgenie"

// Vendor names Opsgenie in messages for people.
const Vendor = "Opsgenie"

// DefaultAPIURL is Opsgenie's API outside the EU.
const DefaultAPIURL = "https://api.opsgenie.com"

// Config is the `connectors.NAME` block of an opsgenie connector. Its
// api_url (connectors.OnCallConfig) replaces https://api.opsgenie.com:
// the EU instance (https://api.eu.opsgenie.com) or a test server.
type Config struct {
	// APIKey is the key of an API integration allowed to read the
	// schedule; or APIKeyFile names a file holding it.
	APIKey     connectors.Redacted `json:"api_key"`
	APIKeyFile string              `json:"api_key_file"`
	// OnCallConfig holds api_url, timeout (one whole lookup, inner
	// retries included; default 5s) and cache_ttl (how long an answer is
	// reused; default 60s, at most 10m).
	connectors.OnCallConfig
}

// Validate checks c; errors name keys relative to the block.
func (c *Config) Validate() error {
	var errs []error
	if c.APIKey == "" && c.APIKeyFile == "" {
		errs = append(errs, errors.New("api_key: required (or api_key_file): the key of an Opsgenie API integration"))
	}
	return errors.Join(append(errs, c.OnCallConfig.Validate())...)
}

// api is Opsgenie's API as connectors.NewOnCall needs it (see the package
// doc for the sources).
var api = connectors.OnCallVendor{
	Vendor: Vendor, DefaultAPIURL: DefaultAPIURL, SecretKey: "api_key",
	Auth:            func(key string) connectors.Credentials { return connectors.StaticAuth("GenieKey " + key) },
	RateLimitHeader: "X-RateLimit-Period-In-Sec",
	Fetch:           fetch,
}

// Client looks up on-call people at Opsgenie. It is safe for concurrent
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

// Factory builds an opsgenie connector from its configuration block. It
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

var uuidRe = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// OnCall returns the emails of the people on call on schedule (an Opsgenie
// schedule ID, or its name) at at, per access.OnCallSource. Errors are
// *access.LookupError: LookupNotFound for an unknown schedule,
// LookupRejected for a refused key, LookupUnavailable otherwise.
func (c *Client) OnCall(ctx context.Context, schedule string, at time.Time) ([]string, error) {
	if strings.TrimSpace(schedule) == "" {
		return nil, c.oncall.Fail(access.LookupInvalid, "an unnamed schedule", errors.New("empty schedule"))
	}
	return c.oncall.OnCall(ctx, schedule, at)
}

type onCallsAnswer struct {
	Data *struct {
		Parent struct {
			ID      string `json:"id"`
			Name    string `json:"name"`
			Enabled *bool  `json:"enabled"`
		} `json:"_parent"`
		OnCallRecipients []string `json:"onCallRecipients"`
	} `json:"data"`
}

// fetch asks Opsgenie through l who is on call on schedule at at.
func fetch(ctx context.Context, l *connectors.Lookup, schedule string, at time.Time) ([]string, error) {
	what := "schedule " + schedule
	q := url.Values{"flat": {"true"}, "date": {at.UTC().Format("2006-01-02T15:04:05.000Z")}}
	if uuidRe.MatchString(schedule) {
		q.Set("scheduleIdentifierType", "id")
	} else {
		q.Set("scheduleIdentifierType", "name")
	}
	var ans onCallsAnswer
	if err := l.Get(ctx, what, "/v2/schedules/"+url.PathEscape(schedule)+"/on-calls", q, &ans); err != nil {
		return nil, err
	}
	if ans.Data == nil {
		return nil, l.Fail(access.LookupUnavailable, what, errors.New("answer without data"))
	}
	if e := ans.Data.Parent.Enabled; e != nil && !*e {
		return nil, nil // a disabled schedule puts nobody on call
	}
	var emails []string
	for _, r := range ans.Data.OnCallRecipients {
		if strings.Contains(r, "@") { // usernames are emails; anything else is not a person
			emails = append(emails, r)
		}
	}
	return connectors.NormalizeEmails(emails), nil
}
