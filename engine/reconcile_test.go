package engine_test

import (
	"context"
	"maps"
	"slices"
	"testing"
	"time"

	consulapi "github.com/hashicorp/consul/api"

	"github.com/dagflow/dagflow/engine"
	"github.com/dagflow/dagflow/nomadexec"
	"github.com/dagflow/dagflow/rules"
	"github.com/dagflow/dagflow/state"
)

// checkOneJobPerTry fails the test unless the stack's Nomad jobs are exactly the jobs of the
// tries of recs, each with exactly one allocation.
func (s *stack) checkOneJobPerTry(recs ...*state.RunRecord) {
	s.t.Helper()
	want := map[string]string{} // job ID -> the try it runs
	for _, r := range recs {
		for name, ti := range r.Tasks {
			for _, try := range ti.Tries {
				if other, dup := want[try.JobID]; dup {
					s.t.Errorf("job %s runs two tries: %s and %s", try.JobID, other, name)
				}
				want[try.JobID] = r.Run.ID + " " + name
			}
		}
	}
	jobs := s.jobAllocs()
	for id, n := range jobs {
		switch {
		case want[id] == "":
			s.t.Errorf("Nomad job %s (%d allocations) runs no recorded try", id, n)
		case n != 1:
			s.t.Errorf("Nomad job %s of %s has %d allocations, want 1", id, want[id], n)
		}
	}
	for id, try := range want {
		if _, ok := jobs[id]; !ok {
			s.t.Errorf("the try of %s recorded with job %s has no Nomad job", try, id)
		}
	}
	if s.t.Failed() {
		s.t.Logf("Nomad jobs: %v", slices.Sorted(maps.Keys(jobs)))
	}
}

// TestReconcileAfterStop stops the engine twice in the middle of a run, while tries are in
// flight: once long enough for them to end while no engine runs, once briefly. Each new engine
// adopts what is in flight and the run ends with every task run once: one try, one Nomad job,
// one allocation.
func TestReconcileAfterStop(t *testing.T) {
	t.Parallel()
	cfg := engine.Config{PurgeAfter: time.Hour}
	s := newStack(t, cfg)
	s.apply(`
dag "long" {
  start_date = "2026-01-01"
  defaults {
    command = "/bin/sleep"
    args    = ["2"]
  }
  task "a" {}
  task "w" {
    for_each   = ["1", "2", "3"]
    depends_on = ["a"]
  }
  task "z" {
    depends_on = ["w"]
    command    = "/bin/true"
    args       = []
  }
}
`)
	id := s.trigger("long", nil)
	inFlight := func(task string) func(*state.RunRecord) bool {
		return func(r *state.RunRecord) bool {
			ti := r.Tasks[task]
			return ti != nil && (ti.State == rules.Queued || ti.State == rules.Running)
		}
	}
	// The try of a ends while no engine runs; those of w still run when the next one starts.
	for _, stop := range []struct {
		task  string
		pause time.Duration
	}{{"a", 3 * time.Second}, {"w[2]", 500 * time.Millisecond}} {
		s.waitFor("long", id, time.Minute, stop.task+" in flight", inFlight(stop.task))
		s.stop()
		time.Sleep(stop.pause)
		s.start(cfg)
	}
	rec := s.waitRun("long", id, 2*time.Minute)
	if rec.Run.State != state.RunSuccess {
		t.Errorf("run: %s", describe(rec))
	}
	for name, ti := range rec.Tasks {
		if ti.State != rules.Success || len(ti.Tries) != 1 {
			t.Errorf("%s: %s with %d tries, want success with one try", name, ti.State, len(ti.Tries))
		}
	}
	if len(rec.Tasks) != 5 {
		t.Errorf("%d task instances, want 5", len(rec.Tasks))
	}
	s.checkOneJobPerTry(rec)
}

// TestReconcileQueuedNotSubmitted: a try recorded as queued whose job was never registered (its
// leader stopped between the record and the submission) is submitted by the next engine, once,
// and the run goes on.
func TestReconcileQueuedNotSubmitted(t *testing.T) {
	t.Parallel()
	cfg := engine.Config{PurgeAfter: time.Hour}
	s := newStack(t, cfg)
	s.apply(`
dag "orphan" {
  start_date = "2026-01-01"
  defaults {
    command = "/bin/sh"
    args    = ["-c", "echo $DAGFLOW_TASK try $DAGFLOW_TRY"]
  }
  task "a" {}
  task "b" { depends_on = ["a"] }
}
`)
	s.stop()

	// What a leader writes before it submits the first try of a, written here with the plain
	// KV API.
	ctx := context.Background()
	c, err := s.store.Catalog(ctx)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	id := rules.RunID(rules.RunManual, now)
	date := now.Truncate(time.Second)
	if _, parsed, err := rules.ParseRunID(id); err == nil {
		date = parsed
	}
	run := state.Run{
		DAG: "orphan", ID: id, Type: rules.RunManual, Version: c.DAGs["orphan"].Version,
		LogicalDate: date, DataIntervalStart: date, DataIntervalEnd: date,
		State: state.RunRunning, CreatedAt: now, StartedAt: now,
	}
	jobID := s.exec.JobID(nomadexec.Attempt{DAG: "orphan", RunID: id, Task: "a", Try: 1})
	ti := state.TaskInstance{DAG: "orphan", RunID: id, Task: "a", State: rules.Queued, Tries: []state.Try{
		{Try: 1, JobID: jobID, State: rules.Queued, ScheduledAt: now, QueuedAt: now},
	}}
	runOp, err := s.store.CreateRunOp(&run)
	if err != nil {
		t.Fatal(err)
	}
	taskOp, err := s.store.PutTaskOp(&ti)
	if err != nil {
		t.Fatal(err)
	}
	consul, _ := agents(t)
	ok, resp, _, err := consul.Txn().Txn(consulapi.TxnOps{runOp, taskOp}, nil)
	if err != nil || !ok {
		t.Fatalf("write the queued try: ok %v, %v, %+v", ok, err, resp)
	}
	if jobs := s.jobAllocs(); len(jobs) != 0 {
		t.Fatalf("Nomad jobs before the engine started: %v", jobs)
	}

	s.start(cfg)
	rec := s.waitRun("orphan", id, 2*time.Minute)
	if rec.Run.State != state.RunSuccess {
		t.Fatalf("run: %s", describe(rec))
	}
	a := rec.Tasks["a"]
	if a.State != rules.Success || len(a.Tries) != 1 || a.Tries[0].JobID != jobID || a.Tries[0].State != rules.Success {
		t.Errorf("a: %+v, want one successful try as job %s", a, jobID)
	}
	if b := rec.Tasks["b"]; b == nil || b.State != rules.Success || len(b.Tries) != 1 {
		t.Errorf("b: %+v, want one successful try", b)
	}
	logs, err := s.store.Logs(ctx, "orphan", id, "a", 1)
	if err != nil || string(logs.Stdout) != "a try 1\n" {
		t.Errorf("logs of a: %+v, %v; want stdout \"a try 1\\n\"", logs, err)
	}
	s.checkOneJobPerTry(rec)
}
