package access

import (
	"fmt"
	"strings"
	"time"
)

// Schedule is a digest schedule: "daily HH:MM", "weekly DAY HH:MM" (DAY one
// of mon … sun) or "off". Times are wall-clock times in the runbook's
// timezone.
type Schedule struct {
	Off     bool
	Weekly  bool
	Weekday time.Weekday // when Weekly
	Hour    int
	Minute  int
}

var weekdays = map[string]time.Weekday{
	"sun": time.Sunday, "mon": time.Monday, "tue": time.Tuesday, "wed": time.Wednesday,
	"thu": time.Thursday, "fri": time.Friday, "sat": time.Saturday,
}

const scheduleGrammar = `use "daily HH:MM", "weekly mon|tue|wed|thu|fri|sat|sun HH:MM" or "off"`

// ParseSchedule parses a digest schedule. Case and repeated spaces are
// ignored. The error says what is allowed.
func ParseSchedule(s string) (Schedule, error) {
	f := strings.Fields(strings.ToLower(s))
	bad := func() (Schedule, error) {
		return Schedule{}, fmt.Errorf("%q is not a schedule; %s", s, scheduleGrammar)
	}
	var sch Schedule
	var clock string
	switch {
	case len(f) == 1 && f[0] == "off":
		return Schedule{Off: true}, nil
	case len(f) == 2 && f[0] == "daily":
		clock = f[1]
	case len(f) == 3 && f[0] == "weekly":
		d, ok := weekdays[f[1]]
		if !ok {
			return bad()
		}
		sch.Weekly, sch.Weekday, clock = true, d, f[2]
	default:
		return bad()
	}
	t, err := time.Parse("15:04", clock)
	if err != nil {
		return bad()
	}
	sch.Hour, sch.Minute = t.Hour(), t.Minute()
	return sch, nil
}

// String renders the schedule in the canonical form ParseSchedule accepts.
func (s Schedule) String() string {
	switch {
	case s.Off:
		return "off"
	case s.Weekly:
		return fmt.Sprintf("weekly %s %02d:%02d", strings.ToLower(s.Weekday.String()[:3]), s.Hour, s.Minute)
	default:
		return fmt.Sprintf("daily %02d:%02d", s.Hour, s.Minute)
	}
}

// Next returns the first time strictly after after at which the schedule
// fires, in loc. A wall-clock time skipped by a daylight-saving jump fires
// at the normalised instant time.Date gives (an hour later). Next returns
// the zero time for an Off schedule.
func (s Schedule) Next(after time.Time, loc *time.Location) time.Time {
	if s.Off {
		return time.Time{}
	}
	a := after.In(loc)
	// Eight days cover a weekly schedule whose day is today but whose time
	// has passed.
	for i := 0; i <= 8; i++ {
		day := time.Date(a.Year(), a.Month(), a.Day()+i, s.Hour, s.Minute, 0, 0, loc)
		if s.Weekly && day.Weekday() != s.Weekday {
			continue
		}
		if day.After(after) {
			return day
		}
	}
	return time.Time{} // unreachable
}

// Prev returns the latest time at or before at at which the schedule fires,
// in loc (the zero time for an Off schedule). Like Next it follows wall
// time, so a daily 09:00 is 09:00 local on both sides of a DST change.
func (s Schedule) Prev(at time.Time, loc *time.Location) time.Time {
	if s.Off {
		return time.Time{}
	}
	// A weekly schedule fires at least once in any 8 days, DST included.
	var prev time.Time
	for t := s.Next(at.Add(-8*24*time.Hour), loc); !t.IsZero() && !t.After(at); t = s.Next(t, loc) {
		prev = t
	}
	return prev
}
