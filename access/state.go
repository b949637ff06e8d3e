package access

import (
	"fmt"
	"time"
)

// State is where a request is in its lifecycle. The zero value is invalid.
type State string

// The lifecycle states; see the package comment for the picture.
const (
	StatePending     State = "pending"
	StateApproved    State = "approved"
	StateDenied      State = "denied"
	StateCancelled   State = "cancelled"
	StateTimedOut    State = "timed_out"
	StateGrantFailed State = "grant_failed"
	StateActive      State = "active"
	StateRevoking    State = "revoking"
	StateExpired     State = "expired"
	StateRevoked     State = "revoked"
	// StateIneligible: ended before any grant because the requester may no
	// longer request it (left the team, deactivated), found by a re-check
	// (invariant 10).
	StateIneligible State = "ineligible"
)

// States lists every state, in lifecycle order.
var States = []State{StatePending, StateApproved, StateDenied, StateCancelled, StateTimedOut,
	StateGrantFailed, StateActive, StateRevoking, StateExpired, StateRevoked, StateIneligible}

// Terminal reports whether nothing more can happen to a request in s.
func (s State) Terminal() bool {
	switch s {
	case StateDenied, StateCancelled, StateTimedOut, StateGrantFailed, StateExpired, StateRevoked, StateIneligible:
		return true
	}
	return false
}

// Live reports whether a request in s holds or is about to hold access (it
// counts towards its entitlement and must eventually be revoked).
func (s State) Live() bool { return s == StateApproved || s == StateActive || s == StateRevoking }

// Event is what happened to a request. Each event is recorded in the
// request's history and in the audit log.
type Event string

// The events of the lifecycle. Events that keep the state (StepApproved,
// Reminded, Warned, GrantAttemptFailed, RevokeAttemptFailed, Noted) still
// go through the table so that they are audited like every other change.
const (
	EventRequested           Event = "requested"
	EventStepApproved        Event = "step_approved" // a step met, more steps to go
	EventApprovalRecorded    Event = "approval_recorded"
	EventApproved            Event = "approved" // the last step met (or approval: auto)
	EventDenied              Event = "denied"
	EventCancelled           Event = "cancelled"
	EventTimedOut            Event = "timed_out"
	EventReminded            Event = "reminded"
	EventGranted             Event = "granted"
	EventGrantAttemptFailed  Event = "grant_attempt_failed"
	EventGrantFailed         Event = "grant_failed"
	EventWarned              Event = "warned"
	EventExpiring            Event = "expiring" // expiry reached: removal starts
	EventRevoking            Event = "revoking" // revoked by an owner or admin: removal starts
	EventDone                Event = "done"     // the requester clicked "I'm done": removal starts
	EventRevokeAttemptFailed Event = "revoke_attempt_failed"
	EventExpired             Event = "expired" // removal confirmed after expiry
	EventRevoked             Event = "revoked" // removal confirmed after revoke or "I'm done"
	EventNoted               Event = "noted"   // bookkeeping only (message references, alerts)
	// EventRollingBack: a grant failed after changing something at the
	// target; a compensating revoke removes what it left (invariant 9).
	EventRollingBack Event = "rolling_back"
	// EventBreakGlass: the requester broke the glass (the role's
	// break_glass:): approved at once, without any approval step, and
	// told to the owners, the role's approvers and the audit channel.
	EventBreakGlass Event = "break_glass"
	// EventIneligible: a re-check found the requester no longer allowed to
	// request it; the request ends before any grant.
	EventIneligible Event = "ineligible"
	// EventReassigned: a re-check found the current step's approvers
	// changed (a new manager, someone left a team): the new ones are
	// asked; approvals of people still eligible are kept.
	EventReassigned Event = "reassigned"
)

// table is the one transition table of DESIGN.md §4: for each state, the
// events it accepts and the state each leads to. Anything absent is illegal.
var table = map[State]map[Event]State{
	"": {EventRequested: StatePending},
	StatePending: {
		EventApprovalRecorded: StatePending,
		EventStepApproved:     StatePending,
		EventApproved:         StateApproved,
		EventBreakGlass:       StateApproved,
		EventDenied:           StateDenied,
		EventCancelled:        StateCancelled,
		EventTimedOut:         StateTimedOut,
		EventReminded:         StatePending,
		EventNoted:            StatePending,
		EventIneligible:       StateIneligible,
		EventReassigned:       StatePending,
	},
	StateApproved: {
		EventGranted:            StateActive,
		EventGrantAttemptFailed: StateApproved,
		EventGrantFailed:        StateGrantFailed,
		// Stopped while the grant is being applied or retried: the grant
		// may have reached the target, so it is removed like any other.
		EventRevoking:    StateRevoking,
		EventDone:        StateRevoking,
		EventRollingBack: StateRevoking,
		EventIneligible:  StateIneligible,
		EventNoted:       StateApproved,
	},
	StateActive: {
		EventWarned:   StateActive,
		EventExpiring: StateRevoking,
		EventRevoking: StateRevoking,
		EventDone:     StateRevoking,
		EventNoted:    StateActive,
	},
	StateRevoking: {
		EventRevokeAttemptFailed: StateRevoking,
		EventExpired:             StateExpired,
		EventRevoked:             StateRevoked,
		// The rollback of a half-applied grant is done: nothing of it is
		// left, and only now is the request grant_failed.
		EventGrantFailed: StateGrantFailed,
		EventNoted:       StateRevoking,
	},
	StateDenied:      {EventNoted: StateDenied},
	StateCancelled:   {EventNoted: StateCancelled},
	StateTimedOut:    {EventNoted: StateTimedOut},
	StateGrantFailed: {EventNoted: StateGrantFailed},
	StateExpired:     {EventNoted: StateExpired},
	StateRevoked:     {EventNoted: StateRevoked},
	StateIneligible:  {EventNoted: StateIneligible},
}

// Next returns the state that event ev leads to from state s, or an error
// wrapping ErrConflict when the table does not allow it.
func Next(s State, ev Event) (State, error) {
	to, ok := table[s][ev]
	if !ok {
		return "", fmt.Errorf("%w: %s cannot happen to a request that is %s", ErrConflict, ev, s)
	}
	return to, nil
}

// Transition is one step through the table, as recorded in history and audit.
type Transition struct {
	Event Event
	Actor string // Slack user ID, or "accessbot" for the bot's own decisions
	At    time.Time
	Note  string // free text: a deny reason, an error, "removed late"
}

// HistoryEntry is a transition as applied, with the states it connected.
type HistoryEntry struct {
	From  State     `json:"from"`
	To    State     `json:"to"`
	Event Event     `json:"event"`
	Actor string    `json:"actor"`
	At    time.Time `json:"at"`
	Note  string    `json:"note,omitempty"`
}

// Apply moves r through the table with t, appending the history entry. It is
// the only function that changes Request.State. On an illegal transition it
// returns an error wrapping ErrConflict and leaves r unchanged.
func Apply(r *Request, t Transition) error {
	to, err := Next(r.State, t.Event)
	if err != nil {
		return fmt.Errorf("%s: %w", r.ID, err)
	}
	r.History = append(r.History, HistoryEntry{From: r.State, To: to, Event: t.Event, Actor: t.Actor, At: t.At.UTC(), Note: t.Note})
	r.State = to
	return nil
}
