// Package jira is the `jira` lookup connector: it checks that a ticket
// reference names a Jira issue that is not done (access.TicketSource), for
// a role's `ticket: { pattern, verify: NAME }`. It grants nothing.
//
// API, as documented by Atlassian:
//
//   - Jira Cloud: Get issue, GET /rest/api/3/issue/{issueIdOrKey} with
//     fields=status,summary
//     (https://developer.atlassian.com/cloud/jira/platform/rest/v3/api-group-issues/#api-rest-api-3-issue-issueidorkey-get);
//     authentication with HTTP Basic, the account's email and an API
//     token (https://developer.atlassian.com/cloud/jira/platform/basic-auth-for-rest-apis/);
//   - Jira Data Center / Server: the same resource under /rest/api/2
//     (there is no v3 there;
//     https://docs.atlassian.com/software/jira/docs/api/REST/latest/#api/2/issue-getIssue),
//     with a personal access token as "Authorization: Bearer …"
//     (https://confluence.atlassian.com/enterprise/using-personal-access-tokens-1026032365.html);
//   - the answer: {"key", "fields": {"summary", "status": {"name",
//     "statusCategory": {"key", "name"}}}}; a status category's key is
//     "new", "indeterminate" or "done" (Workflow status categories,
//     https://developer.atlassian.com/cloud/jira/platform/rest/v3/api-group-workflow-status-categories/):
//     an issue is closed when its status category is "done", whatever the
//     workflow calls the status;
//   - errors: {"errorMessages": [...], "errors": {}}; 404 "Issue does not
//     exist or you do not have permission to see it." (Jira does not say
//     which; Cloud may even answer 404 to bad credentials, JRACLOUD-94680),
//     401 for rejected credentials, 403 for a forbidden resource;
//   - rate limits: 429 with Retry-After in seconds
//     (https://developer.atlassian.com/cloud/jira/platform/rate-limiting/).
//
// The people-facing link is {url}/browse/{key}. Lookups are not cached: a
// ticket is checked once per request. Every failure is an
// *access.LookupError; access.CheckTicket fails closed on it.
package jira

import (
	"context"
	"errors"
	"net/url"
	"regexp"
	"strings"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/connectors"
)

// Type is the connector type this package registers under.
const Type = "jira"

// Vendor names Jira in messages for people.
const Vendor = "Jira"

// Config is the `connectors.NAME` block of a jira connector. Set email and
// api_token for Jira Cloud, or personal_access_token for Data Center.
type Config struct {
	// URL is the site: https://acme.atlassian.net, or a Data Center base
	// URL including any context path (https://jira.acme.example/jira).
	URL string `json:"url"`
	// Email and APIToken (or APITokenFile) authenticate to Jira Cloud.
	Email        string              `json:"email"`
	APIToken     connectors.Redacted `json:"api_token"`
	APITokenFile string              `json:"api_token_file"`
	// PersonalAccessToken (or its file) authenticates to Data Center.
	PersonalAccessToken     connectors.Redacted `json:"personal_access_token"`
	PersonalAccessTokenFile string              `json:"personal_access_token_file"`
	// LookupTimeout is the timeout key: it bounds one lookup, inner
	// retries included (default 5s).
	connectors.LookupTimeout
}

// Validate checks c; errors name keys relative to the block.
func (c *Config) Validate() error {
	errs := []error{connectors.RequireBaseURL("url", c.URL, "the Jira site, like https://acme.atlassian.net")}
	cloud := c.Email != "" || c.APIToken != "" || c.APITokenFile != ""
	dc := c.PersonalAccessToken != "" || c.PersonalAccessTokenFile != ""
	switch {
	case cloud && dc:
		errs = append(errs, errors.New("personal_access_token: set it (Data Center) or email and api_token (Cloud), not both"))
	case dc:
	case c.Email == "" && !cloud:
		errs = append(errs, errors.New("api_token: required: set email and api_token (Jira Cloud) or personal_access_token (Data Center)"))
	case c.Email == "":
		errs = append(errs, errors.New("email: required with api_token: the Atlassian account the token belongs to"))
	case !strings.Contains(c.Email, "@"):
		errs = append(errs, errors.New("email: must be an email address"))
	case c.APIToken == "" && c.APITokenFile == "":
		errs = append(errs, errors.New("api_token: required with email (or api_token_file)"))
	}
	return errors.Join(errs...)
}

// Client looks up Jira issues. It is safe for concurrent use.
type Client struct {
	connectors.LookupOnly
	site   string // without trailing slash
	lookup *connectors.Lookup
}

var (
	_ access.TicketSource = (*Client)(nil)
	_ access.Connector    = (*Client)(nil)
	_ connectors.Factory  = Factory
)

// Factory builds a jira connector from its configuration block. It makes
// no network call.
func Factory(name string, cfg connectors.Config) (access.Connector, error) {
	return New(name, cfg)
}

// New is Factory returning the concrete type.
func New(name string, cfg connectors.Config) (*Client, error) {
	var c Config
	if err := cfg.DecodeHTTP(&c); err != nil {
		return nil, err
	}
	site := connectors.TrimBase(c.URL)
	// The API root is site + /rest/api/3 (Cloud) or /rest/api/2 (Data
	// Center, which has no v3).
	api := connectors.API{HTTP: cfg.HTTP}
	if c.PersonalAccessToken != "" || c.PersonalAccessTokenFile != "" {
		pat, err := cfg.Secret("personal_access_token")
		if err != nil {
			return nil, err
		}
		api.Auth, api.Base = connectors.StaticAuth("Bearer "+pat), site+"/rest/api/2"
	} else {
		token, err := cfg.Secret("api_token")
		if err != nil {
			return nil, err
		}
		api.Auth, api.Base = connectors.BasicAuth(c.Email, token), site+"/rest/api/3"
	}
	return &Client{LookupOnly: connectors.LookupOnly{Type: Type}, site: site,
		lookup: &connectors.Lookup{Vendor: Vendor, API: api, Clock: cfg.Clock, Timeout: c.Whole()}}, nil
}

// issueKey is a Jira issue key: a project key (a letter, then letters,
// digits or underscores) and a number.
var issueKey = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]*-[1-9][0-9]*$`)

type issue struct {
	Key    string `json:"key"`
	Fields struct {
		Summary string `json:"summary"`
		Status  *struct {
			Name           string `json:"name"`
			StatusCategory struct {
				Key string `json:"key"`
			} `json:"statusCategory"`
		} `json:"status"`
	} `json:"fields"`
}

// Ticket looks up the issue ref (an issue key such as SUP-123) per
// access.TicketSource. A ref that is not an issue key is LookupInvalid
// without a call; a 404 is LookupNotFound.
func (c *Client) Ticket(ctx context.Context, ref string) (access.Ticket, error) {
	what := "ticket " + ref
	if !issueKey.MatchString(ref) {
		return access.Ticket{}, c.lookup.Fail(access.LookupInvalid, what,
			errors.New("a Jira issue key is a project key and a number, like SUP-123"))
	}
	ctx, cancel := c.lookup.Bound(ctx)
	defer cancel()
	var is issue
	if err := c.lookup.Get(ctx, what, "/issue/"+url.PathEscape(ref), url.Values{"fields": {"status,summary"}}, &is); err != nil {
		return access.Ticket{}, err
	}
	if is.Fields.Status == nil {
		return access.Ticket{}, c.lookup.Fail(access.LookupUnavailable, what, errors.New("issue answered without fields.status"))
	}
	key := is.Key
	if key == "" {
		key = ref
	}
	return access.Ticket{
		Ref:    key,
		Title:  is.Fields.Summary,
		URL:    c.site + "/browse/" + url.PathEscape(key),
		Closed: is.Fields.Status.StatusCategory.Key == "done",
		Status: is.Fields.Status.Name,
	}, nil
}
