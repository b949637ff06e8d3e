package salesforce_test

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/connectors"
	"github.com/accessbot/accessbot/connectors/conformance"
	"github.com/accessbot/accessbot/connectors/connectortest"
	"github.com/accessbot/accessbot/connectors/salesforce"
)

const (
	testClientID = "3MVG9consumerKey"
	testUsername = "accessbot@acme.example"
	apiPrefix    = "/services/data/v62.0"
)

var testKey, testKeyPEM = func() (*rsa.PrivateKey, string) {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	b := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)})
	return k, string(b)
}()

// fakeSalesforce is an httptest Salesforce org written from the OAuth JWT
// bearer flow and REST API documentation (see the package doc): the token
// endpoint verifies the RS256 assertion (iss, sub, exp ≤ 3 min) and its
// audience, which must be one string, https://login.salesforce.com for a
// production org, https://test.salesforce.com for a sandbox, or one of the
// org's Experience Cloud sites, else 400 {"error":"invalid_grant",
// "error_description":"audience is invalid"} (help page
// xcloud.remoteaccess_oauth_jwt_flow.htm; omniphx/forrest#302 shows the
// answer to a My Domain audience); it answers access_token + instance_url.
// A sandbox's usernames carry the sandbox suffix and its emails end in
// ".invalid" ("Sandbox Setup Considerations"). REST errors are arrays of
// {message, errorCode, fields}; an org without API access answers every
// REST call 403 API_DISABLED_FOR_ORG; a small SOQL evaluator (SELECT … FROM
// … WHERE F = 'lit' AND …) honours backslash escapes and rejects a
// malformed literal with MALFORMED_QUERY. Users are never deleted in
// Salesforce, only deactivated, and keep their assignments.
type fakeSalesforce struct {
	srv   *httptest.Server
	clock *connectortest.Clock
	mu    sync.Mutex

	sandbox     bool     // usernames carry ".uat", emails ".invalid"
	communities []string // Experience Cloud site URLs, valid audiences
	apiDisabled bool     // the edition has no API access

	tokens        map[string]bool
	nextTok       int
	rejectExpiry  bool // the org refuses ExpirationDate on create
	users         []map[string]any
	permSets      []map[string]any
	groups        []map[string]any
	assignments   map[string]*assignment
	nextID        int
	fail          []failure
	calls         []string
	expiryRefused int
	hook          func(w http.ResponseWriter, r *http.Request) bool
}

type assignment struct {
	Assignee, PermSet, Group string
	Expiration               *time.Time
}

type failure struct {
	status int
	body   string
}

func newFake(t *testing.T, clock *connectortest.Clock) *fakeSalesforce {
	f := &fakeSalesforce{
		clock: clock, tokens: map[string]bool{},
		users: []map[string]any{
			{"Id": "005000000000001AAA", "Username": "alice@example.com", "Email": "alice@example.com", "IsActive": true},
			{"Id": "005000000000002AAA", "Username": "o'brien@example.com", "Email": "o'brien@example.com", "IsActive": true},
			{"Id": "005000000000003AAA", "Username": "old@example.com", "Email": "old@example.com", "IsActive": false},
			{"Id": "005000000000004AAA", "Username": "twin1@example.com", "Email": "twin@example.com", "IsActive": true},
			{"Id": "005000000000005AAA", "Username": "twin2@example.com", "Email": "twin@example.com", "IsActive": true},
		},
		permSets: []map[string]any{
			{"Id": "0PS000000000001AAA", "Name": "Sales_Ops"},
			{"Id": "0PS000000000002AAA", "Name": "Reports_Admin"},
		},
		groups:      []map[string]any{{"Id": "0PG000000000001AAA", "DeveloperName": "Support_Lead"}},
		assignments: map[string]*assignment{},
	}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

// newSandbox is newFake for a sandbox named uat: usernames get ".uat",
// emails ".invalid", as a sandbox copy of production does.
func newSandbox(t *testing.T, clock *connectortest.Clock) *fakeSalesforce {
	f := newFake(t, clock)
	f.sandbox = true
	for _, u := range f.users {
		u["Username"] = u["Username"].(string) + ".uat"
		u["Email"] = u["Email"].(string) + ".invalid"
	}
	return f
}

// rename changes a user's username and email, as when the person's email
// changes and the org uses emails as usernames.
func (f *fakeSalesforce) rename(id, email string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, u := range f.users {
		if u["Id"] == id {
			u["Username"], u["Email"] = email, email
		}
	}
}

// deactivate deactivates a user (Salesforce never deletes users); their
// assignments stay.
func (f *fakeSalesforce) deactivate(id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, u := range f.users {
		if u["Id"] == id {
			u["IsActive"] = false
		}
	}
}

func sfErr(w http.ResponseWriter, status int, code, msg string, fields ...string) {
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.WriteHeader(status)
	if fields == nil {
		fields = []string{}
	}
	json.NewEncoder(w).Encode([]map[string]any{{"message": msg, "errorCode": code, "fields": fields}})
}

func (f *fakeSalesforce) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	hook := f.hook
	f.mu.Unlock()
	if hook != nil && hook(w, r) {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, r.Method+" "+r.URL.Path)
	if len(f.fail) > 0 {
		fl := f.fail[0]
		f.fail = f.fail[1:]
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(fl.status)
		fmt.Fprint(w, fl.body)
		return
	}
	if r.URL.Path == "/services/oauth2/token" {
		f.token(w, r)
		return
	}
	tok, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !f.tokens[tok] {
		sfErr(w, http.StatusUnauthorized, "INVALID_SESSION_ID", "Session expired or invalid")
		return
	}
	path, ok := strings.CutPrefix(r.URL.Path, apiPrefix)
	if !ok {
		sfErr(w, http.StatusNotFound, "NOT_FOUND", "The requested resource does not exist")
		return
	}
	if f.apiDisabled {
		sfErr(w, http.StatusForbidden, "API_DISABLED_FOR_ORG", "The REST API is not enabled for this Organization.")
		return
	}
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	switch {
	case r.Method == http.MethodGet && path == "/query":
		f.query(w, r.URL.Query().Get("q"))
	case r.Method == http.MethodPost && path == "/sobjects/PermissionSetAssignment":
		var body map[string]any
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			sfErr(w, http.StatusBadRequest, "JSON_PARSER_ERROR", "Unexpected character")
			return
		}
		a := &assignment{}
		a.Assignee, _ = body["AssigneeId"].(string)
		a.PermSet, _ = body["PermissionSetId"].(string)
		a.Group, _ = body["PermissionSetGroupId"].(string)
		if exp, ok := body["ExpirationDate"].(string); ok {
			if f.rejectExpiry {
				f.expiryRefused++
				sfErr(w, http.StatusBadRequest, "FIELD_INTEGRITY_EXCEPTION", "You can't set an expiration date: the feature isn't enabled for your org.", "ExpirationDate")
				return
			}
			t, err := time.Parse("2006-01-02T15:04:05.000Z", exp)
			if err != nil {
				sfErr(w, http.StatusBadRequest, "INVALID_TYPE_ON_FIELD_IN_RECORD", "Expires On: value not of required type", "ExpirationDate")
				return
			}
			a.Expiration = &t
		}
		for _, e := range f.assignments {
			if e.Assignee == a.Assignee && e.PermSet == a.PermSet && e.Group == a.Group {
				sfErr(w, http.StatusBadRequest, "DUPLICATE_VALUE", "Duplicate PermissionSetAssignment. Assignee: "+a.Assignee)
				return
			}
		}
		f.nextID++
		id := fmt.Sprintf("0Pa%015d", f.nextID)
		f.assignments[id] = a
		w.WriteHeader(http.StatusCreated)
		json.NewEncoder(w).Encode(map[string]any{"id": id, "success": true, "errors": []any{}})
	case strings.HasPrefix(path, "/sobjects/PermissionSetAssignment/"):
		id := strings.TrimPrefix(path, "/sobjects/PermissionSetAssignment/")
		a := f.assignments[id]
		if a == nil {
			sfErr(w, http.StatusNotFound, "ENTITY_IS_DELETED", "entity is deleted")
			return
		}
		switch r.Method {
		case http.MethodDelete:
			delete(f.assignments, id)
		case http.MethodPatch:
			var body struct{ ExpirationDate string }
			json.NewDecoder(r.Body).Decode(&body)
			t, err := time.Parse("2006-01-02T15:04:05.000Z", body.ExpirationDate)
			if err != nil {
				sfErr(w, http.StatusBadRequest, "INVALID_TYPE_ON_FIELD_IN_RECORD", "bad date", "ExpirationDate")
				return
			}
			a.Expiration = &t
		default:
			sfErr(w, http.StatusMethodNotAllowed, "METHOD_NOT_ALLOWED", "HTTP Method not allowed")
			return
		}
		w.WriteHeader(http.StatusNoContent)
	default:
		sfErr(w, http.StatusNotFound, "NOT_FOUND", "The requested resource does not exist")
	}
}

func (f *fakeSalesforce) token(w http.ResponseWriter, r *http.Request) {
	deny := func(desc string) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		json.NewEncoder(w).Encode(map[string]string{"error": "invalid_grant", "error_description": desc})
	}
	if r.ParseForm() != nil || r.PostForm.Get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer" {
		deny("unsupported grant type")
		return
	}
	claims := jwt.MapClaims{}
	sub := testUsername
	if f.sandbox {
		sub += ".uat"
	}
	_, err := jwt.ParseWithClaims(r.PostForm.Get("assertion"), claims, func(*jwt.Token) (any, error) { return &testKey.PublicKey, nil },
		jwt.WithValidMethods([]string{"RS256"}), jwt.WithTimeFunc(f.clock.Now), jwt.WithExpirationRequired(),
		jwt.WithIssuer(testClientID))
	if err != nil {
		deny("invalid assertion")
		return
	}
	if exp, _ := claims.GetExpirationTime(); exp.Sub(f.clock.Now()) > 3*time.Minute {
		deny("expiration too far in the future")
		return
	}
	want := "https://login.salesforce.com"
	if f.sandbox {
		want = "https://test.salesforce.com"
	}
	if aud, ok := claims["aud"].(string); !ok || aud != want && !slices.Contains(f.communities, aud) {
		deny("audience is invalid")
		return
	}
	if s, _ := claims["sub"].(string); s != sub {
		deny("user hasn't approved this consumer")
		return
	}
	f.nextTok++
	tok := fmt.Sprintf("00D000000000001!tok%d", f.nextTok)
	f.tokens[tok] = true
	json.NewEncoder(w).Encode(map[string]any{
		"access_token": tok, "instance_url": f.srv.URL, "id": f.srv.URL + "/id/00D/005",
		"token_type": "Bearer", "scope": "api", "issued_at": "1700000000000", "signature": "x",
	})
}

var selectRE = regexp.MustCompile(`^SELECT ([A-Za-z, ]+) FROM (\w+) WHERE (.+)$`)

// query evaluates the SOQL subset the connector uses.
func (f *fakeSalesforce) query(w http.ResponseWriter, soql string) {
	m := selectRE.FindStringSubmatch(soql)
	if m == nil {
		sfErr(w, http.StatusBadRequest, "MALFORMED_QUERY", "unexpected token")
		return
	}
	conds, ok := parseConds(m[3])
	if !ok {
		sfErr(w, http.StatusBadRequest, "MALFORMED_QUERY", "unexpected token in WHERE")
		return
	}
	var rows []map[string]any
	switch m[2] {
	case "User":
		rows = f.users
	case "PermissionSet":
		rows = f.permSets
	case "PermissionSetGroup":
		rows = f.groups
	case "PermissionSetAssignment":
		for id, a := range f.assignments {
			row := map[string]any{"Id": id, "AssigneeId": a.Assignee, "PermissionSetId": a.PermSet, "PermissionSetGroupId": a.Group, "ExpirationDate": nil}
			if a.Expiration != nil {
				row["ExpirationDate"] = a.Expiration.Format("2006-01-02T15:04:05.000-0700")
			}
			rows = append(rows, row)
		}
	default:
		sfErr(w, http.StatusBadRequest, "INVALID_TYPE", "sObject type '"+m[2]+"' is not supported.")
		return
	}
	records := []map[string]any{}
	for _, row := range rows {
		match := true
		for k, v := range conds {
			if s, _ := row[k].(string); !strings.EqualFold(s, v) { // SOQL = is case-insensitive
				match = false
			}
		}
		if !match {
			continue
		}
		rec := map[string]any{"attributes": map[string]string{"type": m[2]}}
		for _, field := range strings.Split(m[1], ",") {
			field = strings.TrimSpace(field)
			v, ok := row[field]
			if !ok {
				sfErr(w, http.StatusBadRequest, "INVALID_FIELD", "No such column '"+field+"' on entity '"+m[2]+"'")
				return
			}
			rec[field] = v
		}
		records = append(records, rec)
	}
	json.NewEncoder(w).Encode(map[string]any{"totalSize": len(records), "done": true, "records": records})
}

// parseConds parses `F = 'lit' AND G = 'lit'`, unescaping literals.
func parseConds(s string) (map[string]string, bool) {
	out := map[string]string{}
	for {
		field, rest, ok := strings.Cut(s, " = '")
		if !ok || strings.ContainsAny(field, " '") {
			return nil, false
		}
		var lit strings.Builder
		i, closed := 0, false
		for i < len(rest) {
			c := rest[i]
			if c == '\\' && i+1 < len(rest) {
				switch n := rest[i+1]; n {
				case '\'', '"', '\\':
					lit.WriteByte(n)
				case 'n':
					lit.WriteByte('\n')
				default:
					return nil, false
				}
				i += 2
				continue
			}
			if c == '\'' {
				closed = true
				i++
				break
			}
			lit.WriteByte(c)
			i++
		}
		if !closed {
			return nil, false
		}
		out[field] = lit.String()
		rest = rest[i:]
		if rest == "" {
			return out, true
		}
		next, ok := strings.CutPrefix(rest, " AND ")
		if !ok {
			return nil, false
		}
		s = next
	}
}

func (f *fakeSalesforce) find(assignee, permSet, group string) *assignment {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, a := range f.assignments {
		if a.Assignee == assignee && a.PermSet == permSet && a.Group == group {
			c := *a
			return &c
		}
	}
	return nil
}

func (f *fakeSalesforce) add(a assignment) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.nextID++
	f.assignments[fmt.Sprintf("0Pa%015d", f.nextID)] = &a
}

func (f *fakeSalesforce) failNext(status int, body string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fail = append(f.fail, failure{status, body})
}

func (f *fakeSalesforce) setHook(h func(w http.ResponseWriter, r *http.Request) bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.hook = h
}

func (f *fakeSalesforce) count(prefix string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.calls {
		if strings.HasPrefix(c, prefix) {
			n++
		}
	}
	return n
}

func build(t *testing.T, f *fakeSalesforce, retryMax int, extra map[string]any) access.Connector {
	t.Helper()
	reg := connectors.NewRegistry()
	reg.Add(salesforce.Type, salesforce.Factory)
	raw := map[string]any{
		"type": salesforce.Type, "login_url": f.srv.URL, "client_id": testClientID, "username": testUsername,
		"private_key": testKeyPEM, "set_expiration": true,
	}
	for k, v := range extra {
		raw[k] = v
	}
	c, err := reg.Build("crm", salesforce.Type, raw, connectors.Env{HTTP: connectortest.FastHTTP(retryMax), Clock: f.clock, State: &connectortest.State{}})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

var now = time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)

func psGrant(id, permSet string) access.Grant {
	return access.Grant{
		ID: id, System: "salesforce", Role: "sales-ops", Params: map[string]string{"permission_set": permSet},
		User:      access.Person{SlackID: "U0ALICE01", Email: "alice@example.com", Name: "Alice"},
		GrantedAt: now, ExpiresAt: now.Add(2 * time.Hour),
	}
}

const alice, salesOps = "005000000000001AAA", "0PS000000000001AAA"

func mustOK(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		class, _ := access.Classify(err)
		t.Fatalf("%v (%v)", err, class)
	}
}

func TestConformance(t *testing.T) {
	var cur *fakeSalesforce
	conformance.Run(t, conformance.Harness{
		New: func(t *testing.T) access.Connector {
			cur = newFake(t, connectortest.NewClock(now))
			return build(t, cur, -1, nil)
		},
		Grant:     func(*testing.T) access.Grant { return psGrant("AR-1", "Sales_Ops") },
		HasAccess: func(*testing.T, access.Grant) bool { return cur.find(alice, salesOps, "") != nil },
		UnknownUser: func(*testing.T) access.Grant {
			g := psGrant("AR-1", "Sales_Ops")
			g.User = access.Person{SlackID: "U0NOBODY1", Email: "nobody@example.com", Name: "Nobody"}
			return g
		},
		FailNext: func(_ *testing.T, status int) {
			cur.failNext(status, fmt.Sprintf(`[{"message":"injected","errorCode":"INJECTED_%d","fields":[]}]`, status))
		},
		TargetUserID: func(*testing.T, access.Grant) string { return alice },
		ChangeEmail: func(*testing.T, access.Grant) string {
			cur.rename(alice, "alice.smith@example.com")
			return "alice.smith@example.com"
		},
		PreGrant: func(*testing.T, access.Grant) { cur.add(assignment{Assignee: alice, PermSet: salesOps}) },
		// Salesforce never deletes users; a deactivated one keeps the
		// assignment, which the revoke by receipt still removes.
		DeleteUser: func(*testing.T, access.Grant) { cur.deactivate(alice) },
	})
}

func TestExpirationSet(t *testing.T) {
	f := newFake(t, connectortest.NewClock(now))
	c := build(t, f, -1, nil)
	g := psGrant("AR-1", salesOps) // by Id: no PermissionSet query
	mustOK(t, connectortest.ErrOf(c.Grant(t.Context(), g)))
	a := f.find(alice, salesOps, "")
	if a == nil || a.Expiration == nil || !a.Expiration.Equal(g.ExpiresAt) {
		t.Fatalf("assignment %+v, want expiration %v", a, g.ExpiresAt)
	}
	// Without set_expiration no date is sent.
	f2 := newFake(t, connectortest.NewClock(now))
	mustOK(t, connectortest.ErrOf(build(t, f2, -1, map[string]any{"set_expiration": false}).Grant(t.Context(), g)))
	if a := f2.find(alice, salesOps, ""); a == nil || a.Expiration != nil {
		t.Fatalf("assignment %+v, want no expiration", a)
	}
}

func TestExpirationRejectedIsRemembered(t *testing.T) {
	f := newFake(t, connectortest.NewClock(now))
	f.rejectExpiry = true
	c := build(t, f, -1, nil)
	mustOK(t, connectortest.ErrOf(c.Grant(t.Context(), psGrant("AR-1", "Sales_Ops"))))
	if a := f.find(alice, salesOps, ""); a == nil || a.Expiration != nil {
		t.Fatalf("assignment %+v, want one without expiration", a)
	}
	mustOK(t, connectortest.ErrOf(c.Grant(t.Context(), psGrant("AR-2", "Reports_Admin"))))
	if f.find(alice, "0PS000000000002AAA", "") == nil {
		t.Fatal("second assignment missing")
	}
	if f.expiryRefused != 1 {
		t.Fatalf("ExpirationDate refused %d times, want 1 (remembered for the org)", f.expiryRefused)
	}
}

func TestOverlappingGrantMovesExpirationLater(t *testing.T) {
	f := newFake(t, connectortest.NewClock(now))
	c := build(t, f, -1, nil)
	g1 := psGrant("AR-1", "Sales_Ops")
	mustOK(t, connectortest.ErrOf(c.Grant(t.Context(), g1)))
	g2 := psGrant("AR-2", "Sales_Ops")
	g2.ExpiresAt = now.Add(8 * time.Hour)
	mustOK(t, connectortest.ErrOf(c.Grant(t.Context(), g2)))
	if a := f.find(alice, salesOps, ""); a.Expiration == nil || !a.Expiration.Equal(g2.ExpiresAt) {
		t.Fatalf("expiration %v, want %v", a.Expiration, g2.ExpiresAt)
	}
	patches := f.count("PATCH")
	mustOK(t, connectortest.ErrOf(c.Grant(t.Context(), g1))) // earlier: never moved back
	if f.count("PATCH") != patches {
		t.Fatal("expiration moved earlier")
	}
	// A permanent assignment (no expiration) is left alone.
	f2 := newFake(t, connectortest.NewClock(now))
	f2.add(assignment{Assignee: alice, PermSet: salesOps})
	mustOK(t, connectortest.ErrOf(build(t, f2, -1, nil).Grant(t.Context(), g1)))
	if a := f2.find(alice, salesOps, ""); a.Expiration != nil || f2.count("POST "+apiPrefix) != 0 || f2.count("PATCH") != 0 {
		t.Fatalf("permanent assignment changed: %+v", a)
	}
}

func TestDuplicateValueIsDone(t *testing.T) {
	f := newFake(t, connectortest.NewClock(now))
	c := build(t, f, -1, nil)
	f.setHook(func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/PermissionSetAssignment") {
			f.add(assignment{Assignee: alice, PermSet: salesOps}) // someone was quicker
		}
		return false
	})
	mustOK(t, connectortest.ErrOf(c.Grant(t.Context(), psGrant("AR-1", "Sales_Ops"))))
	if f.count("POST "+apiPrefix) != 1 {
		t.Fatal("no POST")
	}
}

func TestSOQLEscaping(t *testing.T) {
	f := newFake(t, connectortest.NewClock(now))
	c := build(t, f, -1, nil)
	g := psGrant("AR-1", "Sales_Ops")
	g.User.Email = "o'brien@example.com"
	mustOK(t, connectortest.ErrOf(c.Grant(t.Context(), g)))
	if f.find("005000000000002AAA", salesOps, "") == nil {
		t.Fatal("o'brien not assigned")
	}
	mustOK(t, c.Revoke(t.Context(), g))
	// A name trying to break out of the literal matches nothing.
	g = psGrant("AR-2", `x' OR Name != '`)
	_, err := c.Grant(t.Context(), g)
	if class, _ := access.Classify(err); err == nil || class != access.Permanent || !strings.Contains(err.Error(), "permission_set") {
		t.Fatalf("injection attempt: %v", err)
	}
}

func TestPermissionSetGroup(t *testing.T) {
	f := newFake(t, connectortest.NewClock(now))
	c := build(t, f, -1, nil)
	g := psGrant("AR-1", "")
	g.Params = map[string]string{"permission_set_group": "Support_Lead"}
	mustOK(t, connectortest.ErrOf(c.Grant(t.Context(), g)))
	if f.find(alice, "", "0PG000000000001AAA") == nil {
		t.Fatal("group not assigned")
	}
	mustOK(t, c.Revoke(t.Context(), g))
	if f.find(alice, "", "0PG000000000001AAA") != nil {
		t.Fatal("group assignment left")
	}
}

func TestRevokeAlreadyGone(t *testing.T) {
	f := newFake(t, connectortest.NewClock(now))
	c := build(t, f, -1, nil)
	mustOK(t, connectortest.ErrOf(c.Grant(t.Context(), psGrant("AR-1", "Sales_Ops"))))
	// Salesforce's expiration job removes it between our query and DELETE.
	f.setHook(func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method == http.MethodDelete {
			f.mu.Lock()
			clear(f.assignments)
			f.mu.Unlock()
		}
		return false
	})
	mustOK(t, c.Revoke(t.Context(), psGrant("AR-1", "Sales_Ops")))
	mustOK(t, c.Revoke(t.Context(), psGrant("AR-1", "Sales_Ops")))
	if n := f.count("DELETE"); n != 1 {
		t.Fatalf("%d DELETEs, want 1", n)
	}
	// A record without a receipt whose email nobody has: never "done".
	g := psGrant("AR-1", "Sales_Ops")
	g.User.Email = "nobody@example.com"
	err := c.Revoke(t.Context(), g)
	if class, _ := access.Classify(err); class != access.Permanent || !errors.Is(err, access.ErrUnknownUser) {
		t.Fatalf("legacy revoke of an unknown email = %v, want permanent ErrUnknownUser", err)
	}
}

func TestDeactivatedAndAmbiguousUsers(t *testing.T) {
	f := newFake(t, connectortest.NewClock(now))
	c := build(t, f, -1, map[string]any{"user_field": "Email"})
	for _, tc := range []struct{ email, want string }{
		{"old@example.com", "Salesforce user 005000000000003AAA (U0ALICE01 (old@example.com)) is deactivated"},
		{"twin@example.com", "2 Salesforce users"},
		{"nobody@example.com", `nobody with email "nobody@example.com" in Salesforce org`},
	} {
		g := psGrant("AR-1", "Sales_Ops")
		g.User.Email = tc.email
		_, err := c.Grant(t.Context(), g)
		if class, _ := access.Classify(err); err == nil || class != access.Permanent || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v", tc.email, err)
		}
	}
	// A deactivated user's assignment is still removed at revoke.
	f.add(assignment{Assignee: "005000000000003AAA", PermSet: salesOps})
	g := psGrant("AR-1", "Sales_Ops")
	g.User.Email = "old@example.com"
	mustOK(t, c.Revoke(t.Context(), g))
	if f.find("005000000000003AAA", salesOps, "") != nil {
		t.Fatal("deactivated user's assignment left")
	}
}

func TestSessionExpiredRefreshedOnce(t *testing.T) {
	f := newFake(t, connectortest.NewClock(now))
	c := build(t, f, -1, nil)
	mustOK(t, connectortest.ErrOf(c.Grant(t.Context(), psGrant("AR-1", "Sales_Ops"))))
	f.mu.Lock()
	clear(f.tokens) // sessions expire or are revoked
	f.mu.Unlock()
	mustOK(t, c.Revoke(t.Context(), psGrant("AR-1", "Sales_Ops")))
	if n := f.count("POST /services/oauth2/token"); n != 2 {
		t.Fatalf("%d token requests, want 2", n)
	}
	// Refused again after a fresh token: permanent, one refresh only.
	f.setHook(func(w http.ResponseWriter, r *http.Request) bool {
		if strings.HasPrefix(r.URL.Path, apiPrefix) {
			f.mu.Lock()
			f.calls = append(f.calls, "refused")
			f.mu.Unlock()
			sfErr(w, http.StatusUnauthorized, "INVALID_SESSION_ID", "Session expired or invalid")
			return true
		}
		return false
	})
	_, err := c.Grant(t.Context(), psGrant("AR-1", "Sales_Ops"))
	if class, _ := access.Classify(err); err == nil || class != access.Permanent || !strings.Contains(err.Error(), "INVALID_SESSION_ID") {
		t.Fatalf("refused session: %v", err)
	}
	if n := f.count("POST /services/oauth2/token"); n != 3 {
		t.Fatalf("%d token requests, want 3", n)
	}
}

func TestTokenRefusedIsPermanentAndNotLeaked(t *testing.T) {
	f := newFake(t, connectortest.NewClock(now))
	other, _ := rsa.GenerateKey(rand.Reader, 2048)
	otherPEM := string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(other)}))
	c := build(t, f, 2, map[string]any{"private_key": otherPEM})
	_, err := c.Grant(t.Context(), psGrant("AR-1", "Sales_Ops"))
	if class, _ := access.Classify(err); err == nil || class != access.Permanent || !strings.Contains(err.Error(), "invalid assertion") {
		t.Fatalf("refused JWT: %v", err)
	}
	if strings.Contains(err.Error(), "PRIVATE KEY") || strings.Contains(err.Error(), "eyJ") {
		t.Fatalf("error leaks the key or assertion: %v", err)
	}
}

func TestRequestLimitIsRetryable(t *testing.T) {
	f := newFake(t, connectortest.NewClock(now))
	c := build(t, f, 2, nil)
	if _, err := c.(access.Checker).Check(t.Context(), psGrant("AR-0", "Sales_Ops")); err != nil {
		t.Fatal(err)
	}
	f.failNext(http.StatusForbidden, `[{"message":"TotalRequests Limit exceeded.","errorCode":"REQUEST_LIMIT_EXCEEDED"}]`)
	_, err := c.Grant(t.Context(), psGrant("AR-1", "Sales_Ops"))
	if class, _ := access.Classify(err); err == nil || class != access.Retryable || !strings.Contains(err.Error(), "REQUEST_LIMIT_EXCEEDED") {
		t.Fatalf("request limit: %v", err)
	}
	mustOK(t, connectortest.ErrOf(c.Grant(t.Context(), psGrant("AR-1", "Sales_Ops"))))
}

func TestTransientThenSuccess(t *testing.T) {
	f := newFake(t, connectortest.NewClock(now))
	c := build(t, f, 3, nil)
	f.failNext(http.StatusServiceUnavailable, `[{"message":"Server unavailable","errorCode":"SERVER_UNAVAILABLE"}]`) // token
	f.failNext(http.StatusTooManyRequests, `[]`)
	f.failNext(http.StatusInternalServerError, `[{"message":"An unexpected error occurred","errorCode":"UNKNOWN_EXCEPTION"}]`)
	mustOK(t, connectortest.ErrOf(c.Grant(t.Context(), psGrant("AR-1", "Sales_Ops"))))
	f.failNext(http.StatusBadGateway, ``)
	mustOK(t, c.Revoke(t.Context(), psGrant("AR-1", "Sales_Ops")))
	if f.find(alice, salesOps, "") != nil {
		t.Fatal("assignment left")
	}
}

func TestGrantParameters(t *testing.T) {
	f := newFake(t, connectortest.NewClock(now))
	c := build(t, f, -1, nil)
	for _, tc := range []struct {
		params map[string]string
		want   string
	}{
		{nil, "grant parameter permission_set: required (or permission_set_group"},
		{map[string]string{"permission_set": "A", "permission_set_group": "B"}, "set only one"},
		{map[string]string{"permission_set": "No_Such_Set"}, `0 PermissionSet records named "No_Such_Set"`},
	} {
		g := psGrant("AR-1", "")
		g.Params = tc.params
		_, err := c.Grant(t.Context(), g)
		if class, _ := access.Classify(err); err == nil || class != access.Permanent || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v", tc.params, err)
		}
	}
}

func TestConfig(t *testing.T) {
	keyFile := filepath.Join(t.TempDir(), "key.pem")
	if err := os.WriteFile(keyFile, []byte(testKeyPEM), 0o600); err != nil {
		t.Fatal(err)
	}
	reg := connectors.NewRegistry()
	reg.Add(salesforce.Type, salesforce.Factory)
	base := func(kv ...any) map[string]any {
		m := map[string]any{"client_id": testClientID, "username": testUsername, "private_key_file": keyFile}
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
		name string
		raw  map[string]any
		want string
	}{
		{"ok", base(), ""},
		{"inline key, sandbox", base("private_key_file", nil, "private_key", testKeyPEM, "login_url", "https://test.salesforce.com", "api_version", "v60.0", "user_field", "Email"), ""},
		{"no client id", base("client_id", nil), "connectors.crm.client_id: required"},
		{"no username", base("username", nil), "connectors.crm.username: required"},
		{"no key", base("private_key_file", nil), "connectors.crm.private_key: required"},
		{"bad key", base("private_key_file", nil, "private_key", "-----BEGIN RSA PRIVATE KEY-----\nSECRETSTUFF\n-----END RSA PRIVATE KEY-----"), "connectors.crm.private_key: not a PEM RSA private key"},
		{"bad field", base("user_field", "FederationIdentifier"), "connectors.crm.user_field: must be Username or Email"},
		{"bad version", base("api_version", "62"), `connectors.crm.api_version: must look like "62.0"`},
		{"bad login url", base("login_url", "login.salesforce.com"), "connectors.crm.login_url: must be"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := reg.Build("crm", salesforce.Type, tt.raw, connectors.Env{State: &connectortest.State{}})
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "SECRETSTUFF") || strings.Contains(err.Error(), "PRIVATE KEY") {
				t.Fatalf("error leaks the key: %v", err)
			}
		})
	}
}

func TestAudience(t *testing.T) {
	reg := connectors.NewRegistry()
	reg.Add(salesforce.Type, salesforce.Factory)
	base := map[string]any{"client_id": testClientID, "username": testUsername, "private_key": testKeyPEM}
	with := func(kv ...string) map[string]any {
		m := map[string]any{}
		for k, v := range base {
			m[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	for _, tc := range []struct {
		name string
		raw  map[string]any
		want string // "" for ok
	}{
		{"default", base, ""},
		{"My Domain token host, default audience", with("login_url", "https://acme.my.salesforce.com"), ""},
		{"My Domain as audience", with("audience", "https://acme.my.salesforce.com"), `connectors.crm.audience: must not be the My Domain URL: Salesforce answers "audience is invalid"`},
		{"login with slash", with("audience", "https://login.salesforce.com/"), "connectors.crm.audience: must be exactly"},
		{"plain http", with("audience", "http://login.salesforce.com"), "connectors.crm.audience: must be https://login.salesforce.com"},
		{"community", with("audience", "https://acme.my.site.com/partners"), ""},
		{"legacy sandbox My Domain", with("login_url", "https://acme--uat.my.salesforce.com"), "connectors.crm.audience: required with this sandbox My Domain login_url"},
		{"legacy sandbox My Domain with audience", with("login_url", "https://acme--uat.my.salesforce.com", "audience", "https://test.salesforce.com"), ""},
		{"suffix", with("username_suffix", ".uat"), ""},
		{"bad suffix", with("username_suffix", "uat"), `connectors.crm.username_suffix: must be a dot and the sandbox name`},
		{"suffix with Email", with("username_suffix", ".uat", "user_field", "Email"), "connectors.crm.username_suffix: only with user_field Username"},
	} {
		_, err := reg.Build("crm", salesforce.Type, tc.raw, connectors.Env{State: &connectortest.State{}})
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}

	// What the token endpoint is sent, for each login URL.
	for _, tc := range []struct{ login, aud string }{
		{"https://login.salesforce.com", "https://login.salesforce.com"},
		{"https://acme.my.salesforce.com", "https://login.salesforce.com"},
		{"https://test.salesforce.com", "https://test.salesforce.com"},
		{"https://acme--uat.sandbox.my.salesforce.com", "https://test.salesforce.com"},
	} {
		var got string
		tok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			r.ParseForm()
			claims := jwt.MapClaims{}
			jwt.ParseWithClaims(r.PostForm.Get("assertion"), claims, func(*jwt.Token) (any, error) { return &testKey.PublicKey, nil })
			got, _ = claims["aud"].(string)
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprint(w, `{"error":"invalid_grant","error_description":"audience is invalid"}`)
		}))
		raw := with("login_url", tc.login, "token_url", tok.URL+"/services/oauth2/token")
		c, err := reg.Build("crm", salesforce.Type, raw, connectors.Env{HTTP: connectortest.FastHTTP(-1), State: &connectortest.State{}})
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Grant(t.Context(), psGrant("AR-1", "Sales_Ops"))
		tok.Close()
		if got != tc.aud {
			t.Errorf("login_url %s: aud %q, want %q", tc.login, got, tc.aud)
		}
		if class, _ := access.Classify(err); err == nil || class != access.Permanent || !strings.Contains(err.Error(), "audience is invalid") {
			t.Errorf("login_url %s: refused JWT: %v", tc.login, err)
		}
	}
}

func TestSandboxUsernames(t *testing.T) {
	f := newSandbox(t, connectortest.NewClock(now))
	// Without the suffix neither the integration user nor the person is
	// found: the JWT's sub is refused.
	c := build(t, f, -1, map[string]any{"audience": "https://test.salesforce.com"})
	_, err := c.Grant(t.Context(), psGrant("AR-1", "Sales_Ops"))
	if class, _ := access.Classify(err); err == nil || class != access.Permanent || !strings.Contains(err.Error(), "sandbox suffix") {
		t.Fatalf("sandbox without suffixes: %v", err)
	}
	// The production audience is refused by a sandbox.
	c = build(t, f, -1, map[string]any{"username": testUsername + ".uat", "username_suffix": ".uat"})
	if _, err := c.Grant(t.Context(), psGrant("AR-1", "Sales_Ops")); err == nil || !strings.Contains(err.Error(), "audience is invalid") {
		t.Fatalf("sandbox with the login audience: %v", err)
	}
	c = build(t, f, -1, map[string]any{"username": testUsername + ".uat", "username_suffix": ".uat", "audience": "https://test.salesforce.com"})
	rc, err := c.Grant(t.Context(), psGrant("AR-1", "Sales_Ops"))
	if err != nil || rc.UserID != alice {
		t.Fatalf("sandbox grant = %+v, %v", rc, err)
	}
	// With user_field Email the sandbox's ".invalid" emails match nobody.
	c = build(t, f, -1, map[string]any{"username": testUsername + ".uat", "user_field": "Email", "audience": "https://test.salesforce.com"})
	if _, err := c.Grant(t.Context(), psGrant("AR-2", "Sales_Ops")); !errors.Is(err, access.ErrUnknownUser) {
		t.Fatalf("sandbox grant by Email = %v, want ErrUnknownUser", err)
	}
}

func sfData(t *testing.T, rc access.Receipt) salesforce.Data {
	t.Helper()
	var d salesforce.Data
	if err := json.Unmarshal(rc.Data, &d); err != nil {
		t.Fatalf("receipt data %s: %v", rc.Data, err)
	}
	return d
}

func TestReceipt(t *testing.T) {
	f := newFake(t, connectortest.NewClock(now))
	c := build(t, f, -1, nil)
	g := psGrant("AR-1", "Sales_Ops")
	rc, err := c.Grant(t.Context(), g)
	mustOK(t, err)
	d := sfData(t, rc)
	if rc.UserID != alice || rc.PreExisting || !rc.Backstop.Equal(g.ExpiresAt) || d.PermissionSetID != salesOps || !strings.HasPrefix(d.AssignmentID, "0Pa") {
		t.Fatalf("receipt = %+v (%s)", rc, rc.Data)
	}
	// Renamed meanwhile; a new process; the revoke deletes the assignment
	// by its ID, with no query at all.
	f.rename(alice, "alice.smith@example.com")
	c = build(t, f, -1, nil)
	queries := f.count("GET")
	g.Receipt = &rc
	mustOK(t, c.Revoke(t.Context(), g))
	if f.find(alice, salesOps, "") != nil {
		t.Fatal("assignment left")
	}
	if n := f.count("GET") - queries; n != 0 {
		t.Fatalf("revoke by receipt ran %d queries", n)
	}
}

func TestPreExistingAssignmentIsExtended(t *testing.T) {
	f := newFake(t, connectortest.NewClock(now))
	early := now.Add(time.Hour)
	f.add(assignment{Assignee: alice, PermSet: salesOps, Expiration: &early})
	c := build(t, f, -1, nil)
	g := psGrant("AR-1", "Sales_Ops") // until now+2h
	rc, err := c.Grant(t.Context(), g)
	mustOK(t, err)
	if !rc.PreExisting || rc.Previous != early.Format(time.RFC3339) || !rc.Backstop.Equal(g.ExpiresAt) || !strings.Contains(rc.Note, "moved") {
		t.Fatalf("receipt = %+v", rc)
	}
	if a := f.find(alice, salesOps, ""); a.Expiration == nil || !a.Expiration.Equal(g.ExpiresAt) {
		t.Fatalf("expiration %v, want %v", a.Expiration, g.ExpiresAt)
	}
}

func TestLostCreateAnswer(t *testing.T) {
	lose := func(f *fakeSalesforce, alsoTheLook bool) {
		posted := false
		f.setHook(func(w http.ResponseWriter, r *http.Request) bool {
			switch {
			case r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/PermissionSetAssignment"):
				f.add(assignment{Assignee: alice, PermSet: salesOps})
				posted = true
			case alsoTheLook && posted && r.Method == http.MethodGet:
				f.setHook(nil)
			default:
				return false
			}
			sfErr(w, http.StatusServiceUnavailable, "SERVER_UNAVAILABLE", "Server unavailable")
			return true
		})
	}
	t.Run("the look finds it", func(t *testing.T) {
		f := newFake(t, connectortest.NewClock(now))
		c := build(t, f, -1, map[string]any{"set_expiration": false})
		lose(f, false)
		rc, err := c.Grant(t.Context(), psGrant("AR-1", "Sales_Ops"))
		mustOK(t, err)
		if rc.PreExisting || sfData(t, rc).AssignmentID == "" {
			t.Fatalf("receipt = %+v (%s): the assignment made by the lost create is this grant's", rc, rc.Data)
		}
	})
	t.Run("the look fails too", func(t *testing.T) {
		f := newFake(t, connectortest.NewClock(now))
		c := build(t, f, -1, map[string]any{"set_expiration": false})
		lose(f, true)
		g := psGrant("AR-1", "Sales_Ops")
		rc, err := c.Grant(t.Context(), g)
		if class, _ := access.Classify(err); err == nil || class != access.Retryable || !rc.Changed() || rc.UserID != alice {
			t.Fatalf("grant = %+v, %v; want retryable with a partial receipt", rc, err)
		}
		// The retry is the same grant: the assignment is its own.
		rc2, err := c.Grant(t.Context(), g)
		mustOK(t, err)
		if rc2.PreExisting {
			t.Fatalf("retried grant's receipt %+v is PreExisting", rc2)
		}
		// Or the lifecycle gives up and rolls back with the partial receipt.
		g.Receipt, g.Rollback = &rc, true
		mustOK(t, c.Revoke(t.Context(), g))
		if f.find(alice, salesOps, "") != nil {
			t.Fatal("rollback left the assignment")
		}
	})
}

func TestAPIDisabledForOrg(t *testing.T) {
	f := newFake(t, connectortest.NewClock(now))
	f.apiDisabled = true
	c := build(t, f, 2, nil)
	_, err := c.Grant(t.Context(), psGrant("AR-1", "Sales_Ops"))
	var ae *salesforce.APIError
	if class, _ := access.Classify(err); err == nil || class != access.Permanent || !errors.As(err, &ae) || ae.Code != "API_DISABLED_FOR_ORG" || !strings.Contains(err.Error(), "edition") {
		t.Fatalf("org without API access: %v", err)
	}
}
