package engine

import (
	"fmt"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/dagflow/dagflow/hcl/spec"
	"github.com/dagflow/dagflow/schedule"
	"github.com/dagflow/dagflow/state"
)

// idleEngine is an engine holding n hourly DAGs applied at now, none of them due: the state a
// leader with many DAGs spends most of its time in.
func idleEngine(tb testing.TB, n int, now time.Time) *engine {
	tb.Helper()
	e := &engine{
		log: hclog.NewNullLogger(), paused: map[string]state.Pause{}, dags: map[string]*dagInfo{},
		runs: map[runKey]*run{}, cursor: map[string]time.Time{}, now: now,
	}
	for i := range n {
		d := &spec.DAG{Name: fmt.Sprintf("dag-%05d", i), Schedule: "@hourly", Timezone: "UTC", Catchup: spec.CatchupNone, MaxActiveRuns: 1,
			Tasks: []*spec.Task{{Name: "a", Command: "/bin/true"}}}
		sched, err := schedule.Parse(d.Schedule, time.UTC, d.StartDate)
		if err != nil {
			tb.Fatal(err)
		}
		e.dags[d.Name] = &dagInfo{entry: state.Entry{Version: "v", CreatedAt: now, UpdatedAt: now}, def: d, sched: sched}
	}
	return e
}

// TestDueFollowsTheClock: a DAG not due is skipped until its interval ends, then gets its
// run; a change of its cursor or pause makes it be looked at again.
func TestDueFollowsTheClock(t *testing.T) {
	now := time.Date(2026, 12, 7, 10, 30, 0, 0, time.UTC)
	e := idleEngine(t, 3, now)
	e.scheduleRuns()
	if len(e.runs) != 0 {
		t.Fatalf("created %d runs before any interval ended", len(e.runs))
	}
	d := e.dags["dag-00001"]
	if want := now.Truncate(time.Hour).Add(time.Hour); !d.due.at.Equal(want) {
		t.Errorf("due at %v, want the end of the hour under way, %v", d.due.at, want)
	}
	if !e.notDue(d) {
		t.Error("notDue = false right after computing the due time")
	}
	e.paused[d.def.Name] = state.Pause{At: now.Add(time.Minute)}
	if e.notDue(d) {
		t.Error("notDue = true after the DAG was unpaused: the remembered time no longer holds")
	}
	delete(e.paused, d.def.Name)

	e.now = now.Truncate(time.Hour).Add(time.Hour)
	e.scheduleRuns()
	if len(e.runs) != 3 {
		t.Fatalf("created %d runs once the interval ended, want one per DAG (3)", len(e.runs))
	}
}

// BenchmarkScheduleRunsIdle is one step's scheduling with 10,000 DAGs none of which is due.
func BenchmarkScheduleRunsIdle(b *testing.B) {
	e := idleEngine(b, 10000, time.Date(2026, 12, 7, 10, 30, 0, 0, time.UTC))
	e.scheduleRuns()
	b.ResetTimer()
	for range b.N {
		e.scheduleRuns()
	}
}
