package slackemu

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/slack-go/slack"
)

func slackErr(t *testing.T, err error, code string) {
	t.Helper()
	if err == nil {
		t.Fatalf("want error %s, got nil", code)
	}
	var se slack.SlackErrorResponse
	if errors.As(err, &se) {
		if se.Err != code {
			t.Fatalf("want %s, got %s", code, se.Err)
		}
		return
	}
	if err.Error() != code && !strings.Contains(err.Error(), code) {
		t.Fatalf("want %s, got %v", code, err)
	}
}

func postRaw(t *testing.T, u string, hdr map[string]string, body string) (int, http.Header, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest("POST", u, strings.NewReader(body))
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&m)
	return resp.StatusCode, resp.Header, m
}

func TestAppsConnectionsOpenAuth(t *testing.T) {
	s := newEmu(t, Options{})
	u := s.APIURL() + "apps.connections.open"
	cases := []struct {
		hdr  map[string]string
		body string
		want string
	}{
		{map[string]string{"Content-Type": "application/json"}, "", "not_authed"},
		{map[string]string{"Authorization": "Bearer " + s.BotToken()}, "", "not_allowed_token_type"},
		{map[string]string{"Authorization": "Bearer xapp-1-wrong"}, "", "invalid_auth"},
		{map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, "token=" + s.AppToken(), "invalid_auth"},
	}
	for _, c := range cases {
		_, _, m := postRaw(t, u, c.hdr, c.body)
		if m["ok"] != false || m["error"] != c.want {
			t.Errorf("%v: got %v want %s", c.hdr, m, c.want)
		}
	}
	_, _, m := postRaw(t, u, map[string]string{"Authorization": "Bearer " + s.AppToken(), "Content-Type": "application/json"}, "")
	wsURL, _ := m["url"].(string)
	if m["ok"] != true || !strings.HasPrefix(wsURL, "ws://127.0.0.1:") || !strings.Contains(wsURL, "ticket=") {
		t.Fatalf("open: %v", m)
	}
	// Single-use ticket: first dial works and gets hello first, second gets 403.
	d := websocket.Dialer{}
	c, _, err := d.Dial(wsURL, http.Header{"Origin": {"https://api.slack.com"}})
	if err != nil {
		t.Fatal(err)
	}
	var hello map[string]any
	if err := c.ReadJSON(&hello); err != nil || hello["type"] != "hello" {
		t.Fatalf("hello %v %v", hello, err)
	}
	// Oversized frame → close 1009.
	_ = c.WriteMessage(websocket.TextMessage, []byte(`{"envelope_id":"`+strings.Repeat("x", maxFrame)+`"}`))
	_, _, err = c.ReadMessage()
	if !websocket.IsCloseError(err, websocket.CloseMessageTooBig) {
		t.Fatalf("want 1009, got %v", err)
	}
	c.Close()
	_, resp, err := d.Dial(wsURL, nil)
	if err == nil || resp == nil || resp.StatusCode != 403 {
		t.Fatalf("ticket reuse: %v %v", resp, err)
	}
	// apps.connections.open through slack-go.
	if _, _, err := apiClient(s).StartSocketModeContext(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestAuthAndTransport(t *testing.T) {
	s := newEmu(t, Options{})
	api := apiClient(s)
	at, err := api.AuthTest()
	if err != nil || at.UserID != s.BotUserID() || at.TeamID != s.TeamID() || at.BotID != s.BotID() {
		t.Fatalf("auth.test %+v %v", at, err)
	}
	_, err = slack.New("xoxb-bad", slack.OptionAPIURL(s.APIURL())).AuthTest()
	slackErr(t, err, "invalid_auth")
	_, err = slack.New("", slack.OptionAPIURL(s.APIURL())).AuthTest()
	slackErr(t, err, "not_authed")
	_, err = slack.New(s.AppToken(), slack.OptionAPIURL(s.APIURL())).AuthTest()
	slackErr(t, err, "not_allowed_token_type")
	// Unknown method.
	_, _, m := postRaw(t, s.APIURL()+"chat.nope", map[string]string{"Authorization": "Bearer " + s.BotToken()}, "")
	if m["error"] != "unknown_method" {
		t.Fatalf("unknown: %v", m)
	}
	// JSON body with Bearer and blocks as an array.
	_, _, m = postRaw(t, s.APIURL()+"chat.postMessage", map[string]string{"Authorization": "Bearer " + s.BotToken(), "Content-Type": "application/json"},
		`{"channel":"C0GENERAL1","text":"hi","blocks":[{"type":"section","text":{"type":"mrkdwn","text":"hi"}}]}`)
	if m["ok"] != true || m["channel"] != "C0GENERAL1" {
		t.Fatalf("json post: %v", m)
	}
	if c := s.Calls("chat.postMessage"); len(c) != 1 || c[0].Params["channel"] != "C0GENERAL1" || c[0].Token != s.BotToken() {
		t.Fatalf("calls %+v", c)
	}
	// missing_scope with needed/provided.
	s.SetScopes("chat:write")
	_, err = api.GetUserInfo(alice)
	var se slack.SlackErrorResponse
	if !errors.As(err, &se) || se.Err != "missing_scope" || se.Needed != "users:read" || se.Provided != "chat:write" {
		t.Fatalf("missing_scope: %#v", err)
	}
}

func TestChatMethods(t *testing.T) {
	fc := NewFakeClock(time.Unix(1700000000, 0))
	s := newEmu(t, Options{Clock: fc})
	api := apiClient(s)
	ch, ts1, err := api.PostMessage("C0GENERAL1", slack.MsgOptionText("one", false))
	if err != nil || ch != "C0GENERAL1" {
		t.Fatal(err)
	}
	_, ts2, _ := api.PostMessage("C0GENERAL1", slack.MsgOptionText("two", false))
	if ts1 == ts2 || ts1 != "1700000000.000000" || ts2 != "1700000000.000001" {
		t.Fatalf("ts %s %s", ts1, ts2)
	}
	_, _, err = api.PostMessage("C0RANDOM01", slack.MsgOptionText("x", false))
	slackErr(t, err, "not_in_channel")
	_, _, err = api.PostMessage("C0NOPE0001", slack.MsgOptionText("x", false))
	slackErr(t, err, "channel_not_found")
	_, _, err = api.PostMessage("C0GENERAL1", slack.MsgOptionText(strings.Repeat("a", 40001), false))
	slackErr(t, err, "msg_too_long")
	_, _, err = api.PostMessage("C0GENERAL1")
	slackErr(t, err, "no_text")
	// chat:write.public allows posting to a public channel without joining.
	s.SetScopes(append(defaultScopes, "chat:write.public")...)
	if _, _, err = api.PostMessage("C0RANDOM01", slack.MsgOptionText("x", false)); err != nil {
		t.Fatal(err)
	}

	// chat.update keeps edit history; only the bot's own messages.
	_, _, _, err = api.UpdateMessage("C0GENERAL1", ts1, slack.MsgOptionText("one v2", false))
	if err != nil {
		t.Fatal(err)
	}
	m, _ := s.Message("C0GENERAL1", ts1)
	if m.Text != "one v2" || len(m.Edits) != 1 || m.Edits[0].Text != "one" {
		t.Fatalf("update %+v", m)
	}
	_, _, _, err = api.UpdateMessage("C0GENERAL1", "1.000001", slack.MsgOptionText("x", false))
	slackErr(t, err, "message_not_found")
	s.mu.Lock()
	s.messages["C0GENERAL1"] = append(s.messages["C0GENERAL1"], &Message{Channel: "C0GENERAL1", TS: "1600000000.000001", User: alice, Text: "human"})
	s.mu.Unlock()
	_, _, _, err = api.UpdateMessage("C0GENERAL1", "1600000000.000001", slack.MsgOptionText("x", false))
	slackErr(t, err, "cant_update_message")

	// chat.postEphemeral
	ets, err := api.PostEphemeral("C0GENERAL1", alice, slack.MsgOptionText("only you", false))
	if err != nil || ets == "" {
		t.Fatal(err)
	}
	if e := s.Ephemerals(alice); len(e) != 1 || e[0].Text != "only you" || e[0].Source != "chat.postEphemeral" {
		t.Fatalf("ephemerals %+v", e)
	}
	_, err = api.PostEphemeral("C0OPS00001", alice, slack.MsgOptionText("x", false))
	slackErr(t, err, "user_not_in_channel")

	// chat.delete
	if _, _, err := api.DeleteMessage("C0GENERAL1", ts2); err != nil {
		t.Fatal(err)
	}
	if m, _ := s.Message("C0GENERAL1", ts2); !m.Deleted {
		t.Fatal("not deleted")
	}
	_, _, err = api.DeleteMessage("C0GENERAL1", ts2)
	slackErr(t, err, "message_not_found")
}

func TestBlockKitValidation(t *testing.T) {
	s := newEmu(t, Options{})
	api := apiClient(s)
	btn := func(aid, val, text string) *slack.ButtonBlockElement {
		return slack.NewButtonBlockElement(aid, val, slack.NewTextBlockObject("plain_text", text, false, false))
	}
	sec := func(id, text string) slack.Block {
		return slack.NewSectionBlock(slack.NewTextBlockObject("mrkdwn", text, false, false), nil, nil, slack.SectionBlockOptionBlockID(id))
	}
	many := make([]slack.Block, 51)
	for i := range many {
		many[i] = slack.NewDividerBlock()
	}
	cases := map[string][]slack.Block{
		"too many blocks":   many,
		"section text":      {sec("a", strings.Repeat("x", 3001))},
		"button value":      {slack.NewActionBlock("b", btn("a", strings.Repeat("v", 2001), "ok"))},
		"button text":       {slack.NewActionBlock("b", btn("a", "v", strings.Repeat("t", 76)))},
		"duplicate blockid": {sec("same", "x"), sec("same", "y")},
		"long block_id":     {sec(strings.Repeat("i", 256), "x")},
		"header":            {slack.NewHeaderBlock(slack.NewTextBlockObject("plain_text", strings.Repeat("h", 151), false, false))},
		"header mrkdwn":     {slack.NewHeaderBlock(slack.NewTextBlockObject("mrkdwn", "h", false, false))},
		"dup action_id":     {slack.NewActionBlock("b", btn("a", "1", "x"), btn("a", "2", "y"))},
	}
	for name, blocks := range cases {
		_, _, err := api.PostMessage("C0GENERAL1", slack.MsgOptionText("x", false), slack.MsgOptionBlocks(blocks...))
		var se slack.SlackErrorResponse
		if !errors.As(err, &se) || se.Err != "invalid_blocks" || len(se.ResponseMetadata.Messages) == 0 {
			t.Errorf("%s: want invalid_blocks with messages, got %v", name, err)
		}
	}
	// Auto-fill of missing block_id/action_id.
	_, ts, err := api.PostMessage("C0GENERAL1", slack.MsgOptionText("x", false), slack.MsgOptionBlocks(
		slack.NewActionBlock("", btn("", "v", "Go"))))
	if err != nil {
		t.Fatal(err)
	}
	m, _ := s.Message("C0GENERAL1", ts)
	if b := m.Buttons(); len(b) != 1 || b[0].BlockID == "" || b[0].ActionID == "" {
		t.Fatalf("autofill %+v", m.Buttons())
	}
}

func TestViewsMethods(t *testing.T) {
	fc := NewFakeClock(time.Unix(1700000000, 0))
	s := newEmu(t, Options{Clock: fc})
	api := apiClient(s)
	issue := func() string {
		e := s.SlashCommand(alice, "C0GENERAL1", "/access", "")
		return e.TriggerID
	}
	_, err := api.OpenView("1.2.bogus", requestModal())
	slackErr(t, err, "invalid_trigger_id")
	trig := issue()
	fc.Advance(3*time.Second + time.Millisecond)
	_, err = api.OpenView(trig, requestModal())
	slackErr(t, err, "expired_trigger_id")
	trig = issue()
	bad := requestModal()
	bad.Title = slack.NewTextBlockObject("plain_text", strings.Repeat("T", 25), false, false)
	_, err = api.OpenView(trig, bad)
	slackErr(t, err, "invalid_arguments")
	noSubmit := requestModal()
	noSubmit.Submit = nil
	_, err = api.OpenView(trig, noSubmit)
	slackErr(t, err, "invalid_arguments")
	pm := requestModal()
	pm.PrivateMetadata = strings.Repeat("p", 3001)
	_, err = api.OpenView(trig, pm)
	slackErr(t, err, "invalid_arguments")
	v, err := api.OpenView(trig, requestModal())
	if err != nil || v.ID == "" || v.Hash == "" || v.RootViewID != v.ID || v.CallbackID != "access_request" || v.AppID != s.AppID() {
		t.Fatalf("open %+v %v", v, err)
	}
	_, err = api.OpenView(trig, requestModal())
	slackErr(t, err, "exchanged_trigger_id")

	// views.push and views.update with hash.
	pushed, err := api.PushView(issue(), requestModal())
	if err != nil || pushed.PreviousViewID != v.ID || pushed.RootViewID != v.ID {
		t.Fatalf("push %+v %v", pushed, err)
	}
	if len(s.OpenViews(alice)) != 2 {
		t.Fatal("stack")
	}
	up, err := api.UpdateView(requestModal(), "", v.Hash, v.ID)
	if err != nil || up.Hash == v.Hash {
		t.Fatalf("update %+v %v", up, err)
	}
	_, err = api.UpdateView(requestModal(), "", v.Hash, v.ID)
	slackErr(t, err, "hash_conflict")
	_, err = api.UpdateView(requestModal(), "", "", "V0NOPE")
	slackErr(t, err, "not_found")

	// views.publish
	home := slack.HomeTabViewRequest{Type: slack.VTHomeTab, Blocks: slack.Blocks{BlockSet: []slack.Block{slack.NewDividerBlock()}}}
	h, err := api.PublishView(alice, home, "")
	if err != nil || h.ID == "" {
		t.Fatal(err)
	}
	_, err = api.PublishView(alice, home, "stale-hash")
	slackErr(t, err, "hash_conflict")
	_, err = api.PublishView("U0NOBODY01", home, "")
	slackErr(t, err, "user_not_found")
	if hv, ok := s.HomeView(alice); !ok || hv.ID != h.ID {
		t.Fatal("home view")
	}
}

func TestConversationsMethods(t *testing.T) {
	s := newEmu(t, Options{})
	api := apiClient(s)
	ch, noop, already, err := api.OpenConversation(&slack.OpenConversationParameters{Users: []string{alice}})
	if err != nil || ch.ID != s.DMChannel(alice) || noop || already {
		t.Fatalf("open %+v %v %v %v", ch, noop, already, err)
	}
	_, noop, _, _ = api.OpenConversation(&slack.OpenConversationParameters{Users: []string{alice}})
	if !noop {
		t.Fatal("second open should be no_op")
	}
	_, _, _, err = api.OpenConversation(&slack.OpenConversationParameters{Users: []string{"U0NOBODY01"}})
	slackErr(t, err, "user_not_found")

	info, err := api.GetConversationInfo(&slack.GetConversationInfoInput{ChannelID: "C0GENERAL1"})
	if err != nil || info.Name != "general" || !info.IsMember {
		t.Fatalf("info %+v %v", info, err)
	}
	_, err = api.GetConversationInfo(&slack.GetConversationInfoInput{ChannelID: "C0NOPE0001"})
	slackErr(t, err, "channel_not_found")

	if _, err := api.InviteUsersToConversation("C0OPS00001", alice); err != nil {
		t.Fatal(err)
	}
	if !contains(s.ChannelMembers("C0OPS00001"), alice) {
		t.Fatal("invite")
	}
	_, err = api.InviteUsersToConversation("C0OPS00001", alice)
	slackErr(t, err, "already_in_channel")
	_, err = api.InviteUsersToConversation("C0RANDOM01", bob)
	slackErr(t, err, "not_in_channel")

	if err := api.KickUserFromConversation("C0OPS00001", alice); err != nil {
		t.Fatal(err)
	}
	if contains(s.ChannelMembers("C0OPS00001"), alice) {
		t.Fatal("kick")
	}
	slackErr(t, api.KickUserFromConversation("C0OPS00001", s.BotUserID()), "cant_kick_self")

	members, cursor, err := api.GetUsersInConversation(&slack.GetUsersInConversationParameters{ChannelID: "C0GENERAL1", Limit: 2})
	if err != nil || len(members) != 2 || cursor == "" {
		t.Fatalf("members %v %q %v", members, cursor, err)
	}
	rest, cursor, err := api.GetUsersInConversation(&slack.GetUsersInConversationParameters{ChannelID: "C0GENERAL1", Limit: 2, Cursor: cursor})
	if err != nil || len(rest) != 2 || cursor != "" {
		t.Fatalf("members page 2 %v %q %v", rest, cursor, err)
	}
	_, _, err = api.GetUsersInConversation(&slack.GetUsersInConversationParameters{ChannelID: "C0GENERAL1", Cursor: "garbage"})
	slackErr(t, err, "invalid_cursor")
}

func TestUsersAndGroups(t *testing.T) {
	s := newEmu(t, Options{})
	api := apiClient(s)
	u, err := api.GetUserInfo(alice)
	if err != nil || u.Name != "alice" || u.Profile.Email != "alice@example.com" || u.TZ != "Europe/Berlin" || u.RealName != "Alice Smith" {
		t.Fatalf("users.info %+v %v", u, err)
	}
	_, err = api.GetUserInfo("U0NOBODY01")
	slackErr(t, err, "user_not_found")
	u, err = api.GetUserByEmail("BOB@example.com")
	if err != nil || u.ID != bob {
		t.Fatalf("lookup %+v %v", u, err)
	}
	_, err = api.GetUserByEmail("nobody@example.com")
	slackErr(t, err, "users_not_found")
	p, err := api.GetUserProfile(&slack.GetUserProfileParameters{UserID: alice, IncludeLabels: true})
	if err != nil || p.Fields.ToMap()["Xf0MANAGER"].Value != bob {
		t.Fatalf("profile %+v %v", p, err)
	}
	_, err = api.GetUserProfile(&slack.GetUserProfileParameters{UserID: "U0NOBODY01"})
	slackErr(t, err, "user_not_found")

	groups, err := api.GetUserGroups(slack.GetUserGroupsOptionIncludeUsers(true))
	if err != nil || len(groups) != 1 || groups[0].Handle != "oncall" || len(groups[0].Users) != 1 {
		t.Fatalf("usergroups.list %+v %v", groups, err)
	}
	s.SetScopes("chat:write")
	_, err = api.GetUserGroups()
	slackErr(t, err, "missing_scope")
	s.SetScopes(defaultScopes...)
	m, err := api.GetUserGroupMembers("S0ONCALL01")
	if err != nil || len(m) != 1 || m[0] != bob {
		t.Fatalf("members %v %v", m, err)
	}
	_, err = api.GetUserGroupMembers("S0NOPE0001")
	slackErr(t, err, "no_such_subteam")
	g, err := api.UpdateUserGroupMembers("S0ONCALL01", bob+","+alice)
	if err != nil || len(g.Users) != 2 {
		t.Fatalf("update %+v %v", g, err)
	}
	_, err = api.UpdateUserGroupMembers("S0ONCALL01", "U0NOBODY01")
	slackErr(t, err, "invalid_users")
	if h := s.GroupHistory("S0ONCALL01"); len(h) != 2 || len(h[1]) != 2 {
		t.Fatalf("history %v", h)
	}
	if gm := s.GroupMembers("S0ONCALL01"); len(gm) != 2 {
		t.Fatalf("members %v", gm)
	}
}

func TestFilesUpload(t *testing.T) {
	s := newEmu(t, Options{})
	api := apiClient(s)
	f, err := api.UploadFileContext(context.Background(), slack.UploadFileParameters{
		Filename: "audit.csv", FileSize: 5, Content: "a,b\n1", Channel: s.DMChannel(alice), Title: "Audit",
	})
	if err != nil || f.ID == "" || f.Title != "Audit" {
		t.Fatalf("upload %+v %v", f, err)
	}
	files := s.Files(alice)
	if len(files) != 1 || string(files[0].Content) != "a,b\n1" || files[0].Name != "audit.csv" {
		t.Fatalf("files %+v", files)
	}
	if msgs := s.Messages(alice); len(msgs) != 1 || len(msgs[0].Files) != 1 {
		t.Fatalf("file message %+v", msgs)
	}
	_, err = api.GetUploadURLExternalContext(context.Background(), slack.GetUploadURLExternalParameters{FileName: "x", FileSize: 1})
	if err != nil {
		t.Fatal(err)
	}
	s.FailNext("files.getUploadURLExternal", "invalid_arguments", 1)
	_, err = api.GetUploadURLExternalContext(context.Background(), slack.GetUploadURLExternalParameters{FileName: "x", FileSize: 1})
	slackErr(t, err, "invalid_arguments")
	_, err = api.CompleteUploadExternalContext(context.Background(), slack.CompleteUploadExternalParameters{Files: []slack.FileSummary{{ID: "F0NOPE"}}, Channel: "C0GENERAL1"})
	slackErr(t, err, "file_not_found")
}

func TestResponseURL(t *testing.T) {
	fc := NewFakeClock(time.Unix(1700000000, 0))
	s := newEmu(t, Options{Clock: fc})
	api := apiClient(s)
	e := s.SlashCommand(alice, "C0GENERAL1", "/access", "")
	for i := 0; i < 5; i++ {
		if _, _, err := api.PostMessage("", slack.MsgOptionResponseURL(e.ResponseURL, slack.ResponseTypeEphemeral), slack.MsgOptionText("r", false)); err != nil {
			t.Fatal(i, err)
		}
	}
	_, _, err := api.PostMessage("", slack.MsgOptionResponseURL(e.ResponseURL, slack.ResponseTypeEphemeral), slack.MsgOptionText("r", false))
	var sce slack.StatusCodeError
	if !errors.As(err, &sce) || sce.Code != 404 {
		t.Fatalf("6th use: %v", err)
	}
	if len(s.Ephemerals(alice)) != 5 {
		t.Fatal("ephemerals")
	}
	e = s.SlashCommand(alice, "C0GENERAL1", "/access", "")
	if _, _, err := api.PostMessage("", slack.MsgOptionResponseURL(e.ResponseURL, slack.ResponseTypeInChannel), slack.MsgOptionText("public", false)); err != nil {
		t.Fatal(err)
	}
	if msgs := s.Messages("C0GENERAL1"); len(msgs) != 1 || msgs[0].Text != "public" {
		t.Fatalf("in_channel %+v", msgs)
	}
	fc.Advance(31 * time.Minute)
	_, _, err = api.PostMessage("", slack.MsgOptionResponseURL(e.ResponseURL, slack.ResponseTypeEphemeral), slack.MsgOptionText("late", false))
	if !errors.As(err, &sce) || sce.Code != 404 {
		t.Fatalf("expired: %v", err)
	}
}

func TestRateLimitsAndFaults(t *testing.T) {
	fc := NewFakeClock(time.Unix(1700000000, 0))
	s := newEmu(t, Options{Clock: fc})
	api := apiClient(s)
	// 429 with Retry-After surfaces as RateLimitedError.
	s.RateLimit("chat.postMessage", 7*time.Second, 1)
	_, _, err := api.PostMessage("C0GENERAL1", slack.MsgOptionText("x", false))
	var rl *slack.RateLimitedError
	if !errors.As(err, &rl) || rl.RetryAfter != 7*time.Second {
		t.Fatalf("want RateLimitedError 7s, got %v", err)
	}
	// slack.OptionRetry honours Retry-After and succeeds.
	s.RateLimit("chat.postMessage", time.Second, 1)
	start := time.Now()
	if _, _, err := apiClient(s, slack.OptionRetry(1)).PostMessage("C0GENERAL1", slack.MsgOptionText("x", false)); err != nil {
		t.Fatal(err)
	}
	if time.Since(start) < time.Second {
		t.Fatal("Retry-After not honoured")
	}
	calls := s.Calls("chat.postMessage")
	if len(calls) != 3 || calls[1].HTTPStatus != 429 || calls[1].Error != "ratelimited" || calls[2].Error != "" {
		t.Fatalf("calls %+v", calls)
	}
	// FailNext, HTTPStatus.
	s.FailNext("users.info", "user_not_visible", 1)
	_, err = api.GetUserInfo(alice)
	slackErr(t, err, "user_not_visible")
	if _, err := api.GetUserInfo(alice); err != nil {
		t.Fatal(err)
	}
	s.HTTPStatus("users.info", 503, 1)
	_, err = api.GetUserInfo(alice)
	var sce slack.StatusCodeError
	if !errors.As(err, &sce) || sce.Code != 503 {
		t.Fatalf("status %v", err)
	}
	// Latency (real time).
	s.Latency("auth.test", 50*time.Millisecond)
	start = time.Now()
	_, _ = api.AuthTest()
	if time.Since(start) < 50*time.Millisecond {
		t.Fatal("latency")
	}
	// Per-channel posting limit: burst 3, then 1/s on the clock.
	s.SetChannelRateLimit(true)
	for i := 0; i < 3; i++ {
		if _, _, err := api.PostMessage("C0OPS00001", slack.MsgOptionText("x", false)); err != nil {
			t.Fatal(i, err)
		}
	}
	_, _, err = api.PostMessage("C0OPS00001", slack.MsgOptionText("x", false))
	if !errors.As(err, &rl) {
		t.Fatalf("want rate limit, got %v", err)
	}
	if _, _, err := api.PostMessage("C0GENERAL1", slack.MsgOptionText("x", false)); err != nil {
		t.Fatal("other channel must not be limited:", err)
	}
	fc.Advance(time.Second)
	if _, _, err := api.PostMessage("C0OPS00001", slack.MsgOptionText("x", false)); err != nil {
		t.Fatal(err)
	}
}

func TestUnsafeMentions(t *testing.T) {
	got := UnsafeMentions("hi <!channel> and <!here|here> <@U0ABC> <!subteam^S0X|@x> <https://evil.example|Approve> &lt;!everyone&gt; <#C0X>")
	want := []string{"<!channel>", "<!here|here>", "<@U0ABC>", "<!subteam^S0X|@x>", "<https://evil.example|Approve>"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("got %v", got)
	}
	s := newEmu(t, Options{})
	api := apiClient(s)
	_, _, _ = api.PostMessage("C0GENERAL1", slack.MsgOptionText("<@"+alice+"> requests", false), slack.MsgOptionBlocks(
		slack.NewSectionBlock(slack.NewTextBlockObject("mrkdwn", "reason: <!everyone>", false, false), nil, nil)))
	hits := s.UnsafeMentionsIn("C0GENERAL1", alice)
	if len(hits) != 1 || hits[0] != "<!everyone>" {
		t.Fatalf("hits %v", hits)
	}
}

func TestEscapeCommandText(t *testing.T) {
	s := newEmu(t, Options{EscapeCommandText: true})
	e := s.SlashCommand(alice, "C0GENERAL1", "/access", "a <b> & c")
	var p map[string]string
	_ = json.Unmarshal(e.Payload, &p)
	if p["text"] != "a &lt;b&gt; &amp; c" {
		t.Fatalf("text %q", p["text"])
	}
	if _, err := url.Parse(p["response_url"]); err != nil {
		t.Fatal(err)
	}
}
