package state_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	consulapi "github.com/hashicorp/consul/api"

	"github.com/dagflow/dagflow/rules"
	"github.com/dagflow/dagflow/state"
	"github.com/dagflow/dagflow/state/statetest"
)

// TestEachDAGRuns reads the runs of many DAGs a DAG at a time from a real Consul: every DAG's
// runs come in one call, oldest first, with their task instances, the same records AllRuns
// reads; an error of fn stops it.
func TestEachDAGRuns(t *testing.T) {
	newStore, _, client := statetest.Stores(t)
	s := newStore(t)
	ctx := context.Background()
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var ops consulapi.TxnOps
	dags := []string{"a", "b", "a-b", "A_1"}
	for i := range 20 {
		dags = append(dags, fmt.Sprintf("dag_%02d", i))
	}
	for d, dag := range dags {
		for i := range d%3 + 1 {
			at := start.Add(time.Duration(2-i) * time.Hour) // written newest first
			r := state.Run{DAG: dag, ID: rules.RunID(rules.RunScheduled, at), Type: rules.RunScheduled, LogicalDate: at, State: state.RunSuccess}
			op, err := s.PutRunOp(&r)
			if err != nil {
				t.Fatal(err)
			}
			ops = append(ops, op)
			op, err = s.PutTaskOp(&state.TaskInstance{DAG: dag, RunID: r.ID, Task: "t", State: rules.Success})
			if err != nil {
				t.Fatal(err)
			}
			ops = append(ops, op)
		}
	}
	for _, batch := range state.SplitTxn(ops, 64) {
		if ok, resp, _, err := client.Txn().Txn(batch, nil); err != nil || !ok {
			t.Fatalf("write runs: %v %+v", err, resp)
		}
	}
	all, err := s.AllRuns(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]*state.RunRecord{}
	for _, rec := range all {
		want[rec.Run.DAG] = append(want[rec.Run.DAG], rec)
	}
	got := map[string][]*state.RunRecord{}
	err = s.EachDAGRuns(ctx, func(recs []*state.RunRecord) error {
		dag := recs[0].Run.DAG
		if got[dag] != nil {
			t.Errorf("DAG %q came twice", dag)
		}
		for i, rec := range recs {
			if rec.Run.DAG != dag {
				t.Errorf("DAG %q's call holds a run of %q", dag, rec.Run.DAG)
			}
			if i > 0 && !recs[i-1].Run.LogicalDate.Before(rec.Run.LogicalDate) {
				t.Errorf("DAG %q: runs not oldest first", dag)
			}
			if rec.Tasks["t"] == nil {
				t.Errorf("DAG %q run %s has no task instance", dag, rec.Run.ID)
			}
		}
		got[dag] = recs
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(dags) || len(want) != len(dags) {
		t.Errorf("EachDAGRuns gave %d DAGs, AllRuns %d, want %d", len(got), len(want), len(dags))
	}
	for dag, recs := range want {
		if len(got[dag]) != len(recs) {
			t.Errorf("DAG %q: %d runs, AllRuns reads %d", dag, len(got[dag]), len(recs))
		}
	}

	stop := errors.New("stop")
	calls := 0
	if err := s.EachDAGRuns(ctx, func([]*state.RunRecord) error { calls++; return stop }); !errors.Is(err, stop) || calls != 1 {
		t.Errorf("fn failing: error %v after %d calls, want %v after 1", err, calls, stop)
	}
}
