package connectortest

import (
	"testing"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/connectors"
)

// Build builds connector instance name of type typ from raw through a
// registry holding only factory, the way cmd builds connectors, so tests
// exercise the same strict decoding and validation.
func Build(t testing.TB, typ string, factory connectors.Factory, name string, raw map[string]any, env connectors.Env) (access.Connector, error) {
	t.Helper()
	reg := connectors.NewRegistry()
	reg.Add(typ, factory)
	return reg.Build(name, typ, raw, env)
}

// MustBuild is Build that fails the test on an error.
func MustBuild(t testing.TB, typ string, factory connectors.Factory, name string, raw map[string]any, env connectors.Env) access.Connector {
	t.Helper()
	c, err := Build(t, typ, factory, name, raw, env)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
