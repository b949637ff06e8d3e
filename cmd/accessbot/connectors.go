package main

import (
	"context"
	"sort"
	"strings"
	"sync"

	"github.com/accessbot/accessbot/connectors"
)

// connectorRegistry returns the connector types this binary knows, for
// validation (no Slack client behind the Slack-native types).
func connectorRegistry() *connectors.Registry { return newRegistry(nil) }

// validateConnectors asks each connector type to validate its own block,
// by building it with reg.Build (factories decode and check; they do no
// network I/O), and turns the errors into problems under connectors.NAME.
// An error about a secret listed in cfg.MissingSecrets is left out:
// validate may run where secrets are not available, and LoadConfig has
// warned about it already. Error text is scrubbed of secret values.
func validateConnectors(cfg *Config, reg *connectors.Registry, env connectors.Env) (problems []Problem, warnings []string) {
	missing := map[string]bool{}
	for _, p := range cfg.MissingSecrets {
		missing[p] = true
	}
	known := map[string]bool{}
	for _, t := range reg.Types() {
		known[t] = true
	}
	secrets := cfg.secretValues()
	names := make([]string, 0, len(cfg.Connectors))
	for n := range cfg.Connectors {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		cc := cfg.Connectors[name]
		raw := make(map[string]any, len(cc.Raw)+1)
		for k, v := range cc.Raw {
			raw[k] = v
		}
		raw["type"] = cc.Type
		_, err := reg.Build(name, cc.Type, raw, env)
		for _, leaf := range leaves(err) {
			p := toProblem("connectors."+name, scrubValues(leaf.Error(), secrets))
			if missing[p.Path] {
				continue
			}
			problems = append(problems, p)
		}
	}
	return problems, warnings
}

// leaves flattens an errors.Join tree.
func leaves(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, leaves(e)...)
		}
		return out
	}
	return []error{err}
}

// toProblem splits "connectors.NAME.KEY: message" into a Problem; a message
// without a path is filed under base.
func toProblem(base, msg string) Problem {
	if strings.HasPrefix(msg, "connectors.") {
		if path, rest, ok := strings.Cut(msg, ": "); ok && !strings.Contains(path, " ") {
			return Problem{Path: path, Message: rest}
		}
	}
	return Problem{Path: base, Message: msg}
}

// secretValues lists every secret value in cfg, for scrubbing text that
// might echo one.
func (c *Config) secretValues() []string {
	var out []string
	for _, s := range []Secret{c.Slack.AppToken, c.Slack.BotToken} {
		if s != "" {
			out = append(out, s.Reveal())
		}
	}
	for _, cc := range c.Connectors {
		for k, v := range cc.Raw {
			if s, ok := v.(string); ok && isSecretKey(k) && s != "" {
				out = append(out, s)
			}
		}
	}
	return out
}

// scrubValues replaces each secret in s with "[redacted]". Secrets shorter
// than 4 bytes are left alone: replacing them would garble the text and
// they are not worth protecting.
func scrubValues(s string, secrets []string) string {
	for _, sec := range secrets {
		if len(sec) >= 4 {
			s = strings.ReplaceAll(s, sec, redacted)
		}
	}
	return s
}

// connectorsEnv is the environment connectors are built in for
// validation: nothing durable, no network.
func connectorsEnv() connectors.Env {
	return connectors.Env{State: &scratchState{m: map[string][]byte{}}}
}

// scratchState is a throwaway connectors.State for validation.
type scratchState struct {
	mu sync.Mutex
	m  map[string][]byte
}

func (s *scratchState) Get(_ context.Context, k string) ([]byte, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.m[k]
	return v, ok, nil
}

func (s *scratchState) Put(_ context.Context, k string, v []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[k] = v
	return nil
}

func (s *scratchState) Delete(_ context.Context, k string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, k)
	return nil
}
