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

func (k *KV) key(key string) []byte { return []byte(k.ns + "\x00" + key) }

// Get returns the value stored under key, ok=false if none.
func (k *KV) Get(ctx context.Context, key string) ([]byte, bool, error) {
	var out []byte
	err := k.s.db.View(func(tx *bbolt.Tx) error {
		b := tx.Bucket(connectorStateBucket)
		if b == nil {
			return nil
		}
		if v := b.Get(k.key(key)); v != nil {
			out = append([]byte{}, v...)
		}
		return nil
	})
	if err != nil {
		return nil, false, fmt.Errorf("read connector state %s: %w", k.ns, err)
	}
	return out, out != nil, nil
}

// Put stores value under key durably.
func (k *KV) Put(ctx context.Context, key string, value []byte) error {
	err := k.s.db.Update(func(tx *bbolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(connectorStateBucket)
		if err != nil {
			return err
		}
		return b.Put(k.key(key), append([]byte{}, value...))
	})
	if err != nil {
		return fmt.Errorf("write connector state %s: %w", k.ns, err)
	}
	return nil
}

// Delete removes key; absent is not an error.
func (k *KV) Delete(ctx context.Context, key string) error {
	err := k.s.db.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(connectorStateBucket)
		if b == nil {
			return nil
		}
		return b.Delete(k.key(key))
	})
	if err != nil {
		return fmt.Errorf("delete connector state %s: %w", k.ns, err)
	}
	return nil
}
