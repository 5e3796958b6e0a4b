package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	consulapi "github.com/hashicorp/consul/api"

	"github.com/dagflow/dagflow/api"
	"github.com/dagflow/dagflow/internal/wait"
	"github.com/dagflow/dagflow/rules"
	"github.com/dagflow/dagflow/state"
)

// Targets of issue 15, part 1.
const (
	targetScaleCPUPercent = 5   // idle leader, of one core
	targetScaleRSSMiB     = 300 // idle leader
	targetListP99Ms       = 100 // GET /v1/dags (a page) and a DAG's run list
	targetPlanS           = 3   // dagflow plan over the DAG files, no changes
)

// Scale is a server with many DAGs (issue 15): apply, idle cost, list latencies, how soon a
// DAG added by an apply gets its first run, and plan over the files.
//
// Runs are written straight through the state package, as the leader writes them: every DAG
// gets a summary of its latest runs (what the DAG list reads) and RunsDAGs DAGs get RunsPerDAG
// full run records with their task instances (what a run list reads). A list reads no other
// DAG's runs, so its latency is that of every DAG having as many.
type Scale struct {
	DAGs        int `json:"dags"`
	TasksPerDAG int `json:"tasks_per_dag"`
	RunsDAGs    int `json:"runs_dags"`
	RunsPerDAG  int `json:"runs_per_dag"`

	ApplyS          float64 `json:"apply_s"`            // dagflow apply -auto-approve of every file
	ApplyRaftWrites uint64  `json:"apply_raft_writes"`  // Consul's index over the apply: its transactions and writes
	PlanNoChangeS   float64 `json:"plan_no_change_s"`   // dagflow plan once applied, the server idle
	PlanAfterApplyS float64 `json:"plan_after_apply_s"` // the same right after the apply, while the server reads the versions

	WindowS    float64 `json:"window_s"`
	RSSMiB     float64 `json:"rss_mib"`
	PeakRSSMiB float64 `json:"peak_rss_mib"` // VmHWM at the end of the idle window: the apply, the loads, the lists
	CPUPercent float64 `json:"cpu_percent"`

	// A new server process leading the same installation, once the first stopped: it reads
	// every version, run and summary as a leader taking over does, then idles as long.
	RestartRSSMiB     float64 `json:"restart_rss_mib"`
	RestartPeakRSSMiB float64 `json:"restart_peak_rss_mib"`
	RestartCPUPercent float64 `json:"restart_cpu_percent"`

	DAGListPage Latency `json:"dag_list_page"` // GET /v1/dags?per_page=100
	DAGListAll  Latency `json:"dag_list_all"`  // GET /v1/dags, every DAG
	RunList     Latency `json:"run_list"`      // GET /v1/dags/{dag}/runs, a DAG with RunsPerDAG runs
	AllRunList  Latency `json:"all_run_list"`  // GET /v1/runs, every DAG's runs through the run index

	FirstRunS float64 `json:"first_run_s"` // apply of one more DAG, due at once → its first run recorded
}

// scale measures a fresh server process with b.opts.scaleDAGs DAGs.
func (b *bench) scale(ctx context.Context) error {
	n, tasks := b.opts.scaleDAGs, 10
	sc := &Scale{DAGs: n, TasksPerDAG: tasks, RunsDAGs: min(100, n), RunsPerDAG: 100}
	b.report.Scale = sc
	const kvPrefix = "bench-scale/"

	say("scale: a fresh dagflow server process, then %d DAGs of %d tasks", n, tasks)
	s, err := startServer(ctx, serverOptions{
		Bin: b.opts.dagflow, Dir: b.dir, ConsulAddr: b.consulAddr, NomadAddr: b.nomadAddr,
		KVPrefix: kvPrefix, JobPrefix: "scale-", ServiceName: "bench-scale",
	})
	if err != nil {
		return err
	}
	defer s.Stop()
	dir := filepath.Join(b.dir, "scale")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for i := range n {
		name := fmt.Sprintf("scale_%05d", i)
		if err := os.WriteFile(filepath.Join(dir, name+".hcl"), []byte(idleHCL(name, tasks)), 0o644); err != nil {
			return err
		}
	}
	consul, err := consulapi.NewClient(&consulapi.Config{Address: b.consulAddr})
	if err != nil {
		return err
	}
	before, err := consulIndex(consul)
	if err != nil {
		return err
	}
	took, err := b.cli(ctx, "apply", "-auto-approve", "-no-color", "-kv-prefix", kvPrefix, dir)
	if err != nil {
		return err
	}
	after, err := consulIndex(consul)
	if err != nil {
		return err
	}
	sc.ApplyS, sc.ApplyRaftWrites = round(took.Seconds(), 2), after-before
	if took, err = b.cli(ctx, "plan", "-no-color", "-kv-prefix", kvPrefix, dir); err != nil {
		return err
	}
	sc.PlanAfterApplyS = round(took.Seconds(), 2)

	say("scale: writing run summaries of %d DAGs and %d runs of %d DAGs", n, sc.RunsPerDAG, sc.RunsDAGs)
	store, err := state.New(consul, kvPrefix)
	if err != nil {
		return err
	}
	if err := writeRuns(ctx, consul, store, n, sc.RunsDAGs, sc.RunsPerDAG, tasks); err != nil {
		return err
	}

	cl := mustClient(s)
	// The leader loads the new catalog in the background; wait until it serves every DAG.
	if err := waitListed(ctx, cl, n); err != nil {
		return err
	}
	wait.Sleep(ctx, b.opts.settle)
	say("scale: idle window of %s", b.opts.idle)
	idle, err := idleCost(ctx, s.Pid(), b.opts.idle)
	if err != nil {
		return err
	}
	sc.WindowS = round(idle.window.Seconds(), 1)
	sc.RSSMiB, sc.PeakRSSMiB, sc.CPUPercent = idle.rssMiB, idle.peakMiB, idle.cpuPercent

	say("scale: list latencies")
	if sc.DAGListPage, err = timeGets(ctx, s.URL+"/v1/dags?per_page=100", 50); err != nil {
		return err
	}
	if sc.DAGListAll, err = timeGets(ctx, s.URL+"/v1/dags", 10); err != nil {
		return err
	}
	if sc.RunList, err = timeGets(ctx, s.URL+"/v1/dags/scale_00000/runs", 50); err != nil {
		return err
	}
	if sc.AllRunList, err = timeGets(ctx, s.URL+"/v1/runs", 50); err != nil {
		return err
	}
	// Where plan usually runs (a CI job on a change of the DAG files): against a cluster that
	// is not taking over 10,000 new versions at the same moment, on these 2 cores.
	if took, err = b.cli(ctx, "plan", "-no-color", "-kv-prefix", kvPrefix, dir); err != nil {
		return err
	}
	sc.PlanNoChangeS = round(took.Seconds(), 2)

	say("scale: the server restarted: a new process leads the %d DAGs", n)
	s.Stop()
	if s, err = startServer(ctx, serverOptions{
		Bin: b.opts.dagflow, Dir: b.dir, ConsulAddr: b.consulAddr, NomadAddr: b.nomadAddr,
		KVPrefix: kvPrefix, JobPrefix: "scale-", ServiceName: "bench-scale-2",
	}); err != nil {
		return err
	}
	defer s.Stop()
	cl = mustClient(s)
	if err := waitListed(ctx, cl, n); err != nil {
		return err
	}
	wait.Sleep(ctx, b.opts.settle)
	idle, err = idleCost(ctx, s.Pid(), b.opts.idle)
	if err != nil {
		return err
	}
	sc.RestartRSSMiB, sc.RestartPeakRSSMiB, sc.RestartCPUPercent = idle.rssMiB, idle.peakMiB, idle.cpuPercent

	say("scale: one more DAG, due at once")
	extra := "scale_new"
	src := fmt.Sprintf("dag %q {\n  schedule   = \"@hourly\"\n  start_date = \"2026-01-01\"\n  catchup    = \"latest\"\n%s  task \"t\" {}\n}\n", extra, noop)
	if err := os.WriteFile(filepath.Join(dir, extra+".hcl"), []byte(src), 0o644); err != nil {
		return err
	}
	if _, err := b.cli(ctx, "apply", "-auto-approve", "-no-color", "-kv-prefix", kvPrefix, dir); err != nil {
		return err
	}
	applied := time.Now()
	for {
		runs, _, err := cl.Runs().List(ctx, &api.RunListOptions{DAG: extra})
		if err == nil && len(runs) > 0 {
			break
		}
		if time.Since(applied) > 2*time.Minute {
			return fmt.Errorf("the DAG applied last has no run after 2 minutes (%v); see %s", err, s.LogPath)
		}
		wait.Sleep(ctx, 20*time.Millisecond)
	}
	sc.FirstRunS = round(time.Since(applied).Seconds(), 2)
	return ctx.Err()
}

// idleStats is what a process cost over an idle window.
type idleStats struct {
	window          time.Duration
	rssMiB, peakMiB float64 // VmRSS and VmHWM at the end of the window
	cpuPercent      float64 // of one core, over the window
}

// idleCost reads process pid's CPU over a window of d, and its memory at the end.
func idleCost(ctx context.Context, pid int, d time.Duration) (idleStats, error) {
	first, err := readProc(pid)
	if err != nil {
		return idleStats{}, err
	}
	startAt := time.Now()
	wait.Sleep(ctx, d)
	last, err := readProc(pid)
	if err != nil {
		return idleStats{}, err
	}
	window := time.Since(startAt)
	return idleStats{window: window, rssMiB: mib(last.RSS), peakMiB: mib(last.PeakRSS),
		cpuPercent: round(100*(last.CPU-first.CPU).Seconds()/window.Seconds(), 2)}, ctx.Err()
}

// consulIndex is Consul's current Raft index as KV reads report it.
func consulIndex(c *consulapi.Client) (uint64, error) {
	_, meta, err := c.KV().Get("bench-index-probe", nil)
	if err != nil {
		return 0, err
	}
	return meta.LastIndex, nil
}

// writeRuns writes, as the leader would, a summary of SummaryRuns finished runs for each of n
// DAGs and perDAG finished runs with their task instances and index entries for the first
// withRuns DAGs.
func writeRuns(ctx context.Context, consul *consulapi.Client, store *state.Store, n, withRuns, perDAG, tasks int) error {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	record := func(dag string, i int) *state.RunRecord {
		at := start.Add(time.Duration(i) * time.Hour)
		r := state.Run{DAG: dag, ID: rules.RunID(rules.RunScheduled, at), Type: rules.RunScheduled, Version: "bench",
			LogicalDate: at, DataIntervalStart: at, DataIntervalEnd: at.Add(time.Hour), State: state.RunSuccess,
			CreatedAt: at, StartedAt: at, EndedAt: at.Add(time.Minute)}
		rec := &state.RunRecord{Run: r, Tasks: map[string]*state.TaskInstance{}}
		for t := range tasks {
			name := taskName(t, tasks)
			rec.Tasks[name] = &state.TaskInstance{DAG: dag, RunID: r.ID, Task: name, State: rules.Success,
				Tries: []state.Try{{Try: 1, JobID: dag + "-" + name, State: rules.Success, StartedAt: at, EndedAt: at.Add(time.Second)}}}
		}
		return rec
	}
	var ops consulapi.TxnOps
	for d := range n {
		dag := fmt.Sprintf("scale_%05d", d)
		sum := &state.Summary{DAG: dag}
		runs := perDAG
		if d >= withRuns {
			runs = state.SummaryRuns
		}
		for i := range runs {
			rec := record(dag, i)
			sum.Recent = state.Add(sum.Recent, state.Summarize(rec))
			if d >= withRuns {
				continue
			}
			op, err := store.PutRunOp(&rec.Run)
			if err != nil {
				return err
			}
			idx, err := store.PutIndexOp(state.IndexEntry{DAG: dag, ID: rec.Run.ID, LogicalDate: rec.Run.LogicalDate, State: rec.Run.State})
			if err != nil {
				return err
			}
			ops = append(ops, op, idx)
			for _, ti := range rec.Tasks {
				op, err := store.PutTaskOp(ti)
				if err != nil {
					return err
				}
				ops = append(ops, op)
			}
		}
		op, err := store.PutSummaryOp(sum)
		if err != nil {
			return err
		}
		ops = append(ops, op)
	}
	for _, batch := range state.SplitTxn(ops, 64) {
		ok, resp, _, err := consul.Txn().Txn(batch, (&consulapi.QueryOptions{}).WithContext(ctx))
		if err != nil {
			return fmt.Errorf("write bench runs: %w", err)
		}
		if !ok {
			return fmt.Errorf("write bench runs: %v", resp.Errors)
		}
	}
	return nil
}

// waitListed waits until the server lists n DAGs.
func waitListed(ctx context.Context, cl *api.Client, n int) error {
	deadline := time.Now().Add(5 * time.Minute)
	for {
		dags, _, err := cl.DAGs().List(ctx, nil)
		if err == nil && len(dags) == n {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the server lists %d DAGs after 5 minutes, want %d (%v)", len(dags), n, err)
		}
		wait.Sleep(ctx, time.Second)
	}
}

// timeGets sends k GETs of url, one after another, and summarizes how long each took to
// answer in full. The bench's servers let anonymous callers in.
func timeGets(ctx context.Context, url string, k int) (Latency, error) {
	var ds []time.Duration
	for range k {
		req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
		if err != nil {
			return Latency{}, err
		}
		start := time.Now()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return Latency{}, err
		}
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil {
			return Latency{}, err
		}
		if resp.StatusCode != 200 {
			return Latency{}, fmt.Errorf("GET %s: %s", url, resp.Status)
		}
		ds = append(ds, time.Since(start))
	}
	return summarize(ds), nil
}

// targets judges the scale figures against issue 15's targets.
func (sc *Scale) targets() []Target {
	return []Target{
		{Name: "scale, idle leader CPU", Goal: fmt.Sprintf("at most %d%% of a core", targetScaleCPUPercent),
			Measured: fmt.Sprintf("%.2f%%", sc.CPUPercent), Met: sc.WindowS > 0 && sc.CPUPercent <= targetScaleCPUPercent},
		{Name: "scale, idle leader RSS", Goal: fmt.Sprintf("at most %d MiB", targetScaleRSSMiB),
			Measured: fmt.Sprintf("%.0f MiB", sc.RSSMiB), Met: sc.RSSMiB > 0 && sc.RSSMiB <= targetScaleRSSMiB},
		{Name: "scale, DAG list page p99", Goal: fmt.Sprintf("at most %d ms", targetListP99Ms),
			Measured: fmt.Sprintf("%.0f ms", sc.DAGListPage.P99Ms), Met: sc.DAGListPage.N > 0 && sc.DAGListPage.P99Ms <= targetListP99Ms},
		{Name: "scale, run list p99", Goal: fmt.Sprintf("at most %d ms", targetListP99Ms),
			Measured: fmt.Sprintf("%.0f ms", sc.RunList.P99Ms), Met: sc.RunList.N > 0 && sc.RunList.P99Ms <= targetListP99Ms},
		{Name: "scale, every DAG's run list p99", Goal: fmt.Sprintf("at most %d ms", targetListP99Ms),
			Measured: fmt.Sprintf("%.0f ms", sc.AllRunList.P99Ms), Met: sc.AllRunList.N > 0 && sc.AllRunList.P99Ms <= targetListP99Ms},
		{Name: "scale, plan", Goal: fmt.Sprintf("at most %d s", targetPlanS),
			Measured: fmt.Sprintf("%.2f s", sc.PlanNoChangeS), Met: sc.PlanNoChangeS > 0 && sc.PlanNoChangeS <= targetPlanS},
	}
}

// writeScale adds the scale figures to the markdown table.
func writeScale(b *strings.Builder, r *Report, sc *Scale) {
	fmt.Fprintf(b, "| scale: `dagflow apply -auto-approve`, %d DAGs × %d tasks | %.2f s, %d Consul Raft writes | | | | |\n", sc.DAGs, sc.TasksPerDAG, sc.ApplyS, sc.ApplyRaftWrites)
	fmt.Fprintf(b, "| scale: idle leader, %d DAGs, over %.0f s | %.2f%% of a core, %.0f MiB RSS | | | | ≤ %d%%, ≤ %d MiB: %s, %s |\n", sc.DAGs, sc.WindowS, sc.CPUPercent, sc.RSSMiB,
		targetScaleCPUPercent, targetScaleRSSMiB, r.met("scale, idle leader CPU"), r.met("scale, idle leader RSS"))
	fmt.Fprintf(b, "| scale: peak RSS before the idle window (apply, loads, lists) | %.0f MiB | | | | |\n", sc.PeakRSSMiB)
	fmt.Fprintf(b, "| scale: idle leader restarted (a new process reads every version, run and summary) | %.2f%% of a core, %.0f MiB RSS (peak %.0f MiB) | | | | |\n", sc.RestartCPUPercent, sc.RestartRSSMiB, sc.RestartPeakRSSMiB)
	fmt.Fprintf(b, "| scale: `GET /v1/dags?per_page=100` / all %d, p50 / p99 | %.0f / %.0f ms; %.0f / %.0f ms | | | | p99 ≤ %d ms (page): %s |\n", sc.DAGs,
		sc.DAGListPage.P50Ms, sc.DAGListPage.P99Ms, sc.DAGListAll.P50Ms, sc.DAGListAll.P99Ms, targetListP99Ms, r.met("scale, DAG list page p99"))
	fmt.Fprintf(b, "| scale: a DAG's run list, %d runs, p50 / p99 | %.0f / %.0f ms | | | | p99 ≤ %d ms: %s |\n", sc.RunsPerDAG, sc.RunList.P50Ms, sc.RunList.P99Ms, targetListP99Ms, r.met("scale, run list p99"))
	fmt.Fprintf(b, "| scale: `GET /v1/runs` (every DAG's, a page of 50 of %d runs), p50 / p99 | %.0f / %.0f ms | | | | p99 ≤ %d ms: %s |\n", sc.RunsDAGs*sc.RunsPerDAG, sc.AllRunList.P50Ms, sc.AllRunList.P99Ms, targetListP99Ms, r.met("scale, every DAG's run list p99"))
	fmt.Fprintf(b, "| scale: apply of one more DAG → its first run | %.2f s | | | | |\n", sc.FirstRunS)
	fmt.Fprintf(b, "| scale: `dagflow plan`, %d files, no changes, server idle (right after the apply) | %.2f s (%.2f s) | | | | ≤ %d s: %s |\n", sc.DAGs, sc.PlanNoChangeS, sc.PlanAfterApplyS, targetPlanS, r.met("scale, plan"))
}
