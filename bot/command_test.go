package bot

import (
	"errors"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"

	"github.com/accessbot/accessbot/access"
)

func TestParseCommand(t *testing.T) {
	for _, tc := range []struct {
		name, text string
		want       Command
		err        string // substring of the error; "" for none
	}{
		{"empty", "", Command{Verb: VerbModal}, ""},
		{"only spaces", "  \t ", Command{Verb: VerbModal}, ""},
		{"help", "help", Command{Verb: VerbHelp}, ""},
		{"help upper", "HELP", Command{Verb: VerbHelp}, ""},
		{"help dash", "--help", Command{Verb: VerbHelp}, ""},
		{"question", "?", Command{Verb: VerbHelp}, ""},
		{"list", "list", Command{Verb: VerbList}, ""},
		{"ls", "ls", Command{Verb: VerbList}, ""},
		{"mine", "mine", Command{Verb: VerbList}, ""},
		{"pending", "pending", Command{Verb: VerbPending}, ""},
		{"approvals", "approvals", Command{Verb: VerbPending}, ""},
		{"systems", "systems", Command{Verb: VerbSystems}, ""},
		{"cancel", "cancel AR-1042", Command{Verb: VerbCancel, ID: "AR-1042"}, ""},
		{"cancel lower id", "cancel ar-1042", Command{Verb: VerbCancel, ID: "AR-1042"}, ""},
		{"cancel bare number", "cancel 1042", Command{Verb: VerbCancel, ID: "AR-1042"}, ""},
		{"cancel no id", "cancel", Command{}, "Which request?"},
		{"cancel bad id", "cancel banana", Command{}, "not a request ID"},
		{"cancel zero", "cancel AR-0", Command{}, "not a request ID"},
		{"revoke with reason", "revoke ar-7   left  the team ", Command{Verb: VerbRevoke, ID: "AR-7", Reason: "left  the team"}, ""},
		{"revoke no id", "Revoke", Command{}, "Which request?"},
		{"extend", "extend AR-1042 2h", Command{Verb: VerbExtend, ID: "AR-1042", Duration: 2 * time.Hour}, ""},
		{"extend reason", "extend ar-1042 1d still on it", Command{Verb: VerbExtend, ID: "AR-1042", Duration: 24 * time.Hour, Reason: "still on it"}, ""},
		{"extend missing duration", "extend AR-1042", Command{}, "Usage: `extend ID DURATION"},
		{"extend bad duration", "extend AR-1042 forever", Command{}, "“forever” is not a duration"},
		{"extend bad id", "extend x 2h", Command{}, "not a request ID"},
		{"audit", "audit CRM 7d", Command{Verb: VerbAudit, System: "crm", Since: "7d"}, ""},
		{"audit no since", "audit crm", Command{Verb: VerbAudit, System: "crm"}, ""},
		{"audit no system", "audit", Command{}, "Usage: `audit SYSTEM"},
		{"system only", "crm", Command{Verb: VerbModal, System: "crm"}, ""},
		{"system and role", "CRM Viewer", Command{Verb: VerbModal, System: "crm", Role: "viewer"}, ""},
		{"direct", "crm viewer 2h ticket 4411", Command{Verb: VerbRequest, System: "crm", Role: "viewer", Duration: 2 * time.Hour, Reason: "ticket 4411"}, ""},
		{"direct no reason", "crm viewer 90m", Command{Verb: VerbRequest, System: "crm", Role: "viewer", Duration: 90 * time.Minute}, ""},
		{"direct days", "crm viewer 1d x", Command{Verb: VerbRequest, System: "crm", Role: "viewer", Duration: 24 * time.Hour, Reason: "x"}, ""},
		{"extra spaces", "   crm    viewer \t 2h   ticket   4411  ", Command{Verb: VerbRequest, System: "crm", Role: "viewer", Duration: 2 * time.Hour, Reason: "ticket   4411"}, ""},
		{"banana", "crm viewer banana because", Command{}, "“banana” is not a duration"},
		{"negative", "crm viewer -2h x", Command{}, "not a duration"},
		{"entity escaped", "crm viewer 2h fix &lt;b&gt; &amp; &lt;!channel&gt;", Command{Verb: VerbRequest, System: "crm", Role: "viewer", Duration: 2 * time.Hour, Reason: "fix <b> & <!channel>"}, ""},
		{"double escaped stays once", "crm viewer 2h &amp;lt;", Command{Verb: VerbRequest, System: "crm", Role: "viewer", Duration: 2 * time.Hour, Reason: "&lt;"}, ""},
		{"unicode reason", "crm viewer 2h Überprüfung 🔐", Command{Verb: VerbRequest, System: "crm", Role: "viewer", Duration: 2 * time.Hour, Reason: "Überprüfung 🔐"}, ""},
		{"too long", "crm viewer 2h " + strings.Repeat("x", maxCommandRunes), Command{}, "too long"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseCommand(tc.text)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("ParseCommand(%q) error = %v, want one containing %q", tc.text, err, tc.err)
				}
				if !errors.Is(err, access.ErrInvalid) {
					t.Errorf("error %v is not ErrInvalid", err)
				}
				if txt := (&Bot{}).errorText(err); strings.Contains(txt, "Something went wrong") {
					t.Errorf("error %v has no user message", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseCommand(%q): %v", tc.text, err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("ParseCommand(%q) (-want +got):\n%s", tc.text, diff)
			}
		})
	}
}

func TestEscape(t *testing.T) {
	for in, want := range map[string]string{
		"":                            "",
		"plain":                       "plain",
		"a & b":                       "a &amp; b",
		"<!channel>":                  "&lt;!channel&gt;",
		"<@U0ADMIN01>":                "&lt;@U0ADMIN01&gt;",
		"<https://evil|Approve here>": "&lt;https://evil|Approve here&gt;",
		"&lt;":                        "&amp;lt;",
		`"quotes" 'stay' *bold* _it_`: `"quotes" 'stay' *bold* _it_`,
	} {
		if got := Escape(in); got != want {
			t.Errorf("Escape(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestTruncate(t *testing.T) {
	for _, tc := range []struct {
		in   string
		n    int
		want string
	}{
		{"short", 10, "short"},
		{"exactly10!", 10, "exactly10!"},
		{"abcdefghijk", 10, "abcdefghi…"},
		{"ünïcødé ünïcødé", 8, "ünïcødé…"},
		{"🔐🔐🔐🔐🔐", 3, "🔐🔐…"},
		{"ab&amp;cd", 5, "ab…"},      // would cut "&am"
		{"ab&amp;cd", 8, "ab&amp;…"}, // whole entity kept
		{"x&lt;&gt;", 7, "x&lt;…"},
		{"abc", 1, "…"},
	} {
		got := Truncate(tc.in, tc.n)
		if got != tc.want {
			t.Errorf("Truncate(%q, %d) = %q, want %q", tc.in, tc.n, got, tc.want)
		}
		if utf8.RuneCountInString(got) > tc.n {
			t.Errorf("Truncate(%q, %d) has %d runes", tc.in, tc.n, utf8.RuneCountInString(got))
		}
		if !utf8.ValidString(got) {
			t.Errorf("Truncate(%q, %d) = invalid UTF-8", tc.in, tc.n)
		}
	}
	// Escaped hostile text cut at every length never leaves a broken
	// entity or an unescaped bracket.
	s := Escape(strings.Repeat("<!channel> & ü <@U1> ", 20))
	for n := 1; n < 200; n++ {
		got := Truncate(s, n)
		if strings.ContainsAny(got, "<>") {
			t.Fatalf("Truncate(…, %d) = %q", n, got)
		}
		if i := strings.LastIndex(got, "&"); i >= 0 && !strings.Contains(got[i:], ";") {
			t.Fatalf("Truncate(…, %d) splits an entity: %q", n, got)
		}
	}
}

// Refusals are worded by the bot from their data: user input inside them
// is escaped (no mention, special mention or link can be injected), and
// only the bot itself writes mentions.
func TestErrorTextEscapesInput(t *testing.T) {
	b := &Bot{cfg: Config{Command: "/access"}, rb: &access.Runbook{}}
	for name, tc := range map[string]struct {
		err  error
		want string
	}{
		"unknown system": {&access.Error{Kind: access.ErrInvalid, Code: access.CodeUnknownSystem, Value: "<@U0ADMIN01>", Allowed: []string{"crm"}},
			"There is no system called “&lt;@U0ADMIN01&gt;”. Systems: crm."},
		"special mention in a role": {&access.Error{Kind: access.ErrInvalid, Code: access.CodeUnknownRole, System: "crm", Value: "<!channel> & <https://x|y>", Allowed: []string{"viewer"}},
			"crm has no role called “&lt;!channel&gt; &amp; &lt;https://x|y&gt;”. Roles: viewer."},
		"who decided is a mention": {&access.Error{Kind: access.ErrConflict, Code: access.CodeAlreadyDecided, Request: "AR-1", State: access.StateDenied, Actor: "U0ERIN001", At: time.Date(2026, 11, 29, 9, 0, 0, 0, time.UTC)},
			"*AR-1* was already denied by <@U0ERIN001> at Sun 29 Nov 09:00 UTC; nothing was changed."},
		"command name from the config": {&access.Error{Kind: access.ErrConflict, Code: access.CodeUseCancel, Request: "AR-2"},
			"*AR-2* is still waiting for approval; use `/access cancel AR-2` instead."},
		"plain message escaped": {access.Invalidf("%q is not a request ID", "<@U0ADMIN01>"),
			`"&lt;@U0ADMIN01&gt;" is not a request ID`},
	} {
		if got := b.errorText(tc.err); got != tc.want {
			t.Errorf("%s: errorText = %q, want %q", name, got, tc.want)
		}
	}
}
