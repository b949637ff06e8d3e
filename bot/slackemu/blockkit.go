package slackemu

import (
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Block Kit validation following protocol §4.3 (limits from
// https://docs.slack.dev/reference/block-kit/blocks via node-slack-sdk JSDoc).
// Messages failing validation get invalid_blocks (views: invalid_arguments)
// with response_metadata.messages in Slack's "[ERROR] … [json-pointer:…]" form.

type bkValidator struct {
	errs     []string
	blockIDs map[string]bool
}

func (v *bkValidator) errf(ptr, format string, args ...any) {
	v.errs = append(v.errs, fmt.Sprintf("[ERROR] %s [json-pointer:%s]", fmt.Sprintf(format, args...), ptr))
}

func strLen(s string) int { return utf8.RuneCountInString(s) }

func asMap(x any) (map[string]any, bool) { m, ok := x.(map[string]any); return m, ok }

func str(m map[string]any, k string) string { s, _ := m[k].(string); return s }

// text validates a text object; kinds is "plain_text", "mrkdwn" or "" (either).
func (v *bkValidator) text(ptr string, x any, kind string, maxLen int, required bool) {
	if x == nil {
		if required {
			v.errf(ptr, "missing required field: %s", ptr[strings.LastIndexByte(ptr, '/')+1:])
		}
		return
	}
	m, ok := asMap(x)
	if !ok {
		v.errf(ptr, "must be an object")
		return
	}
	t := str(m, "type")
	if t != "plain_text" && t != "mrkdwn" {
		v.errf(ptr+"/type", "must be one of [plain_text, mrkdwn]")
		return
	}
	if kind != "" && t != kind {
		v.errf(ptr+"/type", "must be %s", kind)
	}
	txt := str(m, "text")
	if strLen(txt) < 1 {
		v.errf(ptr+"/text", "must be more than 0 characters")
	}
	if maxLen > 0 && strLen(txt) > maxLen {
		v.errf(ptr+"/text", "must be less than %d characters", maxLen+1)
	}
}

func (v *bkValidator) id(ptr string, m map[string]any, key string, auto func() string) {
	id, present := m[key]
	s, _ := id.(string)
	if !present || s == "" {
		m[key] = auto()
		return
	}
	if strLen(s) > 255 {
		v.errf(ptr+"/"+key, "must be less than 256 characters")
	}
}

func (v *bkValidator) option(ptr string, x any) {
	m, ok := asMap(x)
	if !ok {
		v.errf(ptr, "must be an object")
		return
	}
	v.text(ptr+"/text", m["text"], "", 75, true)
	val := str(m, "value")
	if strLen(val) > 75 {
		v.errf(ptr+"/value", "must be less than 76 characters")
	}
	if m["description"] != nil {
		v.text(ptr+"/description", m["description"], "", 75, false)
	}
}

func (v *bkValidator) confirm(ptr string, x any) {
	m, ok := asMap(x)
	if !ok {
		v.errf(ptr, "must be an object")
		return
	}
	v.text(ptr+"/title", m["title"], "plain_text", 100, true)
	v.text(ptr+"/text", m["text"], "", 300, true)
	v.text(ptr+"/confirm", m["confirm"], "plain_text", 30, true)
	v.text(ptr+"/deny", m["deny"], "plain_text", 30, true)
}

func (v *bkValidator) element(ptr string, x any) {
	m, ok := asMap(x)
	if !ok {
		v.errf(ptr, "must be an object")
		return
	}
	t := str(m, "type")
	if t == "" {
		v.errf(ptr+"/type", "missing required field: type")
		return
	}
	if t != "image" {
		v.id(ptr, m, "action_id", func() string { return randAlnum(4) })
	}
	if m["confirm"] != nil {
		v.confirm(ptr+"/confirm", m["confirm"])
	}
	if m["placeholder"] != nil {
		v.text(ptr+"/placeholder", m["placeholder"], "plain_text", 150, false)
	}
	switch t {
	case "button":
		v.text(ptr+"/text", m["text"], "plain_text", 75, true)
		if strLen(str(m, "value")) > 2000 {
			v.errf(ptr+"/value", "must be less than 2001 characters")
		}
		if strLen(str(m, "url")) > 3000 {
			v.errf(ptr+"/url", "must be less than 3001 characters")
		}
		if st, ok := m["style"]; ok && st != "primary" && st != "danger" {
			v.errf(ptr+"/style", "must be one of [primary, danger]")
		}
	case "static_select", "multi_static_select":
		opts, _ := m["options"].([]any)
		groups, _ := m["option_groups"].([]any)
		if len(opts) == 0 && len(groups) == 0 {
			v.errf(ptr, "must provide either options or option_groups")
		}
		if len(opts) > 100 {
			v.errf(ptr+"/options", "must provide no more than 100 items")
		}
		if len(groups) > 100 {
			v.errf(ptr+"/option_groups", "must provide no more than 100 items")
		}
		for i, o := range opts {
			v.option(fmt.Sprintf("%s/options/%d", ptr, i), o)
		}
		for i, g := range groups {
			gm, _ := asMap(g)
			v.text(fmt.Sprintf("%s/option_groups/%d/label", ptr, i), gm["label"], "plain_text", 75, true)
			gopts, _ := gm["options"].([]any)
			if len(gopts) > 100 {
				v.errf(fmt.Sprintf("%s/option_groups/%d/options", ptr, i), "must provide no more than 100 items")
			}
			for j, o := range gopts {
				v.option(fmt.Sprintf("%s/option_groups/%d/options/%d", ptr, i, j), o)
			}
		}
	case "checkboxes", "radio_buttons", "overflow":
		opts, _ := m["options"].([]any)
		if len(opts) == 0 {
			v.errf(ptr+"/options", "missing required field: options")
		}
		for i, o := range opts {
			v.option(fmt.Sprintf("%s/options/%d", ptr, i), o)
		}
	case "plain_text_input":
		if ml, ok := m["max_length"].(float64); ok && ml > 3000 {
			v.errf(ptr+"/max_length", "must be less than or equal to 3000")
		}
		if ml, ok := m["min_length"].(float64); ok && ml > 3000 {
			v.errf(ptr+"/min_length", "must be less than or equal to 3000")
		}
	case "image":
		if str(m, "image_url") == "" && m["slack_file"] == nil {
			v.errf(ptr+"/image_url", "missing required field: image_url")
		}
		if str(m, "alt_text") == "" {
			v.errf(ptr+"/alt_text", "missing required field: alt_text")
		}
	case "datepicker", "timepicker", "datetimepicker", "users_select", "multi_users_select",
		"conversations_select", "multi_conversations_select", "channels_select", "multi_channels_select",
		"external_select", "multi_external_select", "number_input", "email_text_input", "url_text_input",
		"rich_text_input", "workflow_button", "file_input":
	default:
		v.errf(ptr+"/type", "invalid element type: %s", t)
	}
}

var knownBlocks = map[string]bool{"section": true, "actions": true, "context": true, "divider": true, "header": true,
	"image": true, "input": true, "rich_text": true, "file": true, "video": true, "markdown": true, "context_actions": true, "table": true}

func (v *bkValidator) block(ptr string, x any, surface string) {
	m, ok := asMap(x)
	if !ok {
		v.errf(ptr, "must be an object")
		return
	}
	t := str(m, "type")
	if !knownBlocks[t] {
		v.errf(ptr+"/type", "invalid block type: %q", t)
		return
	}
	v.id(ptr, m, "block_id", func() string { return randAlnum(5) })
	if bid := str(m, "block_id"); bid != "" {
		if v.blockIDs[bid] {
			v.errf(ptr+"/block_id", "duplicate block_id: %s", bid)
		}
		v.blockIDs[bid] = true
	}
	switch t {
	case "section":
		fields, _ := m["fields"].([]any)
		if m["text"] == nil && len(fields) == 0 {
			v.errf(ptr, "must provide either text or fields")
		}
		if m["text"] != nil {
			v.text(ptr+"/text", m["text"], "", 3000, true)
		}
		if len(fields) > 10 {
			v.errf(ptr+"/fields", "must provide no more than 10 items")
		}
		for i, f := range fields {
			v.text(fmt.Sprintf("%s/fields/%d", ptr, i), f, "", 2000, true)
		}
		if m["accessory"] != nil {
			v.element(ptr+"/accessory", m["accessory"])
		}
	case "header":
		v.text(ptr+"/text", m["text"], "plain_text", 150, true)
	case "actions":
		els, _ := m["elements"].([]any)
		if len(els) == 0 {
			v.errf(ptr+"/elements", "must provide at least 1 item")
		}
		if len(els) > 25 {
			v.errf(ptr+"/elements", "must provide no more than 25 items")
		}
		seen := map[string]bool{}
		for i, e := range els {
			p := fmt.Sprintf("%s/elements/%d", ptr, i)
			v.element(p, e)
			if em, ok := asMap(e); ok {
				if aid := str(em, "action_id"); aid != "" {
					if seen[aid] {
						v.errf(p+"/action_id", "duplicate action_id: %s", aid)
					}
					seen[aid] = true
				}
			}
		}
	case "context":
		els, _ := m["elements"].([]any)
		if len(els) == 0 {
			v.errf(ptr+"/elements", "must provide at least 1 item")
		}
		if len(els) > 10 {
			v.errf(ptr+"/elements", "must provide no more than 10 items")
		}
		for i, e := range els {
			p := fmt.Sprintf("%s/elements/%d", ptr, i)
			em, _ := asMap(e)
			switch str(em, "type") {
			case "plain_text", "mrkdwn":
				v.text(p, e, "", 0, true)
			case "image":
			default:
				v.errf(p+"/type", "must be one of [plain_text, mrkdwn, image]")
			}
		}
	case "input":
		v.text(ptr+"/label", m["label"], "plain_text", 2000, true)
		if m["hint"] != nil {
			v.text(ptr+"/hint", m["hint"], "plain_text", 2000, false)
		}
		if m["element"] == nil {
			v.errf(ptr+"/element", "missing required field: element")
		} else {
			v.element(ptr+"/element", m["element"])
		}
	case "image":
		if str(m, "image_url") == "" && m["slack_file"] == nil {
			v.errf(ptr+"/image_url", "missing required field: image_url")
		}
		if str(m, "alt_text") == "" {
			v.errf(ptr+"/alt_text", "missing required field: alt_text")
		}
		if m["title"] != nil {
			v.text(ptr+"/title", m["title"], "plain_text", 2000, false)
		}
	}
}

// validateBlocks validates and auto-fills (block_id, action_id) a blocks array.
func validateBlocks(blocks []any, surface string, ptr string) []string {
	v := &bkValidator{blockIDs: map[string]bool{}}
	limit := 50
	if surface != "message" {
		limit = 100
	}
	if len(blocks) > limit {
		v.errf(ptr, "must provide no more than %d items", limit)
	}
	for i, b := range blocks {
		v.block(fmt.Sprintf("%s/%d", ptr, i), b, surface)
	}
	return v.errs
}

// parseBlocksParam decodes, validates and normalises a message "blocks"
// parameter. "" and "null" mean no blocks; "[]" means an empty list.
func parseBlocksParam(raw, surface string) (json.RawMessage, *apiErr) {
	raw = strings.TrimSpace(raw)
	if raw == "" || raw == "null" {
		return nil, nil
	}
	var blocks []any
	if err := json.Unmarshal([]byte(raw), &blocks); err != nil {
		return nil, errCode("invalid_blocks_format")
	}
	if errs := validateBlocks(blocks, surface, "/blocks"); len(errs) > 0 {
		return nil, &apiErr{code: "invalid_blocks", extra: map[string]any{"response_metadata": map[string]any{"messages": errs}}}
	}
	return mustJSON(blocks), nil
}

// validateView validates a view object (protocol §4.3: title/submit/close ≤ 24,
// private_metadata ≤ 3000, callback_id ≤ 255, ≤ 100 blocks, submit required
// with input blocks). kind is "modal" or "home". Returns the normalised view.
func validateView(view map[string]any, kind string) (map[string]any, []string) {
	v := &bkValidator{blockIDs: map[string]bool{}}
	t := str(view, "type")
	if t != kind {
		v.errf("/view/type", "must be %s", kind)
		return view, v.errs
	}
	if kind == "modal" {
		v.text("/view/title", view["title"], "plain_text", 24, true)
		if view["submit"] != nil {
			v.text("/view/submit", view["submit"], "plain_text", 24, false)
		}
		if view["close"] != nil {
			v.text("/view/close", view["close"], "plain_text", 24, false)
		}
	}
	if strLen(str(view, "private_metadata")) > 3000 {
		v.errf("/view/private_metadata", "must be less than 3001 characters")
	}
	if strLen(str(view, "callback_id")) > 255 {
		v.errf("/view/callback_id", "must be less than 256 characters")
	}
	if strLen(str(view, "external_id")) > 255 {
		v.errf("/view/external_id", "must be less than 256 characters")
	}
	blocks, _ := view["blocks"].([]any)
	if view["blocks"] != nil {
		if _, ok := view["blocks"].([]any); !ok {
			v.errf("/view/blocks", "must be an array")
		}
	}
	errs := validateBlocks(blocks, kind, "/view/blocks")
	v.errs = append(v.errs, errs...)
	if kind == "modal" && view["submit"] == nil {
		for _, b := range blocks {
			if m, ok := asMap(b); ok && str(m, "type") == "input" {
				v.errf("/view", "submit is required when an input block is present")
				break
			}
		}
	}
	if blocks == nil {
		blocks = []any{}
	}
	view["blocks"] = blocks
	return view, v.errs
}

func buttonsIn(raw json.RawMessage) []Button {
	var blocks []map[string]any
	if json.Unmarshal(raw, &blocks) != nil {
		return nil
	}
	var out []Button
	add := func(bid string, e any) {
		m, ok := asMap(e)
		if !ok || str(m, "type") != "button" {
			return
		}
		txt, _ := asMap(m["text"])
		out = append(out, Button{ActionID: str(m, "action_id"), BlockID: bid, Text: str(txt, "text"), Value: str(m, "value"), Style: str(m, "style")})
	}
	for _, b := range blocks {
		bid := str(b, "block_id")
		if els, ok := b["elements"].([]any); ok {
			for _, e := range els {
				add(bid, e)
			}
		}
		if b["accessory"] != nil {
			add(bid, b["accessory"])
		}
	}
	return out
}

// findButton locates a button by action_id (preferred) or text, optionally
// restricted to a value. Returns the raw element and its block_id.
func findButton(raw json.RawMessage, actionIDOrText, value string) (map[string]any, string, bool) {
	var blocks []map[string]any
	if json.Unmarshal(raw, &blocks) != nil {
		return nil, "", false
	}
	var byText map[string]any
	var byTextBlock string
	for _, b := range blocks {
		var els []any
		if e, ok := b["elements"].([]any); ok {
			els = append(els, e...)
		}
		if b["accessory"] != nil {
			els = append(els, b["accessory"])
		}
		for _, e := range els {
			m, ok := asMap(e)
			if !ok || str(m, "type") != "button" {
				continue
			}
			if value != "" && str(m, "value") != value {
				continue
			}
			if str(m, "action_id") == actionIDOrText {
				return m, str(b, "block_id"), true
			}
			txt, _ := asMap(m["text"])
			if byText == nil && str(txt, "text") == actionIDOrText {
				byText, byTextBlock = m, str(b, "block_id")
			}
		}
	}
	return byText, byTextBlock, byText != nil
}
