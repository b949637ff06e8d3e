package bot

import (
	"context"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/slack-go/slack"

	"github.com/accessbot/accessbot/access"
)

const (
	// limitBlocks is Block Kit's maximum number of blocks in a message.
	limitBlocks = 50
	// digestLines is how many requests a digest section lists before
	// "…and N more": enough to recognise names, short enough to read at a
	// glance. The full record is one `/access audit` away.
	digestLines = 8
	// digestUserText bounds one piece of user text (a reason, an error) on
	// a digest line, so that eight lines stay far below limitSectionText.
	digestUserText = 100
	// digestMoreRoom is kept free in a section for the "…and N more" line.
	digestMoreRoom = 40
)

// DigestMessage renders an owners' digest (DESIGN.md §3): a header, the
// counts first on one line, then failed and late revocations (the things
// to act on), then a section per category with at most digestLines
// requests each and "…and N more". It stays within Block Kit's limits
// however busy the period: at most 17 blocks (limitBlocks is 50) and every
// section at most limitSectionText characters, user text escaped then
// truncated.
//
// A quiet period (d.Quiet) is rendered as one line, "Quiet week for …: no
// access requests", rather than skipped: owners see that the digest ran,
// so a missing digest means something is wrong, not that nothing happened.
func DigestMessage(d access.Digest, v View) (fallback string, blocks []slack.Block) {
	loc := v.loc()
	now := v.Now
	if now.IsZero() {
		now = d.To
	}
	name := d.System
	if v.Runbook != nil {
		if sys := v.Runbook.Systems[d.System]; sys != nil {
			name = sys.DisplayName()
		}
	}
	period := fmt.Sprintf("%s – %s", FormatTime(d.From, loc), FormatTime(d.To, loc))
	if d.Quiet() {
		text := fmt.Sprintf(":zzz: Quiet %s for *%s*: no access requests, nobody holds access. (%s)", periodWord(d.From, d.To), Escape(name), period)
		return Truncate(stripMrkdwn(text), limitFallback), []slack.Block{section(text)}
	}

	counts := digestCounts(d)
	blocks = []slack.Block{
		slack.NewHeaderBlock(slack.NewTextBlockObject(slack.PlainTextType, plain("Access digest: "+name, limitHeader), false, false)),
		contextBlock(fmt.Sprintf("%s · %s", capitalize(periodWord(d.From, d.To)), period)),
		section("*" + counts + "*"),
	}
	role := func(r *access.Request) string {
		if r.RequestedBy != "" && r.RequestedBy != r.Requester {
			return fmt.Sprintf("*%s* %s (asked by %s) · %s", r.ID, mention(r.Requester), mention(r.RequestedBy), Escape(r.Role))
		}
		return fmt.Sprintf("*%s* %s · %s", r.ID, mention(r.Requester), Escape(r.Role))
	}
	add := func(title string, rs []*access.Request, line func(r *access.Request) string) {
		if len(rs) > 0 {
			blocks = append(blocks, digestSection(title, rs, line))
		}
	}

	add(":rotating_light: Failed revocations: access may still be live", d.FailedRevocations, func(r *access.Request) string {
		return fmt.Sprintf("%s · ended %s · %d failed attempts · %s", role(r), FormatTime(r.ExpiresAt, loc), r.Attempts, safe(r.LastError, digestUserText))
	})
	add(":warning: Late revocations", d.LateRevocations, func(r *access.Request) string {
		return fmt.Sprintf("%s · ended %s, removed %s", role(r), FormatTime(r.ExpiresAt, loc), FormatTime(r.EndedAt, loc))
	})
	add(":rotating_light: Break glass: taken without approval, review them", d.BreakGlass, func(r *access.Request) string {
		s := fmt.Sprintf("%s · %s · %s · _%s_", role(r), access.FormatDuration(r.Duration), strings.ReplaceAll(string(r.State), "_", " "), safe(orNone(r.Reason), digestUserText))
		if r.Ticket != nil {
			s += " · " + safe(r.Ticket.Ref, 40)
		}
		return s
	})
	if len(d.FailedRevocations)+len(d.LateRevocations)+len(d.BreakGlass) > 0 {
		blocks = append(blocks, slack.NewDividerBlock())
	}
	add(":hourglass_flowing_sand: Waiting for approval", d.Waiting, func(r *access.Request) string {
		s := fmt.Sprintf("%s · %s · waiting %s", role(r), access.FormatDuration(r.Duration), access.FormatDuration(now.Sub(r.CreatedAt).Truncate(time.Minute)))
		if r.CurrentStep < len(r.Steps) {
			st := r.Steps[r.CurrentStep]
			s += fmt.Sprintf(" · step %d of %d: %s", r.CurrentStep+1, len(r.Steps), Escape(st.Sources))
		}
		return s
	})
	add(":key: Holding access now", d.Active, func(r *access.Request) string {
		return fmt.Sprintf("%s · until %s", role(r), FormatTime(r.ExpiresAt, loc))
	})
	add(":white_check_mark: Granted", d.Granted, func(r *access.Request) string {
		return fmt.Sprintf("%s · %s · approved by %s · _%s_", role(r), access.FormatDuration(r.Duration), approvedBy(r), safe(orNone(r.Reason), digestUserText))
	})
	add(":robot_face: Auto-approved", d.AutoApproved, func(r *access.Request) string {
		return fmt.Sprintf("%s · %s", role(r), access.FormatDuration(r.Duration))
	})
	add(":repeat: Extended", d.Extended, func(r *access.Request) string {
		return fmt.Sprintf("%s · extends %s · until %s", role(r), Escape(r.Extends), FormatTime(r.ExpiresAt, loc))
	})
	add(":x: Denied", d.Denied, func(r *access.Request) string {
		dn, _ := r.Denial()
		return fmt.Sprintf("%s · by %s: %s", role(r), mention(dn.Actor), safe(orNone(dn.Reason), digestUserText))
	})
	add(":alarm_clock: Timed out", d.TimedOut, func(r *access.Request) string {
		return fmt.Sprintf("%s · asked %s", role(r), FormatTime(r.CreatedAt, loc))
	})
	add(":broom: Expired and removed", d.Expired, func(r *access.Request) string {
		return fmt.Sprintf("%s · removed %s", role(r), FormatTime(r.EndedAt, loc))
	})
	add(":no_entry: Revoked", d.Revoked, func(r *access.Request) string {
		return fmt.Sprintf("%s · by %s, removed %s", role(r), mention(removalActor(r)), FormatTime(r.EndedAt, loc))
	})
	if len(d.TopRequesters) > 0 {
		parts := make([]string, len(d.TopRequesters))
		for i, c := range d.TopRequesters {
			parts[i] = fmt.Sprintf("%s %d", mention(c.User), c.N)
		}
		blocks = append(blocks, section("*Most requests:* "+strings.Join(parts, " · ")))
	}
	blocks = append(blocks, contextBlock(fmt.Sprintf("Every record: `/access audit %s %s`", Escape(d.System), d.From.In(loc).Format("2006-01-02"))))
	if len(blocks) > limitBlocks { // not reachable with today's sections; kept so a new one cannot break the message
		blocks = append(blocks[:limitBlocks-1], contextBlock("…"))
	}
	fallback = fmt.Sprintf("Access digest for %s: %s", Escape(name), counts)
	return Truncate(stripMrkdwn(fallback), limitFallback), blocks
}

// digestCounts is the header line: every non-zero count, revocation
// problems marked.
func digestCounts(d access.Digest) string {
	var parts []string
	add := func(n int, what string) {
		if n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, what))
		}
	}
	add(len(d.Granted), "granted")
	add(len(d.Denied), "denied")
	add(len(d.TimedOut), "timed out")
	add(len(d.Expired), "expired")
	add(len(d.Revoked), "revoked")
	add(len(d.AutoApproved), "auto-approved")
	add(len(d.Extended), "extended")
	add(len(d.Active), "holding access")
	add(len(d.Waiting), "waiting")
	add(len(d.FailedRevocations), "failed "+plural(len(d.FailedRevocations), "revocation"))
	add(len(d.LateRevocations), "late "+plural(len(d.LateRevocations), "revocation"))
	add(len(d.BreakGlass), "break-glass")
	for i, p := range parts {
		if strings.Contains(p, "revocation") || strings.Contains(p, "break-glass") {
			parts[i] = "⚠ " + p
		}
	}
	if len(parts) == 0 {
		return "no access changes"
	}
	return strings.Join(parts, " · ")
}

// digestSection lists up to digestLines requests under a title with their
// count, then "…and N more"; it stops early rather than exceed
// limitSectionText.
func digestSection(title string, rs []*access.Request, line func(*access.Request) string) slack.Block {
	var b strings.Builder
	fmt.Fprintf(&b, "*%s* (%d)", title, len(rs))
	size := utf8.RuneCountInString(b.String())
	shown := 0
	for _, r := range rs {
		if shown == digestLines {
			break
		}
		l := "\n• " + line(r)
		n := utf8.RuneCountInString(l)
		if size+n > limitSectionText-digestMoreRoom {
			break
		}
		b.WriteString(l)
		size += n
		shown++
	}
	if rest := len(rs) - shown; rest > 0 {
		fmt.Fprintf(&b, "\n…and %d more", rest)
	}
	return section(b.String())
}

// periodWord names a digest period for people: "day", "week" or "period".
func periodWord(from, to time.Time) string {
	switch d := to.Sub(from); {
	case d > 0 && d <= 26*time.Hour: // 23 to 25 h across a DST change, plus a late run
		return "day"
	case d >= 6*24*time.Hour && d <= 8*24*time.Hour:
		return "week"
	}
	return "period"
}

// capitalize upper-cases the first letter of an ASCII word.
func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

func plural(n int, s string) string {
	if n == 1 {
		return s
	}
	return s + "s"
}

func orNone(s string) string {
	if s == "" {
		return "(no reason given)"
	}
	return s
}

// PostDigest posts d to channel (the system's owners' channel), rendered
// with DigestMessage as of the bot's clock. A quiet digest is posted too,
// as one line. It is not idempotent: the caller records what it posted.
func (b *Bot) PostDigest(ctx context.Context, channel string, d access.Digest) error {
	fallback, blocks := DigestMessage(d, View{Runbook: b.rb, Now: b.clock.Now()})
	if _, _, err := b.post(ctx, channel, fallback, blocks); err != nil {
		return fmt.Errorf("post %s digest to %s: %w", d.System, channel, err)
	}
	return nil
}
