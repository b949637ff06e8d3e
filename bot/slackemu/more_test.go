package slackemu

import (
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"
)

func TestViewResponseActionsAndSelect(t *testing.T) {
	s := newEmu(t, Options{})
	bot := startBot(t, s, nil)
	step := make(chan string, 10)
	bot.setHandler(func(evt socketmode.Event, c *socketmode.Client) {
		switch evt.Type {
		case socketmode.EventTypeSlashCommand:
			c.Ack(*evt.Request)
			if _, err := bot.api.OpenView(evt.Data.(slack.SlashCommand).TriggerID, requestModal()); err != nil {
				t.Error(err)
			}
		case socketmode.EventTypeInteractive:
			cb := evt.Data.(slack.InteractionCallback)
			switch cb.Type {
			case slack.InteractionTypeBlockActions:
				c.Ack(*evt.Request)
				step <- "select:" + cb.ActionCallback.BlockActions[0].SelectedOption.Value + ":" + cb.Container.Type
			case slack.InteractionTypeViewSubmission:
				switch cb.View.State.Values["reason"]["reason_input"].Value {
				case "update":
					m := requestModal()
					m.Title = slack.NewTextBlockObject("plain_text", "Updated", false, false)
					c.Ack(*evt.Request, slack.NewUpdateViewSubmissionResponse(&m))
				case "push":
					m := requestModal()
					m.Title = slack.NewTextBlockObject("plain_text", "Pushed", false, false)
					c.Ack(*evt.Request, slack.NewPushViewSubmissionResponse(&m))
				case "clear":
					c.Ack(*evt.Request, slack.NewClearViewSubmissionResponse())
				}
			}
		}
	})
	waitAck(t, s.SlashCommand(alice, "C0GENERAL1", "/access", ""))
	views, err := s.WaitOpenViews(alice, 1, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	id := views[0].ID
	env, err := s.SelectOption(alice, id, "resource", "resource_select", "prod-db")
	if err != nil {
		t.Fatal(err)
	}
	waitAck(t, env)
	if got := <-step; got != "select:prod-db:view" {
		t.Fatal(got)
	}
	submit := func(viewID, reason string) {
		t.Helper()
		e, err := s.SubmitView(alice, viewID, map[string]map[string]Value{"reason": {"reason_input": {Value: reason}}})
		if err != nil {
			t.Fatal(err)
		}
		waitAck(t, e)
	}
	submit(id, "update")
	if v := s.OpenViews(alice); len(v) != 1 || v[0].Title != "Updated" || v[0].ID != id {
		t.Fatalf("update %+v", v)
	}
	if v := s.OpenViews(alice); len(v) != 1 || v[0].Title != "Updated" {
		t.Fatal(v)
	}
	submit(id, "push")
	v := s.OpenViews(alice)
	if len(v) != 2 || v[1].Title != "Pushed" || v[1].PreviousID != id {
		t.Fatalf("push %+v", v)
	}
	if _, err := s.SubmitView(alice, id, nil); err == nil {
		t.Fatal("only the top view can be submitted")
	}
	e, err := s.SubmitView(alice, v[1].ID, map[string]map[string]Value{"resource": {"resource_select": {SelectedOption: "prod-db"}}, "reason": {"reason_input": {Value: "clear"}}})
	if err != nil {
		t.Fatal(err)
	}
	waitAck(t, e)
	if len(s.OpenViews(alice)) != 0 {
		t.Fatal("clear")
	}
}

func TestEventsRedeliveredWhenNotAcked(t *testing.T) {
	s := newEmu(t, Options{AckTimeout: 100 * time.Millisecond})
	e := s.OpenAppHome(alice)
	// No client connected: redelivery attempts are queued; eventually reported.
	f, err := s.WaitFailures(1, 3*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if f[0].Kind != "event_not_acked" || f[0].EnvelopeID != e.ID {
		t.Fatalf("%+v", f)
	}
	s.mu.Lock()
	attempts := e.retryAttempt
	s.mu.Unlock()
	if attempts != 3 {
		t.Fatalf("retry_attempt %d", attempts)
	}
	if !strings.Contains(string(e.frame()), `"retry_reason":"timeout"`) {
		t.Fatal(string(e.frame()))
	}
}

func TestButtonOnEphemeralAndDeleteOriginal(t *testing.T) {
	s := newEmu(t, Options{})
	api := apiClient(s)
	ts, err := api.PostEphemeral("C0GENERAL1", alice, slack.MsgOptionText("confirm?", false), slack.MsgOptionBlocks(
		slack.NewActionBlock("a", slack.NewButtonBlockElement("ok", "1", slack.NewTextBlockObject("plain_text", "OK", false, false)))))
	if err != nil {
		t.Fatal(err)
	}
	e, err := s.ClickButton(alice, "C0GENERAL1", ts, "ok")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := api.PostMessage("", slack.MsgOptionReplaceOriginal(e.ResponseURL), slack.MsgOptionText("done", false)); err != nil {
		t.Fatal(err)
	}
	if eph := s.Ephemerals(alice); len(eph) != 1 || eph[0].Text != "done" || len(eph[0].Edits) != 1 {
		t.Fatalf("%+v", eph)
	}
	_, ts2, _ := api.PostMessage("C0GENERAL1", slack.MsgOptionText("x", false), slack.MsgOptionBlocks(
		slack.NewActionBlock("a", slack.NewButtonBlockElement("ok", "1", slack.NewTextBlockObject("plain_text", "OK", false, false)))))
	e, err = s.ClickButton(bob, "C0GENERAL1", ts2, "OK")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := api.PostMessage("", slack.MsgOptionDeleteOriginal(e.ResponseURL)); err != nil {
		t.Fatal(err)
	}
	if m, _ := s.Message("C0GENERAL1", ts2); !m.Deleted {
		t.Fatal("not deleted")
	}
	if _, err := s.ClickButton(bob, "C0GENERAL1", ts2, "OK"); err == nil {
		t.Fatal("click on deleted message must fail")
	}
	if _, err := s.ClickButton(carol, "C0OPS00001", ts2, "OK"); err == nil {
		t.Fatal("click on unknown message must fail")
	}
}

func TestTooManyWebsockets(t *testing.T) {
	s := newEmu(t, Options{})
	for i := 0; i < maxConnections; i++ {
		startBot(t, s, func(evt socketmode.Event, c *socketmode.Client) { c.Ack(*evt.Request) })
	}
	if err := s.WaitConnected(maxConnections, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	// Envelopes go to exactly one connection.
	waitAck(t, s.OpenAppHome(alice))
	if n := len(s.Acks()); n != 1 {
		t.Fatalf("acks %d", n)
	}
	// The 11th connection gets disconnect/too_many_websockets.
	_, _, m := postRaw(t, s.APIURL()+"apps.connections.open", map[string]string{"Authorization": "Bearer " + s.AppToken()}, "")
	c, _, err := websocket.DefaultDialer.Dial(m["url"].(string), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var f map[string]any
	if err := c.ReadJSON(&f); err != nil || f["type"] != "disconnect" || f["reason"] != "too_many_websockets" {
		t.Fatalf("11th: %v %v", f, err)
	}
}

func TestCloseLeavesNoGoroutines(t *testing.T) {
	before := runtime.NumGoroutine()
	s := New(Options{PingInterval: 50 * time.Millisecond})
	s.AddUser(User{ID: alice})
	api := apiClient(s)
	sm := socketmode.New(api)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range sm.Events {
		}
	}()
	ctxDone := make(chan struct{})
	go func() { _ = sm.Run(); close(ctxDone) }()
	if err := s.WaitConnected(1, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	s.SlashCommand(alice, "C0X", "/access", "")
	s.Close()
	// The client keeps retrying; only check the emulator's own goroutines are gone.
	deadline := time.Now().Add(3 * time.Second)
	for {
		buf := make([]byte, 1<<20)
		n := runtime.Stack(buf, true)
		if !strings.Contains(string(buf[:n]), "slackemu.(*wsConn)") && !strings.Contains(string(buf[:n]), "slackemu.(*Server).handle") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("emulator goroutines leaked (before=%d):\n%s", before, buf[:n])
		}
		runtime.Gosched()
	}
}

func TestInspectionForTheSandbox(t *testing.T) {
	s := newEmu(t, Options{})
	if got := s.Users(); len(got) != 3 || got[0].ID != alice || got[1].RealName != "Bob Jones" {
		t.Fatalf("Users = %+v", got)
	}
	chans := s.Channels()
	if len(chans) != 3 || chans[0].Name != "general" || chans[1].Name != "ops" || !chans[1].Private {
		t.Fatalf("Channels = %+v", chans)
	}
	if gs := s.UserGroups(); len(gs) != 1 || gs[0].Handle != "oncall" || gs[0].Members[0] != bob {
		t.Fatalf("UserGroups = %+v", gs)
	}
	changed := s.Changed()
	select {
	case <-changed:
		t.Fatal("Changed closed before any change")
	default:
	}
	api := apiClient(s)
	// Two buttons sharing an action_id in different blocks: the value
	// tells them apart.
	_, ts, err := api.PostMessage("C0GENERAL1", slack.MsgOptionText("x", false), slack.MsgOptionBlocks(
		slack.NewActionBlock("b1", slack.NewButtonBlockElement("pick", "AR-1", slack.NewTextBlockObject("plain_text", "Pick", false, false))),
		slack.NewActionBlock("b2", slack.NewButtonBlockElement("pick", "AR-2", slack.NewTextBlockObject("plain_text", "Pick", false, false)))))
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-changed:
	case <-time.After(5 * time.Second):
		t.Fatal("Changed not closed by a posted message")
	}
	e, err := s.ClickButtonValue(bob, "C0GENERAL1", ts, "pick", "AR-2")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(e.Payload), `"block_id":"b2"`) || !strings.Contains(string(e.Payload), `"value":"AR-2"`) {
		t.Fatalf("payload %s", e.Payload)
	}
	if _, err := s.ClickButtonValue(bob, "C0GENERAL1", ts, "pick", "AR-3"); err == nil {
		t.Fatal("a value no button has must fail")
	}
}
