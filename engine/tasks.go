package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/dagflow/dagflow/consullock"
	"github.com/dagflow/dagflow/hcl/spec"
	"github.com/dagflow/dagflow/internal/wait"
	"github.com/dagflow/dagflow/nomadexec"
	"github.com/dagflow/dagflow/rules"
	"github.com/dagflow/dagflow/state"
)

// evaluate applies the trigger rules, retry delays and timeouts of run r's tasks, upstream
// first, and finishes the run when every task is finished.
func (e *engine) evaluate(r *run) {
	finished := 0
	for _, t := range r.order {
		ti := r.tasks[t.Name]
		if done, handled := e.evaluateMapping(r, ti); handled {
			if done {
				finished++
			}
			continue
		}
		switch ti.ti.State {
		case rules.None:
			switch rules.Decide(t.TriggerRule, r.upStates(t)) {
			case rules.Run:
				ti.ti.State, ti.readyAt = rules.Scheduled, e.now
			case rules.Skip:
				ti.ti.State = rules.Skipped
				e.markTask(r, ti)
			case rules.UpstreamFail:
				ti.ti.State = rules.UpstreamFailed
				e.markTask(r, ti)
			}
		case rules.UpForRetry:
			if !e.now.Before(ti.ti.RetryAt) {
				ti.ti.State, ti.readyAt = rules.Scheduled, e.now
			}
		case rules.Scheduled:
			if t.Sensor != nil && !t.Sensor.Command {
				e.sense(r, ti)
			}
		case rules.Queued:
			e.checkQueuedTimeout(r, ti)
			e.checkBlockedSecret(r, ti)
		case rules.Running:
			cur := ti.ti.Current()
			if limit := time.Duration(t.Timeout); limit > 0 && cur.Stop == nil && !cur.StartedAt.IsZero() && e.now.Sub(cur.StartedAt) >= limit {
				e.stop(r, ti, state.Stop{Reason: timeoutMessage(t), Retry: true})
			}
		}
		if ti.ti.State.Finished() {
			finished++
		}
	}
	if finished == len(r.order) {
		e.finishRun(r)
	}
}

func timeoutMessage(t *spec.Task) string {
	return fmt.Sprintf("timed out after %s", time.Duration(t.Timeout))
}

// candidate is a scheduled task instance waiting for a slot.
type candidate struct {
	run  *run
	task *task
}

// dispatch starts a try of every scheduled task instance that has a slot: highest priority
// first, then oldest run, then by name; within its queue's max_running and its DAG's
// max_active_tasks, counted over every run.
func (e *engine) dispatch() {
	var cands []candidate
	for _, r := range e.runs {
		if r.rec.State != state.RunRunning {
			continue
		}
		for _, t := range r.order {
			if ti := r.tasks[t.Name]; ti.ti.State == rules.Scheduled && (t.Sensor == nil || t.Sensor.Command) {
				cands = append(cands, candidate{r, ti})
			}
		}
	}
	sort.Slice(cands, func(i, j int) bool {
		a, b := cands[i], cands[j]
		if a.task.spec.Priority != b.task.spec.Priority {
			return a.task.spec.Priority > b.task.spec.Priority
		}
		if a.run != b.run {
			return runBefore(a.run, b.run)
		}
		return a.task.spec.Name < b.task.spec.Name
	})
	pending := map[string]int{}
	for _, c := range cands {
		queue := c.task.spec.Queue
		if q := e.queues[queue]; q != nil && q.MaxRunning > 0 && e.perQueue[queue] >= q.MaxRunning {
			pending[queue]++
			e.hold(c, fmt.Sprintf("queue %q at max_running (%d)", queue, q.MaxRunning))
			continue
		}
		if limit := c.run.def.MaxActiveTasks; limit > 0 && e.perDAG[c.run.rec.DAG] >= limit {
			pending[queue]++
			e.hold(c, fmt.Sprintf("DAG %q at max_active_tasks (%d)", c.run.rec.DAG, limit))
			continue
		}
		e.startTry(c.run, c.task)
	}
	e.m.setQueues(pending, e.perQueue)
}

// track records that job jobID runs ref's try, queued or running, and counts it in flight.
// The counts are kept as tries start and end rather than counted at each step, which would
// cost a pass over every try in flight per event.
func (e *engine) track(jobID string, ref *jobRef) {
	e.jobs[jobID] = ref
	e.perQueue[ref.task.spec.Queue]++
	e.perDAG[ref.run.rec.DAG]++
}

// untrack forgets job jobID, whose try ended.
func (e *engine) untrack(jobID string) {
	ref := e.jobs[jobID]
	if ref == nil {
		return
	}
	delete(e.jobs, jobID)
	uncount(e.perQueue, ref.task.spec.Queue)
	uncount(e.perDAG, ref.run.rec.DAG)
}

// uncount takes one from counts[k], dropping k at 0.
func uncount(counts map[string]int, k string) {
	if counts[k]--; counts[k] <= 0 {
		delete(counts, k)
	}
}

// startTry records a new try of task t of run r as queued, and submits its job once that is
// written.
func (e *engine) startTry(r *run, t *task) {
	n := len(t.ti.Tries) + 1
	if t.readyAt.IsZero() {
		t.readyAt = e.now // held back (recorded as Scheduled, see hold) before a failover
	}
	jobID := e.exec.JobID(nomadexec.Attempt{DAG: r.rec.DAG, RunID: r.rec.ID, Task: t.spec.Name, Try: n})
	t.ti.Tries = append(t.ti.Tries, state.Try{Try: n, JobID: jobID, State: rules.Queued, ScheduledAt: t.readyAt, QueuedAt: e.now})
	t.ti.State, t.ti.RetryAt, t.ti.Waiting = rules.Queued, time.Time{}, ""
	e.markTask(r, t)
	ref := &jobRef{run: r, task: t, try: n}
	e.track(jobID, ref)
	e.afterTask(t, func() { e.submit(ref) })
}

// attempt builds what the job of ref's try needs: the task rendered for it, its queue, and the
// DAGFLOW_* environment.
func (e *engine) attempt(ref *jobRef) (nomadexec.Attempt, error) {
	r, t := ref.run, ref.task
	rt := spec.Runtime{
		RunID: r.rec.ID, RunType: string(r.rec.Type), LogicalDate: r.rec.LogicalDate,
		DataIntervalStart: r.rec.DataIntervalStart, DataIntervalEnd: r.rec.DataIntervalEnd,
		Params: r.rec.Params, Try: ref.try, Outputs: r.runOutputs(),
	}
	if len(r.rec.AssetEvents) > 0 {
		events, err := json.Marshal(r.rec.AssetEvents)
		if err != nil {
			return nomadexec.Attempt{}, err
		}
		rt.AssetEvents = events
	}
	if t.mapped != nil {
		each, err := r.each(t)
		if err != nil {
			return nomadexec.Attempt{}, err
		}
		rt.Each = each
	}
	rendered, err := r.def.Render(t.spec, rt)
	if err != nil {
		return nomadexec.Attempt{}, err
	}
	return nomadexec.Attempt{
		DAG: r.rec.DAG, RunID: r.rec.ID, Task: t.spec.Name, Try: ref.try,
		Queued: t.ti.Tries[ref.try-1].QueuedAt,
		Spec:   rendered, Queue: e.queues[t.spec.Queue],
		Env: map[string]string{
			"DAGFLOW_DAG":          r.rec.DAG,
			"DAGFLOW_RUN_ID":       r.rec.ID,
			"DAGFLOW_TASK":         t.spec.Name,
			"DAGFLOW_TRY":          strconv.Itoa(ref.try),
			"DAGFLOW_LOGICAL_DATE": r.rec.LogicalDate.UTC().Format(time.RFC3339),
			OutputEnv:              outputEnvValue,
		},
	}, nil
}

// submit registers the job of ref's try in a helper, and reports back: a try whose job cannot
// be built fails; a Nomad error is retried after retryWait.
func (e *engine) submit(ref *jobRef) {
	a, err := e.attempt(ref)
	if err != nil {
		e.failTry(ref, fmt.Sprintf("cannot build the job: %s", err))
		return
	}
	jobID := e.exec.JobID(a)
	e.spawn(func() {
		if !e.acquire(e.calls) {
			return
		}
		ctx, cancel := context.WithTimeout(e.ctx, callTimeout)
		registered, api, err := e.register(ctx, a)
		cancel()
		release(e.calls)
		at := time.Now().UTC()
		if errors.Is(err, consullock.ErrLost) {
			return // the loop stops on the loss; the next leader submits the try
		}
		e.report(func() error {
			if e.jobs[jobID] != ref {
				if registered {
					// The try was stopped and ended before its job existed (a stop finds no
					// job to stop): stop the job now, so that nothing runs untracked.
					e.log.Info("stopping the job of a try that ended while it was registered", "job_id", jobID)
					e.stopJob(jobID, nil)
				}
				return nil
			}
			switch {
			case errors.Is(err, nomadexec.ErrInvalidAttempt):
				e.failTry(ref, fmt.Sprintf("cannot build the job: %s", err))
			case errors.Is(err, nomadexec.ErrMissingVariable):
				// Not registered: Nomad would hold the allocation pending until the variable
				// appears. The try fails now and is retried as any failed try is.
				e.failTry(ref, err.Error())
			case err != nil:
				e.m.apiError(api)
				e.log.Warn("submit job failed, retrying", "job_id", jobID, "error", err)
				e.retryLater(func() {
					if e.jobs[jobID] == ref && ref.task.ti.Current().Stop == nil {
						e.submit(ref)
					}
				})
			case registered:
				e.m.registered(ref, at)
				e.log.Debug("submitted", "job_id", jobID)
			}
			return nil
		})
	})
}

// register registers attempt a's job, once Consul confirmed that the lock is still held, and
// says which API an error came from.
//
// A registration is not fenced: it is create-only, which makes a deposed leader's late
// registration harmless as long as the job exists, but not once its successor has run the try
// and purged its job (retention.purge_after), when it would create the job anew and run the try
// twice. A leader frozen (SIGSTOP, a paused VM, a long stall) or cut off from Consul while
// registrations wait for a slot or for an answer would send them before it notices its loss.
// So each registration goes out only while a confirmation from Consul that the lock is still
// held (an empty fenced transaction, shared by the registrations of the last fenceReuse: see
// lockCheck) is younger than maxFenceAge (the request's deadline, which Submit checks as the
// request is written): no successor can hold the lock within the sessions' lock-delay of it,
// nor have purged the job within PurgeAfter of it. What is left, a freeze between that last
// check and the write itself, is caught by the tombstone of a purged job (nomadexec/guard.go);
// a registration that lands before the purge is refused as a duplicate (create-only).
func (e *engine) register(ctx context.Context, a nomadexec.Attempt) (registered bool, api string, err error) {
	limit := e.maxFenceAge()
	asked, err := e.lockCheck.confirm(ctx, e.fence, fenceReuse(limit))
	if err != nil {
		return false, "consul", err
	}
	if age := time.Since(asked); age > limit {
		return false, "consul", fmt.Errorf("the lock was confirmed %s ago, more than %s: not registering on that", age.Round(time.Millisecond), limit)
	}
	ctx, cancel := context.WithDeadline(ctx, asked.Add(limit))
	defer cancel()
	registered, err = e.exec.Submit(ctx, a)
	return registered, "nomad", err
}

// maxFenceAge is how old a confirmation of the lock may be when a registration goes out: the
// sessions' lock-delay when known and at least minFenceLockDelay, else (and at most) half of
// PurgeAfter, at most maxFenceWait.
func (e *engine) maxFenceAge() time.Duration {
	limit := min(e.cfg.PurgeAfter/2, maxFenceWait)
	// A lock-delay shorter than a Consul round trip and a Nomad call cannot bound them: every
	// registration would be refused. Such an installation (a test cluster, lock_delay = 1ms)
	// keeps the wider bound; create-only registrations and the tombstones of purged jobs keep
	// a late one harmless all the same.
	if e.cfg.LockDelay >= minFenceLockDelay {
		limit = min(limit, e.cfg.LockDelay)
	}
	return limit
}

// minFenceLockDelay is the shortest lock-delay maxFenceAge bounds registrations by.
const minFenceLockDelay = 250 * time.Millisecond

// fenceReuse is how long one confirmation of the lock serves the registrations that follow
// it: half of maxFenceAge, at most a second, so a shared confirmation leaves a registration at
// least half of maxFenceAge for its Nomad call, costs at most a few Consul transactions a
// second however many registrations go out, and outlasts the transaction itself (a shorter
// one would have the registrations waiting for it ask one each, one after the other).
func fenceReuse(limit time.Duration) time.Duration {
	return min(limit/2, time.Second)
}

// failTry records that ref's try failed without a job outcome (its job could not be built, or
// it vanished from Nomad).
func (e *engine) failTry(ref *jobRef, msg string) {
	e.finishTry(ref, nil, nil, nil, msg)
}

// onAlloc follows an allocation of one of the tries in flight.
func (e *engine) onAlloc(u nomadexec.AllocUpdate) {
	ref := e.jobs[u.JobID]
	if ref == nil || ref.task.finishing {
		return
	}
	cur := ref.task.ti.Current()
	if cur == nil || cur.Try != ref.try {
		return
	}
	if u.Terminal() {
		ref.task.finishing = true
		st := u.AllocStatus
		e.spawn(func() {
			var out *tryOutputs
			if st.Succeeded() {
				out = e.fetchOutputs(st.AllocID)
			}
			var logs *state.Logs
			if !nodeLost(&st) {
				// A lost node cannot serve its allocation's logs: asking would only wait
				// out the retries of readLogs.
				logs = e.fetchLogs(st.AllocID)
			}
			e.report(func() error { e.finishTry(ref, &st, logs, out, ""); return nil })
		})
		return
	}
	if cur.State == rules.Queued {
		e.placed(ref)
	}
	// Nomad would keep the allocation pending until the variable can be read: once it has
	// waited blockedSecretGrace, checkBlockedSecret fails the try, as a timeout does.
	if msg := nomadexec.BlockedSecret(ref.task.spec, u.AllocStatus); msg == "" {
		ref.missing, ref.missingSince = "", time.Time{}
	} else if ref.missing == "" {
		ref.missing, ref.missingSince = msg, time.Now()
	}
	if u.ClientStatus == nomadapi.AllocClientStatusRunning && cur.State == rules.Queued {
		cur.State, ref.task.ti.State = rules.Running, rules.Running
		cur.StartedAt = u.StartedAt.UTC()
		if cur.StartedAt.IsZero() {
			cur.StartedAt = time.Now().UTC()
		}
		cur.AllocID, cur.Node = u.AllocID, u.NodeName
		e.markTask(ref.run, ref.task)
	}
}

// fetchLogs reads the tail of an allocation's output; nil when Nomad no longer has it, or did
// not give it in logAttempts reads.
func (e *engine) fetchLogs(allocID string) *state.Logs {
	// One byte more than kept tells whether the output was longer.
	stdout, stderr, err := e.readLogs(allocID, e.cfg.LogTail+1)
	if err != nil {
		if !errors.Is(err, nomadexec.ErrNotFound) {
			e.m.apiError("nomad")
		}
		e.log.Warn("read logs of finished try", "alloc_id", allocID, "error", err)
		return nil
	}
	l := &state.Logs{Stdout: stdout, Stderr: stderr}
	if len(l.Stdout) > e.cfg.LogTail {
		l.Stdout, l.Truncated = l.Stdout[len(l.Stdout)-e.cfg.LogTail:], true
	}
	if len(l.Stderr) > e.cfg.LogTail {
		l.Stderr, l.Truncated = l.Stderr[len(l.Stderr)-e.cfg.LogTail:], true
	}
	return l
}

// readLogs reads the last max bytes of an allocation's stdout and stderr, again after a Nomad
// error, waiting logBackoff, then twice as long each time, up to logAttempts reads.
func (e *engine) readLogs(allocID string, max int) (stdout, stderr []byte, err error) {
	delay := logBackoff
	for n := 1; ; n++ {
		if !e.acquire(e.logCalls) {
			return nil, nil, e.ctx.Err()
		}
		ctx, cancel := context.WithTimeout(e.ctx, callTimeout)
		stdout, stderr, err = e.exec.Logs(ctx, allocID, max)
		cancel()
		release(e.logCalls)
		if err == nil || errors.Is(err, nomadexec.ErrNotFound) || n == logAttempts {
			return stdout, stderr, err
		}
		e.m.apiError("nomad")
		e.log.Debug("read logs failed, retrying", "alloc_id", allocID, "wait", delay, "error", err)
		wait.Sleep(e.ctx, delay)
		delay *= 2
	}
}

// finishTry records the outcome of ref's try: from its allocation st, with the outputs out it
// published, or failed with msg when there is none. A failed try is retried after its delay while the task has retries left,
// counted, as the delay is, from its last clear. A try whose job the scheduler stopped ends as
// its Stop says.
func (e *engine) finishTry(ref *jobRef, st *nomadexec.AllocStatus, logs *state.Logs, out *tryOutputs, msg string) {
	r, t := ref.run, ref.task
	cur := t.ti.Current()
	if cur == nil || cur.Try != ref.try || cur.State.Finished() || e.jobs[cur.JobID] != ref {
		return
	}
	now := time.Now().UTC()
	success := false
	if st != nil {
		success = st.Succeeded() && cur.Stop == nil
		cur.AllocID, cur.Node = st.AllocID, st.NodeName
		if cur.StartedAt.IsZero() && !st.StartedAt.IsZero() {
			cur.StartedAt = st.StartedAt.UTC()
		}
		if !st.FinishedAt.IsZero() {
			now = st.FinishedAt.UTC()
		}
		if st.Exited {
			code := st.ExitCode
			cur.ExitCode = &code
		}
		msg = nomadexec.SecretMessage(t.spec, outcomeMessage(st))
		if success {
			if problem := keepOutputs(t, cur, out); problem != "" {
				success, msg = false, problem
			}
		}
	}
	if cur.Stop != nil {
		msg = cur.Stop.Reason
	}
	cur.EndedAt, cur.Message = now, msg
	t.finishing = false
	e.untrack(cur.JobID)
	e.purges = append(e.purges, purge{jobID: cur.JobID, at: time.Now().Add(e.cfg.PurgeAfter)})
	if st != nil && nodeLost(st) {
		// Nomad replaces a lost allocation once the job's stop_on_client_after has passed
		// (see nomadexec.Job), which would run this try again behind dagflow's back, while
		// its retry runs as a new job. A stopped job gets no replacement.
		e.stopJob(cur.JobID, nil)
	}
	if logs != nil {
		op, err := e.store.LogsOp(&t.ti, cur, logs)
		switch {
		case err != nil:
			e.log.Warn("logs not kept", "job_id", cur.JobID, "error", err)
		case op != nil:
			e.extra = append(e.extra, op)
		}
	}
	switch {
	case cur.Stop != nil && !cur.Stop.Retry:
		cur.State, t.ti.State = rules.Failed, cur.Stop.State
		if cur.Stop.State == rules.Success {
			cur.State = rules.Success
		}
	case success:
		cur.State, t.ti.State = rules.Success, rules.Success
		e.recordOutlets(r, t, cur)
	case notYet(t, cur, st):
		e.pokeAgain(t, cur, now)
	case rules.CanRetry(t.spec, t.ti.AttemptsSinceClear()):
		cur.State, t.ti.State = rules.Failed, rules.UpForRetry
		t.ti.RetryAt = now.Add(rules.RetryDelay(t.spec, t.ti.AttemptsSinceClear()+1))
	default:
		cur.State, t.ti.State = rules.Failed, rules.Failed
	}
	e.tryCallbacks(r, t, cur)
	e.markTask(r, t)
	e.m.tryFinished(cur.State)
	e.log.Info("try finished", "dag", r.rec.DAG, "run_id", r.rec.ID, "task", t.spec.Name, "try", cur.Try, "state", cur.State, "message", cur.Message)
}

// outcomeMessage says, for people, how a try with allocation st ended.
func outcomeMessage(st *nomadexec.AllocStatus) string {
	switch {
	case nodeLost(st):
		return fmt.Sprintf("node lost: Nomad node %s (%s) stopped heartbeating while the try ran, and Nomad marked its allocation lost", st.NodeName, st.NodeID)
	case st.DesiredStatus != nomadapi.AllocDesiredStatusRun:
		return "stopped outside dagflow (" + st.DesiredStatus + ")"
	case st.Exited:
		return fmt.Sprintf("exit code %d", st.ExitCode)
	}
	return st.Message
}

// nodeLost reports whether allocation st ended because its node went down. Nomad's
// reconciler marks the allocations of a node that missed its heartbeats ClientStatus "lost"
// with DesiredStatus "stop" ("alloc is lost since its node is down"), so lost is checked
// before the desired status: that stop is Nomad's, not an operator's.
func nodeLost(st *nomadexec.AllocStatus) bool {
	return st.ClientStatus == nomadapi.AllocClientStatusLost
}

// stop stops the job of task t's try in flight, as order says. The order is recorded on the
// try first, and the job stopped once that is written; the outcome follows from the
// allocation's end, or, for a job stopped before it had an allocation, from the stop itself.
// A stop already under way takes the new order: the latest request decides.
func (e *engine) stop(r *run, t *task, order state.Stop) {
	cur := t.ti.Current()
	ref := e.jobs[cur.JobID]
	if ref == nil {
		return
	}
	underWay := cur.Stop != nil
	cur.Stop = &order
	e.markTask(r, t)
	e.log.Info("stopping try", "dag", r.rec.DAG, "run_id", r.rec.ID, "task", t.spec.Name, "try", cur.Try, "reason", order.Reason)
	if !underWay {
		jobID := cur.JobID
		e.afterTask(t, func() { e.stopJob(jobID, ref) })
	}
}

// stopJob stops job jobID in a helper, again after a Nomad error while it runs ref's try.
// When the job had no allocation, nothing will report its end, so the try ends with the stop.
// A nil ref stops a job no try follows (a lost try's, one registered after its try ended),
// again after a Nomad error until it is stopped, and purges it after PurgeAfter: left running,
// Nomad would run it untracked.
func (e *engine) stopJob(jobID string, ref *jobRef) {
	e.spawn(func() {
		if !e.acquire(e.calls) {
			return
		}
		ctx, cancel := context.WithTimeout(e.ctx, callTimeout)
		err := e.exec.Stop(ctx, jobID)
		var st *nomadexec.JobStatus
		if err == nil && ref != nil {
			st, err = e.exec.Status(ctx, jobID)
		}
		cancel()
		release(e.calls)
		e.report(func() error {
			if err != nil {
				e.m.apiError("nomad")
			}
			switch {
			case ref == nil:
				if err != nil {
					e.log.Warn("stop job failed, retrying; it runs no try", "job_id", jobID, "error", err)
					e.retryLater(func() { e.stopJob(jobID, nil) })
					return nil
				}
				e.purges = append(e.purges, purge{jobID: jobID, at: time.Now().Add(e.cfg.PurgeAfter)})
			case e.jobs[jobID] != ref:
				// The try ended meanwhile.
			case err != nil:
				e.log.Warn("stop job failed, retrying", "job_id", jobID, "error", err)
				e.retryLater(func() {
					if e.jobs[jobID] == ref {
						e.stopJob(jobID, ref)
					}
				})
			case len(st.Allocs) == 0:
				e.finishTry(ref, nil, nil, nil, "")
			}
			return nil
		})
	})
}

// sweepGuards deletes, at most every guardSweepEvery, the tombstones of purged jobs older
// than GuardKeep (see nomadexec/guard.go). A new leader sweeps at once.
func (e *engine) sweepGuards() {
	if e.now.Before(e.nextSweep) {
		return
	}
	e.nextSweep = e.now.Add(guardSweepEvery)
	cutoff := e.now.Add(-GuardKeep)
	e.spawn(func() {
		ctx, cancel := context.WithTimeout(e.ctx, guardSweepEvery/2)
		defer cancel()
		n, err := e.exec.SweepGuards(ctx, cutoff)
		if err != nil && e.ctx.Err() == nil {
			e.m.apiError("nomad")
			e.log.Warn("deleting old tombstones of purged jobs failed; trying again at the next sweep", "deleted", n, "error", err)
			return
		}
		e.log.Debug("deleted old tombstones of purged jobs", "deleted", n)
	})
}

// purgeDue purges the jobs of tries that ended more than PurgeAfter ago.
func (e *engine) purgeDue() {
	n := 0
	for n < len(e.purges) && !e.now.Before(e.purges[n].at) {
		n++
	}
	if n == 0 {
		return
	}
	due := append([]purge(nil), e.purges[:n]...)
	e.purges = e.purges[n:]
	e.spawn(func() {
		for _, p := range due {
			ctx, cancel := context.WithTimeout(e.ctx, callTimeout)
			err := e.exec.Purge(ctx, p.jobID)
			cancel()
			if err != nil && e.ctx.Err() == nil {
				e.m.apiError("nomad")
				e.log.Warn("purge job failed; the next leader's reconciliation tries again", "job_id", p.jobID, "error", err)
			}
		}
	})
}
