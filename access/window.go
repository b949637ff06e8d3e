package access

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Time windows: when a role may be requested, or auto-approved (the
// runbook's `windows:` and `outside_window:` keys). Everything here is a
// pure function of the time it is given; nothing reads a clock.
//
// # Wall-clock semantics and DST
//
// A window is written in wall-clock time ("mon-fri 08:00-18:00") and read
// in a timezone (the role's `timezone:`, else the runbook's). One
// occurrence of a window belongs to the local date it starts on: it opens
// the first time that day's clock shows its start and closes the first
// time the clock shows its end (on the next day for an overnight window
// such as 22:00-02:00, whose end is not after its start). "The first time
// the clock shows X" settles both DST changes the same way:
//
//   - spring forward (Europe/Berlin, 2026-03-29: 02:00 CET jumps to
//     03:00 CEST): a time in the skipped hour, say 02:30, is never shown;
//     the first instant whose clock reads 02:30 or later is the jump
//     itself, 03:00 CEST. A window edge at 02:30 is at 03:00 CEST, and a
//     window 02:00-02:45 has no occurrence that night (it opens and closes
//     at the same instant);
//   - fall back (Europe/Berlin, 2026-10-25: 03:00 CEST goes back to
//     02:00 CET): 02:30 is shown twice; the first one, 02:30 CEST, counts.
//     A window 22:00-02:30 that night closes at 02:30 CEST and does not
//     reopen when the clock shows 02:00-02:30 again, so it lasts 4h30m of
//     real time; a window 01:00-02:30 opens at 01:00 CEST.
//
// So in Berlin a window 22:00-02:00 lasts 4 real hours on both nights
// (its end comes before either change), while 22:00-03:00 lasts 4 hours
// on the spring-forward night (the clock reaches 03:00 an hour early) and
// 6 on the fall-back night (03:00 is first shown at 03:00 CET, after the
// repeated hour): what a person watching the clock would expect.

// Window is one recurring period of the week: on each day in Days, from
// Start to End minutes after local midnight. End is not after Start for an
// overnight window, which then ends on the next day; End is 1440 for
// "24:00". Build it with ParseWindow.
type Window struct {
	Days  [7]bool // indexed by time.Weekday; the day an occurrence starts on
	Start int     // minutes after midnight, 0-1439
	End   int     // minutes after midnight, 0-1440; End == Start is refused
}

// Windows is a role's set of windows: a time is inside when it is inside
// any of them. An empty Windows restricts nothing.
type Windows []Window

// OutsideWindow says what happens to a request made outside a role's
// windows (`outside_window:`).
type OutsideWindow string

const (
	// OutsideRefuse refuses the request and tells the requester when the
	// next window opens. It is the default: windows on a role with human
	// approval only would otherwise change nothing.
	OutsideRefuse OutsideWindow = "refuse"
	// OutsideApprove sends the request to the role's human approvers
	// instead of approving it automatically (approval: auto or
	// auto_if_on_call), and tells the requester why.
	OutsideApprove OutsideWindow = "approve"
)

// ParseOutsideWindow parses `outside_window:` ("approve" or "refuse",
// case-insensitive). The error says what is allowed.
func ParseOutsideWindow(s string) (OutsideWindow, error) {
	switch o := OutsideWindow(strings.ToLower(strings.TrimSpace(s))); o {
	case OutsideApprove, OutsideRefuse:
		return o, nil
	}
	return "", fmt.Errorf("%q is not allowed; use approve (outside the windows a human approves) or refuse (outside the windows nobody may request it)", s)
}

const windowGrammar = `write [DAYS] HH:MM-HH:MM, like "mon-fri 08:00-18:00", "sat,sun 10:00-14:00" or "22:00-02:00" (every day, ending the next day)`

var dayNames = map[string]time.Weekday{
	"sun": time.Sunday, "mon": time.Monday, "tue": time.Tuesday, "wed": time.Wednesday,
	"thu": time.Thursday, "fri": time.Friday, "sat": time.Saturday,
	"sunday": time.Sunday, "monday": time.Monday, "tuesday": time.Tuesday, "wednesday": time.Wednesday,
	"thursday": time.Thursday, "friday": time.Friday, "saturday": time.Saturday,
}

// ParseWindow parses one window: optional days, then a time range, in
// 24-hour wall-clock time.
//
//	mon-fri 08:00-18:00      Monday to Friday
//	sat,sun 10:00-14:00      a list (ranges and single days mix: mon-wed,fri)
//	fri-mon 20:00-23:00      a range may wrap round the week end
//	22:00-02:00              every day; ends at 02:00 the next day
//	mon 00:00-24:00          the whole of Monday
//
// Day names are mon … sun (or in full), case-insensitive. An overnight
// window belongs to the day it starts on: "fri 22:00-02:00" runs from
// Friday 22:00 to Saturday 02:00. The error names the part that is wrong.
func ParseWindow(spec string) (Window, error) {
	s := strings.ToLower(strings.TrimSpace(spec))
	s = strings.NewReplacer("–", "-", "—", "-").Replace(s) // typographic dashes pasted from documents
	if s == "" {
		return Window{}, fmt.Errorf("empty window; %s", windowGrammar)
	}
	var daysPart, timePart string
	if i := strings.LastIndexAny(s, " \t"); i >= 0 {
		daysPart, timePart = strings.TrimSpace(s[:i]), s[i+1:]
	} else {
		timePart = s
	}
	var w Window
	if daysPart == "" {
		for d := range w.Days {
			w.Days[d] = true
		}
	} else {
		days, err := parseDays(daysPart)
		if err != nil {
			return Window{}, fmt.Errorf("%q: %w", spec, err)
		}
		w.Days = days
	}
	from, to, ok := strings.Cut(timePart, "-")
	if !ok {
		return Window{}, fmt.Errorf("%q: %q is not a time range; %s", spec, timePart, windowGrammar)
	}
	var err error
	if w.Start, err = parseClock(from, false); err != nil {
		return Window{}, fmt.Errorf("%q: start %w", spec, err)
	}
	if w.End, err = parseClock(to, true); err != nil {
		return Window{}, fmt.Errorf("%q: end %w", spec, err)
	}
	if w.Start == w.End {
		return Window{}, fmt.Errorf("%q: the window starts and ends at %s, so it is empty; for a whole day write 00:00-24:00", spec, formatClock(w.Start))
	}
	return w, nil
}

// ParseWindows parses each spec with ParseWindow. It reports every bad
// spec, each error naming its index ("windows[1]: …"), joined with
// errors.Join.
func ParseWindows(specs []string) (Windows, error) {
	out := make(Windows, 0, len(specs))
	var errs []error
	for i, s := range specs {
		w, err := ParseWindow(s)
		if err != nil {
			errs = append(errs, fmt.Errorf("windows[%d]: %w", i, err))
			continue
		}
		out = append(out, w)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

// parseDays parses "mon-fri", "sat,sun", "mon-wed, fri".
func parseDays(s string) ([7]bool, error) {
	var days [7]bool
	for item := range strings.SplitSeq(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			return days, fmt.Errorf("an empty day in %q; list days like mon,wed,fri", s)
		}
		a, b, isRange := strings.Cut(item, "-")
		from, err := parseDay(strings.TrimSpace(a))
		if err != nil {
			return days, err
		}
		to := from
		if isRange {
			if to, err = parseDay(strings.TrimSpace(b)); err != nil {
				return days, err
			}
		}
		for d := from; ; d = (d + 1) % 7 {
			days[d] = true
			if d == to {
				break
			}
		}
	}
	return days, nil
}

func parseDay(s string) (time.Weekday, error) {
	if d, ok := dayNames[s]; ok {
		return d, nil
	}
	msg := fmt.Sprintf("%q is not a day; use mon, tue, wed, thu, fri, sat or sun", s)
	if g := Suggest(s, []string{"mon", "tue", "wed", "thu", "fri", "sat", "sun"}); g != "" {
		msg += fmt.Sprintf(" (did you mean %q?)", g)
	}
	return 0, errors.New(msg)
}

// parseClock parses "HH:MM" (H may be one digit) into minutes after
// midnight; "24:00" only when end is set.
func parseClock(s string, end bool) (int, error) {
	h, m, ok := strings.Cut(strings.TrimSpace(s), ":")
	hh, err1 := strconv.Atoi(h)
	mm, err2 := strconv.Atoi(m)
	switch {
	case !ok || err1 != nil || err2 != nil || len(h) == 0 || len(h) > 2 || len(m) != 2 || hh < 0 || mm < 0:
		return 0, fmt.Errorf("%q is not a time; use 24-hour HH:MM, like 08:00 or 17:30", s)
	case hh == 24 && mm == 0 && end:
		return 24 * 60, nil
	case hh > 23 || mm > 59:
		if end {
			return 0, fmt.Errorf("%q is not a time of day; use 00:00 to 23:59, or 24:00 for midnight at the end of the day", s)
		}
		return 0, fmt.Errorf("%q is not a time of day; use 00:00 to 23:59", s)
	}
	return hh*60 + mm, nil
}

func formatClock(min int) string { return fmt.Sprintf("%02d:%02d", min/60, min%60) }

// Overnight reports whether the window ends on the day after it starts.
func (w Window) Overnight() bool { return w.End <= w.Start }

// occurrence returns the instants at which the window's occurrence on the
// local date y-m-d (which must be one of its Days) opens and closes, per
// the rules in the comment at the top of this file. open == close for an
// occurrence swallowed by a DST jump.
func (w Window) occurrence(y int, m time.Month, d int, loc *time.Location) (open, close time.Time) {
	open = firstReading(y, m, d, w.Start, loc)
	endDay := d
	if w.Overnight() {
		endDay++
	}
	return open, firstReading(y, m, endDay, w.End, loc)
}

// firstReading returns the first instant at which a clock in loc shows the
// wall time minute minutes after midnight of y-m-d (normalised like
// time.Date: 1440 is the next midnight), or, when the clock skips that
// time (a DST gap), the instant it jumps past it.
//
// time.Date is not used for the answer: for a time in a gap it moves
// forward by the gap's size (02:30 → 03:30 CEST, the RFC 5545 rule), and
// for a repeated time it picks one occurrence without saying which (it
// gives the second, 02:30 CET, in Berlin).
func firstReading(y int, m time.Month, d, minute int, loc *time.Location) time.Time {
	wall := time.Date(y, m, d, 0, minute, 0, 0, time.UTC) // the clock reading, coded as UTC
	// Zone offsets lie within -12h…+14h, so every instant that can show
	// wall lies within a day of it. Walk the zone periods over that span
	// in time order; the first that shows wall holds the first reading.
	at := wall.Add(-30 * time.Hour)
	limit := wall.Add(30 * time.Hour)
	prevOff, havePrev := 0, false
	for at.Before(limit) {
		lt := at.In(loc)
		_, off := lt.Zone()
		start, end := lt.ZoneBounds()
		if havePrev && !start.IsZero() {
			// At the boundary start, the clock went from start+prevOff
			// (exclusive) to start+off: a forward jump over wall means
			// wall is never shown, and start is the first instant past it.
			before := start.Add(time.Duration(prevOff) * time.Second)
			after := start.Add(time.Duration(off) * time.Second)
			if !wall.Before(before) && wall.Before(after) {
				return start
			}
		}
		c := wall.Add(-time.Duration(off) * time.Second)
		if (start.IsZero() || !c.Before(start)) && (end.IsZero() || c.Before(end)) {
			return c
		}
		if end.IsZero() {
			break
		}
		at, prevOff, havePrev = end, off, true
	}
	// Unreachable for real zone data; fall back to the standard library.
	return time.Date(y, m, d, 0, minute, 0, 0, loc)
}

// Contains reports whether t is inside one of the windows, read in loc
// (nil: UTC). An empty Windows contains every time.
func (ws Windows) Contains(t time.Time, loc *time.Location) bool {
	if len(ws) == 0 {
		return true
	}
	_, _, ok := ws.find(t, loc)
	return ok
}

// find returns the occurrence containing t, if any.
func (ws Windows) find(t time.Time, loc *time.Location) (open, close time.Time, ok bool) {
	if loc == nil {
		loc = time.UTC
	}
	y, m, d := t.In(loc).Date()
	// An occurrence lasts at most a day plus a DST hour, so only those
	// starting the day before, the same day (or, where clocks go back
	// across midnight, the next day) can contain t.
	for dd := d - 1; dd <= d+1; dd++ {
		wd := time.Date(y, m, dd, 12, 0, 0, 0, time.UTC).Weekday()
		for _, w := range ws {
			if !w.Days[wd] {
				continue
			}
			o, c := w.occurrence(y, m, dd, loc)
			if !t.Before(o) && t.Before(c) {
				return o, c, true
			}
		}
	}
	return time.Time{}, time.Time{}, false
}

// NextOpen returns t itself when t is inside the windows (or there are
// none), else the first instant after t at which one opens, read in loc
// (nil: UTC). The result is in loc. A Windows whose every window names
// no day (impossible from ParseWindow) returns the zero Time.
func (ws Windows) NextOpen(t time.Time, loc *time.Location) time.Time {
	if loc == nil {
		loc = time.UTC
	}
	if ws.Contains(t, loc) {
		return t.In(loc)
	}
	y, m, d := t.In(loc).Date()
	var best time.Time
	// Every window recurs at least weekly; a DST jump can swallow one
	// occurrence, so look a day further than a week.
	for dd := d - 1; dd <= d+8; dd++ {
		wd := time.Date(y, m, dd, 12, 0, 0, 0, time.UTC).Weekday()
		for _, w := range ws {
			if !w.Days[wd] {
				continue
			}
			o, c := w.occurrence(y, m, dd, loc)
			if o.After(t) && o.Before(c) && (best.IsZero() || o.Before(best)) {
				best = o
			}
		}
	}
	if best.IsZero() {
		return best
	}
	return best.In(loc)
}

// CloseAfter returns, for a t inside the windows, when the occurrence
// containing it closes (the latest close when overlapping windows contain
// t; windows that merely touch are not joined). It returns the zero Time
// when t is outside, or when there are no windows.
func (ws Windows) CloseAfter(t time.Time, loc *time.Location) time.Time {
	if loc == nil {
		loc = time.UTC
	}
	var best time.Time
	y, m, d := t.In(loc).Date()
	for dd := d - 1; dd <= d+1; dd++ {
		wd := time.Date(y, m, dd, 12, 0, 0, 0, time.UTC).Weekday()
		for _, w := range ws {
			if !w.Days[wd] {
				continue
			}
			o, c := w.occurrence(y, m, dd, loc)
			if !t.Before(o) && t.Before(c) && c.After(best) {
				best = c
			}
		}
	}
	if best.IsZero() {
		return best
	}
	return best.In(loc)
}

var shortDays = [7]string{"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"}

// String renders the window for people: "Mon-Fri 08:00-18:00",
// "every day 22:00-02:00 (ends next day)". ParseWindow accepts it back
// (without the note in brackets).
func (w Window) String() string {
	s := formatDays(w.Days) + " " + formatClock(w.Start) + "-" + formatClock(w.End)
	if w.Overnight() {
		s += " (ends next day)"
	}
	return s
}

// String renders the windows for people, joined with ", "; "any time"
// when there are none.
func (ws Windows) String() string {
	if len(ws) == 0 {
		return "any time"
	}
	parts := make([]string, len(ws))
	for i, w := range ws {
		parts[i] = w.String()
	}
	return strings.Join(parts, ", ")
}

// formatDays renders a day set compactly in week order from Monday: runs
// of three or more as ranges ("Mon-Fri"), others listed ("Sat,Sun").
func formatDays(days [7]bool) string {
	all := true
	for _, on := range days {
		all = all && on
	}
	if all {
		return "every day"
	}
	order := []time.Weekday{time.Monday, time.Tuesday, time.Wednesday, time.Thursday, time.Friday, time.Saturday, time.Sunday}
	var parts []string
	for i := 0; i < len(order); {
		if !days[order[i]] {
			i++
			continue
		}
		j := i
		for j+1 < len(order) && days[order[j+1]] {
			j++
		}
		switch {
		case j-i >= 2:
			parts = append(parts, shortDays[order[i]]+"-"+shortDays[order[j]])
		default:
			for k := i; k <= j; k++ {
				parts = append(parts, shortDays[order[k]])
			}
		}
		i = j + 1
	}
	return strings.Join(parts, ",")
}
