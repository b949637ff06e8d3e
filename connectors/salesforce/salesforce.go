// Package salesforce is the `salesforce_permission_set` connector: it
// grants access by assigning a permission set (or permission set group) to
// a Salesforce user and revokes it by deleting the assignment.
//
// API, as documented by Salesforce:
//
//   - authentication: OAuth 2.0 JWT bearer flow for a connected app
//     (RFC 7523; https://help.salesforce.com/s/articleView?id=sf.remoteaccess_oauth_jwt_flow.htm):
//     a JWT with iss = consumer key, sub = username, aud = login URL and an
//     exp at most 3 minutes ahead, signed RS256, is POSTed as
//     grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&assertion=…
//     to {login_url}/services/oauth2/token, which answers access_token and
//     instance_url (no refresh token; a new JWT is the refresh); errors
//     are 400 {"error":"invalid_grant","error_description":…};
//   - REST API (https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/):
//     GET /services/data/vXX.X/query?q=SOQL answers {"totalSize",
//     "done","records"}; POST /sobjects/PermissionSetAssignment answers
//     201 {"id","success":true}; PATCH and DELETE /sobjects/…/{id} answer
//     204; errors are arrays [{"message","errorCode","fields"}]:
//     DUPLICATE_VALUE for an existing assignment, ENTITY_IS_DELETED /
//     NOT_FOUND (404) for a gone record, INVALID_SESSION_ID (401) for an
//     expired token, REQUEST_LIMIT_EXCEEDED (403) for the org's API limit
//     (https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/errorcodes.htm);
//   - SOQL string literals escape ' and \ with a backslash
//     (https://developer.salesforce.com/docs/atlas.en-us.soql_sosl.meta/soql_sosl/sforce_api_calls_soql_select_quotedstringescapes.htm);
//   - PermissionSetAssignment.ExpirationDate (API 52.0+) makes Salesforce
//     itself remove the assignment when it passes
//     (https://developer.salesforce.com/docs/atlas.en-us.object_reference.meta/object_reference/sforce_api_objects_permissionsetassignment.htm).
//
// With set_expiration, the assignment carries the grant's expiry, so that
// access ends even if accessbot is down; accessbot's own revoke still runs
// and treats "already gone" as done. An org that rejects the field is
// remembered (for the life of the process) and assignments are made
// without it. When the assignment already exists with an earlier
// expiration (an overlapping grant), the expiration is moved later, never
// earlier.
package salesforce

import (
	"bytes"
	"context"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/connectors"
)

// Type is the connector type this package registers.
const Type = "salesforce_permission_set"

// Grant parameters; exactly one is required.
const (
	ParamPermissionSet      = "permission_set"       // Id (0PS…) or API name
	ParamPermissionSetGroup = "permission_set_group" // Id (0PG…) or DeveloperName
)

// Defaults.
const (
	DefaultLoginURL   = "https://login.salesforce.com"
	DefaultAPIVersion = "62.0"
)

// jwtLifetime is the assertion's lifetime: Salesforce accepts at most 3
// minutes.
const jwtLifetime = 3 * time.Minute

// Config is the `connectors.NAME` block of a salesforce_permission_set
// connector.
type Config struct {
	// LoginURL is https://login.salesforce.com (default),
	// https://test.salesforce.com for sandboxes, or the org's My Domain
	// login URL. It is the JWT's audience.
	LoginURL string `json:"login_url"`
	// TokenURL overrides {login_url}/services/oauth2/token.
	TokenURL string `json:"token_url"`
	// ClientID is the connected app's consumer key. Required.
	ClientID string `json:"client_id"`
	// Username is the integration user the connected app acts as.
	// Required.
	Username string `json:"username"`
	// PrivateKey is the PEM RSA private key whose certificate is uploaded
	// to the connected app; or PrivateKeyFile names a file holding it.
	PrivateKey     connectors.Redacted `json:"private_key"`
	PrivateKeyFile string              `json:"private_key_file"`
	// APIVersion is the REST API version, e.g. "62.0" (default). 52.0 or
	// later is needed for set_expiration.
	APIVersion string `json:"api_version"`
	// UserField is the User field matched against the person's email:
	// Username (default; unique) or Email (not unique in Salesforce).
	UserField string `json:"user_field"`
	// SetExpiration sets the assignment's ExpirationDate to the grant's
	// expiry.
	SetExpiration bool `json:"set_expiration"`
	// Timeout bounds each HTTP attempt (default 10s).
	Timeout connectors.Duration `json:"timeout"`
}

var apiVersionRE = regexp.MustCompile(`^[0-9]{2,3}\.0$`)

// Validate checks c; errors name keys relative to the block and never
// contain the key.
func (c *Config) Validate() error {
	var errs []error
	for _, u := range []struct{ key, val string }{{"login_url", c.LoginURL}, {"token_url", c.TokenURL}} {
		if u.val == "" {
			continue
		}
		p, err := url.Parse(u.val)
		if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" || p.User != nil || p.RawQuery != "" {
			errs = append(errs, fmt.Errorf("%s: must be an absolute https:// URL without credentials or query", u.key))
		}
	}
	if c.ClientID == "" {
		errs = append(errs, errors.New("client_id: required (the connected app's consumer key)"))
	}
	if c.Username == "" {
		errs = append(errs, errors.New("username: required (the integration user)"))
	}
	if c.PrivateKey == "" && c.PrivateKeyFile == "" {
		errs = append(errs, errors.New("private_key: required (or private_key_file)"))
	}
	if v := strings.TrimPrefix(c.APIVersion, "v"); v != "" && !apiVersionRE.MatchString(v) {
		errs = append(errs, errors.New(`api_version: must look like "62.0"`))
	}
	switch c.UserField {
	case "", "Username", "Email":
	default:
		errs = append(errs, errors.New("user_field: must be Username or Email"))
	}
	if c.Timeout < 0 {
		errs = append(errs, errors.New("timeout: must be positive"))
	}
	return errors.Join(errs...)
}

// Connector manages permission set assignments. It is safe for concurrent
// use.
type Connector struct {
	name      string
	audience  string
	tokenURL  string
	clientID  string
	username  string
	key       *rsa.PrivateKey
	version   string // "v62.0"
	userField string
	setExpiry bool
	timeout   time.Duration
	http      connectors.Doer
	clock     access.Clock

	// noExpiry is set once the org rejected ExpirationDate.
	noExpiry atomic.Bool

	mu       sync.Mutex
	token    string
	instance string
}

var (
	_ access.Connector     = (*Connector)(nil)
	_ access.Checker       = (*Connector)(nil)
	_ access.ParamsChecker = (*Connector)(nil)
	_ connectors.Factory   = Factory
)

// Factory builds a salesforce_permission_set connector from its
// configuration block.
func Factory(name string, cfg connectors.Config) (access.Connector, error) {
	var c Config
	if err := cfg.Decode(&c); err != nil {
		return nil, err
	}
	pem, err := cfg.Secret("private_key")
	if err != nil {
		return nil, err
	}
	key, err := jwt.ParseRSAPrivateKeyFromPEM([]byte(pem))
	if err != nil {
		// The parser's message says what is wrong with the format, not
		// the key's content.
		return nil, fmt.Errorf("connectors.%s.private_key: not a PEM RSA private key (PKCS#1 or PKCS#8)", name)
	}
	if cfg.HTTP == nil || cfg.Clock == nil {
		return nil, fmt.Errorf("connectors.%s: built without an HTTP client or clock (use Registry.Build)", name)
	}
	login := strings.TrimRight(c.LoginURL, "/")
	if login == "" {
		login = DefaultLoginURL
	}
	tokenURL := c.TokenURL
	if tokenURL == "" {
		tokenURL = login + "/services/oauth2/token"
	}
	version := strings.TrimPrefix(c.APIVersion, "v")
	if version == "" {
		version = DefaultAPIVersion
	}
	field := c.UserField
	if field == "" {
		field = "Username"
	}
	timeout := c.Timeout.Std()
	if timeout == 0 {
		timeout = 10 * time.Second
	}
	return &Connector{
		name: name, audience: login, tokenURL: tokenURL, clientID: c.ClientID, username: c.Username,
		key: key, version: "v" + version, userField: field, setExpiry: c.SetExpiration,
		timeout: timeout, http: cfg.HTTP, clock: cfg.Clock,
	}, nil
}

// target is what a grant assigns: a permission set or a group.
type target struct {
	field string // PermissionSetId or PermissionSetGroupId
	id    string
}

// sfError is one element of Salesforce's error array.
type sfError struct {
	Message   string   `json:"message"`
	ErrorCode string   `json:"errorCode"`
	Fields    []string `json:"fields"`
}

// answer is a response read in full (bodies are small).
type answer struct {
	status int
	body   []byte
	errs   []sfError
}

func (a *answer) has(code string) bool {
	for _, e := range a.errs {
		if e.ErrorCode == code {
			return true
		}
	}
	return false
}

// Grant implements access.Connector. It returns an empty receipt: this
// connector does not yet record what it changed.
func (c *Connector) Grant(ctx context.Context, g access.Grant) (access.Receipt, error) {
	return access.Receipt{}, c.applyGrant(ctx, g)
}

// Grant assigns the permission set (group); an existing assignment is
// done (its expiration is moved later if needed).
func (c *Connector) applyGrant(ctx context.Context, g access.Grant) error {
	op := c.op("grant", g)
	userID, t, err := c.resolve(ctx, op, g, true)
	if err != nil {
		return err
	}
	existing, err := c.assignment(ctx, op, userID, t)
	if err != nil {
		return err
	}
	if existing != nil {
		return c.extend(ctx, op, existing, g.ExpiresAt)
	}
	withExpiry := c.wantExpiry(g)
	for {
		body := map[string]any{"AssigneeId": userID, t.field: t.id}
		if withExpiry {
			body["ExpirationDate"] = sfTime(g.ExpiresAt)
		}
		a, err := c.call(ctx, op, http.MethodPost, "/sobjects/PermissionSetAssignment", nil, body)
		if err != nil {
			return err
		}
		switch {
		case a.status >= 200 && a.status <= 299:
			return nil
		case a.has("DUPLICATE_VALUE"):
			return nil // assigned meanwhile
		case withExpiry && a.status == http.StatusBadRequest && mentionsExpiration(a.errs):
			// This org (edition, API version or setting) does not take
			// ExpirationDate: remember, and assign without it.
			c.noExpiry.Store(true)
			withExpiry = false
			continue
		}
		return c.classify(op, http.MethodPost, "/sobjects/PermissionSetAssignment", a)
	}
}

// Revoke deletes the assignment; none, or one deleted meanwhile (by
// Salesforce at its ExpirationDate, say), is done. An unknown user is done.
func (c *Connector) Revoke(ctx context.Context, g access.Grant) error {
	op := c.op("revoke", g)
	userID, t, err := c.resolve(ctx, op, g, false)
	if err != nil || userID == "" {
		return err
	}
	existing, err := c.assignment(ctx, op, userID, t)
	if err != nil || existing == nil {
		return err
	}
	path := "/sobjects/PermissionSetAssignment/" + url.PathEscape(existing.ID)
	a, err := c.call(ctx, op, http.MethodDelete, path, nil, nil)
	if err != nil {
		return err
	}
	if a.status >= 200 && a.status <= 299 || a.status == http.StatusNotFound || a.has("ENTITY_IS_DELETED") {
		return nil
	}
	return c.classify(op, http.MethodDelete, path, a)
}

// Check reports whether the assignment exists.
func (c *Connector) Check(ctx context.Context, g access.Grant) (bool, error) {
	op := c.op("check", g)
	userID, t, err := c.resolve(ctx, op, g, false)
	if err != nil || userID == "" {
		return false, err
	}
	existing, err := c.assignment(ctx, op, userID, t)
	return existing != nil, err
}

func (c *Connector) op(verb string, g access.Grant) string {
	who := g.User.SlackID
	if g.User.Email != "" {
		who += " (" + g.User.Email + ")"
	}
	return fmt.Sprintf("salesforce %s: %s %s for %s", c.name, verb, g.ID, who)
}

func (c *Connector) wantExpiry(g access.Grant) bool {
	return c.setExpiry && !c.noExpiry.Load() && !g.ExpiresAt.IsZero()
}

// sfTime formats t as a Salesforce dateTime (ISO 8601, UTC).
func sfTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

func mentionsExpiration(errs []sfError) bool {
	for _, e := range errs {
		for _, f := range e.Fields {
			if strings.EqualFold(f, "ExpirationDate") {
				return true
			}
		}
		if strings.Contains(strings.ToLower(e.Message), "expirationdate") {
			return true
		}
	}
	return false
}

// resolve finds the user and the permission set (group). With forGrant,
// the user must be active and unknown users are a permanent error; else an
// unknown user returns "" and no error.
func (c *Connector) resolve(ctx context.Context, op string, g access.Grant, forGrant bool) (string, target, error) {
	var t target
	ps, psg, perr := permissionSet(g.Params)
	switch {
	case perr != nil:
		return "", t, access.PermanentError(fmt.Errorf("%s: grant parameter %w", op, perr))
	case g.User.Email == "":
		return "", t, access.PermanentError(fmt.Errorf("%s: the person has no email address", op))
	}
	soql := "SELECT Id, IsActive FROM User WHERE " + c.userField + " = " + quote(g.User.Email)
	var users []sfUser
	if err := c.query(ctx, op, soql, &users); err != nil {
		return "", t, err
	}
	if forGrant {
		users = slices.DeleteFunc(users, func(u sfUser) bool { return !u.IsActive })
	}
	switch {
	case len(users) == 0 && forGrant:
		return "", t, access.PermanentError(fmt.Errorf("%s: no active Salesforce user with %s %q", op, c.userField, g.User.Email))
	case len(users) == 0:
		return "", t, nil
	case len(users) > 1:
		return "", t, access.PermanentError(fmt.Errorf("%s: %d Salesforce users have %s %q; use user_field: Username, or make it unique", op, len(users), c.userField, g.User.Email))
	}
	var err error
	if ps != "" {
		t.field = "PermissionSetId"
		t.id, err = c.lookupID(ctx, op, ParamPermissionSet, ps, "0PS", "PermissionSet", "Name")
	} else {
		t.field = "PermissionSetGroupId"
		t.id, err = c.lookupID(ctx, op, ParamPermissionSetGroup, psg, "0PG", "PermissionSetGroup", "DeveloperName")
	}
	return users[0].ID, t, err
}

type sfUser struct {
	ID       string `json:"Id"`
	IsActive bool   `json:"IsActive"`
}

// idRE matches 15- and 18-character Salesforce record IDs.
var idRE = regexp.MustCompile(`^[a-zA-Z0-9]{15}(?:[a-zA-Z0-9]{3})?$`)

// lookupID returns value if it is an ID of the object (its key prefix),
// else the ID of the record whose nameField is value. Not found is
// permanent, naming the parameter.
func (c *Connector) lookupID(ctx context.Context, op, param, value, prefix, object, nameField string) (string, error) {
	if strings.HasPrefix(value, prefix) && idRE.MatchString(value) {
		return value, nil
	}
	var recs []struct {
		ID string `json:"Id"`
	}
	soql := "SELECT Id FROM " + object + " WHERE " + nameField + " = " + quote(value)
	if err := c.query(ctx, op, soql, &recs); err != nil {
		return "", err
	}
	if len(recs) != 1 {
		return "", access.PermanentError(fmt.Errorf("%s: grant parameter %s: %d %s records named %q, want exactly 1", op, param, len(recs), object, value))
	}
	return recs[0].ID, nil
}

// assignmentRec is a PermissionSetAssignment as queried.
type assignmentRec struct {
	ID             string  `json:"Id"`
	ExpirationDate *string `json:"ExpirationDate"`
}

// assignment returns the user's assignment of t, or nil.
func (c *Connector) assignment(ctx context.Context, op, userID string, t target) (*assignmentRec, error) {
	fields := "Id"
	if c.setExpiry && !c.noExpiry.Load() {
		fields += ", ExpirationDate"
	}
	soql := "SELECT " + fields + " FROM PermissionSetAssignment WHERE AssigneeId = " + quote(userID) +
		" AND " + t.field + " = " + quote(t.id)
	var recs []assignmentRec
	if err := c.query(ctx, op, soql, &recs); err != nil {
		var se *connectors.StatusError
		if fields != "Id" && errors.As(err, &se) && se.StatusCode == http.StatusBadRequest &&
			strings.Contains(strings.ToLower(se.Message), "expirationdate") {
			// API version or org without the field: carry on without it.
			c.noExpiry.Store(true)
			return c.assignment(ctx, op, userID, t)
		}
		return nil, err
	}
	if len(recs) == 0 {
		return nil, nil
	}
	return &recs[0], nil
}

// extend moves an existing assignment's expiration to until when it would
// otherwise end earlier (an overlapping grant). An assignment without an
// expiration is permanent and is left alone.
func (c *Connector) extend(ctx context.Context, op string, a *assignmentRec, until time.Time) error {
	if !c.setExpiry || c.noExpiry.Load() || until.IsZero() || a.ExpirationDate == nil {
		return nil
	}
	cur, err := parseSFTime(*a.ExpirationDate)
	if err == nil && !cur.Before(until) {
		return nil
	}
	path := "/sobjects/PermissionSetAssignment/" + url.PathEscape(a.ID)
	ans, err := c.call(ctx, op, http.MethodPatch, path, nil, map[string]any{"ExpirationDate": sfTime(until)})
	if err != nil {
		return err
	}
	if ans.status >= 200 && ans.status <= 299 {
		return nil
	}
	return c.classify(op, http.MethodPatch, path, ans)
}

func parseSFTime(s string) (time.Time, error) {
	for _, layout := range []string{"2006-01-02T15:04:05.000-0700", "2006-01-02T15:04:05.000Z07:00", time.RFC3339} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("unrecognised dateTime %q", s)
}

// quote returns s as a SOQL string literal: backslash escapes for quotes,
// backslashes and the control characters SOQL names.
func quote(s string) string {
	var b strings.Builder
	b.WriteByte('\'')
	for _, r := range s {
		switch r {
		case '\'', '"', '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		case '\b':
			b.WriteString(`\b`)
		case '\f':
			b.WriteString(`\f`)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('\'')
	return b.String()
}

// query runs a SOQL query and decodes its records into out. Results
// beyond the first batch (2,000 records) are not needed here.
func (c *Connector) query(ctx context.Context, op, soql string, out any) error {
	path := "/query"
	a, err := c.call(ctx, op, http.MethodGet, path, url.Values{"q": {soql}}, nil)
	if err != nil {
		return err
	}
	if a.status < 200 || a.status > 299 {
		return c.classify(op, http.MethodGet, path, a)
	}
	var res struct {
		Records json.RawMessage `json:"records"`
	}
	if err := json.Unmarshal(a.body, &res); err != nil || res.Records == nil {
		return access.RetryableError(fmt.Errorf("%s: unexpected query answer", op), 0)
	}
	if err := json.Unmarshal(res.Records, out); err != nil {
		return access.RetryableError(fmt.Errorf("%s: unexpected query records: %v", op, err), 0)
	}
	return nil
}

// classify turns a non-2xx answer into a connector error.
// REQUEST_LIMIT_EXCEEDED comes with 403 but is the org's rolling API
// limit: retryable. Everything else follows connectors.Classify.
func (c *Connector) classify(op, method, path string, a *answer) error {
	if a.has("REQUEST_LIMIT_EXCEEDED") {
		return access.RetryableError(fmt.Errorf("%s: %s %s: %d: the org's API request limit is exceeded (REQUEST_LIMIT_EXCEEDED)", op, method, path, a.status), 0)
	}
	u, _ := url.Parse(c.instanceURL() + "/services/data/" + c.version + path)
	resp := &http.Response{
		StatusCode: a.status,
		Header:     http.Header{"Content-Type": {"application/json"}},
		Body:       io.NopCloser(bytes.NewReader(a.body)),
		Request:    &http.Request{Method: method, URL: u},
	}
	// Salesforce's error bodies are arrays, which Classify does not read:
	// hand it the first error as {"message": "CODE: message"}.
	if len(a.errs) > 0 {
		b, _ := json.Marshal(map[string]string{"message": a.errs[0].ErrorCode + ": " + a.errs[0].Message})
		resp.Body = io.NopCloser(bytes.NewReader(b))
	}
	return connectors.Classify(resp, nil, op)
}

func (c *Connector) instanceURL() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.instance
}

// session returns the cached access token and instance URL, or runs the
// JWT bearer flow. stale is a token the API refused: it is replaced.
func (c *Connector) session(ctx context.Context, op, stale string) (string, string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.token != "" && c.token != stale {
		return c.token, c.instance, nil
	}
	c.token = ""
	now := c.clock.Now()
	assertion, err := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims{
		"iss": c.clientID,
		"sub": c.username,
		"aud": c.audience,
		"exp": now.Add(jwtLifetime).Unix(),
	}).SignedString(c.key)
	if err != nil {
		return "", "", access.PermanentError(fmt.Errorf("%s: sign the JWT assertion: %w", op, err))
	}
	form := url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:jwt-bearer"}, "assertion": {assertion}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.tokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		return "", "", access.PermanentError(fmt.Errorf("%s: build token request: %w", op, err))
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	// A token request has no side effect beyond issuing a token: the key
	// lets the shared client's inner loop retry it on 429/5xx.
	req.Header.Set("Idempotency-Key", fmt.Sprintf("accessbot-token-%d", now.UnixNano()))
	resp, err := c.http.Do(connectors.WithAttemptTimeout(ctx, c.timeout), req)
	if err := connectors.Classify(resp, err, op+": token"); err != nil {
		// 400 invalid_grant (user not approved, wrong key or audience,
		// clock skew), invalid_client_id: permanent, as Classify says.
		return "", "", err
	}
	defer connectors.Drain(resp)
	var tok struct {
		AccessToken string `json:"access_token"`
		InstanceURL string `json:"instance_url"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&tok); err != nil || tok.AccessToken == "" || tok.InstanceURL == "" {
		return "", "", access.RetryableError(fmt.Errorf("%s: token: unexpected answer", op), 0)
	}
	if u, err := url.Parse(tok.InstanceURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return "", "", access.RetryableError(fmt.Errorf("%s: token: unusable instance_url", op), 0)
	}
	c.token, c.instance = tok.AccessToken, strings.TrimRight(tok.InstanceURL, "/")
	return c.token, c.instance, nil
}

// call sends one REST request under /services/data/vXX.X and reads the
// answer in full. Transport failures are returned classified; any HTTP
// answer is returned for the caller to judge, except that an
// INVALID_SESSION_ID 401 gets one new token and one more try, and a second
// one is permanent.
func (c *Connector) call(ctx context.Context, op, method, path string, q url.Values, body any) (*answer, error) {
	stale := ""
	for attempt := 0; ; attempt++ {
		token, instance, err := c.session(ctx, op, stale)
		if err != nil {
			return nil, err
		}
		req, err := connectors.NewJSONRequest(ctx, method, instance+"/services/data/"+c.version+path, q, body)
		if err != nil {
			return nil, access.PermanentError(fmt.Errorf("%s: %w", op, err))
		}
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := c.http.Do(connectors.WithAttemptTimeout(ctx, c.timeout), req)
		if err != nil {
			return nil, connectors.Classify(resp, err, op)
		}
		b, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
		resp.Body.Close()
		if err != nil {
			return nil, access.RetryableError(fmt.Errorf("%s: %s %s: read answer: %w", op, method, path, err), 0)
		}
		a := &answer{status: resp.StatusCode, body: b}
		if a.status < 200 || a.status > 299 {
			_ = json.Unmarshal(b, &a.errs) // not every error body is the array
		}
		if a.status == http.StatusUnauthorized && attempt == 0 {
			stale = token
			continue
		}
		return a, nil
	}
}
