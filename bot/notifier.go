package bot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

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
)

// Notify implements access.Notifier: it tells people about n on Slack and
// returns references to messages that must be updated later. Every copy
// of a request's approval messages is re-rendered from the request on
// every change, so each shows the truth and loses its buttons once decided
// (DESIGN.md §3). Errors are joined and returned after trying everything.
func (b *Bot) Notify(ctx context.Context, n access.Notice) ([]access.MessageRef, error) {
	r := n.Request
	v := b.view(ctx, r)
	var refs []access.MessageRef
	var errs []error
	dm := func(fallback string, blocks []slack.Block) (string, string) {
		ch, ts, err := b.post(ctx, r.Requester, fallback, blocks)
		if err != nil {
			errs = append(errs, fmt.Errorf("DM requester %s: %w", r.Requester, err))
		}
		return ch, ts
	}
	switch n.Kind {
	case access.NoticeSubmitted:
		dm(RequesterMessage(n, v))
	case access.NoticeApprovalNeeded, access.NoticeReminder:
		step := r.CurrentStep
		if step < 0 || step >= len(r.Steps) {
			// No step to ask for (an approval: auto request still pending for
			// an instant): nobody to message, and no reason to panic.
			return nil, fmt.Errorf("%s %s: %s has no approval step %d", n.Kind, r.ID, r.State, step+1)
		}
		for _, approver := range r.Steps[step].Approvers {
			if n.Kind == access.NoticeReminder && contains(r.Approvals(step), approver) {
				continue
			}
			fallback, blocks := ApprovalMessage(r, v, approver)
			if n.Kind == access.NoticeReminder {
				blocks = append([]slack.Block{section(fmt.Sprintf(":bell: *Reminder*: %s still waits for your decision.", r.ID))}, blocks...)
			}
			ch, ts, err := b.post(ctx, approver, fallback, blocks)
			if err != nil {
				errs = append(errs, fmt.Errorf("DM approver %s: %w", approver, err))
				continue
			}
			refs = append(refs, access.MessageRef{Kind: refApproval, Channel: ch, TS: ts, User: approver, Step: step})
		}
		if n.Kind == access.NoticeApprovalNeeded && step == 0 && b.rb.AuditChannel != "" {
			fallback, blocks := ApprovalMessage(r, v, "")
			ch, ts, err := b.post(ctx, b.rb.AuditChannel, fallback, blocks)
			if err != nil {
				errs = append(errs, fmt.Errorf("post to audit channel: %w", err))
			} else {
				refs = append(refs, access.MessageRef{Kind: refAudit, Channel: ch, TS: ts})
			}
		}
		b.refreshHomes(ctx, r)
		return refs, errors.Join(errs...)
	case access.NoticeProgress, access.NoticeDecided, access.NoticeGranted:
		dm(RequesterMessage(n, v))
	case access.NoticeGrantFailed:
		dm(RequesterMessage(n, v))
		errs = append(errs, b.tellOwners(ctx, r, n, v)...)
	case access.NoticeExpiryWarning:
		fallback, blocks := RequesterMessage(n, v)
		if ch, ts := dm(fallback, blocks); ts != "" {
			refs = append(refs, access.MessageRef{Kind: refWarning, Channel: ch, TS: ts})
		}
	case access.NoticeRevokeDelayed, access.NoticeRemoved:
		dm(RequesterMessage(n, v))
	case access.NoticeRevokeFailing, access.NoticeRevokeRecovered:
		errs = append(errs, b.tellOwners(ctx, r, n, v)...)
	case access.NoticeTask:
		fallback, blocks := OwnerMessage(n, v)
		targets := b.ownerTargets(r)
		for _, t := range targets {
			ch, ts, err := b.post(ctx, t, fallback, blocks)
			if err != nil {
				errs = append(errs, fmt.Errorf("post task to %s: %w", t, err))
				continue
			}
			refs = append(refs, access.MessageRef{Kind: refTask, Channel: ch, TS: ts, Op: n.Text})
		}
		if len(targets) == 0 {
			errs = append(errs, fmt.Errorf("system %s has no owners or channel to send the task to", r.System))
		}
	}
	if changesCopies(n.Kind) {
		final, ferrs := b.refreshCopies(ctx, r, v, n.Kind)
		refs = append(refs, final...)
		errs = append(errs, ferrs...)
	}
	b.refreshHomes(ctx, r)
	return refs, errors.Join(errs...)
}

// changesCopies reports whether a notice changes what the stored copies
// (approval DMs, audit copy, warnings, tasks) must show.
func changesCopies(k access.NoticeKind) bool {
	switch k {
	case access.NoticeProgress, access.NoticeDecided, access.NoticeGranted, access.NoticeGrantFailed, access.NoticeRemoved, access.NoticeRefresh:
		return true
	}
	return false
}

// ownerTargets is where owners' alerts and tasks go: the system's channel,
// else each owner's DM.
func (b *Bot) ownerTargets(r *access.Request) []string {
	sys := b.rb.Systems[r.System]
	if sys == nil {
		return b.rb.Admins
	}
	if sys.Channel != "" {
		return []string{sys.Channel}
	}
	if len(sys.Owners) > 0 {
		return sys.Owners
	}
	return b.rb.Admins
}

func (b *Bot) tellOwners(ctx context.Context, r *access.Request, n access.Notice, v View) []error {
	fallback, blocks := OwnerMessage(n, v)
	var errs []error
	for _, t := range b.ownerTargets(r) {
		if _, _, err := b.post(ctx, t, fallback, blocks); err != nil {
			errs = append(errs, fmt.Errorf("alert owners at %s: %w", t, err))
		}
	}
	return errs
}

// refreshCopies re-renders every stored copy of r's messages from r, so
// approvers, the audit channel, warnings and tasks all show the current
// truth. Tasks and warnings that reached their final form are returned
// marked Stale, so they are not rendered again.
func (b *Bot) refreshCopies(ctx context.Context, r *access.Request, v View, kind access.NoticeKind) ([]access.MessageRef, []error) {
	var errs []error
	var final []access.MessageRef
	for _, ref := range r.Messages {
		if ref.Stale {
			continue
		}
		var fallback string
		var blocks []slack.Block
		switch ref.Kind {
		case refApproval:
			fallback, blocks = ApprovalMessage(r, v, ref.User)
		case refAudit:
			fallback, blocks = ApprovalMessage(r, v, "")
		case refWarning:
			if r.State == access.StateActive && kind == access.NoticeExpiryWarning {
				continue // the warning just posted is current
			}
			fallback, blocks = WarningDone(r, v)
		case refTask:
			done := false
			switch ref.Op {
			case "grant":
				done = r.State != access.StateApproved || !r.AwaitingConfirmation
			case "revoke":
				done = r.State == access.StateExpired || r.State == access.StateRevoked
			}
			if !done {
				continue // still to do
			}
			what := "granted"
			if ref.Op == "revoke" {
				what = "removed"
			} else if r.State == access.StateGrantFailed {
				what = "no longer needed: the grant failed"
			}
			fallback, blocks = TaskDoneMessage(r, v, what)
		default:
			continue
		}
		if err := b.update(ctx, ref.Channel, ref.TS, fallback, blocks); err != nil {
			errs = append(errs, fmt.Errorf("update %s copy %s/%s: %w", ref.Kind, ref.Channel, ref.TS, err))
			continue
		}
		if ref.Kind == refTask || ref.Kind == refWarning {
			ref.Stale = true
			final = append(final, ref)
		}
	}
	return final, errs
}

// WarningDone renders an expiry warning that is no longer current.
func WarningDone(r *access.Request, v View) (string, []slack.Block) {
	text := fmt.Sprintf("*%s* (%s): %s", r.ID, v.roleTitle(r), Outcome(r, v))
	return stripMrkdwn(text), []slack.Block{section(text)}
}

func approxSize(v any) int {
	b, err := json.Marshal(v)
	if err != nil {
		return 0
	}
	return len(b)
}
