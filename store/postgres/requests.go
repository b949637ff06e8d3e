package postgres

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/audit"
	"github.com/jackc/pgx/v5"
)

// row is a request as written: the JSON and the columns derived from it.
type row struct {
	seq         int64
	version     int64
	state       string
	open        bool
	requester   string
	system      string
	entitlement []byte
	deadline    *int64
	data        []byte
}

func toRow(r *access.Request) (row, error) {
	data, err := json.Marshal(r)
	if err != nil {
		return row{}, fmt.Errorf("encode %s: %w", r.ID, err)
	}
	return row{
		seq: int64(r.Seq), version: int64(r.Version), state: string(r.State), open: !r.State.Terminal(),
		requester: r.Requester, system: r.System, entitlement: entitlementKey(r.Entitlement.Key()),
		deadline: deadlineNanos(r.NextDeadline()), data: data,
	}, nil
}

// entitlementKey is what the entitlement column holds: a fixed-length hash
// whatever the grant parameters (a B-tree entry is limited to about 2.7 kB).
// List re-checks every decoded request, so a collision would cost a decode.
func entitlementKey(key string) []byte {
	sum := sha256.Sum256([]byte(key))
	return sum[:]
}

// deadlineNanos is the next_deadline column for t: nil for none, Unix
// nanoseconds otherwise, times before 1970 clamped to 0 (overdue either
// way), as the bbolt store's index keys.
func deadlineNanos(t time.Time) *int64 {
	if t.IsZero() {
		return nil
	}
	n := max(t.UnixNano(), 0)
	return &n
}

func fromNanos(n int64) time.Time { return time.Unix(0, n).UTC() }

func decodeRequest(seq int64, data []byte) (*access.Request, error) {
	r := new(access.Request)
	if err := json.Unmarshal(data, r); err != nil {
		return nil, fmt.Errorf("decode %s: %w", access.FormatID(uint64(seq)), err)
	}
	return r, nil
}

const insertRequestSQL = `INSERT INTO accessbot_requests
	(seq, version, state, open, requester, system, entitlement, next_deadline, data)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`

func (w row) insertArgs() []any {
	return []any{w.seq, w.version, w.state, w.open, w.requester, w.system, w.entitlement, w.deadline, w.data}
}

// Create stores a new request: it takes the next number of the sequence
// (AR-1001 is the first; a rolled-back Create may leave a gap), sets
// Version to 1 and writes the request and an audit record per history
// entry in one transaction (the writer's, shared with other queued
// writes). r must hold its first transition; r itself is
// not changed. It returns the stored copy. Errors: access.ErrInvalid for a
// request without history, ctx's error if it ended before the transaction
// began, ErrClosed, or database failures.
func (s *Store) Create(ctx context.Context, r *access.Request) (out *access.Request, err error) {
	if r.State == "" || len(r.History) == 0 {
		return nil, access.Invalidf("a new request must hold its first transition")
	}
	done, err := s.begin("create")
	if err != nil {
		return nil, err
	}
	defer done(&err)
	o := &op{ctx: ctx, kind: opCreate, req: r.Clone()}
	if err := s.submit(o); err != nil {
		return nil, fmt.Errorf("create request: %w", err)
	}
	return o.result, nil
}

// Get returns the request with the given ID, matched case-insensitively
// with or without the "AR-" prefix. Errors: one wrapping access.ErrInvalid
// for a malformed ID, one wrapping access.ErrNotFound ("There is no request
// AR-1042.") for an unknown one, ErrClosed, or database failures. The
// result is the caller's to change.
func (s *Store) Get(ctx context.Context, id string) (r *access.Request, err error) {
	seq, err := access.ParseID(id)
	if err != nil {
		return nil, err
	}
	done, err := s.begin("get")
	if err != nil {
		return nil, err
	}
	defer done(&err)
	var data []byte
	err = s.pool.QueryRow(ctx, `SELECT data FROM accessbot_requests WHERE seq = $1`, int64(seq)).Scan(&data)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, access.NotFoundf("There is no request %s.", access.FormatID(seq))
	}
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", access.FormatID(seq), err)
	}
	return decodeRequest(int64(seq), data)
}

// Update is the one write path (DESIGN.md §4 invariant 1). In one
// transaction (the writer's, shared with other queued writes) it reads the
// request FOR UPDATE (concurrent Updates of the same request, from any
// replica, wait for each other: no update is lost), calls fn on a copy
// and, if fn returns nil, writes the copy with Version+1 and its indexed
// columns (deadline, state) and appends an audit record for every history
// entry fn appended. fn runs on the writer goroutine while the row is
// locked, once per attempt (a batch that fails is retried op by op, so fn
// may run twice); it must be pure and quick. If fn returns an error
// nothing is written and Update returns that error unwrapped, so callers
// can match it (access.ErrConflict from access.Apply). fn may not change ID
// or Seq, drop history, change State without appending history, or change
// the requester or entitlement; such a change fails and writes nothing.
// Claims (ClaimDue) are left as they are. Other errors: ErrInvalid and
// ErrNotFound as for Get, ctx's error if it ended before the transaction
// began, ErrClosed, database failures. The returned copy is the caller's.
func (s *Store) Update(ctx context.Context, id string, fn func(r *access.Request) error) (out *access.Request, err error) {
	seq, err := access.ParseID(id)
	if err != nil {
		return nil, err
	}
	done, err := s.begin("update")
	if err != nil {
		return nil, err
	}
	defer done(&err)
	o := &op{ctx: ctx, kind: opUpdate, seq: int64(seq), fn: fn}
	err = s.submit(o)
	switch {
	case err == nil:
		return o.result, nil
	case o.fnErr, errors.Is(err, access.ErrNotFound):
		return nil, err
	}
	return nil, fmt.Errorf("update %s: %w", access.FormatID(seq), err)
}

// callFn runs the caller's fn, turning a panic into an error: fn runs on
// the writer goroutine, and a panic there would stop every write.
func callFn(fn func(*access.Request) error, r *access.Request) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("update %s: fn panicked: %v", r.ID, p)
		}
	}()
	return fn(r)
}

// checkUpdate rejects changes that would bypass the transition table (the
// same rules as the bbolt store's).
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

// historyRecords is one audit record per history entry (the same fields as
// the bbolt store writes: the conformance suite compares them).
func historyRecords(r *access.Request, entries []access.HistoryEntry) []audit.Record {
	out := make([]audit.Record, 0, len(entries))
	for _, h := range entries {
		out = append(out, audit.Record{
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
		})
	}
	return out
}

// List returns the requests matching f, newest first, at most f.Limit when
// it is positive. It narrows by the indexed columns (requester,
// entitlement, system, state, open) and re-checks every decoded request,
// so an approver filter (pending requests whose current step names the
// person) reads only pending requests.
func (s *Store) List(ctx context.Context, f access.Filter) (out []*access.Request, err error) {
	done, err := s.begin("list")
	if err != nil {
		return nil, err
	}
	defer done(&err)
	var where []string
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	if f.Requester != "" {
		where = append(where, "requester = "+arg(f.Requester))
	}
	if f.Entitlement != "" {
		where = append(where, "entitlement = "+arg(entitlementKey(f.Entitlement)))
	}
	if f.System != "" {
		where = append(where, "system = "+arg(f.System))
	}
	states := f.States
	if f.Approver != "" {
		if len(states) > 0 && !slices.Contains(states, access.StatePending) {
			return nil, nil
		}
		states = []access.State{access.StatePending}
	}
	if len(states) > 0 {
		ss := make([]string, len(states))
		for i, st := range states {
			ss[i] = string(st)
		}
		if !slices.ContainsFunc(states, access.State.Terminal) {
			where = append(where, "open") // the partial index
		}
		where = append(where, "state = ANY("+arg(ss)+")")
	}
	q := `SELECT seq, data FROM accessbot_requests`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY seq DESC"
	if f.Limit > 0 && f.Approver == "" {
		q += " LIMIT " + arg(f.Limit)
	}
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list requests: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var seq int64
		var data []byte
		if err := rows.Scan(&seq, &data); err != nil {
			return nil, fmt.Errorf("list requests: %w", err)
		}
		r, err := decodeRequest(seq, data)
		if err != nil {
			return nil, err
		}
		if matches(r, f) {
			out = append(out, r)
			if f.Limit > 0 && len(out) >= f.Limit {
				break
			}
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list requests: %w", err)
	}
	return out, nil
}

func matches(r *access.Request, f access.Filter) bool {
	return (f.Approver == "" || r.State == access.StatePending) &&
		(len(f.States) == 0 || slices.Contains(f.States, r.State)) &&
		(f.Requester == "" || r.Requester == f.Requester) &&
		(f.System == "" || r.System == f.System) &&
		(f.Entitlement == "" || r.Entitlement.Key() == f.Entitlement) &&
		(f.Approver == "" || r.IsApprover(f.Approver))
}

// Due returns up to limit (no limit when limit <= 0) entries of the
// deadline index at or before until, earliest first (ties by ID number).
// It reads only the index, never a request. Claims are not considered:
// ClaimDue is the replica-safe way to take due work.
func (s *Store) Due(ctx context.Context, until time.Time, limit int) (out []access.Due, err error) {
	done, err := s.begin("due")
	if err != nil {
		return nil, err
	}
	defer done(&err)
	q := `SELECT seq, next_deadline FROM accessbot_requests
		WHERE next_deadline IS NOT NULL AND next_deadline <= $1 ORDER BY next_deadline, seq`
	args := []any{max(until.UnixNano(), 0)}
	if limit > 0 {
		q += ` LIMIT $2`
		args = append(args, limit)
	}
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("due deadlines: %w", err)
	}
	out, err = scanDue(rows)
	if err != nil {
		return nil, fmt.Errorf("due deadlines: %w", err)
	}
	return out, nil
}

func scanDue(rows pgx.Rows) ([]access.Due, error) {
	defer rows.Close()
	var out []access.Due
	for rows.Next() {
		var seq, at int64
		if err := rows.Scan(&seq, &at); err != nil {
			return nil, err
		}
		out = append(out, access.Due{ID: access.FormatID(uint64(seq)), At: fromNanos(at)})
	}
	return out, rows.Err()
}

// deadlineChunk is how many index entries Deadlines reads per query; fn
// runs between queries, holding no connection, so it may call the store.
// A variable so that tests can cross chunk boundaries cheaply.
var deadlineChunk = 8192

// Deadlines calls fn for every entry of the deadline index in time order
// (times in UTC) without decoding requests, until fn returns false. The
// index is read in keyset-paginated chunks and fn is called between them,
// so fn may call the store; entries changed during the scan may be seen in
// either state.
func (s *Store) Deadlines(ctx context.Context, fn func(d access.Due) bool) (err error) {
	done, err := s.begin("deadlines")
	if err != nil {
		return err
	}
	defer done(&err)
	afterAt, afterSeq := int64(-1), int64(0)
	for {
		rows, err := s.pool.Query(ctx, `SELECT seq, next_deadline FROM accessbot_requests
			WHERE next_deadline IS NOT NULL AND (next_deadline, seq) > ($1, $2)
			ORDER BY next_deadline, seq LIMIT $3`, afterAt, afterSeq, deadlineChunk)
		if err != nil {
			return fmt.Errorf("scan deadlines: %w", err)
		}
		batch, err := scanDue(rows)
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
		last := batch[len(batch)-1]
		seq, _ := access.ParseID(last.ID)
		afterAt, afterSeq = last.At.UnixNano(), int64(seq)
	}
}

// exportChunk is how many requests ExportRequests reads per query.
var exportChunk = 1000

// ExportRequests calls fn for every request in ID order until fn returns
// false, reading in chunks between which fn runs (holding no connection).
// Requests changed during the export may be seen in either state: export a
// store nobody writes to (`accessbot store migrate` runs on a stopped bot).
func (s *Store) ExportRequests(ctx context.Context, fn func(r *access.Request) bool) (err error) {
	done, err := s.begin("export_requests")
	if err != nil {
		return err
	}
	defer done(&err)
	after := int64(0)
	for {
		rows, err := s.pool.Query(ctx, `SELECT seq, data FROM accessbot_requests WHERE seq > $1 ORDER BY seq LIMIT $2`, after, exportChunk)
		if err != nil {
			return fmt.Errorf("export requests: %w", err)
		}
		var batch []*access.Request
		for rows.Next() {
			var seq int64
			var data []byte
			if err := rows.Scan(&seq, &data); err != nil {
				rows.Close()
				return fmt.Errorf("export requests: %w", err)
			}
			r, err := decodeRequest(seq, data)
			if err != nil {
				rows.Close()
				return err
			}
			batch = append(batch, r)
			after = seq
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("export requests: %w", err)
		}
		for _, r := range batch {
			if !fn(r) {
				return nil
			}
		}
		if len(batch) < exportChunk {
			return nil
		}
	}
}
