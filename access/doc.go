// Package access is accessbot's domain core: requests for temporary access,
// the runbook that says who may request what and who approves it, the
// approval policy, and the lifecycle service that moves a request from
// "asked" to "access removed". It imports only the standard library; the
// adapters (bot for Slack, store for bbolt, connectors for target systems,
// internal/wheel for timers) implement the small interfaces declared here
// and never import each other.
//
// # Lifecycle
//
//	pending ──deny──────────────► denied
//	   │ ────cancel────────────► cancelled
//	   │ ────approval_timeout──► timed_out
//	   │ approve (last step met)
//	   ▼
//	approved ──grant fails for good──► grant_failed
//	   │ grant applied (expires_at = granted_at + duration)
//	   ▼
//	active ──expire / revoke / I'm done──► revoking ──revoke applied──► expired | revoked
//	                                          │
//	                                          └─ revoke fails: stays revoking, retried
//	                                             with backoff forever, owners alerted
//
// An extension is a new request for the same system and role that points at
// the grant it extends (Request.Extends); because overlapping grants of one
// entitlement are counted (invariant 5), the old grant ends without removing
// access the extension still covers.
//
// # Invariants
//
//  1. One transition table, one write path: every change of state is
//     Apply(request, Transition) inside Store.Update, which persists the
//     request, its history entry and an audit record in one transaction.
//  2. Durable first, effects after: the transition that authorises an effect
//     (grant, revoke, message) is committed before the effect runs, and only
//     the caller whose Store.Update made the transition performs it. Effects
//     are idempotent and keyed by request ID.
//  3. The timer wheel is a cache: the store's deadline index is the truth;
//     Service.Reconcile re-arms timers and catches up anything overdue.
//  4. A revocation is never dropped or faked: a failed revoke stays in
//     revoking, is retried with capped, jittered backoff forever, and is
//     reported to the system owners.
//  5. Overlapping grants are counted: an entitlement (connector, grant
//     parameters, person) is removed only when the last grant covering it ends.
//  6. The clock starts at grant, not at request or approval.
//  7. Time comes from an injected Clock.
package access
