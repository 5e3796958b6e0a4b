package spec_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/dagflow/dagflow/hcl/spec"
)

// TestMapped: a for_each over an upstream's output makes one task that depends on the
// upstream, whose instances render each.key and each.value.
func TestMapped(t *testing.T) {
	cfg, diags := spec.NewParser().LoadSource([]byte(`
dag "d" {
  task "list" {
    command = "/bin/true"
  }
  task "process" {
    for_each       = tasks.list.outputs.files
    max_map_length = 10
    command        = "/bin/echo"
    args           = ["${each.key}", each.value]
    env            = { FILE = "${each.value}" }
  }
}`), "m.hcl")
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	d := cfg.DAGs[0]
	p := task(d, "process")
	if p == nil || p.MapOver == nil || *p.MapOver != (spec.MapOver{Task: "list", Key: "files"}) || p.MaxMapLength != 10 {
		t.Fatalf("process: %+v", p)
	}
	if diff := cmp.Diff([]string{"list"}, p.DependsOn); diff != "" {
		t.Errorf("depends_on (-want +got):\n%s", diff)
	}
	got, err := d.Render(p, spec.Runtime{Each: &spec.Each{Key: "1", Value: json.RawMessage(`{"path":"b.csv"}`)}})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"1", `{"path":"b.csv"}`}, got.Args); diff != "" {
		t.Errorf("args (-want +got):\n%s", diff)
	}
	if got.Env["FILE"] != `{"path":"b.csv"}` {
		t.Errorf("env: %v", got.Env)
	}
}

func TestCollection(t *testing.T) {
	m := &spec.MapOver{Task: "list", Key: "files"}
	for _, tc := range []struct {
		name, outputs string
		keys          []string
		values        map[string]string
		err           string
	}{
		{name: "list", outputs: `{"files":["a",{"b":1}]}`, keys: []string{"0", "1"}, values: map[string]string{"0": `"a"`, "1": `{"b":1}`}},
		{name: "object", outputs: `{"files":{"us":1,"eu":2}}`, keys: []string{"eu", "us"}, values: map[string]string{"eu": "2", "us": "1"}},
		{name: "empty list", outputs: `{"files":[]}`, keys: []string{}, values: map[string]string{}},
		{name: "missing", outputs: `{"file":[]}`, err: `published no output "files", only "file". Did you mean "file"?`},
		{name: "scalar", outputs: `{"files":"a.csv"}`, err: "tasks.list.outputs.files is a string, not a list or an object to map over"},
		{name: "bad key", outputs: `{"files":{"a/b":1}}`, err: `has the key "a/b", which cannot be part of a task name`},
		{name: "none", err: `task "list" published no outputs`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var raw json.RawMessage
			if tc.outputs != "" {
				raw = json.RawMessage(tc.outputs)
			}
			keys, values, err := m.Collection(raw)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want one containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]string{}
			for k, v := range values {
				got[k] = string(v)
			}
			if diff := cmp.Diff(tc.keys, keys); diff != "" {
				t.Errorf("keys (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.values, got); diff != "" {
				t.Errorf("values (-want +got):\n%s", diff)
			}
		})
	}
}
