// Package bot is accessbot's Slack adapter and the only importer of
// slack-go: the Socket Mode loop, the /access command, buttons and modals,
// Block Kit rendering, the access.Notifier and access.Directory
// implementations, and the Slack-native connectors (private channel and
// user group membership).
package bot

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"

	"github.com/accessbot/accessbot/access"
)

// Config configures a Bot.
type Config struct {
	AppToken string // xapp-… (connections:write), for Socket Mode
	BotToken string // xoxb-…
	APIURL   string // Web API base URL with trailing slash; "" for Slack's
	Command  string // the slash command, default "/access"
	Runbook  *access.Runbook
	Clock    access.Clock
	Logger   *slog.Logger
	// Workers bounds the goroutines handling Slack envelopes (default 32);
	// Queue bounds the envelopes waiting for them (default 1024). When both
	// are full an envelope is acked at once with a "busy" answer.
	Workers, Queue int
	// AckBudget is how long a handler may work before the envelope is acked
	// anyway (default 2 s of Slack's 3 s); a later answer goes through the
	// response_url or a DM.
	AckBudget time.Duration
	// PingInterval is slack-go's dead-man interval (default 30 s).
	PingInterval time.Duration
	// Sleep waits for a rate-limit Retry-After; tests may shorten it. It
	// must return ctx.Err() when ctx ends first.
	Sleep func(ctx context.Context, d time.Duration) error
	// ShutdownGrace is how long in-flight handlers may finish after Run's
	// context ends (default 10 s).
	ShutdownGrace time.Duration
	// MaxRetryAfter caps how long one Slack call waits on a 429 (default 60 s).
	MaxRetryAfter time.Duration
	// HTTPClient is used for the Web API (default: 30 s timeout).
	HTTPClient *http.Client
	// AuditExport produces a system's audit export for `/access audit`
	// (file name and content); nil disables the command with a clear answer.
	AuditExport func(ctx context.Context, system string, since time.Time) (name string, content []byte, err error)
	// Metrics receives Slack-side measurements; nil for none.
	Metrics Metrics
}

// Metrics receives Slack-side measurements (the Prometheus adapter in cmd).
type Metrics interface {
	// SlackCall counts one Web API call; result is "ok", the Slack error
	// code ("not_in_channel"), "ratelimited", "http_NNN" or "error".
	SlackCall(method, result string)
	SlackRateLimited(method string)
	Reconnect()
	Connected(bool)
	Ack(kind string, d time.Duration)
	// Panic counts a recovered panic in a handler or loop.
	Panic(where string)
	// Busy counts a request refused because the lifecycle was at capacity.
	Busy()
}

type nopMetrics struct{}

func (nopMetrics) SlackCall(string, string)  {}
func (nopMetrics) SlackRateLimited(string)   {}
func (nopMetrics) Reconnect()                {}
func (nopMetrics) Connected(bool)            {}
func (nopMetrics) Ack(string, time.Duration) {}
func (nopMetrics) Panic(string)              {}
func (nopMetrics) Busy()                     {}

// Lifecycle is what the bot asks of the request lifecycle
// (*access.Service). Every method that acts for a person takes that
// person's Slack ID from the payload, and the lifecycle checks it.
type Lifecycle interface {
	Check(ctx context.Context, in access.SubmitInput) (*access.System, *access.Role, time.Duration, error)
	Submit(ctx context.Context, in access.SubmitInput) (*access.Request, error)
	Decide(ctx context.Context, id, actor string, approve bool, reason string, step int) (*access.Request, error)
	Cancel(ctx context.Context, id, actor string) (*access.Request, error)
	Revoke(ctx context.Context, id, actor, reason string) (*access.Request, error)
	Extend(ctx context.Context, id, actor string, d time.Duration, reason string) (*access.Request, error)
	Confirm(ctx context.Context, id, actor, op string) (*access.Request, error)
	GetFor(ctx context.Context, id, actor string) (*access.Request, error)
	Mine(ctx context.Context, user string) ([]*access.Request, error)
	PendingFor(ctx context.Context, user string) ([]*access.Request, error)
	LiveIn(ctx context.Context, system string) ([]*access.Request, error)
	CanSeeSystem(user, system string) bool
	// Busy says the lifecycle is beyond what it can sustain: the bot then
	// answers new requests "busy, try again in a moment" at once.
	Busy() bool
	// Offboard ends what a deactivated person holds and waits for;
	// Reinstate forgets it (reactivated); Recheck re-evaluates the
	// pending requests of someone whose profile changed.
	Offboard(ctx context.Context, user, why string) error
	Reinstate(user string)
	Recheck(ctx context.Context, user string) error
}

// Forgetter is the part of the directory the bot tells about profile
// changes, so that the next question about that person asks Slack again.
type Forgetter interface{ Forget(user string) }

var _ Lifecycle = (*access.Service)(nil)

// Bot connects accessbot to Slack. Create it with New, give it the
// lifecycle with Attach, then Run it.
type Bot struct {
	cfg   Config
	api   *slack.Client
	sm    *socketmode.Client
	svc   Lifecycle
	rb    *access.Runbook
	clock access.Clock
	log   *slog.Logger
	mx    Metrics

	jobs chan func()

	dir    access.Directory // cached directory (UseDirectory); nil: ask Slack directly
	forget Forgetter

	homes *homes // App Homes to refresh after notices

	connMu    sync.Mutex
	connected bool

	seenMu sync.Mutex
	seen   map[string]time.Time // envelope IDs already handled (duplicate deliveries)
	acked  sync.Map             // envelope IDs acked while their handler runs

	// ackFn sends an envelope's ack: sm.AckCtx, replaced only by the fuzz
	// tests, which drive handleEnvelope without a socket and record acks.
	ackFn func(ctx context.Context, envelopeID string, payload any) error
}

// New returns a Bot for cfg. It does not connect.
func New(cfg Config) *Bot {
	if cfg.Command == "" {
		cfg.Command = "/access"
	}
	if cfg.Clock == nil {
		cfg.Clock = access.ClockFunc(time.Now)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 32
	}
	if cfg.Queue <= 0 {
		cfg.Queue = 1024
	}
	if cfg.AckBudget <= 0 {
		cfg.AckBudget = 2 * time.Second
	}
	if cfg.PingInterval <= 0 {
		cfg.PingInterval = 30 * time.Second
	}
	if cfg.ShutdownGrace <= 0 {
		cfg.ShutdownGrace = 10 * time.Second
	}
	if cfg.MaxRetryAfter <= 0 {
		cfg.MaxRetryAfter = 60 * time.Second
	}
	if cfg.Sleep == nil {
		cfg.Sleep = sleepCtx
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 30 * time.Second}
	}
	if cfg.Metrics == nil {
		cfg.Metrics = nopMetrics{}
	}
	opts := []slack.Option{slack.OptionHTTPClient(cfg.HTTPClient), slack.OptionAppLevelToken(cfg.AppToken)}
	if cfg.APIURL != "" {
		opts = append(opts, slack.OptionAPIURL(cfg.APIURL))
	}
	api := slack.New(cfg.BotToken, opts...)
	b := &Bot{
		cfg: cfg, api: api, rb: cfg.Runbook, clock: cfg.Clock, log: cfg.Logger, mx: cfg.Metrics,
		jobs: make(chan func(), cfg.Queue),
		seen: map[string]time.Time{},
	}
	b.homes = newHomes(b)
	b.sm = socketmode.New(api, socketmode.OptionPingInterval(cfg.PingInterval))
	b.ackFn = b.sm.AckCtx
	return b
}

// Attach gives the bot the lifecycle it drives. The lifecycle in turn
// uses the bot as its Notifier and Directory.
func (b *Bot) Attach(svc Lifecycle) { b.svc = svc }

// Connected reports whether the Socket Mode connection is up (readiness).
func (b *Bot) Connected() bool {
	b.connMu.Lock()
	defer b.connMu.Unlock()
	return b.connected
}

func (b *Bot) setConnected(v bool) {
	b.connMu.Lock()
	b.connected = v
	b.connMu.Unlock()
	b.mx.Connected(v)
}

// Run connects over Socket Mode and serves until ctx is done, then waits
// for in-flight handlers. It returns an error only if the connection fails
// for good (invalid token).
func (b *Bot) Run(ctx context.Context) error {
	if b.svc == nil {
		return errors.New("bot: Attach a service before Run")
	}
	// Handlers run on work, which outlives ctx by a grace period: a
	// handler interrupted between posting a message and storing where it
	// went would leave a copy that is never updated (stale buttons).
	work, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := 0; i < b.cfg.Workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case job := <-b.jobs:
					job()
				case <-stop:
					for { // finish what was already accepted
						select {
						case job := <-b.jobs:
							job()
						default:
							return
						}
					}
				}
			}
		}()
	}
	wg.Add(1)
	go func() { defer wg.Done(); b.homes.run(work, stop) }()
	sctx, cancelSocket := context.WithCancel(ctx)
	defer cancelSocket()
	runErr := make(chan error, 1)
	go func() { runErr <- b.sm.RunContext(sctx) }()
	finish := func() {
		b.setConnected(false)
		close(stop)
		t := time.AfterFunc(b.cfg.ShutdownGrace, cancelWork)
		defer t.Stop()
		wg.Wait()
	}
	for {
		select {
		case <-ctx.Done():
			finish()
			return nil
		case err := <-runErr:
			finish()
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("slack socket mode: %w", err)
		case evt := <-b.sm.Events:
			b.dispatch(work, evt)
		}
	}
}

// dispatch routes one socket event. It never blocks on slow work: envelopes
// go to the bounded worker pool (slack-protocol.md §7 pitfall 1).
func (b *Bot) dispatch(ctx context.Context, evt socketmode.Event) {
	switch evt.Type {
	case socketmode.EventTypeConnected:
		b.setConnected(true)
		b.log.Info("connected to Slack")
	case socketmode.EventTypeConnecting:
		if b.Connected() {
			b.mx.Reconnect()
		}
		b.setConnected(false)
	case socketmode.EventTypeConnectionError:
		b.setConnected(false)
		b.log.Warn("Slack connection error; slack-go retries", "error", fmt.Sprint(evt.Data))
	case socketmode.EventTypeInvalidAuth:
		b.log.Error("Slack rejected the app token (invalid_auth)")
	case socketmode.EventTypeErrorBadMessage:
		// No Request to ack through the usual path (pitfall 3): dig the
		// envelope ID out of the raw frame so Slack does not retry forever.
		if bm, ok := evt.Data.(*socketmode.ErrorBadMessage); ok {
			if id := envelopeID(bm.Message); id != "" {
				b.ack(ctx, id, "bad_message", time.Now(), nil)
			}
			b.log.Warn("unparseable Slack envelope acked and dropped", "error", fmt.Sprint(bm.Cause))
		}
	case socketmode.EventTypeSlashCommand, socketmode.EventTypeInteractive, socketmode.EventTypeEventsAPI:
		if evt.Request == nil {
			return
		}
		received := time.Now()
		req := *evt.Request
		job := func() { b.handleEnvelope(ctx, evt, req, received) }
		select {
		case b.jobs <- job:
		default:
			go b.ack(ctx, req.EnvelopeID, "busy", received, busyPayload(evt.Type))
		}
	}
}

func busyPayload(t socketmode.EventType) any {
	if t == socketmode.EventTypeSlashCommand {
		return map[string]any{"response_type": "ephemeral", "text": "accessbot is very busy right now; please try again in a minute. Nothing was changed."}
	}
	return nil
}

// ack acknowledges an envelope with a bounded wait (AckCtx: Ack would
// block forever while disconnected, pitfall 2).
func (b *Bot) ack(ctx context.Context, envelopeID, kind string, received time.Time, payload any) {
	actx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	b.acked.Store(envelopeID, true)
	if err := b.ackFn(actx, envelopeID, payload); err != nil {
		b.log.Warn("ack failed", "envelope", envelopeID, "error", err)
		return
	}
	b.mx.Ack(kind, time.Since(received))
}

// firstSeen reports whether an envelope is new; Slack redelivers envelopes
// that were not acked in time, and a redelivery must be harmless.
func (b *Bot) firstSeen(id string) bool {
	b.seenMu.Lock()
	defer b.seenMu.Unlock()
	now := time.Now()
	if _, ok := b.seen[id]; ok {
		return false
	}
	if len(b.seen) > 10000 {
		for k, t := range b.seen {
			if now.Sub(t) > 10*time.Minute {
				delete(b.seen, k)
			}
		}
	}
	b.seen[id] = now
	return true
}

// call runs one Web API call, waiting out 429s (Retry-After, capped) and
// retrying 5xx and transport errors a few times, so that no message is
// dropped silently; a final failure is returned, wrapped with the method.
func (b *Bot) call(ctx context.Context, method string, fn func(ctx context.Context) error) error {
	var err error
	for attempt := 0; attempt < 8; attempt++ {
		err = fn(ctx)
		b.mx.SlackCall(method, slackResult(err))
		if err == nil {
			return nil
		}
		var rl *slack.RateLimitedError
		var sc slack.StatusCodeError
		switch {
		case errors.As(err, &rl):
			b.mx.SlackRateLimited(method)
			wait := rl.RetryAfter
			if wait <= 0 {
				wait = time.Second
			}
			if wait > b.cfg.MaxRetryAfter {
				wait = b.cfg.MaxRetryAfter
			}
			if serr := b.cfg.Sleep(ctx, wait); serr != nil {
				return fmt.Errorf("slack %s: %w", method, err)
			}
		case errors.As(err, &sc) && (sc.Code >= 500 || sc.Code == 429) && attempt < 3:
			if serr := b.cfg.Sleep(ctx, time.Duration(attempt+1)*500*time.Millisecond); serr != nil {
				return fmt.Errorf("slack %s: %w", method, err)
			}
		default:
			var se slack.SlackErrorResponse
			if errors.As(err, &se) || ctx.Err() != nil || attempt >= 3 {
				return fmt.Errorf("slack %s: %w", method, err)
			}
			if serr := b.cfg.Sleep(ctx, time.Duration(attempt+1)*500*time.Millisecond); serr != nil {
				return fmt.Errorf("slack %s: %w", method, err)
			}
		}
	}
	return fmt.Errorf("slack %s: giving up: %w", method, err)
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// maxInlineRetryAfter is the longest Slack rate-limit wait an outbox
// delivery sits out in place (Slack's per-channel limit usually answers
// Retry-After: 1); a longer one is persisted by the outbox instead.
const maxInlineRetryAfter = 2 * time.Second

// callOnce runs one Web API call for the outbox: one attempt, a second
// after a transport error, up to three through short rate-limit waits;
// anything else is
// returned (wrapped with the method) for the outbox to persist and retry
// with backoff and Slack's Retry-After.
func (b *Bot) callOnce(ctx context.Context, method string, fn func(ctx context.Context) error) error {
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		err = fn(ctx)
		b.mx.SlackCall(method, slackResult(err))
		var rl *slack.RateLimitedError
		var se slack.SlackErrorResponse
		var sc slack.StatusCodeError
		switch {
		case err == nil:
			return nil
		case errors.As(err, &rl):
			b.mx.SlackRateLimited(method)
			if attempt == 2 || rl.RetryAfter > maxInlineRetryAfter || b.cfg.Sleep(ctx, max(rl.RetryAfter, 100*time.Millisecond)) != nil {
				return fmt.Errorf("slack %s: %w", method, err)
			}
		case errors.As(err, &se), errors.As(err, &sc), ctx.Err() != nil, attempt > 0:
			return fmt.Errorf("slack %s: %w", method, err)
		}
	}
	return fmt.Errorf("slack %s: %w", method, err)
}

// postOnce is post through callOnce (outbox deliveries).
func (b *Bot) postOnce(ctx context.Context, channel, fallback string, blocks []slack.Block) (string, string, error) {
	var ch, ts string
	err := b.callOnce(ctx, "chat.postMessage", func(ctx context.Context) error {
		var err error
		ch, ts, err = b.api.PostMessageContext(ctx, channel, slack.MsgOptionText(fallback, false), slack.MsgOptionBlocks(blocks...))
		return err
	})
	return ch, ts, err
}

// post sends a message (to a channel, or to a user's DM when channel is a
// user ID) and returns where it landed.
func (b *Bot) post(ctx context.Context, channel, fallback string, blocks []slack.Block) (string, string, error) {
	var ch, ts string
	err := b.call(ctx, "chat.postMessage", func(ctx context.Context) error {
		var err error
		ch, ts, err = b.api.PostMessageContext(ctx, channel, slack.MsgOptionText(fallback, false), slack.MsgOptionBlocks(blocks...))
		return err
	})
	return ch, ts, err
}

// slackResult names the outcome of a Web API call for metrics.
func slackResult(err error) string {
	var se slack.SlackErrorResponse
	var rl *slack.RateLimitedError
	var sc slack.StatusCodeError
	switch {
	case err == nil:
		return "ok"
	case errors.As(err, &se):
		return se.Err
	case errors.As(err, &rl):
		return "ratelimited"
	case errors.As(err, &sc):
		return fmt.Sprintf("http_%d", sc.Code)
	}
	return "error"
}
