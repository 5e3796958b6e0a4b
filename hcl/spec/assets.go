package spec

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
)

// Assets: data a task updates (its outlets) and a DAG may be scheduled on (schedule_on). An
// asset is a name, such as "warehouse.orders", or a URI, such as "s3://bucket/path"; dagflow
// only compares names, it never reads the data.

// assetPattern is what an asset name may look like: a dotted name of letters, digits, "_" and
// "-", or a URI with a scheme. Spaces, quotes and braces are refused so a name reads the same
// in a URL path (escaped), a Consul key (escaped) and the CLI.
var assetPattern = regexp.MustCompile(`^(?:[A-Za-z][A-Za-z0-9+.-]*://[A-Za-z0-9._~:/?#@!$&'()*+,;=%-]+|[A-Za-z0-9][A-Za-z0-9._-]*)$`)

// maxAssetName bounds an asset name; it becomes part of a Consul key.
const maxAssetName = 200

// Asset condition functions of schedule_on.
const (
	assetAll = "all" // every argument was updated
	assetAny = "any" // at least one argument was
)

// AssetCondition is when a DAG scheduled on assets runs: exactly one of Asset (that asset was
// updated), All (every condition holds) or Any (one of them does) is set.
type AssetCondition struct {
	Asset string            `json:"asset,omitempty"`
	All   []*AssetCondition `json:"all,omitempty"`
	Any   []*AssetCondition `json:"any,omitempty"`
}

// Assets returns the names condition c refers to, sorted, each once.
func (c *AssetCondition) Assets() []string {
	var out []string
	var walk func(*AssetCondition)
	walk = func(c *AssetCondition) {
		if c.Asset != "" {
			out = append(out, c.Asset)
		}
		for _, s := range c.All {
			walk(s)
		}
		for _, s := range c.Any {
			walk(s)
		}
	}
	walk(c)
	slices.Sort(out)
	return slices.Compact(out)
}

// Holds reports whether c holds when updated says which assets were updated.
func (c *AssetCondition) Holds(updated func(asset string) bool) bool {
	switch {
	case c.Asset != "":
		return updated(c.Asset)
	case len(c.All) > 0:
		for _, s := range c.All {
			if !s.Holds(updated) {
				return false
			}
		}
		return true
	default:
		for _, s := range c.Any {
			if s.Holds(updated) {
				return true
			}
		}
		return false
	}
}

// String writes c as schedule_on does: all("a", any("b", "c")).
func (c *AssetCondition) String() string {
	if c.Asset != "" {
		return fmt.Sprintf("%q", c.Asset)
	}
	name, subs := assetAll, c.All
	if len(c.Any) > 0 {
		name, subs = assetAny, c.Any
	}
	parts := make([]string, len(subs))
	for i, s := range subs {
		parts[i] = s.String()
	}
	return name + "(" + strings.Join(parts, ", ") + ")"
}

// checkAsset returns the diagnostic about an asset name that cannot be used, or nil.
func checkAsset(name string, rng hcl.Range) *hcl.Diagnostic {
	if assetPattern.MatchString(name) && len(name) <= maxAssetName {
		return nil
	}
	return &hcl.Diagnostic{
		Severity: hcl.DiagError, Summary: "Invalid asset name",
		Detail:  fmt.Sprintf("The asset name %q cannot be used: an asset is a name of letters, digits, \".\", \"_\" and \"-\" starting with a letter or digit, such as \"warehouse.orders\", or a URI such as \"s3://bucket/orders\", at most %d characters long.", name, maxAssetName),
		Subject: rng.Ptr(),
	}
}

// outlets decodes a task's outlets: the assets a successful try updates.
func (e *evaluator) outlets(a *hcl.Attribute, s refScope, out *[]string) {
	var names []string
	if !e.strList(a, s, &names) {
		return
	}
	seen := map[string]bool{}
	var list []string
	for _, n := range names {
		if diag := checkAsset(n, a.Expr.Range()); diag != nil {
			e.diags = append(e.diags, diag)
			continue
		}
		if seen[n] {
			e.fail(a, "Duplicate outlet", fmt.Errorf("outlets names %q twice; name each asset once", n))
			continue
		}
		seen[n] = true
		list = append(list, n)
	}
	slices.Sort(list)
	*out = list
}

// scheduleOn decodes a DAG's schedule_on: a list of assets (all of them), an asset, or the
// functions all(...) and any(...) over assets and further calls.
func (e *evaluator) scheduleOn(a *hcl.Attribute) *AssetCondition {
	c := e.assetCondition(a, a.Expr)
	if c != nil && len(c.Assets()) == 0 {
		return nil
	}
	return c
}

func (e *evaluator) assetCondition(a *hcl.Attribute, expr hcl.Expression) *AssetCondition {
	bad := func(summary, detail string, rng hcl.Range) *AssetCondition {
		e.diags = append(e.diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: summary, Detail: detail, Subject: rng.Ptr()})
		return nil
	}
	combine := func(name string, args []hclsyntax.Expression, rng hcl.Range) *AssetCondition {
		if len(args) == 0 {
			return bad("Empty asset condition", fmt.Sprintf("%s() names no asset, so it would never, or always, hold. Give it the assets the DAG waits for, such as %s(\"warehouse.orders\").", name, name), rng)
		}
		var subs []*AssetCondition
		for _, arg := range args {
			if sub := e.assetCondition(a, arg); sub != nil {
				subs = append(subs, sub)
			}
		}
		if len(subs) < len(args) {
			return nil
		}
		if name == assetAny {
			return &AssetCondition{Any: subs}
		}
		return &AssetCondition{All: subs}
	}
	switch x := expr.(type) {
	case *hclsyntax.FunctionCallExpr:
		if x.Name != assetAll && x.Name != assetAny {
			return bad("Unknown asset function", fmt.Sprintf("schedule_on combines assets with all(...) (every one was updated) and any(...) (one of them was), not %s(...).%s", x.Name, didYouMean(x.Name, []string{assetAll, assetAny})), x.NameRange)
		}
		return combine(x.Name, x.Args, x.Range())
	case *hclsyntax.TupleConsExpr:
		return combine(assetAll, x.Exprs, x.Range())
	}
	v, diags := expr.Value(e.ctx)
	e.diags = append(e.diags, diags...)
	if diags.HasErrors() || !v.IsWhollyKnown() {
		return nil
	}
	if v.IsNull() || v.Type() != cty.String {
		return bad("Invalid asset condition", fmt.Sprintf("schedule_on takes asset names (strings), a list of them, or all(...) and any(...) over them, such as all(\"warehouse.orders\", any(\"raw.a\", \"raw.b\")); this element is %s.", describeValue(v)), expr.Range())
	}
	if diag := checkAsset(v.AsString(), expr.Range()); diag != nil {
		e.diags = append(e.diags, diag)
		return nil
	}
	return &AssetCondition{Asset: v.AsString()}
}

func describeValue(v cty.Value) string {
	if v.IsNull() {
		return "null"
	}
	return v.Type().FriendlyName()
}
