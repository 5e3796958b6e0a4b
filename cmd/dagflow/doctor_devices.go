package main

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/dagflow/dagflow/hcl/spec"
	"github.com/dagflow/dagflow/nomadexec"
)

// deviceAsks are the devices the applied tasks ask for, by queue, then by device name: the
// largest count any task of the queue asks, and the first such task, to name in messages.
type deviceAsks map[string]map[string]deviceAsk

type deviceAsk struct {
	count int
	task  string // DAG "." task
}

// add records the devices of task t of DAG dag, in queue.
func (a deviceAsks) add(queue, dag string, t *spec.Task) {
	for _, d := range t.Resources.Devices {
		if a[queue] == nil {
			a[queue] = map[string]deviceAsk{}
		}
		count := max(d.Count, 1)
		if prev, ok := a[queue][d.Name]; !ok || count > prev.count || count == prev.count && dag+"."+t.Name < prev.task {
			a[queue][d.Name] = deviceAsk{count: count, task: dag + "." + t.Name}
		}
	}
}

// check counts, among the nodes that serve queue, those that have each device its tasks ask
// for (nomadexec.DeviceNodes). When every device is on some node, counts is what the queue's
// details line adds ("; device "nvidia/gpu" x1 on 2 of them"); otherwise why says which
// devices no node has and fix what to do.
func (a deviceAsks) check(queue string, nodes []*nomadapi.Node) (counts, why, fix string) {
	var have, missing []string
	for _, name := range slices.Sorted(maps.Keys(a[queue])) {
		ask := a[queue][name]
		n := len(nomadexec.DeviceNodes(nodes, spec.Device{Name: name, Count: ask.count}))
		if n > 0 {
			have = append(have, fmt.Sprintf("device %q x%d on %d of them", name, ask.count, n))
			continue
		}
		missing = append(missing, fmt.Sprintf("0 of them have %s %q, which task %s asks for", plural(ask.count, "healthy device"), name, ask.task))
	}
	if len(have) > 0 {
		counts = "; " + strings.Join(have, ", ")
	}
	if len(missing) == 0 {
		return counts, "", ""
	}
	return "", strings.Join(missing, ", and "),
		"run the Nomad device plugin for the device on the queue's nodes (nomad node status -verbose NODE lists the devices a node fingerprinted), or send the queue to nodes that have it (its node_pool or constraints) and apply"
}
