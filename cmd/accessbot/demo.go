package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/bot/slackemu"
	"github.com/accessbot/accessbot/connectors/manual"
	"github.com/accessbot/accessbot/connectors/memory"
)

// demoNames gives the example runbook's people readable names.
var demoNames = map[string]string{
	"U0ADMIN01": "Ada (admin)", "U0ALICE01": "Alice", "U0BOB0001": "Bob", "U0CAROL01": "Carol", "U0DAVE001": "Dave",
	"U0ERIN001": "Erin", "U0FRANK01": "Frank", "U0GRACE01": "Grace", "U0HEIDI01": "Heidi", "U0MALLO01": "Mallory",
	"U0OSCAR01": "Oscar", "U0PEGGY01": "Peggy",
}

// demoChannels names the example runbook's channels.
var demoChannels = map[string]string{"C0AUDIT01": "access-audit", "C0CRMOWN1": "crm-owners", "C0ANALYT1": "analytics-owners"}

// cmdDemo runs the main job with no Slack account: the built-in Slack
// emulator plus the bot with config.example.yaml, connectors that reach
// real services swapped for local ones, and a scripted story on a
// simulated clock, printed as people would see it (DESIGN.md §1).
func cmdDemo(args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	fs, config := newFlags("demo", stdout, stderr)
	fs.Lookup("config").DefValue = "config.example.yaml"
	_ = fs.Set("config", "config.example.yaml")
	if code, done := parseFlags(fs, args); done {
		return code
	}
	if err := runDemo(*config, stdout, getenv); err != nil {
		var ce *ConfigError
		var ue demoInputError
		switch {
		case errors.As(err, &ce):
			for _, p := range ce.Problems {
				fmt.Fprintln(stderr, p.String())
			}
			fmt.Fprintf(stderr, "accessbot demo: %s: %d problem(s); see above\n", *config, len(ce.Problems))
			return exitBadUse
		case errors.As(err, &ue):
			fmt.Fprintf(stderr, "accessbot demo: %v\n", err)
			return exitBadUse
		}
		fmt.Fprintf(stderr, "accessbot demo: %v\n", err)
		return exitRuntime
	}
	return exitOK
}

// demoInputError is a demo failure caused by its input (exit 1).
type demoInputError struct{ error }

// demoConfig finds the runbook the demo plays: the given path, or the
// example shipped beside the binary in the container image.
func demoConfig(path string) (string, error) {
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	if path == "config.example.yaml" {
		const shipped = "/usr/share/accessbot/config.example.yaml"
		if _, err := os.Stat(shipped); err == nil {
			return shipped, nil
		}
	}
	return "", demoInputError{fmt.Errorf("%s not found: run the demo from the repository root, or give the runbook with --config FILE (the demo's story expects the people and systems of config.example.yaml)", path)}
}

func runDemo(configPath string, out io.Writer, getenv func(string) string) error {
	berlin, _ := time.LoadLocation("Europe/Berlin")
	clock := slackemu.NewFakeClock(time.Date(2026, 11, 30, 9, 0, 0, 0, berlin))
	emu := slackemu.New(slackemu.Options{Clock: clock})
	defer emu.Close()
	dir, err := os.MkdirTemp("", "accessbot-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	configPath, err = demoConfig(configPath)
	if err != nil {
		return err
	}
	auditFile := getenv("ACCESSBOT_AUDIT_FILE")
	if auditFile == "" {
		auditFile = filepath.Join(dir, "audit.jsonl")
	} else if info, err := os.Stat(auditFile); err == nil && info.Size() > 0 {
		return demoInputError{fmt.Errorf("ACCESSBOT_AUDIT_FILE %s already holds records; the demo starts a new audit chain, so give it a new file (or remove that one)", auditFile)}
	}
	env := func(k string) string {
		switch k {
		case "ACCESSBOT_SLACK_APP_TOKEN":
			return emu.AppToken()
		case "ACCESSBOT_SLACK_BOT_TOKEN":
			return emu.BotToken()
		case "ACCESSBOT_SLACK_API_URL":
			return emu.APIURL()
		case "ACCESSBOT_STORE_PATH":
			return filepath.Join(dir, "accessbot.db")
		case "ACCESSBOT_HTTP_LISTEN":
			return "127.0.0.1:0"
		case "ACCESSBOT_AUDIT_FILE":
			return auditFile
		}
		if strings.HasPrefix(k, "ACCESSBOT_") {
			return ""
		}
		if v := getenv(k); v != "" {
			return v
		}
		if k == "WEBHOOK_SECRET" {
			return "whsec_ZGVtby1zZWNyZXQtbm90LXVzZWQ="
		}
		return "demo-secret-not-used" // connectors that need it are swapped below
	}
	cfg, err := LoadConfig(configPath, env)
	if err != nil {
		return err
	}
	seedDemoWorkspace(emu, cfg)

	tr := &transcript{out: out, emu: emu, seen: map[string]int{}, clock: clock, loc: cfg.Runbook.Location}
	swapped := map[string]access.Connector{}
	for name, cc := range cfg.Connectors {
		if cc.Type == "manual" {
			swapped[name] = manual.Connector{}
			continue
		}
		swapped[name] = &demoConnector{name: name, typ: cc.Type, mem: memory.New(), tr: tr}
	}
	app, err := NewApp(cfg, AppOptions{Clock: clock, Connectors: swapped, NoWheelRun: true})
	if err != nil {
		return err
	}
	// The story is written for config.example.yaml (DESIGN.md §1): a
	// runbook it does not fit is refused before anything is told, not
	// half-played.
	if err := demoFits(context.Background(), cfg, app, clock.Now()); err != nil {
		app.Close()
		return demoInputError{fmt.Errorf("%s does not fit the demo's story, which is written for config.example.yaml (%s): %w. To try your own runbook, use accessbot sandbox --config %s: the real bot on it, in a Slack-like page in your browser", configPath, demoStory, err, configPath)}
	}
	ctx, cancel := context.WithCancel(context.Background())
	runErr := make(chan error, 1)
	go func() { runErr <- app.Run(ctx) }()
	defer func() {
		cancel()
		<-runErr
		app.Close()
	}()
	if err := emu.WaitConnected(1, 10*time.Second); err != nil {
		return fmt.Errorf("the bot did not connect to the emulator: %w", err)
	}
	tr.title("accessbot demo: a Slack workspace in this process, the runbook from " + configPath)
	fmt.Fprintf(out, "Simulated time starts %s. Connectors that would reach real services (Salesforce, Metabase, the warehouse, Okta, …) are local stand-ins that print what they would do; payroll is a manual connector.\n", clock.Now().Format("Mon 2 Jan 15:04 MST"))

	const (
		alice, bob, carol = "U0ALICE01", "U0BOB0001", "U0CAROL01"
		grace, heidi      = "U0GRACE01", "U0HEIDI01"
	)
	reconcile := func() error { return app.Service.Reconcile(ctx) }
	// waitText waits until user's DM holds a message containing text:
	// notices are delivered by the paced outbox, a moment after the click.
	waitText := func(user, text, what string) error {
		deadline := time.Now().Add(10 * time.Second)
		for {
			for _, m := range emu.Messages(user) {
				if strings.Contains(m.Text, text) || strings.Contains(string(m.Blocks), text) {
					return nil
				}
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("%s: no message containing %q", what, text)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}

	// 1. A support agent asks for CRM access.
	tr.step("Alice (support) needs to look at a customer's records")
	if err := tr.command(alice, "/access crm viewer 2h customer ticket 4411"); err != nil {
		return err
	}
	if _, err := emu.WaitMessages(bob, 1, 5*time.Second); err != nil {
		return fmt.Errorf("Bob (manager) got no approval request: %w", err)
	}
	tr.flush()

	// 2. Manager, then owner approve.
	tr.step("Bob, Alice's manager, approves (step 1 of 2)")
	if err := tr.click(bob, "Approve", 1); err != nil {
		return err
	}
	if _, err := emu.WaitMessages(carol, 1, 5*time.Second); err != nil {
		return fmt.Errorf("Carol (owner) got no approval request: %w", err)
	}
	tr.flush()
	tr.step("Carol, a CRM owner, approves (step 2 of 2): the grant is applied")
	if err := tr.click(carol, "Approve", 1); err != nil {
		return err
	}
	if err := waitText(alice, "you now have", "Alice was not told about the grant"); err != nil {
		return err
	}
	tr.flush()

	// 3. The expiry warning, then expiry and removal.
	tr.advance(clock, 1*time.Hour+50*time.Minute)
	if err := reconcile(); err != nil {
		return err
	}
	if err := waitText(alice, "Extend", "Alice got no expiry warning"); err != nil {
		return err
	}
	tr.flush()
	tr.advance(clock, 10*time.Minute)
	if err := reconcile(); err != nil {
		return err
	}
	if err := waitText(alice, "has been removed", "Alice was not told the access was removed"); err != nil {
		return err
	}
	tr.flush()

	// 4. A payroll request, denied with a reason.
	tr.step("Grace (HR) asks for payroll; her manager Heidi denies it with a reason")
	if err := tr.command(grace, "/access payroll viewer 1h check bonus payouts"); err != nil {
		return err
	}
	if _, err := emu.WaitMessages(heidi, 1, 5*time.Second); err != nil {
		return fmt.Errorf("Heidi got no approval request: %w", err)
	}
	tr.flush()
	if err := tr.click(heidi, "Deny", 1); err != nil {
		return err
	}
	views, err := emu.WaitOpenViews(heidi, 1, 5*time.Second)
	if err != nil {
		return fmt.Errorf("no deny modal opened: %w", err)
	}
	tr.say("Heidi", "fills in the deny form: “Use the bonus report in Workday; payslips are not needed for this.”")
	env2, err := emu.SubmitView(heidi, views[len(views)-1].ID, map[string]map[string]slackemu.Value{
		"deny_reason": {"deny_reason_input": {Value: "Use the bonus report in Workday; payslips are not needed for this."}},
	})
	if err != nil {
		return err
	}
	if _, err := env2.WaitAck(3 * time.Second); err != nil {
		return err
	}
	if err := waitText(grace, "denied", "Grace was not told about the denial"); err != nil {
		return err
	}
	tr.flush()

	// 5. The audit trail.
	tr.step("The audit trail")
	n, err := app.Store.VerifyAudit(ctx)
	if err != nil {
		return fmt.Errorf("audit chain: %w", err)
	}
	if getenv("ACCESSBOT_AUDIT_FILE") != "" {
		fmt.Fprintf(out, "%d audit records, hash chain intact; mirrored to %s (check it with: accessbot audit verify %s)\n", n, auditFile, auditFile)
	} else {
		fmt.Fprintf(out, "%d audit records, hash chain intact (set ACCESSBOT_AUDIT_FILE=/tmp/audit.jsonl to keep a copy, then: accessbot audit verify /tmp/audit.jsonl)\n", n)
	}
	return nil
}

// demoStory is the story runDemo plays, for the refusal of a runbook
// that does not fit it.
const demoStory = "Alice asks for crm viewer for 2h, her manager Bob then the owner Carol approve, she is warned before it expires and it is removed; Grace asks for payroll viewer and her manager Heidi denies it"

// demoFits checks, with the runbook's own policy (access.Runbook.Explain
// on the seeded workspace, through the bot's directory), that every step
// of the story will happen as the story expects; the error lists each
// that would not.
func demoFits(ctx context.Context, cfg *Config, app *App, now time.Time) error {
	rb := cfg.Runbook
	var why []string
	if cfg.Slack.Command != "/access" {
		why = append(why, fmt.Sprintf("the story types /access, and slack.command is %s", cfg.Slack.Command))
	}
	type want struct {
		who, name, system, role string
		d                       time.Duration
		reason                  string
		steps                   [][]string // who must be asked, per step
	}
	for _, w := range []want{
		{"U0ALICE01", "Alice", "crm", "viewer", 2 * time.Hour, "customer ticket 4411", [][]string{{"U0BOB0001"}, {"U0CAROL01"}}},
		{"U0GRACE01", "Grace", "payroll", "viewer", time.Hour, "check bonus payouts", [][]string{{"U0HEIDI01"}}},
	} {
		what := fmt.Sprintf("%s %s %s %s", w.name, w.system, w.role, access.FormatDuration(w.d))
		ex, err := rb.Explain(ctx, app.Bot, access.ExplainInput{Requester: w.who, System: w.system, Role: w.role, Duration: w.d, Reason: w.reason, Now: now})
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		sys := rb.Systems[w.system]
		var role *access.Role
		if sys != nil {
			role = sys.Roles[w.role]
		}
		switch {
		case !ex.Allowed:
			why = append(why, fmt.Sprintf("%s is refused: %s", what, strings.TrimSuffix(ex.RefusalText, ".")))
			continue
		case ex.Auto || role.Approval.AutoIfOnCall != nil:
			why = append(why, fmt.Sprintf("%s is approved automatically, and the story has people approve it", what))
			continue
		case rb.WindowStatus(role, now).Refused():
			why = append(why, fmt.Sprintf("%s is outside its time windows on the story's Monday 09:00", what))
		case role.Ticket != nil:
			why = append(why, fmt.Sprintf("%s needs a ticket reference, which the story's reason has not", what))
		case len(ex.Steps) < len(w.steps):
			why = append(why, fmt.Sprintf("%s has %d approval step(s), and the story has %d", what, len(ex.Steps), len(w.steps)))
			continue
		}
		for i, people := range w.steps {
			for _, p := range people {
				if !slices.Contains(ex.Steps[i].Approvers, p) {
					why = append(why, fmt.Sprintf("%s: step %d does not ask %s (it asks %s)", what, i+1, demoNames[p], strings.Join(ex.Steps[i].Approvers, ", ")))
				}
			}
		}
		// The story moves the clock 1h50m, expects the expiry warning,
		// then 10m more and expects the removal.
		if w.system == "crm" && (role.ExpiryWarning < 10*time.Minute || role.ExpiryWarning >= w.d) {
			why = append(why, fmt.Sprintf("%s warns %s before expiry, and the story waits for the warning 10m before", what, access.FormatDuration(role.ExpiryWarning)))
		}
	}
	if len(why) > 0 {
		return errors.New(strings.Join(why, "; "))
	}
	return nil
}

// seedDemoWorkspace creates the example runbook's people, channels and
// user groups in the emulator.
func seedDemoWorkspace(emu *slackemu.Server, cfg *Config) {
	ids := map[string]bool{}
	add := func(xs ...string) {
		for _, x := range xs {
			if strings.HasPrefix(x, "U") || strings.HasPrefix(x, "W") {
				ids[x] = true
			}
		}
	}
	rb := cfg.Runbook
	add(rb.Admins...)
	for k, v := range rb.Managers.Static {
		add(k, v)
	}
	for _, t := range rb.Teams {
		add(t.Members...)
	}
	for _, s := range rb.Systems {
		add(s.Owners...)
	}
	add("U0GRACE01", "U0MALLO01")
	for id := range ids {
		name := demoNames[id]
		if name == "" {
			// U0ZOE0001 → Zoe
			base := strings.ToLower(strings.TrimRight(strings.TrimPrefix(id, "U0"), "0123456789"))
			if base == "" {
				base = strings.ToLower(id)
			}
			name = strings.ToUpper(base[:1]) + base[1:]
		}
		first := strings.ToLower(strings.Fields(name)[0])
		emu.AddUser(slackemu.User{ID: id, Name: first, RealName: strings.Fields(name)[0], Email: first + "@example.com", TZ: "Europe/Berlin"})
	}
	groups := map[string][]string{"S0HRTEAM1": {"U0GRACE01", "U0HEIDI01"}, "S0MKTTEAM": {"U0MALLO01"}}
	for _, t := range rb.Teams {
		if t.Usergroup != "" {
			emu.AddUserGroup(slackemu.UserGroup{ID: t.Usergroup, Handle: strings.ToLower(t.Usergroup), Members: groups[t.Usergroup]})
		}
	}
	chans := map[string]bool{}
	if rb.AuditChannel != "" {
		chans[rb.AuditChannel] = true
	}
	for _, s := range rb.Systems {
		if s.Channel != "" {
			chans[s.Channel] = true
		}
	}
	for c := range chans {
		name := demoChannels[c]
		if name == "" {
			name = strings.ToLower(c)
		}
		emu.AddChannel(slackemu.Channel{ID: c, Name: name, Private: true, BotIsMember: true})
	}
}

// demoConnector is a local stand-in for a connector that would reach a
// real service; it keeps membership in memory and narrates each call.
type demoConnector struct {
	name, typ string
	mem       *memory.Connector
	tr        *transcript
}

func (d *demoConnector) Grant(ctx context.Context, g access.Grant) (access.Receipt, error) {
	d.tr.system(fmt.Sprintf("%s (%s): add %s to %s, until %s", d.name, d.typ, g.User.Email, paramsText(g.Params), g.ExpiresAt.In(d.tr.loc).Format("15:04")))
	return d.mem.Grant(ctx, g)
}

func (d *demoConnector) Revoke(ctx context.Context, g access.Grant) error {
	d.tr.system(fmt.Sprintf("%s (%s): remove %s from %s", d.name, d.typ, g.User.Email, paramsText(g.Params)))
	return d.mem.Revoke(ctx, g)
}

func paramsText(p map[string]string) string {
	var parts []string
	for k, v := range p {
		parts = append(parts, k+"="+v)
	}
	sort.Strings(parts)
	return strings.Join(parts, " ")
}

// transcript prints what each person sees, in time order.
type transcript struct {
	out   io.Writer
	emu   *slackemu.Server
	clock *slackemu.FakeClock
	loc   *time.Location
	mu    sync.Mutex
	seen  map[string]int // channel|ts → versions printed
}

func (t *transcript) title(s string) {
	fmt.Fprintf(t.out, "\n%s\n%s\n", s, strings.Repeat("═", len([]rune(s))))
}

func (t *transcript) step(s string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	fmt.Fprintf(t.out, "\n── %s · %s\n", t.clock.Now().In(t.loc).Format("Mon 15:04"), s)
}

func (t *transcript) advance(c *slackemu.FakeClock, d time.Duration) {
	c.Advance(d)
	t.step(fmt.Sprintf("⏩ %s later", access.FormatDuration(d)))
}

func (t *transcript) say(who, what string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	fmt.Fprintf(t.out, "   %s %s\n", who, what)
}

func (t *transcript) system(s string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	fmt.Fprintf(t.out, "   ⚙ %s\n", s)
}

func (t *transcript) command(user, text string) error {
	t.say(demoNames[user], "types: "+text)
	cmd, rest, _ := strings.Cut(text, " ")
	env := t.emu.SlashCommand(user, t.emu.DMChannel(user), cmd, rest)
	if _, err := env.WaitAck(3 * time.Second); err != nil {
		return fmt.Errorf("%s's command was not acknowledged: %w", demoNames[user], err)
	}
	return nil
}

// click presses the button labelled label on the newest message in user's
// DM that has it.
func (t *transcript) click(user, label string, _ int) error {
	msgs := t.emu.Messages(user)
	for i := len(msgs) - 1; i >= 0; i-- {
		for _, b := range msgs[i].Buttons() {
			if b.Text == label {
				t.say(demoNames[user], "clicks ["+label+"]")
				env, err := t.emu.ClickButton(user, msgs[i].Channel, msgs[i].TS, label)
				if err != nil {
					return err
				}
				_, err = env.WaitAck(3 * time.Second)
				return err
			}
		}
	}
	return fmt.Errorf("%s has no [%s] button", demoNames[user], label)
}

// flush prints every message and edit not printed yet, across the DMs of
// everyone in the workspace, the channels and ephemeral replies.
func (t *transcript) flush() {
	time.Sleep(150 * time.Millisecond) // let the last updates of this step land (demo only)
	t.mu.Lock()
	defer t.mu.Unlock()
	type item struct {
		where string
		m     slackemu.Message
	}
	var items []item
	for id, name := range demoNames {
		for _, m := range t.emu.Messages(id) {
			items = append(items, item{"DM → " + name, m})
		}
		for _, m := range t.emu.Ephemerals(id) {
			items = append(items, item{"only " + name + " sees", m})
		}
	}
	for ch, name := range demoChannels {
		for _, m := range t.emu.Messages(ch) {
			items = append(items, item{"#" + name, m})
		}
	}
	sort.SliceStable(items, func(i, j int) bool { return items[i].m.TS < items[j].m.TS })
	// Identical updates of several copies (every approver's DM, the audit
	// channel) are printed once, naming every place they appeared.
	type block struct {
		where []string
		text  string
		edit  bool
	}
	var out []*block
	byText := map[string]*block{}
	for _, it := range items {
		key := it.m.Channel + "|" + it.m.TS + "|" + it.where
		versions := len(it.m.Edits) + 1
		if t.seen[key] >= versions {
			continue
		}
		edit := t.seen[key] > 0
		t.seen[key] = versions
		text := renderForTerminal(it.m.Blocks, it.m.Text)
		if b, ok := byText[text]; ok && b.edit == edit {
			b.where = append(b.where, it.where)
			continue
		}
		b := &block{where: []string{it.where}, text: text, edit: edit}
		byText[text] = b
		out = append(out, b)
	}
	for _, b := range out {
		label := "accessbot " + strings.Join(b.where, ", ")
		if b.edit {
			label += " (message updated)"
		}
		fmt.Fprintf(t.out, "   %s:\n", label)
		for _, line := range strings.Split(b.text, "\n") {
			fmt.Fprintf(t.out, "      │ %s\n", line)
		}
	}
}

var (
	mentionRe = regexp.MustCompile(`<@([A-Z0-9]+)(?:\|[^>]*)?>`)
	emojiRe   = regexp.MustCompile(`:([a-z_]+):`)
	emojis    = map[string]string{"white_check_mark": "✅", "x": "❌", "hourglass_flowing_sand": "⏳", "hourglass": "⌛",
		"warning": "⚠️", "bell": "🔔", "clipboard": "📋", "rotating_light": "🚨", "information_source": "ℹ️",
		"no_entry_sign": "🚫", "alarm_clock": "⏰"}
)

// renderForTerminal turns Block Kit into plain lines: section and context
// text with mentions resolved, buttons as [Label].
func renderForTerminal(raw json.RawMessage, fallback string) string {
	var blocks []map[string]any
	if len(raw) == 0 || json.Unmarshal(raw, &blocks) != nil || len(blocks) == 0 {
		return mrkdwnToText(fallback)
	}
	var lines []string
	textOf := func(v any) string {
		if m, ok := v.(map[string]any); ok {
			s, _ := m["text"].(string)
			return s
		}
		return ""
	}
	var buttons []string
	addButton := func(el map[string]any) {
		if el["type"] == "button" {
			buttons = append(buttons, "["+textOf(el["text"])+"]")
		}
	}
	for _, b := range blocks {
		switch b["type"] {
		case "section", "header":
			lines = append(lines, mrkdwnToText(textOf(b["text"])))
			if acc, ok := b["accessory"].(map[string]any); ok {
				addButton(acc)
			}
		case "context":
			els, _ := b["elements"].([]any)
			for _, e := range els {
				lines = append(lines, mrkdwnToText(textOf(e)))
			}
		case "actions":
			els, _ := b["elements"].([]any)
			for _, e := range els {
				if m, ok := e.(map[string]any); ok {
					addButton(m)
				}
			}
		}
	}
	if len(buttons) > 0 {
		lines = append(lines, strings.Join(buttons, " "))
	}
	return strings.Join(lines, "\n")
}

func mrkdwnToText(s string) string {
	s = mentionRe.ReplaceAllStringFunc(s, func(m string) string {
		id := mentionRe.FindStringSubmatch(m)[1]
		if n, ok := demoNames[id]; ok {
			return "@" + strings.Fields(n)[0]
		}
		return "@" + id
	})
	s = emojiRe.ReplaceAllStringFunc(s, func(m string) string {
		if e, ok := emojis[strings.Trim(m, ":")]; ok {
			return e
		}
		return m
	})
	s = strings.NewReplacer("*", "", "&lt;", "<", "&gt;", ">", "&amp;", "&").Replace(s)
	return s
}
