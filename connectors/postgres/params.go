package postgres

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/accessbot/accessbot/connectors"
)

// grantParams is the connector's one grant parameter, role: a valid
// (always quoted, so case-sensitive) identifier of at most 63 bytes.
var grantParams = connectors.Params{{
	Key: ParamRole, What: "the role to grant",
	Check: func(role string) error {
		switch {
		case len(role) > maxIdentifier:
			return fmt.Errorf("not a valid role name: longer than %d bytes (PostgreSQL would truncate it)", maxIdentifier)
		case strings.ContainsRune(role, 0) || !utf8.ValidString(role):
			return errors.New("not a valid role name")
		}
		return nil
	},
}}

// CheckParams checks a role's grant parameters without contacting the
// server: exactly role, required, a valid (always quoted, so
// case-sensitive) identifier of at most 63 bytes. Unknown keys are errors,
// with a did-you-mean.
func (c *Connector) CheckParams(params map[string]string) error {
	return grantParams.CheckParams(params)
}
