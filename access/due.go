package access

import (
	"context"
	"errors"
	"time"
)

// Enqueue hands request id to the worker pool to act on whatever is due.
// It never blocks: if the queue is full the id is dropped, and the next
// reconcile pass finds it in the deadline index (the wheel and the queue
// are caches; the store is the truth). Safe to call from a timer callback.
func (s *Service) Enqueue(id string) {
	if s.enqueue(id) {
		return
	}
	// Log the first drop and then every 1000th, not one line per request
	// of a mass expiry.
	if n := s.dropped.Add(1); n == 1 || n%1000 == 0 {
		s.log.Warn("work queue full; the reconcile pass picks the requests up", LogRequest, id, "dropped_so_far", n)
	}
}

func (s *Service) enqueue(id string) bool {
	select {
	case s.queue <- id:
		return true
	default:
		return false
	}
}

// Feed puts every request whose deadline has passed into the worker pool,
// waiting while the queue is full, so that a mass expiry (every 8 h grant
// created at 09:00) is worked by all workers at once rather than one by
// one. It reads only the deadline index. Run calls it periodically; the
// App calls it at start-up. It returns when everything due at its start
// is queued (not yet handled), or when ctx ends.
func (s *Service) Feed(ctx context.Context) error {
	now := s.clock.Now()
	err := s.store.Deadlines(ctx, func(d Due) bool {
		if d.At.After(now) {
			return false
		}
		select {
		case s.queue <- d.ID:
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

// Run starts the worker pool and a periodic reconcile every interval
// (wall time; 30 s if zero) and blocks until ctx is done, then waits for
// the workers to finish what they hold.
func (s *Service) Run(ctx context.Context, reconcileEvery time.Duration) error {
	if reconcileEvery <= 0 {
		reconcileEvery = 30 * time.Second
	}
	done := make(chan struct{})
	for i := 0; i < s.cfg.Workers; i++ {
		go func() {
			defer func() { done <- struct{}{} }()
			for {
				select {
				case <-ctx.Done():
					return
				case id := <-s.queue:
					s.work(ctx, id)
				}
			}
		}()
	}
	t := time.NewTicker(reconcileEvery)
	defer t.Stop()
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-t.C:
			if err := s.Feed(ctx); err != nil && ctx.Err() == nil {
				s.log.Error("reconcile failed", LogError, err)
			}
		}
	}
	for i := 0; i < s.cfg.Workers; i++ {
		<-done
	}
	return nil
}

// work runs HandleDue for id, making sure one id is handled by one worker
// at a time (a second enqueue while it runs makes it run once more).
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
		if err := s.HandleDue(ctx, id); err != nil && ctx.Err() == nil {
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

// Reconcile finds every request whose deadline has passed in the store's
// deadline index and acts on it (invariant 3): overdue expiries are removed
// (and reported late), approvals whose grant never ran are granted,
// revokes are resumed, timeouts and reminders fire. It processes them
// inline, so tests on a fake clock call it directly.
func (s *Service) Reconcile(ctx context.Context) error {
	now := s.clock.Now()
	for {
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
			if err := s.HandleDue(ctx, d.ID); err != nil && ctx.Err() == nil {
				s.log.Error("reconcile request failed", LogRequest, d.ID, LogError, err)
			}
			after, err := s.store.Get(ctx, d.ID)
			if err == nil && (after.Version != before.Version || after.NextDeadline().After(now)) {
				progressed = true
			}
		}
		if len(due) < 1000 || !progressed {
			return ctx.Err()
		}
	}
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
			if !s.enqueue(d.ID) {
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

// HandleDue acts on whatever is due for request id at the clock's now:
// timeout, reminder, grant retry, expiry warning, expiry, revoke retry,
// manual-task reminder. Nothing due is a no-op. Safe to call repeatedly.
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
			r, err = s.update(ctx, id, func(r *Request) error {
				if err := Apply(r, Transition{Event: EventTimedOut, Actor: ActorBot, At: now}); err != nil {
					return err
				}
				r.DecidedAt = now.UTC()
				return nil
			})
			if err == nil {
				s.arm(r)
				s.notify(ctx, Notice{Kind: NoticeDecided, Request: r})
			}
		case due(r.RemindAt):
			r, err = s.update(ctx, id, func(r *Request) error {
				if r.State != StatePending || !due(r.RemindAt) {
					return Conflictf("reminder no longer due")
				}
				if err := Apply(r, Transition{Event: EventReminded, Actor: ActorBot, At: now}); err != nil {
					return err
				}
				r.RemindAt = time.Time{}
				if role := s.role(r); role != nil && role.ReminderAfter > 0 {
					if next := now.Add(role.ReminderAfter); next.Before(r.TimeoutAt) {
						r.RemindAt = next.UTC()
					}
				}
				return nil
			})
			if err == nil {
				s.arm(r)
				s.notify(ctx, Notice{Kind: NoticeReminder, Request: r})
			}
		default:
			s.arm(r)
		}
	case StateApproved:
		switch {
		case r.AwaitingConfirmation && due(r.ConfirmAt):
			err = s.remindTask(ctx, r, "grant")
		case due(r.NextAttemptAt):
			_, err = s.grant(ctx, r)
		default:
			s.arm(r)
		}
	case StateActive:
		switch {
		case due(r.ExpiresAt):
			_, err = s.startRemoval(ctx, id, EventExpiring, ActorBot, "")
		case due(r.WarnAt):
			// No warning when another grant of the same access (an
			// extension) lasts longer: the access does not end here.
			covered := s.outlastedBy(ctx, r)
			r, err = s.update(ctx, id, func(r *Request) error {
				if !due(r.WarnAt) {
					return Conflictf("warning no longer due")
				}
				note := ""
				if covered != "" {
					note = "no warning: access continues under " + covered
				}
				if err := Apply(r, Transition{Event: EventWarned, Actor: ActorBot, At: now, Note: note}); err != nil {
					return err
				}
				r.WarnAt = time.Time{}
				return nil
			})
			if err == nil {
				s.arm(r)
				if covered == "" {
					s.notify(ctx, Notice{Kind: NoticeExpiryWarning, Request: r})
				}
			}
		default:
			s.arm(r)
		}
	case StateRevoking:
		switch {
		case r.AwaitingConfirmation && due(r.ConfirmAt):
			err = s.remindTask(ctx, r, "revoke")
		case due(r.NextAttemptAt):
			_, err = s.revoke(ctx, r)
		default:
			s.arm(r)
		}
	}
	if errors.Is(err, ErrConflict) {
		return nil // someone else's transition won; nothing to do
	}
	return err
}

// remindTask reminds the owners of an unconfirmed manual task and keeps
// reminding every ConfirmReminder.
func (s *Service) remindTask(ctx context.Context, r *Request, what string) error {
	now := s.clock.Now()
	r, err := s.update(ctx, r.ID, func(r *Request) error {
		if err := Apply(r, Transition{Event: EventNoted, Actor: ActorBot, At: now, Note: what + " task still not confirmed; owners reminded"}); err != nil {
			return err
		}
		r.ConfirmAt = now.Add(s.cfg.ConfirmReminder).UTC()
		if what == "revoke" {
			r.Alerted = true
		}
		return nil
	})
	if err != nil {
		return err
	}
	s.arm(r)
	s.notify(ctx, Notice{Kind: NoticeTask, Request: r, Text: what})
	return nil
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
