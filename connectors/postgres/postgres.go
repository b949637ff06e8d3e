// Package postgres is the `postgres_role` connector: it grants access with
// `GRANT role TO user` and revokes it with `REVOKE role FROM user` on a
// PostgreSQL server (https://www.postgresql.org/docs/current/sql-grant.html,
// https://www.postgresql.org/docs/current/sql-revoke.html, "GRANT on
// Roles"), through github.com/jackc/pgx/v5.
//
// Before changing anything it looks both roles up in pg_roles, so a
// missing group role or database user is a clear permanent error, and it
// reads pg_auth_members before and after the change, so that idempotency
// does not rest on the server's NOTICE ("role is already a member") or
// WARNING ("role is not a member") alone. Identifiers are always quoted
// with pgx.Identifier.Sanitize, never concatenated raw.
//
// Errors (SQLSTATE, https://www.postgresql.org/docs/current/errcodes-appendix.html)
// map as follows: connection failures, class 08 (connection exception),
// 53 (insufficient resources, e.g. 53300 too_many_connections), 57
// (operator intervention, e.g. 57P01 admin_shutdown), 58 (system error),
// 40001 serialization_failure and 40P01 deadlock_detected are retryable;
// 28 (invalid authorization, e.g. 28P01 bad password), 42501
// insufficient_privilege, 42704 undefined_object and every other server
// error are permanent.
//
// Expiry backstop: not implemented. PostgreSQL role memberships have no
// expiry; VALID UNTIL exists only on a login role's password, so using it
// would lock the person out of the database entirely, not just remove the
// granted role. The key valid_until_backstop is recognised so that setting
// it fails with this explanation instead of an "unknown key".
package postgres

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/connectors"
)

// Type is the connector type of the `type:` key.
const Type = "postgres_role"

// ParamRole is the grant parameter naming the role to grant.
const ParamRole = "role"

// User mappings.
const (
	MappingEmailLocalPart = "email_local_part"
	MappingEmail          = "email"
)

// defaultTimeout bounds one whole operation (connect, checks, change).
const defaultTimeout = 15 * time.Second

// maxIdentifier is NAMEDATALEN-1: longer names are silently truncated by
// the server, which could make two people's names collide.
const maxIdentifier = 63

// Config is the `connectors.NAME` block of a postgres_role connector.
type Config struct {
	// DSN (usually ${ENV}) or DSNFile: a libpq connection string or URL.
	// Set either a DSN or host (with the other connection keys), not both.
	DSN     connectors.Redacted `json:"dsn"`
	DSNFile string              `json:"dsn_file"`

	Host     string              `json:"host"`
	Port     int                 `json:"port"` // default 5432
	Database string              `json:"database"`
	User     string              `json:"user"`
	Password connectors.Redacted `json:"password"`
	// PasswordFile names a file holding the password.
	PasswordFile string `json:"password_file"`
	// SSLMode is a libpq sslmode; default verify-full.
	SSLMode string `json:"sslmode"`

	// UserMapping turns the Slack person into a database role name:
	// email_local_part (default: the part before @, lower-cased), email
	// (the whole email, lower-cased), or a template using {{local}} and
	// {{email}}, such as analyst_{{local}}.
	UserMapping string `json:"user_mapping"`
	// ValidUntilBackstop is not supported (see the package comment);
	// true is a configuration error.
	ValidUntilBackstop bool `json:"valid_until_backstop"`
	// Timeout bounds each operation (default 15s).
	Timeout connectors.Duration `json:"timeout"`
}

var sslModes = map[string]bool{
	"disable": true, "allow": true, "prefer": true, "require": true, "verify-ca": true, "verify-full": true,
}

var templateVar = regexp.MustCompile(`\{\{[^}]*\}\}`)

// Validate checks c; errors name keys relative to the block and never
// contain the DSN or password.
func (c *Config) Validate() error {
	var errs []error
	hasDSN := c.DSN != "" || c.DSNFile != ""
	switch {
	case hasDSN && (c.Host != "" || c.Port != 0 || c.Database != "" || c.User != "" || c.Password != "" || c.PasswordFile != "" || c.SSLMode != ""):
		errs = append(errs, errors.New("dsn: set either dsn (or dsn_file) or host/port/database/user/password/sslmode, not both"))
	case !hasDSN:
		if c.Host == "" {
			errs = append(errs, errors.New("host: required (or dsn / dsn_file)"))
		}
		if c.Database == "" {
			errs = append(errs, errors.New("database: required"))
		}
		if c.User == "" {
			errs = append(errs, errors.New("user: required"))
		}
		if c.Password == "" && c.PasswordFile == "" {
			errs = append(errs, errors.New("password: required (or password_file)"))
		}
		if c.Port < 0 || c.Port > 65535 {
			errs = append(errs, errors.New("port: must be between 1 and 65535"))
		}
		if c.SSLMode != "" && !sslModes[c.SSLMode] {
			errs = append(errs, errors.New("sslmode: must be disable, allow, prefer, require, verify-ca or verify-full"))
		}
	}
	if err := checkMapping(c.UserMapping); err != nil {
		errs = append(errs, fmt.Errorf("user_mapping: %w", err))
	}
	if c.ValidUntilBackstop {
		errs = append(errs, errors.New("valid_until_backstop: not supported: PostgreSQL role memberships cannot expire, and VALID UNTIL on the person's login role would lock them out of the database entirely; remove the key (revocation relies on accessbot's retried revoke)"))
	}
	if c.Timeout < 0 {
		errs = append(errs, errors.New("timeout: must be positive"))
	}
	return errors.Join(errs...)
}

func checkMapping(m string) error {
	switch m {
	case "", MappingEmailLocalPart, MappingEmail:
		return nil
	}
	vars := templateVar.FindAllString(m, -1)
	if len(vars) == 0 {
		return fmt.Errorf("must be %s, %s, or a template with {{local}} or {{email}}", MappingEmailLocalPart, MappingEmail)
	}
	for _, v := range vars {
		if v != "{{local}}" && v != "{{email}}" {
			return fmt.Errorf("unknown template variable %s (known: {{local}}, {{email}})", v)
		}
	}
	if rest := templateVar.ReplaceAllString(m, ""); strings.ContainsAny(rest, "{}") {
		return errors.New("unbalanced braces in template")
	}
	return nil
}

// Connector grants and revokes PostgreSQL role memberships. It is safe for
// concurrent use.
type Connector struct {
	name    string
	conn    *pgx.ConnConfig
	mapping string
	timeout time.Duration
}

var (
	_ access.Connector     = (*Connector)(nil)
	_ access.Checker       = (*Connector)(nil)
	_ access.ParamsChecker = (*Connector)(nil)
	_ connectors.Factory   = Factory
)

// Factory builds a postgres_role connector from its configuration block;
// it has the connectors.Factory signature.
func Factory(name string, cfg connectors.Config) (access.Connector, error) {
	var c Config
	if err := cfg.Decode(&c); err != nil {
		return nil, err
	}
	var pc *pgx.ConnConfig
	if c.DSN != "" || c.DSNFile != "" {
		dsn, err := cfg.Secret("dsn")
		if err != nil {
			return nil, err
		}
		if pc, err = pgx.ParseConfig(dsn); err != nil {
			// pgx's parse errors can quote the string: never show it.
			return nil, fmt.Errorf("connectors.%s.dsn: not a valid PostgreSQL connection string (the value is not shown)", name)
		}
	} else {
		password, err := cfg.Secret("password")
		if err != nil {
			return nil, err
		}
		port := c.Port
		if port == 0 {
			port = 5432
		}
		sslmode := c.SSLMode
		if sslmode == "" {
			sslmode = "verify-full"
		}
		// Keyword/value form with every value quoted (libpq rules), the
		// password set on the parsed config so it is never in a string.
		dsn := fmt.Sprintf("host=%s port=%d dbname=%s user=%s sslmode=%s",
			kv(c.Host), port, kv(c.Database), kv(c.User), kv(sslmode))
		if pc, err = pgx.ParseConfig(dsn); err != nil {
			return nil, fmt.Errorf("connectors.%s: invalid connection settings: %v", name, err)
		}
		pc.Password = password
	}
	// No prepared statements: a connection lives for one operation.
	pc.DefaultQueryExecMode = pgx.QueryExecModeExec
	conn := &Connector{name: name, conn: pc, mapping: c.UserMapping, timeout: c.Timeout.Std()}
	if conn.mapping == "" {
		conn.mapping = MappingEmailLocalPart
	}
	if conn.timeout == 0 {
		conn.timeout = defaultTimeout
	}
	return conn, nil
}

// kv quotes a libpq keyword/value value.
func kv(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

// DatabaseUser returns the role name the mapping gives the person.
func DatabaseUser(mapping string, p access.Person) (string, error) {
	email := strings.ToLower(strings.TrimSpace(p.Email))
	local, _, ok := strings.Cut(email, "@")
	if !ok || local == "" {
		return "", fmt.Errorf("%q is not an email address", p.Email)
	}
	var name string
	switch mapping {
	case "", MappingEmailLocalPart:
		name = local
	case MappingEmail:
		name = email
	default:
		name = strings.NewReplacer("{{local}}", local, "{{email}}", email).Replace(mapping)
	}
	if len(name) > maxIdentifier {
		return "", fmt.Errorf("database user name %q is longer than %d bytes", name, maxIdentifier)
	}
	if strings.ContainsRune(name, 0) {
		return "", errors.New("database user name contains a NUL byte")
	}
	return name, nil
}

// Grant implements access.Connector. It returns an empty receipt: this
// connector does not yet record what it changed.
func (c *Connector) Grant(ctx context.Context, g access.Grant) (access.Receipt, error) {
	return access.Receipt{}, c.applyGrant(ctx, g)
}

// Grant runs GRANT role TO user unless user is already a direct member.
func (c *Connector) applyGrant(ctx context.Context, g access.Grant) error {
	return c.change(ctx, "grant", g)
}

// Revoke runs REVOKE role FROM user if user is a direct member, and
// checks afterwards that the membership is gone (PostgreSQL 16+ revokes
// only grants made by the current role unless told GRANTED BY; a
// membership granted by someone else survives and is reported as a
// permanent error rather than counted as revoked).
func (c *Connector) Revoke(ctx context.Context, g access.Grant) error {
	return c.change(ctx, "revoke", g)
}

// Check reports whether the user is a direct member of the role.
func (c *Connector) Check(ctx context.Context, g access.Grant) (bool, error) {
	var member bool
	err := c.session(ctx, "check", g, func(ctx context.Context, conn *pgx.Conn, what, role, user string) error {
		var err error
		member, err = isMember(ctx, conn, role, user)
		return c.classify(ctx, what+": read pg_auth_members", err)
	})
	return member, err
}

func (c *Connector) change(ctx context.Context, op string, g access.Grant) error {
	return c.session(ctx, op, g, func(ctx context.Context, conn *pgx.Conn, what, role, user string) error {
		member, err := isMember(ctx, conn, role, user)
		if err != nil {
			return c.classify(ctx, what+": read pg_auth_members", err)
		}
		if member == (op == "grant") {
			return nil // already so
		}
		r, u := pgx.Identifier{role}.Sanitize(), pgx.Identifier{user}.Sanitize()
		stmt := "GRANT " + r + " TO " + u
		if op == "revoke" {
			stmt = "REVOKE " + r + " FROM " + u
		}
		if _, err := conn.Exec(ctx, stmt); err != nil {
			return c.classify(ctx, fmt.Sprintf("%s: %s", what, stmt), err)
		}
		member, err = isMember(ctx, conn, role, user)
		if err != nil {
			return c.classify(ctx, what+": read pg_auth_members", err)
		}
		switch {
		case op == "grant" && !member:
			return access.RetryableError(fmt.Errorf("%s: %s succeeded but pg_auth_members shows no membership", what, stmt), 0)
		case op == "revoke" && member:
			return access.PermanentError(fmt.Errorf("%s: %s left the membership in place (granted by another role? on PostgreSQL 16+ REVOKE removes only the connector's own grants; remove it with REVOKE ... GRANTED BY)", what, stmt))
		}
		return nil
	})
}

// session connects, validates the grant's role and user, and runs fn.
func (c *Connector) session(ctx context.Context, op string, g access.Grant,
	fn func(ctx context.Context, conn *pgx.Conn, what, role, user string) error) error {
	what := fmt.Sprintf("postgres_role %s: %s %s for %s", c.name, op, g.ID, person(g.User))
	role, err := roleParam(g.Params)
	if err != nil {
		return access.PermanentError(fmt.Errorf("%s: grant parameter %w", what, err))
	}
	user, err := DatabaseUser(c.mapping, g.User)
	if err != nil {
		return access.PermanentError(fmt.Errorf("%s: %w", what, err))
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	if err := ctx.Err(); err != nil {
		return access.RetryableError(fmt.Errorf("%s: %w", what, err), 0)
	}
	conn, err := pgx.ConnectConfig(ctx, c.conn)
	if err != nil {
		return c.classify(ctx, fmt.Sprintf("%s: connect to %s", what, c.where()), err)
	}
	defer func() {
		// A fresh context: closing must not be skipped because ctx ended.
		cctx, ccancel := context.WithTimeout(context.Background(), time.Second)
		defer ccancel()
		_ = conn.Close(cctx)
	}()
	var roleOK, userOK bool
	err = conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1),
		EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $2)`, role, user).Scan(&roleOK, &userOK)
	if err != nil {
		return c.classify(ctx, what+": read pg_roles", err)
	}
	if !roleOK {
		return access.PermanentError(fmt.Errorf("%s: PostgreSQL role %s does not exist", what, role))
	}
	if !userOK {
		return access.PermanentError(fmt.Errorf("%s: no database user %s for %s in %s", what, user, g.User.Email, system(g)))
	}
	return fn(ctx, conn, what, role, user)
}

// isMember reads pg_auth_members for a direct membership (any grantor).
func isMember(ctx context.Context, conn *pgx.Conn, role, user string) (bool, error) {
	var ok bool
	err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_auth_members m
		JOIN pg_roles r ON r.oid = m.roleid JOIN pg_roles u ON u.oid = m.member
		WHERE r.rolname = $1 AND u.rolname = $2)`, role, user).Scan(&ok)
	return ok, err
}

func (c *Connector) where() string {
	return fmt.Sprintf("%s:%d/%s", c.conn.Host, c.conn.Port, c.conn.Database)
}

// classify turns a pgx error into a connector error (see the package
// comment). nil stays nil.
func (c *Connector) classify(ctx context.Context, what string, err error) error {
	if err == nil {
		return nil
	}
	if ctxErr := ctx.Err(); ctxErr != nil {
		return access.RetryableError(fmt.Errorf("%s: %w (%v)", what, ctxErr, err), 0)
	}
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		// No answer from the server: refused, reset, DNS, TLS, timeout.
		// pgconn's errors name host, user and database, never the
		// password.
		return access.RetryableError(fmt.Errorf("%s: %v", what, err), 0)
	}
	msg := fmt.Errorf("%s: %s (SQLSTATE %s)", what, pe.Message, pe.Code)
	if strings.HasPrefix(pe.Code, "28") {
		msg = fmt.Errorf("%s: the server rejected the connector's credentials: %s (SQLSTATE %s)", what, pe.Message, pe.Code)
	}
	if RetryableCode(pe.Code) {
		return access.RetryableError(msg, 0)
	}
	return access.PermanentError(msg)
}

// RetryableCode reports whether a SQLSTATE is worth retrying: classes 08
// (connection exception), 53 (insufficient resources), 57 (operator
// intervention: admin/crash shutdown, cannot connect now), 58 (system
// error), and 40001 / 40P01 (serialization failure, deadlock).
func RetryableCode(code string) bool {
	if code == "40001" || code == "40P01" {
		return true
	}
	switch {
	case strings.HasPrefix(code, "08"), strings.HasPrefix(code, "53"),
		strings.HasPrefix(code, "57"), strings.HasPrefix(code, "58"):
		return true
	}
	return false
}

// system names the target system in errors.
func system(g access.Grant) string {
	if g.System != "" {
		return g.System
	}
	return "the database"
}

// person names the person in errors (owners must know whom it concerns).
func person(p access.Person) string {
	if p.Email != "" {
		return p.SlackID + " (" + p.Email + ")"
	}
	return p.SlackID
}
