package connectors

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/accessbot/accessbot/access"
)

func TestSendJSON(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Key") != "k" || r.Header.Get("Accept") != "application/json" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		switch r.URL.Path {
		case "/echo":
			if r.Header.Get("Content-Type") != "application/json" {
				w.WriteHeader(http.StatusBadRequest)
				return
			}
			b := new(strings.Builder)
			_, _ = fmt.Fprintf(b, `{"q":%q,"method":%q}`, r.URL.Query().Get("q"), r.Method)
			_, _ = w.Write([]byte(b.String()))
		case "/gone":
			w.WriteHeader(http.StatusNotFound)
		case "/html":
			_, _ = w.Write([]byte("<html>proxy</html>"))
		}
	}))
	defer srv.Close()
	d := NewHTTPClient(HTTPOptions{RetryMax: -1})
	auth := func(r *http.Request) { r.Header.Set("X-Key", "k") }
	ctx := context.Background()

	var out struct{ Q, Method string }
	st, err := SendJSON(ctx, d, JSONCall{Op: "op", Method: http.MethodPost, Base: srv.URL, Path: "/echo",
		Query: url.Values{"q": {"a b"}}, Body: map[string]int{"x": 1}, Authorize: auth, Out: &out})
	if err != nil || st != 200 || out.Q != "a b" || out.Method != "POST" {
		t.Fatalf("echo: %d %v %+v", st, err, out)
	}
	if st, err := SendJSON(ctx, d, JSONCall{Op: "op", Method: http.MethodDelete, Base: srv.URL, Path: "/gone", Authorize: auth, Accept: []int{404}}); st != 404 || err != nil {
		t.Fatalf("accepted 404: %d %v", st, err)
	}
	st, err = SendJSON(ctx, d, JSONCall{Op: "op", Method: http.MethodDelete, Base: srv.URL, Path: "/gone", Authorize: auth})
	if st != 404 || class(err) != access.Permanent {
		t.Fatalf("404: %d %v", st, err)
	}
	st, err = SendJSON(ctx, d, JSONCall{Op: "op", Method: http.MethodGet, Base: srv.URL, Path: "/echo"})
	var se *StatusError
	if st != 401 || !errors.As(err, &se) || !se.CredentialsRejected {
		t.Fatalf("401: %d %v", st, err)
	}
	st, err = SendJSON(ctx, d, JSONCall{Op: "op", Method: http.MethodGet, Base: srv.URL, Path: "/html", Authorize: auth, Out: &out})
	if st != 200 || class(err) != access.Retryable || !strings.Contains(err.Error(), "op: unexpected answer to GET /html") {
		t.Fatalf("bad answer: %d %v", st, err)
	}
}

func class(err error) access.ErrorClass {
	var ce *access.ConnectorError
	if !errors.As(err, &ce) {
		return -1
	}
	return ce.Class
}
