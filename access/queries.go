package access

import "context"

// Get returns request id (ErrNotFound if none), for code acting on the
// bot's own behalf. People's actions use GetFor.
func (s *Service) Get(ctx context.Context, id string) (*Request, error) { return s.store.Get(ctx, id) }

// GetFor returns request id as person actor may see it: a request they are
// not party to is refused exactly like one that does not exist.
func (s *Service) GetFor(ctx context.Context, id, actor string) (*Request, error) {
	return s.getFor(ctx, id, actor)
}

// Mine returns user's live requests: pending, approved, active and being
// removed, newest first ("list").
func (s *Service) Mine(ctx context.Context, user string) ([]*Request, error) {
	return s.store.List(ctx, Filter{Requester: user, States: []State{StatePending, StateApproved, StateActive, StateRevoking}})
}

// PendingFor returns the pending requests whose current step user may
// approve ("pending").
func (s *Service) PendingFor(ctx context.Context, user string) ([]*Request, error) {
	return s.store.List(ctx, Filter{Approver: user, States: []State{StatePending}})
}

// History returns requests for a system (all states), newest first, up to
// limit (0: no limit).
func (s *Service) History(ctx context.Context, system string, limit int) ([]*Request, error) {
	return s.store.List(ctx, Filter{System: system, Limit: limit})
}

// CanSeeSystem reports whether user is an owner of the system or an admin.
func (s *Service) CanSeeSystem(user, system string) bool {
	if s.rb.IsAdmin(user) {
		return true
	}
	sys := s.rb.Systems[system]
	return sys != nil && sys.IsOwner(user)
}

// LiveIn returns the live grants (approved, active, being removed) in a
// system, newest first.
func (s *Service) LiveIn(ctx context.Context, system string) ([]*Request, error) {
	return s.store.List(ctx, Filter{System: system, States: []State{StateApproved, StateActive, StateRevoking}})
}
