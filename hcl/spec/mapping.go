package spec

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
)

// Dynamic mapping: a task block whose for_each names an upstream task's output
// (for_each = tasks.list_files.outputs.files) stays one Task, with MapOver set; its instances
// are created at run time, when that upstream succeeded, one per element of the collection.

// Limits of a mapped task's instances.
const (
	// DefaultMaxMapLength is how many instances a mapped task may have unless its
	// max_map_length says otherwise: Airflow's default max_map_length.
	DefaultMaxMapLength = 1024

	// MaxMapLength is the largest max_map_length. Each instance is a record in Consul and a
	// Nomad job per try; a run of this many is a few minutes of registrations on one leader.
	MaxMapLength = 4096
)

// MapOver names the upstream output a mapped task's instances are created from.
type MapOver struct {
	Task string `json:"task"` // the upstream task, a task without instances
	Key  string `json:"key"`  // the key of its outputs holding a list or an object
}

// String returns the reference as written: tasks.TASK.outputs.KEY.
func (m *MapOver) String() string {
	return fmt.Sprintf("%s.%s.outputs.%s", outputsRoot, m.Task, m.Key)
}

// Collection returns the instance keys and each.value of every instance a mapped task has,
// given its upstream's outputs: for a list, the indexes 0, 1, ... (Airflow's map indexes) with
// the elements; for an object, its keys, sorted, with their values. The error says, for
// people, why there is nothing to map: the key is missing, or holds neither a list nor an
// object, or an object key cannot be part of a task instance name.
func (m *MapOver) Collection(outputs json.RawMessage) ([]string, map[string]json.RawMessage, error) {
	if outputs == nil {
		return nil, nil, fmt.Errorf("%s: task %q published no outputs", m, m.Task)
	}
	obj, err := decodeOutputs(m.Task, outputs)
	if err != nil {
		return nil, nil, err
	}
	raw, ok := obj[m.Key]
	if !ok {
		have := slices.Sorted(maps.Keys(obj))
		return nil, nil, missingOutput(m.Task, m.Key, have)
	}
	var list []json.RawMessage
	if json.Unmarshal(raw, &list) == nil && list != nil {
		keys := make([]string, len(list))
		values := make(map[string]json.RawMessage, len(list))
		for i, v := range list {
			keys[i] = strconv.Itoa(i)
			values[keys[i]] = v
		}
		return keys, values, nil
	}
	var byKey map[string]json.RawMessage
	if json.Unmarshal(raw, &byKey) != nil || byKey == nil {
		return nil, nil, fmt.Errorf("%s is %s, not a list or an object to map over", m, jsonKind(raw))
	}
	keys := slices.Sorted(maps.Keys(byKey))
	for _, k := range keys {
		if !namePattern.MatchString(k) {
			return nil, nil, fmt.Errorf("%s has the key %q, which cannot be part of a task name: keys must start with a letter or digit and have at most 64 letters, digits, \"_\" and \"-\"; publish a list to map over arbitrary values", m, k)
		}
	}
	return keys, byKey, nil
}

// jsonKind names the kind of a JSON value, for messages.
func jsonKind(raw json.RawMessage) string {
	var v any
	_ = json.Unmarshal(raw, &v)
	switch v.(type) {
	case string:
		return "a string"
	case float64:
		return "a number"
	case bool:
		return "a bool"
	case nil:
		return "null"
	}
	return "a value"
}

// InstanceName returns the name of instance key of task block name: "name[key]".
func InstanceName(name, key string) string { return name + "[" + key + "]" }

// Each is each.key and each.value of one instance of a mapped task.
type Each struct {
	Key   string
	Value json.RawMessage
}

// eachValue returns each for the render context, with the params rules for its value.
func eachValue(e *Each) (cty.Value, error) {
	v, err := jsonValue(e.Value)
	if err != nil {
		return cty.NilVal, fmt.Errorf("each.value of instance %q: %w", e.Key, err)
	}
	return cty.ObjectVal(map[string]cty.Value{"key": cty.StringVal(e.Key), "value": v}), nil
}

// mapTraversal reports whether a for_each expression names an upstream's output, and returns
// that reference.
func mapTraversal(expr hcl.Expression) (hcl.Traversal, bool) {
	tr, diags := hcl.AbsTraversalForExpr(expr)
	if diags.HasErrors() || tr.RootName() != outputsRoot {
		return nil, false
	}
	return tr, true
}

// eachSentinels are each.key and each.value of a mapped task while its block is evaluated:
// known only at run time, like run.id.
var eachSentinels = map[string]cty.Value{
	"key":   cty.StringVal(sentinel + "each.key" + sentinel),
	"value": cty.StringVal(sentinel + "each.value" + sentinel),
}

// checkMapped reports mapped tasks whose upstream does not exist, has instances of its own, or
// is the task itself, and adds the upstream to the depends_on of the others.
func checkMapped(dag string, blocks map[string]*taskBlock, order []*taskBlock) hcl.Diagnostics {
	var diags hcl.Diagnostics
	names := slices.Sorted(maps.Keys(blocks))
	for _, tb := range order {
		for _, t := range tb.instances {
			if t.MapOver == nil {
				continue
			}
			bad := func(summary, detail string) {
				diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: summary, Detail: detail, Subject: tb.mapRange.Ptr()})
			}
			up := blocks[t.MapOver.Task]
			switch {
			case up == nil:
				bad("Mapping over an unknown task", fmt.Sprintf("Task %q maps over %s, but DAG %q has no task %q.%s", t.Name, t.MapOver, dag, t.MapOver.Task, didYouMean(t.MapOver.Task, names)))
			case up == tb:
				bad("Task maps over its own outputs", fmt.Sprintf("Task %q maps over its own outputs, which exist only once it succeeded. Map over an upstream task's outputs.", t.Name))
			case len(up.instances) != 1 || up.instances[0].Name != up.name || up.instances[0].MapOver != nil:
				bad("Mapping over a task with instances", fmt.Sprintf("Task %q maps over the outputs of %q, which has instances (for_each) of its own. Map over the outputs of a task without for_each, such as one that merges them.", t.Name, t.MapOver.Task))
			default:
				if !slices.Contains(t.DependsOn, up.name) {
					t.DependsOn = append(t.DependsOn, up.name)
					slices.Sort(t.DependsOn)
				}
			}
		}
	}
	return diags
}

// mapping is what a task block's for_each and max_map_length say about mapping over outputs.
type mapping struct {
	over *MapOver
	max  int
}

// decodeMapping reads the for_each of task block tb when it names an upstream's outputs,
// setting tb.mapRange, and its max_map_length. It returns nil when the block is not mapped
// over outputs or the reference is malformed (reported).
func (f *fileScope) decodeMapping(tb *taskBlock, content *hcl.BodyContent) (*mapping, hcl.Diagnostics) {
	var diags hcl.Diagnostics
	a := content.Attributes["for_each"]
	limit := content.Attributes["max_map_length"]
	var tr hcl.Traversal
	if a != nil {
		tr, _ = mapTraversal(a.Expr)
	}
	if tr == nil {
		if limit != nil {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError, Summary: "max_map_length without mapping",
				Detail:  fmt.Sprintf("max_map_length bounds the instances of a task mapped over an upstream's outputs (for_each = tasks.NAME.outputs.KEY); task %q is not. Remove it.", tb.name),
				Subject: limit.NameRange.Ptr(),
			})
		}
		return nil, diags
	}
	rng := a.Expr.Range()
	tb.mapRange = &rng
	ref, ok := parseOutputRef(tr)
	if !ok {
		return nil, append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError, Summary: "Invalid reference to task outputs",
			Detail:  fmt.Sprintf("A task is mapped over an upstream's output with for_each = tasks.NAME.outputs.KEY, such as tasks.list_files.outputs.files, not %s.", traversalString(tr)),
			Subject: rng.Ptr(),
		})
	}
	m := &mapping{over: &MapOver{Task: ref.task, Key: ref.key}, max: DefaultMaxMapLength}
	if limit != nil {
		ev := &evaluator{file: f, ctx: f.evalContext(nil)}
		ev.int(limit, refScope{}, 1, MaxMapLength, &m.max)
		diags = append(diags, ev.diags...)
	}
	return m, diags
}
