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
