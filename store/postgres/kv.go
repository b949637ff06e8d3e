package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// KV is durable key-value storage under one namespace (a connector
// instance), the same contract as the bbolt store's KV: Put and Delete are
// committed when they return. Safe for concurrent use.
type KV struct {
	s  *Store
	ns string
}

// KV returns the key-value namespace ns.
func (s *Store) KV(ns string) *KV { return &KV{s: s, ns: ns} }

// Get returns the value stored under key, ok=false if none.
func (k *KV) Get(ctx context.Context, key string) ([]byte, bool, error) {
	return k.s.KVGet(ctx, k.ns, key)
}

// Put stores value under key durably.
func (k *KV) Put(ctx context.Context, key string, value []byte) error {
	return k.s.KVPut(ctx, k.ns, key, value)
}

// Delete removes key; absent is not an error.
func (k *KV) Delete(ctx context.Context, key string) error {
	return k.s.KVDelete(ctx, k.ns, key)
}

// KVGet returns the value stored under key in namespace ns, ok=false if
// none. The value is the caller's.
func (s *Store) KVGet(ctx context.Context, ns, key string) (value []byte, ok bool, err error) {
	done, err := s.begin("kv_get")
	if err != nil {
		return nil, false, err
	}
	defer done(&err)
	err = s.pool.QueryRow(ctx, `SELECT value FROM accessbot_kv WHERE ns = $1 AND key = $2`, []byte(ns), []byte(key)).Scan(&value)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("read connector state %s: %w", ns, err)
	}
	if value == nil {
		value = []byte{}
	}
	return value, true, nil
}

// KVPut stores value under key in namespace ns, replacing any.
func (s *Store) KVPut(ctx context.Context, ns, key string, value []byte) (err error) {
	done, err := s.begin("kv_put")
	if err != nil {
		return err
	}
	defer done(&err)
	if value == nil {
		value = []byte{}
	}
	_, err = s.pool.Exec(ctx, `INSERT INTO accessbot_kv (ns, key, value) VALUES ($1, $2, $3)
		ON CONFLICT (ns, key) DO UPDATE SET value = excluded.value`, []byte(ns), []byte(key), value)
	if err != nil {
		return fmt.Errorf("write connector state %s: %w", ns, err)
	}
	return nil
}

// KVDelete removes key from namespace ns; absent is not an error.
func (s *Store) KVDelete(ctx context.Context, ns, key string) (err error) {
	done, err := s.begin("kv_delete")
	if err != nil {
		return err
	}
	defer done(&err)
	if _, err := s.pool.Exec(ctx, `DELETE FROM accessbot_kv WHERE ns = $1 AND key = $2`, []byte(ns), []byte(key)); err != nil {
		return fmt.Errorf("delete connector state %s: %w", ns, err)
	}
	return nil
}

// ExportKV calls fn for every key-value entry of every namespace (ordered
// by namespace, then key, bytewise) until fn returns false. It reads the
// whole table in one query: key-value state is small.
func (s *Store) ExportKV(ctx context.Context, fn func(ns, key string, value []byte) bool) (err error) {
	done, err := s.begin("export_kv")
	if err != nil {
		return err
	}
	defer done(&err)
	type entry struct {
		ns, key, value []byte
	}
	rows, err := s.pool.Query(ctx, `SELECT ns, key, value FROM accessbot_kv ORDER BY ns, key`)
	if err != nil {
		return fmt.Errorf("export key-value state: %w", err)
	}
	var all []entry
	for rows.Next() {
		var e entry
		if err := rows.Scan(&e.ns, &e.key, &e.value); err != nil {
			rows.Close()
			return fmt.Errorf("export key-value state: %w", err)
		}
		all = append(all, e)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("export key-value state: %w", err)
	}
	for _, e := range all {
		if e.value == nil {
			e.value = []byte{}
		}
		if !fn(string(e.ns), string(e.key), e.value) {
			return nil
		}
	}
	return nil
}
