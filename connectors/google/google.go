// Package google is the `google_group` connector: a grant adds the person
// to a Google Workspace group, a revoke removes them, through the Admin SDK
// Directory API, authenticated as a service account with domain-wide
// delegation. Where the group allows it, the grant also sets the
// membership's own expiry through the Cloud Identity Groups API, so that
// Google removes the access at expiry even if accessbot is down (a native
// backstop; accessbot's own revoke still runs).
//
// API pages followed:
//   - Directory API members.insert / members.delete / members.get:
//     https://developers.google.com/workspace/admin/directory/reference/rest/v1/members
//     (POST admin/directory/v1/groups/{groupKey}/members, 409 "Member
//     already exists."; DELETE …/members/{memberKey}, 204, 404 "Resource
//     Not Found: memberKey" when not a member);
//   - Directory API errors and limits:
//     https://developers.google.com/workspace/admin/directory/v1/limits
//     (403 rateLimitExceeded / userRateLimitExceeded and 429 are retried
//     with exponential backoff; 503 backendError);
//   - Domain-wide delegation with a service account:
//     https://developers.google.com/identity/protocols/oauth2/service-account#delegatingauthority
//     (JWT bearer grant, sub = the admin to impersonate; invalid_grant
//     when the key is revoked or the client is not authorised);
//   - Cloud Identity groups.lookup, memberships.lookup and
//     memberships.modifyMembershipRoles with expiry_detail.expire_time:
//     https://cloud.google.com/identity/docs/reference/rest/v1/groups.memberships/modifyMembershipRoles
//     and https://cloud.google.com/identity/docs/how-to/memberships-google-groups
//     (membership expiry is only allowed for some groups and members,
//     e.g. not for members outside the organisation; a refusal is a 400
//     FAILED_PRECONDITION or INVALID_ARGUMENT);
//   - Go client options: https://pkg.go.dev/google.golang.org/api/option
//     (WithHTTPClient, WithEndpoint) and
//     https://pkg.go.dev/golang.org/x/oauth2/google#JWTConfigFromJSON.
//
// Every request, token requests included, goes through the shared
// connectors.Doer via an http.RoundTripper adapter.
package google

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"golang.org/x/oauth2"
	googleoauth "golang.org/x/oauth2/google"
	"golang.org/x/oauth2/jwt"
	admin "google.golang.org/api/admin/directory/v1"
	"google.golang.org/api/cloudidentity/v1"
	"google.golang.org/api/googleapi"
	"google.golang.org/api/option"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/connectors"
)

// Type is the connector type this package registers under.
const Type = "google_group"

// Scopes the service account must be granted in the domain-wide
// delegation settings: membership changes, and membership expiry.
var Scopes = []string{admin.AdminDirectoryGroupMemberScope, cloudidentity.CloudIdentityGroupsScope}

// ErrUnknownMember is wrapped by the permanent error when Google knows
// neither the person nor (perhaps) the group.
var ErrUnknownMember = errors.New("unknown user or group")

// Config is the `connectors.NAME` block of a google_group connector.
type Config struct {
	// Credentials is the service account's JSON key (or CredentialsFile
	// names a file holding it). Required.
	Credentials     connectors.Redacted `json:"credentials"`
	CredentialsFile string              `json:"credentials_file"`
	// AdminEmail is the Workspace admin the service account impersonates
	// (domain-wide delegation). Required.
	AdminEmail string `json:"admin_email"`
	// NativeExpiry sets the membership's expiry in Google as a backstop
	// where the group allows it (default true).
	NativeExpiry *bool `json:"native_expiry"`
	// TokenURL, DirectoryEndpoint and CloudIdentityEndpoint override
	// Google's endpoints (tests, proxies).
	TokenURL              string `json:"token_url"`
	DirectoryEndpoint     string `json:"directory_endpoint"`
	CloudIdentityEndpoint string `json:"cloudidentity_endpoint"`
	// Timeout bounds each HTTP attempt (default 10s).
	Timeout connectors.Duration `json:"timeout"`
}

// Validate checks c; errors name keys relative to the block and never
// contain a secret.
func (c *Config) Validate() error {
	var errs []error
	if c.Credentials == "" && c.CredentialsFile == "" {
		errs = append(errs, errors.New("credentials: required (or credentials_file): the service account's JSON key"))
	}
	if c.Credentials != "" {
		if _, err := googleoauth.JWTConfigFromJSON([]byte(c.Credentials), Scopes...); err != nil {
			errs = append(errs, errors.New("credentials: not a service account JSON key (the value is not shown)"))
		}
	}
	if c.AdminEmail == "" {
		errs = append(errs, errors.New("admin_email: required (the admin the service account acts as)"))
	} else if !strings.Contains(c.AdminEmail, "@") {
		errs = append(errs, errors.New("admin_email: must be an email address"))
	}
	for key, v := range map[string]string{"token_url": c.TokenURL, "directory_endpoint": c.DirectoryEndpoint, "cloudidentity_endpoint": c.CloudIdentityEndpoint} {
		if v != "" {
			if err := checkBaseURL(v); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", key, err))
			}
		}
	}
	if c.Timeout < 0 {
		errs = append(errs, errors.New("timeout: must be positive"))
	}
	return errors.Join(errs...)
}

// checkBaseURL accepts an absolute https URL, or http for a loopback host
// (tests): tokens never travel in clear text.
func checkBaseURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || u.Fragment != "" {
		return errors.New("must be an absolute https:// URL")
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		host := u.Hostname()
		if ip := net.ParseIP(host); host == "localhost" || ip != nil && ip.IsLoopback() {
			return nil
		}
	}
	return errors.New("must be an https:// URL")
}

// Connector adds and removes Google group members. Safe for concurrent use.
type Connector struct {
	name         string
	nativeExpiry bool
	timeout      time.Duration
	clock        access.Clock
	dir          *admin.Service
	ci           *cloudidentity.Service
	tokens       *resettableSource
}

var (
	_ access.Connector     = (*Connector)(nil)
	_ access.Checker       = (*Connector)(nil)
	_ access.ParamsChecker = (*Connector)(nil)
	_ connectors.Factory   = Factory
)

// Factory builds a google_group connector; it has the connectors.Factory
// signature.
func Factory(name string, cfg connectors.Config) (access.Connector, error) {
	var c Config
	if err := cfg.Decode(&c); err != nil {
		return nil, err
	}
	if cfg.HTTP == nil || cfg.Clock == nil {
		return nil, fmt.Errorf("connectors.%s: built without an HTTP client or clock (use Registry.Build)", name)
	}
	key, err := cfg.Secret("credentials")
	if err != nil {
		return nil, err
	}
	jc, err := googleoauth.JWTConfigFromJSON([]byte(key), Scopes...)
	if err != nil {
		return nil, fmt.Errorf("connectors.%s.credentials: not a service account JSON key (the value is not shown)", name)
	}
	jc.Subject = c.AdminEmail
	if c.TokenURL != "" {
		jc.TokenURL = c.TokenURL
	}
	base := &http.Client{Transport: doerTransport{cfg.HTTP}}
	tokens := &resettableSource{conf: jc, client: base}
	tokens.reset()
	authed := &http.Client{Transport: &oauth2.Transport{Source: tokens, Base: base.Transport}}

	ctx := context.Background()
	dirOpts := []option.ClientOption{option.WithHTTPClient(authed)}
	if c.DirectoryEndpoint != "" {
		dirOpts = append(dirOpts, option.WithEndpoint(strings.TrimRight(c.DirectoryEndpoint, "/")+"/"))
	}
	dir, err := admin.NewService(ctx, dirOpts...)
	if err != nil {
		return nil, fmt.Errorf("connectors.%s: directory client: %w", name, err)
	}
	ciOpts := []option.ClientOption{option.WithHTTPClient(authed)}
	if c.CloudIdentityEndpoint != "" {
		ciOpts = append(ciOpts, option.WithEndpoint(strings.TrimRight(c.CloudIdentityEndpoint, "/")+"/"))
	}
	ci, err := cloudidentity.NewService(ctx, ciOpts...)
	if err != nil {
		return nil, fmt.Errorf("connectors.%s: cloud identity client: %w", name, err)
	}
	conn := &Connector{
		name: name, nativeExpiry: c.NativeExpiry == nil || *c.NativeExpiry,
		timeout: c.Timeout.Std(), clock: cfg.Clock, dir: dir, ci: ci, tokens: tokens,
	}
	if conn.timeout == 0 {
		conn.timeout = 10 * time.Second
	}
	return conn, nil
}

// Grant implements access.Connector. It returns an empty receipt: this
// connector does not yet record what it changed.
func (c *Connector) Grant(ctx context.Context, g access.Grant) (access.Receipt, error) {
	return access.Receipt{}, c.applyGrant(ctx, g)
}

// Grant adds the person to params.group (the group's email or ID), then,
// when the grant has an expiry, sets it on the membership as a backstop.
// Already a member (409) is done.
func (c *Connector) applyGrant(ctx context.Context, g access.Grant) error {
	what := c.what("grant", g)
	group, email, err := c.prepare(g, what)
	if err != nil {
		return err
	}
	err = c.call(ctx, func(ctx context.Context) error {
		call := c.dir.Members.Insert(group, &admin.Member{Email: email, Role: "MEMBER"}).Context(ctx)
		// Inserting is idempotent (a repeat answers 409), so the shared
		// client may retry the POST.
		call.Header().Set("Idempotency-Key", g.ID+".grant")
		_, err := call.Do()
		return err
	})
	var ge *googleapi.Error
	switch {
	case err == nil, errors.As(err, &ge) && ge.Code == http.StatusConflict:
		// Added, or already a member.
	case errors.As(err, &ge) && ge.Code == http.StatusNotFound:
		return access.PermanentError(fmt.Errorf("%s: %w: Google Workspace has no user %q or no group %q (%s)",
			what, ErrUnknownMember, email, group, person(g.User)))
	default:
		return c.classify(err, what)
	}
	if c.nativeExpiry && !g.ExpiresAt.IsZero() {
		return c.setExpiry(ctx, group, email, g.ExpiresAt, what)
	}
	return nil
}

// Revoke removes the person from params.group. Not a member (404) is done.
func (c *Connector) Revoke(ctx context.Context, g access.Grant) error {
	what := c.what("revoke", g)
	group, email, err := c.prepare(g, what)
	if err != nil {
		return err
	}
	err = c.call(ctx, func(ctx context.Context) error {
		return c.dir.Members.Delete(group, email).Context(ctx).Do()
	})
	var ge *googleapi.Error
	if err == nil || errors.As(err, &ge) && ge.Code == http.StatusNotFound {
		return nil
	}
	return c.classify(err, what)
}

// Check reports whether the person is a direct member of params.group.
func (c *Connector) Check(ctx context.Context, g access.Grant) (bool, error) {
	what := c.what("check", g)
	group, email, err := c.prepare(g, what)
	if err != nil {
		return false, err
	}
	err = c.call(ctx, func(ctx context.Context) error {
		_, err := c.dir.Members.Get(group, email).Context(ctx).Do()
		return err
	})
	var ge *googleapi.Error
	switch {
	case err == nil:
		return true, nil
	case errors.As(err, &ge) && ge.Code == http.StatusNotFound:
		return false, nil
	}
	return false, c.classify(err, what)
}

// setExpiry looks the membership up in Cloud Identity and sets the MEMBER
// role's expiry. A group or member for which Google refuses expiry
// (4xx other than 401/403/429) is left without the backstop: the
// membership itself is in place and accessbot's revoke still removes it.
// Transient failures are retryable, so the grant (idempotent) runs again.
func (c *Connector) setExpiry(ctx context.Context, group, email string, at time.Time, what string) error {
	var groupName, membership string
	err := c.call(ctx, func(ctx context.Context) error {
		call := c.ci.Groups.Lookup().Context(ctx)
		if strings.Contains(group, "@") {
			call = call.GroupKeyId(group)
		} else {
			// A Directory group ID is the Cloud Identity group's
			// resource ID.
			groupName = "groups/" + group
			return nil
		}
		r, err := call.Do()
		if err == nil {
			groupName = r.Name
		}
		return err
	})
	if err == nil {
		err = c.call(ctx, func(ctx context.Context) error {
			r, err := c.ci.Groups.Memberships.Lookup(groupName).MemberKeyId(email).Context(ctx).Do()
			if err == nil {
				membership = r.Name
			}
			return err
		})
	}
	if err == nil {
		req := &cloudidentity.ModifyMembershipRolesRequest{UpdateRolesParams: []*cloudidentity.UpdateMembershipRolesParams{{
			FieldMask: "expiryDetail.expireTime",
			MembershipRole: &cloudidentity.MembershipRole{
				Name: "MEMBER", ExpiryDetail: &cloudidentity.ExpiryDetail{ExpireTime: at.UTC().Format(time.RFC3339)},
			},
		}}}
		err = c.call(ctx, func(ctx context.Context) error {
			_, err := c.ci.Groups.Memberships.ModifyMembershipRoles(membership, req).Context(ctx).Do()
			return err
		})
	}
	if err == nil {
		return nil
	}
	var ge *googleapi.Error
	if errors.As(err, &ge) && ge.Code >= 400 && ge.Code < 500 &&
		ge.Code != http.StatusUnauthorized && ge.Code != http.StatusForbidden && ge.Code != http.StatusTooManyRequests {
		return nil // expiry not allowed here: no backstop, not a failure
	}
	return c.classify(err, what+": set membership expiry")
}

func (c *Connector) prepare(g access.Grant, what string) (group, email string, err error) {
	group, err = groupKey(g.Params)
	if err != nil {
		return "", "", access.PermanentError(fmt.Errorf("%s: grant parameter %w", what, err))
	}
	if g.User.Email == "" {
		return "", "", access.PermanentError(fmt.Errorf("%s: the person has no email in Slack, so they cannot be found in Google Workspace", what))
	}
	return group, g.User.Email, nil
}

// call runs fn with the attempt timeout; a 401 (the access token expired
// or was revoked early) fetches a new token once and runs fn again.
func (c *Connector) call(ctx context.Context, fn func(context.Context) error) error {
	ctx = connectors.WithAttemptTimeout(ctx, c.timeout)
	err := fn(ctx)
	var ge *googleapi.Error
	if errors.As(err, &ge) && ge.Code == http.StatusUnauthorized {
		c.tokens.reset()
		err = fn(ctx)
	}
	return err
}

// classify maps a Directory / Cloud Identity failure to our classes.
func (c *Connector) classify(err error, what string) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		if re.Response != nil && connectors.RetryableStatus(re.Response.StatusCode) {
			return access.RetryableError(fmt.Errorf("%s: token request: %d", what, re.Response.StatusCode), 0)
		}
		code := re.ErrorCode
		if code == "" {
			// x/oauth2/jwt does not parse the body; it is the RFC 6749
			// §5.2 error object.
			var e struct {
				Error string `json:"error"`
			}
			_ = json.Unmarshal(re.Body, &e)
			code = e.Error
		}
		if code == "" || len(code) > 40 || strings.ContainsAny(code, " \"\n") {
			code = "error"
		}
		return access.PermanentError(fmt.Errorf("%s: Google refused the service account's token request (%s): the key may be revoked or expired, or domain-wide delegation not granted for the scopes", what, code))
	}
	var ge *googleapi.Error
	if !errors.As(err, &ge) {
		// Transport errors and cancellation (url.Error, scrubbed of queries).
		return connectors.Classify(nil, err, what)
	}
	msg := ge.Message
	if len(msg) > 200 {
		msg = msg[:200] + "…"
	}
	reason := ""
	if len(ge.Errors) > 0 {
		reason = ge.Errors[0].Reason
	}
	e := fmt.Errorf("%s: Google API %d %s: %q", what, ge.Code, reason, msg)
	switch {
	case ge.Code == http.StatusTooManyRequests || ge.Code >= 500 ||
		ge.Code == http.StatusForbidden && (reason == "rateLimitExceeded" || reason == "userRateLimitExceeded" || reason == "quotaExceeded"):
		ra, _ := connectors.ParseRetryAfter(ge.Header.Get("Retry-After"), c.clock.Now())
		return access.RetryableError(e, ra)
	case ge.Code == http.StatusUnauthorized || ge.Code == http.StatusForbidden:
		return access.PermanentError(fmt.Errorf("%w: the service account's credentials or delegated scopes were rejected", e))
	}
	return access.PermanentError(e)
}

func (c *Connector) what(op string, g access.Grant) string {
	return fmt.Sprintf("google %s: %s %s for %s", c.name, op, g.ID, person(g.User))
}

// person names the person in errors (owners must know whom it concerns).
func person(p access.Person) string {
	if p.Email != "" {
		return p.SlackID + " (" + p.Email + ")"
	}
	return p.SlackID
}

// doerTransport sends requests through the shared connectors.Doer.
type doerTransport struct{ d connectors.Doer }

func (t doerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	return t.d.Do(req.Context(), req)
}

// resettableSource caches the delegated access token (oauth2's
// ReuseTokenSource) and can drop it when Google rejects it early.
type resettableSource struct {
	conf   *jwt.Config
	client *http.Client

	mu  sync.Mutex
	src oauth2.TokenSource
}

func (s *resettableSource) reset() {
	ctx := context.WithValue(context.Background(), oauth2.HTTPClient, s.client)
	s.mu.Lock()
	s.src = s.conf.TokenSource(ctx)
	s.mu.Unlock()
}

// Token implements oauth2.TokenSource.
func (s *resettableSource) Token() (*oauth2.Token, error) {
	s.mu.Lock()
	src := s.src
	s.mu.Unlock()
	return src.Token()
}
