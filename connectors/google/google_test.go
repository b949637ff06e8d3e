package google_test

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
	"github.com/accessbot/accessbot/connectors/google"
)

const (
	saEmail = "accessbot@project.iam.gserviceaccount.com"
	admin   = "admin@example.com"
	group   = "eng@example.com"
)

var (
	keyOnce sync.Once
	saKey   *rsa.PrivateKey
)

func key(t *testing.T) *rsa.PrivateKey {
	keyOnce.Do(func() {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		saKey = k
	})
	return saKey
}

// fakeGoogle is Google's OAuth token endpoint (JWT bearer grant for a
// delegated service account), the Admin SDK Directory members and users
// resources and the Cloud Identity groups/memberships resources, written
// from their reference pages:
//   - tokens carry the scopes they were issued for, and a token request
//     naming a scope the admin did not delegate fails whole with 400
//     unauthorized_client
//     (https://developers.google.com/identity/protocols/oauth2/service-account#error-codes);
//     an API called with a token lacking its scope answers 403
//     ACCESS_TOKEN_SCOPE_INSUFFICIENT;
//   - Google's JSON error envelope {"error":{"code","message","errors":
//     [{"reason"}],"status"}}; members.insert answers 409 "Member already
//     exists." and the Member with its id; memberKey is an email, an
//     alias or the member's id; a renamed user keeps the old address as
//     an alias (https://support.google.com/a/answer/182084); deleting a
//     user removes their memberships;
//   - users.get with suspended, archived and relations (type manager);
//   - Cloud Identity: 403 PERMISSION_DENIED when the API is disabled in
//     the project or the edition lacks membership expiry
//     (https://cloud.google.com/identity/docs/how-to/manage-expirations),
//     400 FAILED_PRECONDITION for a group that refuses expiry;
//   - 403 rateLimitExceeded and 429 with Retry-After, 401 for an expired
//     access token.
type fakeGoogle struct {
	connectortest.Faults // requests seen, failures to answer next

	srv *httptest.Server
	pub *rsa.PublicKey

	mu        sync.Mutex
	users     map[string]*gUser          // by id
	members   map[string]map[string]bool // group email → member ids
	expiry    map[string]map[string]time.Time
	noExpiry  map[string]bool   // groups that refuse expiry
	delegated map[string]bool   // scopes delegated to the service account
	tokens    map[string]string // token → its scope
	issued    int
	// ciDisabled: the Cloud Identity API answers 403 (disabled in the
	// project, or an edition without expiry).
	ciDisabled bool
	// ciFailLookup: the next memberships.lookup answers 404.
	ciFailLookup bool
	// ciDown: Cloud Identity answers 503.
	ciDown bool
	down   bool
}

type gUser struct {
	id, email string
	aliases   []string
	suspended bool
	manager   string
}

func newFakeGoogle(t *testing.T) *fakeGoogle {
	f := &fakeGoogle{
		pub: &key(t).PublicKey,
		users: map[string]*gUser{
			aliceID: {id: aliceID, email: "alice@example.com", manager: "carol@example.com"},
			bobID:   {id: bobID, email: "bob@example.com", suspended: true},
			carolID: {id: carolID, email: "carol@example.com"},
		},
		members:   map[string]map[string]bool{group: {}, "partners@example.com": {}},
		expiry:    map[string]map[string]time.Time{group: {}, "partners@example.com": {}},
		noExpiry:  map[string]bool{"partners@example.com": true},
		delegated: map[string]bool{google.MemberScope: true, google.ExpiryScope: true, google.UserScope: true},
		tokens:    map[string]string{},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /token", f.token)
	mux.HandleFunc("POST /admin/directory/v1/groups/{g}/members", f.api(google.MemberScope, f.insert))
	mux.HandleFunc("DELETE /admin/directory/v1/groups/{g}/members/{m}", f.api(google.MemberScope, f.delete))
	mux.HandleFunc("GET /admin/directory/v1/groups/{g}/members/{m}", f.api(google.MemberScope, f.get))
	mux.HandleFunc("GET /admin/directory/v1/users/{u}", f.api(google.UserScope, f.getUser))
	mux.HandleFunc("GET /v1/groups:lookup", f.api(google.ExpiryScope, f.groupLookup))
	mux.HandleFunc("GET /v1/groups/{g}/memberships:lookup", f.api(google.ExpiryScope, f.membershipLookup))
	mux.HandleFunc("POST /v1/groups/{g}/memberships/{m}", f.api(google.ExpiryScope, f.modifyRoles))
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

const (
	aliceID = "115994574856123456789"
	bobID   = "103000000000000000002"
	carolID = "104000000000000000003"
)

func gErr(w http.ResponseWriter, code int, reason, status, msg string) {
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{
		"code": code, "message": msg, "status": status,
		"errors": []any{map[string]string{"domain": "global", "reason": reason, "message": msg}},
	}})
}

// token checks the RS256 JWT assertion (iss, sub, scope, aud, exp) and
// issues an access token for its scopes, if all are delegated.
func (f *fakeGoogle) token(w http.ResponseWriter, r *http.Request) {
	r.ParseForm()
	f.mu.Lock()
	defer f.mu.Unlock()
	bad := func(code, desc string) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": desc})
	}
	if r.PostForm.Get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer" {
		bad("unsupported_grant_type", "Invalid grant_type")
		return
	}
	parts := strings.Split(r.PostForm.Get("assertion"), ".")
	if len(parts) != 3 {
		bad("invalid_grant", "Invalid JWT")
		return
	}
	sig, _ := base64.RawURLEncoding.DecodeString(parts[2])
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if rsa.VerifyPKCS1v15(f.pub, crypto.SHA256, sum[:], sig) != nil {
		bad("invalid_grant", "Invalid JWT Signature.")
		return
	}
	var cl map[string]any
	b, _ := base64.RawURLEncoding.DecodeString(parts[1])
	json.Unmarshal(b, &cl)
	scope := fmt.Sprint(cl["scope"])
	ok := cl["iss"] == saEmail && cl["sub"] == admin && cl["aud"] == f.srv.URL+"/token" && scope != ""
	for _, sc := range strings.Fields(scope) {
		ok = ok && f.delegated[sc]
	}
	if !ok {
		bad("unauthorized_client", "Client is unauthorized to retrieve access tokens using this method, or client not authorized for any of the scopes requested.")
		return
	}
	f.issued++
	tok := "ya29.test-" + strconv.Itoa(f.issued)
	f.tokens[tok] = scope
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"access_token": tok, "expires_in": 3599, "token_type": "Bearer"})
}

func (f *fakeGoogle) api(scope string, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.Record(r)
		granted, ok := f.tokens[strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")]
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="https://accounts.google.com/", error="invalid_token"`)
			gErr(w, http.StatusUnauthorized, "authError", "UNAUTHENTICATED", "Request had invalid authentication credentials. Expected OAuth 2 access token.")
			return
		}
		if !strings.Contains(" "+granted+" ", " "+scope+" ") {
			gErr(w, http.StatusForbidden, "insufficientPermissions", "PERMISSION_DENIED", "Request had insufficient authentication scopes.")
			return
		}
		code, ok := f.Take()
		if f.down {
			code, ok = http.StatusServiceUnavailable, true
		}
		if ok {
			switch code {
			case http.StatusTooManyRequests:
				w.Header().Set("Retry-After", "11")
				gErr(w, code, "rateLimitExceeded", "RESOURCE_EXHAUSTED", "Quota exceeded for quota metric 'Queries'.")
			case 4030: // the Directory API's rate limit answer
				gErr(w, http.StatusForbidden, "userRateLimitExceeded", "PERMISSION_DENIED", "User Rate Limit Exceeded")
			case http.StatusForbidden:
				gErr(w, code, "forbidden", "PERMISSION_DENIED", "Not Authorized to access this resource/api")
			default:
				gErr(w, code, "backendError", "UNAVAILABLE", "Backend Error")
			}
			return
		}
		if scope == google.ExpiryScope && f.ciDown {
			gErr(w, http.StatusServiceUnavailable, "backendError", "UNAVAILABLE", "The service is currently unavailable.")
			return
		}
		if scope == google.ExpiryScope && f.ciDisabled {
			gErr(w, http.StatusForbidden, "accessNotConfigured", "PERMISSION_DENIED", "Cloud Identity API has not been used in project 1234567890 before or it is disabled.")
			return
		}
		h(w, r)
	}
}

// resolve finds a user by id, primary email or alias.
func (f *fakeGoogle) resolve(key string) *gUser {
	if u, ok := f.users[key]; ok {
		return u
	}
	for _, u := range f.users {
		if strings.EqualFold(u.email, key) || slices.Contains(u.aliases, key) {
			return u
		}
	}
	return nil
}

func memberJSON(u *gUser) map[string]any {
	return map[string]any{"kind": "admin#directory#member", "id": u.id, "email": u.email, "role": "MEMBER", "type": "USER", "status": "ACTIVE"}
}

func (f *fakeGoogle) insert(w http.ResponseWriter, r *http.Request) {
	var m struct{ Email, Role string }
	json.NewDecoder(r.Body).Decode(&m)
	g, ok := f.members[r.PathValue("g")]
	u := f.resolve(m.Email)
	if !ok || u == nil {
		gErr(w, http.StatusNotFound, "notFound", "NOT_FOUND", "Resource Not Found: groupKey")
		return
	}
	if g[u.id] {
		gErr(w, http.StatusConflict, "duplicate", "ALREADY_EXISTS", "Member already exists.")
		return
	}
	g[u.id] = true
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(memberJSON(u))
}

func (f *fakeGoogle) delete(w http.ResponseWriter, r *http.Request) {
	g := f.members[r.PathValue("g")]
	u := f.resolve(r.PathValue("m"))
	if u == nil || !g[u.id] {
		gErr(w, http.StatusNotFound, "notFound", "NOT_FOUND", "Resource Not Found: memberKey")
		return
	}
	delete(g, u.id)
	delete(f.expiry[r.PathValue("g")], u.id)
	w.WriteHeader(http.StatusNoContent)
}

func (f *fakeGoogle) get(w http.ResponseWriter, r *http.Request) {
	u := f.resolve(r.PathValue("m"))
	if u == nil || !f.members[r.PathValue("g")][u.id] {
		gErr(w, http.StatusNotFound, "notFound", "NOT_FOUND", "Resource Not Found: memberKey")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(memberJSON(u))
}

func (f *fakeGoogle) getUser(w http.ResponseWriter, r *http.Request) {
	u := f.resolve(r.PathValue("u"))
	if u == nil {
		gErr(w, http.StatusNotFound, "notFound", "NOT_FOUND", "Resource Not Found: userKey")
		return
	}
	out := map[string]any{"kind": "admin#directory#user", "id": u.id, "primaryEmail": u.email, "suspended": u.suspended, "archived": false}
	if u.manager != "" {
		out["relations"] = []any{map[string]string{"value": u.manager, "type": "manager"}}
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(out)
}

// Cloud Identity names: groups/<group email> and
// groups/<group email>/memberships/<member id>, opaque to clients.
func (f *fakeGoogle) groupLookup(w http.ResponseWriter, r *http.Request) {
	g := r.URL.Query().Get("groupKey.id")
	if _, ok := f.members[g]; !ok {
		gErr(w, http.StatusNotFound, "notFound", "NOT_FOUND", "Requested entity was not found.")
		return
	}
	json.NewEncoder(w).Encode(map[string]string{"name": "groups/" + g})
}

func (f *fakeGoogle) membershipLookup(w http.ResponseWriter, r *http.Request) {
	g, u := r.PathValue("g"), f.resolve(r.URL.Query().Get("memberKey.id"))
	if f.ciFailLookup || u == nil || !f.members[g][u.id] {
		f.ciFailLookup = false
		gErr(w, http.StatusNotFound, "notFound", "NOT_FOUND", "Requested entity was not found.")
		return
	}
	json.NewEncoder(w).Encode(map[string]string{"name": "groups/" + g + "/memberships/" + u.id})
}

func (f *fakeGoogle) modifyRoles(w http.ResponseWriter, r *http.Request) {
	g := r.PathValue("g")
	m, ok := strings.CutSuffix(r.PathValue("m"), ":modifyMembershipRoles")
	if !ok || !f.members[g][m] {
		gErr(w, http.StatusNotFound, "notFound", "NOT_FOUND", "Requested entity was not found.")
		return
	}
	if f.noExpiry[g] {
		gErr(w, http.StatusBadRequest, "failedPrecondition", "FAILED_PRECONDITION", "Membership expiry is not supported for this group.")
		return
	}
	var req struct {
		UpdateRolesParams []struct {
			FieldMask      string `json:"fieldMask"`
			MembershipRole struct {
				Name         string `json:"name"`
				ExpiryDetail struct {
					ExpireTime string `json:"expireTime"`
				} `json:"expiryDetail"`
			} `json:"membershipRole"`
		} `json:"updateRolesParams"`
	}
	json.NewDecoder(r.Body).Decode(&req)
	if len(req.UpdateRolesParams) != 1 || req.UpdateRolesParams[0].FieldMask != "expiryDetail.expireTime" ||
		req.UpdateRolesParams[0].MembershipRole.Name != "MEMBER" {
		gErr(w, http.StatusBadRequest, "invalid", "INVALID_ARGUMENT", "Invalid update.")
		return
	}
	at, err := time.Parse(time.RFC3339, req.UpdateRolesParams[0].MembershipRole.ExpiryDetail.ExpireTime)
	if err != nil {
		gErr(w, http.StatusBadRequest, "invalid", "INVALID_ARGUMENT", "Invalid expire time.")
		return
	}
	f.expiry[g][m] = at
	json.NewEncoder(w).Encode(map[string]any{"membership": map[string]any{"name": "groups/" + g + "/memberships/" + m}})
}

func (f *fakeGoogle) edit(fn func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn()
}

func (f *fakeGoogle) isMember(g, id string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.members[g][id]
}

// rename gives a user a new primary address; the old one stays an alias.
func (f *fakeGoogle) rename(id, email string) {
	f.edit(func() {
		u := f.users[id]
		u.aliases = append(u.aliases, u.email)
		u.email = email
	})
}

func (f *fakeGoogle) deleteUser(id string) {
	f.edit(func() {
		delete(f.users, id)
		for _, m := range f.members {
			delete(m, id)
		}
	})
}

func credentialsJSON(t *testing.T, k *rsa.PrivateKey) string {
	der, _ := x509.MarshalPKCS8PrivateKey(k)
	b, _ := json.Marshal(map[string]string{
		"type": "service_account", "project_id": "project", "private_key_id": "kid1",
		"private_key":  string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		"client_email": saEmail, "client_id": "1234567890",
		"token_uri": "https://oauth2.googleapis.com/token",
	})
	return string(b)
}

var clock = connectortest.NewClock(time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC))

func config(t *testing.T, f *fakeGoogle) map[string]any {
	return map[string]any{
		"type": google.Type, "credentials": credentialsJSON(t, key(t)), "admin_email": admin,
		"token_url": f.srv.URL + "/token", "directory_endpoint": f.srv.URL, "cloudidentity_endpoint": f.srv.URL,
	}
}

func build(t *testing.T, raw map[string]any, doer connectors.Doer) (access.Connector, error) {
	return connectortest.Build(t, google.Type, google.Factory, "gws", raw, connectors.Env{HTTP: doer, Clock: clock, State: &connectortest.State{}})
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
		ID: "AR-3", System: "gws", Role: "eng",
		Params:    map[string]string{"group": group},
		User:      access.Person{SlackID: "U0ALICE01", Email: "alice@example.com", Name: "Alice"},
		GrantedAt: clock.Now(), ExpiresAt: clock.Now().Add(2 * time.Hour),
	}
}

func nobody() access.Grant {
	g := aliceGrant()
	g.User = access.Person{SlackID: "U0NOBODY1", Email: "nobody@example.com", Name: "Nobody"}
	return g
}

func TestConformance(t *testing.T) {
	var cur *fakeGoogle
	conformance.Run(t, conformance.Harness{
		New: func(t *testing.T) access.Connector {
			cur = newFakeGoogle(t)
			return mustBuild(t, config(t, cur), connectortest.FastHTTPShortRetryAfter(-1))
		},
		Grant:        func(t *testing.T) access.Grant { return aliceGrant() },
		HasAccess:    func(t *testing.T, g access.Grant) bool { return cur.isMember(g.Params["group"], aliceID) },
		UnknownUser:  func(t *testing.T) access.Grant { return nobody() },
		FailNext:     func(t *testing.T, status int) { cur.FailNext(status) },
		TargetUserID: func(t *testing.T, g access.Grant) string { return aliceID },
		ChangeEmail: func(t *testing.T, g access.Grant) string {
			cur.rename(aliceID, "alice.married@example.com")
			return "alice.married@example.com"
		},
		PreGrant:   func(t *testing.T, g access.Grant) { cur.edit(func() { cur.members[group][aliceID] = true }) },
		DeleteUser: func(t *testing.T, g access.Grant) { cur.deleteUser(aliceID) },
		// The membership is inserted, then Cloud Identity does not find it
		// (a refusal that is neither "no expiry here" nor transient).
		FailSecondCall: func(t *testing.T) { cur.edit(func() { cur.ciFailLookup = true }) },
	})
}

func TestIdentity(t *testing.T) {
	person := func(name string) access.Person {
		return access.Person{SlackID: "U0" + strings.ToUpper(name), Email: name + "@example.com", Name: name}
	}
	var cur *fakeGoogle
	conformance.RunIdentity(t, conformance.IdentityHarness{
		New: func(t *testing.T) access.Connector {
			cur = newFakeGoogle(t)
			return mustBuild(t, config(t, cur), connectortest.FastHTTPShortRetryAfter(-1))
		},
		Managed: person("alice"), ManagerEmail: "carol@example.com",
		Unmanaged: person("carol"), Inactive: person("bob"), Unknown: person("nobody"),
		Outage: func(t *testing.T) { cur.edit(func() { cur.down = true }) },
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

func TestGoogleCases(t *testing.T) {
	ctx := t.Context()
	setup := func(t *testing.T, retryMax int) (*fakeGoogle, access.Connector) {
		f := newFakeGoogle(t)
		return f, mustBuild(t, config(t, f), connectortest.FastHTTPShortRetryAfter(retryMax))
	}

	t.Run("SuccessSetsNativeExpiry", func(t *testing.T) {
		f, c := setup(t, -1)
		g := aliceGrant()
		r, err := c.Grant(ctx, g)
		if err != nil {
			t.Fatal(err)
		}
		if !f.isMember(group, aliceID) {
			t.Fatal("not a member")
		}
		if got := f.expiry[group][aliceID]; !got.Equal(g.ExpiresAt) {
			t.Fatalf("native expiry %v, want %v", got, g.ExpiresAt)
		}
		if r.UserID != aliceID || !r.Backstop.Equal(g.ExpiresAt) || r.PreExisting || len(r.Data) != 0 {
			t.Fatalf("receipt %+v", r)
		}
		g.Receipt = &r
		if err := c.Revoke(ctx, g); err != nil {
			t.Fatal(err)
		}
		// Members are addressed by ID where the API allows it.
		if f.isMember(group, aliceID) || f.Count("DELETE /admin/directory/v1/groups/"+group+"/members/"+aliceID) != 1 {
			t.Fatalf("still a member, or not deleted by ID: %v", f.Calls())
		}
		if f.issued != 2 { // one per scope: members, Cloud Identity
			t.Fatalf("%d tokens issued, want 2", f.issued)
		}
	})

	t.Run("GroupRefusesExpiry", func(t *testing.T) {
		f, c := setup(t, -1)
		g := aliceGrant()
		g.Params["group"] = "partners@example.com"
		r, err := c.Grant(ctx, g)
		if err != nil {
			t.Fatalf("a group without expiry support must still be granted: %v", err)
		}
		if !f.isMember("partners@example.com", aliceID) || !r.Backstop.IsZero() || !strings.Contains(r.Note, "no expiry backstop") {
			t.Fatalf("member %v, receipt %+v", f.isMember("partners@example.com", aliceID), r)
		}
	})

	t.Run("CloudIdentityDisabled403", func(t *testing.T) {
		// The API is disabled in the project, or the edition has no
		// membership expiry: the grant stands, without backstop.
		f, c := setup(t, -1)
		f.ciDisabled = true
		r, err := c.Grant(ctx, aliceGrant())
		if err != nil {
			t.Fatalf("a Cloud Identity 403 after the insert failed the grant: %v", err)
		}
		if !f.isMember(group, aliceID) || !r.Backstop.IsZero() || !strings.Contains(r.Note, "API disabled") {
			t.Fatalf("receipt %+v", r)
		}
	})

	t.Run("CloudIdentityScopeNotDelegated", func(t *testing.T) {
		f, c := setup(t, -1)
		delete(f.delegated, google.ExpiryScope)
		r, err := c.Grant(ctx, aliceGrant())
		if err != nil {
			t.Fatalf("an undelegated Cloud Identity scope failed the grant: %v", err)
		}
		if !f.isMember(group, aliceID) || !r.Backstop.IsZero() || !strings.Contains(r.Note, "not delegated") {
			t.Fatalf("receipt %+v", r)
		}
	})

	t.Run("CloudIdentityOutageAfterInsert", func(t *testing.T) {
		f, c := setup(t, -1)
		g := aliceGrant()
		f.edit(func() { f.ciDown = true })
		r, err := c.Grant(ctx, g)
		if class, _ := classOf(t, err); class != access.Retryable {
			t.Fatalf("class %v: %v", class, err)
		}
		if r.UserID != aliceID || !r.Changed() || !f.isMember(group, aliceID) {
			t.Fatalf("receipt %+v: the membership is in place and must be named for a rollback", r)
		}
		f.edit(func() { f.ciDown = false })
		r, err = c.Grant(ctx, g) // the retry completes it, as its own grant
		if err != nil || r.PreExisting || !r.Backstop.Equal(g.ExpiresAt) {
			t.Fatalf("retry = %+v, %v", r, err)
		}
	})

	t.Run("NativeExpiryOff", func(t *testing.T) {
		// Without native_expiry the Cloud Identity scope is never asked
		// for, so it need not be delegated.
		f := newFakeGoogle(t)
		delete(f.delegated, google.ExpiryScope)
		raw := config(t, f)
		raw["native_expiry"] = false
		c := mustBuild(t, raw, connectortest.FastHTTPShortRetryAfter(-1))
		r, err := c.Grant(ctx, aliceGrant())
		if err != nil {
			t.Fatal(err)
		}
		if f.Count("POST /v1/") != 0 || f.Count("GET /v1/") != 0 || !r.Backstop.IsZero() {
			t.Fatalf("Cloud Identity called: %v", f.Calls())
		}
	})

	t.Run("AlreadyMember", func(t *testing.T) {
		f, c := setup(t, -1)
		f.members[group][aliceID] = true
		r, err := c.Grant(ctx, aliceGrant())
		if err != nil || !r.PreExisting || r.UserID != aliceID || f.Count("POST ") != 0 {
			t.Fatalf("receipt %+v, %v, requests %v", r, err, f.Calls())
		}
	})

	t.Run("LegacyRevoke", func(t *testing.T) {
		_, c := setup(t, -1)
		// Not a member, and the user exists: done.
		if err := c.Revoke(ctx, aliceGrant()); err != nil {
			t.Fatal(err)
		}
		// Nobody has the address: never "removed".
		err := c.Revoke(ctx, nobody())
		if class, _ := classOf(t, err); class != access.Permanent || !errors.Is(err, access.ErrUnknownUser) {
			t.Fatalf("class %v: %v", class, err)
		}
	})

	t.Run("UserNotFound", func(t *testing.T) {
		_, c := setup(t, -1)
		_, err := c.Grant(ctx, nobody())
		if class, _ := classOf(t, err); class != access.Permanent {
			t.Fatalf("class %v: %v", class, err)
		}
		if !errors.Is(err, google.ErrUnknownMember) || !errors.Is(err, access.ErrUnknownUser) || !strings.Contains(err.Error(), "nobody@example.com") ||
			!strings.Contains(err.Error(), "Google Workspace") {
			t.Fatalf("error does not name the person and the system: %v", err)
		}
	})

	t.Run("MissingParameter", func(t *testing.T) {
		_, c := setup(t, -1)
		g := aliceGrant()
		g.Params = map[string]string{"group_id": group}
		_, err := c.Grant(ctx, g)
		if class, _ := classOf(t, err); class != access.Permanent || !strings.Contains(err.Error(), "group") {
			t.Fatalf("class %v: %v", class, err)
		}
	})

	t.Run("RateLimited429", func(t *testing.T) {
		f, c := setup(t, -1)
		f.FailNext(http.StatusTooManyRequests)
		_, err := c.Grant(ctx, aliceGrant())
		if class, ra := classOf(t, err); class != access.Retryable || ra != 11*time.Second {
			t.Fatalf("class %v after %v: %v", class, ra, err)
		}
	})

	t.Run("RateLimited403", func(t *testing.T) {
		f, c := setup(t, -1)
		f.FailNext(4030)
		_, err := c.Grant(ctx, aliceGrant())
		if class, _ := classOf(t, err); class != access.Retryable {
			t.Fatalf("class %v: %v", class, err)
		}
	})

	t.Run("ServerErrorThenSuccess", func(t *testing.T) {
		f, c := setup(t, 2)
		f.FailNext(http.StatusInternalServerError, http.StatusBadGateway)
		if _, err := c.Grant(ctx, aliceGrant()); err != nil {
			t.Fatal(err)
		}
		if !f.isMember(group, aliceID) {
			t.Fatal("not a member")
		}
	})

	t.Run("ExpiredAccessTokenRefreshedOnce", func(t *testing.T) {
		f, c := setup(t, -1)
		if _, err := c.Grant(ctx, aliceGrant()); err != nil {
			t.Fatal(err)
		}
		f.mu.Lock()
		clear(f.tokens)
		f.mu.Unlock()
		if err := c.Revoke(ctx, aliceGrant()); err != nil {
			t.Fatal(err)
		}
		if f.issued != 3 { // members and Cloud Identity, then members again
			t.Fatalf("%d tokens issued, want 3", f.issued)
		}
	})

	t.Run("RevokedServiceAccountKey", func(t *testing.T) {
		f, c := setup(t, 2)
		other, _ := rsa.GenerateKey(rand.Reader, 2048)
		f.pub = &other.PublicKey
		_, err := c.Grant(ctx, aliceGrant())
		if class, _ := classOf(t, err); class != access.Permanent || !strings.Contains(err.Error(), "invalid_grant") {
			t.Fatalf("class %v: %v", class, err)
		}
		if strings.Contains(err.Error(), "PRIVATE KEY") || strings.Contains(err.Error(), "eyJ") {
			t.Fatalf("error leaks a secret: %v", err)
		}
	})
}

func TestConfigErrors(t *testing.T) {
	cases := []struct {
		name string
		raw  map[string]any
		want []string
	}{
		{"empty", map[string]any{}, []string{"connectors.gws.credentials: required", "connectors.gws.admin_email: required"}},
		{"bad json", map[string]any{"credentials": "SECRETSTUFF", "admin_email": admin}, []string{"connectors.gws.credentials: not a service account JSON key"}},
		{"endpoint", map[string]any{"credentials_file": "/x", "admin_email": admin, "token_url": "http://example.com/token"}, []string{"connectors.gws.token_url: must be an https:// URL"}},
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
			if strings.Contains(err.Error(), "SECRETSTUFF") {
				t.Errorf("error leaks the value: %v", err)
			}
		})
	}
}
