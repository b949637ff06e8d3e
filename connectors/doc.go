// Package connectors holds what every target-system connector shares: the
// Registry that builds connector instances from the runbook's
// `connectors:` block, the typed, strict Config decoding each connector
// uses for its own block, and the shared HTTP client with its error
// classification. One sub-package per target system implements
// access.Connector (connectors/memory, connectors/webhook, ...); the
// conformance sub-package is the behaviour every one of them must pass.
//
// Connectors import access and this package, never bot, store or each
// other; cmd wires them by registering their factories:
//
//	reg := connectors.NewRegistry()
//	reg.Add("memory", memory.Factory)
//	reg.Add("webhook", webhook.Factory)
//	c, err := reg.Build("automation", "webhook", raw, connectors.Env{})
//
// # Shared plumbing
//
// What every connector would otherwise write again lives here, so that a
// rule is implemented once:
//
//   - Config.Decode / DecodeHTTP / DecodeStateful and Timeout: the factory
//     preamble (strict decoding, the lent HTTP client, clock and State);
//     Config.Secret for `KEY` / `KEY_file` secrets; CheckBaseURL, TrimBase.
//   - Params: a connector's grant parameters, checked in one place for
//     CheckParams (start-up) and for Grant, Revoke and Check (Params.Get).
//   - PersonName, Op, PersonOp: how errors name the person and operation.
//   - API, Credentials, StaticAuth, ClientCredentials, SendJSON: every HTTP
//     call, with credentials, a 401 answered by one refresh, vendor
//     headers, error bodies (JSONCall.ErrorOut) and rate-limit hints.
//   - Users: resolving a person to the target's user ID, receipt first and
//     by email only for records granted before receipts existed, where
//     "nobody has this email" is a permanent access.ErrUnknownUser (DESIGN.md
//     §4 invariant 8); cached for UserCacheTTL.
//   - Intents, GrantMembership, GroupMembers: the grant of a group
//     membership, which tells pre-existing access (Receipt.PreExisting,
//     never revoked) from the grant's own earlier attempt (a durable record
//     written before the change), and returns partial receipts for
//     rollback (invariant 9).
//   - Lookup, LookupOnly, LookupTimeout, OnCallConfig, OnCallCache: the
//     lookup connectors (on call, tickets), whose GETs go through API.Send
//     like every other call and whose failures are *access.LookupError.
//
// # Retries
//
// Two loops retry a failed connector call. The short inner loop lives in
// HTTPClient (a few attempts within seconds, Retry-After honoured up to a
// cap). The durable outer loop is the lifecycle's: it persists the attempt
// count and next attempt time and retries forever for revokes (DESIGN.md
// §4 invariant 4). A connector therefore returns as soon as the inner loop
// gives up, with the failure classified by access.RetryableError /
// access.PermanentError (see Classify), and never sleeps for long itself.
//
// # Secrets
//
// Errors built here never contain secret values, request bodies or URL
// query strings; see Classify and Config.Secret.
package connectors
