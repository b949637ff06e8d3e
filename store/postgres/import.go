package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/audit"
	"github.com/jackc/pgx/v5"
)

// Source is a whole store to copy from: the bbolt store (package store)
// and this one both implement it.
type Source interface {
	// InstallationID is kept by the copy (webhook IDs stay the same).
	InstallationID(ctx context.Context) (string, error)
	// ExportRequests yields every request in ID order.
	ExportRequests(ctx context.Context, fn func(r *access.Request) bool) error
	// AuditRecords yields the audit chain in order.
	AuditRecords(ctx context.Context, fn func(rec audit.Record) bool) error
	// ExportKV yields every key-value entry of every namespace.
	ExportKV(ctx context.Context, fn func(ns, key string, value []byte) bool) error
}

// ImportStats counts what Import copied.
type ImportStats struct {
	Requests     int
	AuditRecords int
	KV           int
}

// importChunk is how many rows Import sends per COPY.
const importChunk = 2000

// Import copies everything src holds into this store, which must be empty
// (no request, audit record or key-value entry; a store just created by
// Open is), in one transaction: on any error nothing is copied. Requests
// keep their IDs, versions and every field, their deadlines are indexed
// from NextDeadline as Update would, audit records keep their bytes and
// hashes, and the request sequence continues after the highest ID; the
// installation ID becomes src's. The source chain is verified as it is
// read (audit.VerifyChain): a broken chain is refused, naming the record.
// Claims are not copied (they belong to processes that are gone).
//
// The tables are locked for the transaction (SHARE ROW EXCLUSIVE), so
// replicas must not run against the target meanwhile; they would wait.
// Errors: one wrapping ErrNotEmpty for a non-empty target, one wrapping
// audit.ErrChainBroken, src's errors, database failures.
func (s *Store) Import(ctx context.Context, src Source) (st ImportStats, err error) {
	done, err := s.begin("import")
	if err != nil {
		return st, err
	}
	defer done(&err)
	id, err := src.InstallationID(ctx)
	if err != nil {
		return st, fmt.Errorf("read the source's installation ID: %w", err)
	}
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `LOCK TABLE accessbot_requests, accessbot_audit, accessbot_audit_head, accessbot_kv IN SHARE ROW EXCLUSIVE MODE`); err != nil {
			return fmt.Errorf("lock the tables: %w", err)
		}
		var nReq, nAudit, nKV int64
		if err := tx.QueryRow(ctx, `SELECT (SELECT count(*) FROM accessbot_requests), (SELECT seq FROM accessbot_audit_head),
			(SELECT count(*) FROM accessbot_kv)`).Scan(&nReq, &nAudit, &nKV); err != nil {
			return fmt.Errorf("check the target is empty: %w", err)
		}
		if nReq+nAudit+nKV > 0 {
			return fmt.Errorf("%w: it holds %d requests, %d audit records and %d key-value entries; migrate only into a new, empty database (or schema)", ErrNotEmpty, nReq, nAudit, nKV)
		}
		var err error
		if st.Requests, err = copyRequests(ctx, tx, src); err != nil {
			return err
		}
		if st.AuditRecords, err = copyAudit(ctx, tx, src); err != nil {
			return err
		}
		if st.KV, err = copyKV(ctx, tx, src); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE accessbot_meta SET value = $1 WHERE key = 'installation_id'`, id); err != nil {
			return fmt.Errorf("set the installation ID: %w", err)
		}
		return nil
	})
	if err != nil {
		return ImportStats{}, fmt.Errorf("import: %w", err)
	}
	// Fresh statistics and visibility map, so the planner uses the indexes
	// (index-only scans of the deadline index: a restart's Deadlines scan
	// is 4× faster) at once rather than after autovacuum's next pass. The
	// copy is committed either way: a failure here costs only speed.
	_, _ = s.pool.Exec(ctx, `VACUUM (ANALYZE) accessbot_requests, accessbot_audit, accessbot_kv`)
	return st, nil
}

func copyRequests(ctx context.Context, tx pgx.Tx, src Source) (int, error) {
	cols := []string{"seq", "version", "state", "open", "requester", "system", "entitlement", "next_deadline", "data"}
	var rows [][]any
	var n int
	var maxSeq int64
	var failed error
	flush := func() error {
		if len(rows) == 0 {
			return nil
		}
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"accessbot_requests"}, cols, pgx.CopyFromRows(rows)); err != nil {
			return fmt.Errorf("copy requests: %w", err)
		}
		rows = rows[:0]
		return nil
	}
	err := src.ExportRequests(ctx, func(r *access.Request) bool {
		if r.Seq == 0 || r.ID != access.FormatID(r.Seq) || r.Version == 0 {
			failed = fmt.Errorf("source request %q (seq %d, version %d) is malformed", r.ID, r.Seq, r.Version)
			return false
		}
		w, err := toRow(r)
		if err != nil {
			failed = err
			return false
		}
		rows = append(rows, w.insertArgs())
		n++
		maxSeq = max(maxSeq, w.seq)
		if len(rows) >= importChunk {
			failed = flush()
		}
		return failed == nil
	})
	if err = errors.Join(err, failed); err != nil {
		return n, err
	}
	if err := flush(); err != nil {
		return n, err
	}
	if maxSeq > 0 {
		// is_called = true: the next number is maxSeq+1.
		if _, err := tx.Exec(ctx, `SELECT setval('accessbot_request_seq', $1, true)`, maxSeq); err != nil {
			return n, fmt.Errorf("set the request sequence: %w", err)
		}
	}
	return n, nil
}

func copyAudit(ctx context.Context, tx pgx.Tx, src Source) (int, error) {
	var rows [][]any
	var failed error
	var last audit.Record
	flush := func() error {
		if len(rows) == 0 {
			return nil
		}
		// rec is json: COPY takes its text form.
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"accessbot_audit"}, []string{"seq", "rec"}, pgx.CopyFromRows(rows)); err != nil {
			return fmt.Errorf("copy audit records: %w", err)
		}
		rows = rows[:0]
		return nil
	}
	records := func(yield func(audit.Record, error) bool) {
		stopped := false
		err := src.AuditRecords(ctx, func(rec audit.Record) bool {
			stopped = !yield(rec, nil)
			return !stopped
		})
		if err != nil && !stopped {
			yield(audit.Record{}, err)
		}
	}
	n, err := audit.VerifyChain(func(yield func(audit.Record, error) bool) {
		for rec, err := range records {
			if err == nil {
				if failed != nil {
					return
				}
				rows = append(rows, []any{int64(rec.Seq), jsonLine(rec)})
				last = rec
				if len(rows) >= importChunk {
					// Rows are sent once VerifyChain accepted the
					// previous ones; a broken record fails the whole
					// transaction anyway.
					failed = flush()
				}
			}
			if !yield(rec, err) {
				return
			}
		}
	})
	if err != nil {
		return n, fmt.Errorf("source audit chain: %w", err)
	}
	if failed != nil {
		return n, failed
	}
	if err := flush(); err != nil {
		return n, err
	}
	if n > 0 {
		if _, err := tx.Exec(ctx, `UPDATE accessbot_audit_head SET seq = $1, hash = $2`, int64(last.Seq), last.Hash); err != nil {
			return n, fmt.Errorf("set the audit chain head: %w", err)
		}
	}
	return n, nil
}

func copyKV(ctx context.Context, tx pgx.Tx, src Source) (int, error) {
	var rows [][]any
	err := src.ExportKV(ctx, func(ns, key string, value []byte) bool {
		rows = append(rows, []any{[]byte(ns), []byte(key), append([]byte{}, value...)})
		return true
	})
	if err != nil {
		return 0, fmt.Errorf("read the source's key-value state: %w", err)
	}
	if len(rows) == 0 {
		return 0, nil
	}
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{"accessbot_kv"}, []string{"ns", "key", "value"}, pgx.CopyFromRows(rows)); err != nil {
		return 0, fmt.Errorf("copy key-value state: %w", err)
	}
	return len(rows), nil
}
