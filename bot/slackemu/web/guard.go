package web

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
)

// The sandbox has no login: whoever can send it requests can act as anyone
// in the workspace and move the clock. Two defences keep other web pages
// the person visits from doing so through their browser:
//
//   - DNS rebinding: a page on evil.example makes its own name resolve to
//     127.0.0.1 and then talks to the sandbox "same-origin". The Host
//     header still names evil.example, so only requests naming localhost,
//     a loopback address or a name in Options.Hosts are answered, for
//     every method (the state is not for other sites to read either).
//     See https://developer.mozilla.org/en-US/docs/Web/Security/Attacks/DNS_rebinding
//     and the same check in e.g. Jupyter (allow_remote_access) and webpack
//     dev server (allowedHosts).
//   - Cross-site request forgery: a page elsewhere POSTs to
//     http://127.0.0.1:8080/api/act (a text/plain body needs no CORS
//     preflight). net/http's CrossOriginProtection refuses state-changing
//     requests whose Sec-Fetch-Site or Origin says they come from another
//     origin; requests with neither (curl, tests) are not from a browser
//     and pass.

// guard wraps h with the Host check and cross-origin protection.
func (s *Server) guard(h http.Handler) http.Handler {
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		refuse(w, r, fmt.Sprintf("refused: a %s request from another web site (origin %q); the sandbox acts only on requests from its own page",
			r.Method, r.Header.Get("Origin")))
	}))
	allowed := map[string]bool{"localhost": true}
	for _, h := range s.o.Hosts {
		allowed[normalHost(h)] = true
	}
	inner := cop.Handler(h)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := hostOnly(r.Host)
		if ip := net.ParseIP(host); !allowed[host] && (ip == nil || !ip.IsLoopback()) {
			refuse(w, r, fmt.Sprintf("refused: this request names the host %q; the sandbox answers only requests to localhost, 127.0.0.1 or [::1]%s (a page on another site may be trying to reach it through DNS rebinding; open the address the sandbox printed)",
				r.Host, s.hostsText()))
			return
		}
		inner.ServeHTTP(w, r)
	})
}

// hostsText names Options.Hosts for the refusal.
func (s *Server) hostsText() string {
	if len(s.o.Hosts) == 0 {
		return ""
	}
	return " or " + strings.Join(s.o.Hosts, ", ")
}

// hostOnly is a Host header's host name, lower case, without port or
// IPv6 brackets.
func hostOnly(hostport string) string {
	h := hostport
	if host, _, err := net.SplitHostPort(hostport); err == nil {
		h = host
	}
	return normalHost(h)
}

func normalHost(h string) string {
	return strings.ToLower(strings.TrimSuffix(strings.TrimSuffix(strings.TrimPrefix(h, "["), "]"), "."))
}

// refuse answers 403 with msg: as the API's JSON error shape for /api/
// paths (the page shows it), as text otherwise.
func refuse(w http.ResponseWriter, r *http.Request, msg string) {
	if strings.HasPrefix(r.URL.Path, "/api/") {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusForbidden)
		_ = json.NewEncoder(w).Encode(actResponse{Error: msg})
		return
	}
	http.Error(w, msg, http.StatusForbidden)
}
