package conformance

import (
	"errors"
	"testing"

	"github.com/accessbot/accessbot/access"
)

// IdentityHarness adapts an identity-provider connector to RunIdentity,
// the suite of the optional capabilities access.AccountChecker and
// access.ManagerLookup (DESIGN.md §4 invariant 12; issue #14 items 3 and
// 4). Every field is required.
type IdentityHarness struct {
	// New returns the connector under test, over a fresh target.
	New func(t *testing.T) access.Connector
	// Managed is an active person whose manager the IdP records as
	// ManagerEmail.
	Managed      access.Person
	ManagerEmail string
	// Unmanaged is an active person with no manager on record.
	Unmanaged access.Person
	// Inactive is a person whose account is suspended, deactivated or
	// deprovisioned.
	Inactive access.Person
	// Unknown is a person the IdP does not know.
	Unknown access.Person
	// Outage makes the target behind the connector New returned most
	// recently fail every later request with 503.
	Outage func(t *testing.T)
}

// RunIdentity runs the identity suite. A connector that implements
// neither capability fails it: call it only for those that do.
func RunIdentity(t *testing.T, h IdentityHarness) {
	t.Helper()
	if h.New == nil || h.Outage == nil {
		t.Fatal("conformance: IdentityHarness.New and Outage are required")
	}
	ctx := t.Context()
	probe := h.New(t)
	_, isAC := probe.(access.AccountChecker)
	_, isML := probe.(access.ManagerLookup)
	if !isAC && !isML {
		t.Fatalf("%T implements neither access.AccountChecker nor access.ManagerLookup", probe)
	}
	wantUnknown := func(t *testing.T, what string, err error) {
		t.Helper()
		if err == nil || !errors.Is(err, access.ErrUnknownUser) {
			t.Fatalf("%s for a person the IdP does not know: %v, want an error wrapping access.ErrUnknownUser", what, err)
		}
		if class, _ := access.Classify(err); class != access.Permanent {
			t.Fatalf("%s for an unknown person: %s, want permanent", what, describe(err))
		}
	}
	wantOutage := func(t *testing.T, what string, err error) {
		t.Helper()
		if err == nil {
			t.Fatalf("%s during an outage returned no error: an answer must never be made up", what)
		}
		if class, _ := access.Classify(err); class != access.Retryable {
			t.Fatalf("%s during an outage: %s, want retryable", what, describe(err))
		}
	}

	t.Run("AccountActive", func(t *testing.T) {
		if !isAC {
			t.Skip("connector does not implement access.AccountChecker")
		}
		ac := h.New(t).(access.AccountChecker)
		for _, tc := range []struct {
			p    access.Person
			want bool
		}{{h.Managed, true}, {h.Unmanaged, true}, {h.Inactive, false}} {
			got, err := ac.AccountActive(ctx, tc.p)
			if err != nil {
				t.Fatalf("AccountActive(%s): %s", tc.p.Email, describe(err))
			}
			if got != tc.want {
				t.Errorf("AccountActive(%s) = %v, want %v", tc.p.Email, got, tc.want)
			}
		}
		_, err := ac.AccountActive(ctx, h.Unknown)
		wantUnknown(t, "AccountActive", err)
	})

	t.Run("AccountActiveOutage", func(t *testing.T) {
		if !isAC {
			t.Skip("connector does not implement access.AccountChecker")
		}
		ac := h.New(t).(access.AccountChecker)
		h.Outage(t)
		_, err := ac.AccountActive(ctx, h.Managed)
		wantOutage(t, "AccountActive", err)
	})

	t.Run("Manager", func(t *testing.T) {
		if !isML {
			t.Skip("connector does not implement access.ManagerLookup")
		}
		ml := h.New(t).(access.ManagerLookup)
		got, err := ml.Manager(ctx, h.Managed)
		if err != nil || got != h.ManagerEmail {
			t.Fatalf("Manager(%s) = %q, %v; want %q", h.Managed.Email, got, err, h.ManagerEmail)
		}
		got, err = ml.Manager(ctx, h.Unmanaged)
		if err != nil || got != "" {
			t.Fatalf("Manager(%s) with no manager on record = %q, %v; want \"\", nil", h.Unmanaged.Email, got, err)
		}
		_, err = ml.Manager(ctx, h.Unknown)
		wantUnknown(t, "Manager", err)
	})

	t.Run("ManagerOutage", func(t *testing.T) {
		if !isML {
			t.Skip("connector does not implement access.ManagerLookup")
		}
		ml := h.New(t).(access.ManagerLookup)
		h.Outage(t)
		_, err := ml.Manager(ctx, h.Managed)
		wantOutage(t, "Manager", err)
	})
}
