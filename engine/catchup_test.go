package engine_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/dagflow/dagflow/engine"
	"github.com/dagflow/dagflow/rules"
	"github.com/dagflow/dagflow/state"
)

// catchupDAG is a DAG of one task that succeeds, with schedule, start date and catch-up
// policy.
func catchupDAG(name, schedule string, start time.Time, catchup string, maxActive int) string {
	return fmt.Sprintf(`
dag %q {
  schedule        = %q
  start_date      = %q
  catchup         = %q
  max_active_runs = %d
  task "a" {
    command = "/bin/true"
  }
}
`, name, schedule, start.Format(time.RFC3339), catchup, maxActive)
}

// pause pauses dag for the rest of the test, so it creates no more scheduled runs.
func (s *stack) pause(dag string) {
	s.t.Helper()
	if err := s.store.SetPaused(context.Background(), dag, true); err != nil {
		s.t.Fatal(err)
	}
}

// runIDs returns the IDs of the stored runs of dag, oldest logical date first.
func (s *stack) runIDs(dag string) []string {
	s.t.Helper()
	var ids []string
	for _, r := range s.runs(dag) {
		ids = append(ids, r.Run.ID)
	}
	return ids
}

// TestCatchupAll: a daily DAG whose start date is three days before today creates a run for
// each of the three days that ended, oldest first, and none for today.
func TestCatchupAll(t *testing.T) {
	t.Parallel()
	s := newStack(t, engine.Config{})
	today := time.Now().UTC().Truncate(24 * time.Hour)
	start := today.AddDate(0, 0, -3)
	s.apply(catchupDAG("all", "@daily", start, "all", 10))
	defer s.pause("all")

	var want []string
	for i := range 3 {
		d := start.AddDate(0, 0, i)
		id := rules.RunID(rules.RunScheduled, d)
		want = append(want, id)
		rec := s.waitRun("all", id, 2*time.Minute)
		if rec.Run.State != state.RunSuccess || rec.Run.Type != rules.RunScheduled ||
			!rec.Run.LogicalDate.Equal(d) || !rec.Run.DataIntervalStart.Equal(d) || !rec.Run.DataIntervalEnd.Equal(d.AddDate(0, 0, 1)) {
			t.Errorf("run for %s: %s", d.Format(time.DateOnly), describe(rec))
		}
	}
	time.Sleep(2 * time.Second) // time for a run that should not exist to be created
	if got := s.runIDs("all"); !slices.Equal(got, want) {
		t.Errorf("runs %q, want %q", got, want)
	}
	runs := s.runs("all")
	for i := 1; i < len(runs); i++ {
		if runs[i].Run.CreatedAt.Before(runs[i-1].Run.CreatedAt) {
			t.Errorf("run %s created at %s, before the older %s at %s", runs[i].Run.ID, runs[i].Run.CreatedAt, runs[i-1].Run.ID, runs[i-1].Run.CreatedAt)
		}
	}
}

// TestCatchupLatest: the same DAG with catch-up "latest" creates only the run for yesterday.
func TestCatchupLatest(t *testing.T) {
	t.Parallel()
	s := newStack(t, engine.Config{})
	today := time.Now().UTC().Truncate(24 * time.Hour)
	s.apply(catchupDAG("latest", "@daily", today.AddDate(0, 0, -3), "latest", 10))
	defer s.pause("latest")

	yesterday := today.AddDate(0, 0, -1)
	id := rules.RunID(rules.RunScheduled, yesterday)
	rec := s.waitRun("latest", id, 2*time.Minute)
	if rec.Run.State != state.RunSuccess || !rec.Run.DataIntervalEnd.Equal(today) {
		t.Errorf("latest run: %s", describe(rec))
	}
	time.Sleep(2 * time.Second)
	if got := s.runIDs("latest"); !slices.Equal(got, []string{id}) {
		t.Errorf("runs %q, want only %q", got, id)
	}
}

// TestCatchupNone: an "@every 2s" DAG with a start date years ago and catch-up "none" runs
// none of the intervals that had ended when it was applied, and runs from then on.
//
// docs/language.md, "Catch-up": with "none" "the first run is for the next interval to end",
// in the worked example the interval under way when the DAG is applied (applied at 13:00 on 23
// November, "the first run, for 23 November, starts on 24 November at 02:00"). So the first
// run's interval holds the moment of the apply, and its logical date is before it.
func TestCatchupNone(t *testing.T) {
	t.Parallel()
	s := newStack(t, engine.Config{})
	s.apply(catchupDAG("none", "@every 2s", time.Date(2020, 1, 1, 0, 0, 1, 0, time.UTC), "none", 16))
	c, err := s.store.Catalog(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	applied := c.DAGs["none"].CreatedAt
	s.eventually(10*time.Second, "two scheduled runs of a 2s schedule", func() bool { return len(s.runs("none")) >= 2 })
	s.pause("none")
	time.Sleep(time.Second) // a run created before the pause was seen

	runs := s.runs("none")
	for _, r := range runs {
		if r.Run.Type != rules.RunScheduled || r.Run.ID != rules.RunID(rules.RunScheduled, r.Run.LogicalDate) {
			t.Errorf("run %s: type %s, want a scheduled run ID of its logical date %s", r.Run.ID, r.Run.Type, r.Run.LogicalDate)
		}
		if !r.Run.DataIntervalEnd.After(applied) {
			t.Errorf("run %s is for the interval %s to %s, which had ended when the DAG was applied at %s",
				r.Run.ID, r.Run.DataIntervalStart, r.Run.DataIntervalEnd, applied)
		}
	}
	first := runs[0].Run
	if first.DataIntervalStart.After(applied) || !first.DataIntervalEnd.After(applied) {
		t.Errorf("the first run is for the interval %s to %s; want the interval under way when the DAG was applied at %s (docs/language.md: the first run is for the next interval to end)",
			first.DataIntervalStart.Format(time.RFC3339Nano), first.DataIntervalEnd.Format(time.RFC3339Nano), applied.Format(time.RFC3339Nano))
	}
}
