package engine_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/dagflow/dagflow/engine"
	"github.com/dagflow/dagflow/rules"
	"github.com/dagflow/dagflow/state"
)

// TestOutputs: a task's outputs file is read when its try succeeds and stored with the try,
// and a downstream task's command renders them; a key nobody published fails the downstream
// try with the keys that exist; outputs that are not a JSON object, or too large, fail the
// try that wrote them although it exited 0.
func TestOutputs(t *testing.T) {
	t.Parallel()
	s := newStack(t, engine.Config{})
	s.apply(`
dag "outputs" {
  start_date = "2026-01-01"
  task "list" {
    command = "/bin/sh"
    args    = ["-c", "printf '{\"files\": [\"a.csv\", \"b.csv\"], \"count\": 2}' > \"$DAGFLOW_OUTPUT\""]
  }
  task "merge" {
    depends_on = ["list"]
    command    = "/bin/sh"
    args       = ["-c", "echo \"files=$FILES count=${tasks.list.outputs.count}\""]
    env        = { FILES = "${tasks.list.outputs.files}" }
  }
  task "typo" {
    depends_on = ["list"]
    command    = "/bin/echo"
    args       = ["${tasks.list.outputs.file}"]
  }
  task "none" {
    command = "/bin/true"
  }
  task "array" {
    command = "/bin/sh"
    args    = ["-c", "echo '[1, 2]' > \"$DAGFLOW_OUTPUT\""]
  }
  task "big" {
    command = "/bin/sh"
    args    = ["-c", "head -c 70000 /dev/zero | tr '\\0' x > \"$DAGFLOW_OUTPUT\""]
  }
}
`)
	id := s.trigger("outputs", nil)
	rec := s.waitRun("outputs", id, 2*time.Minute)

	want := map[string]rules.State{
		"list": rules.Success, "merge": rules.Success, "typo": rules.Failed,
		"none": rules.Success, "array": rules.Failed, "big": rules.Failed,
	}
	for name, st := range want {
		if got := rec.Tasks[name].State; got != st {
			t.Errorf("%s: %s, want %s", name, got, st)
		}
	}
	if got := string(rec.Tasks["list"].Tries[0].Outputs); got != `{"files":["a.csv","b.csv"],"count":2}` {
		t.Errorf("outputs of list: %s", got)
	}
	if out := rec.Tasks["none"].Tries[0].Outputs; out != nil {
		t.Errorf("outputs of a task that wrote none: %s", out)
	}
	logs, err := s.store.Logs(context.Background(), "outputs", id, "merge", 1)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(logs.Stdout); got != "files=[\"a.csv\",\"b.csv\"] count=2\n" {
		t.Errorf("merge printed %q", got)
	}
	for name, msg := range map[string]string{
		"typo":  `cannot build the job: tasks.list.outputs.file: task "list" published no output "file", only "count", "files". Did you mean "files"?`,
		"array": "its outputs (the file DAGFLOW_OUTPUT names) are JSON, but not an object",
		"big":   "larger than the limit of 65536 bytes",
	} {
		try := rec.Tasks[name].Tries[0]
		if !strings.Contains(try.Message, msg) {
			t.Errorf("%s: message %q, want it to contain %q", name, try.Message, msg)
		}
		if try.Outputs != nil {
			t.Errorf("%s: outputs kept: %s", name, try.Outputs)
		}
	}
	if code := rec.Tasks["array"].Tries[0].ExitCode; code == nil || *code != 0 {
		t.Errorf("array: exit code %v, want 0: the outputs fail the try, not the exit code", code)
	}
	if rec.Run.State != state.RunFailed {
		t.Errorf("run %s, want failed", rec.Run.State)
	}
}

// TestOutputsAcrossFailover: outputs of a try that ended while no engine ran are read by the
// next one, stored once, and reach the downstream task.
func TestOutputsAcrossFailover(t *testing.T) {
	t.Parallel()
	cfg := engine.Config{PurgeAfter: time.Hour}
	s := newStack(t, cfg)
	s.apply(`
dag "handover" {
  start_date = "2026-01-01"
  task "a" {
    command = "/bin/sh"
    args    = ["-c", "sleep 2; echo '{\"n\": 7}' > \"$DAGFLOW_OUTPUT\""]
  }
  task "b" {
    depends_on = ["a"]
    command    = "/bin/echo"
    args       = ["n=${tasks.a.outputs.n}"]
  }
}
`)
	id := s.trigger("handover", nil)
	s.waitFor("handover", id, time.Minute, "a running", func(r *state.RunRecord) bool {
		return r.Tasks["a"] != nil && r.Tasks["a"].State == rules.Running
	})
	s.stop()
	time.Sleep(4 * time.Second) // a ends meanwhile
	s.start(cfg)
	rec := s.waitRun("handover", id, time.Minute)
	if rec.Run.State != state.RunSuccess {
		t.Fatalf("run: %s", describe(rec))
	}
	a := rec.Tasks["a"]
	if len(a.Tries) != 1 || string(a.Tries[0].Outputs) != `{"n":7}` {
		t.Errorf("a: %s", describe(rec))
	}
	logs, err := s.store.Logs(context.Background(), "handover", id, "b", 1)
	if err != nil || string(logs.Stdout) != "n=7\n" {
		t.Errorf("b printed %v, %v", logs, err)
	}
	s.checkOneJobPerTry(rec)
}
