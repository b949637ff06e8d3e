package metabase_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/connectors"
	"github.com/accessbot/accessbot/connectors/conformance"
	"github.com/accessbot/accessbot/connectors/connectortest"
	"github.com/accessbot/accessbot/connectors/metabase"
)

const testKey = "mb_TESTKEYabcdefghijklmnopqrstuvwxyz0123456789"

// fakeMetabase is an httptest Metabase written from the API reference
// (https://www.metabase.com/docs/latest/api/user,
// https://www.metabase.com/docs/latest/api/permissions) and its source
// (src/metabase/api/permissions.clj, src/metabase/models/
// permissions_group_membership.clj): x-api-key auth answering 401
// "Unauthenticated" as text; GET /api/user with query and status,
// answering {"data":[…]} (or a bare array when legacy is set); GET
// /api/user/:id and /api/permissions/group/:id with 404 "Not found."; the
// membership map; POST answering the group's members; DELETE answering
// 204, or 404 "Not found." for an unknown membership. As in Metabase, the
// POST checks neither duplicates nor the group: both fail in the database
// (unique and foreign key constraints) and surface as a 500. The All Users
// group (1) refuses joins and leaves with 400, and the last administrator
// cannot leave the Administrators group (2).
type fakeMetabase struct {
	connectortest.Faults // requests seen, failures to answer next

	t      *testing.T
	srv    *httptest.Server
	mu     sync.Mutex
	key    string
	users  []fakeUser
	groups map[int]bool
	// members: membership ID → (user, group)
	members map[int][2]int
	nextID  int
	legacy  bool
	// hook, when set, sees every request first; true means it answered.
	// It runs without f.mu held.
	hook func(w http.ResponseWriter, r *http.Request) bool
}

type fakeUser struct {
	ID                 int
	Email, First, Last string
	Active             bool
}

func newFake(t *testing.T) *fakeMetabase {
	f := &fakeMetabase{
		t: t, key: testKey,
		users: []fakeUser{
			{ID: 1, Email: "admin@example.com", First: "Ad", Last: "Min", Active: true},
			{ID: 7, Email: "alice@example.com", First: "Alice", Last: "Liddell", Active: true},
			{ID: 8, Email: "malice@example.com", First: "Mal", Last: "Ice", Active: true},
			{ID: 9, Email: "gone@example.com", First: "Gone", Last: "Away", Active: false},
		},
		groups:  map[int]bool{1: true, 2: true, 5: true, 6: true},
		members: map[int][2]int{1: {1, 1}, 2: {1, 2}, 3: {7, 1}, 4: {8, 5}},
		nextID:  100,
	}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeMetabase) serve(w http.ResponseWriter, r *http.Request) {
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
		if status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable {
			w.Header().Set("Retry-After", "0")
		}
		w.WriteHeader(status)
		fmt.Fprintf(w, `{"message":"injected %d"}`, status)
		return
	}
	if r.Header.Get("x-api-key") != f.key {
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprint(w, "Unauthenticated")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	text := func(status int, msg string) {
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(status)
		fmt.Fprint(w, msg)
	}
	switch {
	case r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/api/user/"):
		id, _ := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/api/user/"))
		for _, u := range f.users {
			if u.ID == id {
				json.NewEncoder(w).Encode(map[string]any{"id": u.ID, "email": u.Email, "first_name": u.First, "last_name": u.Last, "is_active": u.Active})
				return
			}
		}
		text(http.StatusNotFound, "Not found.")
	case r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/api/permissions/group/"):
		id, _ := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/api/permissions/group/"))
		if !f.groups[id] {
			text(http.StatusNotFound, "Not found.")
			return
		}
		json.NewEncoder(w).Encode(map[string]any{"id": id, "name": fmt.Sprintf("Group %d", id), "members": []any{}})
	case r.Method == http.MethodGet && r.URL.Path == "/api/user":
		q := strings.ToLower(r.URL.Query().Get("query"))
		status := r.URL.Query().Get("status")
		data := []map[string]any{}
		for _, u := range f.users {
			if !u.Active && status != "all" && status != "deactivated" || u.Active && status == "deactivated" {
				continue
			}
			if q != "" && !strings.Contains(strings.ToLower(u.Email+" "+u.First+" "+u.Last), q) {
				continue
			}
			data = append(data, map[string]any{"id": u.ID, "email": u.Email, "first_name": u.First, "last_name": u.Last, "is_active": u.Active})
		}
		if f.legacy {
			json.NewEncoder(w).Encode(data)
			return
		}
		json.NewEncoder(w).Encode(map[string]any{"data": data, "total": len(data), "limit": nil, "offset": nil})
	case r.Method == http.MethodGet && r.URL.Path == "/api/permissions/membership":
		out := map[string][]map[string]any{}
		for id, m := range f.members {
			k := strconv.Itoa(m[0])
			out[k] = append(out[k], map[string]any{"membership_id": id, "group_id": m[1], "user_id": m[0], "is_group_manager": false})
		}
		json.NewEncoder(w).Encode(out)
	case r.Method == http.MethodPost && r.URL.Path == "/api/permissions/membership":
		var body struct {
			GroupID int `json:"group_id"`
			UserID  int `json:"user_id"`
		}
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil || body.GroupID == 0 || body.UserID == 0 {
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprint(w, `{"errors":{"group_id":"value must be an integer greater than zero."}}`)
			return
		}
		if body.GroupID == 1 {
			text(http.StatusBadRequest, "You cannot add or remove users to/from the 'All Users' group.")
			return
		}
		if !f.groups[body.GroupID] || !f.userExists(body.UserID) {
			// No check in the endpoint: the foreign key fails.
			w.WriteHeader(http.StatusInternalServerError)
			fmt.Fprint(w, `{"message":"ERROR: insert or update on table \"permissions_group_membership\" violates foreign key constraint"}`)
			return
		}
		for _, m := range f.members {
			if m == [2]int{body.UserID, body.GroupID} {
				// A unique constraint violation surfaces as a 500.
				w.WriteHeader(http.StatusInternalServerError)
				fmt.Fprint(w, `{"message":"ERROR: duplicate key value violates unique constraint \"unique_permissions_group_membership_user_id_group_id\""}`)
				return
			}
		}
		f.nextID++
		f.members[f.nextID] = [2]int{body.UserID, body.GroupID}
		var out []map[string]any
		for id, m := range f.members {
			if m[1] == body.GroupID {
				out = append(out, map[string]any{"membership_id": id, "user_id": m[0], "is_group_manager": false})
			}
		}
		json.NewEncoder(w).Encode(out)
	case r.Method == http.MethodDelete && strings.HasPrefix(r.URL.Path, "/api/permissions/membership/"):
		id, err := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/api/permissions/membership/"))
		m, ok := f.members[id]
		if err != nil || !ok {
			text(http.StatusNotFound, "Not found.")
			return
		}
		if m[1] == 1 {
			text(http.StatusBadRequest, "You cannot add or remove users to/from the 'All Users' group.")
			return
		}
		if m[1] == 2 {
			admins := 0
			for _, o := range f.members {
				if o[1] == 2 {
					admins++
				}
			}
			if admins <= 1 {
				text(http.StatusBadRequest, "You cannot remove the last member of the 'Admin' group!")
				return
			}
		}
		delete(f.members, id)
		w.WriteHeader(http.StatusNoContent)
	default:
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprint(w, `"API endpoint does not exist."`)
	}
}

func (f *fakeMetabase) userExists(id int) bool {
	return slices.ContainsFunc(f.users, func(u fakeUser) bool { return u.ID == id })
}

func (f *fakeMetabase) has(userID, group int) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, m := range f.members {
		if m == [2]int{userID, group} {
			return true
		}
	}
	return false
}

func (f *fakeMetabase) add(userID, group int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.nextID++
	f.members[f.nextID] = [2]int{userID, group}
}

// deactivate deactivates a user, as Metabase's DELETE /api/user/:id does:
// the user and their memberships stay.
func (f *fakeMetabase) deactivate(id int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := range f.users {
		if f.users[i].ID == id {
			f.users[i].Active = false
		}
	}
}

func (f *fakeMetabase) rename(id int, email string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := range f.users {
		if f.users[i].ID == id {
			f.users[i].Email = email
		}
	}
}

func (f *fakeMetabase) setHook(h func(w http.ResponseWriter, r *http.Request) bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.hook = h
}

func build(t *testing.T, f *fakeMetabase, retryMax int) access.Connector {
	t.Helper()
	reg := connectors.NewRegistry()
	reg.Add(metabase.Type, metabase.Factory)
	c, err := reg.Build("bi", metabase.Type, map[string]any{
		"type": metabase.Type, "url": f.srv.URL + "/", "api_key": testKey, "timeout": "5s",
	}, connectors.Env{HTTP: connectortest.FastHTTP(retryMax), State: &connectortest.State{}})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func aliceGrant() access.Grant {
	return access.Grant{
		ID: "AR-7", System: "metabase", Role: "analyst",
		Params: map[string]string{"group_id": "5"},
		User:   access.Person{SlackID: "U0ALICE01", Email: "Alice@Example.com", Name: "Alice"},
	}
}

func TestConformance(t *testing.T) {
	var cur *fakeMetabase
	conformance.Run(t, conformance.Harness{
		New: func(t *testing.T) access.Connector {
			cur = newFake(t)
			return build(t, cur, -1)
		},
		Grant:     func(*testing.T) access.Grant { return aliceGrant() },
		HasAccess: func(_ *testing.T, g access.Grant) bool { return cur.has(7, 5) },
		UnknownUser: func(*testing.T) access.Grant {
			g := aliceGrant()
			g.User = access.Person{SlackID: "U0NOBODY1", Email: "nobody@example.com", Name: "Nobody"}
			return g
		},
		FailNext:     func(_ *testing.T, status int) { cur.FailNext(status) },
		TargetUserID: func(*testing.T, access.Grant) string { return "7" },
		ChangeEmail: func(*testing.T, access.Grant) string {
			cur.rename(7, "alice.smith@example.com")
			return "alice.smith@example.com"
		},
		PreGrant: func(*testing.T, access.Grant) { cur.add(7, 5) },
		// Metabase never deletes users: "deleting" deactivates, and the
		// membership stays until the revoke removes it.
		DeleteUser: func(*testing.T, access.Grant) { cur.deactivate(7) },
	})
}

func TestGrantAlreadyMemberDoesNotPost(t *testing.T) {
	f := newFake(t)
	f.add(7, 5)
	c := build(t, f, -1)
	if _, err := c.Grant(t.Context(), aliceGrant()); err != nil {
		t.Fatal(err)
	}
	if n := f.Count("POST"); n != 0 {
		t.Fatalf("%d POSTs for a member, want 0", n)
	}
}

func TestGrantKeepsOtherMemberships(t *testing.T) {
	f := newFake(t)
	c := build(t, f, -1)
	g := aliceGrant()
	if _, err := c.Grant(t.Context(), g); err != nil {
		t.Fatal(err)
	}
	if err := c.Revoke(t.Context(), g); err != nil {
		t.Fatal(err)
	}
	if !f.has(7, 1) || !f.has(8, 5) {
		t.Fatal("grant/revoke touched another membership")
	}
}

func TestRevokeAbsentMakesNoDelete(t *testing.T) {
	f := newFake(t)
	c := build(t, f, -1)
	if err := c.Revoke(t.Context(), aliceGrant()); err != nil {
		t.Fatal(err)
	}
	// A record without a receipt whose email nobody has: never "done".
	g := aliceGrant()
	g.User.Email = "nobody@example.com"
	err := c.Revoke(t.Context(), g)
	if class, _ := access.Classify(err); class != access.Permanent || !errors.Is(err, access.ErrUnknownUser) {
		t.Fatalf("legacy revoke of an unknown email = %v, want permanent ErrUnknownUser", err)
	}
	if n := f.Count("DELETE"); n != 0 {
		t.Fatalf("%d DELETEs, want 0", n)
	}
}

func TestRevokeDeactivatedUser(t *testing.T) {
	f := newFake(t)
	f.add(9, 5)
	c := build(t, f, -1)
	g := aliceGrant()
	g.User.Email = "gone@example.com"
	if err := c.Revoke(t.Context(), g); err != nil {
		t.Fatal(err)
	}
	if f.has(9, 5) {
		t.Fatal("membership of a deactivated user survived revoke (reactivation would restore access)")
	}
	// Grant to a deactivated user is refused: they cannot use it.
	_, err := c.Grant(t.Context(), g)
	if class, _ := access.Classify(err); err == nil || class != access.Permanent {
		t.Fatalf("grant to a deactivated user: %v", err)
	}
}

func TestRevokeMembershipAlreadyDeleted(t *testing.T) {
	// The membership disappears between the listing and the DELETE.
	f := newFake(t)
	f.add(7, 5)
	c := build(t, f, -1)
	var once sync.Once
	f.setHook(func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method == http.MethodDelete {
			once.Do(func() {
				f.mu.Lock()
				for id, m := range f.members {
					if m == [2]int{7, 5} {
						delete(f.members, id)
					}
				}
				f.mu.Unlock()
			})
		}
		return false
	})
	if err := c.Revoke(t.Context(), aliceGrant()); err != nil {
		t.Fatalf("404 on DELETE must be done: %v", err)
	}
}

func TestExactEmailMatch(t *testing.T) {
	// "alice@example.com" is a substring of "malice@example.com"; only the
	// exact address counts, in either order of the results.
	f := newFake(t)
	c := build(t, f, -1)
	if _, err := c.Grant(t.Context(), aliceGrant()); err != nil {
		t.Fatal(err)
	}
	if !f.has(7, 5) {
		t.Fatal("alice not added")
	}
	g := aliceGrant()
	g.ID, g.User.Email = "AR-8", "ice@example.com"
	_, err := c.Grant(t.Context(), g)
	if class, _ := access.Classify(err); err == nil || class != access.Permanent || !strings.Contains(err.Error(), "ice@example.com") {
		t.Fatalf("partial match accepted or unclear error: %v", err)
	}
}

func TestLegacyUserListShape(t *testing.T) {
	f := newFake(t)
	f.legacy = true
	c := build(t, f, -1)
	if _, err := c.Grant(t.Context(), aliceGrant()); err != nil {
		t.Fatal(err)
	}
	if !f.has(7, 5) {
		t.Fatal("not added with the bare-array user list")
	}
}

func TestTransientThenSuccess(t *testing.T) {
	f := newFake(t)
	c := build(t, f, 3)
	f.FailNext(http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable)
	if _, err := c.Grant(t.Context(), aliceGrant()); err != nil {
		t.Fatalf("grant after 429, 502, 503: %v", err)
	}
	if !f.has(7, 5) {
		t.Fatal("not added")
	}
	f.FailNext(http.StatusInternalServerError)
	if err := c.Revoke(t.Context(), aliceGrant()); err != nil {
		t.Fatalf("revoke after 500: %v", err)
	}
	if f.has(7, 5) {
		t.Fatal("not removed")
	}
}

func TestPostFailureIsRetryableAndNotRepeated(t *testing.T) {
	// A POST is not idempotent: the inner loop does not repeat it, the
	// failure is retryable and the next Grant finds the state afresh.
	f := newFake(t)
	c := build(t, f, 3)
	f.setHook(func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method == http.MethodPost && f.Count("POST") == 0 {
			f.Note("POST (failed)")
			w.WriteHeader(http.StatusBadGateway)
			return true
		}
		return false
	})
	_, err := c.Grant(t.Context(), aliceGrant())
	if class, _ := access.Classify(err); err == nil || class != access.Retryable {
		t.Fatalf("grant with a failed POST: %v", err)
	}
	if _, err := c.Grant(t.Context(), aliceGrant()); err != nil {
		t.Fatal(err)
	}
	if !f.has(7, 5) {
		t.Fatal("not added")
	}
}

func TestConcurrentAddCountsAsDone(t *testing.T) {
	// Someone adds the membership between our check and our POST: the
	// POST fails (unique constraint, a 500) and a second look finds it.
	f := newFake(t)
	c := build(t, f, -1)
	f.setHook(func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method == http.MethodPost {
			f.setHook(nil)
			f.add(7, 5)
		}
		return false
	})
	if _, err := c.Grant(t.Context(), aliceGrant()); err != nil {
		t.Fatal(err)
	}
}

func TestRejectedKeyIsPermanentAndNotLeaked(t *testing.T) {
	f := newFake(t)
	c := build(t, f, 2)
	f.mu.Lock()
	f.key = "rotated"
	f.mu.Unlock()
	for _, call := range []func() error{
		func() error { return connectortest.ErrOf(c.Grant(t.Context(), aliceGrant())) },
		func() error { return c.Revoke(t.Context(), aliceGrant()) },
	} {
		err := call()
		if class, _ := access.Classify(err); err == nil || class != access.Permanent {
			t.Fatalf("with a rejected key: %v", err)
		}
		if !strings.Contains(err.Error(), "credentials") || strings.Contains(err.Error(), testKey) {
			t.Fatalf("error should blame the credentials without showing them: %v", err)
		}
	}
	if n := f.Count("GET"); n != 2 {
		t.Fatalf("%d requests, want 2 (a 401 is not retried)", n)
	}
}

func TestGrantParameters(t *testing.T) {
	f := newFake(t)
	c := build(t, f, -1)
	tests := []struct {
		name   string
		params map[string]string
		want   string
	}{
		{"missing", nil, "group_id: required"},
		{"not a number", map[string]string{"group_id": "analysts"}, "group_id: must be a positive integer"},
		{"zero", map[string]string{"group_id": "0"}, "group_id: must be a positive integer"},
		{"all users", map[string]string{"group_id": "1"}, `group_id: 1 is the "All Users" group`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := aliceGrant()
			g.Params = tt.params
			for _, err := range []error{connectortest.ErrOf(c.Grant(t.Context(), g)), c.Revoke(t.Context(), g)} {
				if class, _ := access.Classify(err); err == nil || class != access.Permanent || !strings.Contains(err.Error(), tt.want) {
					t.Errorf("got %v, want permanent %q", err, tt.want)
				}
			}
		})
	}
	if n := len(f.Calls()); n != 0 {
		t.Fatalf("%d requests for bad parameters, want 0", n)
	}
}

func TestConfig(t *testing.T) {
	keyFile := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(keyFile, []byte(testKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	reg := connectors.NewRegistry()
	reg.Add(metabase.Type, metabase.Factory)
	tests := []struct {
		name    string
		raw     map[string]any
		wantErr []string
	}{
		{"ok", map[string]any{"url": "https://mb.example.com", "api_key": testKey}, nil},
		{"key file", map[string]any{"url": "https://mb.example.com", "api_key_file": keyFile}, nil},
		{"missing url", map[string]any{"api_key": testKey}, []string{"connectors.bi.url: required"}},
		{"bad url", map[string]any{"url": "mb.example.com", "api_key": testKey}, []string{"connectors.bi.url: must be"}},
		{"missing key", map[string]any{"url": "https://mb.example.com"}, []string{"connectors.bi.api_key: required"}},
		{"both keys", map[string]any{"url": "https://mb.example.com", "api_key": testKey, "api_key_file": keyFile}, []string{"set only one"}},
		{"typo", map[string]any{"url": "https://mb.example.com", "apikey": testKey}, []string{`connectors.bi.apikey: unknown key; did you mean "api_key"?`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := reg.Build("bi", metabase.Type, tt.raw, connectors.Env{State: &connectortest.State{}})
			if len(tt.wantErr) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if strings.Contains(err.Error(), testKey) {
				t.Errorf("error leaks the key: %v", err)
			}
		})
	}
}

func mbData(t *testing.T, rc access.Receipt) metabase.Data {
	t.Helper()
	var d metabase.Data
	if err := json.Unmarshal(rc.Data, &d); err != nil {
		t.Fatalf("receipt data %s: %v", rc.Data, err)
	}
	return d
}

func TestReceiptAndRevokeByMembershipID(t *testing.T) {
	f := newFake(t)
	c := build(t, f, -1)
	g := aliceGrant()
	rc, err := c.Grant(t.Context(), g)
	if err != nil {
		t.Fatal(err)
	}
	d := mbData(t, rc)
	if rc.UserID != "7" || rc.PreExisting || d.GroupID != 5 || d.MembershipID == 0 {
		t.Fatalf("receipt = %+v (%s)", rc, rc.Data)
	}
	f.rename(7, "alice.smith@example.com")
	gets := f.Count("GET")
	g.Receipt = &rc
	if err := c.Revoke(t.Context(), g); err != nil {
		t.Fatal(err)
	}
	if f.has(7, 5) {
		t.Fatal("membership left")
	}
	if n := f.Count("GET") - gets; n != 0 {
		t.Fatalf("revoke by receipt made %d lookups", n)
	}
	if f.Count("DELETE /api/permissions/membership/"+strconv.Itoa(d.MembershipID)) != 1 {
		t.Fatalf("calls %v: want the DELETE of membership %d", f.Calls(), d.MembershipID)
	}
}

func TestUnknownGroupIsPermanent(t *testing.T) {
	// Metabase's POST would fail with a 500 (foreign key): the connector
	// checks the group first and says what is wrong.
	f := newFake(t)
	c := build(t, f, 2)
	g := aliceGrant()
	g.Params = map[string]string{"group_id": "42"}
	rc, err := c.Grant(t.Context(), g)
	if class, _ := access.Classify(err); err == nil || class != access.Permanent || !strings.Contains(err.Error(), "no group 42") || rc.Changed() {
		t.Fatalf("grant to an unknown group = %+v, %v", rc, err)
	}
	if n := f.Count("POST"); n != 0 {
		t.Fatalf("%d POSTs", n)
	}
}

func TestLastAdminIsPermanent(t *testing.T) {
	// Revoking the only administrator's admin membership is refused.
	f := newFake(t)
	c := build(t, f, -1)
	g := aliceGrant()
	g.Params = map[string]string{"group_id": "2"}
	g.User.Email = "admin@example.com"
	err := c.Revoke(t.Context(), g)
	if class, _ := access.Classify(err); err == nil || class != access.Permanent || !strings.Contains(err.Error(), "last member") {
		t.Fatalf("revoke of the last admin = %v", err)
	}
}

func TestLostCreateAnswer(t *testing.T) {
	f := newFake(t)
	c := build(t, f, -1)
	f.setHook(func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method == http.MethodPost {
			f.setHook(nil)
			f.add(7, 5) // applied, answer lost
			w.WriteHeader(http.StatusGatewayTimeout)
			return true
		}
		return false
	})
	rc, err := c.Grant(t.Context(), aliceGrant())
	if err != nil || rc.PreExisting || mbData(t, rc).MembershipID == 0 {
		t.Fatalf("grant with a lost answer = %+v, %v; the membership found is this grant's", rc, err)
	}
}
