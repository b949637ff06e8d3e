package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/audit"
	"github.com/accessbot/accessbot/store/postgres"
	"github.com/accessbot/accessbot/store/storetest"
	"github.com/google/go-cmp/cmp"
)

// tampered is a Source whose audit chain has one altered record.
type tampered struct {
	postgres.Source
	seq uint64
}

func (s tampered) AuditRecords(ctx context.Context, fn func(audit.Record) bool) error {
	return s.Source.AuditRecords(ctx, func(r audit.Record) bool {
		if r.Seq == s.seq {
			r.Actor = "U0MALLORY"
		}
		return fn(r)
	})
}

func TestImport(t *testing.T) {
	defer postgres.SetChunks(3)() // several COPY and export chunks
	p := pg(t)
	ctx := t.Context()
	src := openStore(t, newDatabase(t, p), postgres.Options{MaxConns: 3, LockConns: 1})
	for i := range 8 {
		r, err := src.Create(ctx, storetest.NewRequest(fmt.Sprintf("U%08d", i), "crm", "viewer", storetest.T0, "U0BOB0001"))
		if err != nil {
			t.Fatal(err)
		}
		if i%2 == 0 {
			if _, err := src.Update(ctx, r.ID, func(r *access.Request) error {
				return access.Apply(r, access.Transition{Event: access.EventDenied, Actor: "U0BOB0001", At: storetest.T0, Note: "no"})
			}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := src.KVPut(ctx, "zendesk", "AR-1001", []byte{0, 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := src.ApplyRetention(ctx, storetest.T0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}

	dst := openStore(t, newDatabase(t, p), postgres.Options{MaxConns: 3, LockConns: 1})
	if _, err := dst.Import(ctx, tampered{src, 5}); !errors.Is(err, audit.ErrChainBroken) {
		t.Fatalf("Import of a tampered chain: %v, want ErrChainBroken", err)
	}
	var n int
	if err := dst.ExportRequests(ctx, func(*access.Request) bool { n++; return true }); err != nil || n != 0 {
		t.Fatalf("a failed Import left %d requests (%v)", n, err)
	}

	st, err := dst.Import(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	if want := (postgres.ImportStats{Requests: 8, AuditRecords: 12, KV: 2}); st != want {
		t.Errorf("Import = %+v, want %+v (KV: the entry and the retention mark)", st, want)
	}
	collect := func(s *postgres.Store) (reqs []*access.Request, recs []audit.Record, dues []access.Due, id string) {
		t.Helper()
		if err := s.ExportRequests(ctx, func(r *access.Request) bool { reqs = append(reqs, r); return true }); err != nil {
			t.Fatal(err)
		}
		if err := s.AuditRecords(ctx, func(r audit.Record) bool { recs = append(recs, r); return true }); err != nil {
			t.Fatal(err)
		}
		if err := s.Deadlines(ctx, func(d access.Due) bool { dues = append(dues, d); return true }); err != nil {
			t.Fatal(err)
		}
		id, err := s.InstallationID(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return reqs, recs, dues, id
	}
	r1, a1, d1, id1 := collect(src)
	r2, a2, d2, id2 := collect(dst)
	if diff := cmp.Diff(r1, r2); diff != "" {
		t.Errorf("requests (-source +target):\n%s", diff)
	}
	if diff := cmp.Diff(a1, a2); diff != "" {
		t.Errorf("audit records (-source +target):\n%s", diff)
	}
	if diff := cmp.Diff(d1, d2); diff != "" || len(d1) != 4 {
		t.Errorf("deadlines (-source +target, want 4):\n%s", diff)
	}
	if id1 != id2 {
		t.Errorf("installation ID %s, source's %s", id2, id1)
	}
	if n, err := dst.VerifyAudit(ctx); n != 12 || err != nil {
		t.Errorf("target VerifyAudit = %d, %v", n, err)
	}
	// The sequence goes on after the highest ID, and the chain after its head.
	r, err := dst.Create(ctx, storetest.NewRequest("U0NEW0001", "crm", "viewer", storetest.T0, "U0BOB0001"))
	if err != nil || r.ID != "AR-1009" {
		t.Errorf("Create after Import = %v, %v; want AR-1009", r, err)
	}
	// The retention mark came along: nothing is redacted twice.
	if n, err := dst.ApplyRetention(ctx, storetest.T0.Add(time.Hour)); n != 1 || err != nil {
		t.Errorf("ApplyRetention after Import = %d, %v; want 1 (only the new record)", n, err)
	}

	_, err = dst.Import(ctx, src)
	if !errors.Is(err, postgres.ErrNotEmpty) {
		t.Fatalf("second Import: %v, want ErrNotEmpty", err)
	}
	if want := "it holds 9 requests, 13 audit records and 2 key-value entries"; !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not say %q", err, want)
	}
}
