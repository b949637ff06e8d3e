package connectortest

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/connectors"
)

// Serve starts an httptest server for a fake vendor API, closed when the
// test ends.
func Serve(t testing.TB, handler http.HandlerFunc) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(handler)
	t.Cleanup(srv.Close)
	return srv
}

// Reply writes a fake vendor's answer: status, with body as given under
// the vendor's own Content-Type (each vendor spells it differently, and
// error bodies are best written verbatim as the vendor documents them).
func Reply(w http.ResponseWriter, status int, contentType, body string) {
	w.Header().Set("Content-Type", contentType)
	w.WriteHeader(status)
	fmt.Fprint(w, body)
}

// ReplyJSON is Reply with v encoded as JSON.
func ReplyJSON(w http.ResponseWriter, status int, contentType string, v any) {
	w.Header().Set("Content-Type", contentType)
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// FakeEnv is the Env of a connector under test against a fake server:
// FastHTTP(-1), so that one injected failure is one failed call, and
// clock.
func FakeEnv(clock access.Clock) connectors.Env {
	return connectors.Env{HTTP: FastHTTP(-1), Clock: clock}
}

// With returns a copy of raw with extra's keys set over it, for a test
// that changes a few keys of a working block.
func With(raw, extra map[string]any) map[string]any {
	out := maps.Clone(raw)
	maps.Copy(out, extra)
	return out
}

// LookupErr returns the *access.LookupError in err's chain, failing the
// test when there is none: a lookup connector's every failure must be one,
// so that the caller fails closed with a reason.
func LookupErr(t testing.TB, err error) *access.LookupError {
	t.Helper()
	var le *access.LookupError
	if !errors.As(err, &le) {
		t.Fatalf("error %v (%T) is not an *access.LookupError", err, err)
	}
	return le
}

// WantLookupErr is LookupErr that also checks the failure's kind and the
// reason people are told (LookupError.Reason), reporting a mismatch
// without stopping the test.
func WantLookupErr(t testing.TB, err error, kind access.LookupFailure, reason string) *access.LookupError {
	t.Helper()
	le := LookupErr(t, err)
	if le.Kind != kind || le.Reason() != reason {
		t.Errorf("kind %v reason %q, want %v %q", le.Kind, le.Reason(), kind, reason)
	}
	return le
}

// ConfigCases is a connector's table of configuration blocks and what
// must come of each: Want is a part of the error the block must be
// refused with, "" when it must build.
type ConfigCases []struct {
	Name string
	Raw  map[string]any
	Want string
}

// Check runs CheckBuild for each case, one subtest a case.
func (cs ConfigCases) Check(t *testing.T, typ string, factory connectors.Factory, name string, env connectors.Env, secrets ...string) {
	t.Helper()
	for _, tt := range cs {
		t.Run(tt.Name, func(t *testing.T) {
			CheckBuild(t, typ, factory, name, tt.Raw, env, tt.Want, secrets...)
		})
	}
}

// CheckBuild builds raw as instance name of type typ in env (Build, so
// with the registry's strict decoding) and checks the outcome: with want
// "" the block must build, otherwise it must be refused with an error
// containing want. No error may quote any of secrets.
func CheckBuild(t testing.TB, typ string, factory connectors.Factory, name string, raw map[string]any, env connectors.Env, want string, secrets ...string) {
	t.Helper()
	_, err := Build(t, typ, factory, name, raw, env)
	switch {
	case want == "" && err != nil:
		t.Fatalf("refused: %v", err)
	case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
		t.Fatalf("error %v, want %q", err, want)
	}
	for _, s := range secrets {
		if err != nil && strings.Contains(err.Error(), s) {
			t.Fatalf("error leaks a secret: %v", err)
		}
	}
}
