package zendesk_test

import (
	"strings"
	"testing"

	"github.com/accessbot/accessbot/connectors/zendesk"
)

func TestCheckParams(t *testing.T) {
	c := &zendesk.Connector{}
	for _, tc := range []struct {
		name   string
		params map[string]string
		want   string // prefix of the error; "" for none
	}{
		{"role", map[string]string{"custom_role_id": "360001234567"}, ""},
		{"both", map[string]string{"custom_role_id": "1", "group_id": "2"}, ""},
		{"missing", map[string]string{}, "custom_role_id: required"},
		{"unknown", map[string]string{"group_id": "2", "custom_role": "x"}, "custom_role: unknown grant parameter (did you mean custom_role_id?)"},
		{"malformed", map[string]string{"group_id": "support"}, "group_id: must be a positive integer"},
	} {
		err := c.CheckParams(tc.params)
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.HasPrefix(err.Error(), tc.want)) {
			t.Errorf("%s: CheckParams(%v) = %v, want %q", tc.name, tc.params, err, tc.want)
		}
	}
}
