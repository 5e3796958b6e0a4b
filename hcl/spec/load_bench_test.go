package spec_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dagflow/dagflow/hcl/spec"
)

// benchFiles writes n DAG files of ten tasks each, shaped as the bench's scale phase writes
// them (cmd/bench/dags.go: a yearly schedule, defaults, one task, eight after it, one after
// those), and returns their directory.
func benchFiles(b *testing.B, n int) string {
	b.Helper()
	dir := b.TempDir()
	for i := range n {
		name := fmt.Sprintf("scale_%05d", i)
		var src strings.Builder
		fmt.Fprintf(&src, "dag %q {\n  schedule   = \"@yearly\"\n  start_date = \"2026-01-01\"\n  catchup    = \"none\"\n", name)
		src.WriteString("  defaults {\n    command = \"/bin/true\"\n    resources {\n      cpu    = 10\n      memory = 16\n    }\n  }\n")
		src.WriteString("  task \"t0\" {}\n")
		var middle []string
		for t := 1; t <= 8; t++ {
			fmt.Fprintf(&src, "  task \"t%d\" { depends_on = [\"t0\"] }\n", t)
			middle = append(middle, fmt.Sprintf("%q", fmt.Sprintf("t%d", t)))
		}
		fmt.Fprintf(&src, "  task \"t9\" { depends_on = [%s] }\n}\n", strings.Join(middle, ", "))
		if err := os.WriteFile(filepath.Join(dir, name+spec.FileExt), []byte(src.String()), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	return dir
}

// BenchmarkLoad loads a directory of 1,000 DAG files of ten tasks, a tenth of issue 15's
// `dagflow plan` over 10,000.
func BenchmarkLoad(b *testing.B) {
	dir := benchFiles(b, 1000)
	b.ReportAllocs()
	for b.Loop() {
		cfg, diags := spec.NewParser().Load(dir)
		if diags.HasErrors() || len(cfg.DAGs) != 1000 {
			b.Fatalf("Load: %d DAGs, %s", len(cfg.DAGs), diags.Error())
		}
	}
}
