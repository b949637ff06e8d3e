package bot

import (
	"errors"
	"fmt"
	"strings"

	"github.com/accessbot/accessbot/access"
)

// errorText is the one place that turns an error into Slack text for the
// person who caused it (mrkdwn, escaped). Refusals of the lifecycle
// (*access.Error) are worded here from their data; the bot's own input
// errors (*inputError) are shown as written; anything else is unexpected:
// logged with a reference the person can quote, and answered with that
// reference only, so that no internal detail (a target's URL, an email)
// ever reaches Slack.
func (b *Bot) errorText(err error) string {
	var ie *inputError
	if errors.As(err, &ie) {
		return ie.text
	}
	var e *access.Error
	if errors.As(err, &e) {
		if t := b.refusalText(e); t != "" {
			return t
		}
		return Escape(e.Message)
	}
	switch {
	case errors.Is(err, access.ErrBusy):
		return "accessbot is very busy right now; nothing was changed. Please try again in a moment."
	case errors.Is(err, access.ErrNotFound):
		return "That request was not found, or it is not yours."
	}
	ref := access.NewRef()
	b.log.Error("unexpected error", "ref", ref, "error", err)
	return fmt.Sprintf("Something went wrong on our side (reference %s). Nothing you did caused it; please try again, and quote the reference if it keeps happening.", ref)
}

// inputError is a bot-level input error whose text is already Slack text
// (a usage hint with the configured command).
type inputError struct{ text string }

func (e *inputError) Error() string { return e.text }

// Unwrap makes an input error an access.ErrInvalid, like the lifecycle's.
func (e *inputError) Unwrap() error { return access.ErrInvalid }

// inputErrorf formats a bot input error; args that are user input must be
// passed through Escape or quoted.
func inputErrorf(format string, args ...any) error {
	return &inputError{text: fmt.Sprintf(format, args...)}
}

// refusalText words a lifecycle refusal for Slack.
func (b *Bot) refusalText(e *access.Error) string {
	cmd := func(args string) string { return "`" + b.cfg.Command + " " + args + "`" }
	what := fmt.Sprintf("%s %s", Escape(e.System), Escape(e.Role))
	q := quote
	switch e.Code {
	case access.CodeUnknownSystem:
		return fmt.Sprintf("There is no system called %s. Systems: %s.", q(e.Value), Escape(strings.Join(e.Allowed, ", ")))
	case access.CodeUnknownRole:
		return fmt.Sprintf("%s has no role called %s. Roles: %s.", Escape(e.System), q(e.Value), Escape(strings.Join(e.Allowed, ", ")))
	case access.CodeNotEligible:
		return fmt.Sprintf("You may not request %s; it is for %s. %s shows what you may request.", what, Escape(strings.Join(e.Allowed, ", ")), cmd("systems"))
	case access.CodeBadDuration:
		return "The duration must be positive."
	case access.CodeDurationTooLong:
		return fmt.Sprintf("%s is longer than the maximum for %s, which is %s.", access.FormatDuration(e.Duration), what, access.FormatDuration(e.Limit))
	case access.CodeReasonRequired:
		return fmt.Sprintf("A reason is required for %s: say why you need it, e.g. the ticket number.", what)
	case access.CodeReasonTooLong:
		return fmt.Sprintf("The reason is %d characters long; the limit is %d.", e.N, e.N2)
	case access.CodeReasonInvalid:
		return "The reason is not valid text."
	case access.CodeDuplicate:
		state := strings.ReplaceAll(string(e.State), "_", " ")
		switch e.State {
		case access.StatePending:
			state = "waiting for approval"
		case access.StateApproved:
			state = "approved, being granted"
		case access.StateActive:
			state = "active until " + FormatTime(e.At, b.rb.Location)
		}
		msg := fmt.Sprintf("You already have *%s* for %s (%s).", e.Request, what, state)
		if e.State == access.StateActive {
			msg += fmt.Sprintf(" To keep it longer, use %s.", cmd("extend "+e.Request+" DURATION"))
		}
		return msg
	case access.CodeExtensionPending:
		return fmt.Sprintf("You already asked to extend %s: *%s* is waiting for approval.", e.Value, e.Request)
	case access.CodeNotExtendable:
		return fmt.Sprintf("*%s* is %s, not an active grant of yours, so it cannot be extended.", e.Request, strings.ReplaceAll(string(e.State), "_", " "))
	case access.CodeNotFound:
		return fmt.Sprintf("%s was not found, or it is not yours.", Escape(e.Request))
	case access.CodeOwnRequest:
		return fmt.Sprintf("You cannot approve or deny your own request *%s*.", e.Request)
	case access.CodeNotApprover:
		return fmt.Sprintf("You are not an approver of step %d of *%s*; it waits for %s.", e.Step, e.Request, mentions(e.People))
	case access.CodeNoLongerApprover:
		return fmt.Sprintf("You are no longer an approver of step %d of *%s* (the runbook or the directory changed since it was sent to you); it now waits for %s.", e.Step, e.Request, mentions(e.People))
	case access.CodeAlreadyApproved:
		return fmt.Sprintf("You already approved step %d of *%s*; it still needs %d more approval(s).", e.Step, e.Request, e.N)
	case access.CodeAlreadyDecided:
		who := "accessbot"
		if e.Actor != "" {
			who = mention(e.Actor)
		}
		return fmt.Sprintf("*%s* was already %s by %s at %s; nothing was changed.", e.Request, access.PastTense(e.State), who, FormatTime(e.At, b.rb.Location))
	case access.CodeDenyReason:
		return "Please give a reason for the denial; the requester will see it."
	case access.CodeOnlyRequester:
		return fmt.Sprintf("Only the requester can %s *%s*.", e.Value, e.Request)
	case access.CodeUseRevoke:
		return fmt.Sprintf("*%s* is already granted; use %s to give the access back.", e.Request, cmd("revoke "+e.Request))
	case access.CodeUseCancel:
		return fmt.Sprintf("*%s* is still waiting for approval; use %s instead.", e.Request, cmd("cancel "+e.Request))
	case access.CodeRevokeForbidden:
		return fmt.Sprintf("Only the requester, the owners of %s and admins can revoke *%s*.", Escape(e.System), e.Request)
	case access.CodeNotActive:
		return fmt.Sprintf("*%s* is %s, not active; there is no access to remove.", e.Request, strings.ReplaceAll(string(e.State), "_", " "))
	case access.CodeBeingRemoved:
		return fmt.Sprintf("*%s* is already being removed.", e.Request)
	case access.CodeConfirmForbidden:
		return fmt.Sprintf("Only the owners of %s can confirm this task.", Escape(e.System))
	case access.CodeOffboarded:
		return fmt.Sprintf("Access requests for this person are suspended: they were offboarded (%s). Nothing was requested; an admin (%s) can help if this is wrong.", Escape(e.Value), mentions(b.rb.Admins))
	case access.CodeNoTask:
		state := strings.ReplaceAll(string(e.State), "_", " ")
		if e.Value == "" {
			return fmt.Sprintf("This task message of *%s* is from an older version and does not say which task it is; nothing was changed. Use the newest task message (it is %s).", e.Request, state)
		}
		return fmt.Sprintf("*%s* has no %s task waiting any more (it is %s): this message is out of date and nothing was changed.", e.Request, e.Value, state)
	case access.CodeNoApprovers:
		return fmt.Sprintf("Step %d of %s needs %d approver(s) other than you, but only %d can be found (including the system owners and admins). Ask an admin (%s) to fix the runbook.", e.Step, what, e.N, e.N2, mentions(b.rb.Admins))
	case access.CodeBusy:
		return "accessbot is very busy right now; nothing was changed. Please try again in a moment."
	case access.CodeIneligible:
		return fmt.Sprintf("*%s* has ended: the requester may no longer request it (the runbook or the directory changed). Nothing was approved.", e.Request)
	case access.CodeStaleStep:
		return fmt.Sprintf("This message asked about step %d of *%s*, which is no longer the step waiting for a decision (it is step %d now); nothing was changed.", e.Step, e.Request, e.N)
	case access.CodeOtherStep:
		return fmt.Sprintf("You already approved step %d of *%s*. One person's approval counts for one step only, so someone else must approve this step.", e.Step, e.Request)
	case access.CodeDirectory:
		if e.Request == "" {
			return "accessbot cannot check the directory (Slack or the identity provider) right now, so nothing was created. Please try again in a moment."
		}
		return fmt.Sprintf("accessbot cannot check the directory (Slack or the identity provider) right now, so nothing was decided for *%s*. Please try again in a moment.", e.Request)
	case access.CodeBreakGlassNotAllowed:
		switch {
		case e.Value == "on_behalf":
			return "Break-glass is only for yourself: the person who breaks the glass is the one who gets the access."
		case e.Value == "extend":
			return fmt.Sprintf("*%s* cannot be extended by breaking the glass: an extension is an ordinary request that needs %s's approval (%s).", e.Request, what, cmd("extend "+e.Request+" DURATION"))
		case len(e.Allowed) == 0:
			return fmt.Sprintf("%s has no break-glass access; request it the usual way.", what)
		}
		return fmt.Sprintf("You may not break the glass on %s; break-glass is for %s. Request it the usual way.", what, Escape(strings.Join(e.Allowed, ", ")))
	case access.CodeBreakGlassTooLong:
		return fmt.Sprintf("%s is longer than break-glass allows for %s, which is %s.", access.FormatDuration(e.Duration), what, access.FormatDuration(e.Limit))
	case access.CodeBreakGlassReason:
		return fmt.Sprintf("Breaking the glass on %s needs a reason: say what the emergency is.", what)
	case access.CodeOnBehalfNotAllowed:
		if len(e.Allowed) == 0 {
			return fmt.Sprintf("%s cannot be requested for someone else; %s can ask for it themselves.", what, mention(e.Value))
		}
		return fmt.Sprintf("You may not request %s for %s; on behalf of someone, it may be requested by %s (manager means their manager).", what, mention(e.Value), Escape(strings.Join(e.Allowed, ", ")))
	case access.CodeBeneficiaryNotEligible:
		return fmt.Sprintf("%s may not have %s; it is for %s.", mention(e.Value), what, Escape(strings.Join(e.Allowed, ", ")))
	case access.CodeUnknownPerson:
		if e.N2 == 1 {
			return fmt.Sprintf("%s's account is deactivated, so nobody may request access for them.", mention(e.Value))
		}
		return fmt.Sprintf("There is no Slack user %s: mention the person (type @ and pick them from the list).", quote(e.Value))
	}
	return ""
}
