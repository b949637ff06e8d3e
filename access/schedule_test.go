package access

import (
	"testing"
	"time"
)

func TestParseSchedule(t *testing.T) {
	tests := []struct {
		in, want string // want "" means an error
	}{
		{"off", "off"},
		{"OFF", "off"},
		{"daily 09:00", "daily 09:00"},
		{"daily 9:05", "daily 09:05"},
		{"  weekly   Mon  17:30 ", "weekly mon 17:30"},
		{"weekly sun 00:00", "weekly sun 00:00"},
		{"daily", ""},
		{"daily 24:00", ""},
		{"daily 09:60", ""},
		{"weekly monday 09:00", ""},
		{"weekly 09:00", ""},
		{"hourly", ""},
		{"", ""},
		{"off now", ""},
	}
	for _, tt := range tests {
		s, err := ParseSchedule(tt.in)
		switch {
		case tt.want == "" && err == nil:
			t.Errorf("ParseSchedule(%q) = %v, want an error", tt.in, s)
		case tt.want != "" && err != nil:
			t.Errorf("ParseSchedule(%q): %v", tt.in, err)
		case tt.want != "" && s.String() != tt.want:
			t.Errorf("ParseSchedule(%q) = %q, want %q", tt.in, s, tt.want)
		}
	}
}

func TestScheduleNext(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	at := func(s string) time.Time {
		t.Helper()
		v, err := time.ParseInLocation("2006-01-02 15:04", s, berlin)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	tests := []struct {
		sched, after, want string
	}{
		{"daily 09:00", "2026-03-10 08:59", "2026-03-10 09:00"},
		{"daily 09:00", "2026-03-10 09:00", "2026-03-11 09:00"}, // strictly after
		{"weekly mon 09:00", "2026-03-10 10:00", "2026-03-16 09:00"},
		{"weekly tue 09:00", "2026-03-10 08:00", "2026-03-10 09:00"},
		{"weekly tue 09:00", "2026-03-10 09:30", "2026-03-17 09:00"},
		// 02:30 does not exist on 2026-03-29 in Berlin: it fires at 03:30.
		{"daily 02:30", "2026-03-29 01:00", "2026-03-29 03:30"},
	}
	for _, tt := range tests {
		s, err := ParseSchedule(tt.sched)
		if err != nil {
			t.Fatal(err)
		}
		if got := s.Next(at(tt.after), berlin); !got.Equal(at(tt.want)) {
			t.Errorf("%s after %s = %s, want %s", tt.sched, tt.after, got, tt.want)
		}
	}
	if !(Schedule{Off: true}).Next(time.Now(), berlin).IsZero() {
		t.Error("off: want the zero time")
	}
}
