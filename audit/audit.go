// Package audit holds accessbot's audit record, its canonical JSON, the
// hash chain and its verification, shared by every store and by
// `accessbot audit verify`, so that an exported JSON Lines file is verified
// by exactly the code that wrote the chain. Standard library only.
//
// The format is fixed: records written by any earlier accessbot must keep
// verifying (TestGoldenChain pins the bytes).
package audit

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"time"
)

// ZeroHash is the prev_hash of the first record of a chain: 64 zeros.
const ZeroHash = "0000000000000000000000000000000000000000000000000000000000000000"

// ErrChainBroken is wrapped by every *ChainError.
var ErrChainBroken = errors.New("audit chain broken")

// Record is one entry of the append-only, hash-chained audit log. Each
// history entry of every request produces one (event, actor, outcome = the
// state the entry led to); other events (config_loaded) are appended with
// a store's AppendAudit.
//
// Hash is the hex SHA-256 of the record's canonical JSON without the hash
// field (see CanonicalJSON); PrevHash is the previous record's Hash, or
// ZeroHash for the first record. Seq starts at 1 and has no gaps.
//
// The free text (Reason, Note: personal data a retention policy may remove)
// is covered through its own hash: ReasonHash and NoteHash are the hex
// SHA-256 of Reason and Note ("" for empty text), and the chain hash covers
// those, not the text. So a record whose text was removed by retention
// (a store's ApplyRetention: text blanked, Redacted set, hashes kept) still
// links into the chain, while a record whose text is present must match
// its hashes (VerifyChain). Redacted itself is not covered: blanking text
// is allowed by design, altering it is not.
type Record struct {
	Seq        uint64    `json:"seq"`
	Time       time.Time `json:"time"` // UTC
	Event      string    `json:"event"`
	Actor      string    `json:"actor"`   // Slack user ID or "accessbot"
	Subject    string    `json:"subject"` // the requester, for request events
	System     string    `json:"system"`
	Role       string    `json:"role"`
	RequestID  string    `json:"request_id"`
	Reason     string    `json:"reason"`
	ReasonHash string    `json:"reason_hash"` // set by sealing
	Outcome    string    `json:"outcome"`     // the state the event led to
	Note       string    `json:"note"`
	NoteHash   string    `json:"note_hash"` // set by sealing
	// Redacted is set when retention removed Reason and Note.
	Redacted bool   `json:"redacted,omitempty"`
	PrevHash string `json:"prev_hash"`
	Hash     string `json:"hash"`
}

// recordBody is what the hash covers: Record without Hash, Redacted
// and the free text itself, in the same field order.
type recordBody struct {
	Seq        uint64    `json:"seq"`
	Time       time.Time `json:"time"`
	Event      string    `json:"event"`
	Actor      string    `json:"actor"`
	Subject    string    `json:"subject"`
	System     string    `json:"system"`
	Role       string    `json:"role"`
	RequestID  string    `json:"request_id"`
	ReasonHash string    `json:"reason_hash"`
	Outcome    string    `json:"outcome"`
	NoteHash   string    `json:"note_hash"`
	PrevHash   string    `json:"prev_hash"`
}

// CanonicalJSON returns the bytes the record's hash covers: a JSON object
// with the keys seq, time, event, actor, subject, system, role, request_id,
// reason_hash, outcome, note_hash, prev_hash in that order, every key
// present, no whitespace, no HTML escaping, time in RFC 3339 with
// nanoseconds in UTC.
func (r Record) CanonicalJSON() []byte {
	b := recordBody{r.Seq, r.Time.UTC(), r.Event, r.Actor, r.Subject, r.System, r.Role,
		r.RequestID, r.ReasonHash, r.Outcome, r.NoteHash, r.PrevHash}
	return marshalCompact(b)
}

// TextHash is the hash of one free-text field as the chain records it: the
// hex SHA-256 of s, or "" for empty text.
func TextHash(s string) string {
	if s == "" {
		return ""
	}
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// Redact blanks the record's free text, keeping its hashes, so that the
// chain still verifies. It reports whether anything was removed. The note
// of a record about no request (config_loaded, digest_posted) is the bot's
// own text, not personal data, and is kept.
func (r *Record) Redact() bool {
	changed := false
	if r.Reason != "" {
		r.Reason, changed = "", true
	}
	if r.RequestID != "" && r.Note != "" {
		r.Note, changed = "", true
	}
	if changed {
		r.Redacted = true
	}
	return changed
}

// ComputeHash returns the hex SHA-256 of CanonicalJSON.
func (r Record) ComputeHash() string {
	sum := sha256.Sum256(r.CanonicalJSON())
	return hex.EncodeToString(sum[:])
}

// Seal sets Seq, PrevHash and Hash so that r follows a record with the
// given seq and hash (0 and ZeroHash for the first record).
func (r *Record) Seal(prevSeq uint64, prevHash string) {
	r.Seq = prevSeq + 1
	r.Time = r.Time.UTC()
	r.PrevHash = prevHash
	r.ReasonHash, r.NoteHash = TextHash(r.Reason), TextHash(r.Note)
	r.Hash = r.ComputeHash()
}

// MarshalLine returns the record as one JSON line (with hash), as written to
// the audit mirror and by exports.
func (r Record) MarshalLine() []byte {
	r.Time = r.Time.UTC()
	return append(marshalCompact(r), '\n')
}

func marshalCompact(v any) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		// Only strings, integers and times: cannot fail.
		panic(fmt.Sprintf("audit: marshal record: %v", err))
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

// ChainError pinpoints the first broken record of a chain.
type ChainError struct {
	Index   int    // 0-based position in the input
	Seq     uint64 // the seq the broken record claims
	Problem string // "hash mismatch", "reason_hash mismatch", "note_hash mismatch", "prev_hash mismatch", "seq gap", "seq out of order", "malformed"
	Detail  string
}

func (e *ChainError) Error() string {
	return fmt.Sprintf("audit record %d (seq %d): %s: %s", e.Index+1, e.Seq, e.Problem, e.Detail)
}

// Unwrap returns ErrChainBroken.
func (e *ChainError) Unwrap() error { return ErrChainBroken }

// VerifyChain checks a whole chain from its first record: seq 1, 2, 3 … with
// no gap or reordering, each record's prev_hash equal to the previous
// record's hash (ZeroHash for the first), each hash equal to the hash of
// its canonical JSON, and the reason and note equal to their hashes where
// present (a redacted record has neither, and is checked by its hashes
// alone). It returns the number of records that verified and, at
// the first broken record, a *ChainError (wrapping ErrChainBroken); an error
// yielded by records is returned as is. An empty chain verifies.
func VerifyChain(records iter.Seq2[Record, error]) (n int, err error) {
	prevSeq, prevHash := uint64(0), ZeroHash
	for rec, err := range records {
		if err != nil {
			return n, err
		}
		fail := func(problem, format string, args ...any) (int, error) {
			return n, &ChainError{Index: n, Seq: rec.Seq, Problem: problem, Detail: fmt.Sprintf(format, args...)}
		}
		switch {
		case rec.Seq > prevSeq+1:
			return fail("seq gap", "expected seq %d; records %d..%d are missing", prevSeq+1, prevSeq+1, rec.Seq-1)
		case rec.Seq <= prevSeq:
			return fail("seq out of order", "expected seq %d after seq %d", prevSeq+1, prevSeq)
		case rec.Hash != rec.ComputeHash():
			return fail("hash mismatch", "stored %s, computed %s: the record was altered", short(rec.Hash), short(rec.ComputeHash()))
		case (rec.Reason != "" || !rec.Redacted) && TextHash(rec.Reason) != rec.ReasonHash:
			return fail("reason_hash mismatch", "reason_hash %s, reason hashes to %s: the reason was altered", short(rec.ReasonHash), short(TextHash(rec.Reason)))
		case (rec.Note != "" || !rec.Redacted) && TextHash(rec.Note) != rec.NoteHash:
			return fail("note_hash mismatch", "note_hash %s, note hashes to %s: the note was altered", short(rec.NoteHash), short(TextHash(rec.Note)))
		case rec.PrevHash != prevHash:
			return fail("prev_hash mismatch", "prev_hash %s, previous record's hash %s", short(rec.PrevHash), short(prevHash))
		}
		prevSeq, prevHash = rec.Seq, rec.Hash
		n++
	}
	return n, nil
}

func short(h string) string {
	if len(h) > 12 {
		return h[:12] + "…"
	}
	return h
}

// ReadJSONLines yields the audit records of a JSON Lines stream (one record
// per line, blank lines skipped), for VerifyChain. A line that does not
// decode yields a *ChainError with Problem "malformed" and stops.
func ReadJSONLines(r io.Reader) iter.Seq2[Record, error] {
	return func(yield func(Record, error) bool) {
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 0, 64*1024), 16<<20) // a record holds user text; 16 MiB is far above any
		line := 0
		for sc.Scan() {
			line++
			b := bytes.TrimSpace(sc.Bytes())
			if len(b) == 0 {
				continue
			}
			var rec Record
			if err := json.Unmarshal(b, &rec); err != nil {
				yield(Record{}, &ChainError{Index: line - 1, Problem: "malformed", Detail: fmt.Sprintf("line %d: %v", line, err)})
				return
			}
			if !yield(rec, nil) {
				return
			}
		}
		if err := sc.Err(); err != nil {
			yield(Record{}, fmt.Errorf("read audit lines: %w", err))
		}
	}
}
