package access_test

import (
	"errors"
	"testing"

	"github.com/accessbot/accessbot/access"
)

func TestUnknownParams(t *testing.T) {
	got := errors.Join(access.UnknownParams(map[string]string{
		"group_id": "x", "groupid": "y", "colour": "z", "": "w",
	}, "group_id")...)
	want := `"": empty grant parameter name` + "\n" +
		"colour: unknown grant parameter (known: group_id)\n" +
		"groupid: unknown grant parameter (did you mean group_id?)"
	if got == nil || got.Error() != want {
		t.Fatalf("got %v\nwant %s", got, want)
	}
	if err := access.CheckParamNames(map[string]string{"x": "", " ": "y"}); err == nil || err.Error() != `" ": empty grant parameter name` {
		t.Fatalf("CheckParamNames = %v", err)
	}
	if err := access.CheckParamNames(map[string]string{"anything": "goes"}); err != nil {
		t.Fatal(err)
	}
	if s := access.Suggest("grup", []string{"group"}); s != "group" {
		t.Fatalf("Suggest = %q", s)
	}
}
