package access

import (
	"context"
	"errors"
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

// Connector applies and removes access in one target system (DESIGN.md §4
// invariants 8 and 9).
//
// Grant applies g and returns a Receipt: the target-side identity it acted
// on and what it changed. Grant is idempotent and keyed by Grant.ID: a grant
// of access the person already has returns nil with Receipt.PreExisting
// set. When Grant fails after changing something (the first of two calls
// succeeded), it returns the partial receipt with the error, so that the
// lifecycle can roll the change back; a receipt with nothing changed is
// the zero Receipt.
//
// Revoke removes exactly what g.Receipt says the grant changed, acting on
// Receipt.UserID and never re-resolving the person by email. A target
// that no longer knows Receipt.UserID, or answers "not a member", has no
// access left: Revoke returns nil. For records granted before receipts
// existed (g.Receipt nil) Revoke may resolve the person by email, but must
// then return a PermanentError wrapping ErrUnknownUser when nobody is
// found: an email that changed must never count as "access removed".
// Access that pre-existed (Receipt.PreExisting) is never passed to Revoke;
// the lifecycle leaves it in place.
//
// Failures are classified with RetryableError / PermanentError; an
// unclassified error is treated as retryable. Implementations must honour
// ctx.
type Connector interface {
	Grant(ctx context.Context, g Grant) (Receipt, error)
	Revoke(ctx context.Context, g Grant) error
}

// MaxReceiptBytes bounds Receipt.Data (the webhook contract allows a
// receiver's receipt object of at most 4 KiB, DESIGN.md §6).
const MaxReceiptBytes = 4096

// Receipt is what one grant did at its target. It is stored with the
// request in the same transition as active (or, for a grant that failed
// half-way, with the rollback that undoes it) and handed back to Revoke.
type Receipt struct {
	// UserID is the person's identity in the target system (Okta user ID,
	// Salesforce 005… ID, LDAP DN, database role name): what the revoke
	// acts on. Empty for connectors without a target-side identity
	// (manual, webhook without a receipt).
	UserID string `json:"user_id,omitempty"`
	// PreExisting is set when the person already had the access before
	// this grant (an existing group membership): the revoke leaves it.
	PreExisting bool `json:"pre_existing,omitempty"`
	// Previous is what the grant replaced, restored at revoke (Zendesk's
	// previous role, Looker's previous role set), connector-specific text.
	Previous string `json:"previous,omitempty"`
	// Backstop is the expiry the grant set at the target itself (Google
	// membership expiry, Salesforce ExpirationDate), zero if none.
	Backstop time.Time `json:"backstop,omitzero"`
	// Data is connector-specific JSON (at most MaxReceiptBytes): which
	// parts of a multi-call grant were applied, IDs of what was created,
	// or a webhook receiver's own receipt object.
	Data []byte `json:"data,omitempty"`
	// Note is a short, safe, human summary of what was done, for the
	// audit log ("membership created", "role agent → admin"). It must not
	// hold secrets, URLs or email addresses.
	Note string `json:"note,omitempty"`
}

// Changed reports whether the receipt records any change at the target
// (a partial grant that must be rolled back).
func (r Receipt) Changed() bool {
	return r.UserID != "" || r.Previous != "" || !r.Backstop.IsZero() || len(r.Data) > 0 || r.Note != ""
}

// ErrUnknownUser is wrapped by connector errors meaning "the target has
// no such person" when the person was looked up by email (a record with
// no receipt): it is a permanent failure, never "already removed".
var ErrUnknownUser = errors.New("the target system does not know this person")

// AccountChecker is an optional capability of identity-provider connectors
// (Okta status, Entra accountEnabled, Google suspended, SCIM active): whether
// the person's account is still active there, for offboarding (DESIGN.md
// §4 invariant 12). It returns false for a suspended, deactivated or
// deprovisioned account and an error wrapping ErrUnknownUser when the IdP
// does not know the email. The periodic reconcile calls it; it must be
// cheap (one lookup) and honour ctx.
type AccountChecker interface {
	AccountActive(ctx context.Context, p Person) (bool, error)
}

// ManagerLookup is an optional capability of identity-provider connectors:
// the email of p's manager as the IdP records it (Okta profile manager /
// managerId, Google Directory relations of type manager, Entra
// /users/{id}/manager, SCIM enterprise extension manager), "" when none is
// on record. Errors wrap ErrUnknownUser when the IdP does not know p.
type ManagerLookup interface {
	Manager(ctx context.Context, p Person) (string, error)
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
	// Receipt is what the grant did, for Revoke; nil for Grant, and for
	// the revoke of a record granted before receipts existed.
	Receipt *Receipt
	// Rollback is set on a Revoke that undoes a grant which failed (a
	// compensating revoke, invariant 9), as opposed to an expiry or a
	// revocation of access that was granted.
	Rollback bool
	// Ticket is the request's ticket (Request.Ticket), nil when its role
	// requires none; connectors that report to other systems (webhook)
	// pass it on.
	Ticket *Ticket
	// BreakGlass is set for a break-glass grant (Request.BreakGlass):
	// nobody approved it.
	BreakGlass bool
	// RequestedBy is the Slack user ID of the person who asked for User
	// (Request.RequestedBy), "" when User asked.
	RequestedBy string
}

// Person is a Slack user as the directory knows them.
type Person struct {
	SlackID string `json:"slack_id"`
	Email   string `json:"email"`
	Name    string `json:"name"` // Slack real name
	TZ      string `json:"tz,omitempty"`
	// CurrentEmail is set on a revoke when the person's email changed
	// since the grant: Email stays the address the grant used.
	CurrentEmail string `json:"current_email,omitempty"`
	// Deactivated is set when Slack reports the account deactivated.
	Deactivated bool `json:"deactivated,omitempty"`
}

type freshKey struct{}

// Fresh marks ctx as carrying an authorisation decision (an approval, the
// re-check before a grant): a Directory must answer it from data no older
// than its documented bound for decisions, re-fetching rather than serving
// an older cached answer, and fail rather than guess when it cannot
// (DESIGN.md §4 invariant 10).
func Fresh(ctx context.Context) context.Context { return context.WithValue(ctx, freshKey{}, true) }

// IsFresh reports whether ctx carries a decision (see Fresh).
func IsFresh(ctx context.Context) bool { v, _ := ctx.Value(freshKey{}).(bool); return v }

// ManagerDirectory is an optional capability of a Directory: the manager
// the identity provider records for user (directory.managers.source), as
// a Slack user ID, "" when none is on record. Runbook.Manager asks it when
// the runbook names an IdP source.
type ManagerDirectory interface {
	IdPManager(ctx context.Context, user string) (string, error)
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

// The notices the lifecycle sends (DESIGN.md §3). The lifecycle decides
// when and to whom (Service plans them into the request's outbox); the
// Notifier decides the wording.
const (
	NoticeSubmitted       NoticeKind = "submitted"        // requester: submitted, and to whom
	NoticeApprovalNeeded  NoticeKind = "approval_needed"  // an approver (or the audit channel): the request, with buttons
	NoticeReminder        NoticeKind = "reminder"         // an approver still pending after reminder_after
	NoticeProgress        NoticeKind = "progress"         // requester: an approval counted or a step met
	NoticeDecided         NoticeKind = "decided"          // requester: approved, denied, cancelled or timed out
	NoticeGranted         NoticeKind = "granted"          // requester: granted until …
	NoticeGrantFailed     NoticeKind = "grant_failed"     // requester and owners: the grant failed (a reference, never target details)
	NoticeExpiryWarning   NoticeKind = "expiry_warning"   // requester: Extend / I'm done
	NoticeRevokeDelayed   NoticeKind = "revoke_delayed"   // requester: removal is being retried
	NoticeRemoved         NoticeKind = "removed"          // requester: expired/revoked and removed (maybe late)
	NoticeAccessKept      NoticeKind = "access_kept"      // requester and owners: access held before the grant stays
	NoticeRevokeFailing   NoticeKind = "revoke_failing"   // owners: a revoke keeps failing
	NoticeRevokeRecovered NoticeKind = "revoke_recovered" // owners: the failing revoke finally succeeded
	NoticeRolledBack      NoticeKind = "rolled_back"      // owners: a half-applied grant was undone
	NoticeTask            NoticeKind = "task"             // owners: a manual grant/removal to do, with Done
	NoticeBreakGlass      NoticeKind = "break_glass"      // owners (review, Revoke now), the role's approvers and the audit channel: granted without approval
	NoticeIneligible      NoticeKind = "ineligible"       // requester and owners: ended, the requester may no longer request it (why)
	NoticeOffboarded      NoticeKind = "offboarded"       // owners: a deactivated person's grant is being removed
	NoticeUpdate          NoticeKind = "update"           // nobody told: bring one posted copy (Notice.Ref) up to date
)

// Audience is whom a notice addresses, which decides how it is worded.
type Audience string

// The audiences of notices.
const (
	ForRequester Audience = "requester" // the requester's DM
	ForApprover  Audience = "approver"  // an approver's DM (Notice.To is the approver)
	ForAudit     Audience = "audit"     // the audit channel's information copy
	ForOwners    Audience = "owners"    // the owners' channel, or each owner's DM
)

// Notice is one message to one destination about one request, written to
// the request's outbox (Request.Outbox) in the same transaction as the
// transition that causes it, and delivered at least once (DESIGN.md §4
// invariant 11): a crash or a Slack outage delays it, never loses it.
type Notice struct {
	ID   uint64     `json:"id"` // unique within the request (Request.NoticeSeq)
	Kind NoticeKind `json:"kind"`
	For  Audience   `json:"for"`
	To   string     `json:"to"` // Slack user ID (its DM) or channel ID
	// Step is the approval step an approver's notice asks for.
	Step int `json:"step,omitempty"`
	// Ref is the copy a NoticeUpdate brings up to date.
	Ref *MessageRef `json:"ref,omitempty"`
	// Op is "grant" or "revoke" for tasks.
	Op string `json:"op,omitempty"`
	// Text is safe extra context (an error reference, never a connector's
	// own error text).
	Text string `json:"text,omitempty"`
	// State is the request's state when the notice was made: a notice
	// delivered late still says what happened then.
	State State     `json:"state"`
	At    time.Time `json:"at"`  // when it was made
	Due   time.Time `json:"due"` // next delivery attempt (the deadline index holds it)
	// Attempts counts failed deliveries; LastError is the last one's.
	Attempts  int    `json:"attempts,omitempty"`
	LastError string `json:"last_error,omitempty"`

	// Request is the request as it is at delivery (not stored): renderers
	// read the current truth from it.
	Request *Request `json:"-"`
}

// Delivered is the outcome of delivering one notice.
type Delivered struct {
	// Ref locates the message posted, when it is a copy that later
	// transitions update (approval DMs, the audit copy, warnings, tasks);
	// nil otherwise.
	Ref *MessageRef
	// Err is nil when the notice reached Slack. Failures are classified
	// like connector errors (RetryableError / PermanentError); an
	// unclassified error is retried.
	Err error
}

// Notifier delivers notices (the Slack adapter). Deliver sends ns, all
// addressed to the same destination (Notice.To), in order, and returns one
// result per notice; it may combine several into one message (a requester
// told about many removals at once). It must be safe for concurrent use
// for different destinations and must not retry for long: the lifecycle
// persists failures and retries them with backoff.
type Notifier interface {
	Deliver(ctx context.Context, to string, ns []Notice) []Delivered
}
