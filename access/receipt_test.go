package access

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// The grant's receipt and the identity it used are stored with the
// transition to active; the revoke gets both back and never re-resolves
// the person: an email changed since the grant rides along as
// CurrentEmail (invariant 8).
func TestRevokeActsOnTheReceipt(t *testing.T) {
	h := newHarness(t)
	h.conn.ReceiptFunc = func(g Grant) Receipt {
		return Receipt{UserID: "00u-alice", Data: []byte(`{"membership":"m1"}`), Note: "membership created"}
	}
	r := h.activeViewer()
	if r.Receipt == nil || r.Receipt.UserID != "00u-alice" || string(r.Receipt.Data) != `{"membership":"m1"}` {
		t.Fatalf("stored receipt %+v", r.Receipt)
	}
	if r.GrantedTo == nil || r.GrantedTo.Email != "alice@example.com" {
		t.Fatalf("stored identity %+v", r.GrantedTo)
	}
	if note := r.Last().Note; note != "membership created" {
		t.Errorf("granted history note %q, want the receipt's note", note)
	}
	// Alice's email changes (a marriage, a domain move).
	h.dir.mu.Lock()
	h.dir.people[alice] = Person{SlackID: alice, Email: "alice.new@example.org", Name: "Alice"}
	h.dir.mu.Unlock()
	h.advance(2 * time.Hour)
	h.wantState(r.ID, StateExpired)
	g := h.conn.lastRevoke
	if g.Receipt == nil || g.Receipt.UserID != "00u-alice" {
		t.Fatalf("revoke got receipt %+v, want the grant's", g.Receipt)
	}
	want := Person{SlackID: alice, Email: "alice@example.com", Name: "Alice", CurrentEmail: "alice.new@example.org"}
	if diff := cmp.Diff(want, g.User); diff != "" {
		t.Errorf("revoke's person (-want +got):\n%s", diff)
	}
	if g.Rollback {
		t.Error("an expiry is not a rollback")
	}
}

// Access the person held before the grant is left in place at its end:
// the target is not called, requester and owners are told it stays, and
// the history (so the audit log) says so.
func TestPreExistingAccessIsKept(t *testing.T) {
	h := newHarness(t)
	h.conn.ReceiptFunc = func(g Grant) Receipt { return Receipt{UserID: "00u-eve", PreExisting: true} }
	r := h.submit(SubmitInput{Requester: eve, System: "crm", Role: "auto", Duration: time.Hour})
	if r.State != StateActive || !r.Receipt.PreExisting {
		t.Fatalf("granted: %s %+v", r.State, r.Receipt)
	}
	h.advance(time.Hour)
	got := h.wantState(r.ID, StateExpired)
	if _, rv := h.conn.counts(); rv != 0 {
		t.Errorf("%d revokes of access held before the grant", rv)
	}
	if !strings.Contains(got.Last().Note, "held before the grant") {
		t.Errorf("history note %q", got.Last().Note)
	}
	if k := h.notes.kindsFor(r.ID, eve); !slices.Contains(k, NoticeAccessKept) || slices.Contains(k, NoticeRemoved) {
		t.Errorf("requester told %v, want access_kept and never removed", k)
	}
	if k := h.notes.kindsFor(r.ID, "C0CRMOWN1"); !slices.Equal(k, []NoticeKind{NoticeAccessKept}) {
		t.Errorf("owners told %v", k)
	}
}

// A grant made while another active grant of the same entitlement exists
// finds the access present because of our own grant: it inherits the
// first grant's "not pre-existing", so the last to end removes it.
func TestOverlapDoesNotMakeAccessPreExisting(t *testing.T) {
	h := newHarness(t)
	first := h.submit(SubmitInput{Requester: eve, System: "crm", Role: "auto", Duration: time.Hour})
	h.conn.ReceiptFunc = func(g Grant) Receipt { return Receipt{UserID: "00u-eve", PreExisting: true} }
	second := h.submit(SubmitInput{Requester: eve, System: "crm", Role: "auto2", Duration: 2 * time.Hour})
	if second.Receipt == nil || second.Receipt.PreExisting {
		t.Fatalf("second receipt %+v: pre-existing only because of our first grant", second.Receipt)
	}
	h.advance(time.Hour)
	h.wantState(first.ID, StateExpired)
	h.advance(time.Hour)
	h.wantState(second.ID, StateExpired)
	if _, rv := h.conn.counts(); rv != 1 || h.conn.hasAccess(eve, autoParams) {
		t.Errorf("%d revokes; access left %v", rv, h.conn.hasAccess(eve, autoParams))
	}
}

// A grant whose second call fails for good after the first changed
// something is rolled back with the partial receipt before it is
// grant_failed; owners are told (invariant 9).
func TestHalfAppliedGrantIsRolledBack(t *testing.T) {
	h := newHarness(t)
	h.conn.ReceiptFunc = func(g Grant) Receipt {
		return Receipt{UserID: "00u-eve", Previous: "agent", Data: []byte(`{"applied":["role"]}`)}
	}
	h.conn.setGrant(func(Grant) error { return PermanentError(errors.New("group 42: 403")) })
	var rollback Grant
	h.conn.setRevoke(func(g Grant) error {
		rollback = g
		return RetryableError(errors.New("timeout"), 0) // the first undo fails
	})
	r := h.submit(SubmitInput{Requester: eve, System: "crm", Role: "auto"})
	got := h.wantState(r.ID, StateRevoking)
	if got.RemovalCause() != EventRollingBack || got.Receipt == nil || got.Receipt.Previous != "agent" {
		t.Fatalf("after the failed grant: cause %s receipt %+v", got.RemovalCause(), got.Receipt)
	}
	if !rollback.Rollback || rollback.Receipt == nil || string(rollback.Receipt.Data) != `{"applied":["role"]}` {
		t.Fatalf("rollback revoke %+v", rollback)
	}
	if k := h.notes.kindsFor(r.ID, eve); slices.Contains(k, NoticeGrantFailed) {
		t.Error("told grant_failed while something of the grant may be left")
	}
	h.conn.setRevoke(nil)
	h.advance(5 * time.Second)
	got = h.wantState(r.ID, StateGrantFailed)
	if evs := events(got); evs[len(evs)-1] != EventGrantFailed || !slices.Contains(evs, EventRollingBack) {
		t.Errorf("history %v", evs)
	}
	if k := h.notes.kindsFor(r.ID, "C0CRMOWN1"); !slices.Equal(k, []NoticeKind{NoticeGrantFailed, NoticeRolledBack}) {
		t.Errorf("owners told %v, want grant_failed and rolled_back", k)
	}
	if k := h.notes.kindsFor(r.ID, eve); !slices.Contains(k, NoticeGrantFailed) {
		t.Errorf("requester told %v", k)
	}
}

// A grant failing for good that found the access already there leaves it
// alone: there is nothing of ours to undo.
func TestFailedGrantOfPreExistingAccessIsNotRolledBack(t *testing.T) {
	h := newHarness(t)
	h.conn.ReceiptFunc = func(g Grant) Receipt { return Receipt{UserID: "00u-eve", PreExisting: true} }
	h.conn.setGrant(func(Grant) error { return PermanentError(errors.New("expiry backstop refused")) })
	r := h.submit(SubmitInput{Requester: eve, System: "crm", Role: "auto"})
	h.wantState(r.ID, StateGrantFailed)
	if _, rv := h.conn.counts(); rv != 0 {
		t.Errorf("%d revokes of access held before the grant", rv)
	}
}

// A record granted before receipts existed is revoked by lookup; a target
// that knows nobody by that email is a permanent failure reported to the
// owners, never "removed" (invariant 8).
func TestLegacyRevokeOfUnknownPersonIsNeverDone(t *testing.T) {
	h := newHarness(t)
	r := h.submit(SubmitInput{Requester: eve, System: "crm", Role: "auto", Duration: time.Hour})
	// Make it a legacy record: no receipt, no identity.
	if _, err := h.store.Update(h.ctx, r.ID, func(r *Request) error {
		r.Receipt, r.GrantedTo = nil, nil
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	h.conn.setRevoke(func(g Grant) error {
		if g.Receipt != nil {
			t.Errorf("legacy revoke got a receipt %+v", g.Receipt)
		}
		return PermanentError(errors.Join(ErrUnknownUser, errors.New("okta: no user eve@example.com")))
	})
	h.advance(time.Hour)
	got := h.wantState(r.ID, StateRevoking)
	if !got.Alerted || got.Attempts != 1 {
		t.Errorf("alerted %v attempts %d", got.Alerted, got.Attempts)
	}
	if k := h.notes.kindsFor(r.ID, "C0CRMOWN1"); !slices.Equal(k, []NoticeKind{NoticeRevokeFailing}) {
		t.Errorf("owners told %v", k)
	}
	if k := h.notes.kindsFor(r.ID, eve); slices.Contains(k, NoticeRemoved) {
		t.Error("requester told removed")
	}
}
