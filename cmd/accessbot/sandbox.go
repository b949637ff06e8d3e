package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/audit"
	"github.com/accessbot/accessbot/bot/slackemu"
	"github.com/accessbot/accessbot/bot/slackemu/web"
	"github.com/accessbot/accessbot/connectors/manual"
	"github.com/accessbot/accessbot/connectors/memory"
	"github.com/accessbot/accessbot/store"
)

// sandboxOptions are the sandbox's settings (flags, and what tests set).
type sandboxOptions struct {
	Config string
	Listen string
	Store  string   // bbolt file to keep; "" is a temporary one
	People string   // optional people file
	Live   []string // connectors kept real
	// Start is the simulated time the sandbox starts at (default: now,
	// to the minute). A kept store that has gone further starts there.
	Start time.Time
	// Ready, if set, receives the page's URL once it is served.
	Ready func(url string)
}

// cmdSandbox is `accessbot sandbox`: the whole product in a browser with no
// Slack account (DESIGN.md §1, §8). The real bot, store and scheduler run on
// the user's runbook against the Slack emulator; every connector is a
// recording stand-in unless kept live with --live; a web page shows the
// workspace, moves the simulated clock and lists what the connectors would
// have done. It serves until SIGINT/SIGTERM.
func cmdSandbox(args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	return runSandboxCmd(ctx, args, stdout, stderr, getenv, nil)
}

// runSandboxCmd parses the flags and runs the sandbox until ctx ends.
// tweak, if set, adjusts the options after the flags (tests set Start and
// Ready).
func runSandboxCmd(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string, tweak func(*sandboxOptions)) int {
	fs, config := newFlags("sandbox", stdout, stderr)
	fs.Lookup("config").DefValue = "config.example.yaml"
	_ = fs.Set("config", "config.example.yaml")
	var o sandboxOptions
	fs.StringVar(&o.Listen, "listen", "127.0.0.1:8080", "address of the web page")
	fs.StringVar(&o.Store, "store", "", "keep the sandbox's state in this bbolt file (default: a temporary one)")
	fs.StringVar(&o.People, "people", "", "YAML file naming the runbook's people (see README)")
	fs.Func("live", "keep connector `NAME` real: it reaches its target (repeatable)", func(s string) error {
		o.Live = append(o.Live, s)
		return nil
	})
	if code, done := parseFlags(fs, args); done {
		return code
	}
	o.Config = *config
	if tweak != nil {
		tweak(&o)
	}
	err := runSandbox(ctx, o, stdout, stderr, getenv)
	var ce *ConfigError
	var ie demoInputError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &ce):
		// As validate shows it: every problem, then the warnings.
		for _, p := range ce.Problems {
			fmt.Fprintln(stderr, p.String())
		}
		var sce *sandboxConfigError
		if errors.As(err, &sce) {
			for _, w := range sce.warnings {
				fmt.Fprintln(stderr, "warning: "+w)
			}
		}
		fmt.Fprintf(stderr, "%s: %d problem(s); see above\n", o.Config, len(ce.Problems))
		return exitBadUse
	case errors.As(err, &ie):
		fmt.Fprintf(stderr, "accessbot sandbox: %v\n", err)
		return exitBadUse
	}
	fmt.Fprintf(stderr, "accessbot sandbox: %v\n", err)
	return exitRuntime
}

// sandboxConfigError is a *ConfigError with the warnings validate would
// print beside it.
type sandboxConfigError struct {
	*ConfigError
	warnings []string
}

func (e *sandboxConfigError) Unwrap() error { return e.ConfigError }

// sandboxEnv is the environment the runbook is loaded with: Slack points at
// the emulator, the store and the audit file at the sandbox's own files, and
// the operations port at a free one; everything else is the real
// environment (secrets of --live connectors, ACCESSBOT_ overrides).
func sandboxEnv(emu *slackemu.Server, storePath, auditPath string, getenv func(string) string) func(string) string {
	return func(k string) string {
		switch k {
		case "ACCESSBOT_SLACK_APP_TOKEN":
			return emu.AppToken()
		case "ACCESSBOT_SLACK_BOT_TOKEN":
			return emu.BotToken()
		case "ACCESSBOT_SLACK_API_URL":
			return emu.APIURL()
		case "ACCESSBOT_STORE_PATH":
			return storePath
		case "ACCESSBOT_HTTP_LISTEN":
			return "127.0.0.1:0"
		case "ACCESSBOT_AUDIT_FILE":
			return auditPath
		}
		return getenv(k)
	}
}

func runSandbox(ctx context.Context, o sandboxOptions, stdout, stderr io.Writer, getenv func(string) string) error {
	configPath, err := sandboxConfig(o.Config)
	if err != nil {
		return err
	}
	start := o.Start
	if start.IsZero() {
		start = time.Now().Truncate(time.Minute)
	}
	clock := slackemu.NewFakeClock(start)
	emu := slackemu.New(slackemu.Options{Clock: clock})
	defer emu.Close()

	storePath, auditPath := o.Store, ""
	if storePath == "" {
		dir, err := os.MkdirTemp("", "accessbot-sandbox-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		storePath = filepath.Join(dir, "accessbot.db")
	}
	auditPath = storePath + ".audit.jsonl"

	cfg, warns, err := loadForValidate(configPath, sandboxEnv(emu, storePath, auditPath, getenv))
	if err != nil {
		var ce *ConfigError
		if errors.As(err, &ce) {
			return &sandboxConfigError{ConfigError: ce, warnings: warns}
		}
		return demoInputError{err}
	}
	if err := checkLive(cfg, o.Live); err != nil {
		return err
	}
	people, err := readPeopleFile(o.People)
	if err != nil {
		return demoInputError{err}
	}
	ws := planWorkspace(cfg, people)
	ws.seed(emu)

	rec := &connectorRecorder{clock: clock}
	swapped := map[string]access.Connector{}
	live := map[string]*recordingConnector{}
	for _, name := range sortedKeys(cfg.Connectors) {
		cc := cfg.Connectors[name]
		rc := &recordingConnector{name: name, typ: cc.Type, log: rec, dir: ws}
		switch {
		case slicesContainsString(o.Live, name) || cc.Type == "slack_channel" || cc.Type == "slack_usergroup":
			// Real: built by NewApp as in production, then wrapped in
			// the recorder. The Slack connectors act on the emulated
			// workspace, so they are always real here.
			rc.live = true
			live[name] = rc
			continue
		case cc.Type == "manual":
			rc.inner = manual.Connector{}
		default:
			rc.inner = memory.New()
		}
		swapped[name] = rc
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	app, err := NewApp(cfg, AppOptions{Clock: clock, Connectors: swapped, NoWheelRun: true, Logger: logger,
		WrapConnector: func(name string, c access.Connector) access.Connector {
			if rc, ok := live[name]; ok {
				rc.inner = c
				return rc
			}
			return c
		},
		// Notices inline: when the page moves the clock, what each step
		// causes (the removal DM) is posted before time moves on, so
		// every message carries the time it was really sent at.
		Service: func(c *access.ServiceConfig) { c.InlineDelivery = true }})
	if err != nil {
		return demoInputError{err}
	}
	defer app.Close()
	for name, rc := range live {
		if rc.inner == nil && slicesContainsString(o.Live, name) {
			return demoInputError{fmt.Errorf("--live %s: no system uses this connector", name)}
		}
	}
	// People named by email (accessbot init writes admins and owners so)
	// become the emulated workspace's Slack IDs, as run does before
	// serving: otherwise an owner written as an email would never be
	// asked to approve.
	if err := resolveEmails(ctx, cfg.Runbook, app.Bot); err != nil {
		return fmt.Errorf("look up the people named by email in the sandbox workspace: %w", err)
	}
	// A kept store may have run ahead of the wall clock: time never goes
	// back.
	if last, err := lastAuditTime(ctx, app.Store); err == nil && last.After(clock.Now()) {
		clock.Advance(last.Sub(clock.Now()).Truncate(time.Minute) + time.Minute)
	}

	ln, err := net.Listen("tcp", o.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", o.Listen, err)
	}
	loc := cfg.Runbook.Location
	if loc == nil {
		loc = time.UTC
	}
	sc := &sandboxClock{fc: clock, app: app, loc: loc}
	hosts, exposed := listenHosts(ln.Addr())
	page := web.New(web.Options{Emu: emu, Clock: sc, Connectors: rec, Audit: storeAudit{app.Store},
		Command: cfg.Slack.Command, Title: filepath.Base(configPath), Location: loc, Notes: ws.notes, Hosts: hosts})
	defer page.Close()
	rec.notify = page.Notify

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	runErr := make(chan error, 1)
	go func() { runErr <- app.Run(runCtx) }()
	if err := emu.WaitConnected(1, 10*time.Second); err != nil {
		cancel()
		<-runErr
		return fmt.Errorf("the bot did not connect to the emulator: %w", err)
	}
	// The page is served once the lifecycle has started (deadlines armed,
	// digests' starting points recorded): a stop right after the URL is
	// printed is then a clean one.
	select {
	case <-app.Ready():
	case err := <-runErr:
		return fmt.Errorf("the bot stopped while starting: %w", err)
	case <-ctx.Done():
		cancel()
		<-runErr
		return nil
	}
	srv := &http.Server{Handler: page.Handler(), ReadHeaderTimeout: 5 * time.Second}
	srvErr := make(chan error, 1)
	go func() { srvErr <- srv.Serve(ln) }()
	url := "http://" + pageAddr(ln.Addr()) + "/"
	fmt.Fprintf(stdout, "accessbot sandbox: %s with %d people, the runbook %s; connectors record what they would do", url, len(ws.people), configPath)
	if len(o.Live) > 0 {
		fmt.Fprintf(stdout, " (live: %s)", strings.Join(o.Live, ", "))
	}
	fmt.Fprintf(stdout, ". Stop with Ctrl-C.\n")
	if exposed {
		fmt.Fprintf(stderr, "warning: --listen %s is reachable from other machines, and the sandbox has no login: anyone who can reach it can act as anyone in its workspace and move its clock. Use a loopback address (the default 127.0.0.1:8080) unless you mean to share it.\n", o.Listen)
	}
	for _, w := range warns {
		// Warnings about connectors that are stand-ins here (their
		// secrets, unused ones) do not concern the sandbox.
		if name, ok := connectorOf(w); ok && !slicesContainsString(o.Live, strings.TrimSuffix(strings.Fields(name)[0], ":")) {
			continue
		}
		fmt.Fprintln(stderr, "warning: "+w)
	}
	if o.Ready != nil {
		o.Ready(url)
	}
	select {
	case <-ctx.Done():
	case err = <-srvErr:
	case err = <-runErr:
		runErr <- err
	}
	page.Close()
	sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer scancel()
	_ = srv.Shutdown(sctx)
	cancel()
	if rerr := <-runErr; err == nil && rerr != nil {
		err = rerr
	}
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// listenHosts are the host names requests to the page may name besides
// localhost and the loopback addresses (web.Options.Hosts), for a page
// listening on addr; exposed is true when addr is not a loopback address.
// A wildcard address (0.0.0.0, ::) is reached by this machine's name or
// any of its addresses, so those are allowed; a specific address only by
// itself.
func listenHosts(addr net.Addr) (hosts []string, exposed bool) {
	ta, ok := addr.(*net.TCPAddr)
	if !ok || ta.IP.IsLoopback() {
		return nil, false
	}
	if !ta.IP.IsUnspecified() {
		return []string{ta.IP.String()}, true
	}
	if name, err := os.Hostname(); err == nil && name != "" {
		hosts = append(hosts, name)
	}
	if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok && !ipn.IP.IsLoopback() {
				hosts = append(hosts, ipn.IP.String())
			}
		}
	}
	return hosts, true
}

// pageAddr is the host:port to print for the page: a wildcard listen
// address is shown as 127.0.0.1, which a browser can open.
func pageAddr(addr net.Addr) string {
	if ta, ok := addr.(*net.TCPAddr); ok && ta.IP.IsUnspecified() {
		return net.JoinHostPort("127.0.0.1", fmt.Sprint(ta.Port))
	}
	return addr.String()
}

// sandboxConfig finds the runbook: the given path, or for the default the
// example shipped beside the binary in the container image.
func sandboxConfig(path string) (string, error) {
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	if path == "config.example.yaml" {
		return demoConfig(path)
	}
	return "", demoInputError{fmt.Errorf("%s: no such file; give your runbook with --config FILE", path)}
}

func slicesContainsString(xs []string, x string) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

// checkLive refuses --live names that are not connectors some system uses,
// or whose secrets or ${VAR}s are missing (a live connector reaches its
// target for real).
func checkLive(cfg *Config, live []string) error {
	used := cfg.usedConnectors()
	ce := &ConfigError{}
	for _, name := range live {
		if _, ok := cfg.Connectors[name]; !ok {
			return demoInputError{fmt.Errorf("--live %s: the runbook has no connector %q; connectors: %s", name, name, strings.Join(sortedKeys(cfg.Connectors), ", "))}
		}
		if !used[name] {
			return demoInputError{fmt.Errorf("--live %s: no system uses this connector", name)}
		}
		for _, p := range cfg.MissingSecrets {
			if n, ok := connectorOf(p); ok && n == name {
				msg := cfg.missingSecretMessage(p) + "; a --live connector reaches its target and needs it"
				if fp, ok := cfg.missingFile[p]; ok {
					msg = fp.Message
				}
				ce.Problems = append(ce.Problems, Problem{Path: p, Message: msg})
			}
		}
		for _, p := range cfg.UnsetVars {
			if n, ok := connectorOf(p.Path); ok && n == name {
				ce.Problems = append(ce.Problems, p)
			}
		}
	}
	if len(ce.Problems) > 0 {
		return &sandboxConfigError{ConfigError: ce}
	}
	return nil
}

func lastAuditTime(ctx context.Context, st *store.Store) (time.Time, error) {
	var last time.Time
	err := st.AuditRecords(ctx, func(rec audit.Record) bool {
		if rec.Time.After(last) {
			last = rec.Time
		}
		return true
	})
	return last, err
}

// ---- the clock ----

// sandboxClock moves the simulated time for the page: to each deadline in
// the store's index and each digest run on the way, in order, running what
// is due at each (the reconcile pass and the digest pass, as the timer
// wheel and the periodic loop would), so that an expiry warning comes
// before the expiry it warns of even when the page jumps a whole day.
type sandboxClock struct {
	fc  *slackemu.FakeClock
	app *App
	loc *time.Location
	mu  sync.Mutex
}

var _ web.Clock = (*sandboxClock)(nil)

func (c *sandboxClock) Now() time.Time { return c.fc.Now() }

// maxSteps bounds one Advance: a revoke that keeps failing is retried
// with backoff, and a day of retries must not spin forever.
const maxSteps = 500

func (c *sandboxClock) Advance(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return fmt.Errorf("the clock only moves forward")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	target := c.fc.Now().Add(d)
	for i := 0; i < maxSteps; i++ {
		due, ok := c.nextDue(ctx)
		if !ok || due.At.After(target) {
			break
		}
		if step := due.At.Sub(c.fc.Now()); step > 0 {
			c.fc.Advance(step)
		}
		if err := c.runDue(ctx); err != nil {
			return err
		}
		if !c.fc.Now().Before(target) {
			break
		}
		if next, ok := c.nextDue(ctx); ok && !next.At.After(c.fc.Now()) {
			// Still due after the pass (a retry at once, or work on the
			// workers): move on by the smallest step so time advances.
			c.fc.Advance(time.Second)
		}
	}
	if step := target.Sub(c.fc.Now()); step > 0 {
		c.fc.Advance(step)
	}
	return c.runDue(ctx)
}

func (c *sandboxClock) runDue(ctx context.Context) error {
	if err := c.app.Service.Reconcile(ctx); err != nil {
		return fmt.Errorf("reconcile: %w", err)
	}
	if err := c.app.RunDigests(ctx); err != nil {
		return fmt.Errorf("digests: %w", err)
	}
	return nil
}

func (c *sandboxClock) NextDue(ctx context.Context) (web.Due, bool) { return c.nextDue(ctx) }

// nextDue is the earliest of the first deadline in the store's index and
// the next digest run.
func (c *sandboxClock) nextDue(ctx context.Context) (web.Due, bool) {
	now := c.fc.Now()
	var best web.Due
	found := false
	_ = c.app.Store.Deadlines(ctx, func(d access.Due) bool {
		best, found = web.Due{At: d.At, What: d.ID + ": " + c.deadlineKind(ctx, d)}, true
		return false
	})
	rb := c.app.Config.Runbook
	for _, id := range rb.SystemIDs() {
		sys := rb.Systems[id]
		if sys.Channel == "" || sys.Digest == "" {
			continue
		}
		sch, err := access.ParseSchedule(sys.Digest)
		if err != nil || sch.Off {
			continue
		}
		if at := sch.Next(now, c.loc); !found || at.Before(best.At) {
			best, found = web.Due{At: at, What: "digest for " + sys.DisplayName()}, true
		}
	}
	return best, found
}

// deadlineKind names which of a request's deadlines is next.
func (c *sandboxClock) deadlineKind(ctx context.Context, d access.Due) string {
	r, err := c.app.Store.Get(ctx, d.ID)
	if err != nil {
		return "due"
	}
	at := r.NextDeadline()
	switch {
	case r.State == access.StatePending && at.Equal(r.RemindAt):
		return "reminder to approvers"
	case r.State == access.StatePending:
		return "approval times out"
	case r.State == access.StateActive && at.Equal(r.WarnAt):
		return "expiry warning"
	case r.State == access.StateActive:
		return "expiry"
	case r.State == access.StateApproved && at.Equal(r.ConfirmAt):
		return "reminder of the manual grant"
	case r.State == access.StateApproved:
		return "grant retry"
	case r.State == access.StateRevoking && at.Equal(r.ConfirmAt):
		return "reminder of the manual removal"
	case r.State == access.StateRevoking:
		return "revoke retry"
	}
	return "due"
}

// ---- connectors ----

// connectorRecorder is the log of every call the connectors received.
type connectorRecorder struct {
	clock  access.Clock
	mu     sync.Mutex
	calls  []web.ConnectorCall
	notify func()
}

var _ web.ConnectorLog = (*connectorRecorder)(nil)

func (r *connectorRecorder) ConnectorCalls() []web.ConnectorCall {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]web.ConnectorCall(nil), r.calls...)
}

func (r *connectorRecorder) add(c web.ConnectorCall) {
	r.mu.Lock()
	r.calls = append(r.calls, c)
	notify := r.notify
	r.mu.Unlock()
	if notify != nil {
		notify()
	}
}

// recordingConnector stands in for a connector: it records each call for
// the page and hands it to inner — a memory connector (dry run: it keeps
// membership in memory and answers like a target), the manual connector
// (owners get their task), or the real connector when kept live.
type recordingConnector struct {
	name, typ string
	live      bool
	inner     access.Connector
	log       *connectorRecorder
	dir       *workspace
}

var _ access.Connector = (*recordingConnector)(nil)

func (c *recordingConnector) call(g access.Grant, op string) web.ConnectorCall {
	return web.ConnectorCall{At: c.log.clock.Now(), Connector: c.name, Type: c.typ, Op: op, Rollback: g.Rollback, Request: g.ID,
		System: g.System, Role: g.Role, Person: personText(g.User), Params: g.Params, Live: c.live}
}

func personText(p access.Person) string {
	s := p.Name
	if p.Email != "" {
		s += " <" + p.Email + ">"
	}
	if s == "" {
		s = p.SlackID
	}
	return strings.TrimSpace(s)
}

func (c *recordingConnector) Grant(ctx context.Context, g access.Grant) (access.Receipt, error) {
	call := c.call(g, "grant")
	if c.inner == nil {
		err := access.PermanentError(fmt.Errorf("connector %s was not built", c.name))
		call.Result = err.Error()
		c.log.add(call)
		return access.Receipt{}, err
	}
	rcpt, err := c.inner.Grant(ctx, g)
	if err == nil && !c.live && c.typ != "manual" {
		// What a target would answer: the identity it acted on.
		rcpt = access.Receipt{UserID: "dryrun-" + strings.ToLower(g.User.SlackID), Note: "dry run: membership created"}
	}
	call.Receipt = receiptText(rcpt)
	call.Result = resultText(err)
	c.log.add(call)
	return rcpt, err
}

func (c *recordingConnector) Revoke(ctx context.Context, g access.Grant) error {
	call := c.call(g, "revoke")
	if g.Receipt != nil {
		call.Receipt = "acting on " + receiptText(*g.Receipt)
	}
	if c.inner == nil {
		err := access.PermanentError(fmt.Errorf("connector %s was not built", c.name))
		call.Result = err.Error()
		c.log.add(call)
		return err
	}
	err := c.inner.Revoke(ctx, g)
	call.Result = resultText(err)
	c.log.add(call)
	return err
}

func receiptText(r access.Receipt) string {
	var parts []string
	if r.UserID != "" {
		parts = append(parts, "user "+r.UserID)
	}
	if r.PreExisting {
		parts = append(parts, "already had it")
	}
	if r.Previous != "" {
		parts = append(parts, "previous "+r.Previous)
	}
	if !r.Backstop.IsZero() {
		parts = append(parts, "target-side expiry "+r.Backstop.UTC().Format(time.RFC3339))
	}
	if len(r.Data) > 0 {
		parts = append(parts, string(r.Data))
	}
	if r.Note != "" {
		parts = append(parts, r.Note)
	}
	return strings.Join(parts, "; ")
}

func resultText(err error) string {
	switch {
	case err == nil:
		return "done"
	case errors.Is(err, access.ErrAwaitingConfirmation):
		return "awaiting an owner's Done (manual task posted)"
	}
	return "failed: " + err.Error()
}

// ---- audit ----

// storeAudit reads the store's audit log for the page.
type storeAudit struct{ st *store.Store }

var _ web.AuditLog = storeAudit{}

func (a storeAudit) AuditRecords(ctx context.Context) ([]web.AuditRecord, error) {
	var out []web.AuditRecord
	err := a.st.AuditRecords(ctx, func(rec audit.Record) bool {
		note := rec.Note
		if rec.Outcome != "" {
			note = strings.TrimSpace("→ " + rec.Outcome + " " + note)
		}
		if rec.Reason != "" {
			note = strings.TrimSpace(note + " · reason: " + rec.Reason)
		}
		out = append(out, web.AuditRecord{Seq: int64(rec.Seq), Time: rec.Time, Event: rec.Event, Actor: rec.Actor,
			Request: rec.RequestID, System: rec.System, Role: rec.Role, Note: note})
		return true
	})
	return out, err
}

func (a storeAudit) VerifyAudit(ctx context.Context) (int, error) { return a.st.VerifyAudit(ctx) }

// ---- people ----

// peopleFile is the --people file: who the runbook's IDs and emails are.
//
//	people:
//	  U0ALICE01: { name: Alice, email: alice@example.com }
//	  U0GRACE01: { name: Grace, usergroups: [S0HRTEAM1], manager: U0HEIDI01 }
//	  zoe@example.com: { name: Zoe }
//	channels:
//	  C0CRMOWN1: crm-owners
type peopleFile struct {
	People   map[string]personEntry `yaml:"people"`
	Channels map[string]string      `yaml:"channels"`
}

type personEntry struct {
	Name       string   `yaml:"name"`
	Email      string   `yaml:"email"`
	Usergroups []string `yaml:"usergroups"`
	// Manager is the person's manager (ID or email), written to the
	// runbook's directory.managers.slack_profile_field when it has one.
	Manager string `yaml:"manager"`
	Title   string `yaml:"title"`
}

func readPeopleFile(path string) (*peopleFile, error) {
	pf := &peopleFile{}
	if path == "" {
		return pf, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("--people: %w", err)
	}
	defer f.Close()
	dec := yaml.NewDecoder(f)
	dec.KnownFields(true)
	if err := dec.Decode(pf); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("--people %s: %w (expected people: {U…|email: {name, email, usergroups, manager, title}}, channels: {C…: name})", path, err)
	}
	for k := range pf.People {
		if !isUserID(k) && !strings.Contains(k, "@") {
			return nil, fmt.Errorf("--people %s: people.%s: use a Slack user ID (U…/W…) or an email as the key", path, k)
		}
	}
	return pf, nil
}

var userIDRE = regexp.MustCompile(`^[UW][A-Z0-9]{2,}$`)

func isUserID(s string) bool { return userIDRE.MatchString(s) }

// exampleGroups are the members of config.example.yaml's user groups,
// which the runbook itself cannot say (the demo seeds the same).
var exampleGroups = map[string][]string{"S0HRTEAM1": {"U0GRACE01", "U0HEIDI01"}, "S0MKTTEAM": {"U0MALLO01", "U0PEGGY01"}}

// workspace is the emulated Slack the sandbox seeds: everyone the runbook
// names, with readable names, and its channels and user groups.
type workspace struct {
	people   map[string]*slackemu.User // by ID
	notes    map[string]string         // by ID: what the runbook makes them
	channels map[string]*slackemu.Channel
	groups   map[string]*slackemu.UserGroup
}

// planWorkspace works out the people, channels and groups of the runbook.
// Names come from the people file, else the example's names, else the
// email's local part, else the ID when it spells a name (U0ALICE01), else
// what the runbook makes the person ("crm owner 2"): never a raw ID.
func planWorkspace(cfg *Config, pf *peopleFile) *workspace {
	rb := cfg.Runbook
	ws := &workspace{people: map[string]*slackemu.User{}, notes: map[string]string{},
		channels: map[string]*slackemu.Channel{}, groups: map[string]*slackemu.UserGroup{}}
	roles := map[string][]string{} // ref (ID or email) → what they are
	var order []string
	note := func(ref, what string) {
		ref = strings.TrimSpace(ref)
		if ref == "" {
			return
		}
		if _, ok := roles[ref]; !ok {
			order = append(order, ref)
			roles[ref] = nil
		}
		if what != "" && !slicesContainsString(roles[ref], what) {
			roles[ref] = append(roles[ref], what)
		}
	}
	for _, a := range rb.Admins {
		note(a, "admin")
	}
	for _, id := range rb.SystemIDs() {
		for _, o := range rb.Systems[id].Owners {
			note(o, id+" owner")
		}
	}
	teams := sortedKeys(rb.Teams)
	for _, t := range teams {
		for _, m := range rb.Teams[t].Members {
			note(m, t)
		}
	}
	managerOf := map[string][]string{} // manager ref → requester refs
	for _, req := range sortedKeys(rb.Managers.Static) {
		note(req, "")
		m := rb.Managers.Static[req]
		note(m, "")
		managerOf[m] = append(managerOf[m], req)
	}
	for _, id := range rb.SystemIDs() {
		sys := rb.Systems[id]
		for _, rid := range sys.RoleIDs() {
			role := sys.Roles[rid]
			for _, p := range role.Requesters {
				if p.Kind == access.SourceUser {
					note(p.Ref, "may request "+id)
				}
			}
			for _, st := range role.Approval.Steps {
				for _, src := range st.Sources {
					if src.Kind == access.SourceUser {
						note(src.Ref, id+" approver")
					}
				}
			}
		}
	}
	// People only the people file names (user group members).
	for _, k := range sortedKeys(pf.People) {
		note(k, "")
	}
	groupMembers := map[string][]string{}
	for _, k := range sortedKeys(pf.People) {
		for _, g := range pf.People[k].Usergroups {
			groupMembers[g] = append(groupMembers[g], k)
		}
	}
	usedGroups := map[string]string{} // SID → what it is
	for _, t := range teams {
		if g := rb.Teams[t].Usergroup; g != "" {
			usedGroups[g] = t
		}
	}
	for _, id := range rb.SystemIDs() {
		sys := rb.Systems[id]
		for _, rid := range sys.RoleIDs() {
			role := sys.Roles[rid]
			for _, p := range role.Requesters {
				if p.Kind == access.SourceUsergroup {
					usedGroups[p.Ref] = strings.ToLower(p.Ref)
				}
			}
			for _, st := range role.Approval.Steps {
				for _, src := range st.Sources {
					if src.Kind == access.SourceUsergroup {
						usedGroups[src.Ref] = strings.ToLower(src.Ref)
					}
				}
			}
			if cc, ok := cfg.Connectors[sys.Connector]; ok && cc.Type == "slack_usergroup" && role.Grant["usergroup"] != "" {
				usedGroups[role.Grant["usergroup"]] = id + "-" + rid
			}
			if cc, ok := cfg.Connectors[sys.Connector]; ok && cc.Type == "slack_channel" && role.Grant["channel"] != "" {
				ws.addChannel(role.Grant["channel"], id+"-"+rid, nil, pf)
			}
		}
	}
	if len(pf.People) == 0 {
		for g := range usedGroups {
			for _, m := range exampleGroups[g] {
				groupMembers[g] = append(groupMembers[g], m)
				note(m, "")
			}
		}
	}
	for g, members := range groupMembers {
		for _, m := range members {
			if t, ok := usedGroups[g]; ok {
				note(m, t)
			}
		}
	}

	// Resolve refs to users: IDs first, then emails (an email an ID
	// person already has is that person).
	byEmail := map[string]string{}
	refID := map[string]string{}
	taken := map[string]int{}
	uniqueName := func(n string) string {
		taken[n]++
		if taken[n] == 1 {
			return n
		}
		return fmt.Sprintf("%s %d", n, taken[n])
	}
	for _, ref := range order {
		if !isUserID(ref) {
			continue
		}
		e := pf.People[ref]
		name := e.Name
		if f := strings.Fields(demoNames[ref]); name == "" && len(f) > 0 {
			name = f[0] // "Ada (admin)" → Ada
		}
		email := e.Email
		if name == "" && email != "" {
			name = nameFromEmail(email)
		}
		if name == "" {
			name = nameFromID(ref)
		}
		if name == "" {
			name = nameFromRoles(roles[ref], managerOf[ref] != nil)
		}
		name = uniqueName(name)
		if email == "" {
			email = strings.ToLower(strings.ReplaceAll(name, " ", ".")) + "@example.com"
		}
		ws.people[ref] = &slackemu.User{ID: ref, Name: strings.ToLower(strings.Fields(name)[0]), RealName: name, Email: email, TZ: tzName(rb)}
		byEmail[strings.ToLower(email)] = ref
		refID[ref] = ref
	}
	for _, ref := range order {
		if isUserID(ref) {
			continue
		}
		email := strings.ToLower(ref)
		if id, ok := byEmail[email]; ok {
			refID[ref] = id
			continue
		}
		e := pf.People[ref]
		name := e.Name
		if name == "" {
			name = nameFromEmail(email)
		}
		name = uniqueName(name)
		sum := sha256.Sum256([]byte(email))
		id := "U0" + strings.ToUpper(hex.EncodeToString(sum[:]))[:8]
		ws.people[id] = &slackemu.User{ID: id, Name: strings.ToLower(strings.Fields(name)[0]), RealName: name, Email: email, TZ: tzName(rb)}
		byEmail[email] = id
		refID[ref] = id
	}
	for ref, rs := range roles {
		id := refID[ref]
		for _, r := range rs {
			if !slicesContainsString(strings.Split(ws.notes[id], ", "), r) {
				ws.notes[id] = strings.TrimPrefix(ws.notes[id]+", "+r, ", ")
			}
		}
	}
	for m, reqs := range managerOf {
		var names []string
		for _, r := range reqs {
			if u := ws.people[refID[r]]; u != nil {
				names = append(names, u.RealName)
			}
		}
		sort.Strings(names)
		if id := refID[m]; id != "" && len(names) > 0 {
			ws.notes[id] = strings.TrimPrefix(ws.notes[id]+", manager of "+strings.Join(names, " and "), ", ")
		}
	}
	// Managers by profile field, from the people file.
	if f := rb.Managers.ProfileField; f != "" {
		for ref, e := range pf.People {
			if e.Manager == "" {
				continue
			}
			if u := ws.people[refID[ref]]; u != nil {
				u.Fields = map[string]string{f: refID[e.Manager]}
				if refID[e.Manager] == "" {
					u.Fields[f] = e.Manager
				}
			}
		}
	}
	for ref, e := range pf.People {
		if u := ws.people[refID[ref]]; u != nil && e.Title != "" {
			ws.notes[u.ID] = strings.TrimPrefix(e.Title+", "+ws.notes[u.ID], ", ")
			ws.notes[u.ID] = strings.TrimSuffix(ws.notes[u.ID], ", ")
		}
	}
	for _, id := range sortedKeys(ws.notes) {
		if ws.people[id] == nil {
			delete(ws.notes, id)
		}
	}
	for g, what := range usedGroups {
		var ids []string
		for _, m := range groupMembers[g] {
			if id := refID[m]; id != "" && !slicesContainsString(ids, id) {
				ids = append(ids, id)
			}
		}
		sort.Strings(ids)
		ws.groups[g] = &slackemu.UserGroup{ID: g, Handle: strings.ToLower(what), Name: what, Members: ids}
	}

	// Channels: the audit channel (admins are in it) and the owners'
	// channels (owners are in them).
	if c := rb.AuditChannel; c != "" {
		ws.addChannel(c, "access-audit", rb.Admins, pf)
	}
	for _, id := range rb.SystemIDs() {
		sys := rb.Systems[id]
		if sys.Channel == "" {
			continue
		}
		var owners []string
		for _, o := range sys.Owners {
			owners = append(owners, refID[o])
		}
		ws.addChannel(sys.Channel, id+"-owners", owners, pf)
	}
	return ws
}

func (ws *workspace) addChannel(id, name string, members []string, pf *peopleFile) {
	if n := pf.Channels[id]; n != "" {
		name = n
	} else if n := demoChannels[id]; n != "" {
		name = n
	}
	c, ok := ws.channels[id]
	if !ok {
		c = &slackemu.Channel{ID: id, Name: name, Private: true, BotIsMember: true}
		ws.channels[id] = c
	}
	for _, m := range members {
		if m != "" && !slicesContainsString(c.Members, m) {
			c.Members = append(c.Members, m)
		}
	}
}

func (ws *workspace) seed(emu *slackemu.Server) {
	for _, id := range sortedKeys(ws.people) {
		emu.AddUser(*ws.people[id])
	}
	for _, id := range sortedKeys(ws.groups) {
		emu.AddUserGroup(*ws.groups[id])
	}
	for _, id := range sortedKeys(ws.channels) {
		emu.AddChannel(*ws.channels[id])
	}
}

func tzName(rb *access.Runbook) string {
	if rb.Location != nil {
		return rb.Location.String()
	}
	return "UTC"
}

// nameFromEmail: jane.doe@example.com → "Jane Doe".
func nameFromEmail(email string) string {
	local, _, _ := strings.Cut(email, "@")
	local = strings.TrimRight(local, "0123456789")
	var words []string
	for _, w := range strings.FieldsFunc(local, func(r rune) bool { return r == '.' || r == '_' || r == '-' || r == '+' }) {
		words = append(words, strings.ToUpper(w[:1])+strings.ToLower(w[1:]))
	}
	if len(words) == 0 {
		return email
	}
	return strings.Join(words, " ")
}

var spelledID = regexp.MustCompile(`^[UW]0([A-Z]{3,})[0-9]*$`)

// nameFromID: U0ALICE01 → "Alice"; "" when the ID does not spell a word
// (real Slack IDs mix letters and digits).
func nameFromID(id string) string {
	m := spelledID.FindStringSubmatch(id)
	if m == nil || !strings.ContainsAny(m[1], "AEIOUY") {
		return ""
	}
	return m[1][:1] + strings.ToLower(m[1][1:])
}

// nameFromRoles: ["crm owner"] → "Crm owner".
func nameFromRoles(roles []string, manager bool) string {
	r := "person"
	if manager {
		r = "manager"
	}
	for _, x := range roles {
		if x != "" {
			r = x
			break
		}
	}
	if r == "admin" || r == "manager" || r == "person" || strings.HasSuffix(r, "owner") || strings.HasSuffix(r, "approver") || strings.HasPrefix(r, "may request") {
		return strings.ToUpper(r[:1]) + r[1:]
	}
	return strings.ToUpper(r[:1]) + r[1:] + " member"
}
