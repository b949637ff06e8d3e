// Package testsvc starts real servers (OpenLDAP's slapd, PostgreSQL) for
// connector tests: each on a free port on 127.0.0.1, with a throwaway
// configuration and data directory under t.TempDir(), loaded with a small
// fixture, and stopped in t.Cleanup.
//
// When a server's binaries are not installed, the helpers skip the test,
// unless the CI environment variable is set, in which case they fail it:
// CI installs the packages (.ci/run), so a missing binary there is a broken
// pipeline, not a reason to pass silently.
//
// The only waiting they do is bounded readiness polling of the server they
// started (a deadline, short pauses between attempts).
package testsvc

import (
	"bytes"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// readyTimeout bounds how long a server may take to accept connections.
const readyTimeout = 30 * time.Second

// pollInterval is the pause between readiness attempts.
const pollInterval = 50 * time.Millisecond

// missing skips or fails t because what is not installed.
func missing(t testing.TB, what, install string) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatalf("testsvc: %s is not installed and CI is set (install it: %s)", what, install)
	}
	t.Skipf("testsvc: %s is not installed (install it: %s); skipping", what, install)
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
// Another process could take it before the server binds it; the callers
// notice that as a server that exits at start-up and retry once.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testsvc: find a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// run runs a short command to completion, failing t with its output if it
// fails.
func run(t testing.TB, cmd *exec.Cmd) {
	t.Helper()
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("testsvc: %s: %v\n%s", strings.Join(cmd.Args, " "), err, out.String())
	}
}

// syncBuffer is an output buffer safe to read while a process writes it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// SilentServer listens on a free loopback port, accepts connections and
// never answers: a server that is up but hung. It returns the host:port;
// the listener and every accepted connection are closed at cleanup.
func SilentServer(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return l.Addr().String()
}
