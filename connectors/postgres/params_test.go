package postgres_test

import (
	"strings"
	"testing"

	"github.com/accessbot/accessbot/connectors/postgres"
)

func TestCheckParams(t *testing.T) {
	c := &postgres.Connector{}
	for _, tc := range []struct {
		name   string
		params map[string]string
		want   string // prefix of the error; "" for none
	}{
		{"valid", map[string]string{"role": "analyst_ro"}, ""},
		{"missing", map[string]string{}, "role: required"},
		{"unknown", map[string]string{"role": "analyst_ro", "roles": "x"}, "roles: unknown grant parameter (did you mean role?)"},
		{"too long", map[string]string{"role": "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}, "role: not a valid role name"},
	} {
		err := c.CheckParams(tc.params)
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.HasPrefix(err.Error(), tc.want)) {
			t.Errorf("%s: CheckParams(%v) = %v, want %q", tc.name, tc.params, err, tc.want)
		}
	}
}
