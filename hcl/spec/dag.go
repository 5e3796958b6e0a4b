package spec

import (
	"encoding/json"
	"fmt"
	"maps"
	"math/big"
	"slices"
	"sort"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/ext/typeexpr"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
	ctyjson "github.com/zclconf/go-cty/cty/json"

	"github.com/dagflow/dagflow/schedule"
)

// Defaults for what a DAG or task leaves unset. They follow Airflow's where Airflow has one, so
// DAGs ported from it behave the same, and Nomad's for resources and priority.
const (
	DefaultTimezone       = "UTC"
	DefaultCatchup        = CatchupNone // no surprise backfill when a DAG is first applied
	DefaultMaxActiveRuns  = 16
	DefaultMaxActiveTasks = 16
	DefaultTriggerRule    = "all_success"
	DefaultDriver         = DriverRawExec // the driver the dev stack runs; production DAGs name theirs
	DefaultRetryDelay     = 5 * time.Minute
	DefaultPriority       = 50 // Nomad's default job priority
	DefaultCPU            = 100
	DefaultMemoryMB       = 300
)

var dagSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "description"}, {Name: "tags"}, {Name: "schedule"}, {Name: "timezone"},
		{Name: "start_date"}, {Name: "end_date"}, {Name: "catchup"},
		{Name: "max_active_runs"}, {Name: "max_active_tasks"}, {Name: "paused"},
		{Name: "schedule_on"},
	},
	Blocks: append([]hcl.BlockHeaderSchema{
		{Type: "param", LabelNames: []string{"name"}},
		{Type: "defaults"},
		{Type: "task", LabelNames: []string{"name"}},
		{Type: "sensor", LabelNames: []string{"name"}},
		{Type: "group", LabelNames: []string{"name"}},
	}, callbackBlocks...),
}

var paramSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "type"}, {Name: "default"}, {Name: "description"}, {Name: "required"}},
}

// settingAttrs are the task attributes a defaults block may set for every task.
var settingAttrs = []string{
	"queue", "driver", "command", "args", "image", "config", "env", "trigger_rule",
	"retries", "retry_delay", "retry_exponential_backoff", "max_retry_delay", "timeout", "priority",
	"queued_timeout",
}

// runtimeAttr reports whether an attribute is evaluated per attempt (see runtimeAttrs).
func runtimeAttr(name string) bool {
	switch name {
	case "command", "args", "image", "env", "config":
		return true
	}
	return false
}

var defaultsSchema, taskSchema = settingsSchema(), withBlocks(settingsSchema("depends_on", "for_each", "max_map_length", "outlets"), storageBlocks...)

func settingsSchema(extra ...string) *hcl.BodySchema {
	s := &hcl.BodySchema{Blocks: append(append([]hcl.BlockHeaderSchema{{Type: "resources"}}, secretBlocks...), callbackBlocks...)}
	for _, name := range append(append([]string{}, settingAttrs...), extra...) {
		s.Attributes = append(s.Attributes, hcl.AttributeSchema{Name: name})
	}
	return s
}

var resourcesSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "cpu"}, {Name: "memory"}, {Name: "memory_max"}, {Name: "cores"}},
	Blocks:     []hcl.BlockHeaderSchema{{Type: "device", LabelNames: []string{"name"}}},
}

// decodeDAG decodes and validates one dag block. It returns nil only when the block cannot be
// named; otherwise it returns what it could decode alongside the diagnostics.
func (f *fileScope) decodeDAG(b *hclsyntax.Block, queues map[string]*Queue) (*DAG, hcl.Diagnostics) {
	d := &DAG{
		Name:           b.Labels[0],
		Timezone:       DefaultTimezone,
		Catchup:        DefaultCatchup,
		MaxActiveRuns:  DefaultMaxActiveRuns,
		MaxActiveTasks: DefaultMaxActiveTasks,
		Source:         f.blockSource(b),
		DeclRange:      b.DefRange(),
	}
	var diags hcl.Diagnostics
	if diag := checkName("dag", d.Name, b.LabelRanges[0]); diag != nil {
		diags = append(diags, diag)
	}
	content, cdiags := bodyContent(b.Body, dagSchema)
	diags = append(diags, cdiags...)
	ev := &evaluator{file: f, ctx: f.evalContext(nil)}

	ev.str(content.Attributes["description"], refScope{}, &d.Description)
	ev.strList(content.Attributes["tags"], refScope{}, &d.Tags)
	ev.bool(content.Attributes["paused"], refScope{}, &d.Paused)
	ev.positiveInt(content.Attributes["max_active_runs"], refScope{}, &d.MaxActiveRuns)
	ev.positiveInt(content.Attributes["max_active_tasks"], refScope{}, &d.MaxActiveTasks)
	if a := content.Attributes["catchup"]; ev.str(a, refScope{}, &d.Catchup) {
		ev.oneOf(a, "catchup", d.Catchup, []string{CatchupAll, CatchupLatest, CatchupNone})
	}

	loc := time.UTC
	if a := content.Attributes["timezone"]; ev.str(a, refScope{}, &d.Timezone) {
		l, err := schedule.LoadLocation(d.Timezone)
		if err != nil {
			ev.fail(a, "Invalid timezone", err)
		} else {
			loc = l
		}
	}
	var startText, endText string
	startAttr, endAttr := content.Attributes["start_date"], content.Attributes["end_date"]
	if ev.str(startAttr, refScope{}, &startText) {
		t, err := schedule.ParseDate(startText, loc)
		if err != nil {
			ev.fail(startAttr, "Invalid start_date", err)
		}
		d.StartDate = t.UTC()
	}
	if ev.str(endAttr, refScope{}, &endText) {
		t, err := schedule.ParseDate(endText, loc)
		if err != nil {
			ev.fail(endAttr, "Invalid end_date", err)
		} else if !d.StartDate.IsZero() && !t.After(d.StartDate) {
			ev.fail(endAttr, "Invalid end_date", fmt.Errorf("the end_date %s is not after the start_date %s", t.UTC().Format(time.RFC3339), d.StartDate.Format(time.RFC3339)))
		}
		d.EndDate = t.UTC()
	}
	if a := content.Attributes["schedule"]; ev.str(a, refScope{}, &d.Schedule) && d.Schedule != "" {
		if _, err := schedule.Parse(d.Schedule, loc, d.StartDate); err != nil {
			ev.fail(a, "Invalid schedule", err)
		}
		if startAttr == nil {
			ev.diags = append(ev.diags, &hcl.Diagnostic{
				Severity: hcl.DiagError, Summary: "Missing start_date",
				Detail:  fmt.Sprintf("DAG %q has a schedule, so it needs a start_date: the first logical date it may run for, such as start_date = \"2026-01-01\".", d.Name),
				Subject: a.NameRange.Ptr(),
			})
		}
	}
	if a := content.Attributes["schedule_on"]; a != nil {
		d.ScheduleOn = ev.scheduleOn(a)
	}
	ev.callbacks(content, refScope{}, callbackSet{&d.OnFailure, &d.OnSuccess, &d.OnRetry, &d.Deadline})
	diags = append(diags, ev.diags...)

	params, pdiags := f.decodeParams(content.Blocks.OfType("param"))
	d.Params = params
	diags = append(diags, pdiags...)
	paramNames := make([]string, len(params))
	for i, p := range params {
		paramNames[i] = p.Name
	}

	if d.Schedule != "" || d.ScheduleOn != nil {
		for _, p := range params {
			if p.Required {
				diags = append(diags, &hcl.Diagnostic{
					Severity: hcl.DiagError, Summary: "Required param in a scheduled DAG",
					Detail:  fmt.Sprintf("DAG %q has a schedule, and scheduled runs have no one to supply param %q. Give it a default instead of required = true.", d.Name, p.Name),
					Subject: p.DeclRange.Ptr(),
				})
			}
		}
	}

	tasks, tdiags := f.decodeTasks(d, content.Blocks, paramNames, queues)
	d.Tasks = tasks
	diags = append(diags, tdiags...)
	diags = append(diags, checkCallbackQueues(d, queues)...)
	return d, diags
}

func (f *fileScope) decodeParams(blocks hcl.Blocks) ([]*Param, hcl.Diagnostics) {
	var diags hcl.Diagnostics
	var params []*Param
	seen := map[string]hcl.Range{}
	for _, b := range blocks {
		p := &Param{Name: b.Labels[0], Type: "string", DeclRange: b.DefRange}
		if !identPattern.MatchString(p.Name) {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError, Summary: "Invalid param name",
				Detail:  fmt.Sprintf("The param name %q cannot be used as params.%s: start with a letter or \"_\" and use only letters, digits and \"_\".", p.Name, p.Name),
				Subject: b.LabelRanges[0].Ptr(),
			})
			continue
		}
		if prev, ok := seen[p.Name]; ok {
			diags = append(diags, duplicate("param", p.Name, b.DefRange, prev))
			continue
		}
		seen[p.Name] = b.DefRange
		content, cdiags := bodyContent(b.Body, paramSchema)
		diags = append(diags, cdiags...)
		ev := &evaluator{file: f, ctx: f.evalContext(nil)}
		s := refScope{}
		ev.str(content.Attributes["description"], s, &p.Description)
		ev.bool(content.Attributes["required"], s, &p.Required)
		ty := cty.String
		if a := content.Attributes["type"]; a != nil {
			t, tdiags := typeexpr.Type(a.Expr)
			ev.diags = append(ev.diags, tdiags...)
			if !tdiags.HasErrors() {
				ty = t
				p.Type = typeexpr.TypeString(t)
			}
		}
		if a := content.Attributes["default"]; a != nil {
			if p.Required {
				ev.fail(a, "Required param with a default", fmt.Errorf("param %q is required, so a trigger must give it a value and a default would never be used; remove default or required", p.Name))
			} else if v, ok := ev.value(a, s); ok {
				if cv, err := convert.Convert(v, ty); err != nil {
					ev.fail(a, "Invalid param default", fmt.Errorf("the default of param %q is not a %s: %s", p.Name, p.Type, err))
				} else if raw, err := ctyjson.Marshal(cv, ty); err != nil {
					ev.fail(a, "Invalid param default", err)
				} else {
					p.Default = raw
				}
			}
		} else if !p.Required {
			ev.diags = append(ev.diags, &hcl.Diagnostic{
				Severity: hcl.DiagError, Summary: "Param without a value",
				Detail:  fmt.Sprintf("Param %q has no default, so scheduled runs would have no value for it. Give it a default, or set required = true so that only manual triggers that supply it can start a run.", p.Name),
				Subject: b.DefRange.Ptr(),
			})
		}
		diags = append(diags, ev.diags...)
		params = append(params, p)
	}
	return params, diags
}

// taskBlock is a task block on its way to becoming task instances.
type taskBlock struct {
	name      string
	instances []*Task
	deps      [][]dependency // of each instance, by its index in instances
	outputs   [][]outputRef  // the task outputs each instance refers to, as deps
	mapRange  *hcl.Range     // the for_each of a task mapped over outputs; nil for others
}

// at returns element i of a list kept by instance index, nil when there is none.
func at[T any](list [][]T, i int) []T {
	if i < len(list) {
		return list[i]
	}
	return nil
}

// dependency is one depends_on element, resolved once every task block is known.
type dependency struct {
	name string
	rng  hcl.Range
}

func (f *fileScope) decodeTasks(d *DAG, blocks hcl.Blocks, params []string, queues map[string]*Queue) ([]*Task, hcl.Diagnostics) {
	var diags hcl.Diagnostics
	base := &Task{
		TriggerRule: DefaultTriggerRule,
		Queue:       DefaultQueue,
		Driver:      DefaultDriver,
		Resources:   Resources{CPU: DefaultCPU, MemoryMB: DefaultMemoryMB},
		RetryDelay:  Duration(DefaultRetryDelay),
		Priority:    DefaultPriority,
	}
	defaults := blocks.OfType("defaults")
	for i, b := range defaults {
		if i > 0 {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError, Summary: "Duplicate defaults block",
				Detail:  fmt.Sprintf("A DAG has at most one defaults block; the first is at %s. Merge them.", defaults[0].DefRange),
				Subject: b.DefRange.Ptr(),
			})
			continue
		}
		content, cdiags := bodyContent(b.Body, defaultsSchema)
		diags = append(diags, cdiags...)
		ev := &evaluator{file: f, ctx: f.evalContext(nil, params...)}
		ev.settings(base, content, refScope{params: params}, false)
		diags = append(diags, ev.diags...)
	}

	var order []*taskBlock
	byBlock := map[string]*taskBlock{}
	seen := map[string]hcl.Range{}
	for _, b := range append(blocks.OfType("task"), blocks.OfType("sensor")...) {
		name := b.Labels[0]
		if diag := checkName(b.Type, name, b.LabelRanges[0]); diag != nil {
			diags = append(diags, diag)
			continue
		}
		if prev, ok := seen[name]; ok {
			diags = append(diags, duplicate("task", name, b.DefRange, prev))
			continue
		}
		seen[name] = b.DefRange
		decode := func() (*taskBlock, hcl.Diagnostics) { return f.decodeTask(b, base, params, nil) }
		if b.Type == "sensor" {
			decode = func() (*taskBlock, hcl.Diagnostics) { return f.decodeSensor(b, base, params) }
		}
		tb, tdiags := decode()
		diags = append(diags, tdiags...)
		order = append(order, tb)
		byBlock[name] = tb
	}

	groups, gblocks, gdiags := f.decodeGroups(blocks.OfType("group"), base, params, seen)
	diags = append(diags, gdiags...)
	order = append(order, gblocks...)
	for _, tb := range gblocks {
		byBlock[tb.name] = tb
	}

	var tasks []*Task
	instances := map[string]*Task{}
	for _, tb := range order {
		for _, t := range tb.instances {
			instances[t.Name] = t
			tasks = append(tasks, t)
			if t.Sensor != nil && !t.Sensor.Command {
				continue // a sensor uses no queue
			}
			if _, ok := queues[t.Queue]; !ok {
				diags = append(diags, &hcl.Diagnostic{
					Severity: hcl.DiagError, Summary: "Unknown queue",
					Detail:  fmt.Sprintf("Task %q uses queue %q, which no queue block declares.%s Declare it with a queue block, or use the %q queue.", t.Name, t.Queue, didYouMean(t.Queue, slices.Sorted(maps.Keys(queues))), DefaultQueue),
					Subject: t.DeclRange.Ptr(),
				})
			}
			diags = append(diags, checkMounts(t, queues[t.Queue])...)
		}
	}
	names := slices.Sorted(maps.Keys(byBlock))
	for _, tb := range order {
		for i, t := range tb.instances {
			var set []string
			for _, dep := range at(tb.deps, i) {
				switch {
				case instances[dep.name] != nil:
					set = append(set, dep.name)
				case byBlock[dep.name] != nil:
					for _, u := range byBlock[dep.name].instances {
						set = append(set, u.Name)
					}
				case groups[dep.name] != nil:
					for _, gb := range groups[dep.name] {
						for _, u := range gb.instances {
							set = append(set, u.Name)
						}
					}
				default:
					diags = append(diags, &hcl.Diagnostic{
						Severity: hcl.DiagError, Summary: "Unknown dependency",
						Detail:  fmt.Sprintf("Task %q depends on %q, but DAG %q has no such task.%s", t.Name, dep.name, d.Name, didYouMean(dep.name, append(names, slices.Sorted(maps.Keys(instances))...))),
						Subject: dep.rng.Ptr(),
					})
				}
			}
			slices.Sort(set)
			t.DependsOn = slices.Compact(set)
		}
	}
	refs := map[*Task][]outputRef{}
	for _, tb := range order {
		for i, t := range tb.instances {
			if r := at(tb.outputs, i); len(r) > 0 {
				refs[t] = r
			}
		}
	}
	diags = append(diags, checkMapped(d.Name, byBlock, order)...)
	diags = append(diags, checkOutputRefs(d.Name, tasks, byBlock, refs)...)
	sort.Slice(tasks, func(i, j int) bool { return tasks[i].Name < tasks[j].Name })
	if len(tasks) == 0 && !diags.HasErrors() {
		diags = append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError, Summary: "DAG without tasks",
			Detail:  fmt.Sprintf("DAG %q has no task blocks, so its runs would do nothing. Add a task.", d.Name),
			Subject: d.DeclRange.Ptr(),
		})
	}
	return tasks, append(diags, checkCycles(d.Name, tasks)...)
}

// decodeTask decodes a task block into one instance, or one per for_each key.
//
// outer, when set, is the each of the mapped group the task is in (group.go): every instance
// sees it, and the task may not have a for_each of its own.
func (f *fileScope) decodeTask(b *hcl.Block, base *Task, params []string, outer map[string]cty.Value) (*taskBlock, hcl.Diagnostics) {
	name := b.Labels[0]
	tb := &taskBlock{name: name}
	content, diags := bodyContent(b.Body, taskSchema)
	type instance struct {
		key  string
		each map[string]cty.Value
	}
	insts := []instance{{each: outer}}
	mapOver, mdiags := f.decodeMapping(tb, content)
	diags = append(diags, mdiags...)
	if a := content.Attributes["for_each"]; a != nil && tb.mapRange == nil {
		ev := &evaluator{file: f, ctx: f.evalContext(nil)}
		insts = nil
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
				insts = append(insts, instance{k.key, map[string]cty.Value{"key": cty.StringVal(k.key), "value": k.value}})
			}
		}
		diags = append(diags, ev.diags...)
	}
	if tb.mapRange != nil {
		insts = []instance{{each: eachSentinels}}
	}
	for _, in := range insts {
		t := *base
		t.Name = name
		if in.key != "" {
			t.Name = fmt.Sprintf("%s[%s]", name, in.key)
		}
		t.DeclRange = b.DefRange
		t.Env = copyMap(base.Env)
		t.Args = append([]string(nil), base.Args...)
		ev := &evaluator{file: f, ctx: f.evalContext(in.each, params...)}
		var refs []outputRef
		s := refScope{each: in.each != nil, mapped: tb.mapRange != nil, params: params, outputs: &refs}
		ev.settings(&t, content, s, true)
		ev.storage(&t, content, s)
		tb.outputs = append(tb.outputs, refs)
		if mapOver != nil {
			t.MapOver, t.MaxMapLength = mapOver.over, mapOver.max
		}
		var deps []dependency
		if a := content.Attributes["depends_on"]; a != nil {
			deps = ev.dependencies(a, s)
		}
		tb.deps = append(tb.deps, deps)
		if a := content.Attributes["outlets"]; a != nil {
			ev.outlets(a, s, &t.Outlets)
		}
		diags = append(diags, ev.diags...)
		tb.instances = append(tb.instances, &t)
	}
	return tb, diags
}

type forEachKey struct {
	key   string
	value cty.Value
}

// forEachKeys returns the keys a for_each value expands to: the elements of a list or set of
// strings (each.value is the element too), or the keys of a map or object.
func forEachKeys(v cty.Value) ([]forEachKey, error) {
	ty := v.Type()
	if v.IsNull() || !v.IsWhollyKnown() {
		return nil, fmt.Errorf("the for_each value must be a list, set or map, not null")
	}
	var keys []forEachKey
	switch {
	case ty.IsListType() || ty.IsSetType() || ty.IsTupleType():
		seen := map[string]bool{}
		for it := v.ElementIterator(); it.Next(); {
			_, e := it.Element()
			s, err := convert.Convert(e, cty.String)
			if err != nil || s.IsNull() {
				return nil, fmt.Errorf("a for_each list needs strings or numbers, one per task; use a map to attach other values")
			}
			if seen[s.AsString()] {
				return nil, fmt.Errorf("the for_each list has %q twice; each element names one task", s.AsString())
			}
			seen[s.AsString()] = true
			keys = append(keys, forEachKey{s.AsString(), s})
		}
	case ty.IsMapType() || ty.IsObjectType():
		for it := v.ElementIterator(); it.Next(); {
			k, e := it.Element()
			keys = append(keys, forEachKey{k.AsString(), e})
		}
	default:
		return nil, fmt.Errorf("the for_each value must be a list, set or map, not %s", ty.FriendlyName())
	}
	return keys, nil
}

// evaluator evaluates attributes in one context and collects their diagnostics.
type evaluator struct {
	file  *fileScope
	ctx   *hcl.EvalContext
	diags hcl.Diagnostics
}

func (e *evaluator) fail(a *hcl.Attribute, summary string, err error) {
	e.diags = append(e.diags, &hcl.Diagnostic{
		Severity: hcl.DiagError, Summary: summary,
		Detail:  sentence(err.Error()),
		Subject: a.Expr.Range().Ptr(),
	})
}

// value evaluates an attribute; ok is false when it is absent, null or had errors.
func (e *evaluator) value(a *hcl.Attribute, s refScope) (cty.Value, bool) {
	if a == nil {
		return cty.NilVal, false
	}
	s.runtime = s.runtime || runtimeAttr(a.Name)
	s.attr = a.Name
	rdiags := e.file.checkRefs(a.Expr, s)
	if s.runtime {
		rdiags = append(rdiags, checkRuntimePlacement(a.Expr, a.Name, s.mapped)...)
	}
	if rdiags.HasErrors() {
		e.diags = append(e.diags, rdiags...)
		return cty.NilVal, false
	}
	ctx := e.ctx
	if s.outputs != nil {
		ctx = outputSentinels(ctx, a.Expr)
	}
	v, vdiags := a.Expr.Value(ctx)
	e.diags = append(e.diags, vdiags...)
	if vdiags.HasErrors() || v.IsNull() {
		return cty.NilVal, false
	}
	// Unknown values come only from variables and locals whose errors were reported already.
	if !v.IsWhollyKnown() {
		return cty.NilVal, false
	}
	return v, true
}

// convertTo evaluates an attribute and converts it to ty, reporting a type mismatch in the
// terms the attribute's documentation uses.
func (e *evaluator) convertTo(a *hcl.Attribute, s refScope, ty cty.Type) (cty.Value, bool) {
	v, ok := e.value(a, s)
	if !ok {
		return cty.NilVal, false
	}
	cv, err := convert.Convert(v, ty)
	if err != nil {
		e.fail(a, "Incorrect attribute value type", fmt.Errorf("the value of %s must be %s: %s", a.Name, typeDescription(ty), err))
		return cty.NilVal, false
	}
	return cv, true
}

func (e *evaluator) str(a *hcl.Attribute, s refScope, out *string) bool {
	v, ok := e.convertTo(a, s, cty.String)
	if !ok {
		return false
	}
	text := v.AsString()
	if s.runtime || runtimeAttr(a.Name) {
		t, err := templateString(text)
		if err != nil {
			e.fail(a, "Runtime value used in a function", err)
			return false
		}
		text = t
	}
	*out = text
	return true
}

func (e *evaluator) strList(a *hcl.Attribute, s refScope, out *[]string) bool {
	v, ok := e.convertTo(a, s, cty.List(cty.String))
	if !ok {
		return false
	}
	list := []string{}
	for it := v.ElementIterator(); it.Next(); {
		_, el := it.Element()
		if el.IsNull() {
			e.fail(a, "Null list element", fmt.Errorf("the list %s cannot hold null elements", a.Name))
			return false
		}
		text := el.AsString()
		if s.runtime || runtimeAttr(a.Name) {
			t, err := templateString(text)
			if err != nil {
				e.fail(a, "Runtime value used in a function", err)
				return false
			}
			text = t
		}
		list = append(list, text)
	}
	*out = list
	return true
}

func (e *evaluator) bool(a *hcl.Attribute, s refScope, out *bool) bool {
	v, ok := e.convertTo(a, s, cty.Bool)
	if ok {
		*out = v.True()
	}
	return ok
}

func (e *evaluator) int(a *hcl.Attribute, s refScope, min, max int, out *int) bool {
	v, ok := e.convertTo(a, s, cty.Number)
	if !ok {
		return false
	}
	bf := v.AsBigFloat()
	n, acc := bf.Int64()
	if acc != big.Exact || n < int64(min) || n > int64(max) {
		e.fail(a, "Value out of range", fmt.Errorf("the value of %s must be a whole number from %d to %d, not %s", a.Name, min, max, bf.Text('g', -1)))
		return false
	}
	*out = int(n)
	return true
}

func (e *evaluator) positiveInt(a *hcl.Attribute, s refScope, out *int) bool {
	return e.int(a, s, 1, 1<<20, out)
}

func (e *evaluator) duration(a *hcl.Attribute, s refScope, out *Duration) bool {
	var text string
	if !e.str(a, s, &text) {
		return false
	}
	d, err := time.ParseDuration(text)
	if err != nil || d < 0 {
		e.fail(a, "Invalid duration", fmt.Errorf("the value of %s must be a duration such as \"30s\", \"5m\" or \"1h30m\", not %q", a.Name, text))
		return false
	}
	*out = Duration(d)
	return true
}

func (e *evaluator) oneOf(a *hcl.Attribute, what, value string, allowed []string) {
	if slices.Contains(allowed, value) {
		return
	}
	e.fail(a, "Invalid "+what, fmt.Errorf("%q is not a valid %s; use one of %s.%s", value, what, quoteList(allowed), didYouMean(value, allowed)))
}

// settings applies the task attributes in content over t. Driver requirements are checked only
// on a whole task (final), not on a defaults block that a task completes.
func (e *evaluator) settings(t *Task, content *hcl.BodyContent, s refScope, final bool) {
	before := len(e.diags)
	at := content.Attributes
	if a := at["queue"]; e.str(a, s, &t.Queue) {
		if diag := checkName("queue", t.Queue, a.Expr.Range()); diag != nil {
			e.diags = append(e.diags, diag)
		}
	}
	if a := at["driver"]; e.str(a, s, &t.Driver) {
		e.oneOf(a, "driver", t.Driver, []string{DriverRawExec, DriverExec, DriverDocker})
	}
	if a := at["trigger_rule"]; e.str(a, s, &t.TriggerRule) {
		e.oneOf(a, "trigger_rule", t.TriggerRule, TriggerRules)
	}
	e.str(at["command"], s, &t.Command)
	e.strList(at["args"], s, &t.Args)
	e.str(at["image"], s, &t.Image)
	if a := at["env"]; a != nil {
		if v, ok := e.convertTo(a, s, cty.Map(cty.String)); ok {
			if t.Env == nil {
				t.Env = map[string]string{}
			}
			for k, el := range v.AsValueMap() {
				text, err := templateString(el.AsString())
				if err != nil {
					e.fail(a, "Runtime value used in a function", err)
					continue
				}
				t.Env[k] = text
			}
		}
	}
	if a := at["config"]; a != nil {
		if v, ok := e.value(a, s); ok {
			if !v.Type().IsObjectType() && !v.Type().IsMapType() {
				e.fail(a, "Incorrect attribute value type", fmt.Errorf("the config value must be an object of driver settings, such as { network_mode = \"host\" }"))
			} else if raw, err := configJSON(v); err != nil {
				e.fail(a, "Invalid config", err)
			} else {
				t.Config = mergeConfig(t.Config, raw)
			}
		}
	}
	e.int(at["retries"], s, 0, 100, &t.Retries)
	e.duration(at["retry_delay"], s, &t.RetryDelay)
	e.bool(at["retry_exponential_backoff"], s, &t.RetryExponentialBackoff)
	e.duration(at["max_retry_delay"], s, &t.MaxRetryDelay)
	e.duration(at["timeout"], s, &t.Timeout)
	e.queuedTimeout(at["queued_timeout"], s, t)
	e.int(at["priority"], s, 1, 100, &t.Priority)
	for i, rb := range content.Blocks.OfType("resources") {
		if i > 0 {
			e.diags = append(e.diags, &hcl.Diagnostic{
				Severity: hcl.DiagError, Summary: "Duplicate resources block",
				Detail:  "A task or defaults block has at most one resources block. Merge them.",
				Subject: rb.DefRange.Ptr(),
			})
			continue
		}
		rc, rdiags := bodyContent(rb.Body, resourcesSchema)
		e.diags = append(e.diags, rdiags...)
		e.int(rc.Attributes["cpu"], s, 1, 1<<20, &t.Resources.CPU)
		e.int(rc.Attributes["memory"], s, 10, 1<<24, &t.Resources.MemoryMB)
		e.resourceExtras(t, rc, s)
	}
	e.secrets(t, content, s)
	e.callbacks(content, s, callbackSet{&t.OnFailure, &t.OnSuccess, &t.OnRetry, &t.Deadline})
	// An attribute that failed to evaluate was already reported; checking the driver's needs
	// would only report it again as missing.
	if final && !e.diags[before:].HasErrors() {
		e.checkDriver(t, content)
	}
}

// checkDriver reports settings that the task's driver cannot run with.
func (e *evaluator) checkDriver(t *Task, content *hcl.BodyContent) {
	rng := t.DeclRange
	if a := content.Attributes["driver"]; a != nil {
		rng = a.Expr.Range()
	}
	bad := func(summary, detail string) {
		e.diags = append(e.diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: summary, Detail: detail, Subject: rng.Ptr()})
	}
	switch t.Driver {
	case DriverRawExec, DriverExec:
		if t.Command == "" {
			bad("Missing command", fmt.Sprintf("Task %q runs with the %s driver, which needs a command to run. Set command (and args), here or in the DAG's defaults block.", t.Name, t.Driver))
		}
		if t.Image != "" {
			bad("Image without docker", fmt.Sprintf("Task %q sets image, but runs with the %s driver, which does not use images. Set driver = \"docker\", or remove image.", t.Name, t.Driver))
		}
	case DriverDocker:
		if t.Image == "" {
			bad("Missing image", fmt.Sprintf("Task %q runs with the docker driver, which needs an image. Set image, here or in the DAG's defaults block.", t.Name))
		}
	}
	if t.MaxRetryDelay != 0 && t.MaxRetryDelay < t.RetryDelay {
		bad("Invalid max_retry_delay", fmt.Sprintf("Task %q has max_retry_delay %s, shorter than its retry_delay %s. Raise max_retry_delay or remove it.", t.Name, time.Duration(t.MaxRetryDelay), time.Duration(t.RetryDelay)))
	}
}

// dependencies evaluates depends_on element by element, so an unknown name is reported at the
// element that names it.
func (e *evaluator) dependencies(a *hcl.Attribute, s refScope) []dependency {
	s.attr = "depends_on"
	if rdiags := e.file.checkRefs(a.Expr, s); rdiags.HasErrors() {
		e.diags = append(e.diags, rdiags...)
		return nil
	}
	elems, diags := hcl.ExprList(a.Expr)
	if diags.HasErrors() {
		e.fail(a, "Incorrect attribute value type", fmt.Errorf("the depends_on value must be a list of task names, such as [\"extract\", \"fetch[eu]\"]"))
		return nil
	}
	deps := make([]dependency, 0, len(elems))
	for _, el := range elems {
		if name, ok := stringLiteral(el); ok {
			deps = append(deps, dependency{name, el.Range()})
			continue
		}
		v, vdiags := el.Value(e.ctx)
		e.diags = append(e.diags, vdiags...)
		if vdiags.HasErrors() {
			continue
		}
		sv, err := convert.Convert(v, cty.String)
		if err != nil || sv.IsNull() {
			e.diags = append(e.diags, &hcl.Diagnostic{
				Severity: hcl.DiagError, Summary: "Invalid dependency",
				Detail:  "Each element of depends_on is a task name in quotes, such as \"extract\" or \"fetch[eu]\".",
				Subject: el.Range().Ptr(),
			})
			continue
		}
		deps = append(deps, dependency{sv.AsString(), el.Range()})
	}
	return deps
}

// stringLiteral returns the text of a quoted string without interpolations, as most
// depends_on elements are, without evaluating it as a template.
func stringLiteral(expr hcl.Expression) (string, bool) {
	t, ok := expr.(*hclsyntax.TemplateExpr)
	if !ok || !t.IsStringLiteral() {
		return "", false
	}
	v := t.Parts[0].(*hclsyntax.LiteralValueExpr).Val
	if v.Type() != cty.String || v.IsNull() || !v.IsKnown() || v.IsMarked() {
		return "", false
	}
	return v.AsString(), true
}

func configJSON(v cty.Value) (json.RawMessage, error) {
	raw, err := ctyjson.Marshal(v, v.Type())
	if err != nil {
		return nil, err
	}
	var tree any
	if err := json.Unmarshal(raw, &tree); err != nil {
		return nil, err
	}
	tree, err = mapStrings(tree, templateString)
	if err != nil {
		return nil, err
	}
	return json.Marshal(tree)
}

// mergeConfig overlays a task's config keys on its defaults' config.
func mergeConfig(base, over json.RawMessage) json.RawMessage {
	if len(base) == 0 {
		return over
	}
	var b, o map[string]json.RawMessage
	if json.Unmarshal(base, &b) != nil || json.Unmarshal(over, &o) != nil {
		return over
	}
	for k, v := range o {
		b[k] = v
	}
	out, err := json.Marshal(b)
	if err != nil {
		return over
	}
	return out
}

func copyMap(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
