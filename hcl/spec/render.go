package spec

import (
	"encoding/json"
	"fmt"
	"maps"
	"strconv"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
	ctyjson "github.com/zclconf/go-cty/cty/json"
)

// Runtime is what one task attempt's templates may refer to.
type Runtime struct {
	RunID             string
	RunType           string // "scheduled", "manual" or "backfill"
	LogicalDate       time.Time
	DataIntervalStart time.Time
	DataIntervalEnd   time.Time
	Params            map[string]json.RawMessage // the run's param values, as JSON
	Try               int                        // 1 for the first attempt

	// Outputs holds the outputs of the run's task instances that published some, by task
	// instance name, each a JSON object: what tasks.NAME.outputs.KEY resolves from.
	Outputs map[string]json.RawMessage

	// AssetEvents is run.asset_events: the JSON list of the asset events that started an
	// asset-triggered run; "[]" renders for other runs.
	AssetEvents json.RawMessage

	// Each is each.key and each.value of an instance of a task mapped over outputs; nil for
	// other tasks, whose each was resolved when the DAG was loaded.
	Each *Each

	// Callback holds callback.NAME (CallbackFields) for the task of a callback; nil for others.
	Callback map[string]string
}

// Render returns a copy of task t of DAG d with the runtime values of one attempt filled into
// its command, args, image, env, config and artifacts. Times render as RFC 3339 in UTC.
func (d *DAG) Render(t *Task, rt Runtime) (*Task, error) {
	ctx, err := d.runtimeContext(t, rt)
	if err != nil {
		return nil, err
	}
	out := *t
	render := func(field, tmpl string) (string, error) {
		s, err := renderTemplate(tmpl, ctx)
		if err != nil {
			return "", fmt.Errorf("render %s of task %q: %w", field, t.Name, err)
		}
		return s, nil
	}
	if out.Command, err = render("command", t.Command); err != nil {
		return nil, err
	}
	if out.Image, err = render("image", t.Image); err != nil {
		return nil, err
	}
	out.Args = make([]string, len(t.Args))
	for i, a := range t.Args {
		if out.Args[i], err = render("args", a); err != nil {
			return nil, err
		}
	}
	if t.Env != nil {
		out.Env = make(map[string]string, len(t.Env))
		for k, v := range t.Env {
			if out.Env[k], err = render("env "+k, v); err != nil {
				return nil, err
			}
		}
	}
	if len(t.Config) > 0 {
		var tree any
		if err := json.Unmarshal(t.Config, &tree); err != nil {
			return nil, fmt.Errorf("decode config of task %q: %w", t.Name, err)
		}
		tree, err = mapStrings(tree, func(s string) (string, error) { return render("config", s) })
		if err != nil {
			return nil, err
		}
		if out.Config, err = json.Marshal(tree); err != nil {
			return nil, fmt.Errorf("encode config of task %q: %w", t.Name, err)
		}
	}
	if out.Artifacts, err = renderArtifacts(t.Artifacts, render); err != nil {
		return nil, err
	}
	if out.Sensor, err = renderSensor(t.Sensor, render); err != nil {
		return nil, err
	}
	return &out, nil
}

func (d *DAG) runtimeContext(t *Task, rt Runtime) (*hcl.EvalContext, error) {
	params := map[string]cty.Value{}
	for _, p := range d.Params {
		raw, ok := rt.Params[p.Name]
		if !ok {
			raw = p.Default
		}
		if raw == nil {
			return nil, fmt.Errorf("param %q has no value", p.Name)
		}
		ty, err := ctyjson.ImpliedType(raw)
		if err != nil {
			return nil, fmt.Errorf("param %q: %w", p.Name, err)
		}
		if !ty.IsPrimitiveType() {
			// A list or map cannot be interpolated into a string; tasks get it as JSON text.
			params[p.Name] = cty.StringVal(string(raw))
			continue
		}
		v, err := ctyjson.Unmarshal(raw, ty)
		if err != nil {
			return nil, fmt.Errorf("param %q: %w", p.Name, err)
		}
		params[p.Name] = v
	}
	tasks, err := outputsValue(t, rt.Outputs)
	if err != nil {
		return nil, err
	}
	vars := map[string]cty.Value{outputsRoot: tasks}
	if rt.Each != nil {
		if vars["each"], err = eachValue(rt.Each); err != nil {
			return nil, err
		}
	}
	date := func(t time.Time) cty.Value { return cty.StringVal(t.UTC().Format(time.RFC3339)) }
	ctx := &hcl.EvalContext{Variables: map[string]cty.Value{
		"run": cty.ObjectVal(map[string]cty.Value{
			"id":                  cty.StringVal(rt.RunID),
			"type":                cty.StringVal(rt.RunType),
			"logical_date":        date(rt.LogicalDate),
			"data_interval_start": date(rt.DataIntervalStart),
			"data_interval_end":   date(rt.DataIntervalEnd),
			"asset_events":        cty.StringVal(assetEventsText(rt.AssetEvents)),
		}),
		"task":   cty.ObjectVal(map[string]cty.Value{"name": cty.StringVal(t.Name), "try": cty.StringVal(strconv.Itoa(rt.Try))}),
		"dag":    cty.ObjectVal(map[string]cty.Value{"name": cty.StringVal(d.Name)}),
		"params": cty.ObjectVal(params),
	}}
	if rt.Callback != nil {
		cb := map[string]cty.Value{}
		for _, f := range CallbackFields {
			cb[f] = cty.StringVal(rt.Callback[f])
		}
		vars["callback"] = cty.ObjectVal(cb)
	}
	maps.Copy(ctx.Variables, vars)
	return ctx, nil
}

// assetEventsText is run.asset_events for events, a JSON list or nil.
func assetEventsText(events json.RawMessage) string {
	if len(events) == 0 {
		return "[]"
	}
	return string(events)
}

// renderTemplate evaluates a stored template (see templateString) in ctx.
func renderTemplate(tmpl string, ctx *hcl.EvalContext) (string, error) {
	expr, diags := hclsyntax.ParseTemplate([]byte(tmpl), "template", hcl.InitialPos)
	if diags.HasErrors() {
		return "", diags
	}
	v, diags := expr.Value(ctx)
	if diags.HasErrors() {
		return "", diags
	}
	s, err := convert.Convert(v, cty.String)
	if err != nil || s.IsNull() {
		return "", fmt.Errorf("value is not a string")
	}
	return s.AsString(), nil
}

// mapStrings replaces every string in a decoded JSON tree with fn's result, in place.
func mapStrings(v any, fn func(string) (string, error)) (any, error) {
	switch x := v.(type) {
	case string:
		return fn(x)
	case []any:
		for i := range x {
			r, err := mapStrings(x[i], fn)
			if err != nil {
				return nil, err
			}
			x[i] = r
		}
	case map[string]any:
		for k := range x {
			r, err := mapStrings(x[k], fn)
			if err != nil {
				return nil, err
			}
			x[k] = r
		}
	}
	return v, nil
}
