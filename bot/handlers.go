package bot

import (
	"context"
	"fmt"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/slackevents"
	"github.com/slack-go/slack/socketmode"

	"github.com/accessbot/accessbot/access"
)

// reply is an answer to a person: an ephemeral message.
type reply struct {
	Text   string
	Blocks []slack.Block
	// viewErrors, for a view_submission, keeps the modal open with these
	// errors next to the input blocks they name (response_action: errors).
	viewErrors map[string]string
}

// maxAckBytes keeps ack payloads under Slack's 20 480-byte frame limit
// (slack-protocol.md §1.4) with room for the envelope.
const maxAckBytes = 16000

func (r *reply) payload() map[string]any {
	if r == nil {
		return nil
	}
	if r.viewErrors != nil {
		return map[string]any{"response_action": "errors", "errors": r.viewErrors}
	}
	p := map[string]any{"response_type": "ephemeral", "text": Truncate(r.Text, limitFallback)}
	if len(r.Blocks) > 0 {
		p["blocks"] = r.Blocks
	}
	return p
}

func textReply(format string, args ...any) *reply {
	t := fmt.Sprintf(format, args...)
	return &reply{Text: stripMrkdwn(t), Blocks: []slack.Block{section(t)}}
}

// recovered, deferred by every handler and background loop, turns a panic
// into a log line with a reference and, when answer is set, a clear
// answer to the person, so that the bot keeps serving.
func (b *Bot) recovered(ctx context.Context, where string, answer func(text string)) {
	p := recover()
	if p == nil {
		return
	}
	ref := access.NewRef()
	b.mx.Panic(where)
	b.log.Error("recovered from a panic; accessbot keeps serving", "where", where, "ref", ref, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
	if answer != nil {
		answer(fmt.Sprintf("Something went wrong on our side (reference %s). Nothing you did caused it; please try again, and quote the reference if it keeps happening.", ref))
	}
}

// handleEnvelope runs in a worker: it validates, acks within the budget and
// does the work. A duplicate delivery is acked and ignored. A panic
// anywhere in it is recovered (recovered): the envelope is acked and the
// person answered with a reference.
func (b *Bot) handleEnvelope(ctx context.Context, evt socketmode.Event, req socketmode.Request, received time.Time) {
	defer b.acked.Delete(req.EnvelopeID)
	defer b.recovered(ctx, string(evt.Type), func(text string) {
		if _, done := b.acked.Load(req.EnvelopeID); !done {
			var p any
			if evt.Type == socketmode.EventTypeSlashCommand {
				p = map[string]any{"response_type": "ephemeral", "text": text}
			}
			b.ack(ctx, req.EnvelopeID, "panic", received, p)
			if p != nil {
				return
			}
		}
		if user := envelopeUser(evt); user != "" {
			b.respond(ctx, envelopeResponseURL(evt), user, textReply("%s", text))
		}
	})
	b.handle(ctx, evt, req, received)
}

// envelopeUser is the person behind an envelope, "" if none.
func envelopeUser(evt socketmode.Event) string {
	switch d := evt.Data.(type) {
	case slack.SlashCommand:
		return d.UserID
	case slack.InteractionCallback:
		return d.User.ID
	}
	return ""
}

func envelopeResponseURL(evt socketmode.Event) string {
	switch d := evt.Data.(type) {
	case slack.SlashCommand:
		return d.ResponseURL
	case slack.InteractionCallback:
		return d.ResponseURL
	}
	return ""
}

func (b *Bot) handle(ctx context.Context, evt socketmode.Event, req socketmode.Request, received time.Time) {
	if !b.firstSeen(req.EnvelopeID) {
		b.ack(ctx, req.EnvelopeID, "duplicate", received, nil)
		return
	}
	switch evt.Type {
	case socketmode.EventTypeSlashCommand:
		cmd, ok := evt.Data.(slack.SlashCommand)
		if !ok {
			b.ack(ctx, req.EnvelopeID, "slash", received, nil)
			return
		}
		b.withinBudget(ctx, req.EnvelopeID, "slash", received, func(ctx context.Context) *reply { return b.slash(ctx, cmd) },
			func(r *reply) { b.respond(ctx, cmd.ResponseURL, cmd.UserID, r) })
	case socketmode.EventTypeInteractive:
		cb, ok := evt.Data.(slack.InteractionCallback)
		if !ok {
			b.ack(ctx, req.EnvelopeID, "interactive", received, nil)
			return
		}
		b.interaction(ctx, req, cb, received)
	case socketmode.EventTypeEventsAPI:
		b.ack(ctx, req.EnvelopeID, "event", received, nil)
		ev, ok := evt.Data.(slackevents.EventsAPIEvent)
		if !ok {
			return
		}
		switch inner := ev.InnerEvent.Data.(type) {
		case *slackevents.AppHomeOpenedEvent:
			if inner.Tab != "messages" {
				b.homes.open(inner.User)
				if err := b.publishHome(ctx, inner.User); err != nil {
					b.log.Error("publish App Home failed", "user", inner.User, "error", err)
				}
			}
		case *slackevents.UserChangeEvent:
			b.userChanged(ctx, inner.User.ID)
		}
	}
}

// userChanged handles Slack's user_change event (users:read): the person's
// cached profile is dropped and read again, fresh from users.info rather
// than trusted from the event. A deactivated account is offboarded at
// once (DESIGN.md §4 invariant 12); otherwise their pending requests are
// re-checked, since their manager or teams may have changed.
func (b *Bot) userChanged(ctx context.Context, user string) {
	if user == "" {
		return
	}
	if b.forget != nil {
		b.forget.Forget(user)
	}
	p, err := b.directory().Person(access.Fresh(ctx), user)
	if err != nil {
		b.log.Warn("user_change: could not read the profile; the periodic re-checks will", "user", user, "error", err)
		return
	}
	if p.Deactivated {
		if err := b.svc.Offboard(ctx, user, access.OffboardedInSlack); err != nil {
			b.log.Error("offboarding failed; the periodic checks retry", "user", user, "error", err)
		}
		return
	}
	b.svc.Reinstate(user)
	if err := b.svc.Recheck(ctx, user); err != nil {
		b.log.Warn("re-check after a profile change failed; the periodic re-checks retry", "user", user, "error", err)
	}
}

// withinBudget runs work and acks with its answer if it finishes within
// the ack budget; otherwise it acks with "working on it" and delivers the
// answer through late when it arrives (DESIGN.md §3: replies go in the ack
// where the 3 s budget allows, else through response_url).
func (b *Bot) withinBudget(ctx context.Context, envelopeID, kind string, received time.Time, work func(context.Context) *reply, late func(*reply)) {
	done := make(chan *reply, 1)
	go func() {
		var r *reply
		defer func() { done <- r }()
		defer b.recovered(ctx, kind, func(text string) { r = textReply("%s", text) })
		r = work(ctx)
	}()
	left := b.cfg.AckBudget - time.Since(received)
	t := time.NewTimer(max(left, 0))
	defer t.Stop()
	select {
	case r := <-done:
		p := r.payload()
		if p != nil && approxSize(p) > maxAckBytes {
			b.ack(ctx, envelopeID, kind, received, nil)
			late(r)
			return
		}
		if p == nil {
			b.ack(ctx, envelopeID, kind, received, nil)
		} else {
			b.ack(ctx, envelopeID, kind, received, p)
		}
	case <-t.C:
		b.ack(ctx, envelopeID, kind, received, map[string]any{"response_type": "ephemeral", "text": "Working on it…"})
		if r := <-done; r != nil {
			late(r)
		}
	}
}

// respond delivers a late or large answer through response_url, or as a
// DM when there is none.
func (b *Bot) respond(ctx context.Context, responseURL, user string, r *reply) {
	if r == nil {
		return
	}
	if responseURL != "" {
		err := b.call(ctx, "response_url", func(ctx context.Context) error {
			_, _, err := b.api.PostMessageContext(ctx, "", slack.MsgOptionResponseURL(responseURL, slack.ResponseTypeEphemeral),
				slack.MsgOptionText(Truncate(r.Text, limitFallback), false), slack.MsgOptionBlocks(r.Blocks...))
			return err
		})
		if err == nil {
			return
		}
		b.log.Warn("response_url failed; answering by DM", "user", user, "error", err)
	}
	if _, _, err := b.post(ctx, user, Truncate(r.Text, limitFallback), r.Blocks); err != nil {
		b.log.Error("could not answer user", "user", user, "error", err)
	}
}

// slash answers one /access command.
func (b *Bot) slash(ctx context.Context, cmd slack.SlashCommand) *reply {
	c, err := ParseCommand(cmd.Text)
	if err != nil {
		return textReply("%s\n`%s help` shows the usage.", b.errorText(err), b.cfg.Command)
	}
	if c.BreakGlass || c.For != "" {
		return b.runbookRequest(ctx, cmd, c) // breakglass.go, behalf.go
	}
	user := cmd.UserID
	switch c.Verb {
	case VerbHelp:
		return textReply("%s", HelpText(b.cfg.Command))
	case VerbModal:
		if err := b.openRequestModal(ctx, cmd.TriggerID, user, modalState{System: c.System, Role: c.Role, Duration: c.Duration, Channel: cmd.ChannelID}); err != nil {
			return textReply("%s", b.errorText(err))
		}
		return nil
	case VerbRequest:
		in := access.SubmitInput{Requester: user, System: c.System, Role: c.Role, Duration: c.Duration, Reason: c.Reason}
		if c.Reason == "" {
			// Check the other parts as if a reason were given: only the
			// absent reason may open the modal, a wrong part is an error.
			probe := in
			probe.Reason = "(reason to be given in the form)"
			if _, role, _, err := b.svc.Check(ctx, probe); err == nil && role.ReasonRequired {
				// Only absent parts open the modal, pre-filled (DESIGN.md §3).
				if err := b.openRequestModal(ctx, cmd.TriggerID, user, modalState{System: c.System, Role: c.Role, Duration: c.Duration, Channel: cmd.ChannelID}); err != nil {
					return textReply("%s", b.errorText(err))
				}
				return nil
			}
		}
		if b.svc.Busy() {
			b.mx.Busy()
			return textReply("%s", b.errorText(access.ErrBusy))
		}
		r, err := b.svc.Submit(ctx, in)
		if err != nil {
			return textReply("%s", b.errorText(err))
		}
		return textReply("%s", submittedText(r))
	case VerbList:
		return b.listReply(ctx, user)
	case VerbPending:
		return b.pendingReply(ctx, user)
	case VerbSystems:
		return b.systemsReply(ctx, user)
	case VerbCancel:
		r, err := b.svc.Cancel(ctx, c.ID, user)
		if err != nil {
			return textReply("%s", b.errorText(err))
		}
		return textReply("*%s* is cancelled.", r.ID)
	case VerbRevoke:
		r, err := b.svc.Revoke(ctx, c.ID, user, c.Reason)
		if err != nil {
			return textReply("%s", b.errorText(err))
		}
		return textReply("%s", removalText(r))
	case VerbExtend:
		r, err := b.svc.Extend(ctx, c.ID, user, c.Duration, c.Reason)
		if err != nil {
			return textReply("%s", b.errorText(err))
		}
		return textReply("%s", submittedText(r))
	case VerbAudit:
		return b.auditReply(ctx, user, c)
	}
	return textReply("%s", HelpText(b.cfg.Command))
}

// submittedText answers a request just made: its state, then its ticket
// and what the admission policy had to say (submitAckWhy, notesText).
func submittedText(r *access.Request) string { return withTicketAndNotes(submittedState(r), r) }

func submittedState(r *access.Request) string {
	switch r.State {
	case access.StatePending:
		st, ok := r.Current()
		if !ok {
			break
		}
		return fmt.Sprintf("Request *%s* for *%s %s* (%s) is submitted and waiting for %s.", r.ID, Escape(r.System), Escape(r.Role), access.FormatDuration(r.Duration), mentions(st.Approvers))
	case access.StateActive:
		return fmt.Sprintf("*%s*: approved automatically and granted until %s.", r.ID, r.ExpiresAt.UTC().Format("2006-01-02 15:04 MST"))
	case access.StateApproved:
		if r.Auto {
			return fmt.Sprintf("*%s*: approved automatically (%s); granting it now. You will get a DM when the access is in place.", r.ID, submitAckWhy(r))
		}
		return fmt.Sprintf("*%s*: approved; being granted.", r.ID)
	case access.StateGrantFailed:
		return fmt.Sprintf("*%s*: approved, but the grant failed: %s", r.ID, safe(r.LastError, 500))
	}
	if r.State == access.StatePending {
		return fmt.Sprintf("Request *%s* for *%s %s* is submitted.", r.ID, Escape(r.System), Escape(r.Role))
	}
	return fmt.Sprintf("*%s* is %s.", r.ID, strings.ReplaceAll(string(r.State), "_", " "))
}

func removalText(r *access.Request) string {
	switch r.State {
	case access.StateRevoked, access.StateExpired:
		return fmt.Sprintf("*%s*: access removed.", r.ID)
	}
	return fmt.Sprintf("*%s*: removal started; the requester is told when the system confirms it.", r.ID)
}

func (b *Bot) listReply(ctx context.Context, user string) *reply {
	rs, err := b.svc.Mine(ctx, user)
	if err != nil {
		return textReply("%s", b.errorText(err))
	}
	if len(rs) == 0 {
		return textReply("You have no active grants and no pending requests. `%s` asks for access.", b.cfg.Command)
	}
	loc := b.rb.Location
	var lines []string
	for i, r := range rs {
		if i == 25 {
			lines = append(lines, fmt.Sprintf("…and %d more.", len(rs)-25))
			break
		}
		var what string
		switch r.State {
		case access.StatePending:
			what = "waiting for approval"
			if st, ok := r.Current(); ok {
				what = fmt.Sprintf("waiting for %s (step %d of %d)", mentions(st.Approvers), r.CurrentStep+1, len(r.Steps))
			}
		case access.StateApproved:
			what = "approved, being granted"
		case access.StateActive:
			what = fmt.Sprintf("active until %s (%s left)", FormatTime(r.ExpiresAt, loc), access.FormatDuration(r.ExpiresAt.Sub(b.clock.Now()).Round(time.Minute)))
		case access.StateRevoking:
			what = "being removed"
		}
		lines = append(lines, fmt.Sprintf("• *%s* %s · %s: %s", r.ID, Escape(r.System), Escape(r.Role), what))
	}
	return textReply("*Your access*\n%s", strings.Join(lines, "\n"))
}

func (b *Bot) pendingReply(ctx context.Context, user string) *reply {
	rs, err := b.svc.PendingFor(ctx, user)
	if err != nil {
		return textReply("%s", b.errorText(err))
	}
	if len(rs) == 0 {
		return textReply("Nothing is waiting for your approval.")
	}
	var lines []string
	for i, r := range rs {
		if i == 25 {
			lines = append(lines, fmt.Sprintf("…and %d more.", len(rs)-25))
			break
		}
		lines = append(lines, fmt.Sprintf("• *%s* %s asks for %s · %s for %s: %s", r.ID, mention(r.Requester), Escape(r.System), Escape(r.Role), access.FormatDuration(r.Duration), safe(r.Reason, 200)))
	}
	return textReply("*Waiting for your approval* (the buttons are in your DMs with me)\n%s", strings.Join(lines, "\n"))
}

func (b *Bot) systemsReply(ctx context.Context, user string) *reply {
	eligible, err := b.rb.Requestable(ctx, b.directory(), user)
	if err != nil {
		return textReply("%s", b.errorText(err))
	}
	if len(eligible) == 0 {
		return textReply("There is nothing you may request yet. Ask a system owner or an admin (%s) to add you to the runbook.", mentions(b.rb.Admins))
	}
	var lines []string
	for _, sid := range b.rb.SystemIDs() {
		roles := eligible[sid]
		if len(roles) == 0 {
			continue
		}
		sys := b.rb.Systems[sid]
		lines = append(lines, fmt.Sprintf("*%s* (`%s`)", Escape(sys.DisplayName()), sid))
		for _, rid := range roles {
			role := sys.Roles[rid]
			appr := "automatic"
			if !role.Approval.Auto {
				var steps []string
				for _, s := range role.Approval.Steps {
					var src []string
					for _, x := range s.Sources {
						src = append(src, x.String())
					}
					st := strings.Join(src, " or ")
					if s.Min > 1 {
						st = fmt.Sprintf("%d of %s", s.Min, st)
					}
					steps = append(steps, st)
				}
				appr = strings.Join(steps, " → ")
			}
			lines = append(lines, fmt.Sprintf("  • `%s`: %s · up to %s · approval: %s", rid, safe(role.Description, 150), access.FormatDuration(role.MaxDuration), Escape(appr)))
		}
	}
	return textReply("*What you may request*\n%s", Truncate(strings.Join(lines, "\n"), 2900))
}

// interaction handles block_actions, view_submission and view_closed.
func (b *Bot) interaction(ctx context.Context, req socketmode.Request, cb slack.InteractionCallback, received time.Time) {
	switch cb.Type {
	case slack.InteractionTypeViewSubmission:
		switch cb.View.CallbackID {
		case CallbackRequest:
			b.withinBudget(ctx, req.EnvelopeID, "view_submission", received, func(ctx context.Context) *reply {
				return b.submitModal(ctx, cb)
			}, func(r *reply) { b.respond(ctx, "", cb.User.ID, r) })
			return
		case CallbackDeny:
			b.withinBudget(ctx, req.EnvelopeID, "view_submission", received, func(ctx context.Context) *reply {
				return b.submitDeny(ctx, cb)
			}, func(r *reply) { b.respond(ctx, "", cb.User.ID, r) })
			return
		}
		b.ack(ctx, req.EnvelopeID, "view_submission", received, nil)
	case slack.InteractionTypeBlockActions:
		b.ack(ctx, req.EnvelopeID, "block_actions", received, nil)
		for _, a := range cb.ActionCallback.BlockActions {
			b.action(ctx, cb, a)
		}
	default:
		b.ack(ctx, req.EnvelopeID, string(cb.Type), received, nil)
	}
}

// submitModal handles the request modal's submission. Errors go next to
// the field they are about; success closes the modal (the requester gets
// the "submitted" DM).
func (b *Bot) submitModal(ctx context.Context, cb slack.InteractionCallback) *reply {
	st := stateFromView(&cb.View)
	user := cb.User.ID
	if b.svc.Busy() {
		b.mx.Busy()
		return &reply{viewErrors: map[string]string{BlockReason: stripMrkdwn(b.errorText(access.ErrBusy))}}
	}
	if _, err := b.svc.Submit(ctx, st.input(user)); err != nil {
		return &reply{viewErrors: b.fieldErrors(err)}
	}
	return nil
}

func (b *Bot) submitDeny(ctx context.Context, cb slack.InteractionCallback) *reply {
	id, step := denyTarget(cb.View.PrivateMetadata)
	var reason string
	if cb.View.State != nil { // absent from a malformed submission: no reason given
		reason = cb.View.State.Values[BlockDenyReason][ActionDenyReason].Value
	}
	if access.CleanText(reason) == "" {
		return &reply{viewErrors: map[string]string{BlockDenyReason: "Please say why; the requester will see it."}}
	}
	if _, err := b.svc.Decide(ctx, id, cb.User.ID, false, reason, step); err != nil {
		return &reply{viewErrors: map[string]string{BlockDenyReason: Truncate(stripMrkdwn(b.errorText(err)), 2000)}}
	}
	return nil
}

// action handles one button or select.
func (b *Bot) action(ctx context.Context, cb slack.InteractionCallback, a *slack.BlockAction) {
	user := cb.User.ID
	id := a.Value
	var err error
	var answer string
	switch a.ActionID {
	case ActionApprove:
		_, err = b.svc.Decide(ctx, id, user, true, "", stepOf(a.BlockID))
	case ActionDeny:
		step := stepOf(a.BlockID)
		var r *access.Request
		r, err = b.svc.GetFor(ctx, id, user)
		if err == nil {
			st, _ := r.Current()
			switch {
			case r.State != access.StatePending:
				err = access.AlreadyDecided(r)
			case user == r.Requester:
				err = &access.Error{Kind: access.ErrForbidden, Code: access.CodeOwnRequest, Request: r.ID}
			case step != access.AnyStep && step != r.CurrentStep:
				err = &access.Error{Kind: access.ErrConflict, Code: access.CodeStaleStep, Request: r.ID, Step: step + 1, N: r.CurrentStep + 1}
			case !r.IsApprover(user):
				err = &access.Error{Kind: access.ErrForbidden, Code: access.CodeNotApprover, Request: r.ID, Step: r.CurrentStep + 1, People: st.Approvers}
			default:
				// The reason is asked first; the decision (and all its
				// re-checks) happens when the modal is submitted.
				err = b.call(ctx, "views.open", func(ctx context.Context) error {
					_, err := b.api.OpenViewContext(ctx, cb.TriggerID, DenyModal(r, b.viewOf(ctx, r)))
					return err
				})
			}
		}
	case ActionCancel:
		_, err = b.svc.Cancel(ctx, id, user)
		answer = fmt.Sprintf("*%s* is cancelled.", id)
	case ActionDone:
		var r *access.Request
		r, err = b.svc.Revoke(ctx, id, user, "I'm done")
		if err == nil {
			answer = removalText(r)
		}
	case ActionExtend:
		var old *access.Request
		old, err = b.svc.GetFor(ctx, id, user)
		if err == nil {
			var r *access.Request
			r, err = b.svc.Extend(ctx, id, user, old.Duration, "")
			if err == nil {
				answer = submittedText(r)
			}
		}
	case ActionConfirm:
		_, err = b.svc.Confirm(ctx, id, user, taskOf(a.BlockID))
	case ActionRevokeNow:
		answer, err = b.revokeNow(ctx, id, user)
	case ActionRequestAccess:
		err = b.openRequestModal(ctx, cb.TriggerID, user, modalState{})
	case ActionSystemSelect, ActionRoleSelect:
		err = b.refreshModal(ctx, cb, a)
	default:
		return
	}
	if err != nil {
		b.tell(ctx, cb, b.errorText(err))
		return
	}
	if answer != "" {
		b.tell(ctx, cb, answer)
	}
}

// refreshModal re-renders the request modal after the system or role
// changed, so that role choices follow the system and durations the role.
func (b *Bot) refreshModal(ctx context.Context, cb slack.InteractionCallback, a *slack.BlockAction) error {
	st := stateFromView(&cb.View)
	if a.ActionID == ActionSystemSelect {
		st.System, st.Role, st.Duration = a.SelectedOption.Value, "", 0
	} else {
		st.Role, st.Duration = a.SelectedOption.Value, 0
	}
	eligible, err := b.rb.Requestable(ctx, b.directory(), cb.User.ID)
	if err != nil {
		return err
	}
	if len(eligible) == 0 {
		return inputErrorf("There is nothing you may request.")
	}
	view := b.requestModal(ctx, cb.User.ID, eligible, st)
	return b.call(ctx, "views.update", func(ctx context.Context) error {
		_, err := b.api.UpdateViewContext(ctx, view, "", cb.View.Hash, cb.View.ID)
		if isSlackError(err, "hash_conflict") {
			return nil // a newer update won; it shows a newer choice
		}
		return err
	})
}

// tell answers the person who clicked, privately: through the
// response_url of a message click, else an ephemeral in the channel, else
// a DM (App Home clicks have neither).
func (b *Bot) tell(ctx context.Context, cb slack.InteractionCallback, text string) {
	r := textReply("%s", text)
	if cb.ResponseURL != "" {
		err := b.call(ctx, "response_url", func(ctx context.Context) error {
			// A new ephemeral, never replace_original: the clicked message
			// is an approval copy that must keep showing the request.
			_, _, err := b.api.PostMessageContext(ctx, "", slack.MsgOptionResponseURL(cb.ResponseURL, slack.ResponseTypeEphemeral),
				slack.MsgOptionText(r.Text, false), slack.MsgOptionBlocks(r.Blocks...))
			return err
		})
		if err == nil {
			return
		}
	}
	if cb.Channel.ID != "" {
		err := b.call(ctx, "chat.postEphemeral", func(ctx context.Context) error {
			_, err := b.api.PostEphemeralContext(ctx, cb.Channel.ID, cb.User.ID, slack.MsgOptionText(r.Text, false), slack.MsgOptionBlocks(r.Blocks...))
			return err
		})
		if err == nil {
			return
		}
	}
	if _, _, err := b.post(ctx, cb.User.ID, r.Text, r.Blocks); err != nil {
		b.log.Error("could not tell user", "user", cb.User.ID, "error", err)
	}
}

// decideBlockID is the block ID of the Approve/Deny buttons of a copy that
// asks for step (0-based) of request id: a click counts only for the step
// of the message it was made on (DESIGN.md §4 invariant 10), so the step
// travels with the click without being part of the button's value.
func decideBlockID(prefix, id string, step int) string {
	return fmt.Sprintf("%s:%s:s%d", prefix, id, step)
}

// stepOf reads the step from a decide block ID; access.AnyStep when the
// block does not say (an older message).
func stepOf(blockID string) int {
	i := strings.LastIndex(blockID, ":s")
	if i < 0 {
		return access.AnyStep
	}
	n, err := strconv.Atoi(blockID[i+2:])
	if err != nil || n < 0 {
		return access.AnyStep
	}
	return n
}

// denyTarget reads the deny modal's private metadata: "AR-1042#1" (the
// request and the step its message asked for), or a bare ID.
func denyTarget(meta string) (string, int) {
	id, step, ok := strings.Cut(meta, "#")
	if !ok {
		return meta, access.AnyStep
	}
	n, err := strconv.Atoi(step)
	if err != nil || n < 0 {
		return id, access.AnyStep
	}
	return id, n
}
