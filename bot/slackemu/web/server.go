package web

import (
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/accessbot/accessbot/bot/slackemu"
)

//go:embed static
var staticFS embed.FS

var pageTmpl = template.Must(template.New("").Funcs(template.FuncMap{
	"join": strings.Join,
}).ParseFS(templateFS, "templates/page.tmpl", "templates/panels.tmpl"))

// Options configures a sandbox page. Emu, Clock, Connectors and Audit are
// required.
type Options struct {
	Emu        *slackemu.Server
	Clock      Clock
	Connectors ConnectorLog
	Audit      AuditLog
	// Command is the bot's slash command (default "/access"); the composer
	// sends only it, as Slack would refuse a command the app does not have.
	Command string
	// Title names what is being tried, shown in the banner (the runbook's
	// file name).
	Title string
	// Location is the timezone times are shown in (default UTC).
	Location *time.Location
	// Notes describe people in the person switcher ("support · manager of
	// Alice"), by Slack user ID; optional.
	Notes map[string]string
	// AckTimeout bounds the wait for the bot's ack of an action (default
	// 5 s, beyond Slack's 3 s, so that a slow ack is reported, not lost).
	AckTimeout time.Duration
	// Hosts are host names or IP addresses (no port) that requests may
	// name in their Host header besides localhost and the loopback
	// addresses: the address the page is served on when it is not a
	// loopback one. Any other Host is refused (guard.go: DNS rebinding).
	Hosts []string
}

// Server is the sandbox page. Create it with New, serve Handler, and call
// Close when done (it ends the open event streams).
type Server struct {
	o     Options
	mux   *http.ServeMux
	done  chan struct{}
	close sync.Once

	mu      sync.Mutex
	bump    chan struct{}                // closed and replaced by Notify
	read    map[string]map[string]string // person → conversation → last ts seen
	echoes  map[string][]echo            // person → commands they typed
	clockMu sync.Mutex                   // one Advance at a time
}

// echo is a command a person typed, shown to them alone (Slack shows the
// reply, not the command; the sandbox shows both so the story reads).
type echo struct {
	Channel, TS, Text string
}

// New returns a sandbox page over o.Emu.
func New(o Options) *Server {
	if o.Command == "" {
		o.Command = "/access"
	}
	if o.Location == nil {
		o.Location = time.UTC
	}
	if o.AckTimeout <= 0 {
		o.AckTimeout = 5 * time.Second
	}
	s := &Server{o: o, done: make(chan struct{}), bump: make(chan struct{}),
		read: map[string]map[string]string{}, echoes: map[string][]echo{}}
	static, _ := fs.Sub(staticFS, "static")
	s.mux = http.NewServeMux()
	s.mux.HandleFunc("GET /{$}", s.page)
	s.mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServer(http.FS(static))))
	s.mux.HandleFunc("GET /api/state", s.state)
	s.mux.HandleFunc("GET /api/events", s.events)
	s.mux.HandleFunc("POST /api/act", s.act)
	s.mux.HandleFunc("POST /api/clock", s.clock)
	return s
}

// Handler serves the page, its assets and its API, to requests that name
// an allowed host (Options.Hosts) and, when they change something, come
// from the page itself (guard.go); others get 403 with the reason.
func (s *Server) Handler() http.Handler { return s.guard(s.mux) }

// Notify tells open pages that something outside the emulator changed (a
// connector call, the clock). Safe to call from any goroutine.
func (s *Server) Notify() {
	s.mu.Lock()
	close(s.bump)
	s.bump = make(chan struct{})
	s.mu.Unlock()
}

// Close ends the open event streams. The handler keeps answering other
// requests.
func (s *Server) Close() { s.close.Do(func() { close(s.done) }) }

// ---- people and names ----

// person is one entry of the person switcher.
type person struct {
	ID     string `json:"id"`
	Name   string `json:"name"`
	Note   string `json:"note,omitempty"`
	Unread int    `json:"unread"`
}

func (s *Server) users() []slackemu.User {
	var out []slackemu.User
	for _, u := range s.o.Emu.Users() {
		if !u.IsBot && !u.Deleted {
			out = append(out, u)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return displayName(out[i]) < displayName(out[j]) })
	return out
}

func displayName(u slackemu.User) string {
	if u.RealName != "" {
		return u.RealName
	}
	return u.Name
}

// names resolves mentions from the emulator's directory.
type names struct {
	users, channels, groups map[string]string
}

func (n names) UserName(id string) string    { return n.users[id] }
func (n names) ChannelName(id string) string { return n.channels[id] }
func (n names) GroupHandle(id string) string { return n.groups[id] }

func (s *Server) names() names {
	n := names{users: map[string]string{}, channels: map[string]string{}, groups: map[string]string{}}
	for _, u := range s.o.Emu.Users() {
		n.users[u.ID] = displayName(u)
	}
	n.users[s.o.Emu.BotUserID()] = "accessbot"
	for _, c := range s.o.Emu.Channels() {
		n.channels[c.ID] = c.Name
	}
	for _, g := range s.o.Emu.UserGroups() {
		n.groups[g.ID] = g.Handle
	}
	return n
}

// ---- conversations ----

// conv is one conversation in the sidebar.
type conv struct {
	ID, Label, Kind string // Kind: home, dm, channel
	Unread          int
	Active          bool
}

const homeConv = "home"

// convs lists what person sees: App Home, the DM with the bot, and the
// channels they are a member of.
func (s *Server) convs(user string) []conv {
	out := []conv{{ID: homeConv, Label: "Home", Kind: "home"}, {ID: s.o.Emu.DMChannel(user), Label: "accessbot", Kind: "dm"}}
	for _, c := range s.o.Emu.Channels() {
		if slicesContains(c.Members, user) {
			out = append(out, conv{ID: c.ID, Label: c.Name, Kind: "channel"})
		}
	}
	return out
}

func slicesContains(xs []string, x string) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

// unread counts messages in channel newer than what user last saw (edits
// do not count, as in Slack).
func (s *Server) unread(user, channel string) int {
	s.mu.Lock()
	seen := s.read[user][channel]
	s.mu.Unlock()
	n := 0
	for _, m := range s.o.Emu.Messages(channel) {
		if !m.Deleted && tsAfter(m.TS, seen) {
			n++
		}
	}
	return n
}

// markRead records that user saw every message of channel.
func (s *Server) markRead(user, channel string) {
	msgs := s.o.Emu.Messages(channel)
	if len(msgs) == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.read[user] == nil {
		s.read[user] = map[string]string{}
	}
	s.read[user][channel] = msgs[len(msgs)-1].TS
}

// tsAfter compares Slack timestamps ("1700000000.000100").
func tsAfter(a, b string) bool {
	if b == "" {
		return true
	}
	fa, _ := strconv.ParseFloat(a, 64)
	fb, _ := strconv.ParseFloat(b, 64)
	if fa != fb {
		return fa > fb
	}
	return a > b
}

func tsTime(ts string) time.Time {
	sec, frac, _ := strings.Cut(ts, ".")
	n, _ := strconv.ParseInt(sec, 10, 64)
	us, _ := strconv.ParseInt((frac + "000000")[:6], 10, 64)
	return time.Unix(n, us*1000)
}

// msgVM is one message as the page lists it.
type msgVM struct {
	Channel, TS, Time, Author string
	App, Ephemeral, Edited    bool
	Echo                      bool // a command the person typed
	Body                      template.HTML
}

func (s *Server) messages(user, channel string, n names) []msgVM {
	var out []msgVM
	add := func(m slackemu.Message) {
		if m.Deleted {
			return
		}
		author := "accessbot"
		app := true
		if m.User != "" && m.User != s.o.Emu.BotUserID() {
			author, app = n.UserName(m.User), false
		}
		out = append(out, msgVM{Channel: m.Channel, TS: m.TS, Time: s.fmtTime(tsTime(m.TS)), Author: author, App: app,
			Ephemeral: m.Ephemeral, Edited: len(m.Edits) > 0, Body: RenderBlocks(m.Blocks, m.Text, n)})
	}
	for _, m := range s.o.Emu.Messages(channel) {
		add(m)
	}
	for _, m := range s.o.Emu.Ephemerals(user) {
		if m.Channel == channel {
			add(m)
		}
	}
	s.mu.Lock()
	for _, e := range s.echoes[user] {
		if e.Channel == channel {
			out = append(out, msgVM{Channel: channel, TS: e.TS, Time: s.fmtTime(tsTime(e.TS)), Author: n.UserName(user), Echo: true, Ephemeral: true,
				Body: template.HTML(`<code class="mk-code">` + template.HTMLEscapeString(e.Text) + `</code>`)})
		}
	}
	s.mu.Unlock()
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].TS == out[j].TS {
			return out[i].Echo && !out[j].Echo // a command before its reply
		}
		return tsAfter(out[j].TS, out[i].TS)
	})
	return out
}

func (s *Server) fmtTime(t time.Time) string { return t.In(s.o.Location).Format("Mon 15:04") }

// ---- page and state ----

func (s *Server) page(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'")
	data := struct{ Title, Command string }{s.o.Title, s.o.Command}
	if err := pageTmpl.ExecuteTemplate(w, "page", data); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
	}
}

// stateJSON is what the page fetches after every change.
type stateJSON struct {
	As         string      `json:"as"`
	People     []person    `json:"people"`
	Sidebar    string      `json:"sidebar"`
	Conv       string      `json:"conv"`
	ConvKind   string      `json:"conv_kind"`
	ConvTitle  string      `json:"conv_title"`
	Messages   string      `json:"messages"`
	Composer   bool        `json:"composer"`
	Modal      *modalJSON  `json:"modal"`
	Clock      clockJSON   `json:"clock"`
	Connectors string      `json:"connectors"`
	Audit      string      `json:"audit"`
	AuditOK    bool        `json:"audit_ok"`
	Counts     stateCounts `json:"counts"`
	HomeOpened bool        `json:"home_opened"`
}

type stateCounts struct {
	Connector int `json:"connector"`
	Audit     int `json:"audit"`
}

type modalJSON struct {
	ID   string `json:"id"`
	Hash string `json:"hash"`
	HTML string `json:"html"`
}

type clockJSON struct {
	Now     string `json:"now"`
	NextAt  string `json:"next_at,omitempty"`
	NextIn  string `json:"next_in,omitempty"`
	Next    string `json:"next,omitempty"`
	HasNext bool   `json:"has_next"`
}

func (s *Server) user(r *http.Request, id string) (slackemu.User, bool) {
	for _, u := range s.users() {
		if u.ID == id {
			return u, true
		}
	}
	return slackemu.User{}, false
}

func (s *Server) state(w http.ResponseWriter, r *http.Request) {
	users := s.users()
	if len(users) == 0 {
		http.Error(w, "the sandbox workspace has nobody in it", http.StatusInternalServerError)
		return
	}
	as := r.URL.Query().Get("as")
	if _, ok := s.user(r, as); !ok {
		as = users[0].ID
	}
	n := s.names()
	st := stateJSON{As: as}
	convs := s.convs(as)
	want := r.URL.Query().Get("conv")
	cur := convs[1] // the DM with the bot
	for _, c := range convs {
		if c.ID == want {
			cur = c
		}
	}
	st.Conv, st.ConvKind = cur.ID, cur.Kind
	switch cur.Kind {
	case "home":
		st.ConvTitle = "accessbot · Home"
		if v, ok := s.o.Emu.HomeView(as); ok {
			st.HomeOpened = true
			st.Messages = string(s.execute("home", struct {
				ID   string
				Body template.HTML
			}{v.ID, RenderViewBlocks(v.ID, v.Blocks, nil, n)}))
		}
	case "dm":
		st.ConvTitle = "accessbot"
		st.Composer = true
	default:
		st.ConvTitle = "#" + cur.Label
	}
	if cur.Kind != "home" {
		st.Messages = string(s.execute("messages", s.messages(as, cur.ID, n)))
		s.markRead(as, cur.ID)
	}
	for i := range convs {
		convs[i].Active = convs[i].ID == cur.ID
		if convs[i].Kind != "home" {
			convs[i].Unread = s.unread(as, convs[i].ID)
		}
	}
	st.Sidebar = string(s.execute("sidebar", convs))
	for _, u := range users {
		p := person{ID: u.ID, Name: displayName(u), Note: s.o.Notes[u.ID]}
		if u.ID != as {
			for _, c := range s.convs(u.ID) {
				if c.Kind != "home" {
					p.Unread += s.unread(u.ID, c.ID)
				}
			}
		}
		st.People = append(st.People, p)
	}
	if views := s.o.Emu.OpenViews(as); len(views) > 0 {
		v := views[len(views)-1]
		st.Modal = &modalJSON{ID: v.ID, Hash: v.Hash + fmt.Sprint(v.Errors), HTML: string(RenderModal(v, n))}
	}
	now := s.o.Clock.Now()
	st.Clock.Now = now.In(s.o.Location).Format("Mon 2 Jan 2006, 15:04 MST")
	if d, ok := s.o.Clock.NextDue(r.Context()); ok {
		st.Clock.HasNext = true
		st.Clock.NextAt = d.At.In(s.o.Location).Format("Mon 2 Jan 15:04")
		st.Clock.NextIn = humanDuration(d.At.Sub(now))
		st.Clock.Next = d.What
	}
	calls := s.o.Connectors.ConnectorCalls()
	st.Counts.Connector = len(calls)
	st.Connectors = string(s.execute("connectors", s.callsVM(calls, n)))
	recs, err := s.o.Audit.AuditRecords(r.Context())
	av := auditVM{}
	if err != nil {
		av.Error = err.Error()
	} else {
		nv, verr := s.o.Audit.VerifyAudit(r.Context())
		av.Verified, av.OK = nv, verr == nil
		if verr != nil {
			av.Error = verr.Error()
		}
		av.Total = len(recs)
		for i := len(recs) - 1; i >= 0 && len(av.Records) < 300; i-- {
			rec := recs[i]
			actor := rec.Actor
			if name := n.UserName(actor); name != "" {
				actor = name
			}
			av.Records = append(av.Records, auditRowVM{Seq: rec.Seq, Time: s.fmtTime(rec.Time), Event: rec.Event, Actor: actor,
				Request: rec.Request, What: strings.Trim(rec.System+" "+rec.Role, " "), Note: rec.Note})
		}
	}
	st.AuditOK = av.OK
	st.Counts.Audit = av.Total
	st.Audit = string(s.execute("audit", av))
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(st)
}

func (s *Server) execute(name string, data any) template.HTML {
	var b bytes.Buffer
	if err := pageTmpl.ExecuteTemplate(&b, name, data); err != nil {
		return template.HTML(`<div class="unsupported">` + template.HTMLEscapeString(err.Error()) + `</div>`)
	}
	return template.HTML(b.String())
}

type callVM struct {
	Time, Connector, Type, Op, Request, What, Person, Params, Receipt, Result string
	Live, Rollback, Failed                                                    bool
}

func (s *Server) callsVM(calls []ConnectorCall, n names) []callVM {
	out := make([]callVM, 0, len(calls))
	for i := len(calls) - 1; i >= 0; i-- {
		c := calls[i]
		keys := make([]string, 0, len(c.Params))
		for k := range c.Params {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var params []string
		for _, k := range keys {
			params = append(params, k+"="+c.Params[k])
		}
		out = append(out, callVM{Time: s.fmtTime(c.At), Connector: c.Connector, Type: c.Type, Op: c.Op, Request: c.Request,
			What: strings.Trim(c.System+" · "+c.Role, " ·"), Person: c.Person, Params: strings.Join(params, " "), Receipt: c.Receipt,
			Result: c.Result, Live: c.Live, Rollback: c.Rollback, Failed: c.Result != "done" && !strings.HasPrefix(c.Result, "awaiting")})
	}
	return out
}

type auditVM struct {
	OK              bool
	Verified, Total int
	Error           string
	Records         []auditRowVM
}

type auditRowVM struct {
	Seq                                     int64
	Time, Event, Actor, Request, What, Note string
}

// humanDuration is "in 1h50m" style, rounded to the minute.
func humanDuration(d time.Duration) string {
	if d <= 0 {
		return "now"
	}
	d = d.Round(time.Minute)
	if d == 0 {
		return "in under a minute"
	}
	days := d / (24 * time.Hour)
	d -= days * 24 * time.Hour
	s := ""
	if days > 0 {
		s = fmt.Sprintf("%dd", days)
	}
	if h := d / time.Hour; h > 0 {
		s += fmt.Sprintf("%dh", h)
	}
	if m := (d % time.Hour) / time.Minute; m > 0 {
		s += fmt.Sprintf("%dm", m)
	}
	return "in " + s
}

// ---- live updates ----

// events is a server-sent event stream: one "change" event after every
// change (several changes within 40 ms make one event), and a comment
// every 15 s to keep the connection open through proxies.
func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	fl, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	// Subscribe before each event is written: a change made after the
	// subscription closes a channel, so the page, which fetches the state
	// after each event, never misses one.
	bump, emu := s.subscribe()
	fmt.Fprint(w, "retry: 1000\nevent: change\ndata: start\n\n")
	fl.Flush()
	keepAlive := time.NewTicker(15 * time.Second)
	defer keepAlive.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-s.done:
			return
		case <-keepAlive.C:
			fmt.Fprint(w, ": keep-alive\n\n")
			fl.Flush()
			continue
		case <-bump:
		case <-emu:
		}
		// Coalesce a burst (a decision updates every approver's copy).
		t := time.NewTimer(40 * time.Millisecond)
		select {
		case <-r.Context().Done():
			t.Stop()
			return
		case <-s.done:
			t.Stop()
			return
		case <-t.C:
		}
		bump, emu = s.subscribe()
		fmt.Fprint(w, "event: change\ndata: x\n\n")
		fl.Flush()
	}
}

// subscribe returns the channels closed by the next Notify and the next
// change of the emulator.
func (s *Server) subscribe() (bump, emu <-chan struct{}) {
	s.mu.Lock()
	bump = s.bump
	s.mu.Unlock()
	return bump, s.o.Emu.Changed()
}

// ---- acting as a person ----

// actRequest is what the page posts to act as a person.
type actRequest struct {
	As       string                               `json:"as"`
	Kind     string                               `json:"kind"` // command, button, select, submit, close, open_home
	Text     string                               `json:"text"`
	Channel  string                               `json:"channel"`
	TS       string                               `json:"ts"`
	ViewID   string                               `json:"view_id"`
	BlockID  string                               `json:"block_id"`
	ActionID string                               `json:"action_id"`
	Value    string                               `json:"value"`
	Values   map[string]map[string]slackemu.Value `json:"values"`
}

// actResponse tells the page how the action went: Error is shown to the
// person (as Slack shows "dispatch_failed"); FieldErrors are shown under
// modal inputs (block_id → text).
type actResponse struct {
	OK          bool              `json:"ok"`
	Error       string            `json:"error,omitempty"`
	FieldErrors map[string]string `json:"field_errors,omitempty"`
}

var requiredRE = regexp.MustCompile(`: ([^/\s]+)/[^/\s]+$`)

func (s *Server) act(w http.ResponseWriter, r *http.Request) {
	var req actRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&req); err != nil {
		writeAct(w, http.StatusBadRequest, actResponse{Error: "bad request: " + err.Error()})
		return
	}
	if _, ok := s.user(r, req.As); !ok {
		writeAct(w, http.StatusBadRequest, actResponse{Error: fmt.Sprintf("nobody called %q in this workspace", req.As)})
		return
	}
	var (
		env *slackemu.Envelope
		err error
	)
	emu := s.o.Emu
	switch req.Kind {
	case "command":
		text := strings.TrimSpace(req.Text)
		cmd, rest, _ := strings.Cut(text, " ")
		switch {
		case text == "":
			writeAct(w, http.StatusBadRequest, actResponse{Error: "Type a command, e.g. " + s.o.Command + " help"})
			return
		case !strings.HasPrefix(text, "/"):
			writeAct(w, http.StatusBadRequest, actResponse{Error: "accessbot reads commands, not messages: start with " + s.o.Command + " (try " + s.o.Command + " help)."})
			return
		case cmd != s.o.Command:
			writeAct(w, http.StatusBadRequest, actResponse{Error: fmt.Sprintf("%s is not a valid command. This workspace has %s.", cmd, s.o.Command)})
			return
		}
		ch := emu.DMChannel(req.As)
		s.mu.Lock()
		// The echo sorts just before the reply: a ts a microsecond after
		// the newest message so far.
		s.echoes[req.As] = append(s.echoes[req.As], echo{Channel: ch, TS: s.echoTS(ch, req.As), Text: text})
		s.mu.Unlock()
		env = emu.SlashCommand(req.As, ch, cmd, strings.TrimSpace(rest))
	case "button":
		switch {
		case req.ViewID != "":
			env, err = emu.ClickHomeButton(req.As, req.ActionID, req.Value)
		default:
			env, err = emu.ClickButtonValue(req.As, req.Channel, req.TS, req.ActionID, req.Value)
		}
	case "select":
		if req.ViewID == "" {
			err = errors.New("selects in messages are not simulated (the bot uses selects only in modals)")
			break
		}
		env, err = emu.SelectOption(req.As, req.ViewID, req.BlockID, req.ActionID, req.Value)
	case "submit":
		env, err = emu.SubmitView(req.As, req.ViewID, req.Values)
		if errors.Is(err, slackemu.ErrRequiredInput) {
			fe := map[string]string{}
			if m := requiredRE.FindStringSubmatch(err.Error()); m != nil {
				fe[m[1]] = "Please complete this required field."
			}
			writeAct(w, http.StatusOK, actResponse{FieldErrors: fe, Error: "Please complete the required fields."})
			return
		}
	case "close":
		env, err = emu.CloseView(req.As, req.ViewID)
	case "open_home":
		env = emu.OpenAppHome(req.As)
	default:
		writeAct(w, http.StatusBadRequest, actResponse{Error: fmt.Sprintf("unknown action %q", req.Kind)})
		return
	}
	if err != nil {
		writeAct(w, http.StatusConflict, actResponse{Error: err.Error()})
		return
	}
	if env != nil {
		if _, err := env.WaitAck(s.o.AckTimeout); err != nil {
			writeAct(w, http.StatusOK, actResponse{Error: "accessbot did not answer in time (Slack would show: dispatch_failed)"})
			return
		}
	}
	s.Notify()
	writeAct(w, http.StatusOK, actResponse{OK: true})
}

// echoTS returns a ts for a typed command: just after the newest message
// the person can see in ch, so the reply (posted later) sorts after it.
// Caller holds s.mu.
func (s *Server) echoTS(ch, user string) string {
	last := ""
	for _, m := range s.o.Emu.Messages(ch) {
		if tsAfter(m.TS, last) {
			last = m.TS
		}
	}
	for _, m := range s.o.Emu.Ephemerals(user) {
		if m.Channel == ch && tsAfter(m.TS, last) {
			last = m.TS
		}
	}
	for _, e := range s.echoes[user] {
		if e.Channel == ch && tsAfter(e.TS, last) {
			last = e.TS
		}
	}
	t := s.o.Clock.Now()
	if last != "" && !tsTime(last).Before(t) {
		t = tsTime(last).Add(time.Microsecond)
	}
	return fmt.Sprintf("%d.%06d", t.Unix(), t.Nanosecond()/1000)
}

func writeAct(w http.ResponseWriter, status int, r actResponse) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(r)
}

// ---- the clock ----

// clock moves the simulated time: {"advance": "10m"|"1h"|"1d"|"next"}.
func (s *Server) clock(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Advance string `json:"advance"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096)).Decode(&req); err != nil {
		writeAct(w, http.StatusBadRequest, actResponse{Error: "bad request: " + err.Error()})
		return
	}
	s.clockMu.Lock()
	defer s.clockMu.Unlock()
	var d time.Duration
	switch req.Advance {
	case "next":
		due, ok := s.o.Clock.NextDue(r.Context())
		if !ok {
			writeAct(w, http.StatusConflict, actResponse{Error: "Nothing is scheduled."})
			return
		}
		d = due.At.Sub(s.o.Clock.Now())
		if d <= 0 {
			d = time.Nanosecond // overdue: run it now
		}
	case "10m", "1h", "1d":
		d = map[string]time.Duration{"10m": 10 * time.Minute, "1h": time.Hour, "1d": 24 * time.Hour}[req.Advance]
	default:
		writeAct(w, http.StatusBadRequest, actResponse{Error: fmt.Sprintf("advance %q: use 10m, 1h, 1d or next", req.Advance)})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), time.Minute)
	defer cancel()
	err := s.o.Clock.Advance(ctx, d)
	s.Notify()
	if err != nil {
		writeAct(w, http.StatusInternalServerError, actResponse{Error: err.Error()})
		return
	}
	writeAct(w, http.StatusOK, actResponse{OK: true})
}
