package access

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"
)

// Log attribute keys; every line about a request carries its ID.
const (
	LogRequest   = "request"
	LogConnector = "connector"
	LogError     = "error"
	LogEvent     = "event"
	LogRef       = "ref"
)

// MaxReasonRunes bounds a request reason. Longer reasons are refused with a
// clear error rather than silently cut; rendering truncates further to
// Block Kit limits.
const MaxReasonRunes = 10000

// Defaults for ServiceConfig fields left zero.
const (
	DefaultRetryBase        = time.Second
	DefaultRetryCap         = 60 * time.Second
	DefaultRetryAfterCap    = 5 * time.Minute
	DefaultGrantRetryWindow = 15 * time.Minute
	DefaultAlertAfter       = 3
	DefaultLateAfter        = time.Minute
	DefaultProbeInterval    = time.Second
	DefaultConfirmReminder  = time.Hour
	DefaultWorkers          = 8
	DefaultQueue            = 4096
	DefaultPaceInterval     = time.Second // Slack: about one message per second per channel
	DefaultNoticeRetryCap   = time.Minute
	DefaultMaxBatch         = 20
	DefaultSenderWorkers    = 8
	DefaultReconcileEvery   = 30 * time.Second
	DefaultOverloadLag      = 2 * time.Second
)

// ServiceConfig wires a Service. Runbook and Store are required; the rest
// have defaults.
type ServiceConfig struct {
	Runbook    *Runbook
	Store      Store
	Directory  Directory
	Notifier   Notifier
	Connectors map[string]Connector // by connector instance name; lookup connectors too (SourcesOf)
	Scheduler  Scheduler            // nil: deadlines are found by the reconcile pass only
	Clock      Clock
	Logger     *slog.Logger
	Observer   Observer
	// Periodic jobs run by Run on the lifecycle clock (digests, retention).
	// Run adds its own: the re-checks of pending requests every
	// RecheckEvery (default 5 min), and, with AccountCheckers (identity
	// providers by connector name), the offboarding check every
	// AccountCheckEvery (default 15 min).
	Jobs              []Job
	RecheckEvery      time.Duration
	AccountCheckers   map[string]AccountChecker
	AccountCheckEvery time.Duration

	// RetryBase and RetryCap bound the full-jitter exponential backoff of
	// grant and revoke retries (defaults 1 s and 60 s).
	RetryBase, RetryCap time.Duration
	// RetryAfterCap caps a target's (or Slack's) Retry-After hint (default 5 min).
	RetryAfterCap time.Duration
	// GrantRetryWindow is how long retryable grant failures are retried
	// before the grant is given up (default 15 min). Revokes are retried
	// forever.
	GrantRetryWindow time.Duration
	// AlertAfter is the number of failed revoke attempts after which owners
	// are alerted (default 3; a permanent failure alerts at once).
	AlertAfter int
	// LateAfter is how far past its expiry a removal must start to count as
	// late, which the requester is told (default 1 min).
	LateAfter time.Duration
	// ProbeInterval is the least time between calls to a target that is
	// failing (default 1 s): a down target sees about one probe per
	// interval whatever the backlog.
	ProbeInterval time.Duration
	// ConfirmReminder is how often owners are reminded of an unconfirmed
	// manual task (default 1 h).
	ConfirmReminder time.Duration
	// Workers and Queue size the bounded worker pool for due work
	// (defaults 8 and 4096).
	Workers, Queue int
	// OverloadLag is how late due work may start, on average, before the
	// service says it is Busy and new requests are refused (default 2 s).
	OverloadLag time.Duration
	// ReconcileEvery is the period of the reconcile pass (wall time,
	// default 30 s).
	ReconcileEvery time.Duration
	// PaceInterval is the least wall time between two deliveries to one
	// destination (default 1 s, Slack's per-channel pace; tests use less).
	// MaxBatch bounds the notices handed to one Notifier call (default 20),
	// SenderWorkers the concurrent deliveries (default 8).
	PaceInterval  time.Duration
	MaxBatch      int
	SenderWorkers int
	// NoticeRetryCap caps the backoff between attempts to deliver a notice
	// while Slack fails (default 1 min).
	NoticeRetryCap time.Duration
	// InlineDelivery delivers notices on the worker that found them due,
	// without the paced sender (the sandbox and the demo, which move time
	// themselves and want each step's messages sent before the next).
	InlineDelivery bool
	// WallClock is the time that pacing follows (default time.Now).
	WallClock func() time.Time
	// Rand returns a float in [0,1) for jitter; tests make it deterministic.
	Rand func() float64
}

// Observer receives lifecycle measurements (metrics). All methods must be
// cheap and safe for concurrent use.
type Observer interface {
	Transition(r *Request, ev Event)
	ConnectorCall(connector, op string, d time.Duration, err error)
	RevocationLag(r *Request, lag time.Duration)
	// NoticeDelivered: a notice reached Slack, delay after it was made.
	NoticeDelivered(kind NoticeKind, delay time.Duration)
	// NoticeFailed: a delivery failed (dropped when permanent).
	NoticeFailed(kind NoticeKind, permanent bool)
	// NoticeCoalesced: an update was skipped because the copy was current.
	NoticeCoalesced(kind NoticeKind)
	// OutboxQueued: notices waiting in the sender now.
	OutboxQueued(n int)
	// Panic: a panic was recovered (where: "worker", "sender", …).
	Panic(where string)
}

// NopObserver ignores every measurement; embed it to implement only some.
type NopObserver struct{}

func (NopObserver) Transition(*Request, Event)                         {}
func (NopObserver) ConnectorCall(string, string, time.Duration, error) {}
func (NopObserver) RevocationLag(*Request, time.Duration)              {}
func (NopObserver) NoticeDelivered(NoticeKind, time.Duration)          {}
func (NopObserver) NoticeFailed(NoticeKind, bool)                      {}
func (NopObserver) NoticeCoalesced(NoticeKind)                         {}
func (NopObserver) OutboxQueued(int)                                   {}
func (NopObserver) Panic(string)                                       {}

// Service is the request lifecycle: it validates requests against the
// runbook, records every transition through the one write path
// (transition), performs the effects of the transitions it won (grants,
// revokes) on its own workers, delivers notices from the outbox, and
// drives deadlines and periodic jobs (Run). Its methods are safe for
// concurrent use.
type Service struct {
	cfg   ServiceConfig
	rb    *Runbook
	src   Sources // the lookup connectors among Connectors (on-call, tickets)
	store Store
	clock Clock
	log   *slog.Logger
	obs   Observer

	entMu sync.Mutex
	ents  map[string]*entLock // per-entitlement serialisation of connector calls

	gateMu sync.Mutex
	gates  map[string]*gate // per-connector probe limiter

	queue    chan queued
	dropped  atomic.Int64 // Enqueue calls that found the queue full
	flightMu sync.Mutex
	inflight map[string]bool // id → queued again while running

	out     *sender     // the paced sender while Run runs; nil: deliver inline
	running atomic.Bool // Run is serving

	gone sync.Map // user ID → time: offboarded people, never asked to approve again

	waitMu   sync.Mutex
	waitAvg  time.Duration // moving average of the work queue's wait, for Busy
	waitSeen time.Time     // wall time of the last sample
}

// queued is one request ID in the work queue, with the wall time it was
// queued (Busy measures how long work waits).
type queued struct {
	id string
	at time.Time
}

type entLock struct {
	mu   sync.Mutex
	refs int
}

type gate struct {
	failing   bool
	lastProbe time.Time
	deferred  map[string]bool
}

// NewService returns a Service. Call Run to start its workers.
func NewService(cfg ServiceConfig) *Service {
	if cfg.Clock == nil {
		cfg.Clock = ClockFunc(time.Now)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Observer == nil {
		cfg.Observer = NopObserver{}
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&cfg.RetryBase, DefaultRetryBase)
	def(&cfg.RetryCap, DefaultRetryCap)
	def(&cfg.RetryAfterCap, DefaultRetryAfterCap)
	def(&cfg.GrantRetryWindow, DefaultGrantRetryWindow)
	def(&cfg.LateAfter, DefaultLateAfter)
	def(&cfg.ProbeInterval, DefaultProbeInterval)
	def(&cfg.ConfirmReminder, DefaultConfirmReminder)
	def(&cfg.NoticeRetryCap, DefaultNoticeRetryCap)
	def(&cfg.ReconcileEvery, DefaultReconcileEvery)
	def(&cfg.OverloadLag, DefaultOverloadLag)
	if cfg.PaceInterval == 0 {
		cfg.PaceInterval = DefaultPaceInterval
	}
	cfg.PaceInterval = max(cfg.PaceInterval, 0) // negative: no pacing (tests)
	pos := func(n *int, v int) {
		if *n <= 0 {
			*n = v
		}
	}
	pos(&cfg.AlertAfter, DefaultAlertAfter)
	pos(&cfg.Workers, DefaultWorkers)
	pos(&cfg.Queue, DefaultQueue)
	pos(&cfg.MaxBatch, DefaultMaxBatch)
	pos(&cfg.SenderWorkers, DefaultSenderWorkers)
	if cfg.Rand == nil {
		cfg.Rand = rand.Float64
	}
	if cfg.WallClock == nil {
		cfg.WallClock = time.Now
	}
	return &Service{
		cfg: cfg, rb: cfg.Runbook, src: SourcesOf(cfg.Connectors), store: cfg.Store, clock: cfg.Clock, log: cfg.Logger, obs: cfg.Observer,
		ents: map[string]*entLock{}, gates: map[string]*gate{},
		queue: make(chan queued, cfg.Queue), inflight: map[string]bool{},
	}
}

// Runbook returns the runbook the service enforces.
func (s *Service) Runbook() *Runbook { return s.rb }

// Directory returns the directory the service resolves people with.
func (s *Service) Directory() Directory { return s.cfg.Directory }

// Now returns the service clock's time.
func (s *Service) Now() time.Time { return s.clock.Now() }

// newRef returns a short reference people can quote and operators can
// find in the logs ("E-1a2b3c4d").
func newRef() string {
	var buf [4]byte
	_, _ = crand.Read(buf[:])
	return "E-" + hex.EncodeToString(buf[:])
}

// NewRef is newRef for the adapters: one format of reference everywhere.
func NewRef() string { return newRef() }

// panicked logs a recovered panic with its stack and a reference, counts
// it, and returns the reference.
func (s *Service) panicked(ctx context.Context, where string, p any) string {
	ref := newRef()
	s.obs.Panic(where)
	s.log.ErrorContext(ctx, "recovered from a panic; accessbot keeps serving", "where", where, LogRef, ref,
		"panic", fmt.Sprint(p), "stack", string(debug.Stack()))
	return ref
}

func (s *Service) role(r *Request) *Role {
	if sys := s.rb.Systems[r.System]; sys != nil {
		return sys.Roles[r.Role]
	}
	return nil
}

// systemName is the system's display name, for safe failure texts.
func (s *Service) systemName(id string) string {
	if sys := s.rb.Systems[id]; sys != nil {
		return sys.DisplayName()
	}
	return id
}

func (s *Service) lockEntitlement(key string) func() {
	s.entMu.Lock()
	l := s.ents[key]
	if l == nil {
		l = &entLock{}
		s.ents[key] = l
	}
	l.refs++
	s.entMu.Unlock()
	l.mu.Lock()
	return func() {
		l.mu.Unlock()
		s.entMu.Lock()
		l.refs--
		if l.refs == 0 {
			delete(s.ents, key)
		}
		s.entMu.Unlock()
	}
}

// backoff is full-jitter exponential: uniform in [0, min(cap, base·2^n)],
// but never sooner than the target's own (capped) Retry-After.
func (s *Service) backoff(attempt int, retryAfter time.Duration) time.Duration {
	ceil := s.cfg.RetryCap
	if attempt < 30 {
		if d := s.cfg.RetryBase << (attempt - 1); d > 0 && d < ceil {
			ceil = d
		}
	}
	d := time.Duration(s.cfg.Rand() * float64(ceil))
	if d < s.cfg.RetryBase/10 {
		d = s.cfg.RetryBase / 10
	}
	if retryAfter > s.cfg.RetryAfterCap {
		retryAfter = s.cfg.RetryAfterCap
	}
	if d < retryAfter {
		d = retryAfter
	}
	return d
}

// gateAllow reports whether a call to connector may go out now. While a
// connector is failing, at most one probe per ProbeInterval is allowed;
// the others are deferred and re-queued when a probe succeeds.
func (s *Service) gateAllow(ctx context.Context, connector, id string) (context.Context, bool) {
	s.gateMu.Lock()
	defer s.gateMu.Unlock()
	g := s.gates[connector]
	if g == nil || !g.failing {
		return ctx, true
	}
	now := s.clock.Now()
	if now.Sub(g.lastProbe) >= s.cfg.ProbeInterval {
		g.lastProbe = now
		delete(g.deferred, id)
		// One attempt: the connector's own inner retries would turn one
		// probe into several requests to a target that is down.
		return WithProbe(ctx), true
	}
	g.deferred[id] = true
	return ctx, false
}

func (s *Service) gateResult(connector string, err error) {
	s.gateMu.Lock()
	g := s.gates[connector]
	if g == nil {
		g = &gate{deferred: map[string]bool{}}
		s.gates[connector] = g
	}
	var kick []string
	if err != nil && !isAwaiting(err) {
		if class, _ := Classify(err); class == Retryable {
			g.failing = true
			g.lastProbe = s.clock.Now()
		}
	} else if g.failing {
		g.failing = false
		for id := range g.deferred {
			kick = append(kick, id)
		}
		g.deferred = map[string]bool{}
	}
	s.gateMu.Unlock()
	for _, id := range kick {
		s.Enqueue(id)
	}
}

// rearmDeferred sets an in-memory timer for a deferred call one probe
// interval (plus jitter) from now; the store still holds the true deadline.
func (s *Service) rearmDeferred(r *Request) {
	if s.cfg.Scheduler == nil {
		return
	}
	jitter := time.Duration(s.cfg.Rand() * float64(s.cfg.RetryCap))
	s.cfg.Scheduler.Arm(r.ID, s.clock.Now().Add(s.cfg.ProbeInterval+jitter))
}
