package access

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// ResolveEmails replaces every email among the admins and the systems'
// owners with the Slack user ID dir.UserByEmail gives for it, in place,
// so that the runbook may name people by email (accessbot init writes
// emails) while everything downstream — approval fallbacks, IsOwner,
// alerts, digests — sees Slack user IDs. A Slack user ID is kept as it is.
//
// run calls it once at start-up, before serving: it is not safe while the
// runbook is in use. An email no one in Slack has is an error naming its
// key path (slack.admins[0], systems.crm.owners[1]), all of them joined:
// owners and admins are who is alerted when access cannot be removed, so
// they must be reachable. A directory failure is returned wrapped.
func (rb *Runbook) ResolveEmails(ctx context.Context, dir Directory) error {
	var errs []error
	fix := func(path string, people []string) {
		for i, p := range people {
			if !strings.Contains(p, "@") {
				continue
			}
			id, err := dir.UserByEmail(ctx, p)
			switch {
			case errors.Is(err, ErrNotFound):
				errs = append(errs, fmt.Errorf("%s[%d]: no Slack user has the email %s", path, i, p))
			case err != nil:
				errs = append(errs, fmt.Errorf("%s[%d]: look up %s: %w", path, i, p, err))
			case id == "":
				errs = append(errs, fmt.Errorf("%s[%d]: no Slack user has the email %s", path, i, p))
			default:
				people[i] = id
			}
		}
	}
	fix("slack.admins", rb.Admins)
	for _, id := range rb.SystemIDs() {
		fix("systems."+id+".owners", rb.Systems[id].Owners)
	}
	return errors.Join(errs...)
}
