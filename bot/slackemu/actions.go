package slackemu

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Value is what a user entered into one input element for SubmitView.
type Value struct {
	// Value is the text for plain_text_input/number_input/email/url inputs, the
	// date/time for datepicker ("2006-01-02"), timepicker ("15:04") and
	// datetimepicker (UNIX seconds), and the id for users/conversations/channels selects.
	Value string
	// SelectedOption is the option value for static_select/radio_buttons.
	SelectedOption string
	// SelectedOptions are option values (or ids) for multi selects/checkboxes.
	SelectedOptions []string
}

// ErrRequiredInput is returned by SubmitView when a non-optional input has no
// value: the Slack client does not let the user submit in that case.
var ErrRequiredInput = errors.New("slackemu: required input is empty; the Slack client would not submit")

func (s *Server) userObj(uid string) map[string]any {
	name := uid
	if u, ok := s.users[uid]; ok {
		name = u.Name
	}
	return map[string]any{"id": uid, "username": name, "name": name, "team_id": s.teamID}
}

func (s *Server) teamObj() map[string]any {
	return map[string]any{"id": s.teamID, "domain": s.domain}
}

func escapeText(t string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(t)
}

// SlashCommand sends a slash_commands envelope as if userID typed
// "command text" in channelID (protocol §1.3, §5). A response_url and a
// trigger_id are issued. The ack payload (text/blocks, response_type) becomes
// the ephemeral reply (or an in_channel message); no ack within the deadline
// records a "dispatch_failed" Failure.
func (s *Server) SlashCommand(userID, channelID, command, text string) *Envelope {
	s.mu.Lock()
	defer s.mu.Unlock()
	chName := channelID
	if c, ok := s.channels[channelID]; ok {
		chName = c.Name
		if c.IM {
			chName = "directmessage"
		}
	}
	if s.opts.EscapeCommandText {
		text = escapeText(text)
	}
	uname := userID
	if u, ok := s.users[userID]; ok {
		uname = u.Name
	}
	trig := s.newTrigger(userID)
	ru := s.newResponseURL(&responseURL{user: userID, channel: channelID})
	payload := map[string]string{
		"token": "emuVerificationToken", "team_id": s.teamID, "team_domain": s.domain,
		"channel_id": channelID, "channel_name": chName, "user_id": userID, "user_name": uname,
		"command": command, "text": text, "api_app_id": s.appID, "is_enterprise_install": "false",
		"response_url": ru, "trigger_id": trig,
	}
	e := s.newEnvelope("slash_commands", command, userID, payload, true)
	e.TriggerID, e.ResponseURL, e.channelID = trig, ru, channelID
	s.dispatchLocked(e)
	return e
}

// ClickButton sends block_actions for a button in the STORED message
// (channelID, ts), found by action_id or visible text (protocol §4.2). The
// payload carries container, channel, the stored message, response_url,
// trigger_id, state and block_id (always, protocol §1.8). Ephemeral messages
// shown to userID are found too. Errors if the message or button does not
// exist or the user cannot see the message.
func (s *Server) ClickButton(userID, channelID, ts, actionIDOrButtonText string) (*Envelope, error) {
	return s.ClickButtonValue(userID, channelID, ts, actionIDOrButtonText, "")
}

// ClickButtonValue is ClickButton restricted to the button whose value is
// value ("" = any): it tells apart buttons of one message that share an
// action_id (allowed across blocks, https://docs.slack.dev/reference/block-kit/block-elements/button-element).
func (s *Server) ClickButtonValue(userID, channelID, ts, actionIDOrButtonText, value string) (*Envelope, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if strings.HasPrefix(channelID, "U") {
		channelID = s.dmLocked(channelID)
	}
	m := s.findMessageLocked(channelID, ts)
	ephemeral := false
	if m == nil {
		for _, em := range s.ephemerals[userID] {
			if em.TS == ts && em.Channel == channelID {
				m, ephemeral = em, true
			}
		}
	}
	if m == nil || m.Deleted {
		return nil, fmt.Errorf("slackemu: no message %s in %s", ts, channelID)
	}
	c, ok := s.channels[channelID]
	if ok && !ephemeral && !contains(c.memberList(s.botUserID), userID) {
		return nil, fmt.Errorf("slackemu: user %s cannot see channel %s", userID, channelID)
	}
	btn, blockID, ok := findButton(m.Blocks, actionIDOrButtonText, value)
	if !ok {
		return nil, fmt.Errorf("slackemu: no button %q in message %s", actionIDOrButtonText, ts)
	}
	chName := channelID
	if ok && c != nil {
		chName = c.Name
		if c.IM {
			chName = "directmessage"
		}
	}
	trig := s.newTrigger(userID)
	ru := s.newResponseURL(&responseURL{user: userID, channel: channelID, msgTS: ts, ephem: ephemeral})
	msg := s.messageJSON(m)
	if ephemeral {
		msg = map[string]any{"type": "message", "ts": m.TS, "text": m.Text, "blocks": m.Blocks, "is_ephemeral": true}
	}
	payload := map[string]any{
		"type": "block_actions", "token": "emuVerificationToken", "api_app_id": s.appID,
		"user": s.userObj(userID), "team": s.teamObj(), "enterprise": nil, "is_enterprise_install": false,
		"container":    map[string]any{"type": "message", "message_ts": ts, "channel_id": channelID, "is_ephemeral": ephemeral},
		"channel":      map[string]any{"id": channelID, "name": chName},
		"message":      msg,
		"state":        map[string]any{"values": map[string]any{}},
		"response_url": ru, "trigger_id": trig,
		"actions": []any{s.buttonAction(btn, blockID)},
	}
	e := s.newEnvelope("interactive", "block_actions", userID, payload, false)
	e.TriggerID, e.ResponseURL, e.channelID = trig, ru, channelID
	s.dispatchLocked(e)
	return e, nil
}

func (s *Server) buttonAction(btn map[string]any, blockID string) map[string]any {
	a := map[string]any{
		"type": "button", "action_id": str(btn, "action_id"), "block_id": blockID,
		"text": btn["text"], "value": str(btn, "value"), "action_ts": s.newTS(),
	}
	if st := str(btn, "style"); st != "" {
		a["style"] = st
	}
	return a
}

// ClickHomeButton sends block_actions for a button in the user's published
// App Home view (container type "view", no response_url, protocol §4.4).
// value selects among buttons sharing an action_id ("" = first match).
func (s *Server) ClickHomeButton(userID, actionIDOrButtonText string, value string) (*Envelope, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id, ok := s.homes[userID]
	if !ok {
		return nil, fmt.Errorf("slackemu: no home view published for %s", userID)
	}
	vs := s.views[id]
	btn, blockID, ok := findButton(vs.Blocks, actionIDOrButtonText, value)
	if !ok {
		return nil, fmt.Errorf("slackemu: no button %q (value %q) in home view of %s", actionIDOrButtonText, value, userID)
	}
	return s.viewAction(userID, vs, s.buttonAction(btn, blockID)), nil
}

func (s *Server) viewAction(userID string, vs *viewState, action map[string]any) *Envelope {
	trig := s.newTrigger(userID)
	payload := map[string]any{
		"type": "block_actions", "token": "emuVerificationToken", "api_app_id": s.appID,
		"user": s.userObj(userID), "team": s.teamObj(), "enterprise": nil, "is_enterprise_install": false,
		"container":  map[string]any{"type": "view", "view_id": vs.ID},
		"view":       s.currentViewJSON(vs),
		"state":      map[string]any{"values": s.currentViewJSON(vs)["state"].(map[string]any)["values"]},
		"trigger_id": trig,
		"actions":    []any{action},
	}
	e := s.newEnvelope("interactive", "block_actions", userID, payload, false)
	e.TriggerID, e.viewID = trig, vs.ID
	s.dispatchLocked(e)
	return e
}

// findElement returns the element with actionID in blockID of a view.
func findElement(raw json.RawMessage, blockID, actionID string) (map[string]any, bool, bool) {
	var blocks []map[string]any
	if json.Unmarshal(raw, &blocks) != nil {
		return nil, false, false
	}
	for _, b := range blocks {
		if str(b, "block_id") != blockID {
			continue
		}
		optional, _ := b["optional"].(bool)
		var els []any
		if e, ok := b["element"]; ok {
			els = append(els, e)
		}
		if e, ok := b["accessory"]; ok {
			els = append(els, e)
		}
		if e, ok := b["elements"].([]any); ok {
			els = append(els, e...)
		}
		for _, e := range els {
			if m, ok := asMap(e); ok && str(m, "action_id") == actionID {
				return m, optional, true
			}
		}
	}
	return nil, false, false
}

func findOption(el map[string]any, value string) map[string]any {
	var all []any
	if o, ok := el["options"].([]any); ok {
		all = append(all, o...)
	}
	if gs, ok := el["option_groups"].([]any); ok {
		for _, g := range gs {
			if gm, ok := asMap(g); ok {
				if o, ok := gm["options"].([]any); ok {
					all = append(all, o...)
				}
			}
		}
	}
	for _, o := range all {
		if m, ok := asMap(o); ok && str(m, "value") == value {
			return map[string]any{"text": m["text"], "value": value}
		}
	}
	return nil
}

// elementState builds the state entry Slack reports for an element and value.
func elementState(el map[string]any, v Value) (map[string]any, error) {
	t := str(el, "type")
	st := map[string]any{"type": t}
	switch t {
	case "static_select", "radio_buttons", "external_select":
		if v.SelectedOption == "" {
			v.SelectedOption = v.Value
		}
		if v.SelectedOption == "" {
			st["selected_option"] = nil
			break
		}
		o := findOption(el, v.SelectedOption)
		if o == nil && t != "external_select" {
			return nil, fmt.Errorf("slackemu: option %q not offered by %s", v.SelectedOption, str(el, "action_id"))
		}
		if o == nil {
			o = map[string]any{"text": map[string]any{"type": "plain_text", "text": v.SelectedOption}, "value": v.SelectedOption}
		}
		st["selected_option"] = o
	case "multi_static_select", "checkboxes", "multi_external_select":
		opts := []any{}
		for _, val := range v.SelectedOptions {
			o := findOption(el, val)
			if o == nil {
				return nil, fmt.Errorf("slackemu: option %q not offered by %s", val, str(el, "action_id"))
			}
			opts = append(opts, o)
		}
		st["selected_options"] = opts
	case "users_select":
		st["selected_user"] = nilIfEmpty(v.Value)
	case "multi_users_select":
		st["selected_users"] = nonNil(v.SelectedOptions)
	case "conversations_select":
		st["selected_conversation"] = nilIfEmpty(v.Value)
	case "multi_conversations_select":
		st["selected_conversations"] = nonNil(v.SelectedOptions)
	case "channels_select":
		st["selected_channel"] = nilIfEmpty(v.Value)
	case "multi_channels_select":
		st["selected_channels"] = nonNil(v.SelectedOptions)
	case "datepicker":
		st["selected_date"] = nilIfEmpty(v.Value)
	case "timepicker":
		st["selected_time"] = nilIfEmpty(v.Value)
	case "datetimepicker":
		if v.Value == "" {
			st["selected_date_time"] = nil
		} else {
			n, err := strconv.ParseInt(v.Value, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("slackemu: datetimepicker value must be UNIX seconds: %q", v.Value)
			}
			st["selected_date_time"] = n
		}
	default:
		st["value"] = nilIfEmpty(v.Value)
	}
	return st, nil
}

func nilIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func nonNil(x []string) []string {
	if x == nil {
		return []string{}
	}
	return x
}

func isEmptyValue(v Value) bool {
	return v.Value == "" && v.SelectedOption == "" && len(v.SelectedOptions) == 0
}

// SelectOption sends block_actions for a select (static_select etc.) inside
// an open modal or the home view, and records the selection in the view state
// (for dispatch_action flows).
func (s *Server) SelectOption(userID, viewID, blockID, actionID, value string) (*Envelope, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	vs, ok := s.views[viewID]
	if !ok || vs.UserID != userID || (!vs.open && !vs.home) {
		return nil, fmt.Errorf("slackemu: view %s is not open for %s", viewID, userID)
	}
	el, _, ok := findElement(vs.Blocks, blockID, actionID)
	if !ok {
		return nil, fmt.Errorf("slackemu: no element %s/%s in view %s", blockID, actionID, viewID)
	}
	st, err := elementState(el, Value{SelectedOption: value, Value: value, SelectedOptions: []string{value}})
	if err != nil {
		return nil, err
	}
	if vs.values[blockID] == nil {
		vs.values[blockID] = map[string]any{}
	}
	vs.values[blockID][actionID] = st
	action := map[string]any{"action_id": actionID, "block_id": blockID, "action_ts": s.newTS()}
	for k, v := range st {
		action[k] = v
	}
	if p := el["placeholder"]; p != nil {
		action["placeholder"] = p
	}
	return s.viewAction(userID, vs, action), nil
}

// SubmitView sends view_submission for the user's open modal viewID with the
// given values (block_id → action_id → Value), merged with selections made
// via SelectOption. Every input block appears in state.values, as in Slack.
// Errors if the view is not the top of the user's open stack, an option is not
// offered, or a required input is empty (ErrRequiredInput).
func (s *Server) SubmitView(userID, viewID string, values map[string]map[string]Value) (*Envelope, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	stack := s.stacks[userID]
	if len(stack) == 0 || stack[len(stack)-1] != viewID {
		return nil, fmt.Errorf("slackemu: view %s is not the open modal of %s", viewID, userID)
	}
	vs := s.views[viewID]
	var blocks []map[string]any
	_ = json.Unmarshal(vs.Blocks, &blocks)
	for bid, acts := range values {
		for aid := range acts {
			if _, _, ok := findElement(vs.Blocks, bid, aid); !ok {
				return nil, fmt.Errorf("slackemu: no element %s/%s in view %s", bid, aid, viewID)
			}
		}
	}
	state := map[string]map[string]any{}
	for bid, acts := range vs.values {
		state[bid] = map[string]any{}
		for aid, st := range acts {
			state[bid][aid] = st
		}
	}
	for _, b := range blocks {
		if str(b, "type") != "input" {
			continue
		}
		el, _ := asMap(b["element"])
		bid, aid := str(b, "block_id"), str(el, "action_id")
		v, given := values[bid][aid]
		if !given {
			if _, ok := state[bid][aid]; ok {
				continue
			}
		}
		if opt, _ := b["optional"].(bool); !opt && isEmptyValue(v) {
			return nil, fmt.Errorf("%w: %s/%s", ErrRequiredInput, bid, aid)
		}
		st, err := elementState(el, v)
		if err != nil {
			return nil, err
		}
		if state[bid] == nil {
			state[bid] = map[string]any{}
		}
		state[bid][aid] = st
	}
	for bid, acts := range values {
		for aid, v := range acts {
			if _, done := state[bid][aid]; done {
				continue
			}
			el, _, _ := findElement(vs.Blocks, bid, aid)
			st, err := elementState(el, v)
			if err != nil {
				return nil, err
			}
			if state[bid] == nil {
				state[bid] = map[string]any{}
			}
			state[bid][aid] = st
		}
	}
	vs.values = state
	view := s.currentViewJSON(vs)
	trig := s.newTrigger(userID)
	payload := map[string]any{
		"type": "view_submission", "token": "emuVerificationToken", "api_app_id": s.appID,
		"user": s.userObj(userID), "team": s.teamObj(), "enterprise": nil, "is_enterprise_install": false,
		"trigger_id": trig, "view": view, "response_urls": []any{},
	}
	e := s.newEnvelope("interactive", "view_submission", userID, payload, true)
	e.TriggerID, e.viewID = trig, viewID
	s.dispatchLocked(e)
	return e, nil
}

// CloseView closes the user's open modal viewID (the user pressed Cancel or
// ×). Slack sends view_closed only when the view has notify_on_close; the
// returned Envelope is nil otherwise.
func (s *Server) CloseView(userID, viewID string) (*Envelope, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	stack := s.stacks[userID]
	if len(stack) == 0 || stack[len(stack)-1] != viewID {
		return nil, fmt.Errorf("slackemu: view %s is not the open modal of %s", viewID, userID)
	}
	vs := s.views[viewID]
	view := s.currentViewJSON(vs)
	s.closeTopLocked(userID)
	s.notify()
	if !vs.NotifyOnClose {
		return nil, nil
	}
	payload := map[string]any{
		"type": "view_closed", "token": "emuVerificationToken", "api_app_id": s.appID,
		"user": s.userObj(userID), "team": s.teamObj(), "enterprise": nil, "is_enterprise_install": false,
		"view": view, "is_cleared": false,
	}
	e := s.newEnvelope("interactive", "view_closed", userID, payload, false)
	e.viewID = viewID
	s.dispatchLocked(e)
	return e, nil
}

// OpenAppHome sends an events_api envelope with app_home_opened (tab "home")
// for the user, including the published view if any (protocol §1.3, §4.4).
func (s *Server) OpenAppHome(userID string) *Envelope {
	s.mu.Lock()
	defer s.mu.Unlock()
	ev := map[string]any{"type": "app_home_opened", "user": userID, "channel": s.dmLocked(userID), "tab": "home", "event_ts": s.newTS()}
	if id, ok := s.homes[userID]; ok {
		ev["view"] = s.currentViewJSON(s.views[id])
	}
	return s.sendEventLocked(userID, ev)
}

// SendEvent sends an arbitrary Events API inner event (a JSON object with a
// "type") in an events_api envelope.
func (s *Server) SendEvent(userID string, event json.RawMessage) (*Envelope, error) {
	var ev map[string]any
	if err := json.Unmarshal(event, &ev); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sendEventLocked(userID, ev), nil
}

// UserChanged replaces a user (deactivating, renaming, changing a
// profile field) and sends the app Slack's user_change event with the
// user's new object, as Slack does to apps subscribed to it (users:read;
// docs.slack.dev/reference/events/user_change).
func (s *Server) UserChanged(u User) *Envelope {
	s.AddUser(u)
	s.mu.Lock()
	defer s.mu.Unlock()
	ev := map[string]any{"type": "user_change", "user": s.userJSON(s.users[u.ID]),
		"cache_ts": s.clock.Now().Unix(), "event_ts": s.newTS()}
	return s.sendEventLocked(u.ID, ev)
}

func (s *Server) sendEventLocked(userID string, ev map[string]any) *Envelope {
	now := s.clock.Now()
	payload := map[string]any{
		"token": "emuVerificationToken", "team_id": s.teamID, "api_app_id": s.appID, "type": "event_callback",
		"event_id": "Ev" + randUpper(10), "event_time": now.Unix(), "event": ev,
		"authorizations":        []any{map[string]any{"enterprise_id": nil, "team_id": s.teamID, "user_id": s.botUserID, "is_bot": true, "is_enterprise_install": false}},
		"is_ext_shared_channel": false, "event_context": "4-" + randAlnum(40),
	}
	e := s.newEnvelope("events_api", str(ev, "type"), userID, payload, false)
	s.dispatchLocked(e)
	return e
}

// interpretAckLocked applies an on-time ack payload (protocol §1.4 table).
func (s *Server) interpretAckLocked(e *Envelope, payload json.RawMessage) {
	fail := func(kind, detail string) {
		s.failures = append(s.failures, Failure{EnvelopeID: e.ID, Type: e.PayloadType, UserID: e.UserID, Kind: kind, Detail: detail})
	}
	switch {
	case e.Type == "slash_commands":
		if len(payload) == 0 || string(payload) == "{}" {
			return
		}
		var b struct {
			Text         string          `json:"text"`
			Blocks       json.RawMessage `json:"blocks"`
			ResponseType string          `json:"response_type"`
		}
		if err := json.Unmarshal(payload, &b); err != nil {
			fail("dispatch_failed", "ack payload is not a message object")
			return
		}
		bp := ""
		if len(b.Blocks) > 0 && string(b.Blocks) != "null" {
			bp = string(b.Blocks)
		}
		blocks, ae := s.messageContent(b.Text, bp, true)
		if ae != nil {
			fail("invalid_response", ae.code)
			return
		}
		m := &Message{Channel: e.channelID, TS: s.newTS(), User: s.botUserID, BotID: s.botID, Text: b.Text, Blocks: blocks, Source: "ack"}
		if b.ResponseType == "in_channel" {
			s.messages[e.channelID] = append(s.messages[e.channelID], m)
		} else {
			m.Ephemeral, m.ForUser = true, e.UserID
			s.ephemerals[e.UserID] = append(s.ephemerals[e.UserID], m)
			for _, ru := range s.respURLs {
				if ru.user == e.UserID && ru.channel == e.channelID && ru.msgTS == "" && strings.HasSuffix(e.ResponseURL, ru.id) {
					ru.lastEph = m.TS
				}
			}
		}
	case e.PayloadType == "view_submission":
		s.interpretViewAckLocked(e, payload, fail)
	}
}

func (s *Server) interpretViewAckLocked(e *Envelope, payload json.RawMessage, fail func(string, string)) {
	stack := s.stacks[e.UserID]
	if len(stack) == 0 || stack[len(stack)-1] != e.viewID {
		return // the modal was closed or replaced meanwhile
	}
	vs := s.views[e.viewID]
	if len(payload) == 0 || string(payload) == "{}" {
		s.closeTopLocked(e.UserID)
		return
	}
	var b struct {
		ResponseAction string            `json:"response_action"`
		Errors         map[string]string `json:"errors"`
		View           json.RawMessage   `json:"view"`
	}
	if err := json.Unmarshal(payload, &b); err != nil {
		fail("trouble_connecting", "ack payload is not a view response")
		return
	}
	switch b.ResponseAction {
	case "errors":
		inputs := map[string]bool{}
		var blocks []map[string]any
		_ = json.Unmarshal(vs.Blocks, &blocks)
		for _, bl := range blocks {
			if str(bl, "type") == "input" {
				inputs[str(bl, "block_id")] = true
			}
		}
		if len(b.Errors) == 0 {
			fail("trouble_connecting", "response_action errors without errors")
			return
		}
		for k := range b.Errors {
			if !inputs[k] {
				// errors keys must be input block_ids (protocol §1.4, slack-go #1013).
				fail("trouble_connecting", "errors key "+k+" is not an input block_id")
				return
			}
		}
		vs.Errors = b.Errors
	case "update", "push":
		v, ae := parseViewParam(string(b.View), "modal")
		if ae != nil {
			fail("trouble_connecting", fmt.Sprintf("%s %v", ae.code, ae.extra))
			return
		}
		if b.ResponseAction == "update" {
			s.storeViewLocked(vs, v)
		} else {
			if len(stack) >= 3 {
				fail("trouble_connecting", "push_limit_reached")
				return
			}
			s.pushViewLocked(e.UserID, v)
		}
	case "clear":
		s.clearStackLocked(e.UserID)
	default:
		fail("trouble_connecting", "unknown response_action "+b.ResponseAction)
	}
}
