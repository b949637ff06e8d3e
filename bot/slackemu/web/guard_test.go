package web

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// The page answers only requests naming localhost, a loopback address or
// one of Options.Hosts (DNS rebinding), and acts only on state-changing
// requests from its own origin (cross-site request forgery); every
// refusal is a 403 that says why.
func TestGuardRefusesOtherHostsAndCrossOriginRequests(t *testing.T) {
	s, _, _, _, hs := newSandbox(t)
	s.o.Hosts = []string{"sandbox.lan"}
	h := s.Handler()
	port := strings.TrimPrefix(hs.URL[strings.LastIndex(hs.URL, ":"):], ":")
	// An action the handler itself refuses (no bot runs here): reaching
	// that answer proves the guard let the request through.
	act := `{"as":"` + alice + `","kind":"command","text":"hello"}`
	do := func(method, path, host string, header map[string]string) (int, string) {
		t.Helper()
		var body io.Reader
		if method == http.MethodPost {
			body = strings.NewReader(act)
		}
		r := httptest.NewRequest(method, path, body)
		r.Host = host
		for k, v := range header {
			r.Header.Set(k, v)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w.Code, w.Body.String()
	}
	state := "/api/state?" + url.Values{"as": {alice}}.Encode()
	for _, tc := range []struct {
		name, method, path, host string
		header                   map[string]string
		code                     int
		want                     string
	}{
		{"page on 127.0.0.1", "GET", "/", "127.0.0.1:" + port, nil, 200, ""},
		{"state on localhost", "GET", state, "localhost:" + port, nil, 200, ""},
		{"state on [::1]", "GET", state, "[::1]:" + port, nil, 200, ""},
		{"state on another loopback address", "GET", state, "127.0.0.2:" + port, nil, 200, ""},
		{"state on a listed host", "GET", state, "Sandbox.LAN:" + port, nil, 200, ""},
		{"rebound name reads the state", "GET", state, "evil.example:" + port, nil, 403, `names the host \"evil.example:` + port + `\"`},
		{"rebound name loads the page", "GET", "/", "evil.example:" + port, nil, 403, "DNS rebinding"},
		{"rebound name acts, same-origin in the browser's eyes", "POST", "/api/act", "evil.example:" + port,
			map[string]string{"Origin": "http://evil.example:" + port, "Sec-Fetch-Site": "same-origin"}, 403, "evil.example"},
		{"the page acts", "POST", "/api/act", "127.0.0.1:" + port,
			map[string]string{"Origin": "http://127.0.0.1:" + port, "Sec-Fetch-Site": "same-origin", "Content-Type": "application/json"}, 400, "accessbot reads commands"},
		{"curl acts (no browser headers)", "POST", "/api/act", "127.0.0.1:" + port, nil, 400, "accessbot reads commands"},
		{"another site posts a form", "POST", "/api/act", "127.0.0.1:" + port,
			map[string]string{"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site", "Content-Type": "text/plain"}, 403, "from another web site"},
		{"another site posts, old browser (Origin only)", "POST", "/api/clock", "127.0.0.1:" + port,
			map[string]string{"Origin": "https://evil.example"}, 403, "from another web site"},
		{"another port on localhost posts", "POST", "/api/act", "127.0.0.1:" + port,
			map[string]string{"Origin": "http://localhost:3000", "Sec-Fetch-Site": "same-site"}, 403, "from another web site"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := do(tc.method, tc.path, tc.host, tc.header)
			if code != tc.code || !strings.Contains(body, tc.want) {
				t.Errorf("%d %s, want %d with %q", code, body, tc.code, tc.want)
			}
			if code == 403 && strings.HasPrefix(tc.path, "/api/") {
				var res actResponse
				if err := json.Unmarshal([]byte(body), &res); err != nil || res.Error == "" {
					t.Errorf("a refused API call answers the API's error shape: %s", body)
				}
			}
		})
	}
}
