package connectors_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/connectors"
	"github.com/accessbot/accessbot/connectors/connectortest"
)

var t0 = time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)

func TestParams(t *testing.T) {
	ps := connectors.Params{
		{Key: "group_id", What: "an Okta group ID", Check: connectors.Match(regexp.MustCompile(`^00g[A-Za-z0-9]+$`), "an Okta group ID (00g…)")},
		{Key: "note", What: "a note", Optional: true},
	}
	for _, tc := range []struct {
		params map[string]string
		want   []string // substrings; none: valid
	}{
		{map[string]string{"group_id": "00g1"}, nil},
		{map[string]string{"group_id": " 00g1 ", "note": "x"}, nil},
		{map[string]string{}, []string{"group_id: required (an Okta group ID, in the role's grant: map)"}},
		{map[string]string{"group_id": "abc"}, []string{`group_id: "abc" is not an Okta group ID (00g…)`}},
		{map[string]string{"group_id": "abc", "gruop_id": "x"}, []string{`group_id: "abc" is not`, "gruop_id: unknown grant parameter (did you mean group_id?)"}},
	} {
		err := ps.CheckParams(tc.params)
		if len(tc.want) == 0 {
			if err != nil {
				t.Errorf("CheckParams(%v) = %v", tc.params, err)
			}
			continue
		}
		for _, w := range tc.want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("CheckParams(%v) = %v, want it to contain %q", tc.params, err, w)
			}
		}
	}
	v, err := ps.Get("okta x: grant AR-1", map[string]string{"group_id": " 00g1 "}, "group_id")
	if err != nil || v != "00g1" {
		t.Fatalf("Get = %q, %v", v, err)
	}
	_, err = ps.Get("okta x: grant AR-1", map[string]string{"group_id": "bad"}, "group_id")
	if class, _ := access.Classify(err); err == nil || class != access.Permanent || !strings.HasPrefix(err.Error(), "okta x: grant AR-1: grant parameter group_id: ") {
		t.Fatalf("Get of a bad value = %v", err)
	}
}

func TestUsers(t *testing.T) {
	clock := connectortest.NewClock(t0)
	var lookups atomic.Int32
	users := connectors.NewUsers(clock, "Example org", func(ctx context.Context, op, email string) (string, error) {
		lookups.Add(1)
		switch email {
		case "alice@example.com":
			return "u-alice", nil
		case "down@example.com":
			return "", access.RetryableError(errors.New(op+": 503"), 0)
		}
		return "", nil
	})
	ctx := t.Context()
	alice := access.Person{SlackID: "U0ALICE01", Email: "alice@example.com"}
	lookups.Store(0)
	for range 2 {
		if id, err := users.ByEmail(ctx, "op", alice); err != nil || id != "u-alice" {
			t.Fatalf("ByEmail = %q, %v", id, err)
		}
	}
	if n := lookups.Load(); n != 1 {
		t.Fatalf("%d lookups, want 1 (cached)", n)
	}
	clock.Add(connectors.UserCacheTTL)
	if _, err := users.ByEmail(ctx, "op", alice); err != nil || lookups.Load() != 2 {
		t.Fatalf("after the TTL: %v, %d lookups", err, lookups.Load())
	}

	nobody := access.Person{SlackID: "U0NOBODY1", Email: "nobody@example.com"}
	_, err := users.ByEmail(ctx, "okta x: grant AR-1", nobody)
	if class, _ := access.Classify(err); class != access.Permanent || !errors.Is(err, access.ErrUnknownUser) ||
		!strings.Contains(err.Error(), "U0NOBODY1") || !strings.Contains(err.Error(), "Example org") {
		t.Fatalf("unknown person: %v", err)
	}
	if _, err := users.ByEmail(ctx, "op", access.Person{SlackID: "U1", Email: "down@example.com"}); err == nil || errors.Is(err, access.ErrUnknownUser) {
		t.Fatalf("outage: %v", err)
	}
	for _, p := range []access.Person{{SlackID: "U1"}, {SlackID: "U1", Email: "a@b.c\x00"}} {
		if _, err := users.ByEmail(ctx, "op", p); err == nil {
			t.Fatalf("ByEmail(%q) = nil error", p.Email)
		}
	}

	// A revoke with a receipt never looks anybody up.
	lookups.Store(0)
	g := access.Grant{ID: "AR-1", User: nobody, Receipt: &access.Receipt{UserID: "u-was-renamed"}}
	if id, err := users.ForRevoke(ctx, "op", g); err != nil || id != "u-was-renamed" || lookups.Load() != 0 {
		t.Fatalf("ForRevoke with receipt = %q, %v, %d lookups", id, err, lookups.Load())
	}
	g.Receipt = nil
	if _, err := users.ForRevoke(ctx, "op", g); !errors.Is(err, access.ErrUnknownUser) {
		t.Fatalf("legacy ForRevoke of an unknown email = %v", err)
	}
}

// fakeMembership is a group at a target, for GrantMembership.
type fakeMembership struct {
	members map[string]bool
	addErr  error
	adds    int
}

func (f *fakeMembership) member(uid string) connectors.Member {
	return connectors.Member{
		Find: func(context.Context) (connectors.Intent, bool, error) {
			return connectors.Intent{UserID: uid}, f.members[uid], nil
		},
		Add: func(_ context.Context, in connectors.Intent) (access.Receipt, error) {
			f.adds++
			if f.addErr != nil {
				return access.Receipt{}, f.addErr
			}
			f.members[in.UserID] = true
			return access.Receipt{}, nil
		},
	}
}

func TestGrantMembership(t *testing.T) {
	ctx := t.Context()
	g := access.Grant{ID: "AR-7"}
	t.Run("FirstGrantThenRepeat", func(t *testing.T) {
		st := &connectortest.State{}
		in := connectors.NewIntents(st)
		f := &fakeMembership{members: map[string]bool{}}
		r, err := connectors.GrantMembership(ctx, in, g, f.member("u1"), "added")
		if err != nil || r.UserID != "u1" || r.PreExisting || r.Note != "added" {
			t.Fatalf("first = %+v, %v", r, err)
		}
		// The repeat finds the membership it made: still its own.
		r, err = connectors.GrantMembership(ctx, in, g, f.member("u1"), "added")
		if err != nil || r.PreExisting || f.adds != 2 {
			t.Fatalf("repeat = %+v, %v (adds %d)", r, err, f.adds)
		}
		in.Forget(ctx, g.ID)
		if len(st.Keys()) != 0 {
			t.Fatalf("left %v", st.Keys())
		}
	})
	t.Run("PreExisting", func(t *testing.T) {
		st := &connectortest.State{}
		f := &fakeMembership{members: map[string]bool{"u1": true}}
		r, err := connectors.GrantMembership(ctx, connectors.NewIntents(st), g, f.member("u1"), "added")
		if err != nil || !r.PreExisting || r.UserID != "u1" || f.adds != 0 || len(st.Keys()) != 0 {
			t.Fatalf("= %+v, %v, adds %d, keys %v", r, err, f.adds, st.Keys())
		}
	})
	t.Run("LostAnswerThenRepeat", func(t *testing.T) {
		st := &connectortest.State{}
		in := connectors.NewIntents(st)
		f := &fakeMembership{members: map[string]bool{}}
		m := f.member("u1")
		add := m.Add
		m.Add = func(ctx context.Context, i connectors.Intent) (access.Receipt, error) {
			add(ctx, i) // applied, but the answer is lost
			return access.Receipt{}, access.RetryableError(errors.New("timeout"), 0)
		}
		r, err := connectors.GrantMembership(ctx, in, g, m, "added")
		if err == nil || r.UserID != "u1" || !r.Changed() {
			t.Fatalf("lost answer = %+v, %v: want a receipt naming the user for a rollback", r, err)
		}
		r, err = connectors.GrantMembership(ctx, in, g, f.member("u1"), "added")
		if err != nil || r.PreExisting {
			t.Fatalf("repeat after a lost answer = %+v, %v: the membership is the grant's own", r, err)
		}
	})
	t.Run("RefusedOutright", func(t *testing.T) {
		st := &connectortest.State{}
		f := &fakeMembership{members: map[string]bool{}, addErr: access.PermanentError(errors.New("403"))}
		r, err := connectors.GrantMembership(ctx, connectors.NewIntents(st), g, f.member("u1"), "added")
		if err == nil || r.Changed() || len(st.Keys()) != 0 {
			t.Fatalf("= %+v, %v, keys %v: a refused first change leaves nothing", r, err, st.Keys())
		}
	})
	t.Run("PartialTwoCallGrant", func(t *testing.T) {
		st := &connectortest.State{}
		m := connectors.Member{
			Find: func(context.Context) (connectors.Intent, bool, error) { return connectors.Intent{}, false, nil },
			Add: func(context.Context, connectors.Intent) (access.Receipt, error) {
				return access.Receipt{UserID: "u9", Data: json.RawMessage(`{"member":true}`)}, access.PermanentError(errors.New("second call refused"))
			},
		}
		in := connectors.NewIntents(st)
		r, err := connectors.GrantMembership(ctx, in, g, m, "added")
		if err == nil || r.UserID != "u9" || !r.Changed() {
			t.Fatalf("= %+v, %v", r, err)
		}
		if got, ok, _ := in.Get(ctx, g.ID); !ok || got.UserID != "u9" {
			t.Fatalf("intent = %+v, %v: the ID learnt from Add is recorded", got, ok)
		}
	})
}

func TestAPIRefreshesOnce(t *testing.T) {
	var tokens atomic.Int32
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/token":
			if err := r.ParseForm(); err != nil || r.PostForm.Get("client_secret") != "s3cret" {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusUnauthorized)
				w.Write([]byte(`{"error":"invalid_client","error_codes":[7000215]}`))
				return
			}
			n := tokens.Add(1)
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(map[string]any{"access_token": "tok" + string(rune('0'+n)), "expires_in": 3600})
		case "/api/thing":
			calls.Add(1)
			// Only the second token is accepted: the first was revoked.
			if r.Header.Get("Authorization") != "Bearer tok2" {
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			w.Write([]byte(`{"ok":true}`))
		}
	}))
	defer srv.Close()
	clock := connectortest.NewClock(t0)
	secret := "s3cret"
	cc := &connectors.ClientCredentials{
		Name: "test token", TokenURL: srv.URL + "/token", HTTP: connectortest.FastHTTP(-1), Clock: clock,
		Form: func(time.Time) (url.Values, error) {
			return url.Values{"grant_type": {"client_credentials"}, "client_secret": {secret}}, nil
		},
		Who: "the tenant", Hint: "check the secret",
	}
	api := &connectors.API{Base: srv.URL + "/api", HTTP: connectortest.FastHTTP(-1), Auth: cc, Timeout: time.Second}
	var out struct{ OK bool }
	status, err := api.Send(t.Context(), connectors.JSONCall{Op: "op", Method: http.MethodGet, Path: "/thing", Out: &out})
	if err != nil || status != 200 || !out.OK || tokens.Load() != 2 || calls.Load() != 2 {
		t.Fatalf("status %d, %v, out %+v, tokens %d, calls %d", status, err, out, tokens.Load(), calls.Load())
	}
	// Refused credentials are permanent, say why, and do not leak.
	secret = "wrong"
	clock.Add(time.Hour) // the cached token expires
	_, err = api.Send(t.Context(), connectors.JSONCall{Op: "op", Method: http.MethodGet, Path: "/thing"})
	if class, _ := access.Classify(err); class != access.Permanent || !strings.Contains(err.Error(), "invalid_client AADSTS7000215") ||
		!strings.Contains(err.Error(), "the tenant rejected") || strings.Contains(err.Error(), "wrong") {
		t.Fatalf("refused credentials: %v", err)
	}
	// A static token's 401 is final: one attempt.
	calls.Store(0)
	api.Auth = connectors.StaticAuth("Bearer old")
	_, err = api.Send(t.Context(), connectors.JSONCall{Op: "op", Method: http.MethodGet, Path: "/thing"})
	if class, _ := access.Classify(err); class != access.Permanent || calls.Load() != 1 {
		t.Fatalf("static 401: %v after %d calls", err, calls.Load())
	}
}

func TestSendJSONErrorOutAndRetryAfter(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/bad":
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			w.Write([]byte(`{"scimType":"noTarget","detail":"no member matched"}`))
		case "/limited":
			w.Header().Set("X-Rate-Limit-Reset", "42")
			w.WriteHeader(http.StatusTooManyRequests)
		}
	}))
	defer srv.Close()
	var e struct{ ScimType string }
	status, err := connectors.SendJSON(t.Context(), connectortest.FastHTTP(-1), connectors.JSONCall{
		Op: "op", Method: http.MethodPatch, Base: srv.URL, Path: "/bad", ErrorOut: &e,
		Header: http.Header{"Content-Type": {"application/scim+json"}},
	})
	if status != 400 || e.ScimType != "noTarget" || err == nil || !strings.Contains(err.Error(), "no member matched") {
		t.Fatalf("status %d, body %+v, err %v", status, e, err)
	}
	_, err = connectors.SendJSON(t.Context(), connectortest.FastHTTPShortRetryAfter(-1), connectors.JSONCall{
		Op: "op", Method: http.MethodGet, Base: srv.URL, Path: "/limited",
		RetryAfter: func(h http.Header) time.Duration {
			return time.Duration(len(h.Get("X-Rate-Limit-Reset"))) * time.Second
		},
	})
	if class, ra := access.Classify(err); class != access.Retryable || ra != 2*time.Second {
		t.Fatalf("429: %v, %v, %v", class, ra, err)
	}
}
