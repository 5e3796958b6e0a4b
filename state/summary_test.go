package state_test

import (
	"context"
	"fmt"
	"testing"

	consulapi "github.com/hashicorp/consul/api"

	"github.com/dagflow/dagflow/state"
	"github.com/dagflow/dagflow/state/statetest"
)

// TestSummariesOf reads a page of summaries spanning several transactions from a real Consul:
// every DAG asked for is answered, with its own summary or an empty one, and names that need
// escaping in keys come back as they were asked.
func TestSummariesOf(t *testing.T) {
	newStore, _, client := statetest.Stores(t)
	s := newStore(t)
	ctx := context.Background()
	var names []string
	var ops consulapi.TxnOps
	for i := range 150 {
		name := fmt.Sprintf("dag_%03d", i)
		names = append(names, name)
		if i%3 == 0 {
			continue // no summary yet
		}
		op, err := s.PutSummaryOp(&state.Summary{DAG: name, Recent: []state.RunSummary{{Run: state.Run{DAG: name, ID: "manual__" + name}}}})
		if err != nil {
			t.Fatal(err)
		}
		ops = append(ops, op)
	}
	for i := 0; i < len(ops); i += 64 {
		if ok, resp, _, err := client.Txn().Txn(ops[i:min(i+64, len(ops))], nil); err != nil || !ok {
			t.Fatalf("write summaries: %v %v", err, resp)
		}
	}
	got, err := s.SummariesOf(ctx, names)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(names) {
		t.Fatalf("got %d summaries, want %d", len(got), len(names))
	}
	for i, name := range names {
		sum := got[name]
		switch {
		case sum == nil || sum.DAG != name:
			t.Errorf("%s: summary %+v", name, sum)
		case i%3 == 0 && len(sum.Recent) != 0:
			t.Errorf("%s has no summary stored, got %+v", name, sum)
		case i%3 != 0 && (len(sum.Recent) != 1 || sum.Recent[0].Run.ID != "manual__"+name):
			t.Errorf("%s: summary %+v, want its own run", name, sum)
		}
	}
}
