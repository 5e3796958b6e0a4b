package chaos

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/dagflow/dagflow/api"
)

// The kill-map scenario: the leader is killed while it expands a task mapped over an
// upstream's outputs, when the expansion is recorded and its instances' tries are being
// recorded and registered. Its successor must create the same instances, and run each once.

// mappedTask and listTask are the tasks of the mapped DAG (see DAG.Mapped).
const (
	listTask   = "list"
	mappedTask = "each"
)

// mappedSource returns the HCL of a DAG whose task list publishes d.Lanes items and whose task
// each is mapped over them, every try recording its start in l.
func (d DAG) mappedSource(l *Ledger) string {
	items := make([]string, d.Lanes)
	for i := range items {
		items[i] = strconv.Itoa(i)
	}
	publish := l.Command() + `; echo '{"items": [` + strings.Join(items, ",") + `]}' > "$DAGFLOW_OUTPUT"`
	work := l.Command() + "; sleep " + strconv.FormatFloat(d.Sleep.Seconds(), 'f', -1, 64)
	return fmt.Sprintf(`dag %q {
  description      = "chaos: one task mapped over %d outputs"
  max_active_runs  = 16
  max_active_tasks = 1024

  defaults {
    command     = "/bin/sh"
    retries     = 3
    retry_delay = "1s"

    resources {
      cpu    = 20
      memory = 16
    }
  }

  task %q {
    args = [%q, %q]
  }

  task %q {
    for_each       = tasks.%s.outputs.items
    max_map_length = %d
    args           = [%q, %q]
  }
}
`, d.Name, d.Lanes, listTask, "-c", publish, mappedTask, listTask, d.Lanes, "-c", work)
}

// expandTimeout bounds the wait for a run's expansion: its list task may wait behind the
// hundreds of instances of the runs before it for Nomad to place it.
const expandTimeout = 5 * time.Minute

// mappedInstances is how many instances the kill-map scenario's mapping has: 500, as the
// scenario promises, in `make chaos`; 100 in the short version, which `make test` runs.
func mappedInstances(p Params) int {
	if p.Mode == Long.Mode {
		return 500
	}
	return 100
}

// killWhileExpanding triggers a run of the mapped DAG, kills the active server with SIGKILL as
// soon as the run's expansion is recorded, while its instances are being recorded and
// registered, and restarts it once another instance leads.
func killWhileExpanding(ctx context.Context, c *Cluster, _ int) (time.Duration, string, error) {
	a, err := c.WaitActive(ctx)
	if err != nil {
		return 0, "", err
	}
	id, err := c.Trigger(ctx)
	if err != nil {
		return 0, "", err
	}
	r, err := c.WaitRun(ctx, id, expandTimeout, "not expanded", func(r *api.Run) bool { return len(taskOf(r, mappedTask).MapKeys) > 0 })
	if err != nil {
		return 0, "", err
	}
	at := time.Now()
	if err := a.Kill(); err != nil {
		return 0, "", err
	}
	if _, err := waitActive(ctx, c.Others(a)...); err != nil {
		return 0, "", fmt.Errorf("after kill -9 of %s: %w", a.URL(), err)
	}
	took := time.Since(at)
	recorded := 0
	for _, ti := range r.Tasks {
		if ti.Parent == mappedTask && len(ti.Tries) > 0 {
			recorded++
		}
	}
	note := fmt.Sprintf("killed once the expansion into %d instances was recorded, with %d of their tries recorded as seen just before",
		len(taskOf(r, mappedTask).MapKeys), recorded)
	return took, note, a.Restart(ctx)
}

// verifyMapping checks that every run mapped its task into exactly the instances its list
// published, each with a record of its own.
func verifyMapping(_ context.Context, _ *Cluster, runs map[string]*api.Run, p Params) (notes, problems []string) {
	n := mappedInstances(p)
	for id, r := range runs {
		parent := taskOf(r, mappedTask)
		instances := 0
		for _, ti := range r.Tasks {
			if ti.Parent == mappedTask && ti.State == "success" {
				instances++
			}
		}
		if len(parent.MapKeys) != n || instances != n {
			problems = append(problems, fmt.Sprintf("run %s: task %s has %d keys and %d instances that succeeded, want %d", id, mappedTask, len(parent.MapKeys), instances, n))
		}
	}
	notes = append(notes, fmt.Sprintf("%d runs each mapped %s into %d instances", len(runs), mappedTask, n))
	return notes, problems
}

// taskOf returns task name of run r, or an empty one.
func taskOf(r *api.Run, name string) api.TaskInstance {
	for _, ti := range r.Tasks {
		if ti.Task == name {
			return ti
		}
	}
	return api.TaskInstance{}
}
