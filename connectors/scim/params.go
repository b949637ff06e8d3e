package scim

import (
	"errors"
	"fmt"

	"github.com/accessbot/accessbot/access"
)

// ParamGroupID is the grant parameter naming the group.
const ParamGroupID = "group_id"

// CheckParams checks a role's grant parameters without contacting the
// service: exactly group_id, the group's SCIM id, required. A SCIM id is
// opaque and server-defined, so its value is not checked further. Unknown
// keys are errors, with a did-you-mean.
func (c *Connector) CheckParams(params map[string]string) error {
	_, err := groupID(params)
	return errors.Join(append(access.UnknownParams(params, ParamGroupID), err)...)
}

// groupID returns the group_id grant parameter, checked; Grant, Revoke,
// Check and CheckParams all read it through here. Errors start with the key.
func groupID(params map[string]string) (string, error) {
	id := params[ParamGroupID]
	if id == "" {
		return "", fmt.Errorf("%s: required (the group's SCIM id, in the role's grant: map)", ParamGroupID)
	}
	return id, nil
}
