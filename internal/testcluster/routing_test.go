package testcluster

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/dagflow/dagflow/api"
	"github.com/dagflow/dagflow/internal/devstack"
)

func TestMain(m *testing.M) { Main(m) }

// TestQueueRouting runs a DAG on a devstack.Cluster whose two Nomad clients serve different
// queues: every try of the gpu queue's tasks runs on the client whose queues meta lists gpu,
// read from its allocation's NodeID in Nomad, and the default queue's tries on either client.
func TestQueueRouting(t *testing.T) {
	agents := devstack.StartClusterT(t)
	c := New(t, Options{ConsulAddr: agents.ConsulAddr(), NomadAddr: agents.NomadAddr()})
	c.Apply(`
queue "gpu" {
  constraint {
    attribute = "${meta.queues}"
    operator  = "set_contains"
    value     = "gpu"
  }
}
dag "routed" {
  start_date = "2026-01-01"
  defaults {
    command = "/bin/true"
  }
  task "train" {
    for_each = ["a", "b", "c"]
    queue    = "gpu"
  }
  task "prepare" {
    for_each = ["a", "b", "c"]
  }
}
`)
	ctx := context.Background()
	res, err := c.Client(0, c.AdminToken).DAGs().Trigger(ctx, "routed", &api.TriggerRequest{})
	if err != nil {
		t.Fatal(err)
	}
	run := c.WaitRun("routed", res.RunIDs[0], 2*time.Minute, "finished", Finished)
	if run.State != "success" {
		t.Fatalf("run state = %s, want success: %+v", run.State, run.Tasks)
	}

	nodes, _, err := c.Nomad.Nodes().List(nil)
	if err != nil {
		t.Fatal(err)
	}
	queuesOf := map[string]string{} // node ID -> its queues meta
	for _, n := range nodes {
		node, _, err := c.Nomad.Nodes().Info(n.ID, nil)
		if err != nil {
			t.Fatal(err)
		}
		queuesOf[n.ID] = node.Meta["queues"]
	}
	seen := 0
	for _, ti := range run.Tasks {
		for _, try := range ti.Tries {
			alloc, _, err := c.Nomad.Allocations().Info(try.AllocID, nil)
			if err != nil {
				t.Fatalf("%s try %d: allocation %q: %v", ti.Task, try.Try, try.AllocID, err)
			}
			queues, ok := queuesOf[alloc.NodeID]
			switch {
			case !ok:
				t.Errorf("%s try %d ran on node %s, none of the cluster's clients", ti.Task, try.Try, alloc.NodeID)
			case strings.HasPrefix(ti.Task, "train[") && queues != "default,gpu":
				t.Errorf("%s (queue gpu) ran on the node with queues %q, want the gpu node", ti.Task, queues)
			}
			seen++
		}
	}
	if seen != 6 {
		t.Errorf("checked %d tries, want 6 (3 per queue)", seen)
	}
}
