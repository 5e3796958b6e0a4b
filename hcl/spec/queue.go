package spec

import (
	"fmt"
	"regexp"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// ConstraintOperators are the operators of Nomad's constraint block that a queue may use.
var ConstraintOperators = []string{
	"=", "==", "is", "!=", "not", "<", "<=", ">", ">=", "regexp", "version", "semver",
	"set_contains", "set_contains_all", "set_contains_any", "is_set", "is_not_set",
	"distinct_hosts", "distinct_property",
}

var queueSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "description"}, {Name: "namespace"}, {Name: "node_pool"},
		{Name: "datacenters"}, {Name: "max_running"},
	},
	Blocks: []hcl.BlockHeaderSchema{{Type: "constraint"}, {Type: "volume", LabelNames: []string{"name"}}},
}

var constraintSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "attribute"}, {Name: "operator"}, {Name: "value"}},
}

// decodeQueue decodes and validates one queue block.
func (f *fileScope) decodeQueue(b *hclsyntax.Block) (*Queue, hcl.Diagnostics) {
	q := &Queue{Name: b.Labels[0], Source: f.blockSource(b), DeclRange: b.DefRange()}
	var diags hcl.Diagnostics
	if diag := checkName("queue", q.Name, b.LabelRanges[0]); diag != nil {
		diags = append(diags, diag)
	}
	content, cdiags := bodyContent(b.Body, queueSchema)
	diags = append(diags, cdiags...)
	ev := &evaluator{file: f, ctx: f.evalContext(nil)}
	at := content.Attributes
	ev.str(at["description"], refScope{}, &q.Description)
	ev.str(at["namespace"], refScope{}, &q.Namespace)
	ev.str(at["node_pool"], refScope{}, &q.NodePool)
	ev.strList(at["datacenters"], refScope{}, &q.Datacenters)
	ev.int(at["max_running"], refScope{}, 0, 1<<20, &q.MaxRunning)
	for _, cb := range content.Blocks.OfType("constraint") {
		q.Constraints = append(q.Constraints, f.decodeConstraint(ev, cb, queueConstraint(q.Name)))
	}
	q.Volumes = f.decodeVolumes(ev, content.Blocks.OfType("volume"), refScope{})
	return q, append(diags, ev.diags...)
}

// constraintKind says where a constraint block stands, for its checks and messages.
type constraintKind struct {
	owner     string          // `queue "gpu"`, for messages
	roots     map[string]bool // the Nomad interpolation namespaces its strings may use
	example   string          // an attribute to suggest
	operators []string        // the operators it may use
}

// queueConstraint is the kind of a queue's constraint blocks.
func queueConstraint(name string) constraintKind {
	return constraintKind{owner: fmt.Sprintf("queue %q", name), roots: nomadRoots, example: "${attr.kernel.name}", operators: ConstraintOperators}
}

// decodeConstraint decodes and validates one constraint block.
func (f *fileScope) decodeConstraint(ev *evaluator, cb *hcl.Block, kind constraintKind) Constraint {
	cc, ccdiags := bodyContent(cb.Body, constraintSchema)
	ev.diags = append(ev.diags, ccdiags...)
	c := Constraint{Operator: "="}
	f.nomadString(ev, cc.Attributes["attribute"], kind.roots, &c.Attribute)
	f.nomadString(ev, cc.Attributes["value"], kind.roots, &c.Value)
	if a := cc.Attributes["operator"]; ev.str(a, refScope{}, &c.Operator) {
		ev.oneOf(a, "constraint operator", c.Operator, kind.operators)
	}
	missing := func(what, example string) {
		ev.diags = append(ev.diags, &hcl.Diagnostic{
			Severity: hcl.DiagError, Summary: "Missing constraint " + what,
			Detail:  fmt.Sprintf("This constraint of %s with operator %q needs %s, such as %s.", kind.owner, c.Operator, what, example),
			Subject: cb.DefRange.Ptr(),
		})
	}
	// Only an absent attribute is missing; one that failed to evaluate was reported.
	if cc.Attributes["attribute"] == nil && c.Operator != "distinct_hosts" {
		missing("attribute", fmt.Sprintf("attribute = %q", kind.example))
	}
	switch c.Operator {
	case "is_set", "is_not_set", "distinct_hosts", "distinct_property":
	default:
		if cc.Attributes["value"] == nil {
			missing("value", `value = "linux"`)
		}
	}
	if a := cc.Attributes["value"]; a != nil && c.Operator == "regexp" {
		if _, err := regexp.Compile(c.Value); err != nil {
			ev.fail(a, "Invalid constraint regexp", fmt.Errorf("the value %q is not a regular expression Nomad can use: %s", c.Value, err))
		}
	}
	return c
}

// nomadRoots are the interpolation namespaces of Nomad's constraints.
var nomadRoots = map[string]bool{"attr": true, "node": true, "meta": true}

// nomadString decodes a constraint string. Nomad users write "${attr.kernel.name}" there, which
// is Nomad's interpolation, not dagflow's: a string that refers only to the namespaces in roots
// (attr, node and meta; device in a device's constraints) is kept as written, as Nomad's own
// job parser does, so constraints read the same in both.
func (f *fileScope) nomadString(ev *evaluator, a *hcl.Attribute, roots map[string]bool, out *string) {
	if a == nil {
		return
	}
	vars := a.Expr.Variables()
	for _, tr := range vars {
		if !roots[tr.RootName()] {
			ev.str(a, refScope{}, out)
			return
		}
	}
	if len(vars) == 0 {
		ev.str(a, refScope{}, out)
		return
	}
	r := a.Expr.Range()
	text := string(f.src[r.Start.Byte:r.End.Byte])
	if len(text) < 2 || text[0] != '"' || text[len(text)-1] != '"' {
		ev.fail(a, "Invalid constraint", fmt.Errorf("a Nomad interpolation such as ${attr.kernel.name} must stand in a quoted string"))
		return
	}
	*out = text[1 : len(text)-1]
}
