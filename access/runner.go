package access

import (
	"context"
	"errors"
	"math"
	"sync"
	"time"
)

// Job is periodic work that Run drives on the lifecycle clock: the owners'
// digests, audit retention. Run calls Run at start and then every Every
// (wall time); a job keeps its own durable state, so a restart neither
// repeats nor skips its work. Errors are logged, not fatal.
type Job struct {
	Name  string
	Every time.Duration
	// Start, if set, runs once before anything else (a job recording where
	// it starts counting); an error stops Run.
	Start func(ctx context.Context, now time.Time) error
	Run   func(ctx context.Context, now time.Time) error
}

// Enqueue hands request id to the worker pool to act on whatever is due.
// It never blocks: if the queue is full the id is dropped, and the next
// reconcile pass finds it in the deadline index (the wheel and the queue
// are caches; the store is the truth). Safe to call from a timer callback.
func (s *Service) Enqueue(id string) {
	select {
	case s.queue <- queued{id, s.cfg.WallClock()}:
		return
	default:
	}
	// Try again shortly rather than only at the next reconcile pass: a
	// dropped expiry must not wait half a minute.
	if s.cfg.Scheduler != nil {
		s.cfg.Scheduler.Arm(id, s.clock.Now().Add(s.cfg.ProbeInterval))
	}
	// Log the first drop and then every 1000th, not one line per request
	// of a mass expiry.
	if n := s.dropped.Add(1); n == 1 || n%1000 == 0 {
		s.log.Warn("work queue full; the reconcile pass picks the requests up", LogRequest, id, "dropped_so_far", n)
	}
}

// Busy reports whether the lifecycle is beyond what it can sustain: due
// work (grants, expiries, revokes, timeouts) waits in the work queue
// longer than OverloadLag on average (a moving average that decays with a
// half-life of OverloadLag when nothing is queued), or the queue is nearly
// full. The Slack adapter then refuses new requests at once ("busy, try
// again in a moment", nothing created), so that expiries keep their pace
// and every request accepted completes: overload is bounded and visible,
// never a stall.
func (s *Service) Busy() bool {
	if cap(s.queue)-len(s.queue) < cap(s.queue)/8 {
		return true
	}
	return s.averageWait(s.cfg.WallClock()) > s.cfg.OverloadLag
}

// observeWait folds one queue wait into the moving average (weight 1/16).
func (s *Service) observeWait(w time.Duration) {
	s.waitMu.Lock()
	defer s.waitMu.Unlock()
	now := s.cfg.WallClock()
	avg := s.decayedLocked(now)
	s.waitAvg, s.waitSeen = avg+(w-avg)/16, now
}

// averageWait is the moving average of queue waits, decayed to now.
func (s *Service) averageWait(now time.Time) time.Duration {
	s.waitMu.Lock()
	defer s.waitMu.Unlock()
	return s.decayedLocked(now)
}

func (s *Service) decayedLocked(now time.Time) time.Duration {
	if s.waitSeen.IsZero() || s.waitAvg <= 0 {
		return max(s.waitAvg, 0)
	}
	halves := float64(now.Sub(s.waitSeen)) / float64(s.cfg.OverloadLag)
	return time.Duration(float64(s.waitAvg) * math.Pow(0.5, halves))
}

// Feed puts every request whose deadline has passed into the worker pool,
// waiting while the queue is full, so that a mass expiry (every 8 h grant
// created at 09:00) is worked by all workers at once. It reads only the
// deadline index, and returns when everything due at its start is queued
// (not yet handled), or when ctx ends.
func (s *Service) Feed(ctx context.Context) error {
	now := s.clock.Now()
	err := s.store.Deadlines(ctx, func(d Due) bool {
		if d.At.After(now) {
			return false
		}
		select {
		case s.queue <- queued{d.ID, s.cfg.WallClock()}:
			return true
		case <-ctx.Done():
			return false
		}
	})
	if err != nil {
		return err
	}
	return ctx.Err()
}

// Arm arms the scheduler for every indexed deadline, without decoding a
// request (restart): it reads only the deadline index. Overdue ones are
// queued for the workers as far as the queue has room; Feed queues the
// rest. It returns the number of deadlines seen.
func (s *Service) Arm(ctx context.Context) (int, error) {
	n, left := 0, 0
	now := s.clock.Now()
	err := s.store.Deadlines(ctx, func(d Due) bool {
		n++
		if !d.At.After(now) {
			select {
			case s.queue <- queued{d.ID, s.cfg.WallClock()}:
			default:
				left++
			}
		} else if s.cfg.Scheduler != nil {
			s.cfg.Scheduler.Arm(d.ID, d.At)
		}
		return ctx.Err() == nil
	})
	if left > 0 {
		s.log.Info("overdue requests left for the reconcile pass (work queue full)", "count", left)
	}
	return n, err
}

// Run is the lifecycle's one runner, and owns the start-up order: periodic
// jobs record where they start, every deadline is armed from the index,
// what came due while accessbot was down is queued, then the workers
// (grants, revokes, timeouts, reminders, expiries), the paced notice
// sender, the periodic reconcile and the jobs run until ctx ends. Run
// returns after they stopped. ready, if not nil, is closed once the
// deadlines are armed.
func (s *Service) Run(ctx context.Context, ready chan<- struct{}) error {
	jobs := append(append(append([]Job(nil), s.cfg.Jobs...), s.RechecksJob(s.cfg.RecheckEvery)),
		s.OffboardingJob(s.cfg.AccountCheckers, s.cfg.AccountCheckEvery)...)
	for _, j := range jobs {
		if j.Start != nil {
			if err := j.Start(ctx, s.clock.Now()); err != nil {
				return errors.Join(errors.New("start "+j.Name), err)
			}
		}
	}
	s.out = newSender(s)
	s.running.Store(true)
	defer s.running.Store(false)
	var wg sync.WaitGroup
	spawn := func(fn func()) {
		wg.Add(1)
		go func() { defer wg.Done(); fn() }()
	}
	for range s.cfg.Workers {
		spawn(func() {
			for {
				select {
				case <-ctx.Done():
					return
				case q := <-s.queue:
					s.observeWait(s.cfg.WallClock().Sub(q.at))
					s.work(ctx, q.id)
				}
			}
		})
	}
	spawn(func() { s.out.run(ctx, s.cfg.SenderWorkers) })
	for _, j := range jobs {
		spawn(func() { s.runJob(ctx, j) })
	}
	n, err := s.Arm(ctx)
	if err != nil && ctx.Err() == nil {
		s.log.Error("arm deadlines failed; the reconcile pass retries", LogError, err)
	}
	s.log.Info("deadlines armed", "count", n)
	if ready != nil {
		close(ready)
	}
	if err := s.Feed(ctx); err != nil && ctx.Err() == nil {
		s.log.Error("start-up reconcile failed", LogError, err)
	}
	t := time.NewTicker(s.cfg.ReconcileEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			wg.Wait()
			return nil
		case <-t.C:
			if err := s.Feed(ctx); err != nil && ctx.Err() == nil {
				s.log.Error("reconcile failed", LogError, err)
			}
		}
	}
}

func (s *Service) runJob(ctx context.Context, j Job) {
	every := j.Every
	if every <= 0 {
		every = time.Minute
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		func() {
			defer func() {
				if p := recover(); p != nil {
					s.panicked(ctx, "job "+j.Name, p)
				}
			}()
			if err := j.Run(ctx, s.clock.Now()); err != nil && ctx.Err() == nil {
				s.log.Error("periodic job failed", "job", j.Name, LogError, err)
			}
		}()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// RunJobs runs every periodic job once at the clock's now (tests and the
// demo drive time themselves); it returns their errors joined.
func (s *Service) RunJobs(ctx context.Context) error {
	var errs []error
	for _, j := range s.cfg.Jobs {
		if err := j.Run(ctx, s.clock.Now()); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// work runs HandleDue for id, making sure one id is handled by one worker
// at a time (a second enqueue while it runs makes it run once more). A
// panic is recovered and logged with a reference; the worker goes on and
// the request is retried by the next reconcile.
func (s *Service) work(ctx context.Context, id string) {
	s.flightMu.Lock()
	if _, running := s.inflight[id]; running {
		s.inflight[id] = true
		s.flightMu.Unlock()
		return
	}
	s.inflight[id] = false
	s.flightMu.Unlock()
	for {
		if err := s.safeHandle(ctx, id); err != nil && ctx.Err() == nil {
			s.log.Error("handle due work failed", LogRequest, id, LogError, err)
		}
		s.flightMu.Lock()
		again := s.inflight[id]
		if !again {
			delete(s.inflight, id)
			s.flightMu.Unlock()
			return
		}
		s.inflight[id] = false
		s.flightMu.Unlock()
	}
}

func (s *Service) safeHandle(ctx context.Context, id string) (err error) {
	defer func() {
		if p := recover(); p != nil {
			ref := s.panicked(ctx, "worker", p)
			err = errors.New("panic (reference " + ref + ")")
		}
	}()
	return s.HandleDue(ctx, id)
}

// Reconcile finds every request whose deadline has passed in the store's
// deadline index and acts on it inline (invariant 3): overdue expiries are
// removed (and reported late), approvals whose grant never ran are
// granted, revokes are resumed, timeouts and reminders fire, and notices
// are delivered (through the paced sender while Run runs, else inline).
// Tests on a fake clock call it directly.
func (s *Service) Reconcile(ctx context.Context) error {
	for range 100 {
		now := s.clock.Now()
		due, err := s.store.Due(ctx, now, 1000)
		if err != nil {
			return err
		}
		progressed := false
		for _, d := range due {
			before, err := s.store.Get(ctx, d.ID)
			if err != nil {
				continue
			}
			if err := s.safeHandle(ctx, d.ID); err != nil && ctx.Err() == nil {
				s.log.Error("reconcile request failed", LogRequest, d.ID, LogError, err)
			}
			after, err := s.store.Get(ctx, d.ID)
			if err == nil && (after.Version != before.Version || after.NextDeadline().After(now)) {
				progressed = true
			}
		}
		if len(due) == 0 || !progressed {
			return ctx.Err()
		}
	}
	return ctx.Err()
}

// HandleDue acts on whatever is due for request id at the clock's now:
// timeout, reminder, grant (retry), expiry warning, expiry, revoke
// (retry), manual-task reminder, and its due notices. Nothing due is a
// no-op. Safe to call repeatedly and concurrently.
func (s *Service) HandleDue(ctx context.Context, id string) error {
	r, err := s.store.Get(ctx, id)
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return nil
		}
		return err
	}
	now := s.clock.Now()
	due := func(t time.Time) bool { return !t.IsZero() && !t.After(now) }
	switch r.State {
	case StatePending:
		switch {
		case due(r.TimeoutAt):
			err = s.timeOut(ctx, id)
		case due(r.RemindAt):
			err = s.remind(ctx, id)
		}
	case StateApproved:
		switch {
		case r.AwaitingConfirmation && due(r.ConfirmAt):
			err = s.remindTask(ctx, id, "grant")
		case due(r.NextAttemptAt):
			err = s.grant(ctx, r)
		}
	case StateActive:
		switch {
		case due(r.ExpiresAt):
			_, err = s.startRemoval(ctx, id, EventExpiring, ActorBot, "")
		case due(r.WarnAt):
			err = s.warn(ctx, r)
		}
	case StateRevoking:
		switch {
		case r.AwaitingConfirmation && due(r.ConfirmAt):
			err = s.remindTask(ctx, id, "revoke")
		case due(r.NextAttemptAt):
			err = s.revoke(ctx, r)
		}
	}
	if errors.Is(err, ErrConflict) {
		err = nil // someone else's transition won; nothing to do
	}
	if err != nil {
		return err
	}
	// Notices: re-read, since the work above may have planned new ones.
	r, gerr := s.store.Get(ctx, id)
	if gerr != nil {
		return gerr
	}
	if s.running.Load() && s.out != nil && !s.cfg.InlineDelivery {
		s.out.offer(r, s.clock.Now())
	} else {
		s.deliverNow(ctx, r)
		r, gerr = s.store.Get(ctx, id)
		if gerr != nil {
			return gerr
		}
	}
	s.arm(r)
	return nil
}

func (s *Service) timeOut(ctx context.Context, id string) error {
	now := s.clock.Now()
	_, err := s.transition(ctx, id, func(r *Request) ([]tell, error) {
		if r.State != StatePending || r.TimeoutAt.After(now) {
			return nil, conflictf("timeout no longer due")
		}
		if err := Apply(r, Transition{Event: EventTimedOut, Actor: ActorBot, At: now}); err != nil {
			return nil, err
		}
		r.DecidedAt = now.UTC()
		return []tell{{kind: NoticeDecided}}, nil
	})
	return err
}

func (s *Service) remind(ctx context.Context, id string) error {
	now := s.clock.Now()
	_, err := s.transition(ctx, id, func(r *Request) ([]tell, error) {
		if r.State != StatePending || r.RemindAt.IsZero() || r.RemindAt.After(now) {
			return nil, conflictf("reminder no longer due")
		}
		if err := Apply(r, Transition{Event: EventReminded, Actor: ActorBot, At: now}); err != nil {
			return nil, err
		}
		r.RemindAt = time.Time{}
		if role := s.role(r); role != nil && role.ReminderAfter > 0 {
			if next := now.Add(role.ReminderAfter); next.Before(r.TimeoutAt) {
				r.RemindAt = next.UTC()
			}
		}
		return []tell{{kind: NoticeReminder}}, nil
	})
	return err
}

// warn sends the expiry warning, unless another grant of the same access
// (an extension) lasts longer: then the access does not end here.
func (s *Service) warn(ctx context.Context, cur *Request) error {
	covered := s.outlastedBy(ctx, cur)
	now := s.clock.Now()
	_, err := s.transition(ctx, cur.ID, func(r *Request) ([]tell, error) {
		if r.State != StateActive || r.WarnAt.IsZero() || r.WarnAt.After(now) {
			return nil, conflictf("warning no longer due")
		}
		note := ""
		if covered != "" {
			note = "no warning: access continues under " + covered
		}
		if err := Apply(r, Transition{Event: EventWarned, Actor: ActorBot, At: now, Note: note}); err != nil {
			return nil, err
		}
		r.WarnAt = time.Time{}
		if covered != "" {
			return nil, nil
		}
		return []tell{{kind: NoticeExpiryWarning}}, nil
	})
	return err
}

// outlastedBy returns the ID of another active grant of r's entitlement
// that ends after r, "" if none (or if the lookup fails: then warn).
func (s *Service) outlastedBy(ctx context.Context, r *Request) string {
	others, err := s.store.List(ctx, Filter{Entitlement: r.Entitlement.Key(), States: []State{StateActive}})
	if err != nil {
		return ""
	}
	for _, o := range others {
		if o.ID != r.ID && o.ExpiresAt.After(r.ExpiresAt) {
			return o.ID
		}
	}
	return ""
}
