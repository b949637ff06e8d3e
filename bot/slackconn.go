package bot

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"sync"

	"github.com/slack-go/slack"

	"github.com/accessbot/accessbot/access"
)

// ChannelConnector grants membership of a Slack channel (usually private)
// with conversations.invite and removes it with conversations.kick
// (scopes groups:write / channels:manage; the bot must be a member of the
// channel). Grant parameter: `channel` (a C… or G… ID). Facts followed:
// slack-protocol.md §3 (docs.slack.dev/reference/methods/conversations.invite,
// …/conversations.kick): already_in_channel on invite and not_in_channel on
// kick mean "already done".
type ChannelConnector struct{ b *Bot }

// UsergroupConnector grants membership of a Slack user group with
// usergroups.users.update, which replaces the whole member list
// (slack-protocol.md §3, §7 pitfall 13): every change is a read-modify-
// write serialised per group, so concurrent grants and revokes never drop
// each other. Grant parameter: `usergroup` (an S… ID). Scopes:
// usergroups:read, usergroups:write.
type UsergroupConnector struct{ b *Bot }

var (
	_ access.Connector     = (*ChannelConnector)(nil)
	_ access.ParamsChecker = (*ChannelConnector)(nil)
	_ access.Connector     = (*UsergroupConnector)(nil)
	_ access.Checker       = (*UsergroupConnector)(nil)
	_ access.ParamsChecker = (*UsergroupConnector)(nil)
)

// ChannelConnector returns the slack_channel connector using the bot's client.
func (b *Bot) ChannelConnector() *ChannelConnector { return &ChannelConnector{b: b} }

// UsergroupConnector returns the slack_usergroup connector using the bot's client.
func (b *Bot) UsergroupConnector() *UsergroupConnector { return &UsergroupConnector{b: b} }

// Grant parameters of the Slack connectors and the IDs they take.
const (
	paramChannel   = "channel"
	paramUsergroup = "usergroup"
)

var (
	channelIDRE   = regexp.MustCompile(`^[CG][A-Z0-9]{2,}$`)
	usergroupIDRE = regexp.MustCompile(`^S[A-Z0-9]{2,}$`)
)

// CheckParams checks a role's grant parameters without calling Slack:
// exactly channel, required, a channel ID (C… or G…, not a #name).
// Unknown keys are errors, with a did-you-mean.
func (c *ChannelConnector) CheckParams(params map[string]string) error {
	_, err := slackID(params, paramChannel, channelIDRE, "a channel ID (C… or G…; a channel's details show it), not a #name")
	return errors.Join(append(access.UnknownParams(params, paramChannel), err)...)
}

// CheckParams checks a role's grant parameters without calling Slack:
// exactly usergroup, required, a user group ID (S…, not an @handle).
// Unknown keys are errors, with a did-you-mean.
func (c *UsergroupConnector) CheckParams(params map[string]string) error {
	_, err := slackID(params, paramUsergroup, usergroupIDRE, "a user group ID (S…), not an @handle")
	return errors.Join(append(access.UnknownParams(params, paramUsergroup), err)...)
}

// slackID returns the grant parameter key, checked against re; param (so
// Grant, Revoke and Check) and CheckParams both use it. Errors start with
// the key.
func slackID(params map[string]string, key string, re *regexp.Regexp, want string) (string, error) {
	v := params[key]
	switch {
	case v == "":
		return "", fmt.Errorf("%s: required", key)
	case !re.MatchString(v):
		return "", fmt.Errorf("%s: %q is not %s", key, v, want)
	}
	return v, nil
}

// param reads the Slack connectors' one grant parameter.
func param(g access.Grant, key string) (string, error) {
	re, want := channelIDRE, "a channel ID (C… or G…)"
	if key == paramUsergroup {
		re, want = usergroupIDRE, "a user group ID (S…)"
	}
	v, err := slackID(g.Params, key, re, want)
	if err != nil {
		return "", access.PermanentError(fmt.Errorf("role %s.%s: grant parameter %w", g.System, g.Role, err))
	}
	return v, nil
}

// classifySlack maps a Slack Web API failure to the lifecycle's error
// classes: rate limits and server trouble are retryable, the rest (bad
// IDs, missing scopes, workspace policy) permanent.
func classifySlack(err error, what string) error {
	var rl *slack.RateLimitedError
	if errors.As(err, &rl) {
		return access.RetryableError(fmt.Errorf("%s: Slack rate limit", what), rl.RetryAfter)
	}
	var sc slack.StatusCodeError
	if errors.As(err, &sc) {
		if sc.Retryable() {
			return access.RetryableError(fmt.Errorf("%s: Slack answered HTTP %d", what, sc.Code), 0)
		}
		return access.PermanentError(fmt.Errorf("%s: Slack answered HTTP %d", what, sc.Code))
	}
	var se slack.SlackErrorResponse
	if errors.As(err, &se) {
		switch se.Err {
		case "ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout":
			return access.RetryableError(fmt.Errorf("%s: %s", what, se.Err), 0)
		}
		return access.PermanentError(fmt.Errorf("%s: Slack said %s", what, se.Err))
	}
	return access.RetryableError(fmt.Errorf("%s: %w", what, err), 0)
}

// Grant implements access.Connector. It returns an empty receipt: this
// connector does not yet record what it changed.
func (c *ChannelConnector) Grant(ctx context.Context, g access.Grant) (access.Receipt, error) {
	return access.Receipt{}, c.applyGrant(ctx, g)
}

// Grant invites the person to the channel; already a member is done.
func (c *ChannelConnector) applyGrant(ctx context.Context, g access.Grant) error {
	ch, err := param(g, paramChannel)
	if err != nil {
		return err
	}
	_, err = c.b.api.InviteUsersToConversationContext(ctx, ch, g.User.SlackID)
	if err == nil || isSlackError(err, "already_in_channel") {
		return nil
	}
	if isSlackError(err, "not_in_channel") {
		return access.PermanentError(fmt.Errorf("invite %s to %s: accessbot is not a member of the channel; invite the bot first", g.User.SlackID, ch))
	}
	return classifySlack(err, fmt.Sprintf("invite %s to %s", g.User.SlackID, ch))
}

// Revoke removes the person from the channel; not a member is done.
func (c *ChannelConnector) Revoke(ctx context.Context, g access.Grant) error {
	ch, err := param(g, paramChannel)
	if err != nil {
		return err
	}
	err = c.b.api.KickUserFromConversationContext(ctx, ch, g.User.SlackID)
	if err == nil || isSlackError(err, "not_in_channel") || isSlackError(err, "user_not_in_channel") {
		if err != nil && isSlackError(err, "not_in_channel") {
			// not_in_channel is also what Slack says when the bot itself is
			// not a member; tell the two apart.
			members, _, merr := c.b.api.GetUsersInConversationContext(ctx, &slack.GetUsersInConversationParameters{ChannelID: ch, Limit: 1000})
			if merr == nil && contains(members, g.User.SlackID) {
				return access.PermanentError(fmt.Errorf("remove %s from %s: accessbot is not a member of the channel", g.User.SlackID, ch))
			}
		}
		return nil
	}
	return classifySlack(err, fmt.Sprintf("remove %s from %s", g.User.SlackID, ch))
}

// lock serialises changes to one group across every connector instance of
// this bot (two instances may name the same group).
func (c *UsergroupConnector) lock(group string) func() {
	c.b.groupMu.Lock()
	m := c.b.groupLocks[group]
	if m == nil {
		m = &sync.Mutex{}
		c.b.groupLocks[group] = m
	}
	c.b.groupMu.Unlock()
	m.Lock()
	return m.Unlock
}

// Grant implements access.Connector. It returns an empty receipt: this
// connector does not yet record what it changed.
func (c *UsergroupConnector) Grant(ctx context.Context, g access.Grant) (access.Receipt, error) {
	return access.Receipt{}, c.applyGrant(ctx, g)
}

// applyGrant adds the person to the user group; already a member is done.
func (c *UsergroupConnector) applyGrant(ctx context.Context, g access.Grant) error {
	return c.change(ctx, g, true)
}

// Revoke removes the person from the user group; absent is done. Slack
// does not allow an empty user group, so removing the last member
// disables the group (usergroups.disable); granting into a disabled group
// sets its members and enables it again.
func (c *UsergroupConnector) Revoke(ctx context.Context, g access.Grant) error {
	return c.change(ctx, g, false)
}

// Check reports whether the person is in the group.
func (c *UsergroupConnector) Check(ctx context.Context, g access.Grant) (bool, error) {
	group, err := param(g, paramUsergroup)
	if err != nil {
		return false, err
	}
	members, _, err := c.members(ctx, group)
	if err != nil {
		return false, err
	}
	return contains(members, g.User.SlackID), nil
}

func (c *UsergroupConnector) change(ctx context.Context, g access.Grant, add bool) error {
	group, err := param(g, paramUsergroup)
	if err != nil {
		return err
	}
	unlock := c.lock(group)
	defer unlock()
	members, disabled, err := c.members(ctx, group)
	if err != nil {
		return err
	}
	user := g.User.SlackID
	has := contains(members, user)
	switch {
	case add && has, !add && !has:
		return nil
	case add:
		members = append(members, user)
	default:
		kept := members[:0]
		for _, m := range members {
			if m != user {
				kept = append(kept, m)
			}
		}
		members = kept
	}
	if len(members) == 0 {
		// Slack does not allow an empty user group: disabling it is how
		// its last member loses it.
		if _, err := c.b.api.DisableUserGroupContext(ctx, group); err != nil && !isSlackError(err, "already_disabled") {
			return classifySlack(err, "disable "+group+" (its last member is being removed)")
		}
		return nil
	}
	if _, err := c.b.api.UpdateUserGroupMembersContext(ctx, group, joinIDs(members)); err != nil {
		return classifySlack(err, "update members of "+group)
	}
	if disabled {
		if _, err := c.b.api.EnableUserGroupContext(ctx, group); err != nil && !isSlackError(err, "already_enabled") {
			return classifySlack(err, "enable "+group)
		}
	}
	return nil
}

// members reads a group's members with usergroups.list (include_disabled,
// include_users). A disabled group counts as empty: accessbot disables a
// group when its last member is removed, and Slack keeps the old member
// list of a disabled group.
func (c *UsergroupConnector) members(ctx context.Context, group string) ([]string, bool, error) {
	groups, err := c.b.api.GetUserGroupsContext(ctx, slack.GetUserGroupsOptionIncludeDisabled(true), slack.GetUserGroupsOptionIncludeUsers(true))
	if err != nil {
		return nil, false, classifySlack(err, "list user groups")
	}
	for _, ug := range groups {
		if ug.ID == group {
			if ug.DateDelete != 0 {
				return nil, true, nil
			}
			return append([]string(nil), ug.Users...), false, nil
		}
	}
	return nil, false, access.PermanentError(fmt.Errorf("Slack has no user group %s", group))
}

func joinIDs(ids []string) string {
	out := ""
	for i, id := range ids {
		if i > 0 {
			out += ","
		}
		out += id
	}
	return out
}
