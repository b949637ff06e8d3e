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
// Receipts: Receipt.UserID is the person's Entra object ID; PreExisting is
// set when they were already a direct member of the group (read from
// memberOf before the change; the revoke then leaves the membership). The
// revoke removes exactly that object ID, without looking the person up,
// so a changed UPN or mail does not matter; a user deleted since answers
// 404, counted as done. Only records granted before receipts existed are
// looked up, and then an unknown person is a permanent error wrapping
// access.ErrUnknownUser.
//
// Replication lag: Entra ID replicates directory writes across replicas
// asynchronously, so a user created moments ago can be readable and yet
// be answered 404 Request_ResourceNotFound ("Resource '<id>' does not
// exist or one of its queried reference-property objects are not
// present") by a write that references it, or 400 "…objects being
// referenced do not exist". Graph's guidance is to retry after a short
// delay (group-post-members above; "Handling expected errors" in
// https://learn.microsoft.com/en-us/graph/best-practices-concept; the
// Azure CLI retries these on the directory team's advice,
// https://github.com/Azure/azure-cli/pull/2567). The connector resolved
// the user itself just before, so such an answer naming the user (not the
// group) is retryable, with a 10-second RetryAfter.
//
// Identity provider: AccountActive reads accountEnabled (returned only
// with $select, https://learn.microsoft.com/en-us/graph/api/resources/user?view=graph-rest-1.0#properties);
// Manager reads GET /users/{id}/manager
// (https://learn.microsoft.com/en-us/graph/api/user-list-manager?view=graph-rest-1.0),
// whose 404 means no manager is assigned, and returns the manager's mail
// (or userPrincipalName when mail is empty). Both need User.Read.All.
//
// Semantics: already a member (that 400) is done; on revoke 204 and 404 are
// done. 429/503 are retryable with Retry-After. A 401
// (InvalidAuthenticationToken: the access token expired or was revoked)
// fetches a fresh token once and repeats the call; a second 401, a 403
// (missing permission) or a token endpoint refusing the secret is
// permanent.
package entra

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
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
	maxPages         = 100
	// replicationWait is the RetryAfter of an answer caused by
	// replication lag.
	replicationWait = 10 * time.Second
)

// ParamGroupID is the grant parameter naming the group.
const ParamGroupID = "group_id"

// params are the grant parameters: group_id, the group's object ID (a
// GUID), required.
var params = connectors.Params{{
	Key: ParamGroupID, What: "the group's object ID",
	Check: connectors.Match(regexp.MustCompile(`^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$`),
		"a group object ID (a GUID such as 02bd9fd6-8f93-4758-87c3-1fb73740a315)"),
}}

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
	connectors.Timeout
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
	for key, v := range map[string]string{"authority_url": c.AuthorityURL, "graph_url": c.GraphURL} {
		if v != "" {
			if err := connectors.CheckBaseURL(v); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", key, err))
			}
		}
	}
	return errors.Join(errs...)
}

// Connector adds and removes Entra group members, and reads people's
// account state and manager. Safe for concurrent use.
type Connector struct {
	// GroupMembers gives Grant, Revoke, Check and CheckParams.
	*connectors.GroupMembers
	name   string
	tenant string
	attr   string
	api    *connectors.API
}

var (
	_ access.Connector      = (*Connector)(nil)
	_ access.Checker        = (*Connector)(nil)
	_ access.ParamsChecker  = (*Connector)(nil)
	_ access.AccountChecker = (*Connector)(nil)
	_ access.ManagerLookup  = (*Connector)(nil)
	_ connectors.Factory    = Factory
)

// Factory builds an entra_group connector; it has the connectors.Factory
// signature. It needs the durable State (connectors.Env.State).
func Factory(name string, cfg connectors.Config) (access.Connector, error) {
	var c Config
	if err := cfg.DecodeStateful(&c); err != nil {
		return nil, err
	}
	secret, err := cfg.Secret("client_secret")
	if err != nil {
		return nil, err
	}
	authority := connectors.TrimBase(c.AuthorityURL)
	if authority == "" {
		authority = DefaultAuthorityURL
	}
	graph := connectors.TrimBase(c.GraphURL)
	if graph == "" {
		graph = DefaultGraphURL
	}
	conn := &Connector{name: name, tenant: c.TenantID, attr: c.UserAttribute}
	if conn.attr == "" {
		conn.attr = "userPrincipalName"
	}
	scope := graphScope(graph)
	conn.api = &connectors.API{
		Base: graph, HTTP: cfg.HTTP, Timeout: c.Attempt(),
		Auth: &connectors.ClientCredentials{
			Name: "entra token", TokenURL: authority + "/" + url.PathEscape(c.TenantID) + "/oauth2/v2.0/token",
			HTTP: cfg.HTTP, Clock: cfg.Clock,
			Who: "the tenant", Hint: "check tenant_id, client_id and client_secret (expired?)",
			Form: func(time.Time) (url.Values, error) {
				return url.Values{"grant_type": {"client_credentials"}, "client_id": {c.ClientID}, "client_secret": {secret}, "scope": {scope}}, nil
			},
		},
	}
	conn.GroupMembers = &connectors.GroupMembers{
		Kind: "entra", Name: name, Params: params, Key: ParamGroupID, Target: "Entra ID group",
		Users:   connectors.NewUsers(cfg.Clock, "Entra ID tenant "+c.TenantID, conn.lookupUser),
		Intents: connectors.NewIntents(cfg.State), IsMember: conn.isMember, Add: conn.addMember, Remove: conn.remove,
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

// CheckParams checks a role's grant parameters without contacting the
// target: exactly group_id, the group's object ID (a GUID), required. Unknown keys are errors, with a did-you-mean.
func (c *Connector) CheckParams(p map[string]string) error { return params.CheckParams(p) }

// addMember posts the $ref; see the package comment for the answers.
func (c *Connector) addMember(ctx context.Context, op string, _ access.Grant, group, uid string) error {
	var ge graphError
	status, err := c.api.Send(ctx, connectors.JSONCall{
		Op: op, Method: http.MethodPost, Path: "/groups/" + url.PathEscape(group) + "/members/$ref",
		Body: map[string]string{"@odata.id": directoryObjects + uid},
		// Adding a member is idempotent (a repeat answers "already
		// exist"), so the shared client may retry the POST.
		Header:   http.Header{"Idempotency-Key": {"add." + group + "." + uid}},
		ErrorOut: &ge,
	})
	msg := ge.Error.Message
	switch {
	case err == nil:
		return nil
	case status == http.StatusBadRequest && strings.Contains(msg, "added object references already exist"):
		return nil // already a member
	case status == http.StatusBadRequest && strings.Contains(msg, "do not exist"),
		status == http.StatusNotFound && strings.Contains(msg, uid):
		return replicationLag(err)
	case status == http.StatusNotFound:
		return access.PermanentError(fmt.Errorf("%s: Entra group %q not found: %w", op, group, err))
	}
	return err
}

// replicationLag makes a classified error retryable after replicationWait.
func replicationLag(err error) error {
	var ce *access.ConnectorError
	if errors.As(err, &ce) {
		ce.Class, ce.RetryAfter = access.Retryable, replicationWait
	}
	return err
}

// remove deletes uid's $ref; 404 (not a member, the user or the group
// gone) is done.
func (c *Connector) remove(ctx context.Context, op string, _ access.Grant, group, uid string) error {
	_, err := c.api.Send(ctx, connectors.JSONCall{
		Op: op, Method: http.MethodDelete, Path: "/groups/" + url.PathEscape(group) + "/members/" + url.PathEscape(uid) + "/$ref",
		Accept: []int{http.StatusNotFound},
	})
	return err
}

// isMember pages through uid's memberOf (@odata.nextLink, on the
// configured Graph only). A 404 for a user resolved moments ago is
// replication lag.
func (c *Connector) isMember(ctx context.Context, op, group, uid string) (bool, error) {
	next := c.api.Base + "/users/" + url.PathEscape(uid) + "/memberOf?$select=id"
	for pages := 0; next != "" && pages < maxPages; pages++ {
		var page struct {
			Value []struct {
				ID string `json:"id"`
			} `json:"value"`
			NextLink string `json:"@odata.nextLink"`
		}
		status, err := c.api.Send(ctx, connectors.JSONCall{Op: op, Method: http.MethodGet, Path: next, Out: &page})
		if status == http.StatusNotFound {
			return false, replicationLag(err)
		}
		if err != nil {
			return false, err
		}
		for _, o := range page.Value {
			if o.ID == group {
				return true, nil
			}
		}
		next = ""
		if c.api.OnBase(page.NextLink) { // never send the token elsewhere
			next = page.NextLink
		}
	}
	return false, nil
}

// graphUser is the part of a Graph user this connector reads.
type graphUser struct {
	ID                string `json:"id"`
	Mail              string `json:"mail"`
	UserPrincipalName string `json:"userPrincipalName"`
	AccountEnabled    *bool  `json:"accountEnabled"`
}

// findUser finds the person by UPN or mail (user_attribute), selecting
// props; nil when nobody matches.
func (c *Connector) findUser(ctx context.Context, op, email, props string) (*graphUser, error) {
	if c.attr == "mail" {
		var list struct {
			Value []graphUser `json:"value"`
		}
		if _, err := c.api.Send(ctx, connectors.JSONCall{
			Op: op, Method: http.MethodGet, Path: "/users",
			Query: url.Values{"$filter": {"mail eq '" + strings.ReplaceAll(email, "'", "''") + "'"}, "$select": {props}},
			Out:   &list,
		}); err != nil {
			return nil, err
		}
		switch len(list.Value) {
		case 0:
			return nil, nil
		case 1:
			return &list.Value[0], nil
		}
		return nil, access.PermanentError(fmt.Errorf("%s: %w: several Entra ID users in tenant %s have mail %q; use user_attribute: userPrincipalName", op, connectors.ErrAmbiguousUser, c.tenant, email))
	}
	var u graphUser
	status, err := c.api.Send(ctx, connectors.JSONCall{
		Op: op, Method: http.MethodGet, Path: "/users/" + url.PathEscape(email),
		Query: url.Values{"$select": {props}}, Accept: []int{http.StatusNotFound}, Out: &u,
	})
	switch {
	case err != nil:
		return nil, err
	case status == http.StatusNotFound:
		return nil, nil
	case u.ID == "":
		return nil, access.RetryableError(fmt.Errorf("%s: Graph answered a user without an id", op), 0)
	}
	return &u, nil
}

// lookupUser is the connectors.Users lookup.
func (c *Connector) lookupUser(ctx context.Context, op, email string) (string, error) {
	u, err := c.findUser(ctx, op, email, "id")
	if err != nil || u == nil {
		return "", err
	}
	return u.ID, nil
}

// AccountActive implements access.AccountChecker: the user's
// accountEnabled (false when sign-in is blocked, as offboarding does).
func (c *Connector) AccountActive(ctx context.Context, p access.Person) (bool, error) {
	op := connectors.PersonOp("entra", c.name, "account status", p)
	if err := connectors.CheckEmail(op, p); err != nil {
		return false, err
	}
	u, err := c.findUser(ctx, op, p.Email, "id,accountEnabled")
	switch {
	case err != nil:
		return false, err
	case u == nil:
		return false, c.Users.Unknown(op, p)
	case u.AccountEnabled == nil:
		return false, access.RetryableError(fmt.Errorf("%s: Graph answered without accountEnabled", op), 0)
	}
	return *u.AccountEnabled, nil
}

// Manager implements access.ManagerLookup with GET /users/{id}/manager:
// the manager's mail (or userPrincipalName), "" when none is assigned
// (404).
func (c *Connector) Manager(ctx context.Context, p access.Person) (string, error) {
	op := connectors.PersonOp("entra", c.name, "manager lookup", p)
	uid, err := c.Users.ByEmail(ctx, op, p)
	if err != nil {
		return "", err
	}
	var m graphUser
	status, err := c.api.Send(ctx, connectors.JSONCall{
		Op: op, Method: http.MethodGet, Path: "/users/" + url.PathEscape(uid) + "/manager",
		Query: url.Values{"$select": {"id,mail,userPrincipalName"}}, Accept: []int{http.StatusNotFound}, Out: &m,
	})
	switch {
	case err != nil:
		return "", err
	case status == http.StatusNotFound:
		return "", nil
	case m.Mail != "":
		return m.Mail, nil
	case m.UserPrincipalName != "":
		return m.UserPrincipalName, nil
	}
	return "", access.PermanentError(fmt.Errorf("%s: the manager on record (%s) has neither mail nor userPrincipalName", op, m.ID))
}

func (c *Connector) op(op string, g access.Grant) string {
	return connectors.Op("entra", c.name, op, g)
}
