// Package okta is the `okta_group` connector: a grant adds the person to an
// Okta group, a revoke removes them, through the Okta Management API. It
// also answers, as an identity provider, whether a person's account is
// active (access.AccountChecker) and who their manager is
// (access.ManagerLookup).
//
// API pages followed:
//   - Groups, assign / unassign a user:
//     https://developer.okta.com/docs/api/openapi/okta-management/management/tag/Group/
//     (PUT and DELETE /api/v1/groups/{groupId}/users/{userId}, 204 No
//     Content; only OKTA_GROUP groups can be changed);
//   - Users, get a user by id or login and list with a filter or search:
//     https://developer.okta.com/docs/api/openapi/okta-management/management/tag/User/
//     (GET /api/v1/users/{idOrLogin}; GET /api/v1/users?filter=profile.email
//     eq "…" — filter supports only status, lastUpdated, id, profile.login,
//     profile.email, profile.firstName and profile.lastName; other profile
//     properties need search=…; a plain list omits DEPROVISIONED users, a
//     filter or search does not); the user's groups, paged with Link
//     rel="next": GET /api/v1/users/{userId}/groups;
//   - user status (STAGED, PROVISIONED, ACTIVE, RECOVERY, LOCKED_OUT,
//     PASSWORD_EXPIRED, SUSPENDED, DEPROVISIONED) and the base profile's
//     manager (display name) and managerId (ID of the manager, as the HR
//     source writes it, often an employee number):
//     https://developer.okta.com/docs/api/openapi/okta-management/management/tag/User/#tag/User/operation/getUser
//     and https://help.okta.com/en-us/Content/topics/users-groups-profiles/usgp-about-profiles.htm;
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
// Receipts: Receipt.UserID is the Okta user ID (00u…); PreExisting is set
// when the person was already a member of the group (read from their
// groups before the change; the revoke then leaves the membership). The
// revoke removes exactly that user ID from the group, without looking the
// person up, so a changed login or email does not matter; a user since
// deleted from Okta answers 404, counted as done. Only records granted
// before receipts existed are looked up by login or email, and then an
// unknown person is a permanent error wrapping access.ErrUnknownUser.
//
// Semantics: PUT is idempotent at Okta (a member is assigned again with
// 204); on revoke 204 and 404 (not a member, the user or the group gone)
// are done. A 429 is retryable with RetryAfter taken from
// X-Rate-Limit-Reset (or Retry-After when present). A 401 with an SSWS
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
	"math/big"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/connectors"
)

// Type is the connector type this package registers under.
const Type = "okta_group"

// DefaultScopes are the OAuth scopes requested with private_key_jwt: enough
// to change group memberships and to look people up.
var DefaultScopes = []string{"okta.groups.manage", "okta.users.read"}

// ParamGroupID is the grant parameter naming the group.
const ParamGroupID = "group_id"

// params are the grant parameters: group_id, an Okta group ID, required.
var params = connectors.Params{{
	Key: ParamGroupID, What: "an Okta group ID (00g…)",
	Check: connectors.Match(regexp.MustCompile(`^00g[A-Za-z0-9]+$`), "an Okta group ID (00g…)"),
}}

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
	connectors.Timeout
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
	return errors.Join(errs...)
}

// Connector adds and removes Okta group members, and reads people's
// status and manager. Safe for concurrent use.
type Connector struct {
	// GroupMembers gives Grant, Revoke, Check and CheckParams.
	*connectors.GroupMembers
	name string
	attr string
	api  *connectors.API
}

var (
	_ access.Connector      = (*Connector)(nil)
	_ access.Checker        = (*Connector)(nil)
	_ access.ParamsChecker  = (*Connector)(nil)
	_ access.AccountChecker = (*Connector)(nil)
	_ access.ManagerLookup  = (*Connector)(nil)
	_ connectors.Factory    = Factory
)

// Factory builds an okta_group connector; it has the connectors.Factory
// signature. It needs the durable State (connectors.Env.State).
func Factory(name string, cfg connectors.Config) (access.Connector, error) {
	var c Config
	if err := cfg.DecodeStateful(&c); err != nil {
		return nil, err
	}
	base := connectors.TrimBase(c.OrgURL)
	conn := &Connector{name: name, attr: c.UserAttribute}
	if conn.attr == "" {
		conn.attr = "login"
	}
	conn.api = &connectors.API{
		Base: base, HTTP: cfg.HTTP, Timeout: c.Attempt(),
		RetryAfter: func(h http.Header) time.Duration { return rateLimitReset(h, cfg.Clock.Now()) },
	}
	conn.GroupMembers = &connectors.GroupMembers{
		Kind: "okta", Name: name, Params: params, Key: ParamGroupID, Target: "Okta group",
		Users:   connectors.NewUsers(cfg.Clock, "the Okta org "+base, conn.lookupUser),
		Intents: connectors.NewIntents(cfg.State), IsMember: conn.isMember, Add: conn.add, Remove: conn.remove,
	}
	if c.ClientID == "" {
		tok, err := cfg.Secret("token")
		if err != nil {
			return nil, err
		}
		conn.api.Auth = connectors.StaticAuth("SSWS " + tok)
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
	a := &assertion{tokenURL: base + "/oauth2/v1/token", clientID: c.ClientID, keyID: c.KeyID, key: key}
	conn.api.Auth = &connectors.ClientCredentials{
		Name: "okta token", TokenURL: a.tokenURL, HTTP: cfg.HTTP, Clock: cfg.Clock,
		Who: "the org", Hint: "check client_id, the key and the granted scopes",
		Form: func(now time.Time) (url.Values, error) {
			jwt, err := a.sign(now)
			if err != nil {
				return nil, fmt.Errorf("sign client assertion: %w", err)
			}
			return url.Values{
				"grant_type":            {"client_credentials"},
				"scope":                 {strings.Join(scopes, " ")},
				"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"},
				"client_assertion":      {jwt},
			}, nil
		},
	}
	return conn, nil
}

// CheckParams checks a role's grant parameters without contacting the
// target: exactly group_id, an Okta group ID (00g…), required. Unknown keys are errors, with a did-you-mean.
func (c *Connector) CheckParams(p map[string]string) error { return params.CheckParams(p) }

// add assigns uid to group (PUT; assigning a member again is 204).
func (c *Connector) add(ctx context.Context, op string, _ access.Grant, group, uid string) error {
	status, err := c.api.Send(ctx, connectors.JSONCall{
		Op: op, Method: http.MethodPut, Path: membershipPath(group, uid), Accept: []int{http.StatusNotFound},
	})
	if err == nil && status == http.StatusNotFound {
		return access.PermanentError(fmt.Errorf("%s: Okta group %q or user %s not found in %s", op, group, uid, c.api.Base))
	}
	return err
}

// remove unassigns uid from group; 404 (not a member, the user or the
// group gone) is done.
func (c *Connector) remove(ctx context.Context, op string, _ access.Grant, group, uid string) error {
	_, err := c.api.Send(ctx, connectors.JSONCall{
		Op: op, Method: http.MethodDelete, Path: membershipPath(group, uid), Accept: []int{http.StatusNotFound},
	})
	return err
}

func membershipPath(group, uid string) string {
	return "/api/v1/groups/" + url.PathEscape(group) + "/users/" + url.PathEscape(uid)
}

// isMember pages through the user's groups (Link rel="next", on the org
// only) looking for group.
func (c *Connector) isMember(ctx context.Context, op, group, uid string) (bool, error) {
	next := c.api.Base + "/api/v1/users/" + url.PathEscape(uid) + "/groups?limit=200"
	for pages := 0; next != "" && pages < 100; pages++ {
		var groups []struct {
			ID string `json:"id"`
		}
		var h http.Header
		if _, err := c.api.Send(ctx, connectors.JSONCall{Op: op, Method: http.MethodGet, Path: next, Out: &groups, Headers: &h}); err != nil {
			return false, err
		}
		for _, gr := range groups {
			if gr.ID == group {
				return true, nil
			}
		}
		next = nextLink(h, c.api)
	}
	return false, nil
}

// oktaUser is the part of an Okta user this connector reads.
type oktaUser struct {
	ID      string `json:"id"`
	Status  string `json:"status"`
	Profile struct {
		Email     string `json:"email"`
		Manager   string `json:"manager"`
		ManagerID string `json:"managerId"`
	} `json:"profile"`
}

// lookupUser is the connectors.Users lookup: the user ID for email.
func (c *Connector) lookupUser(ctx context.Context, op, email string) (string, error) {
	u, err := c.findUser(ctx, op, email)
	if err != nil || u == nil {
		return "", err
	}
	return u.ID, nil
}

// findUser finds the user by login or email per user_attribute; nil when
// nobody matches.
func (c *Connector) findUser(ctx context.Context, op, email string) (*oktaUser, error) {
	if c.attr == "email" {
		return c.queryUser(ctx, op, "filter", `profile.email eq "`+quote(email)+`"`, "profile.email")
	}
	return c.getUser(ctx, op, email)
}

// getUser reads GET /api/v1/users/{idOrLogin}; nil on 404.
func (c *Connector) getUser(ctx context.Context, op, idOrLogin string) (*oktaUser, error) {
	var u oktaUser
	status, err := c.api.Send(ctx, connectors.JSONCall{
		Op: op, Method: http.MethodGet, Path: "/api/v1/users/" + url.PathEscape(idOrLogin),
		Accept: []int{http.StatusNotFound}, Out: &u,
	})
	switch {
	case err != nil:
		return nil, err
	case status == http.StatusNotFound:
		return nil, nil
	case u.ID == "":
		return nil, access.RetryableError(fmt.Errorf("%s: Okta answered a user without an id", op), 0)
	}
	return &u, nil
}

// queryUser lists users with a filter or search expression (key) and
// expects at most one; how names the attribute for the ambiguity error.
func (c *Connector) queryUser(ctx context.Context, op, key, expr, how string) (*oktaUser, error) {
	var us []oktaUser
	if _, err := c.api.Send(ctx, connectors.JSONCall{
		Op: op, Method: http.MethodGet, Path: "/api/v1/users",
		Query: url.Values{key: {expr}, "limit": {"2"}}, Out: &us,
	}); err != nil {
		return nil, err
	}
	switch len(us) {
	case 0:
		return nil, nil
	case 1:
		return &us[0], nil
	}
	return nil, access.PermanentError(fmt.Errorf("%s: %w: several Okta users in %s have %s %q", op, connectors.ErrAmbiguousUser, c.api.Base, how, expr))
}

// person reads p's Okta user; unknown is a permanent ErrUnknownUser.
func (c *Connector) person(ctx context.Context, op string, p access.Person) (*oktaUser, error) {
	if err := connectors.CheckEmail(op, p); err != nil {
		return nil, err
	}
	u, err := c.findUser(ctx, op, p.Email)
	if err == nil && u == nil {
		err = c.Users.Unknown(op, p)
	}
	return u, err
}

// AccountActive implements access.AccountChecker: false for an Okta user
// whose status is SUSPENDED or DEPROVISIONED (deactivated); true for the
// other statuses (ACTIVE, and the transitional STAGED, PROVISIONED,
// RECOVERY, LOCKED_OUT, PASSWORD_EXPIRED, in which the person is still
// employed).
func (c *Connector) AccountActive(ctx context.Context, p access.Person) (bool, error) {
	u, err := c.person(ctx, connectors.PersonOp("okta", c.name, "account status", p), p)
	if err != nil {
		return false, err
	}
	return u.Status != "SUSPENDED" && u.Status != "DEPROVISIONED", nil
}

// Manager implements access.ManagerLookup from the base profile's
// managerId, which the HR source fills with the manager's Okta user ID,
// login or employee number: it is resolved to that Okta user (by ID or
// login, else by profile.employeeNumber with search=) and their
// profile.email returned. Without managerId, a manager attribute that is
// itself an email address is returned; a display name alone cannot be
// resolved and is a permanent error saying to map managerId. "" when
// neither is set. A managerId that matches no Okta user is a permanent
// error (the record is wrong, not the person unknown).
func (c *Connector) Manager(ctx context.Context, p access.Person) (string, error) {
	op := connectors.PersonOp("okta", c.name, "manager lookup", p)
	u, err := c.person(ctx, op, p)
	if err != nil {
		return "", err
	}
	mid, mname := strings.TrimSpace(u.Profile.ManagerID), strings.TrimSpace(u.Profile.Manager)
	switch {
	case mid == "" && mname == "":
		return "", nil
	case mid == "" && strings.Contains(mname, "@"):
		return mname, nil
	case mid == "":
		return "", access.PermanentError(fmt.Errorf("%s: Okta records only a display name as manager (profile.manager), which cannot be resolved to a person; map profile.managerId in the HR source", op))
	}
	m, err := c.getUser(ctx, op, mid)
	if err == nil && m == nil && !strings.Contains(mid, "@") {
		m, err = c.queryUser(ctx, op, "search", `profile.employeeNumber eq "`+quote(mid)+`"`, "profile.employeeNumber")
	}
	switch {
	case err != nil:
		return "", err
	case m == nil:
		return "", access.PermanentError(fmt.Errorf("%s: profile.managerId %q matches no Okta user (by ID, login or employeeNumber)", op, mid))
	case m.Profile.Email == "":
		return "", access.PermanentError(fmt.Errorf("%s: the manager's Okta user %s has no email", op, m.ID))
	}
	return m.Profile.Email, nil
}

// quote escapes a value for an Okta filter or search string literal.
func quote(s string) string { return strings.ReplaceAll(strings.ReplaceAll(s, `\`, `\\`), `"`, `\"`) }

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
func nextLink(h http.Header, api *connectors.API) string {
	for _, v := range h.Values("Link") {
		for _, part := range strings.Split(v, ",") {
			u, ps, ok := strings.Cut(strings.TrimSpace(part), ";")
			if !ok || !strings.Contains(strings.ReplaceAll(ps, " ", ""), `rel="next"`) {
				continue
			}
			u = strings.Trim(strings.TrimSpace(u), "<>")
			if api.OnBase(u) {
				return u
			}
		}
	}
	return ""
}

// assertion is a service app's private_key_jwt client authentication
// (RFC 7523 §2.2).
type assertion struct {
	tokenURL, clientID, keyID string
	key                       crypto.Signer
}

// sign builds and signs the client assertion JWT: iss and sub the client
// ID, aud the token endpoint, a five-minute lifetime (Okta accepts at
// most an hour) and a random jti.
func (a *assertion) sign(now time.Time) (string, error) {
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
