package postgres

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// migrationFiles holds the schema history, one file per version named
// NNNN_name.sql. Append, never edit: databases in the field are at every
// version.
//
//go:embed migrations/*.sql
var migrationFiles embed.FS

// migration is one schema step, from version-1 to version.
type migration struct {
	version int
	name    string
	sql     string
}

// migrations is the parsed history; its last step is the version this code
// writes.
var migrations = mustParseMigrations(migrationFiles)

func mustParseMigrations(fsys fs.FS) []migration {
	ms, err := parseMigrations(fsys)
	if err != nil {
		panic(err) // embedded at build time: a test catches it first
	}
	return ms
}

// parseMigrations reads migrations/NNNN_name.sql in order and checks that
// they are numbered 1, 2, 3… without gaps.
func parseMigrations(fsys fs.FS) ([]migration, error) {
	names, err := fs.Glob(fsys, "migrations/*.sql")
	if err != nil {
		return nil, err
	}
	var ms []migration
	for i, name := range names { // fs.Glob sorts
		base := strings.TrimSuffix(path.Base(name), ".sql")
		num, label, ok := strings.Cut(base, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil {
			return nil, fmt.Errorf("migration %s: want NNNN_name.sql", name)
		}
		if v != i+1 {
			return nil, fmt.Errorf("migration %s: numbered %d, expected %d", name, v, i+1)
		}
		b, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, err
		}
		ms = append(ms, migration{version: v, name: label, sql: string(b)})
	}
	return ms, nil
}

// Advisory lock keys (one 64-bit space per database, shared with anything
// else using advisory locks there): migrateLockKey serialises Open's
// migrations; Lock's keys are hashes with lockKeyPrefix, far from it.
const migrateLockKey int64 = 0x616363657373_6d69 // "access" "mi"

// migrate brings the database to the last of steps: under a session
// advisory lock held on one connection, it creates the version table if
// missing, refuses a database newer than steps, and applies each pending
// step in its own transaction together with its version row, so a failed
// step leaves the database at the previous version. Replicas starting
// together wait for each other here; the second finds nothing to do.
func migrate(ctx context.Context, pool *pgxpool.Pool, steps []migration) error {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, migrateLockKey); err != nil {
		return fmt.Errorf("take the migration lock: %w", err)
	}
	defer func() {
		// If unlocking fails the connection is unusable; closing it ends
		// the session, which releases the lock.
		if _, err := conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, migrateLockKey); err != nil {
			_ = conn.Conn().Close(context.Background())
		}
	}()
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS accessbot_schema_version (
		version    integer PRIMARY KEY,
		name       text NOT NULL,
		applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		return fmt.Errorf("create the schema version table: %w", err)
	}
	var cur int
	if err := conn.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM accessbot_schema_version`).Scan(&cur); err != nil {
		return fmt.Errorf("read the schema version: %w", err)
	}
	if cur > len(steps) {
		return fmt.Errorf("schema version %d is newer than this accessbot supports (%d); upgrade accessbot", cur, len(steps))
	}
	for _, m := range steps[cur:] {
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			// No arguments: pgx sends the file with the simple protocol,
			// which runs several statements.
			if _, err := tx.Exec(ctx, m.sql); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `INSERT INTO accessbot_schema_version (version, name) VALUES ($1, $2)`, m.version, m.name)
			return err
		})
		if err != nil {
			return fmt.Errorf("migrate schema %d→%d (%s): %w", m.version-1, m.version, m.name, err)
		}
	}
	return nil
}

// SchemaVersion returns the database's schema version (the number of
// migrations applied).
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
	var v int
	err := s.pool.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM accessbot_schema_version`).Scan(&v)
	return v, err
}
