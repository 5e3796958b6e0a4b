package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"runtime/debug"
	"slices"
	"sort"
	"sync"
	"time"

	consulapi "github.com/hashicorp/consul/api"

	"github.com/dagflow/dagflow/consullock"
	"github.com/dagflow/dagflow/hcl/spec"
	"github.com/dagflow/dagflow/internal/bounded"
	"github.com/dagflow/dagflow/internal/wait"
	"github.com/dagflow/dagflow/rules"
	"github.com/dagflow/dagflow/schedule"
	"github.com/dagflow/dagflow/state"
)

// maxBackfill bounds the runs one backfill request creates.
const maxBackfill = 1000

// versionReads is how many DAG versions loadCatalog reads at once, as plan does.
const versionReads = 8

// newRun returns the in-memory run for record rec of DAG version def, with task instances
// from tis (missing ones start in state None).
func newRun(rec state.Run, def *spec.DAG, tis map[string]*state.TaskInstance) *run {
	r := &run{rec: rec, def: def, tasks: map[string]*task{}, down: map[string][]string{}}
	r.order = spec.TopoOrder(def.Tasks)
	for _, t := range def.Tasks {
		for _, up := range t.DependsOn {
			r.down[up] = append(r.down[up], t.Name)
		}
		ti := &task{spec: t, ti: state.TaskInstance{DAG: rec.DAG, RunID: rec.ID, Task: t.Name}}
		if stored := tis[t.Name]; stored != nil {
			ti.ti = *stored
		}
		r.tasks[t.Name] = ti
	}
	r.loadInstances(tis)
	return r
}

// sortedRuns returns the runs not finished, oldest logical date first.
func (e *engine) sortedRuns() []*run {
	out := slices.Collect(maps.Values(e.runs))
	sort.Slice(out, func(i, j int) bool { return runBefore(out[i], out[j]) })
	return out
}

func runBefore(a, b *run) bool {
	if !a.rec.LogicalDate.Equal(b.rec.LogicalDate) {
		return a.rec.LogicalDate.Before(b.rec.LogicalDate)
	}
	return a.rec.ID < b.rec.ID
}

// setCatalog takes a newly read catalog with its DAG and queue versions.
func (e *engine) setCatalog(c *state.Catalog, defs map[string]*spec.DAG, queues map[string]*spec.Queue) {
	if e.catalog != nil && c.Index < e.catalog.Index {
		return // older than one read meanwhile
	}
	e.catalog = c
	e.queues = queues
	dags := map[string]*dagInfo{}
	for name, entry := range c.DAGs {
		def := defs[versionKey(name, entry.Version)]
		if def == nil {
			continue
		}
		e.versions[versionKey(name, entry.Version)] = def
		if prev := e.dags[name]; prev != nil && prev.def == def && prev.entry.CreatedAt.Equal(entry.CreatedAt) {
			// Unchanged by this apply: keep its parsed schedule and due time.
			prev.entry = entry
			dags[name] = prev
			continue
		}
		info := &dagInfo{entry: entry, def: def}
		if def.Schedule != "" {
			loc, err := schedule.LoadLocation(def.Timezone)
			if err == nil {
				info.sched, err = schedule.Parse(def.Schedule, loc, def.StartDate)
			}
			if err != nil {
				// apply validated it; a schedule this binary cannot read is left alone, loudly.
				e.log.Error("cannot read the schedule of a DAG; it creates no scheduled runs", "dag", name, "error", err)
				info.sched = nil
			}
		}
		dags[name] = info
	}
	e.dags = dags
	e.recheckConsumers()
}

// loadCatalog reads catalog c's DAG and queue versions that the engine does not hold yet, and
// returns how many DAG versions it read.
func (e *engine) loadCatalog(ctx context.Context, c *state.Catalog, known map[string]*spec.DAG) (map[string]*spec.DAG, map[string]*spec.Queue, int, error) {
	defs := map[string]*spec.DAG{}
	var mu sync.Mutex
	var reads []func(context.Context) error
	for name, entry := range c.DAGs {
		k := versionKey(name, entry.Version)
		if d := known[k]; d != nil {
			defs[k] = d
			continue
		}
		// A new leader reads every applied version: with thousands of DAGs, one at a time
		// would take most of reconcile's callTimeout.
		reads = append(reads, func(ctx context.Context) error {
			v, err := e.store.DAGVersion(ctx, name, entry.Version)
			if err != nil {
				return err
			}
			mu.Lock()
			defs[k] = v.DAG
			mu.Unlock()
			return nil
		})
	}
	if err := bounded.Run(ctx, versionReads, reads); err != nil {
		return nil, nil, 0, err
	}
	queues := map[string]*spec.Queue{}
	for name, entry := range c.Queues {
		q, err := e.store.Queue(ctx, name, entry.Version)
		if err != nil {
			return nil, nil, 0, err
		}
		queues[name] = q
	}
	return defs, queues, len(reads), nil
}

// bigLoad is how many DAG versions or run records a load reads before the engine gives the
// memory it took back to the system once it is over (releaseMemory).
const bigLoad = 1000

// releaseMemory collects garbage and returns the free memory to the system, in the
// background, after a big load. The runtime lets the heap grow to twice what was live at its
// last collection, and one that ran during a load saw the load's buffers live: without this a
// leader that read 10,000 versions and their runs kept 290 MiB RSS for 100 MB live until the
// next periodic collection, two minutes on. It costs one collection of the live heap (tens of
// milliseconds of CPU at that size) per big load.
func releaseMemory() { go debug.FreeOSMemory() }

// isPaused reports whether DAG d is paused: as set at runtime, else as its definition says.
func (e *engine) isPaused(d *dagInfo) bool {
	if p, ok := e.paused[d.def.Name]; ok {
		return p.Paused
	}
	return d.def.Paused
}

// scheduleRuns creates the scheduled runs that are due and starts queued runs while their DAG
// has room under max_active_runs.
func (e *engine) scheduleRuns() {
	active := map[string]int{}
	running := map[string]int{}
	for _, r := range e.runs {
		active[r.rec.DAG]++
		if r.rec.State == state.RunRunning {
			running[r.rec.DAG]++
		}
	}
	for name, d := range e.dags {
		if d.sched == nil || e.isPaused(d) || active[name] >= max(d.def.MaxActiveRuns, 1) {
			continue
		}
		if e.notDue(d) {
			continue
		}
		iv, ok := e.nextInterval(d)
		if !ok {
			continue
		}
		rec := state.Run{
			DAG: name, ID: rules.RunID(rules.RunScheduled, iv.Start), Type: rules.RunScheduled,
			Version: d.entry.Version, LogicalDate: iv.Start, DataIntervalStart: iv.Start, DataIntervalEnd: iv.End,
			State: state.RunQueued, CreatedAt: e.now,
		}
		if _, exists := e.runs[runKey{name, rec.ID}]; exists {
			continue
		}
		if params, err := d.def.ResolveParams(nil); err == nil {
			rec.Params = params
		} else {
			e.log.Error("a scheduled run cannot fill the DAG's params; set defaults for required params", "dag", name, "error", err)
			continue
		}
		r := newRun(rec, d.def, nil)
		r.isNew = true
		e.runs[runKey{name, rec.ID}] = r
		e.cursor[name] = iv.End
		active[name]++
		e.queue(r)
		e.log.Info("created run", "dag", name, "run_id", rec.ID)
	}
	for _, r := range e.sortedRuns() {
		if r.rec.State != state.RunQueued || running[r.rec.DAG] >= max(r.def.MaxActiveRuns, 1) {
			continue
		}
		r.rec.State, r.rec.StartedAt = state.RunRunning, e.now
		running[r.rec.DAG]++
		e.markRun(r)
	}
}

// nextInterval returns the interval of DAG d's next scheduled run, if one is due now.
//
// The backlog starts at the end of its latest scheduled run's interval, or at its start date.
// Catch-up "all" takes the first interval owed, "latest" the last one; "none" takes the last
// one too, but only from the interval under way when the DAG was created or last unpaused, so
// nothing that ended before then runs and that interval is the first to run.
func (e *engine) nextInterval(d *dagInfo) (schedule.Interval, bool) {
	from := d.def.StartDate
	if c, ok := e.cursor[d.def.Name]; ok && c.After(from) {
		from = c
	}
	policy := d.def.Catchup
	if policy == spec.CatchupNone {
		since := d.entry.CreatedAt
		if p, ok := e.paused[d.def.Name]; ok && p.At.After(since) {
			since = p.At
		}
		// Without a tick between from and since, the first interval starts after since
		// anyway.
		if tick, ok := d.sched.LastAtOrBefore(since, from); ok {
			from = tick
		}
		policy = spec.CatchupLatest
	}
	b, err := d.sched.Catchup(policy, from, d.def.EndDate, e.now)
	if err != nil || b.Count == 0 {
		e.waitDue(d, from)
		return schedule.Interval{}, false
	}
	if policy == spec.CatchupAll {
		return b.First, true
	}
	return b.Last, true
}

// finishRun records that every task of run r is finished, and drops runs beyond KeepRuns.
func (e *engine) finishRun(r *run) {
	r.rec.State = r.outcome()
	r.rec.EndedAt = e.now
	e.runCallbacks(r)
	e.markRun(r)
	delete(e.runs, runKey{r.rec.DAG, r.rec.ID})
	e.m.runFinished(r.rec.State)
	e.log.Info("run finished", "dag", r.rec.DAG, "run_id", r.rec.ID, "state", r.rec.State)
	e.addDone(r.rec)
}

// outcome returns how run r ended, every task being finished. As in Airflow, it failed when
// one of its leaf tasks (those nothing depends on) failed or did not run because an upstream
// task failed; otherwise it succeeded. A canceled run failed.
func (r *run) outcome() state.RunState {
	if !r.rec.CanceledAt.IsZero() {
		return state.RunFailed
	}
	for _, t := range r.def.Tasks {
		if len(r.down[t.Name]) > 0 {
			continue
		}
		if s := r.tasks[t.Name].ti.State; s == rules.Failed || s == rules.UpstreamFailed {
			return state.RunFailed
		}
	}
	return state.RunSuccess
}

// addDone remembers a finished run and drops the oldest beyond KeepRuns.
func (e *engine) addDone(rec state.Run) {
	list := append(e.done[rec.DAG], doneRun{id: rec.ID, logicalDate: rec.LogicalDate, scheduled: rec.Type == rules.RunScheduled, state: rec.State})
	sort.SliceStable(list, func(i, j int) bool { return list[i].logicalDate.Before(list[j].logicalDate) })
	e.done[rec.DAG] = list
	e.prune(rec.DAG)
}

// prune deletes the oldest finished runs of dag beyond KeepRuns, except its latest scheduled
// run, from which its schedule goes on, and runs history does not hold yet: those stay, and
// the DAG is pruned again each step until history has them.
func (e *engine) prune(dag string) {
	list := e.done[dag]
	latestScheduled := -1
	for i, d := range list {
		if d.scheduled {
			latestScheduled = i
		}
	}
	delete(e.overfull, dag)
	for i := 0; len(list) > e.cfg.KeepRuns && i < len(list); {
		if i == latestScheduled {
			i++
			continue
		}
		if e.cfg.History != nil && !e.cfg.History.Archived(dag, list[i].id) {
			e.overfull[dag] = true
			i++
			continue
		}
		e.extra = append(e.extra, e.store.DeleteRunOps(dag, list[i].id, list[i].logicalDate)...)
		list = slices.Delete(list, i, i+1)
		if latestScheduled > i {
			latestScheduled--
		}
	}
	e.done[dag] = list
}

// onRequests carries out the queued requests not yet carried out, each with its own fenced
// write, and deletes results nobody collected.
func (e *engine) onRequests(reqs []*state.Request) error {
	for _, req := range reqs {
		if req.Result != nil {
			if e.now.Sub(req.Result.DoneAt) > requestTTL {
				// A check-and-set on the request as read: when its requester collects it
				// meanwhile, the deletion fails and changes nothing.
				if err := e.write(consulapi.TxnOps{e.store.DeleteRequestOp(req)}, nil); err != nil && !errors.Is(err, consullock.ErrTxnFailed) {
					return err
				}
			}
			continue
		}
		if e.handled[req.ID] {
			continue
		}
		if err := e.carryOut(req); err != nil {
			return err
		}
		e.handled[req.ID] = true
	}
	return nil
}

// carryOut does what request req asks and records its result in the same fenced write.
func (e *engine) carryOut(req *state.Request) error {
	e.now = time.Now().UTC()
	var (
		created []*run
		res     = state.Result{DoneAt: e.now}
		eventOp *consulapi.TxnOp // an emit's event, written with the request's result
		err     error
	)
	switch req.Kind {
	case state.RequestTrigger:
		created, err = e.trigger(req)
	case state.RequestBackfill:
		created, err = e.backfill(req)
	case state.RequestClear:
		err = e.clear(req)
	case state.RequestMark:
		err = e.mark(req)
	case state.RequestCancel:
		err = e.cancel(req)
	case state.RequestEmit:
		var ev state.AssetEvent
		eventOp, ev, res.Duplicate, err = e.emit(req)
		if err == nil {
			res.Event = &ev
		}
	default:
		err = fmt.Errorf("unknown request kind %q; this server carries out %s", req.Kind,
			quoteList([]string{state.RequestTrigger, state.RequestBackfill, state.RequestClear, state.RequestMark, state.RequestCancel, state.RequestEmit}))
	}
	if err != nil {
		res.Error = err.Error()
		e.log.Info("request refused", "kind", req.Kind, "dag", req.DAG, "error", err)
	}
	for _, r := range created {
		res.RunIDs = append(res.RunIDs, r.rec.ID)
		r.isNew = true
		e.runs[runKey{r.rec.DAG, r.rec.ID}] = r
		e.queue(r)
	}
	op, oerr := e.store.FinishRequestOp(req, res)
	if oerr != nil {
		return oerr
	}
	if eventOp != nil {
		e.as.groups = append(e.as.groups, consulapi.TxnOps{eventOp, op})
	} else {
		e.extra = append(e.extra, op)
	}
	// A failed write, even of a request finished by someone else first, leaves the engine
	// unsure of what Consul holds: the error makes Run start over from it.
	return e.flush()
}

// applied returns the applied DAG name. When the engine does not know it, it reads the catalog
// again first: a request may arrive before the catalog watch reports the apply it follows.
func (e *engine) applied(name string) (*dagInfo, error) {
	if d := e.dags[name]; d != nil {
		return d, nil
	}
	ctx, cancel := context.WithTimeout(e.ctx, callTimeout)
	defer cancel()
	c, err := e.store.Catalog(ctx)
	if err != nil {
		return nil, err
	}
	if _, ok := c.DAGs[name]; ok && (e.catalog == nil || c.Index > e.catalog.Index) {
		defs, queues, read, err := e.loadCatalog(ctx, c, e.versions)
		if err != nil {
			return nil, err
		}
		if read >= bigLoad {
			releaseMemory()
		}
		e.setCatalog(c, defs, queues)
	}
	if d := e.dags[name]; d != nil {
		return d, nil
	}
	return nil, fmt.Errorf("DAG %q is not applied", name)
}

// trigger creates the manual run req asks for.
func (e *engine) trigger(req *state.Request) ([]*run, error) {
	d, err := e.applied(req.DAG)
	if err != nil {
		return nil, err
	}
	typ, date, err := rules.ParseRunID(req.RunID)
	if err != nil || typ != rules.RunManual {
		return nil, fmt.Errorf("run ID %q is not a manual run ID (manual__<RFC 3339 time>)", req.RunID)
	}
	if e.exists(req.DAG, req.RunID) {
		return nil, fmt.Errorf("run %q of DAG %q exists already", req.RunID, req.DAG)
	}
	params, err := d.def.ResolveParams(req.Params)
	if err != nil {
		return nil, err
	}
	rec := state.Run{
		DAG: req.DAG, ID: req.RunID, Type: rules.RunManual, Version: d.entry.Version,
		LogicalDate: date, DataIntervalStart: date, DataIntervalEnd: date,
		Params: params, State: state.RunQueued, CreatedAt: e.now,
	}
	return []*run{newRun(rec, d.def, nil)}, nil
}

// backfill creates a backfill run for every interval of the DAG's schedule whose start is
// between req.From and req.To, skipping logical dates that have a run already.
func (e *engine) backfill(req *state.Request) ([]*run, error) {
	d, err := e.applied(req.DAG)
	if err != nil {
		return nil, err
	}
	if d.sched == nil {
		return nil, fmt.Errorf("DAG %q has no schedule to backfill; trigger it instead", req.DAG)
	}
	if req.To.Before(req.From) {
		return nil, fmt.Errorf("backfill from %s to %s: the end is before the start", req.From.Format(time.RFC3339), req.To.Format(time.RFC3339))
	}
	params, err := d.def.ResolveParams(nil)
	if err != nil {
		return nil, err
	}
	var out []*run
	for iv := range d.sched.Intervals(req.From) {
		if iv.Start.After(req.To) {
			break
		}
		if len(out) == maxBackfill {
			return nil, fmt.Errorf("backfill from %s to %s covers more than %d runs; split it", req.From.Format(time.RFC3339), req.To.Format(time.RFC3339), maxBackfill)
		}
		if e.hasLogicalDate(req.DAG, iv.Start) {
			continue
		}
		rec := state.Run{
			DAG: req.DAG, ID: rules.RunID(rules.RunBackfill, iv.Start), Type: rules.RunBackfill,
			Version: d.entry.Version, LogicalDate: iv.Start, DataIntervalStart: iv.Start, DataIntervalEnd: iv.End,
			Params: params, State: state.RunQueued, CreatedAt: e.now,
		}
		out = append(out, newRun(rec, d.def, nil))
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no interval of DAG %q starts between %s and %s without a run", req.DAG, req.From.Format(time.RFC3339), req.To.Format(time.RFC3339))
	}
	return out, nil
}

// exists reports whether DAG dag has run id, running or kept.
func (e *engine) exists(dag, id string) bool {
	if _, ok := e.runs[runKey{dag, id}]; ok {
		return true
	}
	for _, d := range e.done[dag] {
		if d.id == id {
			return true
		}
	}
	return false
}

// hasLogicalDate reports whether DAG dag has a scheduled or backfill run for date.
func (e *engine) hasLogicalDate(dag string, date time.Time) bool {
	for _, typ := range []rules.RunType{rules.RunScheduled, rules.RunBackfill} {
		if e.exists(dag, rules.RunID(typ, date)) {
			return true
		}
	}
	return false
}

// requestRun returns the run a request names: the engine's own while it is not finished,
// else as stored.
func (e *engine) requestRun(req *state.Request) (*run, error) {
	if r := e.runs[runKey{req.DAG, req.RunID}]; r != nil {
		return r, nil
	}
	if !e.exists(req.DAG, req.RunID) {
		return nil, e.noRun(req.DAG, req.RunID)
	}
	ctx, cancel := context.WithTimeout(e.ctx, callTimeout)
	rec, err := e.store.RunRecord(ctx, req.DAG, req.RunID)
	cancel()
	if err != nil {
		return nil, err
	}
	def, err := e.version(rec.Run.DAG, rec.Run.Version)
	if err != nil {
		return nil, err
	}
	return newRun(rec.Run, def, rec.Tasks), nil
}

// noRun returns the error about a run DAG dag does not have, naming its latest runs.
func (e *engine) noRun(dag, id string) error {
	type known struct {
		id   string
		date time.Time
	}
	var runs []known
	for k, r := range e.runs {
		if k.dag == dag {
			runs = append(runs, known{k.id, r.rec.LogicalDate})
		}
	}
	for _, d := range e.done[dag] {
		runs = append(runs, known{d.id, d.logicalDate})
	}
	if len(runs) == 0 {
		return fmt.Errorf("DAG %q has no run %q; it has no runs at all: check the DAG name", dag, id)
	}
	sort.Slice(runs, func(i, j int) bool {
		if !runs[i].date.Equal(runs[j].date) {
			return runs[i].date.After(runs[j].date)
		}
		return runs[i].id > runs[j].id
	})
	const shown = 5
	ids := make([]string, 0, shown)
	for _, r := range runs[:min(len(runs), shown)] {
		ids = append(ids, r.id)
	}
	return fmt.Errorf("DAG %q has no run %q; its latest runs are %s", dag, id, quoteList(ids))
}

// targets returns task name of run r, and with downstream every task after it, upstream
// first; an error naming r's tasks when it has none of that name.
func (r *run) targets(name string, downstream bool) ([]string, error) {
	if r.tasks[name] == nil {
		names := make([]string, 0, len(r.order))
		for _, t := range r.order {
			names = append(names, t.Name)
		}
		sort.Strings(names)
		return nil, fmt.Errorf("run %q of DAG %q has no task %q; it has %s", r.rec.ID, r.rec.DAG, name, quoteList(names))
	}
	if !downstream {
		return append([]string{name}, r.instanceNames(name)...), nil
	}
	seen := map[string]bool{name: true}
	for _, d := range r.downstream(name) {
		seen[d] = true
	}
	var out []string
	for _, t := range r.order {
		if seen[t.Name] || r.tasks[t.Name].active() && seen[r.tasks[t.Name].mapped.parent.spec.Name] {
			out = append(out, t.Name)
		}
	}
	return out, nil
}

// downstream returns every task after task name of run r, in no particular order.
func (r *run) downstream(name string) []string {
	var out []string
	seen := map[string]bool{name: true}
	for next := []string{name}; len(next) > 0; next = next[1:] {
		for _, d := range r.down[next[0]] {
			if !seen[d] {
				seen[d] = true
				out = append(out, d)
				next = append(next, d)
			}
		}
	}
	return out
}

// clear resets a task instance of a run, and with Downstream every task after it, so each
// runs again with a new try and its retries. A finished run runs again, and a canceled one is
// no longer canceled; a try in flight is stopped first.
func (e *engine) clear(req *state.Request) error {
	r, err := e.requestRun(req)
	if err != nil {
		return err
	}
	targets, err := r.targets(req.Task, req.Downstream)
	if err != nil {
		return err
	}
	for _, name := range targets {
		t := r.tasks[name]
		t.ti.ClearedTries = len(t.ti.Tries)
		if cur := t.ti.Current(); cur != nil && e.jobs[cur.JobID] != nil {
			e.stop(r, t, state.Stop{Reason: "cleared"})
			continue
		}
		t.ti.State, t.ti.RetryAt = rules.None, time.Time{}
		t.ti.Sensor = nil // a cleared sensor waits again, its timeout counted from then
		if t.isMapped() {
			// It is expanded again, from its upstream's outputs as they will be.
			t.ti.MapKeys, t.ti.Message = nil, ""
			r.setKeys(t, nil)
		}
		e.markTask(r, t)
	}
	if !r.rec.CanceledAt.IsZero() {
		r.rec.CanceledAt = time.Time{}
		e.markRun(r)
	}
	if r.rec.State.Finished() {
		r.rec.State, r.rec.EndedAt = state.RunRunning, time.Time{}
		e.markRun(r)
		e.runs[runKey{r.rec.DAG, r.rec.ID}] = r
		list := e.done[r.rec.DAG]
		e.done[r.rec.DAG] = slices.DeleteFunc(list, func(d doneRun) bool { return d.id == r.rec.ID })
	}
	return nil
}

// mark sets a task instance of a run, and with Downstream every task after it, to success or
// failed, as Airflow's "mark success" and "mark failed" do. A try in flight is stopped first
// and ends in that state, without a retry.
//
// In a run not finished (nor canceled), the tasks after it that did not run because of its
// state (upstream_failed or skipped) are decided again, so marking a failed task success lets
// them run. A finished run stays finished, with its outcome computed again from its leaves:
// clear the tasks that should run.
func (e *engine) mark(req *state.Request) error {
	to := rules.State(req.State)
	if to != rules.Success && to != rules.Failed {
		return fmt.Errorf("mark task %q of run %q of DAG %q as %q: want success or failed", req.Task, req.RunID, req.DAG, req.State)
	}
	r, err := e.requestRun(req)
	if err != nil {
		return err
	}
	targets, err := r.targets(req.Task, req.Downstream)
	if err != nil {
		return err
	}
	for _, name := range targets {
		t := r.tasks[name]
		if cur := t.ti.Current(); cur != nil && e.jobs[cur.JobID] != nil {
			e.stop(r, t, state.Stop{Reason: "marked " + req.State, State: to})
			continue
		}
		t.ti.State, t.ti.RetryAt = to, time.Time{}
		e.markTask(r, t)
	}
	if r.rec.State.Finished() {
		if out := r.outcome(); out != r.rec.State {
			r.rec.State = out
			e.markRun(r)
		}
		return nil
	}
	if !r.rec.CanceledAt.IsZero() {
		return nil // nothing more runs in it
	}
	for _, name := range r.downstream(req.Task) {
		t := r.tasks[name]
		if len(t.ti.Tries) == 0 && (t.ti.State == rules.UpstreamFailed || t.ti.State == rules.Skipped) {
			t.ti.State = rules.None
			e.markTask(r, t)
		}
	}
	return nil
}

// cancel stops a run that is not finished: its tries in flight are stopped and fail, its
// tasks waiting for a retry fail, those not started are skipped, and the run fails once
// nothing is in flight.
func (e *engine) cancel(req *state.Request) error {
	r, err := e.requestRun(req)
	if err != nil {
		return err
	}
	if r.rec.State.Finished() {
		return fmt.Errorf("run %q of DAG %q already finished (%s); clear a task to run it again", req.RunID, req.DAG, r.rec.State)
	}
	r.rec.CanceledAt = e.now
	e.markRun(r)
	inFlight := false
	for _, ts := range r.order {
		t := r.tasks[ts.Name]
		switch cur := t.ti.Current(); {
		case cur != nil && e.jobs[cur.JobID] != nil:
			e.stop(r, t, state.Stop{Reason: "canceled", State: rules.Failed})
			inFlight = true
		case t.ti.State == rules.UpForRetry:
			t.ti.State, t.ti.RetryAt = rules.Failed, time.Time{}
			e.markTask(r, t)
		case !t.ti.State.Finished():
			t.ti.State = rules.Skipped
			e.markTask(r, t)
		}
	}
	if !inFlight {
		e.finishRun(r)
	}
	return nil
}

// version returns DAG version v of dag, reading it from Consul when the engine has not yet.
func (e *engine) version(dag, v string) (*spec.DAG, error) {
	if d := e.versions[versionKey(dag, v)]; d != nil {
		return d, nil
	}
	ctx, cancel := context.WithTimeout(e.ctx, callTimeout)
	defer cancel()
	dv, err := e.store.DAGVersion(ctx, dag, v)
	if err != nil {
		return nil, err
	}
	e.versions[versionKey(dag, v)] = dv.DAG
	return dv.DAG, nil
}

// startWatches follows the catalog, runtime pauses and requests with blocking queries.
func (e *engine) startWatches() {
	e.spawn(func() {
		index := e.catalog.Index
		known := maps.Clone(e.versions)
		for e.ctx.Err() == nil {
			c, next, err := e.store.WatchCatalog(e.ctx, index)
			if err == nil && next != index {
				var defs map[string]*spec.DAG
				var queues map[string]*spec.Queue
				var read int
				defs, queues, read, err = e.loadCatalog(e.ctx, c, known)
				if err == nil && read >= bigLoad {
					releaseMemory()
				}
				if err == nil {
					maps.Copy(known, defs)
					e.report(func() error { e.setCatalog(c, defs, queues); return nil })
				}
			}
			index = e.advance(index, next, err, "catalog")
		}
	})
	// While no pause was ever set at runtime, Consul answers the blocking query on the empty
	// prefix at every write of the installation, the engine's own included: only changes go to
	// the loop, where each event costs a step.
	paused := maps.Clone(e.paused)
	e.spawn(func() {
		var index uint64
		for e.ctx.Err() == nil {
			p, next, err := e.store.Paused(e.ctx, index)
			if err == nil && !maps.EqualFunc(p, paused, samePause) {
				paused = p
				e.report(func() error { e.paused = p; e.recheckConsumers(); return nil })
			}
			index = e.advance(index, next, err, "paused DAGs")
		}
	})
	e.spawn(func() {
		var index uint64
		for e.ctx.Err() == nil {
			reqs, next, err := e.store.Requests(e.ctx, index)
			if err == nil && len(reqs) > 0 {
				e.report(func() error { return e.onRequests(reqs) })
			}
			index = e.advance(index, next, err, "requests")
		}
	})
}

// samePause reports whether a and b say the same, their times compared as instants.
func samePause(a, b state.Pause) bool { return a.Paused == b.Paused && a.At.Equal(b.At) }

// advance returns the index a blocking query loop goes on from, pausing after an error.
func (e *engine) advance(index, next uint64, err error, what string) uint64 {
	if err != nil {
		if e.ctx.Err() == nil {
			e.m.apiError("consul")
			e.log.Warn("watch "+what+" failed, retrying", "error", err)
			wait.Sleep(e.ctx, retryWait)
		}
		return index
	}
	if next < index {
		return 0 // Consul's index went backwards (a restored snapshot): start over
	}
	return next
}

func quoteList(names []string) string {
	b, _ := json.Marshal(names)
	return string(b)
}
