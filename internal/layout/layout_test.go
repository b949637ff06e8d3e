package layout

import (
	"bufio"
	"bytes"
	"os/exec"
	"strings"
	"testing"
)

const mod = "github.com/accessbot/accessbot"

// imports returns each package of the module (tests excluded) with its
// direct imports, from `go list`.
func imports(t *testing.T) map[string][]string {
	t.Helper()
	out, err := exec.Command("go", "list", "-f", "{{.ImportPath}} {{join .Imports \" \"}}", mod+"/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	pkgs := map[string][]string{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		pkgs[f[0]] = f[1:]
	}
	return pkgs
}

// The rules of DESIGN.md §5 and STYLE.md: access is standard library only;
// adapters (bot, store, connectors/*, internal/wheel) import access, never
// each other; slack-go only in bot, bbolt only in store, viper only in cmd.
func TestLayout(t *testing.T) {
	pkgs := imports(t)
	if len(pkgs) < 10 {
		t.Fatalf("go list found only %d packages", len(pkgs))
	}
	adapter := func(p string) string {
		rel := strings.TrimPrefix(p, mod+"/")
		switch {
		case rel == "bot" || rel == "store" || rel == "internal/wheel":
			return rel
		case strings.HasPrefix(rel, "connectors"):
			return "connectors"
		}
		return ""
	}
	only := map[string]string{
		"github.com/slack-go/slack": mod + "/bot",
		"go.etcd.io/bbolt":          mod + "/store",
		"github.com/spf13/viper":    mod + "/cmd/accessbot",
	}
	for p, deps := range pkgs {
		for _, d := range deps {
			if p == mod+"/access" && strings.Contains(strings.SplitN(d, "/", 2)[0], ".") {
				t.Errorf("access imports %s; it must use only the standard library", d)
			}
			if a, b := adapter(p), adapter(d); a != "" && b != "" && a != b {
				t.Errorf("%s imports %s: adapters import access, never each other", p, d)
			}
			for lib, owner := range only {
				if (d == lib || strings.HasPrefix(d, lib+"/")) && p != owner && !strings.HasPrefix(p, owner+"/") {
					t.Errorf("%s imports %s; only %s may", p, d, owner)
				}
			}
		}
	}
}
