package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/dagflow/dagflow/api"
	"github.com/dagflow/dagflow/internal/wait"
	"github.com/dagflow/dagflow/nomadexec"
)

// Job ID prefixes of what the bench runs; none starts another.
const (
	dagflowJobPrefix = "bdf-"       // the jobs of the measured server
	floorChainPrefix = "bfl-chain-" // the raw floor's chain
	rawFanoutPrefix  = "bfl-fan-"   // the raw fan-out
	idleJobPrefix    = "bidle-"     // the idle server's (it runs none)
)

// bench holds what the phases share.
type bench struct {
	opts       options
	dir        string // temp dir for DAG files, configs and logs
	consulAddr string // 127.0.0.1:PORT
	nomadAddr  string // http://127.0.0.1:PORT
	nomad      *nomadapi.Client
	nomadPid   int // 0 when not found: its CPU then reads 0
	consulPid  int
	report     *Report
}

// say prints progress to stderr, so stdout holds the table alone.
func say(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "==> "+format+"\n", args...)
}

// cli runs the dagflow CLI against the bench's agents and returns how long it took. Its
// output is discarded unless it fails.
func (b *bench) cli(ctx context.Context, args ...string) (time.Duration, error) {
	cmd := exec.CommandContext(ctx, b.opts.dagflow, args...)
	cmd.Env = append(os.Environ(), "CONSUL_HTTP_ADDR="+b.consulAddr, "NOMAD_ADDR="+b.nomadAddr)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	took := time.Since(start)
	if err != nil {
		tail := out.String()
		if len(tail) > 2000 {
			tail = tail[len(tail)-2000:]
		}
		return took, fmt.Errorf("dagflow %s: %w\n%s", strings.Join(args, " "), err, tail)
	}
	return took, nil
}

// apply writes src to a file and applies it to the installation under kvPrefix.
func (b *bench) apply(ctx context.Context, kvPrefix, name, src string) error {
	path := filepath.Join(b.dir, name+".hcl")
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		return err
	}
	_, err := b.cli(ctx, "apply", "-auto-approve", "-no-color", "-kv-prefix", kvPrefix, path)
	return err
}

// runDAG triggers a manual run of dag, whose tasks are tasks, waits until Nomad says all their
// jobs are done, then until the run is recorded a success. It returns when the trigger was
// sent, the IDs of the jobs in the order of tasks, and Nomad's times of the jobs.
//
// It does not poll the run while it runs: reading a run reads every task record from Consul
// and encodes it, and polling a 500-task run four times a second took half the server's CPU.
// Nomad is polled instead, as for raw Nomad.
func (b *bench) runDAG(ctx context.Context, s *serverProc, dag string, tasks []string, timeout time.Duration) (time.Time, []string, map[string]*jobTimes, error) {
	client, err := s.Client()
	if err != nil {
		return time.Time{}, nil, nil, err
	}
	start := time.Now()
	res, err := client.DAGs().Trigger(ctx, dag, &api.TriggerRequest{})
	if err != nil {
		return start, nil, nil, fmt.Errorf("trigger %s: %w", dag, err)
	}
	if len(res.RunIDs) != 1 {
		return start, nil, nil, fmt.Errorf("trigger %s: got runs %v (queued %v: %s)", dag, res.RunIDs, res.Queued, res.Message)
	}
	runID := res.RunIDs[0]
	ids := make([]string, len(tasks))
	for i, t := range tasks {
		ids[i] = nomadexec.JobID(dagflowJobPrefix, nomadexec.Attempt{DAG: dag, RunID: runID, Task: t, Try: 1})
	}
	times, err := waitTerminal(ctx, b.nomad, dagflowJobPrefix, ids, timeout)
	if err != nil {
		return start, nil, nil, fmt.Errorf("run %s of %s: %w (server log: %s)", runID, dag, err, s.LogPath)
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for {
		r, _, err := client.Runs().Info(ctx, dag, runID)
		if err == nil && (r.State == "success" || r.State == "failed") {
			if r.State != "success" {
				return start, nil, nil, fmt.Errorf("run %s of %s failed (server log: %s)", r.ID, dag, s.LogPath)
			}
			got, err := jobIDs(r, tasks)
			if err != nil {
				return start, nil, nil, err
			}
			if !slices.Equal(got, ids) {
				return start, nil, nil, fmt.Errorf("run %s of %s ran jobs %v, want %v", r.ID, dag, got, ids)
			}
			return start, ids, times, nil
		}
		select {
		case <-ctx.Done():
			return start, nil, nil, fmt.Errorf("run %s of %s: jobs done, but the run not recorded finished (last error: %v)", runID, dag, err)
		case <-time.After(pollEvery):
		}
	}
}

// jobIDs returns the job ID of the first try of every task of r, in the order of names.
func jobIDs(r *api.Run, names []string) ([]string, error) {
	byTask := map[string]string{}
	for _, t := range r.Tasks {
		if len(t.Tries) != 1 {
			return nil, fmt.Errorf("task %s of run %s has %d tries, want 1", t.Task, r.ID, len(t.Tries))
		}
		byTask[t.Task] = t.Tries[0].JobID
	}
	ids := make([]string, len(names))
	for i, n := range names {
		if ids[i] = byTask[n]; ids[i] == "" {
			return nil, fmt.Errorf("run %s has no task %s", r.ID, n)
		}
	}
	return ids, nil
}

func names(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = taskName(i, n)
	}
	return out
}

func jobIDsOf(jobs []*nomadapi.Job) []string {
	ids := make([]string, len(jobs))
	for i, j := range jobs {
		ids[i] = *j.ID
	}
	return ids
}

// sample is a reading of what a phase costs so far: the server's metrics (none for a raw
// phase) and the CPU time of the processes involved.
type sample struct {
	metrics             map[string]float64
	orch, nomad, consul time.Duration
}

// sample reads the metrics of s and the CPU of s (or, when s is nil, of the bench itself,
// which then runs the raw loop), Nomad and Consul.
func (b *bench) sample(ctx context.Context, s *serverProc) (sample, error) {
	var sm sample
	pid := os.Getpid()
	if s != nil {
		pid = s.Pid()
		m, err := s.Metrics(ctx)
		if err != nil {
			return sm, err
		}
		sm.metrics = m
	}
	sm.orch, sm.nomad, sm.consul = cpuOf(pid), cpuOf(b.nomadPid), cpuOf(b.consulPid)
	return sm, nil
}

// cpuPerJob returns the CPU used between two samples, per job.
func cpuPerJob(a, z sample, jobs int) CPU {
	per := func(d time.Duration) float64 { return round(float64(d)/float64(time.Millisecond)/float64(jobs), 2) }
	return CPU{OrchestratorMs: per(z.orch - a.orch), NomadMs: per(z.nomad - a.nomad), ConsulMs: per(z.consul - a.consul)}
}

// costSum adds up what the engine wrote and the server's CPU over one or more phases.
type costSum struct {
	tries, txns, ops, bytes float64
	cpu                     time.Duration
}

// add adds what happened between samples a and z of the server.
func (c *costSum) add(a, z sample) {
	d := func(name string) float64 { return z.metrics[name] - a.metrics[name] }
	c.tries += d("dagflow_task_attempts_finished_total")
	c.txns += d("dagflow_kv_transactions_total")
	c.ops += d("dagflow_kv_operations_total")
	c.bytes += d("dagflow_kv_bytes_total")
	c.cpu += z.orch - a.orch
}

// perTry returns the sums per try finished.
func (c *costSum) perTry() TryCost {
	if c.tries <= 0 {
		return TryCost{}
	}
	return TryCost{
		Tries:       int(c.tries),
		TxnsPerTry:  round(c.txns/c.tries, 2),
		OpsPerTry:   round(c.ops/c.tries, 2),
		BytesPerTry: round(c.bytes/c.tries, 0),
		CPUMsPerTry: round(float64(c.cpu)/float64(time.Millisecond)/c.tries, 2),
	}
}

// dagflowRun applies src (once per installation is enough, again is harmless), runs DAG dag
// of n tasks on s, and returns Nomad's times of its jobs in task order, when it was triggered,
// and samples from before the trigger and after the run.
func (b *bench) dagflowRun(ctx context.Context, s *serverProc, dag, src string, n int, timeout time.Duration) (times map[string]*jobTimes, ids []string, start time.Time, before, after sample, err error) {
	if err = b.apply(ctx, b.opts.kvPrefix, dag, src); err != nil {
		return
	}
	if before, err = b.sample(ctx, s); err != nil {
		return
	}
	start, ids, times, err = b.runDAG(ctx, s, dag, names(n), timeout)
	if err != nil {
		return
	}
	wait.Sleep(ctx, time.Second) // let the run's last write reach the metrics
	if after, err = b.sample(ctx, s); err != nil {
		return
	}
	return times, ids, start, before, after, err
}

// handoff measures edge hand-off on a linear chain: the raw floor first, then dagflow.
func (b *bench) handoff(ctx context.Context, s *serverProc) error {
	n := b.opts.chain
	h := &b.report.Handoff
	h.Tasks = n
	src := chainHCL("bench_chain", n)
	dag, err := parseDAG(src)
	if err != nil {
		return err
	}

	b.quiesce(ctx)
	say("edge hand-off: raw floor, a %d-task chain through the Nomad API and event stream", n)
	jobs, err := rawJobs(floorChainPrefix, dag, "floor")
	if err != nil {
		return err
	}
	pctx, stopPolls := context.WithCancel(ctx)
	go pollWhile(pctx, b.nomad, floorChainPrefix)
	err = floorChain(ctx, b.nomad, jobs)
	stopPolls()
	if err != nil {
		return fmt.Errorf("floor chain: %w", err)
	}
	ids := jobIDsOf(jobs)
	times, err := waitTerminal(ctx, b.nomad, floorChainPrefix, ids, time.Minute)
	if err != nil {
		return err
	}
	if h.Floor, err = edgeFigures(times, ids); err != nil {
		return err
	}
	if err := b.collectGarbage(ctx); err != nil {
		return err
	}

	say("edge hand-off: dagflow, the same chain")
	times, ids, _, before, after, err := b.dagflowRun(ctx, s, "bench_chain", src, n, 10*time.Minute)
	if err != nil {
		return err
	}
	var cost costSum
	cost.add(before, after)
	b.report.Cost.Chain = cost.perTry()
	if h.Dagflow, err = edgeFigures(times, ids); err != nil {
		return err
	}
	return b.collectGarbage(ctx)
}

// edgeFigures summarizes the edges of a chain.
func edgeFigures(times map[string]*jobTimes, chain []string) (EdgeFigures, error) {
	reg, started, err := edges(times, chain)
	if err != nil {
		return EdgeFigures{}, err
	}
	first, last := times[chain[0]].Submit, times[chain[len(chain)-1]].Finished
	return EdgeFigures{
		Registered: summarize(reg),
		Started:    summarize(started),
		ChainS:     round(last.Sub(first).Seconds(), 2),
	}, nil
}

// rateOf computes a fan-out's rates from Nomad's times of its jobs and when it started.
func rateOf(times map[string]*jobTimes, ids []string, start time.Time) Rate {
	var submits []time.Time
	var lastFinish time.Time
	for _, id := range ids {
		j := times[id]
		submits = append(submits, j.Submit)
		if j.Finished.After(lastFinish) {
			lastFinish = j.Finished
		}
	}
	slices.SortFunc(submits, func(a, b time.Time) int { return a.Compare(b) })
	r := Rate{Jobs: len(ids)}
	// The middle 80% of the registrations: a stall of one registration at either end, which
	// a loaded machine produces now and then, does not decide the rate.
	lo, hi := len(submits)/10, len(submits)-1-len(submits)/10
	if span := submits[hi].Sub(submits[lo]).Seconds(); span > 0 {
		r.RegisterPerS = round(float64(hi-lo)/span, 1)
	}
	r.RegisterS = round(submits[len(submits)-1].Sub(submits[0]).Seconds(), 3)
	r.FirstRegisteredS = round(submits[0].Sub(start).Seconds(), 3)
	r.CompleteS = round(lastFinish.Sub(start).Seconds(), 2)
	if r.CompleteS > 0 {
		r.CompletePerS = round(float64(len(ids))/lastFinish.Sub(start).Seconds(), 1)
	}
	return r
}

// throughput measures a fan-out in rounds, each a plain registration loop, then dagflow.
func (b *bench) throughput(ctx context.Context, s *serverProc) error {
	n, c := b.opts.fanout, b.opts.concurrency
	t := &b.report.Throughput
	t.Tasks, t.Concurrency = n, c
	src := fanoutHCL("bench_fanout", n)
	dag, err := parseDAG(src)
	if err != nil {
		return err
	}
	b.quiesce(ctx)
	var cost costSum
	for round := 1; round <= b.opts.rounds; round++ {
		var rd Round
		raw := func() error {
			say("throughput, round %d of %d: raw Nomad, %d registrations, %d in flight", round, b.opts.rounds, n, c)
			jobs, err := rawJobs(rawFanoutPrefix, dag, fmt.Sprintf("raw%d", round))
			if err != nil {
				return err
			}
			before, err := b.sample(ctx, nil)
			if err != nil {
				return err
			}
			start := time.Now()
			if err := registerAll(ctx, b.nomad, jobs, c); err != nil {
				return fmt.Errorf("raw fan-out: %w", err)
			}
			ids := jobIDsOf(jobs)
			times, err := waitTerminal(ctx, b.nomad, rawFanoutPrefix, ids, 10*time.Minute)
			if err != nil {
				return err
			}
			after, err := b.sample(ctx, nil)
			if err != nil {
				return err
			}
			rd.Raw = rateOf(times, ids, start)
			rd.Raw.CPU = cpuPerJob(before, after, n)
			return b.collectGarbage(ctx)
		}
		dagflow := func() error {
			say("throughput, round %d of %d: dagflow, a %d-task fan-out", round, b.opts.rounds, n)
			times, ids, start, before, after, err := b.dagflowRun(ctx, s, "bench_fanout", src, n, 15*time.Minute)
			if err != nil {
				return err
			}
			cost.add(before, after)
			rd.Dagflow = rateOf(times, ids, start)
			rd.Dagflow.CPU = cpuPerJob(before, after, n)
			return b.collectGarbage(ctx)
		}
		// Odd rounds go raw first, even rounds dagflow first, so that neither always runs
		// in the wake of the other.
		first, second := raw, dagflow
		if round%2 == 0 {
			first, second = dagflow, raw
		}
		if err := first(); err != nil {
			return err
		}
		if err := second(); err != nil {
			return err
		}
		rd.RegisterRatio = ratio(rd.Dagflow.RegisterPerS, rd.Raw.RegisterPerS)
		rd.CompleteRatio = ratio(rd.Dagflow.CompletePerS, rd.Raw.CompletePerS)
		t.Rounds = append(t.Rounds, rd)
	}
	b.report.Cost.Fanout = cost.perTry()
	t.summarize()
	return nil
}

// idle applies many DAGs to a fresh server process and measures its memory and CPU while it
// has nothing to run, and the CLI's plan and apply over their files.
func (b *bench) idle(ctx context.Context) error {
	n, tasks := b.opts.dags, 10
	c := &b.report.Cost
	c.Idle.DAGs, c.Idle.TasksPerDAG, c.Plan.Files = n, tasks, n
	const kvPrefix = "bench-idle/"

	say("cost: a fresh dagflow server process, then %d DAGs of %d tasks", n, tasks)
	s, err := startServer(ctx, serverOptions{
		Bin: b.opts.dagflow, Dir: b.dir, ConsulAddr: b.consulAddr, NomadAddr: b.nomadAddr,
		KVPrefix: kvPrefix, JobPrefix: idleJobPrefix, ServiceName: "bench-idle",
	})
	if err != nil {
		return err
	}
	defer s.Stop()
	dir := filepath.Join(b.dir, "idle")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for i := range n {
		name := fmt.Sprintf("idle_%04d", i)
		if err := os.WriteFile(filepath.Join(dir, name+".hcl"), []byte(idleHCL(name, tasks)), 0o644); err != nil {
			return err
		}
	}
	wait.Sleep(ctx, b.opts.settle)
	empty, err := readProc(s.Pid())
	if err != nil {
		return err
	}
	c.Idle.RSSEmptyMiB = mib(empty.RSS)

	took, err := b.cli(ctx, "plan", "-no-color", "-kv-prefix", kvPrefix, dir)
	if err != nil {
		return err
	}
	c.Plan.CreateS = round(took.Seconds(), 2)
	if took, err = b.cli(ctx, "apply", "-auto-approve", "-no-color", "-kv-prefix", kvPrefix, dir); err != nil {
		return err
	}
	c.Plan.ApplyS = round(took.Seconds(), 2)
	if took, err = b.cli(ctx, "plan", "-no-color", "-kv-prefix", kvPrefix, dir); err != nil {
		return err
	}
	c.Plan.NoChangeS = round(took.Seconds(), 2)
	if dags, _, err := mustClient(s).DAGs().List(ctx, nil); err != nil || len(dags) != n {
		return fmt.Errorf("applied %d DAGs, the server lists %d (%v)", n, len(dags), err)
	}

	// The leader loads the new catalog in the background; let it settle before measuring.
	wait.Sleep(ctx, b.opts.settle)
	say("cost: idle window of %s", b.opts.idle)
	first, err := readProc(s.Pid())
	if err != nil {
		return err
	}
	startAt := time.Now()
	wait.Sleep(ctx, b.opts.idle)
	last, err := readProc(s.Pid())
	if err != nil {
		return err
	}
	window := time.Since(startAt)
	c.Idle.WindowS = round(window.Seconds(), 1)
	c.Idle.RSSMiB = mib(last.RSS)
	c.Idle.PeakRSSMiB = mib(last.PeakRSS)
	c.Idle.CPUPercent = round(100*(last.CPU-first.CPU).Seconds()/window.Seconds(), 2)
	if h, err := mustClient(s).Status().Health(ctx); err != nil || h.Role != "active" {
		return fmt.Errorf("idle server is no longer active (%v); see %s", err, s.LogPath)
	}
	return ctx.Err()
}

func mustClient(s *serverProc) *api.Client {
	c, err := s.Client()
	if err != nil {
		panic(err) // the URL is built by startServer and always parses
	}
	return c
}

func mib(b int64) float64 { return round(float64(b)/(1<<20), 1) }
