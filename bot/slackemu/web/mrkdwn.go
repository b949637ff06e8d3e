package web

import (
	"html/template"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Names turns the IDs that Slack text refers to into what a Slack client
// shows. Each method returns "" for an ID it does not know; the renderer
// then shows the ID itself, as Slack shows an unknown mention.
type Names interface {
	// UserName is a person's display name ("Alice"), for <@U…> mentions.
	UserName(id string) string
	// ChannelName is a channel's name without "#", for <#C…> references.
	ChannelName(id string) string
	// GroupHandle is a user group's handle without "@", for <!subteam^S…>.
	GroupHandle(id string) string
}

// emoji maps the shortcodes the bot uses (and a few common ones) to their
// characters; an unknown :shortcode: is shown as typed, as Slack shows an
// emoji it does not know.
var emoji = map[string]string{
	"white_check_mark": "✅", "heavy_check_mark": "✔️", "x": "❌", "warning": "⚠️",
	"hourglass_flowing_sand": "⏳", "hourglass": "⌛", "clipboard": "📋", "rotating_light": "🚨",
	"zzz": "💤", "alarm_clock": "⏰", "repeat": "🔁", "robot_face": "🤖", "no_entry": "⛔",
	"no_entry_sign": "🚫", "key": "🔑", "information_source": "ℹ️", "broom": "🧹", "bell": "🔔",
	"lock": "🔒", "unlock": "🔓", "tada": "🎉", "wave": "👋", "memo": "📝", "calendar": "📆",
	"bar_chart": "📊", "inbox_tray": "📥", "outbox_tray": "📤", "stopwatch": "⏱️", "arrow_right": "➡️",
	"bust_in_silhouette": "👤", "busts_in_silhouette": "👥", "construction": "🚧", "wastebasket": "🗑️",
	"mag": "🔍", "page_facing_up": "📄", "thumbsup": "👍", "+1": "👍", "eyes": "👀",
}

// entities are the three escapes Slack requires in mrkdwn (&, <, >); text
// between them is shown literally (https://docs.slack.dev/messaging/formatting-message-text#escaping).
var entities = strings.NewReplacer("&lt;", "<", "&gt;", ">", "&amp;", "&")

// literal decodes Slack's entities in s and escapes the result for HTML:
// "&lt;b&gt;" is shown as the four characters "<b>", never as markup.
func literal(s string) string { return template.HTMLEscapeString(entities.Replace(s)) }

// Mrkdwn renders Slack mrkdwn as HTML, the way a Slack client shows it
// (https://docs.slack.dev/messaging/formatting-message-text): *bold*,
// _italic_, ~strike~, `code`, ```preformatted```, "> " quotes at the start
// of a line, <url|links> (http, https and mailto only; other schemes are
// shown as text), <@U…> mentions as names, <#C…> channels, <!subteam^S…>
// groups, <!here>/<!channel>/<!everyone>, :emoji: and line breaks.
// Escaped text (&lt; &gt; &amp;) is shown literally. Everything that comes
// from the input is HTML-escaped; the result is safe to insert in a page.
func Mrkdwn(s string, names Names) template.HTML {
	var b strings.Builder
	parts := strings.Split(s, "```")
	for i, part := range parts {
		if i%2 == 1 {
			if i == len(parts)-1 {
				// An unclosed fence is text.
				b.WriteString(literal("```"))
				renderLines(&b, part, names)
				continue
			}
			b.WriteString(`<pre class="mk-pre">`)
			b.WriteString(literal(strings.Trim(part, "\n")))
			b.WriteString(`</pre>`)
			continue
		}
		renderLines(&b, part, names)
	}
	return template.HTML(b.String())
}

// renderLines renders text outside code fences: quotes and line breaks,
// then inline formatting on each line.
func renderLines(b *strings.Builder, s string, names Names) {
	if s == "" {
		return
	}
	lines := strings.Split(s, "\n")
	inQuote := false
	for i, line := range lines {
		quoted := strings.HasPrefix(line, ">")
		if quoted {
			line = strings.TrimPrefix(strings.TrimPrefix(line, ">"), " ")
		}
		switch {
		case quoted && !inQuote:
			b.WriteString(`<blockquote class="mk-quote">`)
			inQuote = true
		case !quoted && inQuote:
			b.WriteString(`</blockquote>`)
			inQuote = false
		case i > 0:
			b.WriteString("<br>")
		}
		inline(b, line, names)
	}
	if inQuote {
		b.WriteString(`</blockquote>`)
	}
}

// inline renders one line's inline formatting.
func inline(b *strings.Builder, s string, names Names) {
	var text strings.Builder // literal text not yet written
	flush := func() {
		b.WriteString(literal(text.String()))
		text.Reset()
	}
	for i := 0; i < len(s); {
		c := s[i]
		switch c {
		case '<':
			if j := strings.IndexByte(s[i+1:], '>'); j >= 0 {
				flush()
				control(b, s[i+1:i+1+j], names)
				i += j + 2
				continue
			}
		case '`':
			if j := strings.IndexByte(s[i+1:], '`'); j > 0 {
				flush()
				b.WriteString(`<code class="mk-code">` + literal(s[i+1:i+1+j]) + `</code>`)
				i += j + 2
				continue
			}
		case '*', '_', '~':
			if j, ok := closing(s, i); ok {
				flush()
				tag := map[byte]string{'*': "b", '_': "i", '~': "s"}[c]
				b.WriteString("<" + tag + ">")
				inline(b, s[i+1:j], names)
				b.WriteString("</" + tag + ">")
				i = j + 1
				continue
			}
		case ':':
			if j := strings.IndexByte(s[i+1:], ':'); j > 0 {
				if e, ok := emoji[s[i+1:i+1+j]]; ok {
					flush()
					b.WriteString(`<span class="mk-emoji" title=":` + template.HTMLEscapeString(s[i+1:i+1+j]) + `:">` + e + `</span>`)
					i += j + 2
					continue
				}
			}
		}
		text.WriteByte(c)
		i++
	}
	flush()
}

// closing finds the delimiter that closes the one at s[i], Slack-style: the
// opening one follows the start or a non-word character and is followed by
// a non-space; the closing one follows a non-space and is followed by the
// end or a non-word character. It returns its index.
func closing(s string, i int) (int, bool) {
	d := s[i]
	if i > 0 {
		r, _ := utf8.DecodeLastRuneInString(s[:i])
		if isWord(r) || r == rune(d) {
			return 0, false
		}
	}
	if i+1 >= len(s) || s[i+1] == ' ' || s[i+1] == d {
		return 0, false
	}
	for j := i + 2; j < len(s); j++ {
		if s[j] != d || s[j-1] == ' ' {
			continue
		}
		if j+1 < len(s) {
			r, _ := utf8.DecodeRuneInString(s[j+1:])
			if isWord(r) {
				continue
			}
		}
		return j, true
	}
	return 0, false
}

func isWord(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) }

// control renders one <…> control sequence (without the angle brackets).
func control(b *strings.Builder, seq string, names Names) {
	target, label, hasLabel := strings.Cut(seq, "|")
	mention := func(class, text string) {
		b.WriteString(`<span class="` + class + `">` + template.HTMLEscapeString(text) + `</span>`)
	}
	switch {
	case strings.HasPrefix(target, "@"):
		id := target[1:]
		name := names.UserName(id)
		if name == "" {
			name = entities.Replace(label)
		}
		if name == "" {
			name = id
		}
		mention("mk-mention", "@"+name)
	case strings.HasPrefix(target, "#"):
		id := target[1:]
		name := names.ChannelName(id)
		if name == "" {
			name = entities.Replace(label)
		}
		if name == "" {
			name = id
		}
		mention("mk-mention", "#"+name)
	case strings.HasPrefix(target, "!subteam^"):
		id := strings.TrimPrefix(target, "!subteam^")
		h := names.GroupHandle(id)
		if h == "" {
			h = strings.TrimPrefix(entities.Replace(label), "@")
		}
		if h == "" {
			h = id
		}
		mention("mk-mention", "@"+h)
	case target == "!here" || target == "!channel" || target == "!everyone":
		mention("mk-mention mk-broadcast", "@"+target[1:])
	case strings.HasPrefix(target, "!date^"):
		b.WriteString(literal(label))
	case strings.HasPrefix(target, "http://") || strings.HasPrefix(target, "https://") || strings.HasPrefix(target, "mailto:"):
		text := label
		if !hasLabel || label == "" {
			text = strings.TrimPrefix(target, "mailto:")
		}
		// html/template's URL rules, by hand: the scheme is checked above,
		// and the attribute is quoted and escaped.
		b.WriteString(`<a class="mk-link" href="` + template.HTMLEscapeString(entities.Replace(target)) + `" target="_blank" rel="noopener noreferrer">` + literal(text) + `</a>`)
	default:
		// Not a control sequence Slack knows (or a scheme we do not link):
		// shown as the text it is.
		b.WriteString(literal("<" + seq + ">"))
	}
}
