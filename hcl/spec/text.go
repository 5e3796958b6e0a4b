package spec

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/hashicorp/hcl/v2/ext/typeexpr"
	"github.com/zclconf/go-cty/cty"
)

// sentence makes a lowercase error message into a diagnostic's Detail: capitalized, and ending
// in a period unless it already ends a sentence (as "Did you mean ...?" does).
func sentence(s string) string {
	r, n := utf8.DecodeRuneInString(s)
	if r == utf8.RuneError {
		return s
	}
	s = string(unicode.ToUpper(r)) + s[n:]
	if !strings.HasSuffix(s, ".") && !strings.HasSuffix(s, "?") {
		s += "."
	}
	return s
}

// typeDescription names a type the way the documentation does ("a string", "a list of strings").
func typeDescription(ty cty.Type) string {
	switch {
	case ty == cty.String:
		return "a string"
	case ty == cty.Number:
		return "a number"
	case ty == cty.Bool:
		return "true or false"
	case ty.Equals(cty.List(cty.String)):
		return "a list of strings"
	case ty.Equals(cty.Map(cty.String)):
		return "a map of strings"
	default:
		return typeexpr.TypeString(ty)
	}
}

// quoteList renders options as `"a", "b" or "c"`.
func quoteList(options []string) string {
	q := make([]string, len(options))
	for i, o := range options {
		q[i] = `"` + o + `"`
	}
	if len(q) < 2 {
		return strings.Join(q, "")
	}
	return strings.Join(q[:len(q)-1], ", ") + " or " + q[len(q)-1]
}
