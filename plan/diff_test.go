package plan_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/dagflow/dagflow/hcl/spec"
	"github.com/dagflow/dagflow/plan"
)

// dag builds a DAG like the parser would (defaults filled in); edits adjust it per test case.
func dag(name string, edits ...func(*spec.DAG)) *spec.DAG {
	d := &spec.DAG{
		Name:           name,
		Schedule:       "@daily",
		Timezone:       "UTC",
		StartDate:      time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
		Catchup:        spec.CatchupNone,
		MaxActiveRuns:  1,
		MaxActiveTasks: 16,
		Params: []*spec.Param{
			{Name: "day", Type: "string", Default: json.RawMessage(`"today"`)},
			{Name: "full", Type: "bool", Default: json.RawMessage(`false`)},
		},
		Tasks: []*spec.Task{
			task("extract"),
			task("load", func(t *spec.Task) { t.DependsOn = []string{"transform"}; t.Retries = 2 }),
			task("transform", func(t *spec.Task) { t.DependsOn = []string{"extract"} }),
		},
	}
	for _, e := range edits {
		e(d)
	}
	return d
}

func task(name string, edits ...func(*spec.Task)) *spec.Task {
	t := &spec.Task{
		Name:        name,
		TriggerRule: "all_success",
		Queue:       spec.DefaultQueue,
		Driver:      spec.DriverRawExec,
		Command:     name + ".sh",
		Env:         map[string]string{"DAY": "${params.day}"},
		Resources:   spec.Resources{CPU: 100, MemoryMB: 128},
		RetryDelay:  spec.Duration(time.Minute),
	}
	for _, e := range edits {
		e(t)
	}
	return t
}

// editTask applies edit to the task called name.
func editTask(name string, edit func(*spec.Task)) func(*spec.DAG) {
	return func(d *spec.DAG) {
		for _, t := range d.Tasks {
			if t.Name == name {
				edit(t)
			}
		}
	}
}

func queue(name string, edits ...func(*spec.Queue)) *spec.Queue {
	q := &spec.Queue{Name: name}
	if name != spec.DefaultQueue {
		q.NodePool = name
	}
	for _, e := range edits {
		e(q)
	}
	return q
}

func config(dags []*spec.DAG, queues ...*spec.Queue) *spec.Config {
	return &spec.Config{DAGs: dags, Queues: queues}
}

func dagMap(dags ...*spec.DAG) map[string]*spec.DAG {
	m := map[string]*spec.DAG{}
	for _, d := range dags {
		m[d.Name] = d
	}
	return m
}

func queueMap(queues ...*spec.Queue) map[string]*spec.Queue {
	m := map[string]*spec.Queue{}
	for _, q := range queues {
		m[q.Name] = q
	}
	return m
}

// taskJSON is a task's JSON form, as AttrChange holds a whole added or removed task.
func taskJSON(t *testing.T, tk *spec.Task) map[string]any {
	t.Helper()
	b, err := json.Marshal(tk)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestDiff(t *testing.T) {
	notify := task("notify", func(t *spec.Task) { t.DependsOn = []string{"load"} })
	sameA, sameB, sameQ := dag("a"), dag("b"), queue("default")
	tests := []struct {
		name         string
		local        *spec.Config
		remoteDAGs   map[string]*spec.DAG
		remoteQueues map[string]*spec.Queue
		want         []plan.Change
	}{
		{
			name: "nothing at all",
		},
		{
			name:         "unchanged",
			local:        config([]*spec.DAG{dag("a"), dag("b")}, queue("default"), queue("gpu")),
			remoteDAGs:   dagMap(dag("a"), dag("b")),
			remoteQueues: queueMap(queue("default"), queue("gpu")),
		},
		{
			// Build passes the local definition itself when its hash is the applied version.
			name:         "unchanged, the same definitions",
			local:        config([]*spec.DAG{sameA, sameB}, sameQ),
			remoteDAGs:   dagMap(sameA, sameB),
			remoteQueues: queueMap(sameQ),
		},
		{
			name:  "create",
			local: config([]*spec.DAG{dag("b"), dag("a")}, queue("gpu"), queue("default")),
			want: []plan.Change{
				{Kind: "queue", Name: "default", Action: plan.ActionCreate},
				{Kind: "queue", Name: "gpu", Action: plan.ActionCreate},
				{Kind: "dag", Name: "a", Action: plan.ActionCreate},
				{Kind: "dag", Name: "b", Action: plan.ActionCreate},
			},
		},
		{
			name:         "delete",
			local:        config([]*spec.DAG{dag("a")}, queue("default")),
			remoteDAGs:   dagMap(dag("a"), &spec.DAG{Name: "gone"}),
			remoteQueues: queueMap(queue("default"), &spec.Queue{Name: "gpu"}),
			want: []plan.Change{
				{Kind: "queue", Name: "gpu", Action: plan.ActionDelete},
				{Kind: "dag", Name: "gone", Action: plan.ActionDelete},
			},
		},
		{
			name:       "one task attribute",
			local:      config([]*spec.DAG{dag("a", editTask("load", func(t *spec.Task) { t.Retries = 3 }))}),
			remoteDAGs: dagMap(dag("a")),
			want: []plan.Change{{Kind: "dag", Name: "a", Action: plan.ActionUpdate, Attrs: []plan.AttrChange{
				{Path: []string{"task", "load", "retries"}, Before: 2.0, After: 3.0},
			}}},
		},
		{
			name:       "dag attribute",
			local:      config([]*spec.DAG{dag("a", func(d *spec.DAG) { d.Schedule = "@hourly"; d.Description = "hourly now" })}),
			remoteDAGs: dagMap(dag("a")),
			want: []plan.Change{{Kind: "dag", Name: "a", Action: plan.ActionUpdate, Attrs: []plan.AttrChange{
				{Path: []string{"description"}, After: "hourly now"},
				{Path: []string{"schedule"}, Before: "@daily", After: "@hourly"},
			}}},
		},
		{
			name:       "task added",
			local:      config([]*spec.DAG{dag("a", func(d *spec.DAG) { d.Tasks = append(d.Tasks, notify) })}),
			remoteDAGs: dagMap(dag("a")),
			want: []plan.Change{{Kind: "dag", Name: "a", Action: plan.ActionUpdate, Attrs: []plan.AttrChange{
				{Path: []string{"task", "notify"}, After: taskJSON(t, notify)},
			}}},
		},
		{
			name:       "task removed",
			local:      config([]*spec.DAG{dag("a", func(d *spec.DAG) { d.Tasks = d.Tasks[1:] })}),
			remoteDAGs: dagMap(dag("a")),
			want: []plan.Change{{Kind: "dag", Name: "a", Action: plan.ActionUpdate, Attrs: []plan.AttrChange{
				{Path: []string{"task", "extract"}, Before: taskJSON(t, task("extract"))},
			}}},
		},
		{
			name:       "param default",
			local:      config([]*spec.DAG{dag("a", func(d *spec.DAG) { d.Params[0].Default = json.RawMessage(`"yesterday"`) })}),
			remoteDAGs: dagMap(dag("a")),
			want: []plan.Change{{Kind: "dag", Name: "a", Action: plan.ActionUpdate, Attrs: []plan.AttrChange{
				{Path: []string{"param", "day", "default"}, Before: "today", After: "yesterday"},
			}}},
		},
		{
			name: "param added and removed",
			local: config([]*spec.DAG{dag("a", func(d *spec.DAG) {
				d.Params = []*spec.Param{d.Params[0], {Name: "limit", Type: "number", Required: true}}
			})}),
			remoteDAGs: dagMap(dag("a")),
			want: []plan.Change{{Kind: "dag", Name: "a", Action: plan.ActionUpdate, Attrs: []plan.AttrChange{
				{Path: []string{"param", "full"}, Before: map[string]any{"name": "full", "type": "bool", "default": false}},
				{Path: []string{"param", "limit"}, After: map[string]any{"name": "limit", "type": "number", "required": true}},
			}}},
		},
		{
			name: "params reordered",
			local: config([]*spec.DAG{dag("a", func(d *spec.DAG) {
				d.Params[0], d.Params[1] = d.Params[1], d.Params[0]
			})}),
			remoteDAGs: dagMap(dag("a")),
			want: []plan.Change{{Kind: "dag", Name: "a", Action: plan.ActionUpdate, Attrs: []plan.AttrChange{
				{Path: []string{"params"}, Before: []any{"day", "full"}, After: []any{"full", "day"}},
			}}},
		},
		{
			name: "nested task attributes",
			local: config([]*spec.DAG{dag("a", editTask("extract", func(t *spec.Task) {
				t.Resources.CPU = 500
				t.Env = map[string]string{"DAY": "${params.day}", "MODE": "full"}
				t.Args = []string{"--all"}
			}))}),
			remoteDAGs: dagMap(dag("a")),
			want: []plan.Change{{Kind: "dag", Name: "a", Action: plan.ActionUpdate, Attrs: []plan.AttrChange{
				{Path: []string{"task", "extract", "args"}, After: []any{"--all"}},
				{Path: []string{"task", "extract", "env", "MODE"}, After: "full"},
				{Path: []string{"task", "extract", "resources", "cpu"}, Before: 100.0, After: 500.0},
			}}},
		},
		{
			name:         "queue attributes",
			local:        config(nil, queue("gpu", func(q *spec.Queue) { q.MaxRunning = 2; q.Datacenters = []string{"dc1"} })),
			remoteQueues: queueMap(queue("gpu", func(q *spec.Queue) { q.MaxRunning = 4 })),
			want: []plan.Change{{Kind: "queue", Name: "gpu", Action: plan.ActionUpdate, Attrs: []plan.AttrChange{
				{Path: []string{"datacenters"}, After: []any{"dc1"}},
				{Path: []string{"max_running"}, Before: 4.0, After: 2.0},
			}}},
		},
		{
			name: "everything at once, sorted",
			local: config(
				[]*spec.DAG{dag("z-new"), dag("m", func(d *spec.DAG) { d.Paused = true })},
				queue("q2"), queue("q1", func(q *spec.Queue) { q.Description = "first" }),
			),
			remoteDAGs:   dagMap(dag("m"), &spec.DAG{Name: "a-old"}),
			remoteQueues: queueMap(queue("q1"), &spec.Queue{Name: "q0"}),
			want: []plan.Change{
				{Kind: "queue", Name: "q0", Action: plan.ActionDelete},
				{Kind: "queue", Name: "q1", Action: plan.ActionUpdate, Attrs: []plan.AttrChange{{Path: []string{"description"}, After: "first"}}},
				{Kind: "queue", Name: "q2", Action: plan.ActionCreate},
				{Kind: "dag", Name: "a-old", Action: plan.ActionDelete},
				{Kind: "dag", Name: "m", Action: plan.ActionUpdate, Attrs: []plan.AttrChange{{Path: []string{"paused"}, Before: false, After: true}}},
				{Kind: "dag", Name: "z-new", Action: plan.ActionCreate},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := plan.Diff(tt.local, tt.remoteDAGs, tt.remoteQueues)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Diff() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}
