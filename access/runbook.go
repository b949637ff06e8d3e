package access

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// Runbook is the validated policy: who may request what, who approves, for
// how long. It is built from the configuration file by cmd/accessbot and is
// read-only afterwards (safe for concurrent use).
type Runbook struct {
	Admins       []string // Slack user IDs who may revoke anything and see every request
	AuditChannel string   // optional channel ID receiving an information copy of every decision
	Location     *time.Location
	Managers     ManagerSource
	Teams        map[string]Team
	Systems      map[string]*System
	// Hash identifies the configuration that produced this runbook (audited).
	Hash string
}

// ManagerSource says where a requester's manager is found.
type ManagerSource struct {
	Static       map[string]string // requester → manager, Slack user IDs
	ProfileField string            // a Slack custom profile field ID holding the manager's user ID
	// IdP names the identity-provider connector the manager is read from
	// (directory.managers.source); the Directory answers through
	// ManagerDirectory. Static entries still win.
	IdP string
}

// Team is a named group of people: explicit members (Slack user IDs or
// emails) and/or a Slack user group.
type Team struct {
	Members   []string
	Usergroup string
}

// System is an access point (a CRM, payroll, dashboards).
type System struct {
	ID          string
	Name        string
	Description string
	Owners      []string // system owners, Slack user IDs
	Channel     string   // owners' channel for digests and alerts; may be empty
	Digest      string   // "daily 09:00", "weekly mon 09:00" or "off"
	Connector   string   // connector instance name
	Roles       map[string]*Role
}

// Role is one kind of access in a system, with its policy.
type Role struct {
	ID          string
	Description string
	Grant       map[string]string // connector-specific grant parameters
	Requesters  []Principal
	Approval    Approval
	// Durations, each already merged with the runbook defaults.
	DefaultDuration time.Duration
	MaxDuration     time.Duration
	ApprovalTimeout time.Duration
	ReminderAfter   time.Duration // 0: no reminder
	ExpiryWarning   time.Duration // 0: no warning
	ReasonRequired  bool
	// Origin says where each merged value above was set, for explain.
	Origin RoleOrigin

	// Windows restrict when the role may be requested or auto-approved
	// (`windows:`); empty: any time. OutsideWindow says which
	// (`outside_window:`, default OutsideRefuse), and Location is the
	// role's own `timezone:` they are read in (nil: the runbook's). See
	// Runbook.WindowStatus.
	Windows       Windows
	OutsideWindow OutsideWindow
	Location      *time.Location

	// Ticket, when set, requires a ticket reference on every request
	// (`ticket: { pattern, verify }`); see CheckTicket.
	Ticket *TicketPolicy

	// BreakGlass, when set, lets its requesters take the role at once,
	// without approval, for at most its MaxDuration
	// (`break_glass: { max_duration, requesters }`); see CheckBreakGlass.
	BreakGlass *BreakGlassPolicy

	// OnBehalf are who may request the role for someone else
	// (`on_behalf: [manager, team:it]`), in the approver-source grammar:
	// manager means the beneficiary's manager; owners the system's
	// owners. Empty: nobody may. See CheckOnBehalf.
	OnBehalf []Source
}

// RoleOrigin records where each of a role's merged durations and its
// reason setting came from: the key path that set it
// ("systems.crm.roles.viewer.max_duration", "defaults.max_duration") or
// "built-in default". The configuration loader fills it in; a runbook built
// in code may leave it empty (unknown).
type RoleOrigin struct {
	DefaultDuration string
	MaxDuration     string
	ApprovalTimeout string
	ReminderAfter   string
	ExpiryWarning   string
	Reason          string
}

// Approval is a role's approval policy: automatic, or steps in order.
// With Auto, Steps are empty, except for a role whose windows send
// requests outside them to humans (OutsideApprove): then they are the
// steps used there (the system owners, as the loader sets them).
type Approval struct {
	Auto  bool
	Steps []StepPolicy
	// SameApprover lets one person approve several steps of a request
	// (`approval: { distinct: false }`). By default one person's approval
	// counts for one step only (separation of duties).
	SameApprover bool
	// AutoIfOnCall, when set, approves the request without a human when
	// the requester is on call on its schedule (CheckOnCall); otherwise,
	// or when the schedule cannot be read, Steps run as usual.
	AutoIfOnCall *OnCallRule
}

// StepPolicy is one configured approval step: Min distinct people from the
// union of Sources.
type StepPolicy struct {
	Sources []Source
	Min     int
}

// SourceKind is a kind of approver source or requester principal.
type SourceKind string

// Approver sources (DESIGN.md §2) and requester principals.
const (
	SourceManager   SourceKind = "manager"
	SourceOwners    SourceKind = "owners"
	SourceTeam      SourceKind = "team"
	SourceUser      SourceKind = "user"
	SourceUsergroup SourceKind = "usergroup"
	SourceEveryone  SourceKind = "everyone" // requesters only
)

// Source is an approver source: "manager", "owners", "team:NAME",
// "user:UID", "usergroup:SID".
type Source struct {
	Kind SourceKind
	Ref  string
}

// Principal is who may request a role: "team:NAME", "user:UID",
// "usergroup:SID" or "everyone".
type Principal = Source

func (s Source) String() string {
	if s.Ref == "" {
		return string(s.Kind)
	}
	return string(s.Kind) + ":" + s.Ref
}

// ParseSource parses an approver source or requester principal. It returns
// an error saying what is allowed.
func ParseSource(s string, requester bool) (Source, error) {
	kind, ref, _ := strings.Cut(strings.TrimSpace(s), ":")
	k := SourceKind(kind)
	switch k {
	case SourceManager, SourceOwners:
		if !requester && ref == "" {
			return Source{Kind: k}, nil
		}
	case SourceEveryone:
		if requester && ref == "" {
			return Source{Kind: k}, nil
		}
	case SourceTeam, SourceUser, SourceUsergroup:
		if ref != "" {
			return Source{Kind: k, Ref: ref}, nil
		}
	}
	if requester {
		return Source{}, fmt.Errorf("%q is not a requester; use team:NAME, user:UID, usergroup:SID or everyone", s)
	}
	return Source{}, fmt.Errorf("%q is not an approver source; use manager, owners, team:NAME, user:UID or usergroup:SID", s)
}

// Lookup returns the system and role, or an *Error of kind ErrInvalid that
// says what exists.
func (rb *Runbook) Lookup(system, role string) (*System, *Role, error) {
	sys, ok := rb.Systems[strings.ToLower(system)]
	if !ok {
		return nil, nil, refuse(ErrInvalid, Error{Code: CodeUnknownSystem, Value: system, Allowed: rb.SystemIDs()})
	}
	r, ok := sys.Roles[strings.ToLower(role)]
	if !ok {
		return sys, nil, refuse(ErrInvalid, Error{Code: CodeUnknownRole, System: sys.ID, Value: role, Allowed: sys.RoleIDs()})
	}
	return sys, r, nil
}

// SystemIDs returns the system IDs, sorted.
func (rb *Runbook) SystemIDs() []string {
	out := make([]string, 0, len(rb.Systems))
	for id := range rb.Systems {
		out = append(out, id)
	}
	sort.Strings(out)
	return out
}

// RoleIDs returns the role IDs, sorted.
func (s *System) RoleIDs() []string {
	out := make([]string, 0, len(s.Roles))
	for id := range s.Roles {
		out = append(out, id)
	}
	sort.Strings(out)
	return out
}

// DisplayName is the system's name, or its ID.
func (s *System) DisplayName() string {
	if s.Name != "" {
		return s.Name
	}
	return s.ID
}

// IsAdmin reports whether user is one of slack.admins.
func (rb *Runbook) IsAdmin(user string) bool { return contains(rb.Admins, user) }

// IsOwner reports whether user owns the system.
func (s *System) IsOwner(user string) bool { return contains(s.Owners, user) }

// EffectiveDuration returns the duration a request of system's role gets:
// the requested one, else the role default. Over the maximum is an *Error
// (CodeDurationTooLong) that names the limit, never a silent clamp; zero
// or negative is invalid (CodeBadDuration).
func (r *Role) EffectiveDuration(system string, requested time.Duration) (time.Duration, error) {
	if requested == 0 {
		return r.DefaultDuration, nil
	}
	if requested < 0 {
		return 0, refuse(ErrInvalid, Error{Code: CodeBadDuration, System: system, Role: r.ID, Duration: requested})
	}
	if requested > r.MaxDuration {
		return 0, refuse(ErrInvalid, Error{Code: CodeDurationTooLong, System: system, Role: r.ID, Duration: requested, Limit: r.MaxDuration})
	}
	return requested, nil
}

// maxParsedDuration bounds ParseDuration: nobody needs access for longer
// than a century, and the bound keeps the sum of parts far from overflow.
const maxParsedDuration = 100 * 365 * 24 * time.Hour

// ParseDuration parses a duration with the units s, m, h and d ("90m",
// "1d", "1h30m"). It accepts Go's units too (ms, us, ns are refused as
// nonsensical for access). The result must be positive.
func ParseDuration(s string) (time.Duration, error) {
	in := strings.TrimSpace(strings.ToLower(s))
	if in == "" {
		return 0, fmt.Errorf("empty duration; use a number with s, m, h or d, like 90m or 1d")
	}
	var total time.Duration
	rest := in
	for rest != "" {
		i := 0
		for i < len(rest) && (rest[i] >= '0' && rest[i] <= '9' || rest[i] == '.') {
			i++
		}
		if i == 0 || i == len(rest) {
			return 0, fmt.Errorf("%q is not a duration; use a number with s, m, h or d, like 90m or 1d", s)
		}
		num := rest[:i]
		unit := rest[i]
		rest = rest[i+1:]
		var u time.Duration
		switch unit {
		case 's':
			u = time.Second
		case 'm':
			u = time.Minute
		case 'h':
			u = time.Hour
		case 'd':
			u = 24 * time.Hour
		default:
			return 0, fmt.Errorf("%q is not a duration; use a number with s, m, h or d, like 90m or 1d", s)
		}
		if num == "." || strings.Count(num, ".") > 1 {
			return 0, fmt.Errorf("%q is not a duration; use a number with s, m, h or d, like 90m or 1d", s)
		}
		// Parse the number as seconds (exact, in nanoseconds) and scale it
		// by the unit in integers: float arithmetic lost a nanosecond
		// ("4.35h" was 4h20m59.999999999s), and the sum of several parts
		// could overflow and wrap round to a small positive duration.
		d, err := time.ParseDuration(num + "s")
		if err != nil {
			// A well-formed number that time cannot hold is too big.
			return 0, fmt.Errorf("%q is too long; the maximum is %s", s, FormatDuration(maxParsedDuration))
		}
		k := u / time.Second
		if d > maxParsedDuration/k || total > maxParsedDuration-d*k {
			return 0, fmt.Errorf("%q is too long; the maximum is %s", s, FormatDuration(maxParsedDuration))
		}
		total += d * k
	}
	if total <= 0 {
		return 0, fmt.Errorf("%q must be positive", s)
	}
	return total, nil
}

// FormatDuration renders d compactly for people ("2h", "1d 4h", "90m" → "1h30m").
func FormatDuration(d time.Duration) string {
	if d <= 0 {
		return "0s"
	}
	var parts []string
	days := d / (24 * time.Hour)
	d -= days * 24 * time.Hour
	h := d / time.Hour
	d -= h * time.Hour
	m := d / time.Minute
	d -= m * time.Minute
	s := d / time.Second
	if days > 0 {
		parts = append(parts, fmt.Sprintf("%dd", days))
	}
	if h > 0 {
		parts = append(parts, fmt.Sprintf("%dh", h))
	}
	if m > 0 {
		parts = append(parts, fmt.Sprintf("%dm", m))
	}
	if s > 0 || len(parts) == 0 {
		parts = append(parts, fmt.Sprintf("%ds", s))
	}
	return strings.Join(parts, "")
}
