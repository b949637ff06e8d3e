package testsvc

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// PostgresBinGlob finds Debian's PostgreSQL server binaries (the
// postgresql package); the highest version wins.
const PostgresBinGlob = "/usr/lib/postgresql/*/bin"

// The fixture StartPostgres creates: the connector's login role
// (CREATEROLE, not superuser: the privilege README.md asks for), the
// group roles analyst_ro and analyst_rw (NOLOGIN), and the login roles
// alice, bob and carol.
const (
	PostgresSuperuser         = "postgres"
	PostgresSuperuserPassword = "super-secret"
	PostgresConnectorUser     = "accessbot"
	PostgresConnectorPassword = "connector-secret"
	PostgresDatabase          = "postgres"
)

// PostgresGroupRoles and PostgresUsers are the fixture's roles.
var (
	PostgresGroupRoles = []string{"analyst_ro", "analyst_rw"}
	PostgresUsers      = []string{"alice", "bob", "carol"}
)

// Postgres is a running PostgreSQL server.
type Postgres struct {
	Host     string // 127.0.0.1
	Port     int
	Database string
	// User and Password are the connector's login (CREATEROLE).
	User     string
	Password string
	// DSN is a URL connecting as the connector's login over TCP, with
	// sslmode=disable (the test server has no certificate).
	DSN string
	// SuperuserDSN connects as the superuser, for fixtures and assertions.
	SuperuserDSN string

	bin     string
	dataDir string
	runAs   *syscall.Credential // nil when not root
	cmd     *exec.Cmd
	exited  chan struct{}
	logs    *syncBuffer
	opts    PostgresOptions
}

// StartPostgres runs initdb into t.TempDir() and starts postgres on a free
// port on 127.0.0.1 (its Unix socket in the temp dir, never in
// /var/run/postgresql), with scram-sha-256 password authentication over
// TCP, waits until it accepts a connection, creates the fixture, and stops
// it (pg_ctl stop -m fast) in t.Cleanup.
//
// PostgreSQL refuses to run as root; when the test runs as root (CI does)
// the server runs as the postgres system user, which is created if it is
// missing, and the temp dir is made traversable for it.
//
// It skips t when PostgreSQL is not installed, or fails it if the CI
// environment variable is set.
func StartPostgres(t testing.TB) *Postgres {
	t.Helper()
	return StartPostgresWith(t, PostgresOptions{})
}

// PostgresOptions tunes StartPostgresWith.
type PostgresOptions struct {
	// Durable keeps fsync, full_page_writes and synchronous_commit on, as
	// in production (benchmarks of durable writes). Off by default: a
	// throwaway cluster need not survive a power cut.
	Durable bool
	// Settings are extra server settings ("shared_buffers=256MB",
	// "max_connections=100"), applied after the defaults.
	Settings []string
}

// StartPostgresWith is StartPostgres with options.
func StartPostgresWith(t testing.TB, o PostgresOptions) *Postgres {
	t.Helper()
	dirs, _ := filepath.Glob(PostgresBinGlob)
	slices.SortFunc(dirs, func(a, b string) int { return pgVersion(a) - pgVersion(b) })
	if len(dirs) == 0 {
		missing(t, "PostgreSQL server (initdb under "+PostgresBinGlob+")", "apt-get install -y postgresql")
	}
	p := &Postgres{
		bin: dirs[len(dirs)-1], Host: "127.0.0.1", Database: PostgresDatabase,
		User: PostgresConnectorUser, Password: PostgresConnectorPassword,
		opts: o,
	}
	for _, b := range []string{"initdb", "postgres", "pg_ctl"} {
		if _, err := os.Stat(filepath.Join(p.bin, b)); err != nil {
			missing(t, "PostgreSQL server ("+b+")", "apt-get install -y postgresql")
		}
	}

	dir := t.TempDir()
	p.dataDir = filepath.Join(dir, "data")
	sockDir := filepath.Join(dir, "sock")
	pwFile := filepath.Join(dir, "pwfile")
	for _, d := range []string{p.dataDir, sockDir} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(pwFile, []byte(PostgresSuperuserPassword+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		p.runAs = postgresCredential(t)
		// t.TempDir's parent is created 0700; the server user needs to
		// traverse both levels, and to own what it writes.
		for _, d := range []string{filepath.Dir(dir), dir} {
			if err := os.Chmod(d, 0o711); err != nil {
				t.Fatal(err)
			}
		}
		for _, f := range []string{p.dataDir, sockDir, pwFile} {
			if err := os.Chown(f, int(p.runAs.Uid), int(p.runAs.Gid)); err != nil {
				t.Fatal(err)
			}
		}
	}
	run(t, p.command("initdb", "-D", p.dataDir, "-U", PostgresSuperuser, "--pwfile", pwFile,
		"--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C", "--no-sync"))

	for attempt := 0; ; attempt++ {
		if p.start(t, freePort(t), sockDir, attempt == 1) {
			break
		}
	}
	t.Cleanup(p.Stop)
	p.fixture(t)
	return p
}

func pgVersion(binDir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return n
}

// postgresCredential returns the postgres system user's ids, creating the
// user if it does not exist.
func postgresCredential(t testing.TB) *syscall.Credential {
	t.Helper()
	u, err := user.Lookup("postgres")
	if err != nil {
		run(t, exec.Command("useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", "postgres"))
		if u, err = user.Lookup("postgres"); err != nil {
			t.Fatalf("testsvc: user postgres: %v", err)
		}
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	// Groups empty: drop root's supplementary groups too.
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}
}

// command builds a command running one of the server binaries as the
// server user.
func (p *Postgres) command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(filepath.Join(p.bin, name), args...)
	cmd.Env = append(os.Environ(), "LC_ALL=C", "TZ=UTC")
	if p.runAs != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: p.runAs}
		cmd.Dir = "/"
		cmd.Env = append(cmd.Env, "HOME=/")
	}
	return cmd
}

// start starts postgres on port and waits until it accepts connections.
// It returns false if the port was taken meanwhile (and this was not the
// last attempt).
func (p *Postgres) start(t testing.TB, port int, sockDir string, last bool) bool {
	t.Helper()
	p.Port = port
	p.exited = make(chan struct{})
	p.logs = &syncBuffer{}
	args := []string{"-D", p.dataDir, "-p", strconv.Itoa(port), "-k", sockDir,
		"-c", "listen_addresses=127.0.0.1", "-c", "max_connections=30", "-c", "shared_buffers=16MB"}
	if !p.opts.Durable {
		// fsync off: a throwaway cluster need not survive a power cut.
		args = append(args, "-c", "fsync=off", "-c", "full_page_writes=off", "-c", "synchronous_commit=off")
	}
	for _, s := range p.opts.Settings {
		args = append(args, "-c", s)
	}
	p.cmd = p.command("postgres", args...)
	p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("testsvc: start postgres: %v", err)
	}
	go func() { _ = p.cmd.Wait(); close(p.exited) }()
	p.SuperuserDSN = p.dsn(PostgresSuperuser, PostgresSuperuserPassword)
	p.DSN = p.dsn(PostgresConnectorUser, PostgresConnectorPassword)

	deadline := time.Now().Add(readyTimeout)
	for {
		err := p.ping()
		if err == nil {
			return true
		}
		select {
		case <-p.exited:
			if !last && strings.Contains(p.logs.String(), "already in use") {
				return false
			}
			t.Fatalf("testsvc: postgres exited during start-up (last attempt: %v)\n%s", err, p.logs.String())
		default:
		}
		if time.Now().After(deadline) {
			p.Stop()
			t.Fatalf("testsvc: postgres not ready after %v: %v\n%s", readyTimeout, err, p.logs.String())
		}
		time.Sleep(pollInterval)
	}
}

func (p *Postgres) dsn(user, password string) string {
	u := url.URL{
		Scheme: "postgres", User: url.UserPassword(user, password),
		Host: fmt.Sprintf("%s:%d", p.Host, p.Port), Path: "/" + p.Database,
		RawQuery: "sslmode=disable&connect_timeout=5",
	}
	return u.String()
}

func (p *Postgres) ping() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, p.SuperuserDSN)
	if err != nil {
		return err
	}
	return c.Close(ctx)
}

// fixture creates the connector's login and the fixture roles.
func (p *Postgres) fixture(t testing.TB) {
	t.Helper()
	stmts := []string{
		fmt.Sprintf("CREATE ROLE %s LOGIN CREATEROLE PASSWORD '%s'", PostgresConnectorUser, PostgresConnectorPassword),
	}
	for _, r := range PostgresGroupRoles {
		stmts = append(stmts, "CREATE ROLE "+pgx.Identifier{r}.Sanitize()+" NOLOGIN")
	}
	for _, u := range PostgresUsers {
		stmts = append(stmts, "CREATE ROLE "+pgx.Identifier{u}.Sanitize()+" LOGIN")
	}
	p.Exec(t, stmts...)
}

// Exec runs statements as the superuser, failing t on error.
func (p *Postgres) Exec(t testing.TB, stmts ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, p.SuperuserDSN)
	if err != nil {
		t.Fatalf("testsvc: connect as superuser: %v", err)
	}
	defer c.Close(ctx)
	for _, s := range stmts {
		if _, err := c.Exec(ctx, s); err != nil {
			t.Fatalf("testsvc: %s: %v", s, err)
		}
	}
}

// IsMember reports whether role user is a direct member of role group,
// asking pg_auth_members as the superuser.
func (p *Postgres) IsMember(t testing.TB, group, user string) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, p.SuperuserDSN)
	if err != nil {
		t.Fatalf("testsvc: connect as superuser: %v", err)
	}
	defer c.Close(ctx)
	var ok bool
	err = c.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_auth_members m
		JOIN pg_roles g ON g.oid = m.roleid JOIN pg_roles u ON u.oid = m.member
		WHERE g.rolname = $1 AND u.rolname = $2)`, group, user).Scan(&ok)
	if err != nil {
		t.Fatalf("testsvc: membership query: %v", err)
	}
	return ok
}

// Logs returns what the server has logged so far.
func (p *Postgres) Logs() string { return p.logs.String() }

// Stop stops the server with pg_ctl stop -m fast (SIGKILL if that fails)
// and waits for it to exit. It is idempotent; tests call it to make the
// server go away mid-test.
func (p *Postgres) Stop() {
	select {
	case <-p.exited:
		return
	default:
	}
	cmd := p.command("pg_ctl", "stop", "-D", p.dataDir, "-m", "fast", "-w", "-t", "30")
	if err := cmd.Run(); err != nil {
		_ = p.cmd.Process.Kill()
	}
	<-p.exited
}
