package store

import (
	"encoding/binary"
	"fmt"

	"github.com/google/uuid"
	"go.etcd.io/bbolt"
)

// migration moves the file from schema version to-1 to to. Steps run in
// order inside the transaction that opens the file, so a failed step leaves
// the file as it was.
type migration struct {
	to    uint64
	name  string
	apply func(tx *bbolt.Tx) error
}

// migrations is the schema history; its last step is the version this code
// writes. Append, never edit: files in the field are at every version.
var migrations = []migration{
	{to: 1, name: "initial layout", apply: migrateV1},
	{to: 2, name: "installation ID", apply: migrateV2},
}

// migrateV1 creates the v1 buckets and starts the request sequence at
// firstSeq.
func migrateV1(tx *bbolt.Tx) error {
	for _, name := range [][]byte{bucketRequests, bucketDeadlines, bucketOpen,
		bucketByRequester, bucketByEntitlement, bucketAudit} {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return fmt.Errorf("create bucket %s: %w", name, err)
		}
	}
	b := tx.Bucket(bucketRequests)
	if b.Sequence() < firstSeq {
		return b.SetSequence(firstSeq)
	}
	return nil
}

// migrateV2 gives the file its installation ID (DESIGN.md §6: a random ID
// made when the store is created, prefixing webhook IDs), unless it has one.
func migrateV2(tx *bbolt.Tx) error {
	meta := tx.Bucket(bucketMeta)
	if meta.Get(keyInstallationID) != nil {
		return nil
	}
	id, err := uuid.NewRandom()
	if err != nil {
		return fmt.Errorf("make installation ID: %w", err)
	}
	return meta.Put(keyInstallationID, []byte(id.String()))
}

// schemaVersion reads the file's version; 0 for a file without meta (new).
func schemaVersion(tx *bbolt.Tx) uint64 {
	b := tx.Bucket(bucketMeta)
	if b == nil {
		return 0
	}
	v := b.Get(keySchemaVersion)
	if len(v) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(v)
}

// migrate brings the file from its version to the last of steps, returning
// both versions. A file newer than steps is refused rather than guessed at.
func migrate(tx *bbolt.Tx, steps []migration) (from, to uint64, err error) {
	from = schemaVersion(tx)
	latest := uint64(len(steps))
	if from > latest {
		return from, from, fmt.Errorf("schema version %d is newer than this accessbot supports (%d); upgrade accessbot", from, latest)
	}
	meta, err := tx.CreateBucketIfNotExists(bucketMeta)
	if err != nil {
		return from, from, fmt.Errorf("create meta bucket: %w", err)
	}
	v := from
	for _, m := range steps[from:] {
		if m.to != v+1 {
			return from, v, fmt.Errorf("migration %q: numbered %d, expected %d", m.name, m.to, v+1)
		}
		if err := m.apply(tx); err != nil {
			return from, v, fmt.Errorf("migrate schema %d→%d (%s): %w", v, m.to, m.name, err)
		}
		v = m.to
		if err := meta.Put(keySchemaVersion, binary.BigEndian.AppendUint64(nil, v)); err != nil {
			return from, v, fmt.Errorf("write schema version: %w", err)
		}
	}
	return from, v, nil
}
