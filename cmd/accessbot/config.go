package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/spf13/viper"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/connectors"
)

// Config is the loaded, validated configuration file (DESIGN.md §2). Every
// field is final: defaults applied, ${VAR} expanded, environment overrides
// applied, secret files read. It is read-only after LoadConfig returns.
type Config struct {
	// Path is the file the configuration was loaded from.
	Path string

	Slack    SlackConfig
	Store    StoreConfig
	Timezone string // IANA name; "UTC" when not set
	HTTP     HTTPConfig
	Audit    AuditConfig

	// Runbook is the policy, fully built: defaults merged into every role,
	// Location set from Timezone, Hash the hex SHA-256 of the file's bytes.
	Runbook *access.Runbook

	// Connectors are the connector instances by name. Each block is
	// schemaless here: its connector type decodes and validates it.
	Connectors map[string]ConnectorConfig

	// Offboarding names the identity-provider connectors asked whether
	// people holding or waiting for access are still active
	// (directory.offboarding); the managers' source is asked too.
	Offboarding []string

	// Warnings are "path: message" lines about a configuration that works
	// but should be changed (a literal secret in the file, an unset
	// environment variable). They never contain secret values.
	Warnings []string

	// MissingSecrets are the key paths of required secrets that are empty
	// after expansion (an unset ${VAR}, an unreadable …_file), in every
	// block, used or not. validate reports them as warnings; run refuses to
	// start when one it needs is missing (RequireSecrets).
	MissingSecrets []string

	// Overrides are the ACCESSBOT_ environment variables that took effect,
	// sorted: "NAME=VALUE", or just "NAME" for a secret key. They are part
	// of Runbook.Hash.
	Overrides []string

	// UnknownEnv are set ACCESSBOT_ variables that map to no key path
	// (Path is the variable's name). They are also in Warnings; run
	// refuses to start with them (RequireForRun).
	UnknownEnv []Problem

	// UnsetVars are the non-secret values that name an unset ${VAR}, as
	// "${VAR} is not set" problems. They are also in Warnings (LoadConfig
	// accepts them); validate reports them as problems and run refuses
	// to start with them (RequireForRun), except in connector blocks no
	// system uses.
	UnsetVars []Problem

	// missingFile holds, for a missing secret read from a …_file twin
	// (a key of MissingSecrets), the problem with the file: its key path
	// and why it could not be read, file name included.
	missingFile map[string]Problem

	// unsetSecret holds, for a missing secret written as ${VAR} (a key
	// of MissingSecrets), the unset variables it names: "${SLACK_BOT_TOKEN}".
	unsetSecret map[string]string
}

// SlackConfig is the slack block.
type SlackConfig struct {
	AppToken     Secret   // xapp-…, Socket Mode (connections:write)
	BotToken     Secret   // xoxb-…
	APIURL       string   // Web API base URL, ends with "/"; default https://slack.com/api/
	Command      string   // slash command, default /access
	Admins       []string // Slack user IDs
	AuditChannel string   // channel ID, may be empty
}

// StoreConfig is the store block.
type StoreConfig struct {
	Driver string // storeDriverBbolt (default) or storeDriverPostgres
	Path   string // bbolt file; default accessbot.db (bbolt only)
	DSN    Secret // PostgreSQL connection string (postgres only)
}

// Store drivers (store.driver).
const (
	storeDriverBbolt    = "bbolt"
	storeDriverPostgres = "postgres"
)

// HTTPConfig is the http block.
type HTTPConfig struct {
	Listen string // host:port for /healthz, /readyz, /metrics; empty: no listener
}

// AuditConfig is the audit block.
type AuditConfig struct {
	File      string        // optional: also append the audit log to this file
	Retention time.Duration // how long audit records are kept; 0: forever
}

// ConnectorConfig is one connector instance (connectors.NAME).
type ConnectorConfig struct {
	Type string
	// Raw is the block minus its type key, with ${VAR} expanded and the
	// environment overrides applied. `…_file` secret twins are kept as file
	// names for the connector to read. Raw may hold secrets: never print it;
	// log Config.Redacted() instead.
	Raw map[string]any
}

// Secret is a credential: the program's one secret type,
// connectors.Redacted (it prints as "[redacted]" everywhere; Reveal
// returns the value).
type Secret = connectors.Redacted

const redacted = "[redacted]"

// Problem is one thing wrong with the configuration: Path is the key path
// (systems.crm.roles.viewer.max_duration, requesters[0]); Message says what
// is wrong and what is allowed. Neither ever contains a secret value.
type Problem struct {
	Path    string
	Message string
}

func (p Problem) String() string {
	if p.Path == "" {
		return p.Message
	}
	return p.Path + ": " + p.Message
}

// ConfigError is returned by LoadConfig when the configuration is invalid.
// It lists every problem found, not only the first, in file order.
type ConfigError struct {
	Problems []Problem
}

func (e *ConfigError) Error() string {
	if len(e.Problems) == 1 {
		return "invalid configuration: " + e.Problems[0].String()
	}
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return fmt.Sprintf("invalid configuration (%d problems): %s", len(e.Problems), strings.Join(lines, "; "))
}

// RequireSecrets returns a *ConfigError naming every missing secret that
// run needs (the slack tokens and the secrets of connectors some system
// uses), or nil. run calls it after LoadConfig; validate does not, so that
// a config can be checked where the secrets are not available.
func (c *Config) RequireSecrets() error {
	used := c.usedConnectors()
	e := &ConfigError{}
	for _, p := range c.MissingSecrets {
		if name, ok := connectorOf(p); ok && !used[name] {
			continue // run does not build it
		}
		if fp, ok := c.missingFile[p]; ok {
			e.Problems = append(e.Problems, fp)
			continue
		}
		e.Problems = append(e.Problems, Problem{Path: p, Message: c.missingSecretMessage(p)})
	}
	if len(e.Problems) == 0 {
		return nil
	}
	return e
}

// missingSecretMessage says how to give the missing secret at path,
// naming the variables to set: the ${VAR} the file names, if any, and the
// ACCESSBOT_ override, and the …_file twin.
func (c *Config) missingSecretMessage(path string) string {
	key := path[strings.LastIndex(path, ".")+1:]
	if u := c.unsetSecret[path]; u != "" {
		vars := strings.NewReplacer("${", "", "}", "").Replace(u)
		return fmt.Sprintf("%s is not set: set %s in the environment (or %s, or %s_file: a file holding the secret)", u, vars, envName(path), key)
	}
	return fmt.Sprintf("secret is empty: set %s in the environment, or write ${VARIABLE} here and set that variable, or use %s_file: a file holding the secret", envName(path), key)
}

// RequireForRun is what run demands beyond what validate reports as
// problems: the secrets it needs (RequireSecrets) and no ACCESSBOT_
// variable that maps to no key (validate only warns about those).
func (c *Config) RequireForRun() error {
	e := &ConfigError{}
	for _, p := range c.UnknownEnv {
		e.Problems = append(e.Problems, p)
	}
	used := c.usedConnectors()
	for _, p := range c.UnsetVars {
		if name, ok := connectorOf(p.Path); ok && !used[name] {
			continue // run does not build it
		}
		e.Problems = append(e.Problems, p)
	}
	if err := c.RequireSecrets(); err != nil {
		e.Problems = append(e.Problems, err.(*ConfigError).Problems...)
	}
	if len(e.Problems) == 0 {
		return nil
	}
	return e
}

// usedConnectors is the set of connector names some system points at or
// some role names as its on-call source (approval.auto_if_on_call) or
// ticket checker (ticket.verify): the only ones run builds.
func (c *Config) usedConnectors() map[string]bool {
	used := map[string]bool{}
	if c.Runbook == nil {
		return used
	}
	for _, sys := range c.Runbook.Systems {
		if sys == nil {
			continue
		}
		if sys.Connector != "" {
			used[sys.Connector] = true
		}
		for _, r := range sys.Roles {
			if r == nil {
				continue
			}
			if oc := r.Approval.AutoIfOnCall; oc != nil {
				used[oc.Source] = true
			}
			if r.Ticket != nil && r.Ticket.Verify != "" {
				used[r.Ticket.Verify] = true
			}
		}
	}
	if c.Runbook.Managers.IdP != "" {
		used[c.Runbook.Managers.IdP] = true
	}
	for _, name := range c.Offboarding {
		used[name] = true
	}
	return used
}

// connectorOf returns NAME for a key path connectors.NAME….
func connectorOf(path string) (string, bool) {
	rest, ok := strings.CutPrefix(path, "connectors.")
	if !ok {
		return "", false
	}
	name, _, _ := strings.Cut(rest, ".")
	return name, true
}

// Redacted returns the configuration as a nested map for logs, with every
// secret replaced by "[redacted]" (connector blocks included).
func (c *Config) Redacted() map[string]any {
	conns := map[string]any{}
	for name, cc := range c.Connectors {
		block := map[string]any{"type": cc.Type}
		for k, v := range redactTree(cc.Raw, true).(map[string]any) {
			block[k] = v
		}
		conns[name] = block
	}
	systems := []string{}
	if c.Runbook != nil {
		systems = c.Runbook.SystemIDs()
	}
	return map[string]any{
		"path": c.Path,
		"slack": map[string]any{
			"app_token": c.Slack.AppToken.String(), "bot_token": c.Slack.BotToken.String(),
			"api_url": c.Slack.APIURL, "command": c.Slack.Command,
			"admins": c.Slack.Admins, "audit_channel": c.Slack.AuditChannel,
		},
		"store":      map[string]any{"driver": c.Store.Driver, "path": c.Store.Path, "dsn": c.Store.DSN.String()},
		"timezone":   c.Timezone,
		"http":       map[string]any{"listen": c.HTTP.Listen},
		"audit":      map[string]any{"file": c.Audit.File, "retention": c.Audit.Retention.String()},
		"connectors": conns,
		"systems":    systems,
		"hash":       c.hash(),
	}
}

// String formats the redacted configuration, so that %v of a *Config
// prints no secret.
func (c *Config) String() string { return fmt.Sprint(c.Redacted()) }

// GoString redacts %#v of a *Config.
func (c *Config) GoString() string { return c.String() }

// String formats the block with secret values redacted.
func (cc ConnectorConfig) String() string {
	return fmt.Sprintf("{%s %v}", cc.Type, redactTree(cc.Raw, true))
}

// GoString redacts %#v of a ConnectorConfig.
func (cc ConnectorConfig) GoString() string { return cc.String() }

// LogValue makes slog log the redacted form of the configuration.
func (c *Config) LogValue() slog.Value { return slog.AnyValue(c.Redacted()) }

func (c *Config) hash() string {
	if c.Runbook == nil {
		return ""
	}
	return c.Runbook.Hash
}

// redactTree copies v with the values of secret keys replaced.
func redactTree(v any, top bool) any {
	switch t := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, val := range t {
			if isSecretKey(k) {
				out[k] = redacted
				continue
			}
			out[k] = redactTree(val, false)
		}
		return out
	case []any:
		out := make([]any, len(t))
		for i, val := range t {
			out[i] = redactTree(val, false)
		}
		return out
	default:
		if top && v == nil {
			return map[string]any{}
		}
		return v
	}
}

// Built-in values for keys the file leaves out.
const (
	defaultAPIURL          = "https://slack.com/api/"
	defaultCommand         = "/access"
	defaultStorePath       = "accessbot.db"
	defaultTimezone        = "UTC"
	defaultDefaultDuration = time.Hour
	defaultMaxDuration     = 8 * time.Hour
	defaultApprovalTimeout = 24 * time.Hour
	defaultReminderAfter   = 2 * time.Hour
	defaultExpiryWarning   = 10 * time.Minute
	envPrefix              = "ACCESSBOT"
)

// LoadConfig reads, expands, overrides and validates the configuration file
// at path. getenv supplies the environment (os.Getenv in production, a fake
// in tests); nil means an empty environment.
//
// Layers, lowest first: the YAML file, then ACCESSBOT_ environment variables
// (ACCESSBOT_ + the key path upper-cased with "_" for "." and "-":
// ACCESSBOT_SLACK_BOT_TOKEN, ACCESSBOT_SYSTEMS_CRM_ROLES_VIEWER_MAX_DURATION;
// list keys take comma- or space-separated values). Then ${VAR} in any
// string value is expanded from getenv, secret …_file twins of the slack
// tokens are read, and everything is validated.
//
// Keys are case-insensitive (viper lower-cases them); the keys of
// directory.managers.static are Slack user IDs and are upper-cased back.
//
// A file that cannot be read is returned as a plain error. An invalid
// configuration is a *ConfigError listing every problem. Missing secrets
// are not an error here: see Config.MissingSecrets and RequireSecrets.
func LoadConfig(path string, getenv func(string) string) (*Config, error) {
	data, err := readConfigFile(path)
	if err != nil {
		return nil, err
	}
	return loadConfigBytes(path, data, getenv)
}

// maxConfigSize is the largest configuration file accepted. A runbook is
// a few kilobytes; anything near this is a mistake (the wrong file) or an
// attack on the parser, and is refused before it is parsed.
const maxConfigSize = 10 << 20

var errTooLarge = &ConfigError{Problems: []Problem{{Message: "the file is larger than 10 MiB; a runbook is a few kilobytes: is this the right file?"}}}

// readConfigFile reads path, refusing a file over maxConfigSize without
// reading all of it.
func readConfigFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() && fi.Size() > maxConfigSize {
		return nil, errTooLarge
	}
	data, err := io.ReadAll(io.LimitReader(f, maxConfigSize+1))
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	if len(data) > maxConfigSize {
		return nil, errTooLarge
	}
	return data, nil
}

// loadConfigBytes is LoadConfig after reading the file. The names of the
// ACCESSBOT_ variables are taken from the process environment (getenv
// cannot list them); only those getenv reports as set count.
func loadConfigBytes(path string, data []byte, getenv func(string) string) (*Config, error) {
	return loadConfigEnv(path, data, getenv, environNames(os.Environ()))
}

// environNames returns the names of KEY=VALUE entries.
func environNames(environ []string) []string {
	out := make([]string, 0, len(environ))
	for _, kv := range environ {
		if k, _, _ := strings.Cut(kv, "="); k != "" {
			out = append(out, k)
		}
	}
	return out
}

// loadConfigEnv is loadConfigBytes with the environment's variable names
// given (tests pass the names of their fake environment).
func loadConfigEnv(path string, data []byte, getenv func(string) string, names []string) (*Config, error) {
	cfg, err := loadConfigPartial(path, data, getenv, names)
	if err != nil {
		return nil, err
	}
	return cfg, nil
}

// loadConfigPartial is loadConfigEnv, but when the file could be parsed it
// also returns the Config built despite the problems (nil otherwise), so
// that validate can run the checks that need one (connector blocks, grant
// parameters) and report everything in one run. A Config returned with an
// error is for checking only: parts of it are missing or wrong.
func loadConfigPartial(path string, data []byte, getenv func(string) string, names []string) (*Config, *ConfigError) {
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	if len(data) > maxConfigSize {
		return nil, errTooLarge
	}
	l := &loader{getenv: getenv, overridden: map[string]bool{}, literal: map[string]bool{}, unset: map[string]string{}, missingFile: map[string]Problem{}}
	// Parse the file ourselves first, with the YAML library viper uses,
	// keeping the keys' case: viper lower-cases keys, so `CRM:` next to
	// `crm:` would silently replace it, and it reads only the first
	// document of a stream.
	src, ok := l.checkRawYAML(data)
	if !ok {
		return nil, &ConfigError{Problems: l.problems}
	}

	// Viper is the layered store: file values, then environment overrides.
	// We feed the overrides through Set rather than AutomaticEnv because
	// AutomaticEnv reads the process environment directly, bypassing the
	// injected getenv (tests would not be hermetic), and because it only
	// reaches keys viper already knows, which for maps like systems.* are
	// only known once the file is read. envName is the same mapping that
	// SetEnvPrefix+SetEnvKeyReplacer would apply.
	v := viper.New()
	v.SetConfigType("yaml")
	if err := v.ReadConfig(bytes.NewReader(src)); err != nil {
		return nil, &ConfigError{Problems: []Problem{{Message: "not valid YAML: " + yamlMessage(err, data)}}}
	}
	known := map[string]bool{}
	var applied []string
	for _, p := range envPaths(rootSchema, "", v.AllSettings()) {
		name := envName(p.path)
		known[name] = true
		val := getenv(name)
		if val == "" {
			continue
		}
		if p.list {
			v.Set(p.path, splitList(val))
		} else {
			v.Set(p.path, val)
		}
		l.overridden[p.path] = true
		if isSecretPath(p.path) {
			applied = append(applied, name)
		} else {
			applied = append(applied, name+"="+val)
		}
	}
	sort.Strings(applied)
	applied = slices.Compact(applied)
	unknown := l.unknownEnv(names, known)
	tree := v.AllSettings()

	l.checkShape("", tree, rootSchema)
	expanded, _ := l.expand("", tree).(map[string]any)

	cfg := l.build(expanded)
	cfg.Path = path
	if cfg.Runbook != nil {
		cfg.Runbook.Hash = runbookHash(data, applied)
	}
	l.scrubAll(cfg)
	sortProblems(l.problems)
	cfg.Warnings = l.warnings
	cfg.MissingSecrets = l.missing
	cfg.missingFile = l.missingFile
	cfg.unsetSecret = map[string]string{}
	for _, p := range l.missing {
		if u := l.unset[p]; u != "" {
			cfg.unsetSecret[p] = u
		}
	}
	cfg.UnknownEnv = unknown
	for _, p := range l.unsetVars {
		if !slices.ContainsFunc(l.problems, func(q Problem) bool { return q.Path == p.Path }) {
			cfg.UnsetVars = append(cfg.UnsetVars, p) // else: an unknown key, say
		}
	}
	for i := range applied {
		applied[i] = l.scrub(applied[i])
	}
	cfg.Overrides = applied
	if len(l.problems) > 0 {
		return cfg, &ConfigError{Problems: l.problems}
	}
	return cfg, nil
}

// runbookHash is the fingerprint of the policy in force: the SHA-256 of
// the file's bytes and, when any took effect, the sorted environment
// overrides (secret ones by name only). Without overrides it is the
// SHA-256 of the file, so `sha256sum config.yaml` matches.
func runbookHash(data []byte, applied []string) string {
	h := sha256.New()
	h.Write(data)
	if len(applied) > 0 {
		h.Write([]byte("\x00accessbot environment overrides\n"))
		for _, a := range applied {
			h.Write([]byte(a + "\n"))
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}

// unknownEnv returns the set ACCESSBOT_ variables that map to no key path
// (known holds the names that do), with a did-you-mean, and warns about
// each: validate reports them, run refuses them.
func (l *loader) unknownEnv(names []string, known map[string]bool) []Problem {
	candidates := sortedKeys(known)
	seen := map[string]bool{}
	var out []Problem
	for _, name := range slices.Sorted(slices.Values(names)) {
		if seen[name] || known[name] || !strings.HasPrefix(strings.ToUpper(name), envPrefix+"_") || l.getenv(name) == "" {
			continue
		}
		seen[name] = true
		msg := "set, but no configuration key has this name, so it would change nothing"
		if s := suggest(name, candidates); s != "" {
			msg += fmt.Sprintf("; did you mean %s?", s)
		} else if name != strings.ToUpper(name) {
			msg += "; the names are upper case, like " + envName("slack.bot_token")
		}
		msg += " (run refuses to start while it is set)"
		p := Problem{Path: name, Message: msg}
		out = append(out, p)
		l.warnings = append(l.warnings, p.String())
	}
	return out
}

// sections is the order of the top-level keys in DESIGN.md §2, which is
// the order problems are listed in.
var sections = []string{"slack", "store", "timezone", "http", "audit", "defaults", "directory", "teams", "connectors", "systems"}

// sortProblems orders problems by section, then by key path, so that the
// problems of one role are listed together; the order is deterministic.
func sortProblems(ps []Problem) {
	rank := func(p Problem) int {
		top, _, _ := strings.Cut(p.Path, ".")
		top, _, _ = strings.Cut(top, "[")
		for i, s := range sections {
			if s == top {
				return i
			}
		}
		return -1 // file-level problems first
	}
	sort.SliceStable(ps, func(i, j int) bool {
		ri, rj := rank(ps[i]), rank(ps[j])
		if ri != rj {
			return ri < rj
		}
		return ps[i].Path < ps[j].Path
	})
}

// quotedValue is how the YAML parser quotes a value in its errors.
var quotedValue = regexp.MustCompile("`[^`]*`")

// lineRef is how a YAML error names its line.
var lineRef = regexp.MustCompile(`\bline [0-9]+\b`)

// yamlMessage turns a YAML error into one line that keeps the line numbers
// but not the values the parser quotes (a value may be a secret). The
// parser's reader errors (control characters, bad UTF-8) carry no line:
// the line of the first offending byte in data is added.
func yamlMessage(err error, data []byte) string {
	msg := err.Error()
	if i := strings.LastIndex(msg, "yaml: "); i >= 0 {
		msg = msg[i+len("yaml: "):]
	}
	msg = quotedValue.ReplaceAllString(msg, "a value")
	msg = strings.Join(strings.Fields(msg), " ")
	if !lineRef.MatchString(msg) {
		msg = fmt.Sprintf("line %d: %s", badByteLine(data), msg)
	}
	return msg
}

// badByteLine is the line of the first byte YAML does not allow (invalid
// UTF-8, a control character other than tab and line breaks), or of the
// last line when there is none.
func badByteLine(data []byte) int {
	line := 1
	for i := 0; i < len(data); {
		r, size := utf8.DecodeRune(data[i:])
		switch {
		case r == utf8.RuneError && size <= 1,
			r < 0x20 && r != '\t' && r != '\n' && r != '\r',
			r == 0x7f, r >= 0x80 && r < 0xa0 && r != 0x85,
			r >= 0xd800 && r <= 0xdfff, r == 0xfffe, r == 0xffff:
			return line
		case r == '\n':
			line++
		}
		i += size
	}
	if len(data) > 0 && data[len(data)-1] == '\n' && line > 1 {
		line--
	}
	return line
}

// envName is the environment variable that overrides a key path.
func envName(path string) string {
	return envPrefix + "_" + strings.ToUpper(strings.NewReplacer(".", "_", "-", "_").Replace(path))
}

// splitList splits an environment value for a list key.
func splitList(s string) []any {
	var out []any
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\n' }) {
		out = append(out, f)
	}
	return out
}

// loader collects problems and warnings while building a Config.
type loader struct {
	getenv     func(string) string
	overridden map[string]bool   // key paths set from ACCESSBOT_ variables
	literal    map[string]bool   // secret key paths written literally in the file
	unset      map[string]string // key path → "${A}, ${B}": variables it names that are unset
	secrets    []string          // every secret value seen, for scrubbing
	problems   []Problem
	warnings   []string
	missing    []string
	// missingFile: secret key path → the problem with its …_file twin.
	missingFile map[string]Problem
	unsetVars   []Problem
	// dedupped: case-duplicate keys were dropped from the tree.
	dedupped bool
}

func (l *loader) problem(path, format string, args ...any) {
	l.problems = append(l.problems, Problem{Path: path, Message: fmt.Sprintf(format, args...)})
}

func (l *loader) warn(path, format string, args ...any) {
	l.warnings = append(l.warnings, Problem{Path: path, Message: fmt.Sprintf(format, args...)}.String())
}

// scrubAll replaces any secret value that found its way into a problem or
// warning. Messages are written never to include values of secret keys;
// this is the second line of defence (a secret pasted into the wrong key).
func (l *loader) scrubAll(cfg *Config) {
	if cfg != nil {
		if s := cfg.Slack.AppToken.Reveal(); s != "" {
			l.secrets = append(l.secrets, s)
		}
		if s := cfg.Slack.BotToken.Reveal(); s != "" {
			l.secrets = append(l.secrets, s)
		}
		if s := cfg.Store.DSN.Reveal(); s != "" {
			l.secrets = append(l.secrets, s)
		}
	}
	for i := range l.problems {
		l.problems[i].Path = l.scrub(l.problems[i].Path)
		l.problems[i].Message = l.scrub(l.problems[i].Message)
	}
	for i := range l.warnings {
		l.warnings[i] = l.scrub(l.warnings[i])
	}
}

func (l *loader) scrub(s string) string { return scrubValues(s, l.secrets) }

// missingSecret records an empty secret at path and warns how to set it.
func (l *loader) missingSecret(path, key, consumer string) {
	l.missing = append(l.missing, path)
	why := "empty"
	if u := l.unset[path]; u != "" {
		why = u + " is not set"
	}
	l.warn(path, "%s; %s needs this secret: set the variable, or %s_file, or %s", why, consumer, key, envName(path))
}

// secretSuffixes mark connector keys holding secrets; each has a …_file twin.
var secretSuffixes = []string{"token", "secret", "password", "private_key", "api_key", "credentials", "dsn"}

// isSecretKey reports whether a key's value is a secret (not its _file twin).
func isSecretKey(key string) bool {
	k := strings.ToLower(key)
	for _, s := range secretSuffixes {
		if strings.HasSuffix(k, s) {
			return true
		}
	}
	return false
}

// isSecretPath reports whether the value at path is a secret: the slack
// tokens, the store's DSN and secret keys directly in a connector block.
func isSecretPath(path string) bool {
	parts := strings.Split(path, ".")
	switch {
	case path == "store.dsn":
		return true
	case len(parts) == 2 && parts[0] == "slack":
		return parts[1] == "app_token" || parts[1] == "bot_token"
	case len(parts) >= 3 && parts[0] == "connectors":
		return isSecretKey(parts[len(parts)-1])
	}
	return false
}

// isSecretFilePath reports whether path is the …_file twin of a secret
// key (slack.bot_token_file, connectors.NAME.token_file).
func isSecretFilePath(path string) bool {
	base, ok := strings.CutSuffix(path, "_file")
	return ok && isSecretPath(base)
}

var varRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// expand returns a copy of v with ${VAR} expanded in every string. It
// records secret values (for scrubbing), literal secrets (for a warning)
// and references to unset variables (warnings; missing secrets for secret
// keys). Numbers and booleans are kept as they are.
func (l *loader) expand(path string, v any) any {
	switch t := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(t))
		for _, k := range sortedKeys(t) {
			out[k] = l.expand(join(path, k), t[k])
		}
		return out
	case []any:
		out := make([]any, len(t))
		for i, e := range t {
			out[i] = l.expand(fmt.Sprintf("%s[%d]", path, i), e)
		}
		return out
	case string:
		secret := isSecretPath(path)
		var unset []string
		s := varRef.ReplaceAllStringFunc(t, func(m string) string {
			name := m[2 : len(m)-1]
			val := l.getenv(name)
			if val == "" {
				unset = append(unset, name)
			}
			return val
		})
		if secret {
			if s != "" {
				l.secrets = append(l.secrets, s)
			}
			if t != "" && !varRef.MatchString(t) && !l.overridden[path] {
				l.literal[path] = true
			}
		}
		if len(unset) > 0 {
			l.unset[path] = "${" + strings.Join(unset, "}, ${") + "}"
			switch {
			case secret:
				// A missing secret: warned about where it is read.
			case isSecretFilePath(path):
				l.warn(path, "%s is not set; the secret file name expands to nothing", l.unset[path])
			default:
				// The value would be wrong (or "required" later, which
				// hides the cause): validate and run refuse it
				// (Config.UnsetVars).
				l.warn(path, "%s is not set in the environment; it expands to nothing", l.unset[path])
				l.unsetVars = append(l.unsetVars, Problem{Path: path, Message: l.unset[path] + " is not set; set the variable in the environment, or write the value"})
			}
		}
		return s
	default:
		return v
	}
}

func join(prefix, key string) string {
	if prefix == "" {
		return key
	}
	return prefix + "." + key
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
