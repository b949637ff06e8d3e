package connectors

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/accessbot/accessbot/access"
)

// Param describes one grant parameter a connector takes (a key of the
// runbook's `grant:` map).
type Param struct {
	Key string
	// What describes a valid value in the "required" error: "the group's
	// SCIM id".
	What string
	// Optional parameters may be absent; others are required.
	Optional bool
	// Check validates a present value (trimmed of white space); its
	// error is shown after "KEY: ". Nil accepts any value.
	Check func(v string) error
}

// Params is a connector's whole set of grant parameters. It implements
// the rules of access.ParamsChecker for CheckParams, and reads the
// checked values for Grant, Revoke and Check, so that a parameter is
// validated in one place.
type Params []Param

// CheckParams checks params without contacting the target: unknown keys
// (with a did-you-mean), missing required keys and invalid values, every
// problem joined, each error starting with its key.
func (ps Params) CheckParams(params map[string]string) error {
	known := make([]string, len(ps))
	for i, p := range ps {
		known[i] = p.Key
	}
	errs := access.UnknownParams(params, known...)
	_, err := ps.values(params)
	return errors.Join(append(errs, err)...)
}

// Read returns the parameters' checked values by key (absent optional
// ones are ""), for an operation described by op: a problem is a
// permanent error "OP: grant parameter KEY: …". Unknown keys are
// ignored here; CheckParams refused them at start-up.
func (ps Params) Read(op string, params map[string]string) (map[string]string, error) {
	v, err := ps.values(params)
	if err != nil {
		return nil, access.PermanentError(fmt.Errorf("%s: grant parameter %w", op, err))
	}
	return v, nil
}

// Get is Read for a connector's one required parameter key.
func (ps Params) Get(op string, params map[string]string, key string) (string, error) {
	v, err := ps.Read(op, params)
	return v[key], err
}

func (ps Params) values(params map[string]string) (map[string]string, error) {
	out := make(map[string]string, len(ps))
	var errs []error
	for _, p := range ps {
		v := strings.TrimSpace(params[p.Key])
		switch {
		case v == "" && !p.Optional:
			errs = append(errs, fmt.Errorf("%s: required (%s, in the role's grant: map)", p.Key, p.What))
		case v != "" && p.Check != nil:
			if err := p.Check(v); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", p.Key, err))
				continue
			}
		}
		out[p.Key] = v
	}
	return out, errors.Join(errs...)
}

// Match returns a Param.Check that accepts values matching re and
// refuses others with `"VALUE" is not WHAT`.
func Match(re *regexp.Regexp, what string) func(string) error {
	return func(v string) error {
		if !re.MatchString(v) {
			return fmt.Errorf("%q is not %s", v, what)
		}
		return nil
	}
}
