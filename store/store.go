// Package store persists accessbot's requests, their deadline index and the
// hash-chained audit log in one bbolt file. It is the only importer of
// bbolt and implements access.Store.
//
// One process owns the file (bbolt's flock); Open fails fast with ErrLocked
// when another holds it. All writes go through one writer goroutine that
// group-commits whatever is queued into one transaction (one fsync for many
// transitions) without waiting for more; reads are concurrent MVCC
// snapshots and never wait for the writer.
package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	"github.com/accessbot/accessbot/access"
	"go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

var _ access.Store = (*Store)(nil)

var (
	// ErrLocked is returned by Open when another process holds the file.
	ErrLocked = errors.New("store locked")
	// ErrClosed is returned by every method called after Close.
	ErrClosed = errors.New("store closed")
)

// DefaultLockTimeout is how long Open waits for another process to release
// the file.
const DefaultLockTimeout = time.Second

// defaultMaxBatch bounds how many queued operations share one commit: large
// enough to amortise the two fsyncs of a commit at 64 writers, small enough
// that one transaction's dirty pages stay a few MiB.
const defaultMaxBatch = 256

// Options configures Open. The zero value is valid.
type Options struct {
	// LockTimeout is how long Open waits for the file lock; default 1s.
	LockTimeout time.Duration
	// Clock stamps records that carry no time of their own (AppendAudit);
	// default the wall clock.
	Clock access.Clock
	// NoSync skips fsync on commit. Unsafe: for tests only.
	NoSync bool
	// AuditMirror, if set, receives every audit record as one JSON line
	// after the transaction that appended it committed, in chain order. It
	// is written by the writer goroutine, so a slow mirror slows commits.
	// Write errors do not undo commits; the first is returned by Close.
	AuditMirror io.Writer
	// MaxBatch caps the operations per group commit; default 256.
	MaxBatch int
	// Observer receives metrics hooks (claims, operation latency); nil:
	// none.
	Observer Observer
}

// Store is the bbolt-backed access.Store. It is safe for concurrent use.
type Store struct {
	db       *bbolt.DB
	path     string
	clock    access.Clock
	mirror   io.Writer
	maxBatch int

	mu     sync.RWMutex // guards closed and sending on ops
	closed bool
	ops    chan *op
	done   chan struct{} // closed when the writer has exited

	mirrorErr error // first mirror write error; writer goroutine only until done

	obs    Observer
	claims claims   // ClaimDue's leases
	locks  keyLocks // Lock's keyed mutex
}

// Open opens or creates the store at path, migrating its schema to the
// current version. It returns an error wrapping ErrLocked when another
// process holds the file for longer than opts.LockTimeout. The caller must
// Close the store.
func Open(path string, opts Options) (*Store, error) {
	timeout := opts.LockTimeout
	if timeout <= 0 {
		timeout = DefaultLockTimeout
	}
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{
		Timeout:      timeout,
		NoSync:       opts.NoSync,
		FreelistType: bbolt.FreelistMapType, // "faster in almost all circumstances" (bbolt db.go)
	})
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, fmt.Errorf("store %s is in use by another accessbot process (lock not acquired within %s): %w", path, timeout, ErrLocked)
	}
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	if err := db.Update(func(tx *bbolt.Tx) error {
		_, _, err := migrate(tx, migrations)
		return err
	}); err != nil {
		db.Close()
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	s := &Store{
		db:       db,
		path:     path,
		clock:    opts.Clock,
		mirror:   opts.AuditMirror,
		maxBatch: opts.MaxBatch,
		done:     make(chan struct{}),
		obs:      opts.Observer,
	}
	if s.clock == nil {
		s.clock = access.ClockFunc(time.Now)
	}
	if s.maxBatch <= 0 {
		s.maxBatch = defaultMaxBatch
	}
	s.ops = make(chan *op, 4*s.maxBatch)
	go s.writer()
	return s, nil
}

// Path returns the file the store was opened from.
func (s *Store) Path() string { return s.path }

// Close stops accepting writes, commits every write already queued, waits
// for the writer to finish and closes the file. It returns the first audit
// mirror write error, if any. Calling Close more than once returns
// ErrClosed.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	s.closed = true
	close(s.ops) // no sender holds mu.RLock now, so none can send on a closed channel
	s.mu.Unlock()
	<-s.done
	err := s.db.Close()
	if s.mirrorErr != nil {
		err = errors.Join(fmt.Errorf("audit mirror: %w", s.mirrorErr), err)
	}
	if err != nil {
		return fmt.Errorf("close store %s: %w", s.path, err)
	}
	return nil
}

// view runs fn in a read transaction, failing with ErrClosed after Close.
// fn must be short: a long read transaction delays the writer when the file
// has to grow (engine-notes §3).
func (s *Store) view(ctx context.Context, fn func(tx *bbolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return ErrClosed
	}
	return s.db.View(fn)
}

// Get returns the request with the given ID, matched case-insensitively
// with or without the "AR-" prefix. Errors: one wrapping access.ErrInvalid
// for a malformed ID, one wrapping access.ErrNotFound ("There is no request
// AR-1042.") for an unknown one, ErrClosed, or storage failures. The result
// is the caller's to change.
func (s *Store) Get(ctx context.Context, id string) (*access.Request, error) {
	seq, err := access.ParseID(id)
	if err != nil {
		return nil, err
	}
	var raw []byte
	err = s.view(ctx, func(tx *bbolt.Tx) error {
		raw = bytes.Clone(tx.Bucket(bucketRequests).Get(seqKey(seq)))
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", access.FormatID(seq), err)
	}
	if raw == nil {
		return nil, access.NotFoundf("There is no request %s.", access.FormatID(seq))
	}
	return decodeRequest(seq, raw)
}

func decodeRequest(seq uint64, raw []byte) (*access.Request, error) {
	r := new(access.Request)
	if err := json.Unmarshal(raw, r); err != nil {
		return nil, fmt.Errorf("decode %s: %w", access.FormatID(seq), err)
	}
	return r, nil
}

// List returns the requests matching f, newest first, at most f.Limit when
// it is positive. It reads one secondary index when the filter allows
// (entitlement, requester, or non-terminal states / approver via the open
// index) and decodes only the candidates; a filter on System or terminal
// states alone scans every request.
func (s *Store) List(ctx context.Context, f access.Filter) ([]*access.Request, error) {
	var out []*access.Request
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		reqs := tx.Bucket(bucketRequests)
		// consider decodes one candidate and reports whether to go on.
		consider := func(seq uint64, raw []byte) (bool, error) {
			if raw == nil {
				return true, fmt.Errorf("index names %s, which is not stored", access.FormatID(seq))
			}
			r, err := decodeRequest(seq, raw)
			if err != nil {
				return false, err
			}
			if matches(r, f) {
				out = append(out, r)
			}
			return f.Limit <= 0 || len(out) < f.Limit, nil
		}
		fromSeqs := func(seqs []uint64) error {
			for _, seq := range seqs {
				if err := ctx.Err(); err != nil {
					return err
				}
				more, err := consider(seq, reqs.Get(seqKey(seq)))
				if err != nil || !more {
					return err
				}
			}
			return nil
		}
		switch {
		case f.Entitlement != "":
			return fromSeqs(seqsByPrefix(tx.Bucket(bucketByEntitlement), f.Entitlement))
		case f.Requester != "":
			return fromSeqs(seqsByPrefix(tx.Bucket(bucketByRequester), f.Requester))
		case f.Approver != "" || (len(f.States) > 0 && !slices.ContainsFunc(f.States, access.State.Terminal)):
			c := tx.Bucket(bucketOpen).Cursor()
			for k, v := c.Last(); k != nil; k, v = c.Prev() {
				if !stateMatches(access.State(v), f) {
					continue // skip the decode
				}
				if err := ctx.Err(); err != nil {
					return err
				}
				seq := binary.BigEndian.Uint64(k)
				more, err := consider(seq, reqs.Get(k))
				if err != nil || !more {
					return err
				}
			}
			return nil
		default:
			c := reqs.Cursor()
			for k, v := c.Last(); k != nil; k, v = c.Prev() {
				if err := ctx.Err(); err != nil {
					return err
				}
				more, err := consider(binary.BigEndian.Uint64(k), v)
				if err != nil || !more {
					return err
				}
			}
			return nil
		}
	})
	if err != nil {
		return nil, fmt.Errorf("list requests: %w", err)
	}
	return out, nil
}

func stateMatches(st access.State, f access.Filter) bool {
	if f.Approver != "" && st != access.StatePending {
		return false
	}
	return len(f.States) == 0 || slices.Contains(f.States, st)
}

func matches(r *access.Request, f access.Filter) bool {
	return stateMatches(r.State, f) &&
		(f.Requester == "" || r.Requester == f.Requester) &&
		(f.System == "" || r.System == f.System) &&
		(f.Entitlement == "" || r.Entitlement.Key() == f.Entitlement) &&
		(f.Approver == "" || r.IsApprover(f.Approver))
}

// Due returns up to limit (no limit when limit <= 0) entries of the
// deadline index at or before until, earliest first. It reads only the
// index, never a request.
func (s *Store) Due(ctx context.Context, until time.Time, limit int) ([]access.Due, error) {
	var out []access.Due
	end := deadlineKey(until, ^uint64(0))
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		c := tx.Bucket(bucketDeadlines).Cursor()
		for k, _ := c.First(); k != nil && bytes.Compare(k, end) <= 0; k, _ = c.Next() {
			at, seq := parseDeadlineKey(k)
			out = append(out, access.Due{ID: access.FormatID(seq), At: at})
			if limit > 0 && len(out) >= limit {
				break
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("due deadlines: %w", err)
	}
	return out, nil
}

// deadlineChunk is how many index entries Deadlines reads per read
// transaction: fn runs outside any transaction, so it may call the store.
// A variable so that tests can cross chunk boundaries cheaply.
var deadlineChunk = 8192

// Deadlines calls fn for every entry of the deadline index in time order
// (times in UTC) without decoding requests, until fn returns false. The
// index is read in chunks of short read transactions and fn is called
// between them, so fn may call the store; entries changed during the scan
// may be seen in either state.
func (s *Store) Deadlines(ctx context.Context, fn func(d access.Due) bool) error {
	var after []byte
	batch := make([]access.Due, 0, deadlineChunk)
	for {
		batch = batch[:0]
		err := s.view(ctx, func(tx *bbolt.Tx) error {
			c := tx.Bucket(bucketDeadlines).Cursor()
			k, _ := c.First()
			if after != nil {
				k, _ = c.Seek(after)
				if bytes.Equal(k, after) {
					k, _ = c.Next()
				}
			}
			for ; k != nil && len(batch) < deadlineChunk; k, _ = c.Next() {
				at, seq := parseDeadlineKey(k)
				batch = append(batch, access.Due{ID: access.FormatID(seq), At: at})
				after = append(after[:0], k...)
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("scan deadlines: %w", err)
		}
		for _, d := range batch {
			if !fn(d) {
				return nil
			}
		}
		if len(batch) < deadlineChunk {
			return nil
		}
	}
}
