package bot

import (
	"strings"
	"testing"

	"github.com/accessbot/accessbot/access"
)

// behalfAt is request `at(stage)` made by Bob on Alice's behalf: step 1
// (manager, Bob) fell back to the owners.
func behalfAt(stage string) *access.Request {
	r := at(stage)
	r.RequestedBy = "U0BOB0001"
	r.History[0].Actor = "U0BOB0001"
	r.Steps[0] = access.Step{Approvers: []string{"U0CAROL01", "U0ERIN001"}, Min: 1, Sources: "manager", Fallback: "owners"}
	for i := range r.Decisions {
		if r.Decisions[i].Actor == "U0BOB0001" {
			r.Decisions[i].Actor = "U0ERIN001"
		}
	}
	return r
}

func TestOnBehalfMessagesGolden(t *testing.T) {
	v := testView(t)
	for _, tc := range []struct {
		name string
		n    access.Notice
		want []string // in the text
	}{
		{"requester_on_behalf_submitted", access.Notice{Kind: access.NoticeSubmitted, To: "U0ALICE01", Request: behalfAt("pending")},
			[]string{"Requested for <@U0ALICE01> by <@U0BOB0001>.", "Your request *AR-1042*"}},
		{"asker_submitted", access.Notice{Kind: access.NoticeSubmitted, To: "U0BOB0001", Request: behalfAt("pending")},
			[]string{"Request *AR-1042* for <@U0ALICE01>", "waiting for <@U0CAROL01>, <@U0ERIN001>"}},
		{"asker_denied", access.Notice{Kind: access.NoticeDecided, To: "U0BOB0001", Request: behalfAt("denied")},
			[]string{"for <@U0ALICE01>) was *denied* by <@U0ERIN001>"}},
		{"asker_granted", access.Notice{Kind: access.NoticeGranted, To: "U0BOB0001", Request: behalfAt("active")},
			[]string{"<@U0ALICE01> now has"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.n.State = tc.n.Request.State
			text, blocks := RequesterMessage(tc.n, v)
			js := plainJSON(t, blocks)
			for _, w := range tc.want {
				if !strings.Contains(js, w) {
					t.Errorf("lacks %q", w)
				}
			}
			if tc.n.To == "U0BOB0001" && strings.Contains(js, ActionDone) {
				t.Error("the person who asked gets the beneficiary's I'm done")
			}
			checkSafe(t, tc.name, blocks)
			golden(t, tc.name, msg(text, blocks))
		})
	}
	t.Run("approval_on_behalf", func(t *testing.T) {
		text, blocks := ApprovalMessage(behalfAt("pending"), v, "U0CAROL01")
		if !strings.Contains(plainJSON(t, blocks), "*<@U0BOB0001>* asks on behalf of *<@U0ALICE01>*") {
			t.Error("the approver's copy does not name both")
		}
		golden(t, "approval_on_behalf", msg(text, blocks))
	})
	t.Run("owner_grant_failed_on_behalf", func(t *testing.T) {
		r := behalfAt("grant_failed")
		text, blocks := OwnerMessage(access.Notice{Kind: access.NoticeGrantFailed, Request: r, State: r.State, Text: "403"}, v)
		if !strings.Contains(plainJSON(t, blocks), "Requested for <@U0ALICE01> by <@U0BOB0001>.") {
			t.Error("the owners' alert does not name both")
		}
		golden(t, "owner_grant_failed_on_behalf", msg(text, blocks))
	})
}
