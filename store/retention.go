package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/audit"
	"go.etcd.io/bbolt"
)

// retentionChunk is how many audit records one retention transaction
// examines, so that a first pass over a large log neither holds the writer
// for long nor builds a huge transaction. A variable for tests.
var retentionChunk = 2048

// retentionMark is where ApplyRetention remembers how far it got: the seq
// of the last audit record it examined, in the store's key-value bucket.
var retentionMark = kvKey("store.retention", "examined")

// ApplyRetention removes the free text of audit records older than before
// (GDPR data minimisation, audit.retention): the reason, and the note of
// records about a request (deny reasons, errors), are blanked and the record
// marked redacted. Their text hashes stay, so the chain still verifies
// (audit.VerifyChain; see audit.Record); everything else in a record is kept. It
// returns how many records it redacted.
//
// Records are examined in chain order from where the previous call
// stopped, up to the first record at or after before, so a daily pass
// reads only a day's records. A record appended with an earlier time than
// its predecessor (clocks differ by seconds) is redacted by a later pass.
// It is idempotent and may be retried; it goes through the writer in
// chunks of retentionChunk records, each committed on its own.
//
// Retention applies to the store only: the JSON Lines mirror (audit.file)
// is append-only and never rewritten, so it keeps the text; rotate and
// expire it on the SIEM side. The requests themselves (their reason and
// history notes) are not changed.
func (s *Store) ApplyRetention(ctx context.Context, before time.Time) (int, error) {
	total := 0
	for {
		var n int
		var done bool
		o := &op{ctx: ctx}
		o.prepare = func(*bbolt.Tx) (writeFn, error) {
			return func(tx *bbolt.Tx, _ *auditAppender) (*access.Request, error) {
				var err error
				n, done, err = redactChunk(tx, before, retentionChunk)
				return nil, err
			}, nil
		}
		if err := s.submit(o); err != nil {
			return total, fmt.Errorf("apply retention before %s: %w", before.UTC().Format(time.RFC3339), err)
		}
		total += n
		if done {
			return total, nil
		}
	}
}

// redactChunk redacts up to limit audit records after the mark that are
// older than before, and moves the mark. done reports that it reached a
// record at or after before, or the end of the chain.
func redactChunk(tx *bbolt.Tx, before time.Time, limit int) (n int, done bool, err error) {
	marks, err := tx.CreateBucketIfNotExists(connectorStateBucket)
	if err != nil {
		return 0, false, err
	}
	var mark uint64
	if v := marks.Get(retentionMark); len(v) == 8 {
		mark = binary.BigEndian.Uint64(v)
	}
	b := tx.Bucket(bucketAudit)
	// Collect first, write after: bbolt cursors are not stable across Put.
	type change struct{ key, value []byte }
	var changes []change
	examined := 0
	c := b.Cursor()
	k, v := c.Seek(seqKey(mark + 1))
	for ; k != nil && examined < limit; k, v = c.Next() {
		var rec audit.Record
		if err := json.Unmarshal(v, &rec); err != nil {
			return 0, false, fmt.Errorf("decode audit record %d: %w", binary.BigEndian.Uint64(k), err)
		}
		if !rec.Time.Before(before) {
			break
		}
		examined++
		mark = rec.Seq
		if rec.Redact() {
			changes = append(changes, change{bytes.Clone(k), rec.MarshalLine()})
		}
	}
	done = k == nil || examined < limit
	for _, ch := range changes {
		if err := b.Put(ch.key, ch.value); err != nil {
			return 0, false, fmt.Errorf("redact audit record %d: %w", binary.BigEndian.Uint64(ch.key), err)
		}
	}
	if err := marks.Put(retentionMark, binary.BigEndian.AppendUint64(nil, mark)); err != nil {
		return 0, false, err
	}
	return len(changes), done, nil
}
