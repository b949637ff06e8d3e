package access

import (
	"sort"
	"strconv"
	"strings"
	"time"
)

// Actor names used when accessbot itself causes a transition.
const (
	ActorBot  = "accessbot"
	ActorAuto = "accessbot:auto" // approval: auto
)

// Request is one request for temporary access and, once approved, the grant
// it became. It is persisted whole by the Store; Version is its
// compare-and-swap counter (the store bumps it on every write).
type Request struct {
	ID        string `json:"id"`  // human ID, "AR-1042"
	Seq       uint64 `json:"seq"` // the number in ID, from the store's sequence
	Version   uint64 `json:"version"`
	State     State  `json:"state"`
	Requester string `json:"requester"` // Slack user ID: the person who gets the access
	// RequestedBy is the person who asked for Requester (`/access for
	// @person …`, the role's on_behalf:), "" when Requester asked. Every
	// rule about "the requester" keeps meaning the person who gets the
	// access; RequestedBy is told too, may cancel, and may never approve.
	RequestedBy string `json:"requested_by,omitempty"`
	System      string `json:"system"`
	Role        string `json:"role"`
	// Duration is how long access lasts once granted (the clock starts at grant).
	Duration time.Duration `json:"duration"`
	Reason   string        `json:"reason,omitempty"`
	Extends  string        `json:"extends,omitempty"` // ID of the grant this one extends
	// Auto is set when the request was approved without a human (approval:
	// auto, or the requester was on call); AutoBy says which, as recorded
	// in the audit note: "approval: auto", "on call: pagerduty:P1ABC2D".
	Auto   bool   `json:"auto,omitempty"`
	AutoBy string `json:"auto_by,omitempty"`

	// Ticket is the request's ticket when its role requires one (ticket:),
	// as the ticket system reported it at submission (only Ref when the
	// role does not verify tickets). Shown on every copy, sent in the
	// webhook body and exported with the audit records.
	Ticket *Ticket `json:"ticket,omitempty"`
	// Notes are what the requester was told, at submission, about how the
	// request was handled beyond "sent to …" (the on-call check, a time
	// window, an unverified ticket), each a plain sentence.
	Notes []string `json:"notes,omitempty"`
	// BreakGlass is set for a break-glass request: approved at once by
	// the requester (EventBreakGlass), never by an approval step.
	// Broadcast are the people told of it besides the system owners and
	// the audit channel: every approver the role's steps resolved to,
	// at submission.
	BreakGlass bool     `json:"break_glass,omitempty"`
	Broadcast  []string `json:"broadcast,omitempty"`

	// Entitlement is what the grant gives; fixed at creation.
	Entitlement Entitlement `json:"entitlement"`

	Steps       []Step     `json:"steps,omitempty"`
	CurrentStep int        `json:"current_step"`
	Decisions   []Decision `json:"decisions,omitempty"`

	CreatedAt time.Time `json:"created_at"`
	DecidedAt time.Time `json:"decided_at,omitzero"`
	GrantedAt time.Time `json:"granted_at,omitzero"`
	ExpiresAt time.Time `json:"expires_at,omitzero"` // GrantedAt + Duration
	EndedAt   time.Time `json:"ended_at,omitzero"`

	// Deadlines, as absolute times (zero: none). NextDeadline derives the one
	// the store indexes from these and the state.
	RemindAt      time.Time `json:"remind_at,omitzero"`
	TimeoutAt     time.Time `json:"timeout_at,omitzero"`
	WarnAt        time.Time `json:"warn_at,omitzero"`
	NextAttemptAt time.Time `json:"next_attempt_at,omitzero"` // grant or revoke retry
	// ConfirmAt re-reminds owners of an unconfirmed manual task.
	ConfirmAt time.Time `json:"confirm_at,omitzero"`

	Attempts  int    `json:"attempts,omitempty"` // failed grant or revoke attempts in a row
	LastError string `json:"last_error,omitempty"`
	// Late is set when removal started after ExpiresAt by more than the
	// reconcile slack (the bot was down); the requester is told.
	Late bool `json:"late,omitempty"`
	// Covered is set when removal was skipped at the target because another
	// live grant still covers the entitlement (invariant 5).
	CoveredBy string `json:"covered_by,omitempty"`
	// Alerted is set once owners were told a revoke keeps failing, so that
	// they are told again when it finally succeeds.
	Alerted bool `json:"alerted,omitempty"`
	// AwaitingConfirmation is set while a manual connector waits for an owner's Done.
	AwaitingConfirmation bool `json:"awaiting_confirmation,omitempty"`

	// Receipt is what the grant did at the target (invariant 8), stored
	// in the transition to active (or with a rollback of a half-applied
	// grant); nil before, and for records written before receipts.
	Receipt *Receipt `json:"receipt,omitempty"`
	// GrantedTo is the person as the grant saw them (email and name at
	// grant time): the revoke acts on this identity, never a new lookup.
	GrantedTo *Person `json:"granted_to,omitempty"`
	// GrantCalling is set, durably, right before each connector grant
	// call and cleared by the write that records its outcome. Found set
	// at the next attempt, it means an earlier call's outcome was lost
	// (a crash, a failed write): the grant may have reached the target.
	GrantCalling bool `json:"grant_calling,omitempty"`
	// GrantUncertain is set once an earlier grant attempt may have
	// applied the access (its outcome was lost, or it failed in a way
	// that does not say the target did nothing). A later receipt saying
	// the access was held before cannot then be trusted: the access may
	// be ours, and it is removed at the end (least privilege).
	GrantUncertain bool `json:"grant_uncertain,omitempty"`

	Messages []MessageRef   `json:"messages,omitempty"`
	History  []HistoryEntry `json:"history,omitempty"`

	// Outbox holds the notices not yet delivered (invariant 11); the
	// earliest Due is part of NextDeadline. NoticeSeq numbers them.
	Outbox    []Notice `json:"outbox,omitempty"`
	NoticeSeq uint64   `json:"notice_seq,omitempty"`
	// Rev counts the changes that posted copies show (state, step,
	// decisions, a task waiting): a copy rendered at an older Rev is out
	// of date and is updated through the outbox.
	Rev int `json:"rev,omitempty"`
}

// Step is one approval step as resolved for this request.
type Step struct {
	// Approvers are the Slack user IDs who may approve this step, resolved
	// when the step started, never including the requester.
	Approvers []string `json:"approvers"`
	Min       int      `json:"min"`
	// Fallback says why Approvers are not the configured sources: "owners"
	// or "admins" when the sources resolved to nobody but the requester.
	Fallback string `json:"fallback,omitempty"`
	Sources  string `json:"sources"` // the configured sources, for display ("manager", "owners")
}

// Decision is one approver's click.
type Decision struct {
	Step    int       `json:"step"`
	Actor   string    `json:"actor"`
	Approve bool      `json:"approve"`
	Reason  string    `json:"reason,omitempty"`
	At      time.Time `json:"at"`
}

// MessageRef kinds. The Slack adapter decides what each looks like; the
// lifecycle only needs to know which copies ask approvers to act.
const (
	RefApproval = "approval" // an approver's DM with Approve / Deny
	RefAudit    = "audit"    // the audit channel's information copy
	RefWarning  = "warning"  // the requester's expiry warning
	RefTask     = "task"     // a manual connector's task for the owners
	RefReview   = "review"   // the owners' break-glass review, with Revoke now
)

// MessageRef locates one posted copy of a request's messages in Slack, so
// that it can be updated after a restart.
type MessageRef struct {
	Kind    string `json:"kind"` // "approval", "audit", "task", "warning", "request"
	Channel string `json:"channel"`
	TS      string `json:"ts"`
	User    string `json:"user,omitempty"` // whose DM, for approval copies
	Step    int    `json:"step,omitempty"`
	Op      string `json:"op,omitempty"`    // tasks: "grant" or "revoke"
	Stale   bool   `json:"stale,omitempty"` // already updated to its final form
	Rev     int    `json:"rev,omitempty"`   // the Request.Rev the copy shows
}

// Entitlement is what a grant gives: the connector instance, the role's
// grant parameters and the person. Two grants with equal Keys give the same
// access (DESIGN.md §4 invariant 5).
type Entitlement struct {
	Connector string            `json:"connector"`
	Params    map[string]string `json:"params,omitempty"`
	Person    string            `json:"person"` // Slack user ID
}

// Key is a canonical string for the entitlement, stable across restarts.
func (e Entitlement) Key() string {
	keys := make([]string, 0, len(e.Params))
	for k := range e.Params {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString(strconv.Quote(e.Connector))
	for _, k := range keys {
		b.WriteString("|" + strconv.Quote(k) + "=" + strconv.Quote(e.Params[k]))
	}
	b.WriteString("|" + strconv.Quote(e.Person))
	return b.String()
}

// ApprovedBy lists every approver of every step, in order.
func (r *Request) ApprovedBy() []string {
	var out []string
	for _, d := range r.Decisions {
		if d.Approve {
			out = append(out, d.Actor)
		}
	}
	return out
}

// Approvals returns the distinct approvers counted for step i so far.
func (r *Request) Approvals(step int) []string {
	var out []string
	for _, d := range r.Decisions {
		if d.Step == step && d.Approve && !contains(out, d.Actor) {
			out = append(out, d.Actor)
		}
	}
	return out
}

// Denial returns the deny decision, if any.
func (r *Request) Denial() (Decision, bool) {
	for _, d := range r.Decisions {
		if !d.Approve {
			return d, true
		}
	}
	return Decision{}, false
}

// Last returns the last history entry (zero if none).
func (r *Request) Last() HistoryEntry {
	if len(r.History) == 0 {
		return HistoryEntry{}
	}
	return r.History[len(r.History)-1]
}

// IsApprover reports whether user may decide the current step.
func (r *Request) IsApprover(user string) bool {
	st, ok := r.Current()
	return ok && r.State == StatePending && contains(st.Approvers, user)
}

// Current returns the step being decided, ok=false when there is none
// (an automatic approval, or a request past its steps). Every reader of
// Steps[CurrentStep] goes through it, so a request without steps can
// never crash a renderer.
func (r *Request) Current() (Step, bool) {
	if r.CurrentStep < 0 || r.CurrentStep >= len(r.Steps) {
		return Step{}, false
	}
	return r.Steps[r.CurrentStep], true
}

// IsParty reports whether user takes part in r: the requester (or the
// person who asked for them), an approver
// of any step (or one who decided), an owner of its system or an admin.
// Refusals to anyone else reveal nothing about the request.
func (r *Request) IsParty(rb *Runbook, user string) bool {
	if user == r.Requester || user == r.RequestedBy && user != "" || rb.IsAdmin(user) {
		return true
	}
	if sys := rb.Systems[r.System]; sys != nil && sys.IsOwner(user) {
		return true
	}
	for _, st := range r.Steps {
		if contains(st.Approvers, user) {
			return true
		}
	}
	for _, d := range r.Decisions {
		if d.Actor == user {
			return true
		}
	}
	for _, m := range r.Messages {
		if m.User == user { // asked once, even if no longer
			return true
		}
	}
	return false
}

// NextDeadline is the earliest time at which something must happen to r
// without anyone clicking: the one deadline the store indexes (its state's
// deadline, or an undelivered notice). Zero means none.
func (r *Request) NextDeadline() time.Time {
	min := r.StateDeadline()
	for _, n := range r.Outbox {
		if !n.Due.IsZero() && (min.IsZero() || n.Due.Before(min)) {
			min = n.Due
		}
	}
	return min
}

// StateDeadline is NextDeadline without the outbox: when the lifecycle
// itself must act (reminder, timeout, grant or revoke attempt, expiry
// warning, expiry, task reminder). Zero means none.
func (r *Request) StateDeadline() time.Time {
	var ts []time.Time
	switch r.State {
	case StatePending:
		ts = []time.Time{r.RemindAt, r.TimeoutAt}
	case StateApproved:
		ts = []time.Time{r.NextAttemptAt, r.ConfirmAt}
	case StateActive:
		ts = []time.Time{r.WarnAt, r.ExpiresAt}
	case StateRevoking:
		ts = []time.Time{r.NextAttemptAt, r.ConfirmAt}
	}
	var min time.Time
	for _, t := range ts {
		if !t.IsZero() && (min.IsZero() || t.Before(min)) {
			min = t
		}
	}
	return min
}

// Clone returns a deep copy, so that a caller may change it without
// affecting the original.
func (r *Request) Clone() *Request {
	c := *r
	c.Entitlement.Params = cloneMap(r.Entitlement.Params)
	c.Steps = nil // a nil Steps stays nil (auto requests), so a clone equals its original
	if r.Steps != nil {
		c.Steps = make([]Step, len(r.Steps))
	}
	for i, s := range r.Steps {
		s.Approvers = append([]string(nil), s.Approvers...)
		c.Steps[i] = s
	}
	c.Decisions = append([]Decision(nil), r.Decisions...)
	if r.Ticket != nil {
		t := *r.Ticket
		c.Ticket = &t
	}
	c.Notes = cloneStrings(r.Notes)
	c.Broadcast = cloneStrings(r.Broadcast)
	c.Messages = append([]MessageRef(nil), r.Messages...)
	c.History = append([]HistoryEntry(nil), r.History...)
	if r.Receipt != nil {
		rc := *r.Receipt
		rc.Data = append([]byte(nil), r.Receipt.Data...)
		c.Receipt = &rc
	}
	if r.GrantedTo != nil {
		p := *r.GrantedTo
		c.GrantedTo = &p
	}
	c.Outbox = nil
	if r.Outbox != nil {
		c.Outbox = make([]Notice, len(r.Outbox))
	}
	for i, n := range r.Outbox {
		if n.Ref != nil {
			ref := *n.Ref
			n.Ref = &ref
		}
		n.Request = nil
		c.Outbox[i] = n
	}
	return &c
}

// cloneStrings copies xs, keeping nil nil (so that a clone equals its
// original).
func cloneStrings(xs []string) []string {
	if xs == nil {
		return nil
	}
	return append([]string{}, xs...)
}

func cloneMap(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	c := make(map[string]string, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

// FormatID renders a sequence number as a human request ID ("AR-1042").
func FormatID(seq uint64) string { return "AR-" + strconv.FormatUint(seq, 10) }

// ParseID parses a human request ID, case-insensitively, with or without
// the "AR-" prefix. It returns an error wrapping ErrInvalid.
func ParseID(s string) (uint64, error) {
	t := strings.ToUpper(strings.TrimSpace(s))
	t = strings.TrimPrefix(t, "AR-")
	n, err := strconv.ParseUint(t, 10, 64)
	if err != nil || n == 0 {
		return 0, Invalidf("%q is not a request ID; IDs look like AR-1042", s)
	}
	return n, nil
}
