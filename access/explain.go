package access

import (
	"context"
	"errors"
	"time"
)

// ExplainInput is a request to explain: what the bot would do if Requester
// asked for System Role for Duration at Now.
type ExplainInput struct {
	Requester string // Slack user ID (or the stand-in ID a static directory gives)
	System    string
	Role      string
	Duration  time.Duration // 0: the role default
	// Reason is checked only when given: explain answers "may they ask",
	// and the modal asks a person for a missing reason.
	// Explanation.ReasonRequired says whether one is needed.
	Reason string
	// Now is the time the request would be made at. Nothing depends on it
	// yet; time windows will (DESIGN.md issue 16).
	Now time.Time
	// BreakGlass explains a break-glass request (`--break-glass`):
	// CheckBreakGlass's verdict instead of the role's requesters, and no
	// approval steps.
	BreakGlass bool
	// RequestedBy, when set and not Requester, explains a request made by
	// RequestedBy on behalf of Requester (`for @person …`): Requester is
	// the beneficiary, RequestedBy must be allowed by the role's
	// on_behalf, and neither is asked to approve.
	RequestedBy string
}

// Explanation is what the policy decides for one request and why, built by
// Explain from the same functions the lifecycle uses (CheckRequest,
// ResolveStep): accessbot explain prints it, accessbot test compares it
// with expectations. It is a value (no references into the runbook) and
// marshals to JSON.
//
// Policy features added later extend it with fields of their own, each
// filled in by Explain from the function the lifecycle calls:
// break-glass availability (BreakGlass), time-window status at Now
// (Window, not yet), people removed from a step by separation of duties
// (SourceExplanation notes and StepExplanation.Excluded), on-behalf
// requests (RequestedBy and OnBehalf; Requester is then the beneficiary,
// whom the requester rules judge).
type Explanation struct {
	Requester string `json:"requester"`
	// RequestedBy is the person asking on Requester's behalf ("" when
	// Requester asks); OnBehalf then says whether the role's on_behalf
	// lets them.
	RequestedBy string    `json:"requested_by,omitempty"`
	OnBehalf    *bool     `json:"on_behalf,omitempty"`
	System      string    `json:"system"` // system ID; empty when there is no such system
	Role        string    `json:"role"`   // role ID; empty when there is no such role
	Now         time.Time `json:"now"`

	// Allowed is true when the request would be accepted (Refusal nil).
	Allowed bool `json:"allowed"`
	// Refusal is the error the bot would answer with: exactly the error
	// Service.Check returns (or, for a step no one can approve, the one
	// Submit returns). Nil when allowed. RefusalText is its message.
	Refusal     error  `json:"-"`
	RefusalText string `json:"refusal,omitempty"`

	// Requesters is every requester rule of the role, in runbook order,
	// with its verdict for Requester; MatchedRule is the first that
	// matched ("" when none did).
	Requesters  []RuleMatch `json:"requesters,omitempty"`
	MatchedRule string      `json:"matched_rule,omitempty"`

	Duration DurationExplanation `json:"duration"`

	// ReasonRequired says whether the role needs a reason, and
	// ReasonFrom where that was set.
	ReasonRequired bool   `json:"reason_required"`
	ReasonFrom     string `json:"reason_from,omitempty"`

	// Auto is true for approval: auto: granted with no human, no steps.
	Auto bool `json:"auto"`
	// Distinct is true when one person's approval counts for one step
	// only (separation of duties, the default; approval.distinct: false
	// turns it off).
	Distinct bool `json:"distinct"`
	// Steps are the approval steps in order, with who would be asked.
	Steps []StepExplanation `json:"steps,omitempty"`

	// BreakGlass is the role's break-glass availability for Requester;
	// nil when the role has no break_glass.
	BreakGlass *BreakGlassExplanation `json:"break_glass,omitempty"`
}

// BreakGlassExplanation says whether Requester may break the glass on the
// role, by which rule, and for how long at most.
type BreakGlassExplanation struct {
	// Requested is set when the explained request itself breaks the
	// glass (ExplainInput.BreakGlass): Allowed and Refusal of the
	// Explanation are then CheckBreakGlass's, and there are no steps.
	Requested   bool          `json:"requested,omitempty"`
	Allowed     bool          `json:"allowed"` // Requester is one of the break-glass requesters
	MatchedRule string        `json:"matched_rule,omitempty"`
	Requesters  []RuleMatch   `json:"requesters"`
	MaxDuration time.Duration `json:"max_duration"`
	// Notify are the approvers of the role's steps, who are told of a
	// break-glass grant besides the owners and the audit channel.
	Notify []string `json:"notify,omitempty"`
}

// RuleMatch is one requester rule's verdict.
type RuleMatch struct {
	Rule    string `json:"rule"` // "team:support", "usergroup:S0HR", "everyone"
	Matched bool   `json:"matched"`
	Why     string `json:"why"` // "a member of team support (3 member(s))"
}

// DurationExplanation gives the effective duration limits and where each
// was set: a key path ("systems.crm.roles.viewer.max_duration",
// "defaults.max_duration") or "built-in default" (RoleOrigin).
type DurationExplanation struct {
	Requested   time.Duration `json:"requested"` // 0: none given
	Effective   time.Duration `json:"effective"` // what would be granted; 0 when refused
	Default     time.Duration `json:"default"`
	DefaultFrom string        `json:"default_from,omitempty"`
	Max         time.Duration `json:"max"`
	MaxFrom     string        `json:"max_from,omitempty"`
	// ApprovalTimeout is how long the request may stay pending.
	ApprovalTimeout     time.Duration `json:"approval_timeout"`
	ApprovalTimeoutFrom string        `json:"approval_timeout_from,omitempty"`
}

// StepExplanation is one approval step: its sources, what each resolved
// to, the fallback that applied and who would finally be asked.
type StepExplanation struct {
	Number  int                 `json:"number"` // 1-based
	Min     int                 `json:"min"`
	Sources []SourceExplanation `json:"sources"`
	// Fallback is "" (the sources were enough), "owners" or "admins":
	// the sources gave fewer than Min people other than the requester.
	Fallback string `json:"fallback,omitempty"`
	// Approvers are the people who would be asked (ResolveStep's answer),
	// empty when the step cannot be satisfied (Error).
	Approvers []string `json:"approvers"`
	// Excluded are people a source named who may not approve this
	// request: the requester (never an approver of their own request),
	// and the person who asked on their behalf.
	Excluded []string `json:"excluded,omitempty"`
	// Error is the step's refusal, when even the fallbacks are too few.
	Error string `json:"error,omitempty"`
	// Shared are people also asked in an earlier step. Under separation
	// of duties (the default) one person's approval counts for one step
	// only: if they approve an earlier step, this step asks IfShared
	// approve earlier instead (after fallbacks).
	Shared          []string `json:"shared,omitempty"`
	IfSharedEarlier []string `json:"if_shared_earlier,omitempty"`
}

// SourceExplanation is one approver source of a step and the people it
// resolved to before fallbacks (the requester included, if named).
type SourceExplanation struct {
	Source string   `json:"source"` // "manager", "owners", "team:hr"
	People []string `json:"people"`
	// Note says where the people came from when that is not obvious
	// (the manager's source, or why none was found).
	Note string `json:"note,omitempty"`
}

// Explain says what the bot would decide if in.Requester asked for
// in.System in.Role, and why. It calls the lifecycle's own policy
// functions (CheckRequest's parts, ResolveStep), never a copy of them.
//
// A refusal is not an error: it is Explanation.Refusal. The error is for
// a directory that failed (Slack down); the explanation is nil then.
// Steps are resolved even when the requester may not ask, to show who
// approves for those who may.
func (rb *Runbook) Explain(ctx context.Context, dir Directory, in ExplainInput) (*Explanation, error) {
	if in.BreakGlass {
		return rb.explainBreakGlass(ctx, dir, in)
	}
	asker := onBehalf(SubmitInput{Requester: in.Requester, RequestedBy: in.RequestedBy})
	ex := &Explanation{Requester: in.Requester, RequestedBy: asker, Now: in.Now}
	ex.Duration.Requested = in.Duration
	var rules []RuleMatch
	sys, role, d, refusal := rb.checkPolicy(ctx, dir, SubmitInput{Requester: in.Requester, System: in.System, Role: in.Role, Duration: in.Duration}, &rules)
	if refusal != nil && !isPolicyError(refusal) {
		return nil, refusal
	}
	if asker != "" {
		refusal = forBeneficiary(refusal, in.Requester)
		if sys != nil && role != nil {
			err := rb.CheckOnBehalf(ctx, dir, sys, role, asker, in.Requester)
			if err != nil && !isPolicyError(err) {
				return nil, err
			}
			ok := err == nil
			ex.OnBehalf = &ok
			if refusal == nil {
				refusal = err
			}
		}
	}
	ex.Requesters = rules
	for _, r := range rules {
		if r.Matched {
			ex.MatchedRule = r.Rule
			break
		}
	}
	if sys != nil {
		ex.System = sys.ID
	}
	if role == nil {
		ex.setRefusal(refusal)
		return ex, nil
	}
	ex.Role = role.ID
	ex.Duration.Effective = d
	ex.Duration.Default, ex.Duration.DefaultFrom = role.DefaultDuration, role.Origin.DefaultDuration
	ex.Duration.Max, ex.Duration.MaxFrom = role.MaxDuration, role.Origin.MaxDuration
	ex.Duration.ApprovalTimeout, ex.Duration.ApprovalTimeoutFrom = role.ApprovalTimeout, role.Origin.ApprovalTimeout
	ex.ReasonRequired, ex.ReasonFrom = role.ReasonRequired, role.Origin.Reason
	if refusal == nil && in.Reason != "" {
		refusal = checkReason(sys, role, in.Reason)
	}
	ex.Auto = role.Approval.Auto
	ex.Distinct = !role.Approval.SameApprover
	var earlier []string
	if !ex.Auto {
		for i := range role.Approval.Steps {
			tr := &stepTrace{}
			st, err := rb.resolveStep(ctx, dir, sys, role, i, in.Requester, askerList(asker), tr)
			if err != nil && !isPolicyError(err) {
				return nil, err
			}
			se := StepExplanation{Number: i + 1, Min: max(role.Approval.Steps[i].Min, 1), Sources: tr.sources,
				Fallback: st.Fallback, Approvers: st.Approvers}
			for _, s := range tr.sources {
				for _, who := range append([]string{in.Requester}, askerList(asker)...) {
					if contains(s.People, who) && !contains(se.Excluded, who) {
						se.Excluded = append(se.Excluded, who)
					}
				}
			}
			if err != nil {
				se.Error = err.Error()
				if refusal == nil {
					refusal = err // Submit refuses it with this error
				}
			}
			for _, p := range st.Approvers {
				if contains(earlier, p) {
					se.Shared = append(se.Shared, p)
				}
			}
			earlier = append(earlier, st.Approvers...)
			ex.Steps = append(ex.Steps, se)
		}
	}
	bg, err := rb.breakGlassAvailability(ctx, dir, sys, role, in.Requester)
	if err != nil {
		return nil, err
	}
	ex.BreakGlass = bg
	ex.setRefusal(refusal)
	return ex, nil
}

func (ex *Explanation) setRefusal(err error) {
	ex.Refusal = err
	ex.Allowed = err == nil
	if err != nil {
		ex.RefusalText = err.Error()
	}
}

// isPolicyError tells a refusal (an *Error the person would be shown) from
// a failure to consult the directory.
func isPolicyError(err error) bool {
	var e *Error
	return errors.As(err, &e)
}

// explainSource records what src resolved to. note is the resolver's own
// remark (the manager's source); an empty result gets a reason.
func explainSource(src Source, people []string, requester, note string) SourceExplanation {
	se := SourceExplanation{Source: src.String(), People: append([]string{}, people...), Note: note}
	if len(people) == 0 && src.Kind != SourceManager {
		se.Note = joinNote(note, "resolves to nobody")
	}
	if len(people) == 1 && people[0] == requester {
		se.Note = joinNote(se.Note, "only the requester, who never approves their own request")
	}
	return se
}

func joinNote(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}
