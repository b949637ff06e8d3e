package slackemu

import (
	"encoding/json"
	"regexp"
	"strings"
)

// mentionRE matches Slack control sequences that notify or fake content in
// mrkdwn (protocol §4.5, https://docs.slack.dev/messaging/formatting-message-text):
// special mentions, user and user-group mentions, and labelled links.
var mentionRE = regexp.MustCompile(`<(?:!(?:channel|here|everyone)(?:\|[^>]*)?|@[UW][A-Z0-9]+(?:\|[^>]*)?|!subteam\^[A-Z0-9]+(?:\|[^>]*)?|[a-zA-Z][a-zA-Z0-9+.-]*:[^|>\s]*\|[^>]*)>`)

// UnsafeMentions returns every unescaped control sequence in mrkdwn that a
// user could inject: <!channel>, <!here>, <!everyone> (with optional |label),
// <@U…>/<@W…>, <!subteam^S…> and labelled links such as <https://x|text>.
// Escaped text (&lt;!channel&gt;) is safe and not reported.
func UnsafeMentions(mrkdwn string) []string {
	return mentionRE.FindAllString(mrkdwn, -1)
}

// mrkdwnTexts returns the top-level text and every mrkdwn text object in blocks.
func mrkdwnTexts(m *Message) []string {
	out := []string{m.Text}
	var walk func(x any)
	walk = func(x any) {
		switch v := x.(type) {
		case map[string]any:
			if str(v, "type") == "mrkdwn" {
				out = append(out, str(v, "text"))
			}
			for _, c := range v {
				walk(c)
			}
		case []any:
			for _, c := range v {
				walk(c)
			}
		}
	}
	var blocks any
	if json.Unmarshal(m.Blocks, &blocks) == nil {
		walk(blocks)
	}
	return out
}

// UnsafeMentionsIn scans the current text and mrkdwn blocks of every
// non-deleted message in channelID (a U… id means the bot DM) and the
// ephemerals posted there, and returns unsafe sequences; user mentions of
// allowedUserMentions (e.g. the requester and approvers the bot intends to
// mention) are not reported.
func (s *Server) UnsafeMentionsIn(channelID string, allowedUserMentions ...string) []string {
	msgs := s.Messages(channelID)
	if strings.HasPrefix(channelID, "U") {
		channelID = s.DMChannel(channelID)
	}
	s.mu.Lock()
	for _, list := range s.ephemerals {
		for _, m := range list {
			if m.Channel == channelID {
				msgs = append(msgs, copyMsg(m))
			}
		}
	}
	s.mu.Unlock()
	var out []string
	for i := range msgs {
		if msgs[i].Deleted {
			continue
		}
		for _, t := range mrkdwnTexts(&msgs[i]) {
			for _, hit := range UnsafeMentions(t) {
				if strings.HasPrefix(hit, "<@") {
					id := strings.TrimPrefix(hit, "<@")
					id = strings.TrimSuffix(id, ">")
					if i := strings.IndexByte(id, '|'); i >= 0 {
						id = id[:i]
					}
					if contains(allowedUserMentions, id) {
						continue
					}
				}
				out = append(out, hit)
			}
		}
	}
	return out
}
