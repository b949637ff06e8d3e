package access

import (
	"context"
	"time"
)

// Clock is the source of time. Production uses the wall clock; tests inject
// a fake and never sleep (DESIGN.md §4 invariant 7).
type Clock interface{ Now() time.Time }

// ClockFunc adapts a function to Clock.
type ClockFunc func() time.Time

// Now calls f.
func (f ClockFunc) Now() time.Time { return f() }

// Store persists requests. Implementations must be safe for concurrent use
// and must never hold a transaction across a call into this package other
// than the update function.
type Store interface {
	// Create assigns r a sequence number and ID, sets Version to 1 and
	// persists it with its history and an audit record per history entry,
	// in one transaction. r must already hold its first transition. It
	// returns the stored copy.
	Create(ctx context.Context, r *Request) (*Request, error)
	// Get returns a copy of the request, or an error wrapping ErrNotFound.
	Get(ctx context.Context, id string) (*Request, error)
	// Update is the one write path (invariant 1): inside one transaction it
	// reads the request, calls fn on a copy, and if fn returns nil persists
	// the copy with Version+1, an audit record for every history entry fn
	// appended, and the deadline index moved to the copy's NextDeadline.
	// fn must be pure (it may run more than once and must not do I/O); if it
	// returns an error nothing is written and Update returns that error.
	// Errors: ErrNotFound, fn's error, or storage failures.
	Update(ctx context.Context, id string, fn func(r *Request) error) (*Request, error)
	// List returns copies of the requests matching f, newest first.
	List(ctx context.Context, f Filter) ([]*Request, error)
	// Due returns up to limit request IDs whose NextDeadline is at or before
	// until, earliest first (a cursor scan of the deadline index).
	Due(ctx context.Context, until time.Time, limit int) ([]Due, error)
	// Deadlines calls fn for every indexed deadline in time order, without
	// decoding requests (restart arms the timer wheel from this). fn
	// returning false stops the scan.
	Deadlines(ctx context.Context, fn func(d Due) bool) error
}

// Due is one entry of the deadline index.
type Due struct {
	ID string
	At time.Time
}

// Filter selects requests for List. Zero fields match everything.
type Filter struct {
	Requester   string  // requests made by this person
	Approver    string  // pending requests whose current step this person may approve
	System      string  // requests for this system
	States      []State // any of these states
	Entitlement string  // Entitlement.Key()
	Limit       int
}

// Connector applies and removes access in one target system. Both methods
// are idempotent and keyed by Grant.ID: a grant of access the person already
// has, and a revoke of access they no longer have, return nil. Failures are
// classified with RetryableError / PermanentError; an unclassified error is
// treated as retryable. Implementations must honour ctx.
type Connector interface {
	Grant(ctx context.Context, g Grant) error
	Revoke(ctx context.Context, g Grant) error
}

// Checker is an optional capability of a Connector: whether the person
// currently has the access at the target.
type Checker interface {
	Check(ctx context.Context, g Grant) (bool, error)
}

// ParamsChecker is an optional capability of a Connector: it checks a
// role's grant parameters (the runbook's `grant:` map) without contacting
// the target, so that a typo is a start-up error naming the key, not a
// failed grant after people approved. It returns nil or an error whose
// text starts with the offending key ("group_id: required"); several
// problems are joined with errors.Join. Unknown keys are errors.
type ParamsChecker interface {
	CheckParams(params map[string]string) error
}

// Grant is what a connector needs to apply or remove one grant.
type Grant struct {
	ID         string // request ID, the idempotency key
	System     string
	Role       string
	Params     map[string]string // the role's grant parameters
	User       Person
	Reason     string
	ApprovedBy []string
	GrantedAt  time.Time // UTC
	ExpiresAt  time.Time // UTC
}

// Person is a Slack user as the directory knows them.
type Person struct {
	SlackID string `json:"slack_id"`
	Email   string `json:"email"`
	Name    string `json:"name"` // Slack real name
	TZ      string `json:"tz,omitempty"`
}

// Directory answers questions about people. Implementations may cache.
type Directory interface {
	// Person returns the user's profile; ErrNotFound if unknown.
	Person(ctx context.Context, user string) (Person, error)
	// ProfileField returns the value of a custom profile field ("" if unset).
	ProfileField(ctx context.Context, user, field string) (string, error)
	// UsergroupMembers returns a user group's members.
	UsergroupMembers(ctx context.Context, group string) ([]string, error)
	// UserByEmail returns the user ID for an email; ErrNotFound if none.
	UserByEmail(ctx context.Context, email string) (string, error)
}

// Scheduler arms in-memory timers for request deadlines (the timer wheel).
// It is a cache of the store's deadline index (invariant 3): losing a timer
// delays an action only until the next reconcile pass.
type Scheduler interface {
	// Arm sets the one timer of request id to fire at at, replacing any.
	Arm(id string, at time.Time)
	// Disarm removes the timer of request id, if any.
	Disarm(id string)
}

// NoticeKind is what a notice tells people.
type NoticeKind string

// The notices the lifecycle sends (DESIGN.md §3). The Notifier decides the
// wording and the surfaces; the lifecycle decides when.
const (
	NoticeSubmitted       NoticeKind = "submitted"        // requester: submitted, and to whom
	NoticeApprovalNeeded  NoticeKind = "approval_needed"  // approvers of Request.CurrentStep: DM with buttons
	NoticeReminder        NoticeKind = "reminder"         // approvers still pending after reminder_after
	NoticeProgress        NoticeKind = "progress"         // a step met or an approval counted: update copies, tell requester
	NoticeDecided         NoticeKind = "decided"          // approved/denied/cancelled/timed out: update every copy, tell requester
	NoticeGranted         NoticeKind = "granted"          // requester: granted until …
	NoticeGrantFailed     NoticeKind = "grant_failed"     // requester and owners: why
	NoticeExpiryWarning   NoticeKind = "expiry_warning"   // requester: Extend / I'm done
	NoticeRevokeDelayed   NoticeKind = "revoke_delayed"   // requester: removal is being retried
	NoticeRemoved         NoticeKind = "removed"          // requester: expired/revoked and removed (maybe late)
	NoticeRevokeFailing   NoticeKind = "revoke_failing"   // owners: a revoke keeps failing
	NoticeRevokeRecovered NoticeKind = "revoke_recovered" // owners: the failing revoke finally succeeded
	NoticeTask            NoticeKind = "task"             // owners: a manual grant/removal to do, with Done
	NoticeRefresh         NoticeKind = "refresh"          // nobody told: bring every stored copy up to date
)

// Notice is one thing to tell people about a request.
type Notice struct {
	Kind    NoticeKind
	Request *Request // snapshot after the transition that caused the notice
	// Text is extra context: the error for failures, who was asked instead
	// for fallbacks, "grant" or "revoke" for tasks.
	Text string
}

// Notifier delivers notices (the Slack adapter). Notify returns references
// to any messages it posted that must be updated later (approval DMs,
// tasks, warnings); the lifecycle stores them with the request. Notify
// must be idempotent enough that a repeat after a crash only repeats a DM.
type Notifier interface {
	Notify(ctx context.Context, n Notice) ([]MessageRef, error)
}
