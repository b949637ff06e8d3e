package manual_test

import (
	"strings"
	"testing"

	"github.com/accessbot/accessbot/connectors/manual"
)

func TestCheckParams(t *testing.T) {
	c := manual.Connector{}
	for _, tc := range []struct {
		name   string
		params map[string]string
		want   string // prefix of the error; "" for none
	}{
		{"any", map[string]string{"account": "payroll-admin"}, ""},
		{"none", map[string]string{}, ""},
		{"blank key", map[string]string{" ": "x"}, "\" \": empty grant parameter name"},
	} {
		err := c.CheckParams(tc.params)
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.HasPrefix(err.Error(), tc.want)) {
			t.Errorf("%s: CheckParams(%v) = %v, want %q", tc.name, tc.params, err, tc.want)
		}
	}
}
