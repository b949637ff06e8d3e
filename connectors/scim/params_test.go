package scim_test

import (
	"strings"
	"testing"

	"github.com/accessbot/accessbot/connectors/scim"
)

func TestCheckParams(t *testing.T) {
	c := &scim.Connector{}
	for _, tc := range []struct {
		name   string
		params map[string]string
		want   string // prefix of the error; "" for none
	}{
		{"valid", map[string]string{"group_id": "e9e30dba-eng"}, ""},
		{"missing", map[string]string{}, "group_id: required"},
		{"unknown", map[string]string{"group_id": "g", "group_di": "x"}, "group_di: unknown grant parameter (did you mean group_id?)"},
		{"empty key", map[string]string{"group_id": "g", "": "x"}, "\"\": empty grant parameter name"},
	} {
		err := c.CheckParams(tc.params)
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.HasPrefix(err.Error(), tc.want)) {
			t.Errorf("%s: CheckParams(%v) = %v, want %q", tc.name, tc.params, err, tc.want)
		}
	}
}
