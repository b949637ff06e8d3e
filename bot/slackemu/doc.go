// Package slackemu is a local, in-memory Slack emulator that speaks the real
// wire protocols so that the real github.com/slack-go/slack v0.35.0 client
// (Socket Mode over a real websocket, Web API over HTTP) can be tested without
// reaching Slack.
//
// The behaviour follows /work/shared/reference/slack-protocol.md (cited below
// as "protocol §N"); §8 of that document is the specification of this
// emulator. In short:
//
//   - POST /api/apps.connections.open takes the app-level token (xapp-…) in the
//     Authorization header only and returns a single-use ws:// ticket URL
//     (protocol §1.1, https://docs.slack.dev/reference/methods/apps.connections.open).
//   - GET /link/?ticket=… upgrades to a websocket, sends "hello" first, sends
//     WebSocket PINGs every PingInterval, delivers envelopes
//     (slash_commands, interactive, events_api) and interprets acks matched by
//     envelope_id (protocol §1.3–§1.5).
//   - POST /api/<method> implements the Web API methods the bot uses, with
//     form or JSON bodies, token in the form or a Bearer header, scope checks,
//     Block Kit validation and Slack's real error codes (protocol §3, §4).
//   - POST /respond/<id> implements response_url (5 uses in 30 minutes,
//     protocol §3 "response_url").
//   - POST /upload/<id> is the upload URL returned by files.getUploadURLExternal.
//
// Tests drive the emulator through a Go API: seeding (AddUser, AddChannel,
// AddUserGroup), acting as a user (SlashCommand, ClickButton, SubmitView, …,
// each returning an *Envelope whose WaitAck reports the ack and its latency),
// inspection (Messages, Ephemerals, OpenViews, Calls, Failures, …) and fault
// injection (FailNext, RateLimit, HTTPStatus, Latency, Disconnect,
// DropConnection, StopPings).
//
// All exported methods are safe for concurrent use. Time-based rules that the
// emulator owns (trigger_id validity, response_url expiry, per-channel posting
// rate, message timestamps) use the injectable Options.Clock; the 3 s ack
// deadline is measured in real time because the client under test acks in real
// time.
package slackemu
