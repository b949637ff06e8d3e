package bot

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/slackevents"
	"github.com/slack-go/slack/socketmode"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/bot/slackemu"
	// A test-only import of the bbolt adapter: the fuzz targets drive the
	// real handler over the real lifecycle service and store, which no
	// production code in bot may do (adapters never import each other).
	"github.com/accessbot/accessbot/store"
)

// The inbound payload fuzz targets decode arbitrary JSON the way slack-go's
// Socket Mode client does (json.Unmarshal into slack.SlashCommand or
// slack.InteractionCallback, slackevents.ParseEvent) and hand the result to
// the bot's real handler, handleEnvelope, which talks to the emulator's Web
// API and a real access.Service over a real store. A payload slack-go
// cannot decode becomes the ErrorBadMessage event it would emit, which
// goes through dispatch. The properties: no panic, every envelope acked
// exactly once, and no goroutine left behind once the handler returned.

// fuzzConnector grants and revokes nothing and always succeeds.
type fuzzConnector struct{}

func (fuzzConnector) Grant(context.Context, access.Grant) (access.Receipt, error) {
	return access.Receipt{}, nil
}
func (fuzzConnector) Revoke(context.Context, access.Grant) error { return nil }

// panicCounter counts recovered panics: the handlers recover them (the
// bot keeps serving), so the fuzz property "no panic" reads this count.
type panicCounter struct {
	nopMetrics
	n atomic.Int64
}

func (p *panicCounter) Panic(string) { p.n.Add(1) }

// fuzzBot is a Bot wired for fuzzing, with its acks recorded.
type fuzzBot struct {
	panics *panicCounter
	b      *Bot
	emu    *slackemu.Server
	tr     *http.Transport

	mu   sync.Mutex
	acks map[string]int
	seq  int
	base int // goroutines when idle
}

func newFuzzBot(f *testing.F) *fuzzBot {
	f.Helper()
	emu := slackemu.New(slackemu.Options{})
	f.Cleanup(emu.Close)
	for _, u := range []string{"U0ADMIN01", "U0ALICE01", "U0BOB0001", "U0CAROL01", "U0ERIN001", "U0OSCAR01"} {
		emu.AddUser(slackemu.User{ID: u, Name: u, RealName: u, Email: u + "@example.com", TZ: "Europe/Berlin"})
	}
	emu.AddChannel(slackemu.Channel{ID: "C0AUDIT01", Name: "audit", Private: true, BotIsMember: true})
	emu.AddChannel(slackemu.Channel{ID: "C0CRMOWN1", Name: "crm", Private: true, BotIsMember: true})
	// Every URL a payload names (response_url above all) is dialled at the
	// emulator, so that fuzzed input never reaches the network.
	emuURL, err := url.Parse(emu.URL())
	if err != nil {
		f.Fatal(err)
	}
	tr := &http.Transport{DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, emuURL.Host)
	}}
	st, err := store.Open(filepath.Join(f.TempDir(), "fuzz.db"), store.Options{NoSync: true})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { st.Close() })
	rb := testRunbook(&testing.T{})
	rb.Teams = map[string]access.Team{"support": {Members: []string{"U0ALICE01", "U0CAROL01", "U0BOB0001"}}}
	fb := &fuzzBot{emu: emu, tr: tr, acks: map[string]int{}, panics: &panicCounter{}}
	b := New(Config{
		Metrics:  fb.panics,
		AppToken: emu.AppToken(), BotToken: emu.BotToken(), APIURL: emu.APIURL(), Runbook: rb,
		HTTPClient: &http.Client{Transport: tr, Timeout: 5 * time.Second},
		Sleep:      func(ctx context.Context, d time.Duration) error { return ctx.Err() },
		AuditExport: func(ctx context.Context, system string, since time.Time) (string, []byte, error) {
			return "audit.csv", []byte("time,event\n"), nil
		},
	})
	b.ackFn = func(ctx context.Context, id string, payload any) error {
		if _, err := json.Marshal(payload); err != nil {
			return fmt.Errorf("ack payload does not encode: %w", err)
		}
		fb.mu.Lock()
		fb.acks[id]++
		fb.mu.Unlock()
		return nil
	}
	svc := access.NewService(access.ServiceConfig{
		Runbook: rb, Store: st, Directory: b, Notifier: b,
		Connectors: map[string]access.Connector{"idp": fuzzConnector{}, "dash": fuzzConnector{}},
		Rand:       func() float64 { return 0.5 },
	})
	b.Attach(svc)
	fb.b = b
	// A request and an approval copy to act on, so that buttons naming
	// AR-1 reach a real pending request.
	if _, err := svc.Submit(context.Background(), access.SubmitInput{Requester: "U0ALICE01", System: "crm", Role: "viewer", Duration: time.Hour, Reason: "fuzz"}); err != nil {
		f.Fatal(err)
	}
	tr.CloseIdleConnections()
	fb.base = runtime.NumGoroutine()
	return fb
}

// run delivers one envelope of socket type typ ("slash_commands",
// "interactive", "events_api") with payload, as slack-go would, and checks
// the properties.
func (fb *fuzzBot) run(t *testing.T, typ string, payload []byte) {
	fb.mu.Lock()
	fb.seq++
	id := fmt.Sprintf("env-%d", fb.seq)
	fb.mu.Unlock()
	req := socketmode.Request{Type: typ, EnvelopeID: id, Payload: payload}
	evt, err := decodeLikeSlackGo(req)
	ctx := context.Background()
	if err != nil {
		frame, _ := json.Marshal(map[string]any{"envelope_id": id, "type": typ, "payload": json.RawMessage(validJSONOrNull(payload))})
		fb.b.dispatch(ctx, socketmode.Event{Type: socketmode.EventTypeErrorBadMessage, Data: &socketmode.ErrorBadMessage{Cause: err, Message: frame}})
	} else {
		fb.b.handleEnvelope(ctx, evt, req, time.Now())
	}
	if p := fb.panics.n.Swap(0); p != 0 {
		t.Fatalf("envelope %s (%s %q): a handler panicked (recovered, %d time(s)); see the log for the stack", id, typ, payload, p)
	}
	fb.mu.Lock()
	n := fb.acks[id]
	delete(fb.acks, id)
	fb.mu.Unlock()
	if n != 1 {
		t.Fatalf("envelope %s (%s %q) acked %d times, want 1", id, typ, payload, n)
	}
	// handleEnvelope returns after its work: nothing it started may still
	// run. Idle keep-alive connections are closed first; their goroutines
	// exit asynchronously, hence the poll.
	fb.tr.CloseIdleConnections()
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > fb.base+4 {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("goroutine leak after %s %q: %d running, %d when idle\n%s", typ, payload, runtime.NumGoroutine(), fb.base, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(time.Millisecond) // polling a condition
	}
}

// decodeLikeSlackGo is what slack-go's Socket Mode client does with an
// envelope's payload (socketmode/socket_mode_managed_conn.go, parseEvent).
func decodeLikeSlackGo(req socketmode.Request) (socketmode.Event, error) {
	switch req.Type {
	case socketmode.RequestTypeSlashCommands:
		var cmd slack.SlashCommand
		if err := json.Unmarshal(req.Payload, &cmd); err != nil {
			return socketmode.Event{}, err
		}
		return socketmode.Event{Type: socketmode.EventTypeSlashCommand, Data: cmd, Request: &req}, nil
	case socketmode.RequestTypeInteractive:
		var cb slack.InteractionCallback
		if err := json.Unmarshal(req.Payload, &cb); err != nil {
			return socketmode.Event{}, err
		}
		return socketmode.Event{Type: socketmode.EventTypeInteractive, Data: cb, Request: &req}, nil
	case socketmode.RequestTypeEventsAPI:
		ev, err := slackevents.ParseEvent(req.Payload, slackevents.OptionNoVerifyToken())
		if err != nil {
			return socketmode.Event{}, err
		}
		return socketmode.Event{Type: socketmode.EventTypeEventsAPI, Data: ev, Request: &req}, nil
	}
	return socketmode.Event{}, fmt.Errorf("unsupported type %q", req.Type)
}

func validJSONOrNull(b []byte) []byte {
	if json.Valid(b) {
		return b
	}
	return []byte("null")
}

func FuzzSlashCommand(f *testing.F) {
	fb := newFuzzBot(f)
	for _, text := range []string{"", "help", "list", "pending", "systems", "crm viewer 2h ticket 4411", "crm viewer",
		"crm viewer banana x", "analytics viewer 1h", "cancel AR-1", "revoke AR-1", "extend AR-1 1h", "audit crm 7d",
		"nosuch role 1h x", "crm viewer 99d x", "&lt;@U0BOB0001&gt;"} {
		for _, user := range []string{"U0ALICE01", "U0BOB0001", "U0NOBODY1", ""} {
			p, _ := json.Marshal(slack.SlashCommand{Command: "/access", Text: text, UserID: user, ChannelID: "D0" + user,
				ResponseURL: "https://hooks.slack.com/commands/T0/1/x", TriggerID: "1.2.x"})
			f.Add(p)
		}
	}
	f.Add([]byte(`{"text": 3}`))
	f.Add([]byte(`null`))
	f.Add([]byte(`{"user_id":"U0ALICE01","text":"crm viewer 1h x","response_url":"::not a url"}`))
	f.Fuzz(func(t *testing.T, payload []byte) { fb.run(t, socketmode.RequestTypeSlashCommands, payload) })
}

func FuzzInteractionPayload(f *testing.F) {
	fb := newFuzzBot(f)
	click := func(user, action, value string) []byte {
		return []byte(fmt.Sprintf(`{"type":"block_actions","user":{"id":%q},"trigger_id":"1.2.x","channel":{"id":"D0X"},`+
			`"response_url":"https://hooks.slack.com/actions/T0/1/x","actions":[{"action_id":%q,"block_id":"b","value":%q,"type":"button"}]}`, user, action, value))
	}
	for _, a := range []string{ActionApprove, ActionDeny, ActionCancel, ActionDone, ActionExtend, ActionConfirm, ActionRequestAccess, "nope"} {
		for _, user := range []string{"U0BOB0001", "U0ALICE01", "U0MALLO01"} {
			f.Add(click(user, a, "AR-1"))
		}
		f.Add(click("U0BOB0001", a, "AR-999"))
		f.Add(click("U0BOB0001", a, "garbage"))
	}
	f.Add([]byte(`{"type":"block_actions","user":{"id":"U0ALICE01"},"view":{"id":"V1","callback_id":"` + CallbackRequest + `","private_metadata":"{}"},` +
		`"actions":[{"action_id":"` + ActionSystemSelect + `","selected_option":{"value":"crm"}}]}`))
	f.Add([]byte(`{"type":"view_submission","user":{"id":"U0ALICE01"},"view":{"id":"V1","callback_id":"` + CallbackRequest + `","private_metadata":"{\"system\":\"crm\"}",` +
		`"state":{"values":{"` + BlockSystem + `":{"` + ActionSystemSelect + `":{"selected_option":{"value":"crm"}}},"` + BlockRole + `":{"` + ActionRoleSelect + `":{"selected_option":{"value":"viewer"}}},` +
		`"` + BlockDuration + `":{"` + ActionDuration + `":{"selected_option":{"value":"2h"}}},"` + BlockReason + `":{"` + ActionReason + `":{"value":"ticket"}}}}}}`))
	f.Add([]byte(`{"type":"view_submission","user":{"id":"U0BOB0001"},"view":{"id":"V2","callback_id":"` + CallbackDeny + `","private_metadata":"AR-1",` +
		`"state":{"values":{"` + BlockDenyReason + `":{"` + ActionDenyReason + `":{"value":"no"}}}}}}`))
	f.Add([]byte(`{"type":"view_submission","user":{"id":"U0BOB0001"},"view":{"callback_id":"` + CallbackDeny + `","private_metadata":"AR-1"}}`))
	f.Add([]byte(`{"type":"view_submission","view":{"callback_id":"` + CallbackRequest + `","private_metadata":"not json"}}`))
	f.Add([]byte(`{"type":"view_closed","view":{"callback_id":"x"}}`))
	f.Add([]byte(`{"type":"block_actions","actions":[null]}`))
	f.Add([]byte(`{"type":"shortcut"}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`[`))
	f.Fuzz(func(t *testing.T, payload []byte) { fb.run(t, socketmode.RequestTypeInteractive, payload) })
}

func FuzzEventsAPI(f *testing.F) {
	fb := newFuzzBot(f)
	home := func(user, tab string) []byte {
		return []byte(fmt.Sprintf(`{"type":"event_callback","team_id":"T0","api_app_id":"A0","event":{"type":"app_home_opened","user":%q,"channel":"D0","tab":%q}}`, user, tab))
	}
	for _, u := range []string{"U0ALICE01", "U0BOB0001", "U0NOBODY1", ""} {
		f.Add(home(u, "home"))
		f.Add(home(u, "messages"))
	}
	f.Add([]byte(`{"type":"event_callback","event":{"type":"message","text":"hi","user":"U0ALICE01","channel":"D0"}}`))
	f.Add([]byte(`{"type":"event_callback","event":{"type":"no_such_event"}}`))
	f.Add([]byte(`{"type":"url_verification","challenge":"x"}`))
	f.Add([]byte(`{"type":"app_rate_limited"}`))
	f.Add([]byte(`{"type":"event_callback","event":null}`))
	f.Add([]byte(`{"type":"event_callback","event":{"type":"app_home_opened","user":7}}`))
	// user_change: acted on only after users.info confirms it (a forged
	// "deleted" for a user Slack says is active offboards nobody).
	for _, u := range []string{"U0ALICE01", "U0NOBODY1", ""} {
		f.Add([]byte(fmt.Sprintf(`{"type":"event_callback","event":{"type":"user_change","user":{"id":%q,"deleted":true}}}`, u)))
	}
	f.Add([]byte(`{"type":"event_callback","event":{"type":"user_change","user":null}}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`"`))
	f.Fuzz(func(t *testing.T, payload []byte) { fb.run(t, socketmode.RequestTypeEventsAPI, payload) })
}
