package engine_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/dagflow/dagflow/engine"
	"github.com/dagflow/dagflow/rules"
	"github.com/dagflow/dagflow/state"
)

// TestKeepRuns: with KeepRuns = 2, Consul keeps the two latest finished runs of a DAG, except
// that the latest scheduled run, from which the schedule goes on, is always kept: after three
// catch-up runs of an hourly schedule and two manual runs, the latest scheduled run and the
// latest manual run remain, and the others are deleted with their logs. A new engine then
// goes on from the kept scheduled run instead of running the deleted intervals again.
func TestKeepRuns(t *testing.T) {
	t.Parallel()
	cfg := engine.Config{KeepRuns: 2}
	s := newStack(t, cfg)
	start := time.Now().UTC().Truncate(time.Hour).Add(-3 * time.Hour)
	s.apply(catchupDAG("kept", "@hourly", start, "all", 16))
	s.waitRun("kept", rules.RunID(rules.RunScheduled, start.Add(2*time.Hour)), 2*time.Minute)
	s.pause("kept")
	time.Sleep(time.Second) // a run created before the pause was seen
	var latestScheduled string
	for _, r := range s.runs("kept") {
		if r.Run.Type == rules.RunScheduled {
			latestScheduled = r.Run.ID
		}
	}
	s.waitRun("kept", latestScheduled, 2*time.Minute)
	var deleted []string // the catch-up runs before the latest
	for d := start; rules.RunID(rules.RunScheduled, d) != latestScheduled; d = d.Add(time.Hour) {
		deleted = append(deleted, rules.RunID(rules.RunScheduled, d))
	}

	m1 := s.trigger("kept", nil)
	s.waitRun("kept", m1, 2*time.Minute)
	m2 := s.trigger("kept", nil)
	s.waitRun("kept", m2, 2*time.Minute)

	want := []string{latestScheduled, m2}
	s.eventually(10*time.Second, "down to the kept runs", func() bool { return slices.Equal(s.runIDs("kept"), want) })
	for _, id := range append(deleted, m1) {
		if _, err := s.store.Logs(context.Background(), "kept", id, "a", 1); !errors.Is(err, state.ErrNotFound) {
			t.Errorf("logs of the deleted run %s: error %v, want not found", id, err)
		}
	}
	if _, err := s.store.Logs(context.Background(), "kept", m2, "a", 1); err != nil {
		t.Errorf("logs of the kept run %s: %v", m2, err)
	}

	s.stop()
	s.start(cfg)
	if err := s.store.SetPaused(context.Background(), "kept", false); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * time.Second) // time for the runs of deleted intervals to be created again, if they were
	s.pause("kept")
	for _, r := range s.runs("kept") {
		if r.Run.Type == rules.RunScheduled && r.Run.ID < latestScheduled {
			t.Errorf("the new engine created %s again, before the kept %s", r.Run.ID, latestScheduled)
		}
	}
}

// TestPurgeAfter: the Nomad job of a finished try is purged PurgeAfter after the try ended,
// not before, while its record and logs stay in Consul.
func TestPurgeAfter(t *testing.T) {
	t.Parallel()
	const after = 3 * time.Second
	s := newStack(t, engine.Config{PurgeAfter: after})
	s.apply(`
dag "purged" {
  start_date = "2026-01-01"
  task "a" {
    command = "/bin/sh"
    args    = ["-c", "echo done"]
  }
}
`)
	id := s.trigger("purged", nil)
	rec := s.waitRun("purged", id, 2*time.Minute)
	try := rec.Tasks["a"].Tries[0]
	if rec.Run.State != state.RunSuccess {
		t.Fatalf("run: %s", describe(rec))
	}
	s.eventually(30*time.Second, "purged", func() bool { return len(s.jobAllocs()) == 0 })
	if gone := time.Since(try.EndedAt); gone < after {
		t.Errorf("the job was gone %s after its try ended, before PurgeAfter %s", gone, after)
	}
	if logs, err := s.store.Logs(context.Background(), "purged", id, "a", 1); err != nil || string(logs.Stdout) != "done\n" {
		t.Errorf("logs after the purge: %+v, %v", logs, err)
	}
}
