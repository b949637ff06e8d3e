package postgres_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/connectors"
	"github.com/accessbot/accessbot/connectors/conformance"
	"github.com/accessbot/accessbot/connectors/connectortest"
	"github.com/accessbot/accessbot/connectors/postgres"
	"github.com/accessbot/accessbot/internal/testsvc"
)

// build builds a connector through the registry, as cmd does.
func build(t *testing.T, raw map[string]any) *postgres.Connector {
	t.Helper()
	reg := connectors.NewRegistry()
	reg.Add(postgres.Type, postgres.Factory)
	c, err := reg.Build("warehouse", postgres.Type, raw, connectors.Env{State: &connectortest.State{}})
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	return c.(*postgres.Connector)
}

func dsnConfig(p *testsvc.Postgres) map[string]any {
	return map[string]any{"type": postgres.Type, "dsn": p.DSN, "timeout": "10s"}
}

func grantFor(local, role string) access.Grant {
	return access.Grant{
		ID: "AR-" + local, System: "warehouse", Role: "read",
		Params: map[string]string{postgres.ParamRole: role},
		User:   access.Person{SlackID: "U" + strings.ToUpper(local), Email: strings.ToUpper(local[:1]) + local[1:] + "@Example.com", Name: local},
	}
}

func wantClass(t *testing.T, err error, want access.ErrorClass, contains ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got nil, want a %v error", want)
	}
	var ce *access.ConnectorError
	if !errors.As(err, &ce) {
		t.Fatalf("unclassified error: %v", err)
	}
	if got, _ := access.Classify(err); got != want {
		t.Fatalf("class %v, want %v: %v", got, want, err)
	}
	for _, c := range contains {
		if !strings.Contains(err.Error(), c) {
			t.Errorf("error %q does not contain %q", err, c)
		}
	}
}

func TestConformance(t *testing.T) {
	p := testsvc.StartPostgres(t)
	// The person is the database role "alice" (email_local_part mapping).
	// DeleteUser drops it, so New puts it back. The connector reaches the
	// server through a proxy that can refuse the next connection the way a
	// server does (faultProxy).
	fp := newFaultProxy(t, p)
	conformance.Run(t, conformance.Harness{
		New: func(t *testing.T) access.Connector {
			p.Exec(t, `DO $$ BEGIN
				IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'alice') THEN CREATE ROLE alice LOGIN; END IF;
			END $$`, "REVOKE analyst_ro FROM alice")
			return build(t, map[string]any{"dsn": fp.dsn, "timeout": "10s"})
		},
		FailNext:     func(t *testing.T, status int) { fp.FailNext(status) },
		Grant:        func(t *testing.T) access.Grant { return grantFor("alice", "analyst_ro") },
		HasAccess:    func(t *testing.T, g access.Grant) bool { return p.IsMember(t, "analyst_ro", "alice") },
		UnknownUser:  func(t *testing.T) access.Grant { return grantFor("nobody", "analyst_ro") },
		TargetUserID: func(t *testing.T, g access.Grant) string { return "alice" },
		// The person's email changes to alice.smith@: the database role
		// that has the access is still "alice" (its name is the target's
		// identity), while the mapping of the new email gives
		// "alice.smith", which does not exist. The revoke by receipt must
		// act on "alice".
		ChangeEmail: func(t *testing.T, g access.Grant) string { return "Alice.Smith@Example.com" },
		PreGrant:    func(t *testing.T, g access.Grant) { p.Exec(t, "GRANT analyst_ro TO alice") },
		DeleteUser:  func(t *testing.T, g access.Grant) { p.Exec(t, "DROP ROLE alice") },
	})
}

func TestGrantRevoke(t *testing.T) {
	p := testsvc.StartPostgres(t)
	ctx := t.Context()
	// The host/port form, with the password from a file.
	pw := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pw, []byte(p.Password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := build(t, map[string]any{
		"host": p.Host, "port": p.Port, "database": p.Database, "user": p.User,
		"password_file": pw, "sslmode": "disable",
	})
	g := grantFor("bob", "analyst_ro")

	t.Run("Success", func(t *testing.T) {
		if _, err := c.Grant(ctx, g); err != nil {
			t.Fatal(err)
		}
		if !p.IsMember(t, "analyst_ro", "bob") {
			t.Fatal("bob not a member after Grant")
		}
		if err := c.Revoke(ctx, g); err != nil {
			t.Fatal(err)
		}
		if p.IsMember(t, "analyst_ro", "bob") {
			t.Fatal("bob still a member after Revoke")
		}
	})
	t.Run("AlreadyMember", func(t *testing.T) {
		p.Exec(t, "GRANT analyst_ro TO bob")
		if _, err := c.Grant(ctx, g); err != nil {
			t.Fatalf("Grant of an existing membership: %v", err)
		}
		if ok, err := c.Check(ctx, g); err != nil || !ok {
			t.Fatalf("Check = %v, %v", ok, err)
		}
	})
	t.Run("NotMemberOnRevoke", func(t *testing.T) {
		p.Exec(t, "REVOKE analyst_ro FROM bob")
		if err := c.Revoke(ctx, g); err != nil {
			t.Fatalf("Revoke of a missing membership: %v", err)
		}
		if ok, err := c.Check(ctx, g); err != nil || ok {
			t.Fatalf("Check = %v, %v", ok, err)
		}
	})
	t.Run("OtherMembershipsKept", func(t *testing.T) {
		p.Exec(t, "GRANT analyst_rw TO bob", "GRANT analyst_ro TO carol")
		if _, err := c.Grant(ctx, g); err != nil {
			t.Fatal(err)
		}
		if err := c.Revoke(ctx, g); err != nil {
			t.Fatal(err)
		}
		if !p.IsMember(t, "analyst_rw", "bob") || !p.IsMember(t, "analyst_ro", "carol") {
			t.Fatal("other memberships lost")
		}
	})
	t.Run("UserNotFound", func(t *testing.T) {
		err := connectortest.ErrOf(c.Grant(ctx, grantFor("mallory", "analyst_ro")))
		wantClass(t, err, access.Permanent, "no database user mallory for Mallory@Example.com")
		if !errors.Is(err, access.ErrUnknownUser) {
			t.Fatalf("%v does not wrap ErrUnknownUser", err)
		}
		// Without a receipt the revoke cannot tell a renamed person from
		// one who never had access: permanent, never "removed".
		err = c.Revoke(ctx, grantFor("mallory", "analyst_ro"))
		wantClass(t, err, access.Permanent, "no database user mallory")
		if !errors.Is(err, access.ErrUnknownUser) {
			t.Fatalf("%v does not wrap ErrUnknownUser", err)
		}
	})
	t.Run("RoleNotFound", func(t *testing.T) {
		wantClass(t, connectortest.ErrOf(c.Grant(ctx, grantFor("bob", "analyst_xx"))), access.Permanent,
			"PostgreSQL role analyst_xx does not exist")
		// A role that does not exist has no members: nothing to revoke.
		if err := c.Revoke(ctx, grantFor("bob", "analyst_xx")); err != nil {
			t.Fatalf("revoke of a role that does not exist = %v", err)
		}
	})
	t.Run("MissingRoleParam", func(t *testing.T) {
		wantClass(t, connectortest.ErrOf(c.Grant(ctx, grantFor("bob", ""))), access.Permanent, postgres.ParamRole)
	})
	t.Run("InsufficientPrivilege", func(t *testing.T) {
		// CREATEROLE (PG ≤ 15) cannot grant a superuser role: 42501.
		p.Exec(t, "CREATE ROLE dba SUPERUSER NOLOGIN")
		wantClass(t, connectortest.ErrOf(c.Grant(ctx, grantFor("bob", "dba"))), access.Permanent, "42501")
		if p.IsMember(t, "dba", "bob") {
			t.Fatal("bob became a member of a superuser role")
		}
	})
}

// TestInjection: names with quotes and semicolons are quoted identifiers,
// never SQL.
func TestInjection(t *testing.T) {
	p := testsvc.StartPostgres(t)
	ctx := t.Context()
	c := build(t, dsnConfig(p))
	evil := `x"; DROP ROLE analyst_ro; --`

	// A role of that name does not exist: a clean permanent error.
	wantClass(t, connectortest.ErrOf(c.Grant(ctx, grantFor("alice", evil))), access.Permanent, "does not exist")
	wantClass(t, connectortest.ErrOf(c.Grant(ctx, grantFor("alice", "analyst_ro; DROP ROLE analyst_rw"))), access.Permanent, "does not exist")

	// Once it exists, it is granted as the one odd name it is.
	p.Exec(t, "CREATE ROLE "+pgx.Identifier{evil}.Sanitize()+" NOLOGIN")
	if _, err := c.Grant(ctx, grantFor("alice", evil)); err != nil {
		t.Fatal(err)
	}
	if !p.IsMember(t, evil, "alice") {
		t.Fatal("alice not a member of the odd role")
	}
	if err := c.Revoke(ctx, grantFor("alice", evil)); err != nil {
		t.Fatal(err)
	}

	// The same through the user mapping (an email local part).
	g := grantFor("alice", "analyst_ro")
	g.User.Email = `robert'); drop role analyst_rw; --@example.com`
	wantClass(t, connectortest.ErrOf(c.Grant(ctx, g)), access.Permanent, "no database user")

	// Both roles survived (Check fails permanently on a missing role).
	for _, r := range []string{"analyst_ro", "analyst_rw"} {
		if ok, err := c.Check(ctx, grantFor("carol", r)); err != nil || ok {
			t.Fatalf("role %s damaged? Check = %v, %v", r, ok, err)
		}
	}
}

func TestUserMapping(t *testing.T) {
	p := testsvc.StartPostgres(t)
	p.Exec(t, `CREATE ROLE analyst_dave LOGIN`, `CREATE ROLE "dave@example.com" LOGIN`)
	ctx := t.Context()
	for _, tc := range []struct{ mapping, user string }{
		{"analyst_{{local}}", "analyst_dave"},
		{"email", "dave@example.com"},
	} {
		raw := dsnConfig(p)
		raw["user_mapping"] = tc.mapping
		c := build(t, raw)
		g := grantFor("dave", "analyst_ro")
		if _, err := c.Grant(ctx, g); err != nil {
			t.Fatalf("%s: %v", tc.mapping, err)
		}
		if !p.IsMember(t, "analyst_ro", tc.user) {
			t.Fatalf("%s: %s not a member", tc.mapping, tc.user)
		}
	}
	for _, tc := range []struct {
		mapping, email, want string
	}{
		{"", "Alice.Smith@Example.com", "alice.smith"},
		{"email", "Alice@Example.com", "alice@example.com"},
		{"ro_{{local}}_{{email}}", "a@b.c", "ro_a_a@b.c"},
	} {
		got, err := postgres.DatabaseUser(tc.mapping, access.Person{Email: tc.email})
		if err != nil || got != tc.want {
			t.Errorf("DatabaseUser(%q, %q) = %q, %v; want %q", tc.mapping, tc.email, got, err, tc.want)
		}
	}
	for _, email := range []string{"", "no-at-sign", "@example.com", strings.Repeat("a", 64) + "@example.com"} {
		if _, err := postgres.DatabaseUser("", access.Person{Email: email}); err == nil {
			t.Errorf("DatabaseUser(%q) gave no error", email)
		}
	}
}

func TestBadCredentials(t *testing.T) {
	p := testsvc.StartPostgres(t)
	c := build(t, map[string]any{"dsn": strings.Replace(p.DSN, p.Password, "wrong-password", 1)})
	_, err := c.Grant(t.Context(), grantFor("alice", "analyst_ro"))
	wantClass(t, err, access.Permanent, "credentials", "28P01")
	if strings.Contains(err.Error(), "wrong-password") {
		t.Fatalf("error leaks the password: %v", err)
	}
}

func TestServerDownIsRetryable(t *testing.T) {
	p := testsvc.StartPostgres(t)
	c := build(t, dsnConfig(p))
	g := grantFor("alice", "analyst_ro")
	p.Stop()
	_, err := c.Grant(t.Context(), g)
	wantClass(t, err, access.Retryable)
	if strings.Contains(err.Error(), p.Password) {
		t.Fatalf("error leaks the password: %v", err)
	}
	wantClass(t, c.Revoke(t.Context(), g), access.Retryable)
}

// TestTooManyConnections: 53300 from the server is retryable.
func TestTooManyConnections(t *testing.T) {
	p := testsvc.StartPostgres(t)
	p.Exec(t, "ALTER ROLE accessbot CONNECTION LIMIT 0")
	_, err := build(t, dsnConfig(p)).Grant(t.Context(), grantFor("alice", "analyst_ro"))
	wantClass(t, err, access.Retryable, "53300")
}

// TestUnresponsiveServer: a server that accepts but never answers ends in a
// retryable error when the context's deadline passes.
func TestUnresponsiveServer(t *testing.T) {
	addr := testsvc.SilentServer(t)
	c := build(t, map[string]any{"dsn": "postgres://u:p@" + addr + "/db?sslmode=disable"})
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	wantClass(t, connectortest.ErrOf(c.Grant(ctx, grantFor("alice", "analyst_ro"))), access.Retryable)
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("took %v", took)
	}
}

func TestRetryableCode(t *testing.T) {
	for code, want := range map[string]bool{
		"57P01": true, "53300": true, "40001": true, "40P01": true, "08006": true, "57P03": true, "25006": true,
		"42501": false, "42704": false, "28P01": false, "42601": false, "0LP01": false,
	} {
		if got := postgres.RetryableCode(code); got != want {
			t.Errorf("RetryableCode(%s) = %v, want %v", code, got, want)
		}
	}
}

func TestConfigValidation(t *testing.T) {
	hostForm := func() map[string]any {
		return map[string]any{"host": "db.example.com", "database": "dwh", "user": "accessbot", "password": "pw"}
	}
	for _, tc := range []struct {
		name string
		raw  func() map[string]any
		want string // "" = valid
	}{
		{"dsn", func() map[string]any { return map[string]any{"dsn": "postgres://u:pw@h/db"} }, ""},
		{"dsn file", func() map[string]any { return map[string]any{"dsn_file": "/run/secrets/dsn"} }, ""},
		{"host form", hostForm, ""},
		{"template", func() map[string]any { m := hostForm(); m["user_mapping"] = "analyst_{{local}}"; return m }, ""},
		{"nothing", func() map[string]any { return map[string]any{} }, "connectors.warehouse.host: required (or dsn / dsn_file)"},
		{"both forms", func() map[string]any { m := hostForm(); m["dsn"] = "postgres://h/db"; return m }, "set either dsn"},
		{"no password", func() map[string]any { m := hostForm(); delete(m, "password"); return m }, "password: required"},
		{"bad sslmode", func() map[string]any { m := hostForm(); m["sslmode"] = "maybe"; return m }, "sslmode"},
		{"bad port", func() map[string]any { m := hostForm(); m["port"] = 70000; return m }, "port"},
		{"bad mapping", func() map[string]any { m := hostForm(); m["user_mapping"] = "firstname"; return m }, "user_mapping"},
		{"bad template var", func() map[string]any { m := hostForm(); m["user_mapping"] = "x_{{name}}"; return m }, "unknown template variable {{name}}"},
		{"backstop", func() map[string]any { m := hostForm(); m["valid_until_backstop"] = true; return m }, "valid_until_backstop: not supported"},
		{"bad dsn", func() map[string]any { return map[string]any{"dsn": "host=h password='secret-pw"} }, "dsn: not a valid"},
		{"typo", func() map[string]any { m := hostForm(); m["databse"] = "x"; return m }, `did you mean "database"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reg := connectors.NewRegistry()
			reg.Add(postgres.Type, postgres.Factory)
			env := connectors.Env{State: &connectortest.State{}, ReadFile: func(string) ([]byte, error) { return []byte("postgres://u:pw@h/db"), nil }}
			_, err := reg.Build("warehouse", postgres.Type, tc.raw(), env)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("error %v, want it to contain %q", err, tc.want)
			}
			if err != nil && (strings.Contains(err.Error(), "secret-pw") || strings.Contains(err.Error(), ":pw")) {
				t.Fatalf("error leaks a secret: %v", err)
			}
		})
	}
}

// TestReadOnlyStandbyIsRetryable: after a failover the address may lead
// to a standby for a while, where GRANT fails with SQLSTATE 25006
// (read_only_sql_transaction). The same happens on a primary in
// default_transaction_read_only mode, which is how it is reproduced here,
// on the real server. It must be retried, never a final grant_failed.
func TestReadOnlyStandbyIsRetryable(t *testing.T) {
	p := testsvc.StartPostgres(t)
	ro := p.DSN + "&options=" + strings.ReplaceAll(url.QueryEscape("-c default_transaction_read_only=on"), "+", "%20")
	c := build(t, map[string]any{"dsn": ro})
	g := grantFor("alice", "analyst_ro")
	_, err := c.Grant(t.Context(), g)
	wantClass(t, err, access.Retryable, "25006", "read-only")
	if p.IsMember(t, "analyst_ro", "alice") {
		t.Fatal("alice became a member on a read-only server")
	}
	// The failover completes: the same connector state, a writable server.
	p.Exec(t, "GRANT analyst_ro TO bob")
	rw := build(t, dsnConfig(p))
	rc, err := rw.Grant(t.Context(), g)
	if err != nil || rc.PreExisting || rc.UserID != "alice" {
		t.Fatalf("grant after the failover = %+v, %v", rc, err)
	}
	g.Receipt = &rc
	wantClass(t, c.Revoke(t.Context(), g), access.Retryable, "25006")
	if err := rw.Revoke(t.Context(), g); err != nil {
		t.Fatal(err)
	}
}

func TestReceiptNamesTheRole(t *testing.T) {
	p := testsvc.StartPostgres(t)
	raw := dsnConfig(p)
	raw["user_mapping"] = "analyst_{{local}}"
	p.Exec(t, `CREATE ROLE analyst_dave LOGIN`)
	c := build(t, raw)
	g := grantFor("dave", "analyst_ro")
	rc, err := c.Grant(t.Context(), g)
	if err != nil || rc.UserID != "analyst_dave" || rc.PreExisting || !strings.Contains(rc.Note, "GRANT") {
		t.Fatalf("receipt = %+v, %v", rc, err)
	}
	// The person's email changes, so the mapping now gives another name:
	// the revoke acts on the role the receipt names.
	g.Receipt = &rc
	g.User.Email, g.User.CurrentEmail = "David@Example.com", "David@Example.com"
	if err := c.Revoke(t.Context(), g); err != nil {
		t.Fatal(err)
	}
	if p.IsMember(t, "analyst_ro", "analyst_dave") {
		t.Fatal("membership left")
	}
	// Dropped since: nothing is left to revoke.
	rc, err = c.Grant(t.Context(), grantFor("dave", "analyst_ro"))
	if err != nil {
		t.Fatal(err)
	}
	p.Exec(t, "DROP ROLE analyst_dave")
	g.Receipt = &rc
	if err := c.Revoke(t.Context(), g); err != nil {
		t.Fatalf("revoke of a dropped role = %v", err)
	}
}

func TestPreExistingMembership(t *testing.T) {
	p := testsvc.StartPostgres(t)
	p.Exec(t, "GRANT analyst_ro TO carol")
	c := build(t, dsnConfig(p))
	rc, err := c.Grant(t.Context(), grantFor("carol", "analyst_ro"))
	if err != nil || !rc.PreExisting || rc.UserID != "carol" {
		t.Fatalf("receipt = %+v, %v; want PreExisting", rc, err)
	}
}

// faultProxy is a TCP proxy in front of the test server that answers the
// next connection, when told to, with the server's own refusal for the
// HTTP status the conformance suite names: 503 → FATAL 57P03
// cannot_connect_now ("the database system is starting up", a server
// starting or recovering), 429 → FATAL 53300 too_many_connections, 403 →
// FATAL 28P01 invalid_password, other statuses → FATAL 28000. The refusal
// is sent as an ErrorResponse to the startup message, as PostgreSQL does
// (https://www.postgresql.org/docs/current/protocol-flow.html#PROTOCOL-FLOW-START-UP).
type faultProxy struct {
	connectortest.Faults
	dsn string
}

func newFaultProxy(t *testing.T, p *testsvc.Postgres) *faultProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fp := &faultProxy{}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	upstream := net.JoinHostPort(p.Host, strconv.Itoa(p.Port))
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() { fp.serve(c, upstream) })
		}
	})
	u, err := url.Parse(p.DSN)
	if err != nil {
		t.Fatal(err)
	}
	u.Host = ln.Addr().String()
	fp.dsn = u.String()
	return fp
}

func (fp *faultProxy) serve(c net.Conn, upstream string) {
	defer c.Close()
	if status, ok := fp.Take(); ok {
		code, msg := "28000", "injected refusal"
		switch status {
		case http.StatusServiceUnavailable:
			code, msg = "57P03", "the database system is starting up"
		case http.StatusTooManyRequests:
			code, msg = "53300", "sorry, too many clients already"
		case http.StatusForbidden:
			code, msg = "28P01", `password authentication failed for user "accessbot"`
		}
		be := pgproto3.NewBackend(c, c)
		if _, err := be.ReceiveStartupMessage(); err != nil {
			return
		}
		be.Send(&pgproto3.ErrorResponse{Severity: "FATAL", SeverityUnlocalized: "FATAL", Code: code, Message: msg})
		_ = be.Flush()
		return
	}
	up, err := net.Dial("tcp", upstream)
	if err != nil {
		return
	}
	defer up.Close()
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(up, c); done <- struct{}{} }()
	go func() { _, _ = io.Copy(c, up); done <- struct{}{} }()
	<-done
}
