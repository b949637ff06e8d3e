package audit_test

import (
	"bytes"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/accessbot/accessbot/audit"
	"github.com/google/go-cmp/cmp"
)

// testdata/chain-v1.jsonl was written by the audit code as it stood in
// package store before it moved here (a config record, a request's
// records with HTML characters, a NUL and non-ASCII text in the reason and
// a newline in a note, and a redacted record). Existing audit files and
// stores hold exactly these bytes, so they must keep verifying, and
// sealing the same records must give the same bytes again.
func TestGoldenChain(t *testing.T) {
	golden, err := os.ReadFile("testdata/chain-v1.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	n, err := audit.VerifyChain(audit.ReadJSONLines(bytes.NewReader(golden)))
	if n != 4 || err != nil {
		t.Fatalf("VerifyChain(golden) = %d, %v; want 4, nil", n, err)
	}

	t0 := time.Date(2026, 11, 29, 10, 0, 0, 123456789, time.FixedZone("CET", 3600))
	reason := "ticket <4411> & \"urgent\" — ü\x00x"
	recs := []audit.Record{
		{Time: t0, Event: "config_loaded", Actor: "accessbot", Note: "runbook sha256:abc"},
		{Time: t0.Add(time.Second), Event: "requested", Actor: "U0ALICE01", Subject: "U0ALICE01", System: "crm", Role: "viewer", RequestID: "AR-1001", Reason: reason, Outcome: "pending"},
		{Time: t0.Add(2 * time.Second), Event: "denied", Actor: "U0BOB0001", Subject: "U0ALICE01", System: "crm", Role: "viewer", RequestID: "AR-1001", Reason: reason, Outcome: "denied", Note: "no\nticket"},
		{Time: t0.Add(3 * time.Second), Event: "requested", Actor: "U0DAVE001", Subject: "U0DAVE001", System: "crm", Role: "admin", RequestID: "AR-1002", Reason: "to be redacted", Outcome: "pending", Note: "n"},
	}
	var out []byte
	seq, hash := uint64(0), audit.ZeroHash
	for i := range recs {
		recs[i].Seal(seq, hash)
		seq, hash = recs[i].Seq, recs[i].Hash
		if i == 3 && !recs[i].Redact() {
			t.Fatal("Redact removed nothing")
		}
		out = append(out, recs[i].MarshalLine()...)
	}
	if diff := cmp.Diff(string(golden), string(out)); diff != "" {
		t.Errorf("sealed records differ from the golden chain (-golden +now):\n%s", diff)
	}
	// The config record's note is the bot's own text: never redacted.
	if c := recs[0]; c.Redact() || c.Note == "" {
		t.Errorf("config record redacted: %+v", c)
	}
}

func TestVerifyChainErrors(t *testing.T) {
	golden, err := os.ReadFile("testdata/chain-v1.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	lines := bytes.SplitAfter(golden, []byte("\n"))
	cases := []struct {
		name    string
		input   []byte
		wantN   int
		problem string
	}{
		{"edited actor", bytes.Replace(golden, []byte(`"actor":"U0BOB0001"`), []byte(`"actor":"U0MALLORY"`), 1), 2, "hash mismatch"},
		{"line removed", append(append([]byte{}, lines[0]...), lines[2]...), 1, "seq gap"},
		{"malformed", append(append([]byte{}, lines[0]...), "{not json\n"...), 1, "malformed"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			n, err := audit.VerifyChain(audit.ReadJSONLines(bytes.NewReader(tc.input)))
			var ce *audit.ChainError
			if !errors.As(err, &ce) || !errors.Is(err, audit.ErrChainBroken) {
				t.Fatalf("VerifyChain = %d, %v; want a *ChainError wrapping ErrChainBroken", n, err)
			}
			if n != tc.wantN || ce.Problem != tc.problem {
				t.Errorf("n %d problem %q; want %d %q", n, ce.Problem, tc.wantN, tc.problem)
			}
		})
	}
}
