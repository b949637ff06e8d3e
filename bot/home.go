package bot

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
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
			text = fmt.Sprintf("*%s* · %s · %s: waiting for approval", r.ID, Escape(r.System), Escape(r.Role))
			if st, ok := r.Current(); ok {
				text = fmt.Sprintf("*%s* · %s · %s: waiting for %s", r.ID, Escape(r.System), Escape(r.Role), mentions(st.Approvers))
			}
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
		return []slack.Block{section(text), slack.NewActionBlock(decideBlockID("home:decide", r.ID, r.CurrentStep),
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

// homes keeps the App Homes of people who opened one up to date: a
// notice about a request marks everyone it concerns, and a loop publishes
// each marked home at most once per homeRefreshEvery, so a storm of
// notices costs one views.publish per person, not one per notice.
type homes struct {
	b      *Bot
	mu     sync.Mutex
	opened map[string]bool // users who opened their App Home since start
	dirty  map[string]bool
	wake   chan struct{}
}

// homeRefreshEvery is the least wall time between two publishes of the
// refresh loop (views.publish is Tier 4 per user, slack-protocol.md).
const homeRefreshEvery = time.Second

func newHomes(b *Bot) *homes {
	return &homes{b: b, opened: map[string]bool{}, dirty: map[string]bool{}, wake: make(chan struct{}, 1)}
}

// open records that user opened their App Home.
func (h *homes) open(user string) {
	h.mu.Lock()
	h.opened[user] = true
	h.mu.Unlock()
}

// touch marks the homes of everyone r concerns for a refresh.
func (h *homes) touch(r *access.Request) {
	people := []string{r.Requester}
	for _, st := range r.Steps {
		people = append(people, st.Approvers...)
	}
	if sys := h.b.rb.Systems[r.System]; sys != nil {
		people = append(people, sys.Owners...)
	}
	h.mu.Lock()
	marked := false
	for _, p := range people {
		if h.opened[p] {
			h.dirty[p] = true
			marked = true
		}
	}
	h.mu.Unlock()
	if marked {
		select {
		case h.wake <- struct{}{}:
		default:
		}
	}
}

// run publishes marked homes until stop is closed.
func (h *homes) run(ctx context.Context, stop <-chan struct{}) {
	t := time.NewTicker(homeRefreshEvery)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-h.wake:
		case <-t.C:
		}
		h.mu.Lock()
		users := make([]string, 0, len(h.dirty))
		for u := range h.dirty {
			users = append(users, u)
		}
		h.dirty = map[string]bool{}
		h.mu.Unlock()
		for _, u := range users {
			func() {
				defer h.b.recovered(ctx, "home refresh", nil)
				if err := h.b.publishHome(ctx, u); err != nil {
					h.b.log.Warn("refresh App Home failed", "user", u, "error", err)
				}
			}()
		}
		select { // at most one round per homeRefreshEvery
		case <-stop:
			return
		case <-t.C:
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
