package engine_test

import (
	"testing"
	"time"

	"github.com/dagflow/dagflow/engine"
	"github.com/dagflow/dagflow/rules"
	"github.com/dagflow/dagflow/state"
)

// tries returns the number of tries of every task instance of r.
func tries(r *state.RunRecord) map[string]int {
	out := map[string]int{}
	for name, ti := range r.Tasks {
		out[name] = len(ti.Tries)
	}
	return out
}

// TestClear: clearing a task of a finished run with Downstream runs it and every task after it
// again, each with a new try, in order, and the run ends again; without Downstream only that
// task runs again.
func TestClear(t *testing.T) {
	t.Parallel()
	s := newStack(t, engine.Config{})
	s.apply(`
dag "chain" {
  start_date = "2026-01-01"
  defaults {
    command = "/bin/sh"
    args    = ["-c", "echo try $DAGFLOW_TRY"]
  }
  task "a" {}
  task "b" { depends_on = ["a"] }
  task "c" { depends_on = ["b"] }
  task "side" {}
}
`)
	id := s.trigger("chain", nil)
	first := s.waitRun("chain", id, 2*time.Minute)
	if first.Run.State != state.RunSuccess {
		t.Fatalf("first run: %s", describe(first))
	}

	res := s.request(&state.Request{Kind: state.RequestClear, DAG: "chain", RunID: id, Task: "a", Downstream: true})
	if res.Error != "" {
		t.Fatalf("clear a with downstream: %s", res.Error)
	}
	rec := s.waitFor("chain", id, 2*time.Minute, "finished after the clear", func(r *state.RunRecord) bool {
		return r.Run.State.Finished() && len(r.Tasks["c"].Tries) == 2
	})
	if rec.Run.State != state.RunSuccess || !rec.Run.EndedAt.After(first.Run.EndedAt) {
		t.Errorf("run after clearing a with downstream: %s", describe(rec))
	}
	want := map[string]int{"a": 2, "b": 2, "c": 2, "side": 1}
	for name, n := range tries(rec) {
		if n != want[name] {
			t.Errorf("after clearing a with downstream, %s has %d tries, want %d", name, n, want[name])
		}
	}
	for name, ti := range rec.Tasks {
		if ti.State != rules.Success || ti.Current().State != rules.Success {
			t.Errorf("%s: %s, latest try %s, want success", name, ti.State, ti.Current().State)
		}
	}
	for _, pair := range [][2]string{{"a", "b"}, {"b", "c"}} {
		up, down := rec.Tasks[pair[0]].Current(), rec.Tasks[pair[1]].Current()
		if down.StartedAt.Before(up.EndedAt) {
			t.Errorf("the new try of %s started at %s, before the new try of %s ended at %s", pair[1], down.StartedAt, pair[0], up.EndedAt)
		}
		if !up.QueuedAt.After(first.Run.EndedAt) {
			t.Errorf("the new try of %s was queued at %s, not after the first run ended at %s", pair[0], up.QueuedAt, first.Run.EndedAt)
		}
	}
	for _, name := range []string{"a", "b", "c"} {
		ti := rec.Tasks[name]
		if ti.Tries[0].JobID == ti.Tries[1].JobID {
			t.Errorf("%s: both tries ran as job %s", name, ti.Tries[0].JobID)
		}
	}

	res = s.request(&state.Request{Kind: state.RequestClear, DAG: "chain", RunID: id, Task: "b"})
	if res.Error != "" {
		t.Fatalf("clear b: %s", res.Error)
	}
	rec = s.waitFor("chain", id, 2*time.Minute, "finished after the second clear", func(r *state.RunRecord) bool {
		return r.Run.State.Finished() && len(r.Tasks["b"].Tries) == 3
	})
	if rec.Run.State != state.RunSuccess {
		t.Errorf("run after clearing b alone: %s", describe(rec))
	}
	want = map[string]int{"a": 2, "b": 3, "c": 2, "side": 1}
	for name, n := range tries(rec) {
		if n != want[name] {
			t.Errorf("after clearing b alone, %s has %d tries, want %d", name, n, want[name])
		}
	}
	if got := states(rec)["b"]; got != rules.Success {
		t.Errorf("b after its clear: %s, want success", got)
	}
}

// TestClearRetriesAgain: a cleared task has its retries again, as in Airflow, where clearing a
// task instance sets its max_tries to its try number plus the task's retries. Here a task with
// retries = 1 fails every odd try: its first run needs its retry, and so does its clear.
func TestClearRetriesAgain(t *testing.T) {
	t.Parallel()
	s := newStack(t, engine.Config{})
	s.apply(`
dag "odd" {
  start_date = "2026-01-01"
  task "a" {
    command     = "/bin/sh"
    args        = ["-c", "test $(($DAGFLOW_TRY % 2)) -eq 0"]
    retries     = 1
    retry_delay = "1s"
  }
}
`)
	id := s.trigger("odd", nil)
	rec := s.waitRun("odd", id, 2*time.Minute)
	if rec.Run.State != state.RunSuccess || len(rec.Tasks["a"].Tries) != 2 {
		t.Fatalf("first run: %s", describe(rec))
	}
	if res := s.request(&state.Request{Kind: state.RequestClear, DAG: "odd", RunID: id, Task: "a"}); res.Error != "" {
		t.Fatalf("clear: %s", res.Error)
	}
	rec = s.waitFor("odd", id, 2*time.Minute, "finished after the clear", func(r *state.RunRecord) bool {
		return r.Run.State.Finished() && len(r.Tasks["a"].Tries) >= 3
	})
	var got []rules.State
	for _, try := range rec.Tasks["a"].Tries {
		got = append(got, try.State)
	}
	want := []rules.State{rules.Failed, rules.Success, rules.Failed, rules.Success}
	if rec.Run.State != state.RunSuccess || len(got) != len(want) || got[2] != want[2] || got[3] != want[3] {
		t.Errorf("after the clear: run %s, tries %q, want run success and tries %q", rec.Run.State, got, want)
	}
}
