package okta

import (
	"errors"
	"fmt"
	"regexp"

	"github.com/accessbot/accessbot/access"
)

// ParamGroupID is the grant parameter naming the group.
const ParamGroupID = "group_id"

// CheckParams checks a role's grant parameters without contacting Okta:
// exactly group_id, an Okta group ID (00g…), required. Unknown keys are errors, with a did-you-mean.
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
		return "", fmt.Errorf("%s: %q is not an Okta group ID (00g…)", ParamGroupID, id)
	}
	return id, nil
}

// groupIDRE matches Okta group IDs: "00g" and alphanumerics.
var groupIDRE = regexp.MustCompile(`^00g[A-Za-z0-9]+$`)
