package web

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"html/template"
	"strings"

	"github.com/accessbot/accessbot/bot/slackemu"
)

// Unsupported is the marker shown in place of a block or element type the
// renderer does not know, so that nothing the bot sends is silently
// dropped; the golden tests fail when it appears.
const Unsupported = "unsupported block"

//go:embed templates/*.tmpl
var templateFS embed.FS

var blockTmpl = template.Must(template.New("").Funcs(template.FuncMap{
	"join": strings.Join,
}).ParseFS(templateFS, "templates/blocks.tmpl"))

// textObj is a Block Kit composition text object.
type textObj struct {
	Type     string `json:"type"`
	Text     string `json:"text"`
	Emoji    *bool  `json:"emoji"`
	Verbatim bool   `json:"verbatim"`
}

type optionObj struct {
	Text        textObj  `json:"text"`
	Value       string   `json:"value"`
	Description *textObj `json:"description"`
}

type optionGroup struct {
	Label   textObj     `json:"label"`
	Options []optionObj `json:"options"`
}

type confirmObj struct {
	Title   *textObj `json:"title"`
	Text    *textObj `json:"text"`
	Confirm *textObj `json:"confirm"`
	Deny    *textObj `json:"deny"`
	Style   string   `json:"style"`
}

// element is any Block Kit element; fields unused by a type stay zero.
type element struct {
	Type           string          `json:"type"`
	ActionID       string          `json:"action_id"`
	Text           json.RawMessage `json:"text"` // a text object (button) or a string (context text)
	Value          string          `json:"value"`
	Style          string          `json:"style"`
	URL            string          `json:"url"`
	Confirm        *confirmObj     `json:"confirm"`
	Placeholder    *textObj        `json:"placeholder"`
	Options        []optionObj     `json:"options"`
	OptionGroups   []optionGroup   `json:"option_groups"`
	InitialOption  *optionObj      `json:"initial_option"`
	InitialOptions []optionObj     `json:"initial_options"`
	InitialValue   string          `json:"initial_value"`
	InitialDate    string          `json:"initial_date"`
	InitialTime    string          `json:"initial_time"`
	Multiline      bool            `json:"multiline"`
	MaxLength      int             `json:"max_length"`
	MinLength      int             `json:"min_length"`
	ImageURL       string          `json:"image_url"`
	AltText        string          `json:"alt_text"`
	Verbatim       bool            `json:"verbatim"`
}

type block struct {
	Type           string            `json:"type"`
	BlockID        string            `json:"block_id"`
	Text           *textObj          `json:"text"`
	Fields         []textObj         `json:"fields"`
	Accessory      *element          `json:"accessory"`
	Elements       []json.RawMessage `json:"elements"`
	Element        *element          `json:"element"`
	Label          *textObj          `json:"label"`
	Hint           *textObj          `json:"hint"`
	Optional       bool              `json:"optional"`
	DispatchAction bool              `json:"dispatch_action"`
	ImageURL       string            `json:"image_url"`
	AltText        string            `json:"alt_text"`
	Title          *textObj          `json:"title"`
}

// The view models the templates lay out: every string in them is either
// plain text (escaped by html/template) or template.HTML made by Mrkdwn.

type blockVM struct {
	Kind      string // section, divider, header, context, actions, input, image, unsupported
	BlockID   string
	Text      template.HTML
	Fields    []template.HTML
	Accessory *elemVM
	Elements  []elemVM
	Context   []contextVM
	Label     string
	Hint      string
	Optional  bool
	Input     *elemVM
	Error     string // the field error from response_action: errors
	Alt       string
	Type      string // the block type, for the unsupported marker
}

type contextVM struct {
	HTML template.HTML
	Alt  string // an image: its alt text (images are not fetched: no internet)
}

type optVM struct {
	Label, Value, Description string
	Selected                  bool
}

type groupVM struct {
	Label   string
	Options []optVM
}

type confirmVM struct {
	Title, Confirm, Deny, Style string
	Text                        template.HTML
}

type elemVM struct {
	Kind        string // button, select, multiselect, overflow, text, textarea, date, time, number, checkboxes, radio, image, unsupported
	Type        string // the Block Kit element type
	ActionID    string
	BlockID     string
	Label       string
	Value       string
	Style       string
	URL         string
	Confirm     *confirmVM
	Placeholder string
	Options     []optVM
	Groups      []groupVM
	Initial     string
	MaxLength   int
	MinLength   int
	Dispatch    bool
	Required    bool
	ID          string // the form control's id, for its label
	Described   string // id of the hint or error describing the control
	Invalid     bool
}

// renderer turns one surface's blocks into view models.
type renderer struct {
	names  Names
	errors map[string]string // block_id → field error (modals)
	idBase string            // prefix of form control ids (the view id)
}

func (r *renderer) text(t *textObj) template.HTML {
	if t == nil {
		return ""
	}
	if t.Type == "mrkdwn" {
		return Mrkdwn(t.Text, r.names)
	}
	return template.HTML(template.HTMLEscapeString(t.Text))
}

func plain(t *textObj) string {
	if t == nil {
		return ""
	}
	return t.Text
}

func (r *renderer) blocks(raw json.RawMessage) []blockVM {
	var list []json.RawMessage
	if err := json.Unmarshal(raw, &list); err != nil {
		return []blockVM{{Kind: "unsupported", Type: "blocks that are not a JSON array"}}
	}
	out := make([]blockVM, 0, len(list))
	for _, one := range list {
		var b block
		if err := json.Unmarshal(one, &b); err != nil {
			out = append(out, blockVM{Kind: "unsupported", Type: "malformed block"})
			continue
		}
		out = append(out, r.block(b))
	}
	return out
}

func (r *renderer) block(b block) blockVM {
	vm := blockVM{Kind: b.Type, BlockID: b.BlockID, Type: b.Type}
	switch b.Type {
	case "section":
		vm.Text = r.text(b.Text)
		for i := range b.Fields {
			vm.Fields = append(vm.Fields, r.text(&b.Fields[i]))
		}
		if b.Accessory != nil {
			e := r.element(*b.Accessory, b.BlockID)
			vm.Accessory = &e
		}
	case "divider":
	case "header":
		vm.Text = template.HTML(template.HTMLEscapeString(plain(b.Text)))
	case "context":
		for _, raw := range b.Elements {
			var e struct {
				Type     string `json:"type"`
				Text     string `json:"text"`
				AltText  string `json:"alt_text"`
				Verbatim bool   `json:"verbatim"`
			}
			_ = json.Unmarshal(raw, &e)
			switch e.Type {
			case "mrkdwn", "plain_text":
				vm.Context = append(vm.Context, contextVM{HTML: r.text(&textObj{Type: e.Type, Text: e.Text})})
			case "image":
				vm.Context = append(vm.Context, contextVM{Alt: e.AltText})
			default:
				vm.Context = append(vm.Context, contextVM{HTML: unsupportedHTML("context element " + e.Type)})
			}
		}
	case "actions":
		for _, raw := range b.Elements {
			var e element
			if err := json.Unmarshal(raw, &e); err != nil {
				vm.Elements = append(vm.Elements, elemVM{Kind: "unsupported", Type: "malformed element"})
				continue
			}
			vm.Elements = append(vm.Elements, r.element(e, b.BlockID))
		}
	case "input":
		vm.Label = plain(b.Label)
		vm.Hint = plain(b.Hint)
		vm.Optional = b.Optional
		vm.Error = r.errors[b.BlockID]
		if b.Element != nil {
			e := r.element(*b.Element, b.BlockID)
			e.Dispatch = b.DispatchAction
			e.Required = !b.Optional
			e.Invalid = vm.Error != ""
			if vm.Error != "" {
				e.Described = e.ID + "-error"
			} else if vm.Hint != "" {
				e.Described = e.ID + "-hint"
			}
			vm.Input = &e
		}
	case "image":
		vm.Alt = b.AltText
		vm.Label = plain(b.Title)
	default:
		vm.Kind = "unsupported"
	}
	return vm
}

func unsupportedHTML(what string) template.HTML {
	return template.HTML(`<span class="unsupported" role="note">` + Unsupported + `: ` + template.HTMLEscapeString(what) + `</span>`)
}

func options(opts []optionObj, selected map[string]bool) []optVM {
	out := make([]optVM, 0, len(opts))
	for _, o := range opts {
		out = append(out, optVM{Label: o.Text.Text, Value: o.Value, Description: plain(o.Description), Selected: selected[o.Value]})
	}
	return out
}

func (r *renderer) element(e element, blockID string) elemVM {
	vm := elemVM{Type: e.Type, Kind: e.Type, ActionID: e.ActionID, BlockID: blockID, Value: e.Value, Style: e.Style, URL: e.URL,
		MaxLength: e.MaxLength, MinLength: e.MinLength, Placeholder: plain(e.Placeholder)}
	vm.ID = "f-" + r.idBase + "-" + blockID + "-" + e.ActionID
	selected := map[string]bool{}
	if e.InitialOption != nil {
		selected[e.InitialOption.Value] = true
		vm.Initial = e.InitialOption.Value
	}
	for _, o := range e.InitialOptions {
		selected[o.Value] = true
	}
	allOpts := func() {
		vm.Options = options(e.Options, selected)
		for _, g := range e.OptionGroups {
			vm.Groups = append(vm.Groups, groupVM{Label: g.Label.Text, Options: options(g.Options, selected)})
		}
	}
	switch e.Type {
	case "button":
		var t textObj
		_ = json.Unmarshal(e.Text, &t)
		vm.Label = t.Text
		if e.Confirm != nil {
			c := e.Confirm
			vm.Confirm = &confirmVM{Title: plain(c.Title), Text: r.text(c.Text), Confirm: plain(c.Confirm), Deny: plain(c.Deny), Style: c.Style}
			if vm.Confirm.Confirm == "" {
				vm.Confirm.Confirm = "Yes"
			}
			if vm.Confirm.Deny == "" {
				vm.Confirm.Deny = "Cancel"
			}
		}
	case "static_select", "external_select":
		vm.Kind = "select"
		allOpts()
	case "multi_static_select", "multi_external_select":
		vm.Kind = "multiselect"
		allOpts()
	case "overflow":
		vm.Kind = "overflow"
		allOpts()
	case "radio_buttons":
		vm.Kind = "radio"
		allOpts()
	case "checkboxes":
		vm.Kind = "checkboxes"
		allOpts()
	case "plain_text_input":
		vm.Kind = "text"
		if e.Multiline {
			vm.Kind = "textarea"
		}
		vm.Initial = e.InitialValue
	case "email_text_input", "url_text_input", "number_input":
		vm.Kind = map[string]string{"email_text_input": "email", "url_text_input": "url", "number_input": "number"}[e.Type]
		vm.Initial = e.InitialValue
	case "datepicker":
		vm.Kind = "date"
		vm.Initial = e.InitialDate
	case "timepicker":
		vm.Kind = "time"
		vm.Initial = e.InitialTime
	case "image":
		vm.Label = e.AltText
	default:
		vm.Kind = "unsupported"
	}
	return vm
}

// surfaceVM is what blocks.tmpl's "surface" template gets.
type surfaceVM struct {
	Blocks   []blockVM
	Fallback template.HTML // the message text, when there are no blocks
}

func (r *renderer) render(raw json.RawMessage, fallback string) template.HTML {
	vm := surfaceVM{}
	if len(bytes.TrimSpace(raw)) > 0 && string(bytes.TrimSpace(raw)) != "null" && string(bytes.TrimSpace(raw)) != "[]" {
		vm.Blocks = r.blocks(raw)
	} else {
		vm.Fallback = Mrkdwn(fallback, r.names)
	}
	var b bytes.Buffer
	if err := blockTmpl.ExecuteTemplate(&b, "surface", vm); err != nil {
		// The templates are fixed and the data typed: an error here is a
		// programming mistake, shown rather than hidden.
		return template.HTML(`<div class="unsupported">` + template.HTMLEscapeString(fmt.Sprintf("render error: %v", err)) + `</div>`)
	}
	return template.HTML(b.String())
}

// RenderBlocks renders a message's blocks (or, when there are none, its
// text as mrkdwn) as HTML: the content of one message as a Slack client
// shows it, with buttons and selects carrying data-action-id, data-block-id
// and data-value attributes for the page's script. Unknown block and
// element types render as a visible Unsupported marker.
func RenderBlocks(blocks json.RawMessage, text string, names Names) template.HTML {
	r := &renderer{names: names, idBase: "m"}
	return r.render(blocks, text)
}

// RenderViewBlocks renders a modal's or App Home's blocks. errors are the
// field errors of the last response_action "errors" (block_id → message),
// shown under their input; viewID makes form control ids unique.
func RenderViewBlocks(viewID string, blocks json.RawMessage, errors map[string]string, names Names) template.HTML {
	r := &renderer{names: names, errors: errors, idBase: viewID}
	return r.render(blocks, "")
}

type modalVM struct {
	ID, Hash, Title, Close, Submit string
	Body                           template.HTML
}

// RenderModal renders an open modal as Slack shows it: its title, its
// blocks with the field errors of the last response_action "errors", and
// its close and submit buttons (data-act="close" / "submit").
func RenderModal(v slackemu.View, names Names) template.HTML {
	var raw struct {
		Close  *textObj `json:"close"`
		Submit *textObj `json:"submit"`
	}
	_ = json.Unmarshal(v.Raw, &raw)
	vm := modalVM{ID: v.ID, Hash: v.Hash, Title: v.Title, Close: plain(raw.Close), Submit: plain(raw.Submit),
		Body: RenderViewBlocks(v.ID, v.Blocks, v.Errors, names)}
	var b bytes.Buffer
	if err := blockTmpl.ExecuteTemplate(&b, "modal", vm); err != nil {
		return template.HTML(`<div class="unsupported">` + template.HTMLEscapeString(fmt.Sprintf("render error: %v", err)) + `</div>`)
	}
	return template.HTML(b.String())
}
