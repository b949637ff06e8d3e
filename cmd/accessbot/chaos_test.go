package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/audit"
	"github.com/accessbot/accessbot/bot/slackemu"
	"github.com/accessbot/accessbot/connectors/webhook"
	"github.com/accessbot/accessbot/store"
)

// Chaos tests (the issue "chaos and bad input"): a crash loop of a real
// accessbot process killed with SIGKILL, and in-process faults of Slack and
// a connector on the fake clock. Both are bounded for CI; CHAOS_LIFECYCLES
// and CHAOS_SEED scale and replay them.

// chaosSeed returns the seed of this run's RNG: CHAOS_SEED, or the time.
// It is logged so that a failure can be replayed.
func chaosSeed(t *testing.T) uint64 {
	t.Helper()
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("CHAOS_SEED"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("CHAOS_SEED=%q: %v", s, err)
		}
		seed = n
	}
	t.Logf("chaos seed %d (replay with CHAOS_SEED=%d)", seed, seed)
	return seed
}

// chaosLifecycles is how many requests a chaos test drives: CHAOS_LIFECYCLES
// or def.
func chaosLifecycles(t *testing.T, def int) int {
	t.Helper()
	if s := os.Getenv("CHAOS_LIFECYCLES"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 {
			t.Fatalf("CHAOS_LIFECYCLES=%q: want a positive number", s)
		}
		return n
	}
	return def
}

// chaosPeople request access in the chaos tests; U0BOB0001 is the manager
// of them all and approves the two-step role.
var chaosPeople = []string{"U0ALICE01", "U0DAVE001", "U0ERIN001", "U0FRANK01", "U0GRACE01", "U0HEIDI01", "U0MALLO01", "U0OSCAR01"}

// chaosRunbook: one system behind the webhook at url. viewer needs the
// manager (Bob); s1…s3 are auto-approved and, like viewer, grant the group
// "shared", so that one person's grants of it overlap (invariant 5); u1
// and u2 are auto-approved, each its own group. Durations are given per
// request. auditFile, if set, mirrors the audit log.
func chaosRunbook(url, auditFile string) string {
	return chaosRunbookWith(fmt.Sprintf(`{ type: webhook, url: "%s/accessbot", secret: "%s" }`, url, hookSecret), auditFile)
}

// chaosRunbookWith is chaosRunbook with the connector "hook" given as a
// YAML flow mapping.
func chaosRunbookWith(hook, auditFile string) string {
	var managers []string
	for _, p := range chaosPeople {
		managers = append(managers, p+": U0BOB0001")
	}
	audit := ""
	if auditFile != "" {
		audit = fmt.Sprintf("audit: { file: %q }\n", auditFile)
	}
	return fmt.Sprintf(`
slack:
  app_token: ${SLACK_APP_TOKEN}
  bot_token: ${SLACK_BOT_TOKEN}
  api_url: ${SLACK_API_URL}
  admins: [U0ADMIN01]
  audit_channel: C0AUDIT01
store:
  path: ${STORE_PATH}
%stimezone: Europe/Berlin
defaults:
  default_duration: 2s
  max_duration: 1h
  approval_timeout: 24h
  reminder_after: 2h
  expiry_warning: 10m
  reason: optional
directory:
  managers:
    static: { %s }
teams:
  support: { members: [%s] }
connectors:
  hook: %s
systems:
  crm:
    name: Salesforce CRM
    owners: [U0CAROL01]
    channel: C0CRMOWN1
    connector: hook
    roles:
      viewer: { description: two-step, grant: { group_id: shared }, requesters: [team:support], approval: { steps: [ { approvers: [manager] } ] } }
      s1: { description: auto, grant: { group_id: shared }, requesters: [team:support], approval: auto }
      s2: { description: auto, grant: { group_id: shared }, requesters: [team:support], approval: auto }
      s3: { description: auto, grant: { group_id: shared }, requesters: [team:support], approval: auto }
      u1: { description: auto, grant: { group_id: solo1 }, requesters: [team:support], approval: auto }
      u2: { description: auto, grant: { group_id: solo2 }, requesters: [team:support], approval: auto }
`, audit, strings.Join(managers, ", "), strings.Join(chaosPeople, ", "), hook)
}

var chaosRoles = []string{"viewer", "s1", "s2", "s3", "u1", "u2"}

func newChaosEmu(t *testing.T, opts slackemu.Options) *slackemu.Server {
	t.Helper()
	emu := slackemu.New(opts)
	t.Cleanup(emu.Close)
	for _, id := range testPeople {
		name := strings.Title(strings.ToLower(strings.TrimRight(strings.TrimPrefix(id, "U0"), "0123456789")))
		emu.AddUser(slackemu.User{ID: id, Name: strings.ToLower(name), RealName: name, Email: strings.ToLower(name) + "@example.com", TZ: "Europe/Berlin"})
	}
	for _, c := range []string{"C0AUDIT01", "C0CRMOWN1"} {
		emu.AddChannel(slackemu.Channel{ID: c, Name: strings.ToLower(c), Private: true, BotIsMember: true})
	}
	return emu
}

// approveAll presses Approve on every approval DM to Bob that still has
// buttons, again after a while if it keeps them (the click may have been
// lost with a killed process). It returns the number of clicks.
func approveAll(emu *slackemu.Server, clicked map[string]time.Time, again time.Duration) int {
	n := 0
	for _, m := range emu.Messages("U0BOB0001") {
		has := false
		for _, b := range m.Buttons() {
			has = has || b.Text == "Approve"
		}
		if !has || time.Since(clicked[m.TS]) < again {
			continue
		}
		clicked[m.TS] = time.Now()
		if _, err := emu.ClickButton("U0BOB0001", m.Channel, m.TS, "Approve"); err == nil {
			n++
		}
	}
	return n
}

// TestChaosCrashLoop kills a real accessbot process with SIGKILL at random
// points while people request access (mostly auto-approved, some approved
// by their manager's button click), restarting it each time, for
// CHAOS_LIFECYCLES requests (default 200). Grants last 1–3 s of real time
// and go to a webhook receiver in this process that checks every signature.
// At the end (a final restart, everything left to expire, a clean stop) the
// store and the receiver must agree:
//
//   - every request ID an ack named exists, and every request is terminal or
//     legitimately live (pending: waiting for a person);
//   - the target saw a grant only for requests the store records as
//     approved, and every signature verified;
//   - "revoked exactly as often as the target needs": for every entitlement
//     (group, person) the target's membership ends absent, and the target
//     never saw a revoke while another request of the same entitlement was
//     active per the store's history (that would remove access a live grant
//     still covers). A revoke repeated after a crash (same webhook-id,
//     answered idempotently) is allowed: the store cannot know whether the
//     first attempt landed before the kill, and the contract (DESIGN.md §4
//     invariant 2, §6) makes the repeat harmless;
//   - the audit chain in the store verifies, and so does the mirror file.
func TestChaosCrashLoop(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real processes")
	}
	seed := chaosSeed(t)
	want := chaosLifecycles(t, 200)
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	began := time.Now()

	emu := newChaosEmu(t, slackemu.Options{})
	h := newHookReceiver(t)
	dir := t.TempDir()
	auditPath := filepath.Join(dir, "audit.jsonl")
	config := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(config, []byte(chaosRunbook(h.srv.URL, auditPath)), 0o600); err != nil {
		t.Fatal(err)
	}

	var (
		up      atomic.Bool
		mu      sync.Mutex
		ackIDs  = map[string]bool{} // request IDs named in acks
		created = map[string]bool{} // requests an ack said were created
		acked   atomic.Int64
		unacked atomic.Int64
	)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wr := rand.New(rand.NewPCG(seed+uint64(w)+1, 7))
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				mu.Lock()
				done := len(created) >= want
				mu.Unlock()
				if done || !up.Load() {
					time.Sleep(10 * time.Millisecond) // waiting for a restart: real time
					continue
				}
				user := chaosPeople[wr.IntN(len(chaosPeople))]
				role := chaosRoles[wr.IntN(len(chaosRoles))]
				text := fmt.Sprintf("crm %s %ds chaos", role, 1+wr.IntN(3))
				ack, err := emu.SlashCommand(user, emu.DMChannel(user), "/access", text).WaitAck(4 * time.Second)
				if err != nil {
					unacked.Add(1) // killed before it answered: may or may not exist
					continue
				}
				acked.Add(1)
				out := string(ack.Payload)
				mu.Lock()
				for _, id := range reqID.FindAllString(out, -1) {
					ackIDs[id] = true
				}
				if id := reqID.FindString(out); id != "" && (strings.Contains(out, "granted until") || strings.Contains(out, "submitted") || strings.Contains(out, "approved")) {
					created[id] = true
				}
				mu.Unlock()
			}
		}()
	}
	clicks := 0
	wg.Add(1)
	go func() {
		defer wg.Done()
		clicked := map[string]time.Time{}
		for {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond): // polling the emulator
			}
			if up.Load() {
				n := approveAll(emu, clicked, 3*time.Second)
				mu.Lock()
				clicks += n
				mu.Unlock()
			}
		}
	}()
	defer func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		wg.Wait()
	}()

	// The crash loop: run for a random 0.3–1.5 s, SIGKILL, restart.
	n := 0
	start := func() *crashProc {
		n++
		c := startChild(t, emu, dir, config, n)
		up.Store(true)
		return c
	}
	child := start()
	kills := 0
	bound := time.Now().Add(10 * time.Minute)
	for {
		mu.Lock()
		done := len(created) >= want
		mu.Unlock()
		if done {
			break
		}
		if time.Now().After(bound) {
			t.Fatalf("only %d of %d requests created in 10 min", len(created), want)
		}
		time.Sleep(time.Duration(300+rng.IntN(1200)) * time.Millisecond) // real time: the child runs on it
		up.Store(false)
		child.kill(t)
		kills++
		child = start()
	}
	close(stop)
	wg.Wait()
	// A final kill and restart, then let everything expire: grants last at
	// most 3 s, plus LateAfter and retries. Pending requests wait for Bob,
	// who stopped clicking: they are legitimately live.
	up.Store(false)
	child.kill(t)
	kills++
	child = start()
	settle := func() map[string]*access.Request {
		waitReal(t, 20*time.Second, "every grant to end", func() bool {
			return len(h.Calls("", "")) > 0 && time.Since(lastCall(h)) > 4*time.Second
		})
		up.Store(false)
		if err := child.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		if err := child.cmd.Wait(); err != nil {
			t.Fatalf("accessbot after SIGTERM: %v", err)
		}
		return chaosRequests(t, filepath.Join(dir, "accessbot.db"))
	}
	reqs := settle()
	for tries := 0; tries < 3 && !allSettled(reqs); tries++ {
		t.Logf("not settled yet; restarting once more")
		child = start()
		reqs = settle()
	}

	checkChaosOutcome(t, reqs, h, ackIDs)
	// The audit chain: in the store, and in the mirror file.
	st, err := store.Open(filepath.Join(dir, "accessbot.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	nrec, err := st.VerifyAudit(context.Background())
	if err != nil {
		t.Errorf("store audit chain: %v", err)
	}
	missing := checkMirror(t, st, auditPath)
	st.Close()
	var out, errb bytes.Buffer
	// A SIGKILL between a commit and its mirror line leaves the file
	// behind the store; each start catches the file up from the store, so
	// after the last (clean) stop the mirror is complete and verifies.
	if code := auditVerify([]string{auditPath}, &out, &errb); code != 0 || missing != 0 {
		t.Errorf("accessbot audit verify on the mirror after SIGKILLs: exit %d (%d records missing from the mirror): %s", code, missing, strings.TrimSpace(errb.String()))
	}

	states := map[access.State]int{}
	for _, r := range reqs {
		states[r.State]++
	}
	t.Logf("crash loop: %d requests (%d acked commands, %d cut off by a kill), %d SIGKILLs, %d processes, %d approval clicks, %d webhook calls, %d audit records, states %v, %s",
		len(reqs), acked.Load(), unacked.Load(), kills, n, clicks, len(h.Calls("", "")), nrec, states, time.Since(began).Round(time.Millisecond))
}

// checkMirror checks that every record in the audit mirror file is the
// store's record of the same seq (same hash), in order, and returns how
// many of the store's records the mirror lacks.
func checkMirror(t *testing.T, st *store.Store, path string) int {
	t.Helper()
	want := map[uint64]string{}
	if err := st.AuditRecords(context.Background(), func(rec audit.Record) bool {
		want[rec.Seq] = rec.Hash
		return true
	}); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n := 0
	var last uint64
	for rec, err := range audit.ReadJSONLines(f) {
		if err != nil {
			t.Errorf("audit mirror: %v", err)
			break
		}
		if h, ok := want[rec.Seq]; !ok || h != rec.Hash || rec.Seq <= last {
			t.Errorf("audit mirror record seq %d (hash %s) is not the store's record (%s) or out of order", rec.Seq, rec.Hash, h)
		}
		last = rec.Seq
		n++
	}
	return len(want) - n
}

func lastCall(h *hookReceiver) time.Time {
	var last time.Time
	for _, c := range h.Calls("", "") {
		if c.At.After(last) {
			last = c.At
		}
	}
	return last
}

// chaosRequests reads every request from the store file of a stopped
// accessbot.
func chaosRequests(t *testing.T, path string) map[string]*access.Request {
	t.Helper()
	st, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	rs, err := st.List(context.Background(), access.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*access.Request{}
	for _, r := range rs {
		out[r.ID] = r
	}
	return out
}

// allSettled reports whether every request is terminal or pending.
func allSettled(reqs map[string]*access.Request) bool {
	for _, r := range reqs {
		if !r.State.Terminal() && r.State != access.StatePending {
			return false
		}
	}
	return true
}

// approvedInHistory reports whether the store records r as approved
// (by its approvers or automatically) before any grant.
func approvedInHistory(r *access.Request) bool {
	for _, e := range r.History {
		if e.To == access.StateApproved || e.Event == access.EventApproved {
			return true
		}
	}
	return false
}

// activeSpans returns when r was active per its history: [granted,
// removal started) pairs, the last open-ended if it is still active.
func activeSpans(r *access.Request) [][2]time.Time {
	var out [][2]time.Time
	var from time.Time
	for _, e := range r.History {
		switch {
		case e.To == access.StateActive && e.From != access.StateActive:
			from = e.At
		case e.From == access.StateActive && e.To != access.StateActive && !from.IsZero():
			out = append(out, [2]time.Time{from, e.At})
			from = time.Time{}
		}
	}
	if !from.IsZero() {
		out = append(out, [2]time.Time{from, time.Now().Add(time.Hour)})
	}
	return out
}

// checkChaosOutcome checks the end state of a chaos run against the
// webhook receiver's record (see TestChaosCrashLoop).
func checkChaosOutcome(t *testing.T, reqs map[string]*access.Request, h *hookReceiver, ackIDs map[string]bool) {
	t.Helper()
	for id := range ackIDs {
		if reqs[id] == nil {
			t.Errorf("%s was named in an ack but is not in the store", id)
		}
	}
	for _, r := range reqs {
		if !r.State.Terminal() && r.State != access.StatePending {
			t.Errorf("%s ends %s (history %+v)", r.ID, r.State, r.History)
		}
		if !r.GrantedAt.IsZero() && !approvedInHistory(r) {
			t.Errorf("%s was granted without an approval in its history", r.ID)
		}
	}
	type ent struct{ group, person string }
	member := map[ent]bool{}
	calls := h.Calls("", "")
	sort.SliceStable(calls, func(i, j int) bool { return calls[i].At.Before(calls[j].At) })
	const slack = 100 * time.Millisecond // clock and commit skew between store and receiver
	for _, c := range calls {
		if !c.SigOK || !isMessageID(c.ID, c.P.GrantID, strings.TrimPrefix(c.P.Type, "access.")) {
			t.Errorf("call %s %s: signature ok=%v, webhook-id %q", c.P.Type, c.P.GrantID, c.SigOK, c.ID)
		}
		r := reqs[c.P.GrantID]
		if r == nil {
			t.Errorf("target got %s for %s, which the store does not have", c.P.Type, c.P.GrantID)
			continue
		}
		e := ent{c.P.Params["group_id"], c.P.User.SlackID}
		switch c.P.Type {
		case webhook.TypeGrant:
			if !approvedInHistory(r) {
				t.Errorf("target got a grant for %s (%s), which was never approved", r.ID, r.State)
			}
			if c.Status/100 == 2 {
				member[e] = true
			}
		case webhook.TypeRevoke:
			for _, o := range reqs {
				if o.ID == r.ID || o.Entitlement.Key() != r.Entitlement.Key() {
					continue
				}
				for _, sp := range activeSpans(o) {
					if sp[0].Add(slack).Before(c.At) && c.At.Before(sp[1].Add(-slack)) {
						t.Errorf("revoke for %s at %s removed %v while %s was active (%s – %s)",
							r.ID, c.At.Format("15:04:05.000"), e, o.ID, sp[0].Format("15:04:05.000"), sp[1].Format("15:04:05.000"))
					}
				}
			}
			if c.Status/100 == 2 || c.Status == 404 || c.Status == 410 {
				member[e] = false
			}
		}
	}
	for e, in := range member {
		if in {
			t.Errorf("group %s still has %s at the end", e.group, e.person)
		}
	}
}

// TestChaosSlackAndConnector runs many requests in-process, on the fake
// clock, while Slack misbehaves at random (seeded): socket disconnects
// ("refresh_requested", "warning") and dropped TCP connections, 429 bursts
// on chat.postMessage and chat.update, Web API latency past the 3 s ack
// budget (views.open, users.info), and a connector outage. Afterwards
// (faults cleared, Bob approving what waits for him, time run past every
// expiry):
//
//   - no lost requests: every request ID an ack named is in the store and
//     final (expired);
//   - every envelope was acked within Slack's deadline, the slow ones with
//     "Working on it…" where the answer had to wait;
//   - no duplicate grants: per request, at most one successful grant call
//     and no grant call after a successful one;
//   - every approval copy ends without buttons, and the target ends with
//     nobody holding anything.
//
// StopPings is not used: slack-go's ping watchdog waits its 30 s interval
// of real time before it reconnects, too slow for CI.
func TestChaosSlackAndConnector(t *testing.T) {
	seed := chaosSeed(t)
	want := chaosLifecycles(t, 200) / 2
	rng := rand.New(rand.NewPCG(seed, 1))
	e := startEnv(t, chaosRunbookWith("{ type: memory }", ""))
	conn := e.conns["hook"]

	var down atomic.Bool
	type attempts struct{ ok, failed, afterOK int }
	var amu sync.Mutex
	grants := map[string]*attempts{}
	conn.SetHook(func(ctx context.Context, op string, g access.Grant) error {
		var err error
		if down.Load() {
			err = access.RetryableError(fmt.Errorf("chaos: target down"), 0)
		}
		if op == "grant" {
			amu.Lock()
			a := grants[g.ID]
			if a == nil {
				a = &attempts{}
				grants[g.ID] = a
			}
			switch {
			case a.ok > 0:
				a.afterOK++
			case err != nil:
				a.failed++
			default:
				a.ok++
			}
			amu.Unlock()
		}
		return err
	})

	var (
		mu      sync.Mutex
		ackIDs  = map[string]bool{}
		late    []string
		working int
		cutOff  int
	)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var sent atomic.Int64
	for w := 0; w < 4; w++ {
		wr := rand.New(rand.NewPCG(seed, uint64(w)+2))
		wg.Add(1)
		go func() {
			defer wg.Done()
			for int(sent.Add(1)) <= want {
				user := chaosPeople[wr.IntN(len(chaosPeople))]
				text := fmt.Sprintf("crm %s %dm chaos", chaosRoles[wr.IntN(len(chaosRoles))], 10+wr.IntN(50))
				if wr.IntN(10) == 0 {
					text = "" // opens the modal: views.open, which may be slow
				}
				ack, err := e.emu.SlashCommand(user, e.emu.DMChannel(user), "/access", text).WaitAck(10 * time.Second)
				mu.Lock()
				switch {
				case errors.Is(err, slackemu.ErrLateAck):
					late = append(late, fmt.Sprintf("/access %s by %s: %v", text, user, err))
				case err != nil:
					// The ack went down with a dropped socket: Slack shows the
					// person dispatch_failed, and they try again.
					cutOff++
				}
				out := string(ack.Payload)
				if strings.Contains(out, "Working on it") {
					working++
				}
				for _, id := range reqID.FindAllString(out, -1) {
					ackIDs[id] = true
				}
				mu.Unlock()
			}
		}()
	}
	// The chaos monkey: one fault every few milliseconds until the
	// requests are in.
	faults := map[string]int{}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(time.Duration(30+rng.IntN(170)) * time.Millisecond): // pacing the faults, not waiting for simulated time
			}
			switch k := rng.IntN(7); k {
			case 0:
				e.emu.Disconnect([]string{"refresh_requested", "warning"}[rng.IntN(2)])
				faults["disconnect"]++
			case 1:
				e.emu.DropConnection()
				faults["drop"]++
			case 2:
				e.emu.RateLimit([]string{"chat.postMessage", "chat.update"}[rng.IntN(2)], time.Second, 1+rng.IntN(5))
				faults["429"]++
			case 3:
				m := []string{"views.open", "users.info"}[rng.IntN(2)]
				e.emu.Latency(m, 3500*time.Millisecond)
				faults["latency "+m]++
				time.AfterFunc(200*time.Millisecond, func() { e.emu.Latency(m, 0) })
			case 4, 5:
				down.Store(!down.Load())
				faults["connector toggle"]++
			}
		}
	}()
	for int(sent.Load()) <= want+3 {
		time.Sleep(10 * time.Millisecond) // polling the submitters
	}
	wgDone := make(chan struct{})
	go func() {
		for sent.Load() <= int64(want) {
		}
		close(wgDone)
	}()
	<-wgDone
	close(stop)
	wg.Wait()
	down.Store(false)
	e.emu.Latency("views.open", 0)
	e.emu.Latency("users.info", 0)
	if err := e.emu.WaitConnected(1, 15*time.Second); err != nil {
		t.Fatal(err)
	}
	t.Logf("faults injected: %v; %d commands answered late with \"Working on it\"; %d acks lost with a dropped socket", faults, working, cutOff)
	for _, l := range late {
		t.Errorf("not acked in time: %s", l)
	}

	// Let everything finish: Bob approves what waits for him, time runs
	// past every expiry and retry.
	clicked := map[string]time.Time{}
	deadline := time.Now().Add(30 * time.Second)
	for {
		approveAll(e.emu, clicked, 0)
		e.step(5 * time.Minute)
		rs, err := e.app.Store.List(context.Background(), access.Filter{})
		if err != nil {
			t.Fatal(err)
		}
		open := 0
		for _, r := range rs {
			if !r.State.Terminal() {
				open++
			}
		}
		if open == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d requests still open", open)
		}
	}
	e.waitDelivered()
	rs, err := e.app.Store.List(context.Background(), access.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]*access.Request{}
	for _, r := range rs {
		byID[r.ID] = r
	}
	for id := range ackIDs {
		if r := byID[id]; r == nil {
			t.Errorf("%s was named in an ack but is not in the store", id)
		}
	}
	states := map[access.State]int{}
	for _, r := range rs {
		states[r.State]++
		if r.State != access.StateExpired {
			t.Errorf("%s ends %s, want expired", r.ID, r.State)
		}
	}
	amu.Lock()
	for id, a := range grants {
		if a.ok > 1 || a.afterOK > 0 {
			t.Errorf("%s: %d successful grant calls, %d after a success", id, a.ok, a.afterOK)
		}
	}
	amu.Unlock()
	waitUntil(t, "every approval copy to lose its buttons", func() bool {
		for _, ch := range []string{"U0BOB0001", "C0AUDIT01"} {
			for _, m := range e.emu.Messages(ch) {
				for _, b := range m.Buttons() {
					if b.Text == "Approve" || b.Text == "Deny" {
						return false
					}
				}
			}
		}
		return true
	})
	for _, g := range []string{"shared", "solo1", "solo2"} {
		for _, p := range chaosPeople {
			if conn.Has(access.Grant{Params: map[string]string{"group_id": g}, User: access.Person{SlackID: p}}) {
				t.Errorf("%s still in %s", p, g)
			}
		}
	}
	t.Logf("%d requests, states %v, %d Slack connects, %d response_url calls", len(rs), states, e.emu.Connects(), len(e.emu.Calls("response_url")))
}
