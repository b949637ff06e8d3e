package access

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// allEvents lists every event constant of state.go. A new event must be
// added here (and to wantTable) so that the exhaustive test covers it.
var allEvents = []Event{
	EventRequested, EventStepApproved, EventApprovalRecorded, EventApproved, EventDenied,
	EventCancelled, EventTimedOut, EventReminded, EventGranted, EventGrantAttemptFailed,
	EventGrantFailed, EventWarned, EventExpiring, EventRevoking, EventDone,
	EventRevokeAttemptFailed, EventExpired, EventRevoked, EventNoted, EventRollingBack,
	EventBreakGlass,
	EventIneligible, EventReassigned,
}

// wantTable is DESIGN.md §4 written out independently of state.go: the
// arrows of the picture, plus the bookkeeping events that keep the state
// (reminders, counted approvals, failed attempts, warnings, notes), which
// go through the table only to be audited.
func wantTable() map[State]map[Event]State {
	t := map[State]map[Event]State{
		"": {EventRequested: StatePending},
		StatePending: {
			EventDenied:    StateDenied,
			EventCancelled: StateCancelled,
			EventTimedOut:  StateTimedOut,
			EventApproved:  StateApproved,
			// the requester broke the glass: approved with no step (issue 16)
			EventBreakGlass: StateApproved,
			// bookkeeping
			EventApprovalRecorded: StatePending,
			EventStepApproved:     StatePending,
			EventReminded:         StatePending,
			// re-checks (invariant 10)
			EventIneligible: StateIneligible,
			EventReassigned: StatePending,
		},
		StateApproved: {
			EventGrantFailed:        StateGrantFailed,
			EventGranted:            StateActive,
			EventGrantAttemptFailed: StateApproved,
			// revoked by an owner/admin or given back before the grant landed
			EventRevoking: StateRevoking,
			EventDone:     StateRevoking,
			// a grant that failed half-way is rolled back (invariant 9)
			EventRollingBack: StateRevoking,
			// the re-check right before the grant (invariant 10)
			EventIneligible: StateIneligible,
		},
		StateActive: {
			EventExpiring: StateRevoking,
			EventRevoking: StateRevoking,
			EventDone:     StateRevoking,
			EventWarned:   StateActive,
		},
		StateRevoking: {
			EventExpired:             StateExpired,
			EventRevoked:             StateRevoked,
			EventRevokeAttemptFailed: StateRevoking,
			// the rollback of a half-applied grant is done
			EventGrantFailed: StateGrantFailed,
		},
		StateDenied:      {},
		StateIneligible:  {},
		StateCancelled:   {},
		StateTimedOut:    {},
		StateGrantFailed: {},
		StateExpired:     {},
		StateRevoked:     {},
	}
	// A note (message references, alerts) may be recorded in every state
	// that exists, and changes nothing.
	for s, evs := range t {
		if s != "" {
			evs[EventNoted] = s
		}
	}
	return t
}

func TestTransitionTableExhaustive(t *testing.T) {
	want := wantTable()
	if len(want) != len(States)+1 {
		t.Fatalf("test table covers %d states, States has %d (+ \"\")", len(want), len(States))
	}
	for _, from := range append([]State{""}, States...) {
		for _, ev := range allEvents {
			to, legal := want[from][ev]
			got, err := Next(from, ev)
			if legal {
				if err != nil {
					t.Errorf("Next(%q, %s): unexpected error %v, want -> %s", from, ev, err, to)
				} else if got != to {
					t.Errorf("Next(%q, %s) = %s, want %s", from, ev, got, to)
				}
				continue
			}
			if err == nil {
				t.Errorf("Next(%q, %s) = %s, want illegal", from, ev, got)
			} else if !errors.Is(err, ErrConflict) {
				t.Errorf("Next(%q, %s): error %v does not wrap ErrConflict", from, ev, err)
			}
		}
	}
}

func TestApply(t *testing.T) {
	at := time.Date(2026, 11, 29, 10, 0, 0, 0, time.FixedZone("CET", 3600))
	base := func() *Request {
		return &Request{ID: "AR-7", State: StatePending, History: []HistoryEntry{{To: StatePending, Event: EventRequested, Actor: "U0ALICE01"}}}
	}
	for _, from := range append([]State{""}, States...) {
		for _, ev := range allEvents {
			_, legal := wantTable()[from][ev]
			r := base()
			r.State = from
			before := r.Clone()
			err := Apply(r, Transition{Event: ev, Actor: "U0BOB0001", At: at, Note: "why"})
			if !legal {
				if !errors.Is(err, ErrConflict) {
					t.Errorf("Apply(%q, %s): err = %v, want ErrConflict", from, ev, err)
				}
				if diff := cmp.Diff(before, r); diff != "" {
					t.Errorf("Apply(%q, %s) changed the request on an illegal event (-before +after):\n%s", from, ev, diff)
				}
				continue
			}
			if err != nil {
				t.Errorf("Apply(%q, %s): %v", from, ev, err)
				continue
			}
			want := before.Clone()
			want.State = wantTable()[from][ev]
			want.History = append(want.History, HistoryEntry{From: from, To: want.State, Event: ev, Actor: "U0BOB0001", At: at.UTC(), Note: "why"})
			if diff := cmp.Diff(want, r); diff != "" {
				t.Errorf("Apply(%q, %s) (-want +got):\n%s", from, ev, diff)
			}
			if r.Last().At.Location() != time.UTC {
				t.Errorf("Apply(%q, %s): history time not in UTC: %v", from, ev, r.Last().At)
			}
		}
	}
}

func TestTerminalAndLive(t *testing.T) {
	tests := []struct {
		s              State
		terminal, live bool
	}{
		{StatePending, false, false},
		{StateApproved, false, true},
		{StateActive, false, true},
		{StateRevoking, false, true},
		{StateDenied, true, false},
		{StateCancelled, true, false},
		{StateTimedOut, true, false},
		{StateGrantFailed, true, false},
		{StateExpired, true, false},
		{StateRevoked, true, false},
		{StateIneligible, true, false},
	}
	if len(tests) != len(States) {
		t.Fatalf("test covers %d states, States has %d", len(tests), len(States))
	}
	want := wantTable()
	for _, tt := range tests {
		t.Run(string(tt.s), func(t *testing.T) {
			if got := tt.s.Terminal(); got != tt.terminal {
				t.Errorf("Terminal() = %v, want %v", got, tt.terminal)
			}
			if got := tt.s.Live(); got != tt.live {
				t.Errorf("Live() = %v, want %v", got, tt.live)
			}
			// Terminal must agree with the table: nothing leaves a terminal state.
			leaves := false
			for _, to := range want[tt.s] {
				if to != tt.s {
					leaves = true
				}
			}
			if tt.terminal == leaves {
				t.Errorf("Terminal() = %v but the table lets the state change: %v", tt.terminal, leaves)
			}
		})
	}
}

func TestStatesListsEveryStateOnce(t *testing.T) {
	seen := map[State]bool{}
	for _, s := range States {
		if s == "" || seen[s] {
			t.Errorf("States has %q twice or empty", s)
		}
		seen[s] = true
	}
}
