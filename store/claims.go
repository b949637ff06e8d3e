package store

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/internal/keylock"
	"go.etcd.io/bbolt"
)

// Observer receives metrics from the store (the application wires it to
// Prometheus). It has the same methods as the PostgreSQL store's
// Observer, so one implementation serves both. Methods are called
// synchronously after the operation and must be fast and safe for
// concurrent use.
type Observer interface {
	// Claimed is called after every successful ClaimDue with the number of
	// requests claimed, of which takenOver came from another owner's
	// expired lease.
	Claimed(owner string, claimed, takenOver int)
	// Query is called after store operations with their name ("create",
	// "update", "claim_due", …), how long they took and their error.
	Query(op string, d time.Duration, err error)
}

// claims holds the leases of ClaimDue. One process owns a bbolt file, so
// leases live in memory: owners are that process's runners, and a restart
// rightly forgets the claims of the process that is gone.
type claims struct {
	mu sync.Mutex
	m  map[uint64]claim
}

type claim struct {
	owner string
	until time.Time
}

// pruneAt is the number of leases above which ClaimDue forgets expired
// ones (claims never released by a runner that failed).
const pruneAt = 4096

// ClaimDue claims, for owner, up to limit requests whose deadline is at or
// before until and that no other owner holds an unexpired claim on,
// earliest deadline first, and returns them in that order. Each claim
// lasts until the store clock's now + lease. Requests owner already holds
// are returned again with their lease renewed. A claim whose lease ended
// passes to the next owner that asks (counted as taken over in
// Observer.Claimed). The contract is the PostgreSQL store's; see there.
// Claims are kept in memory: one process owns the file.
func (s *Store) ClaimDue(ctx context.Context, owner string, until time.Time, lease time.Duration, limit int) ([]access.Due, error) {
	if owner == "" || lease <= 0 || limit <= 0 {
		return nil, access.Invalidf("ClaimDue needs an owner, a positive lease and a positive limit (got %q, %v, %d)", owner, lease, limit)
	}
	start := time.Now()
	s.claims.mu.Lock()
	defer s.claims.mu.Unlock()
	now := s.clock.Now()
	if s.claims.m == nil {
		s.claims.m = map[uint64]claim{}
	}
	if len(s.claims.m) > pruneAt {
		for seq, c := range s.claims.m {
			if !c.until.After(now) {
				delete(s.claims.m, seq)
			}
		}
	}
	var out []access.Due
	takenOver := 0
	end := deadlineKey(until, ^uint64(0))
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		c := tx.Bucket(bucketDeadlines).Cursor()
		for k, _ := c.First(); k != nil && bytes.Compare(k, end) <= 0 && len(out) < limit; k, _ = c.Next() {
			at, seq := parseDeadlineKey(k)
			if cl, ok := s.claims.m[seq]; ok && cl.owner != owner {
				if cl.until.After(now) {
					continue
				}
				takenOver++
			}
			s.claims.m[seq] = claim{owner: owner, until: now.Add(lease)}
			out = append(out, access.Due{ID: access.FormatID(seq), At: at})
		}
		return nil
	})
	if s.obs != nil {
		s.obs.Query("claim_due", time.Since(start), err)
	}
	if err != nil {
		return nil, fmt.Errorf("claim due work: %w", err)
	}
	if s.obs != nil {
		s.obs.Claimed(owner, len(out), takenOver)
	}
	return out, nil
}

// Release ends owner's claims on the given requests. Claims held by other
// owners, unknown IDs and unclaimed requests are left alone; it is
// idempotent. Errors: one wrapping access.ErrInvalid for a malformed ID,
// ErrClosed.
func (s *Store) Release(ctx context.Context, owner string, ids ...string) error {
	seqs := make([]uint64, 0, len(ids))
	for _, id := range ids {
		seq, err := access.ParseID(id)
		if err != nil {
			return err
		}
		seqs = append(seqs, seq)
	}
	s.mu.RLock()
	closed := s.closed
	s.mu.RUnlock()
	if closed {
		return ErrClosed
	}
	s.claims.mu.Lock()
	defer s.claims.mu.Unlock()
	for _, seq := range seqs {
		if c, ok := s.claims.m[seq]; ok && c.owner == owner {
			delete(s.claims.m, seq)
		}
	}
	return nil
}

// Lock takes an in-process lock on key (one process owns the file, so
// that excludes every other holder), waiting until it is free or ctx ends
// (then it returns ctx's error and holds nothing). unlock releases it and
// may be called more than once. Locks are not reentrant. The contract is
// the PostgreSQL store's, whose locks span replicas.
func (s *Store) Lock(ctx context.Context, key string) (unlock func(), err error) {
	s.mu.RLock()
	closed := s.closed
	s.mu.RUnlock()
	if closed {
		return nil, ErrClosed
	}
	return s.locks.Lock(ctx, key)
}

// keyLocks is Lock's keyed mutex.
type keyLocks = keylock.Locks
