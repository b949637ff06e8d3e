package google

import (
	"errors"
	"fmt"
	"regexp"

	"github.com/accessbot/accessbot/access"
)

// ParamGroup is the grant parameter naming the group.
const ParamGroup = "group"

// CheckParams checks a role's grant parameters without contacting Google:
// exactly group, required, an email address (the group's or an alias) or a
// Directory group ID. Unknown keys are errors, with a did-you-mean.
func (c *Connector) CheckParams(params map[string]string) error {
	_, err := groupKey(params)
	return errors.Join(append(access.UnknownParams(params, ParamGroup), err)...)
}

// groupKey returns the group grant parameter, checked; Grant, Revoke,
// Check and CheckParams all read it through here. Errors start with the key.
func groupKey(params map[string]string) (string, error) {
	key := params[ParamGroup]
	switch {
	case key == "":
		return "", fmt.Errorf("%s: required (the group's email or ID, in the role's grant: map)", ParamGroup)
	case !emailRE.MatchString(key) && !groupIDRE.MatchString(key):
		return "", fmt.Errorf("%s: %q is neither a group email (eng@example.com) nor a group ID", ParamGroup, key)
	}
	return key, nil
}

var (
	// emailRE is a plausible email address: local@domain.tld, no spaces.
	emailRE = regexp.MustCompile(`^[^@\s]+@[^@\s]+\.[^@\s.]+$`)
	// groupIDRE is a Directory API group ID (e.g. 03ep43zb2r8a0ke).
	groupIDRE = regexp.MustCompile(`^[A-Za-z0-9]+$`)
)
