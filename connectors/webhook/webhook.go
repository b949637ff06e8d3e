// Package webhook is the `webhook` connector: one signed HTTP POST per
// grant and per revoke to an automation platform (Zapier, Workato, Tines,
// n8n) or an in-house service, exactly as DESIGN.md §6 specifies.
//
// Requests are signed per the Standard Webhooks specification
// (https://www.standardwebhooks.com/, spec text
// https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md):
// webhook-id, webhook-timestamp (Unix seconds) and webhook-signature
// "v1,<base64 HMAC-SHA256(key, id.timestamp.body)>", where key is the
// base64-decoded part of the configured "whsec_…" secret, so receivers can
// verify with any Standard Webhooks library. webhook-id is
// "<grant id>.<grant|revoke>": stable across every retry of one operation,
// inner and outer, so receivers can deduplicate; Idempotency-Key repeats it,
// which is also what lets the shared HTTP client retry the POST.
//
// The body is Payload: DESIGN.md §6's fields, plus "ticket" ({"ref",
// "title", "url", "status"}; only ref is always there) when the role
// requires a ticket reference (the runbook's ticket:).
//
// Answers: any 2xx is done; on revoke 404 and 410 mean "already gone" and
// are done too; 408, 425, 429, 5xx and transport errors are retryable
// (Retry-After honoured up to the client's cap, then handed to the
// lifecycle's outer loop); any other 4xx is permanent.
package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/connectors"
)

// Event types, the body's "type".
const (
	TypeGrant  = "access.grant"
	TypeRevoke = "access.revoke"
)

// secretPrefix is the Standard Webhooks serialisation of a symmetric key.
const secretPrefix = "whsec_"

// Config is the `connectors.NAME` block of a webhook connector.
type Config struct {
	// URL receives the POSTs; http or https. Required.
	URL string `json:"url"`
	// Secret is the signing secret, "whsec_" + base64; or SecretFile
	// names a file holding it. Exactly one is required.
	Secret     connectors.Redacted `json:"secret"`
	SecretFile string              `json:"secret_file"`
	// Timeout bounds each attempt (default 10s).
	Timeout connectors.Duration `json:"timeout"`
	// Headers are extra request headers (an API key the receiver wants,
	// say). They may not replace the signing, idempotency or content-type
	// headers.
	Headers map[string]string `json:"headers"`
}

// reserved are the headers this connector owns.
var reserved = map[string]bool{
	"webhook-id": true, "webhook-timestamp": true, "webhook-signature": true,
	"idempotency-key": true, "content-type": true, "content-length": true, "host": true,
}

// Validate checks c; errors name keys relative to the block and never
// contain the secret.
func (c *Config) Validate() error {
	var errs []error
	if c.URL == "" {
		errs = append(errs, errors.New("url: required"))
	} else if u, err := url.Parse(c.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, errors.New("url: must be an absolute http:// or https:// URL"))
	}
	if c.Secret == "" && c.SecretFile == "" {
		errs = append(errs, errors.New("secret: required (or secret_file)"))
	}
	if c.Secret != "" {
		if _, err := DecodeSecret(string(c.Secret)); err != nil {
			errs = append(errs, fmt.Errorf("secret: %w", err))
		}
	}
	if c.Timeout < 0 {
		errs = append(errs, errors.New("timeout: must be positive"))
	}
	for k := range c.Headers {
		switch {
		case !validHeaderName(k):
			errs = append(errs, fmt.Errorf("headers.%s: not a valid header name", k))
		case reserved[strings.ToLower(k)]:
			errs = append(errs, fmt.Errorf("headers.%s: set by the connector itself; remove it", k))
		}
	}
	return errors.Join(errs...)
}

func validHeaderName(k string) bool {
	if k == "" {
		return false
	}
	for _, r := range k {
		if r > 0x7e || r <= ' ' || strings.ContainsRune(`"(),/:;<=>?@[\]{}`, r) {
			return false
		}
	}
	return true
}

// DecodeSecret returns the HMAC key of a Standard Webhooks secret
// ("whsec_" + standard base64). Its errors never contain the secret.
func DecodeSecret(s string) ([]byte, error) {
	b64, ok := strings.CutPrefix(strings.TrimSpace(s), secretPrefix)
	if !ok {
		return nil, errors.New(`must start with "whsec_" (Standard Webhooks format; the value is not shown)`)
	}
	key, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || len(key) == 0 {
		return nil, errors.New(`must be "whsec_" followed by standard base64 (the value is not shown)`)
	}
	return key, nil
}

// Connector posts grants and revokes to one URL. It is safe for
// concurrent use.
type Connector struct {
	name    string
	url     string
	key     []byte
	timeout time.Duration
	headers map[string]string
	http    connectors.Doer
	clock   access.Clock
}

var (
	_ access.Connector     = (*Connector)(nil)
	_ access.ParamsChecker = (*Connector)(nil)
)

// CheckParams accepts any grant parameters, which are passed through to
// the receiver as Payload.Params, but rejects empty or blank keys.
func (c *Connector) CheckParams(params map[string]string) error {
	return access.CheckParamNames(params)
}

// Factory builds a webhook connector from its configuration block; it has
// the connectors.Factory signature.
func Factory(name string, cfg connectors.Config) (access.Connector, error) {
	var c Config
	if err := cfg.Decode(&c); err != nil {
		return nil, err
	}
	secret, err := cfg.Secret("secret")
	if err != nil {
		return nil, err
	}
	key, err := DecodeSecret(secret)
	if err != nil {
		return nil, fmt.Errorf("connectors.%s.secret: %w", name, err)
	}
	timeout := c.Timeout.Std()
	if timeout == 0 {
		timeout = 10 * time.Second
	}
	if cfg.HTTP == nil || cfg.Clock == nil {
		return nil, fmt.Errorf("connectors.%s: built without an HTTP client or clock (use Registry.Build)", name)
	}
	return &Connector{
		name: name, url: c.URL, key: key, timeout: timeout, headers: c.Headers,
		http: cfg.HTTP, clock: cfg.Clock,
	}, nil
}

var _ connectors.Factory = Factory

// Grant implements access.Connector. It returns an empty receipt: this
// connector does not yet record what it changed.
func (c *Connector) Grant(ctx context.Context, g access.Grant) (access.Receipt, error) {
	return access.Receipt{}, c.applyGrant(ctx, g)
}

// Grant posts an access.grant event; 2xx means the receiver applied it.
func (c *Connector) applyGrant(ctx context.Context, g access.Grant) error {
	return c.send(ctx, "grant", g)
}

// Revoke posts an access.revoke event; 2xx, 404 and 410 mean the access
// is gone.
func (c *Connector) Revoke(ctx context.Context, g access.Grant) error {
	return c.send(ctx, "revoke", g)
}

// Payload is the JSON body of every request (DESIGN.md §6).
type Payload struct {
	Type       string            `json:"type"`
	GrantID    string            `json:"grant_id"`
	System     string            `json:"system"`
	Role       string            `json:"role"`
	Params     map[string]string `json:"params"`
	User       User              `json:"user"`
	Reason     string            `json:"reason"`
	ApprovedBy []string          `json:"approved_by"`
	GrantedAt  string            `json:"granted_at"` // RFC 3339, UTC
	ExpiresAt  string            `json:"expires_at"` // RFC 3339, UTC
	// Ticket is the request's ticket, present only when its role requires
	// one (the runbook's ticket:).
	Ticket *Ticket `json:"ticket,omitempty"`
}

// Ticket is the ticket in a Payload: ref always; title, url and status
// when the role's ticket.verify connector reported them at submission.
type Ticket struct {
	Ref    string `json:"ref"`
	Title  string `json:"title,omitempty"`
	URL    string `json:"url,omitempty"`
	Status string `json:"status,omitempty"`
}

// User is the person in a Payload.
type User struct {
	SlackID string `json:"slack_id"`
	Email   string `json:"email"`
	Name    string `json:"name"` // Slack real name
}

// NewPayload builds the body for op ("grant" or "revoke").
func NewPayload(op string, g access.Grant) Payload {
	p := Payload{
		Type: "access." + op, GrantID: g.ID, System: g.System, Role: g.Role,
		Params:     g.Params,
		User:       User{SlackID: g.User.SlackID, Email: g.User.Email, Name: g.User.Name},
		Reason:     g.Reason,
		ApprovedBy: g.ApprovedBy,
		GrantedAt:  rfc3339(g.GrantedAt),
		ExpiresAt:  rfc3339(g.ExpiresAt),
	}
	if p.Params == nil {
		p.Params = map[string]string{}
	}
	if t := g.Ticket; t != nil && t.Ref != "" {
		p.Ticket = &Ticket{Ref: t.Ref, Title: t.Title, URL: t.URL, Status: t.Status}
	}
	if p.ApprovedBy == nil {
		p.ApprovedBy = []string{}
	}
	return p
}

func rfc3339(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// Sign returns the webhook-signature value for one message:
// "v1," + base64(HMAC-SHA256(key, id + "." + timestamp + "." + body)).
func Sign(key []byte, id string, timestamp int64, body []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(id + "." + strconv.FormatInt(timestamp, 10) + "."))
	m.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
}

func (c *Connector) send(ctx context.Context, op string, g access.Grant) error {
	what := fmt.Sprintf("webhook %s: %s %s for %s", c.name, op, g.ID, person(g.User))
	if g.ID == "" || g.User.SlackID == "" {
		return access.PermanentError(fmt.Errorf("%s: the grant has no ID or no person", what))
	}
	body, err := json.Marshal(NewPayload(op, g))
	if err != nil {
		return access.PermanentError(fmt.Errorf("%s: encode body: %w", what, err))
	}
	id := g.ID + "." + op
	ts := c.clock.Now().Unix()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(body))
	if err != nil {
		return access.PermanentError(fmt.Errorf("%s: build request: %w", what, err))
	}
	for k, v := range c.headers {
		req.Header.Set(k, v)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("webhook-id", id)
	req.Header.Set("webhook-timestamp", strconv.FormatInt(ts, 10))
	req.Header.Set("webhook-signature", Sign(c.key, id, ts, body))
	req.Header.Set("Idempotency-Key", id)

	resp, err := c.http.Do(connectors.WithAttemptTimeout(ctx, c.timeout), req)
	if err == nil {
		done := resp.StatusCode >= 200 && resp.StatusCode <= 299 ||
			op == "revoke" && (resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusGone)
		if done {
			// Drain a little so the connection can be reused.
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
			resp.Body.Close()
			return nil
		}
	}
	return connectors.Classify(resp, err, what)
}

// person names the person in errors (owners must know whom it concerns).
func person(p access.Person) string {
	if p.Email != "" {
		return p.SlackID + " (" + p.Email + ")"
	}
	return p.SlackID
}
