package salesforce

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/accessbot/accessbot/access"
)

// CheckParams checks a role's grant parameters without contacting
// Salesforce: exactly one of permission_set and permission_set_group, each
// an API name (a letter, then letters, digits and underscores) or a record
// Id of the right kind (0PS… for a permission set, 0PG… for a group).
// Unknown keys are errors, with a did-you-mean.
func (c *Connector) CheckParams(params map[string]string) error {
	_, _, err := permissionSet(params)
	return errors.Join(append(access.UnknownParams(params, ParamPermissionSet, ParamPermissionSetGroup), err)...)
}

// permissionSet returns the permission_set and permission_set_group grant
// parameters, trimmed and checked (exactly one is set); Grant, Revoke,
// Check and CheckParams all read them through here. Errors start with the
// key.
func permissionSet(params map[string]string) (ps, psg string, err error) {
	ps, psg = strings.TrimSpace(params[ParamPermissionSet]), strings.TrimSpace(params[ParamPermissionSetGroup])
	switch {
	case ps == "" && psg == "":
		return "", "", fmt.Errorf("%s: required (or %s; set exactly one)", ParamPermissionSet, ParamPermissionSetGroup)
	case ps != "" && psg != "":
		return "", "", fmt.Errorf("%s: set only one of %s and %s", ParamPermissionSetGroup, ParamPermissionSet, ParamPermissionSetGroup)
	case ps != "":
		err = checkName(ParamPermissionSet, ps, "0PS", "0PG", ParamPermissionSetGroup)
	default:
		err = checkName(ParamPermissionSetGroup, psg, "0PG", "0PS", ParamPermissionSet)
	}
	return ps, psg, err
}

// apiNameRE matches a Salesforce API name (record Ids match idRE).
var apiNameRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]*$`)

// checkName checks one parameter's value: an API name, or an Id with
// prefix; an Id with other's prefix belongs in the other parameter.
func checkName(key, v, prefix, otherPrefix, other string) error {
	switch {
	case !apiNameRE.MatchString(v) && !idRE.MatchString(v):
		return fmt.Errorf("%s: %q is neither an API name nor a record Id (%s…)", key, v, prefix)
	case strings.HasPrefix(v, otherPrefix) && idRE.MatchString(v):
		return fmt.Errorf("%s: %q is an Id of the other kind (%s…); use %s", key, v, otherPrefix, other)
	}
	return nil
}
