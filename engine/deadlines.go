package engine

import (
	"fmt"
	"time"

	"github.com/dagflow/dagflow/hcl/spec"
	"github.com/dagflow/dagflow/state"
)

// checkDeadlines marks the runs, and task instances, not finished past their deadline: each
// once, in the transaction that records its on_miss deliveries. Runs and tasks that finish late
// without the leader having seen their deadline pass (it was away) are marked as they finish
// (lateRun, lateTask).
func (e *engine) checkDeadlines() {
	for _, r := range e.runs {
		if d := r.def.Deadline; d != nil && r.rec.DeadlineMissedAt.IsZero() && deadlinePassed(d, r, e.now) {
			e.missRun(r)
		}
		for _, t := range r.tasks {
			if d := t.spec.Deadline; d != nil && !t.ti.State.Finished() && t.ti.DeadlineMissedAt.IsZero() && deadlinePassed(d, r, e.now) {
				e.missTask(r, t)
			}
		}
	}
}

// deadlinePassed reports whether deadline d of run r (or of a task of it) has passed at now.
func deadlinePassed(d *spec.Deadline, r *run, now time.Time) bool {
	at := d.Due(r.rec.LogicalDate, r.rec.StartedAt)
	return !at.IsZero() && !now.Before(at)
}

// lateRun marks run r, which just finished, if it finished past its deadline unmarked.
func (e *engine) lateRun(r *run) {
	if d := r.def.Deadline; d != nil && r.rec.DeadlineMissedAt.IsZero() && deadlinePassed(d, r, r.rec.EndedAt) {
		e.missRun(r)
	}
}

// lateTask marks task t of run r, which just finished at ended, if it did so past its deadline
// unmarked.
func (e *engine) lateTask(r *run, t *task, ended time.Time) {
	if d := t.spec.Deadline; d != nil && t.ti.DeadlineMissedAt.IsZero() && deadlinePassed(d, r, ended) {
		e.missTask(r, t)
	}
}

func (e *engine) missRun(r *run) {
	r.rec.DeadlineMissedAt = e.now
	d := r.def.Deadline
	p := state.Payload{
		Event: spec.EventDeadlineMissed, DAG: r.rec.DAG, RunID: r.rec.ID, LogicalDate: r.rec.LogicalDate,
		State: string(r.rec.State), Message: deadlineMessage(d, r), At: e.now,
	}
	r.deliveryOps = append(r.deliveryOps, e.notify(r, d.OnMiss, p, 0)...)
	e.markRun(r)
	e.m.deadlineMissed()
	e.log.Info("deadline missed", "dag", r.rec.DAG, "run_id", r.rec.ID)
}

func (e *engine) missTask(r *run, t *task) {
	t.ti.DeadlineMissedAt = e.now
	d := t.spec.Deadline
	p := state.Payload{
		Event: spec.EventDeadlineMissed, DAG: r.rec.DAG, RunID: r.rec.ID, LogicalDate: r.rec.LogicalDate,
		Task: t.ti.Task, State: string(t.ti.State), Message: deadlineMessage(d, r), At: e.now,
	}
	if cur := t.ti.Current(); cur != nil {
		p.Try = cur.Try
	}
	t.deliveryOps = append(t.deliveryOps, e.notify(r, d.OnMiss, p, 0)...)
	e.markTask(r, t)
	e.m.deadlineMissed()
	e.log.Info("deadline missed", "dag", r.rec.DAG, "run_id", r.rec.ID, "task", t.ti.Task)
}

// deadlineMessage says, for people, which deadline was missed.
func deadlineMessage(d *spec.Deadline, r *run) string {
	at := d.Due(r.rec.LogicalDate, r.rec.StartedAt)
	from := "logical date"
	if d.FromStart {
		from = "start"
	}
	return fmt.Sprintf("not finished by %s, %s after its %s", at.UTC().Format(time.RFC3339), time.Duration(d.After), from)
}
