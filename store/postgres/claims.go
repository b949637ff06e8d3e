package postgres

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/accessbot/accessbot/access"
	"github.com/jackc/pgx/v5/pgxpool"
)

// ClaimDue claims, for owner, up to limit requests whose deadline is at or
// before until and that no other owner holds an unexpired claim on,
// earliest deadline first, and returns them in that order. Each claim
// lasts until the store clock's now + lease. Requests owner already holds
// are returned again with their lease renewed, so a runner that calls
// ClaimDue every few seconds keeps the leases of work still in progress.
// A claim whose lease ended passes to the next owner that asks (counted as
// taken over in Observer.Claimed): this is how the work of a replica that
// died moves to the others.
//
// Rows being written by an Update at that moment are skipped (FOR UPDATE
// SKIP LOCKED) and found by the next call. Claims are not fenced: an owner
// whose lease ended before it finished may race the new owner, so the
// work done under a claim must still go through Update's compare-and-swap
// (the transition table lets one of them win). Update leaves claims as
// they are; a claim ends with Release or its lease.
//
// owner must be non-empty and unique per running replica (e.g. host name
// and process start time); lease and limit must be positive. ClaimDue is
// bounded by Options.OpTimeout, so a replica cut off from the database
// gets an error quickly and can stop claiming and report it (/readyz).
func (s *Store) ClaimDue(ctx context.Context, owner string, until time.Time, lease time.Duration, limit int) (out []access.Due, err error) {
	if owner == "" || lease <= 0 || limit <= 0 {
		return nil, access.Invalidf("ClaimDue needs an owner, a positive lease and a positive limit (got %q, %v, %d)", owner, lease, limit)
	}
	done, err := s.begin("claim_due")
	if err != nil {
		return nil, err
	}
	defer done(&err)
	ctx, cancel := s.bounded(ctx)
	defer cancel()
	now := s.clock.Now().UnixNano()
	// One statement, so one implicit transaction: the subquery locks the
	// candidates, skipping rows another claimer (or an Update) holds, and
	// the UPDATE marks them. A row another claimer committed meanwhile is
	// re-checked against the WHERE clause on its new version (READ
	// COMMITTED's EvalPlanQual), so it is never claimed twice.
	rows, err := s.pool.Query(ctx, `
		UPDATE accessbot_requests r SET claim_owner = $1, claim_until = $2
		FROM (
			SELECT seq, claim_owner AS prev_owner
			FROM accessbot_requests
			WHERE next_deadline IS NOT NULL AND next_deadline <= $3
			  AND (claim_owner IS NULL OR claim_owner = $1 OR claim_until <= $4)
			ORDER BY next_deadline, seq
			LIMIT $5
			FOR UPDATE SKIP LOCKED
		) c
		WHERE r.seq = c.seq
		RETURNING r.seq, r.next_deadline, c.prev_owner`,
		owner, now+int64(lease), max(until.UnixNano(), 0), now, limit)
	if err != nil {
		return nil, fmt.Errorf("claim due work: %w", err)
	}
	defer rows.Close()
	type claimed struct {
		seq, at int64
	}
	var got []claimed
	takenOver := 0
	for rows.Next() {
		var c claimed
		var prevOwner *string
		if err := rows.Scan(&c.seq, &c.at, &prevOwner); err != nil {
			return nil, fmt.Errorf("claim due work: %w", err)
		}
		// Another owner's claim passed the WHERE clause only if expired.
		if prevOwner != nil && *prevOwner != owner {
			takenOver++
		}
		got = append(got, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("claim due work: %w", err)
	}
	// RETURNING has no order.
	slices.SortFunc(got, func(a, b claimed) int {
		if a.at != b.at {
			return cmpInt(a.at, b.at)
		}
		return cmpInt(a.seq, b.seq)
	})
	out = make([]access.Due, len(got))
	for i, c := range got {
		out[i] = access.Due{ID: access.FormatID(uint64(c.seq)), At: fromNanos(c.at)}
	}
	if s.obs != nil {
		s.obs.Claimed(owner, len(out), takenOver)
	}
	return out, nil
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Release ends owner's claims on the given requests (once their work is
// done, so that a deadline the work moved into the near future is not
// held back until the lease ends). Claims held by other owners, unknown
// IDs and unclaimed requests are left alone. It is idempotent. Errors: one
// wrapping access.ErrInvalid for a malformed ID, ErrClosed, database
// failures (bounded by Options.OpTimeout).
func (s *Store) Release(ctx context.Context, owner string, ids ...string) (err error) {
	seqs := make([]int64, 0, len(ids))
	for _, id := range ids {
		seq, err := access.ParseID(id)
		if err != nil {
			return err
		}
		seqs = append(seqs, int64(seq))
	}
	if len(seqs) == 0 {
		return nil
	}
	done, err := s.begin("release")
	if err != nil {
		return err
	}
	defer done(&err)
	ctx, cancel := s.bounded(ctx)
	defer cancel()
	// Rows locked in seq order, as the writer locks them, so that the two
	// cannot deadlock.
	if _, err := s.pool.Exec(ctx, `UPDATE accessbot_requests SET claim_owner = NULL, claim_until = NULL
		WHERE seq IN (SELECT seq FROM accessbot_requests WHERE seq = ANY($1) AND claim_owner = $2 ORDER BY seq FOR UPDATE)`,
		seqs, owner); err != nil {
		return fmt.Errorf("release claims: %w", err)
	}
	return nil
}

// lockKeySpace separates Lock's advisory lock keys from other users of
// advisory locks in the same database (the hash is salted with it).
const lockKeySpace = "accessbot.lock\x00"

// advisoryKey maps a Lock key to a 64-bit advisory lock key. Distinct keys
// colliding (probability ~n²/2⁶⁵) would only serialise two unrelated
// entitlements.
func advisoryKey(key string) int64 {
	sum := sha256.Sum256([]byte(lockKeySpace + key))
	return int64(binary.BigEndian.Uint64(sum[:8]))
}

// Lock takes a lock on key that excludes every other holder of the same
// key in every replica: in this process first (a keyed mutex, so that one
// process uses one connection per key however many goroutines wait),
// then in the database with pg_advisory_lock on a hash of key, over a
// connection of the lock pool (Options.LockConns) held until unlock. It
// waits until the lock is free or ctx ends (then it returns ctx's error
// and holds nothing; a wait in the database is cancelled by closing its
// connection). unlock releases it and may be called more than once.
//
// If the connection is lost while the lock is held, the database drops the
// lock (the session ended) and another replica may take it; the holder
// learns of it only through its next database call failing. Keep what is
// done under a lock idempotent (connector calls are, by contract).
// Locks are not reentrant.
func (s *Store) Lock(ctx context.Context, key string) (unlock func(), err error) {
	done, err := s.begin("lock")
	if err != nil {
		return nil, err
	}
	defer done(&err)
	local, err := s.locks.Lock(ctx, key)
	if err != nil {
		return nil, err
	}
	conn, err := s.lockPool.Acquire(ctx)
	if err != nil {
		local()
		return nil, fmt.Errorf("lock %q: %w", key, err)
	}
	k := advisoryKey(key)
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, k); err != nil {
		discard(conn)
		local()
		if ctxErr := ctx.Err(); ctxErr != nil {
			return nil, ctxErr
		}
		return nil, fmt.Errorf("lock %q: %w", key, err)
	}
	var once sync.Once
	return func() { once.Do(func() { s.unlock(conn, k, local) }) }, nil
}

func (s *Store) unlock(conn *pgxpool.Conn, k int64, local func()) {
	ctx, cancel := context.WithTimeout(context.Background(), s.opTimeout)
	defer cancel()
	var ok bool
	if err := conn.QueryRow(ctx, `SELECT pg_advisory_unlock($1)`, k).Scan(&ok); err != nil || !ok {
		// The session may still hold the lock: end it.
		discard(conn)
	} else {
		conn.Release()
	}
	local()
}

// discard closes a pooled connection (ending its session and any advisory
// lock it holds) and gives it back to the pool, which drops it.
func discard(conn *pgxpool.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = conn.Conn().Close(ctx)
	conn.Release()
}
