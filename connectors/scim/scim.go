// Package scim is the `scim_group` connector: a grant adds the person to a
// group of any application that exposes SCIM 2.0, a revoke removes them,
// with PATCH on the group.
//
// Specifications followed:
//   - RFC 7644 (SCIM protocol) https://www.rfc-editor.org/rfc/rfc7644 :
//     §3.4.2 filtering (GET /Users?filter=userName eq "…", ListResponse
//     with totalResults and Resources), §3.5.2 PATCH with the PatchOp
//     message, §3.5.2.1 "add" to members (a value already present is not
//     added again; 200 or 204), §3.5.2.2 "remove" with a value filter
//     path members[value eq "…"] (204; "noTarget" when nothing matched),
//     §3.12 error responses (urn:ietf:params:scim:api:messages:2.0:Error
//     with status, scimType, detail), §2 bearer authentication;
//   - RFC 7643 (SCIM core schema) https://www.rfc-editor.org/rfc/rfc7643 :
//     §4.1 User (userName, emails), §4.2 Group (members with value = the
//     member's id).
//
// Semantics: already a member is done (any 2xx; a 409 "uniqueness" some
// servers send on a duplicate add is checked against the group and done
// if the person is in it). On revoke, 2xx, 404 (group gone) and 400
// "noTarget" (not a member) are done. PATCH requests carry an
// Idempotency-Key (the grant ID and operation) because the operations are
// idempotent, which lets the shared client retry them. 429 and 5xx are
// retryable (Retry-After honoured); 401/403 (expired or revoked token)
// and other 4xx are permanent.
package scim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/connectors"
)

// Type is the connector type this package registers under.
const Type = "scim_group"

// SCIM message schema URIs (RFC 7644 §3.5.2, §3.4.2, §3.12).
const (
	PatchOpSchema = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
	ListSchema    = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
	ErrorSchema   = "urn:ietf:params:scim:api:messages:2.0:Error"
	scimJSON      = "application/scim+json"
	userCacheTTL  = 5 * time.Minute
)

// ErrUnknownUser is wrapped by the permanent error for a person the SCIM
// service does not know.
var ErrUnknownUser = errors.New("unknown user")

// Config is the `connectors.NAME` block of a scim_group connector.
type Config struct {
	// BaseURL is the SCIM service root, e.g. https://app.example.com/scim/v2
	// (the URL /Users and /Groups are relative to). Required; https (plain
	// http is accepted only for loopback test servers).
	BaseURL string `json:"base_url"`
	// Token is the bearer token (or TokenFile names a file holding it).
	Token     connectors.Redacted `json:"token"`
	TokenFile string              `json:"token_file"`
	// UserAttribute is how the person is found: "userName" (default;
	// filter userName eq "<email>") or "emails" (filter emails.value eq
	// "<email>").
	UserAttribute string `json:"user_attribute"`
	// Timeout bounds each HTTP attempt (default 10s).
	Timeout connectors.Duration `json:"timeout"`
}

// Validate checks c; errors name keys relative to the block and never
// contain a secret.
func (c *Config) Validate() error {
	var errs []error
	if c.BaseURL == "" {
		errs = append(errs, errors.New("base_url: required"))
	} else if err := connectors.CheckBaseURL(c.BaseURL); err != nil {
		errs = append(errs, fmt.Errorf("base_url: %w", err))
	}
	if c.Token == "" && c.TokenFile == "" {
		errs = append(errs, errors.New("token: required (or token_file)"))
	}
	switch c.UserAttribute {
	case "", "userName", "emails":
	default:
		errs = append(errs, errors.New(`user_attribute: must be "userName" or "emails"`))
	}
	if c.Timeout < 0 {
		errs = append(errs, errors.New("timeout: must be positive"))
	}
	return errors.Join(errs...)
}

// Connector adds and removes SCIM group members. Safe for concurrent use.
type Connector struct {
	name    string
	base    string
	token   string
	attr    string
	timeout time.Duration
	http    connectors.Doer
	clock   access.Clock

	users *connectors.TTLCache[string, string] // person key → user ID
}

var (
	_ access.Connector     = (*Connector)(nil)
	_ access.Checker       = (*Connector)(nil)
	_ access.ParamsChecker = (*Connector)(nil)
	_ connectors.Factory   = Factory
)

// Factory builds a scim_group connector; it has the connectors.Factory
// signature.
func Factory(name string, cfg connectors.Config) (access.Connector, error) {
	var c Config
	if err := cfg.Decode(&c); err != nil {
		return nil, err
	}
	if cfg.HTTP == nil || cfg.Clock == nil {
		return nil, fmt.Errorf("connectors.%s: built without an HTTP client or clock (use Registry.Build)", name)
	}
	tok, err := cfg.Secret("token")
	if err != nil {
		return nil, err
	}
	conn := &Connector{
		name: name, base: strings.TrimRight(c.BaseURL, "/"), token: tok, attr: c.UserAttribute,
		timeout: c.Timeout.Std(), http: cfg.HTTP, clock: cfg.Clock, users: connectors.NewTTLCache[string, string](cfg.Clock, userCacheTTL),
	}
	if conn.attr == "" {
		conn.attr = "userName"
	}
	if conn.timeout == 0 {
		conn.timeout = 10 * time.Second
	}
	return conn, nil
}

// patchOp is one PATCH operation (RFC 7644 §3.5.2).
type patchOp struct {
	Op    string `json:"op"`
	Path  string `json:"path"`
	Value any    `json:"value,omitempty"`
}

type patchRequest struct {
	Schemas    []string  `json:"schemas"`
	Operations []patchOp `json:"Operations"`
}

type member struct {
	Value string `json:"value"`
}

// scimError is the RFC 7644 §3.12 error body.
type scimError struct {
	Status   string `json:"status"`
	ScimType string `json:"scimType"`
	Detail   string `json:"detail"`
}

// Grant implements access.Connector. It returns an empty receipt: this
// connector does not yet record what it changed.
func (c *Connector) Grant(ctx context.Context, g access.Grant) (access.Receipt, error) {
	return access.Receipt{}, c.applyGrant(ctx, g)
}

// Grant adds the person to params.group_id. Already a member is done.
func (c *Connector) applyGrant(ctx context.Context, g access.Grant) error {
	what := c.what("grant", g)
	group, uid, err := c.prepare(ctx, g, what)
	if err != nil {
		return err
	}
	body := patchRequest{Schemas: []string{PatchOpSchema}, Operations: []patchOp{
		{Op: "add", Path: "members", Value: []member{{Value: uid}}},
	}}
	resp, err := c.patch(ctx, group, g.ID+".grant", body)
	if err == nil {
		switch resp.StatusCode {
		case http.StatusNotFound:
			return c.finish(resp, err, fmt.Sprintf("%s: SCIM group %q (or the user) not found at %s", what, group, c.base))
		case http.StatusConflict:
			// Some services refuse a duplicate member with 409 uniqueness
			// instead of ignoring it: done if the person is indeed in.
			connectors.Drain(resp)
			in, cerr := c.isMember(ctx, group, uid, what)
			if cerr != nil {
				return cerr
			}
			if in {
				return nil
			}
			return access.PermanentError(fmt.Errorf("%s: PATCH %s/Groups/%s: 409 Conflict, and the person is not a member", what, c.base, group))
		}
	}
	return c.finish(resp, err, what)
}

// Revoke removes the person from params.group_id. Not a member (noTarget
// or 2xx) and a group that is gone (404) are done.
func (c *Connector) Revoke(ctx context.Context, g access.Grant) error {
	what := c.what("revoke", g)
	group, uid, err := c.prepare(ctx, g, what)
	if err != nil {
		// An unknown person is not "already absent": their userName may
		// have changed while the membership lives on.
		return err
	}
	body := patchRequest{Schemas: []string{PatchOpSchema}, Operations: []patchOp{
		{Op: "remove", Path: `members[value eq ` + strconv.Quote(uid) + `]`},
	}}
	resp, err := c.patch(ctx, group, g.ID+".revoke", body)
	if err == nil {
		switch resp.StatusCode {
		case http.StatusNotFound:
			connectors.Drain(resp)
			return nil
		case http.StatusBadRequest:
			if peekError(resp).ScimType == "noTarget" {
				connectors.Drain(resp)
				return nil
			}
		}
	}
	return c.finish(resp, err, what)
}

// Check reports whether the person is a member of params.group_id.
func (c *Connector) Check(ctx context.Context, g access.Grant) (bool, error) {
	what := c.what("check", g)
	group, uid, err := c.prepare(ctx, g, what)
	if err != nil {
		return false, err
	}
	return c.isMember(ctx, group, uid, what)
}

// isMember reads the group's members (GET /Groups/{id}?attributes=members).
func (c *Connector) isMember(ctx context.Context, group, uid, what string) (bool, error) {
	resp, err := c.do(ctx, http.MethodGet, "/Groups/"+url.PathEscape(group)+"?attributes=members", nil, "")
	if err == nil && resp.StatusCode == http.StatusNotFound {
		connectors.Drain(resp)
		return false, nil
	}
	if err := c.finish(resp, err, what); err != nil {
		return false, err
	}
	defer connectors.Drain(resp)
	var gr struct {
		Members []member `json:"members"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 32<<20)).Decode(&gr); err != nil {
		return false, access.RetryableError(fmt.Errorf("%s: unreadable SCIM group", what), 0)
	}
	for _, m := range gr.Members {
		if m.Value == uid {
			return true, nil
		}
	}
	return false, nil
}

// prepare reads the group parameter and resolves the person.
func (c *Connector) prepare(ctx context.Context, g access.Grant, what string) (group, uid string, err error) {
	group, err = groupID(g.Params)
	if err != nil {
		return "", "", access.PermanentError(fmt.Errorf("%s: grant parameter %w", what, err))
	}
	uid, err = c.userID(ctx, g.User, what)
	return group, uid, err
}

// userID resolves the person by filter, from the cache if fresh.
func (c *Connector) userID(ctx context.Context, p access.Person, what string) (string, error) {
	if p.Email == "" {
		return "", access.PermanentError(fmt.Errorf("%s: the person has no email in Slack, so they cannot be found in %s", what, c.base))
	}
	key := strings.ToLower(p.Email)
	return c.users.GetOrFill(key, func() (string, error) { return c.lookupUser(ctx, p, what) })
}

// lookupUser asks the server for the person's user ID.
func (c *Connector) lookupUser(ctx context.Context, p access.Person, what string) (string, error) {
	f := "userName eq " + strconv.Quote(p.Email)
	if c.attr == "emails" {
		// A value filter on the multi-valued attribute (RFC 7644
		// §3.4.2.2), which servers support more widely than emails.value.
		f = "emails[value eq " + strconv.Quote(p.Email) + "]"
	}
	q := url.Values{"filter": {f}, "count": {"2"}, "attributes": {"id"}}
	resp, err := c.do(ctx, http.MethodGet, "/Users?"+q.Encode(), nil, "")
	if err := c.finish(resp, err, what); err != nil {
		return "", err
	}
	defer connectors.Drain(resp)
	var lr struct {
		TotalResults int `json:"totalResults"`
		Resources    []struct {
			ID string `json:"id"`
		} `json:"Resources"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&lr); err != nil {
		return "", access.RetryableError(fmt.Errorf("%s: unreadable SCIM list response", what), 0)
	}
	switch {
	case len(lr.Resources) == 0:
		return "", access.PermanentError(fmt.Errorf("%s: %w: no SCIM user with %s %q at %s for %s",
			what, ErrUnknownUser, c.attr, p.Email, c.base, person(p)))
	case len(lr.Resources) > 1 || lr.TotalResults > 1:
		return "", access.PermanentError(fmt.Errorf("%s: several SCIM users at %s match %s %q (%s)",
			what, c.base, c.attr, p.Email, person(p)))
	case lr.Resources[0].ID == "":
		return "", access.PermanentError(fmt.Errorf("%s: the SCIM user for %s has no id", what, person(p)))
	}
	id := lr.Resources[0].ID
	return id, nil
}

func (c *Connector) patch(ctx context.Context, group, idemKey string, body patchRequest) (*http.Response, error) {
	return c.do(ctx, http.MethodPatch, "/Groups/"+url.PathEscape(group), body, idemKey)
}

// do sends one request with the bearer token.
func (c *Connector) do(ctx context.Context, method, path string, body any, idemKey string) (*http.Response, error) {
	req, err := connectors.NewJSONRequest(ctx, method, c.base+path, nil, body)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", scimJSON)
	if body != nil {
		req.Header.Set("Content-Type", scimJSON)
	}
	if idemKey != "" {
		// The PATCH operations are idempotent; the key lets the shared
		// client retry them.
		req.Header.Set("Idempotency-Key", idemKey)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	return c.http.Do(connectors.WithAttemptTimeout(ctx, c.timeout), req)
}

// finish classifies a response: nil for 2xx (the body is left open for
// the caller), else the shared classification.
func (c *Connector) finish(resp *http.Response, err error, what string) error {
	if err == nil && resp.StatusCode >= 200 && resp.StatusCode <= 299 {
		return nil
	}
	return connectors.Classify(resp, err, what)
}

// peekError parses an RFC 7644 §3.12 error body and puts the bytes back
// so that Classify can still quote it.
func peekError(resp *http.Response) scimError {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(b))
	var e scimError
	_ = json.Unmarshal(b, &e)
	// scimType keywords are case-sensitive in the RFC; some services
	// capitalise them anyway.
	if strings.EqualFold(e.ScimType, "noTarget") {
		e.ScimType = "noTarget"
	}
	return e
}

func (c *Connector) what(op string, g access.Grant) string {
	return fmt.Sprintf("scim %s: %s %s for %s", c.name, op, g.ID, person(g.User))
}

// person names the person in errors (owners must know whom it concerns).
func person(p access.Person) string {
	if p.Email != "" {
		return p.SlackID + " (" + p.Email + ")"
	}
	return p.SlackID
}
