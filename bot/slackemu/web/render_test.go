package web

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/accessbot/accessbot/bot/slackemu"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden.html from the current renderer")

// goldenNames are the people, channels and groups of the bot's golden
// messages (bot/render_test.go).
type mapNames map[string]string

func (m mapNames) UserName(id string) string    { return m[id] }
func (m mapNames) ChannelName(id string) string { return m[id] }
func (m mapNames) GroupHandle(id string) string { return m[id] }

var goldenNames = mapNames{
	"U0ALICE01": "Alice", "U0BOB0001": "Bob", "U0CAROL01": "Carol", "U0DAVE001": "Dave", "U0ERIN001": "Erin",
	"U0FRANK01": "Frank", "U0ADMIN01": "Ada", "U0MALLO01": "Mallory", "C0CRMOWN1": "crm-owners", "S0HRTEAM1": "hr-team",
}

// renderGolden renders one of the bot's golden files the way the sandbox
// shows it: a view (modal or App Home) or a message.
func renderGolden(t *testing.T, data []byte) string {
	t.Helper()
	var probe struct {
		Type   string                `json:"type"`
		Title  struct{ Text string } `json:"title"`
		Text   string                `json:"text"`
		Blocks json.RawMessage       `json:"blocks"`
	}
	if err := json.Unmarshal(data, &probe); err != nil {
		t.Fatal(err)
	}
	switch probe.Type {
	case "modal":
		return string(RenderModal(slackemu.View{ID: "V0GOLDEN", Type: "modal", Title: probe.Title.Text, Blocks: probe.Blocks, Raw: data}, goldenNames))
	case "home":
		return string(RenderViewBlocks("V0HOME", probe.Blocks, nil, goldenNames))
	case "":
		return string(RenderBlocks(probe.Blocks, probe.Text, goldenNames))
	}
	t.Fatalf("unknown golden kind %q", probe.Type)
	return ""
}

// Every message, modal and App Home the bot can send (its own golden
// files) renders, with no "unsupported block" marker; the HTML is
// compared with testdata/NAME.golden.html (-update rewrites them).
func TestRenderBotGoldens(t *testing.T) {
	files, err := filepath.Glob("../../testdata/*.golden.json")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 30 {
		t.Fatalf("found only %d of the bot's golden files", len(files))
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".golden.json")
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			got := renderGolden(t, data)
			if strings.Contains(got, Unsupported) {
				t.Errorf("%s renders an %q marker:\n%s", name, Unsupported, got)
			}
			path := filepath.Join("testdata", name+".golden.html")
			if *update {
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (go test ./bot/slackemu/web -update writes it)", err)
			}
			if diff := cmp.Diff(string(want), got); diff != "" {
				t.Errorf("%s differs from its golden file (-want +got; -update rewrites it after review):\n%s", path, diff)
			}
		})
	}
}

// An unknown block or element type is shown, never dropped, and the
// marker is what TestRenderBotGoldens looks for.
func TestUnknownBlockIsMarked(t *testing.T) {
	for name, blocks := range map[string]string{
		"block":           `[{"type":"rich_text","elements":[]}]`,
		"element":         `[{"type":"actions","elements":[{"type":"workflow_button","text":{"type":"plain_text","text":"Go"}}]}]`,
		"accessory":       `[{"type":"section","text":{"type":"mrkdwn","text":"x"},"accessory":{"type":"file_input"}}]`,
		"context element": `[{"type":"context","elements":[{"type":"video"}]}]`,
		"not an array":    `{"type":"section"}`,
	} {
		got := string(RenderBlocks(json.RawMessage(blocks), "", goldenNames))
		if !strings.Contains(got, Unsupported) {
			t.Errorf("%s: no %q marker in %s", name, Unsupported, got)
		}
	}
}

func TestRenderElements(t *testing.T) {
	blocks := `[
	 {"type":"section","block_id":"b1","text":{"type":"mrkdwn","text":"*Hi* <@U0ALICE01>"},"fields":[{"type":"mrkdwn","text":"*A*\n1"},{"type":"plain_text","text":"<b>"}],
	  "accessory":{"type":"overflow","action_id":"more","options":[{"text":{"type":"plain_text","text":"Edit"},"value":"edit"}]}},
	 {"type":"actions","block_id":"b2","elements":[
	  {"type":"button","action_id":"go","value":"AR-1","style":"danger","text":{"type":"plain_text","text":"Deny \"it\""},
	   "confirm":{"title":{"type":"plain_text","text":"Sure?"},"text":{"type":"mrkdwn","text":"Deny *AR-1*"},"confirm":{"type":"plain_text","text":"Deny"},"deny":{"type":"plain_text","text":"Keep"}}},
	  {"type":"static_select","action_id":"pick","placeholder":{"type":"plain_text","text":"Choose"},"option_groups":[{"label":{"type":"plain_text","text":"G"},"options":[{"text":{"type":"plain_text","text":"One"},"value":"1"}]}]}]},
	 {"type":"image","image_url":"https://example.com/x.png","alt_text":"chart"}
	]`
	got := string(RenderBlocks(json.RawMessage(blocks), "", goldenNames))
	for _, want := range []string{
		`<b>Hi</b> <span class="mk-mention">@Alice</span>`,
		`<div class="bk-field">&lt;b&gt;</div>`,
		`class="bk-overflow"`, `<option value="edit">Edit</option>`,
		`class="bk-button bk-danger"`, `data-action-id="go"`, `data-value="AR-1"`, `>Deny &#34;it&#34;</button>`,
		`data-title="Sure?"`, `data-confirm="Deny"`, `data-deny="Keep"`, `Deny <b>AR-1</b>`,
		`<optgroup label="G"><option value="1">One</option></optgroup>`,
		`[image: chart]`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("rendering lacks %s:\n%s", want, got)
		}
	}
	if strings.Contains(got, "<img") {
		t.Error("images must not be fetched (the sandbox works offline)")
	}
}

func TestRenderModalFieldError(t *testing.T) {
	raw := json.RawMessage(`{"type":"modal","title":{"type":"plain_text","text":"Deny"},"submit":{"type":"plain_text","text":"Deny"},"close":{"type":"plain_text","text":"Back"},
	 "blocks":[{"type":"input","block_id":"why","label":{"type":"plain_text","text":"Reason"},"hint":{"type":"plain_text","text":"Shown to them"},
	  "element":{"type":"plain_text_input","action_id":"why_in","multiline":true}}]}`)
	var v struct{ Blocks json.RawMessage }
	_ = json.Unmarshal(raw, &v)
	got := string(RenderModal(slackemu.View{ID: "V1", Title: "Deny", Blocks: v.Blocks, Raw: raw, Errors: map[string]string{"why": "Say <why>"}}, goldenNames))
	for _, want := range []string{
		`aria-labelledby="modal-title-V1"`, `<h2 id="modal-title-V1">Deny</h2>`,
		`<label class="bk-label" for="f-V1-why-why_in">Reason</label>`,
		`<textarea class="bk-textinput" rows="3" id="f-V1-why-why_in"`, `aria-describedby="f-V1-why-why_in-error" aria-invalid="true"`,
		`<div class="bk-field-error" id="f-V1-why-why_in-error" role="alert">Say &lt;why&gt;</div>`,
		`class="bk-input bk-invalid"`,
		`data-act="close">Back</button>`, `data-act="submit">Deny</button>`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("modal lacks %s:\n%s", want, got)
		}
	}
}
