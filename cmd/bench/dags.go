package main

import (
	"fmt"
	"strings"

	"github.com/dagflow/dagflow/hcl/spec"
)

// noop is every bench task: a process that exits 0 at once, with the smallest resources, so
// that Nomad places as many at once as the node can start.
const noop = `  defaults {
    command = "/bin/true"
    resources {
      cpu    = 10
      memory = 16
    }
  }
`

// chainHCL is a DAG of n no-op tasks, each depending on the one before.
func chainHCL(name string, n int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "dag %q {\n%s", name, noop)
	for i := range n {
		fmt.Fprintf(&b, "  task %q {", taskName(i, n))
		if i > 0 {
			fmt.Fprintf(&b, "\n    depends_on = [%q]\n  ", taskName(i-1, n))
		}
		b.WriteString("}\n")
	}
	b.WriteString("}\n")
	return b.String()
}

// fanoutHCL is a DAG of n independent no-op tasks, all ready as soon as a run starts, with room
// for all of them to run at once.
func fanoutHCL(name string, n int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "dag %q {\n  max_active_tasks = %d\n%s", name, n, noop)
	for i := range n {
		fmt.Fprintf(&b, "  task %q {}\n", taskName(i, n))
	}
	b.WriteString("}\n")
	return b.String()
}

// idleHCL is a DAG of n tasks (one, then n-2 in parallel, then one) on a yearly schedule that
// has no run due for the rest of the year: applied, scheduled, and idle.
func idleHCL(name string, n int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "dag %q {\n  schedule   = \"@yearly\"\n  start_date = \"2026-01-01\"\n  catchup    = \"none\"\n%s", name, noop)
	last := taskName(n-1, n)
	var middle []string
	for i := range n {
		t := taskName(i, n)
		switch {
		case i == 0:
			fmt.Fprintf(&b, "  task %q {}\n", t)
		case i < n-1:
			fmt.Fprintf(&b, "  task %q { depends_on = [%q] }\n", t, taskName(0, n))
			middle = append(middle, fmt.Sprintf("%q", t))
		default:
			fmt.Fprintf(&b, "  task %q { depends_on = [%s] }\n", last, strings.Join(middle, ", "))
		}
	}
	b.WriteString("}\n")
	return b.String()
}

// taskName names task i of n so that names sort in task order.
func taskName(i, n int) string {
	return fmt.Sprintf("t%0*d", len(fmt.Sprint(n-1)), i)
}

// parseDAG parses src, which holds one DAG.
func parseDAG(src string) (*spec.DAG, error) {
	cfg, diags := spec.NewParser().LoadSource([]byte(src), "bench.hcl")
	if diags.HasErrors() {
		return nil, fmt.Errorf("parse bench DAG: %s", diags.Error())
	}
	if len(cfg.DAGs) != 1 {
		return nil, fmt.Errorf("parse bench DAG: %d DAGs, want 1", len(cfg.DAGs))
	}
	return cfg.DAGs[0], nil
}
