package slack_test

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/bot/slackemu"
	"github.com/accessbot/accessbot/connectors"
	"github.com/accessbot/accessbot/connectors/conformance"
	"github.com/accessbot/accessbot/connectors/connectortest"
	"github.com/accessbot/accessbot/connectors/slack"
)

const (
	alice   = "U0ALICE01"
	bob     = "U0BOB0001"
	carol   = "U0CAROL01"
	private = "C0PRIV0001"
	public  = "C0PUBL0001"
	notBots = "C0NOBOT001" // a public channel the bot is not in
	group   = "S0GROUP001"
	dormant = "S0DORMANT1" // disabled, with stale members
)

// target is the project's Slack emulator (bot/slackemu, written from the
// Web API reference: slack-protocol.md §3, §8) seeded with a workspace,
// behind a small proxy that can fail the next request of any method, as
// the conformance suite asks.
type target struct {
	emu   *slackemu.Server
	proxy *httptest.Server
	connectortest.Faults
}

func newTarget(t *testing.T) *target {
	t.Helper()
	emu := slackemu.New(slackemu.Options{PingInterval: -1})
	t.Cleanup(emu.Close)
	for _, u := range []slackemu.User{
		{ID: alice, Name: "alice", RealName: "Alice", Email: "alice@example.com"},
		{ID: bob, Name: "bob", RealName: "Bob", Email: "bob@example.com"},
		{ID: carol, Name: "carol", RealName: "Carol", Email: "carol@example.com"},
	} {
		emu.AddUser(u)
	}
	emu.AddChannel(slackemu.Channel{ID: private, Name: "crm-admins", Private: true, BotIsMember: true, Members: []string{bob}})
	emu.AddChannel(slackemu.Channel{ID: public, Name: "crm", BotIsMember: true, Members: []string{bob}})
	emu.AddChannel(slackemu.Channel{ID: notBots, Name: "general-ish", Members: []string{bob, alice}})
	emu.AddUserGroup(slackemu.UserGroup{ID: group, Handle: "oncall", Members: []string{bob}})
	emu.AddUserGroup(slackemu.UserGroup{ID: dormant, Handle: "incident", Members: []string{carol}, Disabled: true})
	tg := &target{emu: emu}
	up, _ := url.Parse(emu.URL())
	rp := httputil.NewSingleHostReverseProxy(up)
	tg.proxy = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tg.Record(r)
		if status, ok := tg.Take(); ok {
			w.Header().Set("Content-Type", "application/json")
			code := "internal_error"
			if status == http.StatusTooManyRequests {
				w.Header().Set("Retry-After", "0")
				code = "ratelimited"
			}
			w.WriteHeader(status)
			fmt.Fprintf(w, `{"ok":false,"error":%q}`, code)
			return
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(tg.proxy.Close)
	return tg
}

func (tg *target) apiURL() string { return tg.proxy.URL + "/api/" }

// build builds a connector of typ the way cmd does, with the workspace's
// token as the runbook default.
func build(t *testing.T, tg *target, typ string, raw map[string]any) access.Connector {
	t.Helper()
	c, err := tryBuild(t, &slack.Workspace{BotToken: tg.emu.BotToken(), APIURL: tg.apiURL()}, typ, raw)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func tryBuild(t *testing.T, ws *slack.Workspace, typ string, raw map[string]any) (access.Connector, error) {
	t.Helper()
	reg := connectors.NewRegistry()
	reg.Add(slack.ChannelType, ws.ChannelFactory)
	reg.Add(slack.UsergroupType, ws.UsergroupFactory)
	return reg.Build("slackc", typ, raw, connectors.Env{HTTP: connectortest.FastHTTP(-1), State: &connectortest.State{}})
}

func chGrant(id, channel string) access.Grant {
	return access.Grant{
		ID: id, System: "crm-admins", Role: "member", Params: map[string]string{"channel": channel},
		User: access.Person{SlackID: alice, Email: "alice@example.com", Name: "Alice"},
	}
}

func ugGrant(id, ug string) access.Grant {
	return access.Grant{
		ID: id, System: "oncall", Role: "member", Params: map[string]string{"usergroup": ug},
		User: access.Person{SlackID: alice, Email: "alice@example.com", Name: "Alice"},
	}
}

func mustOK(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		class, _ := access.Classify(err)
		t.Fatalf("%v (%v)", err, class)
	}
}

func (tg *target) inGroup(id, user string) bool {
	return !tg.emu.GroupDisabled(id) && slices.Contains(tg.emu.GroupMembers(id), user)
}

// harness is the conformance harness shared by the Slack connectors.
func harness(cur **target, typ string, g func() access.Grant, has func(tg *target) bool, pregrant func(tg *target)) conformance.Harness {
	return conformance.Harness{
		New: func(t *testing.T) access.Connector {
			*cur = newTarget(t)
			return build(t, *cur, typ, nil)
		},
		Grant:     func(*testing.T) access.Grant { return g() },
		HasAccess: func(*testing.T, access.Grant) bool { return has(*cur) },
		UnknownUser: func(*testing.T) access.Grant {
			x := g()
			x.User = access.Person{SlackID: "U0NOBODY1", Email: "nobody@example.com", Name: "Nobody"}
			return x
		},
		TargetUserID: func(_ *testing.T, g access.Grant) string { return g.User.SlackID },
		// A Slack user's email changes; their ID does not, and it is
		// what both connectors act on.
		ChangeEmail: func(*testing.T, access.Grant) string {
			(*cur).emu.AddUser(slackemu.User{ID: alice, Name: "alice", RealName: "Alice", Email: "alice.smith@example.com"})
			return "alice.smith@example.com"
		},
		PreGrant: func(*testing.T, access.Grant) { pregrant(*cur) },
		// Slack never deletes users; a deactivated one is still removed
		// by the revoke.
		DeleteUser: func(*testing.T, access.Grant) {
			(*cur).emu.AddUser(slackemu.User{ID: alice, Name: "alice", RealName: "Alice", Email: "alice@example.com", Deleted: true})
		},
		FailNext: func(_ *testing.T, status int) { (*cur).FailNext(status) },
	}
}

func TestChannelConformance(t *testing.T) {
	for _, channel := range []string{private, public} {
		t.Run(channel, func(t *testing.T) {
			var cur *target
			conformance.Run(t, harness(&cur, slack.ChannelType,
				func() access.Grant { return chGrant("AR-1", channel) },
				func(tg *target) bool { return slices.Contains(tg.emu.ChannelMembers(channel), alice) },
				func(tg *target) {
					tg.emu.AddChannel(slackemu.Channel{ID: channel, Name: "x", Private: channel == private, BotIsMember: true, Members: []string{bob, alice}})
				}))
		})
	}
}

func TestUsergroupConformance(t *testing.T) {
	t.Run("enabled group", func(t *testing.T) {
		var cur *target
		conformance.Run(t, harness(&cur, slack.UsergroupType,
			func() access.Grant { return ugGrant("AR-1", group) },
			func(tg *target) bool { return tg.inGroup(group, alice) },
			func(tg *target) {
				tg.emu.AddUserGroup(slackemu.UserGroup{ID: group, Handle: "oncall", Members: []string{bob, alice}})
			}))
	})
	t.Run("disabled group", func(t *testing.T) {
		// Every grant is two calls: set the members, enable the group.
		var cur *target
		h := harness(&cur, slack.UsergroupType,
			func() access.Grant { return ugGrant("AR-1", dormant) },
			func(tg *target) bool { return tg.inGroup(dormant, alice) },
			func(tg *target) {
				tg.emu.AddUserGroup(slackemu.UserGroup{ID: dormant, Handle: "incident", Members: []string{alice}})
			})
		h.FailSecondCall = func(*testing.T) { cur.emu.FailNext("usergroups.enable", "permission_denied", 1) }
		conformance.Run(t, h)
	})
}

func TestChannelReceipt(t *testing.T) {
	tg := newTarget(t)
	c := build(t, tg, slack.ChannelType, nil)
	g := chGrant("AR-1", private)
	rc, err := c.Grant(t.Context(), g)
	mustOK(t, err)
	if rc.UserID != alice || rc.PreExisting || !strings.Contains(string(rc.Data), private) {
		t.Fatalf("receipt = %+v (%s)", rc, rc.Data)
	}
	// Another request while the first is live: the membership is there.
	rc2, err := c.Grant(t.Context(), chGrant("AR-2", private))
	if err != nil || !rc2.PreExisting {
		t.Fatalf("second request's receipt = %+v, %v; want PreExisting", rc2, err)
	}
	g.Receipt = &rc
	mustOK(t, c.Revoke(t.Context(), g))
	if slices.Contains(tg.emu.ChannelMembers(private), alice) {
		t.Fatal("still a member")
	}
}

func TestChannelBotNotMember(t *testing.T) {
	tg := newTarget(t)
	c := build(t, tg, slack.ChannelType, nil)
	// Invite into a channel the bot is not in: not_in_channel, permanent,
	// saying what to do.
	rc, err := c.Grant(t.Context(), chGrant("AR-1", notBots))
	var se *slack.SlackError
	if class, _ := access.Classify(err); err == nil || class != access.Permanent || !errors.As(err, &se) || se.Code != "not_in_channel" ||
		!strings.Contains(err.Error(), "invite the bot first") || rc.Changed() {
		t.Fatalf("grant into a channel without the bot = %+v, %v", rc, err)
	}
	// Kick from it: not_in_channel is also what Slack says when the bot is
	// not a member; alice is, so that is not "done".
	err = c.Revoke(t.Context(), chGrant("AR-1", notBots))
	if class, _ := access.Classify(err); err == nil || class != access.Permanent || !errors.As(err, &se) || se.Code != "not_in_channel" {
		t.Fatalf("kick from a channel without the bot = %v", err)
	}
	if !slices.Contains(tg.emu.ChannelMembers(notBots), alice) {
		t.Fatal("alice removed")
	}
	// A private channel the bot is not in is invisible to it.
	tg.emu.AddChannel(slackemu.Channel{ID: "G0SECRET01", Private: true, Members: []string{alice}})
	if _, err := c.Grant(t.Context(), chGrant("AR-3", "G0SECRET01")); !errors.As(err, &se) || se.Code != "channel_not_found" {
		t.Fatalf("grant into an invisible private channel = %v", err)
	}
}

func TestMissingScopeNamesIt(t *testing.T) {
	tg := newTarget(t)
	tg.emu.SetScopes("usergroups:read", "users:read")
	c := build(t, tg, slack.UsergroupType, nil)
	_, err := c.Grant(t.Context(), ugGrant("AR-1", group))
	if class, _ := access.Classify(err); err == nil || class != access.Permanent || !strings.Contains(err.Error(), "lacks the usergroups:write scope") {
		t.Fatalf("grant without usergroups:write = %v", err)
	}
}

func TestRefusedTokenIsPermanentAndNotLeaked(t *testing.T) {
	tg := newTarget(t)
	const stale = "xoxb-000000000000-0000000000000-STALEdeadbeefSTALEdeadbeef"
	c := build(t, tg, slack.ChannelType, map[string]any{"bot_token": stale})
	_, err := c.Grant(t.Context(), chGrant("AR-1", private))
	if class, _ := access.Classify(err); err == nil || class != access.Permanent || !strings.Contains(err.Error(), "invalid_auth") || !strings.Contains(err.Error(), "token was refused") {
		t.Fatalf("grant with a refused token = %v", err)
	}
	for _, leak := range []string{stale, tg.emu.BotToken()} {
		if strings.Contains(err.Error(), leak) {
			t.Fatalf("error leaks a token: %v", err)
		}
	}
}

func TestRateLimitIsRetryableWithItsWait(t *testing.T) {
	tg := newTarget(t)
	c := build(t, tg, slack.ChannelType, nil)
	tg.emu.RateLimit("conversations.invite", 30*time.Second, 1)
	_, err := c.Grant(t.Context(), chGrant("AR-1", private))
	if class, wait := access.Classify(err); err == nil || class != access.Retryable || wait != 30*time.Second {
		t.Fatalf("rate-limited grant = %v (%v, %v), want retryable after 30s", err, class, wait)
	}
	tg.emu.FailNext("conversations.invite", "internal_error", 1)
	if _, err := c.Grant(t.Context(), chGrant("AR-1", private)); err == nil {
		t.Fatal("internal_error: no error")
	} else if class, _ := access.Classify(err); class != access.Retryable {
		t.Fatalf("internal_error = %v, want retryable", err)
	}
	mustOK(t, connectortest.ErrOf(c.Grant(t.Context(), chGrant("AR-1", private))))
}

func TestUsergroupLastMemberAndReenable(t *testing.T) {
	tg := newTarget(t)
	c := build(t, tg, slack.UsergroupType, nil)
	// bob is the only member: revoking him disables the group.
	bobs := ugGrant("AR-0", group)
	bobs.User = access.Person{SlackID: bob, Email: "bob@example.com"}
	mustOK(t, c.Revoke(t.Context(), bobs))
	if !tg.emu.GroupDisabled(group) {
		t.Fatal("the group was not disabled when its last member was removed")
	}
	// Granting into the disabled group sets alice as its only member, then
	// enables it: bob, kept by Slack on the disabled group, stays out.
	g := ugGrant("AR-1", group)
	rc, err := c.Grant(t.Context(), g)
	mustOK(t, err)
	if got := tg.emu.GroupMembers(group); tg.emu.GroupDisabled(group) || !slices.Equal(got, []string{alice}) {
		t.Fatalf("group after grant: members %v, disabled %v", got, tg.emu.GroupDisabled(group))
	}
	if !strings.Contains(string(rc.Data), `"reenabled":true`) {
		t.Fatalf("receipt data %s", rc.Data)
	}
	calls := tg.emu.Calls("")
	var order []string
	for _, cl := range calls {
		if cl.Method == "usergroups.users.update" || cl.Method == "usergroups.enable" {
			order = append(order, cl.Method)
		}
	}
	if !slices.Equal(order, []string{"usergroups.users.update", "usergroups.enable"}) {
		t.Fatalf("calls %v: the members must be set before the group is enabled", order)
	}
	g.Receipt = &rc
	mustOK(t, c.Revoke(t.Context(), g))
	if !tg.emu.GroupDisabled(group) {
		t.Fatal("not disabled again")
	}
}

func TestUsergroupConcurrentChangesAllKept(t *testing.T) {
	tg := newTarget(t)
	var people []string
	for i := range 12 {
		id := fmt.Sprintf("U0PEOPLE%02d", i)
		tg.emu.AddUser(slackemu.User{ID: id, Name: id, Email: strings.ToLower(id) + "@example.com"})
		people = append(people, id)
	}
	ws := &slack.Workspace{BotToken: tg.emu.BotToken(), APIURL: tg.apiURL()}
	// Two connector instances naming the same group share the lock.
	a, err := tryBuild(t, ws, slack.UsergroupType, nil)
	mustOK(t, err)
	b, err := tryBuild(t, ws, slack.UsergroupType, nil)
	mustOK(t, err)
	var wg sync.WaitGroup
	for i, p := range people {
		c := a
		if i%2 == 1 {
			c = b
		}
		wg.Go(func() {
			g := ugGrant("AR-"+p, group)
			g.User = access.Person{SlackID: p}
			if _, err := c.Grant(t.Context(), g); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	got := tg.emu.GroupMembers(group)
	for _, p := range append([]string{bob}, people...) {
		if !slices.Contains(got, p) {
			t.Fatalf("%s lost: %v", p, got)
		}
	}
}

func TestUnknownGroupIsPermanent(t *testing.T) {
	tg := newTarget(t)
	c := build(t, tg, slack.UsergroupType, nil)
	_, err := c.Grant(t.Context(), ugGrant("AR-1", "S0NOSUCH01"))
	if class, _ := access.Classify(err); err == nil || class != access.Permanent || !strings.Contains(err.Error(), "no user group S0NOSUCH01") {
		t.Fatalf("unknown group = %v", err)
	}
}

func TestConfig(t *testing.T) {
	tg := newTarget(t)
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte(tg.emu.BotToken()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// The block's own token and URL win over the workspace defaults.
	other := &slack.Workspace{BotToken: "xoxb-1-2-OTHERWORKSPACE", APIURL: "https://slack.com/api/"}
	c, err := tryBuild(t, other, slack.ChannelType, map[string]any{"bot_token_file": tokenFile, "api_url": tg.apiURL()})
	mustOK(t, err)
	mustOK(t, connectortest.ErrOf(c.Grant(t.Context(), chGrant("AR-1", private))))

	// Without a token anywhere the block still validates, but nothing is
	// sent: every call fails permanently, saying what is missing.
	c, err = tryBuild(t, &slack.Workspace{}, slack.ChannelType, map[string]any{"api_url": tg.apiURL()})
	mustOK(t, err)
	calls := len(tg.emu.Calls(""))
	if _, err := c.Grant(t.Context(), chGrant("AR-1", private)); err == nil || !strings.Contains(err.Error(), "no bot token") {
		t.Fatalf("grant without a token = %v", err)
	}
	if len(tg.emu.Calls("")) != calls {
		t.Fatal("a request was sent without a token")
	}

	for _, tc := range []struct {
		name string
		raw  map[string]any
		want string
	}{
		{"user token", map[string]any{"bot_token": "xoxp-SECRETUSERTOKEN"}, "connectors.slackc.bot_token: must be a bot token"},
		{"both", map[string]any{"bot_token": "xoxb-1", "bot_token_file": tokenFile}, "set only one"},
		{"plain http", map[string]any{"api_url": "http://slack.example.com/api/"}, "connectors.slackc.api_url: must be an https:// URL"},
		{"typo", map[string]any{"bot_tokn": "xoxb-1"}, `did you mean "bot_token"?`},
	} {
		_, err := tryBuild(t, &slack.Workspace{}, slack.ChannelType, tc.raw)
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "SECRETUSERTOKEN") {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
	reg := connectors.NewRegistry()
	reg.Add(slack.ChannelType, (&slack.Workspace{}).ChannelFactory)
	if _, err := reg.Build("slackc", slack.ChannelType, nil, connectors.Env{}); err == nil || !strings.Contains(err.Error(), "durable state") {
		t.Fatalf("build without State = %v", err)
	}
}

func TestCheckParams(t *testing.T) {
	tg := newTarget(t)
	ch := build(t, tg, slack.ChannelType, nil).(access.ParamsChecker)
	ug := build(t, tg, slack.UsergroupType, nil).(access.ParamsChecker)
	for _, tc := range []struct {
		name   string
		c      access.ParamsChecker
		params map[string]string
		want   string // prefix of the error; "" for none
	}{
		{"channel", ch, map[string]string{"channel": "C0123ABCD"}, ""},
		{"private", ch, map[string]string{"channel": "G0123ABCD"}, ""},
		{"usergroup", ug, map[string]string{"usergroup": "S0123ABCD"}, ""},
		{"missing", ch, map[string]string{}, "channel: required"},
		{"missing group", ug, map[string]string{}, "usergroup: required"},
		{"unknown", ch, map[string]string{"channel": "C0123ABCD", "chanel": "x"}, "chanel: unknown grant parameter (did you mean channel?)"},
		{"unknown group", ug, map[string]string{"usergroup": "S0123ABCD", "user_group": "x"}, "user_group: unknown grant parameter (did you mean usergroup?)"},
		{"name not id", ch, map[string]string{"channel": "#general"}, `channel: "#general" is not a channel ID`},
		{"handle not id", ug, map[string]string{"usergroup": "@oncall"}, `usergroup: "@oncall" is not a user group ID`},
		{"wrong kind", ug, map[string]string{"usergroup": "C0123ABCD"}, `usergroup: "C0123ABCD" is not`},
	} {
		err := tc.c.CheckParams(tc.params)
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.HasPrefix(err.Error(), tc.want)) {
			t.Errorf("%s: CheckParams(%v) = %v, want %q", tc.name, tc.params, err, tc.want)
		}
	}
}
