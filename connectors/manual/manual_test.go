package manual

import (
	"context"
	"errors"
	"testing"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/connectors"
)

func TestManualAwaitsConfirmation(t *testing.T) {
	reg := connectors.NewRegistry()
	reg.Add("manual", Factory)
	c, err := reg.Build("payroll", "manual", map[string]any{"type": "manual"}, connectors.Env{})
	if err != nil {
		t.Fatal(err)
	}
	g := access.Grant{ID: "AR-1", User: access.Person{SlackID: "U1"}}
	if rc, err := c.Grant(context.Background(), g); !errors.Is(err, access.ErrAwaitingConfirmation) || rc.Changed() {
		t.Fatalf("Grant = %+v, %v; want the zero receipt and ErrAwaitingConfirmation (the owner's Done records what was done)", rc, err)
	}
	// A rollback of a manual grant is a task for the owners too.
	rb := g
	rb.Receipt, rb.Rollback = &access.Receipt{}, true
	if err := c.Revoke(context.Background(), rb); !errors.Is(err, access.ErrAwaitingConfirmation) {
		t.Fatalf("rollback Revoke = %v, want ErrAwaitingConfirmation", err)
	}
	if err := c.Revoke(context.Background(), g); !errors.Is(err, access.ErrAwaitingConfirmation) {
		t.Fatalf("Revoke = %v, want ErrAwaitingConfirmation", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.Grant(ctx, g); !errors.Is(err, context.Canceled) {
		t.Fatalf("Grant with cancelled ctx = %v", err)
	}
	if _, err := reg.Build("payroll", "manual", map[string]any{"urll": "x"}, connectors.Env{}); err == nil {
		t.Fatal("unknown key accepted")
	}
}
