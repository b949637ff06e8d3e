package store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/audit"
	"go.etcd.io/bbolt"
)

// op is one queued write. prepare reads what it needs and runs the caller's
// pure fn; it writes nothing, so its error fails this op alone. The write it
// returns puts the result; a write error is a storage failure of the whole
// transaction.
type op struct {
	ctx     context.Context
	prepare func(tx *bbolt.Tx) (writeFn, error)

	// Outcome, set by the writer before done is closed.
	pre *prepared // Update's optimistic result, or nil

	result  *access.Request
	records []audit.Record // appended by this op, for the mirror
	err     error
	done    chan struct{}
}

type writeFn func(tx *bbolt.Tx, a *auditAppender) (*access.Request, error)

// storageError marks a write failure that aborts the group's transaction.
type storageError struct{ err error }

func (e *storageError) Error() string { return e.err.Error() }
func (e *storageError) Unwrap() error { return e.err }

// submit queues o and waits for its outcome. Once queued, it waits for the
// writer even if ctx ends, so that a committed write is never reported as
// failed (invariant 2: the caller that won must perform the effect); the
// writer skips an op whose ctx ended before its turn.
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

// writer is the single goroutine that writes. It takes the first queued op,
// drains whatever else is already queued (up to maxBatch) without waiting
// for more, commits them in one transaction, and replies. An idle store
// therefore commits a lone write at once; a busy one shares each fsync
// among every writer that queued during the previous commit.
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
		t := time.Now()
		s.commit(batch)
		if commitHook != nil {
			commitHook(len(batch), time.Since(t))
		}
		s.reply(batch)
	}
}

// commit applies batch in one transaction. An op whose prepare fails is
// skipped (it wrote nothing). If a write fails, the transaction rolls back
// and each op is retried in a transaction of its own, so one bad op cannot
// fail the others.
func (s *Store) commit(batch []*op) {
	var abort *storageError
	err := s.db.Update(func(tx *bbolt.Tx) error {
		a := &auditAppender{tx: tx}
		for _, o := range batch {
			o.result, o.records, o.err = nil, nil, nil
			if o.err = o.ctx.Err(); o.err != nil {
				continue
			}
			w, err := o.prepare(tx)
			if err != nil {
				o.err = err
				continue
			}
			start := len(a.out)
			r, err := w(tx, a)
			if err != nil {
				abort = &storageError{err}
				return abort
			}
			o.result, o.records = r, a.out[start:len(a.out):len(a.out)]
		}
		return nil
	})
	if abort != nil && len(batch) > 1 {
		for _, o := range batch {
			s.commit([]*op{o})
		}
		return
	}
	if err != nil {
		for _, o := range batch {
			if o.err == nil {
				o.result, o.records, o.err = nil, nil, err
			}
		}
	}
}

// reply mirrors the committed records in chain order, then wakes the callers.
func (s *Store) reply(batch []*op) {
	for _, o := range batch {
		if s.mirror != nil && o.err == nil {
			for _, rec := range o.records {
				if _, err := s.mirror.Write(rec.MarshalLine()); err != nil && s.mirrorErr == nil {
					s.mirrorErr = err
				}
			}
		}
		close(o.done)
	}
}

// Create stores a new request: it assigns the next sequence number and ID
// (AR-1001 is the first), sets Version to 1 and writes the request, its
// index entries and an audit record per history entry in one transaction.
// r must hold its first transition (State set, History not empty); r itself
// is not changed. It returns the stored copy. Errors: access.ErrInvalid for
// a request without history, ctx's error if it ended before the write was
// queued or reached, ErrClosed, or storage failures.
func (s *Store) Create(ctx context.Context, r *access.Request) (_ *access.Request, err error) {
	defer s.observe("create", time.Now(), &err)
	if r.State == "" || len(r.History) == 0 {
		return nil, access.Invalidf("a new request must hold its first transition")
	}
	in := r.Clone()
	o := &op{ctx: ctx}
	o.prepare = func(*bbolt.Tx) (writeFn, error) {
		return func(tx *bbolt.Tx, a *auditAppender) (*access.Request, error) {
			b := tx.Bucket(bucketRequests)
			seq, err := b.NextSequence()
			if err != nil {
				return nil, fmt.Errorf("next sequence: %w", err)
			}
			n := in.Clone()
			n.Seq, n.ID, n.Version = seq, access.FormatID(seq), 1
			if err := putRequest(tx, nil, n, nil); err != nil {
				return nil, err
			}
			if err := a.appendHistory(n, n.History); err != nil {
				return nil, err
			}
			return n, nil
		}, nil
	}
	if err := s.submit(o); err != nil {
		return nil, fmt.Errorf("create request: %w", err)
	}
	return o.result, nil
}

// Update is the one write path (DESIGN.md §4 invariant 1). Inside the
// writer's transaction it reads the request, calls fn on a copy and, if fn
// returns nil, writes the copy with Version+1, an audit record for every
// history entry fn appended and the deadline and open indexes moved to the
// copy's state and NextDeadline. fn must be pure: it may run more than once
// (a retried group commit) and runs while the transaction is open. If fn
// returns an error nothing is written and Update returns that error
// unwrapped, so callers can match it (access.ErrConflict from access.Apply).
// fn may not change ID or Seq, drop history, or change State without
// appending history (access.Apply does both); such a change fails with an
// error and writes nothing. Other errors: ErrInvalid/ErrNotFound as for
// Get, ctx's error if it ended before the write was reached, ErrClosed,
// storage failures. The returned copy is the caller's.
func (s *Store) Update(ctx context.Context, id string, fn func(r *access.Request) error) (_ *access.Request, err error) {
	defer s.observe("update", time.Now(), &err)
	seq, err := access.ParseID(id)
	if err != nil {
		return nil, err
	}
	o, fnErr := updateOp(ctx, seq, fn)
	// Run fn here, on the last committed state, so that the writer goroutine
	// only has to confirm the state is unchanged and write (optimistic
	// concurrency): decoding, fn and encoding then run in parallel on the
	// callers' goroutines while the writer waits for fsync. An error from fn
	// on the committed state is final (this Update is ordered at that
	// snapshot) and needs no write.
	pre, err := s.preUpdate(ctx, seq, fn)
	if err != nil {
		if errors.Is(err, access.ErrNotFound) || errors.Is(err, ErrClosed) {
			return nil, err
		}
		var fe fnError
		if errors.As(err, &fe) {
			return nil, fe.err
		}
		return nil, fmt.Errorf("update %s: %w", access.FormatID(seq), err)
	}
	o.pre = pre
	if err := s.submit(o); err != nil {
		if *fnErr || errors.Is(err, access.ErrNotFound) {
			return nil, err
		}
		return nil, fmt.Errorf("update %s: %w", access.FormatID(seq), err)
	}
	return o.result, nil
}

// updateOp builds Update's op. *fnErr reports whether the op's error came
// from fn (returned unwrapped).
func updateOp(ctx context.Context, seq uint64, fn func(r *access.Request) error) (*op, *bool) {
	fnErr := new(bool)
	o := &op{ctx: ctx}
	o.prepare = func(tx *bbolt.Tx) (writeFn, error) {
		*fnErr = false
		raw := tx.Bucket(bucketRequests).Get(seqKey(seq))
		if raw == nil {
			return nil, access.NotFoundf("There is no request %s.", access.FormatID(seq))
		}
		p := o.pre
		if p == nil || !bytes.Equal(raw, p.raw) {
			// Changed since the caller's snapshot (or none): run fn again on
			// the current state.
			var err error
			if p, err = prepareUpdate(seq, raw, fn); err != nil {
				var fe fnError
				if errors.As(err, &fe) {
					*fnErr = true
					return nil, fe.err
				}
				return nil, err
			}
		}
		return func(tx *bbolt.Tx, a *auditAppender) (*access.Request, error) {
			cur, next := p.cur, p.next
			if err := putRequest(tx, cur, next, p.enc); err != nil {
				return nil, err
			}
			if err := a.appendHistory(next, next.History[len(cur.History):]); err != nil {
				return nil, err
			}
			return next, nil
		}, nil
	}
	return o, fnErr
}

// prepared is an Update computed from one stored version of the request:
// valid for the write only while the stored bytes still equal raw.
type prepared struct {
	raw       []byte // the stored bytes fn ran on
	cur, next *access.Request
	enc       []byte // next, encoded
}

// fnError marks an error returned by the caller's fn.
type fnError struct{ err error }

func (e fnError) Error() string { return e.err.Error() }

// prepareUpdate decodes raw, runs fn on a copy, checks the change and
// encodes the result. It does no I/O; raw is not retained beyond the
// returned prepared value, so callers inside a transaction must not keep
// the result past it unless raw was copied.
func prepareUpdate(seq uint64, raw []byte, fn func(r *access.Request) error) (*prepared, error) {
	cur, err := decodeRequest(seq, raw)
	if err != nil {
		return nil, err
	}
	next := cur.Clone()
	if err := callFn(fn, next); err != nil {
		return nil, fnError{err}
	}
	if err := checkUpdate(cur, next); err != nil {
		return nil, err
	}
	next.Version = cur.Version + 1
	enc, err := json.Marshal(next)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", next.ID, err)
	}
	return &prepared{raw: raw, cur: cur, next: next, enc: enc}, nil
}

// preUpdate runs prepareUpdate on the last committed version, outside any
// transaction.
func (s *Store) preUpdate(ctx context.Context, seq uint64, fn func(r *access.Request) error) (*prepared, error) {
	var raw []byte
	if err := s.view(ctx, func(tx *bbolt.Tx) error {
		raw = bytes.Clone(tx.Bucket(bucketRequests).Get(seqKey(seq)))
		return nil
	}); err != nil {
		return nil, err
	}
	if raw == nil {
		return nil, access.NotFoundf("There is no request %s.", access.FormatID(seq))
	}
	return prepareUpdate(seq, raw, fn)
}

// checkUpdate rejects changes that would bypass the transition table.
func checkUpdate(cur, next *access.Request) error {
	switch {
	case next.ID != cur.ID || next.Seq != cur.Seq:
		return errors.New("fn changed the request's identity")
	case len(next.History) < len(cur.History):
		return errors.New("fn removed history entries")
	case next.State != cur.State && len(next.History) == len(cur.History):
		return fmt.Errorf("state changed from %s to %s without a transition (use access.Apply)", cur.State, next.State)
	case next.Entitlement.Key() != cur.Entitlement.Key() || next.Requester != cur.Requester:
		return errors.New("requester and entitlement are fixed at creation")
	}
	return nil
}

// putRequest writes n (encoded as raw, or encoded here when raw is nil) and
// moves its index entries from old (nil for a new request). Requester and entitlement never change, so their entries are
// written once.
func putRequest(tx *bbolt.Tx, old, n *access.Request, raw []byte) error {
	var err error
	if raw == nil {
		if raw, err = json.Marshal(n); err != nil {
			return fmt.Errorf("encode %s: %w", n.ID, err)
		}
	}
	k := seqKey(n.Seq)
	reqs := tx.Bucket(bucketRequests)
	reqs.FillPercent = fillAppendOnly
	if err := reqs.Put(k, raw); err != nil {
		return fmt.Errorf("put %s: %w", n.ID, err)
	}

	var oldDL, newDL []byte
	if old != nil && !old.NextDeadline().IsZero() {
		oldDL = deadlineKey(old.NextDeadline(), old.Seq)
	}
	if d := n.NextDeadline(); !d.IsZero() {
		newDL = deadlineKey(d, n.Seq)
	}
	if !bytes.Equal(oldDL, newDL) {
		dl := tx.Bucket(bucketDeadlines)
		if oldDL != nil {
			if err := dl.Delete(oldDL); err != nil {
				return fmt.Errorf("move deadline of %s: %w", n.ID, err)
			}
		}
		if newDL != nil {
			if err := dl.Put(newDL, nil); err != nil {
				return fmt.Errorf("move deadline of %s: %w", n.ID, err)
			}
		}
	}

	open := tx.Bucket(bucketOpen)
	switch {
	case n.State.Terminal():
		if old != nil && !old.State.Terminal() {
			err = open.Delete(k)
		}
	case old == nil || old.State != n.State:
		open.FillPercent = fillAppendOnly
		err = open.Put(k, []byte(n.State))
	}
	if err != nil {
		return fmt.Errorf("index %s as open: %w", n.ID, err)
	}

	if old == nil {
		for _, ix := range []struct {
			bucket []byte
			value  string
		}{{bucketByRequester, n.Requester}, {bucketByEntitlement, n.Entitlement.Key()}} {
			if err := tx.Bucket(ix.bucket).Put(indexKey(ix.value, n.Seq), nil); err != nil {
				return fmt.Errorf("index %s in %s: %w", n.ID, ix.bucket, err)
			}
		}
	}
	return nil
}

// callFn runs the caller's fn, turning a panic into an error: fn runs on the
// writer goroutine, and a panic there would stop every write.
func callFn(fn func(*access.Request) error, r *access.Request) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("update %s: fn panicked: %v", r.ID, p)
		}
	}()
	return fn(r)
}

// commitHook, when set before Open, is called by the writer after each
// group commit with its size and duration (benchmarks report batch sizes).
var commitHook func(ops int, d time.Duration)

// observe reports an operation to the Observer, if any.
func (s *Store) observe(op string, start time.Time, err *error) {
	if s.obs != nil {
		s.obs.Query(op, time.Since(start), *err)
	}
}
