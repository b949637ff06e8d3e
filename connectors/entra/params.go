package entra

import (
	"errors"
	"fmt"
	"regexp"

	"github.com/accessbot/accessbot/access"
)

// ParamGroupID is the grant parameter naming the group.
const ParamGroupID = "group_id"

// CheckParams checks a role's grant parameters without contacting Graph:
// exactly group_id, the group's object ID (a GUID), required. Unknown keys are errors, with a did-you-mean.
func (c *Connector) CheckParams(params map[string]string) error {
	_, err := groupID(params)
	return errors.Join(append(access.UnknownParams(params, ParamGroupID), err)...)
}

// groupID returns the group_id grant parameter, checked; Grant, Revoke,
// Check and CheckParams all read it through here. Errors start with the key.
func groupID(params map[string]string) (string, error) {
	id := params[ParamGroupID]
	switch {
	case id == "":
		return "", fmt.Errorf("%s: required (set it in the role's grant: map)", ParamGroupID)
	case !groupIDRE.MatchString(id):
		return "", fmt.Errorf("%s: %q is not a group object ID (a GUID such as 02bd9fd6-8f93-4758-87c3-1fb73740a315)", ParamGroupID, id)
	}
	return id, nil
}

// groupIDRE matches an Entra object ID, a GUID.
var groupIDRE = regexp.MustCompile(`^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$`)
