package connectors

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"

	"github.com/accessbot/accessbot/access"
)

// UserCacheTTL is how long Users reuses a person's resolved target user
// ID. Short: a person re-created at the target gets a new ID.
const UserCacheTTL = 5 * time.Minute

// ErrAmbiguousUser is wrapped by the permanent error of a lookup that
// found more than one target user for one email.
var ErrAmbiguousUser = errors.New("more than one user matches")

// Users resolves people to their target-side user IDs, the one way every
// connector with a target-side identity does it (DESIGN.md §4 invariant
// 8): a revoke acts on the ID its grant's receipt recorded and never
// looks the person up again; only records granted before receipts
// existed are resolved by email, and then "nobody has this email" is a
// permanent failure wrapping access.ErrUnknownUser, never "already
// gone". Resolved IDs are cached by email for UserCacheTTL on the
// injected clock. Safe for concurrent use.
type Users struct {
	target string
	lookup func(ctx context.Context, op string, email string) (string, error)
	cache  *TTLCache[string, string]
}

// NewUsers returns a resolver. target names the target in errors ("Okta
// org https://example.okta.com"; no secrets). lookup asks the target for
// the user ID of email: ("", nil) when nobody has it, or a classified
// error (op starts its text); an email matching several users should be
// a permanent error wrapping ErrAmbiguousUser.
func NewUsers(clock access.Clock, target string, lookup func(ctx context.Context, op, email string) (string, error)) *Users {
	return &Users{target: target, lookup: lookup, cache: NewTTLCache[string, string](clock, UserCacheTTL)}
}

// ByEmail resolves p by their email (a grant, a capability lookup),
// from the cache while fresh. A person without a usable email, or whom
// the target does not know, is a permanent error naming them and the
// target; the latter wraps access.ErrUnknownUser.
func (u *Users) ByEmail(ctx context.Context, op string, p access.Person) (string, error) {
	if err := CheckEmail(op, p); err != nil {
		return "", err
	}
	return u.cache.GetOrFill(strings.ToLower(p.Email), func() (string, error) {
		id, err := u.lookup(ctx, op, p.Email)
		switch {
		case err != nil:
			return "", err
		case id == "":
			return "", u.Unknown(op, p)
		}
		return id, nil
	})
}

// ForRevoke returns the user a revoke acts on: g.Receipt.UserID when the
// receipt has one (no lookup at all), else, for a record granted before
// receipts existed, ByEmail on the email the grant used.
func (u *Users) ForRevoke(ctx context.Context, op string, g access.Grant) (string, error) {
	if g.Receipt != nil && g.Receipt.UserID != "" {
		return g.Receipt.UserID, nil
	}
	return u.ByEmail(ctx, op, g.User)
}

// Forget drops p's cached ID, for a target that answered that the cached
// user is gone.
func (u *Users) Forget(p access.Person) { u.cache.Delete(strings.ToLower(p.Email)) }

// Unknown is the permanent error for a person the target does not know
// by email: it wraps access.ErrUnknownUser and names the person and the
// target.
func (u *Users) Unknown(op string, p access.Person) error {
	return access.PermanentError(fmt.Errorf("%s: %w: nobody with email %q in %s (%s)",
		op, access.ErrUnknownUser, p.Email, u.target, PersonName(p)))
}

// Ambiguous is the permanent error for an email several target users
// have; how names the attribute that matched ("profile.email").
func (u *Users) Ambiguous(op string, p access.Person, how string) error {
	return access.PermanentError(fmt.Errorf("%s: %w: several users in %s have %s %q (%s)",
		op, ErrAmbiguousUser, u.target, how, p.Email, PersonName(p)))
}

// CheckEmail refuses a person without an email, or with control
// characters in it (never part of an address; some servers normalise
// them away and would match someone else), as a permanent error.
func CheckEmail(op string, p access.Person) error {
	switch {
	case p.Email == "":
		return access.PermanentError(fmt.Errorf("%s: %s has no email in Slack, so they cannot be found in the target", op, PersonName(p)))
	case strings.ContainsFunc(p.Email, unicode.IsControl):
		return access.PermanentError(fmt.Errorf("%s: %s has an email with control characters: no user can be looked up by it", op, p.SlackID))
	}
	return nil
}
