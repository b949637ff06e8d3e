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
		ok, _, err := rb.matchRequester(ctx, dir, user, p)
		if err != nil || ok {
			return ok, err
		}
	}
	return false, nil
}

// matchRequester reports whether user is covered by the requester rule p,
// and why (or why not) in words for explain and test.
func (rb *Runbook) matchRequester(ctx context.Context, dir Directory, user string, p Principal) (bool, string, error) {
	if p.Kind == SourceEveryone {
		return true, "everyone may request it", nil
	}
	members, err := rb.resolve(ctx, dir, p, nil, "", nil)
	if err != nil {
		return false, "", err
	}
	var where string
	switch p.Kind {
	case SourceTeam:
		where = "team " + p.Ref
		if t := rb.Teams[p.Ref]; t.Usergroup != "" {
			where += fmt.Sprintf(" (%d member(s) found, user group %s included)", len(members), t.Usergroup)
		} else {
			where += fmt.Sprintf(" (%d member(s))", len(members))
		}
	case SourceUsergroup:
		where = fmt.Sprintf("user group %s (%d member(s))", p.Ref, len(members))
	case SourceUser:
		if contains(members, user) {
			return true, "names them", nil
		}
		return false, "names " + p.Ref + " only", nil
	default:
		where = p.String()
	}
	if contains(members, user) {
		return true, "a member of " + where, nil
	}
	return false, "not a member of " + where, nil
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
	return rb.resolveStep(ctx, dir, sys, role, i, requester, nil, nil)
}

// ResolveStepExcluding is ResolveStep that also leaves out exclude: the
// approvers of the request's other steps under separation of duties (one
// person's approval counts for one step only, DESIGN.md §4 invariant 10).
// A step whose only candidates are excluded falls back exactly like an
// empty one (owners, then admins). People the directory reports
// deactivated are never asked.
func (rb *Runbook) ResolveStepExcluding(ctx context.Context, dir Directory, sys *System, role *Role, i int, requester string, exclude []string) (Step, error) {
	return rb.resolveStep(ctx, dir, sys, role, i, requester, exclude, nil)
}

// stepTrace records how resolveStep found a step's approvers, for
// Explain. A nil *stepTrace records nothing.
type stepTrace struct {
	sources []SourceExplanation
}

// resolveStep is ResolveStep, recording each source's people in tr.
func (rb *Runbook) resolveStep(ctx context.Context, dir Directory, sys *System, role *Role, i int, requester string, exclude []string, tr *stepTrace) (Step, error) {
	sp := role.Approval.Steps[i]
	min := sp.Min
	if min < 1 {
		min = 1
	}
	var people []string
	var names []string
	for _, src := range sp.Sources {
		names = append(names, src.String())
		var note string
		got, err := rb.resolve(ctx, dir, src, sys, requester, &note)
		if err != nil {
			return Step{}, fmt.Errorf("resolve approvers %s: %w", src, err)
		}
		if tr != nil {
			tr.sources = append(tr.sources, explainSource(src, got, requester, note))
		}
		people = appendPeople(people, got, requester)
	}
	keep := func(ps []string) []string {
		var out []string
		for _, p := range ps {
			if contains(exclude, p) || deactivated(ctx, dir, p) {
				continue
			}
			out = append(out, p)
		}
		return out
	}
	people = keep(people)
	st := Step{Min: min, Sources: strings.Join(names, ", ")}
	if len(people) < min {
		people = appendPeople(people, keep(sys.Owners), requester)
		st.Fallback = "owners"
	}
	if len(people) < min {
		people = appendPeople(people, keep(rb.Admins), requester)
		st.Fallback = "admins"
	}
	if len(people) < min {
		return Step{}, refuse(ErrForbidden, Error{Code: CodeNoApprovers, System: sys.ID, Role: role.ID, Step: i + 1, N: min, N2: len(people)})
	}
	st.Approvers = people
	return st, nil
}

// deactivated reports whether the directory says user's account is
// deactivated (a lookup failure counts as active: the approval itself is
// checked again, fresh, when they click).
func deactivated(ctx context.Context, dir Directory, user string) bool {
	if dir == nil {
		return false
	}
	// Display freshness is enough here: deactivations arrive as events
	// (offboarding), and a click is checked fresh on its own; a fresh
	// users.info per candidate of a 50-person team would be a burst.
	p, err := dir.Person(notFresh{ctx}, user)
	return err == nil && p.Deactivated
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
	m, _, err := rb.managerOf(ctx, dir, user)
	return m, err
}

// managerOf is Manager, also saying where the answer came from.
func (rb *Runbook) managerOf(ctx context.Context, dir Directory, user string) (manager, from string, err error) {
	if m, ok := rb.Managers.Static[user]; ok {
		return m, "directory.managers.static", nil
	}
	if rb.Managers.IdP != "" {
		from = "the identity provider (directory.managers.source: " + rb.Managers.IdP + ")"
		md, ok := dir.(ManagerDirectory)
		if !ok {
			return "", from + " is not available offline", nil
		}
		m, err := md.IdPManager(ctx, user)
		if err != nil {
			return "", from, fmt.Errorf("manager of %s from %s: %w", user, rb.Managers.IdP, err)
		}
		if m == "" {
			from += " records none"
		}
		return m, from, nil
	}
	if rb.Managers.ProfileField == "" || dir == nil {
		return "", "directory.managers has no entry for them and no slack_profile_field", nil
	}
	from = "Slack profile field " + rb.Managers.ProfileField
	v, err := dir.ProfileField(ctx, user, rb.Managers.ProfileField)
	if err != nil {
		return "", from, fmt.Errorf("manager of %s: %w", user, err)
	}
	m, err := rb.personRef(ctx, dir, v)
	if m == "" && err == nil {
		from += " is empty or names nobody"
	}
	return m, from, err
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
// are needed for owners and manager. When note is not nil it is set to
// where the people came from, for Explain (the manager's source).
func (rb *Runbook) resolve(ctx context.Context, dir Directory, src Source, sys *System, requester string, note *string) ([]string, error) {
	switch src.Kind {
	case SourceManager:
		m, from, err := rb.managerOf(ctx, dir, requester)
		if note != nil {
			*note = from
		}
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
		if note != nil && t.Usergroup != "" {
			*note = "team " + src.Ref + " includes Slack user group " + t.Usergroup
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
		ms, err := rb.resolve(ctx, dir, Source{Kind: SourceTeam, Ref: name}, nil, "", nil)
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

// notFresh is ctx without the Fresh mark.
type notFresh struct{ context.Context }

func (c notFresh) Value(k any) any {
	if k == (freshKey{}) {
		return nil
	}
	return c.Context.Value(k)
}
