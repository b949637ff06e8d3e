package postgres_test

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/store/postgres"
	"github.com/accessbot/accessbot/store/storetest"
)

// TestBatchIsolation: writes queued together share a transaction, but one
// that the database refuses (a NUL byte in a text column) or whose fn
// fails fails alone; the others commit, and the chain has exactly their
// records.
func TestBatchIsolation(t *testing.T) {
	var batches, batched atomic.Int64
	postgres.SetCommitHook(func(n int) { batches.Add(1); batched.Add(int64(n)) })
	defer postgres.SetCommitHook(nil)
	p := pg(t)
	ctx := t.Context()
	s := openStore(t, newDatabase(t, p), postgres.Options{MaxConns: 3, LockConns: 1})
	base, err := s.Create(ctx, storetest.NewRequest("U0ALICE01", "crm", "viewer", storetest.T0, "U0BOB0001"))
	if err != nil {
		t.Fatal(err)
	}
	const n = 60
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			switch i % 3 {
			case 0: // refused by the database
				_, errs[i] = s.Create(ctx, storetest.NewRequest(fmt.Sprintf("U\x00BAD%d", i), "crm", "viewer", storetest.T0))
			case 1: // fine
				_, errs[i] = s.Create(ctx, storetest.NewRequest(fmt.Sprintf("U%08d", i), "crm", "viewer", storetest.T0))
			case 2: // fn error on a shared request
				_, errs[i] = s.Update(ctx, base.ID, func(r *access.Request) error { return fmt.Errorf("no %d", i) })
			}
		})
	}
	wg.Wait()
	good := 0
	for i, err := range errs {
		switch i % 3 {
		case 0:
			if err == nil || !strings.Contains(err.Error(), "UTF8") {
				t.Errorf("op %d (NUL requester): %v", i, err)
			}
		case 1:
			if err != nil {
				t.Errorf("op %d: %v", i, err)
			}
			good++
		case 2:
			if err == nil || err.Error() != fmt.Sprintf("no %d", i) || errors.Unwrap(err) != nil {
				t.Errorf("op %d: %v, want fn's error unwrapped", i, err)
			}
		}
	}
	t.Logf("%d ops in %d commits", batched.Load(), batches.Load())
	if k, err := s.VerifyAudit(ctx); k != 1+good || err != nil {
		t.Errorf("VerifyAudit = %d, %v; want %d", k, err, 1+good)
	}
	got, err := s.List(ctx, access.Filter{})
	if err != nil || len(got) != 1+good {
		t.Errorf("%d requests stored (%v), want %d", len(got), err, 1+good)
	}
}
