package memory_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/connectors"
	"github.com/accessbot/accessbot/connectors/conformance"
	"github.com/accessbot/accessbot/connectors/connectortest"
	"github.com/accessbot/accessbot/connectors/memory"
)

func grant() access.Grant {
	return access.Grant{
		ID: "AR-1", System: "crm", Role: "viewer",
		Params: map[string]string{"group_id": "00g1viewer"},
		User:   access.Person{SlackID: "U0ALICE01", Email: "alice@example.com", Name: "Alice"},
	}
}

// statusError mimics what an HTTP connector returns for status.
func statusError(status int) error {
	resp := &http.Response{StatusCode: status, Header: http.Header{}, Request: &http.Request{Method: "POST"}}
	return connectors.Classify(resp, nil, "memory fault")
}

func TestConformance(t *testing.T) {
	var cur *memory.Connector
	conformance.Run(t, conformance.Harness{
		New: func(t *testing.T) access.Connector {
			cur = memory.New()
			cur.SetKnown("U0ALICE01")
			return cur
		},
		Grant: func(t *testing.T) access.Grant { return grant() },
		HasAccess: func(t *testing.T, g access.Grant) bool {
			return cur.HasUser(memory.ParamsKey(g.Params), g.User.SlackID)
		},
		TargetUserID:   func(t *testing.T, g access.Grant) string { return g.User.SlackID },
		PreGrant:       func(t *testing.T, g access.Grant) { cur.AddMember(memory.ParamsKey(g.Params), g.User.SlackID) },
		FailSecondCall: func(t *testing.T) { cur.FailSecondStep(1, nil) },
		UnknownUser: func(t *testing.T) access.Grant {
			g := grant()
			g.User = access.Person{SlackID: "U0NOBODY1", Email: "nobody@example.com", Name: "Nobody"}
			return g
		},
		FailNext: func(t *testing.T, status int) { cur.FailNext(1, statusError(status)) },
	})
}

func TestMembersCountsAndHook(t *testing.T) {
	c := memory.New()
	g := grant()
	ctx := t.Context()
	if _, err := c.Grant(ctx, g); err != nil {
		t.Fatal(err)
	}
	if got := c.Members("group_id=00g1viewer"); len(got) != 1 || got[0] != "U0ALICE01" {
		t.Fatalf("Members = %v", got)
	}
	boom := access.PermanentError(errors.New("boom"))
	c.SetHook(func(ctx context.Context, op string, g access.Grant) error {
		if op == memory.OpRevoke {
			return boom
		}
		return nil
	})
	if err := c.Revoke(ctx, g); !errors.Is(err, boom) {
		t.Fatalf("Revoke with hook = %v", err)
	}
	if !c.Has(g) {
		t.Fatal("a failed revoke changed membership")
	}
	c.SetHook(nil)
	c.FailNext(2, nil)
	for range 2 {
		if err := c.Revoke(ctx, g); err == nil {
			t.Fatal("FailNext did not fail")
		}
	}
	if err := c.Revoke(ctx, g); err != nil {
		t.Fatal(err)
	}
	if want := (memory.Counts{Grant: 1, Revoke: 4}); c.Calls() != want {
		t.Fatalf("Calls = %+v, want %+v", c.Calls(), want)
	}
	if got := memory.ParamsKey(map[string]string{"b": "2", "a": "1"}); got != "a=1,b=2" {
		t.Fatalf("ParamsKey = %q", got)
	}
}

func TestConcurrent(t *testing.T) {
	c := memory.New()
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Go(func() {
			g := grant()
			g.User.SlackID = fmt.Sprintf("U%d", i%5)
			_ = connectortest.ErrOf(c.Grant(t.Context(), g))
			_, _ = c.Check(t.Context(), g)
			_ = c.Revoke(t.Context(), g)
		})
	}
	wg.Wait()
	if got := c.Members("group_id=00g1viewer"); len(got) != 0 {
		t.Fatalf("members left: %v", got)
	}
}

func TestFactory(t *testing.T) {
	reg := connectors.NewRegistry()
	reg.Add("memory", memory.Factory)
	c, err := reg.Build("demo", "memory", map[string]any{"type": "memory", "known_users": []any{"U0ALICE01"}}, connectors.Env{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Grant(t.Context(), grant()); err != nil {
		t.Fatal(err)
	}
	_, err = reg.Build("demo", "memory", map[string]any{"known_user": []any{"U1"}}, connectors.Env{})
	if err == nil || !strings.Contains(err.Error(), `connectors.demo.known_user: unknown key; did you mean "known_users"?`) {
		t.Fatalf("typo error = %v", err)
	}
}

// TestConformanceByEmail runs the suite against the email-resolving
// target, where renames and deletions exist.
func TestConformanceByEmail(t *testing.T) {
	var cur *memory.Connector
	conformance.Run(t, conformance.Harness{
		New: func(t *testing.T) access.Connector {
			cur = memory.New()
			cur.AddUser("u-17", "alice@example.com")
			cur.AddUser("u-18", "bob@example.com")
			return cur
		},
		Grant:        func(t *testing.T) access.Grant { return grant() },
		HasAccess:    func(t *testing.T, g access.Grant) bool { return cur.HasUser(memory.ParamsKey(g.Params), "u-17") },
		TargetUserID: func(t *testing.T, g access.Grant) string { return "u-17" },
		UnknownUser: func(t *testing.T) access.Grant {
			g := grant()
			g.User = access.Person{SlackID: "U0NOBODY1", Email: "nobody@example.com", Name: "Nobody"}
			return g
		},
		ChangeEmail: func(t *testing.T, g access.Grant) string {
			cur.SetEmail("u-17", "alice.smith@example.com")
			return "alice.smith@example.com"
		},
		PreGrant:       func(t *testing.T, g access.Grant) { cur.AddMember(memory.ParamsKey(g.Params), "u-17") },
		DeleteUser:     func(t *testing.T, g access.Grant) { cur.DeleteUser("u-17") },
		FailSecondCall: func(t *testing.T) { cur.FailSecondStep(1, nil) },
		FailNext:       func(t *testing.T, status int) { cur.FailNext(1, statusError(status)) },
	})
}

func TestReceipts(t *testing.T) {
	ctx := t.Context()
	key := "group_id=00g1viewer"
	t.Run("slack ID mode", func(t *testing.T) {
		c := memory.New()
		g := grant()
		rc, err := c.Grant(ctx, g)
		if err != nil || rc.UserID != "U0ALICE01" || rc.PreExisting || rc.Note != memory.NoteAdded {
			t.Fatalf("Grant = %+v, %v", rc, err)
		}
		rc2, err := c.Grant(ctx, g)
		if err != nil || rc2.PreExisting || rc2.UserID != "U0ALICE01" {
			t.Fatalf("repeated Grant = %+v, %v (want the same grant, not PreExisting)", rc2, err)
		}
		other := g
		other.ID = "AR-2"
		if rc3, err := c.Grant(ctx, other); err != nil || !rc3.PreExisting {
			t.Fatalf("another request's Grant = %+v, %v (want PreExisting)", rc3, err)
		}
		g.Receipt = &rc
		if err := c.Revoke(ctx, g); err != nil || c.Has(g) {
			t.Fatalf("Revoke = %v, has %v", err, c.Has(g))
		}
	})
	t.Run("email changed after grant", func(t *testing.T) {
		c := memory.New()
		c.AddUser("u-17", "alice@example.com")
		g := grant()
		rc, err := c.Grant(ctx, g)
		if err != nil || rc.UserID != "u-17" {
			t.Fatalf("Grant = %+v, %v", rc, err)
		}
		c.SetEmail("u-17", "alice@new.example.com")
		// A record without a receipt: the lookup by the old email finds
		// nobody, and that must never count as removed.
		err = c.Revoke(ctx, g)
		if class, _ := access.Classify(err); class != access.Permanent || !errors.Is(err, access.ErrUnknownUser) {
			t.Fatalf("legacy Revoke = %v, want permanent ErrUnknownUser", err)
		}
		if !c.HasUser(key, "u-17") {
			t.Fatal("legacy revoke removed access")
		}
		g.Receipt = &rc
		if err := c.Revoke(ctx, g); err != nil || c.HasUser(key, "u-17") {
			t.Fatalf("Revoke by receipt = %v, has %v", err, c.HasUser(key, "u-17"))
		}
	})
	t.Run("pre-existing", func(t *testing.T) {
		c := memory.New()
		c.AddMember(key, "U0ALICE01")
		rc, err := c.Grant(ctx, grant())
		if err != nil || !rc.PreExisting || c.Calls().Grant != 1 {
			t.Fatalf("Grant = %+v, %v", rc, err)
		}
	})
	t.Run("user deleted", func(t *testing.T) {
		c := memory.New()
		c.AddUser("u-17", "alice@example.com")
		g := grant()
		rc, err := c.Grant(ctx, g)
		if err != nil {
			t.Fatal(err)
		}
		c.DeleteUser("u-17")
		g.Receipt = &rc
		if err := c.Revoke(ctx, g); err != nil {
			t.Fatalf("Revoke of a deleted user's access = %v, want nil", err)
		}
	})
	t.Run("second step fails", func(t *testing.T) {
		c := memory.New()
		c.FailSecondStep(1, nil)
		g := grant()
		rc, err := c.Grant(ctx, g)
		if class, _ := access.Classify(err); err == nil || class != access.Permanent || !rc.Changed() || rc.UserID != "U0ALICE01" {
			t.Fatalf("Grant = %+v, %v; want a permanent error with the partial receipt", rc, err)
		}
		if !c.Has(g) {
			t.Fatal("the first step was not applied")
		}
		g.Receipt, g.Rollback = &rc, true
		if err := c.Revoke(ctx, g); err != nil || c.Has(g) {
			t.Fatalf("rollback = %v, has %v", err, c.Has(g))
		}
		if rc, err := c.Grant(ctx, grant()); err != nil || rc.PreExisting {
			t.Fatalf("FailSecondStep(1) failed more than once: %+v, %v", rc, err)
		}
	})
}
