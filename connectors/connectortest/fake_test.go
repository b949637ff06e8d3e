package connectortest

import (
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/connectors"
)

// recorder is a testing.TB that records failures instead of failing, so
// that the helpers' own checks can be tested. Fatal ends the goroutine, as
// testing's does; run reads failed only after that goroutine ended.
type recorder struct {
	testing.TB
	failed []string
}

func (r *recorder) Helper() {}

func (r *recorder) Errorf(format string, args ...any) {
	r.failed = append(r.failed, fmt.Sprintf(format, args...))
}

func (r *recorder) Fatalf(format string, args ...any) {
	r.Errorf(format, args...)
	runtime.Goexit()
}

// run calls f with a fresh recorder in its own goroutine and returns what
// it recorded.
func run(t *testing.T, f func(tb testing.TB)) []string {
	r := &recorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		f(r)
	}()
	<-done
	return r.failed
}

func TestWantLookupErr(t *testing.T) {
	le := &access.LookupError{Vendor: "Acme", Kind: access.LookupNotFound, What: "ticket A-1"}
	wrapped := fmt.Errorf("check: %w", le)
	if got := run(t, func(tb testing.TB) { WantLookupErr(tb, wrapped, access.LookupNotFound, le.Reason()) }); len(got) != 0 {
		t.Errorf("a matching failure was refused: %q", got)
	}
	if got := run(t, func(tb testing.TB) { WantLookupErr(tb, le, access.LookupRejected, le.Reason()) }); len(got) != 1 {
		t.Errorf("another kind was accepted: %q", got)
	}
	if got := run(t, func(tb testing.TB) { WantLookupErr(tb, le, access.LookupNotFound, "something else") }); len(got) != 1 {
		t.Errorf("another reason was accepted: %q", got)
	}
	if got := run(t, func(tb testing.TB) { WantLookupErr(tb, errors.New("plain"), access.LookupNotFound, "") }); len(got) != 1 ||
		!strings.Contains(got[0], "is not an *access.LookupError") {
		t.Errorf("a plain error was accepted: %q", got)
	}
}

func TestCheckBuild(t *testing.T) {
	const secret = "s3cretvalue"
	factory := func(name string, cfg connectors.Config) (access.Connector, error) {
		var c struct {
			Token connectors.Redacted `json:"token"`
		}
		if err := cfg.Decode(&c); err != nil {
			return nil, err
		}
		if c.Token == "leak" {
			return nil, errors.New("bad token " + secret)
		}
		return nil, nil
	}
	env := FakeEnv(NewClock(time.Date(2026, 3, 30, 9, 0, 0, 0, time.UTC)))
	tests := []struct {
		name  string
		raw   map[string]any
		want  string
		fails int
	}{
		{"builds", map[string]any{"token": "x"}, "", 0},
		{"refused as expected", map[string]any{"tokn": "x"}, `did you mean "token"?`, 0},
		{"refused unexpectedly", map[string]any{"tokn": "x"}, "", 1},
		{"built although it should not", map[string]any{"token": "x"}, "required", 1},
		{"refused with another error", map[string]any{"tokn": "x"}, "required", 1},
		{"error leaks the secret", map[string]any{"token": "leak"}, "bad token", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := run(t, func(tb testing.TB) { CheckBuild(tb, "fake", factory, "f", tt.raw, env, tt.want, secret) })
			if len(got) != tt.fails {
				t.Errorf("failures %q, want %d", got, tt.fails)
			}
		})
	}
}

func TestReplyAndWith(t *testing.T) {
	srv := Serve(t, func(w http.ResponseWriter, r *http.Request) {
		ReplyJSON(w, http.StatusTeapot, "application/json; charset=utf-8", map[string]int{"a": 1})
	})
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTeapot || resp.Header.Get("Content-Type") != "application/json; charset=utf-8" {
		t.Errorf("answer %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	base := map[string]any{"a": 1, "b": 2}
	got := With(base, map[string]any{"b": 3, "c": 4})
	if got["a"] != 1 || got["b"] != 3 || got["c"] != 4 || base["b"] != 2 || len(base) != 2 {
		t.Errorf("With = %v, base now %v", got, base)
	}
}
