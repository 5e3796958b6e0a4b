package nomadexec

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/dagflow/dagflow/hcl/spec"
)

// storageTask is a task with every resource and storage setting; TestExecutor has Nomad
// validate its job.
func storageTask() *spec.Task {
	return &spec.Task{
		Driver: spec.DriverExec, Command: "/bin/true",
		Resources: spec.Resources{
			MemoryMB: 256, Cores: 2,
			Devices: []spec.Device{{
				Name: "nvidia/gpu", Count: 2,
				Constraints: []spec.Constraint{{Attribute: "${device.attr.memory}", Operator: ">=", Value: "2 GiB"}},
				Affinities:  []spec.Affinity{{Attribute: "${device.model}", Operator: "=", Value: "Tesla K80", Weight: 50}},
			}},
		},
		Artifacts: []spec.Artifact{
			{Source: "https://example.com/job.py", Destination: "local/bin", Mode: "file", Options: map[string]string{"checksum": "md5:d41d8cd98f00b204e9800998ecf8427e"}, Headers: map[string]string{"X-Run": "r"}},
			{Source: "git::https://example.com/repo.git"},
		},
		Volumes:      []spec.Volume{{Name: "scratch", Type: spec.VolumeCSI, Source: "ebs-1", AccessMode: "single-node-writer", AttachmentMode: "file-system"}},
		VolumeMounts: []spec.VolumeMount{{Volume: "data", Destination: "/data", ReadOnly: true}, {Volume: "scratch", Destination: "/scratch"}},
	}
}

// storageQueue is a queue with a host volume, for storageTask.
func storageQueue() *spec.Queue {
	return &spec.Queue{Name: "gpu", Volumes: []spec.Volume{{Name: "data", Type: spec.VolumeHost, Source: "datasets", ReadOnly: true}}}
}

func TestJobResources(t *testing.T) {
	ts := storageTask()
	ts.Resources.MemoryMaxMB = 1024
	job, err := Job("", Attempt{DAG: "d", RunID: "r", Task: "t", Try: 1, Spec: ts, Queue: storageQueue()})
	if err != nil {
		t.Fatal(err)
	}
	group := job.TaskGroups[0]
	task := group.Tasks[0]
	wantResources := &nomadapi.Resources{
		Cores: ptr(2), MemoryMB: ptr(256), MemoryMaxMB: ptr(1024),
		Devices: []*nomadapi.RequestedDevice{{
			Name: "nvidia/gpu", Count: ptr(uint64(2)),
			Constraints: []*nomadapi.Constraint{{LTarget: "${device.attr.memory}", Operand: ">=", RTarget: "2 GiB"}},
			Affinities:  []*nomadapi.Affinity{{LTarget: "${device.model}", Operand: "=", RTarget: "Tesla K80", Weight: ptr(int8(50))}},
		}},
	}
	if diff := cmp.Diff(wantResources, task.Resources); diff != "" {
		t.Errorf("resources (-want +got):\n%s", diff)
	}
	wantArtifacts := []*nomadapi.TaskArtifact{
		{GetterSource: ptr("https://example.com/job.py"), RelativeDest: ptr("local/bin"), GetterMode: ptr("file"),
			GetterOptions: map[string]string{"checksum": "md5:d41d8cd98f00b204e9800998ecf8427e"}, GetterHeaders: map[string]string{"X-Run": "r"}},
		{GetterSource: ptr("git::https://example.com/repo.git")},
	}
	if diff := cmp.Diff(wantArtifacts, task.Artifacts); diff != "" {
		t.Errorf("artifacts (-want +got):\n%s", diff)
	}
	wantVolumes := map[string]*nomadapi.VolumeRequest{
		"data":    {Name: "data", Type: "host", Source: "datasets", ReadOnly: true},
		"scratch": {Name: "scratch", Type: "csi", Source: "ebs-1", AccessMode: "single-node-writer", AttachmentMode: "file-system"},
	}
	if diff := cmp.Diff(wantVolumes, group.Volumes); diff != "" {
		t.Errorf("group volumes (-want +got):\n%s", diff)
	}
	wantMounts := []*nomadapi.VolumeMount{
		{Volume: ptr("data"), Destination: ptr("/data"), ReadOnly: ptr(true)},
		{Volume: ptr("scratch"), Destination: ptr("/scratch"), ReadOnly: ptr(false)},
	}
	if diff := cmp.Diff(wantMounts, task.VolumeMounts); diff != "" {
		t.Errorf("volume mounts (-want +got):\n%s", diff)
	}
}

// TestJobResourcesUnset: a task without devices, artifacts or volumes gets none of Nomad's
// blocks for them, so existing jobs build byte for byte as before.
func TestJobResourcesUnset(t *testing.T) {
	a := testAttempt("d", "r", "t", 1, "true")
	job, err := Job("", a)
	if err != nil {
		t.Fatal(err)
	}
	group, task := job.TaskGroups[0], job.TaskGroups[0].Tasks[0]
	if group.Volumes != nil || task.Artifacts != nil || task.VolumeMounts != nil || task.Resources.Cores != nil || task.Resources.MemoryMaxMB != nil || task.Resources.Devices != nil {
		t.Errorf("unset settings set: volumes %v, artifacts %v, mounts %v, resources %+v", group.Volumes, task.Artifacts, task.VolumeMounts, task.Resources)
	}
}
