// Package storetest opens real stores for tests: in t.TempDir(), checked
// (pages, indexes, audit chain) when the test ends.
package storetest

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/store"
)

// MustOpen opens a new store in tb.TempDir() with fsync off and registers a
// cleanup that checks and closes it (see Open).
func MustOpen(tb testing.TB) *store.Store {
	tb.Helper()
	return Open(tb, store.Options{NoSync: true})
}

// Open opens a new store in tb.TempDir() with opts. At cleanup it runs
// Store.Check (bbolt's tx.Check, index consistency, audit chain) and
// closes the store; if the test closed it already, the file is reopened to
// be checked. A failed check fails the test.
func Open(tb testing.TB, opts store.Options) *store.Store {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "accessbot.db")
	s, err := store.Open(path, opts)
	if err != nil {
		tb.Fatalf("open store: %v", err)
	}
	tb.Cleanup(func() { check(tb, s, opts) })
	return s
}

func check(tb testing.TB, s *store.Store, opts store.Options) {
	tb.Helper()
	ctx := context.Background()
	err := s.Check(ctx)
	if errors.Is(err, store.ErrClosed) {
		if s, err = store.Open(s.Path(), store.Options{NoSync: true, LockTimeout: opts.LockTimeout}); err != nil {
			tb.Errorf("reopen store to check it: %v", err)
			return
		}
		err = s.Check(ctx)
	}
	if err != nil {
		tb.Errorf("store check: %v", err)
	}
	if err := s.Close(); err != nil && !errors.Is(err, store.ErrClosed) {
		tb.Errorf("close store: %v", err)
	}
}

// NewRequest returns a request that has made its first transition
// (requested → pending), ready for Store.Create: one approval step by
// approvers, reminder in 2h, timeout in 24h from at.
func NewRequest(requester, system, role string, at time.Time, approvers ...string) *access.Request {
	r := &access.Request{
		Requester:   requester,
		System:      system,
		Role:        role,
		Duration:    2 * time.Hour,
		Reason:      "customer ticket 4411",
		Entitlement: access.Entitlement{Connector: "okta", Params: map[string]string{"group_id": "00g1" + role}, Person: requester},
		Steps:       []access.Step{{Approvers: approvers, Min: 1, Sources: "manager"}},
		CreatedAt:   at.UTC(),
		RemindAt:    at.Add(2 * time.Hour).UTC(),
		TimeoutAt:   at.Add(24 * time.Hour).UTC(),
	}
	if err := access.Apply(r, access.Transition{Event: access.EventRequested, Actor: requester, At: at}); err != nil {
		panic(err) // the table always allows requested from the zero state
	}
	return r
}
