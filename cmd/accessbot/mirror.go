package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/accessbot/accessbot/audit"
	"github.com/accessbot/accessbot/store"
)

// catchUpMirror appends to the audit mirror file every record the store
// holds beyond the file's last one. A record reaches the file only after
// its transaction committed, so a process killed in between leaves the
// file behind the store; without this the file's chain would have a gap
// that `audit verify` reports. It must run before anything writes to the
// store. It returns the number of records appended.
func catchUpMirror(ctx context.Context, f *os.File, st *store.Store) (int, error) {
	last, hash, err := lastMirrored(f)
	if err != nil {
		return 0, fmt.Errorf("audit file %s: %w", f.Name(), err)
	}
	if last > 0 {
		// The file must be this store's chain: its last record is the
		// store's record of the same number.
		var mine string
		if err := st.AuditRecordsAfter(ctx, last-1, func(rec audit.Record) bool {
			if rec.Seq == last {
				mine = rec.Hash
			}
			return false
		}); err != nil {
			return 0, err
		}
		if mine != hash {
			return 0, fmt.Errorf("audit file %s does not belong to this store (its record %d is not the store's); point audit.file at a new file or at this store's own", f.Name(), last)
		}
	}
	n := 0
	var werr error
	err = st.AuditRecordsAfter(ctx, last, func(rec audit.Record) bool {
		if _, werr = f.Write(rec.MarshalLine()); werr != nil {
			return false
		}
		n++
		return true
	})
	if err == nil {
		err = werr
	}
	if err != nil {
		return n, fmt.Errorf("catch up audit file %s: %w", f.Name(), err)
	}
	return n, nil
}

// lastMirrored reads the seq and hash of the last complete line of the
// file (0 for an empty file). A torn last line (a crash mid-write) is cut
// off, so the next record starts on a line of its own.
func lastMirrored(f *os.File) (uint64, string, error) {
	info, err := f.Stat()
	if err != nil {
		return 0, "", err
	}
	size := info.Size()
	if size == 0 {
		return 0, "", nil
	}
	const tail = 1 << 16 // audit lines are well under 64 KiB (reasons are capped)
	start := max(size-tail, 0)
	buf := make([]byte, size-start)
	if _, err := f.ReadAt(buf, start); err != nil && err != io.EOF {
		return 0, "", err
	}
	text := string(buf)
	if !strings.HasSuffix(text, "\n") {
		cut := strings.LastIndexByte(text, '\n') + 1
		if err := f.Truncate(start + int64(cut)); err != nil {
			return 0, "", fmt.Errorf("cut torn last line: %w", err)
		}
		text = text[:cut]
	}
	lines := strings.Split(strings.TrimRight(text, "\n"), "\n")
	if len(lines) == 0 || lines[len(lines)-1] == "" {
		return 0, "", nil
	}
	var rec struct {
		Seq  uint64 `json:"seq"`
		Hash string `json:"hash"`
	}
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &rec); err != nil {
		return 0, "", fmt.Errorf("last line is not an audit record: %w", err)
	}
	return rec.Seq, rec.Hash, nil
}
