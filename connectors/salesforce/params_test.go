package salesforce_test

import (
	"strings"
	"testing"

	"github.com/accessbot/accessbot/connectors/salesforce"
)

func TestCheckParams(t *testing.T) {
	c := &salesforce.Connector{}
	for _, tc := range []struct {
		name   string
		params map[string]string
		want   string // prefix of the error; "" for none
	}{
		{"name", map[string]string{"permission_set": "Sales_Ops"}, ""},
		{"group id", map[string]string{"permission_set_group": "0PG5e000000XyZaAAK"}, ""},
		{"missing", map[string]string{}, "permission_set: required"},
		{"both", map[string]string{"permission_set": "A", "permission_set_group": "B"}, "permission_set_group: set only one"},
		{"unknown", map[string]string{"permission_set": "A", "permision_set": "x"}, "permision_set: unknown grant parameter (did you mean permission_set?)"},
		{"malformed", map[string]string{"permission_set": "Sales Ops"}, "permission_set: \"Sales Ops\" is neither"},
		{"wrong kind", map[string]string{"permission_set": "0PG5e000000XyZaAAK"}, "permission_set: \"0PG5e000000XyZaAAK\" is an Id of the other kind"},
	} {
		err := c.CheckParams(tc.params)
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.HasPrefix(err.Error(), tc.want)) {
			t.Errorf("%s: CheckParams(%v) = %v, want %q", tc.name, tc.params, err, tc.want)
		}
	}
}
