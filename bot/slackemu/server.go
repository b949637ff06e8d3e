package slackemu

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Clock is the emulator's source of time for trigger_id/response_url expiry,
// per-channel rate limiting, message timestamps and call-log times. The
// default is the real wall clock.
type Clock interface{ Now() time.Time }

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

// FakeClock is a manually advanced Clock for tests. The zero value starts at
// 2023-11-14T22:13:20Z (Unix 1700000000). It is safe for concurrent use.
type FakeClock struct {
	mu  sync.Mutex
	now time.Time
}

// NewFakeClock returns a FakeClock set to t.
func NewFakeClock(t time.Time) *FakeClock { return &FakeClock{now: t} }

// Now returns the current fake time.
func (c *FakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.now.IsZero() {
		c.now = time.Unix(1700000000, 0)
	}
	return c.now
}

// Advance moves the fake time forward by d.
func (c *FakeClock) Advance(d time.Duration) {
	c.Now()
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// Options configures New. Zero values give the documented defaults.
type Options struct {
	// Clock is the injectable clock (default: real time).
	Clock Clock
	// PingInterval is the interval between server WebSocket PINGs
	// (default 5 s; < 0 disables pings). Protocol §1.5/§8.
	PingInterval time.Duration
	// TeamID and AppID override the generated T…/A… ids.
	TeamID, AppID string
	// TeamDomain is the workspace domain (default "accessbot-test").
	TeamDomain string
	// EscapeCommandText entity-escapes &, <, > in slash-command text the way
	// Slack escapes message text (protocol §9 open point: configurable).
	EscapeCommandText bool
	// AckTimeout is the ack deadline for envelopes (default 3 s, protocol §1.4).
	// Tests may shorten it to exercise dispatch_failed quickly.
	AckTimeout time.Duration
	// Logf, if set, receives debug logs.
	Logf func(string, ...any)
}

// User is a seeded workspace member.
type User struct {
	ID, Name, RealName, Email, TZ string
	IsBot, Deleted                bool
	IsAdmin, IsRestricted         bool
	// Fields are custom profile fields keyed by field ID, e.g.
	// {"Xf0MANAGER": "U0BOB0001"} (users.profile.get "fields").
	Fields map[string]string
}

// Channel is a seeded conversation. Members are user IDs; BotIsMember says
// whether the bot user has joined.
type Channel struct {
	ID, Name    string
	Private     bool
	Archived    bool
	Members     []string
	BotIsMember bool
}

// UserGroup is a seeded user group (S…).
type UserGroup struct {
	ID, Handle, Name string
	Members          []string
	Disabled         bool
}

// Edit is a prior version of a message, kept when it is edited by chat.update
// or a response_url replace_original.
type Edit struct {
	Text   string
	Blocks json.RawMessage
	At     time.Time
}

// Message is a stored message (or ephemeral message).
type Message struct {
	Channel, TS, User, BotID, Text string
	Blocks                         json.RawMessage
	Edits                          []Edit
	Deleted                        bool
	ThreadTS                       string
	// Ephemeral marks messages visible only to ForUser.
	Ephemeral bool
	ForUser   string
	// Source says how it was created: "chat.postMessage", "chat.postEphemeral",
	// "ack", "response_url", "files.completeUploadExternal".
	Source string
	Files  []string
}

// Button is a button element found in a message's or view's blocks.
type Button struct {
	ActionID, BlockID, Text, Value, Style string
}

// Buttons returns all button elements (in actions blocks and section
// accessories), in block order.
func (m Message) Buttons() []Button { return buttonsIn(m.Blocks) }

// View is a modal or App Home view as stored by the emulator.
type View struct {
	ID, Type, CallbackID, PrivateMetadata, Hash, ExternalID string
	Title                                                   string
	UserID                                                  string
	Blocks                                                  json.RawMessage
	// Errors are the field errors from the last response_action "errors".
	Errors        map[string]string
	NotifyOnClose bool
	RootViewID    string
	PreviousID    string
	// Raw is the view JSON as returned by views.* (ids auto-filled).
	Raw json.RawMessage
}

// Buttons returns the view's button elements.
func (v View) Buttons() []Button { return buttonsIn(v.Blocks) }

// Call is one logged HTTP call to the Web API (or "response_url"/"upload").
type Call struct {
	Method string
	// Params are the form fields, or the top-level JSON fields flattened to
	// strings (non-string values as raw JSON).
	Params     map[string]string
	Token      string
	At         time.Time
	Error      string // "" if ok
	HTTPStatus int
}

// Failure is a failure the user would see in the Slack client.
type Failure struct {
	EnvelopeID, Type, UserID string
	// Kind is "dispatch_failed" (slash command not acked), "trouble_connecting"
	// (view_submission not acked, or bad errors keys), "interaction_failed"
	// (block_actions not acked), "invalid_response" (ack payload Slack would
	// reject) or "event_not_acked" (events_api not acked after 3 retries).
	Kind   string
	Detail string
}

// AckRecord is one ack frame received from a client.
type AckRecord struct {
	EnvelopeID string
	Payload    json.RawMessage
	Latency    time.Duration
	Late       bool // arrived after the ack deadline; ignored
	Unknown    bool // no such envelope
	ConnID     int
}

// File is a file uploaded via files.getUploadURLExternal / upload URL /
// files.completeUploadExternal.
type File struct {
	ID, Name, Title string
	Content         []byte
	Channels        []string
	InitialComment  string
	Completed       bool
}

// Scopes is the bot token scope set from the manifest in protocol §6, plus
// files:write for the file upload methods.
var defaultScopes = []string{
	"commands", "chat:write", "im:write", "users:read", "users:read.email",
	"users.profile:read", "usergroups:read", "usergroups:write", "channels:read",
	"groups:read", "channels:manage", "groups:write", "files:write",
}

type channelState struct {
	Channel
	IM      bool
	IMUser  string
	Created int64
}

type groupState struct {
	UserGroup
	history [][]string
}

type trigger struct {
	user   string
	issued time.Time
	used   bool
}

type responseURL struct {
	id      string
	user    string
	channel string
	msgTS   string // message the action came from ("" for slash commands)
	ephem   bool
	issued  time.Time
	uses    int
	lastEph string // ts of the last ephemeral created via this URL
}

type methodFaults struct {
	failCode   string
	failN      int
	status     int
	statusN    int
	retryAfter time.Duration
	rlN        int
	latency    time.Duration
}

type viewState struct {
	View
	open bool
	home bool
	// state values: block_id -> action_id -> element state
	values map[string]map[string]any
}

type bucket struct {
	tokens float64
	last   time.Time
}

// Server is a running emulator. Create it with New and stop it with Close.
type Server struct {
	opts  Options
	clock Clock
	hs    *httptest.Server
	base  string // http://127.0.0.1:P

	appToken, botToken string
	teamID, appID      string
	botUserID, botID   string
	domain             string

	mu           sync.Mutex
	scopes       []string
	users        map[string]*User
	userOrder    []string
	channels     map[string]*channelState
	dms          map[string]string
	groups       map[string]*groupState
	groupOrder   []string
	messages     map[string][]*Message
	ephemerals   map[string][]*Message
	views        map[string]*viewState
	stacks       map[string][]string
	homes        map[string]string
	triggers     map[string]*trigger
	respURLs     map[string]*responseURL
	calls        []Call
	failures     []Failure
	acks         []AckRecord
	envs         map[string]*Envelope
	queue        []*Envelope
	conns        []*wsConn
	tickets      map[string]bool
	faults       map[string]*methodFaults
	outage       int // HTTP status every Web API call answers; 0: none
	channelRL    bool
	buckets      map[string]*bucket
	files        map[string]*File
	fileOrder    []string
	seq          int64
	lastTS       time.Time
	pingInterval time.Duration
	connects     int
	pongs        int
	connSeq      int
	rejectUpg    int
	rejectStatus int
	changed      chan struct{}
	closed       bool
	wg           sync.WaitGroup
}

// New starts an emulator on an httptest server bound to 127.0.0.1.
// The returned server has a bot user, the default scopes and no other users.
func New(opts Options) *Server {
	s := &Server{opts: opts, clock: opts.Clock}
	if s.clock == nil {
		s.clock = realClock{}
	}
	if s.opts.AckTimeout <= 0 {
		s.opts.AckTimeout = 3 * time.Second
	}
	s.pingInterval = opts.PingInterval
	if s.pingInterval == 0 {
		s.pingInterval = 5 * time.Second
	}
	s.teamID = opts.TeamID
	if s.teamID == "" {
		s.teamID = "T0" + randUpper(8)
	}
	s.appID = opts.AppID
	if s.appID == "" {
		s.appID = "A0" + randUpper(8)
	}
	s.domain = opts.TeamDomain
	if s.domain == "" {
		s.domain = "accessbot-test"
	}
	s.botUserID = "U0" + randUpper(8)
	s.botID = "B0" + randUpper(8)
	s.appToken = "xapp-1-" + s.appID + "-" + randDigits(13) + "-" + randHex(32)
	s.botToken = "xoxb-" + randDigits(12) + "-" + randDigits(13) + "-" + randAlnum(24)
	s.scopes = append([]string(nil), defaultScopes...)
	s.users = map[string]*User{}
	s.channels = map[string]*channelState{}
	s.dms = map[string]string{}
	s.groups = map[string]*groupState{}
	s.messages = map[string][]*Message{}
	s.ephemerals = map[string][]*Message{}
	s.views = map[string]*viewState{}
	s.stacks = map[string][]string{}
	s.homes = map[string]string{}
	s.triggers = map[string]*trigger{}
	s.respURLs = map[string]*responseURL{}
	s.envs = map[string]*Envelope{}
	s.tickets = map[string]bool{}
	s.faults = map[string]*methodFaults{}
	s.buckets = map[string]*bucket{}
	s.files = map[string]*File{}
	s.changed = make(chan struct{})
	s.users[s.botUserID] = &User{ID: s.botUserID, Name: "access-bot", RealName: "Access Bot", IsBot: true, TZ: "America/Los_Angeles"}

	mux := http.NewServeMux()
	mux.HandleFunc("/api/", s.handleAPI)
	mux.HandleFunc("/link/", s.handleLink)
	mux.HandleFunc("/respond/", s.handleRespond)
	mux.HandleFunc("/upload/", s.handleUpload)
	s.hs = httptest.NewServer(mux)
	s.base = s.hs.URL
	return s
}

// Close closes all websocket connections, stops timers and the HTTP server,
// and waits for every goroutine the emulator started.
func (s *Server) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	conns := append([]*wsConn(nil), s.conns...)
	for _, e := range s.envs {
		if e.timer != nil {
			e.timer.Stop()
		}
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.closeNow()
	}
	s.hs.CloseClientConnections()
	s.hs.Close()
	s.wg.Wait()
}

// URL returns the server base URL "http://127.0.0.1:P".
func (s *Server) URL() string { return s.base }

// APIURL returns the Web API base "http://127.0.0.1:P/api/" (with the trailing
// slash slack.OptionAPIURL needs, protocol §1.2).
func (s *Server) APIURL() string { return s.base + "/api/" }

// AppToken returns the app-level token ("xapp-…") accepted by
// apps.connections.open.
func (s *Server) AppToken() string { return s.appToken }

// BotToken returns the bot token ("xoxb-…") accepted by all other methods.
func (s *Server) BotToken() string { return s.botToken }

// BotUserID returns the bot user's id (U…).
func (s *Server) BotUserID() string { return s.botUserID }

// BotID returns the bot's bot id (B…).
func (s *Server) BotID() string { return s.botID }

// TeamID returns the workspace id (T…).
func (s *Server) TeamID() string { return s.teamID }

// AppID returns the app id (A…).
func (s *Server) AppID() string { return s.appID }

// SetScopes replaces the bot token's scopes (for missing_scope tests).
func (s *Server) SetScopes(scopes ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.scopes = append([]string(nil), scopes...)
}

func (s *Server) logf(format string, args ...any) {
	if s.opts.Logf != nil {
		s.opts.Logf(format, args...)
	}
}

// notify wakes waiters on state changes; caller holds s.mu.
func (s *Server) notify() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// waitFor waits until cond (called with s.mu held) is true or timeout passes.
func (s *Server) waitFor(timeout time.Duration, cond func() bool) bool {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		s.mu.Lock()
		if cond() {
			s.mu.Unlock()
			return true
		}
		ch := s.changed
		s.mu.Unlock()
		select {
		case <-ch:
		case <-deadline.C:
			s.mu.Lock()
			ok := cond()
			s.mu.Unlock()
			return ok
		}
	}
}

// ---- seeding ----

// AddUser adds or replaces a workspace user. Empty ID gets a generated U… id.
func (s *Server) AddUser(u User) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if u.ID == "" {
		u.ID = s.newID("U")
	}
	if u.Name == "" {
		u.Name = strings.ToLower(u.ID)
	}
	f := map[string]string{}
	for k, v := range u.Fields {
		f[k] = v
	}
	u.Fields = f
	if _, ok := s.users[u.ID]; !ok {
		s.userOrder = append(s.userOrder, u.ID)
	}
	s.users[u.ID] = &u
}

// AddChannel adds or replaces a channel. Empty ID gets a generated C… id.
func (s *Server) AddChannel(c Channel) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c.ID == "" {
		c.ID = s.newID("C")
	}
	if c.Name == "" {
		c.Name = strings.ToLower(c.ID)
	}
	c.Members = uniq(c.Members)
	s.channels[c.ID] = &channelState{Channel: c, Created: s.clock.Now().Unix()}
}

// AddUserGroup adds or replaces a user group. Empty ID gets a generated S… id.
func (s *Server) AddUserGroup(g UserGroup) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if g.ID == "" {
		g.ID = s.newID("S")
	}
	if g.Name == "" {
		g.Name = g.Handle
	}
	g.Members = uniq(g.Members)
	if _, ok := s.groups[g.ID]; !ok {
		s.groupOrder = append(s.groupOrder, g.ID)
	}
	s.groups[g.ID] = &groupState{UserGroup: g, history: [][]string{append([]string(nil), g.Members...)}}
}

// ---- inspection ----

// DMChannel returns the bot↔user IM channel id (D…), creating it on demand.
func (s *Server) DMChannel(userID string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.dmLocked(userID)
}

func (s *Server) dmLocked(userID string) string {
	if id, ok := s.dms[userID]; ok {
		return id
	}
	id := s.newID("D")
	s.dms[userID] = id
	s.channels[id] = &channelState{Channel: Channel{ID: id, Name: userID, Private: true, Members: []string{userID}, BotIsMember: true}, IM: true, IMUser: userID, Created: s.clock.Now().Unix()}
	return id
}

func copyMsg(m *Message) Message {
	c := *m
	c.Edits = append([]Edit(nil), m.Edits...)
	c.Files = append([]string(nil), m.Files...)
	return c
}

// Messages returns copies of the messages in a channel (a U… id means the
// bot DM with that user), oldest first, including deleted ones (Deleted set).
func (s *Server) Messages(channelID string) []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	if strings.HasPrefix(channelID, "U") || strings.HasPrefix(channelID, "W") {
		channelID = s.dmLocked(channelID)
	}
	var out []Message
	for _, m := range s.messages[channelID] {
		out = append(out, copyMsg(m))
	}
	return out
}

// Message returns the stored message with the given ts in channelID.
func (s *Server) Message(channelID, ts string) (Message, bool) {
	for _, m := range s.Messages(channelID) {
		if m.TS == ts {
			return m, true
		}
	}
	return Message{}, false
}

// WaitMessages waits until channelID has at least n messages (not counting
// deleted ones) and returns them.
func (s *Server) WaitMessages(channelID string, n int, timeout time.Duration) ([]Message, error) {
	s.mu.Lock()
	if strings.HasPrefix(channelID, "U") {
		channelID = s.dmLocked(channelID)
	}
	s.mu.Unlock()
	ok := s.waitFor(timeout, func() bool {
		c := 0
		for _, m := range s.messages[channelID] {
			if !m.Deleted {
				c++
			}
		}
		return c >= n
	})
	msgs := s.Messages(channelID)
	if !ok {
		return msgs, fmt.Errorf("slackemu: %d messages in %s after %v, want %d", len(msgs), channelID, timeout, n)
	}
	return msgs, nil
}

// Ephemerals returns the ephemeral messages shown to userID: slash-command ack
// replies, response_url ephemerals and chat.postEphemeral.
func (s *Server) Ephemerals(userID string) []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Message
	for _, m := range s.ephemerals[userID] {
		out = append(out, copyMsg(m))
	}
	return out
}

// WaitEphemerals waits until userID has at least n ephemerals.
func (s *Server) WaitEphemerals(userID string, n int, timeout time.Duration) ([]Message, error) {
	ok := s.waitFor(timeout, func() bool { return len(s.ephemerals[userID]) >= n })
	e := s.Ephemerals(userID)
	if !ok {
		return e, fmt.Errorf("slackemu: %d ephemerals for %s after %v, want %d", len(e), userID, timeout, n)
	}
	return e, nil
}

func (v *viewState) snapshot() View {
	c := v.View
	c.Errors = map[string]string{}
	for k, e := range v.Errors {
		c.Errors[k] = e
	}
	return c
}

// OpenViews returns the user's open modal stack, bottom first.
func (s *Server) OpenViews(userID string) []View {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []View
	for _, id := range s.stacks[userID] {
		out = append(out, s.views[id].snapshot())
	}
	return out
}

// WaitOpenViews waits until the user has exactly n open modals.
func (s *Server) WaitOpenViews(userID string, n int, timeout time.Duration) ([]View, error) {
	ok := s.waitFor(timeout, func() bool { return len(s.stacks[userID]) == n })
	v := s.OpenViews(userID)
	if !ok {
		return v, fmt.Errorf("slackemu: %d open views for %s after %v, want %d", len(v), userID, timeout, n)
	}
	return v, nil
}

// HomeView returns the user's published App Home view.
func (s *Server) HomeView(userID string) (View, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id, ok := s.homes[userID]
	if !ok {
		return View{}, false
	}
	return s.views[id].snapshot(), true
}

// WaitHomeView waits until a home view satisfying pred (nil = any) is published.
func (s *Server) WaitHomeView(userID string, timeout time.Duration, pred func(View) bool) (View, error) {
	var got View
	ok := s.waitFor(timeout, func() bool {
		id, ok := s.homes[userID]
		if !ok {
			return false
		}
		got = s.views[id].snapshot()
		return pred == nil || pred(got)
	})
	if !ok {
		return got, fmt.Errorf("slackemu: no matching home view for %s after %v", userID, timeout)
	}
	return got, nil
}

// GroupMembers returns the current members of a user group.
func (s *Server) GroupMembers(groupID string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if g, ok := s.groups[groupID]; ok && !g.Disabled {
		return append([]string(nil), g.Members...)
	}
	return nil // a disabled group gives nobody anything
}

// GroupDisabled reports whether the user group is disabled.
func (s *Server) GroupDisabled(groupID string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	g, ok := s.groups[groupID]
	return ok && g.Disabled
}

// GroupHistory returns every membership the group has had, the seeded one first.
func (s *Server) GroupHistory(groupID string) [][]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	g, ok := s.groups[groupID]
	if !ok {
		return nil
	}
	out := make([][]string, len(g.history))
	for i, h := range g.history {
		out[i] = append([]string(nil), h...)
	}
	return out
}

// ChannelMembers returns the channel's members (the bot included when it is
// a member).
func (s *Server) ChannelMembers(channelID string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.channels[channelID]
	if !ok {
		return nil
	}
	return c.memberList(s.botUserID)
}

func (c *channelState) memberList(bot string) []string {
	out := append([]string(nil), c.Members...)
	if c.BotIsMember && !contains(out, bot) {
		out = append(out, bot)
	}
	return out
}

// Calls returns the call log for method ("" = all methods), oldest first.
func (s *Server) Calls(method string) []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Call
	for _, c := range s.calls {
		if method == "" || c.Method == method {
			p := map[string]string{}
			for k, v := range c.Params {
				p[k] = v
			}
			c.Params = p
			out = append(out, c)
		}
	}
	return out
}

// Failures returns user-visible failures recorded so far.
func (s *Server) Failures() []Failure {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Failure(nil), s.failures...)
}

// WaitFailures waits until at least n failures are recorded.
func (s *Server) WaitFailures(n int, timeout time.Duration) ([]Failure, error) {
	ok := s.waitFor(timeout, func() bool { return len(s.failures) >= n })
	f := s.Failures()
	if !ok {
		return f, fmt.Errorf("slackemu: %d failures after %v, want %d", len(f), timeout, n)
	}
	return f, nil
}

// Acks returns every ack frame received, in arrival order.
func (s *Server) Acks() []AckRecord {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]AckRecord(nil), s.acks...)
}

// Pongs returns the number of PONG frames received from clients.
func (s *Server) Pongs() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pongs
}

// Files returns uploaded files shared to channelOrUser (a U… id means the bot
// DM with that user); "" returns all files, including unshared ones.
func (s *Server) Files(channelOrUser string) []File {
	s.mu.Lock()
	defer s.mu.Unlock()
	if strings.HasPrefix(channelOrUser, "U") {
		channelOrUser = s.dmLocked(channelOrUser)
	}
	var out []File
	for _, id := range s.fileOrder {
		f := s.files[id]
		if channelOrUser == "" || contains(f.Channels, channelOrUser) {
			c := *f
			c.Content = append([]byte(nil), f.Content...)
			c.Channels = append([]string(nil), f.Channels...)
			out = append(out, c)
		}
	}
	return out
}

// ---- faults ----

func (s *Server) fault(method string) *methodFaults {
	f, ok := s.faults[method]
	if !ok {
		f = &methodFaults{}
		s.faults[method] = f
	}
	return f
}

// FailNext makes the next n calls of method return {"ok":false,"error":errorCode}.
// Method may be a Web API method, "response_url" or "upload".
func (s *Server) FailNext(method, errorCode string, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.fault(method)
	f.failCode, f.failN = errorCode, n
}

// RateLimit makes the next n calls of method get HTTP 429 with
// Retry-After (whole seconds, rounded up) and {"ok":false,"error":"ratelimited"}
// (protocol §3, real capture in slack-go #240).
func (s *Server) RateLimit(method string, retryAfter time.Duration, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.fault(method)
	f.retryAfter, f.rlN = retryAfter, n
}

// HTTPStatus makes the next n calls of method return the given HTTP status
// with a small JSON error body.
func (s *Server) HTTPStatus(method string, status, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.fault(method)
	f.status, f.statusN = status, n
}

// Outage makes every Web API call answer the given HTTP status (500: Slack
// is down) until Outage(0); calls are still recorded (Calls), with their
// parameters. Socket Mode connections already open stay open.
func (s *Server) Outage(status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.outage = status
}

// Latency delays every call of method by d (real time) before it is handled;
// 0 removes the delay.
func (s *Server) Latency(method string, d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fault(method).latency = d
}

// SetChannelRateLimit enables Slack's chat.postMessage limit of about one
// message per second per channel (protocol §3 rate tiers): a token bucket of
// burst 3 refilled at 1/s on the injectable clock; overflow → 429 with
// Retry-After: 1.
func (s *Server) SetChannelRateLimit(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.channelRL = on
	s.buckets = map[string]*bucket{}
}

// ---- ids and helpers ----

func (s *Server) newID(prefix string) string {
	s.seq++
	return prefix + "0" + strings.ToUpper(fmt.Sprintf("%09s", strconv.FormatInt(s.seq+1_000_000, 36)))
}

// newTS returns a unique, strictly increasing microsecond "ts" from the clock.
func (s *Server) newTS() string {
	now := s.clock.Now().Truncate(time.Microsecond)
	if !now.After(s.lastTS) {
		now = s.lastTS.Add(time.Microsecond)
	}
	s.lastTS = now
	return fmt.Sprintf("%d.%06d", now.Unix(), now.Nanosecond()/1000)
}

func (s *Server) newTrigger(user string) string {
	now := s.clock.Now()
	id := fmt.Sprintf("%d.%s.%s", now.Unix(), randDigits(13), randHex(32))
	s.triggers[id] = &trigger{user: user, issued: now}
	return id
}

func (s *Server) newResponseURL(r *responseURL) string {
	r.id = randAlnum(24)
	r.issued = s.clock.Now()
	s.respURLs[r.id] = r
	return fmt.Sprintf("%s/respond/%s/%s/%s", s.base, s.teamID, randDigits(13), r.id)
}

func randBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

func randHex(n int) string { return hex.EncodeToString(randBytes(n/2 + 1))[:n] }

func randFrom(alpha string, n int) string {
	b := randBytes(n)
	for i := range b {
		b[i] = alpha[int(b[i])%len(alpha)]
	}
	return string(b)
}

func randDigits(n int) string { return randFrom("0123456789", n) }
func randUpper(n int) string  { return randFrom("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", n) }
func randAlnum(n int) string {
	return randFrom("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789", n)
}

func uuid() string {
	b := randBytes(16)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

func contains(xs []string, x string) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

func uniq(xs []string) []string {
	var out []string
	for _, x := range xs {
		if x != "" && !contains(out, x) {
			out = append(out, x)
		}
	}
	return out
}

func remove(xs []string, x string) []string {
	var out []string
	for _, v := range xs {
		if v != x {
			out = append(out, v)
		}
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Changed returns a channel that is closed at the next change of the
// emulator's state (a Web API call, an ack, a connection, a closed view).
// Take the channel before reading the state, then wait on it: a change
// made after the read closes it, so none is missed. Used by the sandbox
// web UI to push updates.
func (s *Server) Changed() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.changed
}

// Users returns copies of the seeded users (the bot user excluded), in the
// order they were first added.
func (s *Server) Users() []User {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []User
	for _, id := range s.userOrder {
		u := *s.users[id]
		f := map[string]string{}
		for k, v := range u.Fields {
			f[k] = v
		}
		u.Fields = f
		out = append(out, u)
	}
	return out
}

// Channels returns copies of the seeded (non-IM) channels, sorted by name,
// with their current members (the bot excluded; BotIsMember says).
func (s *Server) Channels() []Channel {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Channel
	for _, c := range s.channels {
		if c.IM {
			continue
		}
		cc := c.Channel
		cc.Members = append([]string(nil), c.Members...)
		out = append(out, cc)
	}
	sort.Slice(out, func(i, j int) bool {
		return out[i].Name < out[j].Name || out[i].Name == out[j].Name && out[i].ID < out[j].ID
	})
	return out
}

// UserGroups returns copies of the seeded user groups, in the order they
// were first added.
func (s *Server) UserGroups() []UserGroup {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []UserGroup
	for _, id := range s.groupOrder {
		g := s.groups[id].UserGroup
		g.Members = append([]string(nil), g.Members...)
		out = append(out, g)
	}
	return out
}
