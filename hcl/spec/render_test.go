package spec_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/dagflow/dagflow/hcl/spec"
)

func TestRender(t *testing.T) {
	src := []byte(`
locals {
  greeting = "hello"
}

dag "report" {
  param "region" {
    default = "eu"
  }
  param "limit" {
    type    = number
    default = 10
  }
  param "files" {
    type    = list(string)
    default = ["a.csv"]
  }

  task "build" {
    for_each = { eu = "Europe" }
    driver   = "docker"
    image    = "alpine:${each.key}"
    command  = "sh"
    args = [
      "-c",
      "echo ${local.greeting} ${each.value} ${params.region} ${params.limit} ${params.files}",
      "literal $${HOME} %%{x}",
      run.id,
    ]
    env = {
      RUN   = "${run.id}/${run.type}"
      DATE  = "${run.logical_date}"
      RANGE = "${run.data_interval_start}..${run.data_interval_end}"
      WHO   = "${dag.name}.${task.name}#${task.try}"
    }
    config = {
      labels = { run = "${run.id}" }
      ports  = ["http"]
    }
  }
}`)
	cfg, diags := spec.NewParser().LoadSource(src, "render.hcl")
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	d := cfg.DAGs[0]
	task := d.Tasks[0]
	day := time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)
	rt := spec.Runtime{
		RunID: "scheduled__2026-11-22T00:00:00Z", RunType: "scheduled",
		LogicalDate: day, DataIntervalStart: day, DataIntervalEnd: day.Add(24 * time.Hour),
		Params: map[string]json.RawMessage{"region": json.RawMessage(`"us"`)},
		Try:    2,
	}
	got, err := d.Render(task, rt)
	if err != nil {
		t.Fatal(err)
	}
	want := struct {
		Image  string
		Args   []string
		Env    map[string]string
		Config string
	}{
		Image: "alpine:eu",
		Args: []string{
			"-c",
			`echo hello Europe us 10 ["a.csv"]`,
			"literal ${HOME} %{x}",
			"scheduled__2026-11-22T00:00:00Z",
		},
		Env: map[string]string{
			"RUN":   "scheduled__2026-11-22T00:00:00Z/scheduled",
			"DATE":  "2026-11-22T00:00:00Z",
			"RANGE": "2026-11-22T00:00:00Z..2026-11-23T00:00:00Z",
			"WHO":   "report.build[eu]#2",
		},
		Config: `{"labels":{"run":"scheduled__2026-11-22T00:00:00Z"},"ports":["http"]}`,
	}
	gotView := struct {
		Image  string
		Args   []string
		Env    map[string]string
		Config string
	}{got.Image, got.Args, got.Env, string(got.Config)}
	if diff := cmp.Diff(want, gotView); diff != "" {
		t.Errorf("Render (-want +got):\n%s", diff)
	}
	// The stored task is untouched: one definition renders many attempts.
	if task.Env["RUN"] != "${run.id}/${run.type}" {
		t.Errorf("Render changed the definition: %q", task.Env["RUN"])
	}
}

func TestRenderRequiredParamMissing(t *testing.T) {
	cfg, diags := spec.NewParser().LoadSource([]byte(`
dag "d" {
  param "who" {
    required = true
  }
  task "t" {
    command = "/bin/echo"
    args    = ["${params.who}"]
  }
}`), "p.hcl")
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	d := cfg.DAGs[0]
	if _, err := d.Render(d.Tasks[0], spec.Runtime{}); err == nil {
		t.Fatal("Render without a value for a required param succeeded")
	}
	got, err := d.Render(d.Tasks[0], spec.Runtime{Params: map[string]json.RawMessage{"who": json.RawMessage(`"ops"`)}})
	if err != nil || got.Args[0] != "ops" {
		t.Fatalf("Render = %v, %v", got, err)
	}
}
