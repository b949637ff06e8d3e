package main

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/connectors"
	"github.com/accessbot/accessbot/connectors/entra"
	"github.com/accessbot/accessbot/connectors/google"
	"github.com/accessbot/accessbot/connectors/ldap"
	"github.com/accessbot/accessbot/connectors/looker"
	"github.com/accessbot/accessbot/connectors/manual"
	"github.com/accessbot/accessbot/connectors/metabase"
	"github.com/accessbot/accessbot/connectors/okta"
	"github.com/accessbot/accessbot/connectors/postgres"
	"github.com/accessbot/accessbot/connectors/salesforce"
	"github.com/accessbot/accessbot/connectors/scim"
	slackconn "github.com/accessbot/accessbot/connectors/slack"
	"github.com/accessbot/accessbot/connectors/webhook"
	"github.com/accessbot/accessbot/connectors/zendesk"
)

// connectorRegistry returns the connector types this binary knows, for
// validation (no Slack client behind the Slack-native types).
func connectorRegistry() *connectors.Registry { return newRegistry(&slackconn.Workspace{}, "") }

// validateConnectors asks each connector type to validate its own block,
// by building it with reg.Build (factories decode and check; they do no
// network I/O), and turns the errors into problems under connectors.NAME.
// Every block is checked, used by a system or not (validate). Then each
// role's grant parameters are checked by its connector when it can
// (access.ParamsChecker), as problems under systems.SYS.roles.ROLE.grant.
//
// An error about a secret listed in cfg.MissingSecrets is left out:
// validate may run where secrets are not available, and LoadConfig has
// warned about it already. To check the grant parameters anyway, a
// missing secret is replaced by a placeholder for the build. Error text is
// scrubbed of secret values.
func validateConnectors(cfg *Config, reg *connectors.Registry, env connectors.Env) (problems []Problem, warnings []string) {
	return checkConnectors(cfg, reg, env, false, nil)
}

// validateConnectorsAfter is validateConnectors on a Config that
// LoadConfig found problems in (prior): what cannot be checked because
// its prerequisites are broken is skipped (a connector block without a
// type), and a problem at a key path prior already names, or below it, is
// left out (an unset ${VAR} is not also "required").
func validateConnectorsAfter(cfg *Config, reg *connectors.Registry, env connectors.Env, prior []Problem) (problems []Problem, warnings []string) {
	return checkConnectors(cfg, reg, env, false, prior)
}

// validateUsedConnectors is validateConnectors for run: only the
// connectors some system uses, the ones run builds.
func validateUsedConnectors(cfg *Config, reg *connectors.Registry, env connectors.Env) []Problem {
	probs, _ := checkConnectors(cfg, reg, env, true, nil)
	return probs
}

// placeholderSecret stands in for a missing secret while validating.
const placeholderSecret = "accessbot-validate-placeholder"

// reported tells whether a key path or one above it is named in ps.
func reported(ps []Problem) func(path string) bool {
	seen := map[string]bool{}
	for _, p := range ps {
		seen[p.Path] = true
	}
	return func(path string) bool {
		for {
			if seen[path] {
				return true
			}
			i := strings.LastIndexAny(path, ".[")
			if i < 0 {
				return false
			}
			path = path[:i]
		}
	}
}

func checkConnectors(cfg *Config, reg *connectors.Registry, env connectors.Env, usedOnly bool, prior []Problem) (problems []Problem, warnings []string) {
	known := reported(prior)
	defer func() {
		kept := problems[:0]
		for _, p := range problems {
			if !known(p.Path) {
				kept = append(kept, p)
			}
		}
		problems = kept
	}()
	readFile := env.ReadFile
	if readFile == nil {
		readFile = os.ReadFile
	}
	missing := map[string]bool{}
	for _, p := range cfg.MissingSecrets {
		missing[p] = true
	}
	used := cfg.usedConnectors()
	secrets := cfg.secretValues()
	names := make([]string, 0, len(cfg.Connectors))
	for n := range cfg.Connectors {
		if !usedOnly || used[n] {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	built := map[string]access.Connector{}
	for _, name := range names {
		cc := cfg.Connectors[name]
		raw := make(map[string]any, len(cc.Raw)+1)
		for k, v := range cc.Raw {
			raw[k] = v
			if missing["connectors."+name+"."+k] {
				raw[k] = placeholderSecret
			}
		}
		if cc.Type == "" {
			continue // reported by LoadConfig: nothing to build
		}
		if !usedOnly {
			// An unreadable secret file is a missing secret for validate,
			// like an unset ${VAR}: a warning naming the file. run builds
			// the block as it is and refuses it.
			for _, k := range sortedKeys(cc.Raw) {
				base, ok := strings.CutSuffix(k, "_file")
				file, _ := cc.Raw[k].(string)
				if !ok || !isSecretKey(base) || file == "" {
					continue
				}
				if v, _ := cc.Raw[base].(string); v != "" {
					continue // both set: the connector reports it
				}
				fpath := "connectors." + name + "." + k
				b, err := readFile(file)
				switch {
				case err != nil:
					warnings = append(warnings, Problem{Path: fpath, Message: fmt.Sprintf("cannot read the secret file: %v; run refuses to start without it", err)}.String())
				case strings.TrimSpace(string(b)) == "":
					warnings = append(warnings, Problem{Path: fpath, Message: fmt.Sprintf("the secret file %s is empty; run refuses to start without it", file)}.String())
				default:
					continue
				}
				delete(raw, k)
				raw[base] = placeholderSecret
				missing["connectors."+name+"."+base] = true
			}
		}
		raw["type"] = cc.Type
		if cc.Type == "memory" {
			// It keeps grants in process memory and changes nothing in any
			// real system: fine for tests and the demo, never for run.
			msg := "type memory grants nothing in any real system (tests and the demo only)"
			if usedOnly {
				problems = append(problems, Problem{Path: "connectors." + name + ".type", Message: msg + "; run refuses it"})
			} else {
				warnings = append(warnings, Problem{Path: "connectors." + name + ".type", Message: msg + "; run will refuse it"}.String())
			}
		}
		c, err := reg.Build(name, cc.Type, raw, env)
		for _, leaf := range leaves(err) {
			p := toProblem("connectors."+name, scrubValues(leaf.Error(), secrets))
			if missing[p.Path] {
				continue
			}
			problems = append(problems, p)
		}
		if err == nil && c != nil {
			built[name] = c
		}
	}
	problems = append(problems, checkGrantParams(cfg, built, secrets)...)
	return problems, warnings
}

// paramCheckers are the grant-parameter checks of the connector types
// that have them, on a zero instance: each type's CheckParams reads only
// the parameters (against its package's own declaration), never the
// instance, so a role's grant is checked even where its connector cannot
// be built — its secret is not in this environment (validate and init
// usually run without the secrets; a salesforce private key or a google
// service account key must parse before the connector builds), or one of
// its settings is wrong. TestParamCheckersCoverGrantingTypes keeps the
// list whole.
var paramCheckers = map[string]access.ParamsChecker{
	"webhook":                   &webhook.Connector{},
	"manual":                    manual.Connector{},
	slackconn.ChannelType:       &slackconn.Channel{},
	slackconn.UsergroupType:     &slackconn.Usergroup{},
	okta.Type:                   &okta.Connector{},
	google.Type:                 &google.Connector{},
	entra.Type:                  &entra.Connector{},
	scim.Type:                   &scim.Connector{},
	"ldap_group":                &ldap.Connector{},
	"salesforce_permission_set": &salesforce.Connector{},
	"zendesk":                   &zendesk.Connector{},
	"metabase_group":            &metabase.Connector{},
	"looker_role":               &looker.Connector{},
	"postgres_role":             &postgres.Connector{},
}

// paramsCheckerFor is the grant-parameter check of a connector of type
// typ: the built connector's own when it was built, else the type's
// (paramCheckers); nil for a type that checks nothing (lookups, memory).
func paramsCheckerFor(typ string, built access.Connector) access.ParamsChecker {
	if pc, ok := built.(access.ParamsChecker); ok {
		return pc
	}
	return paramCheckers[typ]
}

// checkParams runs pc.CheckParams. A checker that fails on a zero instance
// (a connector that came to need its instance) is skipped rather than
// crashing validate.
func checkParams(pc access.ParamsChecker, params map[string]string) (err error) {
	defer func() {
		if recover() != nil {
			err = nil
		}
	}()
	return pc.CheckParams(params)
}

// checkGrantParams checks the grant parameters of every role of every
// system with its connector's check (paramsCheckerFor), whether or not the
// connector could be built. A connector type without the capability is
// skipped.
func checkGrantParams(cfg *Config, built map[string]access.Connector, secrets []string) []Problem {
	if cfg.Runbook == nil {
		return nil
	}
	var problems []Problem
	for _, sid := range cfg.Runbook.SystemIDs() {
		sys := cfg.Runbook.Systems[sid]
		pc := paramsCheckerFor(cfg.Connectors[sys.Connector].Type, built[sys.Connector])
		if pc == nil {
			continue
		}
		for _, rid := range sys.RoleIDs() {
			base := "systems." + sid + ".roles." + rid + ".grant"
			params := sys.Roles[rid].Grant
			if params == nil {
				params = map[string]string{}
			}
			for _, leaf := range leaves(checkParams(pc, params)) {
				problems = append(problems, grantProblem(base, scrubValues(leaf.Error(), secrets)))
			}
		}
	}
	return problems
}

// grantProblem files "KEY: message" under base.KEY, and anything else
// under base.
func grantProblem(base, msg string) Problem {
	if key, rest, ok := strings.Cut(msg, ": "); ok && key != "" && !strings.ContainsAny(key, " \t") {
		return Problem{Path: base + "." + key, Message: rest}
	}
	return Problem{Path: base, Message: msg}
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
