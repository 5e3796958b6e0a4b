package spec_test

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/dagflow/dagflow/hcl/spec"
)

// TestRenderArtifacts: an artifact's source, destination, options and headers take runtime
// values; a literal $${...} stays Nomad's interpolation.
func TestRenderArtifacts(t *testing.T) {
	src := []byte(`
dag "fetch" {
  param "version" {
    default = "1.2.0"
  }
  task "get" {
    command = "/bin/true"
    artifact {
      source      = "https://example.com/${run.logical_date}/tool-${params.version}.tgz"
      destination = "local/$${NOMAD_ALLOC_INDEX}/${task.try}"
      options     = { checksum = "sha256:${params.version}" }
      headers     = { X-Run = "${run.id}" }
    }
  }
}`)
	cfg, diags := spec.NewParser().LoadSource(src, "fetch.hcl")
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	d := cfg.DAGs[0]
	got, err := d.Render(d.Tasks[0], spec.Runtime{
		RunID: "manual__1", LogicalDate: time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC), Try: 2,
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []spec.Artifact{{
		Source:      "https://example.com/2026-11-22T00:00:00Z/tool-1.2.0.tgz",
		Destination: "local/${NOMAD_ALLOC_INDEX}/2",
		Options:     map[string]string{"checksum": "sha256:1.2.0"},
		Headers:     map[string]string{"X-Run": "manual__1"},
	}}
	if diff := cmp.Diff(want, got.Artifacts); diff != "" {
		t.Errorf("rendered artifacts (-want +got):\n%s", diff)
	}
	// The stored definition keeps its templates.
	if s := d.Tasks[0].Artifacts[0].Source; s != "https://example.com/${run.logical_date}/tool-${params.version}.tgz" {
		t.Errorf("stored source %q", s)
	}
}

// TestCoresOverrideDefaults: cpu and cores exclude each other within one resources block, but
// a task's choice replaces its defaults'; the task's device blocks replace the defaults' ones.
func TestCoresOverrideDefaults(t *testing.T) {
	src := []byte(`
dag "d" {
  defaults {
    command = "/bin/true"
    resources {
      cores = 4
      device "gpu" {}
    }
  }
  task "inherits" {}
  task "cpu" {
    resources {
      cpu = 250
      device "fpga" {
        count = 2
      }
    }
  }
}`)
	cfg, diags := spec.NewParser().LoadSource(src, "d.hcl")
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	got := map[string]spec.Resources{}
	for _, task := range cfg.DAGs[0].Tasks {
		got[task.Name] = task.Resources
	}
	want := map[string]spec.Resources{
		"inherits": {MemoryMB: spec.DefaultMemoryMB, Cores: 4, Devices: []spec.Device{{Name: "gpu", Count: 1}}},
		"cpu":      {CPU: 250, MemoryMB: spec.DefaultMemoryMB, Devices: []spec.Device{{Name: "fpga", Count: 2}}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("resources (-want +got):\n%s", diff)
	}
}
