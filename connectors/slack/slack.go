// Package slack holds the Slack-native connectors: `slack_channel`
// (membership of a channel, usually private) and `slack_usergroup`
// (membership of a user group). They talk to the Slack Web API over plain
// HTTP through the shared client (connectors.API); slack-go stays in the
// bot adapter.
//
// Web API facts followed (/work/shared/reference/slack-protocol.md §3, §7;
// https://docs.slack.dev/reference/methods/…):
//
//   - every method is POST https://slack.com/api/<method> with form
//     arguments and "Authorization: Bearer xoxb-…"; the answer is HTTP 200
//     {"ok":true,…} or {"ok":false,"error":"<code>"} (with "needed" and
//     "provided" for missing_scope); rate limits are HTTP 429 with
//     Retry-After in seconds and {"ok":false,"error":"ratelimited"};
//   - conversations.invite (channels:manage / groups:write; the bot must be
//     a member): already_in_channel, not_in_channel (the bot is not a
//     member), user_not_found, is_archived, cant_invite;
//   - conversations.kick: not_in_channel (said both when the person and
//     when the bot is not a member), user_not_found, cant_kick_self,
//     restricted_action;
//   - conversations.members (channels:read / groups:read): paged with
//     cursor / response_metadata.next_cursor; a private channel the bot is
//     not in answers channel_not_found;
//   - usergroups.list (include_users, include_disabled; usergroups:read),
//     usergroups.users.update (usergroups:write) which replaces the whole
//     member list and cannot empty a group, usergroups.disable / enable:
//     a group's last member is removed by disabling it. User groups need a
//     paid plan; workspace settings may keep their management to admins
//     (permission_denied).
//
// A person's target-side identity is their Slack user ID, which never
// changes: receipts carry it, and revokes act on it.
package slack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/connectors"
)

// The connector types this package provides.
const (
	ChannelType   = "slack_channel"
	UsergroupType = "slack_usergroup"
)

// DefaultAPIURL is Slack's Web API base (with the trailing slash slack-go
// also uses).
const DefaultAPIURL = "https://slack.com/api/"

// Workspace is what the Slack connectors one program builds share: the
// defaults for blocks that name no bot_token or api_url (the runbook's own
// slack.bot_token and slack.api_url, so that `{ type: slack_channel }` is
// enough), and the per-user-group locks that serialise every change to one
// group across connector instances. Its factories are
// Workspace.ChannelFactory and Workspace.UsergroupFactory. Build it once,
// in cmd; it is safe for concurrent use.
type Workspace struct {
	// BotToken is the default bot token (xoxb-…); it may be empty when
	// only checking configuration.
	BotToken string
	// APIURL is the default Web API base URL ("" means DefaultAPIURL).
	APIURL string

	locks connectors.KeyedMutex[string]
}

// Config is the `connectors.NAME` block of a slack_channel or
// slack_usergroup connector. Every key is optional.
type Config struct {
	// BotToken is the bot token to act with (default: the runbook's
	// slack.bot_token); or BotTokenFile names a file holding it.
	BotToken     connectors.Redacted `json:"bot_token"`
	BotTokenFile string              `json:"bot_token_file"`
	// APIURL is the Web API base URL (default: the runbook's
	// slack.api_url, else https://slack.com/api/).
	APIURL string `json:"api_url"`
	connectors.Timeout
}

// Validate checks c; errors name keys relative to the block and never
// contain the token.
func (c *Config) Validate() error {
	var errs []error
	if c.APIURL != "" {
		if err := connectors.CheckBaseURL(c.APIURL); err != nil {
			errs = append(errs, fmt.Errorf("api_url: %w", err))
		}
	}
	if c.BotToken != "" && !strings.HasPrefix(string(c.BotToken), "xoxb-") {
		errs = append(errs, errors.New("bot_token: must be a bot token (xoxb-…; the value is not shown)"))
	}
	if c.Timeout.Timeout < 0 {
		errs = append(errs, errors.New("timeout: must be positive"))
	}
	return errors.Join(errs...)
}

// client is one connector instance's way to the Web API.
type client struct {
	kind, name string
	api        *connectors.API
	apiURL     string // for lock keys: one group per workspace
	// noToken is set when no bot token was configured anywhere (only
	// possible when checking configuration): every call fails.
	noToken bool
}

// newClient decodes cfg and builds the instance's client.
func (w *Workspace) newClient(kind, name string, cfg connectors.Config) (*client, error) {
	var c Config
	if err := cfg.DecodeStateful(&c); err != nil {
		return nil, err
	}
	token, err := cfg.Secret("bot_token")
	switch {
	case errors.Is(err, connectors.ErrNoSecret):
		token = w.BotToken
	case err != nil:
		return nil, err
	}
	apiURL := c.APIURL
	if apiURL == "" {
		apiURL = w.APIURL
	}
	if apiURL == "" {
		apiURL = DefaultAPIURL
	}
	if err := connectors.CheckBaseURL(apiURL); err != nil {
		return nil, fmt.Errorf("connectors.%s.api_url: %w (from slack.api_url)", name, err)
	}
	base := connectors.TrimBase(apiURL)
	return &client{
		kind: kind, name: name, apiURL: base, noToken: token == "",
		api: &connectors.API{Base: base, HTTP: cfg.HTTP, Auth: connectors.StaticAuth("Bearer " + token), Timeout: c.Attempt()},
	}, nil
}

// SlackError is an {"ok":false} answer of the Web API, wrapped in an
// access.ConnectorError.
type SlackError struct {
	Op, Method string
	// Code is Slack's error code ("channel_not_found").
	Code string
	// Needed is the missing scope of a missing_scope error.
	Needed string
}

func (e *SlackError) Error() string {
	s := fmt.Sprintf("%s: %s: Slack said %s", e.Op, e.Method, e.Code)
	switch {
	case e.Code == "missing_scope" && e.Needed != "":
		s += fmt.Sprintf(" (the bot token lacks the %s scope: add it in the app's OAuth & Permissions and reinstall)", e.Needed)
	case credentialCodes[e.Code]:
		s += " (the bot token was refused: check it, and that the app is still installed)"
	case e.Code == "permission_denied":
		s += " (the workspace lets only admins manage user groups, or the plan has none)"
	case e.Code == "not_in_channel":
		s += " (accessbot is not a member of the channel: invite the bot first)"
	}
	return s
}

// credentialCodes are errors about the token itself.
var credentialCodes = map[string]bool{
	"not_authed": true, "invalid_auth": true, "account_inactive": true, "token_revoked": true,
	"token_expired": true, "not_allowed_token_type": true, "no_permission": true, "ekm_access_denied": true,
}

// retryableCodes are errors Slack documents as transient.
var retryableCodes = map[string]bool{
	"ratelimited": true, "internal_error": true, "fatal_error": true, "service_unavailable": true,
	"request_timeout": true, "team_added_to_org": true,
}

// envelope is the part of every answer the client reads itself.
type envelope struct {
	OK     bool   `json:"ok"`
	Error  string `json:"error"`
	Needed string `json:"needed"`
}

// call sends method with form and decodes a successful answer into out
// (when non-nil). An {"ok":false} answer is a *SlackError: retryable for
// the transient codes, permanent otherwise; HTTP failures are classified
// by connectors.Classify (429 with Retry-After and 5xx retryable).
// Read-only methods (idempotent) may be repeated by the shared client's
// inner loop.
func (c *client) call(ctx context.Context, op, method string, form url.Values, out any, idempotent bool) error {
	if c.noToken {
		return access.PermanentError(fmt.Errorf("%s: no bot token: set connectors.%s.bot_token, or slack.bot_token", op, c.name))
	}
	var raw json.RawMessage
	call := connectors.JSONCall{Op: op + ": " + method, Method: http.MethodPost, Path: "/" + method, Form: form, Out: &raw}
	if idempotent {
		call.Header = http.Header{"Idempotency-Key": {method}}
	}
	if _, err := c.api.Send(ctx, call); err != nil {
		return err
	}
	var env envelope
	if err := json.Unmarshal(raw, &env); err != nil {
		return access.RetryableError(fmt.Errorf("%s: %s: unexpected answer", op, method), 0)
	}
	if !env.OK {
		code := env.Error
		if code == "" {
			code = "unknown_error"
		}
		se := &SlackError{Op: op, Method: method, Code: sanitizeCode(code), Needed: sanitizeCode(env.Needed)}
		if retryableCodes[code] {
			return access.RetryableError(se, 0)
		}
		return access.PermanentError(se)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return access.RetryableError(fmt.Errorf("%s: %s: unexpected answer: %v", op, method, err), 0)
		}
	}
	return nil
}

// sanitizeCode keeps an error code or scope name to the characters Slack
// uses for them, so a proxy's text never reaches an error.
func sanitizeCode(s string) string {
	if len(s) > 60 {
		s = s[:60]
	}
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_' || r == ':' || r == '.' || r == ',' {
			return r
		}
		return -1
	}, s)
}

// isCode reports whether err is the Slack error code.
func isCode(err error, code string) bool {
	var se *SlackError
	return errors.As(err, &se) && se.Code == code
}

func (c *client) op(verb string, g access.Grant) string {
	return connectors.Op(c.kind, c.name, verb, g)
}

// userOf is the Slack user a grant or revoke acts on: the receipt's, else
// the person's Slack ID (which never changes).
func userOf(op string, g access.Grant) (string, error) {
	if g.Receipt != nil && g.Receipt.UserID != "" {
		return g.Receipt.UserID, nil
	}
	if g.User.SlackID == "" {
		return "", access.PermanentError(fmt.Errorf("%s: the grant names no Slack user", op))
	}
	return g.User.SlackID, nil
}

// unknownUser is the permanent error for a Slack user ID Slack does not
// know.
func unknownUser(op, user string, cause error) error {
	return access.PermanentError(fmt.Errorf("%s: %w: Slack has no user %s (%v)", op, access.ErrUnknownUser, user, cause))
}

// userExists asks users.info whether Slack knows user (a deactivated user
// still exists).
func (c *client) userExists(ctx context.Context, op, user string) (bool, error) {
	err := c.call(ctx, op, "users.info", url.Values{"user": {user}}, nil, true)
	switch {
	case err == nil:
		return true, nil
	case isCode(err, "user_not_found"):
		return false, nil
	}
	return false, err
}
