package postgres

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/accessbot/accessbot/access"
)

// CheckParams checks a role's grant parameters without contacting the
// server: exactly role, required, a valid (always quoted, so
// case-sensitive) identifier of at most 63 bytes. Unknown keys are errors,
// with a did-you-mean.
func (c *Connector) CheckParams(params map[string]string) error {
	_, err := roleParam(params)
	return errors.Join(append(access.UnknownParams(params, ParamRole), err)...)
}

// roleParam returns the role grant parameter, checked; Grant, Revoke,
// Check and CheckParams all read it through here. Errors start with the key.
func roleParam(params map[string]string) (string, error) {
	role := params[ParamRole]
	switch {
	case role == "":
		return "", fmt.Errorf("%s: required (the role to grant, in the role's grant: map)", ParamRole)
	case len(role) > maxIdentifier:
		return "", fmt.Errorf("%s: not a valid role name: longer than %d bytes (PostgreSQL would truncate it)", ParamRole, maxIdentifier)
	case strings.ContainsRune(role, 0) || !utf8.ValidString(role):
		return "", fmt.Errorf("%s: not a valid role name", ParamRole)
	}
	return role, nil
}
