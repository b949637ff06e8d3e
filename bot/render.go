package bot

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/slack-go/slack"

	"github.com/accessbot/accessbot/access"
)

// Block Kit limits (slack-protocol.md §4.3, from the Block Kit reference
// docs.slack.dev/reference/block-kit).
const (
	limitSectionText = 3000 // section text
	limitReason      = 1500 // our share of a section for a user's reason
	limitPlainOption = 75   // option text and value
	limitHeader      = 150
	limitModalTitle  = 24
	limitFallback    = 3000 // top-level text we send (Slack truncates at 40 000)
	limitContextText = 2000
)

// Action IDs. A button's value carries only the request ID (DESIGN.md §3);
// who clicked always comes from the payload.
const (
	ActionApprove       = "access_approve"
	ActionDeny          = "access_deny"
	ActionCancel        = "access_cancel"
	ActionExtend        = "access_extend"
	ActionDone          = "access_done" // requester: "I'm done"
	ActionConfirm       = "access_confirm_task"
	ActionRequestAccess = "access_open_modal"
	ActionSystemSelect  = "system_select"
	ActionRoleSelect    = "role_select"
	ActionDuration      = "duration_select"
	ActionReason        = "reason_input"
	ActionDenyReason    = "deny_reason_input"
	ActionTicket        = "ticket_input"
	ActionBreakGlass    = "break_glass_confirm"
	ActionRevokeNow     = "access_revoke_now" // owners: revoke a break-glass grant from its review
)

// View callback IDs and input block IDs (errors are keyed by block ID:
// slack-protocol.md §1.4).
const (
	CallbackRequest = "access_request"
	CallbackDeny    = "access_deny_reason"
	BlockSystem     = "system"
	BlockRole       = "role"
	BlockDuration   = "duration"
	BlockReason     = "reason"
	BlockDenyReason = "deny_reason"
	BlockTicket     = "ticket"
	BlockBreakGlass = "break_glass"
)

// Escape escapes user-supplied text for mrkdwn: only &, < and > (Slack's
// formatting docs, slack-protocol.md §4.5), so that nobody can inject a
// mention, a special mention or a fake link.
func Escape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

// Truncate cuts s to at most n runes, marking the cut with an ellipsis. It
// never splits an escape sequence produced by Escape.
func Truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)[:n-1]
	out := string(r)
	if i := strings.LastIndex(out, "&"); i >= 0 && !strings.Contains(out[i:], ";") {
		out = out[:i]
	}
	return out + "…"
}

// safe escapes then truncates user text for mrkdwn.
func safe(s string, n int) string { return Truncate(Escape(s), n) }

// plain truncates text for plain_text objects (not mrkdwn-parsed).
func plain(s string, n int) string { return Truncate(s, n) }

func mention(id string) string {
	if id == "" || id == access.ActorBot || id == access.ActorAuto {
		return "accessbot"
	}
	return "<@" + id + ">"
}

func mentions(ids []string) string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = mention(id)
	}
	return strings.Join(out, ", ")
}

// FormatTime renders t for people in loc ("Mon 29 Nov 14:00 CET").
func FormatTime(t time.Time, loc *time.Location) string {
	if loc == nil {
		loc = time.UTC
	}
	return t.In(loc).Format("Mon 2 Jan 15:04 MST")
}

// RequesterInfo is what approvers see about the person asking.
type RequesterInfo struct {
	Name    string
	Teams   []string
	Manager string // Slack user ID, "" if none on record
}

// View is everything rendering needs besides the request: pure data.
type View struct {
	Runbook   *access.Runbook
	Requester RequesterInfo
	Now       time.Time
}

func (v View) loc() *time.Location {
	if v.Runbook != nil && v.Runbook.Location != nil {
		return v.Runbook.Location
	}
	return time.UTC
}

func (v View) roleTitle(r *access.Request) string {
	name := r.System
	if v.Runbook != nil {
		if sys := v.Runbook.Systems[r.System]; sys != nil {
			name = sys.DisplayName()
		}
	}
	return fmt.Sprintf("%s · %s", Escape(name), Escape(r.Role))
}

func (v View) roleDescription(r *access.Request) string {
	if v.Runbook == nil {
		return ""
	}
	if sys := v.Runbook.Systems[r.System]; sys != nil {
		if role := sys.Roles[r.Role]; role != nil {
			return role.Description
		}
	}
	return ""
}

func section(text string) *slack.SectionBlock {
	t := slack.NewTextBlockObject(slack.MarkdownType, Truncate(text, limitSectionText), false, true)
	return slack.NewSectionBlock(t, nil, nil)
}

func contextBlock(text string) *slack.ContextBlock {
	return slack.NewContextBlock("", slack.NewTextBlockObject(slack.MarkdownType, Truncate(text, limitContextText), false, true))
}

func button(actionID, text, value, style string) *slack.ButtonBlockElement {
	b := slack.NewButtonBlockElement(actionID, value, slack.NewTextBlockObject(slack.PlainTextType, plain(text, 75), false, false))
	if style != "" {
		b.Style = slack.Style(style)
	}
	return b
}

// RequestSummary is the mrkdwn description of a request that approvers and
// the audit channel see: who asks (name, team, manager), what, for how
// long, and why. User text is escaped and truncated.
func RequestSummary(r *access.Request, v View) string {
	var b strings.Builder
	if r.RequestedBy != "" && r.RequestedBy != r.Requester {
		fmt.Fprintf(&b, "*%s* asks on behalf of *%s* for *%s* for *%s*", mention(r.RequestedBy), mention(r.Requester), v.roleTitle(r), access.FormatDuration(r.Duration))
	} else {
		fmt.Fprintf(&b, "*%s* asks for *%s* for *%s*", mention(r.Requester), v.roleTitle(r), access.FormatDuration(r.Duration))
	}
	if r.Extends != "" {
		fmt.Fprintf(&b, " (extends %s)", r.Extends)
	}
	b.WriteString("\n")
	if d := v.roleDescription(r); d != "" {
		fmt.Fprintf(&b, "_%s_\n", safe(d, 300))
	}
	var who []string
	if v.Requester.Name != "" {
		who = append(who, "*Name:* "+safe(v.Requester.Name, 80))
	}
	if len(v.Requester.Teams) > 0 {
		who = append(who, "*Team:* "+safe(strings.Join(v.Requester.Teams, ", "), 120))
	}
	if v.Requester.Manager != "" {
		who = append(who, "*Manager:* "+mention(v.Requester.Manager))
	} else {
		who = append(who, "*Manager:* none on record")
	}
	b.WriteString(strings.Join(who, " · ") + "\n")
	reason := r.Reason
	if reason == "" {
		reason = "(no reason given)"
	}
	fmt.Fprintf(&b, "*Reason:* %s", safe(reason, limitReason))
	if t := TicketText(r.Ticket); t != "" {
		fmt.Fprintf(&b, "\n*Ticket:* %s", t)
	}
	return b.String()
}

// stepLine describes the approval steps and where the request is.
func stepLine(r *access.Request) string {
	if r.Auto {
		return autoLine(r)
	}
	if r.BreakGlass {
		return "Approval: none, *break glass* (runbook: `break_glass`)"
	}
	var parts []string
	for i, st := range r.Steps {
		got := r.Approvals(i)
		mark := "○"
		denial, denied := r.Denial()
		switch {
		case denied && denial.Step == i:
			mark = "✗"
		case len(got) >= st.Min:
			mark = "✓"
		case i == r.CurrentStep && r.State == access.StatePending:
			mark = "→"
		}
		src := st.Sources
		if st.Fallback != "" {
			src += " → " + st.Fallback
		}
		p := fmt.Sprintf("%s %d. %s (%d of %d", mark, i+1, Escape(src), min(len(got), st.Min), st.Min)
		if len(got) > 0 {
			p += ": " + mentions(got)
		}
		parts = append(parts, p+")")
	}
	return strings.Join(parts, "   ")
}

// Outcome is a one-line mrkdwn statement of a request's current state:
// who decided, when and why.
func Outcome(r *access.Request, v View) string {
	loc := v.loc()
	switch r.State {
	case access.StatePending:
		st, ok := r.Current()
		if !ok {
			return ":hourglass_flowing_sand: Waiting."
		}
		return fmt.Sprintf(":hourglass_flowing_sand: Waiting for step %d of %d: %s. Times out %s.", r.CurrentStep+1, len(r.Steps), mentions(st.Approvers), FormatTime(r.TimeoutAt, loc))
	case access.StateDenied:
		d, _ := r.Denial()
		return fmt.Sprintf(":x: *Denied* by %s at %s: %s", mention(d.Actor), FormatTime(d.At, loc), safe(d.Reason, limitReason))
	case access.StateCancelled:
		return fmt.Sprintf(":no_entry_sign: *Cancelled* by %s at %s", mention(r.Last().Actor), FormatTime(r.DecidedAt, loc))
	case access.StateTimedOut:
		return fmt.Sprintf(":alarm_clock: *Timed out* at %s: nobody decided in time.", FormatTime(r.DecidedAt, loc))
	case access.StateIneligible:
		return fmt.Sprintf(":no_entry: *Ended* at %s: %s may no longer request this (%s).", FormatTime(r.EndedAt, loc), mention(r.Requester), safe(r.LastError, 300))
	case access.StateGrantFailed:
		return fmt.Sprintf(":warning: *Approved* by %s, but *the grant failed*: %s", approvedBy(r), safe(r.LastError, 500))
	case access.StateApproved:
		if r.AwaitingConfirmation {
			return fmt.Sprintf(":white_check_mark: *Approved* by %s at %s; waiting for a system owner to apply it.", approvedBy(r), FormatTime(r.DecidedAt, loc))
		}
		return fmt.Sprintf(":white_check_mark: *Approved* by %s at %s; being granted.", approvedBy(r), FormatTime(r.DecidedAt, loc))
	case access.StateActive:
		return fmt.Sprintf(":white_check_mark: *Approved* by %s. Granted %s, *until %s*.", approvedBy(r), FormatTime(r.GrantedAt, loc), FormatTime(r.ExpiresAt, loc))
	case access.StateRevoking:
		if r.RemovalCause() == access.EventRollingBack {
			return fmt.Sprintf(":warning: *Approved* by %s, but *the grant failed*; undoing what it changed.", approvedBy(r))
		}
		return fmt.Sprintf(":white_check_mark: Approved by %s. Access granted until %s; *removal in progress*.", approvedBy(r), FormatTime(r.ExpiresAt, loc))
	case access.StateExpired:
		return fmt.Sprintf(":white_check_mark: Approved by %s. Granted %s; *expired* and removed %s.", approvedBy(r), FormatTime(r.GrantedAt, loc), FormatTime(r.EndedAt, loc))
	case access.StateRevoked:
		return fmt.Sprintf(":white_check_mark: Approved by %s. Granted %s; *revoked* by %s, removed %s.", approvedBy(r), FormatTime(r.GrantedAt, loc), mention(removalActor(r)), FormatTime(r.EndedAt, loc))
	}
	return string(r.State)
}

func approvedBy(r *access.Request) string {
	if r.Auto {
		return autoWhy(r)
	}
	if r.BreakGlass {
		return mention(r.Requester) + " breaking the glass (no approval)"
	}
	ids := r.ApprovedBy()
	if len(ids) == 0 {
		return "nobody"
	}
	return mentions(ids)
}

func removalActor(r *access.Request) string {
	for i := len(r.History) - 1; i >= 0; i-- {
		switch r.History[i].Event {
		case access.EventRevoking, access.EventDone, access.EventExpiring:
			return r.History[i].Actor
		}
	}
	return ""
}

// ApprovalMessage renders one approver's (or the audit channel's) copy of a
// request. Buttons are shown only while the request is pending and viewer
// may still decide the current step; viewer "" is the audit copy, which
// never has buttons. Returns the fallback text and the blocks.
func ApprovalMessage(r *access.Request, v View, viewer string) (string, []slack.Block) {
	fallback := fmt.Sprintf("%s: %s asks for %s %s for %s", r.ID, v.Requester.Name, r.System, r.Role, access.FormatDuration(r.Duration))
	blocks := []slack.Block{
		section(RequestSummary(r, v)),
		contextBlock(fmt.Sprintf("%s · %s", r.ID, stepLine(r))),
		section(Outcome(r, v)),
	}
	if r.BreakGlass {
		blocks = append([]slack.Block{section(breakGlassBanner(r))}, blocks...)
		fallback = "Break glass: " + fallback
	}
	if viewer != "" && r.State == access.StatePending && r.IsApprover(viewer) && !contains(r.Approvals(r.CurrentStep), viewer) {
		approve := button(ActionApprove, "Approve", r.ID, "primary")
		approve.Confirm = slack.NewConfirmationBlockObject(
			slack.NewTextBlockObject(slack.PlainTextType, "Approve "+r.ID+"?", false, false),
			slack.NewTextBlockObject(slack.MarkdownType, Truncate(fmt.Sprintf("Grant %s for %s.", v.roleTitle(r), access.FormatDuration(r.Duration)), 300), false, false),
			slack.NewTextBlockObject(slack.PlainTextType, "Approve", false, false),
			slack.NewTextBlockObject(slack.PlainTextType, "Cancel", false, false))
		blocks = append(blocks, slack.NewActionBlock(decideBlockID("actions", r.ID, r.CurrentStep), approve, button(ActionDeny, "Deny", r.ID, "danger")))
	}
	return Truncate(Escape(fallback), limitFallback), blocks
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

// RequesterMessage renders the DM the requester gets for a notice.
func RequesterMessage(n access.Notice, v View) (string, []slack.Block) {
	r := n.Request
	if n.To != "" && n.To == r.RequestedBy && n.To != r.Requester {
		return askerMessage(n, v) // behalf.go: the person who asked for the requester
	}
	loc := v.loc()
	title := v.roleTitle(r)
	var text string
	var actions []slack.BlockElement
	switch n.Kind {
	case access.NoticeSubmitted:
		if r.BreakGlass {
			text = breakGlassSubmitted(r, title)
			break
		}
		if r.Auto {
			by := "the runbook"
			if strings.HasPrefix(r.AutoBy, "on call: ") {
				by = autoWhy(r)
			}
			text = fmt.Sprintf("Your request *%s* for *%s* (%s) is approved automatically by %s; granting it now.", r.ID, title, access.FormatDuration(r.Duration), by)
			break
		}
		if len(r.Steps) == 0 {
			text = fmt.Sprintf("Your request *%s* for *%s* (%s) is submitted.", r.ID, title, access.FormatDuration(r.Duration))
			break
		}
		st := r.Steps[0]
		text = fmt.Sprintf("Your request *%s* for *%s* (%s) was sent to %s for approval", r.ID, title, access.FormatDuration(r.Duration), mentions(st.Approvers))
		if len(r.Steps) > 1 {
			text += fmt.Sprintf(" (step 1 of %d: %s)", len(r.Steps), Escape(st.Sources))
		}
		text += "."
		for i, s := range r.Steps {
			if s.Fallback != "" {
				text += fmt.Sprintf("\nStep %d (%s) has nobody else to ask, so the %s were asked instead: %s.", i+1, Escape(s.Sources), s.Fallback, mentions(s.Approvers))
			}
		}
		actions = append(actions, button(ActionCancel, "Cancel request", r.ID, ""))
	case access.NoticeProgress:
		st, ok := r.Current()
		switch {
		case !ok || n.State != access.StatePending:
			text = fmt.Sprintf("*%s*: %s", r.ID, Outcome(r, v))
		case r.CurrentStep > 0 && len(r.Approvals(r.CurrentStep)) == 0:
			prev := r.CurrentStep - 1
			text = fmt.Sprintf("Step %d of *%s* approved by %s. Now waiting for %s.", prev+1, r.ID, mentions(r.Approvals(prev)), mentions(st.Approvers))
		default:
			text = fmt.Sprintf("*%s*: %s approved (%d of %d needed for step %d).", r.ID, mentions(r.Approvals(r.CurrentStep)), len(r.Approvals(r.CurrentStep)), st.Min, r.CurrentStep+1)
		}
	case access.NoticeDecided:
		switch n.State {
		case access.StateApproved:
			text = fmt.Sprintf("*%s* for *%s* was approved by %s. Granting it now; you will be told when the access is in place.", r.ID, title, approvedBy(r))
		case access.StateDenied:
			d, _ := r.Denial()
			text = fmt.Sprintf("*%s* for *%s* was *denied* by %s: %s", r.ID, title, mention(d.Actor), safe(d.Reason, limitReason))
		case access.StateCancelled:
			text = fmt.Sprintf("*%s* for *%s* was cancelled.", r.ID, title)
		case access.StateTimedOut:
			text = fmt.Sprintf("*%s* for *%s* *timed out*: nobody approved it in time. Ask again if you still need it.", r.ID, title)
		default:
			text = fmt.Sprintf("*%s*: %s", r.ID, Outcome(r, v))
		}
	case access.NoticeGranted:
		text = fmt.Sprintf(":white_check_mark: *%s*: you now have *%s* until *%s* (%s).", r.ID, title, FormatTime(r.ExpiresAt, loc), access.FormatDuration(r.Duration))
		actions = append(actions, button(ActionDone, "I'm done", r.ID, ""))
	case access.NoticeGrantFailed:
		text = fmt.Sprintf(":warning: *%s* for *%s* was approved, but granting it failed: %s\nThe system owners have been told.", r.ID, title, safe(n.Text, 500))
	case access.NoticeAccessKept:
		text = fmt.Sprintf("*%s* has ended. You already had *%s* before this grant, so that access stays; ask the system owners if it should be removed.", r.ID, title)
	case access.NoticeIneligible:
		text = fmt.Sprintf(":no_entry: *%s* for *%s* has ended without a grant: you may no longer request it (%s). Ask an admin if this is wrong.", r.ID, title, safe(n.Text, 300))
	case access.NoticeExpiryWarning:
		text = fmt.Sprintf(":hourglass: *%s*: your *%s* access ends at *%s*. Extend it by %s (subject to approval), or give it back now.", r.ID, title, FormatTime(r.ExpiresAt, loc), access.FormatDuration(r.Duration))
		if r.BreakGlass {
			text += " You broke the glass for it: an extension is an ordinary request that needs the role's approval."
		}
		actions = append(actions, button(ActionExtend, "Extend "+access.FormatDuration(r.Duration), r.ID, "primary"), button(ActionDone, "I'm done", r.ID, ""))
	case access.NoticeRevokeDelayed:
		text = fmt.Sprintf(":warning: *%s*: removing your *%s* access is taking longer than it should; accessbot keeps trying and the owners know. You may still have access until it is removed.", r.ID, title)
	case access.NoticeRemoved:
		switch {
		case r.CoveredBy != "":
			text = fmt.Sprintf("*%s* has ended; your *%s* access continues under *%s*.", r.ID, title, r.CoveredBy)
		case n.State == access.StateExpired && r.Late:
			text = fmt.Sprintf(":information_source: *%s*: your *%s* access expired at %s and was removed *late*, at %s, because accessbot was not running at the time.", r.ID, title, FormatTime(r.ExpiresAt, loc), FormatTime(r.EndedAt, loc))
		case n.State == access.StateExpired:
			text = fmt.Sprintf("*%s*: your *%s* access expired and has been removed.", r.ID, title)
		default:
			who := removalActor(r)
			if who == r.Requester {
				text = fmt.Sprintf("*%s*: your *%s* access has been removed, as you asked.", r.ID, title)
			} else {
				text = fmt.Sprintf("*%s*: your *%s* access was revoked by %s and has been removed.", r.ID, title, mention(who))
			}
		}
	default:
		text = fmt.Sprintf("*%s*: %s", r.ID, Outcome(r, v))
	}
	if n.Kind == access.NoticeSubmitted {
		text = withTicketAndNotes(text, r)
		if a := askedBy(r); a != "" {
			text = a + "\n" + text
		}
	}
	return textMessage(text, "requester:"+r.ID, actions)
}

// textMessage is a one-section message with optional buttons in an actions
// block, and its notification fallback text.
func textMessage(text, actionsBlockID string, actions []slack.BlockElement) (string, []slack.Block) {
	blocks := []slack.Block{section(text)}
	if len(actions) > 0 {
		blocks = append(blocks, slack.NewActionBlock(actionsBlockID, actions...))
	}
	return Truncate(stripMrkdwn(text), limitFallback), blocks
}

// OwnerMessage renders alerts and tasks for a system's owners.
func OwnerMessage(n access.Notice, v View) (string, []slack.Block) {
	r := n.Request
	loc := v.loc()
	title := v.roleTitle(r)
	var text string
	var actions []slack.BlockElement
	block := "owner:" + r.ID
	switch n.Kind {
	case access.NoticeGrantFailed:
		text = fmt.Sprintf(":warning: *Grant failed* for *%s*: %s could not be given *%s*: %s", r.ID, mention(r.Requester), title, safe(n.Text, 500))
	case access.NoticeRevokeFailing:
		if r.RemovalCause() == access.EventRollingBack {
			text = fmt.Sprintf(":rotating_light: *Rollback failing* for *%s*: the grant of *%s* to %s failed half-way and undoing it keeps failing. accessbot keeps retrying (%d attempts so far). Last failure: %s", r.ID, title, mention(r.Requester), r.Attempts, safe(n.Text, 500))
			break
		}
		text = fmt.Sprintf(":rotating_light: *Revocation failing* for *%s*: %s still has *%s* (ended %s). accessbot keeps retrying (%d attempts so far). Last failure: %s", r.ID, mention(r.Requester), title, FormatTime(r.ExpiresAt, loc), r.Attempts, safe(n.Text, 500))
	case access.NoticeRolledBack:
		text = fmt.Sprintf(":leftwards_arrow_with_hook: *Grant rolled back* for *%s*: granting *%s* to %s failed after changing something; what it changed has been undone, so nothing of it is left. %s", r.ID, title, mention(r.Requester), safe(n.Text, 500))
	case access.NoticeAccessKept:
		text = fmt.Sprintf(":information_source: *%s* has ended, but %s already had *%s* before this grant, so accessbot left that access in place. Remove it by hand if it should go.", r.ID, mention(r.Requester), title)
	case access.NoticeIneligible:
		text = fmt.Sprintf(":no_entry: *%s* ended without a grant: %s may no longer request *%s* (%s).", r.ID, mention(r.Requester), title, safe(n.Text, 300))
	case access.NoticeOffboarded:
		text = fmt.Sprintf(":door: *Offboarding*: %s was %s; their *%s* (%s) is being removed now.", mention(r.Requester), safe(n.Text, 200), title, r.ID)
	case access.NoticeRevokeRecovered:
		text = fmt.Sprintf(":white_check_mark: *Revocation recovered* for *%s*: %s's *%s* access has now been removed.", r.ID, mention(r.Requester), title)
	case access.NoticeBreakGlass:
		return BreakGlassReview(r, v)
	case access.NoticeTask:
		if n.Op == "grant" {
			text = fmt.Sprintf(":clipboard: *Task*: grant *%s* to %s until %s (%s, approved by %s). Click *Done* once it is in place; the grant counts from then.", title, mention(r.Requester), FormatTime(v.Now.Add(r.Duration), loc), r.ID, approvedBy(r))
		} else {
			text = fmt.Sprintf(":clipboard: *Task*: remove *%s* from %s (%s ended). Click *Done* once it is removed.", title, mention(r.Requester), r.ID)
		}
		if n.Text == "reminder" {
			text = ":bell: *Reminder* " + text
		}
		actions = append(actions, button(ActionConfirm, "Done", r.ID, "primary"))
		block = taskBlockID(r.ID, n.Op)
	default:
		text = fmt.Sprintf("*%s*: %s", r.ID, Outcome(r, v))
	}
	if a := askedBy(r); a != "" {
		text += "\n" + a
	}
	return textMessage(text, block, actions)
}

// taskBlockID is the block ID of a manual task's message,
// "owner:AR-1042:grant": the Done button confirms that task only.
func taskBlockID(id, op string) string { return "owner:" + id + ":" + op }

// taskOf reads the task a Done button was on from its block ID ("" for
// messages from before tasks said it).
func taskOf(blockID string) string {
	switch {
	case strings.HasSuffix(blockID, ":"+access.TaskGrant):
		return access.TaskGrant
	case strings.HasSuffix(blockID, ":"+access.TaskRevoke):
		return access.TaskRevoke
	}
	return ""
}

// TaskDoneMessage renders a manual task after an owner confirmed it.
func TaskDoneMessage(r *access.Request, v View, what string) (string, []slack.Block) {
	text := fmt.Sprintf(":white_check_mark: Task done for *%s* (%s, %s): %s.", r.ID, mention(r.Requester), v.roleTitle(r), what)
	return stripMrkdwn(text), []slack.Block{section(text)}
}

var mrkdwnStripper = strings.NewReplacer("*", "", "_", "", "`", "")

// stripMrkdwn makes notification fallback text from mrkdwn (already escaped).
func stripMrkdwn(s string) string { return mrkdwnStripper.Replace(s) }
