package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/audit"
	"github.com/accessbot/accessbot/store"
)

// auditFixture writes five records for two systems and three people,
// a day apart from 2026-11-01, to a store and its mirror file.
func auditFixture(t *testing.T) (dir, file string) {
	t.Helper()
	dir = t.TempDir()
	file = filepath.Join(dir, "audit.jsonl")
	f, err := os.Create(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	day := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	clock := day
	st, err := store.Open(filepath.Join(dir, "accessbot.db"), store.Options{NoSync: true, AuditMirror: f,
		Clock: access.ClockFunc(func() time.Time { return clock })})
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range []audit.Record{
		{Event: "requested", Actor: "U0ALICE01", Subject: "U0ALICE01", System: "crm", Role: "viewer", RequestID: "AR-1001", Reason: "=HYPERLINK(\"x\")"},
		{Event: "approved", Actor: "U0BOB0001", Subject: "U0ALICE01", System: "crm", Role: "viewer", RequestID: "AR-1001"},
		{Event: "requested", Actor: "U0GRACE01", Subject: "U0GRACE01", System: "payroll", Role: "viewer", RequestID: "AR-1002", Reason: "bonus, \"Q4\""},
		{Event: "denied", Actor: "U0HEIDI01", Subject: "U0GRACE01", System: "payroll", Role: "viewer", RequestID: "AR-1002", Note: "use the report"},
		{Event: "expired", Actor: "accessbot", Subject: "U0ALICE01", System: "crm", Role: "viewer", RequestID: "AR-1001"},
	} {
		clock = day.Add(time.Duration(i) * 24 * time.Hour)
		r.Time = clock
		if _, err := st.AppendAudit(context.Background(), r); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	return dir, file
}

func TestAuditExportFilters(t *testing.T) {
	dir, file := auditFixture(t)
	cfg := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(cfg, []byte(strings.ReplaceAll(testRunbook, "${STORE_PATH}", filepath.Join(dir, "accessbot.db"))), 0o600); err != nil {
		t.Fatal(err)
	}
	getenv := func(string) string { return "" }
	export := func(args ...string) string {
		t.Helper()
		var out, errb bytes.Buffer
		if code := run(append([]string{"audit", "export"}, args...), &out, &errb, getenv); code != 0 {
			t.Fatalf("audit export %v: exit %d: %s", args, code, errb.String())
		}
		return out.String()
	}
	ids := func(jsonl string) []string {
		var out []string
		for rec, err := range audit.ReadJSONLines(strings.NewReader(jsonl)) {
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, rec.Event+":"+rec.RequestID)
		}
		return out
	}
	for _, src := range [][]string{{"--file", file}, {"--config", cfg}} {
		for _, tc := range []struct {
			args []string
			want string
		}{
			{nil, "requested:AR-1001 approved:AR-1001 requested:AR-1002 denied:AR-1002 expired:AR-1001"},
			{[]string{"--system", "crm"}, "requested:AR-1001 approved:AR-1001 expired:AR-1001"},
			{[]string{"--person", "U0GRACE01"}, "requested:AR-1002 denied:AR-1002"},
			{[]string{"--person", "U0BOB0001"}, "approved:AR-1001"},
			{[]string{"--since", "2026-11-02", "--until", "2026-11-04"}, "approved:AR-1001 requested:AR-1002"},
			{[]string{"--system", "payroll", "--since", "2026-11-04T00:00:00Z"}, "denied:AR-1002"},
		} {
			got := strings.Join(ids(export(append(append([]string{"--format", "jsonl"}, src...), tc.args...)...)), " ")
			if got != tc.want {
				t.Errorf("%v %v: got %q, want %q", src[0], tc.args, got, tc.want)
			}
		}
	}
	// An unfiltered JSON Lines export is the chain itself and verifies.
	all := export("--format", "jsonl", "--file", file)
	if n, err := audit.VerifyChain(audit.ReadJSONLines(strings.NewReader(all))); err != nil || n != 5 {
		t.Fatalf("unfiltered export: %d records, %v", n, err)
	}
	// CSV: a header, one row per record, formula injection defused.
	rows, err := csv.NewReader(strings.NewReader(export("--file", file, "--system", "crm"))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 4 || strings.Join(rows[0], ",") != strings.Join(auditColumns, ",") {
		t.Fatalf("csv rows %d, header %v", len(rows), rows[0])
	}
	if reason := rows[1][8]; reason != `'=HYPERLINK("x")` {
		t.Errorf("CSV reason %q: a leading = must be defused", reason)
	}
	// Bad input: a clear error, exit 1.
	noStore := filepath.Join(dir, "nostore.yaml")
	if err := os.WriteFile(noStore, []byte(strings.ReplaceAll(testRunbook, "${STORE_PATH}", filepath.Join(dir, "missing.db"))), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"--config", noStore}, {"--since", "2026-11-05", "--until", "2026-11-01", "--file", file}, {"--format", "xml", "--file", file}, {"--since", "yesterday", "--file", file}, {"--file", file, "--config", cfg}, {"--file", filepath.Join(dir, "missing.jsonl")}} {
		var out, errb bytes.Buffer
		if code := run(append([]string{"audit", "export"}, args...), &out, &errb, getenv); code != 1 || errb.Len() == 0 {
			t.Errorf("audit export %v: exit %d, stderr %q", args, code, errb.String())
		}
	}
}

func TestAuditExportDoesNotCreateAStore(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.yaml")
	db := filepath.Join(dir, "never.db")
	if err := os.WriteFile(cfg, []byte(strings.ReplaceAll(testRunbook, "${STORE_PATH}", db)), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	if code := run([]string{"audit", "export", "--config", cfg}, &out, &errb, func(string) string { return "" }); code != 1 {
		t.Fatalf("exit %d", code)
	}
	if _, err := os.Stat(db); err == nil {
		t.Fatal("audit export created a store")
	}
	if !strings.Contains(errb.String(), "no store at") {
		t.Errorf("stderr %q", errb.String())
	}
}

// An altered log is not exported as if it were evidence.
func TestAuditExportRefusesATamperedFile(t *testing.T) {
	_, file := auditFixture(t)
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	altered := strings.Replace(string(data), `"actor":"U0BOB0001"`, `"actor":"U0MALLO01"`, 1)
	if altered == string(data) {
		t.Fatal("fixture has no record to alter")
	}
	if err := os.WriteFile(file, []byte(altered), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	if code := run([]string{"audit", "export", "--file", file}, &out, &errb, func(string) string { return "" }); code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	if out.Len() != 0 || !strings.Contains(errb.String(), "hash chain is broken") {
		t.Fatalf("stdout %q, stderr %q", out.String(), errb.String())
	}
}
