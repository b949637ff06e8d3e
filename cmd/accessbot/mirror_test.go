package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/accessbot/accessbot/audit"
	"github.com/accessbot/accessbot/store"
)

// A mirror file left behind the store, with a torn last line, is cut back
// to whole lines and caught up so that its chain verifies again.
func TestCatchUpMirror(t *testing.T) {
	dir := t.TempDir()
	st, err := store.Open(filepath.Join(dir, "a.db"), store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	var recs []audit.Record
	for _, ev := range []string{"config_loaded", "digest_posted", "config_loaded"} {
		rec, err := st.AppendAudit(ctx, audit.Record{Event: ev, Actor: "accessbot"})
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, rec)
	}
	path := filepath.Join(dir, "audit.jsonl")
	torn := recs[1].MarshalLine()
	content := append(append([]byte{}, recs[0].MarshalLine()...), torn[:len(torn)/2]...)
	if err := os.WriteFile(path, content, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	n, err := catchUpMirror(ctx, f, st)
	f.Close()
	if err != nil || n != 2 {
		t.Fatalf("catchUpMirror = %d, %v; want 2 records appended", n, err)
	}
	rf, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer rf.Close()
	if got, err := audit.VerifyChain(audit.ReadJSONLines(rf)); err != nil || got != 3 {
		t.Fatalf("mirror after catch-up: %d records, %v", got, err)
	}
	// Nothing to do the second time.
	f, _ = os.OpenFile(path, os.O_RDWR|os.O_APPEND, 0o600)
	defer f.Close()
	if n, err := catchUpMirror(ctx, f, st); err != nil || n != 0 {
		t.Fatalf("second catch-up = %d, %v", n, err)
	}
}

// A mirror file from another store (another deployment, an earlier demo)
// is refused rather than extended into a broken chain.
func TestCatchUpMirrorRefusesAnotherStoresFile(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	open := func(name string) *store.Store {
		st, err := store.Open(filepath.Join(dir, name), store.Options{NoSync: true})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	}
	a, b := open("a.db"), open("b.db")
	rec, err := a.AppendAudit(ctx, audit.Record{Event: "config_loaded", Actor: "accessbot", Note: "a"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.AppendAudit(ctx, audit.Record{Event: "config_loaded", Actor: "accessbot", Note: "b"}); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "audit.jsonl")
	if err := os.WriteFile(path, rec.MarshalLine(), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := catchUpMirror(ctx, f, b); err == nil || !strings.Contains(err.Error(), "does not belong to this store") {
		t.Fatalf("catchUpMirror with another store's file: %v", err)
	}
	if _, err := catchUpMirror(ctx, f, a); err != nil {
		t.Fatalf("catchUpMirror with its own store: %v", err)
	}
}
