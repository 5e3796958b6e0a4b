package history_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/dagflow/dagflow/history"
	"github.com/dagflow/dagflow/rules"
	"github.com/dagflow/dagflow/state"
)

// TestRecordOutputs: history keeps every try's outputs as written, also after Consul dropped
// those of an older try, and a mapped task's instance keys and message.
func TestRecordOutputs(t *testing.T) {
	ctx := context.Background()
	db, _ := open(t, true)
	fence := history.Fence{Epoch: 1, Session: "s1"}

	rec := sample("etl", "r1", 0)
	extract := rec.Tasks["extract"]
	extract.Tries[0].State, extract.Tries[0].Outputs = rules.Success, json.RawMessage(`{"z":1,"a":[1,2]}`)
	rec.Tasks["load"].Tries[0].Outputs = json.RawMessage(`{"rows":3}`)
	rec.Tasks["each"] = &state.TaskInstance{DAG: "etl", RunID: "r1", Task: "each", State: rules.Success, MapKeys: []string{"1", "0"}}
	rec.Tasks["none"] = &state.TaskInstance{DAG: "etl", RunID: "r1", Task: "none", State: rules.Skipped, Message: "tasks.a.outputs.b is empty: nothing to map over"}
	if err := db.Record(ctx, fence, []history.Entry{entry(rec)}); err != nil {
		t.Fatal(err)
	}
	// A newer try published outputs: Consul no longer holds the first try's.
	later := sample("etl", "r1", 0)
	for name, ti := range rec.Tasks {
		c := *ti
		c.Tries = append([]state.Try(nil), ti.Tries...)
		later.Tasks[name] = &c
	}
	later.Tasks["extract"].Tries[0].Outputs = nil
	later.Tasks["extract"].Tries[1].Outputs = json.RawMessage(`{"b":2}`)
	if err := db.Record(ctx, fence, []history.Entry{entry(later)}); err != nil {
		t.Fatal(err)
	}
	got, err := db.Run(ctx, "etl", "r1")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{"extract": {`{"z":1,"a":[1,2]}`, `{"b":2}`}, "load": {`{"rows":3}`}}
	for task, outs := range want {
		for i, o := range outs {
			if g := string(got.Tasks[task].Tries[i].Outputs); g != o {
				t.Errorf("%s try %d: outputs %s, want %s", task, i+1, g, o)
			}
		}
	}
	if diff := cmp.Diff([]string{"1", "0"}, got.Tasks["each"].MapKeys); diff != "" {
		t.Errorf("map keys (-want +got):\n%s", diff)
	}
	if got.Tasks["none"].Message != rec.Tasks["none"].Message || got.Tasks["load"].MapKeys != nil {
		t.Errorf("none: %+v; load: %+v", got.Tasks["none"], got.Tasks["load"])
	}
}
