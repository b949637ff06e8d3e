package slack

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"regexp"
	"slices"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/connectors"
)

// ParamChannel is the slack_channel grant parameter: a channel ID (C… or
// G…, not a #name).
const ParamChannel = "channel"

var channelParams = connectors.Params{{
	Key: ParamChannel, What: "a channel ID, C… or G…",
	Check: connectors.Match(regexp.MustCompile(`^[CG][A-Z0-9]{2,}$`), "a channel ID (C… or G…; a channel's details show it), not a #name"),
}}

// Channel is the slack_channel connector: it invites the person to a
// channel with conversations.invite and removes them with
// conversations.kick. Scopes: groups:write (private) / channels:manage
// (public), groups:read / channels:read; the bot must be a member of the
// channel.
//
// Receipts: UserID is the person's Slack user ID; a person who was in the
// channel already (already_in_channel) is reported as PreExisting, unless
// an earlier attempt of the same grant invited them (connectors.Intents).
// It is safe for concurrent use.
type Channel struct {
	c       *client
	intents *connectors.Intents
}

var (
	_ access.Connector     = (*Channel)(nil)
	_ access.Checker       = (*Channel)(nil)
	_ access.ParamsChecker = (*Channel)(nil)
	_ connectors.Factory   = (*Workspace)(nil).ChannelFactory
)

// ChannelFactory builds a slack_channel connector. It needs durable State
// (Env.State) for the records of the grants it started.
func (w *Workspace) ChannelFactory(name string, cfg connectors.Config) (access.Connector, error) {
	c, err := w.newClient(ChannelType, name, cfg)
	if err != nil {
		return nil, err
	}
	return &Channel{c: c, intents: connectors.NewIntents(cfg.State)}, nil
}

// CheckParams checks a role's grant parameters without calling Slack:
// exactly channel, required, a channel ID (C… or G…, not a #name).
// Unknown keys are errors, with a did-you-mean.
func (ch *Channel) CheckParams(params map[string]string) error {
	return channelParams.CheckParams(params)
}

// channelData is the connector-specific part of a receipt.
type channelData struct {
	Channel string `json:"channel"`
}

// Grant invites the person to the channel and returns the receipt.
func (ch *Channel) Grant(ctx context.Context, g access.Grant) (access.Receipt, error) {
	op := ch.c.op("grant", g)
	channel, err := channelParams.Get(op, g.Params, ParamChannel)
	if err != nil {
		return access.Receipt{}, err
	}
	in, repeat, err := ch.intents.Get(ctx, g.ID)
	if err != nil {
		return access.Receipt{}, err
	}
	user := in.UserID
	if !repeat {
		if user = g.User.SlackID; user == "" {
			return access.Receipt{}, access.PermanentError(fmt.Errorf("%s: the grant names no Slack user", op))
		}
		if err := ch.intents.Record(ctx, g.ID, connectors.Intent{UserID: user}); err != nil {
			return access.Receipt{}, err
		}
	}
	data, _ := json.Marshal(channelData{Channel: channel})
	rc := access.Receipt{UserID: user, Data: data}
	err = ch.c.call(ctx, op, "conversations.invite", url.Values{"channel": {channel}, "users": {user}}, nil, false)
	switch {
	case err == nil:
		rc.Note = "invited to channel " + channel
		return rc, nil
	case isCode(err, "already_in_channel") && repeat:
		rc.Note = "invited to channel " + channel // by an earlier attempt of this grant
		return rc, nil
	case isCode(err, "already_in_channel"):
		ch.intents.Forget(ctx, g.ID)
		rc.PreExisting, rc.Note = true, "already a member of channel "+channel+" before this grant; left in place at revoke"
		return rc, nil
	}
	class, _ := access.Classify(err)
	if class == access.Permanent && !repeat {
		ch.intents.Forget(ctx, g.ID)
		if isCode(err, "user_not_found") {
			return access.Receipt{}, unknownUser(op, user, err)
		}
		return access.Receipt{}, err
	}
	rc.Note = "the invitation may have been made (no clear answer); a rollback removes it"
	return rc, err
}

// Revoke removes the receipt's user (or, for a record without a receipt,
// the person's Slack ID) from the channel; not a member is done. A user
// Slack no longer knows has no access left when the receipt names them;
// without a receipt it is a permanent error wrapping ErrUnknownUser.
func (ch *Channel) Revoke(ctx context.Context, g access.Grant) error {
	op := ch.c.op("revoke", g)
	channel, err := channelParams.Get(op, g.Params, ParamChannel)
	if err != nil {
		return err
	}
	user, err := userOf(op, g)
	if err != nil {
		return err
	}
	err = ch.c.call(ctx, op, "conversations.kick", url.Values{"channel": {channel}, "user": {user}}, nil, false)
	switch {
	case err == nil:
	case isCode(err, "user_not_found") && g.Receipt == nil:
		return unknownUser(op, user, err)
	case isCode(err, "user_not_found"):
	case isCode(err, "not_in_channel"):
		// Said when the person is not a member, but also when the bot is
		// not: tell the two apart.
		in, merr := ch.member(ctx, op, channel, user)
		if merr != nil {
			return merr
		}
		if in {
			return err // the bot is not a member: the error says so
		}
	default:
		return err
	}
	ch.intents.Forget(ctx, g.ID)
	return nil
}

// Check reports whether the person is a member of the channel.
func (ch *Channel) Check(ctx context.Context, g access.Grant) (bool, error) {
	op := ch.c.op("check", g)
	channel, err := channelParams.Get(op, g.Params, ParamChannel)
	if err != nil {
		return false, err
	}
	user, err := userOf(op, g)
	if err != nil {
		return false, err
	}
	return ch.member(ctx, op, channel, user)
}

// member pages through conversations.members looking for user.
func (ch *Channel) member(ctx context.Context, op, channel, user string) (bool, error) {
	cursor := ""
	for page := 0; page < 1000; page++ {
		var out struct {
			Members []string `json:"members"`
			Meta    struct {
				NextCursor string `json:"next_cursor"`
			} `json:"response_metadata"`
		}
		form := url.Values{"channel": {channel}, "limit": {"1000"}}
		if cursor != "" {
			form.Set("cursor", cursor)
		}
		if err := ch.c.call(ctx, op, "conversations.members", form, &out, true); err != nil {
			return false, err
		}
		if slices.Contains(out.Members, user) {
			return true, nil
		}
		if cursor = out.Meta.NextCursor; cursor == "" {
			return false, nil
		}
	}
	return false, access.RetryableError(fmt.Errorf("%s: conversations.members: too many pages", op), 0)
}
