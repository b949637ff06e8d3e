// Package postgres is accessbot's store on PostgreSQL (13 or later), for
// running several replicas against one database (DESIGN.md §7). It
// implements access.Store and everything else the bbolt store
// (package store) offers, with the same signatures, and passes the same
// conformance suite (store/storetest). It is the only importer of pgx
// besides the PostgreSQL connector.
//
// Writes (Create, Update, AppendAudit) go through a group-commit writer
// (writer.go): what is queued shares one transaction, in which each
// updated request row is read FOR UPDATE, the caller's fn runs on a copy,
// the copy is written with Version+1, and an audit record per new history
// entry is appended to the hash chain, whose one-row head is locked FOR
// UPDATE last, just before commit, so that appends from every replica are
// serialised and the chain stays linear while the lock is held as briefly
// as possible. The deadline index is an indexed column (next_deadline)
// written with the request.
//
// Due work is shared between replicas with leases (ClaimDue, Release) and
// per-key work is serialised with Lock (session advisory locks). Schema
// migrations are embedded and applied by Open under an advisory lock, so
// replicas starting together are safe.
//
// Times: deadlines and leases are compared in Unix nanoseconds taken from
// Options.Clock, so replicas' clocks must agree (NTP) to well within a
// lease; the database's own clock is not used.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/internal/keylock"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

var _ access.Store = (*Store)(nil)

// ErrClosed is returned by every method called after Close.
var ErrClosed = errors.New("store closed")

// ErrNotEmpty is wrapped by Import's error when the target already holds
// requests, audit records or key-value state.
var ErrNotEmpty = errors.New("target store is not empty")

// Defaults for Options.
const (
	DefaultMaxConns  = 10
	DefaultLockConns = 16
	DefaultOpTimeout = 5 * time.Second
	DefaultMaxBatch  = 256
	// DefaultConnectTimeout bounds connecting when the DSN names no
	// connect_timeout (pgx's default is to wait for the OS).
	DefaultConnectTimeout = 5 * time.Second
)

// Options configures Open. The zero value is valid.
type Options struct {
	// Clock is the time for leases (ClaimDue) and for audit records that
	// carry none (AppendAudit); default the wall clock.
	Clock access.Clock
	// MaxConns caps the connections of the main pool (queries and
	// transactions); default DefaultMaxConns.
	MaxConns int32
	// LockConns caps the connections held by Lock, a pool of their own so
	// that holders of many locks can never starve the queries they make
	// while holding them; default DefaultLockConns. It bounds how many
	// distinct keys one replica holds at once: Lock waits for a free
	// connection when all are held (so a goroutine must not hold one lock
	// while taking another). Budget the server's max_connections for
	// replicas × (MaxConns + LockConns).
	LockConns int32
	// OpTimeout bounds Ping, ClaimDue and Release when ctx has no earlier
	// deadline, so that a replica cut off from the database finds out
	// (and says so in /readyz) instead of hanging; default DefaultOpTimeout.
	OpTimeout time.Duration
	// Observer receives metrics hooks; nil: none.
	Observer Observer
	// MaxBatch caps the writes the writer commits in one transaction;
	// default DefaultMaxBatch.
	MaxBatch int
}

// Observer receives metrics from the store (the application wires it to
// Prometheus). Methods are called synchronously on the caller's goroutine
// after the operation and must be fast and safe for concurrent use.
type Observer interface {
	// Claimed is called after every successful ClaimDue with the number of
	// requests claimed, of which takenOver came from another owner's
	// expired lease (a replica that died or stalled).
	Claimed(owner string, claimed, takenOver int)
	// Query is called after every store operation with its name ("create",
	// "update", "get", "list", "due", "deadlines", "claim_due", "release",
	// "lock", "append_audit", "ping", …), how long it took and its error.
	Query(op string, d time.Duration, err error)
}

// Store is the PostgreSQL-backed store. It is safe for concurrent use by
// any number of goroutines and replicas.
type Store struct {
	pool      *pgxpool.Pool
	lockPool  *pgxpool.Pool
	clock     access.Clock
	obs       Observer
	opTimeout time.Duration
	locks     keylock.Locks // Lock's in-process stage: one connection per key per process
	maxBatch  int

	mu     sync.RWMutex // guards closed and sending on ops
	closed bool
	ops    chan *op
	done   chan struct{} // closed when the writer has exited
}

// Open connects to the database named by dsn (a libpq URL or key=value
// string, as pgx parses it), applies any pending schema migrations under
// an advisory lock (safe when replicas start together), and returns the
// store. It fails when the database is unreachable within the connect
// timeout or its schema is newer than this accessbot. The caller must
// Close the store. ctx bounds connecting and migrating only.
func Open(ctx context.Context, dsn string, opts Options) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		// pgx's message may quote the DSN, password included.
		return nil, errors.New("postgres store: " + dsnProblem)
	}
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = DefaultConnectTimeout
	}
	lockCfg := cfg.Copy()
	cfg.MaxConns = opts.MaxConns
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = DefaultMaxConns
	}
	lockCfg.MaxConns = opts.LockConns
	if lockCfg.MaxConns <= 0 {
		lockCfg.MaxConns = DefaultLockConns
	}
	lockCfg.MinConns = 0
	s := &Store{clock: opts.Clock, obs: opts.Observer, opTimeout: opts.OpTimeout}
	if s.clock == nil {
		s.clock = access.ClockFunc(time.Now)
	}
	if s.opTimeout <= 0 {
		s.opTimeout = DefaultOpTimeout
	}
	s.maxBatch = opts.MaxBatch
	where := fmt.Sprintf("%s@%s:%d/%s", cfg.ConnConfig.User, cfg.ConnConfig.Host, cfg.ConnConfig.Port, cfg.ConnConfig.Database)
	if s.pool, err = pgxpool.NewWithConfig(ctx, cfg); err != nil {
		return nil, fmt.Errorf("postgres store %s: %w", where, err)
	}
	if s.lockPool, err = pgxpool.NewWithConfig(ctx, lockCfg); err != nil {
		s.pool.Close()
		return nil, fmt.Errorf("postgres store %s: %w", where, err)
	}
	if err := migrate(ctx, s.pool, migrations); err != nil {
		s.pool.Close()
		s.lockPool.Close()
		return nil, fmt.Errorf("postgres store %s: %w", where, err)
	}
	s.start()
	return s, nil
}

// start starts the writer goroutine.
func (s *Store) start() {
	if s.maxBatch <= 0 {
		s.maxBatch = DefaultMaxBatch
	}
	s.ops = make(chan *op, 4*s.maxBatch)
	s.done = make(chan struct{})
	go s.writer()
}

// Close stops accepting writes, commits every write already queued, waits
// for the writer, then closes both pools (waiting for connections in use
// to be returned; locks still held are released by the server when their
// connections close). Calling Close more than once returns ErrClosed.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	s.closed = true
	close(s.ops) // no sender holds mu.RLock now
	s.mu.Unlock()
	<-s.done
	s.pool.Close()
	s.lockPool.Close()
	return nil
}

// begin checks the store is open and returns a function that reports the
// operation to the Observer.
func (s *Store) begin(op string) (done func(*error), err error) {
	s.mu.RLock()
	closed := s.closed
	s.mu.RUnlock()
	if closed {
		return nil, ErrClosed
	}
	if s.obs == nil {
		return func(*error) {}, nil
	}
	start := time.Now()
	return func(err *error) { s.obs.Query(op, time.Since(start), *err) }, nil
}

// bounded returns ctx limited to the store's OpTimeout.
func (s *Store) bounded(ctx context.Context) (context.Context, context.CancelFunc) {
	if d, ok := ctx.Deadline(); ok && time.Until(d) <= s.opTimeout {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, s.opTimeout)
}

// Ping checks, within OpTimeout, that the database answers and accepts
// writes (it is not a standby in recovery nor read-only, as after a
// failover to a replica that was not promoted). It writes nothing.
func (s *Store) Ping(ctx context.Context) (err error) {
	done, err := s.begin("ping")
	if err != nil {
		return err
	}
	defer done(&err)
	ctx, cancel := s.bounded(ctx)
	defer cancel()
	var writable bool
	err = s.pool.QueryRow(ctx, `SELECT NOT pg_is_in_recovery() AND current_setting('transaction_read_only') = 'off'`).Scan(&writable)
	if err != nil {
		return fmt.Errorf("postgres store unreachable: %w", err)
	}
	if !writable {
		return errors.New("postgres store is read-only (a standby in recovery, or default_transaction_read_only is on)")
	}
	return nil
}

// InstallationID returns the random ID made when the schema was created
// (a UUID), kept by `accessbot store migrate`.
func (s *Store) InstallationID(ctx context.Context) (id string, err error) {
	done, err := s.begin("installation_id")
	if err != nil {
		return "", err
	}
	defer done(&err)
	if err := s.pool.QueryRow(ctx, `SELECT value FROM accessbot_meta WHERE key = 'installation_id'`).Scan(&id); err != nil {
		return "", fmt.Errorf("read installation ID: %w", err)
	}
	return id, nil
}

// inTx runs fn in a read-committed transaction on a pooled connection and
// commits when fn returns nil (for writes outside the writer: retention). Once the transaction has begun it runs to
// its end even if ctx ends meanwhile (bounded by commitTimeout), so that a
// committed write is never reported as failed (DESIGN.md §4 invariant 2:
// the caller that won must perform the effect); only a lost connection
// leaves the outcome unknown, and then the error says so.
func (s *Store) inTx(ctx context.Context, fn func(tx pgx.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), commitTimeout)
	defer cancel()
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback(ctx)
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		if !isServerError(err) {
			return fmt.Errorf("commit outcome unknown (the connection failed during COMMIT): %w", err)
		}
		return err
	}
	return nil
}

// commitTimeout bounds a transaction once begun (see inTx). A variable for
// tests.
var commitTimeout = 30 * time.Second

// CheckDSN reports whether dsn parses as a PostgreSQL connection string
// (a postgres:// URL or key=value pairs), without connecting. Its error
// never quotes the DSN, which holds a password.
func CheckDSN(dsn string) error {
	if _, err := pgxpool.ParseConfig(dsn); err != nil {
		return errors.New(dsnProblem)
	}
	return nil
}

const dsnProblem = "the DSN does not parse (expected postgres://user:password@host:port/database?sslmode=… or key=value pairs)"

// isServerError reports whether err is an error the server sent (the
// connection itself worked).
func isServerError(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr)
}
