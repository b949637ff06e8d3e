package access

import (
	"testing"
	"time"
)

func TestQueries(t *testing.T) {
	h := newHarness(t)
	a := h.submit(SubmitInput{Requester: alice, System: "crm", Role: "viewer"})
	b := h.submit(SubmitInput{Requester: eve, System: "crm", Role: "auto", Duration: time.Hour})
	c := h.submit(SubmitInput{Requester: eve, System: "payroll", Role: "clerk"})
	h.svc.Cancel(h.ctx, a.ID, alice)

	hist, err := h.svc.History(h.ctx, "crm", 0)
	if err != nil || len(hist) != 2 || hist[0].ID != b.ID || hist[1].ID != a.ID {
		t.Errorf("History(crm) = %v, %v; want newest first %s, %s", ids(hist), err, b.ID, a.ID)
	}
	if hist, _ := h.svc.History(h.ctx, "crm", 1); len(hist) != 1 {
		t.Errorf("History limit 1 gave %d", len(hist))
	}
	mine, _ := h.svc.Mine(h.ctx, eve)
	if got := ids(mine); len(got) != 2 || got[0] != c.ID || got[1] != b.ID {
		t.Errorf("Mine(eve) = %v", got)
	}
	if mine, _ := h.svc.Mine(h.ctx, alice); len(mine) != 0 {
		t.Errorf("Mine(alice) lists a cancelled request: %v", ids(mine))
	}
	for _, tt := range []struct {
		user, system string
		want         bool
	}{
		{admin, "crm", true}, {carol, "crm", true}, {carol, "payroll", false}, {owner2, "payroll", true},
		{alice, "crm", false}, {admin, "nope", true}, {carol, "nope", false},
	} {
		if got := h.svc.CanSeeSystem(tt.user, tt.system); got != tt.want {
			t.Errorf("CanSeeSystem(%s, %s) = %v, want %v", tt.user, tt.system, got, tt.want)
		}
	}
}

func ids(rs []*Request) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.ID)
	}
	return out
}
