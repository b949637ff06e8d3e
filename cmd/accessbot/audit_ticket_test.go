package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/audit"
	"github.com/accessbot/accessbot/store"
)

// The audit export carries each record's request ticket: from the store
// when it has the request, else from the ticket reference in the audit
// note of the request's first record (an audit file has no requests).
// The ticket is outside the hashed record: an unfiltered JSON Lines export
// with tickets still verifies.
func TestAuditExportTicket(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "audit.jsonl")
	f, err := os.Create(file)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	st, err := store.Open(filepath.Join(dir, "accessbot.db"), store.Options{NoSync: true, AuditMirror: f,
		Clock: access.ClockFunc(func() time.Time { return at })})
	if err != nil {
		t.Fatal(err)
	}
	ticket := &access.Ticket{Ref: "SUP-7", Title: "Refund", URL: "https://acme.atlassian.net/browse/SUP-7", Status: "Open"}
	for _, r := range []*access.Request{
		{Requester: "U0ALICE01", System: "crm", Role: "viewer", Duration: time.Hour, Ticket: ticket, CreatedAt: at, State: access.StatePending,
			History: []access.HistoryEntry{{To: access.StatePending, Event: access.EventRequested, Actor: "U0ALICE01", At: at, Note: "ticket: SUP-7"}}},
		{Requester: "U0DAVE001", System: "crm", Role: "viewer", Duration: time.Hour, CreatedAt: at, State: access.StatePending,
			History: []access.HistoryEntry{{To: access.StatePending, Event: access.EventRequested, Actor: "U0DAVE001", At: at}}},
	} {
		if _, err := st.Create(context.Background(), r); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	cfg := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(cfg, []byte(strings.ReplaceAll(testRunbook, "${STORE_PATH}", filepath.Join(dir, "accessbot.db"))), 0o600); err != nil {
		t.Fatal(err)
	}
	export := func(args ...string) string {
		t.Helper()
		var out, errb bytes.Buffer
		if code := run(append([]string{"audit", "export"}, args...), &out, &errb, func(string) string { return "" }); code != 0 {
			t.Fatalf("audit export %v: exit %d: %s", args, code, errb.String())
		}
		return out.String()
	}
	for _, tc := range []struct {
		src  []string
		want string // the first line's ticket
	}{
		{[]string{"--config", cfg}, `{"ref":"SUP-7","title":"Refund","url":"https://acme.atlassian.net/browse/SUP-7","status":"Open"}`},
		{[]string{"--file", file}, `{"ref":"SUP-7"}`},
	} {
		out := export(append([]string{"--format", "jsonl"}, tc.src...)...)
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) != 2 {
			t.Fatalf("%v: %d lines", tc.src, len(lines))
		}
		var first, second map[string]json.RawMessage
		if err := json.Unmarshal([]byte(lines[0]), &first); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal([]byte(lines[1]), &second); err != nil {
			t.Fatal(err)
		}
		if string(first["ticket"]) != tc.want {
			t.Errorf("%v: ticket %s, want %s", tc.src, first["ticket"], tc.want)
		}
		if _, ok := second["ticket"]; ok {
			t.Errorf("%v: a request without a ticket has one: %s", tc.src, lines[1])
		}
		if n, err := audit.VerifyChain(audit.ReadJSONLines(strings.NewReader(out))); err != nil || n != 2 {
			t.Errorf("%v: export with tickets does not verify: %d, %v", tc.src, n, err)
		}
		rows, err := csv.NewReader(strings.NewReader(export(tc.src...))).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		n := len(auditColumns)
		if rows[0][n-2] != "ticket" || rows[1][n-2] != "SUP-7" || rows[2][n-2] != "" {
			t.Errorf("%v: csv ticket column %q %q %q", tc.src, rows[0][n-2], rows[1][n-2], rows[2][n-2])
		}
		if wantURL := map[bool]string{true: "https://acme.atlassian.net/browse/SUP-7", false: ""}[tc.src[0] == "--config"]; rows[1][n-1] != wantURL {
			t.Errorf("%v: csv ticket_url %q, want %q", tc.src, rows[1][n-1], wantURL)
		}
	}
}
