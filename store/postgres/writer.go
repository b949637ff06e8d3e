package postgres

import (
	"context"
	"fmt"
	"slices"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/audit"
	"github.com/jackc/pgx/v5"
)

// The write path is a group-commit writer, as in the bbolt store: Create,
// Update and AppendAudit queue an op; one goroutine per store takes what
// is queued (up to Options.MaxBatch) and applies it in one transaction
// with a fixed number of round trips whatever the batch size:
//
//  1. take the numbers for new requests (nextval) and lock the rows of
//     the updated ones (SELECT … ORDER BY seq FOR UPDATE: always in seq
//     order, so two replicas' batches cannot deadlock);
//  2. run every op in Go, in queue order (an Update of a request created
//     or updated earlier in the batch sees that result);
//  3. write the requests (one INSERT and one UPDATE over arrays) and lock
//     the audit chain head;
//  4. seal and append every audit record, move the head, COMMIT.
//
// The head lock, which serialises appends across replicas, is therefore
// held for two round trips and one fsync per batch, not per transition.
// An op whose fn fails touches no SQL and fails alone; a database error
// fails the batch, and then each op is retried in a transaction of its
// own, so one bad op cannot fail the others.

type opKind int

const (
	opCreate opKind = iota
	opUpdate
	opAudit
)

type op struct {
	ctx  context.Context
	kind opKind
	req  *access.Request               // opCreate: the caller's request, cloned
	seq  int64                         // opUpdate
	fn   func(r *access.Request) error // opUpdate
	rec  audit.Record                  // opAudit

	// Outcome, set by the writer before done is closed.
	result *access.Request
	record audit.Record
	err    error
	fnErr  bool // err came from fn: returned unwrapped
	done   chan struct{}
}

// submit queues o and waits for its outcome. Once queued, it waits for the
// writer even if ctx ends, so that a committed write is never reported as
// failed (DESIGN.md §4 invariant 2); the writer skips an op whose ctx
// ended before its turn.
func (s *Store) submit(o *op) error {
	if err := o.ctx.Err(); err != nil {
		return err
	}
	o.done = make(chan struct{})
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return ErrClosed
	}
	s.ops <- o
	s.mu.RUnlock()
	<-o.done
	return o.err
}

// writer is the goroutine that writes: it takes the first queued op,
// drains whatever else is queued without waiting for more, commits them
// together and replies. An idle store commits a lone op at once.
func (s *Store) writer() {
	defer close(s.done)
	batch := make([]*op, 0, s.maxBatch)
	for o := range s.ops {
		batch = append(batch[:0], o)
	drain:
		for len(batch) < s.maxBatch {
			select {
			case o, ok := <-s.ops:
				if !ok {
					break drain
				}
				batch = append(batch, o)
			default:
				break drain
			}
		}
		s.commit(batch)
		if commitHook != nil {
			commitHook(len(batch))
		}
		for _, o := range batch {
			close(o.done)
		}
	}
}

// commit applies batch in one transaction, retrying each op alone if the
// database refused the transaction (one op's bad data, a deadlock). When
// the connection itself failed (database down or hung), every op fails at
// once: retrying them one by one would make each wait for the timeout.
func (s *Store) commit(batch []*op) {
	err := s.apply(batch)
	if err == nil {
		return
	}
	if len(batch) > 1 && isServerError(err) {
		for _, o := range batch {
			s.commit([]*op{o})
		}
		return
	}
	for _, o := range batch {
		if o.err == nil {
			o.result, o.err = nil, err
		}
	}
}

// apply runs batch in one transaction. It returns a database error (the
// transaction rolled back, no op's outcome stands); ops that failed on
// their own (ctx ended, not found, fn error) carry their error and
// writes nothing either way.
func (s *Store) apply(batch []*op) (err error) {
	live := batch[:0:0]
	for _, o := range batch {
		o.result, o.record, o.err, o.fnErr = nil, audit.Record{}, nil, false
		if o.err = o.ctx.Err(); o.err == nil {
			live = append(live, o)
		}
	}
	if len(live) == 0 {
		return nil
	}
	// The transaction runs to its end even if callers' contexts end:
	// bounded by commitTimeout.
	ctx, cancel := context.WithTimeout(context.Background(), commitTimeout)
	defer cancel()
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback(ctx)
			for _, o := range live {
				o.result, o.record = nil, audit.Record{}
			}
		}
	}()

	// 1. Numbers for new requests, current rows of updated ones.
	var nCreate int
	var lockSeqs []int64
	for _, o := range live {
		switch o.kind {
		case opCreate:
			nCreate++
		case opUpdate:
			lockSeqs = append(lockSeqs, o.seq)
		}
	}
	slices.Sort(lockSeqs)
	lockSeqs = slices.Compact(lockSeqs)
	var newSeqs []int64
	cur := map[int64]*access.Request{}
	{
		b := &pgx.Batch{}
		if nCreate > 0 {
			b.Queue(`SELECT nextval('accessbot_request_seq') FROM generate_series(1, $1)`, nCreate).Query(func(rows pgx.Rows) error {
				newSeqs, err = pgx.CollectRows(rows, pgx.RowTo[int64])
				return err
			})
		}
		if len(lockSeqs) > 0 {
			b.Queue(`SELECT seq, data FROM accessbot_requests WHERE seq = ANY($1) ORDER BY seq FOR UPDATE`, lockSeqs).Query(func(rows pgx.Rows) error {
				for rows.Next() {
					var seq int64
					var data []byte
					if err := rows.Scan(&seq, &data); err != nil {
						return err
					}
					r, err := decodeRequest(seq, data)
					if err != nil {
						return err
					}
					cur[seq] = r
				}
				return rows.Err()
			})
		}
		if b.Len() > 0 {
			if err := tx.SendBatch(ctx, b).Close(); err != nil {
				return fmt.Errorf("read requests: %w", err)
			}
		}
	}
	slices.Sort(newSeqs) // nextval from one statement: ascending, but say so

	// 2. Run the ops in queue order.
	type pending struct {
		o   *op
		rec int // index of its first record in recs
		n   int // how many records it appended
	}
	var recs []audit.Record
	var done []pending
	created := map[int64]bool{}
	written := map[int64]*access.Request{}
	var order []int64 // seqs written, first write first
	for _, o := range live {
		start := len(recs)
		switch o.kind {
		case opCreate:
			seq := newSeqs[0]
			newSeqs = newSeqs[1:]
			n := o.req.Clone()
			n.Seq, n.ID, n.Version = uint64(seq), access.FormatID(uint64(seq)), 1
			recs = append(recs, historyRecords(n, n.History)...)
			created[seq] = true
			cur[seq], written[seq] = n, n
			order = append(order, seq)
			o.result = n
		case opUpdate:
			c := cur[o.seq]
			if c == nil {
				o.err = access.NotFoundf("There is no request %s.", access.FormatID(uint64(o.seq)))
				continue
			}
			next := c.Clone()
			if err := callFn(o.fn, next); err != nil {
				o.err, o.fnErr = err, true
				continue
			}
			if err := checkUpdate(c, next); err != nil {
				o.err = err
				continue
			}
			next.Version = c.Version + 1
			recs = append(recs, historyRecords(next, next.History[len(c.History):])...)
			if written[o.seq] == nil {
				order = append(order, o.seq)
			}
			// Later ops in the batch clone next before changing it.
			cur[o.seq], written[o.seq] = next, next
			o.result = next
		case opAudit:
			recs = append(recs, o.rec)
		}
		done = append(done, pending{o, start, len(recs) - start})
	}
	if len(done) == 0 {
		return tx.Rollback(ctx) // nothing to write; errors are the ops' own
	}

	// 3. Write the requests; lock the chain head.
	var ins, upd rowArrays
	for _, seq := range order {
		w, err := toRow(written[seq])
		if err != nil {
			return err
		}
		if created[seq] {
			ins.add(w)
		} else {
			upd.add(w)
		}
	}
	b := &pgx.Batch{}
	if len(ins.seq) > 0 {
		b.Queue(`INSERT INTO accessbot_requests (seq, version, state, open, requester, system, entitlement, next_deadline, data)
			SELECT seq, version, state, open, requester, system, entitlement, next_deadline, data::json
			FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::boolean[], $5::text[], $6::text[], $7::bytea[], $8::bigint[], $9::text[])
			AS t(seq, version, state, open, requester, system, entitlement, next_deadline, data)`,
			ins.seq, ins.version, ins.state, ins.open, ins.requester, ins.system, ins.entitlement, ins.deadline, ins.data)
	}
	if len(upd.seq) > 0 {
		b.Queue(`UPDATE accessbot_requests r
			SET version = t.version, state = t.state, open = t.open, system = t.system, next_deadline = t.next_deadline, data = t.data::json
			FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::boolean[], $5::text[], $6::bigint[], $7::text[])
			AS t(seq, version, state, open, system, next_deadline, data)
			WHERE r.seq = t.seq`,
			upd.seq, upd.version, upd.state, upd.open, upd.system, upd.deadline, upd.data)
	}
	var headSeq int64
	var headHash string
	if len(recs) > 0 {
		b.Queue(`SELECT seq, hash FROM accessbot_audit_head FOR UPDATE`).QueryRow(func(row pgx.Row) error {
			return row.Scan(&headSeq, &headHash)
		})
	}
	if b.Len() > 0 {
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return fmt.Errorf("write requests: %w", err)
		}
	}

	// 4. Seal and append the records, move the head, commit.
	if len(recs) > 0 {
		seqs := make([]int64, len(recs))
		lines := make([]string, len(recs))
		seq, hash := headSeq, headHash
		for i := range recs {
			recs[i].Seal(uint64(seq), hash)
			seq, hash = int64(recs[i].Seq), recs[i].Hash
			seqs[i], lines[i] = seq, jsonLine(recs[i])
		}
		b := &pgx.Batch{}
		b.Queue(`INSERT INTO accessbot_audit (seq, rec) SELECT s, r::json FROM unnest($1::bigint[], $2::text[]) AS t(s, r)`, seqs, lines)
		b.Queue(`UPDATE accessbot_audit_head SET seq = $1, hash = $2`, seq, hash)
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return fmt.Errorf("append audit records %d..%d: %w", seqs[0], seq, err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		if !isServerError(err) {
			return fmt.Errorf("commit outcome unknown (the connection failed during COMMIT; the reconcile pass will find the requests as they are): %w", err)
		}
		return err
	}
	for _, p := range done {
		if p.o.kind == opAudit {
			p.o.record = recs[p.rec]
		}
	}
	return nil
}

// rowArrays holds request rows column by column, for unnest.
type rowArrays struct {
	seq, version             []int64
	state, requester, system []string
	open                     []bool
	entitlement              [][]byte
	deadline                 []*int64
	data                     []string
}

func (a *rowArrays) add(w row) {
	a.seq = append(a.seq, w.seq)
	a.version = append(a.version, w.version)
	a.state = append(a.state, w.state)
	a.open = append(a.open, w.open)
	a.requester = append(a.requester, w.requester)
	a.system = append(a.system, w.system)
	a.entitlement = append(a.entitlement, w.entitlement)
	a.deadline = append(a.deadline, w.deadline)
	a.data = append(a.data, string(w.data))
}

// commitHook, when set before Open, is called by the writer after each
// group commit with its size (tests and benchmarks report batch sizes).
var commitHook func(ops int)
