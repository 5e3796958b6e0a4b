package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	consulapi "github.com/hashicorp/consul/api"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/dagflow/dagflow/consullock"
	"github.com/dagflow/dagflow/hcl/spec"
	"github.com/dagflow/dagflow/nomadexec"
	"github.com/dagflow/dagflow/rules"
	"github.com/dagflow/dagflow/state"
)

// Defaults of the Config fields about callback deliveries.
const (
	// DefaultDeliveryAttempts is how often a webhook is called before its delivery fails for
	// good: with DefaultDeliveryBackoff, about 8.5 minutes of a receiver being down or
	// refusing, enough for a restart or a deploy of it.
	DefaultDeliveryAttempts = 10

	// DefaultDeliveryBackoff is the wait after a delivery's first failed attempt, doubled after
	// each further one (rules.RetryDelay with exponential backoff) up to maxDeliveryBackoff.
	DefaultDeliveryBackoff = time.Second

	// DefaultDeliveryKeep is how long a delivered or failed delivery stays in Consul, where the
	// API and UI show it: a day, so the failures of a nightly run are there in the morning.
	DefaultDeliveryKeep = 24 * time.Hour
)

const (
	// maxDeliveryBackoff caps the wait between two attempts of a delivery.
	maxDeliveryBackoff = 5 * time.Minute

	// deliveryCalls bounds the webhook calls in flight, so a burst of failures does not open
	// a connection per delivery at once; deliveryTimeout bounds one call.
	deliveryCalls   = 8
	deliveryTimeout = 10 * time.Second

	// dagIndex is added to the webhook index of a DAG-level on_retry, which fires with the
	// task's own on_retry for the same try: their deliveries need IDs of their own.
	dagIndex = spec.MaxWebhooks
)

// deliveries is the leader's view of the callback deliveries in Consul.
type deliveries struct {
	pending  map[string]*state.Delivery // to be called, when due; not in flight
	inFlight map[string]bool
	ended    []*state.Delivery // delivered or failed, oldest end first, until DeliveryKeep
	slots    chan struct{}
	client   *http.Client
}

// loadDeliveries reads the deliveries Consul holds: a new leader calls the pending ones, the
// calls of the leader before that were not recorded included.
func (e *engine) loadDeliveries(ctx context.Context) error {
	all, err := e.store.Deliveries(ctx, state.DeliveryFilter{})
	if err != nil {
		return err
	}
	e.dl = deliveries{
		pending: map[string]*state.Delivery{}, inFlight: map[string]bool{},
		slots: make(chan struct{}, deliveryCalls), client: &http.Client{Timeout: deliveryTimeout},
	}
	for _, d := range all {
		if d.State == state.DeliveryPending {
			e.dl.pending[d.ID] = d
		} else {
			e.dl.ended = append(e.dl.ended, d)
		}
	}
	slices.SortStableFunc(e.dl.ended, func(a, b *state.Delivery) int { return a.EndedAt.Compare(b.EndedAt) })
	return nil
}

// notify returns the records of the deliveries of cb for the event p describes, in run r, and
// has them carried out once they are written. index0 is added to each webhook's and task's
// index in its ID.
func (e *engine) notify(r *run, cb *spec.Callback, p state.Payload, index0 int) consulapi.TxnOps {
	if cb == nil {
		return nil
	}
	if e.cfg.UIAddress != "" {
		p.URL = strings.TrimSuffix(e.cfg.UIAddress, "/") + "/#/dags/" + url.PathEscape(p.DAG) + "/runs/" + url.PathEscape(p.RunID)
	}
	var ops consulapi.TxnOps
	for i := range len(cb.Webhooks) + len(cb.Tasks) {
		d := &state.Delivery{
			ID: state.DeliveryID(p.Event, p.DAG, p.RunID, p.Task, p.Try, index0+i, p.At), Payload: p,
			State: state.DeliveryPending, NextAt: e.now, CreatedAt: e.now,
		}
		d.Payload.DeliveryID = d.ID
		if i < len(cb.Webhooks) {
			w := cb.Webhooks[i]
			d.URL, d.Headers, d.SecretHeaders = w.URL, w.Headers, w.SecretHeaders
		} else if err := e.callbackJob(r, cb.Tasks[i-len(cb.Webhooks)], d); err != nil {
			// Recorded failed, so it is seen: the task cannot run for this event.
			d.State, d.EndedAt, d.LastError = state.DeliveryFailed, e.now, err.Error()
			e.m.delivery("failed")
		}
		op, err := e.store.PutDeliveryOp(d)
		if err != nil {
			e.log.Error("delivery not recorded", "delivery_id", d.ID, "error", err)
			continue
		}
		ops = append(ops, op)
		// Carried out only once written: a cause whose write fails is not notified.
		e.afterFlush(func() {
			if d.State == state.DeliveryPending {
				e.dl.pending[d.ID] = d
			} else {
				e.dl.ended = append(e.dl.ended, d)
			}
		})
	}
	return ops
}

// tryCallbacks records the deliveries the end of task t's try cur causes: on_success,
// on_retry (the task's and the DAG's) or on_failure. A try the scheduler stopped for a user
// (a clear, a mark, a cancel) calls nothing; one stopped for a timeout fails like any other.
func (e *engine) tryCallbacks(r *run, t *task, cur *state.Try) {
	e.lateTask(r, t, cur.EndedAt)
	if cur.Stop != nil && !cur.Stop.Retry || cur.NotYet && t.ti.State == rules.UpForRetry {
		return // a stop of dagflow's, or a command sensor's "not yet": neither is a retry
	}
	p := state.Payload{
		DAG: r.rec.DAG, RunID: r.rec.ID, LogicalDate: r.rec.LogicalDate, Task: t.ti.Task, Try: cur.Try,
		State: string(t.ti.State), Message: cur.Message, At: cur.EndedAt,
	}
	switch t.ti.State {
	case rules.Success:
		p.Event = spec.EventSuccess
		t.deliveryOps = append(t.deliveryOps, e.notify(r, t.spec.OnSuccess, p, 0)...)
	case rules.UpForRetry:
		p.Event = spec.EventRetry
		t.deliveryOps = append(t.deliveryOps, e.notify(r, t.spec.OnRetry, p, 0)...)
		t.deliveryOps = append(t.deliveryOps, e.notify(r, r.def.OnRetry, p, dagIndex)...)
	case rules.Failed:
		p.Event = spec.EventFailure
		t.deliveryOps = append(t.deliveryOps, e.notify(r, t.spec.OnFailure, p, 0)...)
	}
}

// runCallbacks records the deliveries the end of run r causes: its DAG's on_success or
// on_failure (a canceled run failed).
func (e *engine) runCallbacks(r *run) {
	e.lateRun(r)
	p := state.Payload{
		DAG: r.rec.DAG, RunID: r.rec.ID, LogicalDate: r.rec.LogicalDate,
		State: string(r.rec.State), Message: runMessage(r), At: r.rec.EndedAt,
	}
	cb := r.def.OnSuccess
	p.Event = spec.EventSuccess
	if r.rec.State == state.RunFailed {
		cb, p.Event = r.def.OnFailure, spec.EventFailure
	}
	r.deliveryOps = append(r.deliveryOps, e.notify(r, cb, p, 0)...)
}

// runMessage says, for people, why run r ended as it did.
func runMessage(r *run) string {
	if !r.rec.CanceledAt.IsZero() {
		return "canceled"
	}
	var failed []string
	for _, t := range r.def.Tasks {
		if s := r.tasks[t.Name].ti.State; len(r.down[t.Name]) == 0 && (s == rules.Failed || s == rules.UpstreamFailed) {
			failed = append(failed, t.Name)
		}
	}
	if len(failed) == 0 {
		return ""
	}
	return "failed tasks: " + strings.Join(failed, ", ")
}

// deliveryGroups adds to groups the writes that must share a transaction with the deliveries
// they cause: the record of a task of run r, or of r itself, with its deliveries (and any
// asset writes of the same record, see assetGroups).
//
// When r's record goes in a group, every other task record of r written in this step goes in
// groups before it: a leader dying in between then leaves a run not finished whose tasks are,
// which the next leader finishes (and notifies) again, never a finished run with a task record
// left in flight, which no leader would look at again.
func (e *engine) deliveryGroups(r *run, groups []consulapi.TxnOps) ([]consulapi.TxnOps, error) {
	for _, t := range r.order {
		ti := r.tasks[t.Name]
		if !ti.dirty || len(ti.deliveryOps) == 0 {
			continue
		}
		dropStaleReasons(&ti.ti)
		op, err := e.store.PutTaskOp(&ti.ti)
		if err != nil {
			return nil, err
		}
		groups = append(groups, append(append(consulapi.TxnOps{op}, ti.assetOps...), ti.deliveryOps...))
		ti.assetOps, ti.deliveryOps, ti.dirty = nil, nil, false
	}
	if len(r.deliveryOps) == 0 || !r.dirty && !r.isNew {
		return groups, nil
	}
	var rest consulapi.TxnOps
	for _, t := range r.order {
		ti := r.tasks[t.Name]
		if !ti.dirty {
			continue
		}
		dropStaleReasons(&ti.ti)
		op, err := e.store.PutTaskOp(&ti.ti)
		if err != nil {
			return nil, err
		}
		if len(ti.assetOps) > 0 {
			groups = append(groups, append(consulapi.TxnOps{op}, ti.assetOps...))
		} else {
			rest = append(rest, op)
		}
		ti.assetOps, ti.dirty = nil, false
	}
	groups = append(groups, state.SplitTxn(rest, consullock.MaxTxnOps)...)
	ops, err := e.runOps(r)
	if err != nil {
		return nil, err
	}
	groups = append(groups, append(append(ops, r.assetOps...), r.deliveryOps...))
	r.assetOps, r.deliveryOps, r.isNew, r.dirty = nil, nil, false, false
	return groups, nil
}

// deliverDue starts the calls of the pending deliveries that are due, as slots allow, and
// drops ended deliveries older than DeliveryKeep.
func (e *engine) deliverDue() {
	for len(e.dl.ended) > 0 && e.now.Sub(e.dl.ended[0].EndedAt) > e.cfg.DeliveryKeep {
		e.extra = append(e.extra, e.store.DeleteDeliveryOp(e.dl.ended[0].ID))
		e.dl.ended = e.dl.ended[1:]
	}
	due := make([]*state.Delivery, 0, len(e.dl.pending))
	for _, d := range e.dl.pending {
		if !d.NextAt.After(e.now) {
			due = append(due, d)
		}
	}
	slices.SortFunc(due, func(a, b *state.Delivery) int { return a.NextAt.Compare(b.NextAt) })
	for _, d := range due {
		select {
		case e.dl.slots <- struct{}{}:
		default:
			e.m.setDeliveriesPending(len(e.dl.pending) + len(e.dl.inFlight))
			return
		}
		delete(e.dl.pending, d.ID)
		e.dl.inFlight[d.ID] = true
		post := e.post
		if d.Task != nil {
			q := e.queues[d.Task.Queue]
			post = func(d *state.Delivery) error { return e.runJob(d, q) }
		}
		e.spawn(func() {
			err := post(d)
			release(e.dl.slots)
			e.report(func() error { e.delivered(d, err); return nil })
		})
	}
	e.m.setDeliveriesPending(len(e.dl.pending) + len(e.dl.inFlight))
}

// delivered records the outcome err of an attempt of d: delivered, due again after its
// backoff, or failed once its attempts are spent.
func (e *engine) delivered(d *state.Delivery, err error) {
	delete(e.dl.inFlight, d.ID)
	now := time.Now().UTC()
	d.Attempts++
	switch {
	case err == nil:
		d.State, d.DeliveredAt, d.EndedAt, d.LastError = state.DeliveryDelivered, now, now, ""
		e.m.delivery("delivered")
	case d.Attempts >= e.cfg.DeliveryAttempts:
		d.State, d.EndedAt, d.LastError = state.DeliveryFailed, now, err.Error()
		e.m.delivery("failed")
		e.log.Warn("delivery failed for good", "delivery_id", d.ID, "dag", d.Payload.DAG, "run_id", d.Payload.RunID, "event", d.Payload.Event, "attempts", d.Attempts, "error", err)
	default:
		backoff := &spec.Task{RetryDelay: spec.Duration(e.cfg.DeliveryBackoff), RetryExponentialBackoff: true, MaxRetryDelay: spec.Duration(max(maxDeliveryBackoff, e.cfg.DeliveryBackoff))}
		d.NextAt, d.LastError = now.Add(rules.RetryDelay(backoff, d.Attempts+1)), err.Error()
		e.m.delivery("retry")
		e.log.Info("delivery attempt failed", "delivery_id", d.ID, "attempt", d.Attempts, "next_at", d.NextAt, "error", err)
	}
	if d.State == state.DeliveryPending {
		e.dl.pending[d.ID] = d
	} else {
		e.dl.ended = append(e.dl.ended, d)
	}
	op, perr := e.store.PutDeliveryOp(d)
	if perr != nil {
		e.log.Error("delivery outcome not recorded", "delivery_id", d.ID, "error", perr)
		return
	}
	e.extra = append(e.extra, op)
}

// callbackJob renders callback task t of run r for delivery d, whose payload is set, into d.
func (e *engine) callbackJob(r *run, t *spec.Task, d *state.Delivery) error {
	payload, err := json.Marshal(d.Payload)
	if err != nil {
		return err
	}
	p := d.Payload
	rt := spec.Runtime{
		RunID: r.rec.ID, RunType: string(r.rec.Type), LogicalDate: r.rec.LogicalDate,
		DataIntervalStart: r.rec.DataIntervalStart, DataIntervalEnd: r.rec.DataIntervalEnd,
		Params: r.rec.Params, Try: 1,
		Callback: map[string]string{
			"event": p.Event, "state": p.State, "message": p.Message, "delivery_id": p.DeliveryID,
			"task": p.Task, "try": strconv.Itoa(p.Try), "url": p.URL, "payload": string(payload),
		},
	}
	if p.Try == 0 {
		rt.Callback["try"] = ""
	}
	rendered, err := r.def.Render(t, rt)
	if err != nil {
		return fmt.Errorf("cannot build the callback's job: %w", err)
	}
	d.Task = rendered
	d.JobID = e.exec.JobID(callbackAttempt(d, nil))
	return nil
}

// callbackAttempt is the Nomad job of the task of delivery d, in queue q: named for the
// delivery, so its ID is the same for every leader that registers it.
func callbackAttempt(d *state.Delivery, q *spec.Queue) nomadexec.Attempt {
	p := d.Payload
	return nomadexec.Attempt{
		DAG: p.DAG, RunID: p.RunID, Task: spec.CallbackTaskName + "-" + d.ID[:16], Try: 1,
		Queued: d.CreatedAt, Spec: d.Task, Queue: q,
		Env: map[string]string{
			"DAGFLOW_DAG":            p.DAG,
			"DAGFLOW_RUN_ID":         p.RunID,
			"DAGFLOW_TASK":           p.Task,
			"DAGFLOW_TRY":            strconv.Itoa(p.Try),
			"DAGFLOW_LOGICAL_DATE":   p.LogicalDate.UTC().Format(time.RFC3339),
			"DAGFLOW_CALLBACK_EVENT": p.Event,
			"DAGFLOW_DELIVERY_ID":    d.ID,
		},
	}
}

// runJob registers the job of delivery d's task, create-only and fenced as a try's is: a job
// that exists already (a leader before registered it) counts as delivered.
func (e *engine) runJob(d *state.Delivery, q *spec.Queue) error {
	ctx, cancel := context.WithTimeout(e.ctx, callTimeout)
	defer cancel()
	if _, _, err := e.register(ctx, callbackAttempt(d, q)); err != nil {
		return fmt.Errorf("register the callback's job %s: %w", d.JobID, err)
	}
	return nil
}

// post makes one call of delivery d's webhook. Header values from Nomad Variables are read now
// and live only in the request.
func (e *engine) post(d *state.Delivery) error {
	ctx, cancel := context.WithTimeout(e.ctx, deliveryTimeout)
	defer cancel()
	body, err := json.Marshal(d.Payload)
	if err != nil {
		return fmt.Errorf("encode payload: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.URL, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("build request: %w", err)
	}
	for name, value := range d.Headers {
		req.Header.Set(name, value)
	}
	for _, h := range d.SecretHeaders {
		value, err := e.exec.VariableItem(ctx, h.Namespace, h.Path, h.Key)
		if err != nil {
			return fmt.Errorf("header %s: %w", h.Name, err)
		}
		req.Header.Set(h.Name, value)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "dagflow")
	req.Header.Set("X-Dagflow-Event", d.Payload.Event)
	req.Header.Set("X-Dagflow-Delivery", d.ID)
	req.Header.Set("Idempotency-Key", d.ID)
	resp, err := e.dl.client.Do(req)
	if err != nil {
		return fmt.Errorf("call webhook: %w", err)
	}
	// Read a little of the body so the connection can be reused; what it says is not kept, as
	// a receiver may echo what it was sent.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("call webhook: %s answered HTTP %s", d.URL, resp.Status)
	}
	return nil
}

// deliveryMetrics are the metrics of callbacks and deadlines.
type deliveryMetrics struct {
	results *prometheus.CounterVec
	pending prometheus.Gauge
	missed  prometheus.Counter
}

func newDeliveryMetrics(reg prometheus.Registerer) deliveryMetrics {
	m := deliveryMetrics{
		results: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dagflow_deliveries_total", Help: "Callback delivery attempts, by result: delivered, retry (failed, to be tried again) or failed (failed for good).",
		}, []string{"result"}),
		pending: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "dagflow_deliveries_pending", Help: "Callback deliveries not delivered yet and not failed for good (leader only).",
		}),
		missed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "dagflow_deadlines_missed_total", Help: "Deadlines of runs and task instances found missed.",
		}),
	}
	reg.MustRegister(m.results, m.pending, m.missed)
	for _, r := range []string{"delivered", "retry", "failed"} {
		m.results.WithLabelValues(r)
	}
	return m
}

func (m *Metrics) delivery(result string) {
	if m != nil {
		m.dl.results.WithLabelValues(result).Inc()
	}
}

func (m *Metrics) setDeliveriesPending(n int) {
	if m != nil {
		m.dl.pending.Set(float64(n))
	}
}

func (m *Metrics) deadlineMissed() {
	if m != nil {
		m.dl.missed.Inc()
	}
}
