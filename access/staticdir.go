package access

import (
	"context"
	"fmt"
	"sort"
	"strings"
)

// StaticPerson is one person a StaticDirectory knows: the `people:` section
// of a runbook test file (DESIGN.md §9).
type StaticPerson struct {
	ID         string   // Slack user ID
	Email      string   // optional
	Name       string   // optional, for display
	Manager    string   // optional: the manager's Slack user ID or email
	Usergroups []string // Slack user group IDs they belong to
}

// StaticDirectory is a Directory answered from a fixed list of people, with
// no Slack: accessbot test and explain use it to evaluate a runbook offline.
// It is read-only after NewStaticDirectory and safe for concurrent use.
//
// What it answers, and how that stands in for Slack:
//   - UserByEmail: the person with that email (case-insensitive); an email
//     nobody in the list has is its own identity (the email, lower case),
//     so that people the runbook names only by email (team members) are
//     still one consistent person. It never returns ErrNotFound.
//   - ProfileField: the person's Manager, whatever the field: the list's
//     manager stands for the runbook's run-time manager source.
//   - UsergroupMembers: the people listing that group, sorted; a group
//     nobody lists is empty.
//   - Person: the listed person, else a bare Person with that ID.
type StaticDirectory struct {
	byID    map[string]StaticPerson
	byEmail map[string]string // lower-case email → ID
}

var _ Directory = (*StaticDirectory)(nil)

// NewStaticDirectory indexes people. It refuses an empty ID, a repeated ID
// and an email given to two people, naming them.
func NewStaticDirectory(people []StaticPerson) (*StaticDirectory, error) {
	d := &StaticDirectory{byID: map[string]StaticPerson{}, byEmail: map[string]string{}}
	for _, p := range people {
		if p.ID == "" {
			return nil, fmt.Errorf("a person without a Slack user ID")
		}
		if _, dup := d.byID[p.ID]; dup {
			return nil, fmt.Errorf("%s is listed twice", p.ID)
		}
		d.byID[p.ID] = p
		if p.Email == "" {
			continue
		}
		e := strings.ToLower(strings.TrimSpace(p.Email))
		if other, dup := d.byEmail[e]; dup {
			return nil, fmt.Errorf("%s and %s have the same email %s", other, p.ID, e)
		}
		d.byEmail[e] = p.ID
	}
	return d, nil
}

// Listed returns the person's ID if ref (a Slack user ID or an email) is
// someone in the list.
func (d *StaticDirectory) Listed(ref string) (string, bool) {
	if _, ok := d.byID[ref]; ok {
		return ref, true
	}
	id, ok := d.byEmail[strings.ToLower(strings.TrimSpace(ref))]
	return id, ok
}

// Person returns the listed person, or a bare Person with user as ID (and
// as Email when user is an email standing in for an unlisted person).
func (d *StaticDirectory) Person(_ context.Context, user string) (Person, error) {
	if p, ok := d.byID[user]; ok {
		return Person{SlackID: p.ID, Email: p.Email, Name: p.Name}, nil
	}
	if strings.Contains(user, "@") {
		return Person{SlackID: user, Email: user}, nil
	}
	return Person{SlackID: user}, nil
}

// ProfileField returns the person's Manager for any field, "" when none.
func (d *StaticDirectory) ProfileField(_ context.Context, user, _ string) (string, error) {
	return d.byID[user].Manager, nil
}

// IdPManager implements ManagerDirectory: the person's Manager stands for
// the identity provider's record too (directory.managers.source), so that
// a case file's people section drives tests of such runbooks offline.
func (d *StaticDirectory) IdPManager(ctx context.Context, user string) (string, error) {
	return d.personRef(ctx, d.byID[user].Manager)
}

// personRef turns a people-section manager (a user ID or an email) into a
// user ID.
func (d *StaticDirectory) personRef(ctx context.Context, v string) (string, error) {
	if v == "" || !strings.Contains(v, "@") {
		return v, nil
	}
	return d.UserByEmail(ctx, v)
}

// UsergroupMembers returns the IDs of the people listing group, sorted.
func (d *StaticDirectory) UsergroupMembers(_ context.Context, group string) ([]string, error) {
	var out []string
	for id, p := range d.byID {
		if contains(p.Usergroups, group) {
			out = append(out, id)
		}
	}
	sort.Strings(out)
	return out, nil
}

// UserByEmail returns the ID of the person with that email, or the email
// itself, lower case, for a person the list does not have.
func (d *StaticDirectory) UserByEmail(_ context.Context, email string) (string, error) {
	e := strings.ToLower(strings.TrimSpace(email))
	if id, ok := d.byEmail[e]; ok {
		return id, nil
	}
	return e, nil
}
