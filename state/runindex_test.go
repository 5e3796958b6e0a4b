package state_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	consulapi "github.com/hashicorp/consul/api"

	"github.com/dagflow/dagflow/rules"
	"github.com/dagflow/dagflow/state"
	"github.com/dagflow/dagflow/state/statetest"
)

// TestRunIndex reads the run index and the records it names from a real Consul: hours come
// newest first, an hour's entries in list order, records in the order asked (more than one
// transaction's worth, a deleted run left out), and deleting a run deletes its entry.
func TestRunIndex(t *testing.T) {
	newStore, _, client := statetest.Stores(t)
	s := newStore(t)
	ctx := context.Background()
	base := time.Date(2026, 5, 1, 8, 0, 0, 0, time.UTC)
	var ops consulapi.TxnOps
	var refs []state.RunRef
	for i := range 40 {
		// Two DAGs, one with a name that needs escaping, over three hours.
		dag := []string{"etl", "ml/train"}[i%2]
		at := base.Add(time.Duration(i%3)*time.Hour + time.Duration(i)*time.Minute)
		r := state.Run{DAG: dag, ID: rules.RunID(rules.RunManual, at), LogicalDate: at, State: state.RunSuccess}
		run, err := s.PutRunOp(&r)
		if err != nil {
			t.Fatal(err)
		}
		task, err := s.PutTaskOp(&state.TaskInstance{DAG: dag, RunID: r.ID, Task: "t", State: rules.Success})
		if err != nil {
			t.Fatal(err)
		}
		idx, err := s.PutIndexOp(state.IndexEntry{DAG: dag, ID: r.ID, LogicalDate: at, State: r.State})
		if err != nil {
			t.Fatal(err)
		}
		ops = append(ops, run, task, idx)
		refs = append(refs, state.RunRef{DAG: dag, ID: r.ID})
	}
	for batch := range slices.Chunk(ops, 60) {
		if ok, resp, _, err := client.Txn().Txn(batch, nil); err != nil || !ok {
			t.Fatalf("write runs: %v %v", err, resp)
		}
	}

	hours, err := s.IndexHours(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"2026-05-01T10", "2026-05-01T09", "2026-05-01T08"}; !slices.Equal(hours, want) {
		t.Fatalf("hours %v, want %v", hours, want)
	}
	total := 0
	for _, h := range hours {
		entries, err := s.IndexHourEntries(ctx, h)
		if err != nil {
			t.Fatal(err)
		}
		total += len(entries)
		for i, e := range entries {
			if e.Hour() != h {
				t.Errorf("%+v listed under %s", e, h)
			}
			if i > 0 && entries[i-1].PageKey() <= e.PageKey() {
				t.Errorf("%s listed before %s", entries[i-1].PageKey(), e.PageKey())
			}
		}
	}
	if total != len(refs) {
		t.Errorf("%d entries, want %d", total, len(refs))
	}

	del := refs[5]
	delAt := base.Add(time.Duration(5%3)*time.Hour + 5*time.Minute)
	if ok, resp, _, err := client.Txn().Txn(s.DeleteRunOps(del.DAG, del.ID, delAt), nil); err != nil || !ok {
		t.Fatalf("delete run: %v %v", err, resp)
	}
	asked := slices.Clone(refs)
	slices.Reverse(asked)
	recs, err := s.RunRecords(ctx, asked)
	if err != nil {
		t.Fatal(err)
	}
	var got, want []string
	for _, r := range asked {
		if r != del {
			want = append(want, r.DAG+" "+r.ID)
		}
	}
	for _, rec := range recs {
		got = append(got, rec.Run.DAG+" "+rec.Run.ID)
		if len(rec.Tasks) != 1 || rec.Tasks["t"] == nil {
			t.Errorf("run %s/%s read with tasks %v, want its one task", rec.Run.DAG, rec.Run.ID, rec.Tasks)
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("records\n%v\nwant\n%v", got, want)
	}
	entries, err := s.IndexHourEntries(ctx, state.IndexHour(delAt))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.DAG == del.DAG && e.ID == del.ID {
			t.Errorf("the entry of deleted run %s/%s is still indexed", del.DAG, del.ID)
		}
	}
}

// TestIndexHash: the same entries in any order hash alike; a changed state or a missing entry
// does not.
func TestIndexHash(t *testing.T) {
	at := time.Date(2026, 5, 1, 8, 0, 0, 0, time.UTC)
	var entries []state.IndexEntry
	for i := range 5 {
		entries = append(entries, state.IndexEntry{DAG: fmt.Sprint("d", i), ID: "r", LogicalDate: at, State: state.RunSuccess})
	}
	hash := func(es []state.IndexEntry) state.IndexHash {
		var h state.IndexHash
		for _, e := range es {
			h.Add(e)
		}
		return h
	}
	h := hash(entries)
	rev := slices.Clone(entries)
	slices.Reverse(rev)
	if hash(rev) != h {
		t.Error("reversed entries hash differently")
	}
	changed := slices.Clone(entries)
	changed[2].State = state.RunFailed
	if hash(changed) == h {
		t.Error("a changed state hashes alike")
	}
	if hash(entries[1:]) == h {
		t.Error("a missing entry hashes alike")
	}
}
