package access

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"
)

// The outbox (DESIGN.md §4 invariant 11). Every notice is planned into the
// request's own record (Request.Outbox) in the write of the transition
// that causes it, so a crash between the commit and the message cannot
// lose the message; the earliest notice is part of the request's deadline,
// so the same index, timer wheel and reconcile pass that find expiries
// find undelivered notices. A notice leaves the outbox only in the write
// that records its delivery (and the message reference, for copies that
// are updated later). A crash between Slack accepting a message and that
// write repeats the message once: delivery is at least once.

// plan turns one tell into notices, one per destination.
func (s *Service) plan(r *Request, t tell, now time.Time) []Notice {
	mk := func(aud Audience, to string) Notice {
		r.NoticeSeq++
		return Notice{ID: r.NoticeSeq, Kind: t.kind, For: aud, To: to, Text: t.text, Op: t.op,
			State: r.State, At: now.UTC(), Due: now.UTC()}
	}
	var out []Notice
	owners := func() {
		for _, to := range s.rb.OwnerTargets(r.System) {
			out = append(out, mk(ForOwners, to))
		}
	}
	switch t.kind {
	case NoticeApprovalNeeded, NoticeReminder:
		st, ok := r.Current()
		if !ok {
			return nil // no step to ask for (approval: auto)
		}
		done := r.Approvals(r.CurrentStep)
		for _, a := range st.Approvers {
			if t.kind == NoticeReminder && contains(done, a) || t.only != nil && !contains(t.only, a) {
				continue
			}
			n := mk(ForApprover, a)
			n.Step = r.CurrentStep
			out = append(out, n)
		}
		if t.kind == NoticeApprovalNeeded && s.rb.AuditChannel != "" && !hasRef(r, RefAudit) && !pending(r, ForAudit) {
			out = append(out, mk(ForAudit, s.rb.AuditChannel))
		}
	case NoticeBreakGlass:
		// The owners (their channel, else each owner) get the review
		// with Revoke now; every approver of the role and the audit
		// channel get an information copy.
		targets := s.rb.OwnerTargets(r.System)
		owners()
		for _, a := range r.Broadcast {
			if !contains(targets, a) {
				out = append(out, mk(ForApprover, a))
			}
		}
		if s.rb.AuditChannel != "" && !hasRef(r, RefAudit) {
			out = append(out, mk(ForAudit, s.rb.AuditChannel))
		}
	case NoticeRevokeFailing, NoticeRevokeRecovered, NoticeRolledBack, NoticeTask:
		owners()
	case NoticeGrantFailed, NoticeAccessKept, NoticeIneligible:
		out = append(out, mk(ForRequester, r.Requester))
		owners()
	case NoticeOffboarded:
		owners()
	case NoticeUpdate:
		// planned by planUpdates only
	default:
		out = append(out, mk(ForRequester, r.Requester))
	}
	if askerTold(r, t.kind) { // behalf.go: the person who asked for the requester
		out = append(out, mk(ForRequester, r.RequestedBy))
	}
	return out
}

func hasRef(r *Request, kind string) bool {
	for _, m := range r.Messages {
		if m.Kind == kind {
			return true
		}
	}
	return false
}

func pending(r *Request, aud Audience) bool {
	for _, n := range r.Outbox {
		if n.For == aud && n.Kind == NoticeApprovalNeeded {
			return true
		}
	}
	return false
}

// OwnerTargets is where owners' alerts and tasks for system go: the
// system's channel, else each owner's DM, else the admins' DMs.
func (rb *Runbook) OwnerTargets(system string) []string {
	sys := rb.Systems[system]
	switch {
	case sys == nil:
		return rb.Admins
	case sys.Channel != "":
		return []string{sys.Channel}
	case len(sys.Owners) > 0:
		return sys.Owners
	}
	return rb.Admins
}

// planUpdates adds a NoticeUpdate for every posted copy that is out of
// date and has none pending.
func (s *Service) planUpdates(r *Request, now time.Time) {
	for _, ref := range r.Messages {
		if !RefOutdated(ref, r) || updatePending(r, ref) {
			continue
		}
		r.NoticeSeq++
		ref := ref
		r.Outbox = append(r.Outbox, Notice{ID: r.NoticeSeq, Kind: NoticeUpdate, To: ref.Channel, Ref: &ref,
			State: r.State, At: now.UTC(), Due: now.UTC()})
	}
}

func updatePending(r *Request, ref MessageRef) bool {
	for _, n := range r.Outbox {
		if n.Kind == NoticeUpdate && n.Ref != nil && n.Ref.Channel == ref.Channel && n.Ref.TS == ref.TS {
			return true
		}
	}
	return false
}

// RefOutdated reports whether a posted copy no longer shows r as it is:
// approval and audit copies follow every change of what they show (Rev);
// an expiry warning is final once the grant is no longer active; a manual
// task is final once it is done.
func RefOutdated(ref MessageRef, r *Request) bool {
	if ref.Stale {
		return false
	}
	switch ref.Kind {
	case RefApproval, RefAudit, RefReview:
		return ref.Rev < r.Rev
	case RefWarning:
		return r.State != StateActive
	case RefTask:
		return TaskDone(ref.Op, r)
	}
	return false
}

// TaskDone reports whether a manual task ("grant" or "revoke") of r no
// longer needs doing.
func TaskDone(op string, r *Request) bool {
	if op == "revoke" {
		return r.State == StateExpired || r.State == StateRevoked || r.State == StateGrantFailed
	}
	return r.State != StateApproved || !r.AwaitingConfirmation
}

// finalRef reports whether a copy, once updated to show r, never changes
// again (a warning or task in its final form).
func finalRef(ref MessageRef) bool { return ref.Kind == RefWarning || ref.Kind == RefTask }

// dueNotices returns the notices of r due at now, in ID order.
func dueNotices(r *Request, now time.Time) []Notice {
	var out []Notice
	for _, n := range r.Outbox {
		if !n.Due.After(now) {
			out = append(out, n)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// item is one queued notice: its request and its ID within it.
type item struct {
	req string
	id  uint64
	to  string
}

func (it item) key() string { return fmt.Sprintf("%s#%d", it.req, it.id) }

// deliver delivers items, all for one destination, as one Notifier call:
// it re-reads each request (so that what is shown is the truth now, and a
// notice already delivered elsewhere is not sent twice), skips copies
// already up to date, calls the Notifier, and records the outcome in each
// request (settle). It returns the results' errors for pacing.
func (s *Service) deliver(ctx context.Context, to string, items []item) []error {
	now := s.clock.Now()
	byReq := map[string]*Request{}
	var send []Notice
	var skipped []Notice
	for _, it := range items {
		r, ok := byReq[it.req]
		if !ok {
			got, err := s.store.Get(ctx, it.req)
			if err != nil {
				s.log.ErrorContext(ctx, "read request for delivery", LogRequest, it.req, LogError, err)
				continue
			}
			r, byReq[it.req] = got, got
		}
		for _, n := range r.Outbox {
			if n.ID != it.id {
				continue
			}
			n.Request = r
			if n.Kind == NoticeUpdate && (n.Ref == nil || !refStillOutdated(r, *n.Ref)) {
				skipped = append(skipped, n) // coalesced: an earlier update already shows this
				continue
			}
			send = append(send, n)
		}
	}
	var results []Delivered
	if len(send) > 0 {
		results = s.callNotifier(ctx, to, send)
	}
	errs := make([]error, 0, len(results))
	outcome := map[string][]noticeOutcome{}
	for i, n := range send {
		outcome[n.Request.ID] = append(outcome[n.Request.ID], noticeOutcome{n: n, res: results[i]})
		errs = append(errs, results[i].Err)
		if results[i].Err == nil {
			s.obs.NoticeDelivered(n.Kind, now.Sub(n.At))
		}
	}
	for _, n := range skipped {
		outcome[n.Request.ID] = append(outcome[n.Request.ID], noticeOutcome{n: n, skipped: true})
		s.obs.NoticeCoalesced(n.Kind)
	}
	for id, outs := range outcome {
		if err := s.settle(ctx, id, outs); err != nil && ctx.Err() == nil {
			s.log.ErrorContext(ctx, "record notice delivery", LogRequest, id, LogError, err)
		}
	}
	return errs
}

// refStillOutdated reports whether the stored copy ref (as stored in r
// now) is out of date.
func refStillOutdated(r *Request, ref MessageRef) bool {
	for _, m := range r.Messages {
		if m.Channel == ref.Channel && m.TS == ref.TS {
			return RefOutdated(m, r)
		}
	}
	return false
}

// callNotifier calls the Notifier, turning a panic into failed deliveries
// (retried) so that one bad message cannot stop the sender.
func (s *Service) callNotifier(ctx context.Context, to string, ns []Notice) (out []Delivered) {
	defer func() {
		if p := recover(); p != nil {
			ref := s.panicked(ctx, "notifier", p)
			out = make([]Delivered, len(ns))
			for i := range out {
				out[i].Err = fmt.Errorf("notifier panicked (reference %s)", ref)
			}
		}
	}()
	if s.cfg.Notifier == nil {
		return make([]Delivered, len(ns))
	}
	out = s.cfg.Notifier.Deliver(ctx, to, ns)
	if len(out) != len(ns) {
		res := make([]Delivered, len(ns))
		copy(res, out)
		for i := len(out); i < len(ns); i++ {
			res[i].Err = errors.New("notifier returned no result")
		}
		out = res
	}
	return out
}

type noticeOutcome struct {
	n       Notice
	res     Delivered
	skipped bool
}

// MaxNoticeAttempts bounds how often a notice that keeps failing is
// retried (with backoff capped at NoticeRetryCap, about a day of tries);
// a permanently failing one (channel gone) is dropped at once. Either is
// logged with a reference.
const MaxNoticeAttempts = 1500

// settle records delivery outcomes in request id: delivered and coalesced
// notices leave the outbox, posted copies are remembered (with the Rev
// they show), failures are rescheduled with backoff. Copies that went out
// of date while they were being posted get their update planned.
func (s *Service) settle(ctx context.Context, id string, outs []noticeOutcome) error {
	now := s.clock.Now()
	r, err := s.store.Update(ctx, id, func(r *Request) error {
		for _, o := range outs {
			i := outboxIndex(r, o.n.ID)
			if i < 0 {
				continue // settled already (a concurrent delivery of the same notice)
			}
			rev := o.n.Request.Rev
			switch {
			case o.skipped || o.res.Err == nil:
				r.Outbox = append(r.Outbox[:i], r.Outbox[i+1:]...)
				if o.skipped {
					continue
				}
				if o.n.Kind == NoticeUpdate && o.n.Ref != nil {
					markRef(r, *o.n.Ref, rev)
				}
				if o.res.Ref != nil {
					ref := *o.res.Ref
					ref.Rev = rev
					r.Messages = mergeRefs(r.Messages, []MessageRef{ref})
				}
			default:
				class, after := Classify(o.res.Err)
				n := &r.Outbox[i]
				n.Attempts++
				n.LastError = o.res.Err.Error()
				if class == Permanent || n.Attempts >= MaxNoticeAttempts {
					failed := *n
					r.Outbox = append(r.Outbox[:i], r.Outbox[i+1:]...)
					if fb := s.ownersFallback(r, failed, now); len(fb) > 0 {
						s.log.WarnContext(ctx, "owners' channel cannot be posted to: the notice goes to the owners' DMs instead", LogRequest, id, "notice", string(failed.Kind), "channel", failed.To, LogError, o.res.Err)
						r.Outbox = append(r.Outbox, fb...)
						continue
					}
					ref := newRef()
					s.log.ErrorContext(ctx, "notice dropped: it cannot be delivered", LogRequest, id, "notice", string(failed.Kind), "to", failed.To, "attempts", failed.Attempts, "ref", ref, LogError, o.res.Err)
					s.obs.NoticeFailed(failed.Kind, true)
					continue
				}
				s.obs.NoticeFailed(n.Kind, false)
				n.Due = now.Add(s.noticeBackoff(n.Attempts, after)).UTC()
			}
		}
		s.planUpdates(r, now)
		return nil
	})
	if err != nil {
		return err
	}
	s.arm(r)
	s.dispatch(r)
	return nil
}

// ownersFallback re-addresses an owners' notice that the system's owners
// channel refused for good (the bot was removed from it, the channel was
// archived or deleted) to each owner's DM, else to each admin's: an
// owners' alert is never lost because of a channel (invariants 4 and
// 11). Updates of posted copies and notices to people have none.
func (s *Service) ownersFallback(r *Request, n Notice, now time.Time) []Notice {
	sys := s.rb.Systems[r.System]
	if n.For != ForOwners || n.Kind == NoticeUpdate || sys == nil || sys.Channel == "" || n.To != sys.Channel {
		return nil
	}
	people := sys.Owners
	if len(people) == 0 {
		people = s.rb.Admins
	}
	var out []Notice
	for _, p := range people {
		c := n
		r.NoticeSeq++
		c.ID, c.To, c.Attempts, c.LastError, c.Due = r.NoticeSeq, p, 0, "", now.UTC()
		out = append(out, c)
	}
	return out
}

func outboxIndex(r *Request, id uint64) int {
	for i, n := range r.Outbox {
		if n.ID == id {
			return i
		}
	}
	return -1
}

// markRef records that the stored copy ref now shows rev (and is final,
// for warnings and tasks).
func markRef(r *Request, ref MessageRef, rev int) {
	for i, m := range r.Messages {
		if m.Channel == ref.Channel && m.TS == ref.TS {
			if rev > r.Messages[i].Rev {
				r.Messages[i].Rev = rev
			}
			if finalRef(m) {
				r.Messages[i].Stale = true
			}
		}
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

// noticeBackoff is the wait before retrying a notice after n failures:
// full jitter up to min(NoticeRetryCap, RetryBase·2^n), never sooner than
// Slack's own (capped) Retry-After.
func (s *Service) noticeBackoff(n int, retryAfter time.Duration) time.Duration {
	ceil := s.cfg.NoticeRetryCap
	if n < 30 {
		if d := s.cfg.RetryBase << (n - 1); d > 0 && d < ceil {
			ceil = d
		}
	}
	d := max(time.Duration(s.cfg.Rand()*float64(ceil)), s.cfg.RetryBase/10)
	return max(d, min(retryAfter, s.cfg.RetryAfterCap))
}

// The sender: delivery at Slack's pace. Due notices are queued per
// destination; each destination gets at most one message per PaceInterval
// (Slack allows about one message per second per channel), and whatever
// queued for it meanwhile goes in the next call, where the Notifier may
// combine it (a requester told about six removals gets one message).
// Pacing is wall time: it follows Slack's clock, not the lifecycle's.
type sender struct {
	s *Service

	mu       sync.Mutex
	queues   map[string][]item    // by destination, FIFO
	order    []string             // destinations with a queue, oldest first
	nextAt   map[string]time.Time // wall time a destination may be sent to again
	inflight map[string]bool      // item keys queued or being delivered
	busy     map[string]bool      // destinations being delivered to
	pauseAt  time.Time            // Slack failing: nothing sent before this (wall)
	failures int                  // consecutive failed calls
	wake     chan struct{}
}

func newSender(s *Service) *sender {
	return &sender{s: s, queues: map[string][]item{}, nextAt: map[string]time.Time{},
		inflight: map[string]bool{}, busy: map[string]bool{}, wake: make(chan struct{}, 1)}
}

// offer queues r's due notices that are not queued already.
func (q *sender) offer(r *Request, now time.Time) {
	ns := dueNotices(r, now)
	if len(ns) == 0 {
		return
	}
	q.mu.Lock()
	for _, n := range ns {
		it := item{req: r.ID, id: n.ID, to: n.To}
		if q.inflight[it.key()] {
			continue
		}
		q.inflight[it.key()] = true
		if len(q.queues[n.To]) == 0 && !q.busy[n.To] {
			q.order = append(q.order, n.To)
		}
		q.queues[n.To] = append(q.queues[n.To], it)
	}
	pendingN := len(q.inflight)
	q.mu.Unlock()
	q.s.obs.OutboxQueued(pendingN)
	q.poke()
}

func (q *sender) poke() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// next takes the batch of the first destination that may be sent to now,
// or says how long to wait for one.
func (q *sender) next(now time.Time) (string, []item, time.Duration) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if now.Before(q.pauseAt) {
		return "", nil, q.pauseAt.Sub(now)
	}
	wait := time.Duration(-1)
	for i, to := range q.order {
		if at := q.nextAt[to]; now.Before(at) {
			if d := at.Sub(now); wait < 0 || d < wait {
				wait = d
			}
			continue
		}
		batch := q.queues[to]
		if len(batch) > q.s.cfg.MaxBatch {
			batch = batch[:q.s.cfg.MaxBatch]
		}
		q.queues[to] = q.queues[to][len(batch):]
		q.order = append(q.order[:i:i], q.order[i+1:]...)
		q.busy[to] = true
		q.nextAt[to] = now.Add(q.s.cfg.PaceInterval)
		return to, batch, 0
	}
	return "", nil, wait
}

// done records a delivery to destination to: its items leave the in-flight
// set, and failures slow the whole sender down (Slack is probably down).
func (q *sender) done(to string, batch []item, errs []error, now time.Time) {
	q.mu.Lock()
	for _, it := range batch {
		delete(q.inflight, it.key())
	}
	delete(q.busy, to)
	if len(q.queues[to]) > 0 {
		q.order = append(q.order, to)
	} else {
		delete(q.queues, to)
		if !q.nextAt[to].After(now) {
			delete(q.nextAt, to)
		}
	}
	failed, after := false, time.Duration(0)
	for _, err := range errs {
		if err == nil {
			continue
		}
		if class, ra := Classify(err); class == Retryable {
			failed = true
			after = max(after, ra)
		}
	}
	if failed && q.s.cfg.PaceInterval > 0 { // no wall-time pauses when pacing is off (tests)
		q.failures++
		pause := min(q.s.cfg.RetryBase<<min(q.failures-1, 20), q.s.cfg.NoticeRetryCap)
		q.pauseAt = now.Add(max(pause, min(after, q.s.cfg.RetryAfterCap)))
	} else if len(errs) > 0 {
		q.failures = 0
	}
	pendingN := len(q.inflight)
	q.mu.Unlock()
	q.s.obs.OutboxQueued(pendingN)
	q.poke()
}

// run delivers until ctx ends, with workers concurrent deliveries.
func (q *sender) run(ctx context.Context, workers int) {
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				to, batch, wait := q.next(q.s.cfg.WallClock())
				if batch == nil {
					var timer *time.Timer
					var fire <-chan time.Time
					if wait >= 0 {
						timer = time.NewTimer(max(wait, time.Millisecond))
						fire = timer.C
					}
					select {
					case <-ctx.Done():
					case <-q.wake:
					case <-fire:
					}
					if timer != nil {
						timer.Stop()
					}
					if ctx.Err() != nil {
						return
					}
					continue
				}
				errs := q.safeDeliver(ctx, to, batch)
				q.done(to, batch, errs, q.s.cfg.WallClock())
			}
		}()
	}
	wg.Wait()
}

func (q *sender) safeDeliver(ctx context.Context, to string, batch []item) (errs []error) {
	defer func() {
		if p := recover(); p != nil {
			q.s.panicked(ctx, "sender", p)
			errs = []error{errors.New("delivery panicked")}
		}
	}()
	return q.s.deliver(ctx, to, batch)
}

// deliverNow delivers r's due notices inline, grouped by destination,
// without pacing: the path of Reconcile when the sender is not running.
func (s *Service) deliverNow(ctx context.Context, r *Request) {
	// One inline delivery of a request at a time (a worker and a reconcile
	// pass may both find its notices due): the second sees them settled.
	unlock := s.lockEntitlement("deliver\x00" + r.ID)
	defer unlock()
	r, err := s.store.Get(ctx, r.ID)
	if err != nil {
		s.log.ErrorContext(ctx, "read request for delivery", LogRequest, r.ID, LogError, err)
		return
	}
	ns := dueNotices(r, s.clock.Now())
	byTo := map[string][]item{}
	var order []string
	for _, n := range ns {
		if _, ok := byTo[n.To]; !ok {
			order = append(order, n.To)
		}
		byTo[n.To] = append(byTo[n.To], item{req: r.ID, id: n.ID, to: n.To})
	}
	for _, to := range order {
		s.deliver(ctx, to, byTo[to])
	}
}
