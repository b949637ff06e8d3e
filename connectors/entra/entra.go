// Package entra is the `entra_group` connector: a grant adds the person to
// a Microsoft Entra ID (Azure AD) security or Microsoft 365 group, a revoke
// removes them, through Microsoft Graph v1.0.
//
// API pages followed:
//   - Add members: https://learn.microsoft.com/en-us/graph/api/group-post-members?view=graph-rest-1.0
//     (POST /groups/{id}/members/$ref with {"@odata.id":
//     "https://graph.microsoft.com/v1.0/directoryObjects/{id}"}, 204; 400
//     "One or more added object references already exist" for a member;
//     400 "…objects being referenced do not exist" during replication
//     after a group was created, to be retried after a short delay);
//   - Remove member: https://learn.microsoft.com/en-us/graph/api/group-delete-members?view=graph-rest-1.0
//     (DELETE /groups/{id}/members/{id}/$ref, 204; 404 when absent);
//   - Get user / list users: https://learn.microsoft.com/en-us/graph/api/user-get?view=graph-rest-1.0,
//     https://learn.microsoft.com/en-us/graph/api/user-list?view=graph-rest-1.0
//     (GET /users/{userPrincipalName}; GET /users?$filter=mail eq '…');
//   - List memberOf with @odata.nextLink paging:
//     https://learn.microsoft.com/en-us/graph/api/user-list-memberof?view=graph-rest-1.0
//     and https://learn.microsoft.com/en-us/graph/paging;
//   - Errors and throttling: https://learn.microsoft.com/en-us/graph/errors
//     ({"error":{"code","message","innerError"}}) and
//     https://learn.microsoft.com/en-us/graph/throttling (429/503 with
//     Retry-After);
//   - Client credentials token: https://learn.microsoft.com/en-us/entra/identity-platform/v2-oauth2-client-creds-grant-flow
//     (POST https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token,
//     scope https://graph.microsoft.com/.default; errors carry AADSTS codes,
//     e.g. AADSTS7000215 invalid secret, AADSTS7000222 expired secret).
//
// Semantics: already a member (that 400) is done; on revoke 204 and 404 are
// done. 429/503 are retryable with Retry-After. A 401
// (InvalidAuthenticationToken: the access token expired or was revoked)
// fetches a fresh token once and repeats the call; a second 401, a 403
// (missing permission) or a token endpoint refusing the secret is
// permanent.
package entra

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/connectors"
)

// Type is the connector type this package registers under.
const Type = "entra_group"

// Defaults for the Microsoft public cloud.
const (
	DefaultAuthorityURL = "https://login.microsoftonline.com"
	DefaultGraphURL     = "https://graph.microsoft.com/v1.0"
	// directoryObjects is the @odata.id prefix Graph documents for $ref
	// bodies; it names the object, not the host we send to.
	directoryObjects = "https://graph.microsoft.com/v1.0/directoryObjects/"
	userCacheTTL     = 5 * time.Minute
	maxPages         = 100
)

// ErrUnknownUser is wrapped by the permanent error for a person the
// tenant does not know.
var ErrUnknownUser = errors.New("unknown user")

// Config is the `connectors.NAME` block of an entra_group connector.
type Config struct {
	// TenantID is the directory (tenant) ID or a verified domain. Required.
	TenantID string `json:"tenant_id"`
	// ClientID is the app registration's application (client) ID. Required.
	ClientID string `json:"client_id"`
	// ClientSecret is the app's client secret (or ClientSecretFile names a
	// file holding it). Required.
	ClientSecret     connectors.Redacted `json:"client_secret"`
	ClientSecretFile string              `json:"client_secret_file"`
	// UserAttribute says how the person is found: "userPrincipalName"
	// (default; GET /users/{email}) or "mail" ($filter=mail eq '…').
	UserAttribute string `json:"user_attribute"`
	// AuthorityURL overrides DefaultAuthorityURL (national clouds, tests).
	AuthorityURL string `json:"authority_url"`
	// GraphURL overrides DefaultGraphURL (national clouds, tests).
	GraphURL string `json:"graph_url"`
	// Timeout bounds each HTTP attempt (default 10s).
	Timeout connectors.Duration `json:"timeout"`
}

// Validate checks c; errors name keys relative to the block and never
// contain a secret.
func (c *Config) Validate() error {
	var errs []error
	if c.TenantID == "" {
		errs = append(errs, errors.New("tenant_id: required"))
	} else if strings.ContainsAny(c.TenantID, "/?#% ") {
		errs = append(errs, errors.New("tenant_id: must be a tenant ID (GUID) or domain name"))
	}
	if c.ClientID == "" {
		errs = append(errs, errors.New("client_id: required"))
	}
	if c.ClientSecret == "" && c.ClientSecretFile == "" {
		errs = append(errs, errors.New("client_secret: required (or client_secret_file)"))
	}
	switch c.UserAttribute {
	case "", "userPrincipalName", "mail":
	default:
		errs = append(errs, errors.New(`user_attribute: must be "userPrincipalName" or "mail"`))
	}
	if c.AuthorityURL != "" {
		if err := connectors.CheckBaseURL(c.AuthorityURL); err != nil {
			errs = append(errs, fmt.Errorf("authority_url: %w", err))
		}
	}
	if c.GraphURL != "" {
		if err := connectors.CheckBaseURL(c.GraphURL); err != nil {
			errs = append(errs, fmt.Errorf("graph_url: %w", err))
		}
	}
	if c.Timeout < 0 {
		errs = append(errs, errors.New("timeout: must be positive"))
	}
	return errors.Join(errs...)
}

// Connector adds and removes Entra group members. Safe for concurrent use.
type Connector struct {
	name    string
	graph   string
	attr    string
	timeout time.Duration
	http    connectors.Doer
	clock   access.Clock
	tokens  *tokenSource

	users *connectors.TTLCache[string, string] // person key → user ID
}

var (
	_ access.Connector     = (*Connector)(nil)
	_ access.Checker       = (*Connector)(nil)
	_ access.ParamsChecker = (*Connector)(nil)
	_ connectors.Factory   = Factory
)

// Factory builds an entra_group connector; it has the connectors.Factory
// signature.
func Factory(name string, cfg connectors.Config) (access.Connector, error) {
	var c Config
	if err := cfg.Decode(&c); err != nil {
		return nil, err
	}
	if cfg.HTTP == nil || cfg.Clock == nil {
		return nil, fmt.Errorf("connectors.%s: built without an HTTP client or clock (use Registry.Build)", name)
	}
	secret, err := cfg.Secret("client_secret")
	if err != nil {
		return nil, err
	}
	authority := strings.TrimRight(c.AuthorityURL, "/")
	if authority == "" {
		authority = DefaultAuthorityURL
	}
	graph := strings.TrimRight(c.GraphURL, "/")
	if graph == "" {
		graph = DefaultGraphURL
	}
	conn := &Connector{
		name: name, graph: graph, attr: c.UserAttribute, timeout: c.Timeout.Std(),
		http: cfg.HTTP, clock: cfg.Clock, users: connectors.NewTTLCache[string, string](cfg.Clock, userCacheTTL),
		tokens: &tokenSource{
			url:      authority + "/" + url.PathEscape(c.TenantID) + "/oauth2/v2.0/token",
			tenantID: c.TenantID, clientID: c.ClientID, secret: secret, scope: graphScope(graph),
			http: cfg.HTTP, clock: cfg.Clock,
		},
	}
	if conn.attr == "" {
		conn.attr = "userPrincipalName"
	}
	if conn.timeout == 0 {
		conn.timeout = 10 * time.Second
	}
	return conn, nil
}

// graphScope is the .default scope of the Graph resource: the public
// cloud's unless graph_url points at another cloud's Graph.
func graphScope(graph string) string {
	u, err := url.Parse(graph)
	if err != nil || !strings.HasPrefix(u.Hostname(), "graph.") {
		return "https://graph.microsoft.com/.default"
	}
	return "https://" + u.Host + "/.default"
}

// graphError is Graph's error body.
type graphError struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
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
	body := map[string]string{"@odata.id": directoryObjects + uid}
	resp, err := c.do(ctx, http.MethodPost, c.graph+"/groups/"+url.PathEscape(group)+"/members/$ref", body, g.ID+".grant")
	if err == nil {
		switch resp.StatusCode {
		case http.StatusBadRequest:
			ge := peekError(resp)
			switch {
			case strings.Contains(ge.Error.Message, "added object references already exist"):
				connectors.Drain(resp)
				return nil
			case strings.Contains(ge.Error.Message, "do not exist"):
				// Replication lag after a group or user was created: Graph
				// documents a retry after a brief delay.
				err := connectors.Classify(resp, nil, what)
				var ce *access.ConnectorError
				if errors.As(err, &ce) {
					ce.Class, ce.RetryAfter = access.Retryable, 5*time.Second
				}
				return err
			}
		case http.StatusNotFound:
			return connectors.Classify(resp, nil, fmt.Sprintf("%s: Entra group %q not found", what, group))
		}
	}
	return c.finish(resp, err, what)
}

// Revoke removes the person from params.group_id. Not a member (404) is
// done.
func (c *Connector) Revoke(ctx context.Context, g access.Grant) error {
	what := c.what("revoke", g)
	group, uid, err := c.prepare(ctx, g, what)
	if err != nil {
		// An unknown person is not "already absent": their UPN may have
		// changed while the membership lives on.
		return err
	}
	resp, err := c.do(ctx, http.MethodDelete, c.graph+"/groups/"+url.PathEscape(group)+"/members/"+url.PathEscape(uid)+"/$ref", nil, "")
	if err == nil && resp.StatusCode == http.StatusNotFound {
		connectors.Drain(resp)
		return nil
	}
	return c.finish(resp, err, what)
}

// Check reports whether the person is a direct member of params.group_id,
// paging through their memberOf.
func (c *Connector) Check(ctx context.Context, g access.Grant) (bool, error) {
	what := c.what("check", g)
	group, uid, err := c.prepare(ctx, g, what)
	if err != nil {
		return false, err
	}
	next := c.graph + "/users/" + url.PathEscape(uid) + "/memberOf?$select=id"
	for pages := 0; next != "" && pages < maxPages; pages++ {
		resp, err := c.do(ctx, http.MethodGet, next, nil, "")
		if err := c.finish(resp, err, what); err != nil {
			return false, err
		}
		var page struct {
			Value []struct {
				ID string `json:"id"`
			} `json:"value"`
			NextLink string `json:"@odata.nextLink"`
		}
		derr := json.NewDecoder(io.LimitReader(resp.Body, 8<<20)).Decode(&page)
		connectors.Drain(resp)
		if derr != nil {
			return false, access.RetryableError(fmt.Errorf("%s: unreadable memberOf page", what), 0)
		}
		for _, o := range page.Value {
			if o.ID == group {
				return true, nil
			}
		}
		next = ""
		// Never send the token off the configured Graph host.
		if strings.HasPrefix(page.NextLink, c.graph+"/") {
			next = page.NextLink
		}
	}
	return false, nil
}

func (c *Connector) prepare(ctx context.Context, g access.Grant, what string) (group, uid string, err error) {
	group, err = groupID(g.Params)
	if err != nil {
		return "", "", access.PermanentError(fmt.Errorf("%s: grant parameter %w", what, err))
	}
	uid, err = c.userID(ctx, g.User, what)
	return group, uid, err
}

// userID resolves the person to an Entra object ID, from the cache if
// fresh.
func (c *Connector) userID(ctx context.Context, p access.Person, what string) (string, error) {
	if p.Email == "" {
		return "", access.PermanentError(fmt.Errorf("%s: the person has no email in Slack, so they cannot be found in Entra ID", what))
	}
	key := strings.ToLower(p.Email)
	return c.users.GetOrFill(key, func() (string, error) { return c.lookupUser(ctx, p, what) })
}

// lookupUser asks the server for the person's user ID.
func (c *Connector) lookupUser(ctx context.Context, p access.Person, what string) (string, error) {
	unknown := access.PermanentError(fmt.Errorf("%s: %w: no Entra ID user with %s %q in tenant %s for %s",
		what, ErrUnknownUser, c.attr, p.Email, c.tokens.tenant(), person(p)))
	var id string
	if c.attr == "mail" {
		q := "$filter=" + url.QueryEscape("mail eq '"+strings.ReplaceAll(p.Email, "'", "''")+"'") + "&$select=id"
		resp, err := c.do(ctx, http.MethodGet, c.graph+"/users?"+q, nil, "")
		if err := c.finish(resp, err, what); err != nil {
			return "", err
		}
		var list struct {
			Value []struct {
				ID string `json:"id"`
			} `json:"value"`
		}
		derr := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&list)
		connectors.Drain(resp)
		switch {
		case derr != nil:
			return "", access.RetryableError(fmt.Errorf("%s: unreadable users answer", what), 0)
		case len(list.Value) == 0:
			return "", unknown
		case len(list.Value) > 1:
			return "", access.PermanentError(fmt.Errorf("%s: several Entra ID users have mail %q (%s); use user_attribute: userPrincipalName", what, p.Email, person(p)))
		}
		id = list.Value[0].ID
	} else {
		resp, err := c.do(ctx, http.MethodGet, c.graph+"/users/"+url.PathEscape(p.Email)+"?$select=id", nil, "")
		if err == nil && resp.StatusCode == http.StatusNotFound {
			connectors.Drain(resp)
			return "", unknown
		}
		if err := c.finish(resp, err, what); err != nil {
			return "", err
		}
		var u struct {
			ID string `json:"id"`
		}
		derr := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&u)
		connectors.Drain(resp)
		if derr != nil || u.ID == "" {
			return "", access.RetryableError(fmt.Errorf("%s: unreadable user answer", what), 0)
		}
		id = u.ID
	}
	return id, nil
}

// do sends one Graph request with a bearer token; on 401 it fetches a new
// token once and repeats the request.
func (c *Connector) do(ctx context.Context, method, u string, body any, idemKey string) (*http.Response, error) {
	ctx = connectors.WithAttemptTimeout(ctx, c.timeout)
	for attempt := 0; ; attempt++ {
		tok, err := c.tokens.get(ctx, attempt > 0)
		if err != nil {
			return nil, err
		}
		req, err := connectors.NewJSONRequest(ctx, method, u, nil, body)
		if err != nil {
			return nil, access.PermanentError(err)
		}
		if idemKey != "" {
			// Adding a member is idempotent (a repeat answers "already
			// exist"), so the shared client may retry the POST.
			req.Header.Set("Idempotency-Key", idemKey)
		}
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := c.http.Do(ctx, req)
		if err == nil && resp.StatusCode == http.StatusUnauthorized && attempt == 0 {
			connectors.Drain(resp)
			continue
		}
		return resp, err
	}
}

// finish classifies a response: nil for 2xx (the body is left open for
// the caller), else a classified error.
func (c *Connector) finish(resp *http.Response, err error, what string) error {
	if err != nil {
		var ce *access.ConnectorError
		if errors.As(err, &ce) { // from the token source
			return err
		}
		return connectors.Classify(nil, err, what)
	}
	if resp.StatusCode >= 200 && resp.StatusCode <= 299 {
		return nil
	}
	return connectors.Classify(resp, nil, what)
}

// peekError parses Graph's error body and puts the bytes back so that
// Classify can still quote it.
func peekError(resp *http.Response) graphError {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(b))
	var e graphError
	_ = json.Unmarshal(b, &e)
	return e
}

func (c *Connector) what(op string, g access.Grant) string {
	return fmt.Sprintf("entra %s: %s %s for %s", c.name, op, g.ID, person(g.User))
}

// person names the person in errors (owners must know whom it concerns).
func person(p access.Person) string {
	if p.Email != "" {
		return p.SlackID + " (" + p.Email + ")"
	}
	return p.SlackID
}

// tokenSource runs the client credentials grant against the Microsoft
// identity platform, caching the access token until a minute before it
// expires.
type tokenSource struct {
	url, tenantID, clientID, secret, scope string
	http                                   connectors.Doer
	clock                                  access.Clock

	mu      sync.Mutex
	token   string
	expires time.Time
}

// tenant names the tenant in messages.
func (s *tokenSource) tenant() string { return s.tenantID }

func (s *tokenSource) get(ctx context.Context, fresh bool) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clock.Now()
	if !fresh && s.token != "" && now.Before(s.expires.Add(-time.Minute)) {
		return s.token, nil
	}
	s.token = ""
	form := url.Values{
		"grant_type": {"client_credentials"}, "client_id": {s.clientID},
		"client_secret": {s.secret}, "scope": {s.scope},
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, strings.NewReader(form.Encode()))
	if err != nil {
		return "", access.PermanentError(fmt.Errorf("entra token: %w", err))
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	// Token requests are safe to repeat.
	req.Header.Set("Idempotency-Key", "token")
	resp, err := s.http.Do(ctx, req)
	if err == nil && (resp.StatusCode == http.StatusBadRequest || resp.StatusCode == http.StatusUnauthorized) {
		var e struct {
			Error      string `json:"error"`
			ErrorCodes []int  `json:"error_codes"`
		}
		_ = json.NewDecoder(io.LimitReader(resp.Body, 8<<10)).Decode(&e)
		connectors.Drain(resp)
		code := ""
		if len(e.ErrorCodes) > 0 {
			code = fmt.Sprintf(" AADSTS%d", e.ErrorCodes[0])
		}
		return "", access.PermanentError(fmt.Errorf("entra token: POST %s: %d: the tenant rejected the connector's client credentials (%s%s); check tenant_id, client_id and client_secret (expired?)",
			s.url, resp.StatusCode, oauthCode(e.Error), code))
	}
	if cerr := connectors.Classify(resp, err, "entra token"); cerr != nil {
		return "", cerr
	}
	defer connectors.Drain(resp)
	var tr struct {
		AccessToken string `json:"access_token"`
		ExpiresIn   int64  `json:"expires_in"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&tr); err != nil || tr.AccessToken == "" {
		return "", access.RetryableError(errors.New("entra token: unreadable token answer"), 0)
	}
	if tr.ExpiresIn <= 0 {
		tr.ExpiresIn = 300
	}
	s.token, s.expires = tr.AccessToken, now.Add(time.Duration(tr.ExpiresIn)*time.Second)
	return s.token, nil
}

// oauthCode keeps an OAuth error code only if it looks like one.
func oauthCode(s string) string {
	if s == "" || len(s) > 40 {
		return "error"
	}
	for _, r := range s {
		if !(r == '_' || r >= 'a' && r <= 'z') {
			return "error"
		}
	}
	return s
}
