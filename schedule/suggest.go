package schedule

import (
	"strings"

	"github.com/agext/levenshtein"
)

// suggest returns the candidate closest to name for a "did you mean" hint, or "" when none is
// within maxDist edits. Matching ignores case, so "@Daily" suggests "@daily".
func suggest(name string, candidates []string, maxDist int) string {
	lower := strings.ToLower(name)
	best, bestDist := "", -1
	for _, c := range candidates {
		d := levenshtein.Distance(lower, strings.ToLower(c), nil)
		if bestDist < 0 || d < bestDist {
			best, bestDist = c, d
		}
	}
	if bestDist < 0 || bestDist > maxDist {
		return ""
	}
	return best
}

// typoDistance is how many edits a word of n bytes may be from a name to count as a typo of it:
// one per four letters, enough for a dropped or swapped letter but not so many that "@foo"
// suggests "@hourly", and at least one so that "FRY" suggests "FRI".
func typoDistance(n int) int {
	return max(1, n/4)
}
