package access

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestWindowStatus(t *testing.T) {
	berlin := mustLoc(t, "Europe/Berlin")
	tokyo := mustLoc(t, "Asia/Tokyo")
	rb := &Runbook{Location: berlin}
	sys := &System{ID: "crm"}
	role := &Role{ID: "admin", Windows: mustWindows(t, "mon-fri 08:00-18:00")}

	t.Run("no windows: open, nothing to say", func(t *testing.T) {
		st := rb.WindowStatus(&Role{ID: "viewer"}, utc("2026-03-28 12:00"))
		if !st.Open || st.Restricted || st.Refused() || !st.AutoAllowed() || st.Refusal(sys, role) != nil || st.Note(sys, role) != "" {
			t.Errorf("status %+v", st)
		}
	})
	t.Run("inside: open until the window closes", func(t *testing.T) {
		st := rb.WindowStatus(role, utc("2026-03-30 08:00")) // Monday 10:00 CEST
		if !st.Open || st.Refused() || !st.AutoAllowed() {
			t.Fatalf("status %+v", st)
		}
		if want := utc("2026-03-30 16:00"); !st.ClosesAt.Equal(want) {
			t.Errorf("ClosesAt = %s, want %s", st.ClosesAt, want)
		}
	})
	t.Run("outside, refuse by default: says when it opens", func(t *testing.T) {
		st := rb.WindowStatus(role, utc("2026-03-28 12:00")) // Saturday 13:00 CET
		if st.Open || !st.Refused() || st.AutoAllowed() {
			t.Fatalf("status %+v", st)
		}
		err := st.Refusal(sys, role)
		if !errors.Is(err, ErrForbidden) {
			t.Fatalf("Refusal = %v, want ErrForbidden", err)
		}
		want := "crm admin can be requested only Mon-Fri 08:00-18:00 (Europe/Berlin time). The next window opens Mon 30 Mar 08:00 CEST."
		if err.Error() != want {
			t.Errorf("Refusal:\n got %q\nwant %q", err, want)
		}
		if st.Note(sys, role) != "" {
			t.Error("a refusal also has a note")
		}
	})
	t.Run("outside, approve: humans, and the requester is told why", func(t *testing.T) {
		r := *role
		r.OutsideWindow = OutsideApprove
		st := rb.WindowStatus(&r, utc("2026-03-29 19:00")) // Sunday 21:00 CEST
		if st.Open || st.Refused() || st.AutoAllowed() || st.Refusal(sys, &r) != nil {
			t.Fatalf("status %+v", st)
		}
		want := "crm admin is approved automatically only Mon-Fri 08:00-18:00 (Europe/Berlin time), so this request goes to the approvers. The next window opens tomorrow 08:00 CEST."
		if got := st.Note(sys, &r); got != want {
			t.Errorf("Note:\n got %q\nwant %q", got, want)
		}
	})
	t.Run("the role's timezone wins", func(t *testing.T) {
		r := *role
		r.Location = tokyo
		st := rb.WindowStatus(&r, utc("2026-03-30 00:30")) // Monday 09:30 JST, 02:30 CEST
		if !st.Open || st.Location != tokyo {
			t.Errorf("status %+v", st)
		}
		st = rb.WindowStatus(&r, utc("2026-03-30 09:30")) // Monday 18:30 JST
		if err := st.Refusal(sys, &r); err == nil || !strings.Contains(err.Error(), "(Asia/Tokyo time). The next window opens tomorrow 08:00 JST.") {
			t.Errorf("Refusal = %v", err)
		}
	})
}

func TestFormatWhen(t *testing.T) {
	berlin := mustLoc(t, "Europe/Berlin")
	now := utc("2026-03-28 12:00")
	for _, tt := range []struct {
		t    time.Time
		want string
	}{
		{utc("2026-03-28 21:00").In(berlin), "today 22:00 CET"},
		{utc("2026-03-29 20:00").In(berlin), "tomorrow 22:00 CEST"},
		{utc("2026-03-30 06:00").In(berlin), "Mon 30 Mar 08:00 CEST"},
	} {
		if got := formatWhen(tt.t, now); got != tt.want {
			t.Errorf("formatWhen(%s) = %q, want %q", tt.t, got, tt.want)
		}
	}
}
