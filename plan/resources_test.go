package plan_test

import (
	"bytes"
	"testing"

	"github.com/dagflow/dagflow/hcl/spec"
	"github.com/dagflow/dagflow/plan"
	"github.com/dagflow/dagflow/state"
)

// TestRenderResources: a task's devices, memory_max, cores, artifacts, volumes and mounts show
// in its diff, and a created queue shows its volumes.
func TestRenderResources(t *testing.T) {
	before := dag("train", editTask("load", func(t *spec.Task) {
		t.Resources.Devices = []spec.Device{{Name: "nvidia/gpu", Count: 1}}
		t.Artifacts = []spec.Artifact{{Source: "https://example.com/train-1.0.whl"}}
	}))
	after := dag("train", editTask("load", func(t *spec.Task) {
		t.Driver = spec.DriverExec
		t.Resources.CPU, t.Resources.Cores, t.Resources.MemoryMaxMB = 0, 2, 1024
		t.Resources.Devices = []spec.Device{{
			Name: "nvidia/gpu", Count: 2,
			Constraints: []spec.Constraint{{Attribute: "${device.attr.memory}", Operator: ">=", Value: "16 GiB"}},
		}}
		t.Artifacts = []spec.Artifact{{Source: "https://example.com/train-${params.version}.whl", Destination: "local/wheels", Mode: "file"}}
		t.Volumes = []spec.Volume{{Name: "scratch", Type: spec.VolumeHost, Source: "scratch"}}
		t.VolumeMounts = []spec.VolumeMount{{Volume: "scratch", Destination: "/scratch"}, {Volume: "datasets", Destination: "/datasets", ReadOnly: true}}
		t.Queue = "gpu"
	}))
	gpu := queue("gpu", func(q *spec.Queue) {
		q.NodePool = "gpu"
		q.Volumes = []spec.Volume{{Name: "datasets", Type: spec.VolumeHost, Source: "datasets", ReadOnly: true}}
	})
	local := config([]*spec.DAG{after}, queue("default"), gpu)
	p := &plan.Plan{
		Changes: plan.Diff(local, dagMap(before), queueMap(queue("default"))),
		Base:    &state.Catalog{Index: 3},
		Local:   local,
	}
	var buf bytes.Buffer
	if err := plan.Render(&buf, p, false); err != nil {
		t.Fatal(err)
	}
	goldenFile(t, "resources", buf.Bytes())
}
