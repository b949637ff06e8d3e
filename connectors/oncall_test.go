package connectors_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/connectors"
	"github.com/accessbot/accessbot/connectors/connectortest"
)

// acmeBlock is an on-call vendor's block as the vendors declare theirs.
type acmeBlock struct {
	Token     connectors.Redacted `json:"token"`
	TokenFile string              `json:"token_file"`
	connectors.OnCallConfig
}

// acmeClient is an on-call connector as the vendors write theirs.
type acmeClient struct {
	connectors.LookupOnly
	oncall *connectors.OnCall
}

func (c *acmeClient) OnCall(ctx context.Context, schedule string, at time.Time) ([]string, error) {
	return c.oncall.OnCall(ctx, schedule, at)
}

func TestNewOnCall(t *testing.T) {
	now := time.Date(2026, 3, 30, 9, 0, 0, 0, time.UTC)
	var (
		calls    int
		base     string
		auth     string
		deadline time.Duration
	)
	vendor := connectors.OnCallVendor{
		Vendor: "Acme", DefaultAPIURL: "https://api.acme.example", SecretKey: "token",
		Auth:   func(s string) connectors.Credentials { return connectors.StaticAuth("Key " + s) },
		Header: http.Header{"Accept": {"application/vnd.acme+json"}},
		Fetch: func(ctx context.Context, l *connectors.Lookup, schedule string, at time.Time) ([]string, error) {
			calls++
			base = l.API.Base
			auth, _ = l.API.Auth.Authorization(ctx, false)
			if d, ok := ctx.Deadline(); ok {
				deadline = time.Until(d)
			}
			return []string{"a@example.com"}, nil
		},
	}
	reg := connectors.NewRegistry()
	reg.Add("acme", func(name string, cfg connectors.Config) (access.Connector, error) {
		oc, err := connectors.NewOnCall(cfg, &acmeBlock{}, vendor)
		if err != nil {
			return nil, err
		}
		return &acmeClient{LookupOnly: connectors.LookupOnly{Type: "acme"}, oncall: oc}, nil
	})
	env := connectortest.FakeEnv(connectortest.NewClock(now))

	c, err := reg.Build("oc", "acme", map[string]any{"token": "t0k", "timeout": "2s"}, env)
	if err != nil {
		t.Fatal(err)
	}
	src := c.(access.OnCallSource)
	for range 2 {
		if got, err := src.OnCall(context.Background(), "S1", now); err != nil || len(got) != 1 {
			t.Fatalf("OnCall = %v, %v", got, err)
		}
	}
	if calls != 1 {
		t.Errorf("%d fetches for two lookups within the TTL, want 1", calls)
	}
	if base != "https://api.acme.example" || auth != "Key t0k" {
		t.Errorf("Lookup base %q auth %q", base, auth)
	}
	if deadline <= 0 || deadline > 2*time.Second {
		t.Errorf("Fetch ran with %v left, want within the 2s lookup timeout", deadline)
	}

	c, err = reg.Build("oc", "acme", map[string]any{"token": "t0k", "api_url": "https://eu.acme.example/"}, env)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.(access.OnCallSource).OnCall(context.Background(), "S1", now); err != nil || base != "https://eu.acme.example" {
		t.Errorf("api_url: base %q, %v", base, err)
	}

	for want, raw := range map[string]map[string]any{
		"connectors.oc.token: required":        {},
		"connectors.oc.cache_ttl: at most 10m": {"token": "t", "cache_ttl": "11m"},
	} {
		if _, err := reg.Build("oc", "acme", raw, env); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("block %v: error %v, want %q", raw, err, want)
		}
	}
}
