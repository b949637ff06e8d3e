package connectortest

import (
	"context"
	"maps"
	"sync"

	"github.com/accessbot/accessbot/connectors"
)

// State is an in-memory connectors.State for tests, safe for concurrent
// use. The zero value is ready to use. Keys lists what is stored, so a
// test can check that a connector cleans up after itself.
type State struct {
	mu sync.Mutex
	m  map[string][]byte
}

var _ connectors.State = (*State)(nil)

// Get returns a copy of key's value.
func (s *State) Get(_ context.Context, key string) ([]byte, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.m[key]
	return append([]byte(nil), v...), ok, nil
}

// Put stores a copy of value under key.
func (s *State) Put(_ context.Context, key string, value []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[string][]byte{}
	}
	s.m[key] = append([]byte(nil), value...)
	return nil
}

// Delete removes key; an absent key is not an error.
func (s *State) Delete(_ context.Context, key string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, key)
	return nil
}

// Keys returns the stored keys, in no particular order.
func (s *State) Keys() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for k := range maps.Keys(s.m) {
		out = append(out, k)
	}
	return out
}
