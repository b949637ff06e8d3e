package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"

	"github.com/accessbot/accessbot/access"
	"go.etcd.io/bbolt"
)

// InstallationID returns the random ID (a UUID) made when the file was
// created, or upgraded to schema v2 (DESIGN.md §6: it prefixes webhook
// IDs; `accessbot store migrate` keeps it).
func (s *Store) InstallationID(ctx context.Context) (string, error) {
	var id string
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		id = string(tx.Bucket(bucketMeta).Get(keyInstallationID))
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("read installation ID: %w", err)
	}
	if id == "" {
		return "", fmt.Errorf("store %s has no installation ID", s.path)
	}
	return id, nil
}

// exportChunk is how many requests ExportRequests decodes per read
// transaction.
var exportChunk = 1000

// ExportRequests calls fn for every request in ID order until fn returns
// false, reading in chunks of short read transactions between which fn
// runs, so fn may call the store. Requests changed during the export may
// be seen in either state.
func (s *Store) ExportRequests(ctx context.Context, fn func(r *access.Request) bool) error {
	next := uint64(0)
	for {
		var batch []*access.Request
		err := s.view(ctx, func(tx *bbolt.Tx) error {
			c := tx.Bucket(bucketRequests).Cursor()
			for k, v := c.Seek(seqKey(next)); k != nil && len(batch) < exportChunk; k, v = c.Next() {
				seq := binary.BigEndian.Uint64(k)
				r, err := decodeRequest(seq, v)
				if err != nil {
					return err
				}
				batch = append(batch, r)
				next = seq + 1
			}
			return nil
		})
		if err != nil {
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

// ExportKV calls fn for every key-value entry of every namespace (in key
// order) until fn returns false. It copies the bucket in one read
// transaction first: key-value state is small.
func (s *Store) ExportKV(ctx context.Context, fn func(ns, key string, value []byte) bool) error {
	type entry struct {
		ns, key string
		value   []byte
	}
	var all []entry
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		b := tx.Bucket(connectorStateBucket)
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			ns, key, ok := bytes.Cut(k, []byte{0})
			if !ok {
				return fmt.Errorf("key-value entry %q has no namespace", k)
			}
			all = append(all, entry{string(ns), string(key), bytes.Clone(v)})
			return nil
		})
	})
	if err != nil {
		return fmt.Errorf("export key-value state: %w", err)
	}
	for _, e := range all {
		if e.value == nil {
			e.value = []byte{}
		}
		if !fn(e.ns, e.key, e.value) {
			return nil
		}
	}
	return nil
}
