// Package okta is the `okta_group` connector: a grant adds the person to an
// Okta group, a revoke removes them, through the Okta Management API.
//
// API pages followed:
//   - Groups, assign / unassign a user:
//     https://developer.okta.com/docs/api/openapi/okta-management/management/tag/Group/
//     (PUT and DELETE /api/v1/groups/{groupId}/users/{userId}, 204 No
//     Content; only OKTA_GROUP groups can be changed);
//   - Users, get a user by id or login and list with a filter:
//     https://developer.okta.com/docs/api/openapi/okta-management/management/tag/User/
//     (GET /api/v1/users/{login}; GET /api/v1/users?filter=profile.email eq "…");
//     the user's groups, paged with Link rel="next":
//     GET /api/v1/users/{userId}/groups;
//   - errors, {"errorCode":"E0000007","errorSummary":"Not found: …"}:
//     https://developer.okta.com/docs/reference/error-codes/;
//   - rate limits, X-Rate-Limit-Limit / -Remaining / -Reset (UTC epoch
//     seconds) on every answer and 429 when exceeded:
//     https://developer.okta.com/docs/reference/rl-best-practices/ and
//     https://developer.okta.com/docs/reference/rate-limits/;
//   - OAuth 2.0 for Okta with a service app (client credentials,
//     private_key_jwt client assertion, scoped access token):
//     https://developer.okta.com/docs/guides/oauth-for-okta/get-access-token-using-service-app/
//     and https://developer.okta.com/docs/api/openapi/okta-oauth/oauth/ ;
//   - SSWS API tokens:
//     https://developer.okta.com/docs/guides/create-an-api-token/main/.
//
// Semantics: PUT is idempotent at Okta (a member is assigned again with
// 204), so "already a member" is done; on revoke 204 and 404 (not a member,
// or the group is gone) are done. A 429 is retryable with RetryAfter taken
// from X-Rate-Limit-Reset (or Retry-After when present). A 401 with an SSWS
// token is permanent (the token is expired or revoked); with OAuth the
// connector fetches a fresh access token once and then gives up
// permanently. Unknown people are permanent errors that name the person
// and the Okta org.
package okta

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/connectors"
)

// Type is the connector type this package registers under.
const Type = "okta_group"

// DefaultScopes are the OAuth scopes requested with private_key_jwt: enough
// to change group memberships and to look people up.
var DefaultScopes = []string{"okta.groups.manage", "okta.users.read"}

// userCacheTTL is how long a resolved Okta user ID is reused. Short: a
// person re-created in Okta gets a new ID.
const userCacheTTL = 5 * time.Minute

// Config is the `connectors.NAME` block of an okta_group connector.
type Config struct {
	// OrgURL is the Okta org, e.g. https://example.okta.com. Required;
	// https (plain http is accepted only for loopback test servers).
	OrgURL string `json:"org_url"`
	// Token is an SSWS API token (or TokenFile names a file holding it).
	// Set it, or ClientID + PrivateKey, not both.
	Token     connectors.Redacted `json:"token"`
	TokenFile string              `json:"token_file"`
	// ClientID is the OAuth 2.0 service app's client ID, for client
	// credentials with private_key_jwt.
	ClientID string `json:"client_id"`
	// PrivateKey is the service app's PEM private key (RSA or EC P-256,
	// PKCS#1, SEC 1 or PKCS#8), or PrivateKeyFile names a file holding it.
	PrivateKey     connectors.Redacted `json:"private_key"`
	PrivateKeyFile string              `json:"private_key_file"`
	// KeyID is the kid of the key as registered with the app (optional).
	KeyID string `json:"key_id"`
	// Scopes overrides DefaultScopes.
	Scopes []string `json:"scopes"`
	// UserAttribute says how the person is found: "login" (default; GET
	// /api/v1/users/{email}) or "email" (filter on profile.email).
	UserAttribute string `json:"user_attribute"`
	// Timeout bounds each HTTP attempt (default 10s).
	Timeout connectors.Duration `json:"timeout"`
}

// Validate checks c; errors name keys relative to the block and never
// contain a secret.
func (c *Config) Validate() error {
	var errs []error
	if c.OrgURL == "" {
		errs = append(errs, errors.New("org_url: required"))
	} else if err := connectors.CheckBaseURL(c.OrgURL); err != nil {
		errs = append(errs, fmt.Errorf("org_url: %w", err))
	}
	hasToken := c.Token != "" || c.TokenFile != ""
	hasOAuth := c.ClientID != "" || c.PrivateKey != "" || c.PrivateKeyFile != ""
	switch {
	case hasToken && hasOAuth:
		errs = append(errs, errors.New("token: set either token (SSWS) or client_id and private_key (OAuth 2.0), not both"))
	case !hasToken && !hasOAuth:
		errs = append(errs, errors.New("token: required (or token_file), unless client_id and private_key are set"))
	case hasOAuth:
		if c.ClientID == "" {
			errs = append(errs, errors.New("client_id: required with private_key"))
		}
		if c.PrivateKey == "" && c.PrivateKeyFile == "" {
			errs = append(errs, errors.New("private_key: required with client_id (or private_key_file)"))
		}
		if c.PrivateKey != "" {
			if _, err := parsePrivateKey(string(c.PrivateKey)); err != nil {
				errs = append(errs, fmt.Errorf("private_key: %w", err))
			}
		}
	}
	if !hasOAuth && (len(c.Scopes) > 0 || c.KeyID != "") {
		errs = append(errs, errors.New("scopes: only used with client_id and private_key"))
	}
	switch c.UserAttribute {
	case "", "login", "email":
	default:
		errs = append(errs, errors.New(`user_attribute: must be "login" or "email"`))
	}
	if c.Timeout < 0 {
		errs = append(errs, errors.New("timeout: must be positive"))
	}
	return errors.Join(errs...)
}

// Connector adds and removes Okta group members. Safe for concurrent use.
type Connector struct {
	name    string
	base    string // org URL without trailing slash
	attr    string
	timeout time.Duration
	http    connectors.Doer
	clock   access.Clock
	auth    authorizer

	users *connectors.TTLCache[string, string] // person key → user ID
}

var (
	_ access.Connector     = (*Connector)(nil)
	_ access.Checker       = (*Connector)(nil)
	_ access.ParamsChecker = (*Connector)(nil)
	_ connectors.Factory   = Factory
)

// Factory builds an okta_group connector; it has the connectors.Factory
// signature.
func Factory(name string, cfg connectors.Config) (access.Connector, error) {
	var c Config
	if err := cfg.Decode(&c); err != nil {
		return nil, err
	}
	if cfg.HTTP == nil || cfg.Clock == nil {
		return nil, fmt.Errorf("connectors.%s: built without an HTTP client or clock (use Registry.Build)", name)
	}
	conn := &Connector{
		name: name, base: strings.TrimRight(c.OrgURL, "/"), attr: c.UserAttribute,
		timeout: c.Timeout.Std(), http: cfg.HTTP, clock: cfg.Clock, users: connectors.NewTTLCache[string, string](cfg.Clock, userCacheTTL),
	}
	if conn.attr == "" {
		conn.attr = "login"
	}
	if conn.timeout == 0 {
		conn.timeout = 10 * time.Second
	}
	if c.ClientID == "" {
		tok, err := cfg.Secret("token")
		if err != nil {
			return nil, err
		}
		conn.auth = &sswsAuth{token: tok}
		return conn, nil
	}
	pemText, err := cfg.Secret("private_key")
	if err != nil {
		return nil, err
	}
	key, err := parsePrivateKey(pemText)
	if err != nil {
		return nil, fmt.Errorf("connectors.%s.private_key: %w", name, err)
	}
	scopes := c.Scopes
	if len(scopes) == 0 {
		scopes = DefaultScopes
	}
	conn.auth = &oauthAuth{
		tokenURL: conn.base + "/oauth2/v1/token", clientID: c.ClientID, keyID: c.KeyID,
		key: key, scopes: strings.Join(scopes, " "), http: cfg.HTTP, clock: cfg.Clock,
	}
	return conn, nil
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
	resp, err := c.do(ctx, http.MethodPut, "/api/v1/groups/"+url.PathEscape(group)+"/users/"+url.PathEscape(uid), nil)
	if err == nil && resp.StatusCode == http.StatusNotFound {
		return access.PermanentError(fmt.Errorf("%s: Okta group %q or user %s not found in %s (%s)",
			what, group, uid, c.base, drainSummary(resp)))
	}
	return c.finish(resp, err, what)
}

// Revoke removes the person from params.group_id. Not a member (404) is
// done.
func (c *Connector) Revoke(ctx context.Context, g access.Grant) error {
	what := c.what("revoke", g)
	group, uid, err := c.prepare(ctx, g, what)
	if err != nil {
		// An unknown person is not "already absent": their login may have
		// changed while the membership lives on, so owners must look.
		return err
	}
	resp, err := c.do(ctx, http.MethodDelete, "/api/v1/groups/"+url.PathEscape(group)+"/users/"+url.PathEscape(uid), nil)
	if err == nil && resp.StatusCode == http.StatusNotFound {
		connectors.Drain(resp)
		return nil
	}
	return c.finish(resp, err, what)
}

// Check reports whether the person is a member of params.group_id, by
// paging through the user's groups.
func (c *Connector) Check(ctx context.Context, g access.Grant) (bool, error) {
	what := c.what("check", g)
	group, uid, err := c.prepare(ctx, g, what)
	if err != nil {
		return false, err
	}
	next := c.base + "/api/v1/users/" + url.PathEscape(uid) + "/groups?limit=200"
	for pages := 0; next != "" && pages < 100; pages++ {
		resp, err := c.doURL(ctx, http.MethodGet, next, nil)
		if err := c.finish(resp, err, what); err != nil {
			return false, err
		}
		var groups []struct {
			ID string `json:"id"`
		}
		derr := json.NewDecoder(io.LimitReader(resp.Body, 8<<20)).Decode(&groups)
		next = nextLink(resp.Header, c.base)
		connectors.Drain(resp)
		if derr != nil {
			return false, access.RetryableError(fmt.Errorf("%s: decode groups: %w", what, derr), 0)
		}
		for _, gr := range groups {
			if gr.ID == group {
				return true, nil
			}
		}
	}
	return false, nil
}

// ErrUnknownUser is wrapped by the permanent error for a person Okta does
// not know.
var ErrUnknownUser = errors.New("unknown user")

// prepare reads the group parameter and resolves the person.
func (c *Connector) prepare(ctx context.Context, g access.Grant, what string) (group, uid string, err error) {
	group, err = groupID(g.Params)
	if err != nil {
		return "", "", access.PermanentError(fmt.Errorf("%s: grant parameter %w", what, err))
	}
	uid, err = c.userID(ctx, g.User, what)
	return group, uid, err
}

// userID resolves the person to an Okta user ID, from the cache if fresh.
func (c *Connector) userID(ctx context.Context, p access.Person, what string) (string, error) {
	if p.Email == "" {
		return "", access.PermanentError(fmt.Errorf("%s: the person has no email in Slack, so they cannot be found in Okta", what))
	}
	key := c.attr + ":" + strings.ToLower(p.Email)
	return c.users.GetOrFill(key, func() (string, error) {
		if c.attr == "email" {
			return c.userByEmail(ctx, p, what)
		}
		return c.userByLogin(ctx, p, what)
	})
}

func (c *Connector) unknown(p access.Person, what, how string) error {
	return access.PermanentError(fmt.Errorf("%s: %w: no Okta user with %s %q in %s for %s",
		what, ErrUnknownUser, how, p.Email, c.base, person(p)))
}

func (c *Connector) userByLogin(ctx context.Context, p access.Person, what string) (string, error) {
	resp, err := c.do(ctx, http.MethodGet, "/api/v1/users/"+url.PathEscape(p.Email), nil)
	if err == nil && resp.StatusCode == http.StatusNotFound {
		connectors.Drain(resp)
		return "", c.unknown(p, what, "login")
	}
	if err := c.finish(resp, err, what); err != nil {
		return "", err
	}
	defer connectors.Drain(resp)
	var u struct {
		ID string `json:"id"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&u); err != nil || u.ID == "" {
		return "", access.RetryableError(fmt.Errorf("%s: unreadable Okta user answer", what), 0)
	}
	return u.ID, nil
}

func (c *Connector) userByEmail(ctx context.Context, p access.Person, what string) (string, error) {
	q := url.Values{"filter": {`profile.email eq "` + strings.ReplaceAll(p.Email, `"`, `\"`) + `"`}, "limit": {"2"}}
	resp, err := c.do(ctx, http.MethodGet, "/api/v1/users?"+q.Encode(), nil)
	if err := c.finish(resp, err, what); err != nil {
		return "", err
	}
	defer connectors.Drain(resp)
	var us []struct {
		ID string `json:"id"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&us); err != nil {
		return "", access.RetryableError(fmt.Errorf("%s: unreadable Okta users answer", what), 0)
	}
	switch len(us) {
	case 0:
		return "", c.unknown(p, what, "email")
	case 1:
		return us[0].ID, nil
	}
	return "", access.PermanentError(fmt.Errorf("%s: several Okta users in %s have email %q (%s); use user_attribute: login",
		what, c.base, p.Email, person(p)))
}

// do sends one API request with credentials; with OAuth a 401 fetches a
// new access token once and repeats the request.
func (c *Connector) do(ctx context.Context, method, path string, body any) (*http.Response, error) {
	return c.doURL(ctx, method, c.base+path, body)
}

func (c *Connector) doURL(ctx context.Context, method, u string, body any) (*http.Response, error) {
	ctx = connectors.WithAttemptTimeout(ctx, c.timeout)
	for attempt := 0; ; attempt++ {
		authz, err := c.auth.header(ctx, attempt > 0)
		if err != nil {
			return nil, err
		}
		req, err := connectors.NewJSONRequest(ctx, method, u, nil, body)
		if err != nil {
			return nil, access.PermanentError(err)
		}
		req.Header.Set("Authorization", authz)
		resp, err := c.http.Do(ctx, req)
		if err == nil && resp.StatusCode == http.StatusUnauthorized && attempt == 0 && c.auth.refreshable() {
			connectors.Drain(resp)
			continue
		}
		return resp, err
	}
}

// finish classifies a response: nil for 2xx (the body is left open for the
// caller), else a classified error honouring Okta's rate-limit headers.
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
	var reset time.Duration
	if resp.StatusCode == http.StatusTooManyRequests {
		reset = rateLimitReset(resp.Header, c.clock.Now())
	}
	cerr := connectors.Classify(resp, nil, what)
	var ce *access.ConnectorError
	if reset > 0 && errors.As(cerr, &ce) && ce.RetryAfter == 0 {
		ce.RetryAfter = reset
	}
	return cerr
}

// rateLimitReset reads X-Rate-Limit-Reset (UTC epoch seconds) as a wait
// from now; zero when absent or past.
func rateLimitReset(h http.Header, now time.Time) time.Duration {
	sec, err := strconv.ParseInt(strings.TrimSpace(h.Get("X-Rate-Limit-Reset")), 10, 64)
	if err != nil || sec <= 0 {
		return 0
	}
	return max(time.Unix(sec, 0).Sub(now), 0)
}

// nextLink returns the rel="next" URL of an Okta Link header if it is on
// the org (never follow a link off the org with our credentials).
func nextLink(h http.Header, base string) string {
	for _, v := range h.Values("Link") {
		for _, part := range strings.Split(v, ",") {
			u, params, ok := strings.Cut(strings.TrimSpace(part), ";")
			if !ok || !strings.Contains(strings.ReplaceAll(params, " ", ""), `rel="next"`) {
				continue
			}
			u = strings.Trim(strings.TrimSpace(u), "<>")
			if strings.HasPrefix(u, base+"/") {
				return u
			}
		}
	}
	return ""
}

func (c *Connector) what(op string, g access.Grant) string {
	return fmt.Sprintf("okta %s: %s %s for %s", c.name, op, g.ID, person(g.User))
}

// person names the person in errors (owners must know whom it concerns).
func person(p access.Person) string {
	if p.Email != "" {
		return p.SlackID + " (" + p.Email + ")"
	}
	return p.SlackID
}

// drainSummary returns Okta's errorCode and closes the body.
func drainSummary(resp *http.Response) string {
	defer connectors.Drain(resp)
	var e struct {
		ErrorCode string `json:"errorCode"`
	}
	_ = json.NewDecoder(io.LimitReader(resp.Body, 4<<10)).Decode(&e)
	if e.ErrorCode == "" {
		return "404"
	}
	return e.ErrorCode
}

// authorizer yields the Authorization header value.
type authorizer interface {
	// header returns the value; fresh forces a new token where that means
	// anything.
	header(ctx context.Context, fresh bool) (string, error)
	// refreshable reports whether a 401 is worth one more try.
	refreshable() bool
}

type sswsAuth struct{ token string }

func (a *sswsAuth) header(context.Context, bool) (string, error) { return "SSWS " + a.token, nil }
func (a *sswsAuth) refreshable() bool                            { return false }

// oauthAuth implements the client credentials grant with a private_key_jwt
// client assertion (RFC 7523 §2.2), caching the access token until a
// minute before it expires.
type oauthAuth struct {
	tokenURL, clientID, keyID, scopes string
	key                               crypto.Signer
	http                              connectors.Doer
	clock                             access.Clock

	mu      sync.Mutex
	token   string
	expires time.Time
}

func (a *oauthAuth) refreshable() bool { return true }

func (a *oauthAuth) header(ctx context.Context, fresh bool) (string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.clock.Now()
	if !fresh && a.token != "" && now.Before(a.expires.Add(-time.Minute)) {
		return "Bearer " + a.token, nil
	}
	a.token = ""
	assertion, err := a.assertion(now)
	if err != nil {
		return "", access.PermanentError(fmt.Errorf("okta token: sign client assertion: %w", err))
	}
	form := url.Values{
		"grant_type":            {"client_credentials"},
		"scope":                 {a.scopes},
		"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"},
		"client_assertion":      {assertion},
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.tokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		return "", access.PermanentError(fmt.Errorf("okta token: %w", err))
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	resp, err := a.http.Do(ctx, req)
	if err == nil && (resp.StatusCode == http.StatusBadRequest || resp.StatusCode == http.StatusUnauthorized) {
		// invalid_client / invalid_scope / invalid_grant: the app, its key
		// or its granted scopes are wrong; a retry will not help.
		var e struct {
			Error string `json:"error"`
		}
		_ = json.NewDecoder(io.LimitReader(resp.Body, 4<<10)).Decode(&e)
		connectors.Drain(resp)
		return "", access.PermanentError(fmt.Errorf("okta token: POST %s: %d: the org rejected the connector's client credentials (%s); check client_id, the key and the granted scopes",
			a.tokenURL, resp.StatusCode, safeWord(e.Error)))
	}
	if cerr := connectors.Classify(resp, err, "okta token"); cerr != nil {
		return "", cerr
	}
	defer connectors.Drain(resp)
	var tr struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
		ExpiresIn   int64  `json:"expires_in"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&tr); err != nil || tr.AccessToken == "" {
		return "", access.RetryableError(errors.New("okta token: unreadable token answer"), 0)
	}
	if tr.ExpiresIn <= 0 {
		tr.ExpiresIn = 300
	}
	a.token, a.expires = tr.AccessToken, now.Add(time.Duration(tr.ExpiresIn)*time.Second)
	return "Bearer " + a.token, nil
}

// safeWord keeps an OAuth error code only if it looks like one.
func safeWord(s string) string {
	for _, r := range s {
		if !(r == '_' || r >= 'a' && r <= 'z') {
			return "error"
		}
	}
	if s == "" || len(s) > 40 {
		return "error"
	}
	return s
}

// assertion builds and signs the client assertion JWT: iss and sub the
// client ID, aud the token endpoint, a five-minute lifetime (Okta accepts
// at most an hour) and a random jti.
func (a *oauthAuth) assertion(now time.Time) (string, error) {
	alg := "RS256"
	if _, ok := a.key.(*ecdsa.PrivateKey); ok {
		alg = "ES256"
	}
	hdr := map[string]string{"alg": alg, "typ": "JWT"}
	if a.keyID != "" {
		hdr["kid"] = a.keyID
	}
	jti := make([]byte, 16)
	if _, err := rand.Read(jti); err != nil {
		return "", err
	}
	claims := map[string]any{
		"iss": a.clientID, "sub": a.clientID, "aud": a.tokenURL,
		"iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(),
		"jti": base64.RawURLEncoding.EncodeToString(jti),
	}
	h, _ := json.Marshal(hdr)
	cl, _ := json.Marshal(claims)
	signing := base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(cl)
	sum := sha256.Sum256([]byte(signing))
	var sig []byte
	switch k := a.key.(type) {
	case *rsa.PrivateKey:
		s, err := rsa.SignPKCS1v15(rand.Reader, k, crypto.SHA256, sum[:])
		if err != nil {
			return "", err
		}
		sig = s
	case *ecdsa.PrivateKey:
		r, s, err := ecdsa.Sign(rand.Reader, k, sum[:])
		if err != nil {
			return "", err
		}
		// JWS ES256 is the fixed-width r||s, not ASN.1 (RFC 7518 §3.4).
		sig = append(pad32(r), pad32(s)...)
	default:
		return "", errors.New("unsupported key type")
	}
	return signing + "." + base64.RawURLEncoding.EncodeToString(sig), nil
}

func pad32(n *big.Int) []byte {
	b := make([]byte, 32)
	return n.FillBytes(b)
}

// parsePrivateKey reads a PEM RSA key (PKCS#1 or PKCS#8) or EC P-256 key
// (SEC 1 or PKCS#8). Errors never quote the key.
func parsePrivateKey(s string) (crypto.Signer, error) {
	block, _ := pem.Decode([]byte(strings.TrimSpace(s)))
	if block == nil {
		return nil, errors.New("not a PEM private key (the value is not shown)")
	}
	var key any
	var err error
	switch block.Type {
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("PEM block %q is not a private key", block.Type)
	}
	if err != nil {
		return nil, errors.New("unreadable private key (the value is not shown)")
	}
	switch k := key.(type) {
	case *rsa.PrivateKey:
		if k.N.BitLen() < 2048 {
			return nil, errors.New("RSA key shorter than 2048 bits")
		}
		return k, nil
	case *ecdsa.PrivateKey:
		if k.Curve.Params().BitSize != 256 {
			return nil, errors.New("EC key must be P-256 (ES256)")
		}
		return k, nil
	}
	return nil, errors.New("private key must be RSA or EC P-256")
}
