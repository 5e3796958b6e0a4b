package engine

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"

	consulapi "github.com/hashicorp/consul/api"

	"github.com/dagflow/dagflow/consullock"
	"github.com/dagflow/dagflow/rules"
	"github.com/dagflow/dagflow/state"
)

// Assets (data-aware scheduling): a task's successful try records an event for each of its
// outlets, in the transaction that records the success; a DAG scheduled on assets gets a run
// when its schedule_on condition holds over the assets updated since it last consumed them,
// and the run's creation advances what it consumed, in one transaction. The engine keeps every
// asset and consumer record in memory, read when it takes over; only the leader writes them.

// assetState is the engine's view of assets: loaded by reconcile, changed only in the loop.
type assetState struct {
	assets    map[string]*state.Asset
	consumers map[string]*state.Consumer
	changed   map[string]bool // assets with events since consumers were last checked
	groups    []consulapi.TxnOps
}

// loadAssets reads the assets and consumers, and has every consumer checked in the next step:
// a leader before may have recorded events and stopped before it created the runs they owed.
func (e *engine) loadAssets(assets map[string]*state.Asset, consumers map[string]*state.Consumer) {
	e.as = assetState{assets: assets, consumers: consumers, changed: map[string]bool{}}
	for name := range assets {
		e.as.changed[name] = true
	}
}

// recheckConsumers has every DAG scheduled on assets checked in the next step, after the
// catalog or a pause changed: an event may have been recorded before the engine knew of a DAG
// it concerns, or while the DAG was paused (its events wait, unconsumed, for the unpause).
func (e *engine) recheckConsumers() {
	if e.as.changed == nil {
		return // reconcile loads the assets next, and checks every consumer
	}
	for _, d := range e.dags {
		if d.def.ScheduleOn != nil {
			for _, a := range d.def.ScheduleOn.Assets() {
				e.as.changed[a] = true
			}
		}
	}
}

// asset returns the record of asset name, a new one when it had no event yet.
func (e *engine) asset(name string) *state.Asset {
	a := e.as.assets[name]
	if a == nil {
		a = &state.Asset{Name: name}
		e.as.assets[name] = a
	}
	return a
}

// addEvent records ev as the next event of its asset and returns the operation that writes the
// asset as it is now. ok is false, and nothing changes, when an event with ev's ID is kept:
// found is that one.
func (e *engine) addEvent(ev state.AssetEvent) (op *consulapi.TxnOp, rec state.AssetEvent, ok bool, err error) {
	a := e.asset(ev.Asset)
	if found := a.Find(ev.ID); found != nil {
		return nil, *found, false, nil
	}
	before := *a
	before.Events = slices.Clone(a.Events)
	rec = a.Add(ev)
	if op, err = e.store.PutAssetOp(a); err != nil {
		*a = before
		return nil, state.AssetEvent{}, false, err
	}
	e.as.changed[ev.Asset] = true
	return op, rec, true, nil
}

// recordOutlets records an event for each outlet of task t, whose try cur of run r succeeded.
// The writes go with the task's record (see flush), so the success and its events are
// committed together or not at all. Each operation holds its asset as of its own event, so a
// later transaction never writes an event whose try's success is not recorded.
func (e *engine) recordOutlets(r *run, t *task, cur *state.Try) {
	for _, name := range t.spec.Outlets {
		ev := state.AssetEvent{
			Asset: name, ID: state.TaskEventID(r.rec.DAG, r.rec.ID, t.ti.Task, cur.Try), At: cur.EndedAt,
			DAG: r.rec.DAG, RunID: r.rec.ID, Task: t.ti.Task, Try: cur.Try, Outputs: cur.Outputs,
		}
		op, rec, ok, err := e.addEvent(ev)
		if err != nil {
			e.log.Error("asset event not recorded", "asset", name, "dag", r.rec.DAG, "run_id", r.rec.ID, "task", t.ti.Task, "error", err)
			continue
		}
		if ok {
			t.assetOps = append(t.assetOps, op)
			e.log.Info("asset updated", "asset", name, "seq", rec.Seq, "dag", r.rec.DAG, "run_id", r.rec.ID, "task", t.ti.Task)
		}
	}
}

// emit records the event an emit request posts. The returned operation writes it; nil for a
// duplicate, when rec is the event recorded before.
func (e *engine) emit(req *state.Request) (op *consulapi.TxnOp, rec state.AssetEvent, duplicate bool, err error) {
	if err := state.CheckAssetName(req.Asset); err != nil {
		return nil, rec, false, err
	}
	ev := state.AssetEvent{Asset: req.Asset, ID: req.ID, At: e.now}
	if req.Event != nil {
		if req.Event.ID != "" {
			ev.ID = req.Event.ID
		}
		if len(req.Event.Extra) > 0 {
			var obj map[string]json.RawMessage
			if json.Unmarshal(req.Event.Extra, &obj) != nil {
				return nil, rec, false, fmt.Errorf("the extra of an asset event must be a JSON object, such as {\"rows\": 42}")
			}
			ev.Extra = req.Event.Extra
		}
	}
	op, rec, ok, err := e.addEvent(ev)
	if err != nil {
		return nil, rec, false, err
	}
	if ok {
		e.log.Info("asset updated", "asset", rec.Asset, "seq", rec.Seq, "event_id", rec.ID)
	}
	return op, rec, !ok, nil
}

// triggerOnAssets creates a run of every DAG scheduled on assets whose condition holds, when
// one of its assets had an event since the last check: a DAG no event concerns is not looked at.
func (e *engine) triggerOnAssets() {
	if len(e.as.changed) == 0 {
		return
	}
	changed := e.as.changed
	e.as.changed = map[string]bool{}
	for _, name := range slices.Sorted(maps.Keys(e.dags)) {
		d := e.dags[name]
		cond := d.def.ScheduleOn
		if cond == nil || e.isPaused(d) {
			continue
		}
		names := cond.Assets()
		if !slices.ContainsFunc(names, func(a string) bool { return changed[a] }) {
			continue
		}
		consumed := e.consumed(d)
		if !cond.Holds(func(a string) bool { return e.as.assets[a] != nil && e.as.assets[a].Seq > consumed[a] }) {
			continue
		}
		next := &state.Consumer{DAG: name, Consumed: map[string]uint64{}}
		var events []state.AssetEvent
		for _, a := range names {
			if rec := e.as.assets[a]; rec != nil {
				events = append(events, rec.Since(consumed[a], state.MaxTriggerEvents)...)
				next.Consumed[a] = rec.Seq
			} else {
				next.Consumed[a] = consumed[a]
			}
		}
		params, err := d.def.ResolveParams(nil)
		if err != nil {
			e.log.Error("an asset-triggered run cannot fill the DAG's params; set defaults for required params", "dag", name, "error", err)
			continue
		}
		rec := state.Run{
			DAG: name, ID: rules.RunID(rules.RunAssetTriggered, e.now), Type: rules.RunAssetTriggered,
			Version: d.entry.Version, LogicalDate: e.now, DataIntervalStart: e.now, DataIntervalEnd: e.now,
			Params: params, State: state.RunQueued, CreatedAt: e.now, AssetEvents: events,
		}
		if e.exists(name, rec.ID) {
			continue
		}
		op, err := e.store.PutConsumerOp(next)
		if err != nil {
			e.log.Error("asset consumer not recorded", "dag", name, "error", err)
			continue
		}
		r := newRun(rec, d.def, nil)
		r.isNew = true
		r.assetOps = consulapi.TxnOps{op}
		e.runs[runKey{name, rec.ID}] = r
		e.as.consumers[name] = next
		e.queue(r)
		e.log.Info("created run", "dag", name, "run_id", rec.ID, "asset_events", len(events))
	}
}

// consumed returns, per asset of DAG d's condition, the sequence it consumed. An asset it never
// consumed counts from when the DAG was first applied: events before then do not trigger it.
func (e *engine) consumed(d *dagInfo) map[string]uint64 {
	out := map[string]uint64{}
	c := e.as.consumers[d.def.Name]
	for _, a := range d.def.ScheduleOn.Assets() {
		if c != nil {
			if seq, ok := c.Consumed[a]; ok {
				out[a] = seq
				continue
			}
		}
		if rec := e.as.assets[a]; rec != nil {
			for _, ev := range rec.Events {
				if !ev.At.After(d.entry.CreatedAt) {
					out[a] = ev.Seq
				}
			}
		}
	}
	return out
}

// assetGroups returns the writes of the step that must share a transaction: each task record
// with the asset events of its success, each asset-triggered run's creation with what its DAG
// consumed, each emit's event with its request's result, in the order they were made. It
// clears what it returns.
func (e *engine) assetGroups(r *run, groups []consulapi.TxnOps) ([]consulapi.TxnOps, error) {
	if r.isNew && len(r.assetOps) > 0 {
		ops, err := e.runOps(r)
		if err != nil {
			return nil, err
		}
		groups = append(groups, append(ops, r.assetOps...))
		r.assetOps, r.isNew, r.dirty = nil, false, false
	}
	for _, t := range r.order {
		ti := r.tasks[t.Name]
		if !ti.dirty || len(ti.assetOps) == 0 {
			continue
		}
		op, err := e.store.PutTaskOp(&ti.ti)
		if err != nil {
			return nil, err
		}
		groups = append(groups, append(consulapi.TxnOps{op}, ti.assetOps...))
		ti.assetOps, ti.dirty = nil, false
	}
	return groups, nil
}

// writeGroup writes ops in one fenced transaction.
func (e *engine) writeGroup(ops consulapi.TxnOps) error {
	if n := len(state.SplitTxn(ops, consullock.MaxTxnOps)); n > 1 {
		return fmt.Errorf("write state: %d operations that must share a transaction do not fit one", len(ops))
	}
	return e.write(ops, nil)
}
