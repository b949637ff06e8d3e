package scim_test

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

	lib "github.com/elimity-com/scim"
	scimerrors "github.com/elimity-com/scim/errors"
	"github.com/elimity-com/scim/optional"
	"github.com/elimity-com/scim/schema"
	filter "github.com/scim2/filter-parser/v2"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/connectors"
	"github.com/accessbot/accessbot/connectors/conformance"
	"github.com/accessbot/accessbot/connectors/connectortest"
	"github.com/accessbot/accessbot/connectors/scim"
)

const bearer = "scim-test-token-0123456789abcdefghij"

// service is a real SCIM 2.0 service built with github.com/elimity-com/scim:
// the library parses and validates filters and PATCH requests against the
// RFC 7643 User and Group schemas; the handlers below store users and
// groups in memory and really apply the PATCH operations. A thin
// middleware in front adds what the library leaves to the application:
// bearer authentication and injected faults (rate limiting, outages).
type service struct {
	connectortest.Faults // requests seen, failures to answer next

	srv *httptest.Server

	mu     sync.Mutex
	users  map[string]lib.ResourceAttributes
	groups map[string][]string // group id → member ids
	// conflictOnDuplicate answers 409 uniqueness to adding a present
	// member; noTargetOnAbsent answers 400 noTarget to removing an absent
	// one (both allowed readings of RFC 7644 §3.5.2).
	conflictOnDuplicate bool
	noTargetOnAbsent    bool
	down                bool // every request answers 503
}

// enterprise is the RFC 7643 §4.3 extension's key in a User.
const enterprise = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"

func emails(addr string) []any { return []any{map[string]any{"value": addr, "primary": true}} }

func newService(t *testing.T) *service {
	s := &service{
		users: map[string]lib.ResourceAttributes{
			// alice's manager is carol (enterprise extension, by id);
			// carol has none; dave is deactivated (active: false).
			"2819c223-alice": {"userName": "alice@example.com", "emails": emails("alice@example.com"), "active": true,
				enterprise: map[string]any{"manager": map[string]any{"value": "2819c223-carol", "displayName": "Carol"}}},
			"2819c223-bob":   {"userName": "bob", "emails": []any{map[string]any{"value": "bob@example.com"}}},
			"2819c223-carol": {"userName": "carol@example.com", "emails": emails("carol@example.com"), "active": true},
			"2819c223-dave": {"userName": "dave@example.com", "emails": emails("dave@example.com"), "active": false,
				enterprise: map[string]any{"manager": map[string]any{"value": "2819c223-carol"}}},
		},
		groups: map[string][]string{"e9e30dba-eng": {"2819c223-bob"}},
	}
	server, err := lib.NewServer(&lib.ServerArgs{
		ServiceProviderConfig: &lib.ServiceProviderConfig{SupportFiltering: true, SupportPatch: true, MaxResults: 50},
		ResourceTypes: []lib.ResourceType{
			{ID: optional.NewString("User"), Name: "User", Endpoint: "/Users", Schema: schema.CoreUserSchema(), Handler: userHandler{s},
				SchemaExtensions: []lib.SchemaExtension{{Schema: schema.ExtensionEnterpriseUser()}}},
			{ID: optional.NewString("Group"), Name: "Group", Endpoint: "/Groups", Schema: schema.CoreGroupSchema(), Handler: groupHandler{s}},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/scim/", s.middleware(http.StripPrefix("/scim", server)))
	s.srv = httptest.NewServer(mux)
	t.Cleanup(s.srv.Close)
	return s
}

func scimErr(w http.ResponseWriter, status int, scimType, detail string) {
	w.Header().Set("Content-Type", "application/scim+json")
	w.WriteHeader(status)
	body := map[string]any{"schemas": []string{scim.ErrorSchema}, "status": strconv.Itoa(status), "detail": detail}
	if scimType != "" {
		body["scimType"] = scimType
	}
	json.NewEncoder(w).Encode(body)
}

func (s *service) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.Record(r)
		if r.Header.Get("Authorization") != "Bearer "+bearer {
			s.mu.Unlock()
			w.Header().Set("WWW-Authenticate", `Bearer realm="scim", error="invalid_token"`)
			scimErr(w, http.StatusUnauthorized, "", "Authentication failed: the token is expired or invalid.")
			return
		}
		status, ok := s.Take()
		if s.down {
			status, ok = http.StatusServiceUnavailable, true
		}
		if ok {
			s.mu.Unlock()
			if status == http.StatusTooManyRequests {
				w.Header().Set("Retry-After", "42")
			}
			scimErr(w, status, "", "injected "+http.StatusText(status))
			return
		}
		s.mu.Unlock()
		next.ServeHTTP(w, r)
	})
}

type userHandler struct{ s *service }

func (h userHandler) GetAll(r *http.Request, p lib.ListRequestParams) (lib.Page, error) {
	h.s.mu.Lock()
	defer h.s.mu.Unlock()
	ids := make([]string, 0, len(h.s.users))
	for id := range h.s.users {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	var all []lib.Resource
	for _, id := range ids {
		attrs := h.s.users[id]
		if p.FilterValidator != nil {
			withID := lib.ResourceAttributes{"id": id}
			for k, v := range attrs {
				withID[k] = v
			}
			if p.FilterValidator.PassesFilter(withID) != nil {
				continue
			}
		}
		all = append(all, lib.Resource{ID: id, Attributes: attrs})
	}
	start := max(p.StartIndex, 1) - 1
	end := min(start+p.Count, len(all))
	page := lib.Page{TotalResults: len(all), Resources: []lib.Resource{}}
	if start < end {
		page.Resources = all[start:end]
	}
	return page, nil
}

func (h userHandler) Get(r *http.Request, id string) (lib.Resource, error) {
	h.s.mu.Lock()
	defer h.s.mu.Unlock()
	a, ok := h.s.users[id]
	if !ok {
		return lib.Resource{}, scimerrors.ScimErrorResourceNotFound(id)
	}
	return lib.Resource{ID: id, Attributes: a}, nil
}

func (userHandler) Create(*http.Request, lib.ResourceAttributes) (lib.Resource, error) {
	return lib.Resource{}, scimerrors.ScimErrorBadRequest("read-only in this test")
}
func (userHandler) Replace(*http.Request, string, lib.ResourceAttributes) (lib.Resource, error) {
	return lib.Resource{}, scimerrors.ScimErrorBadRequest("read-only in this test")
}
func (userHandler) Delete(*http.Request, string) error {
	return scimerrors.ScimErrorBadRequest("read-only in this test")
}
func (userHandler) Patch(*http.Request, string, []lib.PatchOperation) (lib.Resource, error) {
	return lib.Resource{}, scimerrors.ScimErrorBadRequest("read-only in this test")
}

type groupHandler struct{ s *service }

func (h groupHandler) resource(id string) lib.Resource {
	members := []any{}
	for _, m := range h.s.groups[id] {
		members = append(members, map[string]any{"value": m, "type": "User"})
	}
	return lib.Resource{ID: id, Attributes: lib.ResourceAttributes{"displayName": id, "members": members}}
}

func (h groupHandler) Get(r *http.Request, id string) (lib.Resource, error) {
	h.s.mu.Lock()
	defer h.s.mu.Unlock()
	if _, ok := h.s.groups[id]; !ok {
		return lib.Resource{}, scimerrors.ScimErrorResourceNotFound(id)
	}
	return h.resource(id), nil
}

func (h groupHandler) GetAll(r *http.Request, p lib.ListRequestParams) (lib.Page, error) {
	return lib.Page{Resources: []lib.Resource{}}, nil
}

// Patch applies "add" to members and "remove" of members[value eq "…"]
// (RFC 7644 §3.5.2.1, §3.5.2.2). An empty Resource makes the library
// answer 204 (nothing changed), else 200 with the group.
func (h groupHandler) Patch(r *http.Request, id string, ops []lib.PatchOperation) (lib.Resource, error) {
	h.s.mu.Lock()
	defer h.s.mu.Unlock()
	cur, ok := h.s.groups[id]
	if !ok {
		return lib.Resource{}, scimerrors.ScimErrorResourceNotFound(id)
	}
	changed := false
	for _, op := range ops {
		if op.Path == nil || op.Path.AttributePath.AttributeName != "members" {
			return lib.Resource{}, scimerrors.ScimErrorInvalidPath
		}
		switch op.Op {
		case lib.PatchOperationAdd:
			values, _ := op.Value.([]any)
			for _, v := range values {
				m, _ := v.(map[string]any)
				uid, _ := m["value"].(string)
				if _, ok := h.s.users[uid]; !ok {
					return lib.Resource{}, scimerrors.ScimErrorBadRequest("member " + uid + " does not exist")
				}
				if slices.Contains(cur, uid) {
					if h.s.conflictOnDuplicate {
						return lib.Resource{}, scimerrors.ScimErrorUniqueness
					}
					continue
				}
				cur = append(cur, uid)
				changed = true
			}
		case lib.PatchOperationRemove:
			expr, ok := op.Path.ValueExpression.(*filter.AttributeExpression)
			if !ok || expr.AttributePath.AttributeName != "value" || expr.Operator != filter.EQ {
				return lib.Resource{}, scimerrors.ScimErrorInvalidFilter
			}
			uid, _ := expr.CompareValue.(string)
			i := slices.Index(cur, uid)
			if i < 0 {
				if h.s.noTargetOnAbsent {
					return lib.Resource{}, scimerrors.ScimErrorNoTarget
				}
				continue
			}
			cur = slices.Delete(cur, i, i+1)
			changed = true
		default:
			return lib.Resource{}, scimerrors.ScimErrorInvalidValue
		}
	}
	h.s.groups[id] = cur
	if !changed {
		return lib.Resource{}, nil
	}
	return h.resource(id), nil
}

func (groupHandler) Create(*http.Request, lib.ResourceAttributes) (lib.Resource, error) {
	return lib.Resource{}, scimerrors.ScimErrorBadRequest("not in this test")
}
func (groupHandler) Replace(*http.Request, string, lib.ResourceAttributes) (lib.Resource, error) {
	return lib.Resource{}, scimerrors.ScimErrorBadRequest("not in this test")
}
func (groupHandler) Delete(*http.Request, string) error {
	return scimerrors.ScimErrorBadRequest("not in this test")
}

func (s *service) isMember(gid, uid string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Contains(s.groups[gid], uid)
}

func (s *service) edit(fn func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fn()
}

// rename changes a user's userName and email, keeping their id.
func (s *service) rename(id, email string) {
	s.edit(func() {
		s.users[id]["userName"] = email
		s.users[id]["emails"] = emails(email)
	})
}

// deleteUser deletes a User (RFC 7644 §3.6); the service drops their
// group memberships with them.
func (s *service) deleteUser(id string) {
	s.edit(func() {
		delete(s.users, id)
		for g, m := range s.groups {
			s.groups[g] = slices.DeleteFunc(m, func(x string) bool { return x == id })
		}
	})
}

var clock = connectortest.NewClock(time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC))

func build(t *testing.T, raw map[string]any, doer connectors.Doer) (access.Connector, error) {
	return connectortest.Build(t, scim.Type, scim.Factory, "app", raw, connectors.Env{HTTP: doer, Clock: clock, State: &connectortest.State{}})
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
		ID: "AR-7", System: "app", Role: "eng",
		Params: map[string]string{"group_id": "e9e30dba-eng"},
		User:   access.Person{SlackID: "U0ALICE01", Email: "alice@example.com", Name: "Alice"},
	}
}

func nobody() access.Grant {
	g := aliceGrant()
	g.User = access.Person{SlackID: "U0NOBODY1", Email: "nobody@example.com", Name: "Nobody"}
	return g
}

func TestConformance(t *testing.T) {
	for _, attr := range []string{"userName", "emails"} {
		t.Run(attr, func(t *testing.T) {
			var cur *service
			conformance.Run(t, conformance.Harness{
				New: func(t *testing.T) access.Connector {
					cur = newService(t)
					return mustBuild(t, map[string]any{"type": scim.Type, "base_url": cur.srv.URL + "/scim/v2", "token": bearer, "user_attribute": attr}, connectortest.FastHTTPShortRetryAfter(-1))
				},
				Grant:        func(t *testing.T) access.Grant { return aliceGrant() },
				HasAccess:    func(t *testing.T, g access.Grant) bool { return cur.isMember(g.Params["group_id"], "2819c223-alice") },
				UnknownUser:  func(t *testing.T) access.Grant { return nobody() },
				FailNext:     func(t *testing.T, status int) { cur.FailNext(status) },
				TargetUserID: func(t *testing.T, g access.Grant) string { return "2819c223-alice" },
				ChangeEmail: func(t *testing.T, g access.Grant) string {
					cur.rename("2819c223-alice", "alice.married@example.com")
					return "alice.married@example.com"
				},
				PreGrant: func(t *testing.T, g access.Grant) {
					cur.edit(func() { cur.groups["e9e30dba-eng"] = append(cur.groups["e9e30dba-eng"], "2819c223-alice") })
				},
				DeleteUser: func(t *testing.T, g access.Grant) { cur.deleteUser("2819c223-alice") },
			})
		})
	}
}

func TestIdentity(t *testing.T) {
	person := func(name string) access.Person {
		return access.Person{SlackID: "U0" + strings.ToUpper(name), Email: name + "@example.com", Name: name}
	}
	for _, attr := range []string{"userName", "emails"} {
		t.Run(attr, func(t *testing.T) {
			var cur *service
			conformance.RunIdentity(t, conformance.IdentityHarness{
				New: func(t *testing.T) access.Connector {
					cur = newService(t)
					return mustBuild(t, map[string]any{"base_url": cur.srv.URL + "/scim/v2", "token": bearer, "user_attribute": attr}, connectortest.FastHTTPShortRetryAfter(-1))
				},
				Managed: person("alice"), ManagerEmail: "carol@example.com",
				Unmanaged: person("carol"), Inactive: person("dave"), Unknown: person("nobody"),
				Outage: func(t *testing.T) { cur.edit(func() { cur.down = true }) },
			})
		})
	}
}

func classOf(t *testing.T, err error) (access.ErrorClass, time.Duration) {
	t.Helper()
	var ce *access.ConnectorError
	if !errors.As(err, &ce) {
		t.Fatalf("unclassified error: %v", err)
	}
	return access.Classify(err)
}

func TestProtocolCases(t *testing.T) {
	ctx := t.Context()
	setup := func(t *testing.T, retryMax int) (*service, access.Connector) {
		s := newService(t)
		return s, mustBuild(t, map[string]any{"base_url": s.srv.URL + "/scim/v2/", "token": bearer}, connectortest.FastHTTPShortRetryAfter(retryMax))
	}

	t.Run("Success", func(t *testing.T) {
		s, c := setup(t, -1)
		r, err := c.Grant(ctx, aliceGrant())
		if err != nil {
			t.Fatal(err)
		}
		if r.UserID != "2819c223-alice" || r.PreExisting {
			t.Fatalf("receipt %+v", r)
		}
		if !s.isMember("e9e30dba-eng", "2819c223-alice") || !s.isMember("e9e30dba-eng", "2819c223-bob") {
			t.Fatal("add did not apply, or replaced the other members")
		}
		g := aliceGrant()
		g.Receipt = &r
		if err := c.Revoke(ctx, g); err != nil {
			t.Fatal(err)
		}
		if s.isMember("e9e30dba-eng", "2819c223-alice") || !s.isMember("e9e30dba-eng", "2819c223-bob") {
			t.Fatal("remove did not apply, or removed others")
		}
		if n := s.Count("GET /scim/v2/Users"); n != 1 {
			t.Fatalf("%d user lookups, want 1 (the revoke acts on the receipt)", n)
		}
		if n := s.Count("PATCH /scim/v2/Groups/e9e30dba-eng"); n != 2 {
			t.Fatalf("%d PATCHes, want 2", n)
		}
	})

	for _, conflict := range []bool{false, true} {
		t.Run(fmt.Sprintf("AlreadyMember/conflict=%v", conflict), func(t *testing.T) {
			s, c := setup(t, -1)
			s.conflictOnDuplicate = conflict
			s.groups["e9e30dba-eng"] = append(s.groups["e9e30dba-eng"], "2819c223-alice")
			r, err := c.Grant(ctx, aliceGrant())
			if err != nil || !r.PreExisting {
				t.Fatalf("receipt %+v, %v", r, err)
			}
			// A repeat of a grant whose first answer was lost meets the
			// duplicate: with 409 uniqueness the membership is checked.
			s.groups["e9e30dba-eng"] = nil
			g := aliceGrant()
			g.ID = "AR-8"
			if _, err := c.Grant(ctx, g); err != nil {
				t.Fatal(err)
			}
			if _, err := c.Grant(ctx, g); err != nil {
				t.Fatalf("repeat: %v", err)
			}
			if !s.isMember("e9e30dba-eng", "2819c223-alice") {
				t.Fatal("not a member")
			}
		})
	}

	for _, noTarget := range []bool{false, true} {
		t.Run(fmt.Sprintf("NotAMemberOnRemove/noTarget=%v", noTarget), func(t *testing.T) {
			s, c := setup(t, -1)
			s.noTargetOnAbsent = noTarget
			if err := c.Revoke(ctx, aliceGrant()); err != nil {
				t.Fatal(err)
			}
		})
	}

	t.Run("GroupGone", func(t *testing.T) {
		_, c := setup(t, -1)
		g := aliceGrant()
		g.Params["group_id"] = "missing"
		_, err := c.Grant(ctx, g)
		if class, _ := classOf(t, err); class != access.Permanent || !strings.Contains(err.Error(), `"missing"`) {
			t.Fatalf("class %v: %v", class, err)
		}
		if err := c.Revoke(ctx, g); err != nil {
			t.Fatalf("revoke from a group that is gone: %v", err)
		}
	})

	t.Run("UserNotFound", func(t *testing.T) {
		_, c := setup(t, -1)
		_, err := c.Grant(ctx, nobody())
		if class, _ := classOf(t, err); class != access.Permanent {
			t.Fatalf("class %v: %v", class, err)
		}
		if !errors.Is(err, access.ErrUnknownUser) || !strings.Contains(err.Error(), "nobody@example.com") ||
			!strings.Contains(err.Error(), "SCIM") || !strings.Contains(err.Error(), "U0NOBODY1") {
			t.Fatalf("error does not name the person and the system: %v", err)
		}
		if err := c.Revoke(ctx, nobody()); err == nil {
			t.Fatal("revoke for an unknown person faked as done")
		}
	})

	t.Run("MissingParameter", func(t *testing.T) {
		_, c := setup(t, -1)
		g := aliceGrant()
		delete(g.Params, "group_id")
		err := c.Revoke(ctx, g)
		if class, _ := classOf(t, err); class != access.Permanent || !strings.Contains(err.Error(), "group_id") {
			t.Fatalf("class %v: %v", class, err)
		}
	})

	t.Run("RateLimited", func(t *testing.T) {
		s, c := setup(t, -1)
		s.FailNext(http.StatusTooManyRequests)
		_, err := c.Grant(ctx, aliceGrant())
		if class, ra := classOf(t, err); class != access.Retryable || ra != 42*time.Second {
			t.Fatalf("class %v retry after %v: %v", class, ra, err)
		}
	})

	t.Run("ServerErrorThenSuccess", func(t *testing.T) {
		s, c := setup(t, 2)
		// The lookup succeeds, then the PATCH meets a 502 and a 503 and is
		// retried (its Idempotency-Key allows that).
		if _, err := c.(access.Checker).Check(ctx, aliceGrant()); err != nil {
			t.Fatal(err)
		}
		s.FailNext(http.StatusBadGateway, http.StatusServiceUnavailable)
		if _, err := c.Grant(ctx, aliceGrant()); err != nil {
			t.Fatal(err)
		}
		if !s.isMember("e9e30dba-eng", "2819c223-alice") {
			t.Fatal("not a member")
		}
	})

	t.Run("ExpiredToken", func(t *testing.T) {
		s := newService(t)
		c := mustBuild(t, map[string]any{"base_url": s.srv.URL + "/scim/v2", "token": "EXPIREDTOKENVALUE"}, connectortest.FastHTTPShortRetryAfter(2))
		_, err := c.Grant(ctx, aliceGrant())
		if class, _ := classOf(t, err); class != access.Permanent || !strings.Contains(err.Error(), "credentials") {
			t.Fatalf("class %v: %v", class, err)
		}
		if strings.Contains(err.Error(), "EXPIREDTOKENVALUE") {
			t.Fatalf("error leaks the token: %v", err)
		}
		if s.Count("GET") != 1 {
			t.Fatal("401 was retried")
		}
	})
}

func TestConfigErrors(t *testing.T) {
	cases := []struct {
		name string
		raw  map[string]any
		want []string
	}{
		{"empty", map[string]any{}, []string{"connectors.app.base_url: required", "connectors.app.token: required"}},
		{"http", map[string]any{"base_url": "http://app.example.com/scim/v2", "token": "x"}, []string{"connectors.app.base_url: must be an https:// URL"}},
		{"attr", map[string]any{"base_url": "https://app.example.com/scim/v2", "token": "x", "user_attribute": "mail"}, []string{"connectors.app.user_attribute: must be"}},
		{"typo", map[string]any{"base_url": "https://app.example.com/scim/v2", "token": "x", "group_id": "g"}, []string{"connectors.app.group_id: unknown key"}},
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
