package looker_test

import (
	"strings"
	"testing"

	"github.com/accessbot/accessbot/connectors/looker"
)

func TestCheckParams(t *testing.T) {
	c := &looker.Connector{}
	for _, tc := range []struct {
		name   string
		params map[string]string
		want   string // prefix of the error; "" for none
	}{
		{"valid", map[string]string{"role_id": "5"}, ""},
		{"missing", map[string]string{}, "role_id: required"},
		{"unknown", map[string]string{"role_id": "5", "roleid": "x"}, "roleid: unknown grant parameter (did you mean role_id?)"},
		{"malformed", map[string]string{"role_id": "developer"}, "role_id: must be a positive integer"},
	} {
		err := c.CheckParams(tc.params)
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.HasPrefix(err.Error(), tc.want)) {
			t.Errorf("%s: CheckParams(%v) = %v, want %q", tc.name, tc.params, err, tc.want)
		}
	}
}
