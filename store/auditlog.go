package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"iter"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/audit"
	"go.etcd.io/bbolt"
)

// auditAppender appends sealed records to the chain inside one write
// transaction. It reads the chain's head once, lazily; it lives as long as
// the transaction, so a rolled-back head is never reused.
type auditAppender struct {
	tx     *bbolt.Tx
	loaded bool
	seq    uint64
	hash   string
	out    []audit.Record
}

func (a *auditAppender) append(rec audit.Record) error {
	b := a.tx.Bucket(bucketAudit)
	if !a.loaded {
		a.seq, a.hash = 0, audit.ZeroHash
		if k, v := b.Cursor().Last(); k != nil {
			var last audit.Record
			if err := json.Unmarshal(v, &last); err != nil {
				return fmt.Errorf("read audit head: %w", err)
			}
			a.seq, a.hash = last.Seq, last.Hash
		}
		a.loaded = true
	}
	rec.Seal(a.seq, a.hash)
	b.FillPercent = fillAppendOnly
	if err := b.Put(seqKey(rec.Seq), rec.MarshalLine()); err != nil {
		return fmt.Errorf("append audit record %d: %w", rec.Seq, err)
	}
	a.seq, a.hash = rec.Seq, rec.Hash
	a.out = append(a.out, rec)
	return nil
}

// appendHistory appends one record per history entry of r.
func (a *auditAppender) appendHistory(r *access.Request, entries []access.HistoryEntry) error {
	for _, h := range entries {
		if err := a.append(requestRecord(r, h)); err != nil {
			return err
		}
	}
	return nil
}

func requestRecord(r *access.Request, h access.HistoryEntry) audit.Record {
	return audit.Record{
		Time:      h.At,
		Event:     string(h.Event),
		Actor:     h.Actor,
		Subject:   r.Requester,
		System:    r.System,
		Role:      r.Role,
		RequestID: r.ID,
		Reason:    r.Reason,
		Outcome:   string(h.To),
		Note:      h.Note,
	}
}

// AppendAudit appends a record that belongs to no request (for example
// event "config_loaded" with the configuration hash in Note) to the same
// chain, through the same writer. Seq, PrevHash and Hash are assigned;
// a zero Time is set from the store's clock. It returns the sealed record.
// Errors: access.ErrInvalid without Event, ctx's error, ErrClosed, storage
// failures.
func (s *Store) AppendAudit(ctx context.Context, rec audit.Record) (audit.Record, error) {
	if rec.Event == "" {
		return audit.Record{}, access.Invalidf("an audit record needs an event")
	}
	if rec.Time.IsZero() {
		rec.Time = s.clock.Now()
	}
	o := &op{ctx: ctx}
	o.prepare = func(*bbolt.Tx) (writeFn, error) {
		return func(_ *bbolt.Tx, a *auditAppender) (*access.Request, error) {
			return nil, a.append(rec)
		}, nil
	}
	if err := s.submit(o); err != nil {
		return audit.Record{}, fmt.Errorf("append audit %s: %w", rec.Event, err)
	}
	return o.records[0], nil
}

// auditChunk is how many records AuditRecords reads per read transaction.
var auditChunk = 1024

// AuditRecords calls fn for every audit record in chain order until fn
// returns false. Records are read in chunks of short read transactions and
// fn runs between them, so it may write to a slow sink or call the store;
// records appended during the scan may or may not be seen.
func (s *Store) AuditRecords(ctx context.Context, fn func(rec audit.Record) bool) error {
	return s.AuditRecordsAfter(ctx, 0, fn)
}

// AuditRecordsAfter is AuditRecords starting after audit sequence number
// seq (a cursor seek, so it costs only what it reads).
func (s *Store) AuditRecordsAfter(ctx context.Context, seq uint64, fn func(rec audit.Record) bool) error {
	next := seq + 1
	batch := make([]audit.Record, 0, auditChunk)
	for {
		batch = batch[:0]
		err := s.view(ctx, func(tx *bbolt.Tx) error {
			c := tx.Bucket(bucketAudit).Cursor()
			for k, v := c.Seek(seqKey(next)); k != nil && len(batch) < auditChunk; k, v = c.Next() {
				var rec audit.Record
				if err := json.Unmarshal(v, &rec); err != nil {
					return fmt.Errorf("decode audit record %d: %w", binary.BigEndian.Uint64(k), err)
				}
				batch = append(batch, rec)
				next = binary.BigEndian.Uint64(k) + 1
			}
			return nil
		})
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
	}
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

// VerifyAudit verifies the store's whole audit chain (see audit.VerifyChain).
func (s *Store) VerifyAudit(ctx context.Context) (int, error) {
	return audit.VerifyChain(s.auditSeq(ctx))
}

// Check verifies the file's page structure (bbolt's tx.Check), that every
// index agrees with the stored requests, and the audit chain. It reads the
// whole file in one read transaction: for tests and offline checks, not
// for a busy store. It returns every problem found, joined.
func (s *Store) Check(ctx context.Context) error {
	var errs []error
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		for err := range tx.Check() {
			errs = append(errs, err)
		}
		want := map[string]map[string]bool{}
		for _, b := range [][]byte{bucketDeadlines, bucketOpen, bucketByRequester, bucketByEntitlement} {
			want[string(b)] = map[string]bool{}
		}
		openState := map[string]string{}
		err := tx.Bucket(bucketRequests).ForEach(func(k, v []byte) error {
			seq := binary.BigEndian.Uint64(k)
			r, err := decodeRequest(seq, v)
			if err != nil {
				errs = append(errs, err)
				return nil
			}
			if r.Seq != seq || r.ID != access.FormatID(seq) {
				errs = append(errs, fmt.Errorf("request under key %d claims %s (seq %d)", seq, r.ID, r.Seq))
			}
			if d := r.NextDeadline(); !d.IsZero() {
				want[string(bucketDeadlines)][string(deadlineKey(d, seq))] = true
			}
			if !r.State.Terminal() {
				want[string(bucketOpen)][string(k)] = true
				openState[string(k)] = string(r.State)
			}
			want[string(bucketByRequester)][string(indexKey(r.Requester, seq))] = true
			want[string(bucketByEntitlement)][string(indexKey(r.Entitlement.Key(), seq))] = true
			return nil
		})
		if err != nil {
			return err
		}
		for name, keys := range want {
			err := tx.Bucket([]byte(name)).ForEach(func(k, v []byte) error {
				if !keys[string(k)] {
					errs = append(errs, fmt.Errorf("index %s: stray key %x", name, k))
				}
				if name == string(bucketOpen) && keys[string(k)] && openState[string(k)] != string(v) {
					errs = append(errs, fmt.Errorf("index open: %s recorded as %s, stored as %s", access.FormatID(binary.BigEndian.Uint64(k)), v, openState[string(k)]))
				}
				delete(keys, string(k))
				return nil
			})
			if err != nil {
				return err
			}
			for k := range keys {
				errs = append(errs, fmt.Errorf("index %s: missing key %x", name, []byte(k)))
			}
		}
		_, err = audit.VerifyChain(func(yield func(audit.Record, error) bool) {
			c := tx.Bucket(bucketAudit).Cursor()
			for k, v := c.First(); k != nil; k, v = c.Next() {
				var rec audit.Record
				if err := json.Unmarshal(v, &rec); err != nil {
					yield(audit.Record{}, fmt.Errorf("decode audit record %x: %w", k, err))
					return
				}
				if !bytes.Equal(k, seqKey(rec.Seq)) {
					yield(audit.Record{}, fmt.Errorf("audit record under key %x claims seq %d", k, rec.Seq))
					return
				}
				if !yield(rec, nil) {
					return
				}
			}
		})
		if err != nil {
			errs = append(errs, err)
		}
		return nil
	})
	if err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("check store %s: %w", s.path, err)
	}
	return nil
}
