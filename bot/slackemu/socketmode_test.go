package slackemu

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"
)

const (
	alice = "U0ALICE001"
	bob   = "U0BOB00001"
	carol = "U0CAROL001"
)

func newEmu(t *testing.T, opts Options) *Server {
	t.Helper()
	if opts.PingInterval == 0 {
		opts.PingInterval = 200 * time.Millisecond
	}
	s := New(opts)
	t.Cleanup(s.Close)
	s.AddUser(User{ID: alice, Name: "alice", RealName: "Alice Smith", Email: "alice@example.com", TZ: "Europe/Berlin", Fields: map[string]string{"Xf0MANAGER": bob}})
	s.AddUser(User{ID: bob, Name: "bob", RealName: "Bob Jones", Email: "bob@example.com", TZ: "America/New_York"})
	s.AddUser(User{ID: carol, Name: "carol", RealName: "Carol White", Email: "carol@example.com"})
	s.AddChannel(Channel{ID: "C0GENERAL1", Name: "general", Members: []string{alice, bob, carol}, BotIsMember: true})
	s.AddChannel(Channel{ID: "C0OPS00001", Name: "ops", Private: true, Members: []string{bob}, BotIsMember: true})
	s.AddChannel(Channel{ID: "C0RANDOM01", Name: "random", Members: []string{alice}})
	s.AddUserGroup(UserGroup{ID: "S0ONCALL01", Handle: "oncall", Members: []string{bob}})
	return s
}

func apiClient(s *Server, opts ...slack.Option) *slack.Client {
	return slack.New(s.BotToken(), append([]slack.Option{slack.OptionAPIURL(s.APIURL()), slack.OptionAppLevelToken(s.AppToken())}, opts...)...)
}

// testBot runs a real socketmode client and calls handle for each request
// event in its own goroutine (like SocketmodeHandler).
type testBot struct {
	api    *slack.Client
	client *socketmode.Client
	mu     sync.Mutex
	handle func(evt socketmode.Event, c *socketmode.Client)
	events chan socketmode.EventType
	done   chan struct{}
}

func startBot(t *testing.T, s *Server, handle func(evt socketmode.Event, c *socketmode.Client), opts ...socketmode.Option) *testBot {
	t.Helper()
	api := apiClient(s)
	if len(opts) == 0 {
		opts = []socketmode.Option{socketmode.OptionPingInterval(2 * time.Second)}
	}
	b := &testBot{api: api, client: socketmode.New(api, opts...), handle: handle, events: make(chan socketmode.EventType, 1000), done: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		_ = b.client.RunContext(ctx)
	}()
	go func() {
		defer wg.Done()
		for {
			select {
			case <-ctx.Done():
				return
			case evt := <-b.client.Events:
				select {
				case b.events <- evt.Type:
				default:
				}
				if evt.Request == nil {
					continue
				}
				b.mu.Lock()
				h := b.handle
				b.mu.Unlock()
				if h != nil {
					wg.Add(1)
					go func() { defer wg.Done(); h(evt, b.client) }()
				}
			}
		}
	}()
	t.Cleanup(func() { cancel(); wg.Wait() })
	if err := s.WaitConnected(1, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	return b
}

func (b *testBot) setHandler(h func(evt socketmode.Event, c *socketmode.Client)) {
	b.mu.Lock()
	b.handle = h
	b.mu.Unlock()
}

func waitAck(t *testing.T, e *Envelope) AckResult {
	t.Helper()
	r, err := e.WaitAck(5 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestSocketModeEndToEnd drives the real slack-go socketmode client through
// connect, hello, a slash command with an ack response, a DM with buttons, a
// button click with response_url, and a modal with validation errors.
func TestSocketModeEndToEnd(t *testing.T) {
	s := newEmu(t, Options{})
	var sawHello sync.WaitGroup
	sawHello.Add(1)
	var once sync.Once
	bot := startBot(t, s, nil)
	go func() {
		for et := range bot.events {
			if et == socketmode.EventTypeHello {
				once.Do(sawHello.Done)
				return
			}
		}
	}()
	waitCh := make(chan struct{})
	go func() { sawHello.Wait(); close(waitCh) }()
	select {
	case <-waitCh:
	case <-time.After(5 * time.Second):
		t.Fatal("no hello")
	}

	// 1. Slash command acked with an ephemeral response.
	bot.setHandler(func(evt socketmode.Event, c *socketmode.Client) {
		if evt.Type != socketmode.EventTypeSlashCommand {
			return
		}
		cmd := evt.Data.(slack.SlashCommand)
		if cmd.Command != "/access" || cmd.Text != "prod-db 2h" || cmd.UserID != alice || cmd.TriggerID == "" || cmd.ResponseURL == "" {
			t.Errorf("bad slash command %+v", cmd)
		}
		c.Ack(*evt.Request, map[string]any{"response_type": "ephemeral", "text": "Request R1 submitted"})
	})
	env := s.SlashCommand(alice, "C0GENERAL1", "/access", "prod-db 2h")
	r := waitAck(t, env)
	if r.Latency <= 0 || r.Latency > 3*time.Second {
		t.Fatalf("latency %v", r.Latency)
	}
	eph, err := s.WaitEphemerals(alice, 1, time.Second)
	if err != nil || eph[0].Text != "Request R1 submitted" || eph[0].Channel != "C0GENERAL1" {
		t.Fatalf("ephemerals %+v %v", eph, err)
	}

	// 2. DM with buttons posted to a user id.
	ch, ts, err := bot.api.PostMessage(bob, slack.MsgOptionText("Approve?", false), slack.MsgOptionBlocks(
		slack.NewSectionBlock(slack.NewTextBlockObject("mrkdwn", "*<@"+alice+">* requests prod-db", false, true), nil, nil, slack.SectionBlockOptionBlockID("req:R1:summary")),
		slack.NewActionBlock("req:R1:actions",
			slack.NewButtonBlockElement("access_approve", "R1", slack.NewTextBlockObject("plain_text", "Approve", false, false)).WithStyle(slack.StylePrimary),
			slack.NewButtonBlockElement("access_deny", "R1", slack.NewTextBlockObject("plain_text", "Deny", false, false)).WithStyle(slack.StyleDanger)),
	))
	if err != nil {
		t.Fatal(err)
	}
	if ch != s.DMChannel(bob) || ch[0] != 'D' {
		t.Fatalf("channel %s want DM %s", ch, s.DMChannel(bob))
	}
	msgs := s.Messages(ch)
	if len(msgs) != 1 || len(msgs[0].Buttons()) != 2 || msgs[0].Buttons()[0].Style != "primary" {
		t.Fatalf("messages %+v", msgs)
	}

	// 3. Button click → block_actions; the bot acks and replaces the message.
	got := make(chan slack.InteractionCallback, 1)
	bot.setHandler(func(evt socketmode.Event, c *socketmode.Client) {
		if evt.Type != socketmode.EventTypeInteractive {
			return
		}
		cb := evt.Data.(slack.InteractionCallback)
		c.Ack(*evt.Request)
		got <- cb
		if _, _, err := bot.api.PostMessage("", slack.MsgOptionReplaceOriginal(cb.ResponseURL), slack.MsgOptionText("Approved by <@"+cb.User.ID+">", false)); err != nil {
			t.Errorf("response_url: %v", err)
		}
	})
	env, err = s.ClickButton(bob, ch, ts, "Approve")
	if err != nil {
		t.Fatal(err)
	}
	waitAck(t, env)
	cb := <-got
	if cb.Type != slack.InteractionTypeBlockActions || len(cb.ActionCallback.BlockActions) != 1 {
		t.Fatalf("callback %+v", cb)
	}
	a := cb.ActionCallback.BlockActions[0]
	if a.ActionID != "access_approve" || a.BlockID != "req:R1:actions" || a.Value != "R1" || cb.Container.Type != "message" ||
		cb.Container.ChannelID != ch || cb.Channel.ID != ch || cb.Message.Timestamp != ts || cb.TriggerID == "" || len(cb.Message.Blocks.BlockSet) != 2 {
		t.Fatalf("block action %+v / %+v", a, cb)
	}
	if !s.waitFor(2*time.Second, func() bool { return len(s.messages[ch][0].Edits) == 1 }) {
		t.Fatal("message not replaced")
	}
	m, _ := s.Message(ch, ts)
	if m.Text != "Approved by <@"+bob+">" || m.Edits[0].Text != "Approve?" {
		t.Fatalf("edited message %+v", m)
	}

	// 4. Modal: open with trigger_id, submit with validation errors, then success.
	var mu sync.Mutex
	submits := 0
	bot.setHandler(func(evt socketmode.Event, c *socketmode.Client) {
		switch evt.Type {
		case socketmode.EventTypeSlashCommand:
			cmd := evt.Data.(slack.SlashCommand)
			c.Ack(*evt.Request)
			_, err := bot.api.OpenView(cmd.TriggerID, requestModal())
			if err != nil {
				t.Errorf("OpenView: %v", err)
			}
		case socketmode.EventTypeInteractive:
			cb := evt.Data.(slack.InteractionCallback)
			if cb.Type != slack.InteractionTypeViewSubmission {
				c.Ack(*evt.Request)
				return
			}
			mu.Lock()
			submits++
			n := submits
			mu.Unlock()
			if cb.View.State.Values["resource"]["resource_select"].SelectedOption.Value != "prod-db" {
				t.Errorf("state %+v", cb.View.State.Values)
			}
			if n == 1 {
				c.Ack(*evt.Request, slack.NewErrorsViewSubmissionResponse(map[string]string{"reason": "Reason is too short"}))
				return
			}
			c.Ack(*evt.Request)
		}
	})
	env = s.SlashCommand(alice, "C0GENERAL1", "/access", "")
	waitAck(t, env)
	views, err := s.WaitOpenViews(alice, 1, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	v := views[0]
	if v.CallbackID != "access_request" || v.Title != "Request access" || v.ID[0] != 'V' {
		t.Fatalf("view %+v", v)
	}
	vals := map[string]map[string]Value{
		"resource": {"resource_select": {SelectedOption: "prod-db"}},
		"reason":   {"reason_input": {Value: "x"}},
	}
	env, err = s.SubmitView(alice, v.ID, vals)
	if err != nil {
		t.Fatal(err)
	}
	r = waitAck(t, env)
	if string(r.Payload) == "" {
		t.Fatal("expected errors payload")
	}
	views = s.OpenViews(alice)
	if len(views) != 1 || views[0].Errors["reason"] != "Reason is too short" {
		t.Fatalf("views after errors %+v", views)
	}
	vals["reason"]["reason_input"] = Value{Value: "incident 42"}
	env, err = s.SubmitView(alice, v.ID, vals)
	if err != nil {
		t.Fatal(err)
	}
	waitAck(t, env)
	if len(s.OpenViews(alice)) != 0 {
		t.Fatal("modal should be closed after an empty ack")
	}
	if f := s.Failures(); len(f) != 0 {
		t.Fatalf("failures %+v", f)
	}
}

func requestModal() slack.ModalViewRequest {
	return slack.ModalViewRequest{
		Type:          slack.VTModal,
		CallbackID:    "access_request",
		Title:         slack.NewTextBlockObject("plain_text", "Request access", false, false),
		Submit:        slack.NewTextBlockObject("plain_text", "Submit", false, false),
		Close:         slack.NewTextBlockObject("plain_text", "Cancel", false, false),
		NotifyOnClose: true,
		Blocks: slack.Blocks{BlockSet: []slack.Block{
			slack.NewInputBlock("resource", slack.NewTextBlockObject("plain_text", "Resource", false, false), nil,
				slack.NewOptionsSelectBlockElement("static_select", slack.NewTextBlockObject("plain_text", "Pick", false, false), "resource_select",
					slack.NewOptionBlockObject("prod-db", slack.NewTextBlockObject("plain_text", "prod-db", false, false), nil))),
			slack.NewInputBlock("reason", slack.NewTextBlockObject("plain_text", "Reason", false, false), nil,
				slack.NewPlainTextInputBlockElement(nil, "reason_input")),
		}},
	}
}

func TestAckDeadlineFailures(t *testing.T) {
	s := newEmu(t, Options{AckTimeout: 300 * time.Millisecond})
	release := make(chan struct{})
	bot := startBot(t, s, func(evt socketmode.Event, c *socketmode.Client) {
		<-release
		c.Ack(*evt.Request)
	})
	_ = bot
	e1 := s.SlashCommand(alice, "C0GENERAL1", "/access", "slow")
	f, err := s.WaitFailures(1, 3*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if f[0].Kind != "dispatch_failed" || f[0].EnvelopeID != e1.ID || f[0].UserID != alice {
		t.Fatalf("failure %+v", f[0])
	}
	close(release)
	r, err := e1.WaitAck(3 * time.Second)
	if !errors.Is(err, ErrLateAck) || !r.Late {
		t.Fatalf("want late ack, got %+v %v", r, err)
	}
	if len(s.Ephemerals(alice)) != 0 {
		t.Fatal("late ack must be ignored")
	}
}

func TestAckErrorsKeyNotInputTroubleConnecting(t *testing.T) {
	s := newEmu(t, Options{})
	bot := startBot(t, s, nil)
	bot.setHandler(func(evt socketmode.Event, c *socketmode.Client) {
		switch evt.Type {
		case socketmode.EventTypeSlashCommand:
			c.Ack(*evt.Request)
			if _, err := bot.api.OpenView(evt.Data.(slack.SlashCommand).TriggerID, requestModal()); err != nil {
				t.Error(err)
			}
		case socketmode.EventTypeInteractive:
			c.Ack(*evt.Request, slack.NewErrorsViewSubmissionResponse(map[string]string{"not_an_input": "bad"}))
		}
	})
	waitAck(t, s.SlashCommand(alice, "C0GENERAL1", "/access", ""))
	views, err := s.WaitOpenViews(alice, 1, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	// Required input empty: the client would not submit.
	if _, err := s.SubmitView(alice, views[0].ID, map[string]map[string]Value{"resource": {"resource_select": {SelectedOption: "prod-db"}}}); !errors.Is(err, ErrRequiredInput) {
		t.Fatalf("want ErrRequiredInput, got %v", err)
	}
	env, err := s.SubmitView(alice, views[0].ID, map[string]map[string]Value{"resource": {"resource_select": {SelectedOption: "prod-db"}}, "reason": {"reason_input": {Value: "r"}}})
	if err != nil {
		t.Fatal(err)
	}
	waitAck(t, env)
	f := s.Failures()
	if len(f) != 1 || f[0].Kind != "trouble_connecting" {
		t.Fatalf("failures %+v", f)
	}
	if len(s.OpenViews(alice)) != 1 {
		t.Fatal("modal must stay open")
	}
	// Closing with notify_on_close sends view_closed.
	env, err = s.CloseView(alice, views[0].ID)
	if err != nil || env == nil {
		t.Fatalf("CloseView %v %v", env, err)
	}
	waitAck(t, env)
}

func TestAppHomeOpenedAndHomeButton(t *testing.T) {
	s := newEmu(t, Options{})
	bot := startBot(t, s, nil)
	clicked := make(chan slack.InteractionCallback, 1)
	bot.setHandler(func(evt socketmode.Event, c *socketmode.Client) {
		c.Ack(*evt.Request)
		switch evt.Type {
		case socketmode.EventTypeEventsAPI:
			_, err := bot.api.PublishView(alice, slack.HomeTabViewRequest{Type: slack.VTHomeTab, Blocks: slack.Blocks{BlockSet: []slack.Block{
				slack.NewActionBlock("grants", slack.NewButtonBlockElement("revoke", "G1", slack.NewTextBlockObject("plain_text", "Revoke", false, false)),
					slack.NewButtonBlockElement("extend", "G1", slack.NewTextBlockObject("plain_text", "Extend", false, false))),
				slack.NewActionBlock("grants2", slack.NewButtonBlockElement("revoke", "G2", slack.NewTextBlockObject("plain_text", "Revoke", false, false))),
			}}}, "")
			if err != nil {
				t.Error(err)
			}
		case socketmode.EventTypeInteractive:
			clicked <- evt.Data.(slack.InteractionCallback)
		}
	})
	waitAck(t, s.OpenAppHome(alice))
	hv, err := s.WaitHomeView(alice, 5*time.Second, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(hv.Buttons()) != 3 {
		t.Fatalf("home buttons %+v", hv.Buttons())
	}
	env, err := s.ClickHomeButton(alice, "revoke", "G2")
	if err != nil {
		t.Fatal(err)
	}
	waitAck(t, env)
	cb := <-clicked
	if cb.Container.Type != "view" || cb.Container.ViewID != hv.ID || cb.ResponseURL != "" || cb.View.ID != hv.ID ||
		cb.ActionCallback.BlockActions[0].Value != "G2" || cb.ActionCallback.BlockActions[0].BlockID != "grants2" {
		t.Fatalf("home click %+v", cb)
	}
}

func TestReconnectAfterEachDisconnectReason(t *testing.T) {
	s := newEmu(t, Options{PingInterval: 100 * time.Millisecond})
	startBot(t, s, func(evt socketmode.Event, c *socketmode.Client) { c.Ack(*evt.Request) }, socketmode.OptionPingInterval(time.Second))
	for _, reason := range []string{"warning", "refresh_requested", "link_disabled", "too_many_websockets"} {
		n := s.Connects()
		s.Disconnect(reason)
		if err := s.WaitConnects(n+1, 5*time.Second); err != nil {
			t.Fatalf("%s: %v", reason, err)
		}
		// The new connection works: an envelope is acked.
		waitAck(t, s.OpenAppHome(alice))
	}
	// Dropped TCP connection.
	n := s.Connects()
	s.DropConnection()
	if err := s.WaitConnects(n+1, 5*time.Second); err != nil {
		t.Fatalf("drop: %v", err)
	}
	// Stopped pings: the client's watchdog (1 s) reconnects.
	n = s.Connects()
	s.StopPings()
	if err := s.WaitConnects(n+1, 5*time.Second); err != nil {
		t.Fatalf("stop pings: %v", err)
	}
	s.SetPingInterval(100 * time.Millisecond)
	n = s.Connects()
	if err := s.WaitConnects(n, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	waitAck(t, s.OpenAppHome(alice))
	if !s.waitFor(2*time.Second, func() bool { return s.pongs > 0 }) {
		t.Fatal("no pongs recorded")
	}
}

func TestEnvelopeQueuedUntilConnected(t *testing.T) {
	s := newEmu(t, Options{})
	env := s.OpenAppHome(alice)
	startBot(t, s, func(evt socketmode.Event, c *socketmode.Client) { c.Ack(*evt.Request) })
	waitAck(t, env)
}

func TestConnectionsOpenRateLimitHonoured(t *testing.T) {
	s := newEmu(t, Options{})
	startBot(t, s, func(evt socketmode.Event, c *socketmode.Client) { c.Ack(*evt.Request) })
	s.RateLimit("apps.connections.open", time.Second, 1)
	n := s.Connects()
	start := time.Now()
	s.Disconnect("refresh_requested")
	if err := s.WaitConnects(n+1, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el < time.Second {
		t.Fatalf("reconnected after %v, Retry-After 1s not honoured", el)
	}
	calls := s.Calls("apps.connections.open")
	if calls[len(calls)-2].HTTPStatus != 429 || calls[len(calls)-1].Error != "" {
		t.Fatalf("calls %+v", calls[len(calls)-2:])
	}
}

func TestAckPayloadRaw(t *testing.T) {
	// An ack with a null or {} payload is accepted (Node SDK sends {}).
	s := newEmu(t, Options{})
	startBot(t, s, func(evt socketmode.Event, c *socketmode.Client) {
		c.Ack(*evt.Request, json.RawMessage(`{}`))
	})
	r := waitAck(t, s.SlashCommand(alice, "C0GENERAL1", "/access", ""))
	if string(r.Payload) != "{}" || len(s.Ephemerals(alice)) != 0 {
		t.Fatalf("ack %s", r.Payload)
	}
}
