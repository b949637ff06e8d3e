package slackemu

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// apiReq is a decoded Web API request.
type apiReq struct {
	method string
	params map[string]string
	token  string
	bearer bool
	form   bool // token came from the form body
}

// apiErr is a Web API failure: {"ok":false,"error":code,...extra} with an
// optional non-200 status and Retry-After.
type apiErr struct {
	code       string
	extra      map[string]any
	status     int
	retryAfter time.Duration
}

func errCode(code string) *apiErr { return &apiErr{code: code} }

type handler func(s *Server, r *apiReq) (map[string]any, *apiErr)

type method struct {
	h handler
	// scope returns the scope needed for this request ("" = none).
	scope func(s *Server, r *apiReq) string
}

func scope(sc string) func(*Server, *apiReq) string {
	return func(*Server, *apiReq) string { return sc }
}

// channelScope returns a read or write scope based on the channel's type.
func channelScope(public, private, im string) func(*Server, *apiReq) string {
	return func(s *Server, r *apiReq) string {
		c, ok := s.channels[r.params["channel"]]
		if !ok {
			return public
		}
		switch {
		case c.IM:
			return im
		case c.Private:
			return private
		}
		return public
	}
}

var methods map[string]method

func init() {
	methods = map[string]method{
		"auth.test":                    {(*Server).authTest, scope("")},
		"chat.postMessage":             {(*Server).chatPostMessage, scope("chat:write")},
		"chat.update":                  {(*Server).chatUpdate, scope("chat:write")},
		"chat.postEphemeral":           {(*Server).chatPostEphemeral, scope("chat:write")},
		"chat.delete":                  {(*Server).chatDelete, scope("chat:write")},
		"conversations.open":           {(*Server).conversationsOpen, convOpenScope},
		"conversations.info":           {(*Server).conversationsInfo, channelScope("channels:read", "groups:read", "im:read")},
		"conversations.invite":         {(*Server).conversationsInvite, channelScope("channels:manage", "groups:write", "im:write")},
		"conversations.kick":           {(*Server).conversationsKick, channelScope("channels:manage", "groups:write", "im:write")},
		"conversations.members":        {(*Server).conversationsMembers, channelScope("channels:read", "groups:read", "im:read")},
		"users.info":                   {(*Server).usersInfo, scope("users:read")},
		"users.lookupByEmail":          {(*Server).usersLookupByEmail, scope("users:read.email")},
		"users.profile.get":            {(*Server).usersProfileGet, scope("users.profile:read")},
		"usergroups.list":              {(*Server).usergroupsList, scope("usergroups:read")},
		"usergroups.users.list":        {(*Server).usergroupsUsersList, scope("usergroups:read")},
		"usergroups.users.update":      {(*Server).usergroupsUsersUpdate, scope("usergroups:write")},
		"usergroups.disable":           {(*Server).usergroupsDisable, scope("usergroups:write")},
		"usergroups.enable":            {(*Server).usergroupsEnable, scope("usergroups:write")},
		"views.open":                   {(*Server).viewsOpen, scope("")},
		"views.push":                   {(*Server).viewsPush, scope("")},
		"views.update":                 {(*Server).viewsUpdate, scope("")},
		"views.publish":                {(*Server).viewsPublish, scope("")},
		"files.getUploadURLExternal":   {(*Server).filesGetUploadURL, scope("files:write")},
		"files.completeUploadExternal": {(*Server).filesCompleteUpload, scope("files:write")},
	}
}

func convOpenScope(s *Server, r *apiReq) string {
	if len(splitList(r.params["users"])) > 1 {
		return "mpim:write"
	}
	return "im:write"
}

func splitList(v string) []string {
	var out []string
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// parseBody decodes a form, multipart or JSON body into flat params.
func parseBody(r *http.Request) (map[string]string, error) {
	params := map[string]string{}
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch ct {
	case "application/json":
		body, err := io.ReadAll(io.LimitReader(r.Body, 8<<20))
		if err != nil {
			return nil, err
		}
		if len(strings.TrimSpace(string(body))) == 0 {
			break
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal(body, &m); err != nil {
			return nil, err
		}
		for k, v := range m {
			var str string
			if json.Unmarshal(v, &str) == nil {
				params[k] = str
			} else if string(v) != "null" {
				params[k] = string(v)
			}
		}
	case "multipart/form-data":
		if err := r.ParseMultipartForm(8 << 20); err != nil {
			return nil, err
		}
		for k, v := range r.MultipartForm.Value {
			params[k] = v[0]
		}
	default:
		if err := r.ParseForm(); err != nil {
			return nil, err
		}
		for k, v := range r.Form {
			params[k] = v[0]
		}
	}
	return params, nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func retryAfterSecs(d time.Duration) string {
	return strconv.Itoa(int(math.Ceil(d.Seconds())))
}

// applyFaults consumes one injected fault for method, if any. Caller holds s.mu.
func (s *Server) applyFaultsLocked(method string) *apiErr {
	if s.outage != 0 {
		return &apiErr{code: "internal_error", status: s.outage}
	}
	f, ok := s.faults[method]
	if !ok {
		return nil
	}
	switch {
	case f.statusN > 0:
		f.statusN--
		return &apiErr{code: "internal_error", status: f.status}
	case f.rlN > 0:
		f.rlN--
		return &apiErr{code: "ratelimited", status: http.StatusTooManyRequests, retryAfter: f.retryAfter}
	case f.failN > 0:
		f.failN--
		return errCode(f.failCode)
	}
	return nil
}

func (s *Server) latencyFor(method string) time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	if f, ok := s.faults[method]; ok {
		return f.latency
	}
	return 0
}

func sleepCtx(r *http.Request, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-r.Context().Done():
	}
}

// writeResult logs the call and writes the response. Caller holds s.mu.
func (s *Server) writeResultLocked(w http.ResponseWriter, r *apiReq, resp map[string]any, e *apiErr) {
	status := http.StatusOK
	call := Call{Method: r.method, Params: r.params, Token: r.token, At: s.clock.Now()}
	if e != nil {
		if e.status != 0 {
			status = e.status
		}
		body := map[string]any{"ok": false, "error": e.code}
		for k, v := range e.extra {
			body[k] = v
		}
		if status == http.StatusTooManyRequests {
			w.Header().Set("Retry-After", retryAfterSecs(e.retryAfter))
		}
		call.Error = e.code
		resp = body
	} else {
		if resp == nil {
			resp = map[string]any{}
		}
		resp["ok"] = true
	}
	call.HTTPStatus = status
	s.calls = append(s.calls, call)
	s.notify()
	writeJSON(w, status, resp)
}

// handleAPI serves POST /api/<method> (protocol §3, §8).
func (s *Server) handleAPI(w http.ResponseWriter, hr *http.Request) {
	name := strings.TrimPrefix(hr.URL.Path, "/api/")
	params, perr := parseBody(hr)
	if perr != nil {
		params = map[string]string{}
	}
	for k, v := range hr.URL.Query() {
		if _, ok := params[k]; !ok {
			params[k] = v[0]
		}
	}
	r := &apiReq{method: name, params: params}
	if a := hr.Header.Get("Authorization"); strings.HasPrefix(a, "Bearer ") {
		r.token, r.bearer = strings.TrimPrefix(a, "Bearer "), true
	}
	if t, ok := params["token"]; ok && t != "" {
		r.form = true
		if r.token == "" {
			r.token = t
		}
	}
	delete(params, "token")

	sleepCtx(hr, s.latencyFor(name))

	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.applyFaultsLocked(name); e != nil {
		s.writeResultLocked(w, r, nil, e)
		return
	}
	if perr != nil {
		s.writeResultLocked(w, r, nil, errCode("invalid_json"))
		return
	}
	if name == "apps.connections.open" {
		resp, e := s.appsConnectionsOpen(r)
		s.writeResultLocked(w, r, resp, e)
		return
	}
	m, ok := methods[name]
	if !ok {
		s.writeResultLocked(w, r, nil, errCode("unknown_method"))
		return
	}
	switch {
	case r.token == "":
		s.writeResultLocked(w, r, nil, errCode("not_authed"))
		return
	case r.token == s.appToken:
		s.writeResultLocked(w, r, nil, errCode("not_allowed_token_type"))
		return
	case r.token != s.botToken:
		s.writeResultLocked(w, r, nil, errCode("invalid_auth"))
		return
	}
	if need := m.scope(s, r); need != "" && !contains(s.scopes, need) {
		s.writeResultLocked(w, r, nil, &apiErr{code: "missing_scope", extra: map[string]any{
			"needed": need, "provided": strings.Join(s.scopes, ","),
		}})
		return
	}
	resp, e := m.h(s, r)
	s.writeResultLocked(w, r, resp, e)
}

// appsConnectionsOpen: the app-level token must be in the Authorization
// header (protocol §1.1, https://docs.slack.dev/reference/methods/apps.connections.open).
func (s *Server) appsConnectionsOpen(r *apiReq) (map[string]any, *apiErr) {
	switch {
	case r.form && !r.bearer:
		return nil, errCode("invalid_auth") // token as POST parameter (python-sdk #1877)
	case r.token == "":
		return nil, errCode("not_authed")
	case strings.HasPrefix(r.token, "xoxb-") || strings.HasPrefix(r.token, "xoxp-"):
		return nil, errCode("not_allowed_token_type")
	case r.token != s.appToken:
		return nil, errCode("invalid_auth")
	}
	ticket := uuid()
	s.tickets[ticket] = false
	host := strings.TrimPrefix(s.base, "http://")
	return map[string]any{"url": fmt.Sprintf("ws://%s/link/?ticket=%s&app_id=%s", host, ticket, randHex(64))}, nil
}

func (s *Server) authTest(r *apiReq) (map[string]any, *apiErr) {
	return map[string]any{
		"url": "https://" + s.domain + ".slack.com/", "team": "AccessBot Test", "user": "access-bot",
		"team_id": s.teamID, "user_id": s.botUserID, "bot_id": s.botID, "is_enterprise_install": false,
		"app_id": s.appID,
	}, nil
}

// ---- chat.* ----

// resolveChannel maps an id, U… user id (bot DM) or #name to a channel.
func (s *Server) resolveChannelLocked(id string) (*channelState, bool) {
	id = strings.TrimPrefix(id, "#")
	if id == "" {
		return nil, false
	}
	if strings.HasPrefix(id, "U") || strings.HasPrefix(id, "W") {
		u, ok := s.users[id]
		if !ok || u.ID == s.botUserID {
			return nil, false
		}
		return s.channels[s.dmLocked(id)], true
	}
	if c, ok := s.channels[id]; ok {
		return c, true
	}
	for _, k := range sortedKeys(s.channels) {
		if c := s.channels[k]; c.Name == id && !c.IM {
			return c, true
		}
	}
	return nil, false
}

// canPostLocked reports the error for posting as the bot into c.
func (s *Server) canPostLocked(c *channelState) *apiErr {
	if c.Archived {
		return errCode("is_archived")
	}
	if c.IM {
		if u := s.users[c.IMUser]; u != nil && u.Deleted {
			return errCode("user_disabled")
		}
		return nil
	}
	if !c.BotIsMember && (c.Private || !contains(s.scopes, "chat:write.public")) {
		if c.Private {
			return errCode("channel_not_found") // private channels are invisible to non-members
		}
		return errCode("not_in_channel")
	}
	return nil
}

func (s *Server) messageJSON(m *Message) map[string]any {
	out := map[string]any{
		"type": "message", "text": m.Text, "ts": m.TS, "team": s.teamID,
	}
	if m.BotID != "" {
		out["bot_id"] = m.BotID
		out["app_id"] = s.appID
		out["user"] = s.botUserID
		out["bot_profile"] = map[string]any{"id": m.BotID, "app_id": s.appID, "name": "Access Bot", "team_id": s.teamID, "deleted": false}
	} else if m.User != "" {
		out["user"] = m.User
	}
	if len(m.Blocks) > 0 {
		out["blocks"] = m.Blocks
	}
	if m.ThreadTS != "" {
		out["thread_ts"] = m.ThreadTS
	}
	if len(m.Edits) > 0 {
		out["edited"] = map[string]any{"user": s.botUserID, "ts": m.TS}
	}
	return out
}

// messageContent validates text/blocks for a message (protocol §4.3).
func (s *Server) messageContent(text, blocksParam string, needContent bool) (json.RawMessage, *apiErr) {
	if len([]rune(text)) > 40000 {
		return nil, errCode("msg_too_long")
	}
	blocks, e := parseBlocksParam(blocksParam, "message")
	if e != nil {
		return nil, e
	}
	if needContent && text == "" && len(blocks) == 0 {
		return nil, errCode("no_text")
	}
	return blocks, nil
}

func (s *Server) chatPostMessage(r *apiReq) (map[string]any, *apiErr) {
	p := r.params
	if p["channel"] == "" {
		return nil, errCode("channel_not_found")
	}
	c, ok := s.resolveChannelLocked(p["channel"])
	if !ok {
		return nil, errCode("channel_not_found")
	}
	if e := s.canPostLocked(c); e != nil {
		return nil, e
	}
	blocks, e := s.messageContent(p["text"], p["blocks"], p["attachments"] == "")
	if e != nil {
		return nil, e
	}
	if s.channelRL {
		if e := s.takeChannelToken(c.ID); e != nil {
			return nil, e
		}
	}
	m := &Message{Channel: c.ID, TS: s.newTS(), User: s.botUserID, BotID: s.botID, Text: p["text"], Blocks: blocks, ThreadTS: p["thread_ts"], Source: "chat.postMessage"}
	s.messages[c.ID] = append(s.messages[c.ID], m)
	return map[string]any{"channel": c.ID, "ts": m.TS, "message": s.messageJSON(m)}, nil
}

func (s *Server) takeChannelToken(ch string) *apiErr {
	const burst = 3.0
	now := s.clock.Now()
	b, ok := s.buckets[ch]
	if !ok {
		b = &bucket{tokens: burst, last: now}
		s.buckets[ch] = b
	}
	b.tokens = math.Min(burst, b.tokens+now.Sub(b.last).Seconds())
	b.last = now
	if b.tokens < 1 {
		return &apiErr{code: "ratelimited", status: http.StatusTooManyRequests, retryAfter: time.Second}
	}
	b.tokens--
	return nil
}

func (s *Server) findMessageLocked(ch, ts string) *Message {
	for _, m := range s.messages[ch] {
		if m.TS == ts {
			return m
		}
	}
	return nil
}

func (s *Server) chatUpdate(r *apiReq) (map[string]any, *apiErr) {
	p := r.params
	c, ok := s.channels[p["channel"]]
	if !ok {
		return nil, errCode("channel_not_found")
	}
	m := s.findMessageLocked(c.ID, p["ts"])
	if m == nil || m.Deleted {
		return nil, errCode("message_not_found")
	}
	if m.BotID != s.botID {
		return nil, errCode("cant_update_message")
	}
	_, hasText := p["text"]
	_, hasBlocks := p["blocks"]
	if !hasText && !hasBlocks && p["attachments"] == "" {
		return nil, errCode("no_text")
	}
	blocks, e := s.messageContent(p["text"], p["blocks"], false)
	if e != nil {
		return nil, e
	}
	m.Edits = append(m.Edits, Edit{Text: m.Text, Blocks: m.Blocks, At: s.clock.Now()})
	if hasText {
		m.Text = p["text"]
	}
	if hasBlocks {
		m.Blocks = blocks
	}
	return map[string]any{"channel": c.ID, "ts": m.TS, "text": m.Text, "message": s.messageJSON(m)}, nil
}

func (s *Server) chatPostEphemeral(r *apiReq) (map[string]any, *apiErr) {
	p := r.params
	c, ok := s.resolveChannelLocked(p["channel"])
	if !ok {
		return nil, errCode("channel_not_found")
	}
	if e := s.canPostLocked(c); e != nil {
		return nil, e
	}
	u, ok := s.users[p["user"]]
	if !ok {
		return nil, errCode("user_not_found")
	}
	if !contains(c.memberList(s.botUserID), u.ID) {
		return nil, errCode("user_not_in_channel")
	}
	blocks, e := s.messageContent(p["text"], p["blocks"], p["attachments"] == "")
	if e != nil {
		return nil, e
	}
	m := &Message{Channel: c.ID, TS: s.newTS(), User: s.botUserID, BotID: s.botID, Text: p["text"], Blocks: blocks, ThreadTS: p["thread_ts"], Ephemeral: true, ForUser: u.ID, Source: "chat.postEphemeral"}
	s.ephemerals[u.ID] = append(s.ephemerals[u.ID], m)
	return map[string]any{"message_ts": m.TS}, nil
}

func (s *Server) chatDelete(r *apiReq) (map[string]any, *apiErr) {
	p := r.params
	c, ok := s.channels[p["channel"]]
	if !ok {
		return nil, errCode("channel_not_found")
	}
	m := s.findMessageLocked(c.ID, p["ts"])
	if m == nil || m.Deleted {
		return nil, errCode("message_not_found")
	}
	if m.BotID != s.botID {
		return nil, errCode("cant_delete_message")
	}
	m.Deleted = true
	return map[string]any{"channel": c.ID, "ts": m.TS}, nil
}

// ---- conversations.* ----

func (s *Server) channelJSON(c *channelState) map[string]any {
	if c.IM {
		u := s.users[c.IMUser]
		return map[string]any{"id": c.ID, "created": c.Created, "is_im": true, "is_org_shared": false,
			"user": c.IMUser, "is_user_deleted": u != nil && u.Deleted, "priority": 0, "is_open": true}
	}
	members := c.memberList(s.botUserID)
	return map[string]any{
		"id": c.ID, "name": c.Name, "name_normalized": c.Name, "created": c.Created,
		"is_channel": !c.Private, "is_group": false, "is_im": false, "is_mpim": strings.HasPrefix(c.ID, "G") && c.Name == "",
		"is_private": c.Private, "is_archived": c.Archived, "is_general": false, "is_shared": false,
		"is_ext_shared": false, "is_org_shared": false, "is_member": c.BotIsMember,
		"creator": "", "context_team_id": s.teamID,
		"topic":       map[string]any{"value": "", "creator": "", "last_set": 0},
		"purpose":     map[string]any{"value": "", "creator": "", "last_set": 0},
		"num_members": len(members),
	}
}

func (s *Server) conversationsOpen(r *apiReq) (map[string]any, *apiErr) {
	p := r.params
	users := splitList(p["users"])
	if len(users) == 0 {
		if ch := p["channel"]; ch != "" {
			c, ok := s.channels[ch]
			if !ok {
				return nil, errCode("channel_not_found")
			}
			return map[string]any{"channel": s.channelJSON(c), "no_op": true, "already_open": true}, nil
		}
		return nil, errCode("users_list_not_supplied")
	}
	if len(users) > 8 {
		return nil, errCode("too_many_users")
	}
	for _, id := range users {
		u, ok := s.users[id]
		if !ok {
			return nil, errCode("user_not_found")
		}
		if u.Deleted {
			return nil, errCode("user_disabled")
		}
	}
	if len(users) > 1 {
		return nil, errCode("not_supported") // group DMs are not emulated
	}
	_, existed := s.dms[users[0]]
	id := s.dmLocked(users[0])
	ch := map[string]any{"id": id}
	if p["return_im"] == "true" || p["return_im"] == "1" {
		ch = s.channelJSON(s.channels[id])
	}
	out := map[string]any{"channel": ch}
	if existed {
		out["no_op"] = true
		out["already_open"] = true
	}
	return out, nil
}

func (s *Server) visibleChannelLocked(id string) (*channelState, *apiErr) {
	c, ok := s.channels[id]
	if !ok || (c.Private && !c.IM && !c.BotIsMember) {
		return nil, errCode("channel_not_found")
	}
	return c, nil
}

func (s *Server) conversationsInfo(r *apiReq) (map[string]any, *apiErr) {
	c, e := s.visibleChannelLocked(r.params["channel"])
	if e != nil {
		return nil, e
	}
	return map[string]any{"channel": s.channelJSON(c)}, nil
}

func (s *Server) conversationsInvite(r *apiReq) (map[string]any, *apiErr) {
	c, e := s.visibleChannelLocked(r.params["channel"])
	if e != nil {
		return nil, e
	}
	if c.IM {
		return nil, errCode("method_not_supported_for_channel_type")
	}
	if c.Archived {
		return nil, errCode("is_archived")
	}
	if !c.BotIsMember {
		return nil, errCode("not_in_channel")
	}
	users := splitList(r.params["users"])
	if len(users) == 0 {
		return nil, errCode("no_user")
	}
	if len(users) > 1000 {
		return nil, errCode("too_many_users")
	}
	var errs []map[string]any
	for _, id := range users {
		code := ""
		u, ok := s.users[id]
		switch {
		case id == s.botUserID:
			code = "cant_invite_self"
		case !ok:
			code = "user_not_found"
		case u.Deleted:
			code = "cant_invite"
		case contains(c.Members, id):
			code = "already_in_channel"
		}
		if code != "" {
			errs = append(errs, map[string]any{"user": id, "ok": false, "error": code})
		}
	}
	if len(errs) > 0 {
		return nil, &apiErr{code: errs[0]["error"].(string), extra: map[string]any{"errors": errs}}
	}
	c.Members = uniq(append(c.Members, users...))
	return map[string]any{"channel": s.channelJSON(c)}, nil
}

func (s *Server) conversationsKick(r *apiReq) (map[string]any, *apiErr) {
	c, e := s.visibleChannelLocked(r.params["channel"])
	if e != nil {
		return nil, e
	}
	if c.IM {
		return nil, errCode("method_not_supported_for_channel_type")
	}
	if !c.BotIsMember {
		return nil, errCode("not_in_channel")
	}
	id := r.params["user"]
	if id == s.botUserID {
		return nil, errCode("cant_kick_self")
	}
	if _, ok := s.users[id]; !ok {
		return nil, errCode("user_not_found")
	}
	if !contains(c.Members, id) {
		return nil, errCode("not_in_channel")
	}
	c.Members = remove(c.Members, id)
	return map[string]any{}, nil
}

func (s *Server) conversationsMembers(r *apiReq) (map[string]any, *apiErr) {
	c, e := s.visibleChannelLocked(r.params["channel"])
	if e != nil {
		return nil, e
	}
	limit := 100
	if l := r.params["limit"]; l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > 1000 {
			return nil, errCode("invalid_limit")
		}
		limit = n
	}
	off := 0
	if cur := r.params["cursor"]; cur != "" {
		b, err := base64.StdEncoding.DecodeString(cur)
		n, err2 := strconv.Atoi(strings.TrimPrefix(string(b), "offset:"))
		if err != nil || err2 != nil || !strings.HasPrefix(string(b), "offset:") || n < 0 {
			return nil, errCode("invalid_cursor")
		}
		off = n
	}
	members := c.memberList(s.botUserID)
	if off > len(members) {
		off = len(members)
	}
	end := min(off+limit, len(members))
	next := ""
	if end < len(members) {
		next = base64.StdEncoding.EncodeToString([]byte("offset:" + strconv.Itoa(end)))
	}
	page := append([]string{}, members[off:end]...)
	return map[string]any{"members": page, "response_metadata": map[string]any{"next_cursor": next}}, nil
}

// ---- users.* ----

func tzOffset(tz string, at time.Time) (string, int) {
	if tz == "" {
		return "", 0
	}
	loc, err := time.LoadLocation(tz)
	if err != nil {
		return tz, 0
	}
	name, off := at.In(loc).Zone()
	return name, off
}

func (s *Server) profileJSON(u *User, withEmail, withFields bool) map[string]any {
	p := map[string]any{
		"real_name": u.RealName, "real_name_normalized": u.RealName, "display_name": u.Name,
		"display_name_normalized": u.Name, "team": s.teamID, "status_text": "", "status_emoji": "",
		"first_name": firstWord(u.RealName), "last_name": restWords(u.RealName),
		"image_72": "https://avatars.slack-edge.com/emu_72.png",
	}
	if withEmail && u.Email != "" {
		p["email"] = u.Email
	}
	if u.IsBot {
		p["bot_id"] = s.botID
		p["api_app_id"] = s.appID
	}
	if withFields {
		f := map[string]any{}
		for k, v := range u.Fields {
			f[k] = map[string]any{"value": v, "alt": ""}
		}
		p["fields"] = f
	}
	return p
}

func firstWord(s string) string {
	if i := strings.IndexByte(s, ' '); i >= 0 {
		return s[:i]
	}
	return s
}

func restWords(s string) string {
	if i := strings.IndexByte(s, ' '); i >= 0 {
		return s[i+1:]
	}
	return ""
}

func (s *Server) userJSON(u *User) map[string]any {
	label, off := tzOffset(u.TZ, s.clock.Now())
	return map[string]any{
		"id": u.ID, "team_id": s.teamID, "name": u.Name, "deleted": u.Deleted, "real_name": u.RealName,
		"tz": u.TZ, "tz_label": label, "tz_offset": off, "is_bot": u.IsBot, "is_admin": u.IsAdmin,
		"is_owner": false, "is_primary_owner": false, "is_restricted": u.IsRestricted,
		"is_ultra_restricted": false, "is_app_user": false, "has_2fa": false, "updated": 1700000000,
		"is_email_confirmed": true, "who_can_share_contact_card": "EVERYONE", "locale": "en-US",
		"profile": s.profileJSON(u, contains(s.scopes, "users:read.email"), false),
	}
}

func (s *Server) usersInfo(r *apiReq) (map[string]any, *apiErr) {
	u, ok := s.users[r.params["user"]]
	if !ok {
		return nil, errCode("user_not_found")
	}
	return map[string]any{"user": s.userJSON(u)}, nil
}

func (s *Server) usersLookupByEmail(r *apiReq) (map[string]any, *apiErr) {
	email := strings.ToLower(strings.TrimSpace(r.params["email"]))
	if email == "" {
		return nil, errCode("invalid_email")
	}
	for _, id := range s.userOrder {
		if u := s.users[id]; strings.ToLower(u.Email) == email {
			return map[string]any{"user": s.userJSON(u)}, nil
		}
	}
	return nil, errCode("users_not_found")
}

func (s *Server) usersProfileGet(r *apiReq) (map[string]any, *apiErr) {
	id := r.params["user"]
	if id == "" {
		id = s.botUserID
	}
	u, ok := s.users[id]
	if !ok {
		return nil, errCode("user_not_found")
	}
	p := s.profileJSON(u, contains(s.scopes, "users:read.email"), true)
	if r.params["include_labels"] == "true" || r.params["include_labels"] == "1" {
		for k, v := range p["fields"].(map[string]any) {
			v.(map[string]any)["label"] = k
		}
	}
	return map[string]any{"profile": p}, nil
}

// ---- usergroups.* ----

func (s *Server) groupJSON(g *groupState, withUsers bool) map[string]any {
	out := map[string]any{
		"id": g.ID, "team_id": s.teamID, "is_usergroup": true, "is_subteam": true, "name": g.Name,
		"handle": g.Handle, "description": "", "is_external": false, "date_create": 1700000000,
		"date_update": 1700000000, "date_delete": 0, "auto_type": nil, "created_by": s.botUserID,
		"updated_by": s.botUserID, "deleted_by": nil, "prefs": map[string]any{"channels": []string{}, "groups": []string{}},
		"user_count": len(g.Members),
	}
	if g.Disabled {
		out["date_delete"] = 1700000001
	}
	if withUsers {
		out["users"] = append([]string{}, g.Members...)
	}
	return out
}

func truthy(v string) bool { return v == "true" || v == "1" }

func (s *Server) usergroupsList(r *apiReq) (map[string]any, *apiErr) {
	out := []any{}
	for _, id := range s.groupOrder {
		g := s.groups[id]
		if g.Disabled && !truthy(r.params["include_disabled"]) {
			continue
		}
		out = append(out, s.groupJSON(g, truthy(r.params["include_users"])))
	}
	return map[string]any{"usergroups": out}, nil
}

func (s *Server) usergroupsUsersList(r *apiReq) (map[string]any, *apiErr) {
	g, ok := s.groups[r.params["usergroup"]]
	if !ok || (g.Disabled && !truthy(r.params["include_disabled"])) {
		return nil, errCode("no_such_subteam")
	}
	return map[string]any{"users": append([]string{}, g.Members...)}, nil
}

// usergroupsUsersUpdate replaces the membership (protocol §3, §7 pitfall 13).
// An empty list → no_users_provided and unknown/deleted/bot users →
// invalid_users (both unverified, protocol §9).
func (s *Server) usergroupsUsersUpdate(r *apiReq) (map[string]any, *apiErr) {
	g, ok := s.groups[r.params["usergroup"]]
	if !ok {
		return nil, errCode("no_such_subteam")
	}
	users := uniq(splitList(r.params["users"]))
	if len(users) == 0 {
		return nil, errCode("no_users_provided")
	}
	for _, id := range users {
		u, ok := s.users[id]
		if !ok || u.Deleted || u.IsBot {
			return nil, errCode("invalid_users")
		}
	}
	g.Members = users
	g.history = append(g.history, append([]string(nil), users...))
	return map[string]any{"usergroup": s.groupJSON(g, true)}, nil
}

// usergroupsDisable disables a user group (its members are kept, as Slack
// keeps them; a disabled group mentions nobody). Slack does not allow an
// empty user group, so disabling is how the last member is removed
// (protocol §3, unverified). Errors: no_such_subteam, already_disabled.
func (s *Server) usergroupsDisable(r *apiReq) (map[string]any, *apiErr) {
	g, ok := s.groups[r.params["usergroup"]]
	if !ok {
		return nil, errCode("no_such_subteam")
	}
	if g.Disabled {
		return nil, errCode("already_disabled")
	}
	g.Disabled = true
	g.history = append(g.history, []string{})
	return map[string]any{"usergroup": s.groupJSON(g, truthy(r.params["include_count"]))}, nil
}

// usergroupsEnable re-enables a disabled group. Errors: no_such_subteam,
// already_enabled.
func (s *Server) usergroupsEnable(r *apiReq) (map[string]any, *apiErr) {
	g, ok := s.groups[r.params["usergroup"]]
	if !ok {
		return nil, errCode("no_such_subteam")
	}
	if !g.Disabled {
		return nil, errCode("already_enabled")
	}
	g.Disabled = false
	return map[string]any{"usergroup": s.groupJSON(g, false)}, nil
}

// ---- files ----

func (s *Server) filesGetUploadURL(r *apiReq) (map[string]any, *apiErr) {
	name := r.params["filename"]
	n, err := strconv.Atoi(r.params["length"])
	if name == "" || err != nil || n <= 0 {
		return nil, errCode("invalid_arguments")
	}
	id := s.newID("F")
	s.files[id] = &File{ID: id, Name: name, Title: name}
	s.fileOrder = append(s.fileOrder, id)
	return map[string]any{"upload_url": s.base + "/upload/v1/" + id, "file_id": id}, nil
}

// handleUpload serves the upload URL (multipart field "file"; the bot token
// as Bearer header). Reply is text "OK - <bytes>" like files.slack.com.
func (s *Server) handleUpload(w http.ResponseWriter, hr *http.Request) {
	id := hr.URL.Path[strings.LastIndexByte(hr.URL.Path, '/')+1:]
	sleepCtx(hr, s.latencyFor("upload"))
	var content []byte
	var rerr error
	if f, _, err := hr.FormFile("file"); err == nil {
		content, rerr = io.ReadAll(f)
		f.Close()
	} else {
		content, rerr = io.ReadAll(hr.Body)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	call := Call{Method: "upload", Params: map[string]string{"file_id": id}, Token: strings.TrimPrefix(hr.Header.Get("Authorization"), "Bearer "), At: s.clock.Now(), HTTPStatus: 200}
	if e := s.applyFaultsLocked("upload"); e != nil {
		call.Error, call.HTTPStatus = e.code, max(e.status, 500)
		s.calls = append(s.calls, call)
		http.Error(w, e.code, call.HTTPStatus)
		return
	}
	f, ok := s.files[id]
	if !ok || rerr != nil {
		call.Error, call.HTTPStatus = "file_not_found", 404
		s.calls = append(s.calls, call)
		http.Error(w, "not found", 404)
		return
	}
	f.Content = content
	s.calls = append(s.calls, call)
	s.notify()
	w.Header().Set("Content-Type", "text/plain")
	fmt.Fprintf(w, "OK - %d", len(content))
}

func (s *Server) filesCompleteUpload(r *apiReq) (map[string]any, *apiErr) {
	var list []struct {
		ID    string `json:"id"`
		Title string `json:"title"`
	}
	if err := json.Unmarshal([]byte(r.params["files"]), &list); err != nil || len(list) == 0 {
		return nil, errCode("invalid_arguments")
	}
	for _, it := range list {
		f, ok := s.files[it.ID]
		if !ok || f.Content == nil {
			return nil, errCode("file_not_found")
		}
	}
	chans := splitList(r.params["channels"])
	if c := r.params["channel_id"]; c != "" {
		chans = append(chans, c)
	}
	var resolved []*channelState
	for _, id := range chans {
		c, ok := s.resolveChannelLocked(id)
		if !ok {
			return nil, errCode("channel_not_found")
		}
		if e := s.canPostLocked(c); e != nil {
			return nil, e
		}
		resolved = append(resolved, c)
	}
	var out []any
	var ids []string
	for _, it := range list {
		f := s.files[it.ID]
		if it.Title != "" {
			f.Title = it.Title
		}
		f.Completed = true
		f.InitialComment = r.params["initial_comment"]
		for _, c := range resolved {
			f.Channels = uniq(append(f.Channels, c.ID))
		}
		ids = append(ids, f.ID)
		out = append(out, map[string]any{"id": f.ID, "title": f.Title})
	}
	for _, c := range resolved {
		m := &Message{Channel: c.ID, TS: s.newTS(), User: s.botUserID, BotID: s.botID, Text: r.params["initial_comment"], ThreadTS: r.params["thread_ts"], Source: "files.completeUploadExternal", Files: ids}
		s.messages[c.ID] = append(s.messages[c.ID], m)
	}
	return map[string]any{"files": out}, nil
}

// ---- response_url ----

// handleRespond serves response_urls (protocol §3 "response_url"): JSON body
// {text, blocks, response_type, replace_original, delete_original}; at most 5
// uses within 30 minutes on the injectable clock; reply {"ok":true}.
func (s *Server) handleRespond(w http.ResponseWriter, hr *http.Request) {
	id := hr.URL.Path[strings.LastIndexByte(hr.URL.Path, '/')+1:]
	sleepCtx(hr, s.latencyFor("response_url"))
	body, _ := io.ReadAll(io.LimitReader(hr.Body, 8<<20))
	s.mu.Lock()
	defer s.mu.Unlock()
	r := &apiReq{method: "response_url", params: map[string]string{"response_url_id": id, "body": string(body)}}
	if e := s.applyFaultsLocked("response_url"); e != nil {
		s.writeResultLocked(w, r, nil, e)
		return
	}
	resp, e := s.respond(id, body)
	s.writeResultLocked(w, r, resp, e)
}

func (s *Server) respond(id string, body []byte) (map[string]any, *apiErr) {
	ru, ok := s.respURLs[id]
	if !ok {
		return nil, &apiErr{code: "invalid_url", status: http.StatusNotFound}
	}
	if s.clock.Now().Sub(ru.issued) > 30*time.Minute {
		return nil, &apiErr{code: "expired_url", status: http.StatusNotFound}
	}
	if ru.uses >= 5 {
		return nil, &apiErr{code: "used_url", status: http.StatusNotFound}
	}
	var b struct {
		Text            string          `json:"text"`
		Blocks          json.RawMessage `json:"blocks"`
		ResponseType    string          `json:"response_type"`
		ReplaceOriginal bool            `json:"replace_original"`
		DeleteOriginal  bool            `json:"delete_original"`
		ThreadTS        string          `json:"thread_ts"`
	}
	if err := json.Unmarshal(body, &b); err != nil {
		return nil, errCode("invalid_json")
	}
	blocksParam := ""
	if len(b.Blocks) > 0 && string(b.Blocks) != "null" {
		blocksParam = string(b.Blocks)
	}
	ru.uses++
	if b.DeleteOriginal {
		if m := s.originalLocked(ru); m != nil {
			m.Deleted = true
			return map[string]any{}, nil
		}
		return nil, errCode("message_not_found")
	}
	blocks, e := s.messageContent(b.Text, blocksParam, true)
	if e != nil {
		return nil, e
	}
	if b.ReplaceOriginal {
		m := s.originalLocked(ru)
		if m == nil {
			return nil, errCode("message_not_found")
		}
		m.Edits = append(m.Edits, Edit{Text: m.Text, Blocks: m.Blocks, At: s.clock.Now()})
		m.Text, m.Blocks = b.Text, blocks
		return map[string]any{}, nil
	}
	m := &Message{Channel: ru.channel, TS: s.newTS(), User: s.botUserID, BotID: s.botID, Text: b.Text, Blocks: blocks, ThreadTS: b.ThreadTS, Source: "response_url"}
	if b.ResponseType == "in_channel" {
		s.messages[ru.channel] = append(s.messages[ru.channel], m)
	} else {
		m.Ephemeral, m.ForUser = true, ru.user
		s.ephemerals[ru.user] = append(s.ephemerals[ru.user], m)
		ru.lastEph = m.TS
	}
	return map[string]any{}, nil
}

// originalLocked finds the message a response_url refers to: the message the
// action came from, or for slash commands the last ephemeral posted via it.
func (s *Server) originalLocked(ru *responseURL) *Message {
	ts, eph := ru.msgTS, ru.ephem
	if ts == "" {
		ts, eph = ru.lastEph, true
	}
	if ts == "" {
		return nil
	}
	if eph {
		for _, m := range s.ephemerals[ru.user] {
			if m.TS == ts {
				return m
			}
		}
		return nil
	}
	return s.findMessageLocked(ru.channel, ts)
}
