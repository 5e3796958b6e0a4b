package plan_test

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/dagflow/dagflow/hcl/spec"
	"github.com/dagflow/dagflow/internal/golden"
	"github.com/dagflow/dagflow/plan"
	"github.com/dagflow/dagflow/schedule"
	"github.com/dagflow/dagflow/state"
)

// goldenFile compares got with testdata/NAME.golden (see package golden).
func goldenFile(t *testing.T, name string, got []byte) {
	t.Helper()
	golden.Check(t, filepath.Join("testdata", name+".golden"), got)
}

// mixedPlan is the plan of the Terraform-grammar example: a DAG created, one updated, a queue
// destroyed, with catch-up runs and a warning.
func mixedPlan() *plan.Plan {
	nightly := dag("nightly", func(d *spec.DAG) {
		d.Description = "Loads yesterday's orders."
		d.Schedule = "0 2 * * *"
		d.Catchup = spec.CatchupAll
		d.Params = nil
	})
	reportsOld := dag("reports")
	reportsNew := dag("reports", func(d *spec.DAG) {
		d.Schedule = "@hourly"
		d.Tasks = append(d.Tasks, task("notify", func(t *spec.Task) { t.DependsOn = []string{"load"} }))
	}, editTask("load", func(t *spec.Task) { t.Retries = 3 }))
	local := config([]*spec.DAG{nightly, reportsNew}, queue("default"))
	first := time.Date(2026, 10, 20, 2, 0, 0, 0, time.UTC)
	last := time.Date(2026, 11, 22, 2, 0, 0, 0, time.UTC)
	return &plan.Plan{
		Changes: plan.Diff(local, dagMap(reportsOld), queueMap(queue("default"), queue("gpu"))),
		Backlogs: []plan.Backlog{{DAG: "nightly", Catchup: spec.CatchupAll, Backlog: schedule.Backlog{
			Count: 34,
			First: schedule.Interval{Start: first, End: first.AddDate(0, 0, 1)},
			Last:  schedule.Interval{Start: last, End: last.AddDate(0, 0, 1)},
		}}},
		Warnings: []string{`queue "gpu": no ready Nomad node matches node_pool "gpu"; its tasks would wait until one joins`},
		Base:     &state.Catalog{Index: 42},
		Local:    local,
	}
}

// detailedPlan exercises the less common lines: nested attributes, params, removed tasks and
// attributes, escaping, queue creation, paused and manual DAGs, single and truncated backlogs.
func detailedPlan() *plan.Plan {
	etlOld := dag("etl", func(d *spec.DAG) { d.Description = "Old description." })
	etlNew := dag("etl", func(d *spec.DAG) {
		d.Params[0].Default = json.RawMessage(`"yesterday"`)
		d.Params = append(d.Params, &spec.Param{Name: "limit", Type: "number"})
		d.Tasks = d.Tasks[1:] // extract removed
	}, editTask("load", func(t *spec.Task) {
		t.Resources.CPU = 500
		t.Env = map[string]string{"DAY": "${params.day}", "my.key": "a \"quoted\"\nline"}
		t.Args = []string{"--since", "${run.logical_date}", "--home", "$${HOME}"}
		t.Config = json.RawMessage(`{"pid_mode":"host"}`)
	}))
	paused := dag("paused", func(d *spec.DAG) {
		d.Paused = true
		d.Params = nil
		d.Tasks = append(d.Tasks, task("each", func(t *spec.Task) {
			t.DependsOn, t.MapOver, t.MaxMapLength = []string{"load"}, &spec.MapOver{Task: "load", Key: "files"}, spec.DefaultMaxMapLength
		}))
	})
	manual := dag("manual", func(d *spec.DAG) { d.Schedule = ""; d.Timezone = "Europe/Paris"; d.Params = nil })
	gpu := queue("gpu", func(q *spec.Queue) {
		q.Description = "Nodes with a GPU."
		q.Datacenters = []string{"dc1", "dc2"}
		q.Constraints = []spec.Constraint{{Attribute: "${attr.gpu.count}", Operator: ">=", Value: "1"}}
		q.MaxRunning = 2
	})
	local := config([]*spec.DAG{etlNew, manual, paused}, queue("default"), gpu)
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		panic(err)
	}
	at := time.Date(2026, 11, 22, 0, 0, 0, 0, paris)
	return &plan.Plan{
		Changes: plan.Diff(local, dagMap(etlOld), queueMap(queue("default"))),
		Backlogs: []plan.Backlog{
			{DAG: "hourly", Catchup: spec.CatchupLatest, Backlog: schedule.Backlog{
				Count: 1, First: schedule.Interval{Start: at, End: at.Add(time.Hour)}, Last: schedule.Interval{Start: at, End: at.Add(time.Hour)},
			}},
			{DAG: "secondly", Catchup: spec.CatchupAll, Backlog: schedule.Backlog{
				Count: schedule.MaxBacklogCount, Truncated: true,
				First: schedule.Interval{Start: at, End: at.Add(time.Second)}, Last: schedule.Interval{Start: at.Add(time.Hour), End: at.Add(time.Hour + time.Second)},
			}},
		},
		Base:  &state.Catalog{Index: 7},
		Local: local,
	}
}

func TestRender(t *testing.T) {
	tests := []struct {
		name  string
		plan  *plan.Plan
		color bool
	}{
		{name: "mixed", plan: mixedPlan()},
		{name: "mixed_color", plan: mixedPlan(), color: true},
		{name: "detailed", plan: detailedPlan()},
		{name: "no_changes", plan: &plan.Plan{Base: &state.Catalog{}, Local: config(nil)}},
		{name: "no_changes_warnings", plan: &plan.Plan{
			Warnings: []string{"could not check queues against Nomad at http://127.0.0.1:4646, so queues no node serves are not reported: connection refused"},
			Base:     &state.Catalog{},
			Local:    config(nil),
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := plan.Render(&buf, tt.plan, tt.color); err != nil {
				t.Fatalf("Render: %v", err)
			}
			goldenFile(t, tt.name, buf.Bytes())
		})
	}
}

func TestSummary(t *testing.T) {
	tests := []struct {
		name                 string
		plan                 *plan.Plan
		add, change, destroy int
		empty                bool
	}{
		{name: "mixed", plan: mixedPlan(), add: 1, change: 1, destroy: 1},
		{name: "detailed", plan: detailedPlan(), add: 3, change: 1},
		{name: "empty", plan: &plan.Plan{}, empty: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			add, change, destroy := tt.plan.Summary()
			if add != tt.add || change != tt.change || destroy != tt.destroy {
				t.Errorf("Summary() = %d, %d, %d, want %d, %d, %d", add, change, destroy, tt.add, tt.change, tt.destroy)
			}
			if got := tt.plan.Empty(); got != tt.empty {
				t.Errorf("Empty() = %v, want %v", got, tt.empty)
			}
		})
	}
}

func TestRenderJSON(t *testing.T) {
	var buf bytes.Buffer
	if err := plan.RenderJSON(&buf, mixedPlan()); err != nil {
		t.Fatalf("RenderJSON: %v", err)
	}
	var got map[string]any
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, buf.String())
	}
	want := map[string]any{
		"format_version": "1",
		"changes": []any{
			map[string]any{"kind": "queue", "name": "gpu", "action": "delete", "attributes": []any{}},
			map[string]any{"kind": "dag", "name": "nightly", "action": "create", "attributes": []any{}},
			map[string]any{"kind": "dag", "name": "reports", "action": "update", "attributes": []any{
				map[string]any{"path": []any{"schedule"}, "before": "@daily", "after": "@hourly"},
				map[string]any{"path": []any{"task", "load", "retries"}, "before": 2.0, "after": 3.0},
				map[string]any{"path": []any{"task", "notify"}, "before": nil, "after": map[string]any{
					"name":         "notify",
					"depends_on":   []any{"load"},
					"trigger_rule": "all_success",
					"queue":        "default",
					"driver":       "raw_exec",
					"command":      "notify.sh",
					"env":          map[string]any{"DAY": "${params.day}"},
					"resources":    map[string]any{"cpu": 100.0, "memory_mb": 128.0},
					"retries":      0.0,
					"retry_delay":  "1m0s",
					"priority":     0.0,
				}},
			}},
		},
		"catch_up": []any{map[string]any{
			"dag": "nightly", "catchup": "all", "count": 34.0, "truncated": false,
			"first": map[string]any{"start": "2026-10-20T02:00:00Z", "end": "2026-10-21T02:00:00Z"},
			"last":  map[string]any{"start": "2026-11-22T02:00:00Z", "end": "2026-11-23T02:00:00Z"},
		}},
		"warnings":      []any{`queue "gpu": no ready Nomad node matches node_pool "gpu"; its tasks would wait until one joins`},
		"assets":        []any{},
		"summary":       map[string]any{"add": 1.0, "change": 1.0, "destroy": 1.0},
		"catalog_index": 42.0,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("RenderJSON() mismatch (-want +got):\n%s", diff)
	}

	// An empty plan has empty lists, never null, so consumers can iterate without checks.
	buf.Reset()
	if err := plan.RenderJSON(&buf, &plan.Plan{}); err != nil {
		t.Fatalf("RenderJSON(empty): %v", err)
	}
	got = nil
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"changes", "catch_up", "warnings", "assets"} {
		if list, ok := got[key].([]any); !ok || len(list) != 0 {
			t.Errorf("empty plan %q = %#v, want []", key, got[key])
		}
	}
}
