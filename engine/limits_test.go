package engine_test

import (
	"sort"
	"testing"
	"time"

	"github.com/dagflow/dagflow/engine"
	"github.com/dagflow/dagflow/state"
)

// TestMaxActiveRuns: of two manual runs of a DAG with max_active_runs = 1, the second waits,
// queued, until the first ended.
func TestMaxActiveRuns(t *testing.T) {
	t.Parallel()
	s := newStack(t, engine.Config{})
	s.apply(`
dag "single" {
  start_date      = "2026-01-01"
  max_active_runs = 1
  task "a" {
    command = "/bin/sleep"
    args    = ["2"]
  }
}
`)
	id1 := s.trigger("single", nil)
	id2 := s.trigger("single", nil)
	r1 := s.waitRun("single", id1, 2*time.Minute)
	r2 := s.waitRun("single", id2, 2*time.Minute)
	if r1.Run.State != state.RunSuccess || r2.Run.State != state.RunSuccess {
		t.Fatalf("runs:\n%s\n%s", describe(r1), describe(r2))
	}
	if !r2.Run.CreatedAt.Before(r1.Run.EndedAt) {
		t.Fatalf("the second run was created at %s, after the first ended at %s: nothing was tested", r2.Run.CreatedAt, r1.Run.EndedAt)
	}
	if r2.Run.StartedAt.Before(r1.Run.EndedAt) {
		t.Errorf("the second run started at %s, before the first ended at %s", r2.Run.StartedAt, r1.Run.EndedAt)
	}
	first, second := r1.Tasks["a"].Tries[0], r2.Tasks["a"].Tries[0]
	if second.QueuedAt.Before(r1.Run.EndedAt) || second.StartedAt.Before(first.EndedAt) {
		t.Errorf("the second run's try was queued at %s and started at %s; the first run ended at %s, its try at %s",
			second.QueuedAt, second.StartedAt, r1.Run.EndedAt, first.EndedAt)
	}
}

// TestQueueMaxRunning: tasks of a queue with max_running = 1, from a fan-out of one DAG and
// from another DAG at the same time, run one at a time; the other tasks are not held back.
func TestQueueMaxRunning(t *testing.T) {
	t.Parallel()
	s := newStack(t, engine.Config{})
	s.apply(`
queue "serial" {
  max_running = 1
}
dag "fan" {
  start_date = "2026-01-01"
  defaults {
    queue   = "serial"
    command = "/bin/sleep"
    args    = ["1"]
  }
  task "split" {
    queue   = "default"
    command = "/bin/true"
    args    = []
  }
  task "work" {
    for_each   = ["a", "b", "c", "d"]
    depends_on = ["split"]
  }
  task "free" {
    queue      = "default"
    depends_on = ["split"]
  }
}
dag "other" {
  start_date = "2026-01-01"
  task "x" {
    queue   = "serial"
    command = "/bin/sleep"
    args    = ["1"]
  }
  task "y" {
    queue   = "serial"
    command = "/bin/sleep"
    args    = ["1"]
  }
}
`)
	ids := map[string]string{"fan": s.trigger("fan", nil), "other": s.trigger("other", nil)}
	type span struct {
		name       string
		start, end time.Time
	}
	var serial []span
	var free state.Try
	for dag, id := range ids {
		rec := s.waitRun(dag, id, 2*time.Minute)
		if rec.Run.State != state.RunSuccess {
			t.Fatalf("%s: %s", dag, describe(rec))
		}
		for name, ti := range rec.Tasks {
			try := ti.Tries[0]
			switch {
			case name == "free":
				free = try
			case name != "split":
				serial = append(serial, span{dag + "." + name, try.StartedAt, try.EndedAt})
			}
		}
	}
	if len(serial) != 6 {
		t.Fatalf("%d tries on the serial queue, want 6", len(serial))
	}
	sort.Slice(serial, func(i, j int) bool { return serial[i].start.Before(serial[j].start) })
	for i := 1; i < len(serial); i++ {
		prev, cur := serial[i-1], serial[i]
		if cur.start.Before(prev.end) {
			t.Errorf("%s started at %s, while %s ran (until %s)", cur.name, cur.start, prev.name, prev.end)
		}
	}
	// The default queue is unbounded: its task after split ran beside the serial ones.
	if !free.StartedAt.Before(serial[len(serial)-1].start) {
		t.Errorf("free started at %s, not before the last serial try started at %s", free.StartedAt, serial[len(serial)-1].start)
	}
}
