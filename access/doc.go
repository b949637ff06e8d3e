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
//	   │ approve (last step met) · break_glass (no step)
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
// The runbook's admission policy runs before a request exists (admission.go):
// time windows, ticket references and on-call approval refuse it or decide
// how it is approved. A break-glass request (breakglass.go) goes from
// pending to approved by the requester alone, and an extension of it is an
// ordinary request. A request made on someone's behalf (behalf.go) is the
// beneficiary's (Requester); the person who asked (RequestedBy) approves
// no step of it.
//
// # Invariants
//
//  1. One transition table, one write path: every change of state is
//     Apply(request, Transition) inside Service.transition (Store.Update),
//     which persists the request, its history entry, an audit record and
//     the notices it causes in one transaction, then arms the next
//     deadline. A new request is created in its first allowed state in one
//     write (approval: auto, an on-call requester and break-glass are
//     created approved).
//  2. Durable first, effects after: the transition that authorises an effect
//     (grant, revoke, message) is committed before the effect runs, on the
//     service's workers (never a Slack handler), and only the worker that
//     claimed the due request performs it. Effects are idempotent and keyed
//     by request ID.
//  3. The timer wheel is a cache: the store's deadline index is the truth;
//     Service.Reconcile re-arms timers and catches up anything overdue.
//  4. A revocation is never dropped or faked: a failed revoke stays in
//     revoking, is retried with capped, jittered backoff forever, and is
//     reported to the system owners.
//  5. Overlapping grants are counted: an entitlement (connector, grant
//     parameters, person) is removed only when the last grant covering it ends.
//  6. The clock starts at grant, not at request or approval.
//  7. Time comes from an injected Clock.
//  8. Revoke exactly what was granted: the connector's Receipt is stored
//     with the transition to active and the revoke acts on it; access held
//     before the grant is left in place.
//  9. No half-applied grant: a grant that failed after changing something
//     is rolled back (approved → revoking → grant_failed).
//  11. People told, even across crashes: notices live in the request's
//     outbox, written with the transition, and leave it only when Slack
//     took them (outbox.go).
package access
