package engine

import (
	"context"
	"errors"
	"time"

	"github.com/dagflow/dagflow/hcl/spec"
	"github.com/dagflow/dagflow/rules"
	"github.com/dagflow/dagflow/state"
)

// reconcile loads what Consul holds and matches every try in flight with its Nomad job before
// anything is scheduled: a job that exists is adopted (the event stream's snapshot reports its
// allocations), a try recorded as queued whose job does not exist is submitted (the leader
// before wrote the record and stopped before, or while, registering), and a try recorded as
// running whose job is gone failed. A try whose stop was recorded is stopped (again), or ends
// as the stop says when its job is gone. Dead jobs of finished tries are purged after
// PurgeAfter.
func (e *engine) reconcile() error {
	// Start from nothing, so a retry after a failure does not see a half-loaded state.
	e.catalog, e.dags, e.queues = nil, map[string]*dagInfo{}, map[string]*spec.Queue{}
	e.runs, e.cursor, e.done = map[runKey]*run{}, map[string]time.Time{}, map[string][]doneRun{}
	e.jobs, e.perQueue, e.perDAG = map[string]*jobRef{}, map[string]int{}, map[string]int{}
	e.purges, e.dirty, e.extra, e.after = nil, nil, nil, nil
	ctx, cancel := context.WithTimeout(e.ctx, callTimeout)
	defer cancel()
	c, err := e.store.Catalog(ctx)
	if err != nil {
		return err
	}
	defs, queues, loaded, err := e.loadCatalog(ctx, c, nil)
	if err != nil {
		return err
	}
	e.setCatalog(c, defs, queues)
	if e.paused, _, err = e.store.Paused(ctx, 0); err != nil {
		return err
	}
	assets, err := e.store.Assets(ctx)
	if err != nil {
		return err
	}
	consumers, err := e.store.Consumers(ctx)
	if err != nil {
		return err
	}
	e.loadAssets(assets, consumers)
	if err := e.loadDeliveries(ctx); err != nil {
		return err
	}
	// Runs are read a DAG at a time: the engine keeps the runs not finished and a few facts
	// of the others (cursor, retention, summaries), never every record at once.
	e.recent, e.unsummarized = map[string][]state.RunSummary{}, map[string]bool{}
	err = e.store.EachDAGRuns(ctx, func(recs []*state.RunRecord) error {
		loaded += len(recs)
		for _, rec := range recs {
			if err := e.loadRun(rec); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if err := e.seedSummaries(ctx); err != nil {
		return err
	}
	if err := e.checkIndex(ctx); err != nil {
		return err
	}
	if loaded >= bigLoad {
		releaseMemory()
	}

	jobs, err := e.exec.Jobs(ctx)
	if err != nil {
		return err
	}
	e.now = time.Now().UTC()
	for jobID, ref := range e.jobs {
		status, exists := jobs[jobID]
		stopped := ref.task.ti.Current().Stop != nil
		switch {
		case exists && status == "dead":
			// Its allocations normally arrive with the watch's snapshot; a job stopped before
			// it had one never reports anything, so look.
			st, err := e.exec.Status(ctx, jobID)
			if err != nil {
				return err
			}
			if len(st.Allocs) == 0 {
				e.failTry(ref, "its Nomad job ended without an allocation")
			}
		case exists && stopped:
			// Its stop was recorded, but the leader before may have lost the lead before it
			// stopped the job.
			e.afterFlush(func() { e.stopJob(jobID, ref) })
		case exists:
			// Adopted: the watch reports how it fares.
		case stopped:
			// Stopped before its job was registered, or the job is gone: it ends as its stop
			// says.
			e.failTry(ref, "")
		case ref.task.ti.State == rules.Queued:
			e.log.Info("submitting a try recorded but not registered", "job_id", jobID)
			e.afterFlush(func() { e.submit(ref) })
		default:
			e.failTry(ref, "its Nomad job vanished while it ran")
		}
	}
	for jobID, status := range jobs {
		if e.jobs[jobID] != nil {
			continue
		}
		if status == "dead" {
			e.purges = append(e.purges, purge{jobID: jobID, at: e.now.Add(e.cfg.PurgeAfter)})
		} else {
			e.log.Warn("a job of this installation runs but no try in flight has it; leaving it alone", "job_id", jobID)
		}
	}
	return e.flush()
}

// loadRun takes run record rec as a new leader reads it: a finished run leaves its cursor,
// retention entry and summary; a run not finished is loaded with its tries in flight.
func (e *engine) loadRun(rec *state.RunRecord) error {
	dag := rec.Run.DAG
	e.recent[dag] = state.Add(e.recent[dag], state.Summarize(rec))
	if rec.Run.Type == rules.RunScheduled && rec.Run.DataIntervalEnd.After(e.cursor[dag]) {
		e.cursor[dag] = rec.Run.DataIntervalEnd
	}
	if rec.Run.State.Finished() {
		e.done[dag] = append(e.done[dag], doneRun{id: rec.Run.ID, logicalDate: rec.Run.LogicalDate, scheduled: rec.Run.Type == rules.RunScheduled, state: rec.Run.State})
		return nil
	}
	def, err := e.version(dag, rec.Run.Version)
	if errors.Is(err, state.ErrNotFound) {
		e.log.Error("the DAG version of a run is not stored; the run is left as it is", "dag", dag, "run_id", rec.Run.ID, "version", rec.Run.Version)
		return nil
	}
	if err != nil {
		return err
	}
	r := newRun(rec.Run, def, rec.Tasks)
	e.runs[runKey{dag, rec.Run.ID}] = r
	for _, t := range r.tasks {
		if cur := t.ti.Current(); cur != nil && (t.ti.State == rules.Queued || t.ti.State == rules.Running) {
			e.track(cur.JobID, &jobRef{run: r, task: t, try: cur.Try})
		}
	}
	return nil
}
