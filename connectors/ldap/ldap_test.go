package ldap_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	ber "github.com/go-asn1-ber/asn1-ber"
	goldap "github.com/go-ldap/ldap/v3"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/connectors"
	"github.com/accessbot/accessbot/connectors/conformance"
	"github.com/accessbot/accessbot/connectors/connectortest"
	"github.com/accessbot/accessbot/connectors/ldap"
	"github.com/accessbot/accessbot/internal/testsvc"
)

var (
	engineers = "cn=engineers," + testsvc.SlapdGroupsDN
	devs      = "cn=devs," + testsvc.SlapdGroupsDN
)

// rawConfig is a working configuration block for s.
func rawConfig(s *testsvc.Slapd) map[string]any {
	return map[string]any{
		"type":            ldap.Type,
		"url":             s.URL,
		"insecure_no_tls": true,
		"bind_dn":         s.AdminDN,
		"bind_password":   s.AdminPassword,
		"user_base_dn":    testsvc.SlapdPeopleDN,
		"timeout":         "10s",
	}
}

// build builds a connector through the registry, as cmd does.
func build(t *testing.T, raw map[string]any) *ldap.Connector {
	t.Helper()
	reg := connectors.NewRegistry()
	reg.Add(ldap.Type, ldap.Factory)
	c, err := reg.Build("dir", ldap.Type, raw, connectors.Env{State: &connectortest.State{}})
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	return c.(*ldap.Connector)
}

func grantFor(uid, group string) access.Grant {
	return access.Grant{
		ID: "AR-" + uid, System: "corp-ldap", Role: "member",
		Params: map[string]string{ldap.ParamGroupDN: group},
		User:   access.Person{SlackID: "U" + strings.ToUpper(uid), Email: uid + "@example.com", Name: uid},
	}
}

func userDN(uid string) string { return "uid=" + goldap.EscapeDN(uid) + "," + testsvc.SlapdPeopleDN }

// admin runs fn on an admin connection.
func admin(t *testing.T, s *testsvc.Slapd, fn func(c *goldap.Conn) error) {
	t.Helper()
	c, err := s.Admin()
	if err != nil {
		t.Fatalf("admin bind: %v", err)
	}
	defer c.Close()
	if err := fn(c); err != nil {
		t.Fatalf("admin: %v", err)
	}
}

// values returns attr's values on the entry dn, read as the admin.
func values(t *testing.T, s *testsvc.Slapd, dn, attr string) []string {
	t.Helper()
	var out []string
	admin(t, s, func(c *goldap.Conn) error {
		res, err := c.Search(goldap.NewSearchRequest(dn, goldap.ScopeBaseObject, goldap.NeverDerefAliases, 0, 0, false, "(objectClass=*)", []string{attr}, nil))
		if err != nil {
			return err
		}
		out = res.Entries[0].GetAttributeValues(attr)
		return nil
	})
	return out
}

func hasValue(t *testing.T, s *testsvc.Slapd, group, attr, value string) bool {
	t.Helper()
	for _, v := range values(t, s, group, attr) {
		if strings.EqualFold(v, value) {
			return true
		}
	}
	return false
}

// modify applies a change as the admin, ignoring "already so" answers.
func modify(t *testing.T, s *testsvc.Slapd, group, attr, value string, add bool) {
	t.Helper()
	admin(t, s, func(c *goldap.Conn) error {
		req := goldap.NewModifyRequest(group, nil)
		if add {
			req.Add(attr, []string{value})
		} else {
			req.Delete(attr, []string{value})
		}
		err := c.Modify(req)
		if goldap.IsErrorAnyOf(err, goldap.LDAPResultAttributeOrValueExists, goldap.LDAPResultNoSuchAttribute) {
			return nil
		}
		return err
	})
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

// conformance runs the suite against the directory at url (slapd, or the
// Active Directory proxy in front of it).
func runConformance(t *testing.T, s *testsvc.Slapd, url string) {
	for _, tc := range []struct {
		name, attr, group string
		value             func(uid string) string
	}{
		{"member", ldap.AttrMember, engineers, userDN},
		{"memberUid", ldap.AttrMemberUID, devs, func(uid string) string { return uid }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw := rawConfig(s)
			raw["url"] = url
			raw["member_attribute"] = tc.attr
			conformance.Run(t, conformance.Harness{
				New: func(t *testing.T) access.Connector {
					modify(t, s, tc.group, tc.attr, tc.value("alice"), false)
					ensureAlice(t, s)
					return build(t, raw)
				},
				Grant: func(t *testing.T) access.Grant { return grantFor("alice", tc.group) },
				HasAccess: func(t *testing.T, g access.Grant) bool {
					return hasValue(t, s, tc.group, tc.attr, tc.value("alice"))
				},
				UnknownUser:  func(t *testing.T) access.Grant { return grantFor("nobody", tc.group) },
				TargetUserID: func(t *testing.T, g access.Grant) string { return userDN("alice") },
				ChangeEmail: func(t *testing.T, g access.Grant) string {
					setMail(t, s, "alice", "alice.married@example.com")
					return "alice.married@example.com"
				},
				PreGrant: func(t *testing.T, g access.Grant) { modify(t, s, tc.group, tc.attr, tc.value("alice"), true) },
				// The entry is deleted; OpenLDAP (without the refint
				// overlay) keeps its value in the group, as AD does
				// not: the revoke by receipt must remove it. New puts
				// alice back for the next case.
				DeleteUser: func(t *testing.T, g access.Grant) {
					admin(t, s, func(c *goldap.Conn) error { return c.Del(goldap.NewDelRequest(userDN("alice"), nil)) })
				},
			})
		})
	}
}

func TestConformance(t *testing.T) {
	s := testsvc.StartSlapd(t)
	runConformance(t, s, s.URL)
}

// TestConformanceActiveDirectory runs the suite against slapd behind a
// proxy that answers as Active Directory does: 68 entryAlreadyExists to
// the addition of a present member, 53 unwillingToPerform to the removal
// of an absent one. AD itself cannot run here.
func TestConformanceActiveDirectory(t *testing.T) {
	s := testsvc.StartSlapd(t)
	p := startADProxy(t, s)
	runConformance(t, s, p.url)
	if p.rewritten.Load() == 0 {
		t.Fatal("the proxy never answered as AD: the AD result codes were not exercised")
	}
}

// ensureAlice puts the fixture's alice back as testsvc loads her, with
// her own mail, if a case deleted or renamed her.
func ensureAlice(t *testing.T, s *testsvc.Slapd) {
	t.Helper()
	admin(t, s, func(c *goldap.Conn) error {
		add := goldap.NewAddRequest(userDN("alice"), nil)
		add.Attribute("objectClass", []string{"inetOrgPerson", "posixAccount"})
		for k, v := range map[string]string{"uid": "alice", "cn": "alice", "sn": "alice", "mail": "alice@example.com",
			"uidNumber": "10001", "gidNumber": "5000", "homeDirectory": "/home/u0"} {
			add.Attribute(k, []string{v})
		}
		if err := c.Add(add); !goldap.IsErrorWithCode(err, goldap.LDAPResultEntryAlreadyExists) {
			return err
		}
		return nil
	})
	setMail(t, s, "alice", "alice@example.com")
}

// setMail sets the mail of the fixture user uid, as a rename would.
func setMail(t *testing.T, s *testsvc.Slapd, uid, mail string) {
	t.Helper()
	admin(t, s, func(c *goldap.Conn) error {
		req := goldap.NewModifyRequest(userDN(uid), nil)
		req.Replace("mail", []string{mail})
		return c.Modify(req)
	})
}

// TestRevokeOfDeletedEntry: an entry deleted after the grant (OpenLDAP
// without the refint overlay keeps its DN in the group) is removed from
// the group by the receipt alone; a legacy revoke cannot find it and
// says so.
func TestRevokeOfDeletedEntry(t *testing.T) {
	s := testsvc.StartSlapd(t)
	ctx := t.Context()
	admin(t, s, func(c *goldap.Conn) error {
		add := goldap.NewAddRequest(userDN("temp"), nil)
		add.Attribute("objectClass", []string{"inetOrgPerson"})
		add.Attribute("uid", []string{"temp"})
		add.Attribute("cn", []string{"temp"})
		add.Attribute("sn", []string{"temp"})
		add.Attribute("mail", []string{"temp@example.com"})
		return c.Add(add)
	})
	c := build(t, rawConfig(s))
	g := grantFor("temp", engineers)
	r, err := c.Grant(ctx, g)
	if err != nil || r.UserID != userDN("temp") {
		t.Fatalf("Grant = %+v, %v", r, err)
	}
	admin(t, s, func(c *goldap.Conn) error { return c.Del(goldap.NewDelRequest(userDN("temp"), nil)) })
	err = c.Revoke(ctx, g) // no receipt
	if !errors.Is(err, access.ErrUnknownUser) {
		t.Fatalf("legacy revoke of a deleted entry: %v, want ErrUnknownUser", err)
	}
	if !hasValue(t, s, engineers, "member", userDN("temp")) {
		t.Fatal("the dangling member value is gone already")
	}
	g.Receipt = &r
	if err := c.Revoke(ctx, g); err != nil {
		t.Fatal(err)
	}
	if hasValue(t, s, engineers, "member", userDN("temp")) {
		t.Fatal("the revoke by receipt left the member value")
	}
}

// TestActiveDirectoryRefusal: AD's 53 to a removal that it really refuses
// (the value is still there) is a permanent failure, never "removed".
func TestActiveDirectoryRefusal(t *testing.T) {
	s := testsvc.StartSlapd(t)
	p := startADProxy(t, s)
	raw := rawConfig(s)
	raw["url"] = p.url
	c := build(t, raw)
	ctx := t.Context()
	g := grantFor("bob", engineers)
	r, err := c.Grant(ctx, g)
	if err != nil {
		t.Fatal(err)
	}
	g.Receipt = &r
	p.refuseModify.Store(true)
	err = c.Revoke(ctx, g)
	wantClass(t, err, access.Permanent, "unwillingToPerform")
	if !hasValue(t, s, engineers, "member", userDN("bob")) {
		t.Fatal("bob removed after all")
	}
	p.refuseModify.Store(false)
	if err := c.Revoke(ctx, g); err != nil {
		t.Fatal(err)
	}
}

// adProxy forwards LDAP between the connector and slapd and rewrites
// slapd's answers into Active Directory's: a Modify answered 20
// attributeOrValueExists becomes 68 entryAlreadyExists with AD's
// "00000562: UpdErr: DSID-031A11C4, problem 6005 (ENTRY_EXISTS), data 0"
// (Win32 ERROR_MEMBER_IN_ALIAS), and 16 noSuchAttribute becomes 53
// unwillingToPerform with "00000561: SvcErr: DSID-031A1021, problem 5003
// (WILL_NOT_PERFORM), data 0" (ERROR_MEMBER_NOT_IN_ALIAS), the answers AD
// gives to adding a present member and removing an absent one (the
// diagnostic texts as AD writes them, e.g.
// https://github.com/rapid7/insightconnect-plugins/pull/840 and
// https://github.com/go-ldap/ldap/issues/451). With refuseModify set it
// answers every Modify itself with 53, as AD does when it refuses a
// change it will not make.
type adProxy struct {
	url          string
	rewritten    atomic.Int32
	refuseModify atomic.Bool
}

func startADProxy(t *testing.T, s *testsvc.Slapd) *adProxy {
	t.Helper()
	target := strings.TrimPrefix(s.URL, "ldap://")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &adProxy{url: "ldap://" + l.Addr().String()}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			client, err := l.Accept()
			if err != nil {
				return
			}
			server, err := net.Dial("tcp", target)
			if err != nil {
				client.Close()
				continue
			}
			mu.Lock()
			conns = append(conns, client, server)
			mu.Unlock()
			var wmu sync.Mutex // both directions may write to client
			write := func(b []byte) {
				wmu.Lock()
				defer wmu.Unlock()
				client.Write(b)
			}
			wg.Go(func() { // client → server
				defer server.Close()
				for {
					pk, err := ber.ReadPacket(client)
					if err != nil {
						return
					}
					if len(pk.Children) >= 2 && pk.Children[1].ClassType == ber.ClassApplication &&
						pk.Children[1].Tag == goldap.ApplicationModifyRequest && p.refuseModify.Load() {
						write(modifyResponse(pk.Children[0], goldap.LDAPResultUnwillingToPerform,
							"00000561: SvcErr: DSID-031A1021, problem 5003 (WILL_NOT_PERFORM), data 0").Bytes())
						continue
					}
					if _, err := server.Write(pk.Bytes()); err != nil {
						return
					}
				}
			})
			wg.Go(func() { // server → client
				defer client.Close()
				for {
					pk, err := ber.ReadPacket(server)
					if err != nil {
						return
					}
					write(p.rewrite(pk).Bytes())
				}
			})
		}
	})
	return p
}

// rewrite turns slapd's Modify answers into AD's (see adProxy).
func (p *adProxy) rewrite(pk *ber.Packet) *ber.Packet {
	if len(pk.Children) < 2 {
		return pk
	}
	op := pk.Children[1]
	if op.ClassType != ber.ClassApplication || op.Tag != goldap.ApplicationModifyResponse || len(op.Children) < 1 {
		return pk
	}
	code, _ := op.Children[0].Value.(int64)
	switch code {
	case goldap.LDAPResultAttributeOrValueExists:
		p.rewritten.Add(1)
		return modifyResponse(pk.Children[0], goldap.LDAPResultEntryAlreadyExists, "00000562: UpdErr: DSID-031A11C4, problem 6005 (ENTRY_EXISTS), data 0")
	case goldap.LDAPResultNoSuchAttribute:
		p.rewritten.Add(1)
		return modifyResponse(pk.Children[0], goldap.LDAPResultUnwillingToPerform, "00000561: SvcErr: DSID-031A1021, problem 5003 (WILL_NOT_PERFORM), data 0")
	}
	return pk
}

// modifyResponse builds an LDAPMessage with a ModifyResponse (RFC 4511
// §4.6, an LDAPResult) for the message ID packet id.
func modifyResponse(id *ber.Packet, code int64, diag string) *ber.Packet {
	msg := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "LDAP Response")
	msg.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, id.Value, "MessageID"))
	op := ber.Encode(ber.ClassApplication, ber.TypeConstructed, goldap.ApplicationModifyResponse, nil, "Modify Response")
	op.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagEnumerated, code, "resultCode"))
	op.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, "", "matchedDN"))
	op.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, diag, "diagnosticMessage"))
	msg.AppendChild(op)
	return msg
}

func TestGrantRevoke(t *testing.T) {
	s := testsvc.StartSlapd(t)
	ctx := t.Context()
	c := build(t, rawConfig(s))
	g := grantFor("bob", engineers)

	t.Run("AlreadyMember", func(t *testing.T) {
		modify(t, s, engineers, "member", userDN("bob"), true)
		if _, err := c.Grant(ctx, g); err != nil {
			t.Fatalf("Grant of an existing member: %v", err)
		}
		if !hasValue(t, s, engineers, "member", userDN("bob")) {
			t.Fatal("bob not a member")
		}
	})
	t.Run("NotMemberOnRevoke", func(t *testing.T) {
		modify(t, s, engineers, "member", userDN("bob"), false)
		if err := c.Revoke(ctx, g); err != nil {
			t.Fatalf("Revoke of a non-member: %v", err)
		}
	})
	t.Run("OtherMembersKept", func(t *testing.T) {
		modify(t, s, engineers, "member", userDN("carol"), true)
		if _, err := c.Grant(ctx, g); err != nil {
			t.Fatal(err)
		}
		if err := c.Revoke(ctx, g); err != nil {
			t.Fatal(err)
		}
		if !hasValue(t, s, engineers, "member", userDN("carol")) || !hasValue(t, s, engineers, "member", testsvc.SlapdPlaceholderMember) {
			t.Fatalf("other members lost: %v", values(t, s, engineers, "member"))
		}
	})
	t.Run("Check", func(t *testing.T) {
		if ok, err := c.Check(ctx, g); err != nil || ok {
			t.Fatalf("Check before grant = %v, %v", ok, err)
		}
		if _, err := c.Grant(ctx, g); err != nil {
			t.Fatal(err)
		}
		if ok, err := c.Check(ctx, g); err != nil || !ok {
			t.Fatalf("Check after grant = %v, %v", ok, err)
		}
	})
	t.Run("UnknownUser", func(t *testing.T) {
		_, err := c.Grant(ctx, grantFor("mallory", engineers))
		wantClass(t, err, access.Permanent, "mallory@example.com", "corp-ldap")
	})
	t.Run("GroupNotFound", func(t *testing.T) {
		missing := grantFor("bob", "cn=ghosts,"+testsvc.SlapdGroupsDN)
		wantClass(t, connectortest.ErrOf(c.Grant(ctx, missing)), access.Permanent, "cn=ghosts", "does not exist")
		wantClass(t, c.Revoke(ctx, missing), access.Permanent, "does not exist")
	})
	t.Run("MissingOrBadGroupParam", func(t *testing.T) {
		for _, dn := range []string{"", "not a dn", "cn=engineers,=x"} {
			g := grantFor("bob", dn)
			wantClass(t, connectortest.ErrOf(c.Grant(ctx, g)), access.Permanent, ldap.ParamGroupDN)
		}
		// A DN is not a filter: metacharacters in one are just an odd
		// (here nonexistent) DN, which the server refuses.
		odd := grantFor("bob", "cn=engineers)(member=*,ou=groups,dc=example,dc=com")
		wantClass(t, connectortest.ErrOf(c.Grant(ctx, odd)), access.Permanent)
	})
	t.Run("LastMemberOfGroupOfNames", func(t *testing.T) {
		admins := "cn=admins," + testsvc.SlapdGroupsDN
		ga := grantFor("alice", admins)
		if _, err := c.Grant(ctx, ga); err != nil {
			t.Fatal(err)
		}
		modify(t, s, admins, "member", testsvc.SlapdPlaceholderMember, false)
		// groupOfNames requires a member: the directory refuses, and
		// the connector must not pretend the access is gone.
		wantClass(t, c.Revoke(ctx, ga), access.Permanent, "objectClassViolation")
		if !hasValue(t, s, admins, "member", userDN("alice")) {
			t.Fatal("alice removed after all")
		}
	})
}

// TestFilterInjection: emails with RFC 4515 metacharacters are escaped,
// so they can neither match someone else nor break the filter.
func TestFilterInjection(t *testing.T) {
	s := testsvc.StartSlapd(t)
	ctx := t.Context()
	c := build(t, rawConfig(s))
	for _, email := range []string{"*", "*)(uid=alice", "alice@example.com)(|(mail=*", `\2a`, "alice@example.com\x00"} {
		g := grantFor("x", engineers)
		g.User.Email = email
		wantClass(t, connectortest.ErrOf(c.Grant(ctx, g)), access.Permanent, "user")
	}
	if got := values(t, s, engineers, "member"); len(got) != 1 {
		t.Fatalf("members after injection attempts: %v", got)
	}
	// A real user whose uid and mail contain metacharacters is found
	// exactly, and their DN (escaped per RFC 4514) is added.
	g := grantFor("star*(user)", engineers)
	if _, err := c.Grant(ctx, g); err != nil {
		t.Fatalf("Grant for star*(user): %v", err)
	}
	if !hasValue(t, s, engineers, "member", userDN("star*(user)")) {
		t.Fatalf("members: %v", values(t, s, engineers, "member"))
	}
	if err := c.Revoke(ctx, g); err != nil {
		t.Fatal(err)
	}
}

func TestBadCredentials(t *testing.T) {
	s := testsvc.StartSlapd(t)
	raw := rawConfig(s)
	raw["bind_password"] = "wrong-password"
	c := build(t, raw)
	_, err := c.Grant(t.Context(), grantFor("alice", engineers))
	wantClass(t, err, access.Permanent, "bind rejected")
	if strings.Contains(err.Error(), "wrong-password") {
		t.Fatalf("error leaks the password: %v", err)
	}
}

func TestPasswordFile(t *testing.T) {
	s := testsvc.StartSlapd(t)
	raw := rawConfig(s)
	delete(raw, "bind_password")
	f := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(f, []byte(s.AdminPassword+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	raw["bind_password_file"] = f
	c := build(t, raw)
	g := grantFor("carol", engineers)
	if _, err := c.Grant(t.Context(), g); err != nil {
		t.Fatal(err)
	}
	if err := c.Revoke(t.Context(), g); err != nil {
		t.Fatal(err)
	}
}

func TestServerDownIsRetryable(t *testing.T) {
	s := testsvc.StartSlapd(t)
	c := build(t, rawConfig(s))
	g := grantFor("alice", engineers)
	s.Stop()
	wantClass(t, connectortest.ErrOf(c.Grant(t.Context(), g)), access.Retryable)
	wantClass(t, c.Revoke(t.Context(), g), access.Retryable)
}

// TestUnresponsiveServerTimesOut: a server that accepts connections but
// never answers ends in a retryable error once the timeout passes.
func TestUnresponsiveServerTimesOut(t *testing.T) {
	addr := testsvc.SilentServer(t)
	raw := map[string]any{
		"url": "ldap://" + addr, "insecure_no_tls": true,
		"bind_dn": "cn=admin,dc=example,dc=com", "bind_password": "x",
		"user_base_dn": "dc=example,dc=com",
	}
	c := build(t, raw)
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	wantClass(t, connectortest.ErrOf(c.Grant(ctx, grantFor("alice", engineers))), access.Retryable)
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("took %v", took)
	}
}

// TestSerialisedPerGroup: concurrent grants to one group all land.
func TestSerialisedPerGroup(t *testing.T) {
	s := testsvc.StartSlapd(t)
	c := build(t, rawConfig(s))
	var wg sync.WaitGroup
	errs := make(chan error, 3*4)
	for _, uid := range []string{"alice", "bob", "carol"} {
		for range 4 {
			wg.Go(func() { errs <- connectortest.ErrOf(c.Grant(t.Context(), grantFor(uid, engineers))) })
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if got := values(t, s, engineers, "member"); len(got) != 4 {
		t.Fatalf("members: %v", got)
	}
}

func TestConfigValidation(t *testing.T) {
	base := func() map[string]any {
		return map[string]any{
			"url": "ldaps://ldap.example.com", "bind_dn": "cn=bot,dc=example,dc=com",
			"bind_password": "pw", "user_base_dn": "ou=people,dc=example,dc=com",
		}
	}
	for _, tc := range []struct {
		name string
		edit func(m map[string]any)
		want string // "" = valid
	}{
		{"ldaps", func(m map[string]any) {}, ""},
		{"starttls", func(m map[string]any) { m["url"] = "ldap://h"; m["start_tls"] = true }, ""},
		{"memberUid", func(m map[string]any) { m["member_attribute"] = "memberUid" }, ""},
		{"filter", func(m map[string]any) { m["user_filter"] = "(&(objectClass=person)(mail=%s))" }, ""},
		{"plain ldap refused", func(m map[string]any) { m["url"] = "ldap://h" }, "connectors.dir.url: ldap:// sends the bind password in clear"},
		{"insecure with ldaps", func(m map[string]any) { m["insecure_no_tls"] = true }, "insecure_no_tls"},
		{"starttls with ldaps", func(m map[string]any) { m["start_tls"] = true }, "start_tls"},
		{"http url", func(m map[string]any) { m["url"] = "https://h" }, "connectors.dir.url: must be"},
		{"no url", func(m map[string]any) { delete(m, "url") }, "connectors.dir.url: required"},
		{"no bind dn", func(m map[string]any) { delete(m, "bind_dn") }, "connectors.dir.bind_dn: required"},
		{"bad bind dn", func(m map[string]any) { m["bind_dn"] = "bot" }, "bind_dn: not a valid DN"},
		{"no password", func(m map[string]any) { delete(m, "bind_password") }, "bind_password: required"},
		{"both passwords", func(m map[string]any) { m["bind_password_file"] = "/x" }, "set only one"},
		{"no base", func(m map[string]any) { delete(m, "user_base_dn") }, "user_base_dn: required"},
		{"filter without %s", func(m map[string]any) { m["user_filter"] = "(mail=x)" }, "user_filter: must contain exactly one %s"},
		{"filter with two verbs", func(m map[string]any) { m["user_filter"] = "(|(mail=%s)(uid=%s))" }, "user_filter"},
		{"filter unbalanced", func(m map[string]any) { m["user_filter"] = "(mail=%s" }, "user_filter: not a valid LDAP filter"},
		{"bad attribute", func(m map[string]any) { m["member_attribute"] = "uniqueMember" }, "member_attribute"},
		{"typo key", func(m map[string]any) { m["user_fliter"] = "(mail=%s)" }, `did you mean "user_filter"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := base()
			tc.edit(m)
			reg := connectors.NewRegistry()
			reg.Add(ldap.Type, ldap.Factory)
			_, err := reg.Build("dir", ldap.Type, m, connectors.Env{State: &connectortest.State{}, ReadFile: func(string) ([]byte, error) { return []byte("pw"), nil }})
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("error %v, want it to contain %q", err, tc.want)
			}
			if err != nil && strings.Contains(err.Error(), "pw") && !strings.Contains(tc.want, "pw") {
				t.Fatalf("error may leak the password: %v", err)
			}
		})
	}
}

func TestRetryableCodes(t *testing.T) {
	for code, want := range map[uint16]bool{
		goldap.LDAPResultBusy: true, goldap.LDAPResultUnavailable: true, goldap.ErrorNetwork: true,
		goldap.LDAPResultTimeLimitExceeded: true, goldap.LDAPResultOther: true, goldap.LDAPResultServerDown: true,
		goldap.LDAPResultInvalidCredentials: false, goldap.LDAPResultInsufficientAccessRights: false,
		goldap.LDAPResultNoSuchObject: false, goldap.LDAPResultInvalidDNSyntax: false,
		goldap.LDAPResultObjectClassViolation: false, goldap.LDAPResultUnwillingToPerform: false,
	} {
		if got := ldap.Retryable(code); got != want {
			t.Errorf("Retryable(%d %s) = %v, want %v", code, goldap.LDAPResultCodeMap[code], got, want)
		}
	}
}

func ExampleFactory() {
	reg := connectors.NewRegistry()
	reg.Add(ldap.Type, ldap.Factory)
	_, err := reg.Build("corp_ldap", ldap.Type, map[string]any{
		"url":           "ldaps://ldap.example.com",
		"bind_dn":       "cn=accessbot,ou=services,dc=example,dc=com",
		"bind_password": "from-env",
		"user_base_dn":  "ou=people,dc=example,dc=com",
	}, connectors.Env{State: &connectortest.State{}})
	fmt.Println(err)
	// Output: <nil>
}
