package webhook_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/connectors"
	"github.com/accessbot/accessbot/connectors/connectortest"
	"github.com/accessbot/accessbot/connectors/webhook"
)

// scripted is a receiver that answers every request with the next of its
// answers (the last one repeats) and records what it got.
type scripted struct {
	srv     *httptest.Server
	mu      sync.Mutex
	answers []answer
	bodies  []webhook.Payload
	headers []http.Header
}

type answer struct {
	status int
	body   string
	header http.Header
}

func newScripted(t *testing.T, answers ...answer) *scripted {
	s := &scripted{answers: answers}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var p webhook.Payload
		if err := json.Unmarshal(b, &p); err != nil {
			t.Errorf("receiver: body is not a payload: %v", err)
		}
		s.mu.Lock()
		s.bodies = append(s.bodies, p)
		s.headers = append(s.headers, r.Header.Clone())
		a := s.answers[0]
		if len(s.answers) > 1 {
			s.answers = s.answers[1:]
		}
		s.mu.Unlock()
		for k, v := range a.header {
			w.Header()[k] = v
		}
		w.WriteHeader(a.status)
		fmt.Fprint(w, a.body)
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *scripted) got() []webhook.Payload {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]webhook.Payload(nil), s.bodies...)
}

func TestReceiptRoundTrip(t *testing.T) {
	s := newScripted(t,
		answer{status: 200, body: `{"ok": true, "receipt": {"ticket": "IT-9",  "account_id": 4411}, "ignored": [1,2]}`},
		answer{status: 204})
	c := build(t, s.srv.URL, connectortest.FastHTTP(-1), access.ClockFunc(time.Now))
	g := exampleGrant()
	rc, err := c.Grant(t.Context(), g)
	if err != nil {
		t.Fatal(err)
	}
	if string(rc.Data) != `{"ticket":"IT-9","account_id":4411}` || rc.UserID != "" || rc.PreExisting {
		t.Fatalf("receipt = %+v (data %s)", rc, rc.Data)
	}
	// The lifecycle stores the receipt and hands it back at revoke, with
	// the identity the grant used and the person's current email.
	g.Receipt = &rc
	g.User.CurrentEmail = "alice.smith@example.com"
	if err := c.Revoke(t.Context(), g); err != nil {
		t.Fatal(err)
	}
	got := s.got()
	if len(got) != 2 {
		t.Fatalf("%d deliveries", len(got))
	}
	if got[0].Receipt != nil || got[0].User.CurrentEmail != "" {
		t.Errorf("grant body carries receipt %s / current_email %q", got[0].Receipt, got[0].User.CurrentEmail)
	}
	rv := got[1]
	if string(rv.Receipt) != `{"ticket":"IT-9","account_id":4411}` {
		t.Errorf("revoke receipt = %s", rv.Receipt)
	}
	if rv.User.Email != "alice@example.com" || rv.User.CurrentEmail != "alice.smith@example.com" || rv.User.SlackID != "U0ALICE01" {
		t.Errorf("revoke user = %+v, want the identity at grant time plus current_email", rv.User)
	}
}

func TestRevokeBodyWithoutReceiptOrEmailChange(t *testing.T) {
	s := newScripted(t, answer{status: 204})
	c := build(t, s.srv.URL, connectortest.FastHTTP(-1), access.ClockFunc(time.Now))
	g := exampleGrant()
	g.Receipt = &access.Receipt{Note: "the receiver applied the grant"}
	g.User.CurrentEmail = "ALICE@example.com" // the same address
	if err := c.Revoke(t.Context(), g); err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.bodies[0].Receipt != nil || s.bodies[0].User.CurrentEmail != "" {
		t.Fatalf("revoke body = %+v", s.bodies[0])
	}
}

func TestGrantAnswersWithoutReceipt(t *testing.T) {
	for _, a := range []answer{
		{status: 200},
		{status: 202, body: "queued"},
		{status: 200, body: `<html>ok</html>`, header: http.Header{"Content-Type": {"text/html"}}},
		{status: 201, body: `{"id": 7}`},
		{status: 200, body: `{"receipt": null}`},
		{status: 200, body: `[{"receipt": {"a": 1}}]`},
	} {
		s := newScripted(t, a)
		c := build(t, s.srv.URL, connectortest.FastHTTP(-1), access.ClockFunc(time.Now))
		rc, err := c.Grant(t.Context(), exampleGrant())
		if err != nil || rc.Data != nil {
			t.Errorf("answer %d %q: receipt %+v, %v", a.status, a.body, rc, err)
		}
	}
}

func TestBadReceiptIsPermanentAndRecordsTheChange(t *testing.T) {
	big := `{"receipt": {"x": "` + strings.Repeat("y", access.MaxReceiptBytes) + `"}}`
	for name, body := range map[string]string{
		"too big":    big,
		"not object": `{"receipt": "IT-9"}`,
		"array":      `{"receipt": [1, 2]}`,
	} {
		t.Run(name, func(t *testing.T) {
			s := newScripted(t, answer{status: 200, body: body})
			c := build(t, s.srv.URL, connectortest.FastHTTP(-1), access.ClockFunc(time.Now))
			rc, err := c.Grant(t.Context(), exampleGrant())
			if class, _ := access.Classify(err); err == nil || class != access.Permanent || !strings.Contains(err.Error(), "receipt") {
				t.Fatalf("Grant = %v", err)
			}
			// The receiver applied the grant: the receipt must say something
			// changed, so that the lifecycle rolls it back.
			if !rc.Changed() || rc.Data != nil {
				t.Fatalf("receipt %+v: want a change recorded without the refused data", rc)
			}
		})
	}
	// Exactly the limit is fine.
	fill := access.MaxReceiptBytes - len(`{"x":""}`)
	s := newScripted(t, answer{status: 200, body: `{"receipt": {"x": "` + strings.Repeat("y", fill) + `"}}`})
	c := build(t, s.srv.URL, connectortest.FastHTTP(-1), access.ClockFunc(time.Now))
	if rc, err := c.Grant(t.Context(), exampleGrant()); err != nil || len(rc.Data) != access.MaxReceiptBytes {
		t.Fatalf("receipt of exactly %d bytes: %d bytes, %v", access.MaxReceiptBytes, len(rc.Data), err)
	}
}

func TestWithoutInstallationNothingIsSent(t *testing.T) {
	s := newScripted(t, answer{status: 200})
	reg := connectors.NewRegistry()
	reg.Add("webhook", webhook.Factory)
	c, err := reg.Build("automation", "webhook", map[string]any{"url": s.srv.URL, "secret": testSecret}, connectors.Env{})
	if err != nil {
		t.Fatalf("Factory (validation) = %v", err)
	}
	_, err = c.Grant(t.Context(), exampleGrant())
	if class, _ := access.Classify(err); err == nil || class != access.Permanent || !strings.Contains(err.Error(), "installation ID") {
		t.Fatalf("Grant without installation = %v", err)
	}
	if err := c.Revoke(t.Context(), exampleGrant()); err == nil {
		t.Fatal("Revoke without installation succeeded")
	}
	if n := len(s.got()); n != 0 {
		t.Fatalf("%d deliveries without an installation ID", n)
	}
	reg.Add("webhook", webhook.NewFactory("a.b"))
	if _, err := reg.Build("automation", "webhook", map[string]any{"url": s.srv.URL, "secret": testSecret}, connectors.Env{}); err == nil {
		t.Fatal("an installation ID with a dot was accepted")
	}
}

func TestMessageIDUniquePerInstallation(t *testing.T) {
	if got := webhook.MessageID("inst1", "AR-1042", "revoke"); got != "inst1.AR-1042.revoke" {
		t.Fatalf("MessageID = %q", got)
	}
	// Two installations numbering requests from AR-1001 each send
	// different ids for the same request ID.
	var ids []string
	for _, inst := range []string{"instA", "instB"} {
		s := newScripted(t, answer{status: 200})
		reg := connectors.NewRegistry()
		reg.Add("webhook", webhook.NewFactory(inst))
		c, err := reg.Build("automation", "webhook", map[string]any{"url": s.srv.URL, "secret": testSecret}, connectors.Env{HTTP: connectortest.FastHTTP(-1)})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Grant(t.Context(), exampleGrant()); err != nil {
			t.Fatal(err)
		}
		s.mu.Lock()
		ids = append(ids, s.headers[0].Get("webhook-id"))
		s.mu.Unlock()
	}
	if ids[0] == ids[1] || ids[0] != "instA.AR-1042.grant" {
		t.Fatalf("webhook-ids %q", ids)
	}
}

// TestErrorsHideEndpoint: a hook whose URL path, query and headers hold
// secrets fails in every way; no error names any part of the endpoint.
func TestErrorsHideEndpoint(t *testing.T) {
	const (
		pathSecret   = "hooks/T0PSECRETPATH9f8e7d"
		querySecret  = "QUERYSECRET55"
		headerSecret = "HEADERKEY0a1b2c3"
	)
	var echo string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// A receiver that echoes what it got in its error, as some do.
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprintf(w, `{"error": "no route for %s %s (key %s)"}`, r.URL.Path, r.URL.RawQuery, r.Header.Get("X-Api-Key"))
		echo = r.URL.Path
	}))
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	hookURL := srv.URL + "/" + pathSecret + "?token=" + querySecret
	mk := func(target string) access.Connector {
		reg := connectors.NewRegistry()
		reg.Add("webhook", webhook.NewFactory(testInstallation))
		c, err := reg.Build("automation", "webhook", map[string]any{
			"url": target, "secret": testSecret, "headers": map[string]any{"X-Api-Key": headerSecret},
		}, connectors.Env{HTTP: connectortest.FastHTTP(-1), Clock: access.ClockFunc(time.Now)})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	check := func(what string, err error) {
		t.Helper()
		if err == nil {
			t.Fatalf("%s: no error", what)
		}
		for _, leak := range []string{pathSecret, "T0PSECRETPATH9f8e7d", querySecret, headerSecret, u.Host, u.Port(), testSecret, strings.TrimPrefix(testSecret, "whsec_")} {
			if strings.Contains(err.Error(), leak) {
				t.Errorf("%s: error shows %q: %v", what, leak, err)
			}
		}
		if !strings.Contains(err.Error(), "AR-1042") || !strings.Contains(err.Error(), "automation") {
			t.Errorf("%s: error does not name the connector and request: %v", what, err)
		}
	}
	c := mk(hookURL)
	_, err := c.Grant(t.Context(), exampleGrant())
	check("400 echoing the request", err)
	var ae *webhook.AnswerError
	if !errors.As(err, &ae) || ae.StatusCode != 400 || !strings.Contains(ae.Message, "no route") {
		t.Fatalf("want an AnswerError with the receiver's message, got %v", err)
	}
	if echo != "/"+pathSecret {
		t.Fatalf("the receiver saw path %q", echo)
	}
	check("revoke 400", c.Revoke(t.Context(), exampleGrant()))

	// No answer at all: the dial error names the address.
	srv.Close()
	_, err = mk(hookURL).Grant(t.Context(), exampleGrant())
	check("connection refused", err)
	if class, _ := access.Classify(err); class != access.Retryable {
		t.Fatalf("connection refused: class %v", class)
	}
	// An unresolvable host named in the URL.
	_, err = mk("https://t0psecret-host.invalid/"+pathSecret).Grant(t.Context(), exampleGrant())
	check("no such host", err)
	if strings.Contains(err.Error(), "t0psecret-host") {
		t.Fatalf("error names the host: %v", err)
	}
}

func TestCancelledContextKeepsItsCause(t *testing.T) {
	s := newScripted(t, answer{status: 200})
	c := build(t, s.srv.URL+"/p/SECRETPATHXYZ", connectortest.FastHTTP(-1), access.ClockFunc(time.Now))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := c.Grant(ctx, exampleGrant())
	if class, _ := access.Classify(err); err == nil || class != access.Retryable || !errors.Is(err, context.Canceled) {
		t.Fatalf("Grant with a cancelled context = %v", err)
	}
	if strings.Contains(err.Error(), "SECRETPATHXYZ") {
		t.Fatalf("error shows the path: %v", err)
	}
}

func TestUncertainGrantSaysSo(t *testing.T) {
	for _, tc := range []struct {
		status  int
		changed bool
	}{{503, true}, {429, true}, {500, true}, {422, false}, {400, false}} {
		s := newScripted(t, answer{status: tc.status})
		c := build(t, s.srv.URL, connectortest.FastHTTP(-1), access.ClockFunc(time.Now))
		rc, err := c.Grant(t.Context(), exampleGrant())
		if err == nil || rc.Changed() != tc.changed {
			t.Errorf("%d: receipt %+v (changed %v), err %v; want changed=%v", tc.status, rc, rc.Changed(), err, tc.changed)
		}
	}
}
