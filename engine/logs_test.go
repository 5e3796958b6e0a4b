package engine_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/dagflow/dagflow/engine"
	"github.com/dagflow/dagflow/internal/devstack"
	"github.com/dagflow/dagflow/rules"
	"github.com/dagflow/dagflow/state"
)

// TestLogsOfManyTries: the output of every try of a 64-task fan-out is kept, when the engine
// talks to Nomad with a client built as the server builds it (nomadapi.DefaultConfig, Nomad's
// default HTTP client) and Nomad has its default limit of 100 connections per client address.
// It has a Nomad agent of its own, so what it does to that limit touches no other test.
func TestLogsOfManyTries(t *testing.T) {
	t.Parallel()
	n := devstack.StartNomadT(t, nil)
	nc := nomadapi.DefaultConfig()
	nc.Address = "http://" + n.HTTPAddr
	client, err := nomadapi.NewClient(nc)
	if err != nil {
		t.Fatal(err)
	}
	s := newStackWith(t, engine.Config{}, client, nil)
	const tasks = 64
	s.apply(fmt.Sprintf(`
dag "many" {
  start_date = "2026-01-01"
  task "t" {
    for_each = [for i in range(%d) : tostring(i)]
    command  = "/bin/sh"
    args     = ["-c", "echo out ${each.key}"]
  }
}
`, tasks))
	id := s.trigger("many", nil)
	rec := s.waitRun("many", id, 3*time.Minute)
	if rec.Run.State != state.RunSuccess || len(rec.Tasks) != tasks {
		t.Fatalf("run: %s", describe(rec))
	}
	var missing []string
	for i := range tasks {
		name := fmt.Sprintf("t[%d]", i)
		ti := rec.Tasks[name]
		if ti.State != rules.Success || len(ti.Tries) != 1 {
			t.Errorf("%s: %s with %d tries", name, ti.State, len(ti.Tries))
			continue
		}
		logs, err := s.store.Logs(context.Background(), "many", id, name, 1)
		if err != nil || !ti.Tries[0].Logs || string(logs.Stdout) != fmt.Sprintf("out %d\n", i) {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		t.Errorf("%d of %d tries have no stored output, or not their own: %q", len(missing), tasks, missing)
	}
}
