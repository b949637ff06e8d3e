package connectors

import (
	"fmt"

	"github.com/accessbot/accessbot/access"
)

// PersonName names a person in error texts, for the owners who read
// them: "U0ALICE01 (alice@example.com)", or the Slack ID alone.
func PersonName(p access.Person) string {
	if p.Email != "" {
		return p.SlackID + " (" + p.Email + ")"
	}
	return p.SlackID
}

// Op describes one connector operation at the start of its errors:
// "okta crm-okta: grant AR-1042 for U0ALICE01 (alice@example.com)".
// kind is the connector's short name, instance the runbook's NAME, op
// "grant", "revoke", "check" and so on.
func Op(kind, instance, op string, g access.Grant) string {
	return fmt.Sprintf("%s %s: %s %s for %s", kind, instance, op, g.ID, PersonName(g.User))
}

// PersonOp is Op for a lookup about a person outside any grant (the
// AccountChecker and ManagerLookup capabilities).
func PersonOp(kind, instance, op string, p access.Person) string {
	return fmt.Sprintf("%s %s: %s for %s", kind, instance, op, PersonName(p))
}
