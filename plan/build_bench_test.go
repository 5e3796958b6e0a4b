package plan_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/dagflow/dagflow/hcl/spec"
	"github.com/dagflow/dagflow/plan"
	"github.com/dagflow/dagflow/state/statetest"
)

// benchConfig decodes n DAGs of ten tasks, shaped as the bench's scale phase writes them
// (cmd/bench/dags.go: a yearly schedule, defaults, one task, eight after it, one after those).
func benchConfig(b *testing.B, n int) *spec.Config {
	b.Helper()
	var src strings.Builder
	for i := range n {
		fmt.Fprintf(&src, "dag \"scale_%05d\" {\n  schedule   = \"@yearly\"\n  start_date = \"2026-01-01\"\n  catchup    = \"none\"\n", i)
		src.WriteString("  defaults {\n    command = \"/bin/true\"\n    resources {\n      cpu    = 10\n      memory = 16\n    }\n  }\n")
		src.WriteString("  task \"t0\" {}\n")
		var middle []string
		for t := 1; t <= 8; t++ {
			fmt.Fprintf(&src, "  task \"t%d\" { depends_on = [\"t0\"] }\n", t)
			middle = append(middle, fmt.Sprintf("\"t%d\"", t))
		}
		fmt.Fprintf(&src, "  task \"t9\" { depends_on = [%s] }\n}\n", strings.Join(middle, ", "))
	}
	cfg, diags := spec.NewParser().LoadSource([]byte(src.String()), "bench.hcl")
	if diags.HasErrors() {
		b.Fatal(diags.Error())
	}
	return cfg
}

// BenchmarkBuildUnchanged plans 1,000 DAGs of ten tasks against a store where they are all
// applied already: `dagflow plan` with no changes, after loading the files (BenchmarkLoad in
// hcl/spec measures that part).
func BenchmarkBuildUnchanged(b *testing.B) {
	newStore, _, _ := statetest.Stores(b)
	s := newStore(b)
	ctx := context.Background()
	cfg := benchConfig(b, 1000)
	base, err := s.Catalog(ctx)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := s.Apply(ctx, base, cfg.DAGs, cfg.Queues, time.Now()); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		p, err := plan.Build(ctx, cfg, s, nil, time.Now())
		if err != nil {
			b.Fatal(err)
		}
		if !p.Empty() {
			b.Fatalf("plan has %d changes, want none", len(p.Changes))
		}
	}
}
