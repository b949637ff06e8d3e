package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/audit"
	"github.com/accessbot/accessbot/store"
)

// auditColumns is the CSV header of an audit export. ticket and
// ticket_url are the request's ticket (not part of the hashed record):
// they come last, so that the record's own columns keep their places.
var auditColumns = []string{"seq", "time", "event", "actor", "subject", "system", "role", "request_id", "reason", "outcome", "note", "redacted", "reason_hash", "note_hash", "prev_hash", "hash", "ticket", "ticket_url"}

// encodeAudit writes records as "csv" or "jsonl" (one record per line, the
// same lines the audit file holds, so an export of a JSON Lines file
// verifies if it is unfiltered). tickets, if not nil, gives the ticket of
// a record's request: the CSV's ticket columns, and a "ticket" key
// ({"ref", "title", "url", "status"}) appended to the JSON line of a
// record whose request has one. The key is outside the hashed record
// (audit.Record.CanonicalJSON), so such lines still verify.
func encodeAudit(recs []audit.Record, format string, tickets ticketOf) ([]byte, error) {
	if tickets == nil {
		tickets = func(string) *access.Ticket { return nil }
	}
	var buf bytes.Buffer
	switch format {
	case "jsonl", "json":
		for _, r := range recs {
			line := bytes.TrimRight(r.MarshalLine(), "\n")
			if t := tickets(r.RequestID); t != nil && bytes.HasSuffix(line, []byte("}")) {
				tj, err := json.Marshal(t)
				if err != nil {
					return nil, err
				}
				line = append(append(append(line[:len(line)-1:len(line)-1], `,"ticket":`...), tj...), '}')
			}
			buf.Write(line)
			buf.WriteByte('\n')
		}
	case "csv":
		w := csv.NewWriter(&buf)
		_ = w.Write(auditColumns)
		for _, r := range recs {
			var ref, link string
			if t := tickets(r.RequestID); t != nil {
				ref, link = t.Ref, t.URL
			}
			_ = w.Write([]string{strconv.FormatUint(r.Seq, 10), r.Time.UTC().Format(time.RFC3339Nano), r.Event, r.Actor, r.Subject,
				r.System, r.Role, r.RequestID, csvSafe(r.Reason), r.Outcome, csvSafe(r.Note), strconv.FormatBool(r.Redacted),
				r.ReasonHash, r.NoteHash, r.PrevHash, r.Hash, csvSafe(ref), csvSafe(link)})
		}
		w.Flush()
		if err := w.Error(); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("unknown format %q; use csv or jsonl", format)
	}
	return buf.Bytes(), nil
}

// ticketOf returns the ticket of a request by ID, nil when it has none (or
// it is unknown).
type ticketOf func(requestID string) *access.Ticket

// storeTickets reads tickets from the requests in st (each request once),
// falling back to the ticket reference recorded in the audit note of the
// request's first record (notes): a request deleted from the store, or an
// export from an audit file that holds no requests.
func storeTickets(ctx context.Context, get func(ctx context.Context, id string) (*access.Request, error), recs []audit.Record) ticketOf {
	fromNotes := map[string]*access.Ticket{}
	for _, r := range recs {
		if r.Event != string(access.EventRequested) || r.RequestID == "" {
			continue
		}
		if ref := access.TicketFromNote(r.Note); ref != "" {
			fromNotes[r.RequestID] = &access.Ticket{Ref: ref}
		}
	}
	seen := map[string]*access.Ticket{}
	return func(id string) *access.Ticket {
		if id == "" {
			return nil
		}
		if t, ok := seen[id]; ok {
			return t
		}
		var t *access.Ticket
		if get != nil {
			if r, err := get(ctx, id); err == nil && r.Ticket != nil {
				t = r.Ticket
			}
		}
		if t == nil {
			t = fromNotes[id]
		}
		seen[id] = t
		return t
	}
}

// csvSafe defuses spreadsheet formula injection in user-supplied text
// (OWASP "CSV Injection"): a leading =, +, - or @ is prefixed with a quote.
func csvSafe(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

// auditCommand runs `accessbot audit verify FILE` and `accessbot audit export …`.
func auditCommand(args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	return subcommands("audit", args, stdout, stderr, map[string]func([]string) int{
		"verify": func(args []string) int { return auditVerify(args, stdout, stderr) },
		"export": func(args []string) int { return auditExport(args, stdout, stderr, getenv) },
	})
}

// auditVerify is `accessbot audit verify FILE`: exit 0 when the chain of
// a non-empty log is intact, 1 when it is broken or there is nothing to
// verify (an empty file is no evidence of anything), with one line saying
// which.
func auditVerify(args []string, stdout, stderr io.Writer) int {
	fs := newCmdFlags("audit verify", stdout, stderr)
	files, code, done := parseInterleaved(fs, args)
	if done {
		return code
	}
	if len(files) != 1 {
		fmt.Fprintln(stderr, "usage: accessbot audit verify FILE (a JSON Lines audit log, as written by audit.file)")
		return exitBadUse
	}
	args = files
	if info, err := os.Stat(args[0]); err == nil && info.IsDir() {
		fmt.Fprintf(stderr, "accessbot audit verify: %s is a directory; give the audit log file (audit.file)\n", args[0])
		return 1
	}
	f, err := os.Open(args[0])
	if err != nil {
		fmt.Fprintf(stderr, "accessbot audit verify: %v\n", err)
		return 1
	}
	defer f.Close()
	var last audit.Record
	records := func(yield func(audit.Record, error) bool) {
		for rec, err := range audit.ReadJSONLines(f) {
			if err == nil {
				last = rec
			}
			if !yield(rec, err) {
				return
			}
		}
	}
	n, err := audit.VerifyChain(records)
	if err != nil {
		fmt.Fprintf(stderr, "accessbot audit verify: %s: chain broken after %d good record(s): %v\n", args[0], n, err)
		return 1
	}
	if n == 0 {
		fmt.Fprintf(stderr, "accessbot audit verify: %s holds no audit records: there is nothing to verify (a bot that has run writes at least one record per request; is this the right file?)\n", args[0])
		return exitBadUse
	}
	// A chain proves order and integrity, not completeness at the end: a
	// cut-off tail still verifies. Compare the head with a copy kept
	// elsewhere (the store, the Slack audit channel, a SIEM).
	fmt.Fprintf(stdout, "%s: %d record(s), hash chain intact; last record seq %d at %s, hash %s (compare it with a copy kept elsewhere: a chain cannot show records cut from its end)\n",
		args[0], n, last.Seq, last.Time.UTC().Format(time.RFC3339), last.Hash)
	return 0
}

// parseTimeArg accepts RFC 3339, a date (UTC midnight), or a duration back
// from now ("7d").
func parseTimeArg(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse("2006-01-02", s); err == nil {
		return t, nil
	}
	if d, err := access.ParseDuration(s); err == nil {
		return now.Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("%q is not a time: use RFC 3339 (2026-11-29T10:00:00Z), a date (2026-11-29) or a duration back from now (7d)", s)
}

func auditExport(args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	fs := newCmdFlags("audit export", stdout, stderr)
	file := fs.String("file", "", "read a JSON Lines audit file (audit.file)")
	config := fs.String("config", "", "read the store of a stopped bot, found through this config")
	format := fs.String("format", "csv", "csv or jsonl")
	since := fs.String("since", "", "only records at or after this time (RFC 3339, date, or duration back from now)")
	until := fs.String("until", "", "only records before this time")
	system := fs.String("system", "", "only this system")
	person := fs.String("person", "", "only records where this Slack user is the requester or the actor")
	out := fs.String("out", "", "write here instead of standard output")
	if code, done := parseFlags(fs, args); done {
		return code
	}
	now := time.Now()
	from, err := parseTimeArg(*since, now)
	if err == nil {
		var to time.Time
		to, err = parseTimeArg(*until, now)
		if err == nil && !from.IsZero() && !to.IsZero() && !from.Before(to) {
			err = fmt.Errorf("--since %s is not before --until %s: nothing could match", *since, *until)
		}
		if err == nil {
			err = runExport(*file, *config, *format, from, to, *system, *person, *out, stdout, getenv)
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "accessbot audit export: %v\n", err)
		return 1
	}
	return 0
}

func runExport(file, config, format string, from, to time.Time, system, person, out string, stdout io.Writer, getenv func(string) string) error {
	keep := func(r audit.Record) bool {
		return (from.IsZero() || !r.Time.Before(from)) && (to.IsZero() || r.Time.Before(to)) &&
			(system == "" || r.System == system) && (person == "" || r.Subject == person || r.Actor == person)
	}
	var recs []audit.Record
	var get func(context.Context, string) (*access.Request, error)
	switch {
	case file != "" && config != "":
		return errors.New("use either --file or --config, not both")
	case file != "":
		f, err := os.Open(file)
		if err != nil {
			return err
		}
		defer f.Close()
		var all []audit.Record
		for r, err := range audit.ReadJSONLines(f) {
			if err != nil {
				return fmt.Errorf("%s: %w", file, err)
			}
			all = append(all, r)
		}
		// An export of altered records must not pass for evidence: the
		// whole file's chain is checked before anything is written.
		if n, err := audit.VerifyChain(func(yield func(audit.Record, error) bool) {
			for _, r := range all {
				if !yield(r, nil) {
					return
				}
			}
		}); err != nil {
			return fmt.Errorf("%s: the hash chain is broken after %d good record(s) (%v); nothing exported — see accessbot audit verify", file, n, err)
		}
		for _, r := range all {
			if keep(r) {
				recs = append(recs, r)
			}
		}
	default:
		if config == "" {
			config = "config.yaml"
		}
		cfg, err := LoadConfig(config, getenv)
		if err != nil {
			return err
		}
		if _, err := os.Stat(cfg.Store.Path); err != nil {
			// Opening would create an empty store, and an empty export
			// would read as "no activity".
			return fmt.Errorf("no store at %s (store.path of %s): %w", cfg.Store.Path, config, err)
		}
		st, err := store.Open(cfg.Store.Path, store.Options{})
		if err != nil {
			return fmt.Errorf("%w (stop the bot first, or export from audit.file with --file)", err)
		}
		defer st.Close()
		get = st.Get
		err = st.AuditRecords(context.Background(), func(r audit.Record) bool {
			if keep(r) {
				recs = append(recs, r)
			}
			return true
		})
		if err != nil {
			return err
		}
	}
	tickets := storeTickets(context.Background(), get, recs)
	data, err := encodeAudit(recs, format, tickets)
	if err != nil {
		return err
	}
	if out == "" {
		_, err = stdout.Write(data)
		return err
	}
	return os.WriteFile(out, data, 0o600)
}
