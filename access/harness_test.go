package access

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// eventLog is one ordered record of effects across fakes (connector calls
// and notices), so tests can check their order.
type eventLog struct {
	mu     sync.Mutex
	events []string
}

func (l *eventLog) add(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, fmt.Sprintf(format, args...))
}

func (l *eventLog) all() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.events...)
}

// fakeConnector is a Connector with func fields for failures, counters and
// per-entitlement membership. Without hooks it grants and revokes.
type fakeConnector struct {
	name  string
	log   *eventLog
	clock Clock

	mu        sync.Mutex
	GrantFunc func(g Grant) error // nil: succeed
	// ReceiptFunc, when set, gives the receipt Grant returns (with
	// GrantFunc's error, if any): a partial receipt on failure.
	ReceiptFunc func(g Grant) Receipt
	lastRevoke  Grant
	RevokeFunc  func(g Grant) error // nil: succeed
	grants      int
	revokes     int
	lastGrant   Grant
	members     map[string]bool // memberKey → has access at the target
	revokeAt    []time.Time     // clock times of Revoke calls
}

var _ Connector = (*fakeConnector)(nil)

func memberKey(g Grant) string {
	return Entitlement{Params: g.Params, Person: g.User.SlackID}.Key()
}

func (c *fakeConnector) Grant(_ context.Context, g Grant) (Receipt, error) {
	c.mu.Lock()
	c.grants++
	c.lastGrant = g
	hook := c.GrantFunc
	c.mu.Unlock()
	c.log.add("%s grant %s", c.name, g.ID)
	rc := Receipt{UserID: "target-" + g.User.SlackID}
	if c.ReceiptFunc != nil {
		rc = c.ReceiptFunc(g)
	}
	if hook != nil {
		if err := hook(g); err != nil {
			if c.ReceiptFunc == nil {
				rc = Receipt{}
			}
			return rc, err
		}
	}
	c.mu.Lock()
	c.members[memberKey(g)] = true
	c.mu.Unlock()
	return rc, nil
}

func (c *fakeConnector) Revoke(_ context.Context, g Grant) error {
	c.mu.Lock()
	c.revokes++
	c.revokeAt = append(c.revokeAt, c.clock.Now())
	c.lastRevoke = g
	hook := c.RevokeFunc
	c.mu.Unlock()
	c.log.add("%s revoke %s", c.name, g.ID)
	if hook != nil {
		if err := hook(g); err != nil {
			return err
		}
	}
	c.mu.Lock()
	delete(c.members, memberKey(g))
	c.mu.Unlock()
	return nil
}

func (c *fakeConnector) setGrant(f func(Grant) error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.GrantFunc = f
}

func (c *fakeConnector) setRevoke(f func(Grant) error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.RevokeFunc = f
}

func (c *fakeConnector) counts() (grants, revokes int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.grants, c.revokes
}

func (c *fakeConnector) hasAccess(person string, params map[string]string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.members[Entitlement{Params: params, Person: person}.Key()]
}

// notice is what the fake notifier saw.
type notice struct {
	Kind  NoticeKind
	ID    string
	State State // the request's state when the notice was made
	Text  string
	Op    string
	For   Audience
	To    string
}

// fakeNotifier records delivered notices; for approval DMs, the audit
// copy, warnings and tasks it returns a message reference, like the Slack
// adapter. fail, when set, decides a delivery's error.
type fakeNotifier struct {
	log *eventLog
	rb  *Runbook

	mu      sync.Mutex
	notices []notice
	updates []MessageRef // copies updated, in order
	ts      int
	fail    func(n Notice) error
}

var _ Notifier = (*fakeNotifier)(nil)

func (n *fakeNotifier) Deliver(_ context.Context, to string, ns []Notice) []Delivered {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make([]Delivered, len(ns))
	for i, x := range ns {
		if x.To != to {
			panic("notice for " + x.To + " delivered to " + to)
		}
		if n.fail != nil {
			if err := n.fail(x); err != nil {
				out[i].Err = err
				continue
			}
		}
		if x.Kind == NoticeUpdate {
			n.updates = append(n.updates, *x.Ref)
			n.log.add("update %s %s", x.Ref.Kind, x.Request.ID)
			continue
		}
		n.notices = append(n.notices, notice{Kind: x.Kind, ID: x.Request.ID, State: x.State, Text: x.Text, Op: x.Op, For: x.For, To: x.To})
		n.log.add("notice %s %s %s", x.Kind, x.Request.ID, x.To)
		ts := fmt.Sprintf("%d.000100", n.ts+1)
		defer func() {
			if out[i].Ref != nil {
				n.ts++
			}
		}()
		switch {
		case x.For == ForApprover:
			out[i].Ref = &MessageRef{Kind: RefApproval, Channel: "D" + x.To, TS: ts, User: x.To, Step: x.Step}
		case x.For == ForAudit:
			out[i].Ref = &MessageRef{Kind: RefAudit, Channel: x.To, TS: ts}
		case x.Kind == NoticeTask:
			out[i].Ref = &MessageRef{Kind: RefTask, Channel: x.To, TS: ts, Op: x.Op}
		case x.Kind == NoticeExpiryWarning:
			out[i].Ref = &MessageRef{Kind: RefWarning, Channel: "D" + x.To, TS: ts}
		}
	}
	return out
}

// kindsFor returns the kinds of the notices of request id delivered to to.
func (n *fakeNotifier) kindsFor(id, to string) []NoticeKind {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []NoticeKind
	for _, x := range n.notices {
		if x.ID == id && x.To == to {
			out = append(out, x.Kind)
		}
	}
	return out
}

func (n *fakeNotifier) kinds(id string) []NoticeKind {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []NoticeKind
	for _, x := range n.notices {
		if x.ID == id {
			out = append(out, x.Kind)
		}
	}
	return out
}

func (n *fakeNotifier) count(id string, k NoticeKind) int {
	c := 0
	for _, x := range n.kinds(id) {
		if x == k {
			c++
		}
	}
	return c
}

func (n *fakeNotifier) last(id string, k NoticeKind) (notice, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for i := len(n.notices) - 1; i >= 0; i-- {
		if x := n.notices[i]; x.ID == id && x.Kind == k {
			return x, true
		}
	}
	return notice{}, false
}

// People in the test runbook.
const (
	alice  = "U0ALICE01" // support, manager bob
	dave   = "U0DAVE001" // support, manager bob
	bob    = "U0BOB0001" // manager
	carol  = "U0CAROL01" // crm owner, also in support (manager bob)
	owner2 = "U0OWNER02" // crm owner
	admin  = "U0ADMIN01"
	eve    = "U0EVE0001" // nobody in particular
)

var t0 = time.Date(2026, 11, 29, 9, 0, 0, 0, time.UTC)

var (
	viewerParams = map[string]string{"group_id": "00g1viewer"}
	autoParams   = map[string]string{"group_id": "00g1auto"}
)

func testRunbook() *Runbook {
	support := []Principal{{Kind: SourceTeam, Ref: "support"}}
	everyone := []Principal{{Kind: SourceEveryone}}
	role := func(id string, grant map[string]string, req []Principal, ap Approval) *Role {
		return &Role{
			ID: id, Description: id + " role", Grant: grant, Requesters: req, Approval: ap,
			DefaultDuration: 2 * time.Hour, MaxDuration: 8 * time.Hour,
			ApprovalTimeout: 24 * time.Hour, ReminderAfter: 2 * time.Hour, ExpiryWarning: 10 * time.Minute,
			ReasonRequired: true,
		}
	}
	twoSteps := Approval{Steps: []StepPolicy{
		{Sources: []Source{{Kind: SourceManager}}},
		{Sources: []Source{{Kind: SourceOwners}}},
	}}
	auto := Approval{Auto: true}
	adminRole := role("admin", map[string]string{"group_id": "00g1admin"}, support,
		Approval{Steps: []StepPolicy{{Sources: []Source{{Kind: SourceOwners}}, Min: 2}}})
	adminRole.MaxDuration = time.Hour
	adminRole.DefaultDuration = time.Hour
	many := []string{}
	for i := 0; i < 50; i++ {
		many = append(many, fmt.Sprintf("U0MANY%03d", i))
	}
	return &Runbook{
		Admins:   []string{admin},
		Managers: ManagerSource{Static: map[string]string{alice: bob, dave: bob, carol: bob}},
		Teams: map[string]Team{
			"support": {Members: []string{alice, dave, carol}},
			"many":    {Members: many},
			"finance": {Members: []string{bob}}, // alice's manager approves finance steps too
		},
		Systems: map[string]*System{
			"crm": {
				ID: "crm", Name: "Salesforce CRM", Owners: []string{carol, owner2}, Channel: "C0CRMOWN1", Connector: "okta",
				Roles: map[string]*Role{
					"viewer": role("viewer", viewerParams, support, twoSteps),
					"admin":  adminRole,
					"auto":   role("auto", autoParams, everyone, auto),
					// auto2 gives the same entitlement as auto (invariant 5).
					"auto2": role("auto2", autoParams, everyone, auto),
					"flat": role("flat", map[string]string{"group_id": "00g1flat"}, support,
						Approval{Steps: []StepPolicy{{Sources: []Source{{Kind: SourceTeam, Ref: "many"}}}}}),
					// payout: the manager, then finance, where the manager also is.
					"payout": role("payout", map[string]string{"group_id": "00g1payout"}, support, Approval{Steps: []StepPolicy{
						{Sources: []Source{{Kind: SourceManager}}},
						{Sources: []Source{{Kind: SourceTeam, Ref: "finance"}}},
					}}),
					"payout_same": role("payout_same", map[string]string{"group_id": "00g1payout2"}, support, Approval{SameApprover: true, Steps: []StepPolicy{
						{Sources: []Source{{Kind: SourceManager}}},
						{Sources: []Source{{Kind: SourceTeam, Ref: "finance"}}},
					}}),
				},
			},
			"payroll": {
				ID: "payroll", Owners: []string{owner2}, Connector: "manual",
				Roles: map[string]*Role{"clerk": role("clerk", map[string]string{"task": "add clerk"}, everyone, auto)},
			},
		},
	}
}

type harness struct {
	t      *testing.T
	ctx    context.Context
	clock  *fakeClock
	store  *fakeStore
	dir    *fakeDirectory
	conn   *fakeConnector
	manual *fakeConnector
	notes  *fakeNotifier
	sched  *fakeScheduler
	log    *eventLog
	cfg    ServiceConfig
	svc    *Service
}

func newHarness(t *testing.T, opts ...func(*ServiceConfig)) *harness {
	t.Helper()
	h := &harness{t: t, ctx: context.Background(), clock: &fakeClock{now: t0}, store: newFakeStore(),
		dir: &fakeDirectory{people: map[string]Person{
			alice: {SlackID: alice, Email: "alice@example.com", Name: "Alice"},
		}}, sched: &fakeScheduler{}, log: &eventLog{}}
	rb := testRunbook()
	h.conn = &fakeConnector{name: "okta", log: h.log, clock: h.clock, members: map[string]bool{}}
	h.manual = &fakeConnector{name: "manual", log: h.log, clock: h.clock, members: map[string]bool{}}
	h.manual.GrantFunc = func(Grant) error { return ErrAwaitingConfirmation }
	h.manual.RevokeFunc = func(Grant) error { return ErrAwaitingConfirmation }
	h.notes = &fakeNotifier{log: h.log, rb: rb}
	h.cfg = ServiceConfig{
		Runbook: rb, Store: h.store, Directory: h.dir, Notifier: h.notes,
		Connectors: map[string]Connector{"okta": h.conn, "manual": h.manual},
		Scheduler:  h.sched, Clock: h.clock,
		Rand: func() float64 { return 0.999 }, // the top of every backoff range
	}
	for _, o := range opts {
		o(&h.cfg)
	}
	h.svc = NewService(h.cfg)
	return h
}

// submit submits in and settles: the workers' effects (an automatic
// grant) and the notices run before it returns the request as stored.
func (h *harness) submit(in SubmitInput) *Request {
	h.t.Helper()
	if in.Reason == "" {
		in.Reason = "ticket 4411"
	}
	r, err := h.svc.Submit(h.ctx, in)
	if err != nil {
		h.t.Fatalf("Submit(%+v): %v", in, err)
	}
	h.settle()
	return h.get(r.ID)
}

// decide decides and settles (the grant the last approval authorises runs).
func (h *harness) decide(id, actor string, approve bool, reason string) *Request {
	h.t.Helper()
	r, err := h.svc.Decide(h.ctx, id, actor, approve, reason, AnyStep)
	if err != nil {
		h.t.Fatalf("Decide(%s, %s, %v): %v", id, actor, approve, err)
	}
	h.settle()
	return h.get(r.ID)
}

// settle runs what is due now, as the workers would: effects authorised
// by committed transitions, and notice deliveries.
func (h *harness) settle() {
	h.t.Helper()
	if err := h.svc.Reconcile(h.ctx); err != nil {
		h.t.Fatalf("Reconcile: %v", err)
	}
}

func (h *harness) get(id string) *Request {
	h.t.Helper()
	r, err := h.store.Get(h.ctx, id)
	if err != nil {
		h.t.Fatalf("Get(%s): %v", id, err)
	}
	return r
}

func (h *harness) reconcile() {
	h.t.Helper()
	if err := h.svc.Reconcile(h.ctx); err != nil {
		h.t.Fatalf("Reconcile: %v", err)
	}
}

// advance moves the fake clock and runs a reconcile pass.
func (h *harness) advance(d time.Duration) {
	h.t.Helper()
	h.clock.Advance(d)
	h.reconcile()
}

// approved returns an active viewer grant of alice (both steps approved).
func (h *harness) activeViewer() *Request {
	h.t.Helper()
	r := h.submit(SubmitInput{Requester: alice, System: "crm", Role: "viewer", Duration: 2 * time.Hour})
	h.decide(r.ID, bob, true, "")
	r = h.decide(r.ID, carol, true, "")
	if r.State != StateActive {
		h.t.Fatalf("%s is %s after both approvals, want active", r.ID, r.State)
	}
	return r
}

func (h *harness) wantState(id string, want State) *Request {
	h.t.Helper()
	r := h.get(id)
	if r.State != want {
		h.t.Fatalf("%s is %s, want %s (last: %+v)", id, r.State, want, r.Last())
	}
	return r
}

func events(r *Request) []Event {
	var out []Event
	for _, e := range r.History {
		out = append(out, e.Event)
	}
	return out
}

// wantUserError checks that err is an *Error of kind with a message
// containing each of parts.
func wantUserError(t *testing.T, err error, kind error, parts ...string) *Error {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T) is not an *Error", err, err)
	}
	if !errors.Is(err, kind) {
		t.Errorf("error %q is not of kind %v", e.Message, kind)
	}
	for _, p := range parts {
		if !strings.Contains(e.Message, p) {
			t.Errorf("error %q does not say %q", e.Message, p)
		}
	}
	return e
}
