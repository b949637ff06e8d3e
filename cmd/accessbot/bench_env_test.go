package main

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/bot/slackemu"
	"github.com/accessbot/accessbot/store"
)

// Helpers for the benchmarks in bench_test.go: an emulator and accessbot on
// real time (unlike harness_test.go's fake clock), and store files with
// many active grants built through the public Store API.

// benchRunbook has an auto-approved role on a fast in-memory target, a
// two-step role (manager, then owners) on the same target, and an
// auto-approved role on the rate-limited "slow" target of the expiry storm.
// MANAGERS is replaced by the static manager map of the load users.
const benchRunbook = `
slack:
  app_token: ${SLACK_APP_TOKEN}
  bot_token: ${SLACK_BOT_TOKEN}
  api_url: ${SLACK_API_URL}
  admins: [U0ADMIN01]
store:
  path: ${STORE_PATH}
timezone: UTC
defaults:
  default_duration: 1h
  max_duration: 8h
  approval_timeout: 24h
  reminder_after: 2h
  expiry_warning: 10m
  reason: optional
directory:
  managers:
    static: MANAGERS
connectors:
  fast: { type: memory }
  slow: { type: memory }
systems:
  dash:
    name: Dashboards
    owners: [U0OSCAR01]
    connector: fast
    roles:
      viewer:
        description: View dashboards
        grant: { group_id: "12" }
        requesters: [everyone]
        approval: auto
  crm:
    name: Salesforce CRM
    owners: [U0CAROL01]
    connector: fast
    roles:
      viewer:
        description: Read-only customer records
        grant: { group_id: 00g1viewer }
        requesters: [everyone]
        approval: { steps: [ { approvers: [manager] }, { approvers: [owners] } ] }
  legacy:
    name: Legacy ERP
    owners: [U0OSCAR01]
    connector: slow
    roles:
      viewer:
        description: Read-only ERP
        grant: { group_id: erp-ro }
        requesters: [everyone]
        approval: auto
`

// Fixed people: the manager and the owner who click approvals.
const (
	benchManager = "U0BOB0001"
	benchOwner   = "U0CAROL01"
)

func benchUser(i int) string { return fmt.Sprintf("U9%07d", i) }

// benchEnv is an emulator (real clock) plus accessbot's configuration for
// a store file; start runs the App.
type benchEnv struct {
	tb    testing.TB
	emu   *slackemu.Server
	cfg   *Config
	users int
}

// newBenchEnv starts an emulator with users load users (each managed by
// benchManager) and loads benchRunbook for the store at dbPath.
func newBenchEnv(tb testing.TB, dbPath string, users int) *benchEnv {
	tb.Helper()
	emu := slackemu.New(slackemu.Options{})
	tb.Cleanup(emu.Close)
	fixed := []string{"U0ADMIN01", benchManager, benchOwner, "U0OSCAR01"}
	var mgr strings.Builder
	mgr.WriteString("{")
	for i := range users {
		id := benchUser(i)
		emu.AddUser(slackemu.User{ID: id, Name: strings.ToLower(id), RealName: id, Email: strings.ToLower(id) + "@example.com", TZ: "UTC"})
		if i > 0 {
			mgr.WriteString(", ")
		}
		fmt.Fprintf(&mgr, "%s: %s", id, benchManager)
	}
	mgr.WriteString("}")
	for _, id := range fixed {
		emu.AddUser(slackemu.User{ID: id, Name: strings.ToLower(id), RealName: id, Email: strings.ToLower(id) + "@example.com", TZ: "UTC"})
	}
	rb := strings.Replace(benchRunbook, "MANAGERS", mgr.String(), 1)
	if users == 0 {
		rb = strings.Replace(rb, "static: {}", "static: { U0ADMIN01: U0BOB0001 }", 1)
	}
	dir := tb.TempDir()
	path := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(path, []byte(rb), 0o600); err != nil {
		tb.Fatal(err)
	}
	cfg, err := LoadConfig(path, func(k string) string {
		switch k {
		case "SLACK_APP_TOKEN":
			return emu.AppToken()
		case "SLACK_BOT_TOKEN":
			return emu.BotToken()
		case "SLACK_API_URL":
			return emu.APIURL()
		case "STORE_PATH":
			return dbPath
		}
		return ""
	})
	if err != nil {
		tb.Fatalf("load config: %v", err)
	}
	return &benchEnv{tb: tb, emu: emu, cfg: cfg, users: users}
}

// benchApp is a running App.
type benchApp struct {
	*App
	cancel  context.CancelFunc
	done    chan error
	started time.Time // just before App.Run
}

// start builds the App (production options: real clock, real wheel, fsync
// on) adjusted by opts, and runs it.
func (e *benchEnv) start(opts ...func(*AppOptions)) *benchApp {
	e.tb.Helper()
	o := AppOptions{}
	for _, f := range opts {
		f(&o)
	}
	app, err := NewApp(e.cfg, o)
	if err != nil {
		e.tb.Fatalf("NewApp: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	a := &benchApp{App: app, cancel: cancel, done: make(chan error, 1)}
	a.started = time.Now()
	go func() { a.done <- app.Run(ctx) }()
	return a
}

// stop ends Run and closes the App.
func (a *benchApp) stop(tb testing.TB) {
	a.cancel()
	if err := <-a.done; err != nil {
		tb.Errorf("app.Run: %v", err)
	}
	a.Close()
}

// grantSpec describes the active grants of a benchmark store file.
type grantSpec struct {
	n       int
	system  string // runbook system and role of every grant
	role    string
	conn    string
	users   int                   // requesters are benchUser(i % users)
	expires func(i int) time.Time // expiry of grant i
}

// activeGrant is grant i of spec as the service would have stored it after
// request, approval and grant: active, with its history (3 audit records)
// and a distinct entitlement (the group is unique per grant, so no grant
// covers another and every expiry calls the target).
func activeGrant(spec grantSpec, i int) *access.Request {
	user := benchUser(i % spec.users)
	exp := spec.expires(i)
	at := exp.Add(-time.Hour)
	r := &access.Request{
		Requester: user, System: spec.system, Role: spec.role, Duration: time.Hour,
		Reason: "customer ticket 4411: export of the Q3 renewal pipeline",
		Entitlement: access.Entitlement{Connector: spec.conn,
			Params: map[string]string{"group_id": strconv.Itoa(i)}, Person: user},
		CreatedAt: at,
	}
	for _, ev := range []access.Event{access.EventRequested, access.EventApproved, access.EventGranted} {
		actor := user
		if ev != access.EventRequested {
			actor = access.ActorBot
		}
		if err := access.Apply(r, access.Transition{Event: ev, Actor: actor, At: at}); err != nil {
			panic(err)
		}
	}
	r.DecidedAt, r.GrantedAt, r.ExpiresAt = at, at, exp
	return r
}

// buildGrants writes spec's grants into a new store at path through the
// public Store.Create, from 128 goroutines so the group-commit writer
// batches them (fsync off: building the file is setup, not measured).
func buildGrants(tb testing.TB, path string, spec grantSpec) {
	tb.Helper()
	start := time.Now()
	st, err := store.Open(path, store.Options{NoSync: true})
	if err != nil {
		tb.Fatal(err)
	}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
		next = make(chan int, 1024)
	)
	for range 128 {
		wg.Go(func() {
			for i := range next {
				if _, err := st.Create(context.Background(), activeGrant(spec, i)); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			}
		})
	}
	for i := range spec.n {
		next <- i
	}
	close(next)
	wg.Wait()
	if err := st.Close(); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		tb.Fatalf("build %d grants: %d errors, first %v", spec.n, len(errs), errs[0])
	}
	fi, _ := os.Stat(path)
	fmt.Fprintf(os.Stderr, "store file: %d grants, %d MiB, built in %v\n", spec.n, fi.Size()>>20, time.Since(start).Round(time.Millisecond))
}

// benchGrants is BENCH_GRANTS (default 100,000).
func benchGrants(tb testing.TB) int {
	n := 100_000
	if v := os.Getenv("BENCH_GRANTS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n <= 0 {
			tb.Fatalf("BENCH_GRANTS=%q", v)
		}
	}
	return n
}

func envInt(tb testing.TB, name string, def int) int {
	if v := os.Getenv(name); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			tb.Fatalf("%s=%q", name, v)
		}
		return n
	}
	return def
}

// pct returns the p-th percentile (0–100) of sorted ds.
func pct(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	i := int(float64(len(ds)-1) * p / 100)
	return ds[i]
}

func sortedCopy(ds []time.Duration) []time.Duration {
	out := slices.Clone(ds)
	slices.Sort(out)
	return out
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// msgTimer is a slog handler that records when a message was first logged
// (the App logs "deadlines armed" when Service.Arm has finished) and
// discards everything.
type msgTimer struct {
	mu     sync.Mutex
	times  map[string]time.Time
	counts map[string]int
}

func newMsgTimer() *msgTimer {
	return &msgTimer{times: map[string]time.Time{}, counts: map[string]int{}}
}

func (h *msgTimer) Enabled(context.Context, slog.Level) bool { return true }
func (h *msgTimer) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	if _, ok := h.times[r.Message]; !ok {
		h.times[r.Message] = time.Now()
	}
	h.counts[r.Message]++
	h.mu.Unlock()
	return nil
}
func (h *msgTimer) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *msgTimer) WithGroup(string) slog.Handler      { return h }

func (h *msgTimer) at(msg string) (time.Time, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	t, ok := h.times[msg]
	return t, ok
}

func (h *msgTimer) count(msg string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.counts[msg]
}

// histQuantile returns the upper bound of the bucket holding quantile q of
// the histogram name (with label kind, if not empty) in m's registry.
func histQuantile(tb testing.TB, m *Metrics, name, kind string, q float64) float64 {
	fams, err := m.reg.Gather()
	if err != nil {
		tb.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
		for _, met := range f.GetMetric() {
			if kind != "" && !slices.ContainsFunc(met.GetLabel(), func(l *dto.LabelPair) bool { return l.GetName() == "kind" && l.GetValue() == kind }) {
				continue
			}
			h := met.GetHistogram()
			need := q * float64(h.GetSampleCount())
			for _, bk := range h.GetBucket() {
				if float64(bk.GetCumulativeCount()) >= need {
					return bk.GetUpperBound()
				}
			}
			return math.Inf(1)
		}
	}
	return math.NaN()
}
