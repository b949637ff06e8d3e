package memory_test

import (
	"strings"
	"testing"

	"github.com/accessbot/accessbot/connectors/memory"
)

func TestCheckParams(t *testing.T) {
	c := memory.New()
	for _, tc := range []struct {
		name   string
		params map[string]string
		want   string // prefix of the error; "" for none
	}{
		{"any", map[string]string{"group_id": "00g1viewer", "x": "y"}, ""},
		{"empty key", map[string]string{"": "x"}, ""},
	} {
		err := c.CheckParams(tc.params)
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.HasPrefix(err.Error(), tc.want)) {
			t.Errorf("%s: CheckParams(%v) = %v, want %q", tc.name, tc.params, err, tc.want)
		}
	}
}
