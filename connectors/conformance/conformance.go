// Package conformance is the behaviour every access.Connector must show,
// as one test suite each connector package runs against its own target
// (a fake, an httptest server, or a sandbox):
//
//	func TestConformance(t *testing.T) {
//		conformance.Run(t, conformance.Harness{New: ..., Grant: ..., HasAccess: ...})
//	}
//
// The contract it checks is access.Connector's: Grant and Revoke are
// idempotent and keyed by Grant.ID; granting access the person has, and
// revoking access they lack, return nil; failures are classified with
// access.RetryableError / access.PermanentError (DESIGN.md §4, §6).
package conformance

import (
	"context"
	"errors"
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
	// person has g's access. Required.
	HasAccess func(t *testing.T, g access.Grant) bool
	// UnknownUser returns a grant for a person the target does not know.
	// Optional: the unknown-user subtest is skipped without it.
	UnknownUser func(t *testing.T) access.Grant
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

	t.Run("GrantApplies", func(t *testing.T) {
		c, g := h.New(t), h.Grant(t)
		mustGrant(t, ctx, c, g)
		if !h.HasAccess(t, g) {
			t.Fatal("after Grant, the target does not give access")
		}
	})

	t.Run("GrantTwiceIsIdempotent", func(t *testing.T) {
		c, g := h.New(t), h.Grant(t)
		mustGrant(t, ctx, c, g)
		mustGrant(t, ctx, c, g)
		if !h.HasAccess(t, g) {
			t.Fatal("after granting twice, the target does not give access")
		}
	})

	t.Run("RevokeRemoves", func(t *testing.T) {
		c, g := h.New(t), h.Grant(t)
		mustGrant(t, ctx, c, g)
		mustRevoke(t, ctx, c, g)
		if h.HasAccess(t, g) {
			t.Fatal("after Revoke, the target still gives access")
		}
	})

	t.Run("RevokeAbsentSucceeds", func(t *testing.T) {
		c, g := h.New(t), h.Grant(t)
		mustRevoke(t, ctx, c, g)
		if h.HasAccess(t, g) {
			t.Fatal("after revoking absent access, the target gives access")
		}
	})

	t.Run("RevokeTwiceSucceeds", func(t *testing.T) {
		c, g := h.New(t), h.Grant(t)
		mustGrant(t, ctx, c, g)
		mustRevoke(t, ctx, c, g)
		mustRevoke(t, ctx, c, g)
		if h.HasAccess(t, g) {
			t.Fatal("after revoking twice, the target still gives access")
		}
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
		mustGrant(t, ctx, c, g)
		if !h.HasAccess(t, g) {
			t.Fatal("Grant after a cancelled Grant did not give access")
		}
		start = time.Now()
		if err := c.Revoke(cctx, g); err == nil {
			t.Error("Revoke with a cancelled context returned nil")
		}
		if took := time.Since(start); took > prompt {
			t.Errorf("Revoke with a cancelled context took %v", took)
		}
		mustRevoke(t, ctx, c, g)
		if h.HasAccess(t, g) {
			t.Fatal("Revoke after a cancelled Revoke left access")
		}
	})

	t.Run("UnknownUserIsPermanent", func(t *testing.T) {
		if h.UnknownUser == nil {
			t.Skip("Harness.UnknownUser not set")
		}
		c, g := h.New(t), h.UnknownUser(t)
		_, err := c.Grant(ctx, g)
		if err == nil {
			t.Fatal("Grant for an unknown person returned nil")
		}
		if class, _ := access.Classify(err); class != access.Permanent {
			t.Errorf("Grant for an unknown person: class %v, want permanent: %v", class, err)
		}
		msg := err.Error()
		u := g.User
		if !(u.SlackID != "" && strings.Contains(msg, u.SlackID) ||
			u.Email != "" && strings.Contains(msg, u.Email) ||
			u.Name != "" && strings.Contains(msg, u.Name)) {
			t.Errorf("error for an unknown person does not name them (%s, %s, %s): %v", u.SlackID, u.Email, u.Name, err)
		}
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
			if h.FailNext == nil {
				t.Skip("Harness.FailNext not set")
			}
			c, g := h.New(t), h.Grant(t)
			h.FailNext(t, f.status)
			_, err := c.Grant(ctx, g)
			if err == nil {
				t.Fatalf("Grant with an injected %d returned nil", f.status)
			}
			if class, _ := access.Classify(err); class != f.want {
				t.Fatalf("Grant with an injected %d: class %v, want %v: %v", f.status, class, f.want, err)
			}
			// The fault was one operation: trying again works.
			mustGrant(t, ctx, c, g)
			if !h.HasAccess(t, g) {
				t.Fatal("Grant after an injected failure did not give access")
			}
			h.FailNext(t, f.status)
			err = c.Revoke(ctx, g)
			if class, _ := access.Classify(err); err == nil || class != f.want {
				t.Fatalf("Revoke with an injected %d: class %v, want %v: %v", f.status, class, f.want, err)
			}
			mustRevoke(t, ctx, c, g)
			if h.HasAccess(t, g) {
				t.Fatal("Revoke after an injected failure left access")
			}
		})
	}

	t.Run("CheckerAgrees", func(t *testing.T) {
		c, g := h.New(t), h.Grant(t)
		ch, ok := c.(access.Checker)
		if !ok {
			t.Skip("connector does not implement access.Checker")
		}
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
		mustGrant(t, ctx, c, g)
		agree("after Grant")
		mustRevoke(t, ctx, c, g)
		agree("after Revoke")
	})
}

func mustGrant(t *testing.T, ctx context.Context, c access.Connector, g access.Grant) {
	t.Helper()
	if _, err := c.Grant(ctx, g); err != nil {
		t.Fatalf("Grant(%s): %v", g.ID, describe(err))
	}
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
