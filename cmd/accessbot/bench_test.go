package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/bot/slackemu"
	"github.com/accessbot/accessbot/connectors/memory"
	"github.com/accessbot/accessbot/internal/wheel"
	"github.com/accessbot/accessbot/store"
)

// Benchmarks of the whole application (issue "Benchmarks", items 3 and 4).
// None runs under plain `go test`; each runs its workload once, so use
// -benchtime=1x. Results and their reading are in BENCHMARKS.md.
//
//	BENCH_GRANTS=1000000 go test ./cmd/accessbot -run '^$' -bench Restart -benchtime=1x -timeout 60m
//	E2E_RATE=200 E2E_SECONDS=30 go test ./cmd/accessbot -run '^$' -bench E2ELoad -benchtime=1x
//	STORM_GRANTS=2000 go test ./cmd/accessbot -run '^$' -bench ExpiryStorm -benchtime=1x -timeout 60m

// BenchmarkRestart: start-up with N active grants (BENCH_GRANTS, default
// 100k; 1% overdue), same file, same run, warm page cache:
//
//   - index: store.Open → Service.Arm into a real wheel.Keyed, reading only
//     the deadline index (every future deadline armed, overdue ones queued);
//   - decode-all: store.Open → read and JSON-decode every open request
//     (Store.List) → arm the same wheel from the decoded NextDeadline (the
//     way Vault restores leases);
//   - first-ack: the whole App on the emulator: time from App.Run's start to
//     the ack of an /access command sent at that moment, and to "deadlines
//     armed"; grants=0 is the same on an empty store.
func BenchmarkRestart(b *testing.B) {
	n := benchGrants(b)
	overdue := n / 100
	dir, err := os.MkdirTemp("", "accessbot-bench-restart-")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { os.RemoveAll(dir) }) // about 4 GiB for 1 M grants
	path := filepath.Join(dir, "grants.db")
	built := time.Now()
	spec := grantSpec{n: n, system: "dash", role: "viewer", conn: "fast", users: 1000, expires: func(i int) time.Time {
		if i%100 == 0 {
			return built.Add(-time.Minute - time.Duration(i)*time.Millisecond)
		}
		return built.Add(10*time.Minute + time.Duration(i%480)*time.Minute + time.Duration(i%997)*time.Second)
	}}
	buildGrants(b, path, spec)
	ctx := context.Background()
	open := []access.State{access.StatePending, access.StateApproved, access.StateActive, access.StateRevoking}

	type restore func(st *store.Store, w *wheel.Keyed, now time.Time) (armed, queued int, err error)
	variants := []struct {
		name string
		run  restore
	}{
		{"index", func(st *store.Store, w *wheel.Keyed, now time.Time) (int, int, error) {
			logs := newMsgTimer()
			svc := access.NewService(access.ServiceConfig{Runbook: &access.Runbook{}, Store: st, Scheduler: w,
				Queue: overdue + 1, Logger: slog.New(logs)})
			total, err := svc.Arm(ctx)
			if dropped := logs.count("work queue full; the reconcile pass picks the requests up"); dropped > 0 {
				return 0, 0, fmt.Errorf("%d overdue requests not queued", dropped)
			}
			return w.Len(), total - w.Len(), err
		}},
		{"decode-all", func(st *store.Store, w *wheel.Keyed, now time.Time) (int, int, error) {
			queue := make(chan string, overdue+1)
			rs, err := st.List(ctx, access.Filter{States: open})
			if err != nil {
				return 0, 0, err
			}
			for _, r := range rs {
				at := r.NextDeadline()
				switch {
				case at.IsZero():
				case !at.After(now):
					queue <- r.ID
				default:
					w.Arm(r.ID, at)
				}
			}
			return w.Len(), len(queue), nil
		}},
	}
	times := map[string]time.Duration{}
	for _, v := range variants {
		b.Run(fmt.Sprintf("%s/grants=%d", v.name, n), func(b *testing.B) {
			var total time.Duration
			for range b.N {
				runtime.GC()
				now := time.Now()
				start := time.Now()
				st, err := store.Open(path, store.Options{})
				if err != nil {
					b.Fatal(err)
				}
				w := wheel.NewKeyed(wheel.Options{}, now, func(string) {})
				armed, queued, err := v.run(st, w, now)
				d := time.Since(start)
				total += d
				if cerr := st.Close(); err == nil {
					err = cerr
				}
				if err != nil || armed != n-overdue || queued != overdue {
					b.Fatalf("armed %d, queued %d, %v; want %d and %d", armed, queued, err, n-overdue, overdue)
				}
			}
			avg := total / time.Duration(b.N)
			times[v.name] = avg
			b.ReportMetric(ms(avg), "ms/restart")
			b.ReportMetric(float64(n)/avg.Seconds(), "grants/s")
			if v.name == "decode-all" && times["index"] > 0 {
				b.ReportMetric(float64(avg)/float64(times["index"]), "x-slower-than-index")
			}
		})
	}

	empty := filepath.Join(dir, "empty.db")
	for _, c := range []struct {
		path   string
		grants int
	}{{empty, 0}, {path, n}} {
		b.Run(fmt.Sprintf("first-ack/grants=%d", c.grants), func(b *testing.B) {
			env := newBenchEnv(b, c.path, 1000)
			var ack, armed, openT, emuLat time.Duration
			for i := range b.N {
				runtime.GC()
				logs := newMsgTimer()
				t0 := time.Now()
				a := env.start(func(o *AppOptions) { o.Logger = slog.New(logs) })
				openT += a.started.Sub(t0)
				user := benchUser(i)
				envl := env.emu.SlashCommand(user, env.emu.DMChannel(user), "/access", "dash viewer 1h first ack")
				res, err := envl.WaitAck(30 * time.Second)
				got := time.Now()
				if err != nil {
					b.Fatal(err)
				}
				if !regexp.MustCompile(`AR-\d+`).Match(res.Payload) {
					b.Fatalf("ack without a request id: %s", res.Payload)
				}
				ack += got.Sub(a.started)
				emuLat += res.Latency
				deadline := time.Now().Add(5 * time.Minute)
				for {
					if t, ok := logs.at("deadlines armed"); ok {
						armed += t.Sub(a.started)
						break
					}
					if time.Now().After(deadline) {
						b.Fatal("deadlines never armed")
					}
					time.Sleep(time.Millisecond)
				}
				if got := a.Wheel.Len(); got < c.grants-overdue {
					b.Fatalf("wheel holds %d, want ≥ %d", got, c.grants-overdue)
				}
				a.stop(b)
			}
			N := time.Duration(b.N)
			b.ReportMetric(ms(ack/N), "ms-run-to-first-ack")
			b.ReportMetric(ms(armed/N), "ms-run-to-armed")
			b.ReportMetric(ms(openT/N), "ms-NewApp")
			b.ReportMetric(ms(emuLat/N), "ms-emu-ack-latency")
		})
	}
}

// BenchmarkE2ELoad offers E2E_RATE /access commands per second (default 20)
// for E2E_SECONDS (default 3) through the emulator to the production App
// (real clock, real wheel, fsync on). Commands are paced at fixed intervals;
// every E2E_TWO_STEP_EVERY-th (default 10) goes to a two-step role whose
// approvals are clicked through the emulator by the manager and the owner,
// the rest are auto-approved. Every grant lasts E2E_GRANT_SECONDS (default
// 3 s). It waits for every lifecycle to end and reports ack latency (as
// the emulator measured it), lifecycles per second and revocation lag
// (EndedAt − ExpiresAt of each request). E2E_ACK_BUDGET_MS (default 2000,
// the bot's default) is how long the bot may work before it acks with
// "Working on it…" and answers through response_url.
func BenchmarkE2ELoad(b *testing.B) {
	rate := envInt(b, "E2E_RATE", 20)
	secs := envInt(b, "E2E_SECONDS", 3)
	grantSecs := envInt(b, "E2E_GRANT_SECONDS", 3)
	twoStep := envInt(b, "E2E_TWO_STEP_EVERY", 10)
	total := rate * secs
	// Enough people that nobody asks again while their last grant is
	// still active (that is refused as a duplicate: a benchmark artefact,
	// not load): each user asks every users/rate seconds.
	users := min(max(2000, total/10, rate*(grantSecs+3)), total)
	env := newBenchEnv(b, filepath.Join(b.TempDir(), "e2e.db"), users)
	logs := newMsgTimer()
	budget := time.Duration(envInt(b, "E2E_ACK_BUDGET_MS", 2000)) * time.Millisecond
	a := env.start(func(o *AppOptions) { o.Logger = slog.New(logs); o.AckBudget = budget })
	defer a.stop(b)
	if err := env.emu.WaitConnects(1, 10*time.Second); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()

	// The approvers click Approve on every approval DM they get.
	stopClick := make(chan struct{})
	var clickMu sync.Mutex
	var clickLats []time.Duration
	clickFailed := 0
	var clickWG sync.WaitGroup
	clickWG.Go(func() {
		clicked := map[string]bool{}
		for {
			select {
			case <-stopClick:
				return
			case <-time.After(10 * time.Millisecond):
			}
			for _, approver := range []string{benchManager, benchOwner} {
				for _, m := range env.emu.Messages(approver) {
					if clicked[m.TS] || !slices.ContainsFunc(m.Buttons(), func(bt slackemu.Button) bool { return bt.Text == "Approve" }) {
						continue
					}
					clicked[m.TS] = true
					envl, err := env.emu.ClickButton(approver, m.Channel, m.TS, "Approve")
					if err != nil {
						b.Error(err)
						continue
					}
					clickWG.Go(func() {
						res, err := envl.WaitAck(10 * time.Second)
						clickMu.Lock()
						defer clickMu.Unlock()
						if err != nil {
							clickFailed++
						}
						clickLats = append(clickLats, res.Latency)
					})
				}
			}
		}
	})

	type sent struct {
		lat     time.Duration
		err     error
		working bool   // acked with "Working on it…": the answer follows through response_url
		busy    bool   // refused at once, "very busy": nothing was created
		other   string // an answer naming no request (not busy): what it said
		dup     bool   // refused as a duplicate of the person's request still open
	}
	results := make([]sent, total)
	var wg sync.WaitGroup
	start := time.Now()
	interval := time.Second / time.Duration(rate)
	var behind time.Duration
	for i := range total {
		due := start.Add(time.Duration(i) * interval)
		if d := time.Until(due); d > 0 {
			time.Sleep(d)
		} else {
			behind = max(behind, -d)
		}
		user := benchUser(i % users)
		text := fmt.Sprintf("dash viewer %ds", grantSecs)
		if i%twoStep == twoStep-1 {
			text = fmt.Sprintf("crm viewer %ds ticket %d", grantSecs, i)
		}
		envl := env.emu.SlashCommand(user, env.emu.DMChannel(user), "/access", text)
		wg.Go(func() {
			res, err := envl.WaitAck(10 * time.Second)
			p := string(res.Payload)
			results[i] = sent{lat: res.Latency, err: err, working: strings.Contains(p, "Working on it"),
				busy: strings.Contains(p, "very busy")}
			if err == nil && !results[i].busy && !results[i].working && !strings.Contains(p, "AR-") {
				results[i].other = p
			}
			results[i].dup = strings.Contains(p, "You already have")
		})
	}
	sendDur := time.Since(start)
	wg.Wait()

	var acks []time.Duration
	late, unacked, working, busy, other, dups := 0, 0, 0, 0, 0, 0
	for _, r := range results {
		if r.busy {
			busy++
		}
		if r.dup {
			dups++
		}
		if r.other != "" {
			if other == 0 {
				b.Logf("an answer naming no request: %s", r.other)
			}
			other++
		}
		switch {
		case errors.Is(r.err, slackemu.ErrLateAck):
			late++
		case r.err != nil:
			unacked++
		case r.working:
			working++
		}
		if r.err == nil || errors.Is(r.err, slackemu.ErrLateAck) {
			acks = append(acks, r.lat)
		}
	}

	// Wait for every request to be stored and every lifecycle to end.
	ctx := context.Background()
	deadline := time.Now().Add(time.Duration(grantSecs)*time.Second + 2*time.Minute)
	var final []*access.Request
	stable := 0
	for {
		all, err := a.Store.List(ctx, access.Filter{})
		if err != nil {
			b.Fatal(err)
		}
		open := 0
		for _, r := range all {
			if !r.State.Terminal() {
				open++
			}
		}
		// Done when nothing is open and nothing new appeared for a while
		// (requests refused as duplicates never appear).
		if open == 0 && len(all) == len(final) && len(all) > 0 {
			stable++
		} else {
			stable = 0
		}
		final = all
		if (len(all) >= total-busy && open == 0) || stable >= 5 || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	close(stopClick)
	clickWG.Wait()
	b.StopTimer()

	var lags, lifetimes []time.Duration
	expired := 0
	var lastEnd time.Time
	for _, r := range final {
		if r.State != access.StateExpired {
			continue
		}
		expired++
		lags = append(lags, r.EndedAt.Sub(r.ExpiresAt))
		lifetimes = append(lifetimes, r.EndedAt.Sub(r.CreatedAt))
		if r.EndedAt.After(lastEnd) {
			lastEnd = r.EndedAt
		}
	}
	acks, lags, lifetimes = sortedCopy(acks), sortedCopy(lags), sortedCopy(lifetimes)
	window := lastEnd.Sub(start)
	b.ReportMetric(float64(total)/sendDur.Seconds(), "offered-cmds/s")
	b.ReportMetric(ms(behind), "ms-pacer-max-behind")
	b.ReportMetric(ms(pct(acks, 50)), "ack-p50-ms")
	b.ReportMetric(ms(pct(acks, 99)), "ack-p99-ms")
	b.ReportMetric(ms(pct(acks, 100)), "ack-max-ms")
	// The bot's own view (receipt → ack sent), bucket upper bounds: the
	// rest of the emulator's figure is transport and scheduling.
	b.ReportMetric(1000*histQuantile(b, a.Metrics, "accessbot_slack_ack_seconds", "slash", 0.50), "bot-ack-p50-bucket-ms")
	b.ReportMetric(1000*histQuantile(b, a.Metrics, "accessbot_slack_ack_seconds", "slash", 0.99), "bot-ack-p99-bucket-ms")
	b.ReportMetric(1000*histQuantile(b, a.Metrics, "accessbot_revocation_lag_seconds", "", 0.99), "metric-revoke-lag-p99-bucket-ms")
	b.ReportMetric(float64(unacked), "cmds-not-acked")
	b.ReportMetric(float64(late), "cmds-acked-late")
	b.ReportMetric(float64(working), "cmds-acked-working-on-it")
	b.ReportMetric(float64(busy), "cmds-refused-busy")
	b.ReportMetric(float64(other), "cmds-answered-otherwise")
	b.ReportMetric(float64(dups), "cmds-refused-duplicate")
	b.ReportMetric(float64(total-busy-dups-len(final)), "requests-missing")
	b.ReportMetric(float64(len(env.emu.Failures())), "slack-failures")
	b.ReportMetric(float64(expired), "lifecycles-expired")
	b.ReportMetric(float64(len(final)-expired), "lifecycles-not-expired")
	clickLats = sortedCopy(clickLats)
	b.ReportMetric(float64(len(clickLats)), "approval-clicks")
	b.ReportMetric(float64(clickFailed), "clicks-late-or-unacked")
	b.ReportMetric(ms(pct(clickLats, 99)), "click-ack-p99-ms")
	b.ReportMetric(float64(expired)/window.Seconds(), "lifecycles/s")
	b.ReportMetric(ms(pct(lags, 50)), "revoke-lag-p50-ms")
	b.ReportMetric(ms(pct(lags, 99)), "revoke-lag-p99-ms")
	b.ReportMetric(ms(pct(lags, 100)), "revoke-lag-max-ms")
	b.ReportMetric(ms(pct(lifetimes, 50)), "lifecycle-p50-ms")
	b.ReportMetric(float64(logs.count("work queue full; the reconcile pass picks the requests up")), "queue-full-drops")
}

// rateLimited is a target allowing rate calls per second (token bucket on
// real time, burst = rate); beyond it, it answers like HTTP 429 with a
// Retry-After of the time until the next token, in whole seconds.
type rateLimited struct {
	*memory.Connector
	rate float64

	mu     sync.Mutex
	tokens float64
	last   time.Time
	calls  []time.Time // every Revoke call
	ok     []time.Time // every Revoke that got through
	denied int
}

func newRateLimited(rate int) *rateLimited {
	return &rateLimited{Connector: memory.New(), rate: float64(rate), tokens: float64(rate), last: time.Now()}
}

func (c *rateLimited) Revoke(ctx context.Context, g access.Grant) error {
	c.mu.Lock()
	now := time.Now()
	c.calls = append(c.calls, now)
	c.tokens = min(c.rate, c.tokens+now.Sub(c.last).Seconds()*c.rate)
	c.last = now
	if c.tokens < 1 {
		wait := time.Duration((1 - c.tokens) / c.rate * float64(time.Second))
		c.denied++
		c.mu.Unlock()
		retry := wait.Truncate(time.Second) + time.Second // Retry-After is whole seconds, rounded up
		return access.RetryableError(fmt.Errorf("429 Too Many Requests (Retry-After: %d)", int(retry.Seconds())), retry)
	}
	c.tokens--
	c.ok = append(c.ok, now)
	c.mu.Unlock()
	return c.Connector.Revoke(ctx, g)
}

// perSecond returns the largest number of ts in any one-second window
// aligned to from, and the number of seconds from from to the last t.
func perSecond(ts []time.Time, from time.Time) (peak int, span time.Duration) {
	buckets := map[int64]int{}
	for _, t := range ts {
		s := int64(t.Sub(from) / time.Second)
		buckets[s]++
		peak = max(peak, buckets[s])
		span = max(span, t.Sub(from))
	}
	return peak, span
}

// BenchmarkExpiryStorm: STORM_GRANTS (default 2,000) active grants, created
// directly in the store, all expiring within the same second, on a target
// that allows STORM_TARGET_RATE (default 50) calls/s and answers 429 with
// Retry-After beyond it. The App runs as in production (real clock, real
// wheel, 8 workers, reconcile every 30 s, fsync on) with Slack's
// per-channel chat.postMessage limit on at the emulator. Reports the time
// to revoke everything, the calls/s the target saw, the number of grants
// not expired (lost) and the requester notifications' pacing. The grants
// belong to STORM_USERS requesters (default min(N, 1000)), round robin, so
// each requester's DM gets N/STORM_USERS removal notices.
func BenchmarkExpiryStorm(b *testing.B) {
	n := envInt(b, "STORM_GRANTS", 2000)
	rate := envInt(b, "STORM_TARGET_RATE", 50)
	users := envInt(b, "STORM_USERS", min(n, 1000))
	path := filepath.Join(b.TempDir(), "storm.db")
	// Leave time to build the file and start: the cohort must be armed in
	// the wheel (not found overdue at start-up).
	expiry := time.Now().Add(15*time.Second + time.Duration(n)*300*time.Microsecond).Truncate(time.Second)
	buildGrants(b, path, grantSpec{n: n, system: "legacy", role: "viewer", conn: "slow", users: users,
		expires: func(i int) time.Time { return expiry.Add(time.Duration(i%1000) * time.Millisecond) }})
	env := newBenchEnv(b, path, users)
	env.emu.SetChannelRateLimit(true)
	target := newRateLimited(rate)
	logs := newMsgTimer()
	a := env.start(func(o *AppOptions) {
		o.Logger = slog.New(logs)
		o.Connectors = map[string]access.Connector{"slow": target}
	})
	defer a.stop(b)
	if err := env.emu.WaitConnects(1, 10*time.Second); err != nil {
		b.Fatal(err)
	}
	armedAt, ok := time.Time{}, false
	for range 6000 {
		if armedAt, ok = logs.at("deadlines armed"); ok {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !ok || !armedAt.Before(expiry) {
		b.Logf("warning: the cohort was armed at %v, after its expiry %v (found overdue at start-up)", armedAt, expiry)
	}
	b.ResetTimer()

	// Wait until the target has revoked every grant, then for the notices.
	limit := expiry.Add(time.Duration(n/rate)*3*time.Second + 3*time.Minute)
	lastLog := time.Now()
	for target.Calls().Revoke < n && time.Now().Before(limit) {
		time.Sleep(100 * time.Millisecond)
		if time.Since(lastLog) >= 10*time.Second {
			lastLog = time.Now()
			target.mu.Lock()
			okN, deniedN := len(target.ok), target.denied
			target.mu.Unlock()
			posts, limited := 0, 0
			chans := map[string]int{}
			for _, c := range env.emu.Calls("chat.postMessage") {
				if c.HTTPStatus == 429 || c.Error == "ratelimited" {
					limited++
					continue
				}
				posts++
				chans[c.Params["channel"]]++
			}
			busiest, most := "", 0
			for ch, k := range chans {
				if k > most {
					busiest, most = ch, k
				}
			}
			fmt.Fprintf(os.Stderr, "storm +%3.0fs: revoked %d/%d, target 429s %d, posts %d (busiest channel %s: %d), slack 429s %d, queue-full drops %d\n",
				time.Since(expiry).Seconds(), okN, n, deniedN, posts, busiest, most, limited, logs.count("work queue full; the reconcile pass picks the requests up"))
		}
	}
	drained := time.Now()
	delivered := func() (okDM []time.Time, perChan map[string][]time.Time, limited int) {
		perChan = map[string][]time.Time{}
		for _, c := range env.emu.Calls("chat.postMessage") {
			if c.HTTPStatus == 429 || c.Error == "ratelimited" {
				limited++
				continue
			}
			ch := c.Params["channel"]
			if c.Error == "" {
				okDM = append(okDM, c.At)
				perChan[ch] = append(perChan[ch], c.At)
			}
		}
		return
	}
	for {
		okDM, _, _ := delivered()
		if len(okDM) >= n || time.Now().After(limit) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	b.StopTimer()

	ctx := context.Background()
	left, err := a.Store.List(ctx, access.Filter{States: []access.State{access.StateActive, access.StateRevoking}})
	if err != nil {
		b.Fatal(err)
	}
	expired, err := a.Store.List(ctx, access.Filter{States: []access.State{access.StateExpired}})
	if err != nil {
		b.Fatal(err)
	}
	var lags []time.Duration
	for _, r := range expired {
		lags = append(lags, r.EndedAt.Sub(r.ExpiresAt))
	}
	lags = sortedCopy(lags)

	target.mu.Lock()
	calls, oks, denied := slices.Clone(target.calls), slices.Clone(target.ok), target.denied
	target.mu.Unlock()
	peakCalls, _ := perSecond(calls, expiry)
	peakOK, okSpan := perSecond(oks, expiry)
	okDM, perChan, limited := delivered()
	peakPosts, postSpan := perSecond(okDM, expiry)
	peakChan := 0
	for _, ts := range perChan {
		p, _ := perSecond(ts, expiry)
		peakChan = max(peakChan, p)
	}

	b.ReportMetric(float64(n), "grants")
	b.ReportMetric(float64(len(left)), "not-expired")
	b.ReportMetric(float64(n-len(expired)-len(left)), "missing")
	b.ReportMetric(drained.Sub(expiry).Seconds(), "s-expiry-to-all-revoked")
	b.ReportMetric(okSpan.Seconds(), "s-expiry-to-last-ok-call")
	b.ReportMetric(float64(n)/okSpan.Seconds(), "revokes/s")
	b.ReportMetric(float64(n)/float64(rate), "s-ideal-at-target-rate")
	b.ReportMetric(float64(peakOK), "peak-ok-calls-in-1s")
	b.ReportMetric(float64(peakCalls), "peak-calls-in-1s")
	b.ReportMetric(float64(len(calls)), "target-calls")
	b.ReportMetric(float64(denied), "target-429s")
	b.ReportMetric(ms(pct(lags, 50))/1000, "lag-p50-s")
	b.ReportMetric(ms(pct(lags, 99))/1000, "lag-p99-s")
	b.ReportMetric(ms(pct(lags, 100))/1000, "lag-max-s")
	b.ReportMetric(float64(len(okDM)), "notices-posted")
	b.ReportMetric(float64(limited), "slack-429s")
	b.ReportMetric(float64(peakPosts), "peak-posts-in-1s")
	b.ReportMetric(float64(peakChan), "peak-posts-1-channel-in-1s")
	b.ReportMetric(postSpan.Seconds(), "s-expiry-to-last-notice")
	b.ReportMetric(float64(logs.count("work queue full; the reconcile pass picks the requests up")), "queue-full-drops")
}
