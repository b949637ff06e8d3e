package bot

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/accessbot/accessbot/access"
)

var update = flag.Bool("update", false, "rewrite bot/testdata/*.golden.json from the current renderers")

// t0 is the fixed "now" of every golden test.
var t0 = time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)

func testRunbook(t *testing.T) *access.Runbook {
	t.Helper()
	loc, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	role := func(id, desc string, max time.Duration, steps ...access.StepPolicy) *access.Role {
		r := &access.Role{ID: id, Description: desc, DefaultDuration: time.Hour, MaxDuration: max,
			ApprovalTimeout: 24 * time.Hour, ReminderAfter: 2 * time.Hour, ExpiryWarning: 10 * time.Minute, ReasonRequired: true,
			Requesters: []access.Principal{{Kind: access.SourceTeam, Ref: "support"}}}
		if len(steps) == 0 {
			r.Approval.Auto = true
			r.ReasonRequired = false
		}
		r.Approval.Steps = steps
		return r
	}
	return &access.Runbook{
		Admins: []string{"U0ADMIN01"}, AuditChannel: "C0AUDIT01", Location: loc,
		Teams: map[string]access.Team{"support": {Members: []string{"U0ALICE01", "U0CAROL01"}}},
		Systems: map[string]*access.System{
			"crm": {ID: "crm", Name: "Salesforce <CRM> & co", Owners: []string{"U0CAROL01", "U0ERIN001"}, Channel: "C0CRMOWN1", Connector: "idp",
				Roles: map[string]*access.Role{
					"viewer": role("viewer", "Read-only customer records", 8*time.Hour,
						access.StepPolicy{Sources: []access.Source{{Kind: access.SourceManager}}, Min: 1},
						access.StepPolicy{Sources: []access.Source{{Kind: access.SourceOwners}}, Min: 1}),
					"admin": role("admin", "Edit <b>everything</b>", time.Hour,
						access.StepPolicy{Sources: []access.Source{{Kind: access.SourceOwners}}, Min: 2}),
				}},
			"analytics": {ID: "analytics", Name: "Dashboards", Owners: []string{"U0OSCAR01"}, Connector: "dash",
				Roles: map[string]*access.Role{"viewer": role("viewer", "View dashboards", 4*time.Hour)}},
		},
	}
}

// hostile is a reason a requester could type.
const hostile = "ticket 4411 <!channel> <@U0EVIL001> <https://evil|Approve here> & ünïcødé"

func baseRequest() *access.Request {
	return &access.Request{
		ID: "AR-1042", Seq: 1042, State: access.StatePending, Requester: "U0ALICE01", System: "crm", Role: "viewer",
		Duration: 2 * time.Hour, Reason: hostile, CreatedAt: t0, TimeoutAt: t0.Add(24 * time.Hour), RemindAt: t0.Add(2 * time.Hour),
		Entitlement: access.Entitlement{Connector: "idp", Params: map[string]string{"group_id": "00g1viewer"}, Person: "U0ALICE01"},
		Steps: []access.Step{
			{Approvers: []string{"U0BOB0001"}, Min: 1, Sources: "manager"},
			{Approvers: []string{"U0CAROL01", "U0ERIN001"}, Min: 1, Sources: "owners"},
		},
		History: []access.HistoryEntry{{To: access.StatePending, Event: access.EventRequested, Actor: "U0ALICE01", At: t0}},
	}
}

// at returns baseRequest moved to a given point of its life.
func at(stage string) *access.Request {
	r := baseRequest()
	approve := func(step int, who string, when time.Time) {
		r.Decisions = append(r.Decisions, access.Decision{Step: step, Actor: who, Approve: true, At: when})
	}
	hist := func(from, to access.State, ev access.Event, who string, when time.Time) {
		r.History = append(r.History, access.HistoryEntry{From: from, To: to, Event: ev, Actor: who, At: when})
	}
	switch stage {
	case "pending":
	case "step2":
		approve(0, "U0BOB0001", t0.Add(5*time.Minute))
		hist(access.StatePending, access.StatePending, access.EventStepApproved, "U0BOB0001", t0.Add(5*time.Minute))
		r.CurrentStep = 1
	case "denied":
		r.Decisions = append(r.Decisions, access.Decision{Step: 0, Actor: "U0BOB0001", Reason: "no <!here> & no", At: t0.Add(5 * time.Minute)})
		hist(access.StatePending, access.StateDenied, access.EventDenied, "U0BOB0001", t0.Add(5*time.Minute))
		r.State, r.DecidedAt = access.StateDenied, t0.Add(5*time.Minute)
	case "timed_out":
		hist(access.StatePending, access.StateTimedOut, access.EventTimedOut, access.ActorBot, t0.Add(24*time.Hour))
		r.State, r.DecidedAt = access.StateTimedOut, t0.Add(24*time.Hour)
	case "cancelled":
		hist(access.StatePending, access.StateCancelled, access.EventCancelled, "U0ALICE01", t0.Add(time.Minute))
		r.State, r.DecidedAt = access.StateCancelled, t0.Add(time.Minute)
	case "approved", "active", "grant_failed", "expired", "revoked", "expired_late", "revoking":
		approve(0, "U0BOB0001", t0.Add(5*time.Minute))
		approve(1, "U0CAROL01", t0.Add(10*time.Minute))
		r.CurrentStep = 1
		hist(access.StatePending, access.StateApproved, access.EventApproved, "U0CAROL01", t0.Add(10*time.Minute))
		r.State, r.DecidedAt = access.StateApproved, t0.Add(10*time.Minute)
		if stage == "approved" {
			break
		}
		if stage == "grant_failed" {
			r.State, r.LastError = access.StateGrantFailed, "403 <forbidden> & denied"
			break
		}
		r.State, r.GrantedAt, r.ExpiresAt = access.StateActive, t0.Add(11*time.Minute), t0.Add(131*time.Minute)
		switch stage {
		case "revoking":
			r.State = access.StateRevoking
		case "expired", "expired_late":
			r.State, r.EndedAt = access.StateExpired, r.ExpiresAt
			hist(access.StateActive, access.StateRevoking, access.EventExpiring, access.ActorBot, r.ExpiresAt)
			if stage == "expired_late" {
				r.Late, r.EndedAt = true, r.ExpiresAt.Add(3*time.Hour)
			}
		case "revoked":
			r.State, r.EndedAt = access.StateRevoked, t0.Add(time.Hour)
			hist(access.StateActive, access.StateRevoking, access.EventRevoking, "U0ADMIN01", t0.Add(time.Hour))
		}
	default:
		panic("unknown stage " + stage)
	}
	return r
}

func testView(t *testing.T) View {
	return View{Runbook: testRunbook(t), Requester: RequesterInfo{Name: "Alice <Admin>", Teams: []string{"support"}, Manager: "U0BOB0001"}, Now: t0}
}

// golden compares v, as indented JSON, with testdata/name.golden.json, or
// rewrites the file with -update.
func golden(t *testing.T, name string, v any) {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join("testdata", name+".golden.json")
	if *update {
		if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./bot -update to create it)", err)
	}
	if !bytes.Equal(want, buf.Bytes()) {
		t.Errorf("%s differs from the golden file (go test ./bot -update rewrites it; review the diff):\n%s", path, buf.String())
	}
}

// message is what a renderer returns, for golden files.
type message struct {
	Text   string `json:"text"`
	Blocks any    `json:"blocks"`
}

func msg(text string, blocks any) message { return message{Text: text, Blocks: blocks} }

// checkSafe fails if rendered blocks contain a control sequence the bot
// did not write (escaped text reads &lt;…&gt; and is safe).
func checkSafe(t *testing.T, name string, v any) {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"<!channel>", "<!here>", "<@U0EVIL001>", "<https://evil", "<CRM>", "<b>", "<forbidden>", "<html>", "<Admin>"} {
		if strings.Contains(buf.String(), bad) {
			t.Errorf("%s contains unescaped %q", name, bad)
		}
	}
}

func TestApprovalMessageGolden(t *testing.T) {
	v := testView(t)
	for _, tc := range []struct{ name, stage, viewer string }{
		{"approval_pending_manager", "pending", "U0BOB0001"},
		{"approval_pending_audit", "pending", ""},
		{"approval_pending_not_approver", "pending", "U0CAROL01"},
		{"approval_step2_owner", "step2", "U0ERIN001"},
		{"approval_denied", "denied", "U0BOB0001"},
		{"approval_timed_out", "timed_out", "U0BOB0001"},
		{"approval_active", "active", "U0CAROL01"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			text, blocks := ApprovalMessage(at(tc.stage), v, tc.viewer)
			hasButtons := strings.Contains(mustJSON(t, blocks), ActionApprove)
			wantButtons := tc.stage == "pending" && tc.viewer == "U0BOB0001" || tc.stage == "step2"
			if hasButtons != wantButtons {
				t.Errorf("buttons = %v, want %v", hasButtons, wantButtons)
			}
			checkSafe(t, tc.name, blocks)
			golden(t, tc.name, msg(text, blocks))
		})
	}
}

func TestRequesterMessageGolden(t *testing.T) {
	v := testView(t)
	fallback := at("pending")
	fallback.Steps[1] = access.Step{Approvers: []string{"U0ERIN001", "U0ADMIN01"}, Min: 2, Sources: "owners", Fallback: "admins"}
	auto := at("approved")
	auto.System, auto.Steps, auto.Decisions, auto.Auto = "analytics", nil, nil, true
	for _, tc := range []struct {
		name string
		n    access.Notice
	}{
		{"requester_submitted", access.Notice{Kind: access.NoticeSubmitted, Request: at("pending")}},
		{"requester_submitted_fallback", access.Notice{Kind: access.NoticeSubmitted, Request: fallback}},
		{"requester_submitted_auto", access.Notice{Kind: access.NoticeSubmitted, Request: auto}},
		{"requester_progress", access.Notice{Kind: access.NoticeProgress, Request: at("step2")}},
		{"requester_approved", access.Notice{Kind: access.NoticeDecided, Request: at("approved")}},
		{"requester_denied", access.Notice{Kind: access.NoticeDecided, Request: at("denied")}},
		{"requester_cancelled", access.Notice{Kind: access.NoticeDecided, Request: at("cancelled")}},
		{"requester_timed_out", access.Notice{Kind: access.NoticeDecided, Request: at("timed_out")}},
		{"requester_granted", access.Notice{Kind: access.NoticeGranted, Request: at("active")}},
		{"requester_grant_failed", access.Notice{Kind: access.NoticeGrantFailed, Request: at("grant_failed"), Text: "403 <forbidden> & denied"}},
		{"requester_expiry_warning", access.Notice{Kind: access.NoticeExpiryWarning, Request: at("active")}},
		{"requester_revoke_delayed", access.Notice{Kind: access.NoticeRevokeDelayed, Request: at("revoking")}},
		{"requester_removed_expired", access.Notice{Kind: access.NoticeRemoved, Request: at("expired")}},
		{"requester_removed_late", access.Notice{Kind: access.NoticeRemoved, Request: at("expired_late")}},
		{"requester_removed_revoked", access.Notice{Kind: access.NoticeRemoved, Request: at("revoked")}},
		{"requester_access_kept", access.Notice{Kind: access.NoticeAccessKept, Request: at("expired")}},
		{"requester_ineligible", access.Notice{Kind: access.NoticeIneligible, Request: at("pending"), Text: "the requester may no longer request it"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.n.State = tc.n.Request.State
			text, blocks := RequesterMessage(tc.n, v)
			checkSafe(t, tc.name, blocks)
			golden(t, tc.name, msg(text, blocks))
		})
	}
}

func TestOwnerMessageGolden(t *testing.T) {
	v := testView(t)
	failing := at("revoking")
	failing.Attempts = 7
	task := at("approved")
	task.AwaitingConfirmation = true
	for _, tc := range []struct {
		name string
		n    access.Notice
	}{
		{"owner_grant_failed", access.Notice{Kind: access.NoticeGrantFailed, Request: at("grant_failed"), Text: "403 <forbidden> & denied"}},
		{"owner_revoke_failing", access.Notice{Kind: access.NoticeRevokeFailing, Request: failing, Text: "503 <html>"}},
		{"owner_revoke_recovered", access.Notice{Kind: access.NoticeRevokeRecovered, Request: at("expired")}},
		{"owner_task_grant", access.Notice{Kind: access.NoticeTask, Request: task, Op: "grant"}},
		{"owner_task_revoke", access.Notice{Kind: access.NoticeTask, Request: failing, Op: "revoke"}},
		{"owner_task_reminder", access.Notice{Kind: access.NoticeTask, Request: failing, Op: "revoke", Text: "reminder"}},
		{"owner_access_kept", access.Notice{Kind: access.NoticeAccessKept, Request: at("expired")}},
		{"owner_ineligible", access.Notice{Kind: access.NoticeIneligible, Request: at("pending"), Text: "offboarding: deactivated in Slack"}},
		{"owner_offboarded", access.Notice{Kind: access.NoticeOffboarded, Request: at("revoking"), Text: "deactivated in Slack"}},
		{"owner_rolled_back", access.Notice{Kind: access.NoticeRolledBack, Request: at("grant_failed"), Text: "Salesforce <CRM> refused to grant it (reference E-12345678)"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.n.State = tc.n.Request.State
			text, blocks := OwnerMessage(tc.n, v)
			checkSafe(t, tc.name, blocks)
			golden(t, tc.name, msg(text, blocks))
		})
	}
}

func TestRequestModalGolden(t *testing.T) {
	rb := testRunbook(t)
	eligible := map[string][]string{"crm": {"admin", "viewer"}, "analytics": {"viewer"}}
	for _, tc := range []struct {
		name string
		st   modalState
	}{
		{"modal_empty", modalState{}},
		{"modal_prefilled", modalState{System: "crm", Role: "viewer", Duration: 4 * time.Hour, Reason: "ticket <1>", Channel: "D0ALICE01"}},
		{"modal_optional_reason", modalState{System: "analytics"}},
		{"modal_over_max_resets", modalState{System: "crm", Role: "admin", Duration: 8 * time.Hour}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			golden(t, tc.name, RequestModal(rb, eligible, tc.st))
		})
	}
	t.Run("modal_deny", func(t *testing.T) {
		golden(t, "modal_deny", DenyModal(at("step2"), testView(t)))
	})
}

func TestHomeViewGolden(t *testing.T) {
	rb := testRunbook(t)
	mine := []*access.Request{at("active"), at("pending"), at("approved"), at("revoking")}
	decide := at("step2")
	decide.ID, decide.Requester = "AR-1043", "U0DAVE001"
	golden(t, "home_full", HomeView(HomeData{User: "U0ALICE01", Mine: mine, ToDecide: []*access.Request{decide}, Owned: []*access.Request{at("active")}, Now: t0.Add(time.Hour), Location: rb.Location}))
	golden(t, "home_empty", HomeView(HomeData{User: "U0MALLO01", Now: t0, Location: rb.Location}))
	var many []*access.Request
	for i := 0; i < 40; i++ {
		many = append(many, at("pending"))
	}
	v := HomeView(HomeData{User: "U0BOB0001", ToDecide: many, Mine: many, Now: t0, Location: rb.Location})
	if n := len(v.Blocks.BlockSet); n > 100 {
		t.Fatalf("home view has %d blocks, Slack allows 100", n)
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
