package engine_test

import (
	"strings"
	"testing"
	"time"

	"github.com/dagflow/dagflow/engine"
	"github.com/dagflow/dagflow/rules"
	"github.com/dagflow/dagflow/state"
)

// TestShapes runs a linear, a diamond and a fan-out/fan-in DAG to success, each task starting
// only after everything it depends on ended.
func TestShapes(t *testing.T) {
	t.Parallel()
	s := newStack(t, engine.Config{})
	cfg := s.apply(`
dag "linear" {
  start_date = "2026-01-01"
  defaults {
    command = "/bin/sh"
    args    = ["-c", "true"]
  }
  task "a" {}
  task "b" { depends_on = ["a"] }
  task "c" { depends_on = ["b"] }
}
dag "diamond" {
  start_date = "2026-01-01"
  defaults {
    command = "/bin/sh"
    args    = ["-c", "true"]
  }
  task "top" {}
  task "left" { depends_on = ["top"] }
  task "right" { depends_on = ["top"] }
  task "bottom" { depends_on = ["left", "right"] }
}
dag "fan" {
  start_date = "2026-01-01"
  defaults {
    command = "/bin/sh"
    args    = ["-c", "true"]
  }
  task "split" {}
  task "work" {
    for_each = ["a", "b", "c", "d", "e"]
    depends_on = ["split"]
  }
  task "join" { depends_on = ["work"] }
}
`)
	ids := map[string]string{}
	for _, d := range cfg.DAGs {
		ids[d.Name] = s.trigger(d.Name, nil)
	}
	for _, d := range cfg.DAGs {
		rec := s.waitRun(d.Name, ids[d.Name], 2*time.Minute)
		if rec.Run.State != state.RunSuccess {
			t.Errorf("%s: run %s, want success:\n%s", d.Name, rec.Run.State, describe(rec))
		}
		if len(rec.Tasks) != len(d.Tasks) {
			t.Errorf("%s: %d task instances, want %d", d.Name, len(rec.Tasks), len(d.Tasks))
		}
		for _, task := range d.Tasks {
			ti := rec.Tasks[task.Name]
			if ti == nil || ti.State != rules.Success || len(ti.Tries) != 1 {
				t.Errorf("%s.%s: %+v, want one successful try", d.Name, task.Name, ti)
				continue
			}
			for _, up := range task.DependsOn {
				if u := rec.Tasks[up]; u != nil && ti.Tries[0].StartedAt.Before(u.Tries[0].EndedAt) {
					t.Errorf("%s.%s started at %s, before %s ended at %s", d.Name, task.Name, ti.Tries[0].StartedAt, up, u.Tries[0].EndedAt)
				}
			}
			if !strings.HasPrefix(ti.Tries[0].JobID, s.exec.Prefix()) {
				t.Errorf("%s.%s: job ID %q outside the prefix", d.Name, task.Name, ti.Tries[0].JobID)
			}
		}
	}
}
