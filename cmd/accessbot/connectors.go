package main

import (
	"sort"
	"strings"
)

// buildConnectorFunc builds (and so validates) one connector instance from
// its block: the shape of connectors.Registry.Build with the Env bound.
// It returns errors whose text starts with a key path
// (connectors.NAME.KEY: …), joined with errors.Join when there are several.
type buildConnectorFunc func(name, typ string, raw map[string]any) error

// validateConnectors asks each connector type to validate its own block and
// turns the errors into problems under connectors.NAME. An error about a
// secret already listed in cfg.MissingSecrets is left out: validate may run
// where secrets are not available, and it has been warned about.
//
// build is nil until the wiring registers the connector types (cmd builds a
// connectors.Registry and passes a closure over Registry.Build with a
// default Env); with nil, only what LoadConfig checks (type present,
// systems name defined instances) is validated.
func validateConnectors(cfg *Config, build buildConnectorFunc) (problems []Problem, warnings []string) {
	if build == nil {
		return nil, nil
	}
	missing := map[string]bool{}
	for _, p := range cfg.MissingSecrets {
		missing[p] = true
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
		for _, leaf := range leaves(build(name, cc.Type, raw)) {
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
