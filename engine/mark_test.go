package engine_test

import (
	"strings"
	"testing"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/dagflow/dagflow/engine"
	"github.com/dagflow/dagflow/rules"
	"github.com/dagflow/dagflow/state"
)

// checkStopped fails the test unless the Nomad job of try was stopped by dagflow, as stop
// says: the job is stopped, its allocation was told to stop, and the try ended with reason.
func (s *stack) checkStopped(try state.Try, reason string) {
	s.t.Helper()
	if try.Stop == nil || try.Stop.Reason != reason || try.Message != reason {
		s.t.Errorf("try %d: stop %+v, message %q; want both %q", try.Try, try.Stop, try.Message, reason)
	}
	if ran := try.EndedAt.Sub(try.QueuedAt); ran > time.Minute {
		s.t.Errorf("try %d ran %s: it was not stopped", try.Try, ran)
	}
	stubs, _, err := s.nomad.Jobs().List(&nomadapi.QueryOptions{Namespace: "*", Prefix: try.JobID})
	if err != nil || len(stubs) != 1 {
		s.t.Fatalf("Nomad job %s: %d jobs, %v", try.JobID, len(stubs), err)
	}
	if !stubs[0].Stop {
		s.t.Errorf("Nomad job %s is not stopped (status %s)", try.JobID, stubs[0].Status)
	}
	allocs, _, err := s.nomad.Jobs().Allocations(try.JobID, true, &nomadapi.QueryOptions{Namespace: stubs[0].Namespace})
	if err != nil {
		s.t.Fatal(err)
	}
	for _, a := range allocs {
		if a.DesiredStatus != nomadapi.AllocDesiredStatusStop || a.ClientStatus == nomadapi.AllocClientStatusRunning {
			s.t.Errorf("allocation %s of job %s: desired %s, client %s; want it stopped", a.ID, try.JobID, a.DesiredStatus, a.ClientStatus)
		}
	}
}

// TestMarkSuccess: in a run still running, marking a failed task success lets the tasks after
// it, which did not run because it failed, run; marking a running task success stops its job
// and ends it in success, and the run succeeds.
func TestMarkSuccess(t *testing.T) {
	t.Parallel()
	s := newStack(t, engine.Config{})
	s.apply(`
dag "marks" {
  start_date = "2026-01-01"
  defaults {
    command = "/bin/true"
  }
  task "a" {
    command = "/bin/sh"
    args    = ["-c", "exit 3"]
  }
  task "b" { depends_on = ["a"] }
  task "c" { depends_on = ["b"] }
  task "slow" {
    command = "/bin/sleep"
    args    = ["600"]
  }
}
`)
	id := s.trigger("marks", nil)
	s.waitFor("marks", id, 2*time.Minute, "with c upstream_failed and slow running", func(r *state.RunRecord) bool {
		got := states(r)
		return got["a"] == rules.Failed && got["c"] == rules.UpstreamFailed && got["slow"] == rules.Running
	})

	if res := s.request(&state.Request{Kind: state.RequestMark, DAG: "marks", RunID: id, Task: "a", State: "success"}); res.Error != "" {
		t.Fatalf("mark a success: %s", res.Error)
	}
	rec := s.waitFor("marks", id, 2*time.Minute, "with c run", func(r *state.RunRecord) bool {
		return states(r)["c"] == rules.Success
	})
	if rec.Run.State != state.RunRunning {
		t.Errorf("run after marking a success: %s, want running (slow runs)", rec.Run.State)
	}
	a := rec.Tasks["a"]
	if a.State != rules.Success || len(a.Tries) != 1 || a.Tries[0].State != rules.Failed || a.Tries[0].Message != "exit code 3" {
		t.Errorf("a after its mark: %+v; want success, with its one try failed as it did", a)
	}
	for _, name := range []string{"b", "c"} {
		if ti := rec.Tasks[name]; ti.State != rules.Success || len(ti.Tries) != 1 {
			t.Errorf("%s after marking a success: %s with %d tries, want success with 1", name, ti.State, len(ti.Tries))
		}
	}

	if res := s.request(&state.Request{Kind: state.RequestMark, DAG: "marks", RunID: id, Task: "slow", State: "success"}); res.Error != "" {
		t.Fatalf("mark slow success: %s", res.Error)
	}
	rec = s.waitRun("marks", id, time.Minute)
	slow := rec.Tasks["slow"]
	if rec.Run.State != state.RunSuccess || slow.State != rules.Success || len(slow.Tries) != 1 || slow.Tries[0].State != rules.Success {
		t.Fatalf("after marking slow success: %s", describe(rec))
	}
	s.checkStopped(slow.Tries[0], "marked success")
	s.checkOneJobPerTry(rec)
}

// TestMarkFailed: marking a running task failed stops its job and fails it, with no retry
// although it has retries left; the task after it is upstream_failed and the run fails.
func TestMarkFailed(t *testing.T) {
	t.Parallel()
	s := newStack(t, engine.Config{})
	s.apply(`
dag "stuck" {
  start_date = "2026-01-01"
  task "a" {
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
	id := s.trigger("stuck", nil)
	s.waitFor("stuck", id, 2*time.Minute, "with a running", func(r *state.RunRecord) bool {
		return states(r)["a"] == rules.Running
	})
	if res := s.request(&state.Request{Kind: state.RequestMark, DAG: "stuck", RunID: id, Task: "a", State: "failed"}); res.Error != "" {
		t.Fatalf("mark a failed: %s", res.Error)
	}
	rec := s.waitRun("stuck", id, time.Minute)
	time.Sleep(2 * time.Second) // past the retry delay: a retry, if any, would be recorded
	rec = s.waitRun("stuck", id, time.Minute)
	a := rec.Tasks["a"]
	if rec.Run.State != state.RunFailed || a.State != rules.Failed || len(a.Tries) != 1 || a.Tries[0].State != rules.Failed ||
		states(rec)["b"] != rules.UpstreamFailed {
		t.Fatalf("after marking a failed: %s", describe(rec))
	}
	s.checkStopped(a.Tries[0], "marked failed")
	s.checkOneJobPerTry(rec)
}

// TestMarkDownstream: in a finished run, marking a failed task success with Downstream sets it
// and every task after it to success without running them, and the run's outcome is computed
// again: success; marking a leaf that succeeded failed makes it failed again.
func TestMarkDownstream(t *testing.T) {
	t.Parallel()
	s := newStack(t, engine.Config{})
	s.apply(`
dag "chain" {
  start_date = "2026-01-01"
  defaults {
    command = "/bin/true"
  }
  task "a" {
    command = "/bin/sh"
    args    = ["-c", "exit 3"]
  }
  task "b" { depends_on = ["a"] }
  task "c" { depends_on = ["b"] }
  task "d" {}
}
`)
	id := s.trigger("chain", nil)
	first := s.waitRun("chain", id, 2*time.Minute)
	if got := states(first); first.Run.State != state.RunFailed || got["c"] != rules.UpstreamFailed || got["d"] != rules.Success {
		t.Fatalf("run: %s", describe(first))
	}

	if res := s.request(&state.Request{Kind: state.RequestMark, DAG: "chain", RunID: id, Task: "a", State: "success", Downstream: true}); res.Error != "" {
		t.Fatalf("mark a success with downstream: %s", res.Error)
	}
	rec := s.waitFor("chain", id, 30*time.Second, "succeeded", func(r *state.RunRecord) bool { return r.Run.State == state.RunSuccess })
	want := map[string]int{"a": 1, "b": 0, "c": 0, "d": 1} // tries
	for name, ti := range rec.Tasks {
		if ti.State != rules.Success || len(ti.Tries) != want[name] {
			t.Errorf("%s after marking a success with downstream: %s with %d tries, want success with %d", name, ti.State, len(ti.Tries), want[name])
		}
	}
	if !rec.Run.EndedAt.Equal(first.Run.EndedAt) {
		t.Errorf("the run ended at %s, then at %s: it ran again", first.Run.EndedAt, rec.Run.EndedAt)
	}

	if res := s.request(&state.Request{Kind: state.RequestMark, DAG: "chain", RunID: id, Task: "d", State: "failed"}); res.Error != "" {
		t.Fatalf("mark d failed: %s", res.Error)
	}
	rec = s.waitFor("chain", id, 30*time.Second, "failed", func(r *state.RunRecord) bool { return r.Run.State == state.RunFailed })
	if got := states(rec)["d"]; got != rules.Failed {
		t.Errorf("d after its mark: %s, want failed", got)
	}
}

// TestRequestErrors: mark, clear and cancel requests that cannot be carried out are refused
// with an error that names the DAG, run or task, and what there is instead.
func TestRequestErrors(t *testing.T) {
	t.Parallel()
	s := newStack(t, engine.Config{})
	s.apply(`
dag "errs" {
  start_date = "2026-01-01"
  task "a" {
    command = "/bin/true"
  }
  task "b" {
    command = "/bin/true"
  }
}
`)
	id := s.trigger("errs", nil)
	if rec := s.waitRun("errs", id, 2*time.Minute); rec.Run.State != state.RunSuccess {
		t.Fatalf("run: %s", describe(rec))
	}
	const missing = "manual__2020-01-01T00:00:00Z"
	tests := []struct {
		name string
		req  state.Request
		want []string
	}{
		{"mark in an unknown run", state.Request{Kind: state.RequestMark, DAG: "errs", RunID: missing, Task: "a", State: "success"},
			[]string{`DAG "errs" has no run "` + missing + `"`, `its latest runs are ["` + id + `"]`}},
		{"mark an unknown task", state.Request{Kind: state.RequestMark, DAG: "errs", RunID: id, Task: "c", State: "failed"},
			[]string{`run "` + id + `" of DAG "errs" has no task "c"; it has ["a","b"]`}},
		{"mark as running", state.Request{Kind: state.RequestMark, DAG: "errs", RunID: id, Task: "a", State: "running"},
			[]string{`mark task "a" of run "` + id + `" of DAG "errs" as "running": want success or failed`}},
		{"mark without state", state.Request{Kind: state.RequestMark, DAG: "errs", RunID: id, Task: "a"},
			[]string{`as "": want success or failed`}},
		{"clear in an unknown DAG", state.Request{Kind: state.RequestClear, DAG: "nodag", RunID: id, Task: "a"},
			[]string{`DAG "nodag" has no run "` + id + `"; it has no runs at all: check the DAG name`}},
		{"cancel an unknown run", state.Request{Kind: state.RequestCancel, DAG: "errs", RunID: missing},
			[]string{`DAG "errs" has no run "` + missing + `"`}},
		{"cancel a finished run", state.Request{Kind: state.RequestCancel, DAG: "errs", RunID: id},
			[]string{`run "` + id + `" of DAG "errs" already finished (success); clear a task to run it again`}},
	}
	for _, tt := range tests {
		res := s.request(&tt.req)
		for _, w := range tt.want {
			if !strings.Contains(res.Error, w) {
				t.Errorf("%s: error %q, want it to contain %q", tt.name, res.Error, w)
			}
		}
	}
	rec := s.waitRun("errs", id, time.Minute)
	if got := states(rec); rec.Run.State != state.RunSuccess || got["a"] != rules.Success || got["b"] != rules.Success {
		t.Errorf("the run after refused requests: %s", describe(rec))
	}
}
