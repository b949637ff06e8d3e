package store

import (
	"context"
	"fmt"
)

// Ping checks that the store accepts a write transaction (readiness). It
// writes nothing.
func (s *Store) Ping(ctx context.Context) error {
	s.mu.RLock()
	closed := s.closed
	s.mu.RUnlock()
	if closed {
		return fmt.Errorf("store %s is closed", s.path)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	tx, err := s.db.Begin(true)
	if err != nil {
		return fmt.Errorf("store %s: %w", s.path, err)
	}
	return tx.Rollback()
}
