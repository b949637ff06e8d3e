package bot

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/slack-go/slack"

	"github.com/accessbot/accessbot/access"
)

// directoryTTL is how long Slack directory answers are cached. Policy is
// checked against fresh-enough data at click time without a Slack call per
// click.
const directoryTTL = 5 * time.Minute

type dirEntry struct {
	at    time.Time
	value any
}

var _ access.Directory = (*Bot)(nil)

func (b *Bot) cached(key string, fetch func() (any, error)) (any, error) {
	now := b.clock.Now()
	b.dirMu.Lock()
	e, ok := b.dirCache[key]
	b.dirMu.Unlock()
	if ok && now.Sub(e.at) < directoryTTL {
		return e.value, nil
	}
	v, err := fetch()
	if err != nil {
		return nil, err
	}
	b.dirMu.Lock()
	b.dirCache[key] = dirEntry{at: now, value: v}
	b.dirMu.Unlock()
	return v, nil
}

// Person implements access.Directory with users.info (users:read,
// users:read.email). Unknown users give an error wrapping access.ErrNotFound.
func (b *Bot) Person(ctx context.Context, user string) (access.Person, error) {
	v, err := b.cached("person:"+user, func() (any, error) {
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
		return access.Person{SlackID: u.ID, Email: u.Profile.Email, Name: name, TZ: u.TZ}, nil
	})
	if err != nil {
		return access.Person{}, err
	}
	return v.(access.Person), nil
}

// ProfileField implements access.Directory with users.profile.get
// (users.profile:read); "" when the field is unset.
func (b *Bot) ProfileField(ctx context.Context, user, field string) (string, error) {
	v, err := b.cached("profile:"+user, func() (any, error) {
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
	})
	if err != nil {
		return "", err
	}
	return v.(map[string]string)[field], nil
}

// UsergroupMembers implements access.Directory with usergroups.users.list
// (usergroups:read).
func (b *Bot) UsergroupMembers(ctx context.Context, group string) ([]string, error) {
	v, err := b.cached("group:"+group, func() (any, error) {
		var ms []string
		err := b.call(ctx, "usergroups.users.list", func(ctx context.Context) error {
			var err error
			ms, err = b.api.GetUserGroupMembersContext(ctx, group)
			return err
		})
		return ms, err
	})
	if err != nil {
		return nil, err
	}
	return append([]string(nil), v.([]string)...), nil
}

// UserByEmail implements access.Directory with users.lookupByEmail
// (users:read.email); an unknown email wraps access.ErrNotFound.
func (b *Bot) UserByEmail(ctx context.Context, email string) (string, error) {
	v, err := b.cached("email:"+strings.ToLower(email), func() (any, error) {
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
	})
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
	if p, err := b.Person(ctx, user); err == nil {
		info.Name = p.Name
	}
	info.Teams = b.rb.TeamsOf(ctx, b, user)
	if m, err := b.rb.Manager(ctx, b, user); err == nil {
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
