package entra_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/connectors"
	"github.com/accessbot/accessbot/connectors/conformance"
	"github.com/accessbot/accessbot/connectors/connectortest"
	"github.com/accessbot/accessbot/connectors/entra"
)

const (
	tenant       = "contoso.onmicrosoft.com"
	clientID     = "11111111-2222-3333-4444-555555555555"
	clientSecret = "Qx8Q~secretVALUEdoNotLeak0123456789"
	groupID      = "02bd9fd6-8f93-4758-87c3-1fb73740a315"
	aliceID      = "87d349ed-44d7-43e1-9a83-5f2406dee5bd"
	bobID        = "6e7b768e-07e2-4810-8459-485f84f8f204"
	carolID      = "5c1f0b2a-1111-4c3d-9e8f-0a1b2c3d4e5f"
	daveID       = "9d2e3f4a-2222-4b5c-8d7e-1f2a3b4c5d6e"
)

// fakeGraph is Microsoft Graph v1.0 and the identity platform's token
// endpoint, written from their reference pages: client credentials tokens,
// users by UPN or $filter=mail (only the properties $select asks for are
// returned beyond the default set, so accountEnabled needs $select, as
// https://learn.microsoft.com/en-us/graph/api/resources/user?view=graph-rest-1.0
// documents), a user's manager (404 when none is assigned,
// https://learn.microsoft.com/en-us/graph/api/user-list-manager?view=graph-rest-1.0),
// members/$ref add and remove with Graph's status codes and error bodies
// (404 Request_ResourceNotFound naming a user the write replica has not
// seen yet: replication lag), memberOf paged with @odata.nextLink, 401
// InvalidAuthenticationToken for expired tokens, and 429/503 with
// Retry-After.
type fakeGraph struct {
	connectortest.Faults // requests seen, failures to answer next

	srv *httptest.Server

	mu     sync.Mutex
	users  map[string]graphUser // by id
	groups map[string][]string  // group id → member ids
	// lagging users are readable but unknown to the replica that serves
	// writes (created moments ago).
	lagging map[string]bool
	tokens  map[string]bool
	issued  int
	secret  string
	down    bool
}

type graphUser struct {
	upn, mail string
	disabled  bool
	manager   string // the manager's id
}

func newFakeGraph(t *testing.T) *fakeGraph {
	f := &fakeGraph{
		users: map[string]graphUser{
			aliceID: {upn: "alice@example.com", mail: "alice@example.com", manager: carolID},
			bobID:   {upn: "bob_contoso.com#EXT#@contoso.onmicrosoft.com", mail: "bob@example.com"},
			carolID: {upn: "carol@example.com", mail: "carol@example.com"},
			daveID:  {upn: "dave@example.com", mail: "dave@example.com", disabled: true, manager: carolID},
		},
		lagging: map[string]bool{},
		groups:  map[string][]string{groupID: {}, "0000000a-0000-4000-8000-00000000000a": {aliceID}, "0000000b-0000-4000-8000-00000000000b": {aliceID}, "0000000c-0000-4000-8000-00000000000c": {aliceID}},
		tokens:  map[string]bool{}, secret: clientSecret,
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /{tenant}/oauth2/v2.0/token", f.token)
	mux.HandleFunc("GET /v1.0/users/{id}", f.api(f.getUser))
	mux.HandleFunc("GET /v1.0/users", f.api(f.listUsers))
	mux.HandleFunc("GET /v1.0/users/{id}/memberOf", f.api(f.memberOf))
	mux.HandleFunc("GET /v1.0/users/{id}/manager", f.api(f.manager))
	mux.HandleFunc("POST /v1.0/groups/{gid}/members/$ref", f.api(f.addMember))
	mux.HandleFunc("DELETE /v1.0/groups/{gid}/members/{uid}/$ref", f.api(f.removeMember))
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

func graphErr(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{
		"code": code, "message": msg,
		"innerError": map[string]string{"date": "2026-11-29T10:00:00", "request-id": "b3a0c0de-0000", "client-request-id": "b3a0c0de-0000"},
	}})
}

func (f *fakeGraph) token(w http.ResponseWriter, r *http.Request) {
	r.ParseForm()
	f.mu.Lock()
	defer f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	if r.PathValue("tenant") != tenant || r.PostForm.Get("grant_type") != "client_credentials" ||
		r.PostForm.Get("scope") != "https://graph.microsoft.com/.default" {
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprint(w, `{"error":"invalid_request","error_description":"AADSTS900144: bad request","error_codes":[900144]}`)
		return
	}
	if r.PostForm.Get("client_id") != clientID || r.PostForm.Get("client_secret") != f.secret {
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprint(w, `{"error":"invalid_client","error_description":"AADSTS7000222: The provided client secret keys for app '`+clientID+`' are expired.","error_codes":[7000222]}`)
		return
	}
	f.issued++
	tok := "eyJ0eXAi.graph." + strconv.Itoa(f.issued)
	f.tokens[tok] = true
	json.NewEncoder(w).Encode(map[string]any{"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": tok})
}

func (f *fakeGraph) api(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.Record(r)
		if !f.tokens[strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")] {
			w.Header().Set("WWW-Authenticate", `Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", client_id="00000003-0000-0000-c000-000000000000"`)
			graphErr(w, http.StatusUnauthorized, "InvalidAuthenticationToken", "Lifetime validation failed, the token is expired.")
			return
		}
		status, ok := f.Take()
		if f.down {
			status, ok = http.StatusServiceUnavailable, true
		}
		if ok {
			switch status {
			case http.StatusTooManyRequests:
				w.Header().Set("Retry-After", "7")
				graphErr(w, status, "TooManyRequests", "Too many requests.")
			case http.StatusServiceUnavailable:
				w.Header().Set("Retry-After", "3")
				graphErr(w, status, "serviceNotAvailable", "The service is temporarily unavailable.")
			case http.StatusForbidden:
				graphErr(w, status, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.")
			default:
				graphErr(w, status, "generalException", "An unspecified error has occurred.")
			}
			return
		}
		h(w, r)
	}
}

func (f *fakeGraph) findUser(key string) (string, bool) {
	if _, ok := f.users[key]; ok {
		return key, true
	}
	for id, u := range f.users {
		if strings.EqualFold(u.upn, key) {
			return id, true
		}
	}
	return "", false
}

// userJSON renders a user with the default properties plus those $select
// names (and only those, when $select is given).
func (f *fakeGraph) userJSON(id string, r *http.Request) map[string]any {
	u := f.users[id]
	all := map[string]any{"id": id, "userPrincipalName": u.upn, "mail": u.mail, "displayName": u.upn, "accountEnabled": !u.disabled}
	sel := r.URL.Query().Get("$select")
	out := map[string]any{}
	if sel == "" {
		for _, k := range []string{"id", "userPrincipalName", "mail", "displayName"} { // the default set
			out[k] = all[k]
		}
		return out
	}
	for _, k := range strings.Split(sel, ",") {
		if v, ok := all[k]; ok {
			out[k] = v
		}
	}
	return out
}

func (f *fakeGraph) getUser(w http.ResponseWriter, r *http.Request) {
	id, ok := f.findUser(r.PathValue("id"))
	if !ok {
		graphErr(w, http.StatusNotFound, "Request_ResourceNotFound",
			"Resource '"+r.PathValue("id")+"' does not exist or one of its queried reference-property objects are not present.")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	out := f.userJSON(id, r)
	out["@odata.context"] = "https://graph.microsoft.com/v1.0/$metadata#users/$entity"
	json.NewEncoder(w).Encode(out)
}

func (f *fakeGraph) manager(w http.ResponseWriter, r *http.Request) {
	id, ok := f.findUser(r.PathValue("id"))
	if !ok {
		graphErr(w, http.StatusNotFound, "Request_ResourceNotFound", "Resource '"+r.PathValue("id")+"' does not exist or one of its queried reference-property objects are not present.")
		return
	}
	m := f.users[id].manager
	if m == "" {
		graphErr(w, http.StatusNotFound, "Request_ResourceNotFound", "Resource 'manager' does not exist or one of its queried reference-property objects are not present.")
		return
	}
	out := f.userJSON(m, r)
	out["@odata.type"] = "#microsoft.graph.user"
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(out)
}

func (f *fakeGraph) listUsers(w http.ResponseWriter, r *http.Request) {
	flt := r.URL.Query().Get("$filter")
	mail, ok := strings.CutPrefix(flt, "mail eq '")
	if !ok || !strings.HasSuffix(mail, "'") {
		graphErr(w, http.StatusBadRequest, "Request_UnsupportedQuery", "Unsupported Query.")
		return
	}
	mail = strings.ReplaceAll(strings.TrimSuffix(mail, "'"), "''", "'")
	out := []any{}
	for id, u := range f.users {
		if strings.EqualFold(u.mail, mail) {
			out = append(out, f.userJSON(id, r))
		}
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#users(id)", "value": out})
}

// memberOf pages two objects at a time with @odata.nextLink ($skiptoken).
func (f *fakeGraph) memberOf(w http.ResponseWriter, r *http.Request) {
	id, ok := f.findUser(r.PathValue("id"))
	if !ok {
		graphErr(w, http.StatusNotFound, "Request_ResourceNotFound", "Resource does not exist.")
		return
	}
	var gids []string
	for gid, m := range f.groups {
		if slices.Contains(m, id) {
			gids = append(gids, gid)
		}
	}
	slices.Sort(gids)
	start, _ := strconv.Atoi(r.URL.Query().Get("$skiptoken"))
	end := min(start+2, len(gids))
	page := map[string]any{"value": []any{}}
	var vals []any
	for _, g := range gids[start:end] {
		vals = append(vals, map[string]string{"@odata.type": "#microsoft.graph.group", "id": g})
	}
	if vals != nil {
		page["value"] = vals
	}
	if end < len(gids) {
		page["@odata.nextLink"] = f.srv.URL + "/v1.0/users/" + id + "/memberOf?$select=id&$skiptoken=" + strconv.Itoa(end)
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(page)
}

func (f *fakeGraph) addMember(w http.ResponseWriter, r *http.Request) {
	members, ok := f.groups[r.PathValue("gid")]
	if !ok {
		graphErr(w, http.StatusNotFound, "Request_ResourceNotFound", "Resource '"+r.PathValue("gid")+"' does not exist or one of its queried reference-property objects are not present.")
		return
	}
	var body map[string]string
	if json.NewDecoder(r.Body).Decode(&body) != nil {
		graphErr(w, http.StatusBadRequest, "BadRequest", "Unable to read JSON request payload.")
		return
	}
	uid, ok := strings.CutPrefix(body["@odata.id"], "https://graph.microsoft.com/v1.0/directoryObjects/")
	if !ok {
		graphErr(w, http.StatusBadRequest, "Request_BadRequest", "Invalid object identifier '"+body["@odata.id"]+"'.")
		return
	}
	if _, known := f.users[uid]; !known || f.lagging[uid] {
		graphErr(w, http.StatusNotFound, "Request_ResourceNotFound", "Resource '"+uid+"' does not exist or one of its queried reference-property objects are not present.")
		return
	}
	if slices.Contains(members, uid) {
		graphErr(w, http.StatusBadRequest, "Request_BadRequest", "One or more added object references already exist for the following modified properties: 'members'.")
		return
	}
	f.groups[r.PathValue("gid")] = append(members, uid)
	w.WriteHeader(http.StatusNoContent)
}

func (f *fakeGraph) removeMember(w http.ResponseWriter, r *http.Request) {
	gid, uid := r.PathValue("gid"), r.PathValue("uid")
	members, ok := f.groups[gid]
	i := slices.Index(members, uid)
	if !ok || i < 0 {
		graphErr(w, http.StatusNotFound, "Request_ResourceNotFound", "Resource '"+uid+"' does not exist or one of its queried reference-property objects are not present.")
		return
	}
	f.groups[gid] = slices.Delete(members, i, i+1)
	w.WriteHeader(http.StatusNoContent)
}

func (f *fakeGraph) isMember(gid, uid string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Contains(f.groups[gid], uid)
}

func (f *fakeGraph) edit(fn func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn()
}

// rename changes a user's UPN and mail (a name change; the ID stays).
func (f *fakeGraph) rename(id, email string) {
	f.edit(func() {
		u := f.users[id]
		u.upn, u.mail = email, email
		f.users[id] = u
	})
}

// deleteUser deletes a user; their memberships go with them.
func (f *fakeGraph) deleteUser(id string) {
	f.edit(func() {
		delete(f.users, id)
		for g, m := range f.groups {
			f.groups[g] = slices.DeleteFunc(m, func(x string) bool { return x == id })
		}
	})
}

var clock = connectortest.NewClock(time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC))

func config(f *fakeGraph, extra ...any) map[string]any {
	raw := map[string]any{
		"type": entra.Type, "tenant_id": tenant, "client_id": clientID, "client_secret": clientSecret,
		"authority_url": f.srv.URL, "graph_url": f.srv.URL + "/v1.0",
	}
	for i := 0; i+1 < len(extra); i += 2 {
		raw[extra[i].(string)] = extra[i+1]
	}
	return raw
}

func build(t *testing.T, raw map[string]any, doer connectors.Doer) (access.Connector, error) {
	return connectortest.Build(t, entra.Type, entra.Factory, "entra", raw, connectors.Env{HTTP: doer, Clock: clock, State: &connectortest.State{}})
}

func mustBuild(t *testing.T, raw map[string]any, doer connectors.Doer) access.Connector {
	t.Helper()
	c, err := build(t, raw, doer)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func aliceGrant() access.Grant {
	return access.Grant{
		ID: "AR-9", System: "entra", Role: "ops",
		Params: map[string]string{"group_id": groupID},
		User:   access.Person{SlackID: "U0ALICE01", Email: "alice@example.com", Name: "Alice"},
	}
}

func nobody() access.Grant {
	g := aliceGrant()
	g.User = access.Person{SlackID: "U0NOBODY1", Email: "nobody@example.com", Name: "Nobody"}
	return g
}

func TestConformance(t *testing.T) {
	var cur *fakeGraph
	conformance.Run(t, conformance.Harness{
		New: func(t *testing.T) access.Connector {
			cur = newFakeGraph(t)
			return mustBuild(t, config(cur), connectortest.FastHTTPShortRetryAfter(-1))
		},
		Grant:        func(t *testing.T) access.Grant { return aliceGrant() },
		HasAccess:    func(t *testing.T, g access.Grant) bool { return cur.isMember(g.Params["group_id"], aliceID) },
		UnknownUser:  func(t *testing.T) access.Grant { return nobody() },
		FailNext:     func(t *testing.T, status int) { cur.FailNext(status) },
		TargetUserID: func(t *testing.T, g access.Grant) string { return aliceID },
		ChangeEmail: func(t *testing.T, g access.Grant) string {
			cur.rename(aliceID, "alice.married@example.com")
			return "alice.married@example.com"
		},
		PreGrant: func(t *testing.T, g access.Grant) {
			cur.edit(func() { cur.groups[groupID] = append(cur.groups[groupID], aliceID) })
		},
		DeleteUser: func(t *testing.T, g access.Grant) { cur.deleteUser(aliceID) },
	})
}

func TestIdentity(t *testing.T) {
	person := func(name string) access.Person {
		return access.Person{SlackID: "U0" + strings.ToUpper(name), Email: name + "@example.com", Name: name}
	}
	for _, attr := range []string{"userPrincipalName", "mail"} {
		t.Run(attr, func(t *testing.T) {
			var cur *fakeGraph
			conformance.RunIdentity(t, conformance.IdentityHarness{
				New: func(t *testing.T) access.Connector {
					cur = newFakeGraph(t)
					return mustBuild(t, config(cur, "user_attribute", attr), connectortest.FastHTTPShortRetryAfter(-1))
				},
				Managed: person("alice"), ManagerEmail: "carol@example.com",
				Unmanaged: person("carol"), Inactive: person("dave"), Unknown: person("nobody"),
				Outage: func(t *testing.T) { cur.edit(func() { cur.down = true }) },
			})
		})
	}
}

func TestConformanceByMail(t *testing.T) {
	var cur *fakeGraph
	conformance.Run(t, conformance.Harness{
		New: func(t *testing.T) access.Connector {
			cur = newFakeGraph(t)
			return mustBuild(t, config(cur, "user_attribute", "mail"), connectortest.FastHTTPShortRetryAfter(-1))
		},
		// bob is a guest: his UPN is not his email, only mail finds him.
		Grant: func(t *testing.T) access.Grant {
			g := aliceGrant()
			g.User = access.Person{SlackID: "U0BOB0001", Email: "bob@example.com", Name: "Bob"}
			return g
		},
		HasAccess:    func(t *testing.T, g access.Grant) bool { return cur.isMember(g.Params["group_id"], bobID) },
		UnknownUser:  func(t *testing.T) access.Grant { return nobody() },
		FailNext:     func(t *testing.T, status int) { cur.FailNext(status) },
		TargetUserID: func(t *testing.T, g access.Grant) string { return bobID },
		ChangeEmail: func(t *testing.T, g access.Grant) string {
			cur.rename(bobID, "robert@example.com")
			return "robert@example.com"
		},
		PreGrant: func(t *testing.T, g access.Grant) {
			cur.edit(func() { cur.groups[groupID] = append(cur.groups[groupID], bobID) })
		},
		DeleteUser: func(t *testing.T, g access.Grant) { cur.deleteUser(bobID) },
	})
}

func classOf(t *testing.T, err error) (access.ErrorClass, time.Duration) {
	t.Helper()
	var ce *access.ConnectorError
	if !errors.As(err, &ce) {
		t.Fatalf("unclassified error: %v", err)
	}
	return access.Classify(err)
}

func TestGraphCases(t *testing.T) {
	ctx := t.Context()
	setup := func(t *testing.T, retryMax int) (*fakeGraph, access.Connector) {
		f := newFakeGraph(t)
		return f, mustBuild(t, config(f), connectortest.FastHTTPShortRetryAfter(retryMax))
	}

	t.Run("Success", func(t *testing.T) {
		f, c := setup(t, -1)
		r, err := c.Grant(ctx, aliceGrant())
		if err != nil {
			t.Fatal(err)
		}
		if r.UserID != aliceID || r.PreExisting {
			t.Fatalf("receipt %+v", r)
		}
		g := aliceGrant()
		g.Receipt = &r
		if err := c.Revoke(ctx, g); err != nil {
			t.Fatal(err)
		}
		if f.Count("POST /v1.0/groups/"+groupID+"/members/$ref") != 1 || f.Count("DELETE /v1.0/groups/"+groupID+"/members/"+aliceID+"/$ref") != 1 {
			t.Fatalf("requests %v", f.Calls())
		}
		// One lookup and alice's two memberOf pages; the revoke looks
		// nobody up.
		if f.issued != 1 || f.Count("GET /v1.0/users/alice") != 1 || f.Count("GET /v1.0/users/"+aliceID+"/memberOf") != 2 {
			t.Fatalf("token issued %d times; requests %v", f.issued, f.Calls())
		}
	})

	t.Run("AlreadyMember", func(t *testing.T) {
		f, c := setup(t, -1)
		f.groups[groupID] = []string{aliceID}
		r, err := c.Grant(ctx, aliceGrant())
		if err != nil || !r.PreExisting || f.Count("POST ") != 0 {
			t.Fatalf("receipt %+v, %v, requests %v", r, err, f.Calls())
		}
	})

	t.Run("NotAMemberOnRemove", func(t *testing.T) {
		_, c := setup(t, -1)
		if err := c.Revoke(ctx, aliceGrant()); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("UserNotFound", func(t *testing.T) {
		_, c := setup(t, -1)
		_, err := c.Grant(ctx, nobody())
		if class, _ := classOf(t, err); class != access.Permanent {
			t.Fatalf("class %v: %v", class, err)
		}
		if !errors.Is(err, access.ErrUnknownUser) || !strings.Contains(err.Error(), "nobody@example.com") ||
			!strings.Contains(err.Error(), "Entra ID") || !strings.Contains(err.Error(), tenant) {
			t.Fatalf("error does not name the person and the tenant: %v", err)
		}
	})

	t.Run("GroupNotFound", func(t *testing.T) {
		_, c := setup(t, -1)
		g := aliceGrant()
		g.Params["group_id"] = "00000404-0000-4000-8000-000000000404"
		_, err := c.Grant(ctx, g)
		if class, _ := classOf(t, err); class != access.Permanent || !strings.Contains(err.Error(), "00000404-0000-4000-8000-000000000404") {
			t.Fatalf("class %v: %v", class, err)
		}
	})

	t.Run("ReplicationLagIsRetryable", func(t *testing.T) {
		// A user created moments ago: readable, but the replica serving
		// the write answers 404 Request_ResourceNotFound for them.
		const newID = "ffffffff-0000-4000-8000-00000000000f"
		f, c := setup(t, -1)
		f.edit(func() {
			f.users[newID] = graphUser{upn: "new@example.com", mail: "new@example.com"}
			f.lagging[newID] = true
		})
		g := aliceGrant()
		g.User.Email = "new@example.com"
		r, err := c.Grant(ctx, g)
		if class, ra := classOf(t, err); class != access.Retryable || ra != 10*time.Second {
			t.Fatalf("class %v after %v: %v", class, ra, err)
		}
		if r.UserID != newID {
			t.Fatalf("receipt %+v: the lifecycle needs the user to roll back if it gives up", r)
		}
		// Replication catches up; the retried grant lands and is the
		// grant's own (not pre-existing).
		f.edit(func() { delete(f.lagging, newID) })
		r, err = c.Grant(ctx, g)
		if err != nil || r.PreExisting || r.UserID != newID || !f.isMember(groupID, newID) {
			t.Fatalf("after replication: %+v, %v", r, err)
		}
		// The group itself missing stays permanent.
		g.Params = map[string]string{"group_id": "00000404-0000-4000-8000-000000000404"}
		g.ID = "AR-10"
		if _, err := c.Grant(ctx, g); err == nil {
			t.Fatal("grant to a missing group succeeded")
		} else if class, _ := classOf(t, err); class != access.Permanent {
			t.Fatalf("missing group: %v", err)
		}
	})

	t.Run("MissingParameter", func(t *testing.T) {
		_, c := setup(t, -1)
		g := aliceGrant()
		g.Params = map[string]string{"group": "x"}
		_, err := c.Grant(ctx, g)
		if class, _ := classOf(t, err); class != access.Permanent || !strings.Contains(err.Error(), "group_id") {
			t.Fatalf("class %v: %v", class, err)
		}
	})

	t.Run("Unavailable503", func(t *testing.T) {
		f, c := setup(t, 2)
		f.FailNext(http.StatusServiceUnavailable)
		// Retry-After 3s is beyond the inner loop's cap: handed to the
		// lifecycle at once.
		_, err := c.Grant(ctx, aliceGrant())
		if class, ra := classOf(t, err); class != access.Retryable || ra != 3*time.Second {
			t.Fatalf("class %v after %v: %v", class, ra, err)
		}
	})

	t.Run("Throttled429", func(t *testing.T) {
		f, c := setup(t, -1)
		f.FailNext(http.StatusTooManyRequests)
		_, err := c.Grant(ctx, aliceGrant())
		if class, ra := classOf(t, err); class != access.Retryable || ra != 7*time.Second {
			t.Fatalf("class %v after %v: %v", class, ra, err)
		}
	})

	t.Run("ServerErrorThenSuccess", func(t *testing.T) {
		f, c := setup(t, 2)
		f.FailNext(http.StatusBadGateway, http.StatusInternalServerError)
		if _, err := c.Grant(ctx, aliceGrant()); err != nil {
			t.Fatal(err)
		}
		// The POST itself meets a 500 and is retried (Idempotency-Key).
		if err := c.Revoke(ctx, aliceGrant()); err != nil {
			t.Fatal(err)
		}
		f.FailNext(http.StatusInternalServerError)
		if _, err := c.Grant(ctx, aliceGrant()); err != nil {
			t.Fatal(err)
		}
		if !f.isMember(groupID, aliceID) {
			t.Fatal("not a member")
		}
	})

	t.Run("ExpiredAccessTokenRefreshedOnce", func(t *testing.T) {
		f, c := setup(t, -1)
		if _, err := c.Grant(ctx, aliceGrant()); err != nil {
			t.Fatal(err)
		}
		f.mu.Lock()
		clear(f.tokens) // Graph now says InvalidAuthenticationToken
		f.mu.Unlock()
		if err := c.Revoke(ctx, aliceGrant()); err != nil {
			t.Fatal(err)
		}
		if f.issued != 2 {
			t.Fatalf("%d tokens issued, want 2", f.issued)
		}
	})

	t.Run("ExpiredClientSecret", func(t *testing.T) {
		f, c := setup(t, 2)
		f.secret = "rotated"
		_, err := c.Grant(ctx, aliceGrant())
		if class, _ := classOf(t, err); class != access.Permanent || !strings.Contains(err.Error(), "AADSTS7000222") {
			t.Fatalf("class %v: %v", class, err)
		}
		if strings.Contains(err.Error(), clientSecret) {
			t.Fatalf("error leaks the secret: %v", err)
		}
	})

	t.Run("PersistentInvalidToken", func(t *testing.T) {
		// A token the tenant issues but Graph refuses (wrong audience, say):
		// refresh once, then permanent.
		f := newFakeGraph(t)
		graphOnly := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			graphErr(w, http.StatusUnauthorized, "InvalidAuthenticationToken", "Access token validation failure. Invalid audience.")
		})
		wrapped := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.HasSuffix(r.URL.Path, "/token") {
				f.srv.Config.Handler.ServeHTTP(w, r)
				return
			}
			graphOnly(w, r)
		}))
		t.Cleanup(wrapped.Close)
		c := mustBuild(t, config(f, "authority_url", wrapped.URL, "graph_url", wrapped.URL+"/v1.0"), connectortest.FastHTTPShortRetryAfter(-1))
		_, err := c.Grant(ctx, aliceGrant())
		if class, _ := classOf(t, err); class != access.Permanent || !strings.Contains(err.Error(), "credentials") {
			t.Fatalf("class %v: %v", class, err)
		}
		if f.issued != 2 {
			t.Fatalf("%d tokens issued, want 2 (one refresh)", f.issued)
		}
	})

	t.Run("CheckFollowsNextLink", func(t *testing.T) {
		f, c := setup(t, -1)
		g := aliceGrant()
		g.Params["group_id"] = "0000000c-0000-4000-8000-00000000000c" // on the second page
		ok, err := c.(access.Checker).Check(ctx, g)
		if err != nil || !ok {
			t.Fatalf("Check = %v, %v", ok, err)
		}
		if n := f.Count("GET /v1.0/users/" + aliceID + "/memberOf"); n != 2 {
			t.Fatalf("%d pages, want 2", n)
		}
	})
}

func TestConfigErrors(t *testing.T) {
	cases := []struct {
		name string
		raw  map[string]any
		want []string
	}{
		{"empty", map[string]any{}, []string{"connectors.entra.tenant_id: required", "connectors.entra.client_id: required", "connectors.entra.client_secret: required"}},
		{"attr", map[string]any{"tenant_id": "t", "client_id": "c", "client_secret": "s", "user_attribute": "email"}, []string{"connectors.entra.user_attribute: must be"}},
		{"http authority", map[string]any{"tenant_id": "t", "client_id": "c", "client_secret": "s", "authority_url": "http://login.example.com"}, []string{"connectors.entra.authority_url: must be an https:// URL"}},
		{"tenant", map[string]any{"tenant_id": "a/b", "client_id": "c", "client_secret": "s"}, []string{"connectors.entra.tenant_id: must be"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := build(t, tc.raw, connectortest.FastHTTPShortRetryAfter(-1))
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}
