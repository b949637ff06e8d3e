package main

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/bot/slackemu"
	"github.com/accessbot/accessbot/connectors/memory"
	"github.com/accessbot/accessbot/connectors/webhook"
)

// End-to-end tests of granting and removing access: webhook, Slack channel
// and user group, and manual connectors, against the Slack emulator on a
// fake clock (the crash test in crash_test.go runs a real process).

// hookKey is the webhook signing key the tests configure; hookSecret is
// its Standard Webhooks serialisation.
var (
	hookKey    = []byte("accessbot-e2e-webhook-signing-key")
	hookSecret = "whsec_" + base64.StdEncoding.EncodeToString(hookKey)
)

// hookCall is one POST the receiver got.
type hookCall struct {
	ID, IdemKey, Sig, ContentType string
	TS                            int64
	Body                          []byte
	P                             webhook.Payload
	SigOK                         bool
	At                            time.Time // receiver clock at arrival
	Status                        int       // 0 until answered
	AnsweredAt                    time.Time // receiver clock when the answer was decided
}

// hookReceiver is an automation platform as the webhook connector sees
// it: it verifies every signature independently of the connector's code
// and answers what decide says (which may block to hold a request).
type hookReceiver struct {
	srv *httptest.Server

	mu     sync.Mutex
	calls  []hookCall
	now    func() time.Time
	decide func(hookCall) int
}

func newHookReceiver(t *testing.T) *hookReceiver {
	h := &hookReceiver{now: time.Now}
	h.srv = httptest.NewServer(http.HandlerFunc(h.serve))
	t.Cleanup(h.srv.Close)
	return h
}

func (h *hookReceiver) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	c := hookCall{
		ID: r.Header.Get("webhook-id"), IdemKey: r.Header.Get("Idempotency-Key"),
		Sig: r.Header.Get("webhook-signature"), ContentType: r.Header.Get("Content-Type"), Body: body,
	}
	c.TS, _ = strconv.ParseInt(r.Header.Get("webhook-timestamp"), 10, 64)
	_ = json.Unmarshal(body, &c.P)
	// Independent verification: HMAC-SHA256 over id.timestamp.body with
	// the decoded secret; any of the space-separated v1 signatures may match.
	m := hmac.New(sha256.New, hookKey)
	fmt.Fprintf(m, "%s.%d.", c.ID, c.TS)
	m.Write(body)
	want := base64.StdEncoding.EncodeToString(m.Sum(nil))
	for _, s := range strings.Fields(c.Sig) {
		if v, ok := strings.CutPrefix(s, "v1,"); ok && hmac.Equal([]byte(v), []byte(want)) {
			c.SigOK = true
		}
	}
	h.mu.Lock()
	c.At = h.now()
	i := len(h.calls)
	h.calls = append(h.calls, c)
	decide := h.decide
	h.mu.Unlock()

	status := http.StatusOK
	if decide != nil {
		status = decide(c)
	}
	// Recorded before the answer goes out, so a state that claims the
	// effect can always be matched with the answer that allowed it.
	h.mu.Lock()
	h.calls[i].Status = status
	h.calls[i].AnsweredAt = h.now()
	h.mu.Unlock()
	w.WriteHeader(status)
}

func (h *hookReceiver) setDecide(f func(hookCall) int) {
	h.mu.Lock()
	h.decide = f
	h.mu.Unlock()
}

func (h *hookReceiver) setClock(now func() time.Time) {
	h.mu.Lock()
	h.now = now
	h.mu.Unlock()
}

// Calls returns the calls so far, optionally only those of type typ for
// grant id ("" matches any).
func (h *hookReceiver) Calls(typ, id string) []hookCall {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []hookCall
	for _, c := range h.calls {
		if (typ == "" || c.P.Type == typ) && (id == "" || c.P.GrantID == id) {
			out = append(out, c)
		}
	}
	return out
}

// confirmed reports whether the receiver answered 2xx (or, for a revoke,
// 404/410) to op for grant id.
func (h *hookReceiver) confirmed(typ, id string) bool {
	for _, c := range h.Calls(typ, id) {
		if c.Status >= 200 && c.Status < 300 || typ == webhook.TypeRevoke && (c.Status == 404 || c.Status == 410) {
			return true
		}
	}
	return false
}

// e2eHeader is the part of a test runbook every test shares; %s is an
// optional extra top-level block (http:).
const e2eHeader = `
slack:
  app_token: ${SLACK_APP_TOKEN}
  bot_token: ${SLACK_BOT_TOKEN}
  api_url: ${SLACK_API_URL}
  admins: [U0ADMIN01]
  audit_channel: C0AUDIT01
store:
  path: ${STORE_PATH}
timezone: Europe/Berlin
%s
defaults:
  default_duration: 1h
  max_duration: 8h
  approval_timeout: 24h
  reminder_after: 2h
  expiry_warning: 10m
  reason: required
directory:
  managers:
    static: { U0ALICE01: U0BOB0001, U0DAVE001: U0BOB0001 }
teams:
  support: { members: [U0ALICE01, U0DAVE001] }
`

// hookRunbook is a CRM reached through a webhook at h: viewer needs the
// manager then an owner; r1…r5 are auto-approved, each its own group.
func hookRunbook(h *hookReceiver, extra string) string {
	return fmt.Sprintf(e2eHeader, extra) + fmt.Sprintf(`
connectors:
  hook: { type: webhook, url: "%s/accessbot", secret: "%s" }
systems:
  crm:
    name: Salesforce CRM
    owners: [U0CAROL01, U0ERIN001]
    channel: C0CRMOWN1
    connector: hook
    roles:
      viewer:
        description: Read-only customer records
        grant: { group_id: 00g1viewer }
        requesters: [team:support]
        approval: { steps: [ { approvers: [manager] }, { approvers: [owners] } ] }
        default_duration: 2h
`, h.srv.URL, hookSecret) + autoRoles("r", 5, "g")
}

// autoRoles renders n auto-approved roles named prefix1…prefixN whose
// group_id is gprefix1…
func autoRoles(prefix string, n int, gprefix string) string {
	var b strings.Builder
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, "      %s%d: { description: auto role, grant: { group_id: %s%d }, requesters: [team:support], approval: auto, reason: optional }\n", prefix, i, gprefix, i)
	}
	return b.String()
}

var reqID = regexp.MustCompile(`AR-\d+`)

// submit runs a slash command that creates a request and returns its ID.
func (e *world) submit(user, text string) string {
	e.t.Helper()
	out := e.command(user, text)
	id := reqID.FindString(out)
	if id == "" {
		e.t.Fatalf("/access %s: no request ID in %s", text, out)
	}
	return id
}

// waitUntil polls cond (a condition, not simulated time) for up to 5 s.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// msgIndex returns the index of the first message in channel (a U… ID is
// the bot DM) whose text contains every part, or -1.
func msgIndex(emu *slackemu.Server, channel string, parts ...string) int {
	for i, m := range emu.Messages(channel) {
		ok := true
		for _, p := range parts {
			ok = ok && strings.Contains(m.Text, p)
		}
		if ok {
			return i
		}
	}
	return -1
}

func (e *world) waitMsg(channel string, parts ...string) int {
	e.t.Helper()
	i := -1
	waitUntil(e.t, fmt.Sprintf("a message in %s with %q", channel, parts), func() bool {
		i = msgIndex(e.emu, channel, parts...)
		return i >= 0
	})
	return i
}

func (e *world) countMsgs(channel string, parts ...string) int {
	n := 0
	for _, m := range e.emu.Messages(channel) {
		ok := true
		for _, p := range parts {
			ok = ok && strings.Contains(m.Text, p)
		}
		if ok {
			n++
		}
	}
	return n
}

// step moves the fake clock by d and does what production does when time
// passes: the timer wheel fires (its callbacks queue work for the service's
// workers) and the reconcile pass runs.
func (e *world) step(d time.Duration) {
	e.t.Helper()
	e.clock.Advance(d)
	e.app.Wheel.Advance(e.clock.Now())
	if err := e.app.Service.Reconcile(context.Background()); err != nil {
		e.t.Fatal(err)
	}
}

// TestE2EWebhookGrantLifecycle: request, two approvals, a webhook grant
// whose first attempt fails with 503 and whose second is held by the
// receiver (no "granted" DM until it answers), expiry, a webhook revoke;
// signatures, idempotency keys and the body checked independently; then
// the metrics endpoint.
func TestE2EWebhookGrantLifecycle(t *testing.T) {
	h := newHookReceiver(t)
	release := make(chan struct{})
	var grants atomic.Int32
	h.setDecide(func(c hookCall) int {
		if c.P.Type != webhook.TypeGrant {
			return http.StatusOK
		}
		switch grants.Add(1) {
		case 1:
			return http.StatusServiceUnavailable
		case 2:
			select {
			case <-release:
			case <-time.After(10 * time.Second):
			}
		}
		return http.StatusOK
	})
	e := startEnv(t, hookRunbook(h, "http: { listen: 127.0.0.1:0 }"))
	h.setClock(e.clock.Now)
	start := e.clock.Now()

	id := e.submit("U0ALICE01", "crm viewer 2h ticket 4411")
	e.waitDMs("U0BOB0001", 1)
	e.click("U0BOB0001", "Approve")
	e.waitDMs("U0CAROL01", 1)
	e.click("U0CAROL01", "Approve")

	waitUntil(t, "the second grant attempt", func() bool { return len(h.Calls(webhook.TypeGrant, id)) >= 2 })
	// The target holds its answer: nothing may say "granted" yet.
	if r := e.request(id); r.State != access.StateApproved {
		t.Fatalf("while the target holds the grant, %s is %s, want approved", id, r.State)
	}
	if i := msgIndex(e.emu, "U0ALICE01", "you now have"); i >= 0 {
		t.Fatalf("requester told granted before the target answered: %s", e.emu.Messages("U0ALICE01")[i].Text)
	}
	close(release)
	r := e.waitState(id, access.StateActive)
	granted := e.waitMsg("U0ALICE01", id, "you now have")

	calls := h.Calls(webhook.TypeGrant, id)
	if len(calls) != 2 || calls[0].Status != 503 || calls[1].Status != 200 {
		t.Fatalf("grant calls: %+v", calls)
	}
	for _, c := range calls {
		if !isMessageID(c.ID, id, "grant") || c.IdemKey != c.ID || !c.SigOK || c.ContentType != "application/json" {
			t.Errorf("grant delivery: id %q key %q signed %v content type %q", c.ID, c.IdemKey, c.SigOK, c.ContentType)
		}
		if c.TS != start.Unix() {
			t.Errorf("webhook-timestamp %d, want %d (the fake clock)", c.TS, start.Unix())
		}
		if string(c.Body) != string(calls[0].Body) {
			t.Errorf("the retry sent another body:\n%s\n%s", c.Body, calls[0].Body)
		}
	}
	// The connector's own Sign agrees with the independent check.
	if s := webhook.Sign(hookKey, calls[0].ID, calls[0].TS, calls[0].Body); s != calls[0].Sig {
		t.Errorf("webhook.Sign = %s, header %s", s, calls[0].Sig)
	}
	p := calls[1].P
	want := webhook.Payload{Type: "access.grant", GrantID: id, System: "crm", Role: "viewer",
		Params: map[string]string{"group_id": "00g1viewer"},
		User:   webhook.User{SlackID: "U0ALICE01", Email: "alice@example.com", Name: "Alice"},
		Reason: "ticket 4411", ApprovedBy: []string{"U0BOB0001", "U0CAROL01"},
		GrantedAt: r.GrantedAt.Format(time.RFC3339), ExpiresAt: r.ExpiresAt.Format(time.RFC3339)}
	if fmt.Sprint(p) != fmt.Sprint(want) {
		t.Errorf("grant body\n got %+v\nwant %+v", p, want)
	}
	if !strings.HasSuffix(p.GrantedAt, "Z") || r.ExpiresAt.Sub(r.GrantedAt) != 2*time.Hour {
		t.Errorf("granted_at %s expires_at %s", p.GrantedAt, p.ExpiresAt)
	}

	e.advance(2 * time.Hour)
	e.waitState(id, access.StateExpired)
	removed := e.waitMsg("U0ALICE01", id, "expired and has been removed")
	if removed < granted {
		t.Errorf("removed DM before granted DM")
	}
	rv := h.Calls(webhook.TypeRevoke, id)
	if len(rv) != 1 || !isMessageID(rv[0].ID, id, "revoke") || rv[0].IdemKey != rv[0].ID || !rv[0].SigOK || rv[0].Status != 200 {
		t.Fatalf("revoke calls: %+v", rv)
	}
	if rv[0].P.GrantedAt != p.GrantedAt || rv[0].P.ExpiresAt != p.ExpiresAt || rv[0].P.Type != "access.revoke" {
		t.Errorf("revoke body %+v", rv[0].P)
	}

	// Metrics after the lifecycle.
	resp, err := http.Get("http://" + e.app.Addr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, name := range []string{
		`accessbot_request_events_total{`, `accessbot_revocation_lag_seconds_count 1`,
		`accessbot_connector_call_seconds_count{`, `accessbot_slack_api_calls_total{`,
	} {
		if !strings.Contains(string(body), name) {
			t.Errorf("/metrics has no %s", name)
		}
	}
	if t.Failed() {
		t.Logf("/metrics:\n%s", body)
	}
}

// TestE2EWebhookOutage: several grants expire while the target answers 503
// for 30 simulated minutes. The probe gate keeps the target at about one
// request per second, nothing claims "expired" before a 2xx, owners are
// alerted and told of the recovery, requesters are told "delayed" then
// "removed", and every revocation completes within 90 s of recovery.
func TestE2EWebhookOutage(t *testing.T) {
	// With jitter 0.5 the backoff (30 s at its cap) spaces each grant's
	// retries; with jitter 0 every retry is due 100 ms after the last, so
	// only the per-connector probe gate keeps the target at one a second
	// (a shorter outage: every failed attempt lengthens the history that
	// each reconcile pass decodes).
	t.Run("jitter=0.5", func(t *testing.T) { testWebhookOutage(t, 0.5, 5*time.Minute, 30*time.Minute) })
	t.Run("jitter=0", func(t *testing.T) { testWebhookOutage(t, 0, 10*time.Second, 75*time.Second) })
}

// testWebhookOutage: five grants expire at +unit·(1…5) into an
// outage of length outageLen that starts 5 minutes after they were granted.
func testWebhookOutage(t *testing.T, jitter float64, unit, outageLen time.Duration) {
	h := newHookReceiver(t)
	var down atomic.Bool
	h.setDecide(func(c hookCall) int {
		if down.Load() {
			return http.StatusServiceUnavailable
		}
		return http.StatusOK
	})
	// The HTTP client's inner retries sleep in real time; the outer loop
	// (the lifecycle's backoff and probe gate) is what is under test.
	e := startEnv(t, hookRunbook(h, ""), func(o *AppOptions) {
		o.HTTP.RetryMax = -1
		o.Service = func(c *access.ServiceConfig) { c.Rand = func() float64 { return jitter } }
	})
	h.setClock(e.clock.Now)

	type grant struct{ user, id string }
	var gs []grant
	for i, g := range []struct{ user, role string }{
		{"U0ALICE01", "r1"}, {"U0ALICE01", "r2"}, {"U0DAVE001", "r1"}, {"U0DAVE001", "r2"}, {"U0DAVE001", "r3"},
	} {
		id := e.submit(g.user, fmt.Sprintf("crm %s %ds drill", g.role, int((5*time.Minute+unit*time.Duration(i+1)).Seconds())))
		if want := fmt.Sprintf("AR-%d", 1001+i); id != want {
			t.Fatalf("id %s, want %s", id, want)
		}
		e.waitState(id, access.StateActive)
		gs = append(gs, grant{g.user, id})
	}
	e.step(5 * time.Minute)
	down.Store(true)
	outage := e.clock.Now()
	const tick = 250 * time.Millisecond

	// check looks at the live state every 10 simulated seconds (decoding
	// requests whose history grows with every attempt is what costs); the
	// history timestamps are checked against the target's answers at the end.
	steps := 0
	check := func() {
		t.Helper()
		if steps++; steps%40 != 0 {
			return
		}
		for _, g := range gs {
			r := e.request(g.id)
			if r.State == access.StateRevoked || r.State == access.StateExpired && !h.confirmed(webhook.TypeRevoke, g.id) {
				t.Fatalf("at +%s %s is %s without a 2xx from the target", e.clock.Now().Sub(outage), g.id, r.State)
			}
			if i := msgIndex(e.emu, g.user, g.id, "has been removed"); i >= 0 && !h.confirmed(webhook.TypeRevoke, g.id) {
				t.Fatalf("%s: requester told removed before the target confirmed", g.id)
			}
		}
	}
	for e.clock.Now().Before(outage.Add(outageLen)) {
		e.step(tick)
		check()
	}
	recovered := e.clock.Now()
	// While failing: owners alerted, requesters told it is delayed.
	if e.countMsgs("C0CRMOWN1", "Revocation failing") == 0 {
		t.Errorf("owners were not alerted during the outage")
	}
	for _, g := range gs {
		if r := e.request(g.id); r.State != access.StateRevoking {
			t.Errorf("%s is %s at the end of the outage, want revoking", g.id, r.State)
		}
		if msgIndex(e.emu, g.user, g.id, "taking longer") < 0 {
			t.Errorf("%s: requester not told the removal is delayed", g.id)
		}
	}
	down.Store(false)

	allDone := func() bool {
		for _, g := range gs {
			if e.request(g.id).State != access.StateExpired {
				return false
			}
		}
		return true
	}
	for !allDone() && e.clock.Now().Before(recovered.Add(3*time.Minute)) {
		e.step(tick)
		check()
	}
	// Workers fed by the wheel may still be finishing the last ones.
	waitUntil(t, "every grant expired", allDone)

	// Figures: requests per simulated second during the outage, and how
	// long after recovery each revocation completed.
	var during []time.Time
	for _, c := range h.Calls("", "") {
		if !c.At.Before(outage) && c.At.Before(recovered) {
			during = append(during, c.At)
		}
	}
	peak := 0
	for i := range during {
		n := 0
		for j := i; j < len(during) && during[j].Sub(during[i]) < time.Second; j++ {
			n++
		}
		peak = max(peak, n)
	}
	var worst time.Duration
	for _, g := range gs {
		for _, c := range h.Calls(webhook.TypeRevoke, g.id) {
			if c.Status == 200 {
				worst = max(worst, c.AnsweredAt.Sub(recovered))
			}
		}
	}
	rate := float64(len(during)) / outageLen.Seconds()
	t.Logf("outage %s: %d requests to the target (%.2f/s), at most %d in any 1 s window; last revocation completed %s after recovery",
		outageLen, len(during), rate, peak, worst)
	if peak > 2 {
		t.Errorf("the target saw %d requests within one simulated second during the outage", peak)
	}
	if rate > 1.1 {
		t.Errorf("the target saw %d requests in %s, more than about one a second", len(during), outageLen)
	}
	if worst > 90*time.Second {
		t.Errorf("a revocation completed %s after recovery, want within 90 s", worst)
	}
	e.waitMsg("C0CRMOWN1", "Revocation recovered")
	for _, g := range gs {
		// The recorded end of each grant is not before the target's 2xx.
		var ok time.Time
		for _, c := range h.Calls(webhook.TypeRevoke, g.id) {
			if c.Status == 200 && (ok.IsZero() || c.AnsweredAt.Before(ok)) {
				ok = c.AnsweredAt
			}
		}
		r := e.request(g.id)
		for _, he := range r.History {
			if (he.To == access.StateExpired || he.To == access.StateRevoked) && (ok.IsZero() || he.At.Before(ok)) {
				t.Errorf("%s: %s at %s, the target's 2xx at %s", g.id, he.To, he.At, ok)
			}
		}
		n := 0
		for _, he := range r.History {
			if he.Event == access.EventRevokeAttemptFailed {
				n++
			}
		}
		t.Logf("%s: expired at +%s, %d failed revoke attempts, removed %s after recovery", g.id, r.ExpiresAt.Sub(outage), n, ok.Sub(recovered))
		d := e.waitMsg(g.user, g.id, "taking longer")
		rm := e.waitMsg(g.user, g.id, "expired and has been removed")
		if rm < d {
			t.Errorf("%s: removed DM before the delayed DM", g.id)
		}
		if r := e.request(g.id); r.Late {
			t.Errorf("%s marked late, but its removal started on time", g.id)
		}
	}
}

// memRunbook is a CRM on a memory connector with auto-approved roles.
func memRunbook(roles string) string {
	return fmt.Sprintf(e2eHeader, "") + `
connectors:
  idp: { type: memory }
systems:
  crm:
    name: Salesforce CRM
    owners: [U0CAROL01]
    channel: C0CRMOWN1
    connector: idp
    roles:
` + roles
}

// TestE2EOverlappingGrants: two roles with the same grant parameters, and
// an extension: the first grant to end does not call revoke; the revoke is
// sent when the last one ends (invariant 5).
func TestE2EOverlappingGrants(t *testing.T) {
	e := startEnv(t, memRunbook(`
      viewer: { description: V, grant: { group_id: g1 }, requesters: [team:support], approval: auto, reason: optional }
      reader: { description: R, grant: { group_id: g1 }, requesters: [team:support], approval: auto, reason: optional }
`))
	idp := e.conns["idp"]
	key := memory.ParamsKey(map[string]string{"group_id": "g1"})
	a := e.submit("U0ALICE01", "crm viewer 1h")
	b := e.submit("U0ALICE01", "crm reader 2h")
	e.waitState(a, access.StateActive)
	e.waitState(b, access.StateActive)

	e.advance(time.Hour)
	ra := e.waitState(a, access.StateExpired)
	if ra.CoveredBy != b || idp.Calls().Revoke != 0 || !slices.Contains(idp.Members(key), "U0ALICE01") {
		t.Fatalf("first grant ended: covered by %q, revokes %d, members %v", ra.CoveredBy, idp.Calls().Revoke, idp.Members(key))
	}
	e.waitMsg("U0ALICE01", a, "continues under", b)
	e.advance(time.Hour)
	e.waitState(b, access.StateExpired)
	if idp.Calls().Revoke != 1 || slices.Contains(idp.Members(key), "U0ALICE01") {
		t.Fatalf("last grant ended: revokes %d, members %v", idp.Calls().Revoke, idp.Members(key))
	}

	// An extension overlaps the grant it extends.
	c := e.submit("U0DAVE001", "crm viewer 1h")
	e.waitState(c, access.StateActive)
	e.advance(30 * time.Minute)
	out := e.command("U0DAVE001", "extend "+c+" 1h")
	d := reqID.FindString(strings.ReplaceAll(out, c, ""))
	if d == "" {
		t.Fatalf("extend: %s", out)
	}
	e.waitState(d, access.StateActive)
	e.advance(30 * time.Minute)
	rc := e.waitState(c, access.StateExpired)
	if rc.CoveredBy != d || idp.Calls().Revoke != 1 {
		t.Fatalf("extended grant ended: covered by %q, revokes %d", rc.CoveredBy, idp.Calls().Revoke)
	}
	for i := 0; i < 8 && e.request(d).State == access.StateActive; i++ {
		e.advance(15 * time.Minute)
	}
	e.waitState(d, access.StateExpired)
	if n := idp.Calls().Revoke; n != 2 {
		t.Fatalf("revokes after the extension ended: %d, want 2", n)
	}
}

// TestE2EUsergroupConcurrent: many grants and revokes of one Slack user
// group at once. usergroups.users.update replaces the member list, so
// every update must be a read-modify-write of the latest list: each
// recorded membership differs from the one before by exactly one person,
// the seeded member is never dropped, and the group ends with exactly the
// people who hold an active grant.
func TestE2EUsergroupConcurrent(t *testing.T) {
	const group, keep = "S0ONCALL1", "U0KEEP001"
	var users []string
	for i := 1; i <= 16; i++ {
		users = append(users, fmt.Sprintf("U0W%05d", i))
	}
	rb := fmt.Sprintf(e2eHeader, "") + fmt.Sprintf(`
  oncall: { members: [%s] }
connectors:
  ug: { type: slack_usergroup }
systems:
  pager:
    name: Pager rota
    owners: [U0CAROL01]
    channel: C0CRMOWN1
    connector: ug
    roles:
      oncall: { description: On call, grant: { usergroup: %s }, requesters: [team:oncall], approval: auto, reason: optional }
`, strings.Join(users, ", "), group)
	e := startEnv(t, rb)
	for _, u := range append([]string{keep}, users...) {
		e.emu.AddUser(slackemu.User{ID: u, Name: strings.ToLower(u), RealName: u, Email: strings.ToLower(u) + "@example.com"})
	}
	e.emu.AddUserGroup(slackemu.UserGroup{ID: group, Handle: "oncall", Members: []string{keep}})

	ids := map[string][]string{} // user → request IDs
	var idsMu sync.Mutex
	requestAll := func(who []string, dur string) <-chan error {
		errs := make(chan error, len(who))
		var wg sync.WaitGroup
		for _, u := range who {
			wg.Add(1)
			go func() {
				defer wg.Done()
				env := e.emu.SlashCommand(u, e.emu.DMChannel(u), "/access", "pager oncall "+dur)
				ack, err := env.WaitAck(5 * time.Second)
				if err != nil {
					errs <- fmt.Errorf("%s: %w", u, err)
					return
				}
				id := reqID.FindString(string(ack.Payload))
				if id == "" {
					errs <- fmt.Errorf("%s: %s", u, ack.Payload)
					return
				}
				idsMu.Lock()
				ids[u] = append(ids[u], id)
				idsMu.Unlock()
			}()
		}
		go func() { wg.Wait(); close(errs) }()
		return errs
	}
	drain := func(errs <-chan error) {
		t.Helper()
		for err := range errs {
			t.Error(err)
		}
		if t.Failed() {
			t.FailNow()
		}
	}
	// Wave 1: eight grants at once, ending a minute apart.
	var wave1 []<-chan error
	for i, u := range users[:8] {
		wave1 = append(wave1, requestAll([]string{u}, fmt.Sprintf("%dm", i+1)))
	}
	for _, c := range wave1 {
		drain(c)
	}
	// Wave 2: eight more grants while wave 1 expires, the wheel's workers
	// revoking concurrently with the grants.
	errs := requestAll(users[8:], "2h")
	for i := 0; i < 10; i++ {
		e.step(time.Minute)
	}
	drain(errs)
	// Wave 3: half of wave 2 gives access back while wave 1 asks again.
	var done sync.WaitGroup
	revokeErrs := make(chan error, 4)
	for _, u := range users[8:12] {
		done.Add(1)
		go func() {
			defer done.Done()
			idsMu.Lock()
			id := ids[u][0]
			idsMu.Unlock()
			env := e.emu.SlashCommand(u, e.emu.DMChannel(u), "/access", "revoke "+id)
			if _, err := env.WaitAck(5 * time.Second); err != nil {
				revokeErrs <- err
			}
		}()
	}
	errs = requestAll(users[:4], "2h")
	e.step(time.Second)
	done.Wait()
	close(revokeErrs)
	drain(errs)
	drain(revokeErrs)

	want := []string{keep}
	waitUntil(t, "every request settled", func() bool {
		idsMu.Lock()
		defer idsMu.Unlock()
		want = []string{keep}
		for u, rs := range ids {
			for _, id := range rs {
				switch e.request(id).State {
				case access.StateActive:
					want = append(want, u)
				case access.StateExpired, access.StateRevoked:
				default:
					return false
				}
			}
		}
		return true
	})
	sort.Strings(want)
	got := e.emu.GroupMembers(group)
	sort.Strings(got)
	if !slices.Equal(got, want) {
		t.Errorf("group members\n got %v\nwant %v", got, want)
	}
	if len(want) != 1+4+4 {
		t.Errorf("want %d members, expected 9", len(want))
	}
	hist := e.emu.GroupHistory(group)
	for i, h := range hist {
		if !slices.Contains(h, keep) {
			t.Errorf("update %d dropped the seeded member: %v", i, h)
		}
		if i > 0 {
			if d := symDiff(hist[i-1], h); len(d) != 1 {
				t.Errorf("update %d changed %v at once (lost update?):\n%v\n%v", i, d, hist[i-1], h)
			}
		}
	}
	if n := len(e.emu.Calls("usergroups.users.update")); n != len(hist)-1 || n != 8+8+4+8+4 {
		t.Errorf("usergroups.users.update calls %d, history %d, want %d", n, len(hist)-1, 8+8+4+8+4)
	}
}

func symDiff(a, b []string) []string {
	var d []string
	for _, x := range a {
		if !slices.Contains(b, x) {
			d = append(d, "-"+x)
		}
	}
	for _, x := range b {
		if !slices.Contains(a, x) {
			d = append(d, "+"+x)
		}
	}
	return d
}

// TestE2ESlackChannel: slack_channel grants with conversations.invite and
// removes with conversations.kick.
func TestE2ESlackChannel(t *testing.T) {
	rb := fmt.Sprintf(e2eHeader, "") + `
connectors:
  chan: { type: slack_channel }
systems:
  warroom:
    name: Incident war room
    owners: [U0CAROL01]
    channel: C0CRMOWN1
    connector: chan
    roles:
      member: { description: Join the war room, grant: { channel: C0SECRET1 }, requesters: [team:support], approval: auto, reason: optional }
`
	e := startEnv(t, rb)
	e.emu.AddChannel(slackemu.Channel{ID: "C0SECRET1", Name: "war-room", Private: true, BotIsMember: true, Members: []string{"U0CAROL01"}})
	id := e.submit("U0ALICE01", "warroom member 1h")
	e.waitState(id, access.StateActive)
	if m := e.emu.ChannelMembers("C0SECRET1"); !slices.Contains(m, "U0ALICE01") {
		t.Fatalf("members after grant %v", m)
	}
	inv := e.emu.Calls("conversations.invite")
	if len(inv) != 1 || inv[0].Params["channel"] != "C0SECRET1" || inv[0].Params["users"] != "U0ALICE01" || inv[0].Error != "" {
		t.Fatalf("invite calls %+v", inv)
	}
	e.advance(time.Hour)
	e.waitState(id, access.StateExpired)
	m := e.emu.ChannelMembers("C0SECRET1")
	if slices.Contains(m, "U0ALICE01") || !slices.Contains(m, "U0CAROL01") {
		t.Fatalf("members after expiry %v", m)
	}
	kick := e.emu.Calls("conversations.kick")
	if len(kick) != 1 || kick[0].Params["user"] != "U0ALICE01" || kick[0].Error != "" {
		t.Fatalf("kick calls %+v", kick)
	}
	e.waitMsg("U0ALICE01", id, "expired and has been removed")
}

// TestE2EGrantFailedPermanent: a permanent grant failure ends in
// grant_failed; the requester and the owners are told why.
func TestE2EGrantFailedPermanent(t *testing.T) {
	e := startEnv(t, "")
	e.conns["crm_idp"].FailNext(1, access.PermanentError(errors.New("group 00g1viewer does not exist")))
	id := e.submit("U0ALICE01", "crm viewer 2h ticket 4411")
	e.waitDMs("U0BOB0001", 1)
	e.click("U0BOB0001", "Approve")
	e.waitDMs("U0CAROL01", 1)
	e.click("U0CAROL01", "Approve")
	r := e.waitState(id, access.StateGrantFailed)
	// People are told the system and a reference owners find in the logs,
	// never the connector's own error (a hook URL, an email).
	if !strings.HasPrefix(r.LastError, "Salesforce CRM refused to grant it (reference E-") {
		t.Errorf("last error %q", r.LastError)
	}
	e.waitMsg("U0ALICE01", id, "granting it failed", "(reference E-")
	e.waitMsg("C0CRMOWN1", "Grant failed", id, "(reference E-")
	for _, ch := range []string{"U0ALICE01", "C0CRMOWN1", "C0AUDIT01"} {
		for _, m := range e.emu.Messages(ch) {
			if strings.Contains(body(m), "does not exist") {
				t.Errorf("the connector's error reached %s: %s", ch, body(m))
			}
		}
	}
	if msgIndex(e.emu, "U0ALICE01", "you now have") >= 0 {
		t.Errorf("requester told granted")
	}
	if n := e.conns["crm_idp"].Calls().Grant; n != 1 {
		t.Errorf("grant calls %d, want 1 (a permanent failure is not retried)", n)
	}
	e.advance(time.Hour)
	if n := e.conns["crm_idp"].Calls().Grant; n != 1 {
		t.Errorf("grant calls %d after an hour", n)
	}
}

// TestE2EExpiryWarningButtons: the warning's "I'm done" removes access at
// once; its Extend makes a new request whose grant overlaps the old one.
func TestE2EExpiryWarningButtons(t *testing.T) {
	e := startEnv(t, "")
	dash := e.conns["dash"]
	a := e.submit("U0ALICE01", "analytics viewer 1h")
	e.waitState(a, access.StateActive)
	b := e.submit("U0DAVE001", "analytics viewer 1h")
	e.waitState(b, access.StateActive)
	e.advance(50 * time.Minute)
	e.waitMsg("U0ALICE01", a, "access ends at")
	e.waitMsg("U0DAVE001", b, "access ends at")

	e.click("U0ALICE01", "I'm done")
	e.waitState(a, access.StateRevoked)
	e.waitMsg("U0ALICE01", a, "removed, as you asked")
	if n := dash.Calls().Revoke; n != 1 {
		t.Fatalf("revokes after I'm done: %d", n)
	}

	e.click("U0DAVE001", "access_extend")
	var ext *access.Request
	waitUntil(t, "the extension request", func() bool {
		rs, err := e.app.Store.List(context.Background(), access.Filter{Requester: "U0DAVE001"})
		if err != nil {
			return false
		}
		for _, r := range rs {
			if r.Extends == b && r.State == access.StateActive {
				ext = r
				return true
			}
		}
		return false
	})
	e.advance(10 * time.Minute)
	rb := e.waitState(b, access.StateExpired)
	if rb.CoveredBy != ext.ID || dash.Calls().Revoke != 1 {
		t.Fatalf("extended grant ended: covered by %q, revokes %d", rb.CoveredBy, dash.Calls().Revoke)
	}
	for i := 0; i < 8 && e.request(ext.ID).State == access.StateActive; i++ {
		e.advance(15 * time.Minute)
	}
	e.waitState(ext.ID, access.StateExpired)
	if n := dash.Calls().Revoke; n != 2 {
		t.Fatalf("revokes after the extension ended: %d, want 2", n)
	}
}

// TestE2ERevokeCommand: `/access revoke ID` by a system owner and by an
// admin ends the grant; a stranger is refused and nothing changes.
func TestE2ERevokeCommand(t *testing.T) {
	e := startEnv(t, "")
	dash := e.conns["dash"]
	a := e.submit("U0ALICE01", "analytics viewer 1h")
	e.waitState(a, access.StateActive)
	out := e.command("U0MALLO01", "revoke "+a)
	if !strings.Contains(out, a+" was not found, or it is not yours") || strings.Contains(out, "analytics") {
		t.Errorf("stranger's revoke answered %s; want nothing about the request", out)
	}
	if r := e.request(a); r.State != access.StateActive || dash.Calls().Revoke != 0 {
		t.Fatalf("after a stranger's revoke %s is %s, %d revokes", a, r.State, dash.Calls().Revoke)
	}
	e.command("U0OSCAR01", "revoke "+a)
	e.waitState(a, access.StateRevoked)
	e.waitMsg("U0ALICE01", a, "revoked by", "has been removed")

	b := e.submit("U0DAVE001", "analytics viewer 1h")
	e.waitState(b, access.StateActive)
	e.command("U0ADMIN01", "revoke "+b)
	rb := e.waitState(b, access.StateRevoked)
	if rb.Last().Actor != access.ActorBot || rb.RemovalCause() != access.EventRevoking {
		t.Errorf("history %+v", rb.History)
	}
	if n := dash.Calls().Revoke; n != 2 {
		t.Fatalf("revokes %d, want 2", n)
	}
	e.waitMsg("U0DAVE001", b, "revoked by", "has been removed")
}

// TestE2EManualConnector: payroll is granted by hand. The owner gets a
// task with Done; the grant counts only from Done; the removal task at
// expiry keeps reminding until Done.
func TestE2EManualConnector(t *testing.T) {
	e := startEnv(t, "")
	id := e.submit("U0GRACE01", "payroll viewer 2h payslip check")
	e.waitDMs("U0HEIDI01", 1)
	e.click("U0HEIDI01", "Approve")
	e.waitDMs("U0FRANK01", 1)
	e.click("U0FRANK01", "Approve")
	e.waitMsg("U0FRANK01", "Task", "grant")
	if r := e.request(id); r.State != access.StateApproved || !r.AwaitingConfirmation {
		t.Fatalf("%s is %s (awaiting %v), want approved awaiting confirmation", id, r.State, r.AwaitingConfirmation)
	}
	e.advance(30 * time.Minute)
	if msgIndex(e.emu, "U0GRACE01", "you now have") >= 0 || e.request(id).State != access.StateApproved {
		t.Fatalf("granted before the owner clicked Done")
	}
	doneAt := e.clock.Now()
	e.click("U0FRANK01", "Done")
	r := e.waitState(id, access.StateActive)
	if !r.GrantedAt.Equal(doneAt) || r.ExpiresAt.Sub(r.GrantedAt) != 2*time.Hour {
		t.Fatalf("granted %s expires %s; want the clock to start at Done (%s)", r.GrantedAt, r.ExpiresAt, doneAt)
	}
	e.waitMsg("U0GRACE01", id, "you now have")

	e.advance(2 * time.Hour)
	r = e.waitState(id, access.StateRevoking)
	if !r.AwaitingConfirmation {
		t.Fatalf("removal not waiting for the owner")
	}
	e.waitMsg("U0FRANK01", "Task", "remove")
	for i := 2; i <= 3; i++ {
		e.advance(time.Hour)
		waitUntil(t, fmt.Sprintf("removal reminder %d", i), func() bool { return e.countMsgs("U0FRANK01", "Task", "remove") >= i })
		if e.request(id).State != access.StateRevoking {
			t.Fatalf("removal finished without Done")
		}
	}
	if msgIndex(e.emu, "U0GRACE01", "has been removed") >= 0 {
		t.Fatalf("requester told removed before Done")
	}
	e.click("U0FRANK01", "Done")
	e.waitState(id, access.StateExpired)
	e.waitMsg("U0GRACE01", id, "expired and has been removed")
}

// Slack does not allow an empty user group: removing the last member
// disables the group, and a later grant sets its members afresh and
// enables it, without bringing back the member who left.
func TestE2EUsergroupLastMember(t *testing.T) {
	const group = "S0LONE001"
	rb := fmt.Sprintf(e2eHeader, "") + fmt.Sprintf(`
  oncall: { members: [U0ALICE01, U0DAVE001] }
connectors:
  ug: { type: slack_usergroup }
systems:
  pager:
    name: Pager rota
    owners: [U0CAROL01]
    connector: ug
    roles:
      oncall: { description: On call, grant: { usergroup: %s }, requesters: [team:oncall], approval: auto, reason: optional }
`, group)
	e := startEnv(t, rb)
	e.emu.AddUserGroup(slackemu.UserGroup{ID: group, Handle: "lone", Members: []string{"U0ERIN001"}, Disabled: true})

	e.command("U0ALICE01", "pager oncall 1h")
	e.waitState("AR-1001", access.StateActive)
	if got := e.emu.GroupMembers(group); !slices.Equal(got, []string{"U0ALICE01"}) || e.emu.GroupDisabled(group) {
		t.Fatalf("after the grant: members %v, disabled %v (a disabled group's old members must not come back)", got, e.emu.GroupDisabled(group))
	}
	e.advance(time.Hour)
	e.waitState("AR-1001", access.StateExpired)
	if !e.emu.GroupDisabled(group) || len(e.emu.GroupMembers(group)) != 0 {
		t.Fatalf("after the last member's expiry: disabled %v, members %v", e.emu.GroupDisabled(group), e.emu.GroupMembers(group))
	}
	e.command("U0DAVE001", "pager oncall 1h")
	e.waitState("AR-1002", access.StateActive)
	if got := e.emu.GroupMembers(group); !slices.Equal(got, []string{"U0DAVE001"}) {
		t.Fatalf("re-enabled group members %v, want only Dave", got)
	}
}

// isMessageID reports whether a webhook-id is <installation>.<id>.<op>
// (DESIGN.md §6: unique per installation, stable across retries).
func isMessageID(got, id, op string) bool {
	inst, ok := strings.CutSuffix(got, "."+id+"."+op)
	return ok && inst != "" && !strings.Contains(inst, ".")
}
