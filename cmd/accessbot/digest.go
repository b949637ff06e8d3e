package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/audit"
)

// digestKVNamespace is the store.KV namespace recording, per system ID, the
// end of the period the system's last digest covered (RFC 3339, UTC).
const digestKVNamespace = "digest"

// eventDigestPosted is the audit event of a posted digest.
const eventDigestPosted = "digest_posted"

// Prev returns the latest time at or before at at which the schedule fires,
// in loc (the zero time for an Off schedule). Like Next it follows wall
// time, so a daily 09:00 is 09:00 local on both sides of a DST change.
func (s Schedule) Prev(at time.Time, loc *time.Location) time.Time {
	if s.Off {
		return time.Time{}
	}
	// A weekly schedule fires at least once in any 8 days, DST included.
	var prev time.Time
	for t := s.Next(at.Add(-8*24*time.Hour), loc); !t.IsZero() && !t.After(at); t = s.Next(t, loc) {
		prev = t
	}
	return prev
}

// digestKV is the durable record of posted digests (store.KV).
type digestKV interface {
	Get(ctx context.Context, key string) ([]byte, bool, error)
	Put(ctx context.Context, key string, value []byte) error
}

// digester posts owners' digests on each system's schedule. It keeps no
// state in memory: what was posted is in kv, so a restart neither loses a
// due digest nor repeats a posted one.
//
// A digest covers [end of the last digest, the pass that posts it): on
// time, that is from one scheduled run to the next (give or take the
// loop's minute); after downtime spanning several runs, one catch-up
// digest covers the whole gap, posted at the first pass after start-up.
// The periods of successive digests neither overlap nor leave gaps.
type digester struct {
	rb    *access.Runbook
	clock access.Clock
	kv    digestKV
	// list returns a system's requests (Service.History).
	list func(ctx context.Context, system string) ([]*access.Request, error)
	// post posts a digest to a channel (Bot.PostDigest).
	post func(ctx context.Context, channel string, d access.Digest) error
	// audit appends a record to the audit log (Store.AppendAudit).
	audit func(ctx context.Context, rec audit.Record) error

	mu sync.Mutex // one pass at a time, so the loop and a caller never both post
}

func (a *App) newDigester() *digester {
	return &digester{
		rb: a.Config.Runbook, clock: a.clock, kv: a.Store.KV(digestKVNamespace),
		list: func(ctx context.Context, system string) ([]*access.Request, error) {
			return a.Service.History(ctx, system, 0)
		},
		post: a.Bot.PostDigest,
		audit: func(ctx context.Context, rec audit.Record) error {
			_, err := a.Store.AppendAudit(ctx, rec)
			return err
		},
	}
}

// RunDigests does one digest pass at the clock's now: every system with a
// channel and a schedule whose latest run (at or before now) is not yet
// covered gets one digest. The loop in Run calls it every minute; tests
// call it directly. It tries every system and returns their errors joined;
// a system whose post failed is tried again at the next pass.
func (a *App) RunDigests(ctx context.Context) error { return a.digests.run(ctx, false) }

// run does one pass; with startOnly it only records where systems seen
// for the first time start counting, and posts nothing.
func (g *digester) run(ctx context.Context, startOnly bool) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.clock.Now()
	var errs []error
	for _, id := range g.rb.SystemIDs() {
		if err := g.system(ctx, g.rb.Systems[id], now, startOnly); err != nil {
			errs = append(errs, fmt.Errorf("digest for %s: %w", id, err))
		}
	}
	return errors.Join(errs...)
}

func (g *digester) system(ctx context.Context, sys *access.System, now time.Time, startOnly bool) error {
	if sys.Channel == "" || sys.Digest == "" {
		return nil
	}
	sched, err := ParseSchedule(sys.Digest)
	if err != nil || sched.Off {
		return err // validated at load; an error here is a programming mistake
	}
	loc := g.rb.Location
	if loc == nil {
		loc = time.UTC
	}
	due := sched.Prev(now, loc)
	raw, ok, err := g.kv.Get(ctx, sys.ID)
	if err != nil {
		return err
	}
	if !ok {
		// First sight of this system (new install, or digests just
		// turned on): start counting at its latest run and post nothing,
		// rather than a first digest of everything ever.
		return g.kv.Put(ctx, sys.ID, []byte(due.UTC().Format(time.RFC3339Nano)))
	}
	last, err := time.Parse(time.RFC3339Nano, string(raw))
	if err != nil {
		return fmt.Errorf("recorded digest time %q: %w", raw, err)
	}
	if startOnly || !due.After(last) {
		return nil // the latest run is covered
	}
	reqs, err := g.list(ctx, sys.ID)
	if err != nil {
		return err
	}
	d := access.BuildDigest(sys.ID, last, now, reqs, now)
	// Post, then record: a crash in between repeats this digest once after
	// the restart, which beats losing it.
	if err := g.post(ctx, sys.Channel, d); err != nil {
		return err
	}
	if err := g.kv.Put(ctx, sys.ID, []byte(now.UTC().Format(time.RFC3339Nano))); err != nil {
		return fmt.Errorf("record posted digest: %w", err)
	}
	rec := audit.Record{Time: now, Event: eventDigestPosted, Actor: access.ActorBot, System: sys.ID, Note: digestNote(d)}
	if err := g.audit(ctx, rec); err != nil {
		return fmt.Errorf("audit posted digest: %w", err)
	}
	return nil
}

// digestNote summarises a posted digest for the audit log: its period and
// counts, never user text.
func digestNote(d access.Digest) string {
	var b strings.Builder
	fmt.Fprintf(&b, "period %s/%s", d.From.UTC().Format(time.RFC3339), d.To.UTC().Format(time.RFC3339))
	if d.Quiet() {
		b.WriteString(": quiet")
		return b.String()
	}
	fmt.Fprintf(&b, ": granted %d, denied %d, timed_out %d, expired %d, revoked %d, auto %d, extended %d, active %d, waiting %d, failed_revocations %d, late_revocations %d",
		len(d.Granted), len(d.Denied), len(d.TimedOut), len(d.Expired), len(d.Revoked), len(d.AutoApproved), len(d.Extended),
		len(d.Active), len(d.Waiting), len(d.FailedRevocations), len(d.LateRevocations))
	return b.String()
}

// RunRetention applies audit.retention once at the clock's now: audit
// records older than the retention lose their reason and notes (see
// store.Store.ApplyRetention). It returns how many records it redacted;
// with no retention configured it does nothing.
func (a *App) RunRetention(ctx context.Context) (int, error) {
	if a.Config.Audit.Retention <= 0 {
		return 0, nil
	}
	now := a.clock.Now()
	n, err := a.Store.ApplyRetention(ctx, now.Add(-a.Config.Audit.Retention))
	if err != nil {
		return n, fmt.Errorf("apply audit retention: %w", err)
	}
	return n, nil
}

// periodicEvery is how often the periodic loop wakes: digests are due on
// the minute.
const periodicEvery = time.Minute

// retentionEvery is how often the retention pass runs.
const retentionEvery = 24 * time.Hour

// runPeriodic runs the digest pass at once and then every minute, and the
// retention pass (when audit.retention is set) at once and then daily, by
// the App's clock. It returns when ctx is done; errors are logged, not
// returned, so that one failing pass does not stop the bot.
func (a *App) runPeriodic(ctx context.Context) error {
	t := time.NewTicker(periodicEvery)
	defer t.Stop()
	var retained time.Time
	for {
		if err := a.RunDigests(ctx); err != nil && ctx.Err() == nil {
			a.log.Error("digest pass failed", "error", err)
		}
		if now := a.clock.Now(); a.Config.Audit.Retention > 0 && (retained.IsZero() || now.Sub(retained) >= retentionEvery) {
			n, err := a.RunRetention(ctx)
			switch {
			case err != nil && ctx.Err() == nil:
				a.log.Error("retention pass failed", "error", err)
			case err == nil:
				retained = now
				a.log.Info("retention pass done", "redacted", n)
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
