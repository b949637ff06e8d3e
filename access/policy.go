package access

import (
	"context"
	"fmt"
	"regexp"
	"sort"
	"strings"
)

// The approval policy as pure functions of the runbook and the directory.

// MayRequest reports whether user is one of the role's requesters.
func (rb *Runbook) MayRequest(ctx context.Context, dir Directory, user string, role *Role) (bool, error) {
	for _, p := range role.Requesters {
		members, err := rb.resolve(ctx, dir, p, nil, "")
		if err != nil {
			return false, err
		}
		if p.Kind == SourceEveryone || contains(members, user) {
			return true, nil
		}
	}
	return false, nil
}

// Requestable returns the systems and, for each, the role IDs user may
// request, sorted.
func (rb *Runbook) Requestable(ctx context.Context, dir Directory, user string) (map[string][]string, error) {
	out := map[string][]string{}
	for _, sid := range rb.SystemIDs() {
		sys := rb.Systems[sid]
		for _, rid := range sys.RoleIDs() {
			ok, err := rb.MayRequest(ctx, dir, user, sys.Roles[rid])
			if err != nil {
				return nil, err
			}
			if ok {
				out[sid] = append(out[sid], rid)
			}
		}
	}
	return out, nil
}

// ResolveStep returns who may approve step i of role for requester: the
// union of the step's sources, each person once, never the requester. When
// that is fewer people than the step's Min, the system owners and then the
// admins are added and Step.Fallback says so, so that a request is never left
// waiting on nobody. If even that is too few, it returns an *Error of kind
// ErrForbidden saying how many approvers are needed.
func (rb *Runbook) ResolveStep(ctx context.Context, dir Directory, sys *System, role *Role, i int, requester string) (Step, error) {
	sp := role.Approval.Steps[i]
	min := sp.Min
	if min < 1 {
		min = 1
	}
	var people []string
	var names []string
	for _, src := range sp.Sources {
		names = append(names, src.String())
		got, err := rb.resolve(ctx, dir, src, sys, requester)
		if err != nil {
			return Step{}, fmt.Errorf("resolve approvers %s: %w", src, err)
		}
		people = appendPeople(people, got, requester)
	}
	st := Step{Min: min, Sources: strings.Join(names, ", ")}
	if len(people) < min {
		people = appendPeople(people, sys.Owners, requester)
		st.Fallback = "owners"
	}
	if len(people) < min {
		people = appendPeople(people, rb.Admins, requester)
		st.Fallback = "admins"
	}
	if len(people) < min {
		return Step{}, refuse(ErrForbidden, Error{Code: CodeNoApprovers, System: sys.ID, Role: role.ID, Step: i + 1, N: min, N2: len(people)})
	}
	st.Approvers = people
	return st, nil
}

// StepMet reports whether step i of r has enough distinct approvals from
// its approvers.
func StepMet(r *Request, i int) bool {
	st := r.Steps[i]
	n := 0
	for _, a := range r.Approvals(i) {
		if contains(st.Approvers, a) {
			n++
		}
	}
	return n >= st.Min
}

// Manager returns the manager of user per the runbook's directory settings,
// "" if none is on record.
func (rb *Runbook) Manager(ctx context.Context, dir Directory, user string) (string, error) {
	if m, ok := rb.Managers.Static[user]; ok {
		return m, nil
	}
	if rb.Managers.ProfileField == "" || dir == nil {
		return "", nil
	}
	v, err := dir.ProfileField(ctx, user, rb.Managers.ProfileField)
	if err != nil {
		return "", fmt.Errorf("manager of %s: %w", user, err)
	}
	return rb.personRef(ctx, dir, v)
}

var userMention = regexp.MustCompile(`^<@([UW][A-Z0-9]+)(\|[^>]*)?>$`)
var userID = regexp.MustCompile(`^[UW][A-Z0-9]{2,}$`)

// personRef turns a directory value (user ID, <@U…> mention or email) into
// a user ID, "" if it names nobody.
func (rb *Runbook) personRef(ctx context.Context, dir Directory, v string) (string, error) {
	v = strings.TrimSpace(v)
	switch {
	case v == "":
		return "", nil
	case userID.MatchString(v):
		return v, nil
	case userMention.MatchString(v):
		return userMention.FindStringSubmatch(v)[1], nil
	case strings.Contains(v, "@") && dir != nil:
		id, err := dir.UserByEmail(ctx, v)
		if err != nil {
			return "", nil // an unknown email names nobody; fall back
		}
		return id, nil
	}
	return "", nil
}

// resolve expands a source or principal into user IDs. sys and requester
// are needed for owners and manager.
func (rb *Runbook) resolve(ctx context.Context, dir Directory, src Source, sys *System, requester string) ([]string, error) {
	switch src.Kind {
	case SourceManager:
		m, err := rb.Manager(ctx, dir, requester)
		if err != nil || m == "" {
			return nil, err
		}
		return []string{m}, nil
	case SourceOwners:
		if sys == nil {
			return nil, nil
		}
		return sys.Owners, nil
	case SourceUser:
		return []string{src.Ref}, nil
	case SourceUsergroup:
		if dir == nil {
			return nil, nil
		}
		return dir.UsergroupMembers(ctx, src.Ref)
	case SourceTeam:
		t, ok := rb.Teams[src.Ref]
		if !ok {
			return nil, fmt.Errorf("no team %q", src.Ref)
		}
		var out []string
		for _, m := range t.Members {
			id, err := rb.personRef(ctx, dir, m)
			if err != nil {
				return nil, err
			}
			if id != "" {
				out = append(out, id)
			}
		}
		if t.Usergroup != "" && dir != nil {
			ms, err := dir.UsergroupMembers(ctx, t.Usergroup)
			if err != nil {
				return nil, fmt.Errorf("team %s: %w", src.Ref, err)
			}
			out = append(out, ms...)
		}
		return out, nil
	case SourceEveryone:
		return nil, nil
	}
	return nil, fmt.Errorf("unknown source %q", src)
}

// TeamsOf returns the names of the teams user belongs to (for display).
func (rb *Runbook) TeamsOf(ctx context.Context, dir Directory, user string) []string {
	var out []string
	for name := range rb.Teams {
		ms, err := rb.resolve(ctx, dir, Source{Kind: SourceTeam, Ref: name}, nil, "")
		if err == nil && contains(ms, user) {
			out = append(out, name)
		}
	}
	sortStrings(out)
	return out
}

func appendPeople(dst, add []string, exclude string) []string {
	for _, p := range add {
		if p != "" && p != exclude && !contains(dst, p) {
			dst = append(dst, p)
		}
	}
	return dst
}

func sortStrings(s []string) { sort.Strings(s) }
