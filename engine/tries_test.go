package engine_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/dagflow/dagflow/engine"
	"github.com/dagflow/dagflow/rules"
	"github.com/dagflow/dagflow/state"
)

// TestRetriesAndTimeout: a task that fails once succeeds on its retry after the delay; a task
// that always fails exhausts its retries and fails its downstream; a task over its timeout is
// stopped and fails.
func TestRetriesAndTimeout(t *testing.T) {
	t.Parallel()
	s := newStack(t, engine.Config{})
	s.apply(`
dag "flaky" {
  start_date = "2026-01-01"
  task "a" {
    command     = "/bin/sh"
    args        = ["-c", "test \"$DAGFLOW_TRY\" -ge 2"]
    retries     = 2
    retry_delay = "1s"
  }
}
dag "broken" {
  start_date = "2026-01-01"
  task "a" {
    command     = "/bin/sh"
    args        = ["-c", "echo failing; exit 4"]
    retries     = 1
    retry_delay = "1s"
  }
  task "after" {
    command    = "/bin/true"
    depends_on = ["a"]
  }
}
dag "slow" {
  start_date = "2026-01-01"
  task "a" {
    command = "/bin/sleep"
    args    = ["60"]
    timeout = "2s"
  }
}
`)
	flaky, broken, slow := s.trigger("flaky", nil), s.trigger("broken", nil), s.trigger("slow", nil)

	rec := s.waitRun("flaky", flaky, 2*time.Minute)
	a := rec.Tasks["a"]
	if rec.Run.State != state.RunSuccess || a.State != rules.Success || len(a.Tries) != 2 {
		t.Fatalf("flaky: %s", describe(rec))
	}
	if a.Tries[0].State != rules.Failed || a.Tries[1].State != rules.Success || a.Tries[0].JobID == a.Tries[1].JobID {
		t.Errorf("flaky tries: %+v", a.Tries)
	}
	if gap := a.Tries[1].QueuedAt.Sub(a.Tries[0].EndedAt); gap < time.Second {
		t.Errorf("retry queued %s after the failure, want at least retry_delay 1s", gap)
	}
	if a.Tries[0].ExitCode == nil || *a.Tries[0].ExitCode != 1 {
		t.Errorf("first try exit code %v, want 1", a.Tries[0].ExitCode)
	}

	rec = s.waitRun("broken", broken, 2*time.Minute)
	got := states(rec)
	if rec.Run.State != state.RunFailed || got["a"] != rules.Failed || got["after"] != rules.UpstreamFailed || len(rec.Tasks["a"].Tries) != 2 {
		t.Errorf("broken: %s", describe(rec))
	}
	if m := rec.Tasks["a"].Tries[1].Message; m != "exit code 4" {
		t.Errorf("broken try message %q, want \"exit code 4\"", m)
	}
	logs, err := s.store.Logs(context.Background(), "broken", broken, "a", 2)
	if err != nil || string(logs.Stdout) != "failing\n" {
		t.Errorf("logs of the failed try: %+v, %v", logs, err)
	}

	rec = s.waitRun("slow", slow, 2*time.Minute)
	try := rec.Tasks["a"].Tries
	if rec.Run.State != state.RunFailed || len(try) != 1 || try[0].State != rules.Failed || !strings.Contains(try[0].Message, "timed out after 2s") {
		t.Fatalf("slow: %s", describe(rec))
	}
	// Stopped, not left to sleep its 60 s: the bound is far above the timeout, far below 60 s.
	if ran := try[0].EndedAt.Sub(try[0].StartedAt); try[0].StartedAt.IsZero() || ran < 2*time.Second || ran > 30*time.Second {
		t.Errorf("timed-out try ran %s (from %s to %s), want it stopped after its 2s timeout", ran, try[0].StartedAt, try[0].EndedAt)
	}
	if took := rec.Run.EndedAt.Sub(rec.Run.CreatedAt); took > 40*time.Second {
		t.Errorf("timed-out run took %s from its creation to its end, want it well before the task's 60 s", took)
	}
}

// TestTriggerParams: a manual trigger's param reaches the task's args and env, with the
// DAGFLOW_ variables; a bad param is refused with its name and creates no run.
func TestTriggerParams(t *testing.T) {
	t.Parallel()
	s := newStack(t, engine.Config{})
	s.apply(`
dag "greet" {
  start_date = "2026-01-01"
  param "greeting" {
    type    = string
    default = "hello"
  }
  param "times" {
    type    = number
    default = 1
  }
  task "say" {
    command = "/bin/sh"
    args    = ["-c", "echo \"arg=$1 env=$GREETING times=$TIMES dag=$DAGFLOW_DAG run=$DAGFLOW_RUN_ID task=$DAGFLOW_TASK try=$DAGFLOW_TRY date=$DAGFLOW_LOGICAL_DATE\"", "--", "${params.greeting}"]
    env = {
      GREETING = "${params.greeting} from env"
      TIMES    = "${params.times}"
    }
  }
}
`)
	id := s.trigger("greet", map[string]any{"greeting": "bonjour <b>", "times": 3})
	rec := s.waitRun("greet", id, 2*time.Minute)
	if rec.Run.State != state.RunSuccess {
		t.Fatalf("run: %s", describe(rec))
	}
	logs, err := s.store.Logs(context.Background(), "greet", id, "say", 1)
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("arg=bonjour <b> env=bonjour <b> from env times=3 dag=greet run=%s task=say try=1 date=%s\n",
		id, rec.Run.LogicalDate.UTC().Format(time.RFC3339))
	if string(logs.Stdout) != want {
		t.Errorf("task output\n got %q\nwant %q", logs.Stdout, want)
	}

	before := len(s.runs("greet"))
	res := s.request(&state.Request{Kind: state.RequestTrigger, DAG: "greet", RunID: rules.RunID(rules.RunManual, time.Now()),
		Params: map[string]json.RawMessage{"times": json.RawMessage(`"many"`), "greting": json.RawMessage(`"x"`)}})
	for _, w := range []string{`param "greting": the DAG has no such param. Did you mean "greeting"?`, `param "times": want a number`} {
		if !strings.Contains(res.Error, w) {
			t.Errorf("bad trigger error %q lacks %q", res.Error, w)
		}
	}
	if after := len(s.runs("greet")); after != before {
		t.Errorf("a refused trigger created a run: %d runs, had %d", after, before)
	}
}
