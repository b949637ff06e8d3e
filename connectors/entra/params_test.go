package entra_test

import (
	"strings"
	"testing"

	"github.com/accessbot/accessbot/connectors/entra"
)

func TestCheckParams(t *testing.T) {
	c := &entra.Connector{}
	for _, tc := range []struct {
		name   string
		params map[string]string
		want   string // prefix of the error; "" for none
	}{
		{"valid", map[string]string{"group_id": "02bd9fd6-8f93-4758-87c3-1fb73740a315"}, ""},
		{"missing", map[string]string{}, "group_id: required"},
		{"unknown", map[string]string{"group_id": "02bd9fd6-8f93-4758-87c3-1fb73740a315", "groupId": "x"}, "groupId: unknown grant parameter (did you mean group_id?)"},
		{"malformed", map[string]string{"group_id": "eng-team"}, "group_id: \"eng-team\" is not a group object ID"},
	} {
		err := c.CheckParams(tc.params)
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.HasPrefix(err.Error(), tc.want)) {
			t.Errorf("%s: CheckParams(%v) = %v, want %q", tc.name, tc.params, err, tc.want)
		}
	}
}
