package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/dagflow/dagflow/hcl/spec"
	"github.com/dagflow/dagflow/internal/wait"
	"github.com/dagflow/dagflow/nomadexec"
)

// Mapping is the cost of a task mapped over an upstream's outputs: how long from the upstream
// task's end (Nomad's FinishedAt) until every instance's job was registered (the latest
// SubmitTime) and finished, and what the engine wrote to Consul for the run.
type Mapping struct {
	Instances     int     `json:"instances"`
	RegisteredS   float64 `json:"upstream_finished_to_all_registered_s"`
	CompletedS    float64 `json:"upstream_finished_to_all_finished_s"`
	KVTxns        int     `json:"kv_transactions"`
	KVOps         int     `json:"kv_operations"` // keys written, the expansion's record among them
	KVBytes       int     `json:"kv_bytes"`
	KVOpsPerInst  float64 `json:"kv_operations_per_instance"`
	ServerCPUMs   float64 `json:"server_cpu_ms"`
	RegisterPerS  float64 `json:"instances_registered_per_s"`
	CompletedPerS float64 `json:"instances_finished_per_s"`
}

// mappedHCL is a DAG whose task list publishes n items and whose task each, a no-op, is mapped
// over them, with room for every instance at once.
func mappedHCL(name string, n int) string {
	items := make([]string, n)
	for i := range items {
		items[i] = strconv.Itoa(i)
	}
	return fmt.Sprintf(`dag %q {
  max_active_tasks = %d
%s  task "list" {
    command = "/bin/sh"
    args    = ["-c", %q]
  }
  task "each" {
    for_each       = tasks.list.outputs.items
    max_map_length = %d
  }
}
`, name, n, noop, `echo '{"items": [`+strings.Join(items, ",")+`]}' > "$DAGFLOW_OUTPUT"`, n)
}

// mapping runs a DAG with a task mapped over n outputs on s.
func (b *bench) mapping(ctx context.Context, s *serverProc) error {
	n := b.opts.mapped
	const dag = "bench_map"
	say("mapping: a task mapped over %d outputs", n)
	if err := b.apply(ctx, b.opts.kvPrefix, dag, mappedHCL(dag, n)); err != nil {
		return err
	}
	b.quiesce(ctx)
	before, err := b.sample(ctx, s)
	if err != nil {
		return err
	}
	client, err := s.Client()
	if err != nil {
		return err
	}
	res, err := client.DAGs().Trigger(ctx, dag, nil)
	if err != nil || len(res.RunIDs) != 1 {
		return fmt.Errorf("trigger %s: %v %v", dag, res, err)
	}
	id := res.RunIDs[0]
	jobID := func(task string) string {
		return nomadexec.JobID(dagflowJobPrefix, nomadexec.Attempt{DAG: dag, RunID: id, Task: task, Try: 1})
	}
	ids := []string{jobID("list")}
	for i := range n {
		ids = append(ids, jobID(spec.InstanceName("each", strconv.Itoa(i))))
	}
	times, err := waitTerminal(ctx, b.nomad, dagflowJobPrefix, ids, 15*time.Minute)
	if err != nil {
		return fmt.Errorf("run %s of %s: %w (server log: %s)", id, dag, err, s.LogPath)
	}
	wait.Sleep(ctx, time.Second) // let the run's last write reach the metrics
	after, err := b.sample(ctx, s)
	if err != nil {
		return err
	}
	up := times[ids[0]].Finished
	var registered, finished time.Time
	for _, j := range ids[1:] {
		t := times[j]
		if t.Submit.After(registered) {
			registered = t.Submit
		}
		if t.Finished.After(finished) {
			finished = t.Finished
		}
	}
	d := func(name string) float64 { return after.metrics[name] - before.metrics[name] }
	m := &Mapping{
		Instances:   n,
		RegisteredS: round(registered.Sub(up).Seconds(), 2),
		CompletedS:  round(finished.Sub(up).Seconds(), 2),
		KVTxns:      int(d("dagflow_kv_transactions_total")),
		KVOps:       int(d("dagflow_kv_operations_total")),
		KVBytes:     int(d("dagflow_kv_bytes_total")),
		ServerCPUMs: round(float64(after.orch-before.orch)/float64(time.Millisecond), 0),
	}
	m.KVOpsPerInst = round(float64(m.KVOps)/float64(n), 2)
	if s := registered.Sub(up).Seconds(); s > 0 {
		m.RegisterPerS = round(float64(n)/s, 1)
	}
	if s := finished.Sub(up).Seconds(); s > 0 {
		m.CompletedPerS = round(float64(n)/s, 1)
	}
	b.report.Mapping = m
	return b.collectGarbage(ctx)
}
