package postgres

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"time"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/audit"
	"github.com/jackc/pgx/v5"
)

// AppendAudit appends a record that belongs to no request (for example
// event "config_loaded" with the configuration hash in Note) to the chain.
// Seq, PrevHash and Hash are assigned; a zero Time is set from the store's
// clock. It returns the sealed record. Errors: access.ErrInvalid without
// Event, ctx's error, ErrClosed, database failures.
func (s *Store) AppendAudit(ctx context.Context, rec audit.Record) (out audit.Record, err error) {
	if rec.Event == "" {
		return audit.Record{}, access.Invalidf("an audit record needs an event")
	}
	done, err := s.begin("append_audit")
	if err != nil {
		return audit.Record{}, err
	}
	defer done(&err)
	if rec.Time.IsZero() {
		rec.Time = s.clock.Now()
	}
	o := &op{ctx: ctx, kind: opAudit, rec: rec}
	if err := s.submit(o); err != nil {
		return audit.Record{}, fmt.Errorf("append audit %s: %w", rec.Event, err)
	}
	return o.record, nil
}

// auditChunk is how many records AuditRecordsAfter reads per query.
var auditChunk = 1024

// AuditRecords calls fn for every audit record in chain order until fn
// returns false. Records are read in chunks between which fn runs
// (holding no connection), so it may write to a slow sink or call the
// store; records appended during the scan may or may not be seen.
func (s *Store) AuditRecords(ctx context.Context, fn func(rec audit.Record) bool) error {
	return s.AuditRecordsAfter(ctx, 0, fn)
}

// AuditRecordsAfter is AuditRecords starting after audit sequence number
// seq (an index seek, so it costs only what it reads).
func (s *Store) AuditRecordsAfter(ctx context.Context, seq uint64, fn func(rec audit.Record) bool) (err error) {
	done, err := s.begin("audit_records")
	if err != nil {
		return err
	}
	defer done(&err)
	after := int64(seq)
	for {
		batch, err := s.readAudit(ctx, s.pool, after, auditChunk)
		if err != nil {
			return fmt.Errorf("read audit records: %w", err)
		}
		for _, rec := range batch {
			if !fn(rec) {
				return nil
			}
		}
		if len(batch) < auditChunk {
			return nil
		}
		after = int64(batch[len(batch)-1].Seq)
	}
}

type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// readAudit reads up to limit records after seq, checking that each row's
// key is the seq its record claims.
func (s *Store) readAudit(ctx context.Context, q querier, after int64, limit int) ([]audit.Record, error) {
	rows, err := q.Query(ctx, `SELECT seq, rec FROM accessbot_audit WHERE seq > $1 ORDER BY seq LIMIT $2`, after, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []audit.Record
	for rows.Next() {
		var seq int64
		var raw []byte
		if err := rows.Scan(&seq, &raw); err != nil {
			return nil, err
		}
		var rec audit.Record
		if err := json.Unmarshal(raw, &rec); err != nil {
			return nil, fmt.Errorf("decode audit record %d: %w", seq, err)
		}
		if rec.Seq != uint64(seq) {
			return nil, fmt.Errorf("audit record under key %d claims seq %d", seq, rec.Seq)
		}
		out = append(out, rec)
	}
	return out, rows.Err()
}

// auditSeq adapts AuditRecords to audit.VerifyChain.
func (s *Store) auditSeq(ctx context.Context) iter.Seq2[audit.Record, error] {
	return func(yield func(audit.Record, error) bool) {
		stopped := false
		err := s.AuditRecords(ctx, func(rec audit.Record) bool {
			stopped = !yield(rec, nil)
			return !stopped
		})
		if err != nil && !stopped {
			yield(audit.Record{}, err)
		}
	}
}

// VerifyAudit verifies the store's whole audit chain (see
// audit.VerifyChain) and that the chain head names its last record.
func (s *Store) VerifyAudit(ctx context.Context) (int, error) {
	n, err := audit.VerifyChain(s.auditSeq(ctx))
	if err != nil {
		return n, err
	}
	var headSeq int64
	var headHash string
	if err := s.pool.QueryRow(ctx, `SELECT seq, hash FROM accessbot_audit_head`).Scan(&headSeq, &headHash); err != nil {
		return n, fmt.Errorf("read audit chain head: %w", err)
	}
	if headSeq != int64(n) {
		return n, fmt.Errorf("audit chain head says %d records, the chain holds %d: %w", headSeq, n, audit.ErrChainBroken)
	}
	return n, nil
}

// retentionChunk is how many audit records one retention transaction
// examines. A variable for tests.
var retentionChunk = 2048

// The retention mark lives in the key-value table under the bbolt store's
// namespace and key, as 8 bytes big-endian, so `store migrate` carries it.
var (
	retentionNS  = []byte("store.retention")
	retentionKey = []byte("examined")
)

// ApplyRetention removes the free text of audit records older than before
// (GDPR data minimisation, audit.retention), exactly as the bbolt store
// does: the reason, and the note of records about a request, are blanked
// and the record marked redacted; the text hashes stay, so the chain still
// verifies. It returns how many records it redacted.
//
// Records are examined in chain order from where the previous call
// stopped (a mark in the key-value table, locked FOR UPDATE so that
// replicas running it together take turns), up to the first record at or
// after before, in transactions of retentionChunk records. It is
// idempotent and may be retried. Requests themselves are not changed.
func (s *Store) ApplyRetention(ctx context.Context, before time.Time) (total int, err error) {
	done, err := s.begin("apply_retention")
	if err != nil {
		return 0, err
	}
	defer done(&err)
	for {
		var n int
		var finished bool
		err := s.inTx(ctx, func(tx pgx.Tx) error {
			var err error
			n, finished, err = s.redactChunk(ctx, tx, before, retentionChunk)
			return err
		})
		if err != nil {
			return total, fmt.Errorf("apply retention before %s: %w", before.UTC().Format(time.RFC3339), err)
		}
		total += n
		if finished {
			return total, nil
		}
	}
}

func (s *Store) redactChunk(ctx context.Context, tx pgx.Tx, before time.Time, limit int) (n int, finished bool, err error) {
	if _, err := tx.Exec(ctx, `INSERT INTO accessbot_kv (ns, key, value) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`,
		retentionNS, retentionKey, binary.BigEndian.AppendUint64(nil, 0)); err != nil {
		return 0, false, err
	}
	var raw []byte
	if err := tx.QueryRow(ctx, `SELECT value FROM accessbot_kv WHERE ns = $1 AND key = $2 FOR UPDATE`, retentionNS, retentionKey).Scan(&raw); err != nil {
		return 0, false, err
	}
	if len(raw) != 8 {
		return 0, false, errors.New("retention mark is not 8 bytes")
	}
	mark := binary.BigEndian.Uint64(raw)
	recs, err := s.readAudit(ctx, tx, int64(mark), limit)
	if err != nil {
		return 0, false, err
	}
	var seqs []int64
	var lines []string
	examined := 0
	reachedCutoff := false
	for _, rec := range recs {
		if !rec.Time.Before(before) {
			reachedCutoff = true
			break
		}
		examined++
		mark = rec.Seq
		if rec.Redact() {
			seqs = append(seqs, int64(rec.Seq))
			lines = append(lines, jsonLine(rec))
		}
	}
	if len(seqs) > 0 {
		if _, err := tx.Exec(ctx, `UPDATE accessbot_audit a SET rec = t.r::json
			FROM unnest($1::bigint[], $2::text[]) AS t(s, r) WHERE a.seq = t.s`, seqs, lines); err != nil {
			return 0, false, fmt.Errorf("redact audit records: %w", err)
		}
	}
	if _, err := tx.Exec(ctx, `UPDATE accessbot_kv SET value = $3 WHERE ns = $1 AND key = $2`,
		retentionNS, retentionKey, binary.BigEndian.AppendUint64(nil, mark)); err != nil {
		return 0, false, err
	}
	return len(seqs), reachedCutoff || len(recs) < limit || examined < limit, nil
}

// jsonLine is the record's JSON line without its newline: what the rec
// column holds.
func jsonLine(rec audit.Record) string {
	b := rec.MarshalLine()
	return string(b[:len(b)-1])
}
