package metabase_test

import (
	"strings"
	"testing"

	"github.com/accessbot/accessbot/connectors/metabase"
)

func TestCheckParams(t *testing.T) {
	c := &metabase.Connector{}
	for _, tc := range []struct {
		name   string
		params map[string]string
		want   string // prefix of the error; "" for none
	}{
		{"valid", map[string]string{"group_id": "5"}, ""},
		{"missing", map[string]string{}, "group_id: required"},
		{"unknown", map[string]string{"group_id": "5", "groupid": "x"}, "groupid: unknown grant parameter (did you mean group_id?)"},
		{"malformed", map[string]string{"group_id": "abc"}, "group_id: must be a positive integer"},
	} {
		err := c.CheckParams(tc.params)
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.HasPrefix(err.Error(), tc.want)) {
			t.Errorf("%s: CheckParams(%v) = %v, want %q", tc.name, tc.params, err, tc.want)
		}
	}
}
