package main

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/store/postgres"
)

// Slack ID shapes. Slack IDs are upper-case letters and digits after a
// one-letter type prefix; W is an Enterprise Grid user.
var (
	userIDRe      = regexp.MustCompile(`^[UW][A-Z0-9]{2,}$`)
	channelIDRe   = regexp.MustCompile(`^[CGD][A-Z0-9]{2,}$`)
	usergroupIDRe = regexp.MustCompile(`^S[A-Z0-9]{2,}$`)
	emailRe       = regexp.MustCompile(`^[^@\s]+@[^@\s]+\.[^@\s]+$`)
	// Names typed in Slack commands (/access crm viewer) and referenced
	// as team:NAME: lower case (keys are case-insensitive anyway), no
	// spaces or colons.
	nameRe         = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*$`)
	commandRe      = regexp.MustCompile(`^/[a-z0-9][a-z0-9_-]{0,30}$`)
	profileFieldRe = regexp.MustCompile(`^Xf[A-Za-z0-9]+$`)
)

const (
	userIDHelp      = "a Slack user ID is U or W followed by capital letters and digits, like U0ALICE01"
	channelIDHelp   = "a Slack channel ID is C, G or D followed by capital letters and digits, like C0CRMOWN1"
	usergroupIDHelp = "a Slack user group ID is S followed by capital letters and digits, like S0HRTEAM1"
	nameHelp        = "use lower-case letters, digits, - and _"
)

// child returns m[key] as a mapping, or nil.
func child(m map[string]any, key string) map[string]any {
	c, _ := m[key].(map[string]any)
	return c
}

// scalarString renders a scalar as a string: numbers and booleans are
// stringified, anything else (already reported by checkShape) is "".
func scalarString(v any) string {
	switch t := v.(type) {
	case string:
		return t
	case bool:
		return strconv.FormatBool(t)
	case int:
		return strconv.Itoa(t)
	case int64:
		return strconv.FormatInt(t, 10)
	case uint64:
		return strconv.FormatUint(t, 10)
	case float64:
		return strconv.FormatFloat(t, 'f', -1, 64)
	case nil, map[string]any, []any:
		return ""
	default:
		return fmt.Sprint(t)
	}
}

func text(m map[string]any, key string) string { return strings.TrimSpace(scalarString(m[key])) }

// strings returns the list at m[key] as strings (checkShape reports
// non-lists and non-scalar items).
func stringList(m map[string]any, key string) []string {
	list, _ := m[key].([]any)
	out := make([]string, 0, len(list))
	for _, v := range list {
		out = append(out, strings.TrimSpace(scalarString(v)))
	}
	return out
}

func (l *loader) checkUser(path, id string) {
	if !userIDRe.MatchString(id) {
		l.problem(path, "%q is not a Slack user ID; %s", id, userIDHelp)
	}
}

// checkPerson accepts a Slack user ID or an email (admins and owners:
// run resolves emails to IDs at start-up, access.Runbook.ResolveEmails).
func (l *loader) checkPerson(path, ref string) {
	if !userIDRe.MatchString(ref) && !emailRe.MatchString(ref) {
		l.problem(path, "%q is neither a Slack user ID nor an email address; %s", ref, userIDHelp)
	}
}

func (l *loader) checkChannel(path, id string) {
	if id != "" && !channelIDRe.MatchString(id) {
		l.problem(path, "%q is not a Slack channel ID; %s", id, channelIDHelp)
	}
}

func (l *loader) checkUsergroup(path, id string) {
	if !usergroupIDRe.MatchString(id) {
		l.problem(path, "%q is not a Slack user group ID; %s", id, usergroupIDHelp)
	}
}

func (l *loader) checkName(path, what, name string) {
	if !nameRe.MatchString(name) {
		l.problem(path, "%q is not a valid %s name; %s", name, what, nameHelp)
	}
}

// commandVerbs are the words `/access` reads as subcommands (DESIGN.md §3).
// durationShapeRe matches what reads as a duration, even a non-positive
// one ("0h"), which the bot would answer as a bad duration.
var durationShapeRe = regexp.MustCompile(`^([0-9.]+[smhd])+$`)

var commandVerbs = []string{"help", "list", "pending", "systems", "cancel", "revoke", "extend", "audit", "for"}

// checkReserved reports a system or role ID that `/access SYSTEM ROLE
// DURATION …` could not tell apart from a subcommand or a duration.
func (l *loader) checkReserved(path, what, id string) {
	for _, v := range commandVerbs {
		if strings.EqualFold(id, v) {
			l.problem(path, "%q is an /access subcommand (%s), so it cannot be a %s name; choose another", id, strings.Join(commandVerbs, ", "), what)
			return
		}
	}
	if _, err := access.ParseDuration(id); err == nil || durationShapeRe.MatchString(strings.ToLower(id)) {
		l.problem(path, "%q reads as a duration in /access SYSTEM ROLE DURATION, so it cannot be a %s name; choose another", id, what)
	}
}

// duration parses m[key] if present. ok is false when the key is absent or
// invalid (already reported).
func (l *loader) duration(m map[string]any, path, key string) (time.Duration, bool) {
	v, present := m[key]
	if !present || !isScalar(v) {
		return 0, false
	}
	d, err := access.ParseDuration(scalarString(v))
	if err != nil {
		l.problem(join(path, key), "%v", err)
		return 0, false
	}
	return d, true
}

// policy is the overridable part of defaults and roles.
type policy struct {
	dur     map[string]time.Duration // by durationKeys
	from    map[string]string        // key path each value came from
	reason  bool                     // required
	reasonP string
}

// readPolicy reads the durations and reason of block m at path, on top of
// base (nil for the built-in values).
func (l *loader) readPolicy(m map[string]any, path string, base *policy) *policy {
	p := &policy{dur: map[string]time.Duration{}, from: map[string]string{}, reason: true, reasonP: "built-in default"}
	if base == nil {
		p.dur = map[string]time.Duration{
			"default_duration": defaultDefaultDuration, "max_duration": defaultMaxDuration,
			"approval_timeout": defaultApprovalTimeout, "reminder_after": defaultReminderAfter,
			"expiry_warning": defaultExpiryWarning,
		}
		for _, k := range durationKeys {
			p.from[k] = "built-in default"
		}
	} else {
		for k, v := range base.dur {
			p.dur[k] = v
			p.from[k] = base.from[k]
		}
		p.reason, p.reasonP = base.reason, base.reasonP
	}
	for _, k := range durationKeys {
		if d, ok := l.duration(m, path, k); ok {
			p.dur[k], p.from[k] = d, join(path, k)
		}
	}
	if _, ok := m["reason"]; ok {
		switch r := strings.ToLower(text(m, "reason")); r {
		case "required":
			p.reason = true
		case "optional":
			p.reason = false
		default:
			l.problem(join(path, "reason"), "%q is not allowed; use required or optional", r)
		}
		p.reasonP = join(path, "reason")
	}
	return p
}

// checkDurations reports a default above the maximum, blaming the key set
// at path when it is the role's own; an inherited default above a role's
// own maximum is lowered to it instead (shorter is always safe).
func (l *loader) checkDurations(p *policy, path string) {
	def, max := p.dur["default_duration"], p.dur["max_duration"]
	if def <= max {
		return
	}
	defPath, maxPath := join(path, "default_duration"), join(path, "max_duration")
	ownDef, ownMax := p.from["default_duration"] == defPath, p.from["max_duration"] == maxPath
	if !ownDef && !ownMax {
		return // both inherited: reported where they are set
	}
	if !ownDef {
		p.dur["default_duration"], p.from["default_duration"] = max, maxPath
		return
	}
	l.problem(defPath, "%s is above max_duration %s (%s); the default must not exceed the maximum",
		access.FormatDuration(def), access.FormatDuration(max), p.from["max_duration"])
}

// build decodes and validates the expanded tree. It always returns a
// Config; the caller discards it when problems were found.
func (l *loader) build(t map[string]any) *Config {
	cfg := &Config{Connectors: map[string]ConnectorConfig{}}
	rb := &access.Runbook{Teams: map[string]access.Team{}, Systems: map[string]*access.System{}}
	cfg.Runbook = rb

	// slack
	slack := child(t, "slack")
	cfg.Slack.AppToken = l.slackSecret(slack, "app_token", "xapp-", "an app-level token")
	cfg.Slack.BotToken = l.slackSecret(slack, "bot_token", "xoxb-", "a bot token")
	cfg.Slack.APIURL = text(slack, "api_url")
	if cfg.Slack.APIURL == "" {
		cfg.Slack.APIURL = defaultAPIURL
	} else if u, err := url.Parse(cfg.Slack.APIURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		l.problem("slack.api_url", "%q is not an http(s) URL; use https://slack.com/api/ or your emulator's URL", cfg.Slack.APIURL)
	} else if !strings.HasSuffix(u.Path, "/") || u.RawQuery != "" {
		l.problem("slack.api_url", "%q must end with \"/\", like https://slack.com/api/", cfg.Slack.APIURL)
	}
	cfg.Slack.Command = text(slack, "command")
	if cfg.Slack.Command == "" {
		cfg.Slack.Command = defaultCommand
	} else if !commandRe.MatchString(cfg.Slack.Command) {
		l.problem("slack.command", "%q is not a slash command; use / and up to 31 lower-case letters, digits, - or _, like /access", cfg.Slack.Command)
	}
	cfg.Slack.Admins = stringList(slack, "admins")
	for i, id := range cfg.Slack.Admins {
		l.checkPerson(fmt.Sprintf("slack.admins[%d]", i), id)
	}
	if len(cfg.Slack.Admins) == 0 {
		l.warn("slack.admins", "no admins: nobody can revoke any grant, and approval steps that resolve to nobody have no last resort")
	}
	cfg.Slack.AuditChannel = text(slack, "audit_channel")
	l.checkChannel("slack.audit_channel", cfg.Slack.AuditChannel)
	rb.Admins = cfg.Slack.Admins
	rb.AuditChannel = cfg.Slack.AuditChannel

	// store, timezone, http, audit
	cfg.Store = l.storeBlock(child(t, "store"))
	cfg.Timezone = text(t, "timezone")
	if cfg.Timezone == "" {
		cfg.Timezone = defaultTimezone
	}
	loc, err := time.LoadLocation(cfg.Timezone)
	if err != nil || cfg.Timezone == "Local" {
		l.problem("timezone", "%q is not a known timezone; use an IANA name like Europe/Berlin, America/New_York or UTC", cfg.Timezone)
		loc = time.UTC
	}
	rb.Location = loc
	cfg.HTTP.Listen = text(child(t, "http"), "listen")
	if cfg.HTTP.Listen != "" {
		if _, port, err := net.SplitHostPort(cfg.HTTP.Listen); err != nil || port == "" {
			l.problem("http.listen", "%q is not an address; use host:port like 127.0.0.1:9090 or :9090", cfg.HTTP.Listen)
		} else if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
			l.problem("http.listen", "port %q is not a number from 0 to 65535", port)
		}
	}
	audit := child(t, "audit")
	cfg.Audit.File = text(audit, "file")
	cfg.Audit.Retention, _ = l.duration(audit, "audit", "retention")

	// defaults
	defaults := l.readPolicy(child(t, "defaults"), "defaults", nil)
	l.checkDurations(defaults, "defaults")

	// directory
	managers := child(child(t, "directory"), "managers")
	static := child(managers, "static")
	rb.Managers.Static = map[string]string{}
	for _, k := range sortedKeys(static) {
		// Viper lower-cases keys; Slack user IDs are upper case.
		req, path := strings.ToUpper(k), "directory.managers.static."+k
		mgr := strings.TrimSpace(scalarString(static[k]))
		l.checkUser(path, req)
		if isScalar(static[k]) {
			l.checkUser(path, mgr)
			if strings.EqualFold(mgr, req) {
				l.problem(path, "%s is listed as their own manager; they would approve their own requests as manager (or the step would fall back silently): name their real manager", mgr)
			}
		}
		rb.Managers.Static[req] = mgr
	}
	rb.Managers.ProfileField = text(managers, "slack_profile_field")
	if f := rb.Managers.ProfileField; f != "" && !profileFieldRe.MatchString(f) {
		l.problem("directory.managers.slack_profile_field", "%q is not a Slack profile field ID; they start with Xf, like Xf0MANAGER", f)
	}
	rb.Managers.IdP = text(managers, "source")
	switch {
	case rb.Managers.IdP != "" && rb.Managers.ProfileField != "":
		l.problem("directory.managers.source", "both source and slack_profile_field are set; keep one (source, the identity provider, is the safer: people can edit their own Slack profile)")
	case rb.Managers.ProfileField != "":
		l.warn("directory.managers.slack_profile_field", "people can usually edit their own Slack profile fields, so a requester could name an accomplice as their manager and approver; read managers from the identity provider instead (directory.managers.source: an okta_group, google_group, entra_group or scim_group connector), or make the field admin-only in Slack")
	}
	cfg.Offboarding = stringList(child(t, "directory"), "offboarding")

	// teams
	teams := child(t, "teams")
	for _, name := range sortedKeys(teams) {
		path := "teams." + name
		l.checkName(path, "team", name)
		tm := child(teams, name)
		team := access.Team{Members: stringList(tm, "members"), Usergroup: text(tm, "slack_usergroup")}
		for i, m := range team.Members {
			if !userIDRe.MatchString(m) && !emailRe.MatchString(m) {
				l.problem(fmt.Sprintf("%s.members[%d]", path, i), "%q is neither a Slack user ID nor an email address; %s", m, userIDHelp)
			}
		}
		if team.Usergroup != "" {
			l.checkUsergroup(path+".slack_usergroup", team.Usergroup)
		}
		if len(team.Members) == 0 && team.Usergroup == "" && tm != nil {
			l.problem(path, "a team needs members (Slack user IDs or emails) or a slack_usergroup, or both")
		}
		rb.Teams[name] = team
	}

	// connectors
	systems := child(t, "systems")
	used := lookupRefs(systems) // named by roles' auto_if_on_call and ticket.verify
	for _, id := range sortedKeys(systems) {
		used[text(child(systems, id), "connector")] = true
	}
	if rb.Managers.IdP != "" {
		used[rb.Managers.IdP] = true
	}
	for _, name := range cfg.Offboarding {
		used[name] = true
	}
	conns := child(t, "connectors")
	for _, name := range sortedKeys(conns) {
		cfg.Connectors[name] = l.connector(name, conns[name], used[name])
		// Connectors no system uses are allowed (a demo or a migration
		// swaps them), but run neither builds them nor needs their secrets.
		if !used[name] {
			l.warnings = append(l.warnings, fmt.Sprintf("connectors.%s is not used by any system or role; run does not build it and does not need its secrets", name))
		}
	}

	if rb.Managers.IdP != "" {
		l.checkLookupRef("directory.managers.source", rb.Managers.IdP, idpTypes, "directory.managers.source", cfg.Connectors)
	}
	for i, name := range cfg.Offboarding {
		l.checkLookupRef(fmt.Sprintf("directory.offboarding[%d]", i), name, idpTypes, "directory.offboarding", cfg.Connectors)
	}

	// systems
	if len(systems) == 0 {
		l.problem("systems", "no systems: define at least one access point under systems")
	}
	for _, id := range sortedKeys(systems) {
		if sm, ok := systems[id].(map[string]any); ok {
			rb.Systems[id] = l.system(id, sm, cfg, defaults)
		}
	}
	l.dangers(cfg)
	return cfg
}

// dangers warns about runbooks that work but open an escalation path:
// everyone (guests included) granted without a human, and a Slack user
// group granted by a role while membership of that group is itself what
// lets people request or approve something.
func (l *loader) dangers(cfg *Config) {
	rb := cfg.Runbook
	// Where a user group decides who requests or approves.
	sources := map[string][]string{} // usergroup → "systems.crm.roles.viewer.requesters"
	note := func(group, where string) {
		if group != "" && !slices.Contains(sources[group], where) {
			sources[group] = append(sources[group], where)
		}
	}
	groupOf := func(s access.Source) string {
		switch s.Kind {
		case access.SourceUsergroup:
			return s.Ref
		case access.SourceTeam:
			return rb.Teams[s.Ref].Usergroup
		}
		return ""
	}
	for _, sid := range rb.SystemIDs() {
		sys := rb.Systems[sid]
		for _, rid := range sys.RoleIDs() {
			r := sys.Roles[rid]
			path := "systems." + sid + ".roles." + rid
			for _, p := range r.Requesters {
				note(groupOf(p), path+".requesters")
				if p.Kind == access.SourceEveryone && r.Approval.Auto {
					l.warn(path, "requesters: everyone with approval: auto grants %s %s to anyone in the workspace without a human, guests included; limit the requesters or add an approval step", sid, rid)
				}
			}
			for _, st := range r.Approval.Steps {
				for _, src := range st.Sources {
					note(groupOf(src), path+".approval")
				}
			}
		}
	}
	for _, sid := range rb.SystemIDs() {
		sys := rb.Systems[sid]
		if cfg.Connectors[sys.Connector].Type != "slack_usergroup" {
			continue
		}
		for _, rid := range sys.RoleIDs() {
			g := sys.Roles[rid].Grant["usergroup"]
			if where := sources[g]; len(where) > 0 {
				l.warn("systems."+sid+".roles."+rid+".grant.usergroup", "granting user group %s also makes its members eligible under %s: a grant here escalates to those roles; grant a group that decides nothing", g, strings.Join(where, ", "))
			}
		}
	}
}

// slackSecret reads slack.KEY or its slack.KEY_file twin. An empty result
// is a missing secret (a warning here; run refuses it).
func (l *loader) slackSecret(m map[string]any, key, prefix, what string) Secret {
	path := "slack." + key
	val, ok := l.secret(m, path, key, "run")
	if !ok {
		return ""
	}
	if !strings.HasPrefix(val, prefix) {
		l.problem(path, "does not look like %s (%s…)", what, prefix)
	}
	return Secret(val)
}

// secret reads the secret key of block m (at path) or its key_file twin,
// for consumer (named in the warning when it is missing). ok is false when
// it is missing or ambiguous (recorded as a problem or a missing secret).
func (l *loader) secret(m map[string]any, path, key, consumer string) (string, bool) {
	fpath := path + "_file"
	val, file := text(m, key), text(m, key+"_file")
	if val != "" && file != "" {
		// An environment override beats the file's twin; both in the same
		// layer is ambiguous.
		switch {
		case l.overridden[path] && !l.overridden[fpath]:
			file = ""
		case l.overridden[fpath] && !l.overridden[path]:
			val = ""
		default:
			l.problem(path, "set either %s or %s_file, not both", key, key)
			return "", false
		}
	}
	switch {
	case file != "":
		// An unreadable or empty file is a missing secret, like an unset
		// ${VAR}: a warning here (validate), an error for run
		// (RequireSecrets), naming the file either way.
		b, err := os.ReadFile(file)
		if err != nil {
			l.missingSecretFile(path, fpath, fmt.Sprintf("cannot read the secret file: %v", err))
			return "", false
		}
		val = strings.TrimSpace(string(b))
		if val == "" {
			l.missingSecretFile(path, fpath, fmt.Sprintf("the secret file %s is empty", file))
			return "", false
		}
		l.secrets = append(l.secrets, val)
	case val == "":
		l.missingSecret(path, key, consumer)
		return "", false
	case l.literal[path]:
		l.warn(path, "written literally in the file; move it to the environment (${VAR}) or to %s_file", key)
	}
	return val, true
}

// storeBlock reads the store block: the driver, the bbolt path, and the
// PostgreSQL DSN (a secret, required only with driver postgres).
func (l *loader) storeBlock(m map[string]any) StoreConfig {
	sc := StoreConfig{Driver: text(m, "driver"), Path: text(m, "path")}
	if sc.Driver == "" {
		sc.Driver = storeDriverBbolt
	}
	switch sc.Driver {
	case storeDriverBbolt:
		if text(m, "dsn") != "" || text(m, "dsn_file") != "" {
			l.problem("store.dsn", "is used only with store.driver postgres (store.driver is bbolt)")
		}
	case storeDriverPostgres:
		if sc.Path != "" {
			// A warning: the container image sets ACCESSBOT_STORE_PATH.
			l.warn("store.path", "ignored: it is the bbolt file, and store.driver is postgres (the store is store.dsn)")
			sc.Path = ""
		}
		if dsn, ok := l.secret(m, "store.dsn", "dsn", "store.driver postgres"); ok {
			if err := postgres.CheckDSN(dsn); err != nil {
				l.problem("store.dsn", "%v", err)
			}
			sc.DSN = Secret(dsn)
		}
	default:
		msg := fmt.Sprintf("%q is not a store driver; use bbolt (one process, one file) or postgres (several replicas)", sc.Driver)
		if s := access.Suggest(sc.Driver, []string{storeDriverBbolt, storeDriverPostgres}); s != "" {
			msg += fmt.Sprintf("; did you mean %q?", s)
		}
		l.problem("store.driver", "%s", msg)
	}
	if sc.Path == "" && sc.Driver != storeDriverPostgres {
		sc.Path = defaultStorePath
	}
	return sc
}

// missingSecretFile records the secret at path as missing because its
// …_file twin at fpath could not be used (msg says why).
func (l *loader) missingSecretFile(path, fpath, msg string) {
	l.missing = append(l.missing, path)
	l.missingFile[path] = Problem{Path: fpath, Message: msg}
	l.warn(fpath, "%s", msg)
}

// connector reads connectors.NAME. Its block is the connector's own to
// validate (validateConnectors); here only type and secrets are checked.
func (l *loader) connector(name string, v any, used bool) ConnectorConfig {
	path := "connectors." + name
	l.checkName(path, "connector", name)
	block, ok := v.(map[string]any)
	if !ok {
		l.problem(path, "expected a mapping with a type key and the connector's settings, got %s", describe(v))
		return ConnectorConfig{}
	}
	cc := ConnectorConfig{Type: text(block, "type"), Raw: map[string]any{}}
	if cc.Type == "" {
		l.problem(path+".type", "missing: every connector needs a type, like okta_group, metabase_group, webhook or manual")
	}
	for _, k := range sortedKeys(block) {
		if k == "type" {
			continue
		}
		cc.Raw[k] = block[k]
		if !isSecretKey(k) {
			continue
		}
		kp := join(path, k)
		if s, _ := block[k].(string); s == "" {
			if _, twin := block[k+"_file"]; !twin {
				if used {
					l.missingSecret(kp, k, "the connector")
				} else {
					l.missing = append(l.missing, kp) // not needed by run: no warning
				}
			}
		} else if l.literal[kp] {
			l.warn(kp, "written literally in the file; move it to the environment (${VAR}) or to %s_file", k)
		}
	}
	return cc
}

// system reads systems.ID.
func (l *loader) system(id string, m map[string]any, cfg *Config, defaults *policy) *access.System {
	path := "systems." + id
	l.checkName(path, "system", id)
	l.checkReserved(path, "system", id)
	sys := &access.System{
		ID:          id,
		Name:        text(m, "name"),
		Description: text(m, "description"),
		Owners:      stringList(m, "owners"),
		Channel:     text(m, "channel"),
		Connector:   text(m, "connector"),
		Roles:       map[string]*access.Role{},
	}
	for i, o := range sys.Owners {
		l.checkPerson(fmt.Sprintf("%s.owners[%d]", path, i), o)
	}
	if len(sys.Owners) == 0 {
		l.problem(path+".owners", "at least one owner (a Slack user ID or email) is required: owners are alerted when access cannot be removed")
	}
	l.checkChannel(path+".channel", sys.Channel)

	sched := access.Schedule{Off: true}
	if s := text(child(m, "digest"), "schedule"); s != "" {
		var err error
		if sched, err = access.ParseSchedule(s); err != nil {
			l.problem(path+".digest.schedule", "%v", err)
		}
	}
	sys.Digest = sched.String()
	if !sched.Off && sys.Channel == "" {
		// Digests go to the owners' channel and nowhere else
		// (access.Digests skips a system without one).
		l.warn(path+".digest.schedule", "%q, but %s has no channel: digests are posted only to the owners' channel, so none is ever sent; set %s.channel (a channel the bot is in), or digest: { schedule: off }",
			sched.String(), id, path)
	}

	switch _, ok := cfg.Connectors[sys.Connector]; {
	case sys.Connector == "":
		l.problem(path+".connector", "missing: name the connector instance (under connectors) that grants access to %s", id)
	case !ok:
		l.problem(path+".connector", "%q is not defined under connectors%s", sys.Connector,
			didYouMean(sys.Connector, sortedKeys(cfg.Connectors)))
	case isLookupType(cfg.Connectors[sys.Connector].Type):
		l.problem(path+".connector", "connector %q is of type %s, which only answers lookups (on-call schedules, tickets) and grants nothing; name a connector that grants access to %s",
			sys.Connector, cfg.Connectors[sys.Connector].Type, id)
	}

	roles := child(m, "roles")
	if len(roles) == 0 {
		l.problem(path+".roles", "no roles: define at least one, like viewer")
	}
	for _, rid := range sortedKeys(roles) {
		rm, ok := roles[rid].(map[string]any)
		if !ok {
			continue
		}
		sys.Roles[rid] = l.role(sys, rid, rm, cfg, defaults)
	}
	return sys
}

// didYouMean renders a suggestion and the defined names for an undefined
// reference.
func didYouMean(s string, defined []string) string {
	if len(defined) == 0 {
		return " (none are defined)"
	}
	out := " (defined: " + strings.Join(defined, ", ") + ")"
	if g := suggest(s, defined); g != "" {
		out = fmt.Sprintf("; did you mean %q?", g) + out
	}
	return out
}

// role reads systems.SYS.roles.ID.
func (l *loader) role(sys *access.System, id string, m map[string]any, cfg *Config, defaults *policy) *access.Role {
	rb := cfg.Runbook
	path := "systems." + sys.ID + ".roles." + id
	l.checkName(path, "role", id)
	l.checkReserved(path, "role", id)
	r := &access.Role{ID: id, Description: text(m, "description"), Grant: map[string]string{}}
	grant := child(m, "grant")
	for _, k := range sortedKeys(grant) {
		if isScalar(grant[k]) {
			r.Grant[k] = scalarString(grant[k])
		}
	}

	if _, ok := m["requesters"]; !ok {
		l.problem(path+".requesters", "missing: say who may request this role (team:NAME, user:UID, usergroup:SID or everyone)")
	}
	for i, s := range stringList(m, "requesters") {
		ip := fmt.Sprintf("%s.requesters[%d]", path, i)
		p, err := access.ParseSource(s, true)
		if err != nil {
			l.problem(ip, "%v", err)
			continue
		}
		l.checkRef(ip, p, rb)
		r.Requesters = append(r.Requesters, p)
	}

	r.Approval = l.approval(sys, path+".approval", m, r.Requesters, rb, cfg.Connectors)
	l.windowsAndTicket(path, m, r, r.Approval.Auto || r.Approval.AutoIfOnCall != nil, cfg.Connectors)

	p := l.readPolicy(m, path, defaults)
	l.checkDurations(p, path)
	if mp := join(path, "max_duration"); p.from["max_duration"] == mp && p.dur["max_duration"] > defaults.dur["max_duration"] {
		l.warn(mp, "%s is longer than defaults.max_duration %s; a role's own max_duration overrides the default, so %s may be requested for up to %s",
			access.FormatDuration(p.dur["max_duration"]), access.FormatDuration(defaults.dur["max_duration"]), id, access.FormatDuration(p.dur["max_duration"]))
	}
	r.DefaultDuration, r.MaxDuration = p.dur["default_duration"], p.dur["max_duration"]
	r.ApprovalTimeout, r.ReminderAfter, r.ExpiryWarning = p.dur["approval_timeout"], p.dur["reminder_after"], p.dur["expiry_warning"]
	r.ReasonRequired = p.reason
	r.Origin = access.RoleOrigin{
		DefaultDuration: p.from["default_duration"], MaxDuration: p.from["max_duration"],
		ApprovalTimeout: p.from["approval_timeout"], ReminderAfter: p.from["reminder_after"],
		ExpiryWarning: p.from["expiry_warning"], Reason: p.reasonP,
	}
	l.breakGlassAndBehalf(path, m, r, rb) // runbook_keys.go
	if !r.Approval.Auto && r.ReminderAfter >= r.ApprovalTimeout {
		l.warn(path, "reminder_after %s is not shorter than approval_timeout %s, so no reminder is ever sent",
			access.FormatDuration(r.ReminderAfter), access.FormatDuration(r.ApprovalTimeout))
	}
	return r
}

// checkRef checks the reference of a requester or approver source.
func (l *loader) checkRef(path string, s access.Source, rb *access.Runbook) {
	switch s.Kind {
	case access.SourceTeam:
		if _, ok := rb.Teams[s.Ref]; !ok {
			l.problem(path, "team %q is not defined under teams%s", s.Ref, didYouMean(s.Ref, sortedKeys(rb.Teams)))
		}
	case access.SourceUser:
		l.checkUser(path, s.Ref)
	case access.SourceUsergroup:
		l.checkUsergroup(path, s.Ref)
	}
}

// approval reads a role's approval: "auto" or {steps: [...]}.
func (l *loader) approval(sys *access.System, path string, role map[string]any, requesters []access.Principal, rb *access.Runbook, conns map[string]ConnectorConfig) access.Approval {
	v, ok := role["approval"]
	if !ok {
		l.problem(path, "missing: every role needs approval.steps, or approval: auto to grant without a human")
		return access.Approval{}
	}
	m, isMap := v.(map[string]any)
	if !isMap {
		if isScalar(v) && strings.EqualFold(scalarString(v), "auto") {
			return access.Approval{Auto: true}
		}
		if isScalar(v) {
			l.problem(path, "%q is not an approval policy; use approval: auto, or approval: {steps: [...]}", scalarString(v))
		}
		return access.Approval{}
	}
	sv, present := m["steps"]
	steps, isList := sv.([]any)
	// A mapping without steps but with other keys has a typo, already
	// reported as an unknown key.
	if (!present && len(m) == 0) || (isList && len(steps) == 0) {
		l.problem(path+".steps", "no steps: list at least one step, like - approvers: [owners]; or use approval: auto")
	}
	var a access.Approval
	if v, ok := m["distinct"]; ok {
		switch strings.ToLower(scalarString(v)) {
		case "true":
		case "false":
			a.SameApprover = true
			l.warn(path+".distinct", "false: one person may approve several steps of a request (their manager who is also in an approving team, say); by default each step needs someone who approved no other step")
		default:
			l.problem(path+".distinct", "%q is not true or false", scalarString(v))
		}
	}
	if v, ok := m["auto_if_on_call"]; ok && isScalar(v) {
		rule, err := access.ParseOnCallRule(scalarString(v))
		if err != nil {
			l.problem(path+".auto_if_on_call", "%v", err)
		} else {
			l.checkLookupRef(path+".auto_if_on_call", rule.Source, onCallTypes, "auto_if_on_call", conns)
			a.AutoIfOnCall = &rule
		}
		if !present {
			l.problem(path+".steps", "missing: auto_if_on_call needs steps for requesters who are not on call (and for when the schedule cannot be read), like - approvers: [owners]")
		}
	}
	for i, sv := range steps {
		sp := fmt.Sprintf("%s.steps[%d]", path, i)
		sm, ok := sv.(map[string]any)
		if !ok {
			continue
		}
		step := access.StepPolicy{Min: 1}
		if av, ok := sm["approvers"]; !ok {
			l.problem(sp+".approvers", "missing: list who approves, from manager, owners, team:NAME, user:UID, usergroup:SID")
		} else if list, isList := av.([]any); isList && len(list) == 0 {
			l.problem(sp+".approvers", "empty: a step needs at least one approver source (manager, owners, team:NAME, user:UID, usergroup:SID); use approval: auto to grant without a human")
		}
		seen := map[access.Source]bool{}
		bad := false
		for j, s := range stringList(sm, "approvers") {
			ap := fmt.Sprintf("%s.approvers[%d]", sp, j)
			src, err := access.ParseSource(s, false)
			if err != nil {
				msg := err.Error()
				if g := suggest(s, []string{"manager", "owners"}); g != "" {
					msg = fmt.Sprintf("%s; did you mean %q?", msg, g)
				}
				l.problem(ap, "%s", msg)
				bad = true
				continue
			}
			l.checkRef(ap, src, rb)
			if src.Kind == access.SourceManager && len(rb.Managers.Static) == 0 && rb.Managers.ProfileField == "" {
				l.warn(ap, "manager is an approver but directory.managers is empty, so no manager is ever found and the step falls back to the owners")
			}
			if !seen[src] {
				seen[src] = true
				step.Sources = append(step.Sources, src)
			}
		}
		if mv, ok := sm["min"]; ok && isScalar(mv) {
			n, err := strconv.Atoi(strings.TrimSpace(scalarString(mv)))
			if err != nil || n < 1 {
				l.problem(sp+".min", "%q is not allowed; min is a whole number of distinct approvers, 1 or more", scalarString(mv))
			} else {
				step.Min = n
			}
		}
		if bad || len(step.Sources) == 0 {
			// Already reported; a count would only repeat it.
		} else if most, known, why := maxApprovers(sys, step, requesters, rb); known && step.Min > most {
			l.problem(sp+".min", "%d is more than the %d people these approvers can ever be (%s; a requester never approves their own request)", step.Min, most, why)
		}
		a.Steps = append(a.Steps, step)
	}
	return a
}

// maxApprovers is the most distinct people other than the requester that a
// step's sources can resolve to, when that is knowable from the file
// (usergroups are resolved only at run time: known is false). why explains
// the count.
func maxApprovers(sys *access.System, step access.StepPolicy, requesters []access.Principal, rb *access.Runbook) (most int, known bool, why string) {
	people := map[string]bool{}
	manager := 0
	var parts []string
	for _, s := range step.Sources {
		switch s.Kind {
		case access.SourceManager:
			manager = 1
			parts = append(parts, "manager: 1")
		case access.SourceOwners:
			for _, o := range sys.Owners {
				people[o] = true
			}
			parts = append(parts, fmt.Sprintf("owners: %d", len(sys.Owners)))
		case access.SourceUser:
			people[s.Ref] = true
			parts = append(parts, s.String()+": 1")
		case access.SourceTeam:
			t, ok := rb.Teams[s.Ref]
			if !ok || t.Usergroup != "" {
				return 0, false, ""
			}
			for _, m := range t.Members {
				people[m] = true
			}
			parts = append(parts, fmt.Sprintf("%s: %d", s, len(t.Members)))
		default:
			return 0, false, ""
		}
	}
	most = len(people) + manager
	// If every possible requester is one of these people, one of them is
	// always the requester and cannot approve.
	if reqs, ok := enumerate(requesters, rb); ok && len(reqs) > 0 {
		all := true
		for _, r := range reqs {
			all = all && people[r]
		}
		if all {
			most--
			parts = append(parts, "every requester is among them")
		}
	}
	return most, true, strings.Join(parts, ", ")
}

// enumerate lists the people the requesters can be, if the file says
// exactly who they are.
func enumerate(ps []access.Principal, rb *access.Runbook) ([]string, bool) {
	var out []string
	for _, p := range ps {
		switch p.Kind {
		case access.SourceUser:
			out = append(out, p.Ref)
		case access.SourceTeam:
			t, ok := rb.Teams[p.Ref]
			if !ok || t.Usergroup != "" {
				return nil, false
			}
			out = append(out, t.Members...)
		default:
			return nil, false
		}
	}
	return out, true
}
