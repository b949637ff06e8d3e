package store_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/audit"
	"github.com/accessbot/accessbot/store"
	"github.com/accessbot/accessbot/store/storetest"
	"github.com/google/go-cmp/cmp"
)

var t0 = time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)

func ctxT(t *testing.T) context.Context { return t.Context() }

func mustCreate(t *testing.T, s *store.Store, r *access.Request) *access.Request {
	t.Helper()
	got, err := s.Create(ctxT(t), r)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	return got
}

func apply(tr access.Transition, change func(r *access.Request)) func(r *access.Request) error {
	return func(r *access.Request) error {
		if err := access.Apply(r, tr); err != nil {
			return err
		}
		if change != nil {
			change(r)
		}
		return nil
	}
}

func mustUpdate(t *testing.T, s *store.Store, id string, fn func(r *access.Request) error) *access.Request {
	t.Helper()
	got, err := s.Update(ctxT(t), id, fn)
	if err != nil {
		t.Fatalf("Update %s: %v", id, err)
	}
	return got
}

func auditRecords(t *testing.T, s *store.Store) []audit.Record {
	t.Helper()
	var recs []audit.Record
	if err := s.AuditRecords(ctxT(t), func(r audit.Record) bool { recs = append(recs, r); return true }); err != nil {
		t.Fatalf("AuditRecords: %v", err)
	}
	return recs
}

func TestCreateGetUpdate(t *testing.T) {
	s := storetest.MustOpen(t)
	in := storetest.NewRequest("U0ALICE01", "crm", "viewer", t0, "U0BOB0001")
	inCopy := in.Clone()
	created := mustCreate(t, s, in)
	if created.ID != "AR-1001" || created.Seq != 1001 || created.Version != 1 {
		t.Fatalf("created = %s seq %d version %d, want AR-1001 seq 1001 version 1", created.ID, created.Seq, created.Version)
	}
	if diff := cmp.Diff(inCopy, in); diff != "" {
		t.Errorf("Create changed its argument (-before +after):\n%s", diff)
	}
	for _, id := range []string{"AR-1001", "ar-1001", "1001", " Ar-1001 "} {
		got, err := s.Get(ctxT(t), id)
		if err != nil {
			t.Fatalf("Get(%q): %v", id, err)
		}
		if diff := cmp.Diff(created, got); diff != "" {
			t.Errorf("Get(%q) (-created +got):\n%s", id, diff)
		}
	}
	second := mustCreate(t, s, storetest.NewRequest("U0DAVE001", "crm", "viewer", t0, "U0BOB0001"))
	if second.ID != "AR-1002" {
		t.Errorf("second ID = %s, want AR-1002", second.ID)
	}

	updated := mustUpdate(t, s, "ar-1001", apply(access.Transition{Event: access.EventApproved, Actor: "U0BOB0001", At: t0.Add(time.Minute)}, func(r *access.Request) {
		r.Decisions = append(r.Decisions, access.Decision{Actor: "U0BOB0001", Approve: true, At: t0.Add(time.Minute)})
	}))
	if updated.Version != 2 || updated.State != access.StateApproved || len(updated.History) != 2 {
		t.Fatalf("updated = version %d state %s history %d, want 2 approved 2", updated.Version, updated.State, len(updated.History))
	}
	got, err := s.Get(ctxT(t), "AR-1001")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(updated, got); diff != "" {
		t.Errorf("Get after Update (-updated +got):\n%s", diff)
	}

	recs := auditRecords(t, s)
	want := []audit.Record{
		{Seq: 1, Time: t0, Event: "requested", Actor: "U0ALICE01", Subject: "U0ALICE01", System: "crm", Role: "viewer", RequestID: "AR-1001", Reason: "customer ticket 4411", Outcome: "pending"},
		{Seq: 2, Time: t0, Event: "requested", Actor: "U0DAVE001", Subject: "U0DAVE001", System: "crm", Role: "viewer", RequestID: "AR-1002", Reason: "customer ticket 4411", Outcome: "pending"},
		{Seq: 3, Time: t0.Add(time.Minute), Event: "approved", Actor: "U0BOB0001", Subject: "U0ALICE01", System: "crm", Role: "viewer", RequestID: "AR-1001", Reason: "customer ticket 4411", Outcome: "approved"},
	}
	if diff := cmp.Diff(want, recs, cmpIgnoreHashes); diff != "" {
		t.Errorf("audit records (-want +got):\n%s", diff)
	}
	if recs[0].PrevHash != audit.ZeroHash || recs[1].PrevHash != recs[0].Hash || recs[2].PrevHash != recs[1].Hash {
		t.Errorf("records are not chained: %+v", recs)
	}
}

var cmpIgnoreHashes = cmp.FilterPath(func(p cmp.Path) bool {
	n := p.Last().String()
	return n == ".Hash" || n == ".PrevHash" || n == ".ReasonHash" || n == ".NoteHash"
}, cmp.Ignore())

func TestGetErrors(t *testing.T) {
	s := storetest.MustOpen(t)
	_, err := s.Get(ctxT(t), "AR-4242")
	if !errors.Is(err, access.ErrNotFound) {
		t.Fatalf("Get unknown: %v, want ErrNotFound", err)
	}
	if msg := err.Error(); msg != "There is no request AR-4242." {
		t.Errorf("user message %q", msg)
	}
	if _, err := s.Get(ctxT(t), "banana"); !errors.Is(err, access.ErrInvalid) {
		t.Errorf("Get banana: %v, want ErrInvalid", err)
	}
	if _, err := s.Update(ctxT(t), "AR-4242", func(*access.Request) error { return nil }); !errors.Is(err, access.ErrNotFound) {
		t.Errorf("Update unknown: %v, want ErrNotFound", err)
	}
	if _, err := s.Create(ctxT(t), &access.Request{}); !errors.Is(err, access.ErrInvalid) {
		t.Errorf("Create without transition: %v, want ErrInvalid", err)
	}
}

// TestUpdateCAS: 50 callers race for the same transition; the table lets
// exactly one win and the rest see ErrConflict (invariant 2: only the
// winner performs the effect).
func TestUpdateCAS(t *testing.T) {
	s := storetest.MustOpen(t)
	r := mustCreate(t, s, storetest.NewRequest("U0ALICE01", "crm", "viewer", t0, "U0BOB0001"))
	const n = 50
	var (
		wg        sync.WaitGroup
		mu        sync.Mutex
		wins      int
		conflicts int
		others    []error
	)
	for i := range n {
		wg.Go(func() {
			actor := fmt.Sprintf("U%08d", i)
			_, err := s.Update(ctxT(t), r.ID, apply(access.Transition{Event: access.EventApproved, Actor: actor, At: t0}, nil))
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				wins++
			case errors.Is(err, access.ErrConflict):
				conflicts++
			default:
				others = append(others, err)
			}
		})
	}
	wg.Wait()
	if wins != 1 || conflicts != n-1 || len(others) != 0 {
		t.Fatalf("wins %d conflicts %d other errors %v; want 1, %d, none", wins, conflicts, others, n-1)
	}
	got, err := s.Get(ctxT(t), r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Version != 2 || len(got.History) != 2 {
		t.Errorf("version %d history %d, want 2 and 2", got.Version, len(got.History))
	}
	if recs := auditRecords(t, s); len(recs) != 2 {
		t.Errorf("%d audit records, want 2", len(recs))
	}
}

func TestUpdateFnErrorWritesNothing(t *testing.T) {
	s := storetest.MustOpen(t)
	r := mustCreate(t, s, storetest.NewRequest("U0ALICE01", "crm", "viewer", t0, "U0BOB0001"))
	boom := errors.New("boom")
	cases := []struct {
		name string
		fn   func(r *access.Request) error
		want error // nil: any error
	}{
		{"fn error after changing the copy", func(r *access.Request) error {
			_ = access.Apply(r, access.Transition{Event: access.EventApproved, Actor: "U0BOB0001", At: t0})
			r.TimeoutAt = t0.Add(time.Hour)
			return boom
		}, boom},
		{"illegal transition", apply(access.Transition{Event: access.EventExpired, Actor: "x", At: t0}, nil), access.ErrConflict},
		{"state changed without the table", func(r *access.Request) error { r.State = access.StateActive; return nil }, nil},
		{"identity changed", func(r *access.Request) error { r.ID = "AR-1"; return nil }, nil},
		{"panic", func(r *access.Request) error { panic("oops") }, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.Update(ctxT(t), r.ID, tc.fn)
			if err == nil || (tc.want != nil && !errors.Is(err, tc.want)) {
				t.Fatalf("Update: %v, want %v", err, tc.want)
			}
			got, err := s.Get(ctxT(t), r.ID)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(r, got); diff != "" {
				t.Errorf("stored request changed (-before +after):\n%s", diff)
			}
			if recs := auditRecords(t, s); len(recs) != 1 {
				t.Errorf("%d audit records, want 1", len(recs))
			}
			due, err := s.Due(ctxT(t), t0.Add(48*time.Hour), 0)
			if err != nil {
				t.Fatal(err)
			}
			if want := []access.Due{{ID: r.ID, At: r.RemindAt}}; !cmp.Equal(want, due) {
				t.Errorf("Due = %v, want %v", due, want)
			}
		})
	}
}

// TestFnErrorInGroupCommit: a failing op queued with succeeding ones fails
// alone.
func TestFnErrorInGroupCommit(t *testing.T) {
	s := storetest.MustOpen(t)
	var ids []string
	for range 20 {
		ids = append(ids, mustCreate(t, s, storetest.NewRequest("U0ALICE01", "crm", "viewer", t0, "U0BOB0001")).ID)
	}
	var wg sync.WaitGroup
	errs := make([]error, len(ids))
	for i, id := range ids {
		wg.Go(func() {
			_, errs[i] = s.Update(ctxT(t), id, func(r *access.Request) error {
				if i%2 == 1 {
					r.Reason = "changed"
					return errors.New("odd")
				}
				return access.Apply(r, access.Transition{Event: access.EventCancelled, Actor: r.Requester, At: t0})
			})
		})
	}
	wg.Wait()
	for i, id := range ids {
		got, err := s.Get(ctxT(t), id)
		if err != nil {
			t.Fatal(err)
		}
		wantState, wantVersion := access.StateCancelled, uint64(2)
		if i%2 == 1 {
			wantState, wantVersion = access.StatePending, 1
			if errs[i] == nil {
				t.Errorf("%s: no error", id)
			}
		} else if errs[i] != nil {
			t.Errorf("%s: %v", id, errs[i])
		}
		if got.State != wantState || got.Version != wantVersion || got.Reason != "customer ticket 4411" {
			t.Errorf("%s: state %s version %d reason %q; want %s %d", id, got.State, got.Version, got.Reason, wantState, wantVersion)
		}
	}
	if recs := auditRecords(t, s); len(recs) != 30 {
		t.Errorf("%d audit records, want 30", len(recs))
	}
}

func TestDeadlineIndex(t *testing.T) {
	s := storetest.MustOpen(t)
	ctx := ctxT(t)
	a := mustCreate(t, s, storetest.NewRequest("U0ALICE01", "crm", "viewer", t0, "U0BOB0001"))                     // remind t0+2h
	b := mustCreate(t, s, storetest.NewRequest("U0DAVE001", "crm", "viewer", t0.Add(-time.Hour), "U0BOB0001"))     // remind t0+1h
	c := mustCreate(t, s, storetest.NewRequest("U0ERIN001", "crm", "viewer", t0.Add(30*time.Minute), "U0BOB0001")) // remind t0+2h30

	due := func(until time.Time, limit int) []access.Due {
		t.Helper()
		got, err := s.Due(ctx, until, limit)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	want := []access.Due{{ID: b.ID, At: t0.Add(time.Hour)}, {ID: a.ID, At: t0.Add(2 * time.Hour)}, {ID: c.ID, At: t0.Add(150 * time.Minute)}}
	if got := due(t0.Add(3*time.Hour), 0); !cmp.Equal(want, got) {
		t.Errorf("Due = %v, want %v", got, want)
	}
	if got := due(t0.Add(2*time.Hour), 0); !cmp.Equal(want[:2], got) {
		t.Errorf("Due(until = a's deadline) = %v, want %v (inclusive)", got, want[:2])
	}
	if got := due(t0.Add(3*time.Hour), 1); !cmp.Equal(want[:1], got) {
		t.Errorf("Due(limit 1) = %v, want %v", got, want[:1])
	}

	// a: approved with no retry pending → no deadline; granted → warn, then expiry;
	// revoking with a retry → retry time; revoked → none.
	steps := []struct {
		name   string
		fn     func(r *access.Request) error
		wantAt time.Time // zero: not indexed
	}{
		{"approved", apply(access.Transition{Event: access.EventApproved, Actor: "U0BOB0001", At: t0}, nil), time.Time{}},
		{"granted", apply(access.Transition{Event: access.EventGranted, Actor: access.ActorBot, At: t0}, func(r *access.Request) {
			r.GrantedAt, r.ExpiresAt, r.WarnAt = t0, t0.Add(2*time.Hour), t0.Add(110*time.Minute)
		}), t0.Add(110 * time.Minute)},
		{"warned", apply(access.Transition{Event: access.EventWarned, Actor: access.ActorBot, At: t0}, func(r *access.Request) {
			r.WarnAt = time.Time{}
		}), t0.Add(2 * time.Hour)},
		{"expiring", apply(access.Transition{Event: access.EventExpiring, Actor: access.ActorBot, At: t0}, func(r *access.Request) {
			r.NextAttemptAt = t0.Add(2*time.Hour + time.Second)
		}), t0.Add(2*time.Hour + time.Second)},
		{"expired", apply(access.Transition{Event: access.EventExpired, Actor: access.ActorBot, At: t0}, nil), time.Time{}},
	}
	for _, st := range steps {
		mustUpdate(t, s, a.ID, st.fn)
		got := due(t0.Add(1000*time.Hour), 0)
		var at []time.Time
		for _, d := range got {
			if d.ID == a.ID {
				at = append(at, d.At)
			}
		}
		switch {
		case st.wantAt.IsZero() && len(at) != 0:
			t.Errorf("after %s: %s indexed at %v, want not indexed", st.name, a.ID, at)
		case !st.wantAt.IsZero() && (len(at) != 1 || !at[0].Equal(st.wantAt)):
			t.Errorf("after %s: %s indexed at %v, want [%v]", st.name, a.ID, at, st.wantAt)
		}
		if !slices.IsSortedFunc(got, func(x, y access.Due) int { return x.At.Compare(y.At) }) {
			t.Errorf("after %s: Due not in time order: %v", st.name, got)
		}
	}
}

func TestDeadlinesScan(t *testing.T) {
	defer store.SetChunks(7)()
	s := storetest.MustOpen(t)
	var want []access.Due
	var wg sync.WaitGroup
	var mu sync.Mutex
	for i := range 40 {
		wg.Go(func() {
			at := t0.Add(time.Duration((i*37)%40) * time.Minute)
			r := storetest.NewRequest(fmt.Sprintf("U%08d", i), "crm", "viewer", at.Add(-2*time.Hour), "U0BOB0001")
			got := mustCreate(t, s, r)
			mu.Lock()
			want = append(want, access.Due{ID: got.ID, At: at})
			mu.Unlock()
		})
	}
	wg.Wait()
	slices.SortFunc(want, func(x, y access.Due) int { return x.At.Compare(y.At) })
	var got []access.Due
	if err := s.Deadlines(ctxT(t), func(d access.Due) bool { got = append(got, d); return true }); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Deadlines (-want +got):\n%s", diff)
	}
	n := 0
	if err := s.Deadlines(ctxT(t), func(access.Due) bool { n++; return n < 10 }); err != nil || n != 10 {
		t.Errorf("stopping scan: n %d err %v, want 10 nil", n, err)
	}
	// fn may call the store: it runs outside any transaction.
	first := got[0]
	err := s.Deadlines(ctxT(t), func(d access.Due) bool {
		if d == first {
			mustUpdate(t, s, d.ID, apply(access.Transition{Event: access.EventCancelled, Actor: "x", At: t0}, nil))
		}
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestList(t *testing.T) {
	s := storetest.MustOpen(t)
	ctx := ctxT(t)
	mk := func(requester, system, role string, approvers ...string) *access.Request {
		return mustCreate(t, s, storetest.NewRequest(requester, system, role, t0, approvers...))
	}
	a1 := mk("U0ALICE01", "crm", "viewer", "U0BOB0001")
	a2 := mk("U0ALICE01", "crm", "admin", "U0CAROL01")
	d1 := mk("U0DAVE001", "payroll", "viewer", "U0BOB0001", "U0CAROL01")
	a3 := mk("U0ALICE01", "crm", "viewer", "U0BOB0001") // same entitlement as a1
	a2 = mustUpdate(t, s, a2.ID, apply(access.Transition{Event: access.EventDenied, Actor: "U0CAROL01", At: t0}, nil))
	a1 = mustUpdate(t, s, a1.ID, apply(access.Transition{Event: access.EventApproved, Actor: "U0BOB0001", At: t0}, nil))

	ids := func(rs []*access.Request) []string {
		var out []string
		for _, r := range rs {
			out = append(out, r.ID)
		}
		return out
	}
	cases := []struct {
		name string
		f    access.Filter
		want []*access.Request
	}{
		{"all newest first", access.Filter{}, []*access.Request{a3, d1, a2, a1}},
		{"limit", access.Filter{Limit: 2}, []*access.Request{a3, d1}},
		{"requester", access.Filter{Requester: "U0ALICE01"}, []*access.Request{a3, a2, a1}},
		{"requester with limit", access.Filter{Requester: "U0ALICE01", Limit: 1}, []*access.Request{a3}},
		{"requester and states", access.Filter{Requester: "U0ALICE01", States: []access.State{access.StatePending, access.StateApproved}}, []*access.Request{a3, a1}},
		{"unknown requester", access.Filter{Requester: "U0NOBODY1"}, nil},
		{"approver", access.Filter{Approver: "U0BOB0001"}, []*access.Request{a3, d1}},
		{"approver of nothing pending", access.Filter{Approver: "U0NOBODY1"}, nil},
		{"system", access.Filter{System: "payroll"}, []*access.Request{d1}},
		{"non-terminal states", access.Filter{States: []access.State{access.StateApproved}}, []*access.Request{a1}},
		{"terminal state", access.Filter{States: []access.State{access.StateDenied}}, []*access.Request{a2}},
		{"entitlement", access.Filter{Entitlement: a1.Entitlement.Key()}, []*access.Request{a3, a1}},
		{"live by entitlement", access.Filter{Entitlement: a1.Entitlement.Key(), States: []access.State{access.StateApproved, access.StateActive, access.StateRevoking}}, []*access.Request{a1}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.List(ctx, tc.f)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(ids(tc.want), ids(got)); diff != "" {
				t.Errorf("IDs (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("requests (-want +got):\n%s", diff)
			}
		})
	}
}

func TestAuditChain(t *testing.T) {
	var mirror bytes.Buffer
	s := storetest.Open(t, store.Options{NoSync: true, AuditMirror: &mirror, Clock: access.ClockFunc(func() time.Time { return t0 })})
	ctx := ctxT(t)
	cfg, err := s.AppendAudit(ctx, audit.Record{Event: "config_loaded", Actor: access.ActorBot, Note: "sha256:abc"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Seq != 1 || !cfg.Time.Equal(t0) || cfg.PrevHash != audit.ZeroHash || cfg.Hash != cfg.ComputeHash() {
		t.Errorf("config record = %+v", cfg)
	}
	for i := range 5 {
		r := mustCreate(t, s, storetest.NewRequest(fmt.Sprintf("U%08d", i), "crm", "viewer", t0, "U0BOB0001"))
		mustUpdate(t, s, r.ID, apply(access.Transition{Event: access.EventDenied, Actor: "U0BOB0001", At: t0, Note: "no <ticket> & no reason"}, nil))
	}
	if n, err := s.VerifyAudit(ctx); n != 11 || err != nil {
		t.Fatalf("VerifyAudit = %d, %v; want 11, nil", n, err)
	}
	recs := auditRecords(t, s)
	var lines bytes.Buffer
	for _, r := range recs {
		lines.Write(r.MarshalLine())
	}
	if diff := cmp.Diff(lines.String(), mirror.String()); diff != "" {
		t.Errorf("mirror differs from AuditRecords (-records +mirror):\n%s", diff)
	}
	if n, err := audit.VerifyChain(audit.ReadJSONLines(&mirror)); n != 11 || err != nil {
		t.Fatalf("audit.VerifyChain(mirror) = %d, %v; want 11, nil", n, err)
	}

	verify := func(rs []audit.Record) (int, *audit.ChainError) {
		var buf bytes.Buffer
		for _, r := range rs {
			buf.Write(r.MarshalLine())
		}
		n, err := audit.VerifyChain(audit.ReadJSONLines(&buf))
		var ce *audit.ChainError
		if err != nil && !errors.As(err, &ce) {
			t.Fatalf("audit.VerifyChain: %v is not a *audit.ChainError", err)
		}
		if err != nil && !errors.Is(err, audit.ErrChainBroken) {
			t.Errorf("%v does not wrap audit.ErrChainBroken", err)
		}
		return n, ce
	}
	tamper := []struct {
		name        string
		change      func(rs []audit.Record) []audit.Record
		wantN       int
		wantSeq     uint64
		wantProblem string
	}{
		{"edited", func(rs []audit.Record) []audit.Record { rs[4].Actor = "U0MALLORY"; return rs }, 4, 5, "hash mismatch"},
		{"edited and rehashed", func(rs []audit.Record) []audit.Record {
			rs[4].Note = "approved after all"
			rs[4].NoteHash = audit.TextHash(rs[4].Note)
			rs[4].Hash = rs[4].ComputeHash()
			return rs
		}, 5, 6, "prev_hash mismatch"},
		// The chain hash covers the text's hash, not the text: an edited
		// text is caught by its own hash.
		{"reason edited", func(rs []audit.Record) []audit.Record { rs[2].Reason = "routine"; return rs }, 2, 3, "reason_hash mismatch"},
		{"note edited", func(rs []audit.Record) []audit.Record { rs[4].Note = "approved after all"; return rs }, 4, 5, "note_hash mismatch"},
		{"reason blanked without redaction", func(rs []audit.Record) []audit.Record { rs[2].Reason = ""; return rs }, 2, 3, "reason_hash mismatch"},
		{"redacted record edited", func(rs []audit.Record) []audit.Record {
			rs[4].Reason, rs[4].Note, rs[4].Redacted = "", "approved after all", true
			return rs
		}, 4, 5, "note_hash mismatch"},
		{"removed", func(rs []audit.Record) []audit.Record { return slices.Delete(rs, 6, 7) }, 6, 8, "seq gap"},
		{"first removed", func(rs []audit.Record) []audit.Record { return rs[1:] }, 0, 2, "seq gap"},
		{"reordered", func(rs []audit.Record) []audit.Record { rs[2], rs[3] = rs[3], rs[2]; return rs }, 2, 4, "seq gap"},
		{"moved back", func(rs []audit.Record) []audit.Record {
			r := rs[7]
			rs = slices.Delete(rs, 7, 8)
			return slices.Insert(rs, 9, r)
		}, 7, 9, "seq gap"},
		{"duplicated", func(rs []audit.Record) []audit.Record { return slices.Insert(rs, 3, rs[2]) }, 3, 3, "seq out of order"},
	}
	for _, tc := range tamper {
		t.Run(tc.name, func(t *testing.T) {
			n, ce := verify(tc.change(slices.Clone(recs)))
			if ce == nil {
				t.Fatalf("chain verified (%d records)", n)
			}
			if n != tc.wantN || ce.Seq != tc.wantSeq || ce.Problem != tc.wantProblem || ce.Index != tc.wantN {
				t.Errorf("n %d, error %+v (%v); want n %d at seq %d: %s", n, *ce, ce, tc.wantN, tc.wantSeq, tc.wantProblem)
			}
		})
	}
	_, err = audit.VerifyChain(audit.ReadJSONLines(bytes.NewBufferString(string(recs[0].MarshalLine()) + "{not json\n")))
	if !errors.Is(err, audit.ErrChainBroken) {
		t.Errorf("malformed line: %v", err)
	}
}

func TestLockTimeout(t *testing.T) {
	s := storetest.MustOpen(t)
	start := time.Now()
	_, err := store.Open(s.Path(), store.Options{LockTimeout: 100 * time.Millisecond})
	if !errors.Is(err, store.ErrLocked) {
		t.Fatalf("second Open: %v, want ErrLocked", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("second Open took %v", d)
	}
	if want := "is in use by another accessbot process (lock not acquired within 100ms)"; !bytes.Contains([]byte(err.Error()), []byte(want)) {
		t.Errorf("error %q does not say %q", err, want)
	}
}

func TestReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "accessbot.db")
	s, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	a := mustCreate(t, s, storetest.NewRequest("U0ALICE01", "crm", "viewer", t0, "U0BOB0001"))
	a = mustUpdate(t, s, a.ID, apply(access.Transition{Event: access.EventApproved, Actor: "U0BOB0001", At: t0}, nil))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); !errors.Is(err, store.ErrClosed) {
		t.Errorf("second Close: %v, want ErrClosed", err)
	}
	if _, err := s.Get(ctxT(t), a.ID); !errors.Is(err, store.ErrClosed) {
		t.Errorf("Get after Close: %v, want ErrClosed", err)
	}
	if _, err := s.Create(ctxT(t), storetest.NewRequest("U0ALICE01", "crm", "viewer", t0)); !errors.Is(err, store.ErrClosed) {
		t.Errorf("Create after Close: %v, want ErrClosed", err)
	}

	s, err = store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got, err := s.Get(ctxT(t), a.ID)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(a, got); diff != "" {
		t.Errorf("after reopen (-before +after):\n%s", diff)
	}
	b := mustCreate(t, s, storetest.NewRequest("U0DAVE001", "crm", "viewer", t0, "U0BOB0001"))
	if b.ID != "AR-1002" {
		t.Errorf("ID after reopen = %s, want AR-1002", b.ID)
	}
	if n, err := s.VerifyAudit(ctxT(t)); n != 3 || err != nil {
		t.Errorf("VerifyAudit = %d, %v; want 3, nil", n, err)
	}
	if err := s.Check(ctxT(t)); err != nil {
		t.Error(err)
	}
}

// TestCloseDrains: writes racing Close either commit (and are reported as
// committed) or fail with ErrClosed; none is lost or half done.
func TestCloseDrains(t *testing.T) {
	s := storetest.MustOpen(t)
	var wg sync.WaitGroup
	ids := make([]string, 64)
	errs := make([]error, 64)
	for i := range ids {
		wg.Go(func() {
			r, err := s.Create(context.Background(), storetest.NewRequest(fmt.Sprintf("U%08d", i), "crm", "viewer", t0))
			errs[i] = err
			if err == nil {
				ids[i] = r.ID
			}
		})
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	s2, err := store.Open(s.Path(), store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	for i, id := range ids {
		switch {
		case errs[i] == nil:
			if _, err := s2.Get(ctxT(t), id); err != nil {
				t.Errorf("committed %s lost: %v", id, err)
			}
		case !errors.Is(errs[i], store.ErrClosed):
			t.Errorf("Create %d: %v, want nil or ErrClosed", i, errs[i])
		}
	}
}

func TestCancelledContext(t *testing.T) {
	s := storetest.MustOpen(t)
	ctx, cancel := context.WithCancel(ctxT(t))
	cancel()
	if _, err := s.Create(ctx, storetest.NewRequest("U0ALICE01", "crm", "viewer", t0)); !errors.Is(err, context.Canceled) {
		t.Errorf("Create: %v, want context.Canceled", err)
	}
	if _, err := s.List(ctx, access.Filter{}); !errors.Is(err, context.Canceled) {
		t.Errorf("List: %v, want context.Canceled", err)
	}
}
