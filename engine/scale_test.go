package engine_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/dagflow/dagflow/engine"
	"github.com/dagflow/dagflow/state"
)

// TestNewDAGAmongMany: with thousands of applied DAGs, none of them due, a DAG added by a
// later apply gets its scheduled run, and the others none.
func TestNewDAGAmongMany(t *testing.T) {
	t.Parallel()
	s := newStack(t, engine.Config{})
	var src strings.Builder
	for i := range 3000 {
		fmt.Fprintf(&src, "dag \"idle_%04d\" {\n  schedule = \"@yearly\"\n  start_date = \"2026-01-01\"\n  task \"a\" {\n    command = \"/bin/true\"\n  }\n}\n", i)
	}
	s.apply(src.String())
	// Past the time the leader takes to read 3,000 versions, the second apply is a change
	// it watches, not part of its first catalog.
	time.Sleep(2 * time.Second)
	src.WriteString(`
dag "newcomer" {
  schedule = "@every 1s"
  start_date = "2026-01-01"
  task "a" {
    command = "/bin/true"
  }
}
`)
	applied := time.Now()
	s.apply(src.String())
	s.eventually(60*time.Second, "the new DAG's first run succeeds", func() bool {
		for _, r := range s.runs("newcomer") {
			if r.Run.State == state.RunSuccess {
				return true
			}
		}
		return false
	})
	t.Logf("new DAG's first run succeeded %v after its apply", time.Since(applied).Round(time.Millisecond))
	s.pause("newcomer")
	if runs := s.runs("idle_0042"); len(runs) != 0 {
		t.Errorf("an idle DAG has %d runs, want none", len(runs))
	}
}
