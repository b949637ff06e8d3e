// Package web serves the sandbox: a Slack-like workspace in a browser over
// a running *slackemu.Server (DESIGN.md §1, §8). It shows what the bot
// posted (messages, ephemeral replies, modals, App Home) rendered from
// Block Kit as a Slack client would, and acts as the person chosen in the
// person switcher through the emulator's own simulation of people
// (SlashCommand, ClickButton, SelectOption, SubmitView, CloseView,
// OpenAppHome), so the bot under test sees exactly what Slack would send.
//
// The page also shows three things Slack does not: the simulated clock
// (moved forward from the page), what each connector stand-in would have
// done, and the audit log with its hash chain verified. Whoever wires the
// sandbox provides them through the small interfaces below (Clock,
// ConnectorLog, AuditLog); this package knows nothing of the bot, the
// store or the connectors, and imports only slackemu and the standard
// library.
//
// Updates reach the page without reloading through server-sent events:
// every change of the emulator (any Web API call the bot makes, any ack)
// and every Notify wakes the open pages, which fetch the new state.
// All assets are embedded; the page loads nothing from the internet.
package web

import (
	"context"
	"time"
)

// Clock is the sandbox's simulated time, moved forward only from the page.
// Implementations must be safe for concurrent use.
type Clock interface {
	// Now is the current simulated time.
	Now() time.Time
	// Advance moves the time forward by d (> 0) and runs everything that
	// comes due on the way, in time order (reminders, expiry warnings,
	// expiries, retries, digests), so that what a person would have seen
	// at each moment happens. It returns once that work is done or has
	// been handed to the bot's workers; an error is shown on the page.
	Advance(ctx context.Context, d time.Duration) error
	// NextDue is the next scheduled event after Now; ok is false when
	// nothing is scheduled.
	NextDue(ctx context.Context) (due Due, ok bool)
}

// Due is a scheduled event: when, and what it is in a few words
// ("AR-1001: expiry", "digest for crm").
type Due struct {
	At   time.Time
	What string
}

// ConnectorCall is one grant or revoke a connector stand-in received.
type ConnectorCall struct {
	At        time.Time // simulated time of the call
	Connector string    // the runbook's connector name
	Type      string    // its type (okta_group, webhook, …)
	Op        string    // "grant" or "revoke" (a rollback is a revoke with Rollback set)
	Rollback  bool
	Request   string // request ID, the idempotency key
	System    string
	Role      string
	Person    string            // who: name and email as the target would see them
	Params    map[string]string // the role's grant parameters
	Receipt   string            // what the grant returned (or the revoke acted on), readable
	Result    string            // "done", "awaiting an owner's Done", or the error
	Live      bool              // the connector is real: the call reached its target
}

// ConnectorLog lists what the connector stand-ins were asked to do.
type ConnectorLog interface {
	// ConnectorCalls returns every call so far, oldest first. The caller
	// must not modify the result.
	ConnectorCalls() []ConnectorCall
}

// AuditRecord is one audit log record as the page lists it.
type AuditRecord struct {
	Seq     int64
	Time    time.Time
	Event   string
	Actor   string // a Slack user ID, or "bot"
	Request string
	System  string
	Role    string
	Note    string
}

// AuditLog reads the audit log of the store behind the bot.
type AuditLog interface {
	// AuditRecords returns every record, oldest first.
	AuditRecords(ctx context.Context) ([]AuditRecord, error)
	// VerifyAudit checks the hash chain and returns the number of records
	// verified, or an error saying where the chain breaks.
	VerifyAudit(ctx context.Context) (int, error)
}
