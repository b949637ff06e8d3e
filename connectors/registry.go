package connectors

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/accessbot/accessbot/access"
)

// Factory builds one connector instance named name from its configuration
// block. It decodes and validates cfg (Config.Decode, then the connector's
// own Validate) and returns errors that name key paths
// (connectors.NAME.KEY) and never contain secret values.
type Factory func(name string, cfg Config) (access.Connector, error)

// Registry maps a connector type (the `type:` key of a connectors block) to
// its Factory. It is a plain value owned by whoever wires the program (cmd);
// there is no package-level registry. A Registry is not safe for concurrent
// Add; build it once at start-up.
type Registry struct {
	factories map[string]Factory
}

// NewRegistry returns an empty Registry.
func NewRegistry() *Registry {
	return &Registry{factories: map[string]Factory{}}
}

// Add registers f for typ, replacing any earlier factory for typ. It panics
// on an empty type or a nil factory: both are programming errors in cmd.
func (r *Registry) Add(typ string, f Factory) {
	if typ == "" || f == nil {
		panic("connectors: Registry.Add with empty type or nil factory")
	}
	r.factories[typ] = f
}

// Types returns the registered types, sorted.
func (r *Registry) Types() []string {
	types := make([]string, 0, len(r.factories))
	for t := range r.factories {
		types = append(types, t)
	}
	slices.Sort(types)
	return types
}

// Env is what the program lends every connector it builds. Zero fields get
// defaults in Build: a shared NewHTTPClient(HTTPOptions{}), the wall clock,
// and os.ReadFile.
type Env struct {
	// HTTP is the shared HTTP client (one connection pool for all
	// connectors). Tests pass an *HTTPClient with tiny backoff or a fake.
	HTTP Doer
	// Clock is the time source (signing timestamps, Retry-After dates).
	Clock access.Clock
	// ReadFile reads `…_file` secrets; tests may pass a fake.
	ReadFile func(name string) ([]byte, error)
	// State is durable key-value storage for connectors that must remember
	// something across restarts (the role a grant replaced, to restore it
	// at revoke). Nil: connectors that need it fail to build.
	State State
}

// State is durable key-value storage lent to connectors, namespaced per
// connector instance by the caller. Put must be durable (fsynced) when it
// returns. Get returns ok=false for an absent key. Safe for concurrent use.
type State interface {
	Get(ctx context.Context, key string) (value []byte, ok bool, err error)
	Put(ctx context.Context, key string, value []byte) error
	Delete(ctx context.Context, key string) error
}

// Build builds the connector instance name of type typ from its raw
// configuration block (as loaded from YAML, `${VAR}` already expanded; a
// `type` key in raw is allowed and ignored by Config.Decode). An unknown
// type is an error naming connectors.NAME.type, listing the known types.
// Errors from the factory are returned as they are: they already name key
// paths.
func (r *Registry) Build(name, typ string, raw map[string]any, env Env) (access.Connector, error) {
	f, ok := r.factories[typ]
	if !ok {
		msg := fmt.Sprintf("connectors.%s.type: unknown connector type %q (known: %s)",
			name, typ, strings.Join(r.Types(), ", "))
		if s := access.Suggest(typ, r.Types()); s != "" {
			msg += fmt.Sprintf("; did you mean %q?", s)
		}
		return nil, fmt.Errorf("%s", msg)
	}
	if env.HTTP == nil {
		env.HTTP = NewHTTPClient(HTTPOptions{})
	}
	if env.Clock == nil {
		env.Clock = access.ClockFunc(time.Now)
	}
	if env.ReadFile == nil {
		env.ReadFile = os.ReadFile
	}
	if raw == nil {
		raw = map[string]any{}
	}
	return f(name, Config{Name: name, Raw: raw, HTTP: env.HTTP, Clock: env.Clock, State: env.State, readFile: env.ReadFile})
}
