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
// "<installation>.<request id>.<grant|revoke>": unique per accessbot
// installation (the store's installation ID, see NewFactory) and stable
// across every retry of one operation, inner and outer, so receivers can
// deduplicate; Idempotency-Key repeats it, which is also what lets the
// shared HTTP client retry the POST.
//
// The body is Payload: DESIGN.md §6's fields, plus, only when they apply,
// "ticket" ({"ref", "title", "url", "status"}; only ref is always there)
// when the role requires a ticket reference (the runbook's ticket:),
// "break_glass": true for access taken without approval (break_glass:),
// and "requested_by" (a Slack user ID) for a request made on the user's
// behalf (on_behalf:).
//
// Answers: any 2xx is done; on revoke 404 and 410 mean "already gone" and
// are done too; 408, 425, 429, 5xx and transport errors are retryable
// (Retry-After honoured up to the client's cap, then handed to the
// lifecycle's outer loop); any other 4xx is permanent.
//
// Receipts (DESIGN.md §6 "Receipts"): a 2xx answer to access.grant may
// carry {"receipt": {...}}, a JSON object of at most access.MaxReceiptBytes
// (compacted); it becomes Receipt.Data and is sent back as "receipt" in the
// body of the matching access.revoke. The revoke's "user" is the identity
// the grant used, with "current_email" when the person's email changed
// since.
//
// Nothing of the URL, the extra headers or the secret appears in an error:
// errors name the connector, the operation and the receiver's status.
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
	"regexp"
	"slices"
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
	} else if err := checkURL(c.URL); err != nil {
		errs = append(errs, fmt.Errorf("url: %w", err))
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

// checkURL accepts an absolute https URL, or plain http to a loopback
// host (a receiver on the same machine): anywhere else the signed bodies,
// people's emails and any header credentials would travel in clear text.
// A query string is allowed (some platforms put a token there); errors
// never echo the URL.
func checkURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return errors.New("must be an absolute https:// URL (the value is not shown)")
	}
	u.RawQuery, u.ForceQuery = "", false // allowed here, unlike for API bases
	if err := connectors.CheckBaseURL(u.String()); err != nil {
		return fmt.Errorf("%w; plain http is accepted only for localhost (the value is not shown)", err)
	}
	return nil
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
	name         string
	installation string
	url          string
	key          []byte
	timeout      time.Duration
	headers      map[string]string
	http         connectors.Doer
	clock        access.Clock
	// hidden are the strings no error may contain: the URL and its parts,
	// the header values and the secret.
	hidden []string
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

// NewFactory returns the factory of webhook connectors for one accessbot
// installation: installation is the store's installation ID, made when
// the store is created and kept by `store migrate`, which prefixes every
// webhook-id and Idempotency-Key (DESIGN.md §6). It must not be empty or
// contain a dot, which separates the parts of webhook-id.
func NewFactory(installation string) connectors.Factory {
	return func(name string, cfg connectors.Config) (access.Connector, error) {
		return build(name, cfg, installation)
	}
}

// Factory builds a webhook connector without an installation ID, for
// checking configuration only (`accessbot validate`): the connector it
// returns refuses every delivery with a permanent error, since its
// webhook-id could not be unique per installation. Programs that deliver
// use NewFactory.
func Factory(name string, cfg connectors.Config) (access.Connector, error) {
	return build(name, cfg, "")
}

var _ connectors.Factory = Factory

func build(name string, cfg connectors.Config, installation string) (access.Connector, error) {
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
	if strings.Contains(installation, ".") {
		return nil, fmt.Errorf("connectors.%s: the installation ID must not contain a dot", name)
	}
	timeout := c.Timeout.Std()
	if timeout == 0 {
		timeout = 10 * time.Second
	}
	if cfg.HTTP == nil || cfg.Clock == nil {
		return nil, fmt.Errorf("connectors.%s: built without an HTTP client or clock (use Registry.Build)", name)
	}
	return &Connector{
		name: name, installation: installation, url: c.URL, key: key, timeout: timeout, headers: c.Headers,
		http: cfg.HTTP, clock: cfg.Clock, hidden: hiddenWords(c.URL, c.Headers, secret),
	}, nil
}

// hiddenWords lists what errors must never show, longest first so that a
// URL is replaced whole before its host.
func hiddenWords(rawURL string, headers map[string]string, secret string) []string {
	words := []string{rawURL, secret, strings.TrimPrefix(secret, secretPrefix)}
	if u, err := url.Parse(rawURL); err == nil {
		words = append(words, u.Host, u.Hostname(), u.RawQuery)
		if u.EscapedPath() != "" && u.EscapedPath() != "/" {
			words = append(words, u.EscapedPath(), u.Path)
		}
		if u.User != nil {
			words = append(words, u.User.String())
		}
	}
	for _, v := range headers {
		words = append(words, v)
	}
	words = slices.DeleteFunc(words, func(w string) bool { return len(w) < 4 })
	slices.SortFunc(words, func(a, b string) int { return len(b) - len(a) })
	return slices.Compact(words)
}

// Grant posts an access.grant event; 2xx means the receiver applied it.
// The receipt carries the receiver's own receipt object, if it sent one,
// as Data. A retryable failure after the request may have reached the
// receiver comes with a receipt whose Note says so (Changed is true), so
// that the lifecycle's rollback reaches the receiver; a permanent answer
// (4xx) means nothing was applied and comes with the zero receipt.
func (c *Connector) Grant(ctx context.Context, g access.Grant) (access.Receipt, error) {
	body, err := c.send(ctx, "grant", g)
	if err != nil {
		if class, _ := access.Classify(err); class == access.Retryable && c.installation != "" && ctx.Err() == nil {
			// No answer, or a 408/425/429/5xx: the receiver may have
			// applied the grant. Say so, so that a grant that finally
			// fails is taken back (invariant 9).
			return access.Receipt{Note: "the receiver may have applied the grant (no clear answer)"}, err
		}
		return access.Receipt{}, err
	}
	return c.receipt(g, body)
}

// Revoke posts an access.revoke event carrying the grant's receipt; 2xx,
// 404 and 410 mean the access is gone.
func (c *Connector) Revoke(ctx context.Context, g access.Grant) error {
	_, err := c.send(ctx, "revoke", g)
	return err
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
	// Receipt is, on access.revoke, the receipt object the receiver
	// answered the grant with; absent when it sent none.
	Receipt json.RawMessage `json:"receipt,omitempty"`
	// Ticket is the request's ticket, present only when its role requires
	// one (the runbook's ticket:).
	Ticket *Ticket `json:"ticket,omitempty"`
	// BreakGlass is true, and present only, for access taken by breaking
	// the glass (the runbook's break_glass:): nobody approved it.
	BreakGlass bool `json:"break_glass,omitempty"`
	// RequestedBy is the Slack user ID of the person who asked for user
	// (the runbook's on_behalf:), present only then.
	RequestedBy string `json:"requested_by,omitempty"`
}

// Ticket is the ticket in a Payload: ref always; title, url and status
// when the role's ticket.verify connector reported them at submission.
type Ticket struct {
	Ref    string `json:"ref"`
	Title  string `json:"title,omitempty"`
	URL    string `json:"url,omitempty"`
	Status string `json:"status,omitempty"`
}

// User is the person in a Payload: on access.revoke, the identity the
// grant used.
type User struct {
	SlackID string `json:"slack_id"`
	Email   string `json:"email"`
	Name    string `json:"name"` // Slack real name
	// CurrentEmail is set on access.revoke when the person's email
	// changed since the grant (Email is then the address at grant time).
	CurrentEmail string `json:"current_email,omitempty"`
}

// NewPayload builds the body for op ("grant" or "revoke"). For a revoke it
// carries g.Receipt's Data as "receipt" and g.User.CurrentEmail as
// user.current_email when it differs from the email the grant used.
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
	p.BreakGlass, p.RequestedBy = g.BreakGlass, g.RequestedBy
	if p.ApprovedBy == nil {
		p.ApprovedBy = []string{}
	}
	if op == "revoke" {
		if ce := g.User.CurrentEmail; ce != "" && !strings.EqualFold(ce, g.User.Email) {
			p.User.CurrentEmail = ce
		}
		if g.Receipt != nil && len(g.Receipt.Data) > 0 && json.Valid(g.Receipt.Data) {
			p.Receipt = json.RawMessage(g.Receipt.Data)
		}
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

// MessageID returns the webhook-id (and Idempotency-Key) of operation op
// ("grant" or "revoke") of request id in installation:
// "<installation>.<request id>.<op>".
func MessageID(installation, id, op string) string {
	return installation + "." + id + "." + op
}

// AnswerError is a non-2xx answer from the receiver (wrapped in an
// access.ConnectorError). Its text names the connector, the operation and
// the status, with at most a short sanitised excerpt of the receiver's
// message; never the URL, headers or secret.
type AnswerError struct {
	Op         string
	StatusCode int
	Message    string
}

func (e *AnswerError) Error() string {
	s := fmt.Sprintf("%s: the receiver answered %d %s", e.Op, e.StatusCode, http.StatusText(e.StatusCode))
	if e.StatusCode == http.StatusUnauthorized || e.StatusCode == http.StatusForbidden {
		s += " (it rejected the request: check the connector's secret and headers)"
	}
	if e.Message != "" {
		s += fmt.Sprintf(": %q", e.Message)
	}
	return s
}

// maxAnswer bounds how much of a 2xx grant answer is read for a receipt.
const maxAnswer = 64 << 10

// send posts op for g and returns the body of a 2xx answer (up to
// maxAnswer bytes; nil on revoke).
func (c *Connector) send(ctx context.Context, op string, g access.Grant) ([]byte, error) {
	what := fmt.Sprintf("webhook %s: %s %s for %s", c.name, op, g.ID, person(g.User))
	switch {
	case g.ID == "" || g.User.SlackID == "":
		return nil, access.PermanentError(fmt.Errorf("%s: the grant has no ID or no person", what))
	case c.installation == "":
		return nil, access.PermanentError(fmt.Errorf("%s: the connector was built without the installation ID that makes webhook-id unique (a start-up wiring bug; see webhook.NewFactory)", what))
	}
	body, err := json.Marshal(NewPayload(op, g))
	if err != nil {
		return nil, access.PermanentError(fmt.Errorf("%s: encode body: %w", what, err))
	}
	id := MessageID(c.installation, g.ID, op)
	ts := c.clock.Now().Unix()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(body))
	if err != nil {
		return nil, access.PermanentError(fmt.Errorf("%s: the request could not be built (check the connector's url)", what))
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
	if err != nil {
		connectors.Drain(resp)
		return nil, access.RetryableError(c.transportError(ctx, what, err), 0)
	}
	defer connectors.Drain(resp)
	switch code := resp.StatusCode; {
	case code >= 200 && code <= 299:
		if op != "grant" {
			return nil, nil
		}
		b, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
		if err != nil {
			// The receiver applied the grant (2xx); only its body is
			// lost. Without it the receipt object is unknown: retry
			// (webhook-id is the same, so the receiver can deduplicate).
			return nil, access.RetryableError(fmt.Errorf("%s: the receiver answered %d but its body could not be read: %s", what, code, c.scrub(err.Error())), 0)
		}
		return b, nil
	case op == "revoke" && (code == http.StatusNotFound || code == http.StatusGone):
		return nil, nil
	}
	return nil, c.answerError(what, resp)
}

// answerError classifies a non-2xx answer (DESIGN.md §6): 408, 425, 429
// and 5xx are retryable (Retry-After on 429 and 503), the rest permanent.
func (c *Connector) answerError(what string, resp *http.Response) error {
	e := &AnswerError{Op: what, StatusCode: resp.StatusCode}
	// connectors.Classify extracts and sanitises the receiver's message;
	// the request is left out so that no URL reaches the error.
	probe := &http.Response{StatusCode: resp.StatusCode, Header: resp.Header, Body: resp.Body}
	var se *connectors.StatusError
	if errors.As(connectors.Classify(probe, nil, what), &se) {
		e.Message = c.scrub(se.Message)
	}
	if !connectors.RetryableStatus(resp.StatusCode) {
		return access.PermanentError(e)
	}
	var wait time.Duration
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable {
		wait, _ = connectors.ParseRetryAfter(resp.Header.Get("Retry-After"), c.clock.Now())
	}
	return access.RetryableError(e, wait)
}

// transportError describes a failure with no answer without the URL: the
// cause's text is scrubbed of every hidden word and of addresses, and a
// context error stays reachable with errors.Is.
func (c *Connector) transportError(ctx context.Context, what string, err error) error {
	cause := err
	var ue *url.Error
	if errors.As(err, &ue) {
		cause = ue.Err
	}
	msg := c.scrub(cause.Error())
	if cerr := ctx.Err(); cerr != nil {
		return fmt.Errorf("%s: no answer from the receiver: %s: %w", what, msg, cerr)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%s: no answer from the receiver in time: %w", what, context.DeadlineExceeded)
	}
	return fmt.Errorf("%s: no answer from the receiver: %s", what, msg)
}

// address matches IPv4 and bracketed IPv6 addresses with an optional
// port, as dial errors print them.
var address = regexp.MustCompile(`\b(?:\d{1,3}\.){3}\d{1,3}(?::\d+)?\b|\[[0-9A-Fa-f:.%]+\](?::\d+)?`)

// scrub removes every hidden word and address from s.
func (c *Connector) scrub(s string) string {
	for _, w := range c.hidden {
		s = strings.ReplaceAll(s, w, "[receiver]")
	}
	return address.ReplaceAllString(s, "[receiver]")
}

// receipt makes the grant's receipt from the body of a 2xx answer. A body
// that is not a JSON object, or has no "receipt" (or a null one), gives a
// receipt without Data. A "receipt" that is not an object of at most
// access.MaxReceiptBytes breaks the contract: the grant was applied, so
// the error is permanent and comes with a receipt that records the change,
// which makes the lifecycle take it back (invariant 9).
func (c *Connector) receipt(g access.Grant, body []byte) (access.Receipt, error) {
	rc := access.Receipt{Note: "the receiver applied the grant"}
	var answer struct {
		Receipt json.RawMessage `json:"receipt"`
	}
	if len(bytes.TrimSpace(body)) == 0 || json.Unmarshal(body, &answer) != nil {
		return rc, nil // not a JSON object: nothing in it is ours to read
	}
	raw := bytes.TrimSpace(answer.Receipt)
	if len(raw) == 0 || string(raw) == "null" {
		return rc, nil
	}
	var compact bytes.Buffer
	if raw[0] != '{' || json.Compact(&compact, raw) != nil || compact.Len() > access.MaxReceiptBytes {
		rc.Note = "the receiver applied the grant, but its receipt was refused"
		return rc, access.PermanentError(fmt.Errorf("webhook %s: grant %s for %s: the receiver's answer carries a \"receipt\" that is not a JSON object of at most %d bytes (DESIGN.md §6); the grant is taken back",
			c.name, g.ID, person(g.User), access.MaxReceiptBytes))
	}
	rc.Data = compact.Bytes()
	rc.Note = "the receiver applied the grant and sent a receipt"
	return rc, nil
}

// person names the person in errors (owners must know whom it concerns).
func person(p access.Person) string {
	if p.Email != "" {
		return p.SlackID + " (" + p.Email + ")"
	}
	return p.SlackID
}
