package bot_test

import (
	"strings"
	"testing"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/bot"
)

func TestSlackCheckParams(t *testing.T) {
	var ch, ug access.ParamsChecker = &bot.ChannelConnector{}, &bot.UsergroupConnector{}
	for _, tc := range []struct {
		name   string
		c      access.ParamsChecker
		params map[string]string
		want   string // prefix of the error; "" for none
	}{
		{"channel", ch, map[string]string{"channel": "C0123ABCD"}, ""},
		{"private", ch, map[string]string{"channel": "G0123ABCD"}, ""},
		{"usergroup", ug, map[string]string{"usergroup": "S0123ABCD"}, ""},
		{"missing", ch, map[string]string{}, "channel: required"},
		{"missing group", ug, map[string]string{}, "usergroup: required"},
		{"unknown", ch, map[string]string{"channel": "C0123ABCD", "chanel": "x"}, "chanel: unknown grant parameter (did you mean channel?)"},
		{"unknown group", ug, map[string]string{"usergroup": "S0123ABCD", "user_group": "x"}, "user_group: unknown grant parameter (did you mean usergroup?)"},
		{"name not id", ch, map[string]string{"channel": "#general"}, `channel: "#general" is not a channel ID`},
		{"handle not id", ug, map[string]string{"usergroup": "@oncall"}, `usergroup: "@oncall" is not a user group ID`},
		{"wrong kind", ug, map[string]string{"usergroup": "C0123ABCD"}, `usergroup: "C0123ABCD" is not`},
	} {
		err := tc.c.CheckParams(tc.params)
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.HasPrefix(err.Error(), tc.want)) {
			t.Errorf("%s: CheckParams(%v) = %v, want %q", tc.name, tc.params, err, tc.want)
		}
	}
}
