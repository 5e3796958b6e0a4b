package spec_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/dagflow/dagflow/hcl/spec"
)

// TestQueuedLimit: a task's queued_timeout, from the task or its DAG's defaults, or the
// default; "0s" waits for ever. A DAG without queued_timeout keeps the hash it had before the
// setting existed.
func TestQueuedLimit(t *testing.T) {
	cfg, diags := spec.NewParser().LoadSource([]byte(`
dag "q" {
  defaults {
    queued_timeout = "2m"
  }
  task "inherits" {
    command = "/bin/true"
  }
  task "own" {
    command        = "/bin/true"
    queued_timeout = "30s"
  }
  task "never" {
    command        = "/bin/true"
    queued_timeout = "0s"
  }
}
dag "plain" {
  task "a" {
    command = "/bin/true"
  }
}
`), "q.hcl")
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	want := map[string]time.Duration{"q.inherits": 2 * time.Minute, "q.own": 30 * time.Second, "q.never": 0, "plain.a": spec.DefaultQueuedTimeout}
	for _, d := range cfg.DAGs {
		for _, task := range d.Tasks {
			name := d.Name + "." + task.Name
			if got := task.QueuedLimit(); got != want[name] {
				t.Errorf("%s: QueuedLimit() = %s, want %s", name, got, want[name])
			}
		}
	}
	plain := cfg.DAGs[0]
	if plain.Name != "plain" {
		plain = cfg.DAGs[1]
	}
	b, err := json.Marshal(plain)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(b); strings.Contains(got, "queued_timeout") {
		t.Errorf("a DAG without queued_timeout has it in its JSON, which changes its hash: %s", got)
	}
}
