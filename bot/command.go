package bot

import (
	"fmt"
	"regexp"
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
	// BreakGlass is the --break-glass flag of a request: take the role's
	// break-glass access (a confirmation form opens first).
	BreakGlass bool
	// For is the person a request is made for (`for @person …`): their
	// Slack user ID from a mention (<@U…|name>), else the word as
	// written (which the bot refuses, and accessbot test resolves).
	For string
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
	text, breakGlass := cutBreakGlass(text)
	fields := strings.Fields(text)
	if strings.EqualFold(firstField(fields), "for") {
		return parseFor(text, breakGlass)
	}
	c, err := parseRest(text, fields)
	if err != nil {
		return Command{}, err
	}
	if breakGlass {
		if c.Verb != VerbRequest && c.Verb != VerbModal || c.System == "" {
			return Command{}, inputErrorf("`--break-glass` goes with a request: `SYSTEM ROLE DURATION REASON --break-glass`, e.g. `crm admin 30m production is down --break-glass`.")
		}
		c.BreakGlass = true
	}
	return c, nil
}

// parseRest parses a command without its flags and "for" prefix.
func parseRest(text string, fields []string) (Command, error) {
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
		"• `%[1]s for @person SYSTEM ROLE DURATION REASON…` asks for someone else, where the runbook allows it\n"+
		"• `%[1]s SYSTEM ROLE DURATION REASON… --break-glass`: emergency access without approval, where the runbook allows it (you confirm first; everyone responsible is told)\n"+
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

func firstField(fields []string) string {
	if len(fields) == 0 {
		return ""
	}
	return fields[0]
}

// breakGlassFlag matches the --break-glass flag as a word anywhere in the
// text. Clients that "smarten" typing (macOS, iOS) turn "--" into an en or
// em dash, so those count too.
var breakGlassFlag = regexp.MustCompile(`(?i)(^|\s)(--|—|–)break-?glass(\s|$)`)

// cutBreakGlass removes the --break-glass flag from text and reports
// whether it was there.
func cutBreakGlass(text string) (string, bool) {
	if !breakGlassFlag.MatchString(text) {
		return text, false
	}
	for breakGlassFlag.MatchString(text) {
		text = breakGlassFlag.ReplaceAllString(text, " ")
	}
	return strings.TrimSpace(text), true
}

// slackMention is a user mention as Slack sends it in slash command text
// when the command escapes users (should_escape: true in the manifest;
// slack-protocol.md §4.5): <@U123> or <@U123|name>.
var slackMention = regexp.MustCompile(`^<@([UW][A-Z0-9]+)(\|[^>]*)?>$`)

// parseFor parses `for @person SYSTEM ROLE [DURATION] [REASON]`: a request
// made for someone else.
func parseFor(text string, breakGlass bool) (Command, error) {
	usage := "Usage: `for @person SYSTEM ROLE DURATION REASON`, e.g. `for @alice crm viewer 2h onboarding`."
	fields := strings.Fields(text)
	if len(fields) < 3 {
		return Command{}, inputErrorf("Who and what? %s", usage)
	}
	who := fields[1]
	if m := slackMention.FindStringSubmatch(who); m != nil {
		who = m[1]
	}
	rest := restAfter(text, 2)
	c, err := parseRest(rest, strings.Fields(rest))
	if err != nil {
		return Command{}, err
	}
	if c.Verb != VerbRequest && c.Verb != VerbModal {
		return Command{}, inputErrorf("%s is not a request. %s", quote(firstField(strings.Fields(rest))), usage)
	}
	if breakGlass {
		return Command{}, inputErrorf("Break-glass is only for yourself: the person who breaks the glass is the one who gets the access.")
	}
	c.For = who
	return c, nil
}
