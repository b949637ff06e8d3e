package conformance

import (
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

	t.Run("AccountActive", func(t *testing.T) {
		skipUnless(t, isAC, "connector does not implement access.AccountChecker")
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
		wantUnknownUser(t, "AccountActive for a person the IdP does not know", err)
	})

	t.Run("Manager", func(t *testing.T) {
		skipUnless(t, isML, "connector does not implement access.ManagerLookup")
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
		wantUnknownUser(t, "Manager for a person the IdP does not know", err)
	})

	// Both capabilities are asked about one person; what they answer
	// differs, but an outage must look the same.
	caps := []struct {
		name, iface string
		has         bool
		ask         func(c access.Connector, p access.Person) error
	}{
		{"AccountActive", "access.AccountChecker", isAC, func(c access.Connector, p access.Person) error {
			_, err := c.(access.AccountChecker).AccountActive(ctx, p)
			return err
		}},
		{"Manager", "access.ManagerLookup", isML, func(c access.Connector, p access.Person) error {
			_, err := c.(access.ManagerLookup).Manager(ctx, p)
			return err
		}},
	}
	for _, cp := range caps {
		t.Run(cp.name+"Outage", func(t *testing.T) {
			skipUnless(t, cp.has, "connector does not implement "+cp.iface)
			c := h.New(t)
			h.Outage(t)
			err := cp.ask(c, h.Managed)
			if err == nil {
				t.Fatalf("%s during an outage returned no error: an answer must never be made up", cp.name)
			}
			wantClass(t, cp.name+" during an outage", err, access.Retryable)
		})
	}
}
