package store

import (
	"context"
	"fmt"

	"go.etcd.io/bbolt"
)

// connectorStateBucket holds connectors' durable key-value state (for
// example the role a grant replaced, restored at revoke).
var connectorStateBucket = []byte("connector_state")

// KV is durable key-value storage under one namespace (a connector
// instance), backed by the store's file. Put and Delete commit (fsync)
// before returning. Safe for concurrent use.
type KV struct {
	s  *Store
	ns string
}

// KV returns the key-value namespace ns.
func (s *Store) KV(ns string) *KV { return &KV{s: s, ns: ns} }

func kvKey(ns, key string) []byte { return []byte(ns + "\x00" + key) }

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
func (s *Store) KVGet(ctx context.Context, ns, key string) ([]byte, bool, error) {
	var out []byte
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		b := tx.Bucket(connectorStateBucket)
		if b == nil {
			return nil
		}
		if v := b.Get(kvKey(ns, key)); v != nil {
			out = append([]byte{}, v...)
		}
		return nil
	})
	if err != nil {
		return nil, false, fmt.Errorf("read connector state %s: %w", ns, err)
	}
	return out, out != nil, nil
}

// KVPut stores value under key in namespace ns durably (its own fsynced
// transaction, not the group-commit writer's).
func (s *Store) KVPut(ctx context.Context, ns, key string, value []byte) error {
	err := s.update(ctx, func(tx *bbolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(connectorStateBucket)
		if err != nil {
			return err
		}
		return b.Put(kvKey(ns, key), append([]byte{}, value...))
	})
	if err != nil {
		return fmt.Errorf("write connector state %s: %w", ns, err)
	}
	return nil
}

// KVDelete removes key from namespace ns; absent is not an error.
func (s *Store) KVDelete(ctx context.Context, ns, key string) error {
	err := s.update(ctx, func(tx *bbolt.Tx) error {
		b := tx.Bucket(connectorStateBucket)
		if b == nil {
			return nil
		}
		return b.Delete(kvKey(ns, key))
	})
	if err != nil {
		return fmt.Errorf("delete connector state %s: %w", ns, err)
	}
	return nil
}

// update runs fn in a write transaction of its own, failing with
// ErrClosed after Close.
func (s *Store) update(ctx context.Context, fn func(tx *bbolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return ErrClosed
	}
	return s.db.Update(fn)
}
