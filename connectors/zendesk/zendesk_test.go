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
// "email:…"; PUT users/{id}.json validating custom_role_id (422
// RecordInvalid); group memberships with 201, 204, 404 RecordNotFound and
// 422 RecordInvalid/DuplicateValue; 429 with Retry-After.
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
		if cr := body.User.CustomRoleID; cr != nil {
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
	if u.CustomRoleID != 0 {
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
		name   string
		params map[string]string
		has    func(f *fakeZendesk) bool
	}{
		{"role and group", map[string]string{"custom_role_id": strconv.Itoa(roleLead), "group_id": strconv.Itoa(groupBilling)},
			func(f *fakeZendesk) bool { return f.roleOf(1001) == roleLead && f.member(1001, groupBilling) }},
		{"role", map[string]string{"custom_role_id": strconv.Itoa(roleLead)},
			func(f *fakeZendesk) bool { return f.roleOf(1001) == roleLead }},
		{"group", map[string]string{"group_id": strconv.Itoa(groupBilling)},
			func(f *fakeZendesk) bool { return f.member(1001, groupBilling) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var cur *fakeZendesk
			conformance.Run(t, conformance.Harness{
				New: func(t *testing.T) access.Connector {
					cur = newFake(t)
					return build(t, cur, newState(), -1)
				},
				Grant:     func(*testing.T) access.Grant { return grant("AR-1", tc.params) },
				HasAccess: func(*testing.T, access.Grant) bool { return tc.has(cur) },
				UnknownUser: func(*testing.T) access.Grant {
					g := grant("AR-1", tc.params)
					g.User = access.Person{SlackID: "U0NOBODY1", Email: "nobody@example.com", Name: "Nobody"}
					return g
				},
				FailNext: func(_ *testing.T, status int) { cur.FailNext(status) },
			})
		})
	}
}

func TestPreviousRoleRestored(t *testing.T) {
	f, st := newFake(t), newState()
	c := build(t, f, st, -1)
	mustOK(t, connectortest.ErrOf(c.Grant(t.Context(), leadGrant("AR-1"))))
	if got := f.roleOf(1001); got != roleLead {
		t.Fatalf("role after grant = %d, want %d", got, roleLead)
	}
	if got := st.keys(); !slices.Contains(got, "prev-role/AR-1") {
		t.Fatalf("state after grant = %v, want prev-role/AR-1", got)
	}
	mustOK(t, c.Revoke(t.Context(), leadGrant("AR-1")))
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
	mustOK(t, c.Revoke(t.Context(), leadGrant("AR-1")))
	if got := f.roleOf(1001); got != roleByHand {
		t.Fatalf("a repeated revoke changed the role to %d", got)
	}
}

func TestPreviousRoleSurvivesRestart(t *testing.T) {
	f, st := newFake(t), newState()
	mustOK(t, connectortest.ErrOf(build(t, f, st, -1).Grant(t.Context(), leadGrant("AR-1"))))
	// A new process: a new connector instance over the same durable state.
	mustOK(t, build(t, f, st, -1).Revoke(t.Context(), leadGrant("AR-1")))
	if got := f.roleOf(1001); got != roleStaff {
		t.Fatalf("role after revoke in a new instance = %d, want %d", got, roleStaff)
	}
}

func TestRoleChangedByHandIsLeftAlone(t *testing.T) {
	f, st := newFake(t), newState()
	c := build(t, f, st, -1)
	mustOK(t, connectortest.ErrOf(c.Grant(t.Context(), leadGrant("AR-1"))))
	f.setRole(1001, roleByHand)
	puts := f.Count("PUT")
	mustOK(t, c.Revoke(t.Context(), leadGrant("AR-1")))
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

func TestRoleAlreadyHeld(t *testing.T) {
	// The agent had the role before accessbot: no change at grant, and
	// revoke leaves it (it was theirs).
	f, st := newFake(t), newState()
	f.setRole(1001, roleLead)
	c := build(t, f, st, -1)
	mustOK(t, connectortest.ErrOf(c.Grant(t.Context(), leadGrant("AR-1"))))
	mustOK(t, c.Revoke(t.Context(), leadGrant("AR-1")))
	if n := f.Count("PUT"); n != 0 {
		t.Fatalf("%d PUTs, want 0", n)
	}
	if got := f.roleOf(1001); got != roleLead {
		t.Fatalf("role = %d, want %d", got, roleLead)
	}
}

func TestGrantRetryKeepsTruePreviousRole(t *testing.T) {
	// The PUT failed after the record was written; the retry must not
	// record the (unchanged) role again, nor, after a success it did not
	// see, the temporary role as the previous one.
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
	if _, err := c.Grant(t.Context(), leadGrant("AR-1")); err == nil {
		t.Fatal("grant with a lost answer returned nil")
	}
	mustOK(t, connectortest.ErrOf(c.Grant(t.Context(), leadGrant("AR-1"))))
	mustOK(t, c.Revoke(t.Context(), leadGrant("AR-1")))
	if got := f.roleOf(1001); got != roleStaff {
		t.Fatalf("role after revoke = %d, want %d", got, roleStaff)
	}
}

func TestOverlappingGrantsOfOneRole(t *testing.T) {
	// accessbot sends one revoke, for the grant that ends last; it must
	// restore the role from before the first grant.
	f, st := newFake(t), newState()
	c := build(t, f, st, -1)
	mustOK(t, connectortest.ErrOf(c.Grant(t.Context(), leadGrant("AR-1"))))
	mustOK(t, connectortest.ErrOf(c.Grant(t.Context(), leadGrant("AR-2"))))
	mustOK(t, c.Revoke(t.Context(), leadGrant("AR-2")))
	if got := f.roleOf(1001); got != roleStaff {
		t.Fatalf("role after the last revoke = %d, want %d", got, roleStaff)
	}
}

func TestSecondTemporaryRoleRefused(t *testing.T) {
	f, st := newFake(t), newState()
	c := build(t, f, st, -1)
	mustOK(t, connectortest.ErrOf(c.Grant(t.Context(), leadGrant("AR-1"))))
	_, err := c.Grant(t.Context(), grant("AR-2", map[string]string{"custom_role_id": strconv.Itoa(roleBilling)}))
	if class, _ := access.Classify(err); err == nil || class != access.Permanent || !strings.Contains(err.Error(), "AR-1") {
		t.Fatalf("second temporary role: %v", err)
	}
	if got := f.roleOf(1001); got != roleLead {
		t.Fatalf("role = %d, want %d", got, roleLead)
	}
	if slices.Contains(st.keys(), "prev-role/AR-2") {
		t.Fatal("refused grant left a record")
	}
	mustOK(t, c.Revoke(t.Context(), leadGrant("AR-1")))
	if got := f.roleOf(1001); got != roleStaff {
		t.Fatalf("role = %d, want %d", got, roleStaff)
	}
}

func TestStateWriteFailureChangesNothing(t *testing.T) {
	f, st := newFake(t), newState()
	st.failPut = true
	c := build(t, f, st, -1)
	_, err := c.Grant(t.Context(), leadGrant("AR-1"))
	if class, _ := access.Classify(err); err == nil || class != access.Retryable {
		t.Fatalf("grant with failing state: %v", err)
	}
	if got := f.roleOf(1001); got != roleStaff || f.Count("PUT") != 0 {
		t.Fatalf("role changed to %d although the previous role could not be stored", got)
	}
}

func TestGroupMembership(t *testing.T) {
	params := map[string]string{"group_id": strconv.Itoa(groupBilling)}
	t.Run("other memberships survive", func(t *testing.T) {
		f := newFake(t)
		c := build(t, f, newState(), -1)
		mustOK(t, connectortest.ErrOf(c.Grant(t.Context(), grant("AR-1", params))))
		mustOK(t, c.Revoke(t.Context(), grant("AR-1", params)))
		if !f.member(1001, groupTier1) || !f.member(1002, groupBilling) || f.member(1001, groupBilling) {
			t.Fatal("memberships wrong after grant and revoke")
		}
	})
	t.Run("already a member", func(t *testing.T) {
		f := newFake(t)
		f.addMember(1001, groupBilling)
		c := build(t, f, newState(), -1)
		mustOK(t, connectortest.ErrOf(c.Grant(t.Context(), grant("AR-1", params))))
		if n := f.Count("POST"); n != 0 {
			t.Fatalf("%d POSTs, want 0", n)
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
		mustOK(t, connectortest.ErrOf(c.Grant(t.Context(), grant("AR-1", params))))
		if f.Count("POST") != 1 {
			t.Fatal("no POST")
		}
	})
	t.Run("invalid group is permanent", func(t *testing.T) {
		f := newFake(t)
		c := build(t, f, newState(), -1)
		_, err := c.Grant(t.Context(), grant("AR-1", map[string]string{"group_id": "999"}))
		if class, _ := access.Classify(err); err == nil || class != access.Permanent {
			t.Fatalf("invalid group: %v", err)
		}
	})
	t.Run("membership deleted meanwhile", func(t *testing.T) {
		f := newFake(t)
		c := build(t, f, newState(), -1)
		mustOK(t, connectortest.ErrOf(c.Grant(t.Context(), grant("AR-1", params))))
		f.setHook(func(w http.ResponseWriter, r *http.Request) bool {
			if r.Method == http.MethodDelete {
				zerr(w, http.StatusNotFound, `{"error":"RecordNotFound","description":"Not found"}`)
				return true
			}
			return false
		})
		mustOK(t, c.Revoke(t.Context(), grant("AR-1", params)))
	})
}

func TestUnknownAndNonAgentUsers(t *testing.T) {
	f, st := newFake(t), newState()
	c := build(t, f, st, -1)
	for _, email := range []string{"nobody@example.com", "customer@example.com"} {
		g := leadGrant("AR-1")
		g.User.Email = email
		_, err := c.Grant(t.Context(), g)
		if class, _ := access.Classify(err); err == nil || class != access.Permanent || !strings.Contains(err.Error(), email) {
			t.Errorf("grant for %s: %v", email, err)
		}
	}
	// Revoke for a user deleted since the grant: done, record forgotten.
	mustOK(t, connectortest.ErrOf(c.Grant(t.Context(), leadGrant("AR-2"))))
	f.mu.Lock()
	delete(f.users, 1001)
	f.mu.Unlock()
	mustOK(t, c.Revoke(t.Context(), leadGrant("AR-2")))
	if got := st.keys(); len(got) != 0 {
		t.Fatalf("state = %v, want empty", got)
	}
}

func TestRateLimitAndServerErrorsThenSuccess(t *testing.T) {
	f, st := newFake(t), newState()
	c := build(t, f, st, 3)
	g := grant("AR-1", map[string]string{"custom_role_id": strconv.Itoa(roleLead), "group_id": strconv.Itoa(groupBilling)})
	f.FailNext(http.StatusTooManyRequests, http.StatusInternalServerError, http.StatusTooManyRequests)
	mustOK(t, connectortest.ErrOf(c.Grant(t.Context(), g)))
	f.FailNext(http.StatusServiceUnavailable, http.StatusTooManyRequests)
	mustOK(t, c.Revoke(t.Context(), g))
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
		{"no state", ok, nil, "connectors.support: the zendesk connector needs durable state"},
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
