package postgres

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/accessbot/accessbot/access"
)

// Check verifies that every request's indexed columns agree with its JSON
// (seq and ID, version, state, open, requester, system, entitlement,
// next_deadline), that the request sequence is past every stored number,
// and the audit chain with its head (VerifyAudit). It reads everything:
// for tests and offline checks, not for a busy store. It returns every
// problem found, joined.
func (s *Store) Check(ctx context.Context) error {
	if _, err := s.begin("check"); err != nil {
		return err
	}
	var errs []error
	var maxSeq int64
	err := s.exportRaw(ctx, func(w row, r *access.Request) bool {
		maxSeq = max(maxSeq, w.seq)
		want, err := toRow(r)
		if err != nil {
			errs = append(errs, err)
			return true
		}
		id := access.FormatID(uint64(w.seq))
		switch {
		case r.Seq != uint64(w.seq) || r.ID != id:
			errs = append(errs, fmt.Errorf("request under seq %d claims %s (seq %d)", w.seq, r.ID, r.Seq))
		case w.version != want.version || w.state != want.state || w.open != want.open || w.requester != want.requester || w.system != want.system:
			errs = append(errs, fmt.Errorf("%s: columns (version %d, state %s, open %v, requester %s, system %s) disagree with its JSON (%d, %s, %v, %s, %s)",
				id, w.version, w.state, w.open, w.requester, w.system, want.version, want.state, want.open, want.requester, want.system))
		case !bytes.Equal(w.entitlement, want.entitlement):
			errs = append(errs, fmt.Errorf("%s: entitlement column disagrees with its JSON", id))
		case (w.deadline == nil) != (want.deadline == nil) || (w.deadline != nil && *w.deadline != *want.deadline):
			errs = append(errs, fmt.Errorf("%s: next_deadline %v disagrees with NextDeadline %v", id, nanosString(w.deadline), nanosString(want.deadline)))
		}
		return true
	})
	if err != nil {
		errs = append(errs, err)
	}
	var last int64
	var called bool
	if err := s.pool.QueryRow(ctx, `SELECT last_value, is_called FROM accessbot_request_seq`).Scan(&last, &called); err != nil {
		errs = append(errs, fmt.Errorf("read request sequence: %w", err))
	} else if next := nextValue(last, called); next <= maxSeq {
		errs = append(errs, fmt.Errorf("request sequence would hand out %d, but %s exists", next, access.FormatID(uint64(maxSeq))))
	}
	if _, err := s.VerifyAudit(ctx); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("check postgres store: %w", err)
	}
	return nil
}

func nanosString(n *int64) string {
	if n == nil {
		return "none"
	}
	return fromNanos(*n).String()
}

// exportRaw is ExportRequests with each request's stored columns (for
// Check).
func (s *Store) exportRaw(ctx context.Context, fn func(w row, r *access.Request) bool) error {
	after := int64(0)
	for {
		rows, err := s.pool.Query(ctx, `SELECT seq, version, state, open, requester, system, entitlement, next_deadline, data
			FROM accessbot_requests WHERE seq > $1 ORDER BY seq LIMIT $2`, after, exportChunk)
		if err != nil {
			return fmt.Errorf("read requests: %w", err)
		}
		type item struct {
			w row
			r *access.Request
		}
		var batch []item
		for rows.Next() {
			var w row
			if err := rows.Scan(&w.seq, &w.version, &w.state, &w.open, &w.requester, &w.system, &w.entitlement, &w.deadline, &w.data); err != nil {
				rows.Close()
				return fmt.Errorf("read requests: %w", err)
			}
			r, err := decodeRequest(w.seq, w.data)
			if err != nil {
				rows.Close()
				return err
			}
			batch = append(batch, item{w, r})
			after = w.seq
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("read requests: %w", err)
		}
		for _, it := range batch {
			if !fn(it.w, it.r) {
				return nil
			}
		}
		if len(batch) < exportChunk {
			return nil
		}
	}
}

// nextValue is what nextval would return for a sequence with increment 1.
func nextValue(last int64, called bool) int64 {
	if called {
		return last + 1
	}
	return last
}
