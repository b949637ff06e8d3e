package access

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Helpers for ParamsChecker implementations and configuration errors: the
// one "did you mean" of the project.

// Suggest returns the candidate closest to s by edit distance, if it is
// close enough to be a plausible typo, else "".
func Suggest(s string, candidates []string) string {
	best, bestD := "", 0
	for _, c := range candidates {
		d := editDistance(strings.ToLower(s), strings.ToLower(c))
		if best == "" || d < bestD {
			best, bestD = c, d
		}
	}
	// A typo of one or two characters, or a third of a longer word.
	if best != "" && (bestD <= 2 || bestD*3 <= len(best)) && bestD < len(best) {
		return best
	}
	return ""
}

// editDistance is the Levenshtein distance between a and b (bytes).
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

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
