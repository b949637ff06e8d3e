package bot

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/slack-go/slack"

	"github.com/accessbot/accessbot/access"
)

// homeListLimit bounds each App Home list so that the view stays within
// Slack's 100 blocks (slack-protocol.md §4.3).
const homeListLimit = 12

// HomeData is what a person's App Home shows.
type HomeData struct {
	User     string
	Mine     []*access.Request // requester's live requests
	ToDecide []*access.Request // pending requests waiting for them
	Owned    []*access.Request // live grants in systems they own
	Now      time.Time
	Location *time.Location
}

// HomeView renders the App Home: my grants with time left and "I'm done",
// my pending requests with Cancel, approvals waiting for me with
// Approve/Deny, grants in systems I own, and a "Request access" button.
func HomeView(d HomeData) slack.HomeTabViewRequest {
	blocks := []slack.Block{
		slack.NewHeaderBlock(slack.NewTextBlockObject(slack.PlainTextType, "Temporary access", false, false)),
		slack.NewActionBlock("home:request", button(ActionRequestAccess, "Request access", "new", "primary")),
	}
	add := func(title string, rs []*access.Request, render func(r *access.Request) []slack.Block, empty string) {
		blocks = append(blocks, slack.NewDividerBlock(), section("*"+title+"*"))
		if len(rs) == 0 {
			blocks = append(blocks, contextBlock(empty))
			return
		}
		for i, r := range rs {
			if i == homeListLimit {
				blocks = append(blocks, contextBlock(fmt.Sprintf("…and %d more.", len(rs)-homeListLimit)))
				break
			}
			blocks = append(blocks, render(r)...)
		}
	}
	add("Your access", d.Mine, func(r *access.Request) []slack.Block {
		var text string
		var act *slack.ButtonBlockElement
		switch r.State {
		case access.StateActive:
			left := r.ExpiresAt.Sub(d.Now).Round(time.Minute)
			text = fmt.Sprintf("*%s* · %s · %s: active until %s (%s left)", r.ID, Escape(r.System), Escape(r.Role), FormatTime(r.ExpiresAt, d.Location), access.FormatDuration(max(left, 0)))
			act = button(ActionDone, "I'm done", r.ID, "")
		case access.StatePending:
			text = fmt.Sprintf("*%s* · %s · %s: waiting for %s", r.ID, Escape(r.System), Escape(r.Role), mentions(r.Steps[r.CurrentStep].Approvers))
			act = button(ActionCancel, "Cancel", r.ID, "")
		case access.StateApproved:
			text = fmt.Sprintf("*%s* · %s · %s: approved, being granted", r.ID, Escape(r.System), Escape(r.Role))
		default:
			text = fmt.Sprintf("*%s* · %s · %s: being removed", r.ID, Escape(r.System), Escape(r.Role))
		}
		s := section(text)
		if act != nil {
			s.Accessory = slack.NewAccessory(act)
		}
		return []slack.Block{s}
	}, "No active grants or pending requests.")
	add("Waiting for your approval", d.ToDecide, func(r *access.Request) []slack.Block {
		text := fmt.Sprintf("*%s* %s asks for %s · %s for %s\n>%s", r.ID, mention(r.Requester), Escape(r.System), Escape(r.Role), access.FormatDuration(r.Duration), safe(r.Reason, 300))
		return []slack.Block{section(text), slack.NewActionBlock("home:decide:"+r.ID,
			button(ActionApprove, "Approve", r.ID, "primary"), button(ActionDeny, "Deny", r.ID, "danger"))}
	}, "Nothing is waiting for you.")
	if len(d.Owned) > 0 {
		add("Access to systems you own", d.Owned, func(r *access.Request) []slack.Block {
			text := fmt.Sprintf("*%s* %s has %s · %s until %s", r.ID, mention(r.Requester), Escape(r.System), Escape(r.Role), FormatTime(r.ExpiresAt, d.Location))
			return []slack.Block{section(text)}
		}, "")
	}
	return slack.HomeTabViewRequest{Type: slack.VTHomeTab, Blocks: slack.Blocks{BlockSet: blocks}}
}

// publishHome renders and publishes user's App Home.
func (b *Bot) publishHome(ctx context.Context, user string) error {
	d := HomeData{User: user, Now: b.clock.Now(), Location: b.rb.Location}
	var err error
	if d.Mine, err = b.svc.Mine(ctx, user); err != nil {
		return err
	}
	if d.ToDecide, err = b.svc.PendingFor(ctx, user); err != nil {
		return err
	}
	for _, sid := range b.rb.SystemIDs() {
		if !b.rb.Systems[sid].IsOwner(user) {
			continue
		}
		rs, err := b.svc.LiveIn(ctx, sid)
		if err != nil {
			return err
		}
		d.Owned = append(d.Owned, rs...)
	}
	view := HomeView(d)
	return b.call(ctx, "views.publish", func(ctx context.Context) error {
		_, err := b.api.PublishViewContext(ctx, slack.PublishViewContextRequest{UserID: user, View: view})
		return err
	})
}

// refreshHomes republishes the App Home of everyone r concerns who has
// opened it since start.
func (b *Bot) refreshHomes(ctx context.Context, r *access.Request) {
	people := []string{r.Requester}
	for _, st := range r.Steps {
		people = append(people, st.Approvers...)
	}
	if sys := b.rb.Systems[r.System]; sys != nil {
		people = append(people, sys.Owners...)
	}
	seen := map[string]bool{}
	for _, p := range people {
		if seen[p] {
			continue
		}
		seen[p] = true
		b.homeMu.Lock()
		opened := b.homeUsers[p]
		b.homeMu.Unlock()
		if opened {
			if err := b.publishHome(ctx, p); err != nil {
				b.log.Warn("refresh App Home failed", "user", p, "error", err)
			}
		}
	}
}

// auditReply sends an owner or admin the audit export of a system as a
// file in their DM.
func (b *Bot) auditReply(ctx context.Context, user string, c Command) *reply {
	sys, ok := b.rb.Systems[c.System]
	if !ok {
		_, _, err := b.rb.Lookup(c.System, "")
		return textReply("%s", b.errorText(err))
	}
	if !b.svc.CanSeeSystem(user, sys.ID) {
		return textReply("Only the owners of %s and admins can export its audit log.", sys.ID)
	}
	if b.cfg.AuditExport == nil {
		return textReply("Audit export is not available in this deployment.")
	}
	since := b.clock.Now().Add(-30 * 24 * time.Hour)
	if c.Since != "" {
		var err error
		since, err = parseSince(c.Since, b.clock.Now(), b.rb.Location)
		if err != nil {
			return textReply("%s", Escape(err.Error()))
		}
	}
	name, content, err := b.cfg.AuditExport(ctx, sys.ID, since)
	if err != nil {
		return textReply("%s", b.errorText(err))
	}
	if len(content) == 0 {
		content = []byte("no records\n")
	}
	ch, _, err := b.post(ctx, user, "Audit export for "+sys.ID, []slack.Block{section(fmt.Sprintf("Audit export for *%s* since %s.", Escape(sys.DisplayName()), FormatTime(since, b.rb.Location)))})
	if err != nil {
		return textReply("%s", b.errorText(err))
	}
	err = b.call(ctx, "files.uploadV2", func(ctx context.Context) error {
		_, err := b.api.UploadFileContext(ctx, slack.UploadFileParameters{
			Reader: bytes.NewReader(content), FileSize: len(content), Filename: name, Title: name, Channel: ch,
		})
		return err
	})
	if err != nil {
		return textReply("%s", b.errorText(err))
	}
	return textReply("The audit export for *%s* is in your DM with me.", sys.ID)
}

// parseSince parses `audit SYSTEM SINCE`: a duration back from now ("7d")
// or a date ("2026-11-01", midnight in loc).
func parseSince(s string, now time.Time, loc *time.Location) (time.Time, error) {
	if d, err := access.ParseDuration(s); err == nil {
		return now.Add(-d), nil
	}
	if loc == nil {
		loc = time.UTC
	}
	if t, err := time.ParseInLocation("2006-01-02", strings.TrimSpace(s), loc); err == nil {
		return t, nil
	}
	return time.Time{}, access.Invalidf("%q is neither a duration (7d) nor a date (2026-11-01).", s)
}
