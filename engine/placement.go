package engine

import (
	"context"
	"fmt"
	"time"

	"github.com/dagflow/dagflow/nomadexec"
	"github.com/dagflow/dagflow/rules"
	"github.com/dagflow/dagflow/state"
)

// Why a task is not running: a task instance ready to run that dispatch holds back says so in
// its Waiting; a try whose job Nomad cannot place says why in its Pending, from the job's
// blocked evaluation.
//
// Nomad's reasons are looked up, not streamed: the Evaluation topic of the event stream can
// only be filtered by exact job ID, so following it would deliver every evaluation of the
// cluster. Instead, while some try has waited placementDelay without an allocation, the
// leader asks Nomad every placementPoll for the blocked evaluations of its job prefix, in one
// request Nomad filters: its cost grows with the tries Nomad cannot place (500 of them: about
// 515 KB and 0.2 s a look, see nomadexec.BenchmarkUnplaced), not with those that run, and it costs nothing while every
// try is placed within placementDelay, which is what Nomad does for a job it can place.
const (
	// placementDelay is how long a try waits for an allocation before its placement is looked
	// up: a job Nomad can place has one within a few hundred milliseconds.
	placementDelay = time.Second

	// placementPoll is how often the blocked evaluations are listed while some try waits:
	// users see a reason within a few seconds. A look that took long (many tries blocked:
	// about 0.2 s for 500) spaces the next by placementPollRatio times as long, so the looks
	// take at most a tenth of Nomad's time.
	placementPoll      = 2 * time.Second
	placementPollRatio = 10
)

// hold records why candidate c waits for a slot, when that changed. This writes the record of
// an instance that would otherwise wait in memory only (see Scheduled), once per reason.
func (e *engine) hold(c candidate, why string) {
	if c.task.ti.Waiting != why {
		c.task.ti.Waiting = why
		e.markTask(c.run, c.task)
	}
}

// placed records that Nomad gave ref's job an allocation: its reason for not placing it is
// dropped, and written, if it had one.
func (e *engine) placed(ref *jobRef) {
	ref.placed, ref.blocked = true, ""
	if cur := ref.task.ti.Current(); cur != nil && cur.Try == ref.try && cur.Pending != "" {
		cur.Pending = ""
		e.markTask(ref.run, ref.task)
	}
}

// dropStaleReasons clears, before task instance ti is written, the reasons that no longer hold:
// Waiting once it left Scheduled, Pending once its try left Queued.
func dropStaleReasons(ti *state.TaskInstance) {
	if ti.State != rules.Scheduled {
		ti.Waiting = ""
	}
	if cur := ti.Current(); cur != nil && cur.State != rules.Queued {
		cur.Pending = ""
	}
}

// unplaced returns the try ref runs when it is queued without an allocation.
func unplaced(ref *jobRef) *state.Try {
	cur := ref.task.ti.Current()
	if ref.placed || ref.task.finishing || cur == nil || cur.Try != ref.try || cur.State != rules.Queued {
		return nil
	}
	return cur
}

// pollPlacement lists, in a helper, the blocked evaluations of the leader's jobs when some try
// has waited placementDelay without an allocation and no look is under way, at most every
// placementPoll.
func (e *engine) pollPlacement() {
	if e.polling || e.now.Before(e.nextPoll) {
		return
	}
	due := false
	for _, ref := range e.jobs {
		if cur := unplaced(ref); cur != nil && e.now.Sub(cur.QueuedAt) >= placementDelay {
			due = true
			break
		}
	}
	if !due {
		return
	}
	e.polling = true
	e.spawn(func() {
		if !e.acquire(e.calls) {
			return
		}
		asked := time.Now()
		ctx, cancel := context.WithTimeout(e.ctx, callTimeout)
		found, err := e.exec.Unplaced(ctx)
		cancel()
		release(e.calls)
		took := time.Since(asked)
		e.report(func() error {
			e.polling, e.nextPoll = false, asked.Add(max(placementPoll, placementPollRatio*took))
			if err != nil {
				e.m.apiError("nomad")
				e.log.Warn("list blocked evaluations", "error", err)
				return nil
			}
			e.onUnplaced(found)
			return nil
		})
	})
}

// onUnplaced records Nomad's reasons for the tries it has not placed. A try whose job has no
// blocked evaluation keeps the reason it had: Nomad is evaluating it again, and either places
// it, which drops the reason, or blocks it again.
func (e *engine) onUnplaced(found map[string]nomadexec.Placement) {
	for jobID, ref := range e.jobs {
		cur := unplaced(ref)
		if cur == nil {
			continue
		}
		p, ok := found[jobID]
		if !ok {
			ref.blocked = ""
			continue
		}
		ref.blocked = p.Class
		if cur.Pending != p.Reason {
			cur.Pending = p.Reason
			e.markTask(ref.run, ref.task)
			e.log.Info("try not placed", "dag", ref.run.rec.DAG, "run_id", ref.run.rec.ID, "task", ref.task.spec.Name, "try", cur.Try, "reason", p.Reason)
		}
	}
}

// checkQueuedTimeout stops the try of task t of run r when Nomad has not placed it within its
// queued_timeout, with the reason Nomad gave; the try then fails, and is retried as the task
// allows. Only a try this leader saw blocked is stopped: one merely not yet registered, or
// whose allocation the watch has not reported yet after a failover, is not Nomad's refusal.
func (e *engine) checkQueuedTimeout(r *run, t *task) {
	cur := t.ti.Current()
	limit := t.spec.QueuedLimit()
	if cur == nil || cur.Stop != nil || limit <= 0 || e.now.Sub(cur.QueuedAt) < limit {
		return
	}
	if ref := e.jobs[cur.JobID]; ref == nil || ref.placed || ref.blocked == "" {
		return
	}
	e.stop(r, t, state.Stop{Reason: queuedTimeoutMessage(limit, cur.Pending), Retry: true})
}

// checkBlockedSecret stops the try of task t of run r once its template has waited
// blockedSecretGrace for a Nomad Variable it cannot read.
func (e *engine) checkBlockedSecret(r *run, t *task) {
	cur := t.ti.Current()
	if cur == nil || cur.Stop != nil {
		return
	}
	if ref := e.jobs[cur.JobID]; ref != nil && ref.missing != "" && e.now.Sub(ref.missingSince) >= blockedSecretGrace {
		e.stop(r, t, state.Stop{Reason: ref.missing, Retry: true})
	}
}

// queuedTimeoutMessage is the message of a try stopped at its queued_timeout.
func queuedTimeoutMessage(limit time.Duration, reason string) string {
	return fmt.Sprintf("not placed by Nomad within queued_timeout %s: %s", limit, reason)
}

// unplacedByClass counts the tries Nomad could not place, by the class of its reason, at the
// leader's last look.
func (e *engine) unplacedByClass() map[nomadexec.PlacementClass]int {
	out := map[nomadexec.PlacementClass]int{}
	for _, ref := range e.jobs {
		if ref.blocked != "" && unplaced(ref) != nil {
			out[ref.blocked]++
		}
	}
	return out
}
