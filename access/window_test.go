package access

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func mustLoc(t testing.TB, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatalf("load %s: %v", name, err)
	}
	return loc
}

func mustWindows(t testing.TB, specs ...string) Windows {
	t.Helper()
	ws, err := ParseWindows(specs)
	if err != nil {
		t.Fatal(err)
	}
	return ws
}

func days(ds ...time.Weekday) [7]bool {
	var out [7]bool
	for _, d := range ds {
		out[d] = true
	}
	return out
}

var everyDay = days(0, 1, 2, 3, 4, 5, 6)

func TestParseWindow(t *testing.T) {
	tests := []struct {
		spec string
		want Window
		str  string
	}{
		{"mon-fri 08:00-18:00", Window{days(1, 2, 3, 4, 5), 8 * 60, 18 * 60}, "Mon-Fri 08:00-18:00"},
		{"sat 10:00-14:00", Window{days(6), 10 * 60, 14 * 60}, "Sat 10:00-14:00"},
		{"22:00-02:00", Window{everyDay, 22 * 60, 2 * 60}, "every day 22:00-02:00 (ends next day)"},
		{"sat,sun 9:30-12:00", Window{days(6, 0), 9*60 + 30, 12 * 60}, "Sat,Sun 09:30-12:00"},
		{"mon-wed,fri 07:00-19:00", Window{days(1, 2, 3, 5), 7 * 60, 19 * 60}, "Mon-Wed,Fri 07:00-19:00"},
		{"mon-wed, fri 07:00-19:00", Window{days(1, 2, 3, 5), 7 * 60, 19 * 60}, "Mon-Wed,Fri 07:00-19:00"},
		{"fri-mon 20:00-23:00", Window{days(5, 6, 0, 1), 20 * 60, 23 * 60}, "Mon,Fri-Sun 20:00-23:00"},
		{"  MON  00:00-24:00 ", Window{days(1), 0, 24 * 60}, "Mon 00:00-24:00"},
		{"Monday 08:00–12:00", Window{days(1), 8 * 60, 12 * 60}, "Mon 08:00-12:00"},
		{"sun-sat 00:00-24:00", Window{everyDay, 0, 24 * 60}, "every day 00:00-24:00"},
		{"fri 23:00-00:00", Window{days(5), 23 * 60, 0}, "Fri 23:00-00:00 (ends next day)"},
	}
	for _, tt := range tests {
		t.Run(tt.spec, func(t *testing.T) {
			got, err := ParseWindow(tt.spec)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ParseWindow (-want +got):\n%s", diff)
			}
			if s := got.String(); s != tt.str {
				t.Errorf("String() = %q, want %q", s, tt.str)
			}
			// What people are shown can be pasted back.
			back, err := ParseWindow(strings.TrimSuffix(got.String(), " (ends next day)"))
			if err != nil && !strings.HasPrefix(got.String(), "every day") {
				t.Fatalf("String() does not parse back: %v", err)
			}
			if err == nil && back != got {
				t.Errorf("round trip: %+v, want %+v", back, got)
			}
		})
	}
}

func TestParseWindowRefusesNamingThePart(t *testing.T) {
	tests := []struct{ spec, want string }{
		{"", "empty window"},
		{"mon-fry 08:00-18:00", `"fry" is not a day`},
		{"mon-fry 08:00-18:00", `did you mean "fri"`},
		{"weekdays 08:00-18:00", `"weekdays" is not a day`},
		{"mon,,fri 08:00-18:00", "an empty day"},
		{"mon 8-18", `"8" is not a time`},
		{"mon 08:00", `"08:00" is not a time range`},
		{"mon 08:00-25:00", `end "25:00" is not a time of day`},
		{"mon 24:00-02:00", `start "24:00" is not a time of day`},
		{"mon 08:60-09:00", `start "08:60" is not a time of day`},
		{"mon 08:00-08:00", "starts and ends at 08:00, so it is empty"},
		{"mon 8:5-9:00", `"8:5" is not a time`},
		{"mon 123:00-9:00", `"123:00" is not a time`},
		{"mon -1:00-9:00", "is not a time"},
	}
	for _, tt := range tests {
		t.Run(tt.spec+"/"+tt.want, func(t *testing.T) {
			_, err := ParseWindow(tt.spec)
			if err == nil {
				t.Fatalf("ParseWindow(%q) accepted it", tt.spec)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
			if tt.spec != "" && !strings.Contains(err.Error(), tt.spec) {
				t.Errorf("error %q does not quote the window %q", err, tt.spec)
			}
		})
	}
}

func TestParseWindowsReportsEveryBadOne(t *testing.T) {
	_, err := ParseWindows([]string{"mon-fri 08:00-18:00", "mon-fry 08:00-18:00", "sat 10-14"})
	if err == nil {
		t.Fatal("accepted")
	}
	msg := err.Error()
	for _, want := range []string{`windows[1]: "mon-fry 08:00-18:00"`, `windows[2]: "sat 10-14"`} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not contain %q", msg, want)
		}
	}
	if strings.Contains(msg, "windows[0]") {
		t.Errorf("error blames the good window: %q", msg)
	}
}

func TestParseOutsideWindow(t *testing.T) {
	for in, want := range map[string]OutsideWindow{"approve": OutsideApprove, " Refuse ": OutsideRefuse} {
		if got, err := ParseOutsideWindow(in); err != nil || got != want {
			t.Errorf("ParseOutsideWindow(%q) = %q, %v", in, got, err)
		}
	}
	if _, err := ParseOutsideWindow("deny"); err == nil || !strings.Contains(err.Error(), "use approve") {
		t.Errorf("ParseOutsideWindow(deny) = %v", err)
	}
}

// utc is a readable instant.
func utc(s string) time.Time {
	t, err := time.Parse("2006-01-02 15:04", s)
	if err != nil {
		panic(err)
	}
	return t
}

// Europe/Berlin, 2026: clocks spring forward on Sunday 29 March at 02:00
// CET (01:00 UTC) to 03:00 CEST, and fall back on Sunday 25 October at
// 03:00 CEST (01:00 UTC) to 02:00 CET.
func TestWindowsBerlinAcrossDST(t *testing.T) {
	berlin := mustLoc(t, "Europe/Berlin")
	overnight := mustWindows(t, "22:00-02:00")
	tests := []struct {
		name string
		ws   Windows
		at   time.Time // UTC
		want bool
	}{
		// Spring forward: the night of Saturday 28 to Sunday 29 March.
		{"spring: 21:59 CET, before", overnight, utc("2026-03-28 20:59"), false},
		{"spring: 22:00 CET, opens", overnight, utc("2026-03-28 21:00"), true},
		{"spring: 01:59 CET, still open", overnight, utc("2026-03-29 00:59"), true},
		{"spring: 03:00 CEST, the clock jumped past 02:00: closed", overnight, utc("2026-03-29 01:00"), false},
		{"spring: 21:59 CEST Sunday, before", overnight, utc("2026-03-29 19:59"), false},
		{"spring: 22:00 CEST Sunday, opens", overnight, utc("2026-03-29 20:00"), true},
		{"spring: 01:59 CEST Monday", overnight, utc("2026-03-29 23:59"), true},
		{"spring: 02:00 CEST Monday, closed", overnight, utc("2026-03-30 00:00"), false},
		// Fall back: the night of Saturday 24 to Sunday 25 October.
		{"fall: 22:00 CEST, opens", overnight, utc("2026-10-24 20:00"), true},
		{"fall: 01:59 CEST", overnight, utc("2026-10-24 23:59"), true},
		{"fall: 02:00 CEST, first 02:00: closed", overnight, utc("2026-10-25 00:00"), false},
		{"fall: 02:30 CEST", overnight, utc("2026-10-25 00:30"), false},
		{"fall: 02:00 CET, 02:00 again: stays closed", overnight, utc("2026-10-25 01:00"), false},
		{"fall: 21:59 CET Sunday", overnight, utc("2026-10-25 20:59"), false},
		{"fall: 22:00 CET Sunday, opens", overnight, utc("2026-10-25 21:00"), true},
		{"fall: 01:59 CET Monday", overnight, utc("2026-10-26 00:59"), true},
		{"fall: 02:00 CET Monday, closed", overnight, utc("2026-10-26 01:00"), false},

		// An edge inside the skipped hour (02:00-03:00 on 29 March does
		// not exist): it falls on the jump, 03:00 CEST.
		{"skipped end: 01:59 CET open", mustWindows(t, "sat 22:00-02:30"), utc("2026-03-29 00:59"), true},
		{"skipped end: 03:00 CEST closed", mustWindows(t, "sat 22:00-02:30"), utc("2026-03-29 01:00"), false},
		{"skipped start: 01:59 CET not yet", mustWindows(t, "sun 02:30-05:00"), utc("2026-03-29 00:59"), false},
		{"skipped start: 03:00 CEST open", mustWindows(t, "sun 02:30-05:00"), utc("2026-03-29 01:00"), true},
		{"skipped start: 04:59 CEST open", mustWindows(t, "sun 02:30-05:00"), utc("2026-03-29 02:59"), true},
		{"skipped start: 05:00 CEST closed", mustWindows(t, "sun 02:30-05:00"), utc("2026-03-29 03:00"), false},
		{"swallowed window never opens", mustWindows(t, "sun 02:00-02:45"), utc("2026-03-29 01:00"), false},

		// An edge inside the repeated hour (02:00-03:00 on 25 October is
		// shown twice): the first showing counts.
		{"repeated end: 02:29 CEST open", mustWindows(t, "sat 22:00-02:30"), utc("2026-10-25 00:29"), true},
		{"repeated end: 02:30 CEST closed", mustWindows(t, "sat 22:00-02:30"), utc("2026-10-25 00:30"), false},
		{"repeated end: 02:15 CET does not reopen", mustWindows(t, "sat 22:00-02:30"), utc("2026-10-25 01:15"), false},
		{"repeated start: 02:29 CEST not yet", mustWindows(t, "sun 02:30-04:00"), utc("2026-10-25 00:29"), false},
		{"repeated start: 02:30 CEST open", mustWindows(t, "sun 02:30-04:00"), utc("2026-10-25 00:30"), true},
		{"repeated start: 02:15 CET still open", mustWindows(t, "sun 02:30-04:00"), utc("2026-10-25 01:15"), true},
		{"repeated start: 04:00 CET closed", mustWindows(t, "sun 02:30-04:00"), utc("2026-10-25 03:00"), false},
		{"end after the repeat: 02:59 CET open", mustWindows(t, "sat 22:00-03:00"), utc("2026-10-25 01:59"), true},
		{"end after the repeat: 03:00 CET closed", mustWindows(t, "sat 22:00-03:00"), utc("2026-10-25 02:00"), false},

		// Days belong to the start of an overnight window.
		{"fri 22:00-02:00 on Saturday 01:00", mustWindows(t, "fri 22:00-02:00"), utc("2026-03-27 23:59"), true},
		{"fri 22:00-02:00 not on Saturday 22:30", mustWindows(t, "fri 22:00-02:00"), utc("2026-03-28 21:30"), false},
		// Several windows.
		{"office hours Monday 10:00", mustWindows(t, "mon-fri 08:00-18:00", "sat 10:00-14:00"), utc("2026-03-30 08:00"), true},
		{"office hours Sunday 10:00", mustWindows(t, "mon-fri 08:00-18:00", "sat 10:00-14:00"), utc("2026-03-29 08:00"), false},
		{"no windows: always", nil, utc("2026-03-29 01:30"), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.ws.Contains(tt.at, berlin); got != tt.want {
				t.Errorf("%v.Contains(%s = %s) = %v, want %v", tt.ws, tt.at.Format(time.RFC3339), tt.at.In(berlin).Format("Mon 15:04 MST"), got, tt.want)
			}
		})
	}
}

func TestNextOpenBerlin(t *testing.T) {
	berlin := mustLoc(t, "Europe/Berlin")
	tests := []struct {
		name string
		ws   Windows
		at   time.Time
		want time.Time
	}{
		{"inside: now", mustWindows(t, "22:00-02:00"), utc("2026-03-28 23:00"), utc("2026-03-28 23:00")},
		{"after the short spring night: next evening in CEST", mustWindows(t, "22:00-02:00"), utc("2026-03-29 01:00"), utc("2026-03-29 20:00")},
		{"after the fall-back night: next evening in CET", mustWindows(t, "22:00-02:00"), utc("2026-10-25 00:00"), utc("2026-10-25 21:00")},
		{"start in the skipped hour: the jump", mustWindows(t, "sun 02:30-05:00"), utc("2026-03-28 12:00"), utc("2026-03-29 01:00")},
		{"start in the repeated hour: its first showing", mustWindows(t, "sun 02:30-04:00"), utc("2026-10-24 12:00"), utc("2026-10-25 00:30")},
		{"swallowed occurrence skipped: a week later", mustWindows(t, "sun 02:00-02:45"), utc("2026-03-28 12:00"), utc("2026-04-05 00:00")},
		{"Friday evening to Monday morning", mustWindows(t, "mon-fri 08:00-18:00"), utc("2026-03-27 17:00"), utc("2026-03-30 06:00")},
		{"Saturday before Monday", mustWindows(t, "mon-fri 08:00-18:00", "sat 10:00-14:00"), utc("2026-03-28 07:00"), utc("2026-03-28 09:00")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.ws.NextOpen(tt.at, berlin)
			if !got.Equal(tt.want) {
				t.Errorf("NextOpen(%s) = %s, want %s", tt.at.In(berlin).Format(time.RFC3339), got.Format(time.RFC3339), tt.want.In(berlin).Format(time.RFC3339))
			}
			if got.Location() != berlin {
				t.Errorf("NextOpen is in %v, want %v", got.Location(), berlin)
			}
		})
	}
}

func TestCloseAfter(t *testing.T) {
	berlin := mustLoc(t, "Europe/Berlin")
	ws := mustWindows(t, "22:00-02:00", "sat 20:00-23:00")
	if got, want := ws.CloseAfter(utc("2026-03-28 21:30"), berlin), utc("2026-03-29 01:00"); !got.Equal(want) {
		t.Errorf("CloseAfter in the spring night = %s, want %s (03:00 CEST)", got, want)
	}
	if got := ws.CloseAfter(utc("2026-03-29 12:00"), berlin); !got.IsZero() {
		t.Errorf("CloseAfter outside = %s, want zero", got)
	}
}

// TestWindowsAgainstTheClock checks Contains and NextOpen minute by minute
// over weeks with DST changes against an oracle that reads the clock: an
// occurrence opens at the first minute whose local reading is at or after
// its start on its day, and closes at the first minute at or after its
// end. Lord Howe Island moves its clocks by 30 minutes, at 02:00.
func TestWindowsAgainstTheClock(t *testing.T) {
	cases := []struct {
		zone  string
		from  time.Time // UTC; ten days are checked
		specs []string
	}{
		{"Europe/Berlin", utc("2026-03-24 00:00"), []string{"22:00-02:00", "sun 02:30-05:00", "sat 01:00-03:00", "mon-fri 08:00-18:00"}},
		{"Europe/Berlin", utc("2026-10-20 00:00"), []string{"22:00-02:00", "sun 02:30-04:00", "sat 22:00-02:30", "sat 22:00-03:00"}},
		{"America/New_York", utc("2026-03-04 00:00"), []string{"01:30-02:30", "sun 02:00-03:00", "fri-mon 23:00-01:00"}},
		{"America/New_York", utc("2026-10-28 00:00"), []string{"01:30-02:30", "sun 01:00-01:45", "00:00-24:00"}},
		{"Australia/Lord_Howe", utc("2026-03-30 00:00"), []string{"01:45-02:15", "sun 22:00-02:00"}},
		{"Australia/Lord_Howe", utc("2026-09-29 00:00"), []string{"01:45-02:15", "sun 02:00-02:20", "sat 23:00-02:30"}},
	}
	for _, c := range cases {
		t.Run(c.zone+" "+c.from.Format("2006-01"), func(t *testing.T) {
			loc := mustLoc(t, c.zone)
			ws := mustWindows(t, c.specs...)
			const minutes = 10 * 24 * 60
			// The clock's reading at each minute of a span starting two
			// days early, so that occurrences begun before from are seen.
			start := c.from.Add(-48 * time.Hour)
			n := minutes + 4*24*60
			reading := make([]time.Time, n)
			for i := range reading {
				lt := start.Add(time.Duration(i) * time.Minute).In(loc)
				reading[i] = time.Date(lt.Year(), lt.Month(), lt.Day(), lt.Hour(), lt.Minute(), 0, 0, time.UTC)
			}
			first := func(wall time.Time) int {
				for i, r := range reading {
					if !r.Before(wall) {
						return i
					}
				}
				return n
			}
			inside := make([]bool, n)
			y, m, d := start.In(loc).Date()
			for dd := d - 1; dd <= d+14; dd++ {
				day := time.Date(y, m, dd, 0, 0, 0, 0, time.UTC)
				for _, w := range ws {
					if !w.Days[day.Weekday()] {
						continue
					}
					endDay := day
					if w.Overnight() {
						endDay = day.AddDate(0, 0, 1)
					}
					o := first(day.Add(time.Duration(w.Start) * time.Minute))
					cl := first(endDay.Add(time.Duration(w.End) * time.Minute))
					for i := o; i < cl; i++ {
						inside[i] = true
					}
				}
			}
			next := -1
			for i := n - 1; i >= 0; i-- {
				if inside[i] {
					next = i
				}
				if i < 48*60 || i >= 48*60+minutes {
					continue
				}
				at := start.Add(time.Duration(i) * time.Minute)
				if got := ws.Contains(at, loc); got != inside[i] {
					t.Fatalf("Contains(%s) = %v, the clock says %v", at.In(loc).Format("Mon 2006-01-02 15:04 MST"), got, inside[i])
				}
				if next < 0 {
					continue
				}
				want := start.Add(time.Duration(next) * time.Minute)
				if got := ws.NextOpen(at, loc); !got.Equal(want) {
					t.Fatalf("NextOpen(%s) = %s, the clock says %s", at.In(loc).Format("Mon 2006-01-02 15:04 MST"),
						got.In(loc).Format("Mon 15:04 MST"), want.In(loc).Format("Mon 15:04 MST"))
				}
			}
		})
	}
}

func TestWindowsString(t *testing.T) {
	ws := mustWindows(t, "mon-fri 08:00-18:00", "sat 10:00-14:00", "22:00-02:00")
	want := "Mon-Fri 08:00-18:00, Sat 10:00-14:00, every day 22:00-02:00 (ends next day)"
	if got := ws.String(); got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	if got := Windows(nil).String(); got != "any time" {
		t.Errorf("empty String() = %q", got)
	}
}

func TestWindowsNilLocationIsUTC(t *testing.T) {
	ws := mustWindows(t, "mon 08:00-09:00")
	if !ws.Contains(utc("2026-03-30 08:30"), nil) || ws.Contains(utc("2026-03-30 09:00"), nil) {
		t.Error("nil location is not read as UTC")
	}
}
