// Package salesforce is the `salesforce_permission_set` connector: it
// grants access by assigning a permission set (or permission set group) to
// a Salesforce user and revokes it by deleting that assignment.
//
// API, as documented by Salesforce:
//
//   - authentication: OAuth 2.0 JWT bearer flow for a connected app
//     (RFC 7523; "OAuth 2.0 JWT Bearer Flow for Server-to-Server
//     Integration", https://help.salesforce.com/s/articleView?id=xcloud.remoteaccess_oauth_jwt_flow.htm):
//     a JWT with iss = consumer key, sub = username, aud = the
//     authorization server and an exp at most 3 minutes ahead, signed
//     RS256, is POSTed as grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&assertion=…
//     to {login_url}/services/oauth2/token, which answers access_token and
//     instance_url (no refresh token; a new JWT is the refresh); errors are
//     400 {"error":"invalid_grant","error_description":…}. The token
//     endpoint may be the org's My Domain, but the audience must be
//     https://login.salesforce.com, https://test.salesforce.com (sandboxes)
//     or an Experience Cloud site URL, never the My Domain URL: Salesforce
//     answers "audience is invalid" (the help page above; seen in the
//     field, e.g. omniphx/forrest#302, forcedotcom/cli#3325). A third party
//     reports My Domain audiences accepted since Spring '26
//     (simstudioai/sim#6508); that is undocumented, so it is not relied on;
//   - sandboxes: usernames carry the sandbox name as a suffix
//     (alice@example.com.uat) and emails get ".invalid" appended when the
//     sandbox is created or refreshed ("Sandbox Setup Considerations",
//     https://help.salesforce.com/s/articleView?id=sf.data_sandbox_implementation_tips.htm),
//     hence username_suffix;
//   - REST API (https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/):
//     GET /services/data/vXX.X/query?q=SOQL answers {"totalSize",
//     "done","records"}; POST /sobjects/PermissionSetAssignment answers
//     201 {"id","success":true}; PATCH and DELETE /sobjects/…/{id} answer
//     204; errors are arrays [{"message","errorCode","fields"}]:
//     DUPLICATE_VALUE for an existing assignment, ENTITY_IS_DELETED /
//     NOT_FOUND (404) for a gone record, INVALID_SESSION_ID (401) for an
//     expired token, REQUEST_LIMIT_EXCEEDED (403) for the org's API limit,
//     API_DISABLED_FOR_ORG (403) for an edition without API access
//     (https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/errorcodes.htm);
//   - SOQL string literals escape ' and \ with a backslash
//     (https://developer.salesforce.com/docs/atlas.en-us.soql_sosl.meta/soql_sosl/sforce_api_calls_soql_select_quotedstringescapes.htm);
//   - PermissionSetAssignment.ExpirationDate (API 52.0+) makes Salesforce
//     itself remove the assignment when it passes
//     (https://developer.salesforce.com/docs/atlas.en-us.object_reference.meta/object_reference/sforce_api_objects_permissionsetassignment.htm).
//
// # Receipts
//
// A grant's receipt holds the user's 005… ID (UserID), the ID of the
// assignment it created (Data), and with set_expiration the ExpirationDate
// it set (Backstop), so that access ends even if accessbot is down. The
// revoke deletes that assignment by its ID; it never looks the person up
// again. An assignment that existed before the grant is reported as
// PreExisting (and left in place by the lifecycle); if it carries an
// ExpirationDate earlier than this grant's expiry, the date is moved later
// (never earlier) so that Salesforce does not end the access before the
// grant does, and the receipt says so. A repeat of a grant (the same
// request ID, connectors.Intents) acts on the user its first attempt
// recorded and counts the assignment it finds as its own.
//
// An org that rejects ExpirationDate is remembered (for the life of the
// process) and assignments are made without it.
package salesforce

import (
	"context"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"

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

// Defaults and the documented JWT audiences.
const (
	DefaultLoginURL   = "https://login.salesforce.com"
	DefaultAPIVersion = "62.0"
	AudienceLogin     = "https://login.salesforce.com"
	AudienceSandbox   = "https://test.salesforce.com"
)

// jwtLifetime is the assertion's lifetime: Salesforce accepts at most 3
// minutes.
const jwtLifetime = 3 * time.Minute

// Config is the `connectors.NAME` block of a salesforce_permission_set
// connector.
type Config struct {
	// LoginURL is the host of the token endpoint:
	// https://login.salesforce.com (default), https://test.salesforce.com
	// for sandboxes, or the org's My Domain login URL.
	LoginURL string `json:"login_url"`
	// TokenURL overrides {login_url}/services/oauth2/token.
	TokenURL string `json:"token_url"`
	// Audience is the JWT's aud: https://login.salesforce.com or
	// https://test.salesforce.com (default: test for a test.salesforce.com
	// or *.sandbox.my.salesforce.com login_url, else login), or an
	// Experience Cloud site URL. Never the My Domain URL.
	Audience string `json:"audience"`
	// ClientID is the connected app's consumer key. Required.
	ClientID string `json:"client_id"`
	// Username is the integration user the connected app acts as (with
	// its sandbox suffix in a sandbox). Required.
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
	// UsernameSuffix is appended to the person's email to make their
	// Username in a sandbox (".uat" for alice@example.com.uat). Only with
	// user_field Username.
	UsernameSuffix string `json:"username_suffix"`
	// SetExpiration sets the assignment's ExpirationDate to the grant's
	// expiry.
	SetExpiration bool `json:"set_expiration"`
	connectors.Timeout
}

var (
	apiVersionRE = regexp.MustCompile(`^[0-9]{2,3}\.0$`)
	suffixRE     = regexp.MustCompile(`^\.[A-Za-z0-9][A-Za-z0-9_-]*$`)
)

// Validate checks c; errors name keys relative to the block and never
// contain the key.
func (c *Config) Validate() error {
	var errs []error
	for _, u := range []struct{ key, val string }{{"login_url", c.LoginURL}, {"token_url", c.TokenURL}} {
		if u.val == "" {
			continue
		}
		if err := connectors.CheckBaseURL(u.val); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", u.key, err))
		}
	}
	if c.Audience != "" {
		if err := checkAudience(c.Audience); err != nil {
			errs = append(errs, fmt.Errorf("audience: %w", err))
		}
	} else if h := hostOf(c.LoginURL); isMyDomain(c.LoginURL) && strings.Contains(h, "--") && !strings.HasSuffix(h, ".sandbox.my.salesforce.com") {
		// acme--uat.my.salesforce.com is a sandbox on the legacy My
		// Domain format (no ".sandbox."): say which audience it needs
		// rather than guess.
		errs = append(errs, errors.New("audience: required with this sandbox My Domain login_url: set https://test.salesforce.com"))
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
	switch {
	case c.UsernameSuffix == "":
	case c.UserField == "Email":
		errs = append(errs, errors.New("username_suffix: only with user_field Username (sandbox emails end in .invalid and do not match)"))
	case !suffixRE.MatchString(c.UsernameSuffix):
		errs = append(errs, errors.New(`username_suffix: must be a dot and the sandbox name, such as ".uat"`))
	}
	if c.Timeout.Timeout < 0 {
		errs = append(errs, errors.New("timeout: must be positive"))
	}
	return errors.Join(errs...)
}

func hostOf(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return ""
	}
	return strings.ToLower(u.Hostname())
}

// isMyDomain reports whether s is a My Domain URL (*.my.salesforce.com),
// which is never a valid audience.
func isMyDomain(s string) bool { return strings.HasSuffix(hostOf(s), ".my.salesforce.com") }

// checkAudience accepts the audiences the JWT flow documents: login, test,
// or an Experience Cloud site (https, on *.force.com, *.my.site.com or a
// custom domain), refusing a My Domain URL with the reason.
func checkAudience(aud string) error {
	switch aud {
	case AudienceLogin, AudienceSandbox:
		return nil
	}
	u, err := url.Parse(aud)
	switch {
	case err != nil || u.Scheme != "https" || u.Host == "" || u.RawQuery != "" || u.Fragment != "":
		return errors.New("must be https://login.salesforce.com, https://test.salesforce.com, or an Experience Cloud site URL")
	case isMyDomain(aud):
		return errors.New("must not be the My Domain URL: Salesforce answers \"audience is invalid\"; use https://login.salesforce.com (production) or https://test.salesforce.com (sandbox), and put the My Domain in login_url")
	case hostOf(aud) == "login.salesforce.com" || hostOf(aud) == "test.salesforce.com":
		return fmt.Errorf("must be exactly %s or %s (no path or trailing slash)", AudienceLogin, AudienceSandbox)
	}
	return nil
}

// defaultAudience is the audience for a login URL: test for sandboxes,
// login otherwise.
func defaultAudience(login string) string {
	h := hostOf(login)
	if h == "test.salesforce.com" || strings.HasSuffix(h, ".sandbox.my.salesforce.com") {
		return AudienceSandbox
	}
	return AudienceLogin
}

// Connector manages permission set assignments. It is safe for concurrent
// use.
type Connector struct {
	name      string
	version   string // "v62.0"
	userField string
	suffix    string
	setExpiry bool
	api       *connectors.API
	session   *session
	users     *connectors.Users
	intents   *connectors.Intents

	// noExpiry is set once the org rejected ExpirationDate.
	noExpiry atomic.Bool
}

var (
	_ access.Connector     = (*Connector)(nil)
	_ access.Checker       = (*Connector)(nil)
	_ access.ParamsChecker = (*Connector)(nil)
	_ connectors.Factory   = Factory
)

// Factory builds a salesforce_permission_set connector from its
// configuration block. It needs durable State (Env.State) for the records
// of the grants it started (connectors.Intents).
func Factory(name string, cfg connectors.Config) (access.Connector, error) {
	var c Config
	if err := cfg.DecodeStateful(&c); err != nil {
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
	login := connectors.TrimBase(c.LoginURL)
	if login == "" {
		login = DefaultLoginURL
	}
	tokenURL := c.TokenURL
	if tokenURL == "" {
		tokenURL = login + "/services/oauth2/token"
	}
	aud := c.Audience
	if aud == "" {
		aud = defaultAudience(login)
	}
	version := strings.TrimPrefix(c.APIVersion, "v")
	if version == "" {
		version = DefaultAPIVersion
	}
	field := c.UserField
	if field == "" {
		field = "Username"
	}
	s := &session{
		op: "salesforce " + name + ": token", tokenURL: tokenURL, audience: aud,
		clientID: c.ClientID, username: c.Username, key: key, http: cfg.HTTP, clock: cfg.Clock, timeout: c.Attempt(),
	}
	sf := &Connector{
		name: name, version: "v" + version, userField: field, suffix: c.UsernameSuffix, setExpiry: c.SetExpiration,
		session: s, intents: connectors.NewIntents(cfg.State),
		api: &connectors.API{HTTP: cfg.HTTP, Auth: s, Timeout: c.Attempt()},
	}
	sf.users = connectors.NewUsers(cfg.Clock, "Salesforce org "+hostOf(login), sf.lookup)
	return sf, nil
}

// target is what a grant assigns: a permission set or a group.
type target struct {
	field string // PermissionSetId or PermissionSetGroupId
	id    string
}

// Data is the connector-specific part of a grant's receipt
// (access.Receipt.Data, JSON).
type Data struct {
	// AssignmentID is the PermissionSetAssignment (0Pa…) the grant
	// created, or that existed (PreExisting); "" when a create's answer
	// was lost and the assignment is unknown.
	AssignmentID string `json:"assignment_id,omitempty"`
	// PermissionSetID or PermissionSetGroupID is what was assigned.
	PermissionSetID      string `json:"permission_set_id,omitempty"`
	PermissionSetGroupID string `json:"permission_set_group_id,omitempty"`
}

func (d Data) target() target {
	if d.PermissionSetGroupID != "" {
		return target{"PermissionSetGroupId", d.PermissionSetGroupID}
	}
	return target{"PermissionSetId", d.PermissionSetID}
}

func dataFor(t target, assignment string) Data {
	d := Data{AssignmentID: assignment}
	if t.field == "PermissionSetGroupId" {
		d.PermissionSetGroupID = t.id
	} else {
		d.PermissionSetID = t.id
	}
	return d
}

// Grant assigns the permission set (group) and returns the receipt (see
// the package comment).
func (c *Connector) Grant(ctx context.Context, g access.Grant) (access.Receipt, error) {
	op := c.op("grant", g)
	ps, psg, err := readParams(op, g.Params)
	if err != nil {
		return access.Receipt{}, err
	}
	in, repeat, err := c.intents.Get(ctx, g.ID)
	if err != nil {
		return access.Receipt{}, err
	}
	userID := in.UserID
	if !repeat {
		if userID, err = c.users.ByEmail(ctx, op, g.User); err != nil {
			return access.Receipt{}, err
		}
		if err := c.checkActive(ctx, op, g, userID); err != nil {
			return access.Receipt{}, err
		}
	}
	t, err := c.resolveTarget(ctx, op, ps, psg)
	if err != nil {
		return access.Receipt{}, err
	}
	rc := access.Receipt{UserID: userID}
	existing, err := c.assignment(ctx, op, userID, t)
	if err != nil {
		return access.Receipt{}, err
	}
	if existing != nil {
		rc.PreExisting = !repeat
		return c.keep(ctx, op, g, rc, t, existing)
	}
	if !repeat {
		if err := c.intents.Record(ctx, g.ID, connectors.Intent{UserID: userID}); err != nil {
			return access.Receipt{}, err
		}
	}
	rc, err = c.create(ctx, op, g, rc, t)
	if err != nil && !rc.Changed() {
		c.intents.Forget(ctx, g.ID)
	}
	return rc, err
}

// keep makes the receipt for an assignment that exists (pre-existing, or
// made by an earlier attempt of this grant), moving its expiration later
// when it would end the access before the grant.
func (c *Connector) keep(ctx context.Context, op string, g access.Grant, rc access.Receipt, t target, a *assignmentRec) (access.Receipt, error) {
	d := dataFor(t, a.ID)
	rc.Data, _ = json.Marshal(d)
	switch {
	case rc.PreExisting:
		rc.Note = "the assignment existed before this grant; left in place at revoke"
	default:
		rc.Note = "permission set assigned"
	}
	cur, hasExp := a.expiration()
	if !hasExp {
		if rc.PreExisting {
			rc.Note += " (it has no expiration)"
		}
		return rc, nil
	}
	rc.Backstop = cur
	if !c.wantExpiry(g) || !cur.Before(g.ExpiresAt.UTC().Truncate(time.Millisecond)) {
		return rc, nil
	}
	path := "/sobjects/PermissionSetAssignment/" + url.PathEscape(a.ID)
	if _, err := c.call(ctx, op, http.MethodPatch, path, nil, map[string]any{"ExpirationDate": sfTime(g.ExpiresAt)}, nil, nil); err != nil {
		if rc.PreExisting {
			return access.Receipt{}, err
		}
		return rc, err
	}
	rc.Backstop = g.ExpiresAt.UTC().Truncate(time.Millisecond)
	if rc.PreExisting {
		rc.Previous = cur.Format(time.RFC3339)
		rc.Note += fmt.Sprintf("; its expiration was moved from %s to %s to cover this grant", cur.Format(time.RFC3339), rc.Backstop.Format(time.RFC3339))
	}
	return rc, nil
}

// create posts the assignment and returns the receipt: on success with its
// ID (and Backstop); when the answer is lost and a look finds nothing
// either, a partial receipt naming the user with the retryable error.
func (c *Connector) create(ctx context.Context, op string, g access.Grant, rc access.Receipt, t target) (access.Receipt, error) {
	withExpiry := c.wantExpiry(g)
	for {
		body := map[string]any{"AssigneeId": rc.UserID, t.field: t.id}
		if withExpiry {
			body["ExpirationDate"] = sfTime(g.ExpiresAt)
		}
		var out struct {
			ID string `json:"id"`
		}
		var errs []sfError
		_, err := c.call(ctx, op, http.MethodPost, "/sobjects/PermissionSetAssignment", nil, body, &out, &errs)
		switch {
		case err == nil && out.ID != "":
			rc.Data, _ = json.Marshal(dataFor(t, out.ID))
			rc.Note = "permission set assigned"
			if withExpiry {
				rc.Backstop = g.ExpiresAt.UTC().Truncate(time.Millisecond)
				rc.Note += " until " + rc.Backstop.Format(time.RFC3339) + " (Salesforce removes it then)"
			}
			return rc, nil
		case has(errs, "DUPLICATE_VALUE"):
			// Assigned meanwhile by someone else: theirs.
			if a, aerr := c.assignment(ctx, op, rc.UserID, t); aerr == nil && a != nil {
				rc.PreExisting = true
				c.intents.Forget(ctx, g.ID)
				return c.keep(ctx, op, g, rc, t, a)
			}
			return access.Receipt{}, access.RetryableError(fmt.Errorf("%s: Salesforce reported a duplicate assignment it does not list", op), 0)
		case withExpiry && err != nil && mentionsExpiration(errs):
			// This org (edition, API version or setting) does not take
			// ExpirationDate: remember, and assign without it.
			c.noExpiry.Store(true)
			withExpiry = false
			continue
		case err != nil:
			if class, _ := access.Classify(err); class == access.Permanent {
				return access.Receipt{}, err
			}
		}
		// No answer (or a 2xx without an id): it may have been created.
		if a, aerr := c.assignment(ctx, op, rc.UserID, t); aerr == nil && a != nil {
			return c.keep(ctx, op, g, rc, t, a)
		}
		if err == nil {
			err = access.RetryableError(fmt.Errorf("%s: Salesforce answered the assignment create without an id", op), 0)
		}
		rc.Data, _ = json.Marshal(dataFor(t, ""))
		rc.Note = "the assignment may have been created (no answer); a rollback removes it"
		return rc, err
	}
}

// Revoke deletes the assignment g.Receipt names; none, or one deleted
// meanwhile (by Salesforce at its ExpirationDate, say), is done. A receipt
// without the assignment's ID (a lost create) looks it up by the receipt's
// user. A record without a receipt finds the user by email: nobody found
// is a permanent error wrapping access.ErrUnknownUser.
func (c *Connector) Revoke(ctx context.Context, g access.Grant) error {
	op := c.op("revoke", g)
	var d Data
	if g.Receipt != nil && len(g.Receipt.Data) > 0 {
		if err := json.Unmarshal(g.Receipt.Data, &d); err != nil {
			return access.PermanentError(fmt.Errorf("%s: the grant's receipt is unreadable: %v", op, err))
		}
	}
	if g.Receipt != nil && g.Receipt.UserID == "" && d.AssignmentID == "" {
		return nil // the grant changed nothing
	}
	if d.AssignmentID == "" {
		userID, err := c.users.ForRevoke(ctx, op, g)
		if err != nil {
			return err
		}
		t := d.target()
		if t.id == "" {
			ps, psg, err := readParams(op, g.Params)
			if err != nil {
				return err
			}
			if t, err = c.resolveTarget(ctx, op, ps, psg); err != nil {
				return err
			}
		}
		a, err := c.assignment(ctx, op, userID, t)
		if err != nil {
			return err
		}
		if a == nil {
			c.intents.Forget(ctx, g.ID)
			return nil
		}
		d.AssignmentID = a.ID
	}
	path := "/sobjects/PermissionSetAssignment/" + url.PathEscape(d.AssignmentID)
	var errs []sfError
	status, err := c.call(ctx, op, http.MethodDelete, path, nil, nil, nil, &errs)
	if err != nil && status != http.StatusNotFound && !has(errs, "ENTITY_IS_DELETED") {
		return err
	}
	c.intents.Forget(ctx, g.ID)
	return nil
}

// Check reports whether the assignment exists, for the receipt's user or,
// without a receipt, the person found by email.
func (c *Connector) Check(ctx context.Context, g access.Grant) (bool, error) {
	op := c.op("check", g)
	ps, psg, err := readParams(op, g.Params)
	if err != nil {
		return false, err
	}
	userID, err := c.users.ForRevoke(ctx, op, g)
	if errors.Is(err, access.ErrUnknownUser) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	t, err := c.resolveTarget(ctx, op, ps, psg)
	if err != nil {
		return false, err
	}
	a, err := c.assignment(ctx, op, userID, t)
	return a != nil, err
}

func (c *Connector) op(verb string, g access.Grant) string {
	return connectors.Op("salesforce", c.name, verb, g)
}

func (c *Connector) wantExpiry(g access.Grant) bool {
	return c.setExpiry && !c.noExpiry.Load() && !g.ExpiresAt.IsZero()
}

// sfTime formats t as a Salesforce dateTime (ISO 8601, UTC, milliseconds).
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

// sfUser is a User as queried.
type sfUser struct {
	ID       string `json:"Id"`
	IsActive bool   `json:"IsActive"`
}

// lookup finds the user whose user_field is the person's email (with
// username_suffix): the one active match, else the one inactive match
// (a revoke still removes a deactivated user's assignments; a grant
// refuses them); several candidates are ambiguous.
func (c *Connector) lookup(ctx context.Context, op, email string) (string, error) {
	value := email
	if c.userField == "Username" {
		value += c.suffix
	}
	var users []sfUser
	if err := c.query(ctx, op, "SELECT Id, IsActive FROM User WHERE "+c.userField+" = "+quote(value), &users); err != nil {
		return "", err
	}
	var active, inactive []string
	for _, u := range users {
		if u.IsActive {
			active = append(active, u.ID)
		} else {
			inactive = append(inactive, u.ID)
		}
	}
	switch {
	case len(active) == 1:
		return active[0], nil
	case len(active) == 0 && len(inactive) == 1:
		return inactive[0], nil
	case len(users) == 0:
		return "", nil
	}
	return "", access.PermanentError(fmt.Errorf("%s: %w: %d Salesforce users have %s %q; use user_field: Username, or make it unique", op, connectors.ErrAmbiguousUser, len(users), c.userField, value))
}

// checkActive refuses a grant to a deactivated user.
func (c *Connector) checkActive(ctx context.Context, op string, g access.Grant, userID string) error {
	var users []sfUser
	if err := c.query(ctx, op, "SELECT Id, IsActive FROM User WHERE Id = "+quote(userID), &users); err != nil {
		return err
	}
	if len(users) == 1 && users[0].IsActive {
		return nil
	}
	return access.PermanentError(fmt.Errorf("%s: Salesforce user %s (%s) is deactivated", op, userID, connectors.PersonName(g.User)))
}

// idRE matches 15- and 18-character Salesforce record IDs.
var idRE = regexp.MustCompile(`^[a-zA-Z0-9]{15}(?:[a-zA-Z0-9]{3})?$`)

// resolveTarget returns the permission set (group) to assign.
func (c *Connector) resolveTarget(ctx context.Context, op, ps, psg string) (target, error) {
	if ps != "" {
		id, err := c.lookupID(ctx, op, ParamPermissionSet, ps, "0PS", "PermissionSet", "Name")
		return target{"PermissionSetId", id}, err
	}
	id, err := c.lookupID(ctx, op, ParamPermissionSetGroup, psg, "0PG", "PermissionSetGroup", "DeveloperName")
	return target{"PermissionSetGroupId", id}, err
}

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
	if err := c.query(ctx, op, "SELECT Id FROM "+object+" WHERE "+nameField+" = "+quote(value), &recs); err != nil {
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

func (a *assignmentRec) expiration() (time.Time, bool) {
	if a.ExpirationDate == nil {
		return time.Time{}, false
	}
	t, err := parseSFTime(*a.ExpirationDate)
	return t, err == nil
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
		var ae *APIError
		if fields != "Id" && errors.As(err, &ae) && ae.StatusCode == http.StatusBadRequest &&
			strings.Contains(strings.ToLower(ae.Message), "expirationdate") {
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

func parseSFTime(s string) (time.Time, error) {
	for _, layout := range []string{"2006-01-02T15:04:05.000-0700", "2006-01-02T15:04:05.000Z07:00", time.RFC3339} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
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
	var res struct {
		Records json.RawMessage `json:"records"`
	}
	if _, err := c.call(ctx, op, http.MethodGet, "/query", url.Values{"q": {soql}}, nil, &res, nil); err != nil {
		return err
	}
	if res.Records == nil {
		return access.RetryableError(fmt.Errorf("%s: unexpected query answer", op), 0)
	}
	if err := json.Unmarshal(res.Records, out); err != nil {
		return access.RetryableError(fmt.Errorf("%s: unexpected query records: %v", op, err), 0)
	}
	return nil
}

// sfError is one element of Salesforce's error array.
type sfError struct {
	Message   string   `json:"message"`
	ErrorCode string   `json:"errorCode"`
	Fields    []string `json:"fields"`
}

func has(errs []sfError, code string) bool {
	for _, e := range errs {
		if e.ErrorCode == code {
			return true
		}
	}
	return false
}

// APIError is a REST error answer carrying Salesforce's error array,
// wrapped in an access.ConnectorError.
type APIError struct {
	Op, Method, Path string
	StatusCode       int
	Code, Message    string // the first error of the array
}

func (e *APIError) Error() string {
	s := fmt.Sprintf("%s: %s %s: %d %s: %s", e.Op, e.Method, e.Path, e.StatusCode, http.StatusText(e.StatusCode), e.Code)
	switch e.Code {
	case "API_DISABLED_FOR_ORG":
		s += " (this org's edition or settings give no REST API access; it needs Enterprise, Unlimited, Performance or Developer edition, or the API add-on)"
	case "INVALID_SESSION_ID":
		s += " (the access token was refused again right after a new one was issued)"
	case "INSUFFICIENT_ACCESS", "INSUFFICIENT_ACCESS_OR_READONLY":
		s += " (the integration user lacks a permission; see the connector's README)"
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

// call sends one REST request under the session's
// {instance_url}/services/data/vXX.X. When errs is non-nil it receives
// Salesforce's error array, and an error answer carrying one is turned
// into an *APIError: REQUEST_LIMIT_EXCEEDED (a 403) is the org's rolling
// API limit and retryable; 408, 429 and 5xx stay retryable; everything
// else is permanent. The session refreshes its token once on a 401.
func (c *Connector) call(ctx context.Context, op, method, path string, q url.Values, body, out any, errs *[]sfError) (int, error) {
	base, err := c.session.base(ctx, c.version)
	if err != nil {
		return 0, err
	}
	var got []sfError
	status, err := c.api.Send(ctx, connectors.JSONCall{
		Op: op, Method: method, Base: base, Path: path, Query: q, Body: body, Out: out, ErrorOut: &got,
	})
	if errs != nil {
		*errs = got
	}
	if err == nil || len(got) == 0 {
		return status, err
	}
	ae := &APIError{Op: op, Method: method, Path: "/services/data/" + c.version + path, StatusCode: status, Code: clean(got[0].ErrorCode, 60), Message: clean(got[0].Message, 200)}
	class, wait := access.Classify(err)
	switch {
	case ae.Code == "REQUEST_LIMIT_EXCEEDED":
		return status, access.RetryableError(ae, wait)
	case class == access.Retryable:
		return status, access.RetryableError(ae, wait)
	}
	return status, access.PermanentError(ae)
}

// clean keeps at most n runes of a vendor's text, without control
// characters.
func clean(s string, n int) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
	if r := []rune(s); len(r) > n {
		s = string(r[:n]) + "…"
	}
	return s
}

// session is the JWT bearer flow's access token and instance URL, as
// connectors.Credentials: the token is reused until the API answers 401,
// then one fresh token is fetched. Safe for concurrent use.
type session struct {
	op       string
	tokenURL string
	audience string
	clientID string
	username string
	key      *rsa.PrivateKey
	http     connectors.Doer
	clock    access.Clock
	timeout  time.Duration

	mu       sync.Mutex
	token    string
	instance string
}

var _ connectors.Credentials = (*session)(nil)

// Refreshable is true: a new JWT gets a new token.
func (s *session) Refreshable() bool { return true }

// Authorization returns "Bearer <token>", running the JWT bearer flow
// when there is no token or fresh is set.
func (s *session) Authorization(ctx context.Context, fresh bool) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if fresh || s.token == "" {
		if err := s.loginLocked(ctx); err != nil {
			return "", err
		}
	}
	return "Bearer " + s.token, nil
}

// base returns {instance_url}/services/data/{version}, logging in first
// if needed.
func (s *session) base(ctx context.Context, version string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.token == "" {
		if err := s.loginLocked(ctx); err != nil {
			return "", err
		}
	}
	return s.instance + "/services/data/" + version, nil
}

func (s *session) loginLocked(ctx context.Context) error {
	s.token = ""
	now := s.clock.Now()
	assertion, err := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims{
		"iss": s.clientID,
		"sub": s.username,
		"aud": s.audience, // a single string: Salesforce refuses an array
		"exp": now.Add(jwtLifetime).Unix(),
	}).SignedString(s.key)
	if err != nil {
		return access.PermanentError(fmt.Errorf("%s: sign the JWT assertion: %w", s.op, err))
	}
	var tok struct {
		AccessToken string `json:"access_token"`
		InstanceURL string `json:"instance_url"`
	}
	var te struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	status, err := connectors.SendJSON(ctx, s.http, connectors.JSONCall{
		Op: s.op, Method: http.MethodPost, Base: s.tokenURL, Timeout: s.timeout,
		Form: url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:jwt-bearer"}, "assertion": {assertion}},
		// A token request has no side effect beyond issuing a token: the
		// key lets the shared client's inner loop retry it on 429/5xx.
		Header:   http.Header{"Idempotency-Key": {"token"}},
		Accept:   []int{http.StatusBadRequest},
		ErrorOut: &te, Out: &tok,
	})
	switch {
	case err != nil:
		return err
	case status == http.StatusBadRequest:
		// invalid_grant: user not approved, wrong key, audience, username
		// (a sandbox username needs its suffix) or clock skew. Permanent.
		return access.PermanentError(fmt.Errorf("%s: POST %s: 400: Salesforce refused the JWT (%s: %q); check the connected app's certificate and pre-authorised users, the username (with the sandbox suffix in a sandbox) and the audience %s",
			s.op, s.tokenURL, connectors.OAuthCode(te.Error), clean(te.Description, 120), s.audience))
	case tok.AccessToken == "" || tok.InstanceURL == "":
		return access.RetryableError(fmt.Errorf("%s: unexpected token answer", s.op), 0)
	}
	if err := connectors.CheckBaseURL(tok.InstanceURL); err != nil {
		return access.RetryableError(fmt.Errorf("%s: unusable instance_url", s.op), 0)
	}
	s.token, s.instance = tok.AccessToken, connectors.TrimBase(tok.InstanceURL)
	return nil
}
