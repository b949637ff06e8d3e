package bot

import (
	"context"
	"fmt"

	"github.com/slack-go/slack"

	"github.com/accessbot/accessbot/access"
)

// Break-glass in Slack (issue #16).
//
// The confirmation: breaking the glass always takes a deliberate second
// act, so a typo or a stray flag never grants anything.
//
//   - `/access SYSTEM ROLE [DURATION] [REASON] --break-glass` checks the
//     request (who may, the cap) and answers a refusal at once; otherwise
//     it opens the break-glass form, pre-filled: what happens is spelled
//     out, the reason is required, and a "I confirm this is an emergency"
//     box must be ticked before Slack lets "Break glass now" be pressed.
//     That form is the confirm step (a button in the ack could not carry
//     the request: a button's value holds only a request ID, DESIGN.md §3).
//   - In the ordinary request form, a role the person may break the glass
//     on shows an optional "Break glass" box whose label and hint say what
//     it does; ticking it is the confirmation, as a person filling a form
//     expects (a second dialog after a ticked box reads as a glitch).
//
// Either way Submit runs with SubmitInput.BreakGlass and checks everything
// again. The owners get a review with "Revoke now" (ActionRevokeNow);
// every approver of the role and the audit channel get a copy; the copies
// follow the request like approval copies (RefReview, RefApproval,
// RefAudit) and lose the button once the access is gone.

// breakGlassConfirm is the value of the confirmation box's one option.
const breakGlassConfirm = "confirm"

// breakGlassBlock is the break-glass box of the request form: required in
// the break-glass form (the confirmation), optional in the ordinary form
// for a role the person may break the glass on, absent otherwise.
func breakGlassBlock(sys *access.System, role *access.Role, st modalState) *slack.InputBlock {
	if role == nil || role.BreakGlass == nil || (!st.BreakGlassMode && !st.BreakGlassRoles[sys.ID+"/"+role.ID]) {
		return nil
	}
	label, text := "Break glass", "Emergency: grant it now, no approval"
	if st.BreakGlassMode {
		label, text = "Confirm", "I confirm this is an emergency"
	}
	hint := fmt.Sprintf("Granted at once, without approval, for at most %s. The owners, every approver of %s %s and the audit channel are told, and the owners may revoke it. It cannot be extended without normal approval.",
		access.FormatDuration(role.BreakGlass.MaxDuration), sys.ID, role.ID)
	el := slack.NewCheckboxGroupsBlockElement(ActionBreakGlass, option(breakGlassConfirm, text))
	b := slack.NewInputBlock(BlockBreakGlass, slack.NewTextBlockObject(slack.PlainTextType, label, false, false),
		slack.NewTextBlockObject(slack.PlainTextType, plain(hint, 2000), false, false), el)
	b.Optional = !st.BreakGlassMode
	return b
}

// breakGlassInfo is the break-glass form's statement of what happens.
func breakGlassInfo(sys *access.System, role *access.Role) string {
	return fmt.Sprintf(":rotating_light: *Break glass on %s · %s*: granted at once, *without approval*, for at most %s. The system owners, every approver of the role and the audit channel are told, and the owners may revoke it at once. It cannot be extended without normal approval.",
		Escape(sys.DisplayName()), Escape(role.ID), access.FormatDuration(role.MaxDuration))
}

// requestModal renders the request form for user: the break-glass form
// (its one role) or the ordinary one, with the break-glass box on the
// roles user may break the glass on.
func (b *Bot) requestModal(ctx context.Context, user string, eligible map[string][]string, st modalState) slack.ModalViewRequest {
	if st.BreakGlassMode {
		return RequestModal(b.rb, map[string][]string{st.System: {st.Role}}, st)
	}
	st.BreakGlassRoles = map[string]bool{}
	for sid, roles := range eligible {
		sys := b.rb.Systems[sid]
		if sys == nil {
			continue
		}
		for _, rid := range roles {
			ok, err := b.rb.MayBreakGlass(ctx, b, user, sys.Roles[rid])
			if err != nil {
				b.log.Warn("break-glass check for the request form failed; the box is not offered", "user", user, "system", sid, "role", rid, "error", err)
			}
			st.BreakGlassRoles[sid+"/"+rid] = ok
		}
	}
	return RequestModal(b.rb, eligible, st)
}

// openBreakGlassModal answers `… --break-glass`: a refusal at once when
// the person may not break the glass there (or over the cap), else the
// break-glass form, pre-filled.
func (b *Bot) openBreakGlassModal(ctx context.Context, cmd slack.SlashCommand, c Command) *reply {
	probe := access.SubmitInput{Requester: cmd.UserID, System: c.System, Role: c.Role, Duration: c.Duration,
		Reason: "(reason to be given in the form)", BreakGlass: true}
	if c.Role == "" {
		return textReply("Which role? Usage: `%s SYSTEM ROLE DURATION REASON --break-glass`.", b.cfg.Command)
	}
	sys, role, d, err := b.svc.Check(ctx, probe)
	if err != nil {
		return textReply("%s", b.errorText(err))
	}
	st := modalState{System: sys.ID, Role: role.ID, Duration: d, Reason: c.Reason, Channel: cmd.ChannelID, BreakGlassMode: true}
	view := b.requestModal(ctx, cmd.UserID, nil, st)
	if err := b.call(ctx, "views.open", func(ctx context.Context) error {
		_, err := b.api.OpenViewContext(ctx, cmd.TriggerID, view)
		return err
	}); err != nil {
		return textReply("%s", b.errorText(err))
	}
	return nil
}

// runbookRequest answers the request forms of issue #16: --break-glass
// and `for @person`.
func (b *Bot) runbookRequest(ctx context.Context, cmd slack.SlashCommand, c Command) *reply {
	if c.BreakGlass {
		return b.openBreakGlassModal(ctx, cmd, c)
	}
	return b.requestFor(ctx, cmd, c) // behalf.go
}

// revokeNow is an owner's "Revoke now" on a break-glass review: the
// ordinary revoke (owners and admins may; the lifecycle checks who
// clicked), with the review as its reason.
func (b *Bot) revokeNow(ctx context.Context, id, user string) (string, error) {
	r, err := b.svc.Revoke(ctx, id, user, "break-glass review: revoked now")
	if err != nil {
		return "", err
	}
	return removalText(r), nil
}

// BreakGlassReview renders the owners' review of a break-glass grant: who
// took what, why, the ticket, where it stands, and "Revoke now" (with a
// confirmation) while the access is live.
func BreakGlassReview(r *access.Request, v View) (string, []slack.Block) {
	text := fmt.Sprintf(":rotating_light: *Break glass: review this.* %s took *%s* for %s *without approval* (%s).\n*Reason:* %s",
		mention(r.Requester), v.roleTitle(r), access.FormatDuration(r.Duration), r.ID, safe(orNone(r.Reason), limitReason))
	if t := TicketText(r.Ticket); t != "" {
		text += "\n*Ticket:* " + t
	}
	if n := notesText(r); n != "" {
		text += "\n" + n
	}
	text += "\n" + Outcome(r, v)
	var actions []slack.BlockElement
	if r.State == access.StateApproved || r.State == access.StateActive {
		btn := button(ActionRevokeNow, "Revoke now", r.ID, "danger")
		btn.Confirm = slack.NewConfirmationBlockObject(
			slack.NewTextBlockObject(slack.PlainTextType, "Revoke "+r.ID+"?", false, false),
			slack.NewTextBlockObject(slack.MarkdownType, Truncate(fmt.Sprintf("Remove %s's %s access now.", mention(r.Requester), v.roleTitle(r)), 300), false, false),
			slack.NewTextBlockObject(slack.PlainTextType, "Revoke", false, false),
			slack.NewTextBlockObject(slack.PlainTextType, "Cancel", false, false))
		actions = append(actions, btn)
	}
	return textMessage(text, "review:"+r.ID, actions)
}

// breakGlassBanner heads every copy of a break-glass request.
func breakGlassBanner(r *access.Request) string {
	return fmt.Sprintf(":rotating_light: *Break glass*: %s took this access *without approval*. The system owners, every approver of the role and the audit channel are told.", mention(r.Requester))
}

// breakGlassSubmitted is the requester's "submitted" DM of a break-glass
// request.
func breakGlassSubmitted(r *access.Request, title string) string {
	return fmt.Sprintf(":rotating_light: You broke the glass: *%s* for *%s* (%s) is being granted now, *without approval*. The system owners, every approver of the role and the audit channel have been told, and the owners may revoke it. It cannot be extended without normal approval.",
		r.ID, title, access.FormatDuration(r.Duration))
}
