package nomadexec

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/dagflow/dagflow/hcl/spec"
	"github.com/dagflow/dagflow/internal/devstack"
)

// gpuNode is a node with two NVIDIA GPUs of one model, one of them unhealthy, and an FPGA.
func gpuNode(id string) *nomadapi.Node {
	return &nomadapi.Node{ID: id, Name: id, NodeResources: &nomadapi.NodeResources{Devices: []*nomadapi.NodeDeviceResource{
		{Vendor: "nvidia", Type: "gpu", Name: "Tesla K80", Instances: []*nomadapi.NodeDevice{
			{ID: "GPU-1", Healthy: true}, {ID: "GPU-2", Healthy: false, HealthDescription: "overheated"},
		}},
		{Vendor: "xilinx", Type: "fpga", Name: "Alveo/U250", Instances: []*nomadapi.NodeDevice{{ID: "FPGA-1", Healthy: true}}},
	}}}
}

func TestDeviceNodes(t *testing.T) {
	nodes := []*nomadapi.Node{gpuNode("gpu-1"), {ID: "plain", Name: "plain", NodeResources: &nomadapi.NodeResources{}}, {ID: "bare", Name: "bare"}}
	tests := map[string]struct {
		device spec.Device
		want   []string
	}{
		"type":                   {spec.Device{Name: "gpu", Count: 1}, []string{"gpu-1"}},
		"vendor and type":        {spec.Device{Name: "nvidia/gpu", Count: 1}, []string{"gpu-1"}},
		"model":                  {spec.Device{Name: "nvidia/gpu/Tesla K80", Count: 1}, []string{"gpu-1"}},
		"model with a slash":     {spec.Device{Name: "xilinx/fpga/Alveo/U250", Count: 1}, []string{"gpu-1"}},
		"other model":            {spec.Device{Name: "nvidia/gpu/A100", Count: 1}, nil},
		"other vendor":           {spec.Device{Name: "amd/gpu", Count: 1}, nil},
		"unhealthy do not count": {spec.Device{Name: "nvidia/gpu", Count: 2}, nil},
		"groups do not add up":   {spec.Device{Name: "gpu", Count: 2}, nil},
		"vendor is not a type":   {spec.Device{Name: "nvidia", Count: 1}, nil},
		"zero count is one":      {spec.Device{Name: "fpga"}, []string{"gpu-1"}},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, nodeIDs(DeviceNodes(nodes, tt.device))); diff != "" {
				t.Errorf("nodes with %q x%d (-want +got):\n%s", tt.device.Name, tt.device.Count, diff)
			}
		})
	}
}

// TestDeviceNodesRealNode counts on the node a real Nomad agent reports, which has no device
// plugin: no node has a GPU, and the node data decodes without one.
func TestDeviceNodesRealNode(t *testing.T) {
	n := devstack.StartNomadT(t, nil)
	client, err := nomadapi.NewClient(&nomadapi.Config{Address: "http://" + n.HTTPAddr, TLSConfig: &nomadapi.TLSConfig{}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	nodes, err := MatchingNodes(ctx, client, nil)
	if err != nil || len(nodes) != 1 {
		t.Fatalf("MatchingNodes: %d nodes, %v; want the dev node", len(nodes), err)
	}
	if nodes[0].NodeResources == nil {
		t.Fatalf("node %s came without its resources", nodes[0].Name)
	}
	if got := DeviceNodes(nodes, spec.Device{Name: "nvidia/gpu", Count: 1}); len(got) != 0 {
		t.Errorf("the dev node has an nvidia/gpu: %v", nodeIDs(got))
	}
	// The same node with a fingerprinted GPU added counts.
	nodes[0].NodeResources.Devices = append(nodes[0].NodeResources.Devices, gpuNode("x").NodeResources.Devices...)
	if got := DeviceNodes(nodes, spec.Device{Name: "nvidia/gpu", Count: 1}); len(got) != 1 {
		t.Errorf("the dev node with a GPU added does not count")
	}
}
