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
// (operator intervention, e.g. 57P01 admin_shutdown, 57P03
// cannot_connect_now while a server starts or recovers), 58 (system
// error), 40001 serialization_failure, 40P01 deadlock_detected and 25006
// read_only_sql_transaction are retryable. 25006 is what GRANT gets on a
// hot standby ("cannot execute GRANT ROLE in a read-only transaction",
// https://www.postgresql.org/docs/current/hot-standby.html): after a
// failover the DNS name or pooler may still lead to the old primary, now a
// standby, for a while; the retry reaches the new primary (and
// target_session_attrs=read-write in the DSN makes pgx skip standbys
// outright). 28 (invalid authorization, e.g. 28P01 bad password), 42501
// insufficient_privilege, 42704 undefined_object, 0LP01
// invalid_grant_operation (a membership loop) and every other server error
// are permanent.
//
// # Receipts
//
// A grant's receipt holds the database role name it granted to (UserID),
// so that the revoke acts on that role even if the person's email, and so
// the user mapping's result, changed since. A membership that existed
// before the grant is reported as PreExisting. A repeat of a grant (the
// same request ID) counts the membership it finds as its own
// (connectors.Intents, kept in the State accessbot lends). Records granted
// before receipts existed are revoked through the user mapping; a mapped
// role that does not exist is then a permanent error wrapping
// access.ErrUnknownUser, never "already removed".
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
	intents *connectors.Intents
}

var (
	_ access.Connector     = (*Connector)(nil)
	_ access.Checker       = (*Connector)(nil)
	_ access.ParamsChecker = (*Connector)(nil)
	_ connectors.Factory   = Factory
)

// Factory builds a postgres_role connector from its configuration block;
// it has the connectors.Factory signature. It needs durable State
// (Env.State) for the records of the grants it started.
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
	if err := cfg.RequireState(); err != nil {
		return nil, err
	}
	// No prepared statements: a connection lives for one operation.
	pc.DefaultQueryExecMode = pgx.QueryExecModeExec
	conn := &Connector{name: name, conn: pc, mapping: c.UserMapping, timeout: c.Timeout.Std(), intents: connectors.NewIntents(cfg.State)}
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

// Grant runs GRANT role TO user unless user is already a direct member,
// and returns the receipt (see the package comment).
func (c *Connector) Grant(ctx context.Context, g access.Grant) (access.Receipt, error) {
	op := c.op("grant", g)
	role, err := c.role(op, g)
	if err != nil {
		return access.Receipt{}, err
	}
	s := &session{c: c, op: op}
	defer s.close()
	return connectors.GrantMembership(ctx, c.intents, g, connectors.Member{
		Find: func(ctx context.Context) (connectors.Intent, bool, error) {
			user, err := DatabaseUser(c.mapping, g.User)
			if err != nil {
				return connectors.Intent{}, false, access.PermanentError(fmt.Errorf("%s: %w", op, err))
			}
			conn, err := s.open(ctx)
			if err != nil {
				return connectors.Intent{}, false, err
			}
			roleOK, userOK, err := c.exist(ctx, op, conn, role, user)
			switch {
			case err != nil:
				return connectors.Intent{}, false, err
			case !roleOK:
				return connectors.Intent{}, false, access.PermanentError(fmt.Errorf("%s: PostgreSQL role %s does not exist", op, role))
			case !userOK:
				return connectors.Intent{}, false, c.unknown(op, g, user)
			}
			member, err := isMember(ctx, conn, role, user)
			return connectors.Intent{UserID: user}, member, c.classify(ctx, op+": read pg_auth_members", err)
		},
		Add: func(ctx context.Context, in connectors.Intent) (access.Receipt, error) {
			conn, err := s.open(ctx)
			if err != nil {
				return access.Receipt{}, err
			}
			roleOK, userOK, err := c.exist(ctx, op, conn, role, in.UserID)
			switch {
			case err != nil:
				return access.Receipt{}, err
			case !roleOK:
				return access.Receipt{}, access.PermanentError(fmt.Errorf("%s: PostgreSQL role %s does not exist", op, role))
			case !userOK:
				return access.Receipt{}, access.PermanentError(fmt.Errorf("%s: database role %s, whom this grant acted on, no longer exists: %w", op, in.UserID, access.ErrUnknownUser))
			}
			stmt, err := c.change(ctx, op, conn, role, in.UserID, true)
			if err != nil {
				return access.Receipt{}, err
			}
			return access.Receipt{Note: stmt}, nil
		},
	}, "")
}

// Revoke runs REVOKE role FROM user if user (the receipt's database role)
// is a direct member, and checks afterwards that the membership is gone
// (PostgreSQL 16+ revokes only grants made by the current role unless told
// GRANTED BY; a membership granted by someone else survives and is
// reported as a permanent error rather than counted as revoked). A role
// that no longer exists has no membership left. A record without a
// receipt maps the person's email to a role name; a name that does not
// exist is a permanent error wrapping access.ErrUnknownUser.
func (c *Connector) Revoke(ctx context.Context, g access.Grant) error {
	op := c.op("revoke", g)
	role, err := c.role(op, g)
	if err != nil {
		return err
	}
	user, legacy := "", g.Receipt == nil || g.Receipt.UserID == ""
	switch {
	case !legacy:
		user = g.Receipt.UserID
	case g.Receipt != nil:
		return nil // the grant changed nothing
	default:
		if user, err = DatabaseUser(c.mapping, g.User); err != nil {
			return access.PermanentError(fmt.Errorf("%s: %w", op, err))
		}
	}
	s := &session{c: c, op: op}
	defer s.close()
	conn, err := s.open(ctx)
	if err != nil {
		return err
	}
	roleOK, userOK, err := c.exist(ctx, op, conn, role, user)
	switch {
	case err != nil:
		return err
	case !userOK && legacy:
		return c.unknown(op, g, user)
	case !roleOK || !userOK:
		// Dropped since the grant: no membership is left.
		c.intents.Forget(ctx, g.ID)
		return nil
	}
	if _, err := c.change(ctx, op, conn, role, user, false); err != nil {
		return err
	}
	c.intents.Forget(ctx, g.ID)
	return nil
}

// Check reports whether the user (the receipt's role, or the mapped one)
// is a direct member of the role.
func (c *Connector) Check(ctx context.Context, g access.Grant) (bool, error) {
	op := c.op("check", g)
	role, err := c.role(op, g)
	if err != nil {
		return false, err
	}
	user := ""
	if g.Receipt != nil && g.Receipt.UserID != "" {
		user = g.Receipt.UserID
	} else if user, err = DatabaseUser(c.mapping, g.User); err != nil {
		return false, access.PermanentError(fmt.Errorf("%s: %w", op, err))
	}
	s := &session{c: c, op: op}
	defer s.close()
	conn, err := s.open(ctx)
	if err != nil {
		return false, err
	}
	roleOK, userOK, err := c.exist(ctx, op, conn, role, user)
	switch {
	case err != nil:
		return false, err
	case !roleOK:
		return false, access.PermanentError(fmt.Errorf("%s: PostgreSQL role %s does not exist", op, role))
	case !userOK:
		return false, nil
	}
	member, err := isMember(ctx, conn, role, user)
	return member, c.classify(ctx, op+": read pg_auth_members", err)
}

// change grants (add) or revokes role for user unless already so, and
// verifies the result in pg_auth_members. It returns the statement it ran
// ("" if none).
func (c *Connector) change(ctx context.Context, op string, conn *pgx.Conn, role, user string, add bool) (string, error) {
	member, err := isMember(ctx, conn, role, user)
	if err != nil {
		return "", c.classify(ctx, op+": read pg_auth_members", err)
	}
	if member == add {
		return "", nil // already so
	}
	r, u := pgx.Identifier{role}.Sanitize(), pgx.Identifier{user}.Sanitize()
	stmt := "GRANT " + r + " TO " + u
	if !add {
		stmt = "REVOKE " + r + " FROM " + u
	}
	if _, err := conn.Exec(ctx, stmt); err != nil {
		return "", c.classify(ctx, fmt.Sprintf("%s: %s", op, stmt), err)
	}
	member, err = isMember(ctx, conn, role, user)
	if err != nil {
		return "", c.classify(ctx, op+": read pg_auth_members", err)
	}
	switch {
	case add && !member:
		return "", access.RetryableError(fmt.Errorf("%s: %s succeeded but pg_auth_members shows no membership", op, stmt), 0)
	case !add && member:
		return "", access.PermanentError(fmt.Errorf("%s: %s left the membership in place (granted by another role? on PostgreSQL 16+ REVOKE removes only the connector's own grants; remove it with REVOKE ... GRANTED BY)", op, stmt))
	}
	return stmt, nil
}

func (c *Connector) op(verb string, g access.Grant) string {
	return connectors.Op("postgres_role", c.name, verb, g)
}

// role reads the role grant parameter for op.
func (c *Connector) role(op string, g access.Grant) (string, error) {
	role, err := grantParams.Get(op, g.Params, ParamRole)
	if err != nil {
		return "", err
	}
	return role, nil
}

// unknown is the permanent error for a person whose mapped database role
// does not exist.
func (c *Connector) unknown(op string, g access.Grant, user string) error {
	return access.PermanentError(fmt.Errorf("%s: no database user %s for %s in %s: %w", op, user, g.User.Email, system(g), access.ErrUnknownUser))
}

// exist reports whether role and user exist in pg_roles.
func (c *Connector) exist(ctx context.Context, op string, conn *pgx.Conn, role, user string) (roleOK, userOK bool, err error) {
	err = conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1),
		EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $2)`, role, user).Scan(&roleOK, &userOK)
	return roleOK, userOK, c.classify(ctx, op+": read pg_roles", err)
}

// session is one operation's connection, opened on first use and closed
// by close; its timeout bounds the whole operation.
type session struct {
	c      *Connector
	op     string
	conn   *pgx.Conn
	cancel context.CancelFunc
}

func (s *session) open(ctx context.Context) (*pgx.Conn, error) {
	if s.conn != nil {
		return s.conn, nil
	}
	if err := ctx.Err(); err != nil {
		return nil, access.RetryableError(fmt.Errorf("%s: %w", s.op, err), 0)
	}
	cctx, cancel := context.WithTimeout(ctx, s.c.timeout)
	conn, err := pgx.ConnectConfig(cctx, s.c.conn)
	if err != nil {
		err = s.c.classify(cctx, fmt.Sprintf("%s: connect to %s", s.op, s.c.where()), err)
		cancel()
		return nil, err
	}
	s.conn, s.cancel = conn, cancel
	return conn, nil
}

func (s *session) close() {
	if s.conn == nil {
		return
	}
	// A fresh context: closing must not be skipped because ctx ended.
	cctx, ccancel := context.WithTimeout(context.Background(), time.Second)
	defer ccancel()
	_ = s.conn.Close(cctx)
	s.cancel()
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
	if pe.Code == "25006" {
		msg = fmt.Errorf("%s: the server is read-only (a hot standby, as after a failover): %s (SQLSTATE %s); retried, and target_session_attrs=read-write in the DSN avoids standbys", what, pe.Message, pe.Code)
	}
	if RetryableCode(pe.Code) {
		return access.RetryableError(msg, 0)
	}
	return access.PermanentError(msg)
}

// RetryableCode reports whether a SQLSTATE is worth retrying: classes 08
// (connection exception), 53 (insufficient resources), 57 (operator
// intervention: admin/crash shutdown, cannot connect now), 58 (system
// error), 40001 / 40P01 (serialization failure, deadlock) and 25006
// (read-only transaction: connected to a standby, as after a failover).
func RetryableCode(code string) bool {
	switch code {
	case "40001", "40P01", "25006":
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
