package bot

import (
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/accessbot/accessbot/access"
)

// bgRequest is baseRequest broken into: approved by alice breaking the
// glass, then at stage "active" or "revoked".
func bgRequest(stage string) *access.Request {
	r := baseRequest()
	r.System, r.Role, r.Duration, r.Steps, r.CurrentStep = "crm", "admin", 30*time.Minute, nil, 0
	r.BreakGlass, r.Broadcast = true, []string{"U0CAROL01", "U0ERIN001"}
	r.Ticket = &access.Ticket{Ref: "INC-9", Title: "Prod down", URL: "https://acme.atlassian.net/browse/INC-9", Status: "Open"}
	hist := func(from, to access.State, ev access.Event, who string, when time.Time) {
		r.History = append(r.History, access.HistoryEntry{From: from, To: to, Event: ev, Actor: who, At: when})
	}
	hist(access.StatePending, access.StateApproved, access.EventBreakGlass, "U0ALICE01", t0)
	r.State, r.DecidedAt = access.StateApproved, t0
	if stage == "approved" {
		return r
	}
	hist(access.StateApproved, access.StateActive, access.EventGranted, access.ActorBot, t0.Add(time.Minute))
	r.State, r.GrantedAt, r.ExpiresAt = access.StateActive, t0.Add(time.Minute), t0.Add(31*time.Minute)
	if stage == "revoked" {
		hist(access.StateActive, access.StateRevoking, access.EventRevoking, "U0ERIN001", t0.Add(5*time.Minute))
		hist(access.StateRevoking, access.StateRevoked, access.EventRevoked, access.ActorBot, t0.Add(6*time.Minute))
		r.State, r.EndedAt = access.StateRevoked, t0.Add(6*time.Minute)
	}
	return r
}

func TestBreakGlassMessagesGolden(t *testing.T) {
	v := testView(t)
	for _, tc := range []struct {
		name, stage string
		buttons     bool
	}{
		{"owner_break_glass_review", "active", true},
		{"owner_break_glass_review_revoked", "revoked", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := bgRequest(tc.stage)
			text, blocks := OwnerMessage(access.Notice{Kind: access.NoticeBreakGlass, Request: r, State: r.State}, v)
			if got := strings.Contains(mustJSON(t, blocks), ActionRevokeNow); got != tc.buttons {
				t.Errorf("Revoke now button = %v, want %v", got, tc.buttons)
			}
			checkSafe(t, tc.name, blocks)
			golden(t, tc.name, msg(text, blocks))
		})
	}
	t.Run("approval_break_glass_approver", func(t *testing.T) {
		text, blocks := ApprovalMessage(bgRequest("active"), v, "U0CAROL01")
		if strings.Contains(mustJSON(t, blocks), ActionApprove) {
			t.Error("a break-glass copy has Approve")
		}
		if !strings.Contains(plainJSON(t, blocks), "*Break glass*: <@U0ALICE01> took this access *without approval*") {
			t.Error("no break-glass banner")
		}
		golden(t, "approval_break_glass_approver", msg(text, blocks))
	})
	for _, tc := range []struct {
		name string
		kind access.NoticeKind
	}{
		{"requester_break_glass_submitted", access.NoticeSubmitted},
		{"requester_break_glass_expiry_warning", access.NoticeExpiryWarning},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := bgRequest("active")
			text, blocks := RequesterMessage(access.Notice{Kind: tc.kind, Request: r, State: r.State}, v)
			checkSafe(t, tc.name, blocks)
			golden(t, tc.name, msg(text, blocks))
		})
	}
}

func TestBreakGlassModalGolden(t *testing.T) {
	rb := testRunbook(t)
	rb.Systems["crm"].Roles["admin"].BreakGlass = &access.BreakGlassPolicy{MaxDuration: 30 * time.Minute,
		Requesters: []access.Principal{{Kind: access.SourceTeam, Ref: "support"}}}
	eligible := map[string][]string{"crm": {"admin", "viewer"}}
	confirm := RequestModal(rb, map[string][]string{"crm": {"admin"}}, modalState{System: "crm", Role: "admin", Reason: "prod <down>", BreakGlassMode: true})
	js := plainJSON(t, confirm)
	for _, want := range []string{`"text":"Break glass now"`, `"block_id":"break_glass"`, "I confirm this is an emergency", `"value":"30m"`} {
		if !strings.Contains(js, want) {
			t.Errorf("break-glass form lacks %s", want)
		}
	}
	for _, b := range confirm.Blocks.BlockSet {
		if ib, ok := b.(*slack.InputBlock); ok && ib.BlockID == BlockBreakGlass && ib.Optional {
			t.Error("the confirmation box is optional in the break-glass form")
		}
	}
	if strings.Contains(js, `"value":"1h"`) {
		t.Error("the break-glass form offers durations over its cap")
	}
	golden(t, "modal_break_glass_confirm", confirm)
	offered := RequestModal(rb, eligible, modalState{System: "crm", Role: "admin", BreakGlassRoles: map[string]bool{"crm/admin": true}})
	if !strings.Contains(plainJSON(t, offered), `"block_id":"break_glass"`) {
		t.Error("the ordinary form does not offer the break-glass box to a break-glass requester")
	}
	golden(t, "modal_break_glass_offered", offered)
	if strings.Contains(plainJSON(t, RequestModal(rb, eligible, modalState{System: "crm", Role: "admin"})), `"block_id":"break_glass"`) {
		t.Error("the box is offered to someone who may not break the glass")
	}
}

func TestBreakGlassDigestGolden(t *testing.T) {
	reqs := busyRequests(9)
	bg := bgRequest("active")
	bg.Seq, bg.ID = 2000, "AR-2000"
	for i := range bg.History {
		bg.History[i].At = digestFrom.Add(time.Hour)
	}
	reqs = append(reqs, bg)
	d := access.BuildDigest("crm", digestFrom, digestTo, reqs, digestTo)
	fallback, blocks := DigestMessage(d, View{Runbook: digestRunbook(), Now: digestTo})
	checkDigestLimits(t, fallback, blocks)
	if !strings.Contains(fallback, "⚠ 1 break-glass") {
		t.Errorf("counts %q do not flag the break-glass grant", fallback)
	}
	checkGolden(t, "digest_break_glass", map[string]any{"text": fallback, "blocks": blocks})
}

func TestParseCommandRunbookForms(t *testing.T) {
	for _, tc := range []struct {
		text string
		want Command
		err  string
	}{
		{"crm admin 30m prod down --break-glass", Command{Verb: VerbRequest, System: "crm", Role: "admin", Duration: 30 * time.Minute, Reason: "prod down", BreakGlass: true}, ""},
		{"crm admin --break-glass 30m prod down", Command{Verb: VerbRequest, System: "crm", Role: "admin", Duration: 30 * time.Minute, Reason: "prod down", BreakGlass: true}, ""},
		{"crm admin 30m prod —break-glass", Command{Verb: VerbRequest, System: "crm", Role: "admin", Duration: 30 * time.Minute, Reason: "prod", BreakGlass: true}, ""},
		{"crm admin --BREAK-GLASS", Command{Verb: VerbModal, System: "crm", Role: "admin", BreakGlass: true}, ""},
		{"crm admin 30m why--break-glass", Command{Verb: VerbRequest, System: "crm", Role: "admin", Duration: 30 * time.Minute, Reason: "why--break-glass"}, ""},
		{"list --break-glass", Command{}, "`--break-glass` goes with a request"},
		{"--break-glass", Command{}, "`--break-glass` goes with a request"},
		{"for <@U0ALICE01|alice> crm viewer 2h onboarding", Command{Verb: VerbRequest, System: "crm", Role: "viewer", Duration: 2 * time.Hour, Reason: "onboarding", For: "U0ALICE01"}, ""},
		{"FOR &lt;@U0ALICE01&gt; crm viewer", Command{Verb: VerbModal, System: "crm", Role: "viewer", For: "U0ALICE01"}, ""},
		{"for alice@example.com crm viewer 1h x", Command{Verb: VerbRequest, System: "crm", Role: "viewer", Duration: time.Hour, Reason: "x", For: "alice@example.com"}, ""},
		{"for <@U0ALICE01>", Command{}, "Who and what?"},
		{"for <@U0ALICE01> list", Command{}, "is not a request"},
		{"for <@U0ALICE01> crm admin 30m x --break-glass", Command{}, "Break-glass is only for yourself"},
		{"for <@U0ALICE01> crm viewer banana", Command{}, "is not a duration"},
	} {
		t.Run(tc.text, func(t *testing.T) {
			got, err := ParseCommand(tc.text)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}
