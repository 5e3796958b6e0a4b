package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"maps"
	"slices"
	"time"

	consulapi "github.com/hashicorp/consul/api"

	"github.com/dagflow/dagflow/state"
)

// The leader keeps each DAG's run summary (state.Summary: its latest runs, as the DAG list
// shows them) in e.recent and writes it with the records of the DAG's runs that changed, so
// the list reads one small key per DAG instead of every run record.

// summarize is run r as the summary holds it.
func summarize(r *run) state.RunSummary {
	rec := &state.RunRecord{Run: r.rec, Tasks: make(map[string]*state.TaskInstance, len(r.tasks))}
	for name, t := range r.tasks {
		rec.Tasks[name] = &t.ti
	}
	return state.Summarize(rec)
}

// summaryOps updates the summaries of the DAGs of the runs in e.dirty and returns their
// writes, by DAG name, then the write of summaries-changed.
func (e *engine) summaryOps() (consulapi.TxnOps, error) {
	touched := map[string]bool{}
	for _, r := range e.dirty {
		e.recent[r.rec.DAG] = state.Add(e.recent[r.rec.DAG], summarize(r))
		touched[r.rec.DAG] = true
	}
	var ops consulapi.TxnOps
	for _, dag := range slices.Sorted(maps.Keys(touched)) {
		op, err := e.store.PutSummaryOp(&state.Summary{DAG: dag, Recent: e.recent[dag]})
		if err != nil {
			return nil, err
		}
		ops = append(ops, op)
	}
	if len(ops) > 0 {
		ops = append(ops, e.store.SummariesChangedOp(e.now))
	}
	return ops, nil
}

// seedSummaries queues the writes of the stored summaries that do not match e.recent, built
// from the run records a new leader starts from: written by a leader that stopped between
// writes, or by a version of dagflow before summaries. It reads the summaries of the DAGs with
// runs only, in read-only transactions (the list of every summary took 140 MB with 10,000).
func (e *engine) seedSummaries(ctx context.Context) error {
	dags := slices.Sorted(maps.Keys(e.recent))
	stored, err := e.store.SummariesOf(ctx, dags)
	if err != nil {
		return err
	}
	written := false
	for _, dag := range dags {
		sum := &state.Summary{DAG: dag, Recent: e.recent[dag]}
		if old := stored[dag]; old != nil && sameJSON(old, sum) {
			continue
		}
		op, err := e.store.PutSummaryOp(sum)
		if err != nil {
			return err
		}
		e.extra = append(e.extra, op)
		written = true
	}
	if written {
		e.extra = append(e.extra, e.store.SummariesChangedOp(time.Now()))
	}
	return nil
}

func sameJSON(a, b any) bool {
	x, errX := json.Marshal(a)
	y, errY := json.Marshal(b)
	return errX == nil && errY == nil && bytes.Equal(x, y)
}
