package engine_test

import (
	"testing"
	"time"

	"github.com/dagflow/dagflow/engine"
	"github.com/dagflow/dagflow/rules"
	"github.com/dagflow/dagflow/state"
)

// TestCancel: canceling a run queued behind max_active_runs ends it failed at once with every
// task skipped; canceling a running run stops its try in flight, which fails as "canceled",
// skips the task not started, keeps what had finished, and the run fails.
func TestCancel(t *testing.T) {
	t.Parallel()
	s := newStack(t, engine.Config{})
	s.apply(`
dag "long" {
  start_date      = "2026-01-01"
  max_active_runs = 1
  task "quick" {
    command = "/bin/true"
  }
  task "a" {
    depends_on  = ["quick"]
    command     = "/bin/sleep"
    args        = ["600"]
    retries     = 2
    retry_delay = "1s"
  }
  task "b" {
    depends_on = ["a"]
    command    = "/bin/true"
  }
}
`)
	running, queued := s.trigger("long", nil), s.trigger("long", nil)
	s.waitFor("long", running, 2*time.Minute, "with a running", func(r *state.RunRecord) bool {
		return states(r)["a"] == rules.Running
	})

	if res := s.request(&state.Request{Kind: state.RequestCancel, DAG: "long", RunID: queued}); res.Error != "" {
		t.Fatalf("cancel the queued run: %s", res.Error)
	}
	rec := s.waitRun("long", queued, 10*time.Second)
	if rec.Run.State != state.RunFailed || rec.Run.CanceledAt.IsZero() || !rec.Run.StartedAt.IsZero() {
		t.Errorf("queued run after its cancel: %s", describe(rec))
	}
	for _, name := range []string{"quick", "a", "b"} {
		if ti := rec.Tasks[name]; ti == nil || ti.State != rules.Skipped || len(ti.Tries) != 0 {
			t.Errorf("%s of the canceled queued run: %+v, want skipped without tries", name, ti)
		}
	}

	if res := s.request(&state.Request{Kind: state.RequestCancel, DAG: "long", RunID: running}); res.Error != "" {
		t.Fatalf("cancel the running run: %s", res.Error)
	}
	rec = s.waitRun("long", running, time.Minute)
	got := states(rec)
	if rec.Run.State != state.RunFailed || rec.Run.CanceledAt.IsZero() ||
		got["quick"] != rules.Success || got["a"] != rules.Failed || got["b"] != rules.Skipped {
		t.Fatalf("running run after its cancel: %s", describe(rec))
	}
	a := rec.Tasks["a"]
	if len(a.Tries) != 1 || a.Tries[0].State != rules.Failed {
		t.Errorf("a: tries %+v, want one, failed", a.Tries)
	}
	s.checkStopped(a.Tries[0], "canceled")
	if n := len(rec.Tasks["b"].Tries); n != 0 {
		t.Errorf("b has %d tries, want none", n)
	}
	time.Sleep(2 * time.Second) // past a's retry delay: a retry, if any, would be recorded
	rec = s.waitRun("long", running, time.Minute)
	if n := len(rec.Tasks["a"].Tries); n != 1 {
		t.Errorf("a has %d tries after the cancel, want 1", n)
	}
	s.checkOneJobPerTry(rec, s.waitRun("long", queued, time.Minute))
}
