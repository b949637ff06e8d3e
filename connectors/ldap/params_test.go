package ldap_test

import (
	"strings"
	"testing"

	"github.com/accessbot/accessbot/connectors/ldap"
)

func TestCheckParams(t *testing.T) {
	c := &ldap.Connector{}
	for _, tc := range []struct {
		name   string
		params map[string]string
		want   string // prefix of the error; "" for none
	}{
		{"valid", map[string]string{"group_dn": "cn=eng,ou=groups,dc=example,dc=com"}, ""},
		{"missing", map[string]string{}, "group_dn: required"},
		{"unknown", map[string]string{"group_dn": "cn=eng,dc=example,dc=com", "groupdn": "x"}, "groupdn: unknown grant parameter (did you mean group_dn?)"},
		{"malformed", map[string]string{"group_dn": "engineers"}, "group_dn: \"engineers\" is not a valid DN"},
	} {
		err := c.CheckParams(tc.params)
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.HasPrefix(err.Error(), tc.want)) {
			t.Errorf("%s: CheckParams(%v) = %v, want %q", tc.name, tc.params, err, tc.want)
		}
	}
}
