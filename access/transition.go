package access

import (
	"context"
	"fmt"
	"time"
)

// tell is a notice a change asks for, before it is planned into one
// notice per destination.
type tell struct {
	kind NoticeKind
	text string   // safe context: an error reference, who was asked instead
	op   string   // tasks: "grant" or "revoke"
	only []string // approval DMs: ask only these (new approvers), not the whole step
}

// change is the pure part of a transition: it moves r through the table
// (Apply), sets the fields the transition owns, and says what to tell
// people. It may run more than once (Store.Update retries) and must not do
// I/O. Returning an error writes nothing.
type change func(r *Request) ([]tell, error)

// transition is the one write path of the lifecycle (DESIGN.md §4
// invariants 1 and 11). In one store write it applies ch, then plans the
// notices ch asked for, and updates of every posted copy that ch made out
// of date, into the request's outbox; after the commit it arms the
// request's next deadline and hands whatever is due now (an effect the
// transition authorised, its notices) to the workers. No caller writes a
// state change any other way.
func (s *Service) transition(ctx context.Context, id string, ch change) (*Request, error) {
	var n int
	r, err := s.store.Update(ctx, id, func(r *Request) error {
		n = len(r.History)
		before := copySignature(r)
		tells, err := ch(r)
		if err != nil {
			return err
		}
		s.seal(r, before, tells, s.clock.Now())
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.committed(ctx, r, n)
	return r, nil
}

// create is transition for a new request: r already holds its first
// transition(s) (requested, and approved for approval: auto), and is
// stored with its notices in one write, so that no reader ever sees a
// state the table does not allow.
func (s *Service) create(ctx context.Context, r *Request, tells []tell) (*Request, error) {
	s.seal(r, "", tells, s.clock.Now())
	r, err := s.store.Create(ctx, r)
	if err != nil {
		return nil, fmt.Errorf("store request: %w", err)
	}
	s.committed(ctx, r, 0)
	return r, nil
}

// seal finishes a change inside its write: Rev moves when what copies show
// changed, the told notices are planned, and stale copies get updates.
func (s *Service) seal(r *Request, before string, tells []tell, now time.Time) {
	if copySignature(r) != before {
		r.Rev++
	}
	for _, t := range tells {
		r.Outbox = append(r.Outbox, s.plan(r, t, now)...)
	}
	s.planUpdates(r, now)
}

// copySignature is what the posted copies of a request show: a change to
// it makes them out of date.
func copySignature(r *Request) string {
	st, _ := r.Current()
	return fmt.Sprintf("%s|%d|%d|%t|%d|%v", r.State, r.CurrentStep, len(r.Decisions), r.AwaitingConfirmation, len(r.Steps), st.Approvers)
}

// committed runs after a successful write: observer and log for each new
// history entry, the request's next deadline armed, and due work (an
// effect to apply, notices to deliver) handed to the workers at once.
func (s *Service) committed(ctx context.Context, r *Request, from int) {
	for _, h := range r.History[min(from, len(r.History)):] {
		s.obs.Transition(r, h.Event)
		s.log.InfoContext(ctx, "transition", LogRequest, r.ID, LogEvent, string(h.Event), "from", string(h.From), "to", string(h.To), "actor", h.Actor)
	}
	s.arm(r)
	s.dispatch(r)
}

// dispatch hands what is due now for r to whoever does it: lifecycle work
// (a grant, a revoke) to the workers; notices alone straight to the paced
// sender while it runs, without a worker's round trip.
func (s *Service) dispatch(r *Request) {
	now := s.clock.Now()
	if at := r.StateDeadline(); !at.IsZero() && !at.After(now) {
		s.Enqueue(r.ID)
		return
	}
	if len(dueNotices(r, now)) == 0 {
		return
	}
	if s.running.Load() && s.out != nil && !s.cfg.InlineDelivery {
		s.out.offer(r, now)
		return
	}
	s.Enqueue(r.ID)
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
