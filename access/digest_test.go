package access

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// digestReq builds a crm request by replaying events at the given offsets
// from t0 through the transition table.
func digestReq(seq uint64, requester string, t0 time.Time, steps ...any) *Request {
	r := &Request{ID: FormatID(seq), Seq: seq, Requester: requester, System: "crm", Role: "viewer", CreatedAt: t0}
	for i := 0; i < len(steps); i += 2 {
		ev := steps[i].(Event)
		var off time.Duration
		switch v := steps[i+1].(type) {
		case time.Duration:
			off = v
		case int: // an untyped 0
			off = time.Duration(v)
		}
		at := t0.Add(off)
		if err := Apply(r, Transition{Event: ev, Actor: "U0BOB0001", At: at}); err != nil {
			panic(err)
		}
		if ev == EventGranted {
			r.GrantedAt, r.ExpiresAt = at, at.Add(2*time.Hour)
		}
	}
	return r
}

func TestBuildDigest(t *testing.T) {
	from := time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)
	to := from.Add(7 * 24 * time.Hour)
	h := time.Hour
	before := from.Add(-2 * h)

	grantedExpired := digestReq(1, "U0ALICE01", from.Add(h), EventRequested, 0, EventApproved, h, EventGranted, h, EventExpiring, 3*h, EventExpired, 3*h)
	active := digestReq(2, "U0ALICE01", from.Add(2*h), EventRequested, 0, EventApproved, h, EventGranted, h)
	denied := digestReq(3, "U0DAVE001", from.Add(3*h), EventRequested, 0, EventDenied, h)
	timedOut := digestReq(4, "U0DAVE001", from.Add(4*h), EventRequested, 0, EventTimedOut, 24*h)
	waiting := digestReq(5, "U0GRACE01", to.Add(-5*h), EventRequested, 0)
	waitingLong := digestReq(6, "U0GRACE01", before, EventRequested, 0) // asked before the period
	failing := digestReq(7, "U0ALICE01", before, EventRequested, 0, EventApproved, 0, EventGranted, 0, EventExpiring, 2*h+time.Minute, EventRevokeAttemptFailed, 2*h+2*time.Minute)
	failing.Attempts = 1
	retried := digestReq(8, "U0DAVE001", from.Add(5*h), EventRequested, 0, EventApproved, 0, EventGranted, 0, EventRevoking, h, EventRevokeAttemptFailed, h, EventRevoked, 2*h)
	lateRemoval := digestReq(9, "U0DAVE001", before, EventRequested, 0, EventApproved, 0, EventGranted, 0, EventExpiring, 5*h, EventExpired, 5*h)
	lateRemoval.Late = true
	auto := digestReq(10, "U0ALICE01", from.Add(6*h), EventRequested, 0, EventApproved, 0, EventGranted, 0)
	auto.Auto = true
	ext := digestReq(11, "U0ALICE01", from.Add(7*h), EventRequested, 0, EventApproved, 0, EventGranted, 0)
	ext.Extends = "AR-2"
	afterPeriod := digestReq(12, "U0MALLO01", to, EventRequested, 0, EventDenied, 0) // at To: excluded
	oldDone := digestReq(13, "U0MALLO01", before, EventRequested, 0, EventDenied, h)
	other := digestReq(14, "U0MALLO01", from.Add(h), EventRequested, 0, EventDenied, h)
	other.System = "payroll"

	reqs := []*Request{grantedExpired, active, denied, timedOut, waiting, waitingLong, failing, retried, lateRemoval, auto, ext, afterPeriod, oldDone, other}
	d := BuildDigest("crm", from, to, reqs, to)

	ids := func(rs []*Request) []string {
		out := []string{}
		for _, r := range rs {
			out = append(out, r.ID)
		}
		return out
	}
	got := map[string][]string{
		"granted": ids(d.Granted), "denied": ids(d.Denied), "timed_out": ids(d.TimedOut),
		"expired": ids(d.Expired), "revoked": ids(d.Revoked), "auto": ids(d.AutoApproved),
		"extended": ids(d.Extended), "active": ids(d.Active), "waiting": ids(d.Waiting),
		"failed": ids(d.FailedRevocations), "late": ids(d.LateRevocations),
	}
	want := map[string][]string{
		"granted":   {"AR-11", "AR-10", "AR-8", "AR-2", "AR-1"}, // newest first
		"denied":    {"AR-3"},                                   // AR-12 at To and AR-13 before From are outside
		"timed_out": {"AR-4"},
		"expired":   {"AR-1", "AR-9"},
		"revoked":   {"AR-8"},
		"auto":      {"AR-10"},
		"extended":  {"AR-11"},
		"active":    {"AR-2", "AR-10", "AR-11"}, // soonest to end first
		"waiting":   {"AR-6", "AR-5"},           // longest waiting first
		"failed":    {"AR-7"},
		"late":      {"AR-8", "AR-9"}, // removed after retries; removed late after downtime
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("classification (-want +got):\n%s", diff)
	}
	wantTop := []Count{{"U0ALICE01", 4}, {"U0DAVE001", 3}, {"U0GRACE01", 1}}
	if diff := cmp.Diff(wantTop, d.TopRequesters); diff != "" {
		t.Errorf("top requesters (-want +got):\n%s", diff)
	}
	if d.Quiet() {
		t.Error("a busy digest is Quiet")
	}
}

func TestBuildDigestQuiet(t *testing.T) {
	from := time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)
	to := from.Add(7 * 24 * time.Hour)
	old := digestReq(1, "U0ALICE01", from.Add(-48*time.Hour), EventRequested, 0, EventDenied, time.Hour)
	if d := BuildDigest("crm", from, to, []*Request{old}, to); !d.Quiet() {
		t.Errorf("digest with only older activity is not Quiet: %+v", d)
	}
	if d := BuildDigest("crm", from, to, nil, to); !d.Quiet() || d.System != "crm" || !d.From.Equal(from) || !d.To.Equal(to) {
		t.Errorf("empty digest = %+v", d)
	}
}

func TestBuildDigestTopRequestersCapped(t *testing.T) {
	from := time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)
	var reqs []*Request
	for i := range 20 {
		for range i%3 + 1 {
			reqs = append(reqs, digestReq(uint64(len(reqs)+1), fmt.Sprintf("U%08d", i), from.Add(time.Hour), EventRequested, 0))
		}
	}
	d := BuildDigest("crm", from, from.Add(24*time.Hour), reqs, from.Add(24*time.Hour))
	if len(d.TopRequesters) != TopRequestersMax {
		t.Fatalf("%d top requesters, want %d", len(d.TopRequesters), TopRequestersMax)
	}
	for i, c := range d.TopRequesters {
		if c.N != 3 || (i > 0 && c.User < d.TopRequesters[i-1].User) {
			t.Errorf("top requesters %v: want the 3-request people in ID order", d.TopRequesters)
			break
		}
	}
}
