package nomadexec

import (
	"context"
	"fmt"
	"sort"
	"strings"

	nomadapi "github.com/hashicorp/nomad/api"
)

// PlacementClass sorts the reasons Nomad could not place a job into a few kinds, for metrics.
type PlacementClass string

// Placement classes, the first that applies in this order.
const (
	PlacementNoNodes     PlacementClass = "no_nodes"   // no node in the node pool or datacenters to try
	PlacementDevices     PlacementClass = "devices"    // no node has the devices asked for
	PlacementConstraint  PlacementClass = "constraint" // constraints (or node classes) filtered every node
	PlacementResources   PlacementClass = "resources"  // nodes fit but lack free CPU, memory, ports or devices
	PlacementQuota       PlacementClass = "quota"      // a namespace quota is used up (Nomad Enterprise)
	PlacementOtherReason PlacementClass = "other"      // none of the above
)

// missingDevices is the key of Nomad's ConstraintFiltered for nodes that lack a device the
// task asks for (scheduler/feasible.go, FilterConstraintDevices).
const missingDevices = "missing devices"

// Placement is why Nomad has not placed the allocation of one of the Executor's jobs: what
// its blocked evaluation says.
type Placement struct {
	JobID     string
	Namespace string

	// Reason is short words for people, in the spirit of `nomad job status`: "resources
	// exhausted: memory on 1 node", "constraint ${meta.queue} = gpu filtered 1 node",
	// "no node has the devices asked for (1 node filtered)". Several reasons are joined by
	// "; ".
	Reason string
	Class  PlacementClass
}

// Unplaced returns why Nomad could not place the jobs of the Executor (IDs starting with its
// prefix) that have a blocked evaluation, in every namespace, keyed by job ID. A job that is
// placed, or whose evaluation has not run yet, is not in it. Errors wrap ErrNomad.
//
// It is one request, filtered by Nomad to the prefix's blocked evaluations, so its cost grows
// with the jobs that cannot be placed, not with the jobs that run; callers ask it only while
// some job has waited a while without an allocation.
func (e *Executor) Unplaced(ctx context.Context) (map[string]Placement, error) {
	filter := `Status == "blocked" and JobID matches "^` + strings.ReplaceAll(e.prefix, ".", "[.]") + `"`
	q := (&nomadapi.QueryOptions{Namespace: allNamespaces, Filter: filter}).WithContext(ctx)
	evals, _, err := e.client.Evaluations().List(q)
	if err != nil {
		return nil, fmt.Errorf("list blocked evaluations: %w: %w", ErrNomad, err)
	}
	out := map[string]Placement{}
	for _, ev := range evals {
		if !strings.HasPrefix(ev.JobID, e.prefix) {
			continue
		}
		reason, class := PlacementReason(ev.FailedTGAllocs)
		if reason == "" {
			reason, class = "no node can run it yet", PlacementOtherReason
		}
		// Should a job have several blocked evaluations, the latest says it.
		if prev, ok := out[ev.JobID]; !ok || prev.Reason != reason {
			out[ev.JobID] = Placement{JobID: ev.JobID, Namespace: ev.Namespace, Reason: reason, Class: class}
		}
	}
	return out, nil
}

// PlacementReason turns the metrics of the task groups Nomad could not place (an evaluation's
// FailedTGAllocs) into short words for people and the class of the first reason, as
// `nomad job status` lists them (command/monitor.go, formatAllocMetrics): nodes there were
// none of, then nodes filtered out, then nodes exhausted. Each part is sorted, so the same
// metrics always give the same words, and the reason changes only when the cause does. It
// returns "" for no metrics.
func PlacementReason(failed map[string]*nomadapi.AllocationMetric) (string, PlacementClass) {
	groups := make([]string, 0, len(failed))
	for g := range failed {
		groups = append(groups, g)
	}
	sort.Strings(groups)
	var parts []string
	var class PlacementClass
	note := func(c PlacementClass, s string) {
		if class == "" {
			class = c
		}
		parts = append(parts, s)
	}
	for _, g := range groups {
		m := failed[g]
		if m == nil {
			continue
		}
		if m.NodesEvaluated == 0 {
			if m.NodePool != "" {
				note(PlacementNoNodes, fmt.Sprintf("no node in node pool %q is eligible", m.NodePool))
			} else {
				note(PlacementNoNodes, "no node is eligible")
			}
		}
		for _, dc := range sortedKeys(m.NodesAvailable) {
			if m.NodesAvailable[dc] == 0 {
				note(PlacementNoNodes, fmt.Sprintf("no node available in datacenter %q", dc))
			}
		}
		if n := m.ConstraintFiltered[missingDevices]; n > 0 {
			note(PlacementDevices, "no node has the devices asked for ("+nodes(n)+" filtered)")
		}
		for _, c := range sortedKeys(m.ConstraintFiltered) {
			if c != missingDevices {
				note(PlacementConstraint, fmt.Sprintf("constraint %s filtered %s", c, nodes(m.ConstraintFiltered[c])))
			}
		}
		for _, c := range sortedKeys(m.ClassFiltered) {
			note(PlacementConstraint, fmt.Sprintf("node class %q filtered %s", c, nodes(m.ClassFiltered[c])))
		}
		for _, d := range sortedKeys(m.DimensionExhausted) {
			note(PlacementResources, fmt.Sprintf("resources exhausted: %s on %s", d, nodes(m.DimensionExhausted[d])))
		}
		if len(m.DimensionExhausted) == 0 && m.NodesExhausted > 0 {
			note(PlacementResources, "resources exhausted on "+nodes(m.NodesExhausted))
		}
		for _, q := range m.QuotaExhausted {
			note(PlacementQuota, fmt.Sprintf("quota limit hit: %s", q))
		}
	}
	return strings.Join(parts, "; "), class
}

// nodes says how many nodes: "1 node", "3 nodes".
func nodes(n int) string {
	if n == 1 {
		return "1 node"
	}
	return fmt.Sprintf("%d nodes", n)
}

func sortedKeys(m map[string]int) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
