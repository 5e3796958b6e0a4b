package testcluster

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/dagflow/dagflow/api"
	"github.com/dagflow/dagflow/internal/devstack"
	nomadapi "github.com/hashicorp/nomad/api"
)

// TestNodeLoss kills -9 the Nomad client running a try (a machine crash, tasks included): Nomad
// marks the allocation lost, the try is recorded failed with a message naming the lost node,
// and it is retried once, as retries = 1 says, under a new job ID that runs once the client is
// back. The task has no retries left after that, so a lost try counted twice would show as a
// third try or a failed run.
func TestNodeLoss(t *testing.T) {
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
dag "lost" {
  start_date = "2026-01-01"
  task "train" {
    queue   = "gpu"
    retries     = 1
    retry_delay = "1s"
    command = "/bin/sleep"
    args    = ["5"]
  }
}
`)
	ctx := context.Background()
	res, err := c.Client(0, c.AdminToken).DAGs().Trigger(ctx, "lost", &api.TriggerRequest{})
	if err != nil {
		t.Fatal(err)
	}
	id := res.RunIDs[0]
	run := c.WaitRun("lost", id, time.Minute, "running", func(r *api.Run) bool {
		return len(r.Tasks) == 1 && len(r.Tasks[0].Tries) == 1 && !r.Tasks[0].Tries[0].StartedAt.IsZero()
	})
	first := run.Tasks[0].Tries[0]
	alloc, _, err := c.Nomad.Allocations().Info(first.AllocID, nil)
	if err != nil {
		t.Fatal(err)
	}
	node, err := agents.NomadNode(ctx, alloc.NodeID)
	if err != nil {
		t.Fatal(err)
	}
	if err := node.Kill(); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	run = c.WaitRun("lost", id, 2*time.Minute, "first try ended", func(r *api.Run) bool {
		return !r.Tasks[0].Tries[0].EndedAt.IsZero()
	})
	first = run.Tasks[0].Tries[0]
	t.Logf("first try ended %s after the kill: state %s, message %q", time.Since(killed).Round(time.Second), first.State, first.Message)
	if first.State != "failed" || !strings.Contains(first.Message, "node lost") || !strings.Contains(first.Message, alloc.NodeID) {
		t.Errorf("first try after its node was killed: state %s, message %q; want failed, saying node %s was lost", first.State, first.Message, alloc.NodeID)
	}
	if got, _, err := c.Nomad.Allocations().Info(first.AllocID, nil); err != nil {
		t.Errorf("read the lost allocation: %v", err)
	} else if got.ClientStatus != nomadapi.AllocClientStatusLost {
		t.Errorf("allocation of the first try: client status %q, want lost", got.ClientStatus)
	}
	if err := node.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	run = c.WaitRun("lost", id, 2*time.Minute, "finished", Finished)
	tries := run.Tasks[0].Tries
	if run.State != "success" || len(tries) != 2 {
		t.Fatalf("run after the node came back: %s with %d tries, want success with 2: %+v", run.State, len(tries), tries)
	}
	if tries[1].JobID == tries[0].JobID || tries[1].State != "success" {
		t.Errorf("retry: job %s state %s, want success under a job ID other than the lost try's %s", tries[1].JobID, tries[1].State, tries[0].JobID)
	}
	// Nomad must not have run the lost try's job again (no reschedule, no replacement). The
	// job may be purged by now, which leaves no allocation to list.
	allocs, _, err := c.Nomad.Jobs().Allocations(tries[0].JobID, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(allocs) > 1 {
		t.Errorf("job %s of the lost try has %d allocations, want 1: Nomad replaced it behind dagflow", tries[0].JobID, len(allocs))
	}
	// Nomad places a replacement for a lost allocation once stop_on_client_after (1 min) has
	// passed, unless the job is stopped: dagflow stops it when it records the loss.
	if job, _, err := c.Nomad.Jobs().Info(tries[0].JobID, nil); err == nil && (job.Stop == nil || !*job.Stop) {
		t.Errorf("job %s of the lost try is not stopped: Nomad will replace its lost allocation", tries[0].JobID)
	}
}
