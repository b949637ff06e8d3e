package bot

import (
	"context"
	"encoding/json"
	"errors"
	"strings"

	"github.com/slack-go/slack"

	"github.com/accessbot/accessbot/access"
)

// The bot's Slack lookups are uncached: package directory caches them
// with bounded staleness (and fresh answers for decisions) and is what the
// lifecycle and the bot itself ask (UseDirectory).

// UseDirectory sets the directory the bot asks when rendering and checking
// what people may request (the cached package directory over the bot's
// own lookups). Without it the bot asks Slack directly.
func (b *Bot) UseDirectory(d access.Directory) {
	b.dir = d
	if f, ok := d.(Forgetter); ok {
		b.forget = f
	}
}

// directory is what the bot asks about people.
func (b *Bot) directory() access.Directory {
	if b.dir != nil {
		return b.dir
	}
	return b
}

// Person looks user up with users.info (users:read, users:read.email),
// uncached. Unknown users give an error wrapping access.ErrNotFound; a
// deactivated account has Deactivated set.
func (b *Bot) Person(ctx context.Context, user string) (access.Person, error) {
	v, err := func() (any, error) {
		var u *slack.User
		err := b.call(ctx, "users.info", func(ctx context.Context) error {
			var err error
			u, err = b.api.GetUserInfoContext(ctx, user)
			return err
		})
		if err != nil {
			if isSlackError(err, "user_not_found") {
				return nil, access.NotFoundf("Slack has no user %s.", user)
			}
			return nil, err
		}
		name := u.RealName
		if name == "" {
			name = u.Profile.RealName
		}
		if name == "" {
			name = u.Name
		}
		return access.Person{SlackID: u.ID, Email: u.Profile.Email, Name: name, TZ: u.TZ, Deactivated: u.Deleted}, nil
	}()
	if err != nil {
		return access.Person{}, err
	}
	return v.(access.Person), nil
}

// ProfileField reads a custom profile field with users.profile.get
// (users.profile:read), uncached; "" when the field is unset.
func (b *Bot) ProfileField(ctx context.Context, user, field string) (string, error) {
	v, err := func() (any, error) {
		var p *slack.UserProfile
		err := b.call(ctx, "users.profile.get", func(ctx context.Context) error {
			var err error
			p, err = b.api.GetUserProfileContext(ctx, &slack.GetUserProfileParameters{UserID: user})
			return err
		})
		if err != nil {
			return nil, err
		}
		fields := map[string]string{}
		for id, f := range p.Fields.ToMap() {
			fields[id] = f.Value
		}
		return fields, nil
	}()
	if err != nil {
		return "", err
	}
	return v.(map[string]string)[field], nil
}

// UsergroupMembers lists a user group with usergroups.users.list
// (usergroups:read), uncached.
func (b *Bot) UsergroupMembers(ctx context.Context, group string) ([]string, error) {
	var ms []string
	err := b.call(ctx, "usergroups.users.list", func(ctx context.Context) error {
		var err error
		ms, err = b.api.GetUserGroupMembersContext(ctx, group)
		return err
	})
	return ms, err
}

// UserByEmail finds a user with users.lookupByEmail (users:read.email),
// uncached; an unknown email wraps access.ErrNotFound.
func (b *Bot) UserByEmail(ctx context.Context, email string) (string, error) {
	v, err := func() (any, error) {
		var u *slack.User
		err := b.call(ctx, "users.lookupByEmail", func(ctx context.Context) error {
			var err error
			u, err = b.api.GetUserByEmailContext(ctx, email)
			return err
		})
		if err != nil {
			if isSlackError(err, "users_not_found") {
				return nil, access.NotFoundf("Slack has no user with email %s.", email)
			}
			return nil, err
		}
		return u.ID, nil
	}()
	if err != nil {
		return "", err
	}
	return v.(string), nil
}

func isSlackError(err error, code string) bool {
	if err == nil {
		return false
	}
	var se slack.SlackErrorResponse
	if errors.As(err, &se) {
		return se.Err == code
	}
	return strings.Contains(err.Error(), code)
}

// requesterInfo gathers what approvers see about a requester; lookups that
// fail degrade to less detail, never to a failed notice.
func (b *Bot) requesterInfo(ctx context.Context, user string) RequesterInfo {
	info := RequesterInfo{}
	dir := b.directory()
	if p, err := dir.Person(ctx, user); err == nil {
		info.Name = p.Name
	}
	info.Teams = b.rb.TeamsOf(ctx, dir, user)
	if m, err := b.rb.Manager(ctx, dir, user); err == nil {
		info.Manager = m
	}
	return info
}

func (b *Bot) viewOf(ctx context.Context, r *access.Request) View {
	return View{Runbook: b.rb, Requester: b.requesterInfo(ctx, r.Requester), Now: b.clock.Now()}
}

// envelopeID extracts the envelope_id of a raw socket frame.
func envelopeID(raw json.RawMessage) string {
	var v struct {
		EnvelopeID string `json:"envelope_id"`
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		return ""
	}
	return v.EnvelopeID
}
