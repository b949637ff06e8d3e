package storetest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/audit"
	"github.com/google/go-cmp/cmp"
)

// Store is everything an accessbot store offers, with the same signatures
// in every driver (package store on bbolt, package store/postgres): the
// surface the conformance suite tests and the application uses.
type Store interface {
	access.Store

	AppendAudit(ctx context.Context, rec audit.Record) (audit.Record, error)
	AuditRecords(ctx context.Context, fn func(rec audit.Record) bool) error
	AuditRecordsAfter(ctx context.Context, seq uint64, fn func(rec audit.Record) bool) error
	VerifyAudit(ctx context.Context) (int, error)
	ApplyRetention(ctx context.Context, before time.Time) (int, error)

	KVGet(ctx context.Context, ns, key string) ([]byte, bool, error)
	KVPut(ctx context.Context, ns, key string, value []byte) error
	KVDelete(ctx context.Context, ns, key string) error

	ExportRequests(ctx context.Context, fn func(r *access.Request) bool) error
	ExportKV(ctx context.Context, fn func(ns, key string, value []byte) bool) error
	InstallationID(ctx context.Context) (string, error)

	ClaimDue(ctx context.Context, owner string, until time.Time, lease time.Duration, limit int) ([]access.Due, error)
	Release(ctx context.Context, owner string, ids ...string) error
	Lock(ctx context.Context, key string) (unlock func(), err error)

	Ping(ctx context.Context) error
	Check(ctx context.Context) error
	Close() error
}

// Observer has the methods of both stores' Observer interfaces (a value of
// it can be passed as either).
type Observer interface {
	Claimed(owner string, claimed, takenOver int)
	Query(op string, d time.Duration, err error)
}

// Options are what the suite needs a store opened with.
type Options struct {
	Clock    access.Clock
	Observer Observer // may be nil
}

// Harness opens the stores of one driver for Run.
type Harness struct {
	// Open returns a new, empty store using opts, closed (and checked with
	// Check) at t's cleanup.
	Open func(t *testing.T, opts Options) Store
	// Replica, if set, opens a second store on the same data as s, as
	// another replica would (closed at t's cleanup); the suite then runs
	// its concurrency tests across both. Nil for drivers one process owns.
	Replica func(t *testing.T, s Store, opts Options) Store
	// SmallChunks, if set, makes the driver's chunked scans (Deadlines,
	// AuditRecords, ExportRequests, ApplyRetention) read n entries at a
	// time and returns a function restoring the defaults, so the suite
	// crosses chunk boundaries with few records.
	SmallChunks func(n int) (restore func())
}

// Clock is a settable clock for the suite: leases expire when it moves.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock returns a Clock at t.
func NewClock(t time.Time) *Clock { return &Clock{now: t} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// T0 is the suite's reference time.
var T0 = time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)

// Run runs the store conformance suite (the litestream pattern: one suite
// every driver passes) as subtests of t.
func Run(t *testing.T, h Harness) {
	tests := []struct {
		name string
		fn   func(t *testing.T, h Harness)
	}{
		{"CreateGetUpdate", testCreateGetUpdate},
		{"Errors", testErrors},
		{"EveryFieldRoundTrips", testRoundTrip},
		{"FnErrorWritesNothing", testFnErrorWritesNothing},
		{"CASOneWinner", testCASOneWinner},
		{"NoLostUpdate", testNoLostUpdate},
		{"DeadlineIndex", testDeadlineIndex},
		{"DeadlinesScan", testDeadlinesScan},
		{"List", testList},
		{"AuditChain", testAuditChain},
		{"AuditConcurrentWriters", testAuditConcurrent},
		{"Retention", testRetention},
		{"KV", testKV},
		{"Claims", testClaims},
		{"ClaimsConcurrent", testClaimsConcurrent},
		{"LockExclusion", testLock},
		{"Export", testExport},
		{"PingAndClose", testPingClose},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, h) })
	}
}

// open returns a store and, when the driver has replicas, a second one on
// the same data (else the same store again).
func open(t *testing.T, h Harness, opts Options) (Store, Store) {
	t.Helper()
	if opts.Clock == nil {
		opts.Clock = NewClock(T0)
	}
	s := h.Open(t, opts)
	if h.Replica == nil {
		return s, s
	}
	return s, h.Replica(t, s, opts)
}

func mustCreate(t *testing.T, s Store, r *access.Request) *access.Request {
	t.Helper()
	got, err := s.Create(t.Context(), r)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	return got
}

func mustUpdate(t *testing.T, s Store, id string, fn func(r *access.Request) error) *access.Request {
	t.Helper()
	got, err := s.Update(t.Context(), id, fn)
	if err != nil {
		t.Fatalf("Update %s: %v", id, err)
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

func auditRecords(t *testing.T, s Store) []audit.Record {
	t.Helper()
	var recs []audit.Record
	if err := s.AuditRecords(t.Context(), func(r audit.Record) bool { recs = append(recs, r); return true }); err != nil {
		t.Fatalf("AuditRecords: %v", err)
	}
	return recs
}

var ignoreHashes = cmp.FilterPath(func(p cmp.Path) bool {
	n := p.Last().String()
	return n == ".Hash" || n == ".PrevHash" || n == ".ReasonHash" || n == ".NoteHash"
}, cmp.Ignore())

func testCreateGetUpdate(t *testing.T, h Harness) {
	s, _ := open(t, h, Options{})
	in := NewRequest("U0ALICE01", "crm", "viewer", T0, "U0BOB0001")
	inCopy := in.Clone()
	created := mustCreate(t, s, in)
	if created.ID != "AR-1001" || created.Seq != 1001 || created.Version != 1 {
		t.Fatalf("created = %s seq %d version %d, want AR-1001 seq 1001 version 1", created.ID, created.Seq, created.Version)
	}
	if diff := cmp.Diff(inCopy, in); diff != "" {
		t.Errorf("Create changed its argument (-before +after):\n%s", diff)
	}
	for _, id := range []string{"AR-1001", "ar-1001", "1001", " Ar-1001 "} {
		got, err := s.Get(t.Context(), id)
		if err != nil {
			t.Fatalf("Get(%q): %v", id, err)
		}
		if diff := cmp.Diff(created, got); diff != "" {
			t.Errorf("Get(%q) (-created +got):\n%s", id, diff)
		}
	}
	if second := mustCreate(t, s, NewRequest("U0DAVE001", "crm", "viewer", T0, "U0BOB0001")); second.ID != "AR-1002" {
		t.Errorf("second ID = %s, want AR-1002", second.ID)
	}
	at := T0.Add(time.Minute)
	updated := mustUpdate(t, s, "ar-1001", apply(access.Transition{Event: access.EventApproved, Actor: "U0BOB0001", At: at}, func(r *access.Request) {
		r.Decisions = append(r.Decisions, access.Decision{Actor: "U0BOB0001", Approve: true, At: at})
	}))
	if updated.Version != 2 || updated.State != access.StateApproved || len(updated.History) != 2 {
		t.Fatalf("updated = version %d state %s history %d, want 2 approved 2", updated.Version, updated.State, len(updated.History))
	}
	got, err := s.Get(t.Context(), "AR-1001")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(updated, got); diff != "" {
		t.Errorf("Get after Update (-updated +got):\n%s", diff)
	}
	recs := auditRecords(t, s)
	want := []audit.Record{
		{Seq: 1, Time: T0, Event: "requested", Actor: "U0ALICE01", Subject: "U0ALICE01", System: "crm", Role: "viewer", RequestID: "AR-1001", Reason: "customer ticket 4411", Outcome: "pending"},
		{Seq: 2, Time: T0, Event: "requested", Actor: "U0DAVE001", Subject: "U0DAVE001", System: "crm", Role: "viewer", RequestID: "AR-1002", Reason: "customer ticket 4411", Outcome: "pending"},
		{Seq: 3, Time: at, Event: "approved", Actor: "U0BOB0001", Subject: "U0ALICE01", System: "crm", Role: "viewer", RequestID: "AR-1001", Reason: "customer ticket 4411", Outcome: "approved"},
	}
	if diff := cmp.Diff(want, recs, ignoreHashes); diff != "" {
		t.Errorf("audit records (-want +got):\n%s", diff)
	}
	if len(recs) == 3 && (recs[0].PrevHash != audit.ZeroHash || recs[1].PrevHash != recs[0].Hash || recs[2].PrevHash != recs[1].Hash) {
		t.Errorf("records are not chained: %+v", recs)
	}
	// An update that appends no history writes no audit record.
	mustUpdate(t, s, "AR-1001", func(r *access.Request) error { r.LastError = "noted"; return nil })
	if n := len(auditRecords(t, s)); n != 3 {
		t.Errorf("%d audit records after a history-less update, want 3", n)
	}
}

func testErrors(t *testing.T, h Harness) {
	s, _ := open(t, h, Options{})
	ctx := t.Context()
	_, err := s.Get(ctx, "AR-4242")
	if !errors.Is(err, access.ErrNotFound) {
		t.Fatalf("Get unknown: %v, want ErrNotFound", err)
	}
	if msg := err.Error(); msg != "There is no request AR-4242." {
		t.Errorf("user message %q", msg)
	}
	if _, err := s.Get(ctx, "banana"); !errors.Is(err, access.ErrInvalid) {
		t.Errorf("Get banana: %v, want ErrInvalid", err)
	}
	if _, err := s.Update(ctx, "AR-4242", func(*access.Request) error { return nil }); !errors.Is(err, access.ErrNotFound) {
		t.Errorf("Update unknown: %v, want ErrNotFound", err)
	}
	if _, err := s.Create(ctx, &access.Request{}); !errors.Is(err, access.ErrInvalid) {
		t.Errorf("Create without transition: %v, want ErrInvalid", err)
	}
	if _, err := s.AppendAudit(ctx, audit.Record{}); !errors.Is(err, access.ErrInvalid) {
		t.Errorf("AppendAudit without event: %v, want ErrInvalid", err)
	}
	if err := s.Release(ctx, "me", "banana"); !errors.Is(err, access.ErrInvalid) {
		t.Errorf("Release banana: %v, want ErrInvalid", err)
	}
	for _, bad := range []struct {
		owner string
		lease time.Duration
		limit int
	}{{"", time.Minute, 1}, {"me", 0, 1}, {"me", time.Minute, 0}} {
		if _, err := s.ClaimDue(ctx, bad.owner, T0, bad.lease, bad.limit); !errors.Is(err, access.ErrInvalid) {
			t.Errorf("ClaimDue(%q, %v, %d): %v, want ErrInvalid", bad.owner, bad.lease, bad.limit, err)
		}
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := s.Create(cancelled, NewRequest("U0ALICE01", "crm", "viewer", T0)); !errors.Is(err, context.Canceled) {
		t.Errorf("Create with a cancelled context: %v, want context.Canceled", err)
	}
	if got, err := s.List(ctx, access.Filter{}); err != nil || len(got) != 0 {
		t.Errorf("List after a cancelled Create = %d requests, %v; want none", len(got), err)
	}
}

// FullRequest returns a request with every field set to a value that is
// hard to store (nanosecond times in a zone other than UTC, NUL bytes, HTML
// characters, non-ASCII text, empty and large numbers), holding the
// transitions requested → approved → granted so that the history has
// entries from non-empty states. Fields added to access.Request later are
// filled by reflection (fillZero), so the round-trip test covers them
// without being edited.
func FullRequest(r *access.Request) {
	zone := time.FixedZone("UTC+05:45", 5*3600+45*60)
	at := func(n int) time.Time { return T0.Add(time.Duration(n)*time.Minute + 123456789).In(zone) }
	text := func(s string) string { return s + " <&> \"q\" — ü 日本 \x00 \u2028 end" }
	must := func(err error) {
		if err != nil {
			panic(err)
		}
	}
	must(access.Apply(r, access.Transition{Event: access.EventApproved, Actor: "U0BOB0001", At: at(1), Note: text("ok")}))
	must(access.Apply(r, access.Transition{Event: access.EventGranted, Actor: access.ActorBot, At: at(2), Note: text("granted")}))
	r.Role = "admin"
	r.Duration = 90*time.Minute + 1
	r.Reason = text("reason")
	r.Extends = "AR-1000"
	r.Auto = true
	r.Steps = []access.Step{
		{Approvers: []string{"U0BOB0001"}, Min: 1, Sources: "manager"},
		{Approvers: []string{"U0CAROL01", "U0ERIN001"}, Min: 2, Fallback: "owners", Sources: text("owners")},
	}
	r.CurrentStep = 1
	r.Decisions = []access.Decision{
		{Step: 0, Actor: "U0BOB0001", Approve: true, At: at(1)},
		{Step: 1, Actor: "U0CAROL01", Approve: true, Reason: text("fine"), At: at(2)},
	}
	r.DecidedAt, r.GrantedAt, r.ExpiresAt, r.EndedAt = at(3), at(4), at(5), at(6)
	r.RemindAt, r.TimeoutAt, r.WarnAt, r.NextAttemptAt, r.ConfirmAt = at(7), at(8), at(9), at(10), at(11)
	r.Attempts = 1 << 30
	r.LastError = text("error")
	r.Late, r.Alerted, r.AwaitingConfirmation = true, true, true
	r.CoveredBy = "AR-999999"
	r.Receipt = &access.Receipt{UserID: "00u1", PreExisting: true, Previous: text("agent"), Backstop: at(12),
		Data: []byte{0, 1, 2, 0xff, '{', '"'}, Note: text("membership created")}
	r.GrantedTo = &access.Person{SlackID: "U0ALICE01", Email: "alice@example.com", Name: text("Alice"), TZ: "Asia/Kathmandu", CurrentEmail: "alice@new.example.com"}
	r.Messages = []access.MessageRef{
		{Kind: access.RefApproval, Channel: "D0BOB", TS: "1700000000.000100", User: "U0BOB0001"},
		{Kind: access.RefTask, Channel: "C0CRM", TS: "1700000000.000200", User: "U0CAROL01", Step: 1, Op: "revoke", Stale: true},
	}
	fillZero(reflect.ValueOf(r).Elem(), "Request", 0)
}

// fillZero sets every zero exported, serialised field below v to a
// non-zero value (for fields FullRequest does not know yet).
func fillZero(v reflect.Value, path string, depth int) {
	if depth > 4 {
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		if v.Type() == reflect.TypeFor[time.Time]() {
			if v.IsZero() {
				v.Set(reflect.ValueOf(T0.Add(time.Duration(len(path)) * time.Second)))
			}
			return
		}
		for i := range v.NumField() {
			f := v.Type().Field(i)
			if !f.IsExported() || f.Tag.Get("json") == "-" {
				continue
			}
			fillZero(v.Field(i), path+"."+f.Name, depth+1)
		}
	case reflect.Pointer:
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		fillZero(v.Elem(), path, depth+1)
	case reflect.Slice:
		if v.Len() == 0 {
			if v.Type().Elem().Kind() == reflect.Uint8 {
				v.SetBytes([]byte(`{"filled":"` + path + `"}`)) // valid JSON, for json.RawMessage
				return
			}
			v.Set(reflect.MakeSlice(v.Type(), 1, 1))
		}
		for i := range v.Len() {
			fillZero(v.Index(i), fmt.Sprintf("%s[%d]", path, i), depth+1)
		}
	case reflect.Map:
		if v.Len() == 0 && v.Type().Key().Kind() == reflect.String {
			m := reflect.MakeMap(v.Type())
			e := reflect.New(v.Type().Elem()).Elem()
			fillZero(e, path+"[k]", depth+1)
			m.SetMapIndex(reflect.ValueOf("k").Convert(v.Type().Key()), e)
			v.Set(m)
		}
	case reflect.String:
		if v.Len() == 0 {
			v.SetString("filled " + path)
		}
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if v.Int() == 0 {
			v.SetInt(7)
		}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		if v.Uint() == 0 {
			v.SetUint(7)
		}
	case reflect.Float32, reflect.Float64:
		if v.Float() == 0 {
			v.SetFloat(0.5)
		}
	}
}

// zeroFields lists the paths of zero fields below v (slices: their last
// element).
func zeroFields(v reflect.Value, path string, depth int) []string {
	if depth > 4 {
		return nil
	}
	switch v.Kind() {
	case reflect.Struct:
		if v.Type() == reflect.TypeFor[time.Time]() {
			if v.IsZero() {
				return []string{path}
			}
			return nil
		}
		var out []string
		for i := range v.NumField() {
			f := v.Type().Field(i)
			if f.IsExported() && f.Tag.Get("json") != "-" {
				out = append(out, zeroFields(v.Field(i), path+"."+f.Name, depth+1)...)
			}
		}
		return out
	case reflect.Pointer:
		if v.IsNil() {
			return []string{path}
		}
		return zeroFields(v.Elem(), path, depth+1)
	case reflect.Slice:
		if v.Len() == 0 {
			return []string{path}
		}
		if v.Type().Elem().Kind() == reflect.Uint8 {
			return nil
		}
		return zeroFields(v.Index(v.Len()-1), path+"[last]", depth+1)
	}
	if v.IsZero() {
		return []string{path}
	}
	return nil
}

func testRoundTrip(t *testing.T, h Harness) {
	s, replica := open(t, h, Options{})
	ctx := t.Context()
	r := NewRequest("U0ALICE01", "crm", "viewer", T0, "U0BOB0001")
	r.Entitlement.Params["a <&> \x00"] = "ü"
	r.Entitlement.Params["b"] = ""
	created := mustCreate(t, s, r)
	var want *access.Request
	updated := mustUpdate(t, s, created.ID, func(r *access.Request) error {
		FullRequest(r)
		want = r.Clone()
		return nil
	})
	want.Version = created.Version + 1
	if z := zeroFields(reflect.ValueOf(updated).Elem(), "Request", 0); len(z) > 0 {
		t.Fatalf("the full request leaves fields zero: %v", z)
	}
	if diff := cmp.Diff(want, updated); diff != "" {
		t.Errorf("Update's result differs from what fn wrote (-fn +result):\n%s", diff)
	}
	for name, st := range map[string]Store{"store": s, "replica": replica} {
		got, err := st.Get(ctx, created.ID)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s: Get after Update (-written +read):\n%s", name, diff)
		}
		list, err := st.List(ctx, access.Filter{Entitlement: r.Entitlement.Key()})
		if err != nil || len(list) != 1 {
			t.Fatalf("%s: List by entitlement = %d, %v", name, len(list), err)
		}
		if diff := cmp.Diff(want, list[0]); diff != "" {
			t.Errorf("%s: List after Update (-written +read):\n%s", name, diff)
		}
	}
	// A second Update sees everything the first wrote.
	again := mustUpdate(t, replica, created.ID, func(got *access.Request) error {
		if diff := cmp.Diff(want, got); diff != "" {
			return fmt.Errorf("fn got (-written +read):\n%s", diff)
		}
		return nil
	})
	if again.Version != want.Version+1 {
		t.Errorf("version %d after a second update, want %d", again.Version, want.Version+1)
	}
	var exported []*access.Request
	if err := s.ExportRequests(ctx, func(r *access.Request) bool { exported = append(exported, r); return true }); err != nil {
		t.Fatal(err)
	}
	want.Version = again.Version
	if diff := cmp.Diff([]*access.Request{want}, exported); diff != "" {
		t.Errorf("ExportRequests (-written +exported):\n%s", diff)
	}
}

func testFnErrorWritesNothing(t *testing.T, h Harness) {
	s, _ := open(t, h, Options{})
	r := mustCreate(t, s, NewRequest("U0ALICE01", "crm", "viewer", T0, "U0BOB0001"))
	boom := errors.New("boom")
	cases := []struct {
		name string
		fn   func(r *access.Request) error
		want error // nil: any error
	}{
		{"fn error after changing the copy", func(r *access.Request) error {
			_ = access.Apply(r, access.Transition{Event: access.EventApproved, Actor: "U0BOB0001", At: T0})
			r.TimeoutAt = T0.Add(time.Hour)
			return boom
		}, boom},
		{"illegal transition", apply(access.Transition{Event: access.EventExpired, Actor: "x", At: T0}, nil), access.ErrConflict},
		{"state changed without the table", func(r *access.Request) error { r.State = access.StateActive; return nil }, nil},
		{"identity changed", func(r *access.Request) error { r.ID = "AR-1"; return nil }, nil},
		{"history dropped", func(r *access.Request) error { r.History = nil; return nil }, nil},
		{"entitlement changed", func(r *access.Request) error { r.Entitlement.Person = "U0MALLORY"; return nil }, nil},
		{"panic", func(r *access.Request) error { panic("oops") }, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.Update(t.Context(), r.ID, tc.fn)
			if err == nil || (tc.want != nil && !errors.Is(err, tc.want)) {
				t.Fatalf("Update: %v, want %v", err, tc.want)
			}
			got, err := s.Get(t.Context(), r.ID)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(r, got); diff != "" {
				t.Errorf("stored request changed (-before +after):\n%s", diff)
			}
			if recs := auditRecords(t, s); len(recs) != 1 {
				t.Errorf("%d audit records, want 1", len(recs))
			}
			due, err := s.Due(t.Context(), T0.Add(48*time.Hour), 0)
			if err != nil {
				t.Fatal(err)
			}
			if want := []access.Due{{ID: r.ID, At: r.RemindAt}}; !cmp.Equal(want, due) {
				t.Errorf("Due = %v, want %v", due, want)
			}
		})
	}
}

// testCASOneWinner: 40 callers on two replicas race for the same
// transition; the table lets exactly one win and the rest see ErrConflict
// (invariant 2: only the winner performs the effect).
func testCASOneWinner(t *testing.T, h Harness) {
	s, replica := open(t, h, Options{})
	r := mustCreate(t, s, NewRequest("U0ALICE01", "crm", "viewer", T0, "U0BOB0001"))
	const n = 40
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		st := []Store{s, replica}[i%2]
		wg.Go(func() {
			_, errs[i] = st.Update(t.Context(), r.ID, apply(access.Transition{Event: access.EventApproved, Actor: fmt.Sprintf("U%08d", i), At: T0}, nil))
		})
	}
	wg.Wait()
	wins, conflicts := 0, 0
	for _, err := range errs {
		switch {
		case err == nil:
			wins++
		case errors.Is(err, access.ErrConflict):
			conflicts++
		default:
			t.Errorf("Update: %v", err)
		}
	}
	if wins != 1 || conflicts != n-1 {
		t.Fatalf("wins %d conflicts %d; want 1 and %d", wins, conflicts, n-1)
	}
	got, err := s.Get(t.Context(), r.ID)
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

// testNoLostUpdate: many goroutines on two replicas each add a decision to
// the same request; every one is kept, each Update saw the one before it.
func testNoLostUpdate(t *testing.T, h Harness) {
	s, replica := open(t, h, Options{})
	r := mustCreate(t, s, NewRequest("U0ALICE01", "crm", "viewer", T0, "U0BOB0001"))
	const n = 48
	var wg sync.WaitGroup
	for i := range n {
		st := []Store{s, replica}[i%2]
		wg.Go(func() {
			_, err := st.Update(t.Context(), r.ID, func(r *access.Request) error {
				r.Decisions = append(r.Decisions, access.Decision{Actor: fmt.Sprintf("U%08d", i), Approve: true, At: T0})
				return access.Apply(r, access.Transition{Event: access.EventApprovalRecorded, Actor: fmt.Sprintf("U%08d", i), At: T0})
			})
			if err != nil {
				t.Errorf("Update %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	got, err := s.Get(t.Context(), r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Version != n+1 || len(got.Decisions) != n || len(got.History) != n+1 {
		t.Fatalf("version %d, %d decisions, %d history entries; want %d, %d, %d", got.Version, len(got.Decisions), len(got.History), n+1, n, n+1)
	}
	seen := map[string]bool{}
	for _, d := range got.Decisions {
		seen[d.Actor] = true
	}
	if len(seen) != n {
		t.Errorf("%d distinct decisions, want %d", len(seen), n)
	}
	if k, err := s.VerifyAudit(t.Context()); k != n+1 || err != nil {
		t.Errorf("VerifyAudit = %d, %v; want %d, nil", k, err, n+1)
	}
}

func testDeadlineIndex(t *testing.T, h Harness) {
	s, _ := open(t, h, Options{})
	ctx := t.Context()
	a := mustCreate(t, s, NewRequest("U0ALICE01", "crm", "viewer", T0, "U0BOB0001"))                     // remind T0+2h
	b := mustCreate(t, s, NewRequest("U0DAVE001", "crm", "viewer", T0.Add(-time.Hour), "U0BOB0001"))     // remind T0+1h
	c := mustCreate(t, s, NewRequest("U0ERIN001", "crm", "viewer", T0.Add(30*time.Minute), "U0BOB0001")) // remind T0+2h30
	d := mustCreate(t, s, NewRequest("U0FRED001", "crm", "viewer", T0, "U0BOB0001"))                     // remind T0+2h, after a by ID
	due := func(until time.Time, limit int) []access.Due {
		t.Helper()
		got, err := s.Due(ctx, until, limit)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	want := []access.Due{{ID: b.ID, At: T0.Add(time.Hour)}, {ID: a.ID, At: T0.Add(2 * time.Hour)}, {ID: d.ID, At: T0.Add(2 * time.Hour)}, {ID: c.ID, At: T0.Add(150 * time.Minute)}}
	if got := due(T0.Add(3*time.Hour), 0); !cmp.Equal(want, got) {
		t.Errorf("Due = %v, want %v", got, want)
	}
	if got := due(T0.Add(2*time.Hour), 0); !cmp.Equal(want[:3], got) {
		t.Errorf("Due(until = a's deadline) = %v, want %v (inclusive)", got, want[:3])
	}
	if got := due(T0.Add(3*time.Hour), 1); !cmp.Equal(want[:1], got) {
		t.Errorf("Due(limit 1) = %v, want %v", got, want[:1])
	}
	if got := due(T0, 0); len(got) != 0 {
		t.Errorf("Due(T0) = %v, want none", got)
	}
	// Nanosecond deadlines and deadlines before 1970 (overdue: indexed at
	// the epoch) keep their order.
	mustUpdate(t, s, d.ID, func(r *access.Request) error { r.RemindAt = T0.Add(time.Hour + 1); return nil })
	mustUpdate(t, s, c.ID, func(r *access.Request) error { r.RemindAt = time.Date(1960, 1, 1, 0, 0, 0, 0, time.UTC); return nil })
	want = []access.Due{{ID: c.ID, At: time.Unix(0, 0).UTC()}, {ID: b.ID, At: T0.Add(time.Hour)}, {ID: d.ID, At: T0.Add(time.Hour + 1)}}
	if got := due(T0.Add(time.Hour+1), 0); !cmp.Equal(want, got) {
		t.Errorf("Due after moves = %v, want %v", got, want)
	}

	// a: approved with no retry pending → no deadline; granted → warn, then
	// expiry; revoking with a retry → retry time; revoked → none.
	steps := []struct {
		name   string
		fn     func(r *access.Request) error
		wantAt time.Time // zero: not indexed
	}{
		{"approved", apply(access.Transition{Event: access.EventApproved, Actor: "U0BOB0001", At: T0}, nil), time.Time{}},
		{"granted", apply(access.Transition{Event: access.EventGranted, Actor: access.ActorBot, At: T0}, func(r *access.Request) {
			r.GrantedAt, r.ExpiresAt, r.WarnAt = T0, T0.Add(2*time.Hour), T0.Add(110*time.Minute)
		}), T0.Add(110 * time.Minute)},
		{"warned", apply(access.Transition{Event: access.EventWarned, Actor: access.ActorBot, At: T0}, func(r *access.Request) {
			r.WarnAt = time.Time{}
		}), T0.Add(2 * time.Hour)},
		{"expiring", apply(access.Transition{Event: access.EventExpiring, Actor: access.ActorBot, At: T0}, func(r *access.Request) {
			r.NextAttemptAt = T0.Add(2*time.Hour + time.Second)
		}), T0.Add(2*time.Hour + time.Second)},
		{"expired", apply(access.Transition{Event: access.EventExpired, Actor: access.ActorBot, At: T0}, nil), time.Time{}},
	}
	for _, st := range steps {
		mustUpdate(t, s, a.ID, st.fn)
		got := due(T0.Add(1000*time.Hour), 0)
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

func testDeadlinesScan(t *testing.T, h Harness) {
	if h.SmallChunks != nil {
		defer h.SmallChunks(7)()
	}
	s, replica := open(t, h, Options{})
	var want []access.Due
	var wg sync.WaitGroup
	var mu sync.Mutex
	for i := range 40 {
		st := []Store{s, replica}[i%2]
		wg.Go(func() {
			at := T0.Add(time.Duration((i*37)%40) * time.Minute)
			got := mustCreate(t, st, NewRequest(fmt.Sprintf("U%08d", i), "crm", "viewer", at.Add(-2*time.Hour), "U0BOB0001"))
			mu.Lock()
			want = append(want, access.Due{ID: got.ID, At: at})
			mu.Unlock()
		})
	}
	wg.Wait()
	slices.SortFunc(want, func(x, y access.Due) int { return x.At.Compare(y.At) })
	var got []access.Due
	if err := s.Deadlines(t.Context(), func(d access.Due) bool { got = append(got, d); return true }); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Deadlines (-want +got):\n%s", diff)
	}
	n := 0
	if err := s.Deadlines(t.Context(), func(access.Due) bool { n++; return n < 10 }); err != nil || n != 10 {
		t.Errorf("stopping scan: n %d err %v, want 10 nil", n, err)
	}
	// fn may call the store: it runs outside any transaction.
	first := got[0]
	err := s.Deadlines(t.Context(), func(d access.Due) bool {
		if d == first {
			mustUpdate(t, s, d.ID, apply(access.Transition{Event: access.EventCancelled, Actor: "x", At: T0}, nil))
		}
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	got = got[:0]
	if err := replica.Deadlines(t.Context(), func(d access.Due) bool { got = append(got, d); return true }); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want[1:], got); diff != "" {
		t.Errorf("Deadlines after a cancel (-want +got):\n%s", diff)
	}
}

func testList(t *testing.T, h Harness) {
	s, _ := open(t, h, Options{})
	ctx := t.Context()
	mk := func(requester, system, role string, approvers ...string) *access.Request {
		return mustCreate(t, s, NewRequest(requester, system, role, T0, approvers...))
	}
	a1 := mk("U0ALICE01", "crm", "viewer", "U0BOB0001")
	a2 := mk("U0ALICE01", "crm", "admin", "U0CAROL01")
	d1 := mk("U0DAVE001", "payroll", "viewer", "U0BOB0001", "U0CAROL01")
	a3 := mk("U0ALICE01", "crm", "viewer", "U0BOB0001") // same entitlement as a1
	a2 = mustUpdate(t, s, a2.ID, apply(access.Transition{Event: access.EventDenied, Actor: "U0CAROL01", At: T0}, nil))
	a1 = mustUpdate(t, s, a1.ID, apply(access.Transition{Event: access.EventApproved, Actor: "U0BOB0001", At: T0}, nil))
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
		{"approver with limit", access.Filter{Approver: "U0BOB0001", Limit: 1}, []*access.Request{a3}},
		{"approver and a state that is not pending", access.Filter{Approver: "U0BOB0001", States: []access.State{access.StateApproved}}, nil},
		{"approver of nothing pending", access.Filter{Approver: "U0NOBODY1"}, nil},
		{"system", access.Filter{System: "payroll"}, []*access.Request{d1}},
		{"system and requester", access.Filter{System: "crm", Requester: "U0DAVE001"}, nil},
		{"non-terminal states", access.Filter{States: []access.State{access.StateApproved}}, []*access.Request{a1}},
		{"terminal state", access.Filter{States: []access.State{access.StateDenied}}, []*access.Request{a2}},
		{"terminal and open states", access.Filter{States: []access.State{access.StateDenied, access.StateApproved}}, []*access.Request{a2, a1}},
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

func testAuditChain(t *testing.T, h Harness) {
	if h.SmallChunks != nil {
		defer h.SmallChunks(3)()
	}
	s, _ := open(t, h, Options{})
	ctx := t.Context()
	cfg, err := s.AppendAudit(ctx, audit.Record{Event: "config_loaded", Actor: access.ActorBot, Note: "sha256:abc"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Seq != 1 || !cfg.Time.Equal(T0) || cfg.PrevHash != audit.ZeroHash || cfg.Hash != cfg.ComputeHash() {
		t.Errorf("config record = %+v", cfg)
	}
	for i := range 5 {
		r := mustCreate(t, s, NewRequest(fmt.Sprintf("U%08d", i), "crm", "viewer", T0, "U0BOB0001"))
		mustUpdate(t, s, r.ID, apply(access.Transition{Event: access.EventDenied, Actor: "U0BOB0001", At: T0, Note: "no <ticket> & no reason \x00"}, nil))
	}
	if n, err := s.VerifyAudit(ctx); n != 11 || err != nil {
		t.Fatalf("VerifyAudit = %d, %v; want 11, nil", n, err)
	}
	recs := auditRecords(t, s)
	if diff := cmp.Diff(cfg, recs[0]); diff != "" {
		t.Errorf("first record differs from what AppendAudit returned (-returned +stored):\n%s", diff)
	}
	for i, r := range recs {
		if r.Seq != uint64(i+1) {
			t.Fatalf("record %d has seq %d", i, r.Seq)
		}
	}
	if recs[10].Note != "no <ticket> & no reason \x00" {
		t.Errorf("note stored as %q", recs[10].Note)
	}
	var after []audit.Record
	if err := s.AuditRecordsAfter(ctx, 4, func(r audit.Record) bool { after = append(after, r); return len(after) < 5 }); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(recs[4:9], after); diff != "" {
		t.Errorf("AuditRecordsAfter(4) stopped after 5 (-want +got):\n%s", diff)
	}
}

// testAuditConcurrent: writers on every replica append at once (creates,
// updates, records about no request); the chain stays one line with no
// gap and verifies.
func testAuditConcurrent(t *testing.T, h Harness) {
	s, replica := open(t, h, Options{})
	ctx := t.Context()
	const writers, each = 8, 6
	var wg sync.WaitGroup
	for w := range writers {
		st := []Store{s, replica}[w%2]
		wg.Go(func() {
			for i := range each {
				r, err := st.Create(ctx, NewRequest(fmt.Sprintf("U%04d%04d", w, i), "crm", "viewer", T0, "U0BOB0001"))
				if err != nil {
					t.Error(err)
					return
				}
				if _, err := st.Update(ctx, r.ID, apply(access.Transition{Event: access.EventCancelled, Actor: r.Requester, At: T0}, nil)); err != nil {
					t.Error(err)
				}
				if _, err := st.AppendAudit(ctx, audit.Record{Event: "digest_posted", Actor: access.ActorBot, Note: fmt.Sprint(w, i)}); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	want := writers * each * 3
	for name, st := range map[string]Store{"store": s, "replica": replica} {
		if n, err := st.VerifyAudit(ctx); n != want || err != nil {
			t.Errorf("%s: VerifyAudit = %d, %v; want %d, nil", name, n, err, want)
		}
	}
	// Each request's records are in its own order: requested, then cancelled.
	pos := map[string]int{}
	for _, r := range auditRecords(t, s) {
		if r.RequestID == "" {
			continue
		}
		switch r.Event {
		case "requested":
			pos[r.RequestID] = 1
		case "cancelled":
			if pos[r.RequestID] != 1 {
				t.Errorf("%s cancelled before requested in the chain", r.RequestID)
			}
		}
	}
}

func testRetention(t *testing.T, h Harness) {
	if h.SmallChunks != nil {
		defer h.SmallChunks(3)()
	}
	s, replica := open(t, h, Options{})
	ctx := t.Context()
	if _, err := s.AppendAudit(ctx, audit.Record{Event: "config_loaded", Actor: access.ActorBot, Note: "runbook sha256:abc"}); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		r := mustCreate(t, s, NewRequest(fmt.Sprintf("U%08d", i), "crm", "viewer", T0, "U0BOB0001"))
		mustUpdate(t, s, r.ID, apply(access.Transition{Event: access.EventDenied, Actor: "U0BOB0001", At: T0.Add(time.Minute), Note: "not for this ticket"}, nil))
	}
	recent := T0.Add(48 * time.Hour)
	for i := range 3 {
		mustCreate(t, s, NewRequest(fmt.Sprintf("U1%07d", i), "crm", "viewer", recent, "U0BOB0001"))
	}
	cutoff := T0.Add(24 * time.Hour)
	// Two replicas applying retention together redact each record once.
	var wg sync.WaitGroup
	counts := make([]int, 2)
	for i, st := range []Store{s, replica} {
		wg.Go(func() {
			n, err := st.ApplyRetention(ctx, cutoff)
			if err != nil {
				t.Error(err)
			}
			counts[i] = n
		})
	}
	wg.Wait()
	if n := counts[0] + counts[1]; n != 10 {
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
	// The requests themselves keep their text.
	if r, err := s.Get(ctx, "AR-1001"); err != nil || r.Reason != "customer ticket 4411" || r.History[1].Note != "not for this ticket" {
		t.Errorf("request after retention: %v, %+v", err, r)
	}
	if n, err := s.ApplyRetention(ctx, cutoff); n != 0 || err != nil {
		t.Errorf("second ApplyRetention = %d, %v; want 0, nil", n, err)
	}
	mustCreate(t, s, NewRequest("U0LATER01", "crm", "viewer", recent, "U0BOB0001"))
	if n, err := s.VerifyAudit(ctx); n != len(recs)+1 || err != nil {
		t.Fatalf("VerifyAudit after a new record = %d, %v", n, err)
	}
	if n, err := s.ApplyRetention(ctx, recent.Add(time.Second)); n != 4 || err != nil {
		t.Errorf("ApplyRetention(later) = %d, %v; want 4, nil", n, err)
	}
	empty, _ := open(t, h, Options{})
	if n, err := empty.ApplyRetention(ctx, T0); n != 0 || err != nil {
		t.Errorf("ApplyRetention on an empty store = %d, %v", n, err)
	}
}

func testKV(t *testing.T, h Harness) {
	s, replica := open(t, h, Options{})
	ctx := t.Context()
	if v, ok, err := s.KVGet(ctx, "zendesk", "AR-1001"); v != nil || ok || err != nil {
		t.Errorf("KVGet absent = %q, %v, %v", v, ok, err)
	}
	value := []byte{0, 1, 2, 0xff, 'x'}
	if err := s.KVPut(ctx, "zendesk", "AR-1001", value); err != nil {
		t.Fatal(err)
	}
	value[0] = 9 // the store keeps its own copy
	if err := s.KVPut(ctx, "looker", "AR-1001", []byte("other namespace")); err != nil {
		t.Fatal(err)
	}
	if err := s.KVPut(ctx, "zendesk", "empty", []byte{}); err != nil {
		t.Fatal(err)
	}
	if v, ok, err := replica.KVGet(ctx, "zendesk", "AR-1001"); !ok || err != nil || string(v) != "\x00\x01\x02\xffx" {
		t.Errorf("KVGet = %q, %v, %v", v, ok, err)
	}
	if v, ok, err := s.KVGet(ctx, "zendesk", "empty"); !ok || err != nil || len(v) != 0 {
		t.Errorf("KVGet empty value = %q, %v, %v; want \"\", true, nil", v, ok, err)
	}
	if err := replica.KVPut(ctx, "zendesk", "AR-1001", []byte("replaced")); err != nil {
		t.Fatal(err)
	}
	if v, _, _ := s.KVGet(ctx, "zendesk", "AR-1001"); string(v) != "replaced" {
		t.Errorf("after overwrite: %q", v)
	}
	type entry struct{ NS, Key, Value string }
	var all []entry
	if err := s.ExportKV(ctx, func(ns, key string, v []byte) bool { all = append(all, entry{ns, key, string(v)}); return true }); err != nil {
		t.Fatal(err)
	}
	sort.Slice(all, func(i, j int) bool { return all[i].NS+"\x00"+all[i].Key < all[j].NS+"\x00"+all[j].Key })
	want := []entry{{"looker", "AR-1001", "other namespace"}, {"zendesk", "AR-1001", "replaced"}, {"zendesk", "empty", ""}}
	if diff := cmp.Diff(want, all); diff != "" {
		t.Errorf("ExportKV (-want +got):\n%s", diff)
	}
	if err := s.KVDelete(ctx, "zendesk", "AR-1001"); err != nil {
		t.Fatal(err)
	}
	if err := s.KVDelete(ctx, "zendesk", "AR-1001"); err != nil {
		t.Errorf("deleting an absent key: %v", err)
	}
	if _, ok, _ := replica.KVGet(ctx, "zendesk", "AR-1001"); ok {
		t.Error("deleted key still there")
	}
	if _, ok, _ := s.KVGet(ctx, "looker", "AR-1001"); !ok {
		t.Error("delete crossed namespaces")
	}
}

// claimObserver counts what the store reports.
type claimObserver struct {
	mu                 sync.Mutex
	claimed, takenOver int
	ops                map[string]int
}

func (o *claimObserver) Claimed(_ string, claimed, takenOver int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.claimed += claimed
	o.takenOver += takenOver
}

func (o *claimObserver) Query(op string, _ time.Duration, _ error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.ops == nil {
		o.ops = map[string]int{}
	}
	o.ops[op]++
}

func ids(ds []access.Due) []string {
	out := []string{}
	for _, d := range ds {
		out = append(out, d.ID)
	}
	return out
}

func testClaims(t *testing.T, h Harness) {
	clock := NewClock(T0)
	obs := &claimObserver{}
	s, replica := open(t, h, Options{Clock: clock, Observer: obs})
	ctx := t.Context()
	var all []string
	for i := range 5 { // reminders at T0+2h+i min
		all = append(all, mustCreate(t, s, NewRequest(fmt.Sprintf("U%08d", i), "crm", "viewer", T0.Add(time.Duration(i)*time.Minute), "U0BOB0001")).ID)
	}
	due := T0.Add(3 * time.Hour)
	claim := func(st Store, owner string, limit int) []string {
		t.Helper()
		got, err := st.ClaimDue(ctx, owner, due, time.Minute, limit)
		if err != nil {
			t.Fatalf("ClaimDue(%s): %v", owner, err)
		}
		if !slices.IsSortedFunc(got, func(x, y access.Due) int { return x.At.Compare(y.At) }) {
			t.Errorf("ClaimDue not in deadline order: %v", got)
		}
		return ids(got)
	}
	if got := claim(s, "a", 2); !cmp.Equal(all[:2], got) {
		t.Errorf("a claims %v, want %v", got, all[:2])
	}
	if got := claim(replica, "b", 10); !cmp.Equal(all[2:], got) {
		t.Errorf("b claims %v, want %v (a's are held)", got, all[2:])
	}
	if got := claim(replica, "c", 10); len(got) != 0 {
		t.Errorf("c claims %v, want none", got)
	}
	// Not yet due: nothing.
	if got, err := s.ClaimDue(ctx, "d", T0, time.Minute, 10); err != nil || len(got) != 0 {
		t.Errorf("ClaimDue before anything is due = %v, %v", got, err)
	}
	// a asks again: its own claims come back, renewed.
	clock.Advance(50 * time.Second)
	if got := claim(s, "a", 10); !cmp.Equal(all[:2], got) {
		t.Errorf("a re-claims %v, want %v", got, all[:2])
	}
	// b's lease ends (60 s after T0); a's was renewed at T0+50s.
	clock.Advance(20 * time.Second)
	if got := claim(replica, "c", 10); !cmp.Equal(all[2:], got) {
		t.Errorf("c takes over %v, want %v", got, all[2:])
	}
	// Release: only the owner's claims end; unknown IDs are ignored.
	if err := s.Release(ctx, "b", all[2], "AR-9999"); err != nil {
		t.Fatal(err)
	}
	if got := claim(s, "d", 10); len(got) != 0 {
		t.Errorf("d claims %v after b released what c holds; want none", got)
	}
	if err := replica.Release(ctx, "a", all[0]); err != nil {
		t.Fatal(err)
	}
	if got := claim(s, "d", 10); !cmp.Equal(all[:1], got) {
		t.Errorf("d claims %v after a released %s", got, all[0])
	}
	if err := s.Release(ctx, "a"); err != nil {
		t.Errorf("Release of nothing: %v", err)
	}
	// A request whose deadline moved past until is no longer claimable,
	// and one with no deadline never is.
	mustUpdate(t, s, all[1], apply(access.Transition{Event: access.EventCancelled, Actor: "x", At: T0}, nil))
	clock.Advance(time.Hour)
	if got := claim(s, "e", 10); !cmp.Equal([]string{all[0], all[2], all[3], all[4]}, got) {
		t.Errorf("e claims %v after every lease ended", got)
	}
	obs.mu.Lock()
	defer obs.mu.Unlock()
	// Claimed: a 2, b 3, a 2 (renewal), c 3, d 1, e 4.
	if obs.claimed != 15 || obs.takenOver != 3+4 {
		t.Errorf("observer: %d claimed, %d taken over; want 15, 7", obs.claimed, obs.takenOver)
	}
	if obs.ops["claim_due"] == 0 {
		t.Errorf("observer saw no claim_due query: %v", obs.ops)
	}
}

// testClaimsConcurrent: owners on every replica claim at once, each doing
// what a runner does with its claims (the work moves the deadline: here it
// cancels the request) and releasing them, until no due work is left;
// every request is done once, and never held by two owners.
func testClaimsConcurrent(t *testing.T, h Harness) {
	clock := NewClock(T0)
	s, replica := open(t, h, Options{Clock: clock})
	ctx := t.Context()
	const n = 120
	for i := range n {
		mustCreate(t, s, NewRequest(fmt.Sprintf("U%08d", i), "crm", "viewer", T0, "U0BOB0001"))
	}
	var mu sync.Mutex
	doneBy := map[string]string{}
	var wg sync.WaitGroup
	for w := range 6 {
		st := []Store{s, replica}[w%2]
		name := fmt.Sprintf("owner-%d", w)
		wg.Go(func() {
			for {
				got, err := st.ClaimDue(ctx, name, T0.Add(3*time.Hour), time.Hour, 7)
				if err != nil {
					t.Error(err)
					return
				}
				if len(got) == 0 {
					return
				}
				for _, d := range got {
					_, err := st.Update(ctx, d.ID, apply(access.Transition{Event: access.EventCancelled, Actor: name, At: T0}, nil))
					if err != nil {
						mu.Lock()
						t.Errorf("%s: %s was already done by %s: %v", name, d.ID, doneBy[d.ID], err)
						mu.Unlock()
						continue
					}
					mu.Lock()
					doneBy[d.ID] = name
					mu.Unlock()
				}
				if err := st.Release(ctx, name, ids(got)...); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if len(doneBy) != n {
		t.Errorf("%d of %d requests done", len(doneBy), n)
	}
}

func testLock(t *testing.T, h Harness) {
	s, replica := open(t, h, Options{})
	ctx := t.Context()
	var mu sync.Mutex
	inside := 0
	var wg sync.WaitGroup
	for i := range 16 {
		st := []Store{s, replica}[i%2]
		wg.Go(func() {
			unlock, err := st.Lock(ctx, "okta|00g1viewer|U0ALICE01")
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			inside++
			if inside != 1 {
				t.Errorf("%d holders at once", inside)
			}
			mu.Unlock()
			// Work under the lock, through the store (another connection
			// for the PostgreSQL store: locks must not starve queries).
			if err := st.Ping(ctx); err != nil {
				t.Error(err)
			}
			mu.Lock()
			inside--
			mu.Unlock()
			unlock()
			unlock() // idempotent
		})
	}
	wg.Wait()

	// Another key is free while one is held.
	unlockA, err := s.Lock(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	unlockB, err := replica.Lock(ctx, "b")
	if err != nil {
		t.Fatal(err)
	}
	unlockB()
	// A waiter whose context ends gives up and holds nothing.
	for _, st := range []Store{s, replica} {
		wctx, cancel := context.WithCancel(ctx)
		got := make(chan error, 1)
		go func() {
			u, err := st.Lock(wctx, "a")
			if u != nil {
				u()
			}
			got <- err
		}()
		if err := st.Ping(ctx); err != nil { // let the waiter start waiting
			t.Error(err)
		}
		cancel()
		if err := <-got; !errors.Is(err, context.Canceled) {
			t.Errorf("Lock of a held key with a cancelled context: %v, want context.Canceled", err)
		}
	}
	// Once released, the key is free at once, from any replica.
	acquired := make(chan struct{})
	go func() {
		u, err := replica.Lock(ctx, "a")
		if err != nil {
			t.Error(err)
		} else {
			u()
		}
		close(acquired)
	}()
	unlockA()
	<-acquired
	for i := range 3 * lockPoolBound {
		u, err := s.Lock(ctx, fmt.Sprint("key-", i))
		if err != nil {
			t.Fatal(err)
		}
		u()
	}
}

// lockPoolBound is at least the lock pool of the stores under test (the
// PostgreSQL tests use 3 connections): testLock takes and releases three
// times as many locks in turn, so a lock that leaked its connection would
// hang there.
const lockPoolBound = 8

func testExport(t *testing.T, h Harness) {
	if h.SmallChunks != nil {
		defer h.SmallChunks(3)()
	}
	s, replica := open(t, h, Options{})
	ctx := t.Context()
	id, err := s.InstallationID(ctx)
	if err != nil || len(id) < 16 {
		t.Fatalf("InstallationID = %q, %v", id, err)
	}
	if again, err := replica.InstallationID(ctx); again != id || err != nil {
		t.Errorf("InstallationID again = %q, %v; want %q", again, err, id)
	}
	other, _ := open(t, h, Options{})
	if oid, _ := other.InstallationID(ctx); oid == id {
		t.Errorf("two stores share installation ID %s", id)
	}
	var want []*access.Request
	for i := range 10 {
		r := mustCreate(t, s, NewRequest(fmt.Sprintf("U%08d", i), "crm", "viewer", T0, "U0BOB0001"))
		if i%3 == 0 {
			r = mustUpdate(t, s, r.ID, apply(access.Transition{Event: access.EventDenied, Actor: "U0BOB0001", At: T0}, nil))
		}
		want = append(want, r)
	}
	var got []*access.Request
	if err := replica.ExportRequests(ctx, func(r *access.Request) bool { got = append(got, r); return true }); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ExportRequests (-want +got):\n%s", diff)
	}
	n := 0
	if err := s.ExportRequests(ctx, func(*access.Request) bool { n++; return n < 4 }); err != nil || n != 4 {
		t.Errorf("stopping export: n %d, %v", n, err)
	}
	if recs := auditRecords(t, s); len(recs) != 14 {
		t.Errorf("%d audit records exported, want 14", len(recs))
	}
}

func testPingClose(t *testing.T, h Harness) {
	s, _ := open(t, h, Options{})
	ctx := t.Context()
	if err := s.Ping(ctx); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	r := mustCreate(t, s, NewRequest("U0ALICE01", "crm", "viewer", T0, "U0BOB0001"))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err == nil {
		t.Error("second Close: no error")
	}
	if err := s.Ping(ctx); err == nil {
		t.Error("Ping after Close: no error")
	}
	if _, err := s.Get(ctx, r.ID); err == nil || errors.Is(err, access.ErrNotFound) {
		t.Errorf("Get after Close: %v, want a closed error", err)
	}
	if _, err := s.ClaimDue(ctx, "a", T0.Add(time.Hour), time.Minute, 1); err == nil {
		t.Error("ClaimDue after Close: no error")
	}
	if _, err := s.Lock(ctx, "k"); err == nil {
		t.Error("Lock after Close: no error")
	}
}
