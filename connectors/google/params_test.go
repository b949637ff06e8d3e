package google_test

import (
	"strings"
	"testing"

	"github.com/accessbot/accessbot/connectors/google"
)

func TestCheckParams(t *testing.T) {
	c := &google.Connector{}
	for _, tc := range []struct {
		name   string
		params map[string]string
		want   string // prefix of the error; "" for none
	}{
		{"email", map[string]string{"group": "eng@example.com"}, ""},
		{"id", map[string]string{"group": "03ep43zb2r8a0ke"}, ""},
		{"missing", map[string]string{}, "group: required"},
		{"unknown", map[string]string{"group": "eng@example.com", "gruop": "x"}, "gruop: unknown grant parameter (did you mean group?)"},
		{"malformed", map[string]string{"group": "Engineering team"}, "group: \"Engineering team\" is neither"},
	} {
		err := c.CheckParams(tc.params)
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.HasPrefix(err.Error(), tc.want)) {
			t.Errorf("%s: CheckParams(%v) = %v, want %q", tc.name, tc.params, err, tc.want)
		}
	}
}
