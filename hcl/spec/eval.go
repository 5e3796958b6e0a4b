package spec

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/agext/levenshtein"
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/ext/typeexpr"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
	"github.com/zclconf/go-cty/cty/function"
	"github.com/zclconf/go-cty/cty/function/stdlib"
)

// runtimeFields lists the runtime values a task's strings may refer to, by namespace; params
// are checked against the DAG's param blocks instead.
var runtimeFields = map[string][]string{
	"run":  {"id", "logical_date", "data_interval_start", "data_interval_end", "type", "asset_events"},
	"task": {"name", "try"},
	"dag":  {"name"},
	// callback is allowed only in a callback's task (refScope.callback); see CallbackFields.
	"callback": CallbackFields,
}

// runtimeAttrs names the task attributes evaluated per attempt, where runtime values may appear.
const runtimeAttrs = "command, args, image, env, config and artifact blocks"

// sentinel marks a runtime value while a static expression is evaluated: run.id evaluates to
// "\x00run.id\x00", which templateString turns into "${run.id}" once evaluation is done. NUL
// cannot appear in an HCL string literal unescaped, so user text never collides with it.
const sentinel = "\x00"

var functions = map[string]function.Function{
	"abs": stdlib.AbsoluteFunc, "ceil": stdlib.CeilFunc, "chomp": stdlib.ChompFunc,
	"coalesce": stdlib.CoalesceFunc, "coalescelist": stdlib.CoalesceListFunc,
	"compact": stdlib.CompactFunc, "concat": stdlib.ConcatFunc, "contains": stdlib.ContainsFunc,
	"distinct": stdlib.DistinctFunc, "element": stdlib.ElementFunc, "flatten": stdlib.FlattenFunc,
	"floor": stdlib.FloorFunc, "format": stdlib.FormatFunc, "formatdate": stdlib.FormatDateFunc,
	"formatlist": stdlib.FormatListFunc, "indent": stdlib.IndentFunc, "join": stdlib.JoinFunc,
	"jsondecode": stdlib.JSONDecodeFunc, "jsonencode": stdlib.JSONEncodeFunc,
	"keys": stdlib.KeysFunc, "length": stdlib.LengthFunc, "lookup": stdlib.LookupFunc,
	"lower": stdlib.LowerFunc, "max": stdlib.MaxFunc, "merge": stdlib.MergeFunc,
	"min": stdlib.MinFunc, "range": stdlib.RangeFunc, "regex": stdlib.RegexFunc,
	"regexall": stdlib.RegexAllFunc, "replace": stdlib.ReplaceFunc, "reverse": stdlib.ReverseListFunc,
	"setunion": stdlib.SetUnionFunc, "slice": stdlib.SliceFunc, "sort": stdlib.SortFunc,
	"split": stdlib.SplitFunc, "strrev": stdlib.ReverseFunc, "substr": stdlib.SubstrFunc,
	"title": stdlib.TitleFunc, "trim": stdlib.TrimFunc, "trimprefix": stdlib.TrimPrefixFunc,
	"trimspace": stdlib.TrimSpaceFunc, "trimsuffix": stdlib.TrimSuffixFunc,
	"upper": stdlib.UpperFunc, "values": stdlib.ValuesFunc, "zipmap": stdlib.ZipmapFunc,
	"tostring": stdlib.MakeToFunc(cty.String), "tonumber": stdlib.MakeToFunc(cty.Number),
	"tobool": stdlib.MakeToFunc(cty.Bool), "tolist": stdlib.MakeToFunc(cty.List(cty.DynamicPseudoType)),
	"toset": stdlib.MakeToFunc(cty.Set(cty.DynamicPseudoType)), "tomap": stdlib.MakeToFunc(cty.Map(cty.DynamicPseudoType)),
}

var variableSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "type"}, {Name: "default"}, {Name: "description"}},
}

// decodeVariables evaluates the file's variable and locals blocks, marking every variable name
// it declares in declared.
func (f *fileScope) decodeVariables(blocks hcl.Blocks, overrides map[string]string, declared map[string]bool) hcl.Diagnostics {
	var diags hcl.Diagnostics
	f.vars = map[string]cty.Value{}
	f.locals = map[string]cty.Value{}
	seen := map[string]hcl.Range{}
	for _, b := range blocks.OfType("variable") {
		name := b.Labels[0]
		if !identPattern.MatchString(name) {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError, Summary: "Invalid variable name",
				Detail:  fmt.Sprintf("The variable name %q cannot be used in expressions: start with a letter or \"_\" and use only letters, digits and \"_\".", name),
				Subject: b.LabelRanges[0].Ptr(),
			})
			continue
		}
		if prev, ok := seen[name]; ok {
			diags = append(diags, duplicate("variable", name, b.DefRange, prev))
			continue
		}
		seen[name] = b.DefRange
		declared[name] = true
		// Until it has a value, the variable is unknown: expressions using it are skipped
		// quietly instead of reporting the variable's own error again.
		f.vars[name] = cty.DynamicVal
		content, cdiags := bodyContent(b.Body, variableSchema)
		diags = append(diags, cdiags...)
		ty := cty.DynamicPseudoType
		if attr, ok := content.Attributes["type"]; ok {
			t, tdiags := typeexpr.TypeConstraint(attr.Expr)
			diags = append(diags, tdiags...)
			if tdiags.HasErrors() {
				continue
			}
			ty = t
		}
		var val cty.Value
		if text, ok := overrides[name]; ok {
			v, vdiags := parseOverride(name, text, ty)
			diags = append(diags, vdiags...)
			if vdiags.HasErrors() {
				continue
			}
			val = v
		} else if attr, ok := content.Attributes["default"]; ok {
			v, vdiags := attr.Expr.Value(nil)
			diags = append(diags, vdiags...)
			if vdiags.HasErrors() {
				continue
			}
			val = v
		} else {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError, Summary: "Missing value for variable",
				Detail:  fmt.Sprintf("Variable %q has no default. Give it one, or set it with -var %s=VALUE.", name, name),
				Subject: b.DefRange.Ptr(),
			})
			continue
		}
		cv, err := convert.Convert(val, ty)
		if err != nil {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError, Summary: "Invalid value for variable",
				Detail:  fmt.Sprintf("The value of variable %q does not have its type %s: %s.", name, typeexpr.TypeString(ty), err),
				Subject: b.DefRange.Ptr(),
			})
			continue
		}
		f.vars[name] = cv
	}
	diags = append(diags, f.decodeLocals(blocks.OfType("locals"))...)
	// From here on the scope is only read, by DAG blocks decoding concurrently.
	f.base = &hcl.EvalContext{Variables: f.fileVariables(), Functions: functions}
	return diags
}

// parseOverride reads a -var value: strings as given, other types as HCL expressions.
func parseOverride(name, text string, ty cty.Type) (cty.Value, hcl.Diagnostics) {
	if ty == cty.String || ty == cty.DynamicPseudoType {
		return cty.StringVal(text), nil
	}
	expr, diags := hclsyntax.ParseExpression([]byte(text), "-var "+name, hcl.InitialPos)
	if !diags.HasErrors() {
		var v cty.Value
		if v, diags = expr.Value(nil); !diags.HasErrors() {
			return v, nil
		}
	}
	return cty.NilVal, hcl.Diagnostics{{
		Severity: hcl.DiagError, Summary: "Invalid value for variable",
		Detail: fmt.Sprintf("The value given with -var %s=%s is not a valid %s: %s. Write it in HCL syntax, with strings in quotes, as in -var '%s=[\"eu\", \"us\"]'.",
			name, text, typeexpr.TypeString(ty), diags[0].Summary, name),
	}}
}

// decodeLocals evaluates locals in dependency order, so a local may use another declared
// below it. Locals left over when no more can be evaluated depend on each other in a cycle.
func (f *fileScope) decodeLocals(blocks hcl.Blocks) hcl.Diagnostics {
	var diags hcl.Diagnostics
	attrs := map[string]*hcl.Attribute{}
	for _, b := range blocks {
		as, adiags := b.Body.JustAttributes()
		diags = append(diags, adiags...)
		for name, a := range as {
			if prev, ok := attrs[name]; ok {
				diags = append(diags, duplicate("local", name, a.NameRange, prev.NameRange))
				continue
			}
			attrs[name] = a
		}
	}
	declared := map[string]cty.Value{}
	for name := range attrs {
		declared[name] = cty.DynamicVal
	}
	pending := map[string]*hcl.Attribute{}
	for name, a := range attrs {
		rdiags := f.checkRefs(a.Expr, refScope{attr: "local." + name, locals: declared})
		diags = append(diags, rdiags...)
		if !rdiags.HasErrors() {
			pending[name] = a
		}
	}
	for progress := true; progress && len(pending) > 0; {
		progress = false
		for _, name := range slices.Sorted(maps.Keys(pending)) {
			a := pending[name]
			if !f.localsReady(a.Expr) {
				continue
			}
			v, vdiags := a.Expr.Value(f.evalContext(nil))
			diags = append(diags, vdiags...)
			f.locals[name] = v
			delete(pending, name)
			progress = true
		}
	}
	for _, name := range slices.Sorted(maps.Keys(pending)) {
		a := pending[name]
		f.locals[name] = cty.DynamicVal // reported here, and skipped where used
		diags = append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError, Summary: "Cycle in locals",
			Detail:  fmt.Sprintf("local.%s depends, directly or through other locals, on itself. Break the cycle by giving one of them a value that does not refer back.", name),
			Subject: a.NameRange.Ptr(),
		})
	}
	return diags
}

func (f *fileScope) localsReady(expr hcl.Expression) bool {
	for _, tr := range expr.Variables() {
		if tr.RootName() != "local" || len(tr) < 2 {
			continue
		}
		if a, ok := tr[1].(hcl.TraverseAttr); ok {
			if _, done := f.locals[a.Name]; !done {
				return false
			}
		}
	}
	return true
}

// refScope says what an expression may refer to.
type refScope struct {
	attr     string               // the attribute, for messages
	locals   map[string]cty.Value // overrides the file's locals while they are being evaluated
	each     bool                 // inside a task with for_each
	mapped   bool                 // inside a task mapped over outputs: each is a runtime value
	runtime  bool                 // runtime values allowed, whatever the attribute's name
	params   []string             // the DAG's param names
	outputs  *[]outputRef         // where task output references are recorded; nil: none allowed
	callback bool                 // inside a callback's task: callback.* is a runtime value
}

// checkRefs reports references to anything the scope does not have, with a suggestion when a
// near name exists. hcl would report most of these too, but not with the reason or the fix.
func (f *fileScope) checkRefs(expr hcl.Expression, s refScope) hcl.Diagnostics {
	if literal(expr) {
		return nil // nothing to check, without walking the expression to find so
	}
	var diags hcl.Diagnostics
	locals := f.locals
	if s.locals != nil {
		locals = s.locals
	}
	for _, tr := range expr.Variables() {
		root := tr.RootName()
		rng := tr.SourceRange()
		attr := ""
		if len(tr) > 1 {
			if a, ok := tr[1].(hcl.TraverseAttr); ok {
				attr = a.Name
			}
		}
		bad := func(summary, detail string) {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: summary, Detail: detail, Subject: rng.Ptr()})
		}
		switch root {
		case "var", "local":
			names := f.vars
			kind := "variable"
			if root == "local" {
				names, kind = locals, "local value"
			}
			if attr == "" {
				bad("Invalid reference", fmt.Sprintf("A reference to %s needs a name, as in %s.NAME.", root, root))
			} else if _, ok := names[attr]; !ok {
				bad("Reference to undeclared "+kind, fmt.Sprintf("No %s named %q is declared in this file.%s", kind, attr, didYouMean(attr, slices.Sorted(maps.Keys(names)))))
			}
		case "each":
			if s.mapped && !s.runtime {
				bad("each is known only at run time here", fmt.Sprintf("The instances of a task mapped over outputs are created when the run reaches it, so each.key and each.value can be used only in %s, not in %s.", runtimeAttrs, s.attr))
			} else if !s.each {
				bad("each is not available here", fmt.Sprintf("each.key and each.value exist only inside a task block with for_each; %s cannot use them.", s.attr))
			} else if attr != "key" && attr != "value" {
				bad("Unsupported attribute of each", fmt.Sprintf("each has the attributes key and value, not %q.%s", attr, didYouMean(attr, []string{"key", "value"})))
			}
		case outputsRoot:
			diags = append(diags, s.checkOutputRef(tr)...)
		case "run", "task", "dag", "params", "callback":
			if root == "callback" && !s.callback {
				bad("callback is not available here", fmt.Sprintf("callback.* holds the values of the event a callback's task runs for; only the task block of an on_failure, on_success, on_retry or on_miss block can use it, not %s.", s.attr))
				continue
			}
			if !s.runtime {
				bad("Runtime value not allowed here", fmt.Sprintf("The value of %s is fixed when the DAG is applied, so it cannot use %s, which is known only when a task runs. Runtime values can be used in %s.", s.attr, traversalString(tr), runtimeAttrs))
				continue
			}
			fields := runtimeFields[root]
			if root == "params" {
				fields = s.params
			}
			if attr == "" {
				bad("Invalid reference", fmt.Sprintf("A reference to %s needs an attribute, such as %s.%s.", root, root, first(fields, "NAME")))
			} else if !slices.Contains(fields, attr) {
				what := fmt.Sprintf("%s has no attribute %q; it has %s.", root, attr, strings.Join(fields, ", "))
				if root == "params" {
					what = fmt.Sprintf("This DAG declares no param %q.", attr)
				}
				bad("Unknown runtime value", what+didYouMean(attr, fields))
			}
		default:
			bad("Unknown variable", fmt.Sprintf("There is no variable named %q. Expressions can refer to var, local, each (in tasks with for_each) and, in %s, the runtime values run, params, task, dag and tasks (upstream outputs).%s", root, runtimeAttrs, didYouMean(root, []string{"var", "local", "each", "run", "params", "task", "dag", "tasks"})))
		}
	}
	return diags
}

// literal reports whether expr is literals only: a number, bool or string without
// interpolations, or a list of them, as most attributes of a DAG file are. Such an expression
// refers to nothing, so the checks of references have nothing to walk it for.
func literal(expr hcl.Expression) bool {
	switch e := expr.(type) {
	case *hclsyntax.LiteralValueExpr:
		return true
	case *hclsyntax.TemplateExpr:
		return e.IsStringLiteral()
	case *hclsyntax.TupleConsExpr:
		for _, el := range e.Exprs {
			if !literal(el) {
				return false
			}
		}
		return true
	}
	return false
}

// runtimeRoots are the namespaces of runtime values.
var runtimeRoots = map[string]bool{"run": true, "params": true, "task": true, "dag": true, "callback": true, outputsRoot: true}

// checkRuntimePlacement reports runtime values used anywhere but directly in a string template,
// a list element or a map value: a function, operator or condition would be evaluated when the
// DAG is applied, before the value exists, and a map key must be known then too.
func checkRuntimePlacement(expr hcl.Expression, attr string, mapped bool) hcl.Diagnostics {
	native, ok := expr.(hclsyntax.Expression)
	if !ok || literal(expr) {
		return nil
	}
	w := &placementWalker{attr: attr, each: mapped}
	hclsyntax.Walk(native, w)
	return w.diags
}

type placementWalker struct {
	attr  string
	each  bool // each is a runtime value too
	stack []hclsyntax.Node
	diags hcl.Diagnostics
}

func (w *placementWalker) Enter(n hclsyntax.Node) hcl.Diagnostics {
	if tr, ok := n.(*hclsyntax.ScopeTraversalExpr); ok && (runtimeRoots[tr.Traversal.RootName()] || w.each && tr.Traversal.RootName() == "each") {
		for _, parent := range w.stack {
			switch parent.(type) {
			case *hclsyntax.TemplateExpr, *hclsyntax.TemplateWrapExpr, *hclsyntax.TupleConsExpr, *hclsyntax.ObjectConsExpr:
				continue
			}
			w.diags = append(w.diags, &hcl.Diagnostic{
				Severity: hcl.DiagError, Summary: "Runtime value used in an expression",
				Detail:  fmt.Sprintf("%s is known only when the task runs, so in %s it can only be placed into a string, as in \"${%s}\", or be a list element or map value. Functions, operators, conditions and map keys are evaluated when the DAG is applied, before it exists.", traversalString(tr.Traversal), w.attr, traversalString(tr.Traversal)),
				Subject: tr.SrcRange.Ptr(),
			})
			break
		}
	}
	w.stack = append(w.stack, n)
	return nil
}

func (w *placementWalker) Exit(hclsyntax.Node) hcl.Diagnostics {
	w.stack = w.stack[:len(w.stack)-1]
	return nil
}

// evalContext returns the context static expressions are evaluated in, with each bound when
// given and the runtime namespaces bound to sentinels.
//
// Once the file's variables and locals are evaluated, the names every expression of the file
// sees (var, local, the runtime namespaces) are bound once, in f.base, and the context returned
// is a child of it binding only params and each: building them all anew for every task was a
// tenth of what decoding 10,000 DAGs allocated. The names of the two levels are disjoint, so
// lookups find what one map of them all would hold.
func (f *fileScope) evalContext(each map[string]cty.Value, params ...string) *hcl.EvalContext {
	if f.base == nil {
		// Locals are still being evaluated; var and local change as they are.
		vars := f.fileVariables()
		if each != nil {
			vars["each"] = cty.ObjectVal(each)
		}
		vars["params"] = paramsSentinel(params)
		return &hcl.EvalContext{Variables: vars, Functions: functions}
	}
	vars := make(map[string]cty.Value, 2)
	if each != nil {
		vars["each"] = cty.ObjectVal(each)
	}
	vars["params"] = paramsSentinel(params)
	ctx := f.base.NewChild()
	ctx.Variables, ctx.Functions = vars, functions
	return ctx
}

// fileVariables binds what every expression of the file sees: var, local and the runtime
// namespaces.
func (f *fileScope) fileVariables() map[string]cty.Value {
	vars := make(map[string]cty.Value, len(runtimeSentinels)+4)
	vars["var"] = cty.ObjectVal(f.vars)
	vars["local"] = cty.ObjectVal(f.locals)
	for ns, v := range runtimeSentinels {
		vars[ns] = v
	}
	return vars
}

// noParams is the params sentinel of a DAG without params, built once.
var noParams = sentinelObject("params", nil)

func paramsSentinel(params []string) cty.Value {
	if len(params) == 0 {
		return noParams
	}
	return sentinelObject("params", params)
}

// runtimeSentinels are the sentinel objects of runtimeFields, built once: every task's
// evaluation context holds them, and building them anew for each task was a seventh of the
// time `dagflow validate` takes over 10,000 DAGs.
var runtimeSentinels = func() map[string]cty.Value {
	out := make(map[string]cty.Value, len(runtimeFields))
	for ns, fields := range runtimeFields {
		out[ns] = sentinelObject(ns, fields)
	}
	return out
}()

func sentinelObject(ns string, fields []string) cty.Value {
	attrs := make(map[string]cty.Value, len(fields))
	for _, f := range fields {
		attrs[f] = cty.StringVal(sentinel + ns + "." + f + sentinel)
	}
	return cty.ObjectVal(attrs)
}

// templateString turns an evaluated string into the template stored for runtime: sentinels
// become ${ns.name} sequences and literal "${" and "%{" are escaped so that rendering yields
// the text the user wrote.
func templateString(s string) (string, error) {
	if !strings.Contains(s, sentinel) {
		return escapeTemplate(s), nil
	}
	parts := strings.Split(s, sentinel)
	var b strings.Builder
	for i, p := range parts {
		if i%2 == 0 {
			b.WriteString(escapeTemplate(p))
			continue
		}
		ns, field, _ := strings.Cut(p, ".")
		if _, known := runtimeFields[ns]; (!known && ns != "params" && ns != outputsRoot && ns != "each") || field == "" || len(parts)%2 == 0 {
			return "", fmt.Errorf("a runtime value can only be placed into a string, as in \"${run.id}\"; it cannot be passed to a function, whose result is decided when the DAG is applied")
		}
		b.WriteString("${" + p + "}")
	}
	return b.String(), nil
}

func escapeTemplate(s string) string {
	return strings.NewReplacer("${", "$${", "%{", "%%{").Replace(s)
}

func traversalString(tr hcl.Traversal) string {
	var b strings.Builder
	for _, step := range tr {
		switch s := step.(type) {
		case hcl.TraverseRoot:
			b.WriteString(s.Name)
		case hcl.TraverseAttr:
			b.WriteString("." + s.Name)
		default:
			b.WriteString("[...]")
		}
	}
	return b.String()
}

// didYouMean returns " Did you mean "x"?" for the closest option, or "".
func didYouMean(given string, options []string) string {
	best, bestDist := "", 3
	for _, o := range options {
		if d := levenshtein.Distance(given, o, nil); d < bestDist {
			best, bestDist = o, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" Did you mean %q?", best)
}

func first(list []string, fallback string) string {
	if len(list) == 0 {
		return fallback
	}
	return list[0]
}
