package main

import (
	"strings"
	"testing"
	"time"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/bot/slackemu"
)

func viewText(v slackemu.View) string { return string(v.Blocks) }

// App Home shows each person what concerns them: the requester their
// grants and pending requests, the approver what waits for them, the
// owner who holds access to their system; buttons act, and the Home is
// refreshed when something changes.
func TestE2EAppHome(t *testing.T) {
	e := startEnv(t, "")
	e.command("U0ALICE01", "crm viewer 2h ticket 4411")
	e.waitDMs("U0BOB0001", 1)
	e.command("U0DAVE001", "analytics viewer 1h")
	e.waitState("AR-1002", access.StateActive)

	home := func(user string, pred func(string) bool) string {
		t.Helper()
		if env := e.emu.OpenAppHome(user); env != nil {
			if _, err := env.WaitAck(3 * time.Second); err != nil {
				t.Fatal(err)
			}
		}
		v, err := e.emu.WaitHomeView(user, 5*time.Second, func(v slackemu.View) bool { return pred(viewText(v)) })
		if err != nil {
			t.Fatalf("%s's App Home: %v", user, err)
		}
		return viewText(v)
	}
	// Requester: the pending request with Cancel.
	alice := home("U0ALICE01", func(s string) bool { return strings.Contains(s, "AR-1001") })
	for _, want := range []string{"Request access", "AR-1001", "waiting for", "access_cancel", "Nothing is waiting for you"} {
		if !strings.Contains(alice, want) {
			t.Errorf("Alice's Home lacks %q", want)
		}
	}
	// Approver: the request waiting for them, with Approve / Deny.
	bob := home("U0BOB0001", func(s string) bool { return strings.Contains(s, "AR-1001") })
	for _, want := range []string{"Waiting for your approval", "AR-1001", "access_approve", "access_deny"} {
		if !strings.Contains(bob, want) {
			t.Errorf("Bob's Home lacks %q", want)
		}
	}
	// Active grant: time left and I'm done.
	dave := home("U0DAVE001", func(s string) bool { return strings.Contains(s, "AR-1002") })
	for _, want := range []string{"AR-1002", "active until", "left", "access_done"} {
		if !strings.Contains(dave, want) {
			t.Errorf("Dave's Home lacks %q", want)
		}
	}
	// Owner: who holds access to their system.
	oscar := home("U0OSCAR01", func(s string) bool { return strings.Contains(s, "AR-1002") })
	if !strings.Contains(oscar, "Access to systems you own") || !strings.Contains(oscar, "@U0DAVE001") {
		t.Errorf("Oscar's Home does not show who holds analytics access:\n%s", oscar)
	}

	// Approving from the Home works, and the requester's Home follows.
	envl, err := e.emu.ClickHomeButton("U0BOB0001", "access_approve", "AR-1001")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := envl.WaitAck(3 * time.Second); err != nil {
		t.Fatal(err)
	}
	e.eventually("step 2", func() bool { return e.request("AR-1001").CurrentStep == 1 })
	home("U0BOB0001", func(s string) bool { return !strings.Contains(s, "AR-1001") })
	// I'm done from the Home removes the access.
	envl, err = e.emu.ClickHomeButton("U0DAVE001", "access_done", "AR-1002")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := envl.WaitAck(3 * time.Second); err != nil {
		t.Fatal(err)
	}
	e.waitState("AR-1002", access.StateRevoked)
	if _, err := e.emu.WaitHomeView("U0DAVE001", 5*time.Second, func(v slackemu.View) bool {
		return !strings.Contains(viewText(v), "AR-1002")
	}); err != nil {
		t.Fatalf("Dave's Home was not refreshed after I'm done: %v", err)
	}
}

// `/access audit SYSTEM [SINCE]` gives owners and admins the system's audit
// export as a file in their DM, and refuses everyone else.
func TestE2EAuditCommand(t *testing.T) {
	e := startEnv(t, "")
	e.command("U0DAVE001", "analytics viewer 1h")
	e.waitState("AR-1001", access.StateActive)

	if out := ackText(e.command("U0ALICE01", "audit analytics")); !strings.Contains(out, "Only the owners of analytics and admins") {
		t.Fatalf("stranger's audit: %s", out)
	}
	if out := ackText(e.command("U0OSCAR01", "audit nosuch")); !strings.Contains(out, "no system") {
		t.Fatalf("unknown system: %s", out)
	}
	if out := ackText(e.command("U0OSCAR01", "audit analytics yesterday")); !strings.Contains(out, "neither a duration") {
		t.Fatalf("bad since: %s", out)
	}
	if out := ackText(e.command("U0OSCAR01", "audit analytics 7d")); !strings.Contains(out, "in your DM") {
		t.Fatalf("owner's audit: %s", out)
	}
	files := e.emu.Files("U0OSCAR01")
	if len(files) != 1 {
		t.Fatalf("%d files in Oscar's DM, want 1", len(files))
	}
	csv := string(files[0].Content)
	for _, want := range []string{"seq,time,event", "requested", "approved", "granted", "AR-1001", "analytics"} {
		if !strings.Contains(csv, want) {
			t.Errorf("export lacks %q:\n%s", want, csv)
		}
	}
	if strings.Contains(csv, "crm") {
		t.Errorf("export of analytics contains another system's records:\n%s", csv)
	}
	if out := ackText(e.command("U0ADMIN01", "audit analytics")); !strings.Contains(out, "in your DM") {
		t.Fatalf("admin's audit: %s", out)
	}
}
