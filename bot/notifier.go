package bot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/slack-go/slack"

	"github.com/accessbot/accessbot/access"
)

var _ access.Notifier = (*Bot)(nil)

// Message reference kinds stored with a request.
const (
	refApproval = access.RefApproval
	refAudit    = access.RefAudit
	refWarning  = access.RefWarning
	refTask     = access.RefTask
	refReview   = access.RefReview
)

// Deliver implements access.Notifier: it sends the notices, all for one
// destination, to Slack and reports each one's outcome. Notices are
// rendered from the request as it is now (Notice.Request), so a late
// delivery still shows the truth. Several plain requester DMs queued
// together (a storm of removals) are combined into one message; approval
// DMs, warnings and tasks are always their own message, because later
// transitions update them.
//
// Slack failures are classified for the outbox: rate limits and server or
// transport errors are retryable (with Slack's Retry-After), and errors
// that will never succeed (channel_not_found, is_archived, …) are
// permanent. Deliver does not wait out rate limits itself: the outbox
// persists the retry.
func (b *Bot) Deliver(ctx context.Context, to string, ns []access.Notice) []access.Delivered {
	out := make([]access.Delivered, len(ns))
	var plain []int // requester notices that may be combined
	for i, n := range ns {
		if n.Request == nil {
			out[i].Err = access.PermanentError(errors.New("notice without its request"))
			continue
		}
		if combinable(n) {
			plain = append(plain, i)
			continue
		}
		out[i] = b.deliverOne(ctx, to, n)
	}
	if len(plain) == 1 {
		out[plain[0]] = b.deliverOne(ctx, to, ns[plain[0]])
	} else if len(plain) > 1 {
		var group []access.Notice
		for _, i := range plain {
			group = append(group, ns[i])
		}
		fallback, blocks := CombinedMessage(group, b.viewOf(ctx, group[0].Request))
		_, _, err := b.postOnce(ctx, to, fallback, blocks)
		for _, i := range plain {
			out[i].Err = deliveryError(err)
		}
	}
	for _, n := range ns {
		if n.Request != nil && n.Kind != access.NoticeUpdate {
			b.homes.touch(n.Request)
		}
	}
	return out
}

// combinable reports whether a notice is a plain requester DM with no
// buttons that later transitions must update.
func combinable(n access.Notice) bool {
	if n.For != access.ForRequester {
		return false
	}
	switch n.Kind {
	case access.NoticeRemoved, access.NoticeRevokeDelayed, access.NoticeProgress, access.NoticeAccessKept:
		return true
	}
	return false
}

func (b *Bot) deliverOne(ctx context.Context, to string, n access.Notice) access.Delivered {
	r := n.Request
	v := b.viewOf(ctx, r)
	switch {
	case n.Kind == access.NoticeUpdate:
		return access.Delivered{Err: b.updateCopy(ctx, n, v)}
	case n.For == access.ForApprover || n.For == access.ForAudit:
		viewer := ""
		if n.For == access.ForApprover {
			viewer = n.To
		}
		fallback, blocks := ApprovalMessage(r, v, viewer)
		if n.Kind == access.NoticeReminder {
			blocks = append([]slack.Block{section(fmt.Sprintf(":bell: *Reminder*: %s still waits for your decision.", r.ID))}, blocks...)
		}
		ch, ts, err := b.postOnce(ctx, to, fallback, blocks)
		if err != nil {
			return access.Delivered{Err: deliveryError(err)}
		}
		ref := &access.MessageRef{Kind: refApproval, Channel: ch, TS: ts, User: n.To, Step: n.Step}
		if n.For == access.ForAudit {
			ref = &access.MessageRef{Kind: refAudit, Channel: ch, TS: ts}
		}
		return access.Delivered{Ref: ref}
	case n.For == access.ForOwners:
		fallback, blocks := OwnerMessage(n, v)
		ch, ts, err := b.postOnce(ctx, to, fallback, blocks)
		if err != nil {
			return access.Delivered{Err: deliveryError(err)}
		}
		if n.Kind == access.NoticeTask {
			return access.Delivered{Ref: &access.MessageRef{Kind: refTask, Channel: ch, TS: ts, Op: n.Op}}
		}
		if n.Kind == access.NoticeBreakGlass {
			return access.Delivered{Ref: &access.MessageRef{Kind: refReview, Channel: ch, TS: ts}}
		}
		return access.Delivered{}
	default:
		fallback, blocks := RequesterMessage(n, v)
		ch, ts, err := b.postOnce(ctx, to, fallback, blocks)
		if err != nil {
			return access.Delivered{Err: deliveryError(err)}
		}
		if n.Kind == access.NoticeExpiryWarning {
			return access.Delivered{Ref: &access.MessageRef{Kind: refWarning, Channel: ch, TS: ts}}
		}
		return access.Delivered{}
	}
}

// updateCopy re-renders one posted copy from the request as it is now.
func (b *Bot) updateCopy(ctx context.Context, n access.Notice, v View) error {
	r, ref := n.Request, n.Ref
	if ref == nil {
		return access.PermanentError(errors.New("update without a message reference"))
	}
	var fallback string
	var blocks []slack.Block
	switch ref.Kind {
	case refApproval:
		fallback, blocks = ApprovalMessage(r, v, ref.User)
	case refAudit:
		fallback, blocks = ApprovalMessage(r, v, "")
	case refWarning:
		fallback, blocks = WarningDone(r, v)
	case refReview:
		fallback, blocks = BreakGlassReview(r, v)
	case refTask:
		what := "granted"
		switch {
		case ref.Op == "revoke":
			what = "removed"
		case r.State == access.StateGrantFailed:
			what = "no longer needed: the grant failed"
		case r.State == access.StateRevoking || r.State == access.StateRevoked || r.State == access.StateExpired:
			if !r.GrantedAt.IsZero() {
				break
			}
			what = "no longer needed: the request was stopped"
		}
		fallback, blocks = TaskDoneMessage(r, v, what)
	default:
		return access.PermanentError(fmt.Errorf("unknown copy kind %q", ref.Kind))
	}
	err := b.callOnce(ctx, "chat.update", func(ctx context.Context) error {
		_, _, _, err := b.api.UpdateMessageContext(ctx, ref.Channel, ref.TS, slack.MsgOptionText(fallback, false), slack.MsgOptionBlocks(blocks...))
		return err
	})
	return deliveryError(err)
}

// deliveryError turns a Slack call error into the outbox's classes:
// permanent for answers that will not change by retrying, retryable (with
// Slack's Retry-After) for the rest.
func deliveryError(err error) error {
	if err == nil {
		return nil
	}
	var rl *slack.RateLimitedError
	if errors.As(err, &rl) {
		return access.RetryableError(err, rl.RetryAfter)
	}
	var se slack.SlackErrorResponse
	if errors.As(err, &se) {
		switch se.Err {
		case "channel_not_found", "is_archived", "user_not_found", "user_disabled", "account_inactive",
			"message_not_found", "cant_update_message", "edit_window_closed", "invalid_blocks", "msg_too_long",
			"no_text", "not_in_channel", "restricted_action", "cannot_dm_bot":
			return access.PermanentError(err)
		}
	}
	return access.RetryableError(err, 0)
}

// WarningDone renders an expiry warning that is no longer current.
func WarningDone(r *access.Request, v View) (string, []slack.Block) {
	text := fmt.Sprintf("*%s* (%s): %s", r.ID, v.roleTitle(r), Outcome(r, v))
	return stripMrkdwn(text), []slack.Block{section(text)}
}

// CombinedMessage renders several requester notices queued for one
// person as one DM (Slack allows about one message per second per
// channel; a mass expiry must not take minutes to tell someone).
func CombinedMessage(ns []access.Notice, v View) (string, []slack.Block) {
	var lines []string
	for _, n := range ns {
		_, blocks := RequesterMessage(n, v)
		if len(blocks) > 0 {
			if s, ok := blocks[0].(*slack.SectionBlock); ok && s.Text != nil {
				lines = append(lines, "• "+s.Text.Text)
			}
		}
	}
	text := Truncate(strings.Join(lines, "\n"), limitSectionText)
	return Truncate(stripMrkdwn(text), limitFallback), []slack.Block{section(text)}
}

func approxSize(v any) int {
	b, err := json.Marshal(v)
	if err != nil {
		return 0
	}
	return len(b)
}
