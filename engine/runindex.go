package engine

import (
	"context"

	consulapi "github.com/hashicorp/consul/api"

	"github.com/dagflow/dagflow/state"
)

// The leader keeps the run index (state.IndexEntry) that the list of every DAG's runs pages
// through: a run's entry goes with the write of its record whenever its state changed (runOps),
// and is deleted with the run (prune). One step's writes may take several transactions, so a
// leader that stops between two of them can leave an entry behind its record; a new leader
// compares the index an hour at a time with the runs it starts from and rewrites the hours
// that differ (checkIndex), which also builds the index after an upgrade from a version
// without one.

// runOps returns the writes of run r's record: its creation (which fails when the run exists)
// or its update, then its index entry when its state changed since the entry was written.
func (e *engine) runOps(r *run) (consulapi.TxnOps, error) {
	op, err := e.store.PutRunOp(&r.rec)
	if r.isNew {
		op, err = e.store.CreateRunOp(&r.rec)
	}
	if err != nil {
		return nil, err
	}
	ops := consulapi.TxnOps{op}
	if r.indexed != r.rec.State {
		op, err := e.store.PutIndexOp(indexEntry(&r.rec))
		if err != nil {
			return nil, err
		}
		ops = append(ops, op)
		r.indexed = r.rec.State
	}
	return ops, nil
}

func indexEntry(r *state.Run) state.IndexEntry {
	return state.IndexEntry{DAG: r.DAG, ID: r.ID, LogicalDate: r.LogicalDate, State: r.State}
}

// indexWrites is how many operations checkIndex hands to one write: rebuilding the index of
// many runs should not hold all their operations in memory at once.
const indexWrites = 4096

// checkIndex makes the stored run index match the runs the engine starts from (those not
// finished and the finished ones it keeps; a run whose DAG version is gone is left out of
// both): it reads the index an hour at a time, compares each hour's hash with that of the
// runs of the hour, and rewrites the hours that differ, writing before the engine's first
// step.
func (e *engine) checkIndex(ctx context.Context) error {
	want := map[string]*state.IndexHash{}
	e.eachIndexed(func(en state.IndexEntry) {
		h := want[en.Hour()]
		if h == nil {
			h = &state.IndexHash{}
			want[en.Hour()] = h
		}
		h.Add(en)
	})
	hours, err := e.store.IndexHours(ctx)
	if err != nil {
		return err
	}
	stale := map[string]bool{}
	stored := map[string]bool{}
	for _, hour := range hours {
		stored[hour] = true
		w := want[hour]
		if w == nil {
			stale[hour] = true
			continue
		}
		entries, err := e.store.IndexHourEntries(ctx, hour)
		if err != nil {
			return err
		}
		var got state.IndexHash
		for _, en := range entries {
			got.Add(en)
		}
		if got != *w {
			stale[hour] = true
		}
	}
	for hour := range want {
		if !stored[hour] {
			stale[hour] = true
		}
	}
	if len(stale) > 0 {
		e.log.Info("rewriting the run index of the hours that do not match the runs", "hours", len(stale))
	}
	var ops consulapi.TxnOps
	flush := func(limit int) error {
		if len(ops) < limit {
			return nil
		}
		err := e.write(ops, nil)
		ops = ops[:0]
		return err
	}
	for hour := range stale {
		ops = append(ops, e.store.DeleteIndexHourOp(hour))
	}
	var failed error
	e.eachIndexed(func(en state.IndexEntry) {
		if failed != nil || !stale[en.Hour()] {
			return
		}
		op, err := e.store.PutIndexOp(en)
		if err == nil {
			ops = append(ops, op)
			err = flush(indexWrites)
		}
		failed = err
	})
	if failed != nil {
		return failed
	}
	if err := flush(1); err != nil {
		return err
	}
	for _, r := range e.runs {
		r.indexed = r.rec.State
	}
	return nil
}

// eachIndexed calls fn with the index entry of every run the engine holds.
func (e *engine) eachIndexed(fn func(state.IndexEntry)) {
	for _, r := range e.runs {
		fn(indexEntry(&r.rec))
	}
	for dag, list := range e.done {
		for _, d := range list {
			fn(state.IndexEntry{DAG: dag, ID: d.id, LogicalDate: d.logicalDate, State: d.state})
		}
	}
}
