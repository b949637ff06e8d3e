package bot

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
	"github.com/slack-go/slack"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/bot/slackemu"
)

// The -update flag regenerates golden files. It is registered here only if
// no other test file of the package registered it first.
func init() {
	if flag.Lookup("update") == nil {
		flag.Bool("update", false, "rewrite testdata/*.golden.json")
	}
}

func updateGoldens() bool {
	f := flag.Lookup("update")
	return f != nil && f.Value.String() == "true"
}

// checkGolden compares got (indented JSON) with testdata/name.golden.json.
func checkGolden(t *testing.T, name string, got any) {
	t.Helper()
	b, err := json.MarshalIndent(got, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	b = append(b, '\n')
	path := filepath.Join("testdata", name+".golden.json")
	if updateGoldens() {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), string(b)); diff != "" {
		t.Errorf("%s differs (-want +got; go test -update rewrites it):\n%s", path, diff)
	}
}

var (
	digestBerlin = mustLoc("Europe/Berlin")
	digestFrom   = time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC) // Mon 09:00 in Berlin
	digestTo     = digestFrom.Add(7 * 24 * time.Hour)
)

func mustLoc(name string) *time.Location {
	l, err := time.LoadLocation(name)
	if err != nil {
		panic(err)
	}
	return l
}

func digestRunbook() *access.Runbook {
	return &access.Runbook{Location: digestBerlin, Systems: map[string]*access.System{
		"crm": {ID: "crm", Name: "Salesforce CRM", Channel: "C0CRMOWN1", Digest: "weekly mon 09:00"},
	}}
}

// busyRequests makes n crm requests spread over the digest week in every
// state a digest lists; reasons and errors are long and hostile.
func busyRequests(n int) []*access.Request {
	var out []*access.Request
	long := strings.Repeat("<!channel> & export everything ", 40)
	for i := range n {
		seq := uint64(1000 + i)
		at := digestFrom.Add(time.Duration(i) * (7 * 24 * time.Hour) / time.Duration(n+1))
		r := &access.Request{ID: access.FormatID(seq), Seq: seq, System: "crm", Role: "viewer", Duration: 2 * time.Hour,
			Requester: fmt.Sprintf("U%08d", i%37), Reason: fmt.Sprintf("ticket %d %s", i, long), CreatedAt: at,
			Steps: []access.Step{{Approvers: []string{"U0BOB0001"}, Min: 1, Sources: "manager"}, {Approvers: []string{"U0CAROL01"}, Min: 1, Sources: "owners"}}}
		step := func(ev access.Event, actor string, at time.Time, note string) {
			if err := access.Apply(r, access.Transition{Event: ev, Actor: actor, At: at, Note: note}); err != nil {
				panic(err)
			}
		}
		step(access.EventRequested, r.Requester, at, "")
		grant := func() {
			r.Decisions = append(r.Decisions, access.Decision{Step: 0, Actor: "U0BOB0001", Approve: true, At: at}, access.Decision{Step: 1, Actor: "U0CAROL01", Approve: true, At: at})
			step(access.EventApproved, "U0CAROL01", at, "")
			step(access.EventGranted, access.ActorBot, at, "")
			r.GrantedAt, r.ExpiresAt = at, at.Add(r.Duration)
		}
		switch i % 9 {
		case 0: // granted and expired
			grant()
			step(access.EventExpiring, access.ActorBot, r.ExpiresAt, "")
			step(access.EventExpired, access.ActorBot, r.ExpiresAt, "")
			r.EndedAt = r.ExpiresAt
		case 1: // denied
			r.Decisions = append(r.Decisions, access.Decision{Actor: "U0BOB0001", Reason: long, At: at})
			step(access.EventDenied, "U0BOB0001", at, long)
		case 2:
			step(access.EventTimedOut, access.ActorBot, at.Add(time.Hour), "")
		case 3: // still active
			grant()
			r.ExpiresAt = digestTo.Add(time.Duration(i) * time.Minute)
		case 4: // waiting
		case 5: // removal failing
			grant()
			step(access.EventExpiring, access.ActorBot, r.ExpiresAt, "")
			step(access.EventRevokeAttemptFailed, access.ActorBot, r.ExpiresAt, long)
			r.Attempts, r.LastError = 7, "okta: 503 Service Unavailable "+long
		case 6: // removed late
			grant()
			step(access.EventExpiring, access.ActorBot, r.ExpiresAt.Add(3*time.Hour), "")
			step(access.EventExpired, access.ActorBot, r.ExpiresAt.Add(3*time.Hour), "")
			r.Late, r.EndedAt = true, r.ExpiresAt.Add(3*time.Hour)
		case 7: // auto-approved and revoked
			r.Auto, r.Steps = true, nil
			step(access.EventApproved, access.ActorAuto, at, "")
			step(access.EventGranted, access.ActorBot, at, "")
			r.GrantedAt, r.ExpiresAt = at, at.Add(r.Duration)
			step(access.EventRevoking, "U0CAROL01", at.Add(time.Hour), "")
			step(access.EventRevoked, access.ActorBot, at.Add(time.Hour), "")
			r.EndedAt = at.Add(time.Hour)
		case 8: // an extension
			r.Extends = access.FormatID(seq - 5)
			grant()
		}
		out = append(out, r)
	}
	return out
}

func TestDigestMessageGolden(t *testing.T) {
	v := View{Runbook: digestRunbook(), Now: digestTo}
	for _, tc := range []struct {
		name string
		reqs []*access.Request
	}{
		{"busy", busyRequests(30)},
		{"quiet", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := access.BuildDigest("crm", digestFrom, digestTo, tc.reqs, digestTo)
			fallback, blocks := DigestMessage(d, v)
			checkDigestLimits(t, fallback, blocks)
			checkGolden(t, "digest_"+tc.name, map[string]any{"text": fallback, "blocks": blocks})
		})
	}
}

func TestDigestMessageQuiet(t *testing.T) {
	d := access.BuildDigest("crm", digestFrom, digestTo, nil, digestTo)
	fallback, blocks := DigestMessage(d, View{Runbook: digestRunbook(), Now: digestTo})
	if len(blocks) != 1 || !strings.HasPrefix(fallback, ":zzz: Quiet week for Salesforce CRM: no access requests") {
		t.Errorf("quiet week = %q in %d blocks, want one line", fallback, len(blocks))
	}
	d = access.BuildDigest("crm", digestFrom, digestFrom.Add(24*time.Hour), nil, digestTo)
	if fallback, _ := DigestMessage(d, View{Runbook: digestRunbook()}); !strings.Contains(fallback, "Quiet day") {
		t.Errorf("quiet day = %q", fallback)
	}
}

func TestDigestMessageBusyWeekWithinLimits(t *testing.T) {
	reqs := busyRequests(5000)
	d := access.BuildDigest("crm", digestFrom, digestTo, reqs, digestTo)
	fallback, blocks := DigestMessage(d, View{Runbook: digestRunbook(), Now: digestTo})
	checkDigestLimits(t, fallback, blocks)

	texts := blockTexts(t, blocks)
	all := strings.Join(texts, "\n")
	// Counts first, in the header section, with the revocation problems marked.
	wantCounts := fmt.Sprintf("*%d granted · %d denied · %d timed out · %d expired · %d revoked · %d auto-approved · %d extended · %d holding access · %d waiting · ⚠ %d failed revocations · ⚠ %d late revocations*",
		len(d.Granted), len(d.Denied), len(d.TimedOut), len(d.Expired), len(d.Revoked), len(d.AutoApproved), len(d.Extended), len(d.Active), len(d.Waiting), len(d.FailedRevocations), len(d.LateRevocations))
	if texts[2] != wantCounts {
		t.Errorf("counts section = %q\nwant %q", texts[2], wantCounts)
	}
	// Failed revocations come right after the counts, and are folded.
	if !strings.HasPrefix(texts[3], "*:rotating_light: Failed revocations") {
		t.Errorf("first section after the counts = %.80q, want the failed revocations", texts[3])
	}
	if want := fmt.Sprintf("…and %d more", len(d.FailedRevocations)-digestLines); !strings.Contains(texts[3], want) {
		t.Errorf("failed revocations section does not end with %q", want)
	}
	if strings.Contains(all, "<!channel>") {
		t.Error("user text was not escaped")
	}
	if len(d.TopRequesters) != access.TopRequestersMax || !strings.Contains(all, "*Most requests:*") {
		t.Errorf("top requesters missing: %v", d.TopRequesters)
	}
}

// checkDigestLimits checks Block Kit limits on a rendered message.
func checkDigestLimits(t *testing.T, fallback string, blocks []slack.Block) {
	t.Helper()
	if len(blocks) > limitBlocks {
		t.Errorf("%d blocks, limit %d", len(blocks), limitBlocks)
	}
	if n := utf8.RuneCountInString(fallback); n > limitFallback {
		t.Errorf("fallback %d characters, limit %d", n, limitFallback)
	}
	for i, b := range blocks {
		switch b := b.(type) {
		case *slack.SectionBlock:
			if n := utf8.RuneCountInString(b.Text.Text); n > limitSectionText {
				t.Errorf("block %d: section of %d characters, limit %d", i, n, limitSectionText)
			}
		case *slack.HeaderBlock:
			if n := utf8.RuneCountInString(b.Text.Text); n > limitHeader {
				t.Errorf("block %d: header of %d characters, limit %d", i, n, limitHeader)
			}
		case *slack.ContextBlock:
			for _, e := range b.ContextElements.Elements {
				if tx, ok := e.(*slack.TextBlockObject); ok && utf8.RuneCountInString(tx.Text) > limitContextText {
					t.Errorf("block %d: context of %d characters", i, utf8.RuneCountInString(tx.Text))
				}
			}
		}
	}
}

func blockTexts(t *testing.T, blocks []slack.Block) []string {
	t.Helper()
	var out []string
	for _, b := range blocks {
		switch b := b.(type) {
		case *slack.SectionBlock:
			out = append(out, b.Text.Text)
		case *slack.HeaderBlock:
			out = append(out, b.Text.Text)
		case *slack.ContextBlock:
			out = append(out, b.ContextElements.Elements[0].(*slack.TextBlockObject).Text)
		default:
			out = append(out, "")
		}
	}
	return out
}

// TestPostDigest posts a busy and a quiet digest to the Slack emulator,
// which rejects messages that break Block Kit's limits (invalid_blocks) or
// carry unescaped mentions.
func TestPostDigest(t *testing.T) {
	emu := slackemu.New(slackemu.Options{Clock: slackemu.NewFakeClock(digestTo)})
	t.Cleanup(emu.Close)
	emu.AddChannel(slackemu.Channel{ID: "C0CRMOWN1", Name: "crm-owners", Private: true, BotIsMember: true})
	b := New(Config{AppToken: emu.AppToken(), BotToken: emu.BotToken(), APIURL: emu.APIURL(), Runbook: digestRunbook(),
		Clock: access.ClockFunc(func() time.Time { return digestTo })})
	ctx := context.Background()
	busy := access.BuildDigest("crm", digestFrom, digestTo, busyRequests(5000), digestTo)
	if err := b.PostDigest(ctx, "C0CRMOWN1", busy); err != nil {
		t.Fatalf("busy digest: %v", err)
	}
	if err := b.PostDigest(ctx, "C0CRMOWN1", access.BuildDigest("crm", digestFrom, digestTo, nil, digestTo)); err != nil {
		t.Fatalf("quiet digest: %v", err)
	}
	ms := emu.Messages("C0CRMOWN1")
	if len(ms) != 2 {
		t.Fatalf("%d messages in the owners' channel, want 2", len(ms))
	}
	if !strings.HasPrefix(ms[0].Text, "Access digest for Salesforce CRM: ") || !bytes.Contains(ms[0].Blocks, []byte("Failed revocations")) {
		t.Errorf("busy digest text %q", ms[0].Text)
	}
	if !strings.Contains(ms[1].Text, "Quiet week") {
		t.Errorf("quiet digest text %q", ms[1].Text)
	}
	if err := b.PostDigest(ctx, "C0NOSUCH1", busy); err == nil || !strings.Contains(err.Error(), "post crm digest to C0NOSUCH1") {
		t.Errorf("post to an unknown channel: %v", err)
	}
}
