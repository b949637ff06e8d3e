package connectors

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// UnknownParams returns one error per key of params that is not one of
// known, in key order, for a connector's CheckParams
// (access.ParamsChecker): "groupid: unknown grant parameter (did you mean
// group_id?)", or naming the known keys when none is close. An empty or
// blank key is reported as such.
func UnknownParams(params map[string]string, known ...string) []error {
	var errs []error
	for _, k := range slices.Sorted(maps.Keys(params)) {
		switch {
		case strings.TrimSpace(k) == "":
			errs = append(errs, CheckParamNames(map[string]string{k: ""}))
		case slices.Contains(known, k):
		case len(known) == 0:
			errs = append(errs, fmt.Errorf("%s: unknown grant parameter (this connector takes none)", k))
		default:
			if s := Suggest(k, known); s != "" {
				errs = append(errs, fmt.Errorf("%s: unknown grant parameter (did you mean %s?)", k, s))
			} else {
				errs = append(errs, fmt.Errorf("%s: unknown grant parameter (known: %s)", k, strings.Join(known, ", ")))
			}
		}
	}
	return errs
}

// CheckParamNames is CheckParams for connectors that pass any parameters
// through (webhook, manual): it only rejects empty or blank keys, which no
// receiver can act on.
func CheckParamNames(params map[string]string) error {
	var errs []error
	for _, k := range slices.Sorted(maps.Keys(params)) {
		if strings.TrimSpace(k) == "" {
			errs = append(errs, fmt.Errorf("%q: empty grant parameter name", k))
		}
	}
	return errors.Join(errs...)
}
