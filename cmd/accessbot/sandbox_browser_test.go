package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// chromiumPath is Debian's chromium (.ci/run installs it).
const chromiumPath = "/usr/bin/chromium"

// browser starts a headless Chromium for the test, or skips the test when
// there is none (and fails when CI is set: CI installs it).
func browser(t *testing.T) context.Context {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is missing; .ci/run installs Debian's chromium", chromiumPath)
		}
		t.Skipf("%s not installed (apt-get install chromium)", chromiumPath)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck,
		// Without these Chromium reaches for the network at start, and
		// this machine's closed network refuses it.
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1440, 900),
	}
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	bctx, cancelB := chromedp.NewContext(actx)
	// The first action starts the browser for the life of its context
	// (so no timeout on that one); each later one is bounded.
	if err := chromedp.Do(bctx); err != nil {
		cancelB()
		cancelA()
		t.Fatalf("start chromium: %v", err)
	}
	ctx, cancelC := context.WithTimeout(bctx, 90*time.Second)
	t.Cleanup(func() { cancelC(); cancelB(); cancelA() })
	return ctx
}

// page drives the sandbox page as a person would.
type page struct {
	t    *testing.T
	ctx  context.Context
	shot string // screenshot directory
	n    int
}

func (p *page) run(what string, actions ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	if err := chromedp.Do(p.ctx, actions...); err != nil {
		p.screenshot("failed")
		dump, _ := chromedp.Run(p.ctx, chromedp.Evaluate[string](`document.body.innerText`))
		p.t.Fatalf("%s: %v\npage text:\n%s", what, err, dump)
	}
}

// js runs a JavaScript statement in the page.
func js(expr string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := chromedp.Evaluate[bool]("(() => { "+expr+"; return true })()")(ctx, t)
		return err
	})
}

// waitJS waits until the JavaScript expression is true.
func (p *page) waitJS(what, expr string) {
	p.t.Helper()
	p.run("wait for "+what, chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := chromedp.Poll[bool](expr, chromedp.WithPollingTimeout(10*time.Second), chromedp.WithPollingInterval(20*time.Millisecond))(ctx, t)
		return err
	}))
}

func jsq(s string) string { return fmt.Sprintf("%q", s) }

// waitText waits until the element matching sel contains text.
func (p *page) waitText(sel, text string) {
	p.t.Helper()
	p.waitJS(fmt.Sprintf("%q in %s", text, sel), fmt.Sprintf(`(() => { const e = document.querySelector(%s); return !!e && e.innerText.includes(%s) })()`, jsq(sel), jsq(text)))
}

// choose picks value in the select matching sel, as a person picks an
// option: the value changes and the change event fires. It waits until the
// select offers the value, and does both in one step, so that a re-render
// of the page (a live update) cannot come between them.
func (p *page) choose(sel, value string) {
	p.t.Helper()
	p.waitJS("choosing "+value+" in "+sel, fmt.Sprintf(`(() => {
		const e = document.querySelector(%s);
		if (!e || !Array.from(e.options).some((o) => o.value === %s)) return false;
		e.value = %s;
		e.dispatchEvent(new Event("change", {bubbles: true}));
		return true;
	})()`, jsq(sel), jsq(value), jsq(value)))
}

// as switches the person, through the switcher.
func (p *page) as(id string) {
	p.t.Helper()
	p.choose("#person", id)
	p.waitJS("the page of "+id, fmt.Sprintf(`document.body.dataset.as === %s && document.body.dataset.conv === "dm"`, jsq(id)))
}

func (p *page) command(text string) {
	p.t.Helper()
	p.run("type "+text, chromedp.SendKeys(chromedp.CSS("#composer-input"), text+kb.Enter))
}

func (p *page) screenshot(name string) {
	p.t.Helper()
	buf, err := chromedp.Run(p.ctx, chromedp.CaptureScreenshot())
	if err != nil {
		p.t.Logf("screenshot %s: %v", name, err)
		return
	}
	p.n++
	path := filepath.Join(p.shot, fmt.Sprintf("%02d-%s.png", p.n, name))
	if err := os.WriteFile(path, buf, 0o644); err != nil {
		p.t.Errorf("write %s: %v", path, err)
	}
}

// screenshotDir is where the browser tests write their screenshots:
// $ACCESSBOT_SCREENSHOTS, or the test's temporary directory.
func screenshotDir(t *testing.T) string {
	if d := os.Getenv("ACCESSBOT_SCREENSHOTS"); d != "" {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	return t.TempDir()
}

// The sandbox in a real browser: the approval story with confirm dialogs,
// a keyboard-only approval, the clock moved past expiry, the deny flow with
// its reason modal and field error, and the request modal opened by a bare
// /access.
func TestSandboxInBrowser(t *testing.T) {
	ctx := browser(t)
	s := startSandbox(t, nil, "--config", "../../config.example.yaml")
	p := &page{t: t, ctx: ctx, shot: screenshotDir(t)}
	const (
		alice, bob, carol, dave = "U0ALICE01", "U0BOB0001", "U0CAROL01", "U0DAVE001"
		grace, heidi            = "U0GRACE01", "U0HEIDI01"
	)
	p.run("open the page", chromedp.Navigate(s.url))
	p.waitText(".banner", "not a real Slack workspace")

	t.Run("approve, grant, expire", func(t *testing.T) {
		p.t = t
		p.as(alice)
		p.command("/access crm viewer 2h ticket 1")
		p.waitText("#messages", "is submitted and waiting for @Bob")
		p.waitText("#messages", "Only visible to you")
		p.screenshot("alice-requests")

		p.as(bob)
		p.waitJS("Bob's Approve button", `!!document.querySelector('#messages button[data-action-id="access_approve"]')`)
		p.run("click Approve", chromedp.Click(chromedp.CSS(`#messages button[data-action-id="access_approve"]`)))
		p.waitJS("the confirm dialog", `document.getElementById("confirm").open`)
		p.waitText("#confirm", "Approve AR-1001?")
		p.screenshot("bob-confirms")
		p.run("confirm", chromedp.Click(chromedp.CSS("#confirm-ok")))
		p.waitJS("Bob's buttons gone", `!document.querySelector('#messages button[data-action-id="access_approve"]')`)

		// Carol approves with the keyboard only: Enter on the button,
		// Enter on the dialog's confirm button (focused when it opens).
		p.as(carol)
		p.waitJS("Carol's Approve button", `!!document.querySelector('#messages button[data-action-id="access_approve"]')`)
		p.run("focus Approve", chromedp.Focus(chromedp.CSS(`#messages button[data-action-id="access_approve"]`)), chromedp.KeyEvent(kb.Enter))
		p.waitJS("the confirm dialog", `document.getElementById("confirm").open && document.activeElement.id === "confirm-ok"`)
		p.run("confirm with Enter", chromedp.KeyEvent(kb.Enter))
		p.waitJS("Carol's buttons gone", `!document.querySelector('#messages button[data-action-id="access_approve"]')`)

		p.as(alice)
		p.waitText("#messages", "you now have Salesforce CRM")
		p.waitText("#connectors", "GRANT")
		p.waitText("#connectors", "permission_set=Support_Read_Only")
		p.screenshot("alice-granted")

		p.run("+1 day", chromedp.Click(chromedp.CSS(`button[data-advance="1d"]`)))
		p.waitText("#connectors", "REVOKE")
		p.waitText("#messages", "expired and has been removed")
		p.waitText("#audit", "warned") // the expiry warning came first, on the way
		p.waitText("#audit", "Hash chain verified")
		p.waitText("#clock-now", "Tue 1 Dec 2026, 10:00")
		p.screenshot("alice-removed")
	})

	t.Run("deny with a reason", func(t *testing.T) {
		p.t = t
		p.as(grace)
		p.command("/access payroll viewer 1h check bonus payouts")
		p.waitText("#messages", "waiting for @Heidi")
		p.as(heidi)
		p.waitJS("Heidi's Deny button", `!!document.querySelector('#messages button[data-action-id="access_deny"]')`)
		p.run("click Deny", chromedp.Click(chromedp.CSS(`#messages button[data-action-id="access_deny"]`)))
		p.waitJS("the deny modal", `!!document.querySelector(".modal textarea")`)
		// Empty: the page refuses, like the Slack client.
		p.run("submit empty", chromedp.Click(chromedp.CSS(`.modal button[data-act="submit"]`)))
		p.waitText(".modal .bk-field-error", "Please complete this required field.")
		// Blank: the bot refuses with response_action errors, shown on the field.
		p.run("type a blank reason", chromedp.SendKeys(chromedp.CSS(".modal textarea"), "   "),
			chromedp.Click(chromedp.CSS(`.modal button[data-act="submit"]`)))
		p.waitText(".modal .bk-field-error", "Please say why; the requester will see it.")
		p.waitJS("the field marked invalid", `document.querySelector(".modal textarea").getAttribute("aria-invalid") === "true"`)
		p.screenshot("heidi-deny-reason-error")
		p.run("type the reason", js(`document.querySelector(".modal textarea").value = ""`),
			chromedp.SendKeys(chromedp.CSS(".modal textarea"), "Use the bonus report in Workday"),
			chromedp.Click(chromedp.CSS(`.modal button[data-act="submit"]`)))
		p.waitJS("the modal closed", `!document.querySelector(".modal")`)
		p.as(grace)
		p.waitText("#messages", "was denied by @Heidi")
		p.waitText("#messages", "Use the bonus report in Workday")
		p.screenshot("grace-denied")
	})

	t.Run("request modal", func(t *testing.T) {
		p.t = t
		p.as(dave)
		p.command("/access")
		p.waitJS("the request modal", `!!document.querySelector('.modal select[data-action-id="system_select"]')`)
		choose := func(action, value string) { p.choose(`.modal select[data-action-id="`+action+`"]`, value) }
		p.run("type the reason first", chromedp.SendKeys(chromedp.CSS(`.modal textarea, .modal input[data-action-id="reason_input"]`), "customer call 88"))
		choose("system_select", "crm")
		// The bot updates the modal (views.update) with crm's roles; what
		// was typed survives, as in Slack.
		p.waitJS("crm's roles", `!!document.querySelector('.modal select[data-action-id="role_select"] option[value="admin"]')`)
		choose("role_select", "viewer")
		p.waitJS("viewer's durations", `!!document.querySelector('.modal select[data-action-id="duration_select"] option[value="2h"]')`)
		choose("duration_select", "2h")
		p.waitJS("the reason kept", `document.querySelector('.modal [data-action-id="reason_input"]').value === "customer call 88"`)
		p.screenshot("dave-request-modal")
		p.run("submit", chromedp.Click(chromedp.CSS(`.modal button[data-act="submit"]`)))
		p.waitJS("the modal closed", `!document.querySelector(".modal")`)
		p.waitText("#messages", "Salesforce CRM · viewer")
		p.waitText("#messages", "was sent to @Bob")
		if !strings.Contains(s.state(bob, "").Messages, "customer call 88") {
			t.Error("Bob's approval DM lacks Dave's reason")
		}
	})
}
