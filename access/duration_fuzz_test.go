package access

import (
	"strings"
	"testing"
)

// FuzzParseDuration: ParseDuration never panics; an error has text; a
// success is positive, within the documented bound, and survives a round
// trip through FormatDuration (whole seconds, which is what FormatDuration
// shows; sub-second parts are dropped by design, so the round trip is
// compared at second precision).
func FuzzParseDuration(f *testing.F) {
	for _, s := range []string{
		"2h", "90m", "1d", "1h30m", "4.35h", "0s", "-1h", "", " ", "1", "h", ".h", "1..5h",
		"36500d", "36501d", "9999999999999999999h", "1e9h", "1.5d", "1ms", "3s", "1h 30m",
		"2H", "0.0000000001s", "1d1d1d", "\x00", "１h",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDuration(s)
		if err != nil {
			if strings.TrimSpace(err.Error()) == "" {
				t.Fatalf("ParseDuration(%q): empty error text", s)
			}
			if d != 0 {
				t.Fatalf("ParseDuration(%q) = %v with error %v", s, d, err)
			}
			return
		}
		if d <= 0 {
			t.Fatalf("ParseDuration(%q) = %v, want positive", s, d)
		}
		if d > maxParsedDuration {
			t.Fatalf("ParseDuration(%q) = %v, over the maximum %v", s, d, maxParsedDuration)
		}
		text := FormatDuration(d)
		back, err := ParseDuration(text)
		whole := d.Truncate(1e9)
		if whole == 0 {
			// Under a second: FormatDuration shows "0s", which is refused.
			if err == nil {
				t.Fatalf("FormatDuration(%v) = %q parsed as %v, want an error for 0s", d, text, back)
			}
			return
		}
		if err != nil {
			t.Fatalf("FormatDuration(%v) = %q does not parse: %v", d, text, err)
		}
		if back != whole {
			t.Fatalf("ParseDuration(%q) = %v; FormatDuration = %q; back = %v, want %v", s, d, text, back, whole)
		}
	})
}
