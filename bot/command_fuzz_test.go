package bot

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/accessbot/accessbot/access"
)

// FuzzParseCommand: ParseCommand never panics; every refusal is an
// *access.Error of kind ErrInvalid with a message for the person; every
// success is consistent with its verb (a request has a system, role and
// positive duration; an ID is canonical; fields a verb does not use are
// empty).
func FuzzParseCommand(f *testing.F) {
	for _, s := range []string{
		"", "help", "list", "pending", "systems", "crm viewer 2h ticket 4411", "crm viewer", "crm",
		"crm viewer banana why", "crm viewer 2h", "cancel AR-1042", "cancel", "revoke ar-7 done",
		"extend AR-1042 2h more time", "extend AR-1042", "extend x 2h", "audit crm 7d", "audit",
		"CRM Viewer 1d  two  spaces", "crm viewer 0s x", "crm viewer -1h x", "&lt;@U0BOB0001&gt; viewer 1h x",
		"crm viewer 1h <!channel>", "\t\n", "cancel AR-0", "cancel AR-99999999999999999999",
		strings.Repeat("a ", 7000), "crm viewer 1h \xff\xfe", "ｃｒｍ viewer 1h x",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		c, err := ParseCommand(text)
		if err != nil {
			if strings.TrimSpace(err.Error()) == "" {
				t.Fatalf("ParseCommand(%q): empty error message", text)
			}
			if !errors.Is(err, access.ErrInvalid) {
				t.Fatalf("ParseCommand(%q): error %v, want ErrInvalid", text, err)
			}
			if msg := (&Bot{}).errorText(err); strings.Contains(msg, "Something went wrong") {
				t.Fatalf("ParseCommand(%q): no user message: %q", text, msg)
			}
			return
		}
		if utf8.RuneCountInString(text) > maxCommandRunes {
			t.Fatalf("ParseCommand accepted %d runes", utf8.RuneCountInString(text))
		}
		words := strings.Fields(unescapeSlack(strings.TrimSpace(text)))
		switch c.Verb {
		case VerbHelp, VerbList, VerbPending, VerbSystems:
			if c != (Command{Verb: c.Verb}) {
				t.Fatalf("ParseCommand(%q) = %+v: a bare verb carries fields", text, c)
			}
		case VerbModal:
			if len(words) > 2 || c.Duration != 0 || c.Reason != "" || c.ID != "" {
				t.Fatalf("ParseCommand(%q) = %+v: a modal with more than system and role", text, c)
			}
			if len(words) == 0 && c != (Command{Verb: VerbModal}) {
				t.Fatalf("ParseCommand(%q) = %+v for blank text", text, c)
			}
			if len(words) > 0 && c.System != strings.ToLower(words[0]) {
				t.Fatalf("ParseCommand(%q): system %q, want %q", text, c.System, strings.ToLower(words[0]))
			}
		case VerbRequest:
			if c.System == "" || c.Role == "" || c.Duration <= 0 || c.ID != "" {
				t.Fatalf("ParseCommand(%q) = %+v: incomplete request", text, c)
			}
			if c.Reason != strings.TrimSpace(c.Reason) {
				t.Fatalf("ParseCommand(%q): reason %q not trimmed", text, c.Reason)
			}
		case VerbCancel, VerbRevoke, VerbExtend:
			n, err := access.ParseID(c.ID)
			if err != nil || access.FormatID(n) != c.ID {
				t.Fatalf("ParseCommand(%q): ID %q is not canonical (%v)", text, c.ID, err)
			}
			if (c.Verb == VerbExtend) != (c.Duration > 0) {
				t.Fatalf("ParseCommand(%q) = %+v: duration and verb disagree", text, c)
			}
		case VerbAudit:
			if c.System == "" || c.System != strings.ToLower(c.System) {
				t.Fatalf("ParseCommand(%q) = %+v: audit without a lower-case system", text, c)
			}
		default:
			t.Fatalf("ParseCommand(%q): unknown verb %q", text, c.Verb)
		}
	})
}
