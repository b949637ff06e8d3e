// Package conformance is the behaviour every access.Connector must show,
// as one test suite each connector package runs against its own target
// (a fake, an httptest server, or a sandbox):
//
//	func TestConformance(t *testing.T) {
//		conformance.Run(t, conformance.Harness{New: ..., Grant: ..., HasAccess: ...})
//	}
//
// The contract it checks is access.Connector's (DESIGN.md §4 invariants 4,
// 8 and 9): Grant and Revoke are idempotent and keyed by Grant.ID;
// granting access the person has, and revoking access they lack, return
// nil; Grant returns a receipt naming the target-side user, and Revoke
// acts on that receipt, never re-resolving the person by email; access
// that existed before the grant is reported as such; a grant that fails
// half-way returns its partial receipt, which a rollback Revoke undoes;
// a revoke without a receipt (a legacy record) whose email the target
// does not know is a permanent failure wrapping access.ErrUnknownUser,
// never "already removed"; failures are classified with
// access.RetryableError / access.PermanentError.
//
// Cases that need a notion some connectors lack (a target-side user ID, a
// rename at the target, a two-call grant) depend on an optional Harness
// hook and are skipped, with the reason, when it is not set.
package conformance

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/accessbot/accessbot/access"
)

// Harness adapts one connector and its target to the suite.
//
// Run calls New at the start of every subtest, one subtest at a time; New
// must return a connector whose target does not yet give Grant(t) access
// (typically a fresh fake per call). HasAccess and FailNext act on the
// target behind the connector New returned most recently.
type Harness struct {
	// New returns the connector under test. Required.
	New func(t *testing.T) access.Connector
	// Grant returns a valid grant for a person the target knows. Required.
	Grant func(t *testing.T) access.Grant
	// HasAccess asks the target itself (not the connector) whether g's
	// person has g's access. It must identify the person the way the
	// target does (by its own user ID), not by g.User.Email, which the
	// suite changes in some cases. Required.
	HasAccess func(t *testing.T, g access.Grant) bool
	// UnknownUser returns a grant for a person the target does not know.
	// Optional: the unknown-user subtests are skipped without it.
	UnknownUser func(t *testing.T) access.Grant
	// TargetUserID returns the target's own ID of g's person, which every
	// receipt of a grant to them must carry in Receipt.UserID. Setting it
	// declares that the connector resolves people to target-side users,
	// and so also enables the checks that revokes act on the receipt and
	// that lookups by email that find nobody wrap access.ErrUnknownUser.
	// Optional: connectors with no target-side identity (webhook, manual)
	// leave it nil and those cases are skipped.
	TargetUserID func(t *testing.T, g access.Grant) string
	// ChangeEmail renames g's person at the target: afterwards the target
	// knows them by the returned new email only, with their ID, access and
	// everything else unchanged. Optional.
	ChangeEmail func(t *testing.T, g access.Grant) (newEmail string)
	// PreGrant gives g's person g's access directly at the target, as an
	// administrator would have before accessbot was asked. Optional.
	PreGrant func(t *testing.T, g access.Grant)
	// DeleteUser deletes g's person at the target (their account, and with
	// it their access, is gone). Optional.
	DeleteUser func(t *testing.T, g access.Grant)
	// FailSecondCall makes the target refuse, permanently, the second of
	// the two changes the next Grant makes (a connector whose grant is two
	// calls, e.g. a membership then its expiry), once. Optional: one-call
	// connectors leave it nil.
	FailSecondCall func(t *testing.T)
	// FailNext makes the target fail the next operation with this HTTP
	// status (or its equivalent), once. An HTTP connector's harness
	// typically disables the inner retry loop (HTTPOptions{RetryMax: -1})
	// so that one injected failure is one failed operation. Optional: the
	// fault subtests are skipped without it.
	FailNext func(t *testing.T, status int)
}

// prompt is how long a call with a cancelled context may take.
const prompt = 5 * time.Second

// Run runs the suite.
func Run(t *testing.T, h Harness) {
	t.Helper()
	if h.New == nil || h.Grant == nil || h.HasAccess == nil {
		t.Fatal("conformance: Harness.New, Grant and HasAccess are required")
	}
	ctx := t.Context()
	// grant applies g and checks the receipt's general rules.
	grant := func(t *testing.T, c access.Connector, g access.Grant) access.Receipt {
		t.Helper()
		r, err := c.Grant(ctx, g)
		if err != nil {
			t.Fatalf("Grant(%s): %v", g.ID, describe(err))
		}
		h.checkReceipt(t, g, r)
		return r
	}
	// revoked revokes g and checks at the target that g's access is gone
	// (use it for a g that names the person as the target knows them);
	// after names the step in the failure ("after Revoke").
	revoked := func(t *testing.T, c access.Connector, g access.Grant, after string) {
		t.Helper()
		mustRevoke(t, ctx, c, g)
		h.wantAccess(t, g, false, after)
	}

	t.Run("GrantApplies", func(t *testing.T) {
		c, g := h.New(t), h.Grant(t)
		r := grant(t, c, g)
		h.wantAccess(t, g, true, "after Grant")
		if r.PreExisting {
			t.Fatal("Grant of access the person did not have returned PreExisting")
		}
	})

	t.Run("GrantTwiceIsIdempotent", func(t *testing.T) {
		c, g := h.New(t), h.Grant(t)
		r1 := grant(t, c, g)
		// The repeat of one grant (same ID, e.g. after an answer was
		// lost) is the same grant: the membership it finds is its own,
		// not pre-existing access the revoke would have to leave.
		r2 := grant(t, c, g)
		h.wantAccess(t, g, true, "after granting twice")
		if r2.PreExisting || r2.UserID != r1.UserID {
			t.Fatalf("the repeated Grant's receipt %+v differs from the first's %+v", r2, r1)
		}
	})

	t.Run("RevokeRemoves", func(t *testing.T) {
		c, g := h.New(t), h.Grant(t)
		revoked(t, c, withReceipt(g, grant(t, c, g)), "after Revoke")
	})

	t.Run("LegacyRevokeRemoves", func(t *testing.T) {
		// A record granted before receipts existed: the revoke has no
		// receipt and may find the person by email.
		c, g := h.New(t), h.Grant(t)
		grant(t, c, g)
		revoked(t, c, g, "after a Revoke without receipt")
	})

	t.Run("RevokeAbsentSucceeds", func(t *testing.T) {
		c, g := h.New(t), h.Grant(t)
		revoked(t, c, g, "after revoking absent access")
	})

	t.Run("RevokeTwiceSucceeds", func(t *testing.T) {
		c, g := h.New(t), h.Grant(t)
		g = withReceipt(g, grant(t, c, g))
		mustRevoke(t, ctx, c, g)
		revoked(t, c, g, "after revoking twice")
	})

	t.Run("RevokeUsesReceipt", func(t *testing.T) {
		skipUnless(t, h.TargetUserID != nil, "Harness.TargetUserID not set: the connector records no target-side user ID")
		c, g := h.New(t), h.Grant(t)
		// The revoke must act on the receipt alone: an email the target
		// has never heard of must not matter.
		rg := withReceipt(g, grant(t, c, g))
		rg.User.Email = "not-" + g.ID + "@unknown.invalid"
		rg.User.CurrentEmail = rg.User.Email
		mustRevoke(t, ctx, c, rg)
		h.wantAccess(t, g, false, "after a Revoke with the receipt (and an unknown email)")
	})

	t.Run("EmailChangedAfterGrant", func(t *testing.T) {
		skipUnless(t, h.ChangeEmail != nil, "Harness.ChangeEmail not set")
		c, g := h.New(t), h.Grant(t)
		r := grant(t, c, g)
		newEmail := h.ChangeEmail(t, g)
		h.wantAccess(t, g, true, "after ChangeEmail (it must only rename the person)")
		// A legacy revoke looks the old email up: it must remove the
		// access or fail permanently with ErrUnknownUser, never report
		// success while the access stays.
		if err := c.Revoke(ctx, g); err != nil {
			wantUnknownUser(t, "Revoke without receipt after a rename", err)
		} else {
			h.wantAccess(t, g, false, "after a Revoke without receipt after a rename returned nil")
		}
		rg := withReceipt(g, r)
		rg.User.CurrentEmail = newEmail
		mustRevoke(t, ctx, c, rg)
		h.wantAccess(t, g, false, "after a Revoke with the receipt of a renamed person")
	})

	t.Run("PreExistingAccessIsReported", func(t *testing.T) {
		skipUnless(t, h.PreGrant != nil, "Harness.PreGrant not set")
		c, g := h.New(t), h.Grant(t)
		h.PreGrant(t, g)
		for i := range 2 { // the repeat must not turn it into ours
			r := grant(t, c, g)
			if !r.PreExisting {
				t.Fatalf("Grant #%d of access the person already had: receipt %+v, want PreExisting", i+1, r)
			}
		}
		// The lifecycle never revokes pre-existing access; the grant must
		// not have disturbed it either.
		h.wantAccess(t, g, true, "after a Grant of pre-existing access")
	})

	t.Run("SecondCallFailsPermanently", func(t *testing.T) {
		skipUnless(t, h.FailSecondCall != nil, "Harness.FailSecondCall not set: the connector's grant is one change")
		c, g := h.New(t), h.Grant(t)
		h.FailSecondCall(t)
		r, err := c.Grant(ctx, g)
		wantClass(t, "Grant whose second change was refused", err, access.Permanent)
		if !r.Changed() {
			t.Fatalf("Grant failed after its first change but returned no partial receipt (%+v)", r)
		}
		h.checkReceipt(t, g, r)
		rb := withReceipt(g, r)
		rb.Rollback = true
		revoked(t, c, rb, "after the rollback Revoke")
	})

	t.Run("RevokeOfDeletedUser", func(t *testing.T) {
		skipUnless(t, h.DeleteUser != nil, "Harness.DeleteUser not set")
		c, g := h.New(t), h.Grant(t)
		r := grant(t, c, g)
		h.DeleteUser(t, g)
		// The receipt's user is gone, and with it their access.
		revoked(t, c, withReceipt(g, r), "after the Revoke of a deleted user")
	})

	t.Run("CancelledContext", func(t *testing.T) {
		c, g := h.New(t), h.Grant(t)
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		start := time.Now()
		_, err := c.Grant(cctx, g)
		if took := time.Since(start); took > prompt {
			t.Errorf("Grant with a cancelled context took %v", took)
		}
		if err == nil {
			t.Error("Grant with a cancelled context returned nil")
		} else if class, _ := access.Classify(err); class != access.Retryable {
			t.Errorf("Grant with a cancelled context: class %v, want retryable: %v", class, err)
		}
		// Whatever happened, the operation must still be repeatable.
		g = withReceipt(g, grant(t, c, g))
		h.wantAccess(t, g, true, "after a Grant that followed a cancelled Grant")
		start = time.Now()
		if err := c.Revoke(cctx, g); err == nil {
			t.Error("Revoke with a cancelled context returned nil")
		}
		if took := time.Since(start); took > prompt {
			t.Errorf("Revoke with a cancelled context took %v", took)
		}
		revoked(t, c, g, "after a Revoke that followed a cancelled Revoke")
	})

	t.Run("UnknownUserIsPermanent", func(t *testing.T) {
		skipUnless(t, h.UnknownUser != nil, "Harness.UnknownUser not set")
		c, g := h.New(t), h.UnknownUser(t)
		_, err := c.Grant(ctx, g)
		wantClass(t, "Grant for an unknown person", err, access.Permanent)
		if h.TargetUserID != nil && !errors.Is(err, access.ErrUnknownUser) {
			t.Errorf("Grant for an unknown person: error does not wrap access.ErrUnknownUser: %v", err)
		}
		msg := err.Error()
		u := g.User
		if !(u.SlackID != "" && strings.Contains(msg, u.SlackID) ||
			u.Email != "" && strings.Contains(msg, u.Email) ||
			u.Name != "" && strings.Contains(msg, u.Name)) {
			t.Errorf("error for an unknown person does not name them (%s, %s, %s): %v", u.SlackID, u.Email, u.Name, err)
		}
	})

	t.Run("LegacyRevokeOfUnknownEmailIsPermanent", func(t *testing.T) {
		skipUnless(t, h.UnknownUser != nil, "Harness.UnknownUser not set")
		skipUnless(t, h.TargetUserID != nil, "Harness.TargetUserID not set: the connector does not resolve people by email")
		// No receipt and nobody with that email: the person may have been
		// renamed while the access lives on, so this is never "removed".
		c, g := h.New(t), h.UnknownUser(t)
		wantUnknownUser(t, "Revoke without receipt for an email the target does not know", c.Revoke(ctx, g))
	})

	faults := []struct {
		name   string
		status int
		want   access.ErrorClass
	}{
		{"Injected503IsRetryable", http.StatusServiceUnavailable, access.Retryable},
		{"Injected429IsRetryable", http.StatusTooManyRequests, access.Retryable},
		{"Injected403IsPermanent", http.StatusForbidden, access.Permanent},
	}
	for _, f := range faults {
		t.Run(f.name, func(t *testing.T) {
			skipUnless(t, h.FailNext != nil, "Harness.FailNext not set")
			c, g := h.New(t), h.Grant(t)
			h.FailNext(t, f.status)
			_, err := c.Grant(ctx, g)
			wantClass(t, fmt.Sprintf("Grant with an injected %d", f.status), err, f.want)
			// The fault was one operation: trying again works.
			g = withReceipt(g, grant(t, c, g))
			h.wantAccess(t, g, true, "after a Grant that followed an injected failure")
			h.FailNext(t, f.status)
			wantClass(t, fmt.Sprintf("Revoke with an injected %d", f.status), c.Revoke(ctx, g), f.want)
			revoked(t, c, g, "after a Revoke that followed an injected failure")
		})
	}

	t.Run("CheckerAgrees", func(t *testing.T) {
		c, g := h.New(t), h.Grant(t)
		ch, ok := c.(access.Checker)
		skipUnless(t, ok, "connector does not implement access.Checker")
		agree := func(when string) {
			t.Helper()
			got, err := ch.Check(ctx, g)
			if err != nil {
				t.Fatalf("Check %s: %v", when, err)
			}
			if want := h.HasAccess(t, g); got != want {
				t.Fatalf("Check %s = %v, target says %v", when, got, want)
			}
		}
		agree("before Grant")
		g = withReceipt(g, grant(t, c, g))
		agree("after Grant")
		mustRevoke(t, ctx, c, g)
		agree("after Revoke")
	})
}

// wantAccess checks at the target whether g's person has g's access;
// after names the step that should have left it so ("after Grant").
func (h Harness) wantAccess(t *testing.T, g access.Grant, want bool, after string) {
	t.Helper()
	if got := h.HasAccess(t, g); got != want {
		if want {
			t.Fatalf("%s, the target does not give access", after)
		}
		t.Fatalf("%s, the target still gives access", after)
	}
}

// skipUnless skips the subtest, saying why, unless cond holds (the
// harness hook or connector capability the case needs).
func skipUnless(t *testing.T, cond bool, why string) {
	t.Helper()
	if !cond {
		t.Skip(why)
	}
}

// wantClass fails unless err is an error of class want; what names the
// call ("Grant with an injected 503").
func wantClass(t *testing.T, what string, err error, want access.ErrorClass) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s returned nil", what)
	}
	if class, _ := access.Classify(err); class != want {
		t.Fatalf("%s: %s, want %v", what, describe(err), want)
	}
}

// wantUnknownUser fails unless err is a permanent error wrapping
// access.ErrUnknownUser: what a lookup by email that finds nobody must
// give, never "done".
func wantUnknownUser(t *testing.T, what string, err error) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s returned nil", what)
	}
	if class, _ := access.Classify(err); class != access.Permanent || !errors.Is(err, access.ErrUnknownUser) {
		t.Fatalf("%s: %s, want a permanent error wrapping access.ErrUnknownUser", what, describe(err))
	}
}

// checkReceipt checks the rules every receipt follows (access.Receipt):
// Data within MaxReceiptBytes and JSON, a Note without the person's email
// or a URL, and the target-side user ID when the harness knows it.
func (h Harness) checkReceipt(t *testing.T, g access.Grant, r access.Receipt) {
	t.Helper()
	if len(r.Data) > access.MaxReceiptBytes {
		t.Errorf("receipt Data is %d bytes, more than access.MaxReceiptBytes (%d)", len(r.Data), access.MaxReceiptBytes)
	}
	if len(r.Data) > 0 && !json.Valid(r.Data) {
		t.Errorf("receipt Data is not JSON: %q", r.Data)
	}
	if g.User.Email != "" && strings.Contains(strings.ToLower(r.Note), strings.ToLower(g.User.Email)) || strings.Contains(r.Note, "://") {
		t.Errorf("receipt Note %q holds an email address or a URL", r.Note)
	}
	if h.TargetUserID != nil {
		if want := h.TargetUserID(t, g); r.UserID != want {
			t.Errorf("receipt UserID = %q, want the target's ID of the person, %q", r.UserID, want)
		}
	}
}

// withReceipt returns g as the lifecycle hands it to Revoke after a Grant
// that returned r.
func withReceipt(g access.Grant, r access.Receipt) access.Grant {
	g.Receipt = &r
	return g
}

func mustRevoke(t *testing.T, ctx context.Context, c access.Connector, g access.Grant) {
	t.Helper()
	if err := c.Revoke(ctx, g); err != nil {
		t.Fatalf("Revoke(%s): %v", g.ID, describe(err))
	}
}

func describe(err error) string {
	class, ra := access.Classify(err)
	var ce *access.ConnectorError
	if !errors.As(err, &ce) {
		return err.Error() + " (unclassified)"
	}
	s := err.Error() + " (" + class.String()
	if ra > 0 {
		s += ", retry after " + ra.String()
	}
	return s + ")"
}
