package spec

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	ctyjson "github.com/zclconf/go-cty/cty/json"
)

// Task outputs: a task's runtime attributes may use tasks.NAME.outputs.KEY, the value KEY of
// the JSON object an upstream task NAME published. The reference is checked when the DAG is
// loaded (NAME must run before the task) and resolved by Render for each attempt.

// outputRef is one tasks.NAME.outputs.KEY in a task's attributes.
type outputRef struct {
	task, key string
	rng       hcl.Range
}

// outputsRoot is the namespace of upstream tasks' outputs.
const outputsRoot = "tasks"

// parseOutputRef reads traversal tr, rooted at tasks, as tasks.NAME.outputs.KEY.
func parseOutputRef(tr hcl.Traversal) (outputRef, bool) {
	if len(tr) != 4 {
		return outputRef{}, false
	}
	var names [3]string
	for i, step := range tr[1:] {
		a, ok := step.(hcl.TraverseAttr)
		if !ok {
			return outputRef{}, false
		}
		names[i] = a.Name
	}
	if names[1] != "outputs" {
		return outputRef{}, false
	}
	return outputRef{task: names[0], key: names[2], rng: tr.SourceRange()}, true
}

// checkOutputRef checks the shape of a reference rooted at tasks and records it in s, for
// checkOutputRefs to check against the DAG's dependencies.
func (s refScope) checkOutputRef(tr hcl.Traversal) hcl.Diagnostics {
	rng := tr.SourceRange()
	bad := func(summary, detail string) hcl.Diagnostics {
		return hcl.Diagnostics{{Severity: hcl.DiagError, Summary: summary, Detail: detail, Subject: rng.Ptr()}}
	}
	if !s.runtime {
		return bad("Runtime value not allowed here", fmt.Sprintf("The value of %s is fixed when the DAG is applied, so it cannot use %s, which is known only when a task runs. Task outputs can be used in %s.", s.attr, traversalString(tr), runtimeAttrs))
	}
	if s.outputs == nil {
		return bad("Task outputs not allowed here", fmt.Sprintf("%s can be used only in a task block, which names the tasks it depends on; a defaults block applies to every task, including the one whose outputs it names.", traversalString(tr)))
	}
	ref, ok := parseOutputRef(tr)
	if !ok {
		return bad("Invalid reference to task outputs", fmt.Sprintf("A task's outputs are referred to as tasks.NAME.outputs.KEY, such as tasks.list_files.outputs.files, not %s.", traversalString(tr)))
	}
	*s.outputs = append(*s.outputs, ref)
	return nil
}

// checkOutputRefs reports the output references of task instances whose task does not run
// before them (directly or through other tasks), or does not exist.
func checkOutputRefs(dag string, tasks []*Task, blocks map[string]*taskBlock, refs map[*Task][]outputRef) hcl.Diagnostics {
	var diags hcl.Diagnostics
	byName := map[string]*Task{}
	for _, t := range tasks {
		byName[t.Name] = t
	}
	names := slices.Sorted(maps.Keys(blocks))
	for _, t := range tasks {
		if len(refs[t]) == 0 {
			continue
		}
		up := upstreamOf(t, byName)
		for _, ref := range refs[t] {
			tb := blocks[ref.task]
			bad := func(summary, detail string) {
				diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: summary, Detail: detail, Subject: ref.rng.Ptr()})
			}
			switch {
			case tb == nil:
				bad("Reference to an unknown task", fmt.Sprintf("Task %q uses the outputs of task %q, but DAG %q has no such task.%s", t.Name, ref.task, dag, didYouMean(ref.task, names)))
			case blockOf(t.Name) == ref.task:
				bad("Task uses its own outputs", fmt.Sprintf("Task %q uses tasks.%s.outputs.%s, its own outputs, which exist only once it succeeded. Move what needs them to a task that depends on it.", t.Name, ref.task, ref.key))
			default:
				for _, u := range tb.instances {
					if !up[u.Name] {
						bad("Outputs of a task that does not run before", fmt.Sprintf("Task %q uses the outputs of task %q, which is not upstream of it, so they may not exist when it runs. Add %q to its depends_on, or to that of a task it depends on.", t.Name, u.Name, ref.task))
						break
					}
				}
			}
		}
	}
	return diags
}

// upstreamOf returns every task instance t depends on, directly or through others.
func upstreamOf(t *Task, byName map[string]*Task) map[string]bool {
	seen := map[string]bool{}
	for next := slices.Clone(t.DependsOn); len(next) > 0; {
		name := next[len(next)-1]
		next = next[:len(next)-1]
		if seen[name] {
			continue
		}
		seen[name] = true
		if u := byName[name]; u != nil {
			next = append(next, u.DependsOn...)
		}
	}
	return seen
}

// blockOf returns the task block name of a task instance name: "fetch" for "fetch[eu]".
func blockOf(instance string) string {
	name, _, _ := strings.Cut(instance, "[")
	return name
}

// outputSentinels returns ctx with tasks bound, for the references expr makes, to sentinels
// (see evalContext) that templateString turns into ${tasks.NAME.outputs.KEY}.
func outputSentinels(ctx *hcl.EvalContext, expr hcl.Expression) *hcl.EvalContext {
	if literal(expr) {
		return ctx
	}
	byTask := map[string]map[string]cty.Value{}
	for _, tr := range expr.Variables() {
		if tr.RootName() != outputsRoot {
			continue
		}
		if ref, ok := parseOutputRef(tr); ok {
			if byTask[ref.task] == nil {
				byTask[ref.task] = map[string]cty.Value{}
			}
			byTask[ref.task][ref.key] = cty.StringVal(sentinel + outputsRoot + "." + ref.task + ".outputs." + ref.key + sentinel)
		}
	}
	if len(byTask) == 0 {
		return ctx
	}
	tasks := map[string]cty.Value{}
	for name, keys := range byTask {
		tasks[name] = cty.ObjectVal(map[string]cty.Value{"outputs": cty.ObjectVal(keys)})
	}
	child := ctx.NewChild()
	child.Variables = map[string]cty.Value{outputsRoot: cty.ObjectVal(tasks)}
	return child
}

// outputsValue returns the value tasks has when task t renders: for every reference t's
// templates make, the published value, with the params rules (strings, numbers and bools as
// they are, lists and maps as JSON text). A task with instances (for_each, or mapped over
// outputs) gives, for a key, a JSON object of each instance's value by instance key.
func outputsValue(t *Task, outputs map[string]json.RawMessage) (cty.Value, error) {
	refs := map[string]map[string]bool{}
	for _, tmpl := range templatesOf(t) {
		expr, diags := hclsyntax.ParseTemplate([]byte(tmpl), "template", hcl.InitialPos)
		if diags.HasErrors() {
			continue // reported by the rendering itself
		}
		for _, tr := range expr.Variables() {
			if ref, ok := parseOutputRef(tr); ok && tr.RootName() == outputsRoot {
				if refs[ref.task] == nil {
					refs[ref.task] = map[string]bool{}
				}
				refs[ref.task][ref.key] = true
			}
		}
	}
	if len(refs) == 0 {
		return cty.EmptyObjectVal, nil
	}
	tasks := map[string]cty.Value{}
	for _, name := range slices.Sorted(maps.Keys(refs)) {
		keys := map[string]cty.Value{}
		for _, key := range slices.Sorted(maps.Keys(refs[name])) {
			v, err := outputValue(name, key, outputs)
			if err != nil {
				return cty.NilVal, err
			}
			keys[key] = v
		}
		tasks[name] = cty.ObjectVal(map[string]cty.Value{"outputs": cty.ObjectVal(keys)})
	}
	return cty.ObjectVal(tasks), nil
}

// outputValue returns the value of key in the outputs of task (a task instance, or every
// instance of a task block).
func outputValue(task, key string, outputs map[string]json.RawMessage) (cty.Value, error) {
	if raw, ok := outputs[task]; ok {
		obj, err := decodeOutputs(task, raw)
		if err != nil {
			return cty.NilVal, err
		}
		v, ok := obj[key]
		if !ok {
			return cty.NilVal, missingOutput(task, key, slices.Sorted(maps.Keys(obj)))
		}
		return jsonValue(v)
	}
	byInstance := map[string]json.RawMessage{}
	var lacking []string
	for name, raw := range outputs {
		instKey, ok := strings.CutPrefix(name, task+"[")
		if !ok || !strings.HasSuffix(instKey, "]") {
			continue
		}
		obj, err := decodeOutputs(name, raw)
		if err != nil {
			return cty.NilVal, err
		}
		v, ok := obj[key]
		if !ok {
			lacking = append(lacking, name)
			continue
		}
		byInstance[strings.TrimSuffix(instKey, "]")] = v
	}
	if len(lacking) > 0 {
		sort.Strings(lacking)
		return cty.NilVal, fmt.Errorf("tasks.%s.outputs.%s: %s published no output %q", task, key, strings.Join(quoteAll(lacking), ", "), key)
	}
	if len(byInstance) == 0 {
		return cty.NilVal, fmt.Errorf("tasks.%s.outputs.%s: task %q published no outputs; its command writes them as a JSON object to the file named by DAGFLOW_OUTPUT", task, key, task)
	}
	b, err := json.Marshal(byInstance)
	if err != nil {
		return cty.NilVal, err
	}
	return cty.StringVal(string(b)), nil
}

func missingOutput(task, key string, have []string) error {
	if len(have) == 0 {
		return fmt.Errorf("tasks.%s.outputs.%s: task %q published an empty object, with no output %q", task, key, task, key)
	}
	return fmt.Errorf("tasks.%s.outputs.%s: task %q published no output %q, only %s.%s", task, key, task, key, strings.Join(quoteAll(have), ", "), didYouMean(key, have))
}

func decodeOutputs(task string, raw json.RawMessage) (map[string]json.RawMessage, error) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil {
		return nil, fmt.Errorf("decode the outputs of task %q: %w", task, err)
	}
	return obj, nil
}

// jsonValue converts a JSON value as params are converted: strings, numbers and bools to
// themselves, anything else to its JSON text.
func jsonValue(raw json.RawMessage) (cty.Value, error) {
	ty, err := ctyjson.ImpliedType(raw)
	if err != nil {
		return cty.NilVal, err
	}
	if !ty.IsPrimitiveType() {
		return cty.StringVal(string(raw)), nil
	}
	return ctyjson.Unmarshal(raw, ty)
}

// templatesOf returns every template of task t's runtime attributes.
func templatesOf(t *Task) []string {
	out := append([]string{t.Command, t.Image}, t.Args...)
	for _, k := range slices.Sorted(maps.Keys(t.Env)) {
		out = append(out, t.Env[k])
	}
	if len(t.Config) > 0 {
		var tree any
		if json.Unmarshal(t.Config, &tree) == nil {
			_, _ = mapStrings(tree, func(s string) (string, error) { out = append(out, s); return s, nil })
		}
	}
	return out
}
