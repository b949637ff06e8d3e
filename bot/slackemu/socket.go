package slackemu

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// maxConnections is Slack's cap on simultaneous Socket Mode connections per
// app; the 11th gets disconnect/too_many_websockets (protocol §1.1).
const maxConnections = 10

// maxFrame is Slack's client frame limit; larger frames get close 1009
// (protocol §1.4).
const maxFrame = 20480

var upgrader = websocket.Upgrader{
	// slack-go always sends Origin: https://api.slack.com (protocol §1.2).
	CheckOrigin: func(*http.Request) bool { return true },
}

type wsConn struct {
	s        *Server
	id       int
	c        *websocket.Conn
	send     chan outFrame
	done     chan struct{}
	once     sync.Once
	reping   chan struct{}
	draining bool // a disconnect frame was sent; don't route envelopes here
}

type outFrame struct {
	data []byte
	env  *Envelope // non-nil for envelope frames (requeued on write failure)
	then func()    // run after a successful write
}

func (c *wsConn) closeNow() {
	c.once.Do(func() {
		close(c.done)
		_ = c.c.UnderlyingConn().Close()
	})
}

// handleLink serves the websocket ticket URL returned by apps.connections.open.
func (s *Server) handleLink(w http.ResponseWriter, r *http.Request) {
	ticket := r.URL.Query().Get("ticket")
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		http.Error(w, "closed", http.StatusServiceUnavailable)
		return
	}
	if s.rejectUpg > 0 {
		s.rejectUpg--
		st := s.rejectStatus
		s.mu.Unlock()
		http.Error(w, "rejected", st)
		return
	}
	used, ok := s.tickets[ticket]
	if !ok || used {
		s.mu.Unlock()
		// Single-use tickets: reuse → 403, which slack-go retries (§8).
		http.Error(w, "invalid or used ticket", http.StatusForbidden)
		return
	}
	s.tickets[ticket] = true
	s.mu.Unlock()

	ws, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		s.logf("slackemu: upgrade: %v", err)
		return
	}
	ws.SetReadLimit(maxFrame)
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		_ = ws.Close()
		return
	}
	s.connSeq++
	c := &wsConn{s: s, id: s.connSeq, c: ws, send: make(chan outFrame, 256), done: make(chan struct{}), reping: make(chan struct{}, 1)}
	live := 0
	for _, o := range s.conns {
		if !o.draining {
			live++
		}
	}
	tooMany := len(s.conns) >= maxConnections
	s.wg.Add(2) // writer + this handler (hijacked: httptest.Close does not wait for it)
	defer s.wg.Done()
	go c.writer()
	if tooMany {
		s.mu.Unlock()
		c.send <- outFrame{data: mustJSON(map[string]any{"type": "disconnect", "reason": "too_many_websockets", "debug_info": map[string]any{"host": "applink-emu"}})}
		c.readLoop()
		return
	}
	s.conns = append(s.conns, c)
	s.connects++
	hello := mustJSON(map[string]any{
		"type":            "hello",
		"num_connections": live + 1,
		"debug_info":      map[string]any{"host": fmt.Sprintf("applink-emu-%d", c.id), "build_number": 10, "approximate_connection_time": 18060},
		"connection_info": map[string]any{"app_id": s.appID},
	})
	c.send <- outFrame{data: hello}
	s.flushQueueLocked()
	s.notify()
	s.mu.Unlock()
	s.logf("slackemu: websocket %d connected", c.id)
	c.readLoop()
}

// readLoop runs in the handler goroutine until the connection fails.
func (c *wsConn) readLoop() {
	s := c.s
	c.c.SetPongHandler(func(string) error {
		s.mu.Lock()
		s.pongs++
		s.notify()
		s.mu.Unlock()
		return nil
	})
	for {
		_, data, err := c.c.ReadMessage()
		if err != nil {
			s.logf("slackemu: websocket %d read: %v", c.id, err)
			break
		}
		s.handleAck(c, data)
	}
	c.closeNow()
	s.mu.Lock()
	for i, o := range s.conns {
		if o == c {
			s.conns = append(s.conns[:i], s.conns[i+1:]...)
			break
		}
	}
	s.notify()
	s.mu.Unlock()
}

// writer is the single writer goroutine of a connection; it also sends PINGs.
func (c *wsConn) writer() {
	s := c.s
	defer s.wg.Done()
	var tick *time.Ticker
	var tickC <-chan time.Time
	reset := func() {
		if tick != nil {
			tick.Stop()
			tick, tickC = nil, nil
		}
		s.mu.Lock()
		d := s.pingInterval
		s.mu.Unlock()
		if d > 0 {
			tick = time.NewTicker(d)
			tickC = tick.C
		}
	}
	reset()
	defer func() {
		if tick != nil {
			tick.Stop()
		}
	}()
	n := 0
	for {
		select {
		case <-c.done:
			c.requeuePending()
			return
		case <-c.reping:
			reset()
		case <-tickC:
			n++
			payload := fmt.Sprintf("Ping from applink-emu-%d #%d", c.id, n)
			if err := c.c.WriteControl(websocket.PingMessage, []byte(payload), time.Now().Add(5*time.Second)); err != nil {
				c.closeNow()
			}
		case f := <-c.send:
			_ = c.c.SetWriteDeadline(time.Now().Add(10 * time.Second))
			if err := c.c.WriteMessage(websocket.TextMessage, f.data); err != nil {
				if f.env != nil {
					s.requeue(f.env)
				}
				c.closeNow()
				continue
			}
			if f.then != nil {
				f.then()
			}
		}
	}
}

func (c *wsConn) requeuePending() {
	for {
		select {
		case f := <-c.send:
			if f.env != nil {
				c.s.requeue(f.env)
			}
		default:
			return
		}
	}
}

// requeue puts an envelope whose write failed back in the queue.
func (s *Server) requeue(e *Envelope) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || e.acked {
		return
	}
	s.queue = append(s.queue, e)
	s.flushQueueLocked()
}

// ---- envelopes and acks ----

// Envelope is a handle on one Socket Mode envelope sent to the app.
type Envelope struct {
	// ID is the envelope_id.
	ID string
	// Type is "slash_commands", "interactive" or "events_api".
	Type string
	// PayloadType is the interaction type ("block_actions", "view_submission",
	// "view_closed") or the inner event type ("app_home_opened"), or the command.
	PayloadType string
	// UserID is the acting user.
	UserID string
	// Payload is the envelope payload as sent.
	Payload json.RawMessage
	// TriggerID is the trigger_id issued with the envelope, if any.
	TriggerID string
	// ResponseURL is the response_url issued with the envelope, if any.
	ResponseURL string

	s            *Server
	accepts      bool
	viewID       string
	channelID    string
	retryAttempt int
	attemptAt    time.Time
	timer        *time.Timer
	acked        bool
	late         bool
	done         chan struct{}
	result       AckResult
}

// AckResult is the ack of an envelope.
type AckResult struct {
	// Payload is the ack's payload (nil when absent or null).
	Payload json.RawMessage
	// Latency is from the delivery attempt to the ack's arrival.
	Latency time.Duration
	// Late is true when the ack arrived after the ack deadline (it was ignored).
	Late bool
}

// ErrLateAck is returned by WaitAck when the ack arrived after the deadline.
var ErrLateAck = errors.New("slackemu: ack arrived after the deadline and was ignored")

// WaitAck waits up to timeout for the envelope's ack. It returns an error if
// none arrives in time, or ErrLateAck (with the result) if the ack arrived
// after the ack deadline.
func (e *Envelope) WaitAck(timeout time.Duration) (AckResult, error) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-e.done:
		e.s.mu.Lock()
		r := e.result
		e.s.mu.Unlock()
		if r.Late {
			return r, ErrLateAck
		}
		return r, nil
	case <-t.C:
		return AckResult{}, fmt.Errorf("slackemu: envelope %s (%s %s) not acked within %v", e.ID, e.Type, e.PayloadType, timeout)
	}
}

func (s *Server) newEnvelope(typ, payloadType, user string, payload any, accepts bool) *Envelope {
	e := &Envelope{ID: uuid(), Type: typ, PayloadType: payloadType, UserID: user, s: s, accepts: accepts, done: make(chan struct{})}
	e.Payload = mustJSON(payload)
	return e
}

// dispatch registers and delivers an envelope and starts its ack deadline.
// Caller holds s.mu.
func (s *Server) dispatchLocked(e *Envelope) {
	s.envs[e.ID] = e
	e.attemptAt = time.Now()
	s.startDeadlineLocked(e)
	s.queue = append(s.queue, e)
	s.flushQueueLocked()
}

func (s *Server) startDeadlineLocked(e *Envelope) {
	if s.closed {
		return
	}
	e.timer = time.AfterFunc(s.opts.AckTimeout, func() { s.ackDeadline(e) })
}

func (e *Envelope) frame() []byte {
	m := map[string]any{
		"envelope_id":              e.ID,
		"type":                     e.Type,
		"accepts_response_payload": e.accepts,
		"payload":                  e.Payload,
	}
	if e.Type == "events_api" {
		m["retry_attempt"] = e.retryAttempt
		m["retry_reason"] = ""
		if e.retryAttempt > 0 {
			m["retry_reason"] = "timeout"
		}
	}
	return mustJSON(m)
}

// flushQueueLocked delivers queued envelopes to the newest live connection.
func (s *Server) flushQueueLocked() {
	if s.closed {
		return
	}
	var target *wsConn
	for i := len(s.conns) - 1; i >= 0; i-- {
		if !s.conns[i].draining {
			target = s.conns[i]
			break
		}
	}
	if target == nil {
		return
	}
	for len(s.queue) > 0 {
		e := s.queue[0]
		if e.acked {
			s.queue = s.queue[1:]
			continue
		}
		select {
		case target.send <- outFrame{data: e.frame(), env: e}:
			s.queue = s.queue[1:]
		default:
			return
		}
	}
}

type ackFrame struct {
	EnvelopeID string          `json:"envelope_id"`
	Payload    json.RawMessage `json:"payload"`
}

func (s *Server) handleAck(c *wsConn, data []byte) {
	var a ackFrame
	if err := json.Unmarshal(data, &a); err != nil || a.EnvelopeID == "" {
		s.logf("slackemu: websocket %d: unexpected frame %q", c.id, data)
		return
	}
	payload := a.Payload
	if string(payload) == "null" || len(payload) == 0 {
		payload = nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.envs[a.EnvelopeID]
	rec := AckRecord{EnvelopeID: a.EnvelopeID, Payload: payload, ConnID: c.id}
	if !ok {
		rec.Unknown = true
		s.acks = append(s.acks, rec)
		s.notify()
		return
	}
	rec.Latency = time.Since(e.attemptAt)
	if e.acked {
		// duplicate ack: record only
		s.acks = append(s.acks, rec)
		return
	}
	e.acked = true
	if e.timer != nil {
		e.timer.Stop()
	}
	rec.Late = e.late
	s.acks = append(s.acks, rec)
	e.result = AckResult{Payload: payload, Latency: rec.Latency, Late: e.late}
	close(e.done)
	if !e.late {
		s.interpretAckLocked(e, payload)
	}
	s.notify()
}

// ackDeadline runs when an envelope has not been acked within AckTimeout.
func (s *Server) ackDeadline(e *Envelope) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || e.acked || e.late {
		return
	}
	if e.Type == "events_api" {
		if e.retryAttempt < 3 {
			// Redelivery with retry_attempt 1..3 on a compressed schedule (§8).
			e.retryAttempt++
			e.attemptAt = time.Now()
			s.startDeadlineLocked(e)
			s.queue = append(s.queue, e)
			s.flushQueueLocked()
			return
		}
		e.late = true
		s.failures = append(s.failures, Failure{EnvelopeID: e.ID, Type: e.PayloadType, UserID: e.UserID, Kind: "event_not_acked"})
		s.notify()
		return
	}
	e.late = true
	kind := "interaction_failed"
	switch {
	case e.Type == "slash_commands":
		kind = "dispatch_failed"
	case e.PayloadType == "view_submission":
		kind = "trouble_connecting"
	case e.PayloadType == "view_closed":
		s.notify()
		return // nothing is shown to the user
	}
	s.failures = append(s.failures, Failure{EnvelopeID: e.ID, Type: e.PayloadType, UserID: e.UserID, Kind: kind, Detail: "not acked within " + s.opts.AckTimeout.String()})
	s.notify()
}

// ---- socket control ----

// Disconnect sends {"type":"disconnect","reason":reason} to every connection
// (warning | refresh_requested | link_disabled | too_many_websockets,
// protocol §1.3). The connection stops receiving envelopes immediately and is
// closed by the server after a grace period (10 s for "warning", 1 s
// otherwise) if the client has not closed it.
func (s *Server) Disconnect(reason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	grace := time.Second
	if reason == "warning" {
		grace = 10 * time.Second
	}
	frame := mustJSON(map[string]any{"type": "disconnect", "reason": reason, "debug_info": map[string]any{"host": "applink-emu"}})
	for _, c := range s.conns {
		c.draining = true
		c := c
		select {
		case c.send <- outFrame{data: frame, then: func() {
			time.AfterFunc(grace, c.closeNow)
		}}:
		default:
			c.closeNow()
		}
	}
}

// DropConnection closes every connection's TCP socket without a close frame.
func (s *Server) DropConnection() {
	s.mu.Lock()
	conns := append([]*wsConn(nil), s.conns...)
	s.mu.Unlock()
	for _, c := range conns {
		c.closeNow()
	}
}

// StopPings stops server PINGs on all current and future connections, so
// slack-go's ping watchdog reconnects (protocol §1.5).
func (s *Server) StopPings() { s.SetPingInterval(-1) }

// SetPingInterval changes the PING interval for all connections (<= 0 stops pings).
func (s *Server) SetPingInterval(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pingInterval = d
	for _, c := range s.conns {
		select {
		case c.reping <- struct{}{}:
		default:
		}
	}
}

// RejectUpgrade makes the next n websocket upgrade attempts fail with the
// given HTTP status (slack-go retries these with backoff).
func (s *Server) RejectUpgrade(status, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rejectStatus, s.rejectUpg = status, n
}

// ConnectionCount returns the number of open websocket connections.
func (s *Server) ConnectionCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// Connects returns the total number of successful websocket connects so far.
func (s *Server) Connects() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.connects
}

// WaitConnected waits until at least n live (not disconnecting) connections
// are open.
func (s *Server) WaitConnected(n int, timeout time.Duration) error {
	if !s.waitFor(timeout, func() bool { return s.liveLocked() >= n }) {
		return fmt.Errorf("slackemu: fewer than %d connections after %v", n, timeout)
	}
	return nil
}

// WaitConnects waits until the total number of connects reaches n and a live
// connection is open.
func (s *Server) WaitConnects(n int, timeout time.Duration) error {
	if !s.waitFor(timeout, func() bool { return s.connects >= n && s.liveLocked() >= 1 }) {
		return fmt.Errorf("slackemu: fewer than %d connects after %v", n, timeout)
	}
	return nil
}

func (s *Server) liveLocked() int {
	n := 0
	for _, c := range s.conns {
		if !c.draining {
			n++
		}
	}
	return n
}

func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// Redeliver sends envelope id again, as Slack does when it did not get the
// ack (for example one lost with a dropped connection): same envelope_id,
// retry_attempt one higher for events_api, retry_reason "timeout". It
// works whether or not the envelope was acked, so that tests can check
// that a duplicate delivery is harmless without racing the ack deadline.
// The returned error says the envelope is unknown.
func (s *Server) Redeliver(id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.envs[id]
	if !ok {
		return fmt.Errorf("slackemu: no envelope %s", id)
	}
	var target *wsConn
	for i := len(s.conns) - 1; i >= 0; i-- {
		if !s.conns[i].draining {
			target = s.conns[i]
			break
		}
	}
	if target == nil {
		return fmt.Errorf("slackemu: no live connection to redeliver %s on", id)
	}
	if e.Type == "events_api" {
		e.retryAttempt++
	}
	e.attemptAt = time.Now()
	select {
	case target.send <- outFrame{data: e.frame(), env: e}:
		return nil
	default:
		return fmt.Errorf("slackemu: connection send buffer full; %s not redelivered", id)
	}
}
