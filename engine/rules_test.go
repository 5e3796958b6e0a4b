package engine_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/dagflow/dagflow/engine"
	"github.com/dagflow/dagflow/rules"
	"github.com/dagflow/dagflow/state"
)

// TestTriggerRules runs one DAG per trigger rule. Each has five target tasks with that rule,
// one per combination of upstream outcomes, and checks what became of each, as Airflow
// decides it (docs "Trigger Rules", and TriggerRuleDep). Each target has an all_success task
// after it, which runs after a target that ran, and otherwise takes the target's state on; the
// run fails when one of those leaves is upstream_failed.
func TestTriggerRules(t *testing.T) {
	t.Parallel()
	const (
		S = rules.Success
		U = rules.UpstreamFailed
		K = rules.Skipped
	)
	// Upstream combinations: success+success, success+failed, success+skipped,
	// failed+failed, skipped+skipped.
	combos := []struct {
		name string
		deps string
	}{
		{"ss", `["ok1", "ok2"]`},
		{"sf", `["ok1", "bad1"]`},
		{"sk", `["ok1", "skip1"]`},
		{"ff", `["bad1", "bad2"]`},
		{"kk", `["skip1", "skip2"]`},
	}
	want := map[string][5]rules.State{
		"all_success":                 {S, U, K, U, K},
		"all_failed":                  {K, K, K, S, K},
		"all_done":                    {S, S, S, S, S},
		"one_success":                 {S, S, S, U, K},
		"one_failed":                  {K, S, K, S, K},
		"none_failed":                 {S, U, S, U, S},
		"none_failed_min_one_success": {S, U, S, U, K},
		"none_skipped":                {S, S, K, S, K},
		"always":                      {S, S, S, S, S},
	}
	var src strings.Builder
	for rule := range want {
		fmt.Fprintf(&src, `
dag %q {
  start_date = "2026-01-01"
  defaults {
    command = "/bin/sh"
    args    = ["-c", "true"]
  }
  task "ok1" {}
  task "ok2" {}
  task "bad1" { args = ["-c", "exit 3"] }
  task "bad2" { args = ["-c", "exit 3"] }
  task "skip1" {
    depends_on   = ["ok1"]
    trigger_rule = "all_failed"
  }
  task "skip2" {
    depends_on   = ["ok1"]
    trigger_rule = "all_failed"
  }
`, rule)
		for _, c := range combos {
			fmt.Fprintf(&src, "  task %q {\n    depends_on   = %s\n    trigger_rule = %q\n  }\n", c.name, c.deps, rule)
			fmt.Fprintf(&src, "  task %q { depends_on = [%q] }\n", c.name+"_after", c.name)
		}
		src.WriteString("}\n")
	}
	s := newStack(t, engine.Config{})
	s.apply(src.String())
	ids := map[string]string{}
	for rule := range want {
		ids[rule] = s.trigger(rule, nil)
	}
	for rule, expect := range want {
		t.Run(rule, func(t *testing.T) {
			rec := s.waitRun(rule, ids[rule], 2*time.Minute)
			got := states(rec)
			wantRun := state.RunSuccess
			for name, w := range map[string]rules.State{"ok1": S, "bad1": rules.Failed, "skip1": K} {
				if got[name] != w {
					t.Errorf("upstream %s is %q, want %q", name, got[name], w)
				}
			}
			for i, c := range combos {
				if got[c.name] != expect[i] {
					t.Errorf("%s with upstream %s: %q, want %q", rule, c.deps, got[c.name], expect[i])
				}
				ran := rec.Tasks[c.name] != nil && len(rec.Tasks[c.name].Tries) > 0
				if ran != (expect[i] == S) {
					t.Errorf("%s with upstream %s: ran = %v, want %v", rule, c.deps, ran, expect[i] == S)
				}
				// all_success after the target: success, upstream_failed or skipped as it.
				if after := got[c.name+"_after"]; after != expect[i] {
					t.Errorf("all_success task after the %s task with upstream %s: %q, want %q", rule, c.deps, after, expect[i])
				}
				if expect[i] == U {
					wantRun = state.RunFailed
				}
			}
			if rec.Run.State != wantRun {
				t.Errorf("run %s, want %s", rec.Run.State, wantRun)
			}
		})
	}
}
