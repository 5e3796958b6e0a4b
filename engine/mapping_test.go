package engine_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dagflow/dagflow/engine"
	"github.com/dagflow/dagflow/rules"
	"github.com/dagflow/dagflow/state"
)

// mappingDAG lists what its param says in one task, processes each element in a task mapped
// over that list, and merges the instances' outputs in a third.
const mappingDAG = `
dag "%s" {
  start_date       = "2026-01-01"
  max_active_tasks = 2
  param "files" {
    type    = list(string)
    default = ["a.csv", "b.csv", "c.csv"]
  }
  task "list" {
    command = "/bin/sh"
    args    = ["-c", "echo \"{\\\"files\\\": $FILES}\" > \"$DAGFLOW_OUTPUT\""]
    env     = { FILES = "${params.files}" }
  }
  task "process" {
    for_each       = tasks.list.outputs.files
    max_map_length = 4
    command        = "/bin/sh"
    args           = ["-c", "sleep 1; echo \"{\\\"name\\\": \\\"$NAME\\\"}\" > \"$DAGFLOW_OUTPUT\""]
    env            = { NAME = "${each.key}=${each.value}" }
  }
  task "merge" {
    depends_on = ["process"]
    command    = "/bin/sh"
    args       = ["-c", "echo \"$NAMES\""]
    env        = { NAMES = "${tasks.process.outputs.name}" }
  }
}
`

// TestMapping: a task mapped over an upstream's list gets one instance per element, each run
// once with its each.key and each.value, at most max_active_tasks at a time; the downstream
// task waits for all of them and reads their outputs by instance key. An empty list skips the
// mapped task and, by all_success, its downstream; a list over max_map_length fails it before
// anything is submitted.
func TestMapping(t *testing.T) {
	t.Parallel()
	s := newStack(t, engine.Config{})
	s.apply(fmt.Sprintf(mappingDAG, "mapping"))

	id := s.trigger("mapping", nil)
	empty := s.trigger("mapping", map[string]any{"files": []string{}})
	over := s.trigger("mapping", map[string]any{"files": []string{"1", "2", "3", "4", "5"}})

	rec := s.waitRun("mapping", id, 2*time.Minute)
	if rec.Run.State != state.RunSuccess {
		t.Fatalf("run: %s", describe(rec))
	}
	p := rec.Tasks["process"]
	if p.State != rules.Success || !slices.Equal(p.MapKeys, []string{"0", "1", "2"}) || len(p.Tries) != 0 {
		t.Errorf("process: %s, keys %q, %d tries", p.State, p.MapKeys, len(p.Tries))
	}
	var spans [][2]time.Time
	for i, file := range []string{"a.csv", "b.csv", "c.csv"} {
		name := fmt.Sprintf("process[%d]", i)
		ti := rec.Tasks[name]
		if ti == nil || ti.State != rules.Success || len(ti.Tries) != 1 {
			t.Fatalf("%s: %s", name, describe(rec))
		}
		if got, want := string(ti.Tries[0].Outputs), fmt.Sprintf(`{"name":"%d=%s"}`, i, file); got != want {
			t.Errorf("%s published %s, want %s", name, got, want)
		}
		spans = append(spans, [2]time.Time{ti.Tries[0].StartedAt, ti.Tries[0].EndedAt})
	}
	if n := maxOverlap(spans); n > 2 {
		t.Errorf("%d instances ran at once, more than max_active_tasks 2", n)
	}
	logs, err := s.store.Logs(context.Background(), "mapping", id, "merge", 1)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(logs.Stdout); got != `{"0":"0=a.csv","1":"1=b.csv","2":"2=c.csv"}`+"\n" {
		t.Errorf("merge printed %q", got)
	}
	if first := rec.Tasks["merge"].Tries[0].StartedAt; first.Before(rec.Tasks["process[2]"].Tries[0].EndedAt) {
		t.Errorf("merge started at %s, before process[2] ended", first)
	}

	rec = s.waitRun("mapping", empty, 2*time.Minute)
	if st := states(rec); st["process"] != rules.Skipped || st["merge"] != rules.Skipped || len(rec.Tasks) != 3 {
		t.Errorf("empty list: %v", st)
	}
	if rec.Run.State != state.RunSuccess {
		t.Errorf("empty list: run %s", rec.Run.State)
	}

	rec = s.waitRun("mapping", over, 2*time.Minute)
	p = rec.Tasks["process"]
	if p.State != rules.Failed || rec.Tasks["merge"].State != rules.UpstreamFailed || len(rec.Tasks) != 3 {
		t.Errorf("over max_map_length: %s", describe(rec))
	}
	if want := "tasks.list.outputs.files has 5 elements, more than the task's max_map_length of 4"; !strings.Contains(p.Message, want) {
		t.Errorf("message %q, want it to contain %q", p.Message, want)
	}
	s.checkOneJobPerTry(s.runs("mapping")...)
}

// maxOverlap returns the most spans that overlap at one instant.
func maxOverlap(spans [][2]time.Time) int {
	most := 0
	for _, a := range spans {
		n := 0
		for _, b := range spans {
			if !b[0].After(a[0]) && b[1].After(a[0]) {
				n++
			}
		}
		most = max(most, n)
	}
	return most
}

// TestMappingClear: clearing one instance runs it alone again; clearing the mapped task runs
// every instance again, expanded anew, and its downstream after them.
func TestMappingClear(t *testing.T) {
	t.Parallel()
	s := newStack(t, engine.Config{})
	s.apply(fmt.Sprintf(mappingDAG, "remap"))
	id := s.trigger("remap", map[string]any{"files": []string{"x", "y"}})
	s.waitRun("remap", id, 2*time.Minute)

	if res := s.request(&state.Request{Kind: state.RequestClear, DAG: "remap", RunID: id, Task: "process[1]"}); res.Error != "" {
		t.Fatalf("clear process[1]: %s", res.Error)
	}
	rec := s.waitFor("remap", id, 2*time.Minute, "finished after clearing process[1]", func(r *state.RunRecord) bool {
		return r.Run.State.Finished() && len(r.Tasks["process[1]"].Tries) == 2
	})
	if n := len(rec.Tasks["process[0]"].Tries); n != 1 || rec.Run.State != state.RunSuccess {
		t.Errorf("after clearing process[1]: process[0] has %d tries: %s", n, describe(rec))
	}

	if res := s.request(&state.Request{Kind: state.RequestClear, DAG: "remap", RunID: id, Task: "process", Downstream: true}); res.Error != "" {
		t.Fatalf("clear process: %s", res.Error)
	}
	rec = s.waitFor("remap", id, 2*time.Minute, "finished after clearing process", func(r *state.RunRecord) bool {
		return r.Run.State.Finished() && len(r.Tasks["merge"].Tries) == 2
	})
	want := map[string]int{"list": 1, "process[0]": 2, "process[1]": 3, "merge": 2}
	for name, n := range want {
		if ti := rec.Tasks[name]; ti == nil || len(ti.Tries) != n || ti.State != rules.Success {
			t.Errorf("%s: want success after %d tries: %s", name, n, describe(rec))
		}
	}
	s.checkOneJobPerTry(rec)
}
