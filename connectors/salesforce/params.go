package salesforce

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/connectors"
)

// apiNameRE matches a Salesforce API name (record Ids match idRE).
var apiNameRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]*$`)

// grantParams are the two parameters, of which exactly one is set.
var grantParams = connectors.Params{
	{Key: ParamPermissionSet, What: "the permission set's API name or Id", Optional: true, Check: name("0PS", "0PG", ParamPermissionSetGroup)},
	{Key: ParamPermissionSetGroup, What: "the group's DeveloperName or Id", Optional: true, Check: name("0PG", "0PS", ParamPermissionSet)},
}

// name checks one parameter's value: an API name, or an Id with prefix;
// an Id with other's prefix belongs in the other parameter.
func name(prefix, otherPrefix, other string) func(string) error {
	return func(v string) error {
		switch {
		case !apiNameRE.MatchString(v) && !idRE.MatchString(v):
			return fmt.Errorf("%q is neither an API name nor a record Id (%s…)", v, prefix)
		case strings.HasPrefix(v, otherPrefix) && idRE.MatchString(v):
			return fmt.Errorf("%q is an Id of the other kind (%s…); use %s", v, otherPrefix, other)
		}
		return nil
	}
}

// exactlyOne is the rule the two parameters share; "" when it holds.
func exactlyOne(ps, psg string) error {
	switch {
	case ps == "" && psg == "":
		return fmt.Errorf("%s: required (or %s; set exactly one)", ParamPermissionSet, ParamPermissionSetGroup)
	case ps != "" && psg != "":
		return fmt.Errorf("%s: set only one of %s and %s", ParamPermissionSetGroup, ParamPermissionSet, ParamPermissionSetGroup)
	}
	return nil
}

// CheckParams checks a role's grant parameters without contacting
// Salesforce: exactly one of permission_set and permission_set_group, each
// an API name (a letter, then letters, digits and underscores) or a record
// Id of the right kind (0PS… for a permission set, 0PG… for a group).
// Unknown keys are errors, with a did-you-mean.
func (c *Connector) CheckParams(params map[string]string) error {
	err := grantParams.CheckParams(params)
	return errors.Join(err, exactlyOne(strings.TrimSpace(params[ParamPermissionSet]), strings.TrimSpace(params[ParamPermissionSetGroup])))
}

// readParams returns the permission_set and permission_set_group grant
// parameters, checked (exactly one is set), for op; Grant, Revoke and
// Check read them through here.
func readParams(op string, params map[string]string) (ps, psg string, err error) {
	v, err := grantParams.Read(op, params)
	if err != nil {
		return "", "", err
	}
	ps, psg = v[ParamPermissionSet], v[ParamPermissionSetGroup]
	if err := exactlyOne(ps, psg); err != nil {
		return "", "", access.PermanentError(fmt.Errorf("%s: grant parameter %w", op, err))
	}
	return ps, psg, nil
}
