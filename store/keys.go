package store

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"time"

	"go.etcd.io/bbolt"
)

// Bucket names. The layout (schema v2):
//
//	meta            "schema_version" → 8-byte BE version;
//	                "installation_id" → a random UUID (v2)
//	requests        8-byte BE seq → JSON access.Request (FillPercent 0.9: keys are append-only)
//	deadlines       8-byte BE unix-nanos ‖ 8-byte BE seq → empty: each request's NextDeadline
//	open            8-byte BE seq → state, for every non-terminal request
//	by_requester    16-byte SHA-256 prefix of the requester ‖ 8-byte BE seq → empty
//	by_entitlement  16-byte SHA-256 prefix of Entitlement.Key() ‖ 8-byte BE seq → empty
//	audit           8-byte BE audit seq (1, 2, …) → JSON audit.Record
var (
	bucketMeta          = []byte("meta")
	bucketRequests      = []byte("requests")
	bucketDeadlines     = []byte("deadlines")
	bucketOpen          = []byte("open")
	bucketByRequester   = []byte("by_requester")
	bucketByEntitlement = []byte("by_entitlement")
	bucketAudit         = []byte("audit")

	keySchemaVersion  = []byte("schema_version")
	keyInstallationID = []byte("installation_id")
)

// fillAppendOnly is the FillPercent of buckets whose keys only grow
// (engine-notes §3: 0.5, the default, leaves append-only pages half empty).
const fillAppendOnly = 0.9

// firstSeq is the requests bucket's sequence in a new file, so that the
// first request is AR-1001 and IDs look like AR-1042 from the start.
const firstSeq = 1000

func seqKey(seq uint64) []byte {
	k := make([]byte, 8)
	binary.BigEndian.PutUint64(k, seq)
	return k
}

// deadlineKey orders by time, then seq. Times before 1970 are clamped to 0:
// they are overdue either way.
func deadlineKey(at time.Time, seq uint64) []byte {
	k := make([]byte, 16)
	n := at.UnixNano()
	if n < 0 {
		n = 0
	}
	binary.BigEndian.PutUint64(k, uint64(n))
	binary.BigEndian.PutUint64(k[8:], seq)
	return k
}

func parseDeadlineKey(k []byte) (time.Time, uint64) {
	return time.Unix(0, int64(binary.BigEndian.Uint64(k))).UTC(), binary.BigEndian.Uint64(k[8:])
}

// hashPrefix is the fixed-length prefix of a secondary index key. Hashing
// keeps keys short whatever the value (entitlement keys hold arbitrary grant
// parameters); List re-checks every decoded request, so a collision would
// only cost a decode.
func hashPrefix(s string) []byte {
	sum := sha256.Sum256([]byte(s))
	return sum[:16]
}

func indexKey(value string, seq uint64) []byte {
	return binary.BigEndian.AppendUint64(hashPrefix(value), seq)
}

// seqsByPrefix returns the seqs indexed under value in b, newest first.
func seqsByPrefix(b *bbolt.Bucket, value string) []uint64 {
	prefix := hashPrefix(value)
	c := b.Cursor()
	var seqs []uint64
	// Walk backwards from just past the prefix's range.
	k, _ := c.Seek(append(bytes.Clone(prefix), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff))
	if k == nil {
		k, _ = c.Last()
	} else {
		k, _ = c.Prev()
	}
	for ; k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Prev() {
		seqs = append(seqs, binary.BigEndian.Uint64(k[len(prefix):]))
	}
	return seqs
}
