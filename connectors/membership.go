package connectors

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/accessbot/accessbot/access"
)

// Intent is what a grant is about to change at its target, recorded
// durably before the change (DESIGN.md §4 invariant 2: durable first,
// effects after).
type Intent struct {
	// UserID is the target-side user the grant acts on ("" when the
	// target tells it only in its answer to the change).
	UserID string `json:"user_id,omitempty"`
	// Data is the connector's own detail, JSON.
	Data json.RawMessage `json:"data,omitempty"`
}

// Intents records, in a connector instance's durable State, the grants
// whose change the connector started, by grant ID, from just before the
// change until the revoke that removes it. It is how a repeated Grant
// (the same ID, after an answer was lost or the process stopped) tells
// its own earlier change from access the person already had: without it,
// a membership the first attempt created would look pre-existing to the
// second, and would never be revoked. Safe for concurrent use.
type Intents struct {
	state State
}

// NewIntents returns the intents kept in s.
func NewIntents(s State) *Intents { return &Intents{state: s} }

// RequireState is the Factory check of connectors that keep Intents:
// State is lent by Registry.Build from the store (Env.State).
func (c Config) RequireState() error {
	if c.State == nil {
		return fmt.Errorf("connectors.%s: built without durable state (Env.State), which this connector needs to tell its own grants from access that pre-existed", c.Name)
	}
	return nil
}

func intentKey(grantID string) string { return "grant/" + grantID }

// Get returns the intent recorded for grantID, if any. A storage failure
// is retryable.
func (l *Intents) Get(ctx context.Context, grantID string) (Intent, bool, error) {
	b, ok, err := l.state.Get(ctx, intentKey(grantID))
	if err != nil {
		return Intent{}, false, access.RetryableError(fmt.Errorf("read the record of grant %s: %w", grantID, err), 0)
	}
	if !ok {
		return Intent{}, false, nil
	}
	var in Intent
	if err := json.Unmarshal(b, &in); err != nil {
		return Intent{}, false, access.PermanentError(fmt.Errorf("the stored record of grant %s is unreadable: %w", grantID, err))
	}
	return in, true, nil
}

// Record stores in for grantID, durably, replacing any earlier record.
func (l *Intents) Record(ctx context.Context, grantID string, in Intent) error {
	b, err := json.Marshal(in)
	if err == nil {
		err = l.state.Put(ctx, intentKey(grantID), b)
	}
	if err != nil {
		return access.RetryableError(fmt.Errorf("record grant %s before changing the target: %w", grantID, err), 0)
	}
	return nil
}

// Forget deletes grantID's record once its change is undone. A failure
// only leaves a small record behind, so it is not reported.
func (l *Intents) Forget(ctx context.Context, grantID string) {
	_ = l.state.Delete(ctx, intentKey(grantID))
}

// Member is one group membership as a connector reaches it, for
// GrantMembership.
type Member struct {
	// Find resolves the person at the target for a grant's first
	// attempt: their user ID ("" if the target tells it only on Add) and
	// whether they already have the membership. Errors are classified;
	// an unknown person wraps access.ErrUnknownUser (Users.ByEmail).
	Find func(ctx context.Context) (userID string, member bool, err error)
	// Add makes in.UserID a member; "already a member" is success. It
	// returns what the receipt says besides UserID and PreExisting (Note,
	// Backstop, Data; and UserID when the target told it only now). When
	// it fails after a first change of two it returns that partial
	// receipt with the error.
	Add func(ctx context.Context, in Intent) (access.Receipt, error)
}

// GrantMembership is the grant of every connector whose access is one
// user's membership of one group (Okta, Entra ID, SCIM, Google, LDAP):
//
//  1. A grant ID with a recorded Intent is a repeat: it acts on the
//     recorded user (the person's email may have changed since) and
//     whatever membership it finds is its own.
//  2. Otherwise Find resolves the person; a membership they already
//     have is reported with Receipt.PreExisting and left alone (the
//     revoke will not remove it). Else the Intent is recorded before
//     the change.
//  3. Add changes the target. On success the receipt names the user.
//     A failure of a change whose outcome may be live (a retryable
//     failure, or any failure of a repeat) returns a receipt naming
//     the user, so that the lifecycle can roll it back; a permanent
//     refusal of a first attempt changed nothing and returns the zero
//     receipt (or Add's partial one).
//
// note is the receipt's Note for a plain success when Add gives none.
func GrantMembership(ctx context.Context, intents *Intents, g access.Grant, m Member, note string) (access.Receipt, error) {
	in, repeat, err := intents.Get(ctx, g.ID)
	if err != nil {
		return access.Receipt{}, err
	}
	if !repeat {
		uid, member, err := m.Find(ctx)
		if err != nil {
			return access.Receipt{}, err
		}
		if member {
			return access.Receipt{UserID: uid, PreExisting: true, Note: "already a member before this grant; left in place at revoke"}, nil
		}
		in = Intent{UserID: uid}
		if err := intents.Record(ctx, g.ID, in); err != nil {
			return access.Receipt{}, err
		}
	}
	r, err := m.Add(ctx, in)
	if r.UserID == "" {
		r.UserID = in.UserID
	}
	if r.UserID != in.UserID && r.UserID != "" {
		// The target told the ID only now: remember it for a repeat.
		in.UserID = r.UserID
		if rerr := intents.Record(ctx, g.ID, in); rerr != nil && err == nil {
			err = rerr
		}
	}
	if err != nil {
		class, _ := access.Classify(err)
		partial := !r.Backstop.IsZero() || len(r.Data) > 0 || r.Previous != ""
		if class == access.Permanent && !repeat && !partial {
			// Refused outright: nothing changed, nothing to roll back.
			intents.Forget(ctx, g.ID)
			return access.Receipt{}, err
		}
		if r.Note == "" {
			r.Note = "the change may have been applied; a rollback removes it"
		}
		return r, err
	}
	if r.Note == "" {
		r.Note = note
	}
	return r, nil
}
