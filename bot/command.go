package bot

import (
	"fmt"
	"strings"
	"time"

	"github.com/accessbot/accessbot/access"
)

// Verb is what a /access command asks for.
type Verb string

// The verbs of DESIGN.md §3.
const (
	VerbModal   Verb = "modal"   // open the request modal (possibly pre-filled)
	VerbRequest Verb = "request" // a complete direct request
	VerbList    Verb = "list"
	VerbPending Verb = "pending"
	VerbSystems Verb = "systems"
	VerbCancel  Verb = "cancel"
	VerbRevoke  Verb = "revoke"
	VerbExtend  Verb = "extend"
	VerbAudit   Verb = "audit"
	VerbHelp    Verb = "help"
)

// Command is a parsed /access command. Fields not given are zero.
type Command struct {
	Verb     Verb
	System   string
	Role     string
	Duration time.Duration
	Reason   string
	ID       string // request ID for cancel / revoke / extend
	Since    string // audit: a duration ("7d") or a date (2026-11-01)
}

// maxCommandRunes bounds the command text we parse; Slack itself limits
// slash command text to a few thousand characters, so anything longer is
// not from Slack's client.
const maxCommandRunes = 12000

// ParseCommand parses the text after the slash command. It checks only the
// grammar (known verbs, a duration that parses, an ID that looks like one);
// whether the system, role and duration are allowed is the policy's
// question. Errors are bot input errors whose text is Slack text for the
// person (user input in them escaped). Text may arrive entity-escaped by Slack (&amp; &lt; &gt;);
// those three are unescaped first (DESIGN.md §3; slack-protocol.md §4.5).
func ParseCommand(text string) (Command, error) {
	if len([]rune(text)) > maxCommandRunes {
		return Command{}, inputErrorf("That command is too long (over %d characters).", maxCommandRunes)
	}
	text = unescapeSlack(strings.TrimSpace(text))
	fields := strings.Fields(text)
	if len(fields) == 0 {
		return Command{Verb: VerbModal}, nil
	}
	first := strings.ToLower(fields[0])
	rest := fields[1:]
	restText := func(n int) string { return restAfter(text, n) }
	switch first {
	case "help", "-h", "--help", "?":
		return Command{Verb: VerbHelp}, nil
	case "list", "ls", "mine":
		return Command{Verb: VerbList}, nil
	case "pending", "approvals":
		return Command{Verb: VerbPending}, nil
	case "systems":
		return Command{Verb: VerbSystems}, nil
	case "cancel", "revoke":
		if len(rest) == 0 {
			return Command{}, inputErrorf("Which request? Usage: `%s ID`, e.g. `%s AR-1042`.", first, first)
		}
		id, err := normalizeID(rest[0])
		if err != nil {
			return Command{}, err
		}
		return Command{Verb: Verb(first), ID: id, Reason: restText(2)}, nil
	case "extend":
		if len(rest) < 2 {
			return Command{}, inputErrorf("Usage: `extend ID DURATION [REASON]`, e.g. `extend AR-1042 2h`.")
		}
		id, err := normalizeID(rest[0])
		if err != nil {
			return Command{}, err
		}
		d, err := access.ParseDuration(rest[1])
		if err != nil {
			return Command{}, inputErrorf("%s is not a duration. Use a number with s, m, h or d, like 30m, 2h or 1d.", quote(rest[1]))
		}
		return Command{Verb: VerbExtend, ID: id, Duration: d, Reason: restText(3)}, nil
	case "audit":
		if len(rest) == 0 {
			return Command{}, inputErrorf("Usage: `audit SYSTEM [SINCE]`, e.g. `audit crm 7d` or `audit crm 2026-11-01`.")
		}
		c := Command{Verb: VerbAudit, System: strings.ToLower(rest[0])}
		if len(rest) > 1 {
			c.Since = rest[1]
		}
		return c, nil
	}
	c := Command{Verb: VerbModal, System: first}
	if len(rest) > 0 {
		c.Role = strings.ToLower(rest[0])
	}
	if len(rest) > 1 {
		d, err := access.ParseDuration(rest[1])
		if err != nil {
			return Command{}, inputErrorf("%s is not a duration. Use a number with s, m, h or d, like 30m, 2h or 1d: %s.", quote(rest[1]), Escape(fmt.Sprintf("%s %s 2h REASON", c.System, c.Role)))
		}
		c.Duration = d
		c.Reason = restText(3)
		c.Verb = VerbRequest
	}
	return c, nil
}

func normalizeID(s string) (string, error) {
	n, err := access.ParseID(s)
	if err != nil {
		return "", err
	}
	return access.FormatID(n), nil
}

// restAfter returns text after its first n whitespace-separated fields,
// keeping the rest's inner spacing.
func restAfter(text string, n int) string {
	s := text
	for i := 0; i < n; i++ {
		s = strings.TrimLeft(s, " \t\r\n")
		j := strings.IndexAny(s, " \t\r\n")
		if j < 0 {
			return ""
		}
		s = s[j:]
	}
	return strings.TrimSpace(s)
}

var slackUnescaper = strings.NewReplacer("&lt;", "<", "&gt;", ">", "&amp;", "&")

// unescapeSlack undoes Slack's entity escaping of the three characters it
// escapes, so that text is escaped exactly once on output.
func unescapeSlack(s string) string { return slackUnescaper.Replace(s) }

// HelpText is the usage shown by `help` and for unknown input.
func HelpText(cmd string) string {
	return fmt.Sprintf("*%[1]s* asks for temporary access, approved in Slack and removed on time.\n"+
		"• `%[1]s` opens the request form\n"+
		"• `%[1]s SYSTEM ROLE DURATION REASON…` requests directly, e.g. `%[1]s crm viewer 2h ticket 4411`\n"+
		"• `%[1]s list`: your active grants and pending requests\n"+
		"• `%[1]s pending`: requests waiting for your approval\n"+
		"• `%[1]s systems`: what you may request, for how long, and who approves\n"+
		"• `%[1]s cancel ID` · `%[1]s revoke ID` · `%[1]s extend ID DURATION [REASON]`\n"+
		"• `%[1]s audit SYSTEM [SINCE]`: owners and admins get an audit export in DM\n"+
		"Durations use s, m, h or d (`90m`, `1d`). Request IDs look like `AR-1042`.", cmd)
}

// quote shows a piece of user input in a message: escaped, shortened,
// between quotation marks.
func quote(s string) string { return "“" + Escape(Truncate(s, 80)) + "”" }
