package looker_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"regexp"
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
	"github.com/accessbot/accessbot/connectors/looker"
)

const (
	testClientID = "lkClientID"
	testSecret   = "LKSECRETabcdefghijklmnopqrstuvwxyz0123"
)

// fakeLooker is an httptest Looker API 4.0 written from the API reference
// (ApiAuth/login, User/search_users, User/user, User/user_roles,
// User/set_user_roles): form login answering a bearer token with
// expires_in, or 404 "Not found" for bad credentials; 401 "Requires
// authentication." for a missing, expired or revoked token; search with %
// and _ as wildcards; GET users/{id} (404 once deleted); roles given
// directly and through groups, the latter left out only with
// direct_association_only=true; PUT replacing the direct roles and
// answering the user's roles, group roles included ("Roles of user"), 422
// "Validation Failed" for an unknown role; string IDs.
type fakeLooker struct {
	connectortest.Faults // requests seen, failures to answer next

	srv    *httptest.Server
	clock  *connectortest.Clock
	mu     sync.Mutex
	secret string
	tokens map[string]time.Time // token → expiry
	nextT  int
	users  map[string]*fakeUser
	roles  map[string]string // id → name
	hook   func(w http.ResponseWriter, r *http.Request) bool
}

type fakeUser struct {
	ID, Email  string
	Direct     []string
	ViaGroups  []string
	IsDisabled bool
}

func newFake(t *testing.T, clock *connectortest.Clock) *fakeLooker {
	f := &fakeLooker{
		clock: clock, secret: testSecret, tokens: map[string]time.Time{},
		users: map[string]*fakeUser{
			"42": {ID: "42", Email: "alice@example.com", Direct: []string{"2"}, ViaGroups: []string{"7"}},
			"43": {ID: "43", Email: "alice_b@example.com", Direct: []string{"2"}},
			"44": {ID: "44", Email: "off@example.com", IsDisabled: true},
		},
		roles: map[string]string{"1": "Admin", "2": "Viewer", "5": "Developer", "6": "Analyst", "7": "Group role"},
	}
	for i := 100; i < 120; i++ {
		f.roles[strconv.Itoa(i)] = "Role " + strconv.Itoa(i)
	}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func lerr(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"message": msg, "documentation_url": "https://cloud.google.com/looker/docs/"})
}

func (f *fakeLooker) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	hook := f.hook
	f.mu.Unlock()
	if hook != nil && hook(w, r) {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.Record(r)
	if status, ok := f.Take(); ok {
		if status == http.StatusTooManyRequests {
			w.Header().Set("Retry-After", "0")
		}
		lerr(w, status, fmt.Sprintf("injected %d", status))
		return
	}
	path, ok := strings.CutPrefix(r.URL.Path, "/api/4.0/")
	if !ok {
		lerr(w, http.StatusNotFound, "Not found")
		return
	}
	if r.Method == http.MethodPost && path == "login" {
		if r.Header.Get("Content-Type") != "application/x-www-form-urlencoded" || r.ParseForm() != nil ||
			r.PostForm.Get("client_id") != testClientID || r.PostForm.Get("client_secret") != f.secret {
			lerr(w, http.StatusNotFound, "Not found")
			return
		}
		f.nextT++
		tok := fmt.Sprintf("tok%d", f.nextT)
		f.tokens[tok] = f.clock.Now().Add(time.Hour)
		json.NewEncoder(w).Encode(map[string]any{"access_token": tok, "token_type": "Bearer", "expires_in": 3600})
		return
	}
	auth := r.Header.Get("Authorization")
	tok, ok := strings.CutPrefix(auth, "Bearer ")
	if !ok {
		tok, _ = strings.CutPrefix(auth, "token ")
	}
	if exp, ok := f.tokens[tok]; !ok || !f.clock.Now().Before(exp) {
		lerr(w, http.StatusUnauthorized, "Requires authentication.")
		return
	}
	parts := strings.Split(path, "/")
	w.Header().Set("Content-Type", "application/json")
	switch {
	case r.Method == http.MethodGet && path == "users/search":
		pat := "(?i)^" + strings.NewReplacer("%", ".*", "_", ".").Replace(regexp.QuoteMeta(r.URL.Query().Get("email"))) + "$"
		re := regexp.MustCompile(pat)
		out := []map[string]any{}
		for _, id := range slices.Sorted(maps.Keys(f.users)) {
			if u := f.users[id]; re.MatchString(u.Email) {
				out = append(out, map[string]any{"id": u.ID, "email": u.Email, "is_disabled": u.IsDisabled})
			}
		}
		json.NewEncoder(w).Encode(out)
	case r.Method == http.MethodGet && len(parts) == 2 && parts[0] == "users":
		u := f.users[parts[1]]
		if u == nil {
			lerr(w, http.StatusNotFound, "Not found")
			return
		}
		json.NewEncoder(w).Encode(map[string]any{"id": u.ID, "email": u.Email, "is_disabled": u.IsDisabled})
	case len(parts) == 3 && parts[0] == "users" && parts[2] == "roles":
		u := f.users[parts[1]]
		if u == nil {
			lerr(w, http.StatusNotFound, "Not found")
			return
		}
		if r.Method == http.MethodPut {
			var ids []string
			if err := json.NewDecoder(r.Body).Decode(&ids); err != nil {
				lerr(w, http.StatusBadRequest, "Bad Request")
				return
			}
			for _, id := range ids {
				if _, ok := f.roles[id]; !ok {
					w.WriteHeader(http.StatusUnprocessableEntity)
					fmt.Fprintf(w, `{"message":"Validation Failed","errors":[{"field":"role_ids","code":"invalid","message":"Role %s does not exist"}],"documentation_url":"https://cloud.google.com/looker/docs/"}`, id)
					return
				}
			}
			u.Direct = slices.Compact(slices.Sorted(slices.Values(ids)))
			json.NewEncoder(w).Encode(f.roleJSON(append(slices.Clone(u.Direct), u.ViaGroups...)))
			return
		}
		ids := slices.Clone(u.Direct)
		if r.URL.Query().Get("direct_association_only") != "true" {
			ids = append(ids, u.ViaGroups...)
		}
		json.NewEncoder(w).Encode(f.roleJSON(ids))
	default:
		lerr(w, http.StatusNotFound, "Not found")
	}
}

func (f *fakeLooker) roleJSON(ids []string) []map[string]any {
	out := []map[string]any{}
	for _, id := range ids {
		out = append(out, map[string]any{"id": id, "name": f.roles[id]})
	}
	return out
}

func (f *fakeLooker) direct(userID string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Sorted(slices.Values(f.users[userID].Direct))
}

func (f *fakeLooker) rename(id, email string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.users[id].Email = email
}

func (f *fakeLooker) deleteUser(id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.users, id)
}

func (f *fakeLooker) setHook(h func(w http.ResponseWriter, r *http.Request) bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.hook = h
}

func build(t *testing.T, f *fakeLooker, retryMax int) access.Connector {
	t.Helper()
	reg := connectors.NewRegistry()
	reg.Add(looker.Type, looker.Factory)
	c, err := reg.Build("bi", looker.Type, map[string]any{
		"type": looker.Type, "url": f.srv.URL, "client_id": testClientID, "client_secret": testSecret,
	}, connectors.Env{HTTP: connectortest.FastHTTP(retryMax), Clock: f.clock, State: &connectortest.State{}})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func newClock() *connectortest.Clock {
	return connectortest.NewClock(time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC))
}

func roleGrant(id, role string) access.Grant {
	return access.Grant{
		ID: id, System: "looker", Role: "developer", Params: map[string]string{"role_id": role},
		User: access.Person{SlackID: "U0ALICE01", Email: "alice@example.com", Name: "Alice"},
	}
}

func mustOK(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		class, _ := access.Classify(err)
		t.Fatalf("%v (%v)", err, class)
	}
}

func TestConformance(t *testing.T) {
	var cur *fakeLooker
	conformance.Run(t, conformance.Harness{
		New: func(t *testing.T) access.Connector {
			cur = newFake(t, newClock())
			return build(t, cur, -1)
		},
		Grant: func(*testing.T) access.Grant { return roleGrant("AR-1", "5") },
		HasAccess: func(*testing.T, access.Grant) bool {
			cur.mu.Lock()
			u := cur.users["42"]
			cur.mu.Unlock()
			return u != nil && slices.Contains(cur.direct("42"), "5")
		},
		TargetUserID: func(*testing.T, access.Grant) string { return "42" },
		ChangeEmail: func(*testing.T, access.Grant) string {
			cur.rename("42", "alice.smith@example.com")
			return "alice.smith@example.com"
		},
		PreGrant: func(*testing.T, access.Grant) {
			cur.mu.Lock()
			cur.users["42"].Direct = append(cur.users["42"].Direct, "5")
			cur.mu.Unlock()
		},
		DeleteUser: func(*testing.T, access.Grant) { cur.deleteUser("42") },
		UnknownUser: func(*testing.T) access.Grant {
			g := roleGrant("AR-1", "5")
			g.User = access.Person{SlackID: "U0NOBODY1", Email: "nobody@example.com", Name: "Nobody"}
			return g
		},
		FailNext: func(_ *testing.T, status int) { cur.FailNext(status) },
	})
}

func TestOtherRolesSurvive(t *testing.T) {
	f := newFake(t, newClock())
	c := build(t, f, -1)
	mustOK(t, connectortest.ErrOf(c.Grant(t.Context(), roleGrant("AR-1", "5"))))
	if got, want := f.direct("42"), []string{"2", "5"}; !slices.Equal(got, want) {
		t.Fatalf("direct roles after grant = %v, want %v (the group role 7 must not become direct)", got, want)
	}
	mustOK(t, c.Revoke(t.Context(), roleGrant("AR-1", "5")))
	if got, want := f.direct("42"), []string{"2"}; !slices.Equal(got, want) {
		t.Fatalf("direct roles after revoke = %v, want %v", got, want)
	}
	if got := f.direct("43"); !slices.Equal(got, []string{"2"}) {
		t.Fatalf("another user's roles changed: %v", got)
	}
}

func TestConcurrentGrantsToOneUserAllKept(t *testing.T) {
	f := newFake(t, newClock())
	c := build(t, f, -1)
	// Two roles, then many: without per-user serialisation the
	// read-modify-writes interleave and drop roles.
	for _, roles := range [][]string{{"5", "6"}, {"100", "101", "102", "103", "104", "105", "106", "107", "108", "109"}} {
		var wg sync.WaitGroup
		errs := make([]error, len(roles))
		for i, r := range roles {
			wg.Go(func() { errs[i] = connectortest.ErrOf(c.Grant(t.Context(), roleGrant("AR-"+r, r))) })
		}
		wg.Wait()
		for _, err := range errs {
			mustOK(t, err)
		}
		got := f.direct("42")
		for _, r := range append([]string{"2"}, roles...) {
			if !slices.Contains(got, r) {
				t.Fatalf("role %s lost: %v", r, got)
			}
		}
	}
	// Concurrent revokes of some and grants of others.
	var wg sync.WaitGroup
	for _, r := range []string{"100", "101", "102"} {
		wg.Go(func() { mustOKAsync(t, c.Revoke(t.Context(), roleGrant("AR-"+r, r))) })
	}
	for _, r := range []string{"110", "111", "112"} {
		wg.Go(func() { mustOKAsync(t, connectortest.ErrOf(c.Grant(t.Context(), roleGrant("AR-"+r, r)))) })
	}
	wg.Wait()
	want := []string{"103", "104", "105", "106", "107", "108", "109", "110", "111", "112", "2", "5", "6"}
	if got := f.direct("42"); !slices.Equal(got, want) {
		t.Fatalf("roles = %v, want %v", got, want)
	}
}

func mustOKAsync(t *testing.T, err error) {
	if err != nil {
		t.Error(err)
	}
}

func TestAlreadyDoneMakesNoPut(t *testing.T) {
	f := newFake(t, newClock())
	c := build(t, f, -1)
	if rc, err := c.Grant(t.Context(), roleGrant("AR-1", "2")); err != nil || !rc.PreExisting { // already held
		t.Fatalf("grant of a held role = %+v, %v; want PreExisting", rc, err)
	}
	mustOK(t, c.Revoke(t.Context(), roleGrant("AR-2", "6"))) // not held
	mustOK(t, c.Revoke(t.Context(), roleGrant("AR-3", "7"))) // held only through a group: not ours
	if n := f.Count("PUT"); n != 0 {
		t.Fatalf("%d PUTs, want 0", n)
	}
}

func TestUsers(t *testing.T) {
	f := newFake(t, newClock())
	c := build(t, f, -1)
	for _, tc := range []struct{ email, want string }{
		{"nobody@example.com", "does not know this person"},
		{"alice%@example.com", "does not know this person"}, // a wildcard match is not the person
		{"off@example.com", "disabled"},
	} {
		g := roleGrant("AR-1", "5")
		g.User.Email = tc.email
		_, err := c.Grant(t.Context(), g)
		if class, _ := access.Classify(err); err == nil || class != access.Permanent || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("grant for %s: %v", tc.email, err)
		}
	}
	// Exact match among wildcard results: alice_b is not alice.
	g := roleGrant("AR-1", "5")
	g.User.Email = "alice_b@example.com"
	mustOK(t, connectortest.ErrOf(c.Grant(t.Context(), g)))
	if slices.Contains(f.direct("42"), "5") || !slices.Contains(f.direct("43"), "5") {
		t.Fatal("role given to the wrong user")
	}
	// A record without a receipt whose email nobody has: never "done".
	g.User.Email = "nobody@example.com"
	err := c.Revoke(t.Context(), g)
	if class, _ := access.Classify(err); class != access.Permanent || !errors.Is(err, access.ErrUnknownUser) {
		t.Fatalf("legacy revoke of an unknown email = %v, want permanent ErrUnknownUser", err)
	}
}

func TestTransientThenSuccess(t *testing.T) {
	f := newFake(t, newClock())
	c := build(t, f, 3)
	f.FailNext(http.StatusTooManyRequests, http.StatusServiceUnavailable, http.StatusInternalServerError)
	mustOK(t, connectortest.ErrOf(c.Grant(t.Context(), roleGrant("AR-1", "5"))))
	f.FailNext(http.StatusBadGateway, http.StatusTooManyRequests)
	mustOK(t, c.Revoke(t.Context(), roleGrant("AR-1", "5")))
	if got := f.direct("42"); !slices.Equal(got, []string{"2"}) {
		t.Fatalf("roles = %v", got)
	}
}

func TestExpiredTokenIsRefreshedOnce(t *testing.T) {
	clock := newClock()
	f := newFake(t, clock)
	c := build(t, f, -1)
	mustOK(t, connectortest.ErrOf(c.Grant(t.Context(), roleGrant("AR-1", "5"))))
	if n := f.Count("POST /api/4.0/login"); n != 1 {
		t.Fatalf("%d logins, want 1", n)
	}
	// The server forgets every token (revoked, or instance restarted).
	f.mu.Lock()
	clear(f.tokens)
	f.mu.Unlock()
	mustOK(t, c.Revoke(t.Context(), roleGrant("AR-1", "5")))
	if n := f.Count("POST /api/4.0/login"); n != 2 {
		t.Fatalf("%d logins, want 2", n)
	}
	// Near its expiry the token is replaced before use, without a 401.
	clock.Add(59*time.Minute + 30*time.Second)
	unauthorized := 0
	f.setHook(func(w http.ResponseWriter, r *http.Request) bool {
		f.mu.Lock()
		defer f.mu.Unlock()
		tok := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		if exp, ok := f.tokens[tok]; r.URL.Path != "/api/4.0/login" && (!ok || !clock.Now().Before(exp)) {
			unauthorized++
		}
		return false
	})
	mustOK(t, connectortest.ErrOf(c.Grant(t.Context(), roleGrant("AR-2", "6"))))
	if n := f.Count("POST /api/4.0/login"); n != 3 || unauthorized != 0 {
		t.Fatalf("%d logins (want 3), %d requests with an expired token (want 0)", n, unauthorized)
	}
}

func TestRejectedCredentialsArePermanent(t *testing.T) {
	f := newFake(t, newClock())
	c := build(t, f, 2)
	f.mu.Lock()
	f.secret = "rotated"
	f.mu.Unlock()
	_, err := c.Grant(t.Context(), roleGrant("AR-1", "5"))
	if class, _ := access.Classify(err); err == nil || class != access.Permanent {
		t.Fatalf("grant with rotated credentials: %v", err)
	}
	if strings.Contains(err.Error(), testSecret) {
		t.Fatalf("error leaks the secret: %v", err)
	}
	// A token that keeps being refused after a fresh login: permanent,
	// after exactly one new login.
	f2 := newFake(t, newClock())
	c2 := build(t, f2, -1)
	f2.setHook(func(w http.ResponseWriter, r *http.Request) bool {
		if r.URL.Path == "/api/4.0/login" {
			return false
		}
		f2.mu.Lock()
		f2.Record(r)
		f2.mu.Unlock()
		lerr(w, http.StatusUnauthorized, "Requires authentication.")
		return true
	})
	_, err = c2.Grant(t.Context(), roleGrant("AR-1", "5"))
	if class, _ := access.Classify(err); err == nil || class != access.Permanent {
		t.Fatalf("grant with a refused token: %v", err)
	}
	if n := f2.Count("POST /api/4.0/login"); n != 2 {
		t.Fatalf("%d logins, want 2 (one refresh)", n)
	}
}

func TestUnknownRoleIsPermanent(t *testing.T) {
	f := newFake(t, newClock())
	c := build(t, f, -1)
	_, err := c.Grant(t.Context(), roleGrant("AR-1", "999"))
	if class, _ := access.Classify(err); err == nil || class != access.Permanent || !strings.Contains(err.Error(), "422") {
		t.Fatalf("unknown role: %v", err)
	}
	_, err = c.Grant(t.Context(), roleGrant("AR-1", ""))
	if class, _ := access.Classify(err); err == nil || class != access.Permanent || !strings.Contains(err.Error(), "role_id: required") {
		t.Fatalf("missing role_id: %v", err)
	}
}

func TestConfig(t *testing.T) {
	reg := connectors.NewRegistry()
	reg.Add(looker.Type, looker.Factory)
	for _, tt := range []struct {
		name string
		raw  map[string]any
		want string
	}{
		{"ok", map[string]any{"url": "https://acme.cloud.looker.com", "client_id": "x", "client_secret": testSecret}, ""},
		{"missing", map[string]any{}, "connectors.bi.url: required"},
		{"no client id", map[string]any{"url": "https://acme.cloud.looker.com", "client_secret": testSecret}, "connectors.bi.client_id: required"},
		{"no secret", map[string]any{"url": "https://acme.cloud.looker.com", "client_id": "x"}, "connectors.bi.client_secret: required"},
		{"bad url", map[string]any{"url": "acme.cloud.looker.com", "client_id": "x", "client_secret": testSecret}, "connectors.bi.url: must be"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := reg.Build("bi", looker.Type, tt.raw, connectors.Env{State: &connectortest.State{}})
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), testSecret) {
				t.Fatalf("got %v, want %q", err, tt.want)
			}
		})
	}
}

func TestReceipt(t *testing.T) {
	f := newFake(t, newClock())
	c := build(t, f, -1)
	g := roleGrant("AR-1", "5")
	rc, err := c.Grant(t.Context(), g)
	mustOK(t, err)
	if rc.UserID != "42" || rc.PreExisting || rc.Previous != "2" {
		t.Fatalf("receipt = %+v, want user 42, previous direct roles 2", rc)
	}
	// Renamed; a role added by hand meanwhile; the revoke acts on the
	// receipt's user and removes only the granted role.
	f.rename("42", "alice.smith@example.com")
	f.mu.Lock()
	f.users["42"].Direct = append(f.users["42"].Direct, "6")
	f.mu.Unlock()
	searches := f.Count("GET /api/4.0/users/search")
	g.Receipt = &rc
	mustOK(t, c.Revoke(t.Context(), g))
	if got := f.direct("42"); !slices.Equal(got, []string{"2", "6"}) {
		t.Fatalf("direct roles after revoke = %v, want [2 6]", got)
	}
	if f.Count("GET /api/4.0/users/search") != searches {
		t.Fatal("revoke by receipt searched users by email")
	}
}

// TestRevokeOfRoleAlsoHeldThroughGroup: the user holds the role both
// directly (granted) and through a group. Set_user_roles answers all
// roles, the group's included; the revoke verifies the direct roles only,
// so it completes instead of failing forever.
func TestRevokeOfRoleAlsoHeldThroughGroup(t *testing.T) {
	f := newFake(t, newClock())
	c := build(t, f, -1)
	g := roleGrant("AR-1", "7") // 7 is also alice's through a group
	rc, err := c.Grant(t.Context(), g)
	mustOK(t, err)
	if rc.PreExisting {
		t.Fatal("a role held only through a group is not held directly")
	}
	g.Receipt = &rc
	mustOK(t, c.Revoke(t.Context(), g))
	if got := f.direct("42"); slices.Contains(got, "7") {
		t.Fatalf("direct roles after revoke = %v", got)
	}
	f.mu.Lock()
	via := slices.Clone(f.users["42"].ViaGroups)
	f.mu.Unlock()
	if !slices.Contains(via, "7") {
		t.Fatal("the group role was touched")
	}
}

func TestLostPutAnswer(t *testing.T) {
	f := newFake(t, newClock())
	c := build(t, f, -1)
	f.setHook(func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method == http.MethodPut {
			f.setHook(nil)
			f.mu.Lock()
			f.users["42"].Direct = append(f.users["42"].Direct, "5") // applied
			f.mu.Unlock()
			lerr(w, http.StatusBadGateway, "Bad Gateway")
			return true
		}
		return false
	})
	rc, err := c.Grant(t.Context(), roleGrant("AR-1", "5"))
	mustOK(t, err)
	if rc.PreExisting || rc.UserID != "42" {
		t.Fatalf("receipt = %+v: the role set by the lost PUT is this grant's", rc)
	}
}
