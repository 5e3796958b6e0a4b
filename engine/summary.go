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
//
// A run created or changing state is written to the summaries in the same step; a change of
// task counts alone waits up to summaryEvery, so that a fan-out does not write its DAG's
// summary in every step that moves one of its tasks (with the key that then woke long-polls,
// 2.3 of the 6.1 keys written per try of a 200-task fan-out).
const summaryEvery = 2 * time.Second

// summarize is run r as the summary holds it.
func summarize(r *run) state.RunSummary {
	rec := &state.RunRecord{Run: r.rec, Tasks: make(map[string]*state.TaskInstance, len(r.tasks))}
	for name, t := range r.tasks {
		rec.Tasks[name] = &t.ti
	}
	return state.Summarize(rec)
}

// summaryOps updates the summaries of the DAGs of the runs in e.dirty and, when one of their
// runs was created or changed state or summaryEvery passed since the last write, returns the
// writes of every summary changed since, by DAG name.
func (e *engine) summaryOps() (consulapi.TxnOps, error) {
	now := false
	for _, r := range e.dirty {
		sum := summarize(r)
		i := slices.IndexFunc(e.recent[r.rec.DAG], func(s state.RunSummary) bool { return s.Run.ID == sum.Run.ID })
		if i < 0 || e.recent[r.rec.DAG][i].Run.State != sum.Run.State {
			now = true
		}
		e.recent[r.rec.DAG] = state.Add(e.recent[r.rec.DAG], sum)
		e.unsummarized[r.rec.DAG] = true
	}
	if len(e.unsummarized) == 0 || !now && e.now.Sub(e.summarizedAt) < summaryEvery {
		return nil, nil
	}
	touched := e.unsummarized
	e.unsummarized, e.summarizedAt = map[string]bool{}, e.now
	var ops consulapi.TxnOps
	for _, dag := range slices.Sorted(maps.Keys(touched)) {
		op, err := e.store.PutSummaryOp(&state.Summary{DAG: dag, Recent: e.recent[dag]})
		if err != nil {
			return nil, err
		}
		ops = append(ops, op)
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
	}
	return nil
}

func sameJSON(a, b any) bool {
	x, errX := json.Marshal(a)
	y, errY := json.Marshal(b)
	return errX == nil && errY == nil && bytes.Equal(x, y)
}
