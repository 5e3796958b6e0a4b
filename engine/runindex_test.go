package engine_test

import (
	"context"
	"slices"
	"testing"
	"time"

	consulapi "github.com/hashicorp/consul/api"

	"github.com/dagflow/dagflow/engine"
	"github.com/dagflow/dagflow/rules"
	"github.com/dagflow/dagflow/state"
)

// index reads the whole run index of the stack, as "dag/run state", sorted.
func (s *stack) index() []string {
	s.t.Helper()
	ctx := context.Background()
	hours, err := s.store.IndexHours(ctx)
	if err != nil {
		s.t.Fatal(err)
	}
	var out []string
	for _, h := range hours {
		entries, err := s.store.IndexHourEntries(ctx, h)
		if err != nil {
			s.t.Fatal(err)
		}
		for _, e := range entries {
			if e.Hour() != h {
				s.t.Errorf("entry %+v listed under hour %s", e, h)
			}
			out = append(out, e.DAG+"/"+e.ID+" "+string(e.State))
		}
	}
	slices.Sort(out)
	return out
}

// TestRunIndex: a new leader builds the run index of runs written without one (by a version
// before it) and mends an hour that does not match the runs (a wrong state, an entry of a run
// that is gone); a run's entry follows its state as it runs, and goes when retention deletes
// the run.
func TestRunIndex(t *testing.T) {
	t.Parallel()
	cfg := engine.Config{PurgeAfter: time.Hour, KeepRuns: 3}
	s := newStack(t, cfg)
	s.apply(`
dag "idx" {
  start_date = "2026-01-01"
  task "a" {
    command = "/bin/true"
  }
}
`)
	s.stop()

	// Three finished runs, hours apart, as a version without the index wrote them; an entry
	// that says the second is still running; an entry of a run that is not stored.
	ctx := context.Background()
	c, err := s.store.Catalog(ctx)
	if err != nil {
		t.Fatal(err)
	}
	base := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	var ops consulapi.TxnOps
	var ids []string
	for i := range 3 {
		at := base.Add(time.Duration(i) * time.Hour)
		id := rules.RunID(rules.RunManual, at)
		ids = append(ids, id)
		op, err := s.store.PutRunOp(&state.Run{DAG: "idx", ID: id, Type: rules.RunManual, Version: c.DAGs["idx"].Version,
			LogicalDate: at, DataIntervalStart: at, DataIntervalEnd: at, State: state.RunSuccess, CreatedAt: at, StartedAt: at, EndedAt: at})
		if err != nil {
			t.Fatal(err)
		}
		ops = append(ops, op)
	}
	for _, e := range []state.IndexEntry{
		{DAG: "idx", ID: ids[1], LogicalDate: base.Add(time.Hour), State: state.RunRunning},
		{DAG: "idx", ID: "gone", LogicalDate: base.Add(-48 * time.Hour), State: state.RunFailed},
	} {
		op, err := s.store.PutIndexOp(e)
		if err != nil {
			t.Fatal(err)
		}
		ops = append(ops, op)
	}
	consul, _ := agents(t)
	if ok, resp, _, err := consul.Txn().Txn(ops, nil); err != nil || !ok {
		t.Fatalf("write the runs: ok %v, %v, %+v", ok, err, resp)
	}

	s.start(cfg)
	want := []string{"idx/" + ids[0] + " success", "idx/" + ids[1] + " success", "idx/" + ids[2] + " success"}
	s.eventually(time.Minute, "the index to hold the three runs", func() bool { return slices.Equal(s.index(), want) })

	// A new run is indexed as it goes; once it finished, retention (3 runs) deletes the
	// oldest, and its entry with it.
	id := s.trigger("idx", nil)
	if rec := s.waitRun("idx", id, 2*time.Minute); rec.Run.State != state.RunSuccess {
		t.Fatalf("run: %s", describe(rec))
	}
	want = []string{"idx/" + ids[1] + " success", "idx/" + ids[2] + " success", "idx/" + id + " success"}
	slices.Sort(want)
	s.eventually(time.Minute, "the index to follow retention", func() bool { return slices.Equal(s.index(), want) })
}
