// Package manual is the connector for systems with no API (many payroll
// and HR tools): accessbot cannot change access itself, so every grant and
// removal becomes a task for the system owners, posted in Slack with a Done
// button. A grant counts only once an owner clicked Done
// (access.Service.Confirm); an unconfirmed removal keeps reminding the
// owners and shows in alerts until someone confirms it.
package manual

import (
	"context"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/connectors"
)

// Connector hands every change to the system owners.
type Connector struct{}

var (
	_ access.Connector     = Connector{}
	_ access.ParamsChecker = Connector{}
)

// CheckParams accepts any grant parameters, which are shown to the owners
// in the task, but rejects empty or blank keys.
func (Connector) CheckParams(params map[string]string) error {
	return access.CheckParamNames(params)
}

// Config is the manual connector's block: it has no keys besides type.
type Config struct{}

// Factory builds a manual connector; it accepts no settings, so any key is
// reported as unknown.
func Factory(name string, cfg connectors.Config) (access.Connector, error) {
	var c Config
	if err := cfg.Decode(&c); err != nil {
		return nil, err
	}
	return Connector{}, nil
}

// Grant returns access.ErrAwaitingConfirmation: the lifecycle sends the
// owners a task and waits for their Done. The receipt is empty: what the
// owner did is recorded by their confirmation.
func (Connector) Grant(ctx context.Context, g access.Grant) (access.Receipt, error) {
	if err := ctx.Err(); err != nil {
		return access.Receipt{}, err
	}
	return access.Receipt{}, access.ErrAwaitingConfirmation
}

// Revoke returns access.ErrAwaitingConfirmation, like Grant.
func (Connector) Revoke(ctx context.Context, g access.Grant) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return access.ErrAwaitingConfirmation
}
