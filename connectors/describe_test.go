package connectors

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/accessbot/accessbot/access"
)

type describeCommon struct {
	Timeout Duration `json:"timeout"`
}

type describeConfig struct {
	URL        string             `json:"url"`
	Token      Redacted           `json:"token"`
	TokenFile  string             `json:"token_file"`
	CAFile     string             `json:"ca_file"` // a _file key that is no secret's twin
	Scopes     []string           `json:"scopes"`
	Strict     *bool              `json:"strict"`
	Port       int                `json:"port"`
	Nested     struct{ A string } `json:"nested"`
	Skipped    string             `json:"-"`
	unexported string
	describeCommon
}

func TestDescribe(t *testing.T) {
	reg := NewRegistry()
	decoded := false
	reg.Add("thing", func(name string, cfg Config) (access.Connector, error) {
		c := describeConfig{Port: 5432, Scopes: []string{"a", "b"}}
		c.Timeout = Duration(10e9)
		if err := cfg.Decode(&c); err != nil {
			return nil, err
		}
		decoded = true
		return nil, nil
	})
	reg.Add("nodecode", func(name string, cfg Config) (access.Connector, error) { return nil, nil })
	got, err := reg.Describe("thing")
	if err != nil {
		t.Fatal(err)
	}
	want := []Field{
		{Key: "url", Kind: KindString},
		{Key: "token", Kind: KindString, Secret: true},
		{Key: "token_file", Kind: KindString, SecretFileOf: "token"},
		{Key: "ca_file", Kind: KindString},
		{Key: "scopes", Kind: KindList, Default: "a, b"},
		{Key: "strict", Kind: KindBool},
		{Key: "port", Kind: KindInt, Default: "5432"},
		{Key: "nested", Kind: KindMapping},
		{Key: "timeout", Kind: KindDuration, Default: "10s"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Describe (-want +got):\n%s", diff)
	}
	if decoded {
		t.Error("Describe let the factory go past Decode")
	}
	// Build still decodes normally afterwards.
	if _, err := reg.Build("x", "thing", map[string]any{"url": "https://x"}, Env{}); err != nil || !decoded {
		t.Errorf("Build after Describe: %v, decoded %v", err, decoded)
	}
	if _, err := reg.Describe("nodecode"); err == nil || !strings.Contains(err.Error(), "does not decode") {
		t.Errorf("Describe of a factory without Decode: %v", err)
	}
	if _, err := reg.Describe("nope"); err == nil || !strings.Contains(err.Error(), "known: nodecode, thing") {
		t.Errorf("Describe of an unknown type: %v", err)
	}
}
