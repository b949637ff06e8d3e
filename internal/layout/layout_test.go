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

// The rules of DESIGN.md §5 and STYLE.md: access and audit are standard
// library only; adapters (bot, store, store/postgres, connectors/*,
// internal/wheel) import access and audit, never each other; slack-go only
// in bot, bbolt only in store, pgx only in store/postgres and
// connectors/postgres (and internal/testsvc, which starts PostgreSQL for
// their tests), viper only in cmd.
func TestLayout(t *testing.T) {
	pkgs := imports(t)
	if len(pkgs) < 10 {
		t.Fatalf("go list found only %d packages", len(pkgs))
	}
	adapter := func(p string) string {
		rel := strings.TrimPrefix(p, mod+"/")
		switch {
		case rel == "bot" || rel == "store" || rel == "store/postgres" || rel == "internal/wheel":
			return rel
		case strings.HasPrefix(rel, "connectors"):
			return "connectors"
		}
		return ""
	}
	stdlibOnly := map[string]bool{mod + "/access": true, mod + "/audit": true}
	// only: a library → the packages that may import it (exactly these,
	// or below them when the entry ends in "/...").
	only := map[string][]string{
		"github.com/slack-go/slack": {mod + "/bot/..."},
		"go.etcd.io/bbolt":          {mod + "/store"},
		"github.com/jackc/pgx":      {mod + "/store/postgres", mod + "/connectors/postgres", mod + "/internal/testsvc"},
		"github.com/spf13/viper":    {mod + "/cmd/accessbot"},
	}
	allowed := func(p string, owners []string) bool {
		for _, o := range owners {
			if p == o || (strings.HasSuffix(o, "/...") && (p == strings.TrimSuffix(o, "/...") || strings.HasPrefix(p, strings.TrimSuffix(o, "...")))) {
				return true
			}
		}
		return false
	}
	for p, deps := range pkgs {
		for _, d := range deps {
			if stdlibOnly[p] && strings.Contains(strings.SplitN(d, "/", 2)[0], ".") {
				t.Errorf("%s imports %s; it must use only the standard library", p, d)
			}
			if a, b := adapter(p), adapter(d); a != "" && b != "" && a != b {
				t.Errorf("%s imports %s: adapters import access, never each other", p, d)
			}
			for lib, owners := range only {
				if (d == lib || strings.HasPrefix(d, lib+"/")) && !allowed(p, owners) {
					t.Errorf("%s imports %s; only %s may", p, d, strings.Join(owners, ", "))
				}
			}
		}
	}
}
