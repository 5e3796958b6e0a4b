package main

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// Targets of issue 6: what the figures are judged against.
const (
	// targetHandoffMs is the most an edge hand-off may add to the raw floor at p50.
	targetHandoffMs = 50
	// targetRegisterRatio is the least registration throughput, against raw Nomad's at the
	// same concurrency.
	targetRegisterRatio = 0.9
	// targetKVWrites is the most Consul KV writes per task attempt.
	targetKVWrites = 3
	// targetKillMs and targetCleanMs are the most a failover may take at p99, from the
	// active server's kill -9 or clean shutdown to the new leader's first write.
	targetKillMs  = 5000
	targetCleanMs = 1000
)

// Report is everything one bench run measured; it is what the JSON file holds.
type Report struct {
	Schema     int        `json:"schema"` // 1; bumped when a field changes meaning
	StartedAt  time.Time  `json:"started_at"`
	DurationS  float64    `json:"duration_s"`
	Machine    Machine    `json:"machine"`
	Handoff    Handoff    `json:"handoff"`
	Throughput Throughput `json:"throughput"`
	Cost       Cost       `json:"cost"`
	// Failover is measured with internal/serverproc (kill -9 and clean shutdown of the
	// active server); null when the failover phase did not run.
	Failover *Failover `json:"failover"`
	// Mapping is the cost of a task mapped over outputs; null when the mapping phase did not
	// run.
	Mapping *Mapping `json:"mapping,omitempty"`
	// Scale is a server with many DAGs; null when the scale phase did not run.
	Scale *Scale `json:"scale,omitempty"`
	// Sensors is the cost of many sensors waiting; null when the sensors phase did not run.
	Sensors *Sensors `json:"sensors,omitempty"`
	Targets []Target `json:"targets"`
}

// Machine describes where the run happened; a loaded machine explains odd figures.
type Machine struct {
	CPUs         int    `json:"cpus"`
	LoadAvgStart string `json:"loadavg_start"` // /proc/loadavg when the run started
	LoadAvgEnd   string `json:"loadavg_end"`
}

// EdgeFigures are the per-edge latencies of one linear chain, from Nomad's own times: the
// upstream task's FinishedAt to the downstream job's SubmitTime (registered) and to the
// downstream task's StartedAt (started).
type EdgeFigures struct {
	Registered Latency `json:"finished_to_registered"`
	Started    Latency `json:"finished_to_started"`
	ChainS     float64 `json:"chain_s"` // first job registered to last task finished
}

// Handoff compares dagflow's edge hand-off with the raw floor: the same chain driven through
// the Nomad API and event stream directly.
type Handoff struct {
	Tasks   int         `json:"tasks"`
	Dagflow EdgeFigures `json:"dagflow"`
	Floor   EdgeFigures `json:"floor"`
}

// Rate is how one system got through a fan-out.
type Rate struct {
	Jobs int `json:"jobs"`
	// RegisterPerS is the rate of the middle 80% of the registrations: the jobs between the
	// 10th and the 90th percentile of SubmitTime over the time between them.
	RegisterPerS float64 `json:"register_per_s"`
	// RegisterS is from the first job's SubmitTime to the last's.
	RegisterS float64 `json:"register_s"`
	// FirstRegisteredS is from the start (the trigger sent, or the loop started) to the first
	// SubmitTime.
	FirstRegisteredS float64 `json:"first_registered_s"`
	// CompletePerS is jobs over the span from the start to the last task's FinishedAt.
	CompletePerS float64 `json:"complete_per_s"`
	CompleteS    float64 `json:"complete_s"`
	// CPU is what the processes involved used from the start to the last finish.
	CPU CPU `json:"cpu"`
}

// CPU is CPU time used, per job, by the orchestrator (the dagflow server, or the bench's raw
// loop), the Nomad agent (server and client in one process; the tasks' executor and logmon
// processes are not counted) and the Consul agent.
type CPU struct {
	OrchestratorMs float64 `json:"orchestrator_ms_per_job"`
	NomadMs        float64 `json:"nomad_ms_per_job"`
	ConsulMs       float64 `json:"consul_ms_per_job"`
}

// Round is one raw fan-out followed by one of dagflow.
type Round struct {
	Raw           Rate    `json:"raw"`
	Dagflow       Rate    `json:"dagflow"`
	RegisterRatio float64 `json:"register_ratio"` // dagflow / raw
	CompleteRatio float64 `json:"complete_ratio"`
}

// Throughput compares dagflow's fan-out with a plain Nomad registration loop of the same
// concurrency, over rounds that alternate the two, so that a change in the machine's load
// hits both alike. Dagflow and Raw are the medians of each figure over the rounds, the ratios
// the medians of the rounds' ratios.
type Throughput struct {
	Tasks         int     `json:"tasks"`
	Concurrency   int     `json:"concurrency"`
	Dagflow       Rate    `json:"dagflow"`
	Raw           Rate    `json:"raw"`
	RegisterRatio float64 `json:"register_ratio"`
	CompleteRatio float64 `json:"complete_ratio"`
	Rounds        []Round `json:"rounds"`
}

// TryCost is what the engine wrote to Consul (its fenced transactions, from its metrics) and
// the server's CPU time, per task attempt over one phase.
type TryCost struct {
	Tries       int     `json:"tries"`
	TxnsPerTry  float64 `json:"txns_per_try"`  // fenced transactions: Raft writes
	OpsPerTry   float64 `json:"ops_per_try"`   // keys written or deleted in them
	BytesPerTry float64 `json:"bytes_per_try"` // bytes of keys and values
	CPUMsPerTry float64 `json:"cpu_ms_per_try"`
}

// Idle is a real dagflow server process with many DAGs applied and nothing to run.
type Idle struct {
	DAGs        int     `json:"dags"`
	TasksPerDAG int     `json:"tasks_per_dag"`
	WindowS     float64 `json:"window_s"`
	RSSEmptyMiB float64 `json:"rss_empty_mib"` // VmRSS before anything was applied
	RSSMiB      float64 `json:"rss_mib"`       // VmRSS at the end of the idle window
	PeakRSSMiB  float64 `json:"peak_rss_mib"`  // VmHWM
	CPUPercent  float64 `json:"cpu_percent"`   // of one core, over the idle window
}

// PlanTime is how long the CLI took over many DAG files.
type PlanTime struct {
	Files     int     `json:"files"`
	CreateS   float64 `json:"plan_create_s"`    // plan with every DAG new
	ApplyS    float64 `json:"apply_s"`          // apply -auto-approve of all of them
	NoChangeS float64 `json:"plan_no_change_s"` // plan once they are applied
}

// Cost is what running costs: Consul writes, server memory and CPU, CLI time.
type Cost struct {
	Chain  TryCost  `json:"per_try_chain"`
	Fanout TryCost  `json:"per_try_fanout"`
	Idle   Idle     `json:"idle"`
	Plan   PlanTime `json:"plan"`
}

// Failover is the time from the active server's end (the signal sent) to the new leader's
// first fenced write, over 20 kill -9s and 20 clean shutdowns. The write is seen in Consul: a
// blocking query on the installation's KV prefix, the first answer in which a key other than
// the lock key (and the requests any instance writes) changed after the lock key last did,
// while a session other than the old leader's holds the lock.
//
// KillLock and CleanLock are the times from the signal to the lock taken by another session,
// as the same query saw it. Servers is how many server processes the installation had.
type Failover struct {
	Servers int     `json:"servers"`
	Kill    Latency `json:"kill"`
	Clean   Latency `json:"clean"`
	// The lock taken: part of the above.
	KillLock  Latency `json:"kill_lock_taken"`
	CleanLock Latency `json:"clean_lock_taken"`
}

// Target is one target of the issue and whether this run met it.
type Target struct {
	Name     string `json:"name"`
	Goal     string `json:"goal"`
	Measured string `json:"measured"`
	Met      bool   `json:"met"`
}

// judge fills in r.Targets from the figures of the phases that ran.
func (r *Report) judge() {
	if h := r.Handoff; h.Tasks > 0 {
		for _, e := range []struct {
			name   string
			df, fl Latency
		}{
			{"edge hand-off, finished to registered, p50", h.Dagflow.Registered, h.Floor.Registered},
			{"edge hand-off, finished to started, p50", h.Dagflow.Started, h.Floor.Started},
		} {
			d := round(e.df.P50Ms-e.fl.P50Ms, 1)
			r.Targets = append(r.Targets, Target{
				Name: e.name, Goal: fmt.Sprintf("at most +%d ms over the raw floor", targetHandoffMs),
				Measured: fmt.Sprintf("%+.0f ms", d), Met: e.df.N > 0 && d <= targetHandoffMs,
			})
		}
	}
	if t := r.Throughput; t.Tasks > 0 {
		r.Targets = append(r.Targets, Target{
			Name: "registration throughput", Goal: fmt.Sprintf("at least %.1fx raw Nomad's at concurrency %d", targetRegisterRatio, t.Concurrency),
			Measured: fmt.Sprintf("%.2fx", t.RegisterRatio), Met: t.RegisterRatio >= targetRegisterRatio,
		})
	}
	if f := r.Failover; f != nil {
		r.Targets = append(r.Targets, Target{
			Name: "failover, kill -9, p99", Goal: fmt.Sprintf("at most %d ms", targetKillMs),
			Measured: fmt.Sprintf("%.0f ms", f.Kill.P99Ms), Met: f.Kill.N > 0 && f.Kill.P99Ms <= targetKillMs,
		}, Target{
			Name: "failover, clean shutdown, p99", Goal: fmt.Sprintf("at most %d ms", targetCleanMs),
			Measured: fmt.Sprintf("%.0f ms", f.Clean.P99Ms), Met: f.Clean.N > 0 && f.Clean.P99Ms <= targetCleanMs,
		})
	}
	if sc := r.Scale; sc != nil {
		r.Targets = append(r.Targets, sc.targets()...)
	}
	var phases []TryCost
	var txns, keys []string
	for _, p := range []struct {
		name string
		c    TryCost
	}{{"chain", r.Cost.Chain}, {"fan-out", r.Cost.Fanout}} {
		if p.c.Tries > 0 {
			phases = append(phases, p.c)
			txns = append(txns, fmt.Sprintf("%.2f (%s)", p.c.TxnsPerTry, p.name))
			keys = append(keys, fmt.Sprintf("%.2f (%s)", p.c.OpsPerTry, p.name))
		}
	}
	if len(phases) == 0 {
		return
	}
	worst := func(f func(TryCost) float64) float64 {
		w := 0.0
		for _, c := range phases {
			w = max(w, f(c))
		}
		return w
	}
	r.Targets = append(r.Targets, Target{
		Name: "Consul KV transactions per task attempt", Goal: fmt.Sprintf("at most %d", targetKVWrites),
		Measured: strings.Join(txns, ", "), Met: worst(func(c TryCost) float64 { return c.TxnsPerTry }) <= targetKVWrites,
	}, Target{
		Name: "Consul KV keys written per task attempt", Goal: fmt.Sprintf("at most %d", targetKVWrites),
		Measured: strings.Join(keys, ", "), Met: worst(func(c TryCost) float64 { return c.OpsPerTry }) <= targetKVWrites,
	})
}

// met returns "met" or "missed" for target name, or "" when there is none.
func (r *Report) met(name string) string {
	for _, t := range r.Targets {
		if t.Name == name {
			if t.Met {
				return "met"
			}
			return "**missed**"
		}
	}
	return ""
}

// writeMarkdown prints the report as a markdown table.
func (r *Report) writeMarkdown(w io.Writer) {
	h, t, c := r.Handoff, r.Throughput, r.Cost
	var b strings.Builder
	fmt.Fprintf(&b, "| measure | dagflow | raw Nomad | difference | ratio | target |\n")
	fmt.Fprintf(&b, "|---|---|---|---|---|---|\n")
	edge := func(name string, df, fl Latency, p50 bool, target string) {
		d, f, pct := df.P99Ms, fl.P99Ms, "p99"
		if p50 {
			d, f, pct = df.P50Ms, fl.P50Ms, "p50"
		}
		fmt.Fprintf(&b, "| edge hand-off (%d-task chain), %s, %s | %.0f ms | %.0f ms | %+.0f ms | %.2fx | %s |\n",
			h.Tasks, name, pct, d, f, d-f, ratio(d, f), target)
	}
	if h.Tasks > 0 {
		edge("finished → registered", h.Dagflow.Registered, h.Floor.Registered, true,
			fmt.Sprintf("≤ +%d ms: %s", targetHandoffMs, r.met("edge hand-off, finished to registered, p50")))
		edge("finished → registered", h.Dagflow.Registered, h.Floor.Registered, false, "")
		edge("finished → started", h.Dagflow.Started, h.Floor.Started, true,
			fmt.Sprintf("≤ +%d ms: %s", targetHandoffMs, r.met("edge hand-off, finished to started, p50")))
		edge("finished → started", h.Dagflow.Started, h.Floor.Started, false, "")
	}
	if t.Tasks > 0 {
		var rounds []string
		for _, rd := range t.Rounds {
			rounds = append(rounds, fmt.Sprintf("%.2f", rd.RegisterRatio))
		}
		fmt.Fprintf(&b, "| %d-task fan-out, registration rate (%d in flight; median of %d rounds) | %.0f jobs/s | %.0f jobs/s | | %.2fx (rounds: %s) | ≥ %.1fx: %s |\n",
			t.Tasks, t.Concurrency, len(t.Rounds), t.Dagflow.RegisterPerS, t.Raw.RegisterPerS, t.RegisterRatio, strings.Join(rounds, ", "),
			targetRegisterRatio, r.met("registration throughput"))
		fmt.Fprintf(&b, "| %d-task fan-out, end-to-end completion rate | %.1f jobs/s (%.1f s) | %.1f jobs/s (%.1f s) | | %.2fx | |\n",
			t.Tasks, t.Dagflow.CompletePerS, t.Dagflow.CompleteS, t.Raw.CompletePerS, t.Raw.CompleteS, t.CompleteRatio)
		fmt.Fprintf(&b, "| %d-task fan-out, start → first job registered | %.0f ms | %.0f ms | | | |\n",
			t.Tasks, t.Dagflow.FirstRegisteredS*1000, t.Raw.FirstRegisteredS*1000)
		cpu := func(c CPU) string {
			return fmt.Sprintf("%.1f / %.1f / %.1f ms", c.OrchestratorMs, c.NomadMs, c.ConsulMs)
		}
		fmt.Fprintf(&b, "| %d-task fan-out, CPU per job: orchestrator / Nomad / Consul | %s | %s | | | |\n",
			t.Tasks, cpu(t.Dagflow.CPU), cpu(t.Raw.CPU))
	}
	kv := func(name string, k TryCost) {
		fmt.Fprintf(&b, "| per try, %s (%d tries): Consul KV transactions / keys / bytes; server CPU | %.2f / %.2f / %.0f B; %.1f ms | | | | ≤ %d: transactions %s, keys %s |\n",
			name, k.Tries, k.TxnsPerTry, k.OpsPerTry, k.BytesPerTry, k.CPUMsPerTry, targetKVWrites,
			r.met("Consul KV transactions per task attempt"), r.met("Consul KV keys written per task attempt"))
	}
	if c.Chain.Tries > 0 {
		kv("chain", c.Chain)
	}
	if c.Fanout.Tries > 0 {
		kv("fan-out", c.Fanout)
	}
	if m := r.Mapping; m != nil {
		fmt.Fprintf(&b, "| task mapped over %d outputs: upstream finished → all instances registered / finished | %.1f s (%.0f jobs/s) / %.1f s (%.0f jobs/s) | | | | |\n",
			m.Instances, m.RegisteredS, m.RegisterPerS, m.CompletedS, m.CompletedPerS)
		fmt.Fprintf(&b, "| same, the run's Consul KV transactions / keys / bytes; server CPU | %d / %d (%.2f per instance) / %d B; %.0f ms | | | | |\n",
			m.KVTxns, m.KVOps, m.KVOpsPerInst, m.KVBytes, m.ServerCPUMs)
	}
	if c.Idle.DAGs > 0 {
		fmt.Fprintf(&b, "| server RSS, %d DAGs × %d tasks applied, idle | %.0f MiB (%.0f MiB with none; peak %.0f MiB) | | | | |\n",
			c.Idle.DAGs, c.Idle.TasksPerDAG, c.Idle.RSSMiB, c.Idle.RSSEmptyMiB, c.Idle.PeakRSSMiB)
		fmt.Fprintf(&b, "| server CPU, same, over %.0f s | %.2f%% of a core | | | | |\n", c.Idle.WindowS, c.Idle.CPUPercent)
		fmt.Fprintf(&b, "| `dagflow plan`, %d DAG files | %.2f s (all new), %.2f s (no changes) | | | | |\n",
			c.Plan.Files, c.Plan.CreateS, c.Plan.NoChangeS)
		fmt.Fprintf(&b, "| `dagflow apply -auto-approve`, %d DAG files | %.2f s | | | | |\n", c.Plan.Files, c.Plan.ApplyS)
	}
	if sc := r.Scale; sc != nil {
		writeScale(&b, r, sc)
	}
	if f := r.Failover; f != nil {
		fmt.Fprintf(&b, "| failover (%d servers), kill -9 → new leader's first write, p50 / p99 (n=%d) | %.0f / %.0f ms (lock taken: %.0f / %.0f ms) | | | | p99 ≤ %d ms: %s |\n",
			f.Servers, f.Kill.N, f.Kill.P50Ms, f.Kill.P99Ms, f.KillLock.P50Ms, f.KillLock.P99Ms, targetKillMs, r.met("failover, kill -9, p99"))
		fmt.Fprintf(&b, "| failover (%d servers), clean shutdown → new leader's first write, p50 / p99 (n=%d) | %.0f / %.0f ms (lock taken: %.0f / %.0f ms) | | | | p99 ≤ %d ms: %s |\n",
			f.Servers, f.Clean.N, f.Clean.P50Ms, f.Clean.P99Ms, f.CleanLock.P50Ms, f.CleanLock.P99Ms, targetCleanMs, r.met("failover, clean shutdown, p99"))
	} else {
		fmt.Fprintf(&b, "| failover, kill -9 / clean shutdown → new leader's first write | not measured yet | | | | |\n")
	}
	if r.Failover != nil {
		fmt.Fprintf(&b, "\nFailover: from the signal to the first Consul KV change under the installation's prefix (not the lock key, not requests/) made after the lock key's last change while a new session holds the lock, seen by a blocking query.\n")
	}
	fmt.Fprintf(&b, "\n%d CPUs; load average %s at the start, %s at the end; %.0f s in all.\n",
		r.Machine.CPUs, r.Machine.LoadAvgStart, r.Machine.LoadAvgEnd, r.DurationS)
	io.WriteString(w, b.String())
}
