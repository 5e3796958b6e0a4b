package engine

import (
	"time"

	consulapi "github.com/hashicorp/consul/api"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/dagflow/dagflow/rules"
	"github.com/dagflow/dagflow/state"
)

// Metrics are the engine's Prometheus metrics. A nil *Metrics records nothing.
type Metrics struct {
	leader      prometheus.Gauge
	transitions prometheus.Counter
	runs        *prometheus.GaugeVec
	runsDone    *prometheus.CounterVec
	tasks       *prometheus.GaugeVec
	triesDone   *prometheus.CounterVec
	lag         prometheus.Histogram
	handoff     prometheus.Histogram
	pending     *prometheus.GaugeVec
	running     *prometheus.GaugeVec
	unplaced    *prometheus.GaugeVec
	apiErrors   *prometheus.CounterVec
	kvTxns      prometheus.Counter
	kvOps       prometheus.Counter
	kvBytes     prometheus.Counter
	dl          deliveryMetrics // see deliveries.go
	sensors     sensorMetrics
}

// latencyBuckets span a few milliseconds (a hand-off on an idle cluster) to a minute (a
// backlog).
var latencyBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}

// NewMetrics creates the engine's metrics and registers them with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		leader: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "dagflow_leader", Help: "1 while this instance leads and schedules, else 0.",
		}),
		transitions: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "dagflow_leadership_acquired_total", Help: "Times this instance became the leader.",
		}),
		runs: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "dagflow_runs", Help: "DAG runs not finished, by state (leader only).",
		}, []string{"state"}),
		runsDone: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dagflow_runs_finished_total", Help: "DAG runs finished by this instance, by state.",
		}, []string{"state"}),
		tasks: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "dagflow_task_instances", Help: "Task instances of runs not finished, by state (leader only).",
		}, []string{"state"}),
		triesDone: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dagflow_task_attempts_finished_total", Help: "Task attempts finished, by state.",
		}, []string{"state"}),
		lag: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "dagflow_scheduling_lag_seconds", Help: "From a task instance being ready to run to its Nomad job being registered.",
			Buckets: latencyBuckets,
		}),
		handoff: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "dagflow_edge_handoff_seconds", Help: "From the last upstream task finishing to the downstream task's first job being registered.",
			Buckets: latencyBuckets,
		}),
		pending: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "dagflow_queue_pending_tasks", Help: "Task instances ready to run but held back by max_running or max_active_tasks, per queue.",
		}, []string{"queue"}),
		running: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "dagflow_queue_running_tasks", Help: "Task attempts queued in or running on Nomad, per queue.",
		}, []string{"queue"}),
		unplaced: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "dagflow_tries_unplaced", Help: "Task attempts Nomad could not place, by the kind of reason its blocked evaluation gave (leader only).",
		}, []string{"reason"}),
		apiErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dagflow_api_errors_total", Help: "Failed calls to Consul and Nomad, by API.",
		}, []string{"api"}),
		kvTxns: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "dagflow_kv_transactions_total", Help: "Fenced Consul transactions written by the engine.",
		}),
		kvOps: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "dagflow_kv_operations_total", Help: "KV operations in the engine's fenced transactions.",
		}),
		kvBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "dagflow_kv_bytes_total", Help: "Bytes of keys and values in the engine's fenced transactions, before encoding.",
		}),
	}
	reg.MustRegister(m.leader, m.transitions, m.runs, m.runsDone, m.tasks, m.triesDone, m.lag, m.handoff,
		m.pending, m.running, m.unplaced, m.apiErrors, m.kvTxns, m.kvOps, m.kvBytes)
	m.dl = newDeliveryMetrics(reg)
	m.apiErrors.WithLabelValues("consul")
	m.apiErrors.WithLabelValues("nomad")
	m.sensors = newSensorMetrics(reg)
	return m
}

func (m *Metrics) apiError(api string) {
	if m != nil {
		m.apiErrors.WithLabelValues(api).Inc()
	}
}

func (m *Metrics) setLeader(on bool) {
	if m == nil {
		return
	}
	if on {
		m.leader.Set(1)
		m.transitions.Inc()
	} else {
		m.leader.Set(0)
	}
}

// resetGauges clears what only a leader knows, when it stops leading.
func (m *Metrics) resetGauges() {
	if m != nil {
		m.runs.Reset()
		m.tasks.Reset()
		m.pending.Reset()
		m.running.Reset()
		m.unplaced.Reset()
		m.dl.pending.Set(0)
		m.sensors.waiting.Set(0)
	}
}

func (m *Metrics) kvWrite(ops consulapi.TxnOps, err error) {
	if m == nil {
		return
	}
	if err != nil {
		m.apiErrors.WithLabelValues("consul").Inc()
		return
	}
	m.kvTxns.Inc()
	m.kvOps.Add(float64(len(ops)))
	for _, op := range ops {
		if op.KV != nil {
			m.kvBytes.Add(float64(len(op.KV.Key) + len(op.KV.Value)))
		}
	}
}

func (m *Metrics) runFinished(s state.RunState) {
	if m != nil {
		m.runsDone.WithLabelValues(string(s)).Inc()
	}
}

func (m *Metrics) tryFinished(s rules.State) {
	if m != nil {
		m.triesDone.WithLabelValues(string(s)).Inc()
	}
}

// registered records the latencies of ref's try, whose job was registered at at.
func (m *Metrics) registered(ref *jobRef, at time.Time) {
	if m == nil {
		return
	}
	t := ref.task
	cur := t.ti.Current()
	if cur == nil || cur.Try != ref.try {
		return
	}
	if !cur.ScheduledAt.IsZero() {
		m.lag.Observe(at.Sub(cur.ScheduledAt).Seconds())
	}
	if ref.try != 1 || len(t.spec.DependsOn) == 0 {
		return
	}
	var last time.Time
	for _, up := range t.spec.DependsOn {
		if u := ref.run.tasks[up]; u != nil {
			if c := u.ti.Current(); c != nil && c.EndedAt.After(last) {
				last = c.EndedAt
			}
		}
	}
	if !last.IsZero() {
		m.handoff.Observe(at.Sub(last).Seconds())
	}
}

// setQueues sets the per-queue gauges.
func (m *Metrics) setQueues(pending, running map[string]int) {
	if m == nil {
		return
	}
	m.pending.Reset()
	m.running.Reset()
	for q, n := range pending {
		m.pending.WithLabelValues(q).Set(float64(n))
	}
	for q, n := range running {
		m.running.WithLabelValues(q).Set(float64(n))
	}
}

// observe sets the gauges of runs and task instances by state.
func (m *Metrics) observe(e *engine) {
	if m == nil {
		return
	}
	runs := map[state.RunState]int{state.RunQueued: 0, state.RunRunning: 0}
	tasks := map[rules.State]int{}
	for _, r := range e.runs {
		runs[r.rec.State]++
		for _, t := range r.tasks {
			s := t.ti.State
			if s == rules.None {
				s = "none"
			}
			tasks[s]++
		}
	}
	m.runs.Reset()
	for s, n := range runs {
		m.runs.WithLabelValues(string(s)).Set(float64(n))
	}
	m.tasks.Reset()
	for s, n := range tasks {
		m.tasks.WithLabelValues(string(s)).Set(float64(n))
	}
	m.unplaced.Reset()
	for class, n := range e.unplacedByClass() {
		m.unplaced.WithLabelValues(string(class)).Set(float64(n))
	}
	m.sensors.observe(e)
}
