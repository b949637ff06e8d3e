package testsvc

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"
)

// SlapdPath and SlapdSchemaDir are where Debian's slapd package installs
// the server and its schema files.
const (
	SlapdPath      = "/usr/sbin/slapd"
	SlapaddPath    = "/usr/sbin/slapadd"
	SlapdSchemaDir = "/etc/ldap/schema"
)

// The fixture StartSlapd loads. Every user has mail <uid>@example.com and
// lives under ou=people; groups live under ou=groups.
const (
	SlapdBaseDN        = "dc=example,dc=com"
	SlapdAdminDN       = "cn=admin,dc=example,dc=com"
	SlapdAdminPassword = "admin-secret"
	// SlapdPeopleDN holds the users alice, bob, carol and "star*(user)"
	// (uid with filter metacharacters).
	SlapdPeopleDN = "ou=people,dc=example,dc=com"
	// SlapdGroupsDN holds cn=engineers (groupOfNames), cn=admins
	// (groupOfNames) and cn=devs (posixGroup, memberUid). The
	// groupOfNames groups start with the placeholder member
	// cn=nobody,dc=example,dc=com (member is a MUST attribute).
	SlapdGroupsDN = "ou=groups,dc=example,dc=com"
	// SlapdPlaceholderMember keeps groupOfNames groups non-empty.
	SlapdPlaceholderMember = "cn=nobody,dc=example,dc=com"
)

// Slapd is a running OpenLDAP server.
type Slapd struct {
	URL           string // ldap://127.0.0.1:PORT
	BaseDN        string
	AdminDN       string
	AdminPassword string

	cmd    *exec.Cmd
	exited chan struct{}
	logs   *syncBuffer
}

const slapdConf = `include {{schema}}/core.schema
include {{schema}}/cosine.schema
include {{schema}}/nis.schema
include {{schema}}/inetorgperson.schema
pidfile {{dir}}/slapd.pid
argsfile {{dir}}/slapd.args
modulepath /usr/lib/ldap
moduleload back_mdb
database mdb
maxsize 16777216
suffix "{{base}}"
rootdn "{{admin}}"
rootpw {{password}}
directory {{dir}}/data
index objectClass eq
index mail,uid eq
`

const slapdFixture = `dn: dc=example,dc=com
objectClass: dcObject
objectClass: organization
dc: example
o: Example

dn: ou=people,dc=example,dc=com
objectClass: organizationalUnit
ou: people

dn: ou=groups,dc=example,dc=com
objectClass: organizationalUnit
ou: groups

{{users}}dn: cn=engineers,ou=groups,dc=example,dc=com
objectClass: groupOfNames
cn: engineers
member: cn=nobody,dc=example,dc=com

dn: cn=admins,ou=groups,dc=example,dc=com
objectClass: groupOfNames
cn: admins
member: cn=nobody,dc=example,dc=com

dn: cn=devs,ou=groups,dc=example,dc=com
objectClass: posixGroup
cn: devs
gidNumber: 5000
`

// SlapdUsers are the fixture's users by uid (mail is uid@example.com,
// except that "star*(user)" has mail star*(user)@example.com too).
var SlapdUsers = []string{"alice", "bob", "carol", "star*(user)"}

// StartSlapd starts slapd on a free local port with a throwaway slapd.conf
// and mdb database in t.TempDir(), loaded (offline, with slapadd) with the
// fixture above, waits until an admin bind succeeds, and stops it in
// t.Cleanup. It skips t when slapd is not installed, or fails it if the CI
// environment variable is set.
func StartSlapd(t testing.TB) *Slapd {
	t.Helper()
	for _, p := range []string{SlapdPath, SlapaddPath, filepath.Join(SlapdSchemaDir, "core.schema")} {
		if _, err := os.Stat(p); err != nil {
			missing(t, "OpenLDAP ("+p+")", "apt-get install -y slapd ldap-utils")
		}
	}
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "data"), 0o700); err != nil {
		t.Fatal(err)
	}
	conf := strings.NewReplacer("{{schema}}", SlapdSchemaDir, "{{dir}}", dir, "{{base}}", SlapdBaseDN,
		"{{admin}}", SlapdAdminDN, "{{password}}", SlapdAdminPassword).Replace(slapdConf)
	confPath := filepath.Join(dir, "slapd.conf")
	var users strings.Builder
	for i, uid := range SlapdUsers {
		fmt.Fprintf(&users, "dn: uid=%s,%s\nobjectClass: inetOrgPerson\nobjectClass: posixAccount\nuid: %s\ncn: %s\nsn: %s\nmail: %s@example.com\nuidNumber: %d\ngidNumber: 5000\nhomeDirectory: /home/u%d\n\n",
			ldap.EscapeDN(uid), SlapdPeopleDN, uid, uid, uid, uid, 10001+i, i)
	}
	ldif := strings.Replace(slapdFixture, "{{users}}", users.String(), 1)
	ldifPath := filepath.Join(dir, "fixture.ldif")
	if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(ldifPath, []byte(ldif), 0o600); err != nil {
		t.Fatal(err)
	}
	run(t, exec.Command(SlapaddPath, "-f", confPath, "-l", ldifPath))

	// A port taken between freePort and slapd's bind makes slapd exit at
	// once; one retry on a new port covers that race.
	var s *Slapd
	for attempt := 0; ; attempt++ {
		var ok bool
		s, ok = startSlapd(t, confPath, freePort(t), attempt == 1)
		if ok {
			break
		}
	}
	t.Cleanup(s.Stop)
	return s
}

func startSlapd(t testing.TB, confPath string, port int, last bool) (*Slapd, bool) {
	t.Helper()
	s := &Slapd{
		URL:    fmt.Sprintf("ldap://127.0.0.1:%d", port),
		BaseDN: SlapdBaseDN, AdminDN: SlapdAdminDN, AdminPassword: SlapdAdminPassword,
		exited: make(chan struct{}),
		logs:   &syncBuffer{},
	}
	// -d keeps slapd in the foreground (so we own the process) and logs
	// to stderr; "stats" is enough to debug a failed test.
	s.cmd = exec.Command(SlapdPath, "-f", confPath, "-h", s.URL+"/", "-d", "stats")
	s.cmd.Stdout, s.cmd.Stderr = s.logs, s.logs
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("testsvc: start slapd: %v", err)
	}
	go func() { _ = s.cmd.Wait(); close(s.exited) }()
	deadline := time.Now().Add(readyTimeout)
	for {
		err := s.ping()
		if err == nil {
			return s, true
		}
		select {
		case <-s.exited:
			if !last && strings.Contains(s.logs.String(), "Address already in use") {
				return nil, false
			}
			t.Fatalf("testsvc: slapd exited during start-up (last attempt: %v)\n%s", err, s.logs.String())
		default:
		}
		if time.Now().After(deadline) {
			s.Stop()
			t.Fatalf("testsvc: slapd not ready after %v: %v\n%s", readyTimeout, err, s.logs.String())
		}
		time.Sleep(pollInterval)
	}
}

// ping binds as the admin.
func (s *Slapd) ping() error {
	c, err := s.Admin()
	if err != nil {
		return err
	}
	return c.Close()
}

// Admin returns a connection bound as the admin; the caller closes it.
func (s *Slapd) Admin() (*ldap.Conn, error) {
	c, err := ldap.DialURL(s.URL)
	if err != nil {
		return nil, err
	}
	c.SetTimeout(10 * time.Second)
	if err := c.Bind(s.AdminDN, s.AdminPassword); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// Logs returns what slapd has logged so far.
func (s *Slapd) Logs() string { return s.logs.String() }

// Stop stops slapd (SIGTERM, then SIGKILL after readyTimeout) and waits
// for it to exit. It is idempotent; tests call it to make the server go
// away mid-test.
func (s *Slapd) Stop() {
	select {
	case <-s.exited:
		return
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(readyTimeout):
		_ = s.cmd.Process.Kill()
		<-s.exited
	}
}
