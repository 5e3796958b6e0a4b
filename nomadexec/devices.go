package nomadexec

// This file tells which Nomad nodes have the devices a task asks for, by the rule Nomad's
// scheduler places device requests with.

import (
	"strings"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/dagflow/dagflow/hcl/spec"
)

// DeviceNodes returns the nodes among nodes (full nodes, as MatchingNodes returns them) that
// can give a task device d: a device group whose vendor, type and model match d's name (each
// part the name leaves out matches anything, as in Nomad) with at least d.Count healthy
// instances. Nomad takes all the instances of one request from one group, so groups do not
// add up.
//
// The device's constraints and affinities are not evaluated: a node this returns may still
// lack, say, the memory a constraint asks of the device, but a node it leaves out cannot run
// the task at all.
func DeviceNodes(nodes []*nomadapi.Node, d spec.Device) []*nomadapi.Node {
	vendor, typ, model := deviceID(d.Name)
	var out []*nomadapi.Node
	for _, n := range nodes {
		if n == nil || n.NodeResources == nil {
			continue
		}
		for _, g := range n.NodeResources.Devices {
			if g == nil || typ != g.Type || vendor != "" && vendor != g.Vendor || model != "" && model != g.Name {
				continue
			}
			healthy := 0
			for _, inst := range g.Instances {
				if inst != nil && inst.Healthy {
					healthy++
				}
			}
			if healthy >= max(d.Count, 1) {
				out = append(out, n)
				break
			}
		}
	}
	return out
}

// deviceID splits a device name as Nomad does: "type", "vendor/type" or "vendor/type/model",
// where the model may hold further slashes.
func deviceID(name string) (vendor, typ, model string) {
	parts := strings.SplitN(name, "/", 3)
	switch len(parts) {
	case 1:
		return "", parts[0], ""
	case 2:
		return parts[0], parts[1], ""
	}
	return parts[0], parts[1], parts[2]
}
