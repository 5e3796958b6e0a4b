package engine_test

import (
	"strings"
	"testing"
	"time"

	"github.com/dagflow/dagflow/engine"
	"github.com/dagflow/dagflow/rules"
	"github.com/dagflow/dagflow/state"
)

// TestGroups: the tasks of a group and of a mapped group run as Nomad jobs under their
// GROUP.TASK names, a task depending on a whole group starts only after every task of it
// ended, and a group task is cleared, with its downstream, by its full name.
func TestGroups(t *testing.T) {
	t.Parallel()
	s := newStack(t, engine.Config{})
	s.apply(`
dag "grouped" {
  defaults {
    command = "/bin/sh"
  }
  task "start" {
    args = ["-c", "true"]
  }
  group "load" {
    depends_on = ["start"]
    task "extract" {
      args = ["-c", "sleep 2"]
    }
    task "transform" {
      depends_on = ["extract"]
      args       = ["-c", "echo transform"]
    }
  }
  group "region" {
    for_each = ["eu", "us"]
    task "fetch" {
      args = ["-c", "echo fetch ${each.key}"]
    }
  }
  task "end" {
    depends_on = ["load", "region"]
    args       = ["-c", "true"]
  }
}
`)
	id := s.trigger("grouped", nil)
	rec := s.waitRun("grouped", id, 2*time.Minute)
	if rec.Run.State != state.RunSuccess {
		t.Fatalf("run: %s", describe(rec))
	}
	want := []string{"start", "load.extract", "load.transform", "region[eu].fetch", "region[us].fetch", "end"}
	if len(rec.Tasks) != len(want) {
		t.Errorf("task instances %v, want %v", keys(rec.Tasks), want)
	}
	for _, name := range want {
		ti := rec.Tasks[name]
		if ti == nil || ti.State != rules.Success || len(ti.Tries) != 1 {
			t.Errorf("%s: %+v, want one successful try", name, ti)
		}
	}
	end := rec.Tasks["end"].Current()
	for _, name := range want[1:5] {
		if up := rec.Tasks[name].Current(); end.StartedAt.Before(up.EndedAt) {
			t.Errorf("end started at %s, before %s ended at %s", end.StartedAt, name, up.EndedAt)
		}
	}
	if e, tr := rec.Tasks["load.extract"].Current(), rec.Tasks["load.transform"].Current(); tr.StartedAt.Before(e.EndedAt) {
		t.Errorf("load.transform started before load.extract, its sibling upstream, ended")
	}
	if job := rec.Tasks["region[eu].fetch"].Current().JobID; !strings.Contains(job, "region") || !strings.Contains(job, "fetch") {
		t.Errorf("region[eu].fetch ran as job %q", job)
	}

	res := s.request(&state.Request{Kind: state.RequestClear, DAG: "grouped", RunID: id, Task: "load.transform", Downstream: true})
	if res.Error != "" {
		t.Fatalf("clear load.transform: %s", res.Error)
	}
	rec = s.waitFor("grouped", id, 2*time.Minute, "finished after the clear", func(r *state.RunRecord) bool {
		return r.Run.State.Finished() && len(r.Tasks["end"].Tries) == 2
	})
	for name, n := range tries(rec) {
		w := 1
		if name == "load.transform" || name == "end" {
			w = 2
		}
		if n != w {
			t.Errorf("after clearing load.transform with downstream, %s has %d tries, want %d", name, n, w)
		}
	}
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
