package spec

import (
	"fmt"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
)

// A group block (Airflow's TaskGroup) gathers tasks under one name: its tasks are named
// "GROUP.TASK", a depends_on may name the whole group, the group may carry a defaults block
// (over the DAG's) and a depends_on of its own (every task of the group waits for it), and a
// static for_each makes one copy of its tasks per key, named "GROUP[KEY].TASK", with each.key
// and each.value visible inside. Groups do not nest.
var groupSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "depends_on"}, {Name: "for_each"}},
	Blocks: []hcl.BlockHeaderSchema{
		{Type: "defaults"},
		{Type: "task", LabelNames: []string{"name"}},
		{Type: "group", LabelNames: []string{"name"}},
	},
}

// groupInstance is one copy of a group's tasks: the group itself, or one key of its for_each.
type groupInstance struct {
	prefix string               // "GROUP" or "GROUP[KEY]": what its task names start with
	each   map[string]cty.Value // nil for a group without for_each
}

// decodeGroups decodes a DAG's group blocks over base, the DAG's defaults. It returns every
// task block of every group instance, named by the tasks' full names, and, by group name and
// by instance name ("GROUP[KEY]"), the task blocks each holds: what a depends_on naming it
// waits for. seen holds the DAG's task names, which a group may not take.
func (f *fileScope) decodeGroups(blocks hcl.Blocks, base *Task, params []string, seen map[string]hcl.Range) (map[string][]*taskBlock, []*taskBlock, hcl.Diagnostics) {
	groups := map[string][]*taskBlock{}
	var all []*taskBlock
	var diags hcl.Diagnostics
	for _, b := range blocks {
		name := b.Labels[0]
		if d := checkName("group", name, b.LabelRanges[0]); d != nil {
			diags = append(diags, d)
			continue
		}
		if prev, ok := seen[name]; ok {
			diags = append(diags, duplicate("task or group", name, b.DefRange, prev))
			continue
		}
		seen[name] = b.DefRange
		content, cdiags := bodyContent(b.Body, groupSchema)
		diags = append(diags, cdiags...)
		for _, inner := range content.Blocks.OfType("group") {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError, Summary: "Nested group",
				Detail:  fmt.Sprintf("Group %q holds group %q, but groups do not nest. Declare %q beside %q in the dag block, and make it depend on %q if it must run after it.", name, inner.Labels[0], inner.Labels[0], name, name),
				Subject: inner.DefRange.Ptr(),
			})
		}
		taskBlocks := content.Blocks.OfType("task")
		if len(taskBlocks) == 0 {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError, Summary: "Group without tasks",
				Detail:  fmt.Sprintf("Group %q has no task blocks. Add a task, or remove the group.", name),
				Subject: b.DefRange.Ptr(),
			})
			continue
		}
		if content.Attributes["for_each"] != nil {
			var kept hcl.Blocks
			for _, tb := range taskBlocks {
				if sb, ok := tb.Body.(*hclsyntax.Body); ok && sb.Attributes["for_each"] != nil {
					diags = append(diags, &hcl.Diagnostic{
						Severity: hcl.DiagError, Summary: "for_each in a mapped group",
						Detail:  fmt.Sprintf("Task %q has a for_each of its own inside group %q, which has one too, and each would mean both. Map the group or the task, not both.", tb.Labels[0], name),
						Subject: sb.Attributes["for_each"].SrcRange.Ptr(),
					})
					continue
				}
				kept = append(kept, tb)
			}
			taskBlocks = kept
		}
		insts, idiags := f.groupInstances(name, content)
		diags = append(diags, idiags...)
		siblings := map[string]bool{}
		for _, tb := range taskBlocks {
			siblings[tb.Labels[0]] = true
		}
		for _, in := range insts {
			tbs, tdiags := f.decodeGroupInstance(name, in, content, taskBlocks, siblings, base, params)
			diags = append(diags, tdiags...)
			groups[name] = append(groups[name], tbs...)
			if in.prefix != name {
				groups[in.prefix] = tbs
			}
			all = append(all, tbs...)
		}
	}
	return groups, all, diags
}

// groupInstances returns the instances of group name: one, or one per key of its for_each.
func (f *fileScope) groupInstances(name string, content *hcl.BodyContent) ([]groupInstance, hcl.Diagnostics) {
	a := content.Attributes["for_each"]
	if a == nil {
		return []groupInstance{{prefix: name}}, nil
	}
	ev := &evaluator{file: f, ctx: f.evalContext(nil)}
	var insts []groupInstance
	if v, ok := ev.value(a, refScope{}); ok {
		keys, err := forEachKeys(v)
		if err != nil {
			ev.fail(a, "Invalid for_each", err)
		}
		for _, k := range keys {
			if !namePattern.MatchString(k.key) {
				ev.fail(a, "Invalid for_each key", fmt.Errorf("the key %q cannot be part of a task name: keys must start with a letter or digit and contain only letters, digits, \"_\" and \"-\"", k.key))
				continue
			}
			insts = append(insts, groupInstance{
				prefix: fmt.Sprintf("%s[%s]", name, k.key),
				each:   map[string]cty.Value{"key": cty.StringVal(k.key), "value": k.value},
			})
		}
	}
	return insts, ev.diags
}

// decodeGroupInstance decodes the tasks of one instance of group name. Inside a group a
// depends_on element naming a task of the same group means that task of the same instance;
// any other name is looked up in the DAG, where "OTHER" is a whole group and "OTHER.TASK" one
// task of it.
func (f *fileScope) decodeGroupInstance(name string, in groupInstance, content *hcl.BodyContent, taskBlocks hcl.Blocks, siblings map[string]bool, base *Task, params []string) ([]*taskBlock, hcl.Diagnostics) {
	var diags hcl.Diagnostics
	gbase := *base
	gbase.Env = copyMap(base.Env)
	gbase.Args = append([]string(nil), base.Args...)
	ev := &evaluator{file: f, ctx: f.evalContext(in.each, params...)}
	scope := refScope{each: in.each != nil, params: params}
	for i, d := range content.Blocks.OfType("defaults") {
		if i > 0 {
			ev.diags = append(ev.diags, &hcl.Diagnostic{
				Severity: hcl.DiagError, Summary: "Duplicate defaults block",
				Detail:  fmt.Sprintf("Group %q has more than one defaults block. Merge them.", name),
				Subject: d.DefRange.Ptr(),
			})
			continue
		}
		dc, ddiags := bodyContent(d.Body, defaultsSchema)
		ev.diags = append(ev.diags, ddiags...)
		ev.settings(&gbase, dc, scope, false)
	}
	var groupDeps []dependency
	if a := content.Attributes["depends_on"]; a != nil {
		groupDeps = ev.dependencies(a, scope)
	}
	diags = append(diags, ev.diags...)

	var out []*taskBlock
	for _, b := range taskBlocks {
		task := b.Labels[0]
		if d := checkName("task", task, b.LabelRanges[0]); d != nil {
			diags = append(diags, d)
			continue
		}
		tb, tdiags := f.decodeTask(b, &gbase, params, in.each)
		diags = append(diags, tdiags...)
		tb.name = in.prefix + "." + task
		for i, t := range tb.instances {
			deps := tb.deps[i] // decodeTask keeps one list per instance
			for j, dep := range deps {
				if sibling, _, _ := strings.Cut(dep.name, "["); siblings[sibling] {
					deps[j].name = in.prefix + "." + dep.name
				}
			}
			tb.deps[i] = append(deps, groupDeps...)
			t.Name, t.Group = in.prefix+"."+t.Name, name
		}
		out = append(out, tb)
	}
	return out, diags
}
