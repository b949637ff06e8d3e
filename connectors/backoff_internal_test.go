package connectors

import (
	"testing"
	"time"
)

func TestFullJitterBounds(t *testing.T) {
	top := func(n int64) int64 { return n - 1 } // the largest wait
	base, max := 250*time.Millisecond, 5*time.Second
	for n, want := range []time.Duration{250 * time.Millisecond, 500 * time.Millisecond, time.Second, 2 * time.Second, 4 * time.Second, 5 * time.Second, 5 * time.Second} {
		if got := fullJitter(base, max, n, top); got != want {
			t.Errorf("attempt %d: max wait %v, want %v", n, got, want)
		}
	}
	if got := fullJitter(base, max, 100, top); got != max {
		t.Errorf("attempt 100: %v (overflow?)", got)
	}
	if got := fullJitter(base, max, 3, func(int64) int64 { return 0 }); got != 0 {
		t.Errorf("full jitter must reach 0, got %v", got)
	}
}
