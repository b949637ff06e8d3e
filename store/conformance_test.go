package store_test

import (
	"testing"

	"github.com/accessbot/accessbot/store"
	"github.com/accessbot/accessbot/store/storetest"
)

var _ storetest.Store = (*store.Store)(nil)

// TestConformance runs the store conformance suite on bbolt (one process
// owns the file: no replicas).
func TestConformance(t *testing.T) {
	storetest.Run(t, storetest.Harness{
		Open: func(t *testing.T, opts storetest.Options) storetest.Store {
			return storetest.Open(t, store.Options{NoSync: true, Clock: opts.Clock, Observer: opts.Observer})
		},
		SmallChunks: store.SetChunks,
	})
}
