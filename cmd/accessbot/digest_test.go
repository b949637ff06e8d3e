package main

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/audit"
	"github.com/accessbot/accessbot/bot/slackemu"
)

func berlin(t *testing.T) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

// TestScheduleAcrossDST: a daily 09:00 schedule fires at 09:00 Berlin time
// every day across both 2026 changes, so the gap is 23 h into summer time
// and 25 h out of it; Prev agrees with Next.
func TestScheduleAcrossDST(t *testing.T) {
	loc := berlin(t)
	s, err := access.ParseSchedule("daily 09:00")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		start   time.Time
		longDay time.Time // the run after the change
		gap     time.Duration
	}{
		{time.Date(2026, 3, 26, 12, 0, 0, 0, loc), time.Date(2026, 3, 29, 9, 0, 0, 0, loc), 23 * time.Hour},
		{time.Date(2026, 10, 22, 12, 0, 0, 0, loc), time.Date(2026, 10, 25, 9, 0, 0, 0, loc), 25 * time.Hour},
	} {
		prev := s.Prev(tc.start, loc)
		for range 6 {
			next := s.Next(prev, loc)
			if l := next.In(loc); l.Hour() != 9 || l.Minute() != 0 {
				t.Errorf("after %s: fires at %s, want 09:00 local", prev.In(loc), l)
			}
			want := 24 * time.Hour
			if next.Equal(tc.longDay) {
				want = tc.gap
			}
			if got := next.Sub(prev); got != want {
				t.Errorf("from %s to %s: %s, want %s", prev.In(loc), next.In(loc), got, want)
			}
			if p := s.Prev(next, loc); !p.Equal(next) {
				t.Errorf("Prev(%s) = %s, want itself", next.In(loc), p.In(loc))
			}
			if p := s.Prev(next.Add(-time.Nanosecond), loc); !p.Equal(prev) {
				t.Errorf("Prev(just before %s) = %s, want %s", next.In(loc), p.In(loc), prev.In(loc))
			}
			prev = next
		}
	}
	w, _ := access.ParseSchedule("weekly mon 09:00")
	if got, want := w.Prev(time.Date(2026, 3, 30, 8, 59, 0, 0, loc), loc), time.Date(2026, 3, 23, 9, 0, 0, 0, loc); !got.Equal(want) {
		t.Errorf("weekly Prev = %s, want %s", got, want)
	}
	if !(access.Schedule{Off: true}).Prev(time.Now(), loc).IsZero() {
		t.Error("off: want the zero time")
	}
}

type listFunc func(context.Context, access.Filter) ([]*access.Request, error)

func (f listFunc) List(ctx context.Context, fl access.Filter) ([]*access.Request, error) {
	return f(ctx, fl)
}

type postFunc func(context.Context, string, access.Digest) error

func (f postFunc) PostDigest(ctx context.Context, ch string, d access.Digest) error {
	return f(ctx, ch, d)
}

type auditFunc func(context.Context, access.AuditEvent) error

func (f auditFunc) AppendEvent(ctx context.Context, e access.AuditEvent) error { return f(ctx, e) }

// memKV is an in-memory access.KV.
type memKV struct {
	mu sync.Mutex
	m  map[string]string
}

func (k *memKV) Get(_ context.Context, key string) ([]byte, bool, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	v, ok := k.m[key]
	return []byte(v), ok, nil
}

func (k *memKV) Put(_ context.Context, key string, v []byte) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.m[key] = string(v)
	return nil
}

// TestDigestLoopAcrossDST drives the digest pass every 10 minutes of fake
// time over both 2026 DST changes: the daily 09:00 digest is posted once a
// day, at 09:00 Berlin time, and the periods chain without gaps.
func TestDigestLoopAcrossDST(t *testing.T) {
	loc := berlin(t)
	for _, start := range []time.Time{
		time.Date(2026, 3, 26, 12, 0, 0, 0, loc),
		time.Date(2026, 10, 22, 12, 0, 0, 0, loc),
	} {
		clock := slackemu.NewFakeClock(start)
		var posted []access.Digest
		var audited []access.AuditEvent
		g := &access.Digests{
			Runbook: &access.Runbook{Location: loc, Systems: map[string]*access.System{
				"crm":     {ID: "crm", Channel: "C0CRMOWN1", Digest: "daily 09:00"},
				"quiet":   {ID: "quiet", Channel: "C0QUIET01", Digest: "off"},
				"nochan":  {ID: "nochan", Digest: "daily 09:00"},
				"weekly":  {ID: "weekly", Channel: "C0WEEKLY1", Digest: "weekly sun 09:00"},
				"nodigst": {ID: "nodigst", Channel: "C0NODIGS1"},
			}},
			KV: &memKV{m: map[string]string{}}, Store: listFunc(func(context.Context, access.Filter) ([]*access.Request, error) { return nil, nil }),
			Poster: postFunc(func(_ context.Context, ch string, d access.Digest) error {
				if ch != map[string]string{"crm": "C0CRMOWN1", "weekly": "C0WEEKLY1"}[d.System] {
					t.Errorf("%s digest posted to %s", d.System, ch)
				}
				posted = append(posted, d)
				return nil
			}),
			Audit: auditFunc(func(_ context.Context, e access.AuditEvent) error { audited = append(audited, e); return nil }),
		}
		job := g.Job()
		if err := job.Start(t.Context(), clock.Now()); err != nil {
			t.Fatal(err)
		}
		for clock.Now().Before(start.Add(6 * 24 * time.Hour)) {
			clock.Advance(10 * time.Minute)
			if err := job.Run(t.Context(), clock.Now()); err != nil {
				t.Fatal(err)
			}
		}
		var daily []access.Digest
		for _, d := range posted {
			if d.System == "crm" {
				daily = append(daily, d)
			}
		}
		if len(daily) != 6 || len(posted) != 7 || len(audited) != 7 {
			t.Fatalf("from %s: %d daily digests (want 6), %d in all (want 7 with the weekly), %d audited", start, len(daily), len(posted), len(audited))
		}
		for i, d := range daily {
			if l := d.To.In(loc); l.Hour() != 9 || l.Minute() != 0 {
				t.Errorf("digest %d posted at %s, want 09:00 local", i, l)
			}
			if i > 0 && !d.From.Equal(daily[i-1].To) {
				t.Errorf("digest %d covers from %s; the previous ended %s", i, d.From.In(loc), daily[i-1].To.In(loc))
			}
		}
		if first := daily[0]; !first.From.Equal(time.Date(start.Year(), start.Month(), start.Day(), 9, 0, 0, 0, loc)) {
			t.Errorf("first digest from %s, want the run before start-up", first.From.In(loc))
		}
		if audited[0].Event != access.EventDigestPosted || audited[0].System == "" || !strings.Contains(audited[0].Note, ": quiet") {
			t.Errorf("audit record %+v", audited[0])
		}
	}
}

// digestRunbook is testRunbook with a daily 09:00 digest for the CRM.
func digestRunbook(t *testing.T) string {
	t.Helper()
	const at = "    channel: C0CRMOWN1\n"
	if !strings.Contains(testRunbook, at) {
		t.Fatal("testRunbook changed: no CRM channel line")
	}
	return strings.Replace(testRunbook, at, at+"    digest: { schedule: \"daily 09:00\" }\n", 1)
}

// ownerDigests returns the digests posted to the CRM owners' channel (which
// also receives alerts).
func (e *world) ownerDigests() []slackemu.Message {
	var out []slackemu.Message
	for _, m := range e.emu.Messages("C0CRMOWN1") {
		if strings.HasPrefix(m.Text, "Access digest for ") || strings.Contains(m.Text, "Quiet ") {
			out = append(out, m)
		}
	}
	return out
}

// waitOwnerDigests waits until n digests were posted (the start-up pass runs
// on its own goroutine).
func (e *world) waitOwnerDigests(n int) []slackemu.Message {
	e.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		ds := e.ownerDigests()
		if len(ds) >= n {
			return ds
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("%d digests in C0CRMOWN1, want %d", len(ds), n)
		}
		time.Sleep(5 * time.Millisecond) // polling a condition, not waiting for time to pass
	}
}

func (e *world) digestAuditRecords() []audit.Record {
	e.t.Helper()
	var out []audit.Record
	err := e.app.Store.AuditRecords(context.Background(), func(rec audit.Record) bool {
		if rec.Event == access.EventDigestPosted {
			out = append(out, rec)
		}
		return true
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return out
}

func TestDigestEndToEnd(t *testing.T) {
	e := startEnv(t, digestRunbook(t))
	ctx := context.Background()
	// The harness starts Mon 30 Nov 10:00 in Berlin: digests count from
	// today's 09:00 run, and nothing is posted yet.
	raw, ok, err := e.app.Store.KV(digestKVNamespace).Get(ctx, "crm")
	if err != nil || !ok || string(raw) != "2026-11-30T08:00:00Z" {
		t.Fatalf("digest start = %q, %v, %v; want 2026-11-30T08:00:00Z", raw, ok, err)
	}

	// A grant that expires, and a request still waiting.
	e.command("U0ALICE01", "crm viewer 2h ticket 4411")
	e.waitDMs("U0BOB0001", 1)
	e.click("U0BOB0001", "Approve")
	e.waitDMs("U0CAROL01", 1)
	e.click("U0CAROL01", "Approve")
	e.waitState("AR-1001", access.StateActive)
	e.command("U0DAVE001", "crm viewer 1h ticket 4412")
	e.waitDMs("U0BOB0001", 2)
	e.advance(2 * time.Hour)
	e.waitState("AR-1001", access.StateExpired)
	if err := e.app.RunDigests(ctx); err != nil {
		t.Fatal(err)
	}
	if ds := e.ownerDigests(); len(ds) != 0 {
		t.Fatalf("digest posted before its time: %q", ds[0].Text)
	}

	// Tue 1 Dec 09:00 in Berlin.
	e.advance(21 * time.Hour)
	if err := e.app.RunDigests(ctx); err != nil {
		t.Fatal(err)
	}
	ds := e.waitOwnerDigests(1)
	for _, want := range []string{"1 granted", "1 expired", "1 waiting", "Salesforce CRM"} {
		if !strings.Contains(ds[0].Text, want) {
			t.Errorf("digest %q does not say %q", ds[0].Text, want)
		}
	}
	if err := e.app.RunDigests(ctx); err != nil {
		t.Fatal(err)
	}
	if n := len(e.ownerDigests()); n != 1 {
		t.Fatalf("%d digests after a second pass, want 1", n)
	}

	// Down from Tue 09:00 to Thu 10:00: the Wed and Thu runs are missed,
	// and one digest covering the whole gap is posted at start-up.
	e.stop()
	e.clock.Advance(49 * time.Hour)
	e.start()
	e.waitOwnerDigests(2)
	if err := e.app.RunDigests(ctx); err != nil {
		t.Fatal(err)
	}
	if n := len(e.ownerDigests()); n != 2 {
		t.Fatalf("%d digests after the catch-up and another pass, want 2", n)
	}
	recs := e.digestAuditRecords()
	if len(recs) != 2 {
		t.Fatalf("%d digest_posted audit records, want 2", len(recs))
	}
	for i, want := range []string{"period 2026-11-30T08:00:00Z/2026-12-01T08:00:00Z", "period 2026-12-01T08:00:00Z/2026-12-03T09:00:00Z"} {
		if !strings.HasPrefix(recs[i].Note, want) || recs[i].System != "crm" || recs[i].Actor != access.ActorBot {
			t.Errorf("audit record %d = %+v, want note %q…", i, recs[i], want)
		}
	}

	// Another restart with nothing missed posts nothing.
	e.restart()
	if err := e.app.RunDigests(ctx); err != nil {
		t.Fatal(err)
	}
	if n := len(e.ownerDigests()); n != 2 {
		t.Fatalf("%d digests after a restart with nothing due, want 2", n)
	}
}

func TestRetentionEndToEnd(t *testing.T) {
	rb := strings.Replace(testRunbook, "store:\n", "audit:\n  retention: 30d\nstore:\n", 1)
	e := startEnv(t, rb)
	ctx := context.Background()
	e.command("U0ALICE01", "crm viewer 2h ticket 4411 for ACME")
	e.waitDMs("U0BOB0001", 1)
	if n, err := e.app.RunRetention(ctx); n != 0 || err != nil {
		t.Fatalf("RunRetention with nothing old = %d, %v", n, err)
	}
	e.advance(31 * 24 * time.Hour) // the request times out on the way
	e.waitState("AR-1001", access.StateTimedOut)
	n, err := e.app.RunRetention(ctx)
	if err != nil || n == 0 {
		t.Fatalf("RunRetention = %d, %v; want the request's records redacted", n, err)
	}
	err = e.app.Store.AuditRecords(ctx, func(rec audit.Record) bool {
		if rec.RequestID == "AR-1001" && rec.Event == "requested" && (rec.Reason != "" || !rec.Redacted) {
			t.Errorf("old record kept its reason: %+v", rec)
		}
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.app.Store.VerifyAudit(ctx); err != nil {
		t.Fatalf("chain after retention: %v", err)
	}
}
