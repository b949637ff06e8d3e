package okta_test

import (
	"strings"
	"testing"

	"github.com/accessbot/accessbot/connectors/okta"
)

func TestCheckParams(t *testing.T) {
	c := &okta.Connector{}
	for _, tc := range []struct {
		name   string
		params map[string]string
		want   string // prefix of the error; "" for none
	}{
		{"valid", map[string]string{"group_id": "00g1viewer"}, ""},
		{"missing", map[string]string{}, "group_id: required"},
		{"empty", map[string]string{"group_id": ""}, "group_id: required"},
		{"unknown", map[string]string{"group_id": "00g1viewer", "groupid": "x"}, "groupid: unknown grant parameter (did you mean group_id?)"},
		{"malformed", map[string]string{"group_id": "Engineering"}, "group_id: \"Engineering\" is not an Okta group ID"},
	} {
		err := c.CheckParams(tc.params)
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.HasPrefix(err.Error(), tc.want)) {
			t.Errorf("%s: CheckParams(%v) = %v, want %q", tc.name, tc.params, err, tc.want)
		}
	}
}
