package okta_test

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
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
	"github.com/accessbot/accessbot/connectors/okta"
)

const apiToken = "00aTESTtokenValue0123456789abcdefXYZ"

// fakeOkta is an Okta org written from the Management API reference
// (https://developer.okta.com/docs/api/openapi/okta-management/management/tag/User/
// and …/tag/Group/): SSWS or Bearer auth, users by id or login, list with
// a filter (only the properties the API documents for filter: a
// profile.employeeNumber filter is refused with 400 E0000031, as Okta
// does; it needs search=), user status and the base profile's manager /
// managerId, OKTA_GROUP memberships with 204 answers (a deleted user's
// memberships go with it), a user's groups paged with Link rel="next",
// errors as {"errorCode","errorSummary",…}, and X-Rate-Limit-* headers on
// every answer.
type fakeOkta struct {
	connectortest.Faults // requests seen, failures to answer next

	t   *testing.T
	srv *httptest.Server
	now func() time.Time

	mu     sync.Mutex
	users  map[string]oktaUser        // by id
	groups map[string]map[string]bool // group id → member ids
	pubKey *rsa.PublicKey             // for private_key_jwt
	tokens map[string]bool            // valid access tokens
	issued int
	down   bool // every API call answers 503
}

type oktaUser struct {
	ID    string
	Login string
	Email string
	// Status is ACTIVE unless set.
	Status                          string
	Manager, ManagerID, EmployeeNum string
}

func newFakeOkta(t *testing.T, now func() time.Time) *fakeOkta {
	f := &fakeOkta{
		t: t, now: now,
		users: map[string]oktaUser{
			// alice's managerId is bob's employee number, as an HR import
			// writes it; carol's is bob's Okta ID; bob has no manager; dan
			// has only a display name; erin is suspended, frank
			// deprovisioned.
			"00u1alice": {ID: "00u1alice", Login: "alice@example.com", Email: "alice@example.com", Manager: "Bob B", ManagerID: "1002"},
			"00u2bob":   {ID: "00u2bob", Login: "bob", Email: "bob@example.com", EmployeeNum: "1002"},
			"00u3carol": {ID: "00u3carol", Login: "carol@example.com", Email: "carol@example.com", ManagerID: "00u2bob"},
			"00u4dan":   {ID: "00u4dan", Login: "dan@example.com", Email: "dan@example.com", Manager: "Bob B"},
			"00u5erin":  {ID: "00u5erin", Login: "erin@example.com", Email: "erin@example.com", Status: "SUSPENDED"},
			"00u6frank": {ID: "00u6frank", Login: "frank@example.com", Email: "frank@example.com", Status: "DEPROVISIONED"},
			"00u7gina":  {ID: "00u7gina", Login: "gina@example.com", Email: "gina@example.com"},
		},
		groups: map[string]map[string]bool{"00g1viewer": {}, "00g2a": {}, "00g3b": {}, "00g4c": {}},
		tokens: map[string]bool{},
	}
	// alice is in three other groups so that her group list spans pages.
	for _, g := range []string{"00g2a", "00g3b", "00g4c"} {
		f.groups[g]["00u1alice"] = true
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /oauth2/v1/token", f.token)
	mux.HandleFunc("GET /api/v1/users/{id}", f.api(f.getUser))
	mux.HandleFunc("GET /api/v1/users", f.api(f.listUsers))
	mux.HandleFunc("GET /api/v1/users/{id}/groups", f.api(f.userGroups))
	mux.HandleFunc("PUT /api/v1/groups/{gid}/users/{uid}", f.api(f.assign))
	mux.HandleFunc("DELETE /api/v1/groups/{gid}/users/{uid}", f.api(f.unassign))
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

func oktaError(w http.ResponseWriter, status int, code, summary string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{
		"errorCode": code, "errorSummary": summary, "errorLink": code,
		"errorId": "oaeTESTerrorid", "errorCauses": []any{},
	})
}

// api wraps a handler with auth, fault injection and rate-limit headers.
func (f *fakeOkta) api(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.Record(r)
		reset := strconv.FormatInt(f.now().Add(60*time.Second).Unix(), 10)
		w.Header().Set("X-Rate-Limit-Limit", "600")
		w.Header().Set("X-Rate-Limit-Reset", reset)
		authz := r.Header.Get("Authorization")
		ok := authz == "SSWS "+apiToken || strings.HasPrefix(authz, "Bearer ") && f.tokens[strings.TrimPrefix(authz, "Bearer ")]
		if !ok {
			f.mu.Unlock()
			if strings.HasPrefix(authz, "Bearer ") {
				w.Header().Set("WWW-Authenticate", `Bearer authorization_uri="http://okta", realm="http://okta", scope="okta.groups.manage", error="invalid_token", error_description="The access token is invalid.", resource="/api/v1/groups"`)
			}
			oktaError(w, http.StatusUnauthorized, "E0000011", "Invalid token provided")
			return
		}
		status, ok := f.Take()
		if f.down {
			status, ok = http.StatusServiceUnavailable, true
		}
		if ok {
			f.mu.Unlock()
			switch status {
			case http.StatusTooManyRequests:
				w.Header().Set("X-Rate-Limit-Remaining", "0")
				oktaError(w, status, "E0000047", "API call exceeded rate limit due to too many requests.")
			case http.StatusForbidden:
				oktaError(w, status, "E0000006", "You do not have permission to perform the requested action")
			default:
				oktaError(w, status, "E0000009", "Internal Server Error")
			}
			return
		}
		w.Header().Set("X-Rate-Limit-Remaining", "599")
		defer f.mu.Unlock()
		h(w, r)
	}
}

func (f *fakeOkta) findUser(idOrLogin string) (oktaUser, bool) {
	if u, ok := f.users[idOrLogin]; ok {
		return u, true
	}
	for _, u := range f.users {
		if strings.EqualFold(u.Login, idOrLogin) {
			return u, true
		}
	}
	return oktaUser{}, false
}

func userJSON(u oktaUser) map[string]any {
	status := u.Status
	if status == "" {
		status = "ACTIVE"
	}
	profile := map[string]any{"login": u.Login, "email": u.Email}
	for k, v := range map[string]string{"manager": u.Manager, "managerId": u.ManagerID, "employeeNumber": u.EmployeeNum} {
		if v != "" {
			profile[k] = v
		}
	}
	return map[string]any{"id": u.ID, "status": status, "profile": profile}
}

func (f *fakeOkta) getUser(w http.ResponseWriter, r *http.Request) {
	u, ok := f.findUser(r.PathValue("id"))
	if !ok {
		oktaError(w, http.StatusNotFound, "E0000007", "Not found: Resource not found: "+r.PathValue("id")+" (User)")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(userJSON(u))
}

// listUsers implements filter= (profile.email only here; the API's other
// filter properties are not used by the connector, and properties outside
// the documented filter list are refused) and search= on
// profile.employeeNumber.
func (f *fakeOkta) listUsers(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var prop, value string
	var ok bool
	switch {
	case q.Get("filter") != "" && q.Get("search") != "":
		oktaError(w, http.StatusBadRequest, "E0000031", "Invalid search criteria.")
		return
	case q.Get("filter") != "":
		value, ok = strings.CutPrefix(q.Get("filter"), `profile.email eq "`)
		prop = "email"
	case q.Get("search") != "":
		value, ok = strings.CutPrefix(q.Get("search"), `profile.employeeNumber eq "`)
		prop = "employeeNumber"
	}
	if !ok || !strings.HasSuffix(value, `"`) {
		oktaError(w, http.StatusBadRequest, "E0000031", "Invalid search criteria.")
		return
	}
	value = strings.TrimSuffix(value, `"`)
	out := []any{}
	for _, u := range f.users {
		if prop == "email" && strings.EqualFold(u.Email, value) || prop == "employeeNumber" && u.EmployeeNum == value {
			out = append(out, userJSON(u))
		}
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(out)
}

// userGroups pages two groups at a time, whatever limit says, so that
// every client must follow Link rel="next".
func (f *fakeOkta) userGroups(w http.ResponseWriter, r *http.Request) {
	u, ok := f.findUser(r.PathValue("id"))
	if !ok {
		oktaError(w, http.StatusNotFound, "E0000007", "Not found: Resource not found: "+r.PathValue("id")+" (User)")
		return
	}
	var ids []string
	for gid, m := range f.groups {
		if m[u.ID] {
			ids = append(ids, gid)
		}
	}
	slices.Sort(ids)
	start := 0
	if after := r.URL.Query().Get("after"); after != "" {
		start = slices.Index(ids, after) + 1
	}
	end := min(start+2, len(ids))
	page := []any{}
	for _, id := range ids[start:end] {
		page = append(page, map[string]any{"id": id, "type": "OKTA_GROUP"})
	}
	self := f.srv.URL + r.URL.Path
	links := []string{"<" + self + "?limit=2>; rel=\"self\""}
	if end < len(ids) {
		links = append(links, "<"+self+"?limit=2&after="+ids[end-1]+">; rel=\"next\"")
	}
	w.Header().Set("Link", strings.Join(links, ", "))
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(page)
}

func (f *fakeOkta) membership(w http.ResponseWriter, r *http.Request) (map[string]bool, string, bool) {
	m, ok := f.groups[r.PathValue("gid")]
	if !ok {
		oktaError(w, http.StatusNotFound, "E0000007", "Not found: Resource not found: "+r.PathValue("gid")+" (UserGroup)")
		return nil, "", false
	}
	if _, ok := f.users[r.PathValue("uid")]; !ok {
		oktaError(w, http.StatusNotFound, "E0000007", "Not found: Resource not found: "+r.PathValue("uid")+" (User)")
		return nil, "", false
	}
	return m, r.PathValue("uid"), true
}

func (f *fakeOkta) assign(w http.ResponseWriter, r *http.Request) {
	m, uid, ok := f.membership(w, r)
	if !ok {
		return
	}
	m[uid] = true // assigning a member again is a no-op, still 204
	w.WriteHeader(http.StatusNoContent)
}

func (f *fakeOkta) unassign(w http.ResponseWriter, r *http.Request) {
	m, uid, ok := f.membership(w, r)
	if !ok {
		return
	}
	if !m[uid] {
		oktaError(w, http.StatusNotFound, "E0000007", "Not found: Resource not found: "+uid+" (GroupMembership)")
		return
	}
	delete(m, uid)
	w.WriteHeader(http.StatusNoContent)
}

// token is the org authorization server's token endpoint for a service
// app with private_key_jwt: it checks the assertion's signature and claims
// and issues an opaque access token.
func (f *fakeOkta) token(w http.ResponseWriter, r *http.Request) {
	bad := func(code, desc string) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": desc})
	}
	if err := r.ParseForm(); err != nil {
		bad("invalid_request", "bad form")
		return
	}
	if r.PostForm.Get("grant_type") != "client_credentials" ||
		r.PostForm.Get("client_assertion_type") != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" {
		bad("invalid_request", "bad grant")
		return
	}
	if r.PostForm.Get("scope") != "okta.groups.manage okta.users.read" {
		bad("invalid_scope", "The requested scope is invalid")
		return
	}
	parts := strings.Split(r.PostForm.Get("client_assertion"), ".")
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(parts) != 3 || f.pubKey == nil {
		bad("invalid_client", "The client_assertion token is invalid.")
		return
	}
	sig, _ := base64.RawURLEncoding.DecodeString(parts[2])
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if rsa.VerifyPKCS1v15(f.pubKey, crypto.SHA256, sum[:], sig) != nil {
		bad("invalid_client", "The client_assertion signature is invalid.")
		return
	}
	var hdr map[string]string
	var cl map[string]any
	hb, _ := base64.RawURLEncoding.DecodeString(parts[0])
	cb, _ := base64.RawURLEncoding.DecodeString(parts[1])
	json.Unmarshal(hb, &hdr)
	json.Unmarshal(cb, &cl)
	if hdr["alg"] != "RS256" || hdr["kid"] != "kid-1" || cl["iss"] != "0oaCLIENT" || cl["sub"] != "0oaCLIENT" ||
		cl["aud"] != f.srv.URL+"/oauth2/v1/token" || cl["jti"] == nil {
		bad("invalid_client", "The client_assertion token has invalid claims.")
		return
	}
	if exp, _ := cl["exp"].(float64); int64(exp) <= f.now().Unix() {
		bad("invalid_client", "The client_assertion token is expired.")
		return
	}
	f.issued++
	tok := fmt.Sprintf("eyACCESS.%d", f.issued)
	f.tokens[tok] = true
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"token_type": "Bearer", "expires_in": 3600, "access_token": tok, "scope": r.PostForm.Get("scope")})
}

func (f *fakeOkta) isMember(gid, uid string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.groups[gid][uid]
}

// rename changes a user's login and email, as an admin renaming them.
func (f *fakeOkta) rename(uid, email string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	u := f.users[uid]
	u.Login, u.Email = email, email
	f.users[uid] = u
}

// deleteUser deletes a (deactivated) user: their memberships go too.
func (f *fakeOkta) deleteUser(uid string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.users, uid)
	for _, m := range f.groups {
		delete(m, uid)
	}
}

func (f *fakeOkta) addMember(gid, uid string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.groups[gid][uid] = true
}

func (f *fakeOkta) outage() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.down = true
}

func build(t *testing.T, raw map[string]any, doer connectors.Doer, clock access.Clock) (access.Connector, error) {
	return connectortest.Build(t, okta.Type, okta.Factory, "okta", raw, connectors.Env{HTTP: doer, Clock: clock, State: &connectortest.State{}})
}

func mustBuild(t *testing.T, raw map[string]any, doer connectors.Doer, clock access.Clock) access.Connector {
	t.Helper()
	c, err := build(t, raw, doer, clock)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func aliceGrant() access.Grant {
	return access.Grant{
		ID: "AR-1", System: "okta", Role: "viewer",
		Params: map[string]string{"group_id": "00g1viewer"},
		User:   access.Person{SlackID: "U0ALICE01", Email: "alice@example.com", Name: "Alice"},
	}
}

var now = time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)

func TestConformance(t *testing.T) {
	clock := connectortest.NewClock(now)
	var cur *fakeOkta
	conformance.Run(t, conformance.Harness{
		New: func(t *testing.T) access.Connector {
			cur = newFakeOkta(t, clock.Now)
			return mustBuild(t, map[string]any{"type": okta.Type, "org_url": cur.srv.URL, "token": apiToken}, connectortest.FastHTTPShortRetryAfter(-1), clock)
		},
		Grant: func(t *testing.T) access.Grant { return aliceGrant() },
		HasAccess: func(t *testing.T, g access.Grant) bool {
			return cur.isMember(g.Params["group_id"], "00u1alice")
		},
		UnknownUser: func(t *testing.T) access.Grant {
			g := aliceGrant()
			g.User = access.Person{SlackID: "U0NOBODY1", Email: "nobody@example.com", Name: "Nobody"}
			return g
		},
		FailNext:     func(t *testing.T, status int) { cur.FailNext(status) },
		TargetUserID: func(t *testing.T, g access.Grant) string { return "00u1alice" },
		ChangeEmail: func(t *testing.T, g access.Grant) string {
			cur.rename("00u1alice", "alice.married@example.com")
			return "alice.married@example.com"
		},
		PreGrant:   func(t *testing.T, g access.Grant) { cur.addMember(g.Params["group_id"], "00u1alice") },
		DeleteUser: func(t *testing.T, g access.Grant) { cur.deleteUser("00u1alice") },
	})
}

func TestIdentity(t *testing.T) {
	clock := connectortest.NewClock(now)
	person := func(name string) access.Person {
		return access.Person{SlackID: "U0" + strings.ToUpper(name), Email: name + "@example.com", Name: name}
	}
	for _, attr := range []string{"login", "email"} {
		t.Run(attr, func(t *testing.T) {
			var cur *fakeOkta
			conformance.RunIdentity(t, conformance.IdentityHarness{
				New: func(t *testing.T) access.Connector {
					cur = newFakeOkta(t, clock.Now)
					return mustBuild(t, map[string]any{"org_url": cur.srv.URL, "token": apiToken, "user_attribute": attr}, connectortest.FastHTTPShortRetryAfter(-1), clock)
				},
				Managed: person("alice"), ManagerEmail: "bob@example.com",
				Unmanaged: person("gina"), Inactive: person("erin"), Unknown: person("nobody"),
				Outage: func(t *testing.T) { cur.outage() },
			})
		})
	}
	f := newFakeOkta(t, clock.Now)
	c := mustBuild(t, map[string]any{"org_url": f.srv.URL, "token": apiToken}, connectortest.FastHTTPShortRetryAfter(-1), clock)
	ctx := t.Context()
	if m, err := c.(access.ManagerLookup).Manager(ctx, person("carol")); err != nil || m != "bob@example.com" {
		t.Fatalf("managerId as an Okta user ID: %q, %v", m, err)
	}
	if _, err := c.(access.ManagerLookup).Manager(ctx, person("dan")); err == nil || !strings.Contains(err.Error(), "managerId") {
		t.Fatalf("a display name alone: %v", err)
	}
	if ok, err := c.(access.AccountChecker).AccountActive(ctx, person("frank")); err != nil || ok {
		t.Fatalf("DEPROVISIONED: %v, %v", ok, err)
	}
}

func TestConformanceByEmail(t *testing.T) {
	clock := connectortest.NewClock(now)
	var cur *fakeOkta
	conformance.Run(t, conformance.Harness{
		New: func(t *testing.T) access.Connector {
			cur = newFakeOkta(t, clock.Now)
			return mustBuild(t, map[string]any{"org_url": cur.srv.URL, "token": apiToken, "user_attribute": "email"}, connectortest.FastHTTPShortRetryAfter(-1), clock)
		},
		Grant: func(t *testing.T) access.Grant {
			g := aliceGrant()
			// bob's login is not his email: only the email filter finds him.
			g.User = access.Person{SlackID: "U0BOB0001", Email: "bob@example.com", Name: "Bob"}
			return g
		},
		HasAccess:    func(t *testing.T, g access.Grant) bool { return cur.isMember(g.Params["group_id"], "00u2bob") },
		TargetUserID: func(t *testing.T, g access.Grant) string { return "00u2bob" },
		ChangeEmail: func(t *testing.T, g access.Grant) string {
			cur.rename("00u2bob", "robert@example.com")
			return "robert@example.com"
		},
		PreGrant:   func(t *testing.T, g access.Grant) { cur.addMember(g.Params["group_id"], "00u2bob") },
		DeleteUser: func(t *testing.T, g access.Grant) { cur.deleteUser("00u2bob") },
		FailNext:   func(t *testing.T, status int) { cur.FailNext(status) },
		UnknownUser: func(t *testing.T) access.Grant {
			g := aliceGrant()
			g.User = access.Person{SlackID: "U0NOBODY1", Email: "nobody@example.com", Name: "Nobody"}
			return g
		},
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

func TestVendorCases(t *testing.T) {
	clock := connectortest.NewClock(now)
	setup := func(t *testing.T, retryMax int) (*fakeOkta, access.Connector) {
		f := newFakeOkta(t, clock.Now)
		return f, mustBuild(t, map[string]any{"org_url": f.srv.URL + "/", "token": apiToken}, connectortest.FastHTTPShortRetryAfter(retryMax), clock)
	}
	ctx := t.Context()

	t.Run("SuccessUsesOktaEndpoints", func(t *testing.T) {
		f, c := setup(t, -1)
		r, err := c.Grant(ctx, aliceGrant())
		if err != nil {
			t.Fatal(err)
		}
		if r.UserID != "00u1alice" || r.PreExisting || r.Note != "added to Okta group 00g1viewer" {
			t.Fatalf("receipt %+v", r)
		}
		if f.Count("GET /api/v1/users/alice@example.com") != 1 || f.Count("PUT /api/v1/groups/00g1viewer/users/00u1alice") != 1 {
			t.Fatalf("requests %v", f.Calls())
		}
		g := aliceGrant()
		g.Receipt = &r
		if err := c.Revoke(ctx, g); err != nil {
			t.Fatal(err)
		}
		if f.Count("DELETE /api/v1/groups/00g1viewer/users/00u1alice") != 1 {
			t.Fatalf("requests %v", f.Calls())
		}
		// One lookup by login, then the membership check; the revoke
		// acts on the receipt and looks nobody up.
		if n := f.Count("GET /api/v1/users/alice"); n != 1 {
			t.Fatalf("%d user lookups, want 1: %v", n, f.Calls())
		}
		if n := f.Count("GET /api/v1/users/00u1alice/groups"); n != 2 {
			t.Fatalf("%d group pages read, want 2: %v", n, f.Calls())
		}
	})

	t.Run("AlreadyMember", func(t *testing.T) {
		f, c := setup(t, -1)
		f.groups["00g1viewer"]["00u1alice"] = true
		r, err := c.Grant(ctx, aliceGrant())
		if err != nil {
			t.Fatal(err)
		}
		if !r.PreExisting || r.UserID != "00u1alice" || f.Count("PUT ") != 0 {
			t.Fatalf("receipt %+v, requests %v: pre-existing membership must be reported and left alone", r, f.Calls())
		}
		if !f.isMember("00g1viewer", "00u1alice") {
			t.Fatal("not a member")
		}
	})

	t.Run("NotAMemberOnRemove", func(t *testing.T) {
		f, c := setup(t, -1)
		if err := c.Revoke(ctx, aliceGrant()); err != nil {
			t.Fatal(err)
		}
		if f.Count("DELETE ") != 1 {
			t.Fatalf("requests %v", f.Calls())
		}
	})

	t.Run("UserNotFound", func(t *testing.T) {
		_, c := setup(t, -1)
		g := aliceGrant()
		g.User = access.Person{SlackID: "U0NOBODY1", Email: "nobody@example.com"}
		_, err := c.Grant(ctx, g)
		if class, _ := classOf(t, err); class != access.Permanent {
			t.Fatalf("class %v: %v", class, err)
		}
		if !errors.Is(err, access.ErrUnknownUser) || !strings.Contains(err.Error(), "nobody@example.com") ||
			!strings.Contains(err.Error(), "U0NOBODY1") || !strings.Contains(err.Error(), "Okta") {
			t.Fatalf("error does not name the person and Okta: %v", err)
		}
		// Revoking for an unknown person is not faked as done.
		if err := c.Revoke(ctx, g); err == nil {
			t.Fatal("Revoke for an unknown person returned nil")
		}
	})

	t.Run("GroupNotFound", func(t *testing.T) {
		_, c := setup(t, -1)
		g := aliceGrant()
		g.Params["group_id"] = "00gMISSING"
		_, err := c.Grant(ctx, g)
		if class, _ := classOf(t, err); class != access.Permanent || !strings.Contains(err.Error(), "00gMISSING") {
			t.Fatalf("class %v: %v", class, err)
		}
		if err := c.Revoke(ctx, g); err != nil {
			t.Fatalf("revoke from a group that is gone: %v", err)
		}
	})

	t.Run("MissingParameter", func(t *testing.T) {
		_, c := setup(t, -1)
		g := aliceGrant()
		g.Params = nil
		_, err := c.Grant(ctx, g)
		if class, _ := classOf(t, err); class != access.Permanent || !strings.Contains(err.Error(), "group_id") {
			t.Fatalf("class %v: %v", class, err)
		}
	})

	t.Run("RateLimitedUsesReset", func(t *testing.T) {
		f, c := setup(t, -1)
		f.FailNext(http.StatusTooManyRequests)
		_, err := c.Grant(ctx, aliceGrant())
		class, ra := classOf(t, err)
		if class != access.Retryable || ra != 60*time.Second {
			t.Fatalf("class %v retry after %v, want retryable after 60s (X-Rate-Limit-Reset): %v", class, ra, err)
		}
		if !strings.Contains(err.Error(), "rate limit") {
			t.Fatalf("error lacks Okta's summary: %v", err)
		}
	})

	t.Run("ServerErrorThenSuccess", func(t *testing.T) {
		f, c := setup(t, 2)
		f.FailNext(http.StatusInternalServerError, http.StatusServiceUnavailable)
		if _, err := c.Grant(ctx, aliceGrant()); err != nil {
			t.Fatal(err)
		}
		if !f.isMember("00g1viewer", "00u1alice") {
			t.Fatal("not a member")
		}
	})

	t.Run("ExpiredAPIToken", func(t *testing.T) {
		f := newFakeOkta(t, clock.Now)
		c := mustBuild(t, map[string]any{"org_url": f.srv.URL, "token": "00aEXPIREDexpired0123456789abcdefXY"}, connectortest.FastHTTPShortRetryAfter(2), clock)
		_, err := c.Grant(ctx, aliceGrant())
		if class, _ := classOf(t, err); class != access.Permanent {
			t.Fatalf("class %v: %v", class, err)
		}
		if strings.Contains(err.Error(), "EXPIRED") || !strings.Contains(err.Error(), "credentials") {
			t.Fatalf("error leaks the token or does not say credentials: %v", err)
		}
		if n := f.Count("GET "); n != 1 {
			t.Fatalf("a 401 was retried: %d requests", n)
		}
	})
}

func testKey(t *testing.T) (*rsa.PrivateKey, string) {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKCS8PrivateKey(k)
	return k, string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
}

func TestOAuthPrivateKeyJWT(t *testing.T) {
	clock := connectortest.NewClock(now)
	key, pemKey := testKey(t)
	f := newFakeOkta(t, clock.Now)
	f.pubKey = &key.PublicKey
	raw := map[string]any{"org_url": f.srv.URL, "client_id": "0oaCLIENT", "private_key": pemKey, "key_id": "kid-1"}
	c := mustBuild(t, raw, connectortest.FastHTTPShortRetryAfter(-1), clock)
	ctx := t.Context()

	if _, err := c.Grant(ctx, aliceGrant()); err != nil {
		t.Fatal(err)
	}
	if f.issued != 1 {
		t.Fatalf("%d tokens issued, want 1", f.issued)
	}
	// The cached token is reused.
	if err := c.Revoke(ctx, aliceGrant()); err != nil {
		t.Fatal(err)
	}
	if f.issued != 1 {
		t.Fatalf("%d tokens issued, want 1 (cached)", f.issued)
	}

	// The org expired the token early: one refresh, then success.
	f.mu.Lock()
	clear(f.tokens)
	f.mu.Unlock()
	if _, err := c.Grant(ctx, aliceGrant()); err != nil {
		t.Fatalf("after the token expired: %v", err)
	}
	if f.issued != 2 || !f.isMember("00g1viewer", "00u1alice") {
		t.Fatalf("issued %d, member %v", f.issued, f.isMember("00g1viewer", "00u1alice"))
	}

	// The app's key was rotated at Okta: the token endpoint says
	// invalid_client, which is permanent and does not leak the assertion.
	other, _ := rsa.GenerateKey(rand.Reader, 2048)
	f.mu.Lock()
	f.pubKey = &other.PublicKey
	clear(f.tokens)
	f.mu.Unlock()
	err := c.Revoke(ctx, aliceGrant())
	if class, _ := classOf(t, err); class != access.Permanent || !strings.Contains(err.Error(), "invalid_client") {
		t.Fatalf("class %v: %v", class, err)
	}
	if strings.Contains(err.Error(), "eyJ") {
		t.Fatalf("error leaks the assertion: %v", err)
	}
}

func TestCheckFollowsPages(t *testing.T) {
	clock := connectortest.NewClock(now)
	f := newFakeOkta(t, clock.Now)
	c := mustBuild(t, map[string]any{"org_url": f.srv.URL, "token": apiToken}, connectortest.FastHTTPShortRetryAfter(-1), clock)
	// alice is in 00g2a, 00g3b, 00g4c; 00g4c is on the second page.
	g := aliceGrant()
	g.Params["group_id"] = "00g4c"
	ok, err := c.(access.Checker).Check(t.Context(), g)
	if err != nil || !ok {
		t.Fatalf("Check = %v, %v; want true", ok, err)
	}
	if n := f.Count("GET /api/v1/users/00u1alice/groups"); n != 2 {
		t.Fatalf("%d group pages read, want 2", n)
	}
}

func TestConfigErrors(t *testing.T) {
	_, pemKey := testKey(t)
	clock := connectortest.NewClock(now)
	cases := []struct {
		name string
		raw  map[string]any
		want []string
	}{
		{"empty", map[string]any{}, []string{"connectors.okta.org_url: required", "connectors.okta.token: required"}},
		{"http", map[string]any{"org_url": "http://example.okta.com", "token": "x"}, []string{"connectors.okta.org_url: must be an https:// URL"}},
		{"both", map[string]any{"org_url": "https://example.okta.com", "token": "x", "client_id": "c", "private_key": pemKey}, []string{"connectors.okta.token: set either"}},
		{"client without key", map[string]any{"org_url": "https://example.okta.com", "client_id": "c"}, []string{"connectors.okta.private_key: required"}},
		{"bad key", map[string]any{"org_url": "https://example.okta.com", "client_id": "c", "private_key": "SECRETVALUE"}, []string{"connectors.okta.private_key: not a PEM"}},
		{"attr", map[string]any{"org_url": "https://example.okta.com", "token": "x", "user_attribute": "upn"}, []string{"connectors.okta.user_attribute: must be"}},
		{"typo", map[string]any{"org_url": "https://example.okta.com", "tokn": "x"}, []string{"connectors.okta.tokn: unknown key"}},
		{"token file missing", map[string]any{"org_url": "https://example.okta.com", "token_file": "/nonexistent/okta-token"}, []string{"connectors.okta.token_file"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := build(t, tc.raw, connectortest.FastHTTPShortRetryAfter(-1), clock)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "SECRETVALUE") || strings.Contains(err.Error(), "BEGIN") {
				t.Errorf("error leaks a secret: %v", err)
			}
		})
	}
}

func TestTokenFromFile(t *testing.T) {
	clock := connectortest.NewClock(now)
	f := newFakeOkta(t, clock.Now)
	reg := connectors.NewRegistry()
	reg.Add(okta.Type, okta.Factory)
	c, err := reg.Build("okta", okta.Type, map[string]any{"org_url": f.srv.URL, "token_file": "/run/secrets/okta"}, connectors.Env{
		HTTP: connectortest.FastHTTPShortRetryAfter(-1), Clock: clock, State: &connectortest.State{},
		ReadFile: func(name string) ([]byte, error) {
			if name != "/run/secrets/okta" {
				return nil, errors.New("no such file")
			}
			return []byte(apiToken + "\n"), nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Grant(t.Context(), aliceGrant()); err != nil {
		t.Fatal(err)
	}
}
