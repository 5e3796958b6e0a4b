package engine_test

import (
	"context"
	"testing"
	"time"

	"github.com/dagflow/dagflow/engine"
	"github.com/dagflow/dagflow/state"
)

// TestSummaries: the leader keeps a DAG's summary of its latest runs with their records, and
// a new leader rewrites a summary that is missing.
func TestSummaries(t *testing.T) {
	t.Parallel()
	s := newStack(t, engine.Config{})
	s.apply(`
dag "summed" {
  task "a" {
    command = "/bin/true"
  }
  task "b" {
    command    = "/bin/true"
    depends_on = ["a"]
  }
}
`)
	id := s.trigger("summed", nil)
	s.waitRun("summed", id, time.Minute)
	ctx := context.Background()
	check := func(when string) {
		t.Helper()
		s.eventually(30*time.Second, "the summary holds the finished run "+when, func() bool {
			sums, err := s.store.SummariesOf(ctx, []string{"summed"})
			sum := sums["summed"]
			if err != nil {
				t.Fatal(err)
			}
			return len(sum.Recent) == 1 && sum.Recent[0].Run.ID == id && sum.Recent[0].Run.State == state.RunSuccess && sum.Recent[0].TaskStates["success"] == 2
		})
	}
	check("after it ran")

	s.stop()
	consul, _ := agents(t)
	if _, err := consul.KV().Delete(s.store.Prefix()+"summaries/summed", nil); err != nil {
		t.Fatal(err)
	}
	s.start(engine.Config{})
	check("after a new leader started without it")
}

// TestSummaryTaskCounts: a change of task counts alone, while the run's state stays running,
// reaches the stored summary too (written at most summaryEvery later, not lost when nothing
// else changes).
func TestSummaryTaskCounts(t *testing.T) {
	t.Parallel()
	s := newStack(t, engine.Config{})
	s.apply(`
dag "counted" {
  task "a" {
    command = "/bin/true"
  }
  task "b" {
    command    = "/bin/sleep"
    args       = ["60"]
    depends_on = ["a"]
  }
}
`)
	id := s.trigger("counted", nil)
	ctx := context.Background()
	s.eventually(45*time.Second, "the summary to show a succeeded and b running, the run running", func() bool {
		sums, err := s.store.SummariesOf(ctx, []string{"counted"})
		if err != nil {
			t.Fatal(err)
		}
		r := sums["counted"].Recent
		return len(r) == 1 && r[0].Run.ID == id && r[0].Run.State == state.RunRunning &&
			r[0].TaskStates["success"] == 1 && r[0].TaskStates["running"] == 1
	})
}
