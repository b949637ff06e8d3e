package bot

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/slack-go/slack"

	"github.com/accessbot/accessbot/access"
)

// Rendering of what the runbook's admission policy adds to a request
// (issue #16): its ticket, why it was approved without a human, and what
// the requester was told about how it was handled.

// limitTicketTitle bounds a ticket's title on a copy: enough to recognise
// it, short beside the reason (limitReason) within one section.
const limitTicketTitle = 150

// TicketText renders a request's ticket for mrkdwn: the reference as a link
// to the ticket when its URL is a plain http(s) URL, then its title and
// status, all escaped ("<https://acme.atlassian.net/browse/SUP-1|SUP-1>
// Login broken (In Progress)"). "" for no ticket.
//
// A link is written only from a URL that cannot break out of Slack's
// <url|text> syntax (no space, "|", "<" or ">"; & escaped as the
// formatting docs require, slack-protocol.md §4.5): the ticket system's
// answer is untrusted text like any other.
func TicketText(t *access.Ticket) string {
	if t == nil || t.Ref == "" {
		return ""
	}
	ref := Escape(Truncate(t.Ref, 80))
	if u := linkURL(t.URL); u != "" {
		ref = "<" + u + "|" + ref + ">"
	}
	out := ref
	if t.Title != "" {
		out += " " + safe(t.Title, limitTicketTitle)
	}
	if t.Status != "" {
		out += " (" + safe(t.Status, 40) + ")"
	}
	return out
}

// linkURL returns s escaped for the URL part of a mrkdwn link, or "" when
// s is not an absolute http(s) URL safe to put there.
func linkURL(s string) string {
	if s == "" || len(s) > 500 || strings.ContainsAny(s, " \t\r\n|<>") {
		return ""
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return ""
	}
	return strings.ReplaceAll(s, "&", "&amp;")
}

// autoWhy says who approved a request that no human approved: "the
// runbook (automatic)" for approval: auto, "the on-call rule
// (pagerduty:P1ABC2D)" for an on-call requester.
func autoWhy(r *access.Request) string {
	if rule, ok := strings.CutPrefix(r.AutoBy, "on call: "); ok {
		return fmt.Sprintf("the on-call rule (%s)", Escape(rule))
	}
	return "the runbook (automatic)"
}

// autoLine is the step line of a request approved without a human.
func autoLine(r *access.Request) string {
	if rule, ok := strings.CutPrefix(r.AutoBy, "on call: "); ok {
		return fmt.Sprintf("Approval: automatic, on call (runbook: `auto_if_on_call: %s`)", Escape(rule))
	}
	return "Approval: automatic (runbook: `approval: auto`)"
}

// notesText renders the requester's admission notes (Request.Notes), one
// per line, each escaped; "" when there are none.
func notesText(r *access.Request) string {
	if len(r.Notes) == 0 {
		return ""
	}
	lines := make([]string, len(r.Notes))
	for i, n := range r.Notes {
		lines[i] = ":information_source: " + safe(n, 500)
	}
	return strings.Join(lines, "\n")
}

// withTicketAndNotes appends the request's ticket and admission notes to a
// requester's message text. A request approved without a human already
// says why (autoWhy), which is all its notes would say.
func withTicketAndNotes(text string, r *access.Request) string {
	if t := TicketText(r.Ticket); t != "" {
		text += "\n*Ticket:* " + t
	}
	if n := notesText(r); n != "" && !r.Auto {
		text += "\n" + n
	}
	return text
}

// submitAckWhy says, in the answer to a request approved without a human,
// why no human was asked.
func submitAckWhy(r *access.Request) string {
	if rule, ok := strings.CutPrefix(r.AutoBy, "on call: "); ok {
		return fmt.Sprintf("you are on call on %s", Escape(rule))
	}
	return fmt.Sprintf("the runbook needs no approval for %s %s", Escape(r.System), Escape(r.Role))
}

// ticketBlock is the request form's ticket field, for a role with a ticket
// policy (nil otherwise). It is optional: the reference may be written in
// the reason instead, as in the direct grammar; the hint names the pattern.
func ticketBlock(role *access.Role, initial string) *slack.InputBlock {
	if role == nil || role.Ticket == nil {
		return nil
	}
	in := slack.NewPlainTextInputBlockElement(slack.NewTextBlockObject(slack.PlainTextType, "e.g. SUP-123", false, false), ActionTicket)
	in.MaxLength = 200 // a reference, not prose
	if initial != "" {
		in.InitialValue = Truncate(initial, 200)
	}
	hint := fmt.Sprintf("Required for this role: a reference matching %s, here or in the reason.", role.Ticket.Pattern)
	if role.Ticket.Verify != "" {
		hint += " It must be an open ticket."
	}
	b := slack.NewInputBlock(BlockTicket, slack.NewTextBlockObject(slack.PlainTextType, "Ticket", false, false),
		slack.NewTextBlockObject(slack.PlainTextType, plain(hint, 2000), false, false), in)
	b.Optional = true
	return b
}
