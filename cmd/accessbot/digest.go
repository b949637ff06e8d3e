package main

import (
	"context"
	"fmt"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/audit"
	"github.com/accessbot/accessbot/store"
)

// digestKVNamespace is the store.KV namespace recording, per system ID, the
// end of the period the system's last digest covered (access.Digests).
const digestKVNamespace = "digest"

// storeAuditor appends the lifecycle's own audit events (a digest posted)
// to the store's hash-chained log.
type storeAuditor struct{ st *store.Store }

func (a storeAuditor) AppendEvent(ctx context.Context, e access.AuditEvent) error {
	_, err := a.st.AppendAudit(ctx, audit.Record{Time: e.Time, Event: e.Event, Actor: e.Actor, System: e.System, Note: e.Note})
	return err
}

// RunDigests does one digest pass at the clock's now (tests drive time
// themselves; Run does it every minute).
func (a *App) RunDigests(ctx context.Context) error { return a.digests.Run(ctx, a.clock.Now()) }

// RunRetention applies audit.retention once at the clock's now: audit
// records older than the retention lose their reason and notes (see
// store.Store.ApplyRetention). It returns how many records it redacted;
// with no retention configured it does nothing.
func (a *App) RunRetention(ctx context.Context) (int, error) {
	if a.Config.Audit.Retention <= 0 {
		return 0, nil
	}
	n, err := a.Store.ApplyRetention(ctx, a.clock.Now().Add(-a.Config.Audit.Retention))
	if err != nil {
		return n, fmt.Errorf("apply audit retention: %w", err)
	}
	return n, nil
}
