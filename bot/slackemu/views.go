package slackemu

import (
	"encoding/json"
	"fmt"
	"time"
)

// Views follow protocol §3 (views.* rows), §4.3 and §4.4 and
// https://docs.slack.dev/surfaces/modals: a trigger_id is valid for 3 s on the
// clock and single use; a modal stack holds at most 3 views; hash gives
// optimistic concurrency (hash_conflict).

const triggerTTL = 3 * time.Second

func (s *Server) newHash() string {
	return fmt.Sprintf("%d.%s", s.clock.Now().Unix(), randAlnum(8))
}

// useTriggerLocked validates and consumes a trigger_id.
func (s *Server) checkTriggerLocked(id string) (*trigger, *apiErr) {
	if id == "" {
		return nil, errCode("invalid_arguments")
	}
	t, ok := s.triggers[id]
	if !ok {
		return nil, errCode("invalid_trigger_id")
	}
	if t.used {
		return nil, errCode("exchanged_trigger_id")
	}
	if s.clock.Now().Sub(t.issued) > triggerTTL {
		return nil, errCode("expired_trigger_id")
	}
	return t, nil
}

func invalidArgs(errs []string) *apiErr {
	return &apiErr{code: "invalid_arguments", extra: map[string]any{"response_metadata": map[string]any{"messages": errs}}}
}

// parseViewParam decodes and validates the "view" parameter.
func parseViewParam(raw, kind string) (map[string]any, *apiErr) {
	var v map[string]any
	if err := json.Unmarshal([]byte(raw), &v); err != nil || v == nil {
		return nil, invalidArgs([]string{"[ERROR] missing required field: view [json-pointer:/view]"})
	}
	v, errs := validateView(v, kind)
	if len(errs) > 0 {
		return nil, invalidArgs(errs)
	}
	if len(mustJSON(v)) > 250000 {
		return nil, errCode("view_too_large")
	}
	return v, nil
}

func textOf(x any) string {
	m, _ := asMap(x)
	return str(m, "text")
}

// storeViewLocked creates or replaces a view's content.
func (s *Server) storeViewLocked(vs *viewState, v map[string]any) {
	vs.Type = str(v, "type")
	vs.CallbackID = str(v, "callback_id")
	vs.PrivateMetadata = str(v, "private_metadata")
	vs.ExternalID = str(v, "external_id")
	vs.Title = textOf(v["title"])
	vs.NotifyOnClose, _ = v["notify_on_close"].(bool)
	vs.Blocks = mustJSON(v["blocks"])
	vs.Hash = s.newHash()
	vs.Errors = nil
	// Like Slack, entered values survive an update when the block_id and
	// action_id are unchanged (https://docs.slack.dev/surfaces/modals).
	old := vs.values
	vs.values = map[string]map[string]any{}
	for bid, acts := range old {
		for aid, st := range acts {
			if _, _, ok := findElement(vs.Blocks, bid, aid); ok {
				if vs.values[bid] == nil {
					vs.values[bid] = map[string]any{}
				}
				vs.values[bid][aid] = st
			}
		}
	}
	vs.Raw = mustJSON(s.viewJSON(vs, v))
}

func (s *Server) viewJSON(vs *viewState, v map[string]any) map[string]any {
	out := map[string]any{}
	for k, x := range v {
		out[k] = x
	}
	for _, k := range []string{"callback_id", "private_metadata", "external_id"} {
		if _, ok := out[k]; !ok {
			out[k] = ""
		}
	}
	for _, k := range []string{"clear_on_close", "notify_on_close"} {
		if _, ok := out[k]; !ok {
			out[k] = false
		}
	}
	out["id"] = vs.ID
	out["team_id"] = s.teamID
	out["state"] = map[string]any{"values": map[string]any{}}
	out["hash"] = vs.Hash
	out["root_view_id"] = vs.RootViewID
	if vs.PreviousID != "" {
		out["previous_view_id"] = vs.PreviousID
	} else {
		out["previous_view_id"] = nil
	}
	out["app_id"] = s.appID
	out["app_installed_team_id"] = s.teamID
	out["bot_id"] = s.botID
	return out
}

// currentViewJSON returns the view object including the current state values.
func (s *Server) currentViewJSON(vs *viewState) map[string]any {
	var v map[string]any
	_ = json.Unmarshal(vs.Raw, &v)
	vals := map[string]any{}
	for b, acts := range vs.values {
		m := map[string]any{}
		for a, st := range acts {
			m[a] = st
		}
		vals[b] = m
	}
	v["state"] = map[string]any{"values": vals}
	return v
}

func (s *Server) viewsOpen(r *apiReq) (map[string]any, *apiErr) {
	t, e := s.checkTriggerLocked(r.params["trigger_id"])
	if e != nil {
		return nil, e
	}
	v, e := parseViewParam(r.params["view"], "modal")
	if e != nil {
		return nil, e
	}
	t.used = true
	vs := &viewState{open: true}
	vs.ID = s.newID("V")
	vs.RootViewID = vs.ID
	vs.UserID = t.user
	s.storeViewLocked(vs, v)
	s.views[vs.ID] = vs
	for _, old := range s.stacks[t.user] {
		s.views[old].open = false
	}
	s.stacks[t.user] = []string{vs.ID}
	return map[string]any{"view": json.RawMessage(vs.Raw)}, nil
}

func (s *Server) viewsPush(r *apiReq) (map[string]any, *apiErr) {
	t, e := s.checkTriggerLocked(r.params["trigger_id"])
	if e != nil {
		return nil, e
	}
	v, e := parseViewParam(r.params["view"], "modal")
	if e != nil {
		return nil, e
	}
	stack := s.stacks[t.user]
	if len(stack) == 0 {
		return nil, errCode("not_found")
	}
	if len(stack) >= 3 {
		return nil, errCode("push_limit_reached")
	}
	t.used = true
	vs := s.pushViewLocked(t.user, v)
	return map[string]any{"view": json.RawMessage(vs.Raw)}, nil
}

func (s *Server) pushViewLocked(user string, v map[string]any) *viewState {
	stack := s.stacks[user]
	top := s.views[stack[len(stack)-1]]
	vs := &viewState{open: true}
	vs.ID = s.newID("V")
	vs.RootViewID = top.RootViewID
	vs.PreviousID = top.ID
	vs.UserID = user
	s.storeViewLocked(vs, v)
	s.views[vs.ID] = vs
	s.stacks[user] = append(stack, vs.ID)
	return vs
}

func (s *Server) viewsUpdate(r *apiReq) (map[string]any, *apiErr) {
	var vs *viewState
	if id := r.params["view_id"]; id != "" {
		vs = s.views[id]
	} else if ext := r.params["external_id"]; ext != "" {
		for _, k := range sortedKeys(s.views) {
			if s.views[k].ExternalID == ext && (s.views[k].open || s.views[k].home) {
				vs = s.views[k]
			}
		}
	} else {
		return nil, errCode("invalid_arguments")
	}
	if vs == nil || (!vs.open && !vs.home) {
		return nil, errCode("not_found")
	}
	if h := r.params["hash"]; h != "" && h != vs.Hash {
		return nil, errCode("hash_conflict")
	}
	kind := "modal"
	if vs.home {
		kind = "home"
	}
	v, e := parseViewParam(r.params["view"], kind)
	if e != nil {
		return nil, e
	}
	s.storeViewLocked(vs, v)
	return map[string]any{"view": json.RawMessage(vs.Raw)}, nil
}

func (s *Server) viewsPublish(r *apiReq) (map[string]any, *apiErr) {
	uid := r.params["user_id"]
	u, ok := s.users[uid]
	if !ok || u.IsBot {
		return nil, errCode("user_not_found")
	}
	v, e := parseViewParam(r.params["view"], "home")
	if e != nil {
		return nil, e
	}
	var vs *viewState
	if id, ok := s.homes[uid]; ok {
		vs = s.views[id]
		if h := r.params["hash"]; h != "" && h != vs.Hash {
			return nil, errCode("hash_conflict")
		}
	} else {
		vs = &viewState{home: true}
		vs.ID = s.newID("V")
		vs.RootViewID = vs.ID
		vs.UserID = uid
		s.views[vs.ID] = vs
		s.homes[uid] = vs.ID
	}
	s.storeViewLocked(vs, v)
	return map[string]any{"view": json.RawMessage(vs.Raw)}, nil
}

// closeTopLocked pops the user's top modal.
func (s *Server) closeTopLocked(user string) {
	stack := s.stacks[user]
	if len(stack) == 0 {
		return
	}
	s.views[stack[len(stack)-1]].open = false
	stack = stack[:len(stack)-1]
	if len(stack) == 0 {
		delete(s.stacks, user)
	} else {
		s.stacks[user] = stack
	}
}

func (s *Server) clearStackLocked(user string) {
	for _, id := range s.stacks[user] {
		s.views[id].open = false
	}
	delete(s.stacks, user)
}
