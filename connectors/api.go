package connectors

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/accessbot/accessbot/access"
)

// DefaultTimeout is the per-attempt timeout of a connector whose
// `timeout:` key is unset.
const DefaultTimeout = 10 * time.Second

// Timeout is the `timeout:` key every network connector takes: embed it
// (untagged) in the connector's config struct and Config.Decode reads it
// as that struct's own key.
type Timeout struct {
	// Timeout bounds each attempt of each call (default DefaultTimeout).
	Timeout Duration `json:"timeout"`
}

// Attempt returns the configured timeout, or DefaultTimeout.
func (t Timeout) Attempt() time.Duration { return t.Timeout.Or(DefaultTimeout) }

// DecodeHTTP is the start of every HTTP connector's Factory: it decodes
// the block into v strictly (Decode, then v's Validate) and checks that
// the connector is being built by Registry.Build, which lends the shared
// HTTP client and the clock. Errors name key paths, never values.
func (c Config) DecodeHTTP(v any) error {
	if err := c.Decode(v); err != nil {
		return err
	}
	if c.HTTP == nil || c.Clock == nil {
		return fmt.Errorf("connectors.%s: built without an HTTP client or clock (use Registry.Build)", c.Name)
	}
	return nil
}

// TrimBase returns a base URL without its trailing slashes, the form API
// and JSONCall expect (Base + "/path").
func TrimBase(u string) string { return strings.TrimRight(u, "/") }

// Credentials authorise a connector's requests to its target.
type Credentials interface {
	// Authorization returns the Authorization header value. fresh asks
	// for new credentials because the target refused the current ones
	// (401). Errors are classified connector errors.
	Authorization(ctx context.Context, fresh bool) (string, error)
	// Refreshable reports whether fresh credentials can differ from the
	// refused ones, so that a 401 is worth one more attempt.
	Refreshable() bool
}

// StaticAuth is a fixed Authorization header value ("SSWS …", "Bearer
// …"): an API token. A 401 to it is final (expired or revoked).
type StaticAuth string

// Authorization returns a.
func (a StaticAuth) Authorization(context.Context, bool) (string, error) { return string(a), nil }

// Refreshable is false.
func (StaticAuth) Refreshable() bool { return false }

// BasicAuth is HTTP Basic authentication (RFC 7617) as a StaticAuth:
// "Basic " and the base64 of user, a colon and password. Vendors that put
// more in the user part (Zendesk's "{email}/token") pass it whole.
func BasicAuth(user, password string) StaticAuth {
	return StaticAuth("Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+password)))
}

// API is one target's JSON API as a connector calls it: every request
// goes through SendJSON with the instance's credentials, extra headers
// and per-attempt timeout. Safe for concurrent use once built.
type API struct {
	// Base is the API root, without trailing slash; a JSONCall's Base
	// defaults to it.
	Base string
	HTTP Doer
	// Auth, when set, authorises every request. A 401 answered to
	// refreshable credentials is retried once with fresh ones.
	Auth    Credentials
	Timeout time.Duration
	// Header is set on every request (a vendor media type); a call's
	// own Header wins.
	Header http.Header
	// RetryAfter reads a 429's wait from the vendor's headers (see
	// JSONCall.RetryAfter), for calls that set none themselves.
	RetryAfter func(http.Header) time.Duration
}

// Send sends c through SendJSON (see there for what it returns), adding
// a's credentials, headers and timeout.
func (a *API) Send(ctx context.Context, c JSONCall) (int, error) {
	if c.Base == "" && !strings.Contains(c.Path, "://") {
		c.Base = a.Base
	}
	if c.Timeout == 0 {
		c.Timeout = a.Timeout
	}
	if c.RetryAfter == nil {
		c.RetryAfter = a.RetryAfter
	}
	if len(a.Header) > 0 {
		h := a.Header.Clone()
		for k, vs := range c.Header {
			h[http.CanonicalHeaderKey(k)] = vs
		}
		c.Header = h
	}
	accepts401 := false
	for _, s := range c.Accept {
		accepts401 = accepts401 || s == http.StatusUnauthorized
	}
	refresh := a.Auth != nil && a.Auth.Refreshable() && !accepts401
	if refresh {
		c.Accept = append(c.Accept[:len(c.Accept):len(c.Accept)], http.StatusUnauthorized)
	}
	for attempt := 0; ; attempt++ {
		if a.Auth != nil {
			authz, err := a.Auth.Authorization(ctx, attempt > 0)
			if err != nil {
				return 0, err
			}
			c.Authorize = func(r *http.Request) { r.Header.Set("Authorization", authz) }
		}
		if attempt > 0 {
			c.Accept = c.Accept[:len(c.Accept)-1] // a second 401 is final
		}
		status, err := SendJSON(ctx, a.HTTP, c)
		if refresh && attempt == 0 && status == http.StatusUnauthorized && err == nil {
			continue
		}
		return status, err
	}
}

// OnBase reports whether the absolute URL u lies under a.Base, so that
// a paging link the target sent may be followed with a's credentials
// (never send them to another host).
func (a *API) OnBase(u string) bool { return strings.HasPrefix(u, a.Base+"/") }

// ClientCredentials is an OAuth 2.0 client credentials grant (RFC 6749
// §4.4) whose access token is cached until a minute before it expires. It
// implements Credentials ("Bearer <token>", refreshable). Safe for
// concurrent use; token requests are serialised.
type ClientCredentials struct {
	// Name prefixes errors ("okta token").
	Name     string
	TokenURL string
	HTTP     Doer
	Clock    access.Clock
	// Form returns the token request's form at now: grant_type, scope
	// and the client's authentication (client_secret, or a fresh
	// client_assertion, RFC 7523 §2.2).
	Form func(now time.Time) (url.Values, error)
	// Who names the authority in the error for refused credentials ("the
	// org", "the tenant") and Hint says what to check.
	Who, Hint string

	mu      sync.Mutex
	token   string
	expires time.Time
}

var _ Credentials = (*ClientCredentials)(nil)

// Refreshable is true: a new token may succeed where a revoked one failed.
func (s *ClientCredentials) Refreshable() bool { return true }

// tokenError is the RFC 6749 §5.2 error answer, plus the AADSTS codes
// the Microsoft identity platform adds.
type tokenError struct {
	Error      string `json:"error"`
	ErrorCodes []int  `json:"error_codes"`
}

// Authorization returns "Bearer <token>", fetching a token when none is
// cached, it is within a minute of expiry, or fresh is set. A 400 or 401
// from the token endpoint (invalid_client, invalid_grant, invalid_scope,
// unauthorized_client) is permanent; other failures are classified by
// Classify.
func (s *ClientCredentials) Authorization(ctx context.Context, fresh bool) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.Clock.Now()
	if !fresh && s.token != "" && now.Before(s.expires.Add(-time.Minute)) {
		return "Bearer " + s.token, nil
	}
	s.token = ""
	form, err := s.Form(now)
	if err != nil {
		return "", access.PermanentError(fmt.Errorf("%s: %w", s.Name, err))
	}
	var tr struct {
		AccessToken string `json:"access_token"`
		ExpiresIn   int64  `json:"expires_in"`
	}
	var te tokenError
	status, err := SendJSON(ctx, s.HTTP, JSONCall{
		Op: s.Name, Method: http.MethodPost, Base: s.TokenURL, Form: form,
		// Token requests change nothing: the shared client may repeat one.
		Header:   http.Header{"Idempotency-Key": {"token"}},
		Accept:   []int{http.StatusBadRequest, http.StatusUnauthorized},
		ErrorOut: &te, Out: &tr,
	})
	switch {
	case err != nil:
		return "", err
	case status == http.StatusBadRequest || status == http.StatusUnauthorized:
		code := ""
		if len(te.ErrorCodes) > 0 {
			code = fmt.Sprintf(" AADSTS%d", te.ErrorCodes[0])
		}
		return "", access.PermanentError(fmt.Errorf("%s: POST %s: %d: %s rejected the connector's client credentials (%s%s); %s",
			s.Name, s.TokenURL, status, s.Who, OAuthCode(te.Error), code, s.Hint))
	case tr.AccessToken == "":
		return "", access.RetryableError(errors.New(s.Name+": unreadable token answer"), 0)
	}
	if tr.ExpiresIn <= 0 {
		tr.ExpiresIn = 300
	}
	s.token, s.expires = tr.AccessToken, now.Add(time.Duration(tr.ExpiresIn)*time.Second)
	return "Bearer " + s.token, nil
}

// OAuthCode keeps an OAuth error code (RFC 6749 §5.2: lower case and
// underscores) only if it looks like one, else "error": the field is
// the server's text and could echo anything.
func OAuthCode(s string) string {
	if s == "" || len(s) > 40 {
		return "error"
	}
	for _, r := range s {
		if r != '_' && (r < 'a' || r > 'z') {
			return "error"
		}
	}
	return s
}
