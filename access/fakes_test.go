package access

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"
)

// fakeDirectory is an in-memory Directory. Func fields, when set, override
// the maps (to inject failures).
type fakeDirectory struct {
	mu         sync.Mutex
	people     map[string]Person            // by user ID
	fields     map[string]map[string]string // user → field → value
	usergroups map[string][]string
	emails     map[string]string // email → user ID
	// usergroupErr, when set, fails every user group lookup (Slack down).
	usergroupErr error

	PersonFunc func(ctx context.Context, user string) (Person, error)
}

var _ Directory = (*fakeDirectory)(nil)

func (d *fakeDirectory) Person(ctx context.Context, user string) (Person, error) {
	if d.PersonFunc != nil {
		return d.PersonFunc(ctx, user)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if p, ok := d.people[user]; ok {
		return p, nil
	}
	return Person{SlackID: user, Name: "Person " + user}, nil
}

func (d *fakeDirectory) ProfileField(_ context.Context, user, field string) (string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.fields[user][field], nil
}

func (d *fakeDirectory) UsergroupMembers(_ context.Context, group string) ([]string, error) {
	d.mu.Lock()
	failing := d.usergroupErr
	d.mu.Unlock()
	if failing != nil {
		return nil, failing
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	ms, ok := d.usergroups[group]
	if !ok {
		return nil, fmt.Errorf("usergroup %s: %w", group, ErrNotFound)
	}
	return append([]string(nil), ms...), nil
}

func (d *fakeDirectory) UserByEmail(_ context.Context, email string) (string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if id, ok := d.emails[email]; ok {
		return id, nil
	}
	return "", fmt.Errorf("email %s: %w", email, ErrNotFound)
}

// fakeStore implements Store faithfully in memory: Update applies fn to a
// clone under a mutex and commits only on nil, bumping Version; the
// deadline index is every request's NextDeadline.
type fakeStore struct {
	mu   sync.Mutex
	seq  uint64
	reqs map[string]*Request

	audit   []HistoryEntry // one record per history entry written
	updates int
}

var _ Store = (*fakeStore)(nil)

func newFakeStore() *fakeStore { return &fakeStore{seq: 1000, reqs: map[string]*Request{}} }

func (s *fakeStore) Create(_ context.Context, r *Request) (*Request, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(r.History) == 0 {
		return nil, fmt.Errorf("create: request has no first transition")
	}
	c := r.Clone()
	s.seq++
	c.Seq = s.seq
	c.ID = FormatID(s.seq)
	c.Version = 1
	s.reqs[c.ID] = c
	s.audit = append(s.audit, c.History...)
	return c.Clone(), nil
}

func (s *fakeStore) Get(_ context.Context, id string) (*Request, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.reqs[id]
	if !ok {
		return nil, fmt.Errorf("get %s: %w", id, ErrNotFound)
	}
	return r.Clone(), nil
}

func (s *fakeStore) Update(_ context.Context, id string, fn func(r *Request) error) (*Request, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cur, ok := s.reqs[id]
	if !ok {
		return nil, fmt.Errorf("update %s: %w", id, ErrNotFound)
	}
	c := cur.Clone()
	if err := fn(c); err != nil {
		return nil, err
	}
	if len(c.History) < len(cur.History) {
		return nil, fmt.Errorf("update %s: history shrank", id)
	}
	s.audit = append(s.audit, c.History[len(cur.History):]...)
	c.Version = cur.Version + 1
	s.reqs[id] = c
	s.updates++
	return c.Clone(), nil
}

func (s *fakeStore) sorted() []*Request {
	out := make([]*Request, 0, len(s.reqs))
	for _, r := range s.reqs {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Seq > out[j].Seq })
	return out
}

func (s *fakeStore) List(_ context.Context, f Filter) ([]*Request, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*Request
	for _, r := range s.sorted() {
		if f.Requester != "" && r.Requester != f.Requester {
			continue
		}
		if f.Approver != "" && !r.IsApprover(f.Approver) {
			continue
		}
		if f.System != "" && r.System != f.System {
			continue
		}
		if len(f.States) > 0 && !containsState(f.States, r.State) {
			continue
		}
		if f.Entitlement != "" && r.Entitlement.Key() != f.Entitlement {
			continue
		}
		out = append(out, r.Clone())
		if f.Limit > 0 && len(out) == f.Limit {
			break
		}
	}
	return out, nil
}

func containsState(ss []State, s State) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

func (s *fakeStore) index() []Due {
	var out []Due
	for _, r := range s.reqs {
		if at := r.NextDeadline(); !at.IsZero() {
			out = append(out, Due{ID: r.ID, At: at})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].At.Equal(out[j].At) {
			return out[i].At.Before(out[j].At)
		}
		return out[i].ID < out[j].ID
	})
	return out
}

func (s *fakeStore) Due(_ context.Context, until time.Time, limit int) ([]Due, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Due
	for _, d := range s.index() {
		if d.At.After(until) || (limit > 0 && len(out) == limit) {
			break
		}
		out = append(out, d)
	}
	return out, nil
}

func (s *fakeStore) Deadlines(_ context.Context, fn func(d Due) bool) error {
	s.mu.Lock()
	idx := s.index()
	s.mu.Unlock()
	for _, d := range idx {
		if !fn(d) {
			return nil
		}
	}
	return nil
}

// put stores r as is (a request left behind by a crash), assigning an ID.
func (s *fakeStore) put(r *Request) *Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := r.Clone()
	s.seq++
	c.Seq, c.ID, c.Version = s.seq, FormatID(s.seq), 1
	s.reqs[c.ID] = c
	return c.Clone()
}

// fakeClock is a Clock the test advances; it never sleeps.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	return c.now
}

// fakeScheduler records Arm and Disarm.
type fakeScheduler struct {
	mu      sync.Mutex
	armed   map[string]time.Time
	arms    int
	disarms int
}

var _ Scheduler = (*fakeScheduler)(nil)

func (s *fakeScheduler) Arm(id string, at time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.armed == nil {
		s.armed = map[string]time.Time{}
	}
	s.armed[id] = at
	s.arms++
}

func (s *fakeScheduler) Disarm(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.armed, id)
	s.disarms++
}

func (s *fakeScheduler) at(id string) (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.armed[id]
	return t, ok
}
