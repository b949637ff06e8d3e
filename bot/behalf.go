package bot

import (
	"context"
	"fmt"
	"regexp"

	"github.com/slack-go/slack"

	"github.com/accessbot/accessbot/access"
)

// Requests on behalf of someone in Slack (issue #16):
// `/access for @person SYSTEM ROLE DURATION REASON`. Slack sends the
// mention as <@U123|name> (the command escapes users, should_escape: true
// in the manifest); ParseCommand turns it into the user ID. The request is
// the mentioned person's (access.SubmitInput.Requester) and the person who
// typed the command asked for it (RequestedBy); the lifecycle checks that
// the role's on_behalf allows them and that the beneficiary may have it.
// A request for someone else is made in one line: the form has no "for"
// field, so parts left out are an error that shows the whole command.

// slackUserID is a Slack user ID as mentions carry it.
var slackUserID = regexp.MustCompile(`^[UW][A-Z0-9]{2,}$`)

// requestFor answers `/access for @person …`.
func (b *Bot) requestFor(ctx context.Context, cmd slack.SlashCommand, c Command) *reply {
	example := fmt.Sprintf("`%s for @person SYSTEM ROLE DURATION REASON`, e.g. `%s for @alice crm viewer 2h onboarding`", b.cfg.Command, b.cfg.Command)
	if !slackUserID.MatchString(c.For) {
		return textReply("%s is not a Slack user: mention the person (type @ and pick them from the list): %s.", quote(c.For), example)
	}
	if c.Verb != VerbRequest {
		return textReply("A request for someone else is made in one line, with the duration and the reason: %s.", example)
	}
	if c.For == cmd.UserID {
		c.For = "" // for oneself: an ordinary request
	}
	if b.svc.Busy() {
		b.mx.Busy()
		return textReply("%s", b.errorText(access.ErrBusy))
	}
	in := access.SubmitInput{Requester: cmd.UserID, System: c.System, Role: c.Role, Duration: c.Duration, Reason: c.Reason}
	if c.For != "" {
		in.Requester, in.RequestedBy = c.For, cmd.UserID
	}
	r, err := b.svc.Submit(ctx, in)
	if err != nil {
		return textReply("%s", b.errorText(err))
	}
	if r.RequestedBy == "" {
		return textReply("%s", submittedText(r))
	}
	return textReply("%s", withTicketAndNotes(askerAck(r), r))
}

// askerAck answers the person who asked for someone else.
func askerAck(r *access.Request) string {
	who := mention(r.Requester)
	switch r.State {
	case access.StatePending:
		if st, ok := r.Current(); ok {
			return fmt.Sprintf("Request *%s* for %s: *%s %s* (%s) is submitted and waiting for %s. You and %s will be told how it goes.",
				r.ID, who, Escape(r.System), Escape(r.Role), access.FormatDuration(r.Duration), mentions(st.Approvers), who)
		}
	case access.StateApproved, access.StateActive:
		if r.Auto {
			return fmt.Sprintf("Request *%s* for %s: *%s %s* is approved automatically (%s); granting it now.", r.ID, who, Escape(r.System), Escape(r.Role), autoWhy(r))
		}
	}
	return fmt.Sprintf("Request *%s* for %s is %s.", r.ID, who, stateWords(r.State))
}

func stateWords(s access.State) string {
	switch s {
	case access.StatePending:
		return "waiting for approval"
	case access.StateApproved:
		return "approved, being granted"
	}
	return access.PastTense(s)
}

// askerMessage renders a notice for the person who asked on someone's
// behalf (Notice.To == Request.RequestedBy): what became of the request
// they made for the beneficiary.
func askerMessage(n access.Notice, v View) (string, []slack.Block) {
	r := n.Request
	who := mention(r.Requester)
	title := v.roleTitle(r)
	var text string
	var actions []slack.BlockElement
	switch n.Kind {
	case access.NoticeSubmitted:
		text = askerAck(r)
		if r.State == access.StatePending {
			actions = append(actions, button(ActionCancel, "Cancel request", r.ID, ""))
		}
		text = withTicketAndNotes(text, r)
	case access.NoticeDecided:
		switch n.State {
		case access.StateApproved:
			text = fmt.Sprintf("*%s* (%s for %s) was approved by %s; granting it now.", r.ID, title, who, approvedBy(r))
		case access.StateDenied:
			d, _ := r.Denial()
			text = fmt.Sprintf("*%s* (%s for %s) was *denied* by %s: %s", r.ID, title, who, mention(d.Actor), safe(d.Reason, limitReason))
		case access.StateCancelled:
			text = fmt.Sprintf("*%s* (%s for %s) was cancelled by %s.", r.ID, title, who, mention(r.Last().Actor))
		case access.StateTimedOut:
			text = fmt.Sprintf("*%s* (%s for %s) *timed out*: nobody approved it in time.", r.ID, title, who)
		default:
			text = fmt.Sprintf("*%s* (%s for %s): %s", r.ID, title, who, Outcome(r, v))
		}
	case access.NoticeGranted:
		text = fmt.Sprintf(":white_check_mark: *%s*: %s now has *%s* until *%s*.", r.ID, who, title, FormatTime(r.ExpiresAt, v.loc()))
	case access.NoticeGrantFailed:
		text = fmt.Sprintf(":warning: *%s* (%s for %s) was approved, but granting it failed: %s\nThe system owners have been told.", r.ID, title, who, safe(n.Text, 500))
	case access.NoticeIneligible:
		text = fmt.Sprintf(":no_entry: *%s* (%s for %s) has ended without a grant: %s", r.ID, title, who, safe(n.Text, 300))
	default:
		text = fmt.Sprintf("*%s* (%s for %s): %s", r.ID, title, who, Outcome(r, v))
	}
	return textMessage(text, "asker:"+r.ID, actions)
}

// askedBy is the line that names the person who asked, on the
// beneficiary's and the owners' messages; "" when the requester asked.
func askedBy(r *access.Request) string {
	if r.RequestedBy == "" || r.RequestedBy == r.Requester {
		return ""
	}
	return fmt.Sprintf("Requested for %s by %s.", mention(r.Requester), mention(r.RequestedBy))
}
