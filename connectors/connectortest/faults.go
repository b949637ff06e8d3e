package connectortest

import (
	"net/http"
	"strings"
	"sync"
)

// Faults is the bookkeeping a fake vendor server shares with its test: the
// requests it saw, as "METHOD /path", and the failure statuses it was told
// to answer next, in order. The zero value is ready to use; it is safe for
// concurrent use and has its own lock, so a fake may call it with or
// without holding its own.
//
// A fake embeds it, calls Record for each request and Take where it
// decides to answer a queued failure (for some only after checking
// authentication). How a failure is answered (headers, error body) stays
// the fake's, as each vendor answers differently.
type Faults struct {
	mu    sync.Mutex
	fail  []int
	calls []string
}

// FailNext queues statuses for the next requests, one each, in order.
func (f *Faults) FailNext(statuses ...int) {
	f.mu.Lock()
	f.fail = append(f.fail, statuses...)
	f.mu.Unlock()
}

// Take pops the next queued failure status, if any.
func (f *Faults) Take() (status int, ok bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.fail) == 0 {
		return 0, false
	}
	status, f.fail = f.fail[0], f.fail[1:]
	return status, true
}

// Record notes r as "METHOD /path".
func (f *Faults) Record(r *http.Request) { f.Note(r.Method + " " + r.URL.Path) }

// Note records call as given, for the requests a fake wants to count under
// another name.
func (f *Faults) Note(call string) {
	f.mu.Lock()
	f.calls = append(f.calls, call)
	f.mu.Unlock()
}

// Count is how many recorded calls start with prefix ("" counts all).
func (f *Faults) Count(prefix string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.calls {
		if strings.HasPrefix(c, prefix) {
			n++
		}
	}
	return n
}

// Calls returns a copy of the recorded calls, oldest first.
func (f *Faults) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}
