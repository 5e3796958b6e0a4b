package engine_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/dagflow/dagflow/engine"
	"github.com/dagflow/dagflow/rules"
	"github.com/dagflow/dagflow/state"
)

// TestAssets: a task with an outlet succeeds, and the DAG scheduled on that asset gets exactly
// one run, whose task reads the event (with the producer's outputs) as run.asset_events; a DAG
// waiting for all() of two assets runs only once both were updated, the second by an event
// posted from outside; posting that event again with its ID records nothing; and a new leader
// creates no second run from events already consumed.
func TestAssets(t *testing.T) {
	t.Parallel()
	s := newStack(t, engine.Config{})
	s.apply(`
dag "orders" {
  task "load" {
    command = "/bin/sh"
    args    = ["-c", "printf '{\"rows\": 3}' > \"$DAGFLOW_OUTPUT\""]
    outlets = ["warehouse.orders"]
  }
}

dag "report" {
  schedule_on = ["warehouse.orders"]
  task "print" {
    command = "/bin/echo"
    args    = ["${run.type}", "${run.asset_events}"]
  }
}

dag "joined" {
  schedule_on = all("warehouse.orders", any("raw.customers", "raw.vendors"))
  task "t" { command = "/bin/true" }
}
`)
	id := s.trigger("orders", nil)
	s.waitRun("orders", id, 2*time.Minute)

	var runs []*state.RunRecord
	s.eventually(time.Minute, "report triggered", func() bool { runs = s.runs("report"); return len(runs) > 0 })
	rec := s.waitRun("report", runs[0].Run.ID, 2*time.Minute)
	if rec.Run.Type != rules.RunAssetTriggered || !strings.HasPrefix(rec.Run.ID, "asset_triggered__") {
		t.Errorf("report run %s has type %s", rec.Run.ID, rec.Run.Type)
	}
	if len(rec.Run.AssetEvents) != 1 {
		t.Fatalf("report run recorded %d events, want 1: %+v", len(rec.Run.AssetEvents), rec.Run.AssetEvents)
	}
	ev := rec.Run.AssetEvents[0]
	if ev.Asset != "warehouse.orders" || ev.Seq != 1 || ev.DAG != "orders" || ev.RunID != id || ev.Task != "load" || string(ev.Outputs) != `{"rows":3}` {
		t.Errorf("triggering event: %+v", ev)
	}
	logs, err := s.store.Logs(context.Background(), "report", rec.Run.ID, "print", 1)
	if err != nil {
		t.Fatal(err)
	}
	out := strings.TrimSpace(string(logs.Stdout))
	typ, list, _ := strings.Cut(out, " ")
	var printed []state.AssetEvent
	if typ != "asset_triggered" || json.Unmarshal([]byte(list), &printed) != nil || len(printed) != 1 || printed[0].Seq != 1 || string(printed[0].Outputs) != `{"rows":3}` {
		t.Errorf("print wrote %q", out)
	}
	if n := len(s.runs("joined")); n != 0 {
		t.Errorf("joined has %d runs before raw.customers was updated", n)
	}

	emit := func(eventID string) *state.Result {
		res := s.request(&state.Request{Kind: state.RequestEmit, Asset: "raw.customers", Event: &state.AssetEvent{ID: eventID, Extra: json.RawMessage(`{"source":"crm"}`)}})
		if res.Error != "" {
			t.Fatalf("emit: %s", res.Error)
		}
		return res
	}
	if res := emit("crm-2026-12-07"); res.Duplicate || res.Event == nil || res.Event.Seq != 1 {
		t.Errorf("first emit: %+v", res)
	}
	s.eventually(time.Minute, "joined triggered", func() bool { runs = s.runs("joined"); return len(runs) > 0 })
	joined := s.waitRun("joined", runs[0].Run.ID, 2*time.Minute)
	if got := len(joined.Run.AssetEvents); got != 2 {
		t.Errorf("joined run recorded %d events, want 2: %+v", got, joined.Run.AssetEvents)
	}
	if res := emit("crm-2026-12-07"); !res.Duplicate || res.Event == nil || res.Event.Seq != 1 {
		t.Errorf("repeated emit: %+v", res)
	}

	// A new leader reads what was consumed: the next orders event triggers report once more,
	// and joined, whose raw.customers event was consumed, not at all.
	s.stop()
	s.start(engine.Config{})
	s.waitRun("orders", s.trigger("orders", nil), 2*time.Minute)
	s.eventually(time.Minute, "report triggered again", func() bool { return len(s.runs("report")) == 2 })
	time.Sleep(2 * time.Second) // steps that would create a run too many
	assets, err := s.store.Assets(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if a := assets["raw.customers"]; a == nil || a.Seq != 1 || len(a.Events) != 1 {
		t.Errorf("raw.customers after a repeated emit: %+v", a)
	}
	for dag, want := range map[string]int{"report": 2, "joined": 1} {
		if got := len(s.runs(dag)); got != want {
			t.Errorf("%s has %d runs after the leader changed, want %d", dag, got, want)
		}
	}
}
