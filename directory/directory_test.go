package directory

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/accessbot/accessbot/access"
)

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// slack is a fake Slack directory counting its calls.
type slack struct {
	mu     sync.Mutex
	groups map[string][]string
	emails map[string]string
	fail   error
	calls  atomic.Int64
	block  chan struct{} // when set, lookups wait for it
}

func (s *slack) wait() error {
	s.calls.Add(1)
	if s.block != nil {
		<-s.block
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fail
}

func (s *slack) Person(_ context.Context, user string) (access.Person, error) {
	if err := s.wait(); err != nil {
		return access.Person{}, err
	}
	return access.Person{SlackID: user, Email: user + "@example.com"}, nil
}
func (s *slack) ProfileField(context.Context, string, string) (string, error) { return "", s.wait() }
func (s *slack) UsergroupMembers(_ context.Context, g string) ([]string, error) {
	if err := s.wait(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.groups[g]...), nil
}
func (s *slack) UserByEmail(_ context.Context, email string) (string, error) {
	if err := s.wait(); err != nil {
		return "", err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if id, ok := s.emails[email]; ok {
		return id, nil
	}
	return "", fmt.Errorf("%s: %w", email, access.ErrNotFound)
}

func (s *slack) set(g string, members ...string) {
	s.mu.Lock()
	s.groups[g] = members
	s.mu.Unlock()
}

func newDir(t *testing.T) (*Directory, *slack, *clock) {
	t.Helper()
	s := &slack{groups: map[string][]string{"S1": {"U1"}}, emails: map[string]string{}}
	c := &clock{now: time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)}
	return New(s, Options{Clock: c}), s, c
}

// Display answers may be TTL old; decisions use answers at most
// DecisionTTL old, and re-fetch past it.
func TestStalenessBounds(t *testing.T) {
	d, s, c := newDir(t)
	ctx := context.Background()
	if got, _ := d.UsergroupMembers(ctx, "S1"); len(got) != 1 {
		t.Fatalf("members %v", got)
	}
	s.set("S1", "U1", "U2")
	c.Advance(DefaultDecisionTTL + time.Second)
	if got, _ := d.UsergroupMembers(ctx, "S1"); len(got) != 1 {
		t.Errorf("display answer re-fetched within TTL: %v", got)
	}
	if got, _ := d.UsergroupMembers(access.Fresh(ctx), "S1"); len(got) != 2 {
		t.Errorf("decision used an answer older than DecisionTTL: %v", got)
	}
	calls := s.calls.Load()
	if got, _ := d.UsergroupMembers(access.Fresh(ctx), "S1"); len(got) != 2 || s.calls.Load() != calls {
		t.Errorf("a decision within the bound re-fetched (%d calls)", s.calls.Load()-calls)
	}
	c.Advance(DefaultTTL)
	s.set("S1", "U3")
	if got, _ := d.UsergroupMembers(ctx, "S1"); len(got) != 1 || got[0] != "U3" {
		t.Errorf("display answer past TTL not re-fetched: %v", got)
	}
}

// A decision never falls back to an older answer when Slack fails.
func TestDecisionFailsRatherThanServeStale(t *testing.T) {
	d, s, c := newDir(t)
	ctx := context.Background()
	if _, err := d.UsergroupMembers(ctx, "S1"); err != nil {
		t.Fatal(err)
	}
	c.Advance(DefaultDecisionTTL + time.Second)
	s.fail = errors.New("slack: 503")
	if _, err := d.UsergroupMembers(access.Fresh(ctx), "S1"); err == nil {
		t.Fatal("a decision got a stale answer while Slack failed")
	}
	if got, err := d.UsergroupMembers(ctx, "S1"); err != nil || len(got) != 1 {
		t.Errorf("display still served from the cache within TTL: %v %v", got, err)
	}
}

// Concurrent lookups of one key share one fetch.
func TestConcurrentLookupsShareAFetch(t *testing.T) {
	d, s, _ := newDir(t)
	s.block = make(chan struct{})
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := d.UsergroupMembers(context.Background(), "S1"); err != nil {
				t.Error(err)
			}
		}()
	}
	time.Sleep(10 * time.Millisecond) // let the lookups queue behind the first (not waiting for a clock)
	close(s.block)
	wg.Wait()
	if n := s.calls.Load(); n != 1 {
		t.Errorf("%d fetches for 20 concurrent lookups", n)
	}
}

// Forget drops what is cached about a person.
func TestForget(t *testing.T) {
	d, s, _ := newDir(t)
	ctx := context.Background()
	d.Person(ctx, "U1")
	n := s.calls.Load()
	d.Forget("U1")
	d.Person(ctx, "U1")
	if s.calls.Load() != n+1 {
		t.Error("Forget did not drop the cached person")
	}
}

type idp struct {
	mu       sync.Mutex
	managers map[string]string // email → manager email
	fail     error
	calls    int
}

func (i *idp) Manager(_ context.Context, p access.Person) (string, error) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.calls++
	if i.fail != nil {
		return "", i.fail
	}
	m, ok := i.managers[p.Email]
	if !ok {
		return "", fmt.Errorf("%s: %w", p.Email, access.ErrUnknownUser)
	}
	return m, nil
}

// Managers from the identity provider: the IdP's manager email becomes a
// Slack user; none on record (or a manager Slack does not know) is "",
// so the step falls back; an outage is an error, and a decision re-asks
// past DecisionTTL instead of using the older answer.
func TestIdPManager(t *testing.T) {
	s := &slack{groups: map[string][]string{}, emails: map[string]string{"U0BOB@example.com": "U0BOB"}}
	c := &clock{now: time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)}
	i := &idp{managers: map[string]string{"U0ALICE@example.com": "U0BOB@example.com", "U0DAVE@example.com": "", "U0EVE@example.com": "gone@example.com"}}
	d := New(s, Options{Clock: c, Managers: i})
	ctx := context.Background()
	for user, want := range map[string]string{"U0ALICE": "U0BOB", "U0DAVE": "", "U0EVE": ""} {
		got, err := d.IdPManager(ctx, user)
		if err != nil || got != want {
			t.Errorf("IdPManager(%s) = %q, %v; want %q", user, got, err, want)
		}
	}
	// The runbook's Manager reads it through access.ManagerDirectory.
	rb := &access.Runbook{Managers: access.ManagerSource{IdP: "okta"}}
	if m, err := rb.Manager(ctx, d, "U0ALICE"); err != nil || m != "U0BOB" {
		t.Errorf("Runbook.Manager = %q, %v", m, err)
	}
	i.mu.Lock()
	i.fail = errors.New("okta: 503")
	i.mu.Unlock()
	if m, err := rb.Manager(ctx, d, "U0ALICE"); err != nil || m != "U0BOB" {
		t.Errorf("display within ManagerTTL: %q, %v", m, err)
	}
	c.Advance(DefaultDecisionTTL + time.Second)
	if _, err := rb.Manager(access.Fresh(ctx), d, "U0ALICE"); err == nil {
		t.Error("a decision got the manager from an answer older than DecisionTTL while the IdP was down")
	}
}
