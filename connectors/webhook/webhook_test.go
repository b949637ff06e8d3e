package webhook_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/connectors"
	"github.com/accessbot/accessbot/connectors/conformance"
	"github.com/accessbot/accessbot/connectors/connectortest"
	"github.com/accessbot/accessbot/connectors/webhook"
)

// testSecret is "whsec_" + base64 of 32 bytes.
var testSecret = "whsec_" + base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))

// verifySpec is an independent Standard Webhooks verifier written from the
// specification text (https://www.standardwebhooks.com/, "Verifying
// webhooks"): all three headers required; timestamp within 5 minutes;
// key = base64-decode(secret without "whsec_"); expected =
// base64(HMAC-SHA256(key, id "." timestamp "." body)); the signature header
// is a space-delimited list of "v1,<sig>" and one constant-time match is
// enough.
func verifySpec(secret string, h http.Header, body []byte, now time.Time) error {
	id, ts, sigs := h.Get("webhook-id"), h.Get("webhook-timestamp"), h.Get("webhook-signature")
	if id == "" || ts == "" || sigs == "" {
		return errors.New("missing header")
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return errors.New("bad timestamp")
	}
	if d := now.Sub(time.Unix(sec, 0)); d > 5*time.Minute || d < -5*time.Minute {
		return errors.New("timestamp out of tolerance")
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		return err
	}
	mac := hmac.New(sha256.New, key)
	fmt.Fprintf(mac, "%s.%s.%s", id, ts, body)
	want := mac.Sum(nil)
	for _, s := range strings.Split(sigs, " ") {
		version, sig, ok := strings.Cut(s, ",")
		if !ok || version != "v1" {
			continue
		}
		got, err := base64.StdEncoding.DecodeString(sig)
		if err == nil && hmac.Equal(got, want) {
			return nil
		}
	}
	return errors.New("no matching signature")
}

// delivery is one request the receiver saw.
type delivery struct {
	Header http.Header
	Body   []byte
}

// receiver is an httptest automation platform that verifies signatures and
// keeps memberships.
type receiver struct {
	t     *testing.T
	srv   *httptest.Server
	now   func() time.Time
	mu    sync.Mutex
	seen  []delivery
	fail  []int // statuses to answer next, in order
	known map[string]bool
	has   map[string]bool // grant_id|slack_id|params
}

func newReceiver(t *testing.T, now func() time.Time) *receiver {
	r := &receiver{t: t, now: now, known: map[string]bool{"U0ALICE01": true}, has: map[string]bool{}}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	return r
}

func entitlement(p webhook.Payload) string {
	b, _ := json.Marshal(p.Params) // map keys sorted
	return p.User.SlackID + "|" + string(b)
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seen = append(r.seen, delivery{Header: req.Header.Clone(), Body: body})
	if err := verifySpec(testSecret, req.Header, body, r.now()); err != nil {
		r.t.Errorf("receiver: signature: %v", err)
		http.Error(w, `{"error":"bad signature"}`, http.StatusUnauthorized)
		return
	}
	if req.Header.Get("Content-Type") != "application/json" || req.Header.Get("Idempotency-Key") != req.Header.Get("webhook-id") {
		r.t.Errorf("receiver: headers %v", req.Header)
	}
	if len(r.fail) > 0 {
		status := r.fail[0]
		r.fail = r.fail[1:]
		w.WriteHeader(status)
		fmt.Fprintf(w, `{"error":"injected %d"}`, status)
		return
	}
	var p webhook.Payload
	if err := json.Unmarshal(body, &p); err != nil {
		http.Error(w, `{"error":"bad json"}`, http.StatusBadRequest)
		return
	}
	if !r.known[p.User.SlackID] {
		w.WriteHeader(http.StatusUnprocessableEntity)
		fmt.Fprintf(w, `{"error":"unknown user %s"}`, p.User.SlackID)
		return
	}
	key := entitlement(p)
	switch p.Type {
	case webhook.TypeGrant:
		r.has[key] = true
		w.WriteHeader(http.StatusOK)
	case webhook.TypeRevoke:
		if !r.has[key] {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		delete(r.has, key)
		w.WriteHeader(http.StatusNoContent)
	default:
		http.Error(w, `{"error":"bad type"}`, http.StatusBadRequest)
	}
}

func (r *receiver) deliveries() []delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]delivery(nil), r.seen...)
}

// exampleGrant is the grant of DESIGN.md §6's example body, with times in
// Berlin to check they are sent as UTC.
func exampleGrant() access.Grant {
	berlin := time.FixedZone("CET", 3600)
	return access.Grant{
		ID: "AR-1042", System: "crm", Role: "viewer",
		Params:     map[string]string{"group_id": "00g1viewer"},
		User:       access.Person{SlackID: "U0ALICE01", Email: "alice@example.com", Name: "Alice", TZ: "Europe/Berlin"},
		Reason:     "customer ticket 4411",
		ApprovedBy: []string{"U0BOB0001", "U0CAROL01"},
		GrantedAt:  time.Date(2026, 11, 29, 11, 0, 0, 0, berlin),
		ExpiresAt:  time.Date(2026, 11, 29, 13, 0, 0, 0, berlin),
	}
}

// testInstallation is the store's installation ID the tests wire in.
const testInstallation = "inst7f3a"

func build(t *testing.T, url string, http connectors.Doer, clock access.Clock) access.Connector {
	t.Helper()
	reg := connectors.NewRegistry()
	reg.Add("webhook", webhook.NewFactory(testInstallation))
	c, err := reg.Build("automation", "webhook", map[string]any{
		"type": "webhook", "url": url, "secret": testSecret, "timeout": "5s",
		"headers": map[string]any{"X-Api-Key": "k1"},
	}, connectors.Env{HTTP: http, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestConformance(t *testing.T) {
	clock := connectortest.NewClock(time.Now().Truncate(time.Second))
	var cur *receiver
	conformance.Run(t, conformance.Harness{
		New: func(t *testing.T) access.Connector {
			cur = newReceiver(t, clock.Now)
			// No inner retries: one injected failure is one failed operation.
			return build(t, cur.srv.URL+"/accessbot?token=QUERYSECRET", connectortest.FastHTTP(-1), clock)
		},
		Grant: func(t *testing.T) access.Grant { return exampleGrant() },
		HasAccess: func(t *testing.T, g access.Grant) bool {
			cur.mu.Lock()
			defer cur.mu.Unlock()
			return cur.has[entitlement(webhook.NewPayload("grant", g))]
		},
		UnknownUser: func(t *testing.T) access.Grant {
			g := exampleGrant()
			g.User = access.Person{SlackID: "U0NOBODY1", Email: "nobody@example.com", Name: "Nobody"}
			return g
		},
		FailNext: func(t *testing.T, status int) {
			cur.mu.Lock()
			defer cur.mu.Unlock()
			cur.fail = append(cur.fail, status)
		},
	})
}

func TestRequestMatchesDesign(t *testing.T) {
	clock := connectortest.NewClock(time.Now().Truncate(time.Second))
	r := newReceiver(t, clock.Now)
	c := build(t, r.srv.URL, connectortest.FastHTTP(-1), clock)
	if _, err := c.Grant(t.Context(), exampleGrant()); err != nil {
		t.Fatal(err)
	}
	if err := c.Revoke(t.Context(), exampleGrant()); err != nil {
		t.Fatal(err)
	}
	d := r.deliveries()
	if len(d) != 2 {
		t.Fatalf("%d deliveries, want 2", len(d))
	}
	// The body of DESIGN.md §6, compact, in the same key order.
	want := `{"type":"access.grant","grant_id":"AR-1042","system":"crm","role":"viewer",` +
		`"params":{"group_id":"00g1viewer"},` +
		`"user":{"slack_id":"U0ALICE01","email":"alice@example.com","name":"Alice"},` +
		`"reason":"customer ticket 4411","approved_by":["U0BOB0001","U0CAROL01"],` +
		`"granted_at":"2026-11-29T10:00:00Z","expires_at":"2026-11-29T12:00:00Z"}`
	if string(d[0].Body) != want {
		t.Errorf("grant body\n got %s\nwant %s", d[0].Body, want)
	}
	if wantRevoke := strings.Replace(want, "access.grant", "access.revoke", 1); string(d[1].Body) != wantRevoke {
		t.Errorf("revoke body\n got %s\nwant %s", d[1].Body, wantRevoke)
	}
	for i, op := range []string{"grant", "revoke"} {
		h := d[i].Header
		checks := map[string]string{
			"webhook-id":        testInstallation + ".AR-1042." + op,
			"Idempotency-Key":   testInstallation + ".AR-1042." + op,
			"webhook-timestamp": strconv.FormatInt(clock.Now().Unix(), 10),
			"Content-Type":      "application/json",
			"X-Api-Key":         "k1",
		}
		for k, v := range checks {
			if got := h.Get(k); got != v {
				t.Errorf("%s: header %s = %q, want %q", op, k, got, v)
			}
		}
		// A published Standard Webhooks library agrees too.
		wh, err := standardwebhooks.NewWebhook(testSecret)
		if err != nil {
			t.Fatal(err)
		}
		if err := wh.Verify(d[i].Body, h); err != nil {
			t.Errorf("%s: standard-webhooks library rejects the signature: %v", op, err)
		}
		if err := verifySpec(testSecret, h, d[i].Body, clock.Now()); err != nil {
			t.Errorf("%s: spec verifier: %v", op, err)
		}
	}
	// A tampered body fails both verifiers (the verifiers are not vacuous).
	tampered := []byte(strings.Replace(string(d[0].Body), "viewer", "admin", 1))
	if err := verifySpec(testSecret, d[0].Header, tampered, clock.Now()); err == nil {
		t.Error("spec verifier accepted a tampered body")
	}
	wh, _ := standardwebhooks.NewWebhook(testSecret)
	if err := wh.Verify(tampered, d[0].Header); err == nil {
		t.Error("library accepted a tampered body")
	}
}

func TestIdempotencyKeyStableAcrossRetries(t *testing.T) {
	clock := connectortest.NewClock(time.Now().Truncate(time.Second))
	r := newReceiver(t, clock.Now)
	r.fail = []int{503, 502} // two failed attempts, then success: inner loop
	c := build(t, r.srv.URL, connectortest.FastHTTP(2), clock)
	if _, err := c.Grant(t.Context(), exampleGrant()); err != nil {
		t.Fatalf("Grant after two transient failures: %v", err)
	}
	// Outer loop: the lifecycle calls Grant again later.
	clock.Add(time.Minute)
	if _, err := c.Grant(t.Context(), exampleGrant()); err != nil {
		t.Fatal(err)
	}
	d := r.deliveries()
	if len(d) != 4 {
		t.Fatalf("%d deliveries, want 4", len(d))
	}
	for i, x := range d {
		if want := testInstallation + ".AR-1042.grant"; x.Header.Get("webhook-id") != want || x.Header.Get("Idempotency-Key") != want {
			t.Errorf("delivery %d: webhook-id %q, Idempotency-Key %q", i, x.Header.Get("webhook-id"), x.Header.Get("Idempotency-Key"))
		}
		if string(x.Body) != string(d[0].Body) {
			t.Errorf("delivery %d: body changed across retries", i)
		}
	}
	if d[3].Header.Get("webhook-timestamp") == d[0].Header.Get("webhook-timestamp") {
		t.Error("a later operation reused the old timestamp")
	}
}

func TestStatusMapping(t *testing.T) {
	type want int
	const (
		done want = iota
		retry
		permanent
	)
	tests := []struct {
		status        int
		grant, revoke want
	}{
		{200, done, done}, {201, done, done}, {202, done, done}, {204, done, done},
		{400, permanent, permanent}, {401, permanent, permanent}, {403, permanent, permanent},
		{404, permanent, done}, {409, permanent, permanent}, {410, permanent, done},
		{422, permanent, permanent},
		{408, retry, retry}, {425, retry, retry}, {429, retry, retry},
		{500, retry, retry}, {501, retry, retry}, {502, retry, retry}, {503, retry, retry}, {504, retry, retry},
	}
	var mu sync.Mutex
	var status, calls int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		calls++
		w.WriteHeader(status)
	}))
	t.Cleanup(srv.Close)
	c := build(t, srv.URL, connectortest.FastHTTP(-1), access.ClockFunc(time.Now))
	for _, tt := range tests {
		for _, op := range []struct {
			name string
			call func() error
			want want
		}{
			{"grant", func() error { return connectortest.ErrOf(c.Grant(t.Context(), exampleGrant())) }, tt.grant},
			{"revoke", func() error { return c.Revoke(t.Context(), exampleGrant()) }, tt.revoke},
		} {
			t.Run(fmt.Sprintf("%s_%d", op.name, tt.status), func(t *testing.T) {
				mu.Lock()
				status, calls = tt.status, 0
				mu.Unlock()
				err := op.call()
				got := done
				if err != nil {
					got = retry
					if class, _ := access.Classify(err); class == access.Permanent {
						got = permanent
					}
				}
				if got != op.want {
					t.Errorf("got %v (%v), want %v", got, err, op.want)
				}
				if calls != 1 {
					t.Errorf("%d calls, want 1", calls)
				}
			})
		}
	}
}

func TestRetryAfterBeyondCapDoesNotBlock(t *testing.T) {
	var calls int
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		mu.Lock()
		calls++
		mu.Unlock()
		w.Header().Set("Retry-After", "3600")
		w.WriteHeader(http.StatusTooManyRequests)
	}))
	t.Cleanup(srv.Close)
	c := build(t, srv.URL, connectortest.FastHTTP(2), access.ClockFunc(time.Now))
	start := time.Now()
	_, err := c.Grant(t.Context(), exampleGrant())
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("Grant took %v", took)
	}
	class, ra := access.Classify(err)
	if class != access.Retryable || ra != time.Hour {
		t.Fatalf("Classify = %v, %v (%v); want retryable, 1h", class, ra, err)
	}
	if calls != 1 {
		t.Fatalf("%d calls, want 1 (no inner retry beyond the cap)", calls)
	}
}

func TestTransportErrorRetryable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	c := build(t, url+"/x?token=QUERYSECRET", connectortest.FastHTTP(1), access.ClockFunc(time.Now))
	_, err := c.Grant(t.Context(), exampleGrant())
	if class, _ := access.Classify(err); err == nil || class != access.Retryable {
		t.Fatalf("Grant to a closed server: %v", err)
	}
	if strings.Contains(err.Error(), "QUERYSECRET") {
		t.Fatalf("error leaks the query string: %v", err)
	}
}

func TestConfig(t *testing.T) {
	dir := t.TempDir()
	secretFile := filepath.Join(dir, "secret")
	if err := os.WriteFile(secretFile, []byte(testSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	reg := connectors.NewRegistry()
	reg.Add("webhook", webhook.Factory)
	tests := []struct {
		name    string
		raw     map[string]any
		wantErr []string // substrings; empty: success
	}{
		{"ok", map[string]any{"url": "https://h.example/x", "secret": testSecret}, nil},
		{"secret file", map[string]any{"url": "https://h.example/x", "secret_file": secretFile}, nil},
		{"missing url", map[string]any{"secret": testSecret}, []string{"connectors.hook.url: required"}},
		{"bad scheme", map[string]any{"url": "ftp://h.example", "secret": testSecret}, []string{"connectors.hook.url: must be"}},
		{"plain http", map[string]any{"url": "http://h.example/x", "secret": testSecret}, []string{"connectors.hook.url: must be an https:// URL; plain http is accepted only for localhost"}},
		{"plain http to localhost", map[string]any{"url": "http://127.0.0.1:9/x", "secret": testSecret}, nil},
		{"missing secret", map[string]any{"url": "https://h.example"}, []string{"connectors.hook.secret: required"}},
		{"secret without prefix", map[string]any{"url": "https://h.example", "secret": "SUPERSECRETVALUE"},
			[]string{"connectors.hook.secret: must start with"}},
		{"secret not base64", map[string]any{"url": "https://h.example", "secret": "whsec_!!SUPERSECRETVALUE"},
			[]string{"connectors.hook.secret: must be"}},
		{"both secrets", map[string]any{"url": "https://h.example", "secret": testSecret, "secret_file": secretFile},
			[]string{"set only one"}},
		{"typo", map[string]any{"url": "https://h.example", "secret": testSecret, "timout": "5s"},
			[]string{`connectors.hook.timout: unknown key; did you mean "timeout"?`}},
		{"bad timeout", map[string]any{"url": "https://h.example", "secret": testSecret, "timeout": 5},
			[]string{"connectors.hook.timeout: must be a duration"}},
		{"reserved header", map[string]any{"url": "https://h.example", "secret": testSecret, "headers": map[string]any{"webhook-id": "x"}},
			[]string{"connectors.hook.headers.webhook-id: set by the connector"}},
		{"every problem", map[string]any{"urll": "x", "timeout": "banana"},
			[]string{"connectors.hook.urll: unknown key", "connectors.hook.timeout:"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := reg.Build("hook", "webhook", tt.raw, connectors.Env{})
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
			for _, leak := range []string{"SUPERSECRET", testSecret} {
				if strings.Contains(err.Error(), leak) {
					t.Errorf("error leaks the secret: %v", err)
				}
			}
		})
	}
}

// A request whose role requires a ticket carries it in the body, after
// the fields of DESIGN.md §6, on grant and revoke alike; one without a
// ticket has no "ticket" key at all (TestRequestMatchesDesign).
func TestTicketInBody(t *testing.T) {
	clock := connectortest.NewClock(time.Now().Truncate(time.Second))
	r := newReceiver(t, clock.Now)
	c := build(t, r.srv.URL, connectortest.FastHTTP(-1), clock)
	g := exampleGrant()
	g.Ticket = &access.Ticket{Ref: "SUP-12", Title: "Login <broken> & more", URL: "https://acme.atlassian.net/browse/SUP-12", Status: "In Progress"}
	if _, err := c.Grant(t.Context(), g); err != nil {
		t.Fatal(err)
	}
	g.Ticket = &access.Ticket{Ref: "4411"} // not verified: the reference only
	if err := c.Revoke(t.Context(), g); err != nil {
		t.Fatal(err)
	}
	d := r.deliveries()
	if len(d) != 2 {
		t.Fatalf("%d deliveries, want 2", len(d))
	}
	var got [2]struct {
		ExpiresAt string          `json:"expires_at"`
		Ticket    json.RawMessage `json:"ticket"`
	}
	for i := range d {
		if err := json.Unmarshal(d[i].Body, &got[i]); err != nil {
			t.Fatal(err)
		}
	}
	var ticket map[string]string
	if err := json.Unmarshal(got[0].Ticket, &ticket); err != nil {
		t.Fatalf("grant ticket %s: %v", got[0].Ticket, err)
	}
	want := map[string]string{"ref": "SUP-12", "title": "Login <broken> & more", "url": "https://acme.atlassian.net/browse/SUP-12", "status": "In Progress"}
	if fmt.Sprint(ticket) != fmt.Sprint(want) {
		t.Errorf("grant ticket = %v, want %v", ticket, want)
	}
	if string(got[1].Ticket) != `{"ref":"4411"}` {
		t.Errorf("revoke ticket = %s, want the reference only", got[1].Ticket)
	}
	if !strings.HasSuffix(string(d[0].Body), `"expires_at":"2026-11-29T12:00:00Z","ticket":`+string(got[0].Ticket)+"}") {
		t.Errorf("the ticket is not last, after the fields of DESIGN.md §6: %s", d[0].Body)
	}
}

// break_glass and requested_by appear only when they apply.
func TestBreakGlassAndOnBehalfInBody(t *testing.T) {
	g := exampleGrant()
	plain, err := json.Marshal(webhook.NewPayload("grant", g))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(plain), "break_glass") || strings.Contains(string(plain), "requested_by") {
		t.Errorf("an ordinary grant carries them: %s", plain)
	}
	g.BreakGlass, g.RequestedBy, g.ApprovedBy = true, "U0BOB0001", nil
	body, err := json.Marshal(webhook.NewPayload("revoke", g))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(string(body), `"break_glass":true,"requested_by":"U0BOB0001"}`) || !strings.Contains(string(body), `"approved_by":[]`) {
		t.Errorf("body %s", body)
	}
}
