package zendesk_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
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
	"github.com/accessbot/accessbot/connectors/zendesk"
)

const (
	testEmail = "bot@acme.example"
	testToken = "ZDTOKENabcdefghijklmnopqrstuvwxyz0123456789"
)

// Custom roles of the fake account.
const (
	roleStaff    = 200 // the agents' everyday role
	roleLead     = 300 // the temporary role granted
	roleBilling  = 400 // another temporary role
	roleByHand   = 500 // what an admin sets by hand
	groupTier1   = 11
	groupBilling = 22
)

// fakeZendesk is an httptest Zendesk Support API v2 written from the API
// reference (users, users search, group memberships, security and auth,
// rate limits; see the package doc): Basic "{email}/token:{token}" auth
// answering 401 {"error":"Couldn't authenticate you"}; search by
// "email:…"; GET users/{id}.json (404 RecordNotFound once deleted); PUT
// users/{id}.json validating custom_role_id (422 RecordInvalid); group
// memberships with 201, 204, 404 RecordNotFound and 422
// RecordInvalid/DuplicateValue; 429 with Retry-After.
//
// Plans: custom_role_id exists only for agents on Enterprise plans
// ("A custom role if the user is an agent on the Enterprise plan or
// above", https://developer.zendesk.com/api-reference/ticketing/users/users/#json-format;
// https://support.zendesk.com/hc/en-us/articles/4408882153882). The
// reference does not say what a PUT of custom_role_id does on a lower
// plan; this fake, with enterprise false, answers 200 and leaves the role
// null, the least helpful answer, so that a connector must check the role
// it gets back. An agent downgraded to end user loses custom role and
// group memberships, as in Admin Center.
type fakeZendesk struct {
	connectortest.Faults // requests seen, failures to answer next

	srv     *httptest.Server
	mu      sync.Mutex
	token   string
	users   map[int64]*fakeUser
	roles   map[int64]bool
	groups  map[int64]bool
	members map[int64][2]int64 // membership ID → (user, group)
	nextID  int64
	hook    func(w http.ResponseWriter, r *http.Request) bool
	// notEnterprise makes the account a plan without custom roles.
	notEnterprise bool
}

type fakeUser struct {
	ID    int64
	Email string
	Role  string
	// CustomRoleID 0 is null.
	CustomRoleID int64
}

func newFake(t *testing.T) *fakeZendesk {
	f := &fakeZendesk{
		token: testToken,
		users: map[int64]*fakeUser{
			1001: {1001, "alice@example.com", "agent", roleStaff},
			1002: {1002, "bob@example.com", "agent", roleStaff},
			1003: {1003, "customer@example.com", "end-user", 0},
		},
		roles:   map[int64]bool{roleStaff: true, roleLead: true, roleBilling: true, roleByHand: true},
		groups:  map[int64]bool{groupTier1: true, groupBilling: true},
		members: map[int64][2]int64{9001: {1001, groupTier1}, 9002: {1002, groupBilling}},
		nextID:  9100,
	}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func zerr(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	fmt.Fprint(w, body)
}

func (f *fakeZendesk) serve(w http.ResponseWriter, r *http.Request) {
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
			zerr(w, status, `{"error":"APIRateLimitExceeded","description":"Number of allowed API requests per minute exceeded"}`)
			return
		}
		zerr(w, status, fmt.Sprintf(`{"error":"injected %d"}`, status))
		return
	}
	want := "Basic " + base64.StdEncoding.EncodeToString([]byte(testEmail+"/token:"+f.token))
	if r.Header.Get("Authorization") != want {
		zerr(w, http.StatusUnauthorized, `{"error":"Couldn't authenticate you"}`)
		return
	}
	path, ok := strings.CutPrefix(r.URL.Path, "/api/v2/")
	if !ok {
		zerr(w, http.StatusNotFound, `{"error":"InvalidEndpoint","description":"Not found"}`)
		return
	}
	parts := strings.Split(strings.TrimSuffix(path, ".json"), "/")
	switch {
	case r.Method == http.MethodGet && len(parts) == 2 && parts[0] == "users" && parts[1] != "search":
		id, _ := strconv.ParseInt(parts[1], 10, 64)
		u := f.users[id]
		if u == nil {
			zerr(w, http.StatusNotFound, `{"error":"RecordNotFound","description":"Not found"}`)
			return
		}
		json.NewEncoder(w).Encode(map[string]any{"user": f.userJSON(u)})
	case r.Method == http.MethodGet && path == "users/search.json":
		email, _ := strings.CutPrefix(r.URL.Query().Get("query"), "email:")
		out := []map[string]any{}
		for _, id := range slices.Sorted(maps.Keys(f.users)) {
			if u := f.users[id]; strings.EqualFold(u.Email, email) {
				out = append(out, f.userJSON(u))
			}
		}
		json.NewEncoder(w).Encode(map[string]any{"users": out, "next_page": nil, "previous_page": nil, "count": len(out)})
	case r.Method == http.MethodPut && len(parts) == 2 && parts[0] == "users":
		id, _ := strconv.ParseInt(parts[1], 10, 64)
		u := f.users[id]
		if u == nil {
			zerr(w, http.StatusNotFound, `{"error":"RecordNotFound","description":"Not found"}`)
			return
		}
		var body struct {
			User struct {
				CustomRoleID *int64 `json:"custom_role_id"`
			} `json:"user"`
		}
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			zerr(w, http.StatusBadRequest, `{"error":"Unprocessable Entity"}`)
			return
		}
		if cr := body.User.CustomRoleID; cr != nil && !f.notEnterprise {
			if !f.roles[*cr] || u.Role == "end-user" {
				zerr(w, http.StatusUnprocessableEntity, `{"error":"RecordInvalid","description":"Record validation errors","details":{"custom_role_id":[{"description":"Custom role is invalid"}]}}`)
				return
			}
			u.CustomRoleID = *cr
		}
		json.NewEncoder(w).Encode(map[string]any{"user": f.userJSON(u)})
	case r.Method == http.MethodGet && len(parts) == 3 && parts[0] == "users" && parts[2] == "group_memberships":
		id, _ := strconv.ParseInt(parts[1], 10, 64)
		if f.users[id] == nil {
			zerr(w, http.StatusNotFound, `{"error":"RecordNotFound","description":"Not found"}`)
			return
		}
		out := []map[string]any{}
		for _, mid := range slices.Sorted(maps.Keys(f.members)) {
			if m := f.members[mid]; m[0] == id {
				out = append(out, map[string]any{"id": mid, "user_id": m[0], "group_id": m[1], "default": false})
			}
		}
		json.NewEncoder(w).Encode(map[string]any{"group_memberships": out, "next_page": nil, "previous_page": nil, "count": len(out)})
	case r.Method == http.MethodPost && path == "group_memberships.json":
		var body struct {
			M struct {
				UserID  int64 `json:"user_id"`
				GroupID int64 `json:"group_id"`
			} `json:"group_membership"`
		}
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			zerr(w, http.StatusBadRequest, `{"error":"Unprocessable Entity"}`)
			return
		}
		u := f.users[body.M.UserID]
		if u == nil || u.Role == "end-user" || !f.groups[body.M.GroupID] {
			zerr(w, http.StatusUnprocessableEntity, `{"error":"RecordInvalid","description":"Record validation errors","details":{"group":[{"description":"Group is invalid"}]}}`)
			return
		}
		for _, m := range f.members {
			if m == [2]int64{body.M.UserID, body.M.GroupID} {
				zerr(w, http.StatusUnprocessableEntity, `{"error":"RecordInvalid","description":"Record validation errors","details":{"user_id":[{"description":"User is already a member of this group","error":"DuplicateValue"}]}}`)
				return
			}
		}
		f.nextID++
		f.members[f.nextID] = [2]int64{body.M.UserID, body.M.GroupID}
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.WriteHeader(http.StatusCreated)
		json.NewEncoder(w).Encode(map[string]any{"group_membership": map[string]any{"id": f.nextID, "user_id": body.M.UserID, "group_id": body.M.GroupID}})
	case r.Method == http.MethodDelete && len(parts) == 2 && parts[0] == "group_memberships":
		id, _ := strconv.ParseInt(parts[1], 10, 64)
		if _, ok := f.members[id]; !ok {
			zerr(w, http.StatusNotFound, `{"error":"RecordNotFound","description":"Not found"}`)
			return
		}
		delete(f.members, id)
		w.WriteHeader(http.StatusNoContent)
	default:
		zerr(w, http.StatusNotFound, `{"error":"InvalidEndpoint","description":"Not found"}`)
	}
}

func (f *fakeZendesk) userJSON(u *fakeUser) map[string]any {
	var cr any
	if u.CustomRoleID != 0 && !f.notEnterprise {
		cr = u.CustomRoleID
	}
	return map[string]any{"id": u.ID, "email": u.Email, "role": u.Role, "custom_role_id": cr, "suspended": false, "active": true}
}

func (f *fakeZendesk) roleOf(id int64) int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.users[id].CustomRoleID
}

func (f *fakeZendesk) setRole(id, role int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.users[id].CustomRoleID = role
}

func (f *fakeZendesk) member(userID, group int64) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, m := range f.members {
		if m == [2]int64{userID, group} {
			return true
		}
	}
	return false
}

func (f *fakeZendesk) addMember(userID, group int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.nextID++
	f.members[f.nextID] = [2]int64{userID, group}
}

func (f *fakeZendesk) setEmail(id int64, email string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.users[id].Email = email
}

// deleteUser deletes a user as Admin Center does: gone from search and
// GET, memberships with it.
func (f *fakeZendesk) deleteUser(id int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.users, id)
	for mid, m := range f.members {
		if m[0] == id {
			delete(f.members, mid)
		}
	}
}

// downgrade makes an agent an end user: no custom role, no groups.
func (f *fakeZendesk) downgrade(id int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.users[id].Role, f.users[id].CustomRoleID = "end-user", 0
	for mid, m := range f.members {
		if m[0] == id {
			delete(f.members, mid)
		}
	}
}

func (f *fakeZendesk) setHook(h func(w http.ResponseWriter, r *http.Request) bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.hook = h
}

// memState is an in-memory connectors.State; failPut makes Put fail.
type memState struct {
	mu      sync.Mutex
	m       map[string][]byte
	failPut bool
}

func newState() *memState { return &memState{m: map[string][]byte{}} }

func (s *memState) Get(_ context.Context, key string) ([]byte, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.m[key]
	return slices.Clone(v), ok, nil
}

func (s *memState) Put(_ context.Context, key string, value []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failPut {
		return errors.New("disk full")
	}
	s.m[key] = slices.Clone(value)
	return nil
}

func (s *memState) Delete(_ context.Context, key string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, key)
	return nil
}

func (s *memState) keys() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Sorted(maps.Keys(s.m))
}

func build(t *testing.T, f *fakeZendesk, st connectors.State, retryMax int) access.Connector {
	t.Helper()
	reg := connectors.NewRegistry()
	reg.Add(zendesk.Type, zendesk.Factory)
	c, err := reg.Build("support", zendesk.Type, map[string]any{
		"type": zendesk.Type, "base_url": f.srv.URL + "/api/v2/", "email": testEmail, "api_token": testToken,
	}, connectors.Env{HTTP: connectortest.FastHTTP(retryMax), State: st})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func grant(id string, params map[string]string) access.Grant {
	return access.Grant{
		ID: id, System: "zendesk", Role: "lead", Params: params,
		User: access.Person{SlackID: "U0ALICE01", Email: "alice@example.com", Name: "Alice"},
	}
}

func leadGrant(id string) access.Grant {
	return grant(id, map[string]string{"custom_role_id": strconv.Itoa(roleLead)})
}

func mustOK(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		class, _ := access.Classify(err)
		t.Fatalf("%v (%v)", err, class)
	}
}

func TestConformance(t *testing.T) {
	for _, tc := range []struct {
		name     string
		params   map[string]string
		has      func(f *fakeZendesk) bool
		pregrant func(f *fakeZendesk)
	}{
		{"role and group", map[string]string{"custom_role_id": strconv.Itoa(roleLead), "group_id": strconv.Itoa(groupBilling)},
			func(f *fakeZendesk) bool { return f.roleOf(1001) == roleLead && f.member(1001, groupBilling) },
			func(f *fakeZendesk) { f.setRole(1001, roleLead); f.addMember(1001, groupBilling) }},
		{"role", map[string]string{"custom_role_id": strconv.Itoa(roleLead)},
			func(f *fakeZendesk) bool { return f.roleOf(1001) == roleLead },
			func(f *fakeZendesk) { f.setRole(1001, roleLead) }},
		{"group", map[string]string{"group_id": strconv.Itoa(groupBilling)},
			func(f *fakeZendesk) bool { return f.member(1001, groupBilling) },
			func(f *fakeZendesk) { f.addMember(1001, groupBilling) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var cur *fakeZendesk
			h := conformance.Harness{
				New: func(t *testing.T) access.Connector {
					cur = newFake(t)
					return build(t, cur, newState(), -1)
				},
				Grant: func(*testing.T) access.Grant { return grant("AR-1", tc.params) },
				HasAccess: func(*testing.T, access.Grant) bool {
					cur.mu.Lock()
					gone := cur.users[1001] == nil
					cur.mu.Unlock()
					return !gone && tc.has(cur)
				},
				UnknownUser: func(*testing.T) access.Grant {
					g := grant("AR-1", tc.params)
					g.User = access.Person{SlackID: "U0NOBODY1", Email: "nobody@example.com", Name: "Nobody"}
					return g
				},
				TargetUserID: func(*testing.T, access.Grant) string { return "1001" },
				ChangeEmail: func(*testing.T, access.Grant) string {
					cur.setEmail(1001, "alice.smith@example.com")
					return "alice.smith@example.com"
				},
				PreGrant:   func(*testing.T, access.Grant) { tc.pregrant(cur) },
				DeleteUser: func(*testing.T, access.Grant) { cur.deleteUser(1001) },
				FailNext:   func(_ *testing.T, status int) { cur.FailNext(status) },
			}
			if tc.name == "role and group" {
				// The role is set first; the group add is then refused for
				// good (a group deleted meanwhile: 422, and not a member).
				h.FailSecondCall = func(*testing.T) {
					cur.setHook(func(w http.ResponseWriter, r *http.Request) bool {
						if r.Method != http.MethodPost {
							return false
						}
						cur.setHook(nil)
						zerr(w, http.StatusUnprocessableEntity, `{"error":"RecordInvalid","description":"Record validation errors","details":{"group":[{"description":"Group is invalid"}]}}`)
						return true
					})
				}
			}
			conformance.Run(t, h)
		})
	}
}

// grantOK grants g and returns the receipt, failing the test on an error.
func grantOK(t *testing.T, c access.Connector, g access.Grant) access.Receipt {
	t.Helper()
	rc, err := c.Grant(t.Context(), g)
	mustOK(t, err)
	return rc
}

// revokeWith revokes g with the receipt rc, as the lifecycle does.
func revokeWith(t *testing.T, c access.Connector, g access.Grant, rc access.Receipt) {
	t.Helper()
	g.Receipt = &rc
	mustOK(t, c.Revoke(t.Context(), g))
}

func data(t *testing.T, rc access.Receipt) zendesk.Data {
	t.Helper()
	var d zendesk.Data
	if err := json.Unmarshal(rc.Data, &d); err != nil {
		t.Fatalf("receipt data %s: %v", rc.Data, err)
	}
	return d
}

func TestReceiptRestoresPreviousRole(t *testing.T) {
	f, st := newFake(t), newState()
	c := build(t, f, st, -1)
	g := leadGrant("AR-1")
	rc := grantOK(t, c, g)
	if got := f.roleOf(1001); got != roleLead {
		t.Fatalf("role after grant = %d, want %d", got, roleLead)
	}
	if rc.UserID != "1001" || rc.Previous != strconv.Itoa(roleStaff) || rc.PreExisting || data(t, rc).CustomRoleID != roleLead {
		t.Fatalf("receipt = %+v (%s)", rc, rc.Data)
	}
	if strings.Contains(rc.Note, "@") || rc.Note == "" {
		t.Fatalf("note %q", rc.Note)
	}
	revokeWith(t, c, g, rc)
	if got := f.roleOf(1001); got != roleStaff {
		t.Fatalf("role after revoke = %d, want the previous %d", got, roleStaff)
	}
	if got := f.roleOf(1002); got != roleStaff {
		t.Fatalf("another agent's role changed to %d", got)
	}
	if got := st.keys(); len(got) != 0 {
		t.Fatalf("state after revoke = %v, want empty", got)
	}
	// Revoking again is done and changes nothing.
	f.setRole(1001, roleByHand)
	revokeWith(t, c, g, rc)
	if got := f.roleOf(1001); got != roleByHand {
		t.Fatalf("a repeated revoke changed the role to %d", got)
	}
}

func TestEmailChangedAfterGrant(t *testing.T) {
	params := map[string]string{"custom_role_id": strconv.Itoa(roleLead), "group_id": strconv.Itoa(groupBilling)}
	f, st := newFake(t), newState()
	c := build(t, f, st, -1)
	g := grant("AR-1", params)
	rc := grantOK(t, c, g)
	f.setEmail(1001, "alice.smith@example.com")
	// A new process over the same state: the receipt is all it has.
	c = build(t, f, st, -1)
	searches := f.Count("GET /api/v2/users/search")
	revokeWith(t, c, g, rc)
	if f.roleOf(1001) != roleStaff || f.member(1001, groupBilling) {
		t.Fatalf("access left after revoke by receipt: role %d, member %v", f.roleOf(1001), f.member(1001, groupBilling))
	}
	if f.Count("GET /api/v2/users/search") != searches {
		t.Fatal("revoke by receipt searched users by email")
	}
}

func TestLegacyRevokeOfUnknownEmailIsPermanent(t *testing.T) {
	f, st := newFake(t), newState()
	c := build(t, f, st, -1)
	g := leadGrant("AR-1")
	mustOK(t, connectortest.ErrOf(c.Grant(t.Context(), g)))
	f.setEmail(1001, "alice.smith@example.com")
	// A new process, with no cached lookups; no receipt: a record from
	// before receipts.
	err := build(t, f, st, -1).Revoke(t.Context(), g)
	if class, _ := access.Classify(err); err == nil || class != access.Permanent || !errors.Is(err, access.ErrUnknownUser) {
		t.Fatalf("legacy revoke of a renamed agent = %v, want permanent ErrUnknownUser", err)
	}
	if f.roleOf(1001) != roleLead {
		t.Fatal("role changed")
	}
}

func TestLegacyRecordRestoresPreviousRole(t *testing.T) {
	// What the connector stored before receipts existed: prev-role/<grant>
	// and agent/<user>.
	f, st := newFake(t), newState()
	f.setRole(1001, roleLead)
	rec := `{"user_id":1001,"prev_custom_role_id":200,"custom_role_id":300,"grant_id":"AR-1"}`
	mustOK(t, st.Put(t.Context(), "prev-role/AR-1", []byte(rec)))
	mustOK(t, st.Put(t.Context(), "agent/1001", []byte(rec)))
	c := build(t, f, st, -1)
	mustOK(t, c.Revoke(t.Context(), leadGrant("AR-1")))
	if got := f.roleOf(1001); got != roleStaff {
		t.Fatalf("role after legacy revoke = %d, want %d", got, roleStaff)
	}
	if got := st.keys(); len(got) != 0 {
		t.Fatalf("state = %v, want empty", got)
	}
}

func TestRoleChangedByHandIsLeftAlone(t *testing.T) {
	f, st := newFake(t), newState()
	c := build(t, f, st, -1)
	rc := grantOK(t, c, leadGrant("AR-1"))
	f.setRole(1001, roleByHand)
	puts := f.Count("PUT")
	revokeWith(t, c, leadGrant("AR-1"), rc)
	if got := f.roleOf(1001); got != roleByHand {
		t.Fatalf("role = %d, want the hand-set %d kept", got, roleByHand)
	}
	if f.Count("PUT") != puts {
		t.Fatal("revoke wrote the user although the role was changed by hand")
	}
	if got := st.keys(); len(got) != 0 {
		t.Fatalf("state = %v, want empty", got)
	}
}

func TestDowngradedOrDeletedAgent(t *testing.T) {
	params := map[string]string{"custom_role_id": strconv.Itoa(roleLead), "group_id": strconv.Itoa(groupBilling)}
	for name, change := range map[string]func(f *fakeZendesk){
		"downgraded to end user": func(f *fakeZendesk) { f.downgrade(1001) },
		"deleted":                func(f *fakeZendesk) { f.deleteUser(1001) },
	} {
		t.Run(name, func(t *testing.T) {
			f, st := newFake(t), newState()
			c := build(t, f, st, -1)
			rc := grantOK(t, c, grant("AR-1", params))
			change(f)
			puts := f.Count("PUT")
			revokeWith(t, c, grant("AR-1", params), rc)
			if f.Count("PUT") != puts {
				t.Fatal("revoke tried to restore a role the user no longer can have")
			}
			if got := st.keys(); len(got) != 0 {
				t.Fatalf("state = %v, want empty", got)
			}
		})
	}
}

func TestRoleAlreadyHeld(t *testing.T) {
	// The agent had the role before accessbot: no change at grant, and the
	// receipt says so (the lifecycle never revokes pre-existing access).
	f, st := newFake(t), newState()
	f.setRole(1001, roleLead)
	c := build(t, f, st, -1)
	rc := grantOK(t, c, leadGrant("AR-1"))
	if !rc.PreExisting || rc.Previous != "" || !data(t, rc).RolePreExisting {
		t.Fatalf("receipt = %+v (%s), want PreExisting", rc, rc.Data)
	}
	// Were it revoked anyway, nothing changes.
	revokeWith(t, c, leadGrant("AR-1"), rc)
	if n := f.Count("PUT"); n != 0 {
		t.Fatalf("%d PUTs, want 0", n)
	}
	if got := f.roleOf(1001); got != roleLead {
		t.Fatalf("role = %d, want %d", got, roleLead)
	}
	if got := st.keys(); len(got) != 0 {
		t.Fatalf("state = %v, want empty", got)
	}
}

func TestLostAnswerIsResolvedByLookingAgain(t *testing.T) {
	f, st := newFake(t), newState()
	c := build(t, f, st, -1)
	f.setHook(func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method == http.MethodPut {
			f.setHook(nil)
			f.setRole(1001, roleLead) // applied, but the answer is lost
			zerr(w, http.StatusBadGateway, `{"error":"bad gateway"}`)
			return true
		}
		return false
	})
	rc := grantOK(t, c, leadGrant("AR-1"))
	if rc.Previous != strconv.Itoa(roleStaff) || rc.PreExisting {
		t.Fatalf("receipt = %+v, want previous %d", rc, roleStaff)
	}
	revokeWith(t, c, leadGrant("AR-1"), rc)
	if got := f.roleOf(1001); got != roleStaff {
		t.Fatalf("role after revoke = %d, want %d", got, roleStaff)
	}
}

func TestGrantRetryKeepsTruePreviousRole(t *testing.T) {
	// The PUT's answer is lost and so is the look that follows: the grant
	// fails with a receipt saying the role may have changed. The retry
	// must record the role from before, not the temporary one.
	f, st := newFake(t), newState()
	c := build(t, f, st, -1)
	put := false
	f.setHook(func(w http.ResponseWriter, r *http.Request) bool {
		switch {
		case r.Method == http.MethodPut:
			f.setRole(1001, roleLead)
			put = true
		case put && r.Method == http.MethodGet && r.URL.Path == "/api/v2/users/1001.json":
			f.setHook(nil)
		default:
			return false
		}
		zerr(w, http.StatusBadGateway, `{"error":"bad gateway"}`)
		return true
	})
	rc, err := c.Grant(t.Context(), leadGrant("AR-1"))
	if class, _ := access.Classify(err); err == nil || class != access.Retryable || !rc.Changed() || rc.Previous != strconv.Itoa(roleStaff) {
		t.Fatalf("grant with lost answers = %+v, %v; want retryable with a partial receipt", rc, err)
	}
	rc = grantOK(t, c, leadGrant("AR-1"))
	if rc.PreExisting || rc.Previous != strconv.Itoa(roleStaff) {
		t.Fatalf("retried grant's receipt = %+v, want previous %d", rc, roleStaff)
	}
	revokeWith(t, c, leadGrant("AR-1"), rc)
	if got := f.roleOf(1001); got != roleStaff {
		t.Fatalf("role after revoke = %d, want %d", got, roleStaff)
	}
}

func TestOverlappingGrantsOfOneRole(t *testing.T) {
	// accessbot sends one revoke, for the grant that ends last, with that
	// grant's receipt; it must restore the role from before the first.
	for _, last := range []string{"AR-1", "AR-2"} {
		t.Run("last "+last, func(t *testing.T) {
			f, st := newFake(t), newState()
			c := build(t, f, st, -1)
			rcs := map[string]access.Receipt{"AR-1": grantOK(t, c, leadGrant("AR-1"))}
			rcs["AR-2"] = grantOK(t, c, leadGrant("AR-2"))
			if rc := rcs["AR-2"]; rc.PreExisting || rc.Previous != strconv.Itoa(roleStaff) {
				t.Fatalf("overlapping grant's receipt = %+v, want previous %d, not pre-existing", rc, roleStaff)
			}
			revokeWith(t, c, leadGrant(last), rcs[last])
			if got := f.roleOf(1001); got != roleStaff {
				t.Fatalf("role after the last revoke = %d, want %d", got, roleStaff)
			}
			if got := st.keys(); len(got) != 0 {
				t.Fatalf("stale records %v", got)
			}
		})
	}
}

func TestSecondTemporaryRoleRefused(t *testing.T) {
	f, st := newFake(t), newState()
	c := build(t, f, st, -1)
	rc := grantOK(t, c, leadGrant("AR-1"))
	rc2, err := c.Grant(t.Context(), grant("AR-2", map[string]string{"custom_role_id": strconv.Itoa(roleBilling)}))
	if class, _ := access.Classify(err); err == nil || class != access.Permanent || !strings.Contains(err.Error(), "AR-1") || rc2.Changed() {
		t.Fatalf("second temporary role: %+v, %v", rc2, err)
	}
	if got := f.roleOf(1001); got != roleLead {
		t.Fatalf("role = %d, want %d", got, roleLead)
	}
	revokeWith(t, c, leadGrant("AR-1"), rc)
	if got := f.roleOf(1001); got != roleStaff {
		t.Fatalf("role = %d, want %d", got, roleStaff)
	}
}

func TestStateWriteFailureChangesNothing(t *testing.T) {
	f, st := newFake(t), newState()
	st.failPut = true
	c := build(t, f, st, -1)
	rc, err := c.Grant(t.Context(), leadGrant("AR-1"))
	if class, _ := access.Classify(err); err == nil || class != access.Retryable || rc.Changed() {
		t.Fatalf("grant with failing state: %+v, %v", rc, err)
	}
	if got := f.roleOf(1001); got != roleStaff || f.Count("PUT") != 0 {
		t.Fatalf("role changed to %d although the record could not be stored", got)
	}
}

func TestNonEnterprisePlan(t *testing.T) {
	// No custom roles below Enterprise: custom_role_id is null, so there
	// is nothing to restore, and the grant is refused before any change.
	f, st := newFake(t), newState()
	f.notEnterprise = true
	c := build(t, f, st, -1)
	rc, err := c.Grant(t.Context(), leadGrant("AR-1"))
	if class, _ := access.Classify(err); err == nil || class != access.Permanent || !strings.Contains(err.Error(), "Enterprise") || rc.Changed() {
		t.Fatalf("grant on a plan without custom roles = %+v, %v", rc, err)
	}
	if f.Count("PUT") != 0 {
		t.Fatal("PUT sent")
	}
	// The account was downgraded after the agent got a role: the PUT is
	// answered 200 without the role; the connector notices.
	f2, st2 := newFake(t), newState()
	f2.setHook(func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method == http.MethodPut {
			f2.mu.Lock()
			f2.notEnterprise = true
			f2.mu.Unlock()
		}
		return false
	})
	rc, err = build(t, f2, st2, -1).Grant(t.Context(), leadGrant("AR-1"))
	if class, _ := access.Classify(err); err == nil || class != access.Permanent || !strings.Contains(err.Error(), "kept") || rc.Changed() {
		t.Fatalf("grant with the role ignored = %+v, %v", rc, err)
	}
	if got := st2.keys(); len(got) != 0 {
		t.Fatalf("state = %v after a refused change", got)
	}
}

func TestSecondCallFailsPermanently(t *testing.T) {
	// Role, then group: the group add is refused for good. The grant
	// returns the partial receipt, and the rollback puts the role back.
	params := map[string]string{"custom_role_id": strconv.Itoa(roleLead), "group_id": strconv.Itoa(groupBilling)}
	f, st := newFake(t), newState()
	c := build(t, f, st, -1)
	f.setHook(func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method == http.MethodPost {
			zerr(w, http.StatusForbidden, `{"error":"Forbidden","description":"You do not have access to this page. Please contact the account owner of this help desk for further help."}`)
			return true
		}
		return false
	})
	g := grant("AR-1", params)
	rc, err := c.Grant(t.Context(), g)
	if class, _ := access.Classify(err); err == nil || class != access.Permanent {
		t.Fatalf("grant = %v, want permanent", err)
	}
	if !rc.Changed() || rc.UserID != "1001" || rc.Previous != strconv.Itoa(roleStaff) || data(t, rc).MembershipID != 0 {
		t.Fatalf("partial receipt = %+v (%s)", rc, rc.Data)
	}
	if f.roleOf(1001) != roleLead {
		t.Fatal("the first call was not applied (test setup)")
	}
	f.setHook(nil)
	g.Receipt, g.Rollback = &rc, true
	mustOK(t, c.Revoke(t.Context(), g))
	if f.roleOf(1001) != roleStaff || f.member(1001, groupBilling) {
		t.Fatalf("after rollback: role %d, member %v", f.roleOf(1001), f.member(1001, groupBilling))
	}
	if !f.member(1001, groupTier1) {
		t.Fatal("rollback removed another membership")
	}
	if got := st.keys(); len(got) != 0 {
		t.Fatalf("state = %v, want empty", got)
	}
}

func TestGroupMembership(t *testing.T) {
	params := map[string]string{"group_id": strconv.Itoa(groupBilling)}
	t.Run("other memberships survive", func(t *testing.T) {
		f := newFake(t)
		c := build(t, f, newState(), -1)
		rc := grantOK(t, c, grant("AR-1", params))
		if d := data(t, rc); d.MembershipID == 0 || d.GroupID != groupBilling || rc.PreExisting {
			t.Fatalf("receipt = %+v (%s)", rc, rc.Data)
		}
		revokeWith(t, c, grant("AR-1", params), rc)
		if !f.member(1001, groupTier1) || !f.member(1002, groupBilling) || f.member(1001, groupBilling) {
			t.Fatal("memberships wrong after grant and revoke")
		}
	})
	t.Run("already a member", func(t *testing.T) {
		f := newFake(t)
		f.addMember(1001, groupBilling)
		c := build(t, f, newState(), -1)
		rc := grantOK(t, c, grant("AR-1", params))
		if n := f.Count("POST"); n != 0 {
			t.Fatalf("%d POSTs, want 0", n)
		}
		if !rc.PreExisting || !data(t, rc).GroupPreExisting {
			t.Fatalf("receipt = %+v, want PreExisting", rc)
		}
		revokeWith(t, c, grant("AR-1", params), rc) // were it revoked anyway
		if !f.member(1001, groupBilling) {
			t.Fatal("revoke removed a membership the agent had before")
		}
	})
	t.Run("role new, group pre-existing", func(t *testing.T) {
		both := map[string]string{"custom_role_id": strconv.Itoa(roleLead), "group_id": strconv.Itoa(groupTier1)}
		f, st := newFake(t), newState()
		c := build(t, f, st, -1)
		rc := grantOK(t, c, grant("AR-1", both))
		if rc.PreExisting || !data(t, rc).GroupPreExisting {
			t.Fatalf("receipt = %+v (%s)", rc, rc.Data)
		}
		revokeWith(t, c, grant("AR-1", both), rc)
		if f.roleOf(1001) != roleStaff || !f.member(1001, groupTier1) {
			t.Fatal("revoke must restore the role and keep the old membership")
		}
	})
	t.Run("concurrent add answers 422", func(t *testing.T) {
		f := newFake(t)
		c := build(t, f, newState(), -1)
		f.setHook(func(w http.ResponseWriter, r *http.Request) bool {
			if r.Method == http.MethodPost {
				f.addMember(1001, groupBilling) // someone was quicker
			}
			return false
		})
		rc := grantOK(t, c, grant("AR-1", params))
		if f.Count("POST") != 1 || !rc.PreExisting {
			t.Fatalf("receipt %+v after a 422 for someone else's add", rc)
		}
	})
	t.Run("create answer lost", func(t *testing.T) {
		f := newFake(t)
		c := build(t, f, newState(), -1)
		f.setHook(func(w http.ResponseWriter, r *http.Request) bool {
			if r.Method == http.MethodPost {
				f.setHook(nil)
				f.addMember(1001, groupBilling)
				zerr(w, http.StatusServiceUnavailable, `{"error":"unavailable"}`)
				return true
			}
			return false
		})
		rc := grantOK(t, c, grant("AR-1", params))
		if d := data(t, rc); d.MembershipID == 0 || rc.PreExisting {
			t.Fatalf("receipt = %+v (%s): the membership made by the lost create is ours", rc, rc.Data)
		}
		revokeWith(t, c, grant("AR-1", params), rc)
		if f.member(1001, groupBilling) {
			t.Fatal("membership left")
		}
	})
	t.Run("invalid group is permanent", func(t *testing.T) {
		f := newFake(t)
		c := build(t, f, newState(), -1)
		rc, err := c.Grant(t.Context(), grant("AR-1", map[string]string{"group_id": "999"}))
		if class, _ := access.Classify(err); err == nil || class != access.Permanent || rc.Changed() {
			t.Fatalf("invalid group: %+v, %v", rc, err)
		}
	})
	t.Run("membership deleted meanwhile", func(t *testing.T) {
		f := newFake(t)
		c := build(t, f, newState(), -1)
		rc := grantOK(t, c, grant("AR-1", params))
		f.setHook(func(w http.ResponseWriter, r *http.Request) bool {
			if r.Method == http.MethodDelete {
				zerr(w, http.StatusNotFound, `{"error":"RecordNotFound","description":"Not found"}`)
				return true
			}
			return false
		})
		revokeWith(t, c, grant("AR-1", params), rc)
	})
}

func TestUnknownAndNonAgentUsers(t *testing.T) {
	f, st := newFake(t), newState()
	c := build(t, f, st, -1)
	for _, email := range []string{"nobody@example.com", "customer@example.com"} {
		g := leadGrant("AR-1")
		g.User.Email = email
		rc, err := c.Grant(t.Context(), g)
		if class, _ := access.Classify(err); err == nil || class != access.Permanent || !strings.Contains(err.Error(), email) || rc.Changed() {
			t.Errorf("grant for %s: %+v, %v", email, rc, err)
		}
		if email == "nobody@example.com" && !errors.Is(err, access.ErrUnknownUser) {
			t.Errorf("unknown person: %v does not wrap ErrUnknownUser", err)
		}
	}
	// Revoke by receipt for a user deleted since the grant: done, record
	// forgotten.
	rc := grantOK(t, c, leadGrant("AR-2"))
	f.deleteUser(1001)
	revokeWith(t, c, leadGrant("AR-2"), rc)
	if got := st.keys(); len(got) != 0 {
		t.Fatalf("state = %v, want empty", got)
	}
}

func TestRateLimitAndServerErrorsThenSuccess(t *testing.T) {
	f, st := newFake(t), newState()
	c := build(t, f, st, 3)
	g := grant("AR-1", map[string]string{"custom_role_id": strconv.Itoa(roleLead), "group_id": strconv.Itoa(groupBilling)})
	f.FailNext(http.StatusTooManyRequests, http.StatusInternalServerError, http.StatusTooManyRequests)
	rc := grantOK(t, c, g)
	f.FailNext(http.StatusServiceUnavailable, http.StatusTooManyRequests)
	revokeWith(t, c, g, rc)
	if f.roleOf(1001) != roleStaff || f.member(1001, groupBilling) {
		t.Fatal("wrong end state")
	}
}

func TestRateLimitBeyondCapIsRetryableWithHint(t *testing.T) {
	f := newFake(t)
	c := build(t, f, newState(), 2)
	f.setHook(func(w http.ResponseWriter, r *http.Request) bool {
		w.Header().Set("Retry-After", "120")
		zerr(w, http.StatusTooManyRequests, `{"error":"APIRateLimitExceeded"}`)
		return true
	})
	_, err := c.Grant(t.Context(), leadGrant("AR-1"))
	class, ra := access.Classify(err)
	if err == nil || class != access.Retryable || ra != 2*time.Minute {
		t.Fatalf("got %v, %v, %v; want retryable after 2m", err, class, ra)
	}
}

func TestExpiredTokenIsPermanentAndNotLeaked(t *testing.T) {
	f := newFake(t)
	c := build(t, f, newState(), 2)
	f.mu.Lock()
	f.token = "rotated"
	f.mu.Unlock()
	_, err := c.Grant(t.Context(), leadGrant("AR-1"))
	if class, _ := access.Classify(err); err == nil || class != access.Permanent {
		t.Fatalf("grant with a rejected token: %v", err)
	}
	basic := base64.StdEncoding.EncodeToString([]byte(testEmail + "/token:" + testToken))
	if strings.Contains(err.Error(), testToken) || strings.Contains(err.Error(), basic) || !strings.Contains(err.Error(), "credentials") {
		t.Fatalf("error: %v", err)
	}
}

func TestGrantParameters(t *testing.T) {
	f := newFake(t)
	c := build(t, f, newState(), -1)
	for _, tt := range []struct {
		params map[string]string
		want   string
	}{
		{nil, "grant parameter custom_role_id: required (or group_id"},
		{map[string]string{"custom_role_id": "lead"}, "custom_role_id: must be a positive integer"},
		{map[string]string{"group_id": "-3"}, "group_id: must be a positive integer"},
	} {
		_, err := c.Grant(t.Context(), grant("AR-1", tt.params))
		if class, _ := access.Classify(err); err == nil || class != access.Permanent || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("params %v: %v", tt.params, err)
		}
	}
	if f.Count("") != 0 {
		t.Fatal("requests sent for bad parameters")
	}
}

func TestConfig(t *testing.T) {
	reg := connectors.NewRegistry()
	reg.Add(zendesk.Type, zendesk.Factory)
	ok := map[string]any{"subdomain": "acme", "email": testEmail, "api_token": testToken}
	with := func(kv ...any) map[string]any {
		m := maps.Clone(ok)
		for i := 0; i < len(kv); i += 2 {
			if kv[i+1] == nil {
				delete(m, kv[i].(string))
			} else {
				m[kv[i].(string)] = kv[i+1]
			}
		}
		return m
	}
	for _, tt := range []struct {
		name  string
		raw   map[string]any
		state connectors.State
		want  string
	}{
		{"ok", ok, newState(), ""},
		{"no state", ok, nil, "connectors.support: built without durable state"},
		{"no subdomain", with("subdomain", nil), newState(), "connectors.support.subdomain: required"},
		{"host as subdomain", with("subdomain", "acme.zendesk.com"), newState(), "connectors.support.subdomain: must be the bare subdomain"},
		{"both", with("base_url", "https://help.acme.example/api/v2"), newState(), "set only one"},
		{"no email", with("email", nil), newState(), "connectors.support.email: required"},
		{"no token", with("api_token", nil), newState(), "connectors.support.api_token: required"},
		{"typo", with("api_tokn", "x"), newState(), `did you mean "api_token"?`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := reg.Build("support", zendesk.Type, tt.raw, connectors.Env{State: tt.state})
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want %q", err, tt.want)
			}
			if strings.Contains(err.Error(), testToken) {
				t.Fatalf("error leaks the token: %v", err)
			}
		})
	}
}
