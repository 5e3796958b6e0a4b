package chaos

import (
	"context"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/dagflow/dagflow/internal/netns"
	"github.com/dagflow/dagflow/internal/serverproc"
)

var (
	long       = flag.Bool("chaos.long", false, "run the long scenarios (make chaos) instead of the short ones")
	reportPath = flag.String("chaos.report", "", "write the report as JSON to this file")
	keepDir    = flag.String("chaos.dir", "", "keep logs and ledgers in this directory (default: a temp dir, removed)")
	reps       = flag.Int("chaos.reps", 0, "repetitions of each scenario (default: 1 short, 3 long)")
)

// TestChaos runs every scenario against real Consul, Nomad and dagflow server processes and
// fails unless every task instance executed exactly once, no run was lost and every run
// finished. The short version runs in `go test ./...`; -chaos.long is `make chaos`.
func TestChaos(t *testing.T) {
	p := Short
	if *long {
		p = Long
	}
	if *reps > 0 {
		p.Repetitions = *reps
	}
	dir := t.TempDir()
	if *keepDir != "" {
		dir = *keepDir
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	ctx := context.Background()
	bin, err := serverproc.Build(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	stack, err := StartStack(ctx, dir, bin)
	if err != nil {
		t.Fatalf("start consul and nomad: %v", err)
	}
	t.Cleanup(func() { stack.Close() })
	// The partition scenario's namespace and links go, however the scenario ended.
	t.Cleanup(netns.RemoveAll)

	report := &Report{Mode: p.Mode, StartedAt: time.Now().UTC()}
	if *keepDir != "" {
		report.Dir = dir
	}
	for _, sc := range Scenarios() {
		t.Run(sc.Name, func(t *testing.T) {
			res := Run(ctx, stack, sc, p, t.Logf)
			report.Results = append(report.Results, res)
			for _, problem := range res.Problems {
				t.Errorf("%s", problem)
			}
			if t.Failed() {
				logServers(t, filepath.Join(dir, sc.Name))
			}
		})
	}
	report.Finish()
	t.Logf("\n%s", report.Markdown())
	if *reportPath != "" {
		if err := report.WriteJSON(*reportPath); err != nil {
			t.Error(err)
		}
	}
}

// logServers logs the last lines of every server log in dir.
func logServers(t *testing.T, dir string) {
	logs, _ := filepath.Glob(filepath.Join(dir, "server-*.log"))
	for _, path := range logs {
		b, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		if len(b) > 8000 {
			b = b[len(b)-8000:]
		}
		t.Logf("%s (last bytes):\n%s", path, b)
	}
}
