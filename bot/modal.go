package bot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/slack-go/slack"

	"github.com/accessbot/accessbot/access"
)

// modalState is what the request modal shows, kept in private_metadata
// (≤ 3000 chars, slack-protocol.md §4.3) and in the selects themselves.
type modalState struct {
	System   string        `json:"s,omitempty"`
	Role     string        `json:"r,omitempty"`
	Duration time.Duration `json:"d,omitempty"`
	Reason   string        `json:"-"`
	Ticket   string        `json:"-"` // the ticket field, for roles with a ticket policy
	Channel  string        `json:"c,omitempty"`
	// BreakGlassMode is the break-glass confirmation form (`--break-glass`):
	// one system and role, durations up to the break-glass maximum, a
	// required reason and a required confirmation box.
	BreakGlassMode bool `json:"b,omitempty"`
	// BreakGlassRoles are the "system/role" pairs the person may break
	// the glass on: the ordinary form offers the box for those.
	BreakGlassRoles map[string]bool `json:"-"`
	// BreakGlass is set when the confirmation box is ticked.
	BreakGlass bool `json:"-"`
}

// input is the submission the form's state asks for, made by user.
func (st modalState) input(user string) access.SubmitInput {
	return access.SubmitInput{Requester: user, System: st.System, Role: st.Role, Duration: st.Duration, Reason: st.Reason,
		Ticket: st.Ticket, BreakGlass: st.BreakGlass}
}

// durationChoices are the durations offered in the modal, filtered to the
// role's maximum; the role default and maximum are always offered.
var durationChoices = []time.Duration{15 * time.Minute, 30 * time.Minute, time.Hour, 2 * time.Hour, 4 * time.Hour,
	8 * time.Hour, 12 * time.Hour, 24 * time.Hour, 48 * time.Hour, 72 * time.Hour, 7 * 24 * time.Hour, 14 * 24 * time.Hour, 30 * 24 * time.Hour}

// maxSelectOptions is Slack's static_select limit (100, slack-protocol.md §4.3).
const maxSelectOptions = 100

func option(value, text string) *slack.OptionBlockObject {
	return slack.NewOptionBlockObject(plain(value, limitPlainOption), slack.NewTextBlockObject(slack.PlainTextType, plain(text, limitPlainOption), false, false), nil)
}

// DurationOptions returns the modal's duration choices for role: values
// are durations as text ("2h"), all at most the role maximum, at most 100.
func DurationOptions(role *access.Role) []time.Duration {
	set := map[time.Duration]bool{role.DefaultDuration: true, role.MaxDuration: true}
	for _, d := range durationChoices {
		if d <= role.MaxDuration {
			set[d] = true
		}
	}
	var out []time.Duration
	for d := range set {
		if d > 0 && d <= role.MaxDuration {
			out = append(out, d)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	if len(out) > maxSelectOptions {
		out = out[len(out)-maxSelectOptions:]
	}
	return out
}

// RequestModal builds the request modal for a person who may request the
// systems and roles in eligible (system → roles), pre-filled from st. Role
// choices follow the chosen system and duration choices the chosen role.
func RequestModal(rb *access.Runbook, eligible map[string][]string, st modalState) slack.ModalViewRequest {
	var systems []string
	for s := range eligible {
		systems = append(systems, s)
	}
	sort.Strings(systems)
	if len(systems) > maxSelectOptions {
		systems = systems[:maxSelectOptions]
	}
	if !containsStr(systems, st.System) {
		st.System = systems[0]
	}
	roles := eligible[st.System]
	if !containsStr(roles, st.Role) {
		st.Role = roles[0]
	}
	sys := rb.Systems[st.System]
	role := sys.Roles[st.Role]
	if st.BreakGlassMode && role.BreakGlass != nil {
		// The form's limits are the break-glass ones.
		capped := *role
		capped.MaxDuration = min(role.MaxDuration, role.BreakGlass.MaxDuration)
		capped.DefaultDuration = min(role.DefaultDuration, capped.MaxDuration)
		capped.ReasonRequired = true
		role = &capped
	}
	if st.Duration <= 0 || st.Duration > role.MaxDuration {
		st.Duration = role.DefaultDuration
	}

	var sysOpts []*slack.OptionBlockObject
	var sysInit *slack.OptionBlockObject
	for _, id := range systems {
		o := option(id, rb.Systems[id].DisplayName())
		sysOpts = append(sysOpts, o)
		if id == st.System {
			sysInit = o
		}
	}
	sysSel := slack.NewOptionsSelectBlockElement(slack.OptTypeStatic, slack.NewTextBlockObject(slack.PlainTextType, "Choose a system", false, false), ActionSystemSelect, sysOpts...)
	sysSel.InitialOption = sysInit

	var roleOpts []*slack.OptionBlockObject
	var roleInit *slack.OptionBlockObject
	for _, id := range roles {
		text := id
		if d := sys.Roles[id].Description; d != "" {
			text = id + ": " + d
		}
		o := option(id, text)
		roleOpts = append(roleOpts, o)
		if id == st.Role {
			roleInit = o
		}
	}
	roleSel := slack.NewOptionsSelectBlockElement(slack.OptTypeStatic, slack.NewTextBlockObject(slack.PlainTextType, "Choose a role", false, false), ActionRoleSelect, roleOpts...)
	roleSel.InitialOption = roleInit

	var durOpts []*slack.OptionBlockObject
	var durInit *slack.OptionBlockObject
	durs := DurationOptions(role)
	if !containsDur(durs, st.Duration) {
		durs = append(durs, st.Duration)
		sort.Slice(durs, func(i, j int) bool { return durs[i] < durs[j] })
	}
	for _, d := range durs {
		o := option(access.FormatDuration(d), access.FormatDuration(d))
		durOpts = append(durOpts, o)
		if d == st.Duration {
			durInit = o
		}
	}
	durSel := slack.NewOptionsSelectBlockElement(slack.OptTypeStatic, slack.NewTextBlockObject(slack.PlainTextType, "How long", false, false), ActionDuration, durOpts...)
	durSel.InitialOption = durInit

	reason := slack.NewPlainTextInputBlockElement(slack.NewTextBlockObject(slack.PlainTextType, "Why do you need it? e.g. ticket 4411", false, false), ActionReason)
	reason.Multiline = true
	reason.MaxLength = 3000 // plain_text_input max_length limit (slack-protocol.md §4.3)
	if st.Reason != "" {
		reason.InitialValue = Truncate(st.Reason, 3000)
	}
	reasonLabel := "Reason"
	if !role.ReasonRequired {
		reasonLabel = "Reason (optional)"
	}
	reasonBlock := slack.NewInputBlock(BlockReason, slack.NewTextBlockObject(slack.PlainTextType, reasonLabel, false, false), nil, reason)
	reasonBlock.Optional = !role.ReasonRequired
	inputs := []slack.Block{reasonBlock}
	if tb := ticketBlock(role, st.Ticket); tb != nil {
		inputs = append(inputs, tb)
	}
	if bb := breakGlassBlock(sys, role, st); bb != nil {
		inputs = append(inputs, bb)
	}

	approval := "approved automatically"
	if !role.Approval.Auto {
		var steps []string
		for i, s := range role.Approval.Steps {
			var src []string
			for _, x := range s.Sources {
				src = append(src, x.String())
			}
			steps = append(steps, fmt.Sprintf("%d. %s", i+1, strings.Join(src, " or ")))
		}
		approval = "approved by " + strings.Join(steps, ", then ")
	}
	info := fmt.Sprintf("*%s · %s*: up to %s, %s.", Escape(sys.DisplayName()), Escape(role.ID), access.FormatDuration(role.MaxDuration), Escape(approval))
	title, submit := "Request access", "Request"
	if st.BreakGlassMode {
		info = breakGlassInfo(sys, role)
		title, submit = "Break glass", "Break glass now"
	}

	meta, _ := json.Marshal(modalState{System: st.System, Role: st.Role, Duration: st.Duration, Channel: st.Channel, BreakGlassMode: st.BreakGlassMode})
	return slack.ModalViewRequest{
		Type:            slack.VTModal,
		CallbackID:      CallbackRequest,
		Title:           slack.NewTextBlockObject(slack.PlainTextType, title, false, false),
		Submit:          slack.NewTextBlockObject(slack.PlainTextType, submit, false, false),
		Close:           slack.NewTextBlockObject(slack.PlainTextType, "Cancel", false, false),
		PrivateMetadata: string(meta),
		Blocks: slack.Blocks{BlockSet: append([]slack.Block{
			slack.NewInputBlock(BlockSystem, slack.NewTextBlockObject(slack.PlainTextType, "System", false, false), nil, sysSel).WithDispatchAction(true),
			slack.NewInputBlock(BlockRole, slack.NewTextBlockObject(slack.PlainTextType, "Role", false, false), nil, roleSel).WithDispatchAction(true),
			contextBlock(info),
			slack.NewInputBlock(BlockDuration, slack.NewTextBlockObject(slack.PlainTextType, "Duration", false, false), nil, durSel),
		}, inputs...)},
	}
}

// DenyModal asks an approver for the reason of a denial (required).
func DenyModal(r *access.Request, v View) slack.ModalViewRequest {
	in := slack.NewPlainTextInputBlockElement(slack.NewTextBlockObject(slack.PlainTextType, "The requester will see this", false, false), ActionDenyReason)
	in.Multiline = true
	in.MaxLength = 3000
	return slack.ModalViewRequest{
		Type:            slack.VTModal,
		CallbackID:      CallbackDeny,
		Title:           slack.NewTextBlockObject(slack.PlainTextType, plain("Deny "+r.ID, limitModalTitle), false, false),
		Submit:          slack.NewTextBlockObject(slack.PlainTextType, "Deny", false, false),
		Close:           slack.NewTextBlockObject(slack.PlainTextType, "Back", false, false),
		PrivateMetadata: fmt.Sprintf("%s#%d", r.ID, r.CurrentStep),
		Blocks: slack.Blocks{BlockSet: []slack.Block{
			section(RequestSummary(r, v)),
			slack.NewInputBlock(BlockDenyReason, slack.NewTextBlockObject(slack.PlainTextType, "Why are you denying it?", false, false), nil, in),
		}},
	}
}

// stateFromView reads the modal's current choices.
func stateFromView(v *slack.View) modalState {
	var st modalState
	_ = json.Unmarshal([]byte(v.PrivateMetadata), &st)
	vals := v.State
	if vals == nil {
		return st
	}
	get := func(block, action string) (slack.BlockAction, bool) {
		a, ok := vals.Values[block][action]
		return a, ok
	}
	if a, ok := get(BlockSystem, ActionSystemSelect); ok && a.SelectedOption.Value != "" {
		st.System = a.SelectedOption.Value
	}
	if a, ok := get(BlockRole, ActionRoleSelect); ok && a.SelectedOption.Value != "" {
		st.Role = a.SelectedOption.Value
	}
	if a, ok := get(BlockDuration, ActionDuration); ok && a.SelectedOption.Value != "" {
		if d, err := access.ParseDuration(a.SelectedOption.Value); err == nil {
			st.Duration = d
		}
	}
	if a, ok := get(BlockReason, ActionReason); ok {
		st.Reason = a.Value
	}
	if a, ok := get(BlockTicket, ActionTicket); ok {
		st.Ticket = a.Value
	}
	if a, ok := get(BlockBreakGlass, ActionBreakGlass); ok {
		for _, o := range a.SelectedOptions {
			st.BreakGlass = st.BreakGlass || o.Value == breakGlassConfirm
		}
	}
	return st
}

// fieldErrors maps a submission error to the input block it is about, so
// Slack shows it next to the field (response_action: errors). Modal
// errors are plain text.
func (b *Bot) fieldErrors(err error) map[string]string {
	block := BlockRole
	var e *access.Error
	if errors.As(err, &e) {
		switch e.Code {
		case access.CodeReasonRequired, access.CodeReasonTooLong, access.CodeReasonInvalid, access.CodeBusy:
			block = BlockReason
		case access.CodeBadDuration, access.CodeDurationTooLong:
			block = BlockDuration
		case access.CodeUnknownSystem:
			block = BlockSystem
		case access.CodeTicket, access.CodeUnavailable:
			// Only roles with a ticket policy refuse these, and their
			// form has the ticket field.
			block = BlockTicket
		case access.CodeBreakGlassTooLong:
			block = BlockDuration
		case access.CodeBreakGlassReason:
			block = BlockReason
		case access.CodeBreakGlassNotAllowed:
			// Refused only when the box was ticked, so the form has it.
			block = BlockBreakGlass
		}
	}
	return map[string]string{block: Truncate(stripMrkdwn(b.errorText(err)), 2000)}
}

func containsStr(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

func containsDur(xs []time.Duration, x time.Duration) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

// openRequestModal opens the request modal for user, or returns an
// *access.Error when they may request nothing or the pre-filled parts are
// wrong.
func (b *Bot) openRequestModal(ctx context.Context, triggerID, user string, st modalState) error {
	eligible, err := b.rb.Requestable(ctx, b.directory(), user)
	if err != nil {
		return fmt.Errorf("find what %s may request: %w", user, err)
	}
	if len(eligible) == 0 {
		return inputErrorf("There is nothing you may request yet: no system's runbook lists you as a requester. Ask a system owner or an admin (%s) to add you.", mentions(b.rb.Admins))
	}
	if st.System != "" {
		sys, ok := b.rb.Systems[strings.ToLower(st.System)]
		if !ok {
			_, _, err := b.rb.Lookup(st.System, "")
			return err
		}
		st.System = sys.ID
		if len(eligible[sys.ID]) == 0 {
			return inputErrorf("You may not request anything in %s. `%s systems` shows what you may request.", Escape(sys.ID), b.cfg.Command)
		}
		if st.Role != "" {
			_, role, err := b.rb.Lookup(sys.ID, st.Role)
			if err != nil {
				return err
			}
			st.Role = role.ID
			if !containsStr(eligible[sys.ID], role.ID) {
				return inputErrorf("You may not request %s %s. `%s systems` shows what you may request.", Escape(sys.ID), Escape(role.ID), b.cfg.Command)
			}
			if st.Duration > 0 {
				if _, err := role.EffectiveDuration(sys.ID, st.Duration); err != nil {
					return err
				}
			}
		}
	}
	view := b.requestModal(ctx, user, eligible, st)
	return b.call(ctx, "views.open", func(ctx context.Context) error {
		_, err := b.api.OpenViewContext(ctx, triggerID, view)
		return err
	})
}
