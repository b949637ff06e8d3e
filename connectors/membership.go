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

// DecodeStateful is DecodeHTTP then RequireState: the start of the
// Factory of an HTTP connector that keeps Intents.
func (c Config) DecodeStateful(v any) error {
	if err := c.DecodeHTTP(v); err != nil {
		return err
	}
	return c.RequireState()
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
	// attempt: the Intent to record (their user ID, "" if the target
	// tells it only on Add, and any detail Add needs) and whether they
	// already have the membership. Errors are classified; an unknown
	// person wraps access.ErrUnknownUser (Users.ByEmail).
	Find func(ctx context.Context) (in Intent, member bool, err error)
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
//  3. Add changes the target. On success the receipt names the user and
//     carries the Intent's Data unless Add returned its own.
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
		var member bool
		in, member, err = m.Find(ctx)
		if err != nil {
			return access.Receipt{}, err
		}
		if member {
			return access.Receipt{UserID: in.UserID, PreExisting: true, Data: []byte(in.Data), Note: "already a member before this grant; left in place at revoke"}, nil
		}
		if len(in.Data) > access.MaxReceiptBytes {
			// Checked before any change: a receipt the lifecycle cannot
			// store could not be revoked.
			return access.Receipt{}, access.PermanentError(fmt.Errorf("grant %s: what the revoke would need is %d bytes, more than a receipt holds (%d)", g.ID, len(in.Data), access.MaxReceiptBytes))
		}
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
	partial := !r.Backstop.IsZero() || len(r.Data) > 0 || r.Previous != ""
	if len(r.Data) == 0 {
		r.Data = []byte(in.Data) // what the revoke needs to undo it
	}
	if err != nil {
		class, _ := access.Classify(err)
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

// GroupMembers is the Grant, Revoke and Check of an HTTP connector whose
// access is one user's membership of one group and whose people are
// resolved by email through Users (okta_group, entra_group, scim_group).
// A connector embeds a *GroupMembers, whose methods then implement
// access.Connector and access.Checker for it, and supplies the three
// vendor calls. (CheckParams stays the connector's own one-liner over
// its Params, so that it works on a zero Connector too.)
type GroupMembers struct {
	// Kind is the connector's short name for errors ("okta"); Name the
	// instance's.
	Kind, Name string
	// Params are the grant parameters; Key names the group parameter.
	Params Params
	Key    string
	// Target names the target in receipt notes ("Okta group").
	Target  string
	Users   *Users
	Intents *Intents
	// IsMember reports whether user uid is a member of group.
	IsMember func(ctx context.Context, op, group, uid string) (bool, error)
	// Add makes uid a member; "already a member" is success.
	Add func(ctx context.Context, op string, g access.Grant, group, uid string) error
	// Remove removes uid; "not a member", and the user or group gone, is
	// success.
	Remove func(ctx context.Context, op string, g access.Grant, group, uid string) error
}

// Grant adds the person to the group (GrantMembership): the receipt
// names their target user ID, and says PreExisting when they were
// already a member.
func (m *GroupMembers) Grant(ctx context.Context, g access.Grant) (access.Receipt, error) {
	op := Op(m.Kind, m.Name, "grant", g)
	group, err := m.Params.Get(op, g.Params, m.Key)
	if err != nil {
		return access.Receipt{}, err
	}
	return GrantMembership(ctx, m.Intents, g, Member{
		Find: func(ctx context.Context) (Intent, bool, error) {
			uid, err := m.Users.ByEmail(ctx, op, g.User)
			if err != nil {
				return Intent{}, false, err
			}
			in, err := m.IsMember(ctx, op, group, uid)
			return Intent{UserID: uid}, in, err
		},
		Add: func(ctx context.Context, in Intent) (access.Receipt, error) {
			return access.Receipt{}, m.Add(ctx, op, g, group, in.UserID)
		},
	}, "added to "+m.Target+" "+group)
}

// Revoke removes the receipt's user from the group (Users.ForRevoke: by
// email only for a record granted before receipts existed) and forgets
// the grant's Intent.
func (m *GroupMembers) Revoke(ctx context.Context, g access.Grant) error {
	op := Op(m.Kind, m.Name, "revoke", g)
	group, err := m.Params.Get(op, g.Params, m.Key)
	if err != nil {
		return err
	}
	uid, err := m.Users.ForRevoke(ctx, op, g)
	if err != nil {
		return err
	}
	if err := m.Remove(ctx, op, g, group, uid); err != nil {
		return err
	}
	m.Intents.Forget(ctx, g.ID)
	return nil
}

// Check reports whether the person (the receipt's user, else found by
// email) is a member of the group (access.Checker).
func (m *GroupMembers) Check(ctx context.Context, g access.Grant) (bool, error) {
	op := Op(m.Kind, m.Name, "check", g)
	group, err := m.Params.Get(op, g.Params, m.Key)
	if err != nil {
		return false, err
	}
	uid, err := m.Users.ForRevoke(ctx, op, g)
	if err != nil {
		return false, err
	}
	return m.IsMember(ctx, op, group, uid)
}
