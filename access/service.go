package access

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"
)

// Log attribute keys; every line about a request carries its ID.
const (
	LogRequest   = "request"
	LogConnector = "connector"
	LogError     = "error"
	LogEvent     = "event"
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
)

// ServiceConfig wires a Service. Runbook, Store, Notifier and Connectors are
// required; the rest have defaults.
type ServiceConfig struct {
	Runbook    *Runbook
	Store      Store
	Directory  Directory
	Notifier   Notifier
	Connectors map[string]Connector // by connector instance name
	Scheduler  Scheduler            // nil: deadlines are found by Reconcile only
	Clock      Clock
	Logger     *slog.Logger
	Observer   Observer

	// RetryBase and RetryCap bound the full-jitter exponential backoff of
	// grant and revoke retries (defaults 1 s and 60 s).
	RetryBase, RetryCap time.Duration
	// RetryAfterCap caps a target's Retry-After hint (default 5 min).
	RetryAfterCap time.Duration
	// GrantRetryWindow is how long retryable grant failures are retried
	// before the request ends in grant_failed (default 15 min). Revokes are
	// retried forever.
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
	// Workers and Queue size the bounded worker pool for due work.
	Workers, Queue int
	// Rand returns a float in [0,1) for jitter; tests make it deterministic.
	Rand func() float64
	// AsyncEffects makes Submit return as soon as the request is durable,
	// sending its messages (and, for approval: auto, granting) in the
	// background, so that Slack gets its ack fast. The effects are bounded
	// by Workers; Wait drains them. Tests that want Submit to return after
	// every effect leave it false.
	AsyncEffects bool
}

// Observer receives lifecycle measurements (metrics). All methods must be
// cheap and safe for concurrent use.
type Observer interface {
	Transition(r *Request, ev Event)
	ConnectorCall(connector, op string, d time.Duration, err error)
	RevocationLag(r *Request, lag time.Duration)
}

type nopObserver struct{}

func (nopObserver) Transition(*Request, Event)                         {}
func (nopObserver) ConnectorCall(string, string, time.Duration, error) {}
func (nopObserver) RevocationLag(*Request, time.Duration)              {}

// Service is the request lifecycle: it validates requests against the
// runbook, records every transition through the Store, performs the effects
// of the transitions it won (grants, revokes, notices), and drives deadlines.
// Its methods are safe for concurrent use.
type Service struct {
	cfg   ServiceConfig
	rb    *Runbook
	store Store
	clock Clock
	log   *slog.Logger
	obs   Observer

	entMu sync.Mutex
	ents  map[string]*entLock // per-entitlement serialisation of connector calls

	gateMu sync.Mutex
	gates  map[string]*gate // per-connector probe limiter

	queue    chan string
	dropped  atomic.Int64 // Enqueue calls that found the queue full
	effects  sync.WaitGroup
	effSem   chan struct{}
	flightMu sync.Mutex
	inflight map[string]bool // id → queued again while running
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
		cfg.Observer = nopObserver{}
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
	if cfg.AlertAfter <= 0 {
		cfg.AlertAfter = DefaultAlertAfter
	}
	if cfg.Workers <= 0 {
		cfg.Workers = DefaultWorkers
	}
	if cfg.Queue <= 0 {
		cfg.Queue = DefaultQueue
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Float64
	}
	return &Service{
		cfg: cfg, rb: cfg.Runbook, store: cfg.Store, clock: cfg.Clock, log: cfg.Logger, obs: cfg.Observer,
		ents: map[string]*entLock{}, gates: map[string]*gate{},
		queue: make(chan string, cfg.Queue), inflight: map[string]bool{},
		effSem: make(chan struct{}, cfg.Workers*8),
	}
}

// Runbook returns the runbook the service enforces.
func (s *Service) Runbook() *Runbook { return s.rb }

// Directory returns the directory the service resolves people with.
func (s *Service) Directory() Directory { return s.cfg.Directory }

// Now returns the service clock's time.
func (s *Service) Now() time.Time { return s.clock.Now() }

// SubmitInput is a request as a person made it.
type SubmitInput struct {
	Requester string
	System    string
	Role      string
	Duration  time.Duration // 0: the role default
	Reason    string
	Extends   string // request ID of the active grant this extends
}

// Check validates in against the runbook without creating anything: the
// system and role exist, the person may request it, the duration is within
// the maximum and the reason is present when required. It returns the
// system, role and effective duration, or an *Error saying what is allowed.
func (s *Service) Check(ctx context.Context, in SubmitInput) (*System, *Role, time.Duration, error) {
	return s.rb.CheckRequest(ctx, s.cfg.Directory, in) // policy.go; shared with Explain
}

// Submit creates a request. It refuses, with an *Error and without creating
// anything, a request the runbook does not allow, and one for a system and
// role the person already holds or has pending (Error.Existing names that
// request) unless it is an extension of it. Approvers of every step are
// resolved now; a role with approval: auto is approved and granted at once.
func (s *Service) Submit(ctx context.Context, in SubmitInput) (*Request, error) {
	sys, role, d, err := s.Check(ctx, in)
	if err != nil {
		return nil, err
	}
	now := s.clock.Now()
	person := in.Requester
	ent := Entitlement{Connector: sys.Connector, Params: cloneMap(role.Grant), Person: person}
	// One submission per person at a time, so that the duplicate check
	// below and the create cannot interleave with a double submit.
	unlock := s.lockEntitlement("submit\x00" + person)
	defer unlock()

	existing, err := s.store.List(ctx, Filter{Requester: person, System: sys.ID, States: []State{StatePending, StateApproved, StateActive}})
	if err != nil {
		return nil, fmt.Errorf("look for existing requests: %w", err)
	}
	if in.Extends != "" {
		base, err := s.store.Get(ctx, in.Extends)
		if err != nil {
			return nil, err
		}
		if base.Requester != person || base.State != StateActive || base.System != sys.ID || base.Role != role.ID {
			return nil, Conflictf("%s is not an active %s %s grant of yours, so it cannot be extended.", base.ID, sys.ID, role.ID)
		}
		in.Extends = base.ID
	}
	for _, e := range existing {
		if e.Role != role.ID || e.ID == in.Extends {
			continue
		}
		if in.Extends != "" && e.Extends == in.Extends && e.State == StatePending {
			return nil, &Error{Kind: ErrConflict, Existing: e.ID, Message: fmt.Sprintf("You already asked to extend %s: %s is waiting for approval.", in.Extends, e.ID)}
		}
		if in.Extends == "" {
			msg := fmt.Sprintf("You already have %s for %s %s (%s).", e.ID, sys.ID, role.ID, describeState(e))
			if e.State == StateActive {
				msg += fmt.Sprintf(" To keep it longer, use `extend %s DURATION`.", e.ID)
			}
			return nil, &Error{Kind: ErrConflict, Existing: e.ID, Message: msg}
		}
	}

	r := &Request{
		Requester: person, System: sys.ID, Role: role.ID, Duration: d,
		Reason: strings.TrimSpace(in.Reason), Extends: in.Extends, Entitlement: ent, CreatedAt: now.UTC(),
	}
	if role.Approval.Auto {
		r.Auto = true
	} else {
		for i := range role.Approval.Steps {
			st, err := s.rb.ResolveStep(ctx, s.cfg.Directory, sys, role, i, person)
			if err != nil {
				return nil, err
			}
			r.Steps = append(r.Steps, st)
		}
		r.TimeoutAt = now.Add(role.ApprovalTimeout).UTC()
		if role.ReminderAfter > 0 && role.ReminderAfter < role.ApprovalTimeout {
			r.RemindAt = now.Add(role.ReminderAfter).UTC()
		}
	}
	if err := Apply(r, Transition{Event: EventRequested, Actor: person, At: now, Note: noteExtends(in.Extends)}); err != nil {
		return nil, err
	}
	r, err = s.store.Create(ctx, r)
	if err != nil {
		return nil, fmt.Errorf("store request: %w", err)
	}
	s.obs.Transition(r, EventRequested)
	s.log.InfoContext(ctx, "request submitted", LogRequest, r.ID, "system", r.System, "role", r.Role)

	if r.Auto {
		r, err = s.update(ctx, r.ID, func(r *Request) error {
			if err := Apply(r, Transition{Event: EventApproved, Actor: ActorAuto, At: now, Note: "approval: auto"}); err != nil {
				return err
			}
			r.DecidedAt = now.UTC()
			r.NextAttemptAt = now.UTC()
			return nil
		})
		if err != nil {
			return nil, err
		}
		approved := r
		if s.after(ctx, func(ctx context.Context) {
			s.notify(ctx, Notice{Kind: NoticeSubmitted, Request: approved})
			if _, err := s.grant(ctx, approved); err != nil {
				s.log.ErrorContext(ctx, "grant after auto approval failed; reconcile retries", LogRequest, approved.ID, LogError, err)
			}
		}) {
			return r, nil
		}
		return s.store.Get(ctx, r.ID)
	}
	s.arm(r)
	pending := r
	if s.after(ctx, func(ctx context.Context) {
		s.notify(ctx, Notice{Kind: NoticeSubmitted, Request: pending})
		s.notify(ctx, Notice{Kind: NoticeApprovalNeeded, Request: pending})
	}) {
		return r, nil
	}
	return s.store.Get(ctx, r.ID)
}

// after runs the effects of a committed transition: in the background when
// AsyncEffects is set and a slot is free (it reports true), else inline
// (false). Background effects outlive the caller's context but not Wait.
func (s *Service) after(ctx context.Context, fn func(ctx context.Context)) bool {
	if s.cfg.AsyncEffects {
		select {
		case s.effSem <- struct{}{}:
			s.effects.Add(1)
			go func() {
				defer s.effects.Done()
				defer func() { <-s.effSem }()
				fn(context.WithoutCancel(ctx))
			}()
			return true
		default: // all slots busy: apply back-pressure by running inline
		}
	}
	fn(ctx)
	return false
}

// Wait blocks until background effects started by Submit have finished.
func (s *Service) Wait() { s.effects.Wait() }

// Resume re-sends the approval DMs of pending requests that have none for
// their current step (the process stopped between storing a request and
// messaging its approvers), so that no request waits on approvers who
// were never asked. Run it once at start-up.
//
// Only requests created before `started` (when this process began serving)
// are considered: later ones are being messaged by their own Submit, whose
// DMs may still be in flight when Resume runs.
func (s *Service) Resume(ctx context.Context, started time.Time) error {
	rs, err := s.store.List(ctx, Filter{States: []State{StatePending}})
	if err != nil {
		return err
	}
	for _, r := range rs {
		if r.Auto || len(r.Steps) == 0 || r.CurrentStep >= len(r.Steps) || !r.CreatedAt.Before(started) {
			continue
		}
		asked := false
		for _, m := range r.Messages {
			if m.Kind == RefApproval && m.Step == r.CurrentStep {
				asked = true
				break
			}
		}
		if !asked {
			s.log.InfoContext(ctx, "approvers were never messaged; sending now", LogRequest, r.ID)
			s.notify(ctx, Notice{Kind: NoticeApprovalNeeded, Request: r})
		}
	}
	return nil
}

func noteExtends(id string) string {
	if id == "" {
		return ""
	}
	return "extends " + id
}

func describeState(r *Request) string {
	switch r.State {
	case StatePending:
		return "waiting for approval"
	case StateApproved:
		return "approved, being granted"
	case StateActive:
		return "active until " + r.ExpiresAt.UTC().Format(time.RFC3339)
	}
	return string(r.State)
}

// Decide records an approver's click. actor comes from the Slack payload
// and is checked against the request at the time of the click: the
// requester can never approve their own request, only approvers of the
// current step may decide, a request already decided is refused with who
// decided, and a deny needs a reason. The last approval needed approves the
// request and grants it.
func (s *Service) Decide(ctx context.Context, id, actor string, approve bool, reason string) (*Request, error) {
	reason = strings.TrimSpace(reason)
	if !approve && reason == "" {
		return nil, Invalidf("Please give a reason for the denial; the requester will see it.")
	}
	if utf8.RuneCountInString(reason) > MaxReasonRunes {
		return nil, Invalidf("The reason is too long; the limit is %d characters.", MaxReasonRunes)
	}
	if err := s.stillApprover(ctx, id, actor); err != nil {
		return nil, err
	}
	now := s.clock.Now()
	var final Event
	r, err := s.update(ctx, id, func(r *Request) error {
		if r.State != StatePending {
			return AlreadyDecided(r)
		}
		if actor == r.Requester {
			return Forbiddenf("You cannot approve or deny your own request %s.", r.ID)
		}
		step := r.CurrentStep
		if !r.IsApprover(actor) {
			return Forbiddenf("You are not an approver of step %d of %s; it waits for %s.", step+1, r.ID, mentionList(r.Steps[step].Approvers))
		}
		if approve && contains(r.Approvals(step), actor) {
			return Conflictf("You already approved step %d of %s; it still needs %d more approval(s).", step+1, r.ID, r.Steps[step].Min-len(r.Approvals(step)))
		}
		r.Decisions = append(r.Decisions, Decision{Step: step, Actor: actor, Approve: approve, Reason: reason, At: now.UTC()})
		switch {
		case !approve:
			final = EventDenied
		case !StepMet(r, step):
			final = EventApprovalRecorded
		case step+1 < len(r.Steps):
			final = EventStepApproved
		default:
			final = EventApproved
		}
		if err := Apply(r, Transition{Event: final, Actor: actor, At: now, Note: reason}); err != nil {
			return err
		}
		switch final {
		case EventStepApproved:
			r.CurrentStep++
		case EventApproved:
			r.DecidedAt = now.UTC()
			r.NextAttemptAt = now.UTC() // the grant is due now; reconcile finds it after a crash
		case EventDenied:
			r.DecidedAt = now.UTC()
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.arm(r)
	switch final {
	case EventApprovalRecorded:
		s.notify(ctx, Notice{Kind: NoticeProgress, Request: r})
	case EventStepApproved:
		s.notify(ctx, Notice{Kind: NoticeProgress, Request: r})
		s.notify(ctx, Notice{Kind: NoticeApprovalNeeded, Request: r})
	case EventDenied:
		s.notify(ctx, Notice{Kind: NoticeDecided, Request: r})
	case EventApproved:
		s.notify(ctx, Notice{Kind: NoticeDecided, Request: r})
		return s.grant(ctx, r)
	}
	return r, nil
}

// stillApprover checks the clicker against the policy as it is now: the
// approvers stored with the request were resolved when its step started,
// and since then a manager may have changed or someone left a team or user
// group. A person no longer among the step's approvers is refused. If the
// current resolution cannot be made (directory down), the stored
// approvers decide.
func (s *Service) stillApprover(ctx context.Context, id, actor string) error {
	r, err := s.store.Get(ctx, id)
	if err != nil || r.State != StatePending || r.Auto || r.CurrentStep >= len(r.Steps) || !r.IsApprover(actor) {
		return nil // the transition itself explains what is wrong
	}
	sys, role, err := s.rb.Lookup(r.System, r.Role)
	if err != nil || role.Approval.Auto || r.CurrentStep >= len(role.Approval.Steps) {
		return nil
	}
	st, err := s.rb.ResolveStep(ctx, s.cfg.Directory, sys, role, r.CurrentStep, r.Requester)
	if err != nil {
		return nil
	}
	if !contains(st.Approvers, actor) {
		return Forbiddenf("You are no longer an approver of step %d of %s (the runbook or the directory changed since it was sent to you); it now waits for %s.", r.CurrentStep+1, r.ID, mentionList(st.Approvers))
	}
	return nil
}

// AlreadyDecided is the error that tells a late clicker what happened to
// r (who decided, when); it wraps ErrConflict.
func AlreadyDecided(r *Request) error {
	last := r.Last()
	who := "accessbot"
	if last.Actor != "" && last.Actor != ActorBot && last.Actor != ActorAuto {
		who = "<@" + last.Actor + ">"
	}
	for i := len(r.History) - 1; i >= 0; i-- {
		h := r.History[i]
		if h.From == StatePending && h.To != StatePending {
			last = h
			who = "accessbot"
			if h.Actor != ActorBot && h.Actor != ActorAuto {
				who = "<@" + h.Actor + ">"
			}
			break
		}
	}
	return Conflictf("%s was already %s by %s at %s; nothing was changed.", r.ID, pastTense(last.To), who, last.At.UTC().Format("2006-01-02 15:04 MST"))
}

func pastTense(s State) string {
	switch s {
	case StateTimedOut:
		return "timed out"
	case StateGrantFailed, StateActive, StateRevoking, StateExpired, StateRevoked:
		return "approved"
	}
	return string(s)
}

func mentionList(ids []string) string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = "<@" + id + ">"
	}
	return strings.Join(out, ", ")
}

// Cancel withdraws a pending request. Only the requester or an admin may.
func (s *Service) Cancel(ctx context.Context, id, actor string) (*Request, error) {
	now := s.clock.Now()
	r, err := s.update(ctx, id, func(r *Request) error {
		if actor != r.Requester && !s.rb.IsAdmin(actor) {
			return Forbiddenf("Only the requester can cancel %s.", r.ID)
		}
		if r.State != StatePending {
			if r.State == StateActive {
				return Conflictf("%s is already granted; use `revoke %s` to give the access back.", r.ID, r.ID)
			}
			return AlreadyDecided(r)
		}
		if err := Apply(r, Transition{Event: EventCancelled, Actor: actor, At: now}); err != nil {
			return err
		}
		r.DecidedAt = now.UTC()
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.arm(r)
	s.notify(ctx, Notice{Kind: NoticeDecided, Request: r})
	return r, nil
}

// Revoke ends an active grant early, or stops one that is approved but
// not yet applied (a grant being retried): the removal then runs like an
// expiry, committed first and retried until the target confirms, so a
// grant that reached the target after all is taken back. The requester
// may end their own ("I'm done"); system owners and admins anyone's.
func (s *Service) Revoke(ctx context.Context, id, actor, reason string) (*Request, error) {
	r, err := s.store.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	sys := s.rb.Systems[r.System]
	ev := EventRevoking
	switch {
	case actor == r.Requester:
		ev = EventDone
	case s.rb.IsAdmin(actor) || (sys != nil && sys.IsOwner(actor)):
	default:
		return nil, Forbiddenf("Only the requester, the owners of %s and admins can revoke %s.", r.System, r.ID)
	}
	if r.State == StatePending {
		return nil, Conflictf("%s is still waiting for approval; use `cancel %s` instead.", r.ID, r.ID)
	}
	return s.startRemoval(ctx, id, ev, actor, reason)
}

// Extend asks for more time on an active grant: a new request for the same
// system and role, approved per the role's policy (at once for approval:
// auto), whose grant overlaps the old one (invariant 5).
func (s *Service) Extend(ctx context.Context, id, actor string, d time.Duration, reason string) (*Request, error) {
	r, err := s.store.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	if r.Requester != actor {
		return nil, Forbiddenf("Only %s's requester can extend it.", r.ID)
	}
	if r.State != StateActive {
		return nil, Conflictf("%s is %s, not active, so it cannot be extended.", r.ID, strings.ReplaceAll(string(r.State), "_", " "))
	}
	if reason == "" {
		reason = r.Reason
	}
	return s.Submit(ctx, SubmitInput{Requester: actor, System: r.System, Role: r.Role, Duration: d, Reason: reason, Extends: r.ID})
}

// Confirm records a system owner's "Done" on a manual task: the grant or
// the removal is applied at the target. Only owners of the system and
// admins may confirm.
func (s *Service) Confirm(ctx context.Context, id, actor string) (*Request, error) {
	r, err := s.store.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	sys := s.rb.Systems[r.System]
	if !s.rb.IsAdmin(actor) && (sys == nil || !sys.IsOwner(actor)) {
		return nil, Forbiddenf("Only the owners of %s can confirm this task.", r.System)
	}
	if !r.AwaitingConfirmation {
		return nil, Conflictf("%s has no task waiting for confirmation (it is %s).", r.ID, r.State)
	}
	switch r.State {
	case StateApproved:
		return s.granted(ctx, r, actor)
	case StateRevoking:
		return s.removed(ctx, r, actor)
	}
	return nil, Conflictf("%s is %s; nothing to confirm.", r.ID, r.State)
}

// claimDue locks r's entitlement and re-reads r under the lock. The timer
// wheel, the reconcile pass and a click may all reach the same due request
// at once; only one caller may apply its effect (invariant 2), so act is
// true only if r is still in state, not waiting for an owner's
// confirmation, and due. The caller must call unlock, even on error.
func (s *Service) claimDue(ctx context.Context, r *Request, state State) (cur *Request, act bool, unlock func(), err error) {
	unlock = s.lockEntitlement(r.Entitlement.Key())
	cur, err = s.store.Get(ctx, r.ID)
	if err != nil {
		return nil, false, unlock, err
	}
	act = cur.State == state && !cur.AwaitingConfirmation && !cur.NextAttemptAt.After(s.clock.Now())
	return cur, act, unlock, nil
}

// grant applies an approved request at its target. Only the caller that
// committed the approval (or a later retry) calls it.
func (s *Service) grant(ctx context.Context, r *Request) (*Request, error) {
	conn, ok := s.cfg.Connectors[r.Entitlement.Connector]
	if !ok {
		return s.grantFailed(ctx, r, fmt.Sprintf("connector %q is not configured", r.Entitlement.Connector))
	}
	if r.AwaitingConfirmation {
		return r, nil
	}
	r, act, unlock, err := s.claimDue(ctx, r, StateApproved)
	defer unlock()
	if err != nil || !act {
		return r, err
	}
	ctx, allowed := s.gateAllow(ctx, r.Entitlement.Connector, r.ID)
	if !allowed {
		s.rearmDeferred(r)
		return r, nil
	}
	now := s.clock.Now()
	g, err := s.grantSpec(ctx, r, now)
	switch {
	case errors.Is(err, ErrNotFound):
		return s.grantFailed(ctx, r, err.Error())
	case err != nil:
		// A directory hiccup is not the target's fault and not final.
		err = RetryableError(err, 0)
	default:
		start := time.Now()
		_, err = conn.Grant(ctx, g)
		s.obs.ConnectorCall(r.Entitlement.Connector, "grant", time.Since(start), err)
		s.gateResult(r.Entitlement.Connector, err)
	}
	switch {
	case err == nil:
		return s.granted(ctx, r, ActorBot)
	case errors.Is(err, ErrAwaitingConfirmation):
		return s.awaitConfirmation(ctx, r, "grant")
	}
	class, after := Classify(err)
	s.log.WarnContext(ctx, "grant attempt failed", LogRequest, r.ID, LogConnector, r.Entitlement.Connector, LogError, err, "class", class.String())
	if class == Permanent || s.clock.Now().Sub(r.DecidedAt) >= s.cfg.GrantRetryWindow {
		if class == Retryable && !s.coveredByOther(ctx, r) {
			// The target may have applied a grant whose answer we lost:
			// take it back once, best effort, so nothing is left behind;
			// unless another active grant still covers the entitlement
			// (invariant 5).
			if rerr := conn.Revoke(ctx, g); rerr != nil {
				s.log.ErrorContext(ctx, "cleanup revoke after failed grant failed", LogRequest, r.ID, LogError, rerr)
			}
		}
		return s.grantFailed(ctx, r, err.Error())
	}
	r, uerr := s.update(ctx, r.ID, func(r *Request) error {
		if r.State != StateApproved {
			return Conflictf("%s is %s", r.ID, r.State)
		}
		if err := Apply(r, Transition{Event: EventGrantAttemptFailed, Actor: ActorBot, At: now, Note: err.Error()}); err != nil {
			return err
		}
		r.Attempts++
		r.LastError = err.Error()
		r.NextAttemptAt = now.Add(s.backoff(r.Attempts, after)).UTC()
		return nil
	})
	if uerr != nil {
		return nil, uerr
	}
	s.arm(r)
	return r, nil
}

// coveredByOther reports whether another active grant gives r's
// entitlement. On a store error it answers true: skipping a best-effort
// cleanup is safer than removing access someone still holds.
func (s *Service) coveredByOther(ctx context.Context, r *Request) bool {
	others, err := s.store.List(ctx, Filter{Entitlement: r.Entitlement.Key(), States: []State{StateActive}})
	if err != nil {
		return true
	}
	for _, o := range others {
		if o.ID != r.ID {
			return true
		}
	}
	return false
}

// grantSpec builds what the connector needs. GrantedAt is now, so that
// expires_at = granted_at + duration (invariant 6).
func (s *Service) grantSpec(ctx context.Context, r *Request, now time.Time) (Grant, error) {
	p := Person{SlackID: r.Entitlement.Person}
	if s.cfg.Directory != nil {
		got, err := s.cfg.Directory.Person(ctx, r.Entitlement.Person)
		if err != nil {
			return Grant{}, fmt.Errorf("look up %s in Slack: %w", r.Entitlement.Person, err)
		}
		p = got
		p.SlackID = r.Entitlement.Person
	}
	granted := r.GrantedAt
	if granted.IsZero() {
		granted = now.UTC()
	}
	exp := r.ExpiresAt
	if exp.IsZero() {
		exp = s.expiryFor(ctx, r, granted)
	}
	return Grant{ID: r.ID, System: r.System, Role: r.Role, Params: cloneMap(r.Entitlement.Params), User: p,
		Reason: r.Reason, ApprovedBy: r.ApprovedBy(), GrantedAt: granted.UTC(), ExpiresAt: exp.UTC()}, nil
}

// expiryFor is when a grant applied at granted ends: granted + duration
// (the clock starts at grant, invariant 6), except that an extension adds
// its duration to the end of the grant it extends while that is still
// active, so "extend by 2h" means two more hours, never fewer.
func (s *Service) expiryFor(ctx context.Context, r *Request, granted time.Time) time.Time {
	end := granted.Add(r.Duration)
	if r.Extends != "" {
		if base, err := s.store.Get(ctx, r.Extends); err == nil && base.State == StateActive && base.ExpiresAt.After(granted) {
			end = base.ExpiresAt.Add(r.Duration)
		}
	}
	return end.UTC()
}

func (s *Service) granted(ctx context.Context, r *Request, actor string) (*Request, error) {
	now := s.clock.Now()
	end := s.expiryFor(ctx, r, now)
	r, err := s.update(ctx, r.ID, func(r *Request) error {
		if err := Apply(r, Transition{Event: EventGranted, Actor: actor, At: now}); err != nil {
			return err
		}
		r.GrantedAt = now.UTC()
		r.ExpiresAt = end
		r.Attempts, r.LastError, r.NextAttemptAt = 0, "", time.Time{}
		r.AwaitingConfirmation, r.ConfirmAt = false, time.Time{}
		if role := s.role(r); role != nil && role.ExpiryWarning > 0 && r.ExpiresAt.Sub(r.GrantedAt) > role.ExpiryWarning {
			r.WarnAt = r.ExpiresAt.Add(-role.ExpiryWarning)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.arm(r)
	s.notify(ctx, Notice{Kind: NoticeGranted, Request: r})
	if r.Extends != "" {
		// The extended grant may now end quietly: its expiry finds this
		// grant covering the entitlement and skips the target.
		s.log.InfoContext(ctx, "extension granted", LogRequest, r.ID, "extends", r.Extends)
	}
	return r, nil
}

func (s *Service) grantFailed(ctx context.Context, r *Request, why string) (*Request, error) {
	now := s.clock.Now()
	r, err := s.update(ctx, r.ID, func(r *Request) error {
		if err := Apply(r, Transition{Event: EventGrantFailed, Actor: ActorBot, At: now, Note: why}); err != nil {
			return err
		}
		r.LastError = why
		r.EndedAt = now.UTC()
		r.NextAttemptAt = time.Time{}
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.arm(r)
	s.notify(ctx, Notice{Kind: NoticeGrantFailed, Request: r, Text: why})
	return r, nil
}

func (s *Service) awaitConfirmation(ctx context.Context, r *Request, what string) (*Request, error) {
	now := s.clock.Now()
	r, err := s.update(ctx, r.ID, func(r *Request) error {
		if r.AwaitingConfirmation {
			return nil
		}
		if err := Apply(r, Transition{Event: EventNoted, Actor: ActorBot, At: now, Note: what + " task sent to the system owners"}); err != nil {
			return err
		}
		r.AwaitingConfirmation = true
		r.NextAttemptAt = time.Time{}
		r.ConfirmAt = now.Add(s.cfg.ConfirmReminder).UTC()
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.arm(r)
	s.notify(ctx, Notice{Kind: NoticeTask, Request: r, Text: what})
	return r, nil
}

// startRemoval commits the move from active to revoking (the transition
// that authorises the revoke), then tries the revoke once.
func (s *Service) startRemoval(ctx context.Context, id string, ev Event, actor, reason string) (*Request, error) {
	now := s.clock.Now()
	r, err := s.update(ctx, id, func(r *Request) error {
		approvedStop := r.State == StateApproved && ev != EventExpiring
		if r.State != StateActive && !approvedStop {
			if r.State == StateRevoking {
				return Conflictf("%s is already being removed.", r.ID)
			}
			return Conflictf("%s is %s, not active; there is no access to remove.", r.ID, strings.ReplaceAll(string(r.State), "_", " "))
		}
		if err := Apply(r, Transition{Event: ev, Actor: actor, At: now, Note: reason}); err != nil {
			return err
		}
		r.WarnAt = time.Time{}
		r.NextAttemptAt = now.UTC()
		r.Attempts, r.LastError = 0, ""
		r.AwaitingConfirmation, r.ConfirmAt = false, time.Time{}
		if ev == EventExpiring && now.Sub(r.ExpiresAt) > s.cfg.LateAfter {
			r.Late = true
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.arm(r)
	return s.revoke(ctx, r)
}

// RemovalCause returns the event that started the removal of r
// (EventExpiring, EventRevoking or EventDone), "" if none.
func (r *Request) RemovalCause() Event {
	for i := len(r.History) - 1; i >= 0; i-- {
		switch e := r.History[i].Event; e {
		case EventExpiring, EventRevoking, EventDone:
			return e
		}
	}
	return ""
}

// revoke tries once to remove r's access at the target. A failure stays in
// revoking with the next attempt persisted (invariant 4).
func (s *Service) revoke(ctx context.Context, r *Request) (*Request, error) {
	if r.State != StateRevoking || r.AwaitingConfirmation {
		return r, nil
	}
	key := r.Entitlement.Key()
	r, act, unlock, err := s.claimDue(ctx, r, StateRevoking)
	defer unlock()
	if err != nil || !act {
		return r, err
	}

	// Invariant 5: another active grant of the same entitlement keeps access.
	// An approved one does not count: its grant has not been applied and may
	// still fail, and then nobody would remove this access. (The grant and
	// this revoke are serialised by the entitlement lock, so an approved
	// grant applied later restores the access.)
	others, err := s.store.List(ctx, Filter{Entitlement: key, States: []State{StateActive}})
	if err != nil {
		return nil, fmt.Errorf("look for overlapping grants of %s: %w", r.ID, err)
	}
	for _, o := range others {
		if o.ID != r.ID {
			return s.removedCovered(ctx, r, o)
		}
	}
	conn, ok := s.cfg.Connectors[r.Entitlement.Connector]
	if !ok {
		return s.revokeFailed(ctx, r, PermanentError(fmt.Errorf("connector %q is not configured", r.Entitlement.Connector)))
	}
	ctx, allowed := s.gateAllow(ctx, r.Entitlement.Connector, r.ID)
	if !allowed {
		s.rearmDeferred(r)
		return r, nil
	}
	g, err := s.grantSpec(ctx, r, s.clock.Now())
	if err != nil {
		return s.revokeFailed(ctx, r, RetryableError(err, 0))
	}
	start := time.Now()
	err = conn.Revoke(ctx, g)
	s.obs.ConnectorCall(r.Entitlement.Connector, "revoke", time.Since(start), err)
	s.gateResult(r.Entitlement.Connector, err)
	switch {
	case err == nil:
		return s.removed(ctx, r, ActorBot)
	case errors.Is(err, ErrAwaitingConfirmation):
		return s.awaitConfirmation(ctx, r, "revoke")
	}
	return s.revokeFailed(ctx, r, err)
}

func (s *Service) removedCovered(ctx context.Context, r, by *Request) (*Request, error) {
	now := s.clock.Now()
	r, err := s.update(ctx, r.ID, func(r *Request) error {
		if err := Apply(r, Transition{Event: endEvent(r), Actor: ActorBot, At: now, Note: "access kept: still covered by " + by.ID}); err != nil {
			return err
		}
		r.CoveredBy = by.ID
		r.EndedAt = now.UTC()
		r.NextAttemptAt = time.Time{}
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.arm(r)
	s.after(ctx, func(ctx context.Context) { s.notify(ctx, Notice{Kind: NoticeRemoved, Request: r, Text: by.ID}) })
	return r, nil
}

func endEvent(r *Request) Event {
	if r.RemovalCause() == EventExpiring {
		return EventExpired
	}
	return EventRevoked
}

func (s *Service) removed(ctx context.Context, r *Request, actor string) (*Request, error) {
	now := s.clock.Now()
	wasAlerted := false
	r, err := s.update(ctx, r.ID, func(r *Request) error {
		note := ""
		if r.Late {
			note = "removed late: accessbot was not running at expiry"
		}
		if err := Apply(r, Transition{Event: endEvent(r), Actor: actor, At: now, Note: note}); err != nil {
			return err
		}
		wasAlerted = r.Alerted
		r.EndedAt = now.UTC()
		r.NextAttemptAt, r.LastError = time.Time{}, ""
		r.AwaitingConfirmation, r.ConfirmAt = false, time.Time{}
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.arm(r)
	if r.RemovalCause() == EventExpiring {
		s.obs.RevocationLag(r, now.Sub(r.ExpiresAt))
	}
	// The removal is durable; telling people must not hold this worker
	// (Slack paces DMs per channel, and a mass expiry has many).
	s.after(ctx, func(ctx context.Context) {
		s.notify(ctx, Notice{Kind: NoticeRemoved, Request: r})
		if wasAlerted {
			s.notify(ctx, Notice{Kind: NoticeRevokeRecovered, Request: r})
		}
	})
	return r, nil
}

func (s *Service) revokeFailed(ctx context.Context, r *Request, cerr error) (*Request, error) {
	now := s.clock.Now()
	class, after := Classify(cerr)
	s.log.WarnContext(ctx, "revoke attempt failed", LogRequest, r.ID, LogConnector, r.Entitlement.Connector, LogError, cerr, "class", class.String())
	alert := false
	r, err := s.update(ctx, r.ID, func(r *Request) error {
		if r.State != StateRevoking {
			return Conflictf("%s is %s", r.ID, r.State)
		}
		if err := Apply(r, Transition{Event: EventRevokeAttemptFailed, Actor: ActorBot, At: now, Note: cerr.Error()}); err != nil {
			return err
		}
		r.Attempts++
		r.LastError = cerr.Error()
		r.NextAttemptAt = now.Add(s.backoff(r.Attempts, after)).UTC()
		if !r.Alerted && (class == Permanent || r.Attempts >= s.cfg.AlertAfter) {
			r.Alerted = true
			alert = true
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.arm(r)
	if alert {
		s.notify(ctx, Notice{Kind: NoticeRevokeFailing, Request: r, Text: cerr.Error()})
		s.notify(ctx, Notice{Kind: NoticeRevokeDelayed, Request: r})
	}
	return r, nil
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

func (s *Service) role(r *Request) *Role {
	if sys := s.rb.Systems[r.System]; sys != nil {
		return sys.Roles[r.Role]
	}
	return nil
}

// update is Store.Update plus the observer; every transition goes through it.
func (s *Service) update(ctx context.Context, id string, fn func(r *Request) error) (*Request, error) {
	var n int
	r, err := s.store.Update(ctx, id, func(r *Request) error {
		n = len(r.History)
		return fn(r)
	})
	if err != nil {
		return nil, err
	}
	for _, h := range r.History[min(n, len(r.History)):] {
		s.obs.Transition(r, h.Event)
		s.log.InfoContext(ctx, "transition", LogRequest, r.ID, LogEvent, string(h.Event), "from", string(h.From), "to", string(h.To), "actor", h.Actor)
	}
	return r, nil
}

// notify delivers a notice and stores the references of what it posted. A
// failed notice is logged, never silently dropped; the state change it
// reports is already durable.
func (s *Service) notify(ctx context.Context, n Notice) {
	if s.cfg.Notifier == nil {
		return
	}
	refs, err := s.cfg.Notifier.Notify(ctx, n)
	if err != nil {
		s.log.ErrorContext(ctx, "notify failed", LogRequest, n.Request.ID, "notice", string(n.Kind), LogError, err)
	}
	if len(refs) == 0 {
		return
	}
	moved := false
	r, err := s.store.Update(ctx, n.Request.ID, func(r *Request) error {
		moved = len(r.History) > len(n.Request.History)
		r.Messages = mergeRefs(r.Messages, refs)
		return nil
	})
	if err != nil {
		s.log.ErrorContext(ctx, "store message references failed", LogRequest, n.Request.ID, LogError, err)
		return
	}
	if moved && n.Kind != NoticeRefresh {
		// The request moved on while these messages were being posted (an
		// approver clicked the first DM before the last was sent): the
		// transition's own refresh did not know them, so bring every copy
		// up to date now.
		s.notify(ctx, Notice{Kind: NoticeRefresh, Request: r})
	}
}

// mergeRefs adds refs, replacing any with the same channel and ts.
func mergeRefs(have, add []MessageRef) []MessageRef {
	for _, a := range add {
		replaced := false
		for i, h := range have {
			if h.Channel == a.Channel && h.TS == a.TS {
				have[i] = a
				replaced = true
			}
		}
		if !replaced {
			have = append(have, a)
		}
	}
	return have
}

// SetMessageRefs stores message references for a request (used by the
// Slack adapter when it marks copies final). It changes no state.
func (s *Service) SetMessageRefs(ctx context.Context, id string, refs []MessageRef) error {
	_, err := s.store.Update(ctx, id, func(r *Request) error {
		r.Messages = mergeRefs(r.Messages, refs)
		return nil
	})
	return err
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
	if err != nil && !errors.Is(err, ErrAwaitingConfirmation) {
		if class, _ := Classify(err); class == Retryable {
			if !g.failing {
				g.failing = true
			}
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

func (s *Service) arm(r *Request) {
	if s.cfg.Scheduler == nil {
		return
	}
	if at := r.NextDeadline(); !at.IsZero() {
		s.cfg.Scheduler.Arm(r.ID, at)
	} else {
		s.cfg.Scheduler.Disarm(r.ID)
	}
}
