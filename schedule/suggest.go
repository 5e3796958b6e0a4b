package schedule

import "strings"

// suggest returns the candidate closest to name for a "did you mean" hint, or "" when none is
// within maxDist edits. Matching ignores case, so "@Daily" suggests "@daily".
func suggest(name string, candidates []string, maxDist int) string {
	lower := strings.ToLower(name)
	best, bestDist := "", -1
	for _, c := range candidates {
		d := levenshtein(lower, strings.ToLower(c))
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

// levenshtein returns the edit distance between a and b, counted in bytes: the inputs here are
// ASCII names, and a byte count keeps the function simple.
func levenshtein(a, b string) int {
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
