package engine

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"net/http"
	"net/url"
	"time"

	consulapi "github.com/hashicorp/consul/api"
	nomadapi "github.com/hashicorp/nomad/api"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/dagflow/dagflow/hcl/spec"
	"github.com/dagflow/dagflow/nomadexec"
	"github.com/dagflow/dagflow/rules"
	"github.com/dagflow/dagflow/state"
)

const (
	// sensorCalls bounds the pokes in flight, so a thousand sensors whose pokes fall in the
	// same second open a handful of connections, not a thousand.
	sensorCalls = 8

	// pokeTimeout bounds one poke: a condition that takes longer to answer is "not yet".
	pokeTimeout = 10 * time.Second
)

// sensorProgress is what the leader keeps in memory of a waiting sensor: what is not written
// on each poke (see state.SensorWait).
type sensorProgress struct {
	wait   *state.SensorWait // the wait these count for; another one (after a clear) resets them
	pokes  int               // since the wait started, the written ones included
	next   time.Time         // when the next poke is due
	poking bool              // a poke is in flight
}

// sense advances the wait of sensor t of run r, which its trigger rule let run (Scheduled):
// it starts the wait, ends it at its timeout, and pokes when a poke is due. A sensor takes no
// Nomad job, no queue max_running slot and no max_active_tasks slot (dispatch skips it).
func (e *engine) sense(r *run, t *task) {
	s := t.spec.Sensor
	w := t.ti.Sensor
	if w == nil {
		w = &state.SensorWait{Started: e.now, Message: "waiting for the first poke"}
		t.ti.Sensor, t.ti.Waiting = w, "sensor: "+w.Message
		e.markTask(r, t)
	}
	p := &t.sensor
	if p.wait != w {
		// A wait this leader has not seen yet: started here, or by a leader before it.
		*p = sensorProgress{wait: w, pokes: w.Pokes}
	}
	if p.poking {
		return
	}
	if limit := time.Duration(s.Timeout); e.now.Sub(w.Started) >= limit {
		end := rules.Failed
		if s.SoftFail {
			end = rules.Skipped
		}
		e.endWait(r, t, end, fmt.Sprintf("sensor timed out after %s (%d pokes): %s", limit, p.pokes, w.Message))
		return
	}
	if p.next.IsZero() {
		p.next = nextPoke(pokePhase(r, t), time.Duration(s.PokeInterval), e.now)
	}
	if e.now.Before(p.next) {
		return
	}
	rendered, err := r.def.Render(t.spec, spec.Runtime{
		RunID: r.rec.ID, RunType: string(r.rec.Type), LogicalDate: r.rec.LogicalDate,
		DataIntervalStart: r.rec.DataIntervalStart, DataIntervalEnd: r.rec.DataIntervalEnd,
		Params: r.rec.Params, Try: 1, Outputs: r.runOutputs(),
	})
	if err != nil {
		e.endWait(r, t, rules.Failed, err.Error())
		return
	}
	p.poking = true
	logicalDate := r.rec.LogicalDate
	e.spawn(func() {
		if !e.acquire(e.sensorCalls) {
			return
		}
		ctx, cancel := context.WithTimeout(e.ctx, pokeTimeout)
		met, msg := e.poke(ctx, rendered.Sensor, logicalDate)
		cancel()
		release(e.sensorCalls)
		e.report(func() error {
			e.poked(r, t, w, met, msg)
			return nil
		})
	})
}

// poked records the outcome of a poke of sensor t for wait w: the sensor succeeds when its
// condition was met; otherwise the next poke is due an interval on, and the record is
// written only when the message people see changed.
func (e *engine) poked(r *run, t *task, w *state.SensorWait, met bool, msg string) {
	p := &t.sensor
	if p.wait != w {
		return
	}
	p.poking = false
	p.pokes++
	kind := t.spec.Sensor.Kind()
	e.m.sensorPoked(kind, met)
	if t.ti.State != rules.Scheduled || t.ti.Sensor != w {
		return // canceled, cleared or marked while the poke was in flight
	}
	if met {
		e.endWait(r, t, rules.Success, msg)
		return
	}
	p.next = nextPoke(pokePhase(r, t), time.Duration(t.spec.Sensor.PokeInterval), e.now)
	if msg != w.Message {
		w.Message, w.Pokes = msg, p.pokes
		t.ti.Waiting = "sensor: " + msg
		e.markTask(r, t)
	}
}

// endWait ends the wait of sensor t in state end, with msg as the instance's message.
func (e *engine) endWait(r *run, t *task, end rules.State, msg string) {
	w := t.ti.Sensor
	w.Pokes, w.Message = t.sensor.pokes, msg
	t.ti.State, t.ti.Message = end, msg
	e.markTask(r, t)
	e.log.Info("sensor finished", "dag", r.rec.DAG, "run_id", r.rec.ID, "task", t.spec.Name, "state", end, "pokes", w.Pokes, "message", msg)
}

// pokePhase is where in each poke interval sensor t of run r pokes: a hash of its name, so
// that many sensors with the same interval spread over it instead of poking at once, and
// each keeps its phase across a failover.
func pokePhase(r *run, t *task) uint64 {
	h := fnv.New64a()
	fmt.Fprintf(h, "%s\x00%s\x00%s", r.rec.DAG, r.rec.ID, t.spec.Name)
	return h.Sum64()
}

// nextPoke returns the first time after now at phase within an interval: the interval's
// multiples since the Unix epoch, shifted by phase modulo interval.
func nextPoke(phase uint64, interval time.Duration, now time.Time) time.Time {
	shift := time.Duration(phase % uint64(interval))
	at := time.Unix(0, 0).Add(now.Sub(time.Unix(0, 0)).Truncate(interval)).Add(shift).UTC()
	if !at.After(now) {
		at = at.Add(interval)
	}
	return at
}

// poke evaluates sensor s once, for a run of logical date logicalDate: whether its condition
// holds, and a message saying what it saw. An error is a "not yet" whose message says what
// failed; the next poke asks again.
func (e *engine) poke(ctx context.Context, s *spec.Sensor, logicalDate time.Time) (met bool, msg string) {
	switch {
	case s.ConsulKey != nil:
		return pokeConsulKey(ctx, e.store.Consul(), s.ConsulKey)
	case s.HTTP != nil:
		return pokeHTTP(ctx, s.HTTP)
	case s.NomadVariable != nil:
		return pokeNomadVariable(ctx, e.exec.Nomad(), s.NomadVariable)
	case s.ConsulService != nil:
		return pokeConsulService(ctx, e.store.Consul(), s.ConsulService)
	case s.DAGRun != nil:
		return e.pokeDAGRun(ctx, s.DAGRun, logicalDate)
	}
	return false, "the sensor has no condition"
}

func pokeConsulKey(ctx context.Context, c *consulapi.Client, k *spec.ConsulKeySensor) (bool, string) {
	pair, _, err := c.KV().Get(k.Key, (&consulapi.QueryOptions{}).WithContext(ctx))
	switch {
	case err != nil:
		return false, fmt.Sprintf("reading Consul key %q failed: %v", k.Key, err)
	case pair == nil:
		return false, fmt.Sprintf("Consul key %q does not exist", k.Key)
	case k.Value != nil && string(pair.Value) != *k.Value:
		// The value itself is not shown: a key may hold what people should not read in the UI.
		return false, fmt.Sprintf("Consul key %q does not hold the expected value", k.Key)
	}
	return true, fmt.Sprintf("Consul key %q exists", k.Key)
}

func pokeHTTP(ctx context.Context, h *spec.HTTPSensor) (bool, string) {
	shown := h.URL
	if u, err := url.Parse(h.URL); err == nil {
		shown = u.Scheme + "://" + u.Host + u.Path // the query may hold a token
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, h.URL, nil)
	if err != nil {
		return false, fmt.Sprintf("GET %s: %v", shown, err)
	}
	for k, v := range h.Headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err // without the URL, which may hold a token
		}
		return false, fmt.Sprintf("GET %s failed: %v", shown, err)
	}
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return false, fmt.Sprintf("GET %s answered %s", shown, resp.Status)
	}
	return true, fmt.Sprintf("GET %s answered %s", shown, resp.Status)
}

func pokeNomadVariable(ctx context.Context, c *nomadapi.Client, n *spec.NomadVariableSensor) (bool, string) {
	v, _, err := c.Variables().Peek(n.Path, (&nomadapi.QueryOptions{Namespace: n.Namespace}).WithContext(ctx))
	switch {
	case err != nil:
		return false, fmt.Sprintf("reading Nomad Variable %q failed: %v", n.Path, err)
	case v == nil:
		return false, fmt.Sprintf("Nomad Variable %q does not exist", n.Path)
	}
	return true, fmt.Sprintf("Nomad Variable %q exists", n.Path)
}

func pokeConsulService(ctx context.Context, c *consulapi.Client, s *spec.ConsulServiceSensor) (bool, string) {
	entries, _, err := c.Health().Service(s.Name, "", true, (&consulapi.QueryOptions{}).WithContext(ctx))
	switch {
	case err != nil:
		return false, fmt.Sprintf("reading Consul service %q failed: %v", s.Name, err)
	case len(entries) == 0:
		return false, fmt.Sprintf("Consul service %q has no healthy instance", s.Name)
	}
	return true, fmt.Sprintf("Consul service %q has %d healthy instance(s)", s.Name, len(entries))
}

// pokeDAGRun looks for the run of d.DAG with the same logical date, scheduled or backfilled
// (the runs a logical date names; a manual run is the user's own), and at its state or its
// task's.
func (e *engine) pokeDAGRun(ctx context.Context, d *spec.DAGRunSensor, logicalDate time.Time) (bool, string) {
	for _, typ := range []rules.RunType{rules.RunScheduled, rules.RunBackfill} {
		id := rules.RunID(typ, logicalDate)
		rec, err := e.store.RunRecord(ctx, d.DAG, id)
		if errors.Is(err, state.ErrNotFound) {
			continue
		}
		if err != nil {
			return false, fmt.Sprintf("reading run %s of DAG %q failed: %v", id, d.DAG, err)
		}
		if d.Task == "" {
			if rec.Run.State == state.RunSuccess {
				return true, fmt.Sprintf("run %s of DAG %q succeeded", id, d.DAG)
			}
			return false, fmt.Sprintf("run %s of DAG %q is %s", id, d.DAG, rec.Run.State)
		}
		ti := rec.Tasks[d.Task]
		switch {
		case ti == nil:
			return false, fmt.Sprintf("run %s of DAG %q has no task %q", id, d.DAG, d.Task)
		case ti.State == rules.Success:
			return true, fmt.Sprintf("task %q of run %s of DAG %q succeeded", d.Task, id, d.DAG)
		}
		return false, fmt.Sprintf("task %q of run %s of DAG %q is %s", d.Task, id, d.DAG, stateName(ti.State))
	}
	return false, fmt.Sprintf("DAG %q has no run for logical date %s", d.DAG, logicalDate.UTC().Format(time.RFC3339))
}

// stateName is how a task state reads in a message: "none" before it was decided.
func stateName(s rules.State) string {
	if s == rules.None {
		return "not started"
	}
	return string(s)
}

// sensorMetrics are the sensors' part of Metrics.
type sensorMetrics struct {
	waiting prometheus.Gauge
	pokes   *prometheus.CounterVec
}

func newSensorMetrics(reg prometheus.Registerer) sensorMetrics {
	m := sensorMetrics{
		waiting: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "dagflow_sensors_waiting", Help: "Sensor task instances waiting for their condition (leader only).",
		}),
		pokes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dagflow_sensor_pokes_total", Help: "Sensor pokes, by kind and result (met or not_yet).",
		}, []string{"kind", "result"}),
	}
	reg.MustRegister(m.waiting, m.pokes)
	return m
}

// observe sets the gauge of waiting sensors.
func (m sensorMetrics) observe(e *engine) {
	n := 0
	for _, r := range e.runs {
		for _, t := range r.tasks {
			if s := t.spec.Sensor; s != nil && (t.ti.State == rules.Scheduled || s.Command && t.ti.State == rules.UpForRetry) {
				n++
			}
		}
	}
	m.waiting.Set(float64(n))
}

func (m *Metrics) sensorPoked(kind string, met bool) {
	if m == nil {
		return
	}
	result := "not_yet"
	if met {
		result = "met"
	}
	m.sensors.pokes.WithLabelValues(kind, result).Inc()
}

// notYet reports whether try cur of task t, which ended as st, is a command sensor's poke that
// said its condition does not hold yet (spec.NotYetExitCode), and not a stop of dagflow's.
func notYet(t *task, cur *state.Try, st *nomadexec.AllocStatus) bool {
	s := t.spec.Sensor
	return s != nil && s.Command && st != nil && st.Exited && st.ExitCode == spec.NotYetExitCode && cur.Stop == nil
}

// pokeAgain ends try cur of command sensor t as a "not yet" poke: the next poke is a new try
// after the poke interval, its job's slot free meanwhile (Airflow's reschedule mode), until
// the sensor's timeout, counted from the first try since the last clear, which the records
// keep across a failover.
func (e *engine) pokeAgain(t *task, cur *state.Try, now time.Time) {
	s := t.spec.Sensor
	cur.State, cur.NotYet = rules.Failed, true
	e.m.sensorPoked(spec.SensorCommand, false)
	started := t.ti.Tries[min(t.ti.ClearedTries, len(t.ti.Tries)-1)].ScheduledAt
	if now.Sub(started) >= time.Duration(s.Timeout) {
		t.ti.State = rules.Failed
		if s.SoftFail {
			t.ti.State = rules.Skipped
		}
		cur.Message = fmt.Sprintf("timed out after %s: the last poke exited %d, not yet", time.Duration(s.Timeout), spec.NotYetExitCode)
		t.ti.Message = cur.Message
		return
	}
	t.ti.State, t.ti.RetryAt = rules.UpForRetry, now.Add(time.Duration(s.PokeInterval))
	cur.Message = fmt.Sprintf("not yet (exit code %d): poking again in %s", spec.NotYetExitCode, time.Duration(s.PokeInterval))
}
