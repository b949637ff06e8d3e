package access

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
)

// KV is small durable key-value storage (the store's, under one
// namespace). Put commits before it returns.
type KV interface {
	Get(ctx context.Context, key string) ([]byte, bool, error)
	Put(ctx context.Context, key string, value []byte) error
}

// AuditEvent is an audit record about no request (a digest posted).
type AuditEvent struct {
	Time   time.Time
	Event  string
	Actor  string
	System string
	Note   string // the bot's own words, never user text
}

// Auditor appends audit records that are not request transitions.
type Auditor interface {
	AppendEvent(ctx context.Context, e AuditEvent) error
}

// Lister lists requests (Store.List).
type Lister interface {
	List(ctx context.Context, f Filter) ([]*Request, error)
}

// DigestPoster posts an owners' digest to a channel (the Slack adapter).
type DigestPoster interface {
	PostDigest(ctx context.Context, channel string, d Digest) error
}

// EventDigestPosted is the audit event of a posted digest.
const EventDigestPosted = "digest_posted"

// Digests is the owners' digest job (DESIGN.md §3): every system with a
// channel and a schedule gets, at each scheduled run, a digest of what
// happened since the last one. It keeps no state in memory: what was
// posted is in KV (per system ID, the end of the period the last digest
// covered, RFC 3339), so a restart neither loses a due digest nor repeats
// a posted one.
//
// A digest covers [end of the last digest, the pass that posts it): on
// time, that is from one scheduled run to the next (give or take the job's
// minute); after downtime spanning several runs, one catch-up digest
// covers the whole gap. Successive periods neither overlap nor leave gaps.
type Digests struct {
	Runbook *Runbook
	KV      KV
	Store   Lister // a system's requests
	Poster  DigestPoster
	Audit   Auditor

	mu sync.Mutex // one pass at a time
}

// Job returns the digest job for Run: Start records where systems seen for
// the first time start counting (posting nothing), Run posts what is due.
func (g *Digests) Job() Job {
	return Job{Name: "digests", Every: time.Minute,
		Start: func(ctx context.Context, now time.Time) error { return g.pass(ctx, now, true) },
		Run:   func(ctx context.Context, now time.Time) error { return g.pass(ctx, now, false) }}
}

// Run does one pass at now: it tries every system and returns their
// errors joined; a system whose post failed is tried at the next pass.
func (g *Digests) Run(ctx context.Context, now time.Time) error { return g.pass(ctx, now, false) }

func (g *Digests) pass(ctx context.Context, now time.Time, startOnly bool) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	var errs []error
	for _, id := range g.Runbook.SystemIDs() {
		if err := g.system(ctx, g.Runbook.Systems[id], now, startOnly); err != nil {
			errs = append(errs, fmt.Errorf("digest for %s: %w", id, err))
		}
	}
	return errors.Join(errs...)
}

func (g *Digests) system(ctx context.Context, sys *System, now time.Time, startOnly bool) error {
	if sys.Channel == "" || sys.Digest == "" {
		return nil
	}
	sched, err := ParseSchedule(sys.Digest)
	if err != nil || sched.Off {
		return err // validated at load; an error here is a programming mistake
	}
	loc := g.Runbook.Location
	if loc == nil {
		loc = time.UTC
	}
	due := sched.Prev(now, loc)
	raw, ok, err := g.KV.Get(ctx, sys.ID)
	if err != nil {
		return err
	}
	if !ok {
		// First sight of this system (new install, or digests just turned
		// on): start counting at its latest run and post nothing, rather
		// than a first digest of everything ever.
		return g.KV.Put(ctx, sys.ID, []byte(due.UTC().Format(time.RFC3339Nano)))
	}
	last, err := time.Parse(time.RFC3339Nano, string(raw))
	if err != nil {
		return fmt.Errorf("recorded digest time %q: %w", raw, err)
	}
	if startOnly || !due.After(last) {
		return nil // the latest run is covered
	}
	reqs, err := g.Store.List(ctx, Filter{System: sys.ID})
	if err != nil {
		return err
	}
	d := BuildDigest(sys.ID, last, now, reqs, now)
	// Post, then record: a crash in between repeats this digest once after
	// the restart, which beats losing it.
	if err := g.Poster.PostDigest(ctx, sys.Channel, d); err != nil {
		return err
	}
	if err := g.KV.Put(ctx, sys.ID, []byte(now.UTC().Format(time.RFC3339Nano))); err != nil {
		return fmt.Errorf("record posted digest: %w", err)
	}
	if g.Audit != nil {
		if err := g.Audit.AppendEvent(ctx, AuditEvent{Time: now, Event: EventDigestPosted, Actor: ActorBot, System: sys.ID, Note: DigestNote(d)}); err != nil {
			return fmt.Errorf("audit posted digest: %w", err)
		}
	}
	return nil
}

// DigestNote summarises a posted digest for the audit log: its period and
// counts, never user text.
func DigestNote(d Digest) string {
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

// RetentionJob removes the free text (reasons, notes) of audit records
// older than retention, once a day (apply is the store's ApplyRetention,
// which keeps the hashes so the chain still verifies). retention <= 0
// returns no job.
func RetentionJob(retention time.Duration, apply func(ctx context.Context, before time.Time) (int, error)) []Job {
	if retention <= 0 {
		return nil
	}
	return []Job{{Name: "retention", Every: 24 * time.Hour, Run: func(ctx context.Context, now time.Time) error {
		if _, err := apply(ctx, now.Add(-retention)); err != nil {
			return fmt.Errorf("apply audit retention: %w", err)
		}
		return nil
	}}}
}
