package spec_test

import (
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/dagflow/dagflow/hcl/spec"
)

const outputsDAG = `
dag "d" {
  task "list" {
    command = "/bin/true"
  }
  task "fetch" {
    for_each = ["eu", "us"]
    command  = "/bin/true"
  }
  task "merge" {
    depends_on = ["list"]
    command    = "/bin/echo"
    args       = ["${tasks.list.outputs.files}", "n=${tasks.list.outputs.count}", tasks.list.outputs.name]
    env        = { OK = "${tasks.list.outputs.ok}" }
    config     = { labels = { by = "${tasks.list.outputs.name}" } }
  }
  task "report" {
    depends_on = ["merge", "fetch"]
    command    = "/bin/echo"
    args       = ["${tasks.fetch.outputs.rows}", "${tasks.list.outputs.name}"]
  }
}`

func loadOutputsDAG(t *testing.T) *spec.DAG {
	t.Helper()
	cfg, diags := spec.NewParser().LoadSource([]byte(outputsDAG), "outputs.hcl")
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	return cfg.DAGs[0]
}

func task(d *spec.DAG, name string) *spec.Task {
	for _, t := range d.Tasks {
		if t.Name == name {
			return t
		}
	}
	return nil
}

// TestRenderOutputs: references to an upstream's outputs render with the params rules, and
// those of a task with instances as an object by instance key.
func TestRenderOutputs(t *testing.T) {
	d := loadOutputsDAG(t)
	outputs := map[string]json.RawMessage{
		"list":      json.RawMessage(`{"files":["a.csv","b.csv"],"count":2,"name":"daily","ok":true}`),
		"fetch[eu]": json.RawMessage(`{"rows":10}`),
		"fetch[us]": json.RawMessage(`{"rows":[1,2]}`),
	}
	merge, err := d.Render(task(d, "merge"), spec.Runtime{Outputs: outputs})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{`["a.csv","b.csv"]`, "n=2", "daily"}, merge.Args); diff != "" {
		t.Errorf("args (-want +got):\n%s", diff)
	}
	if merge.Env["OK"] != "true" || string(merge.Config) != `{"labels":{"by":"daily"}}` {
		t.Errorf("env %v, config %s", merge.Env, merge.Config)
	}
	report, err := d.Render(task(d, "report"), spec.Runtime{Outputs: outputs})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{`{"eu":10,"us":[1,2]}`, "daily"}, report.Args); diff != "" {
		t.Errorf("args (-want +got):\n%s", diff)
	}
}

// TestRenderOutputsMissing: a key the upstream did not publish fails the render with the key
// and the keys that exist.
func TestRenderOutputsMissing(t *testing.T) {
	d := loadOutputsDAG(t)
	for _, tc := range []struct {
		name    string
		task    string
		outputs map[string]json.RawMessage
		want    string
	}{
		{
			name:    "missing key",
			task:    "merge",
			outputs: map[string]json.RawMessage{"list": json.RawMessage(`{"file":[],"cnt":1}`)},
			want:    `tasks.list.outputs.count: task "list" published no output "count", only "cnt", "file". Did you mean "cnt"?`,
		},
		{
			name: "no outputs",
			task: "merge",
			want: `tasks.list.outputs.count: task "list" published no outputs; its command writes them as a JSON object to the file named by DAGFLOW_OUTPUT`,
		},
		{
			name: "instance without the key",
			task: "report",
			outputs: map[string]json.RawMessage{
				"list": json.RawMessage(`{"name":"x"}`), "fetch[eu]": json.RawMessage(`{"rows":1}`), "fetch[us]": json.RawMessage(`{"rws":1}`),
			},
			want: `tasks.fetch.outputs.rows: "fetch[us]" published no output "rows"`,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := d.Render(task(d, tc.task), spec.Runtime{Outputs: tc.outputs})
			if err == nil || err.Error() != tc.want {
				t.Errorf("Render error:\n got %v\nwant %s", err, tc.want)
			}
		})
	}
}
