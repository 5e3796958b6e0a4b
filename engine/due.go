package engine

import (
	"time"

	"github.com/dagflow/dagflow/state"
)

// due remembers, per DAG, when its next scheduled run can first be due, so that a step looks
// at the schedule of only the DAGs whose time came: with 10,000 DAGs, computing every DAG's
// backlog each second was most of an idle leader's work.
//
// What nextInterval answers depends on the DAG's definition (a new catalog entry gets a new
// dagInfo, so a fresh due), the end of its latest scheduled run's interval (e.cursor) and when
// it was last unpaused (e.paused); due holds the latter two as they were when it was
// computed, and counts only while they are unchanged.
type due struct {
	cursor   time.Time // e.cursor of the DAG when computed
	pausedAt time.Time // e.paused's At of the DAG when computed
	at       time.Time // no run is due before; zero when not computed
	never    bool      // the schedule has no interval left to run
}

// dueKey is what a due must have been computed for to still hold for DAG name.
func (e *engine) dueKey(name string) (cursor, pausedAt time.Time) {
	var p state.Pause
	if v, ok := e.paused[name]; ok {
		p = v
	}
	return e.cursor[name], p.At
}

// notDue reports whether DAG d has no scheduled run due now, by its remembered due alone.
func (e *engine) notDue(d *dagInfo) bool {
	cursor, pausedAt := e.dueKey(d.def.Name)
	if d.due.at.IsZero() && !d.due.never || !d.due.cursor.Equal(cursor) || !d.due.pausedAt.Equal(pausedAt) {
		return false
	}
	return d.due.never || e.now.Before(d.due.at)
}

// waitDue remembers when DAG d, which has no run due now, next can have one: when the first
// interval of its backlog, starting at from, ends.
func (e *engine) waitDue(d *dagInfo, from time.Time) {
	cursor, pausedAt := e.dueKey(d.def.Name)
	d.due = due{cursor: cursor, pausedAt: pausedAt, never: true}
	for iv := range d.sched.Intervals(from) {
		if d.def.EndDate.IsZero() || !iv.Start.After(d.def.EndDate) {
			d.due.at, d.due.never = iv.End, false
		}
		break
	}
}
