package store_test

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/audit"
	"github.com/accessbot/accessbot/store"
	"github.com/accessbot/accessbot/store/storetest"
)

func TestApplyRetention(t *testing.T) {
	defer store.SetRetentionChunk(3)() // cross chunk boundaries
	var mirror bytes.Buffer
	s := storetest.Open(t, store.Options{NoSync: true, AuditMirror: &mirror, Clock: access.ClockFunc(func() time.Time { return t0 })})
	ctx := ctxT(t)
	if _, err := s.AppendAudit(ctx, audit.Record{Event: "config_loaded", Actor: access.ActorBot, Note: "runbook sha256:abc"}); err != nil {
		t.Fatal(err)
	}
	// Five old requests, denied with a reason; then three recent ones.
	for i := range 5 {
		r := mustCreate(t, s, storetest.NewRequest(fmt.Sprintf("U%08d", i), "crm", "viewer", t0, "U0BOB0001"))
		mustUpdate(t, s, r.ID, apply(access.Transition{Event: access.EventDenied, Actor: "U0BOB0001", At: t0.Add(time.Minute), Note: "not for this ticket"}, nil))
	}
	recent := t0.Add(48 * time.Hour)
	for i := range 3 {
		mustCreate(t, s, storetest.NewRequest(fmt.Sprintf("U1%07d", i), "crm", "viewer", recent, "U0BOB0001"))
	}

	cutoff := t0.Add(24 * time.Hour)
	n, err := s.ApplyRetention(ctx, cutoff)
	if err != nil {
		t.Fatal(err)
	}
	if n != 10 {
		t.Errorf("ApplyRetention redacted %d records, want 10 (5 requested, 5 denied)", n)
	}
	recs := auditRecords(t, s)
	for _, r := range recs {
		old := r.Time.Before(cutoff)
		switch {
		case r.Event == "config_loaded":
			if r.Redacted || r.Note != "runbook sha256:abc" {
				t.Errorf("config record changed: %+v", r)
			}
		case old && (!r.Redacted || r.Reason != "" || r.Note != "" || r.ReasonHash == ""):
			t.Errorf("old record %d not redacted: %+v", r.Seq, r)
		case old && (r.Actor == "" || r.RequestID == "" || r.Outcome == ""):
			t.Errorf("old record %d lost more than its text: %+v", r.Seq, r)
		case !old && (r.Redacted || r.Reason != "customer ticket 4411"):
			t.Errorf("recent record %d redacted: %+v", r.Seq, r)
		}
	}
	if n, err := s.VerifyAudit(ctx); n != len(recs) || err != nil {
		t.Fatalf("VerifyAudit after retention = %d, %v; want %d, nil", n, err, len(recs))
	}
	if err := s.Check(ctx); err != nil {
		t.Fatal(err)
	}

	// Idempotent, and the chain goes on after it.
	if n, err := s.ApplyRetention(ctx, cutoff); n != 0 || err != nil {
		t.Errorf("second ApplyRetention = %d, %v; want 0, nil", n, err)
	}
	mustCreate(t, s, storetest.NewRequest("U0LATER01", "crm", "viewer", recent, "U0BOB0001"))
	if n, err := s.VerifyAudit(ctx); n != len(recs)+1 || err != nil {
		t.Fatalf("VerifyAudit after a new record = %d, %v", n, err)
	}
	// A later cutoff picks up where the last pass stopped.
	if n, err := s.ApplyRetention(ctx, recent.Add(time.Second)); n != 4 || err != nil {
		t.Errorf("ApplyRetention(later) = %d, %v; want 4, nil", n, err)
	}

	// The mirror is append-only: it keeps the text, and verifies.
	if !bytes.Contains(mirror.Bytes(), []byte("not for this ticket")) {
		t.Error("the mirror lost text; it must never be rewritten")
	}
	if _, err := audit.VerifyChain(audit.ReadJSONLines(bytes.NewReader(mirror.Bytes()))); err != nil {
		t.Errorf("mirror: %v", err)
	}

	// Tampering is still caught, in redacted and intact records alike.
	recs = auditRecords(t, s)
	verify := func(rs []audit.Record) *audit.ChainError {
		var buf bytes.Buffer
		for _, r := range rs {
			buf.Write(r.MarshalLine())
		}
		_, err := audit.VerifyChain(audit.ReadJSONLines(&buf))
		var ce *audit.ChainError
		if err != nil && !errors.As(err, &ce) {
			t.Fatalf("audit.VerifyChain: %v", err)
		}
		return ce
	}
	if ce := verify(recs); ce != nil {
		t.Fatalf("exported chain after retention: %v", ce)
	}
	for _, tc := range []struct {
		name    string
		change  func(rs []audit.Record)
		seq     uint64
		problem string
	}{
		{"redacted record's actor edited", func(rs []audit.Record) { rs[2].Actor = "U0MALLORY" }, 3, "hash mismatch"},
		{"text put back into a redacted record", func(rs []audit.Record) { rs[2].Reason = "something else" }, 3, "reason_hash mismatch"},
		{"intact record's reason edited", func(rs []audit.Record) { rs[len(rs)-1].Reason = "routine" }, uint64(len(recs)), "reason_hash mismatch"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rs := append([]audit.Record(nil), recs...)
			tc.change(rs)
			ce := verify(rs)
			if ce == nil || ce.Seq != tc.seq || ce.Problem != tc.problem {
				t.Errorf("audit.VerifyChain = %v; want %s at seq %d", ce, tc.problem, tc.seq)
			}
		})
	}
}

func TestApplyRetentionEmpty(t *testing.T) {
	s := storetest.MustOpen(t)
	if n, err := s.ApplyRetention(ctxT(t), t0); n != 0 || err != nil {
		t.Errorf("ApplyRetention on an empty store = %d, %v", n, err)
	}
}
