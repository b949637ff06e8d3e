package slack

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/connectors"
)

// ParamUsergroup is the slack_usergroup grant parameter: a user group ID
// (S…, not an @handle).
const ParamUsergroup = "usergroup"

var usergroupParams = connectors.Params{{
	Key: ParamUsergroup, What: "a user group ID, S…",
	Check: connectors.Match(regexp.MustCompile(`^S[A-Z0-9]{2,}$`), "a user group ID (S…), not an @handle"),
}}

// Usergroup is the slack_usergroup connector: it adds the person to a user
// group with usergroups.users.update, which replaces the whole member
// list (slack-protocol.md §3, §7 pitfall 13), so every change is a
// read-modify-write serialised per group across every instance built by
// the same Workspace. Slack does not allow an empty user group: removing
// the last member disables the group (usergroups.disable), and granting
// into a disabled group sets its members to the person and enables it
// again (two calls: members first, so that the group's old members never
// come back). Scopes: usergroups:read, usergroups:write, users:read.
//
// Receipts: UserID is the person's Slack user ID; Data names the group and
// whether the grant re-enabled it. A member of the (enabled) group before
// the grant is reported as PreExisting, unless an earlier attempt of the
// same grant added them (connectors.Intents). It is safe for concurrent
// use.
type Usergroup struct {
	c       *client
	w       *Workspace
	intents *connectors.Intents
}

var (
	_ access.Connector     = (*Usergroup)(nil)
	_ access.Checker       = (*Usergroup)(nil)
	_ access.ParamsChecker = (*Usergroup)(nil)
	_ connectors.Factory   = (*Workspace)(nil).UsergroupFactory
)

// UsergroupFactory builds a slack_usergroup connector. It needs durable
// State (Env.State) for the records of the grants it started.
func (w *Workspace) UsergroupFactory(name string, cfg connectors.Config) (access.Connector, error) {
	c, err := w.newClient(UsergroupType, name, cfg)
	if err != nil {
		return nil, err
	}
	return &Usergroup{c: c, w: w, intents: connectors.NewIntents(cfg.State)}, nil
}

// CheckParams checks a role's grant parameters without calling Slack:
// exactly usergroup, required, a user group ID (S…, not an @handle).
// Unknown keys are errors, with a did-you-mean.
func (ug *Usergroup) CheckParams(params map[string]string) error {
	return usergroupParams.CheckParams(params)
}

// usergroupData is the connector-specific part of a receipt.
type usergroupData struct {
	Usergroup string `json:"usergroup"`
	// Reenabled: the group was disabled and this grant enabled it.
	Reenabled bool `json:"reenabled,omitempty"`
	// EnableFailed: the members were set but enabling the group failed.
	EnableFailed bool `json:"enable_failed,omitempty"`
}

// group is a user group's state as usergroups.list tells it.
type group struct {
	members  []string
	disabled bool
}

// Grant adds the person to the user group and returns the receipt.
func (ug *Usergroup) Grant(ctx context.Context, g access.Grant) (access.Receipt, error) {
	op := ug.c.op("grant", g)
	id, err := usergroupParams.Get(op, g.Params, ParamUsergroup)
	if err != nil {
		return access.Receipt{}, err
	}
	return connectors.GrantMembership(ctx, ug.intents, g, connectors.Member{
		Find: func(ctx context.Context) (connectors.Intent, bool, error) {
			if g.User.SlackID == "" {
				return connectors.Intent{}, false, access.PermanentError(fmt.Errorf("%s: the grant names no Slack user", op))
			}
			gr, err := ug.read(ctx, op, id)
			if err != nil {
				return connectors.Intent{}, false, err
			}
			return connectors.Intent{UserID: g.User.SlackID}, !gr.disabled && slices.Contains(gr.members, g.User.SlackID), nil
		},
		Add: func(ctx context.Context, in connectors.Intent) (access.Receipt, error) {
			return ug.add(ctx, op, id, in.UserID)
		},
	}, "")
}

func (ug *Usergroup) add(ctx context.Context, op, id, user string) (access.Receipt, error) {
	unlock, err := ug.lock(ctx, op, id)
	if err != nil {
		return access.Receipt{}, err
	}
	defer unlock()
	gr, err := ug.read(ctx, op, id)
	if err != nil {
		return access.Receipt{}, err
	}
	d := usergroupData{Usergroup: id}
	receipt := func(note string) access.Receipt {
		b, _ := json.Marshal(d)
		return access.Receipt{Data: b, Note: note}
	}
	if !gr.disabled && slices.Contains(gr.members, user) {
		return receipt("added to user group " + id), nil // by an earlier attempt
	}
	members := append(slices.Clone(gr.members), user)
	if gr.disabled {
		// Slack keeps a disabled group's old members: they must not come
		// back with the person.
		members = []string{user}
	}
	if err := ug.update(ctx, op, id, members); err != nil {
		if isCode(err, "invalid_users") {
			if ok, uerr := ug.c.userExists(ctx, op, user); uerr == nil && !ok {
				return access.Receipt{}, unknownUser(op, user, err)
			}
		}
		return access.Receipt{}, err
	}
	if !gr.disabled {
		return receipt("added to user group " + id), nil
	}
	err = ug.c.call(ctx, op, "usergroups.enable", url.Values{"usergroup": {id}}, nil, false)
	if err != nil && !isCode(err, "already_enabled") {
		// The members are set on a disabled group, which gives nobody
		// anything; the receipt says so, for the rollback.
		d.EnableFailed = true
		return receipt("members of disabled user group " + id + " set, but enabling it failed"), err
	}
	d.Reenabled = true
	return receipt("user group " + id + " enabled with the person as its only member"), nil
}

// Revoke removes the receipt's user (or, for a record without a receipt,
// the person's Slack ID) from the user group; not a member, or a disabled
// group (which gives nobody anything), is done. Removing the last member
// disables the group. Without a receipt, a Slack ID Slack does not know
// (and that is not in the group) is a permanent error wrapping
// ErrUnknownUser.
func (ug *Usergroup) Revoke(ctx context.Context, g access.Grant) error {
	op := ug.c.op("revoke", g)
	id, err := usergroupParams.Get(op, g.Params, ParamUsergroup)
	if err != nil {
		return err
	}
	user, err := userOf(op, g)
	if err != nil {
		return err
	}
	unlock, err := ug.lock(ctx, op, id)
	if err != nil {
		return err
	}
	defer unlock()
	gr, err := ug.read(ctx, op, id)
	if err != nil {
		return err
	}
	if gr.disabled || !slices.Contains(gr.members, user) {
		if g.Receipt == nil {
			if ok, err := ug.c.userExists(ctx, op, user); err != nil {
				return err
			} else if !ok {
				return unknownUser(op, user, fmt.Errorf("users.info: user_not_found"))
			}
		}
		ug.intents.Forget(ctx, g.ID)
		return nil
	}
	kept := slices.DeleteFunc(slices.Clone(gr.members), func(m string) bool { return m == user })
	if len(kept) == 0 {
		// Slack does not allow an empty user group: disabling it is how
		// its last member loses it.
		err := ug.c.call(ctx, op, "usergroups.disable", url.Values{"usergroup": {id}}, nil, false)
		if err != nil && !isCode(err, "already_disabled") {
			return err
		}
	} else if err := ug.update(ctx, op, id, kept); err != nil {
		return err
	}
	ug.intents.Forget(ctx, g.ID)
	return nil
}

// Check reports whether the person is in the (enabled) group.
func (ug *Usergroup) Check(ctx context.Context, g access.Grant) (bool, error) {
	op := ug.c.op("check", g)
	id, err := usergroupParams.Get(op, g.Params, ParamUsergroup)
	if err != nil {
		return false, err
	}
	user, err := userOf(op, g)
	if err != nil {
		return false, err
	}
	gr, err := ug.read(ctx, op, id)
	if err != nil {
		return false, err
	}
	return !gr.disabled && slices.Contains(gr.members, user), nil
}

// lock takes the group's lock, shared by every instance of the
// Workspace (two instances may name the same group).
func (ug *Usergroup) lock(ctx context.Context, op, id string) (func(), error) {
	unlock, err := ug.w.locks.Lock(ctx, ug.c.apiURL+"|"+id)
	if err != nil {
		return nil, access.RetryableError(fmt.Errorf("%s: %w", op, err), 0)
	}
	return unlock, nil
}

// read returns the group's members and whether it is disabled, with
// usergroups.list (include_disabled, include_users). An unknown group is
// a permanent error.
func (ug *Usergroup) read(ctx context.Context, op, id string) (group, error) {
	var out struct {
		Usergroups []struct {
			ID         string   `json:"id"`
			Users      []string `json:"users"`
			DateDelete int64    `json:"date_delete"`
		} `json:"usergroups"`
	}
	form := url.Values{"include_disabled": {"true"}, "include_users": {"true"}}
	if err := ug.c.call(ctx, op, "usergroups.list", form, &out, true); err != nil {
		return group{}, err
	}
	for _, g := range out.Usergroups {
		if g.ID == id {
			return group{members: g.Users, disabled: g.DateDelete != 0}, nil
		}
	}
	return group{}, access.PermanentError(fmt.Errorf("%s: Slack has no user group %s", op, id))
}

// update replaces the group's members.
func (ug *Usergroup) update(ctx context.Context, op, id string, members []string) error {
	return ug.c.call(ctx, op, "usergroups.users.update", url.Values{"usergroup": {id}, "users": {strings.Join(members, ",")}}, nil, false)
}
