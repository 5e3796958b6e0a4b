package chaos

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/dagflow/dagflow/api"
	"github.com/dagflow/dagflow/hcl/spec"
)

func TestCheck(t *testing.T) {
	code := func(c int) *int { return &c }
	run := func(id, state string, tasks ...api.TaskInstance) *api.Run {
		return &api.Run{RunStub: api.RunStub{DAG: "chaos", ID: id, State: state}, Tasks: tasks}
	}
	ok := func(task string, allocs ...string) api.TaskInstance {
		ti := api.TaskInstance{Task: task, State: "success"}
		for i, a := range allocs {
			st := "failed"
			if i == len(allocs)-1 {
				st = "success"
			}
			ti.Tries = append(ti.Tries, api.Try{Try: i + 1, State: st, AllocID: a, ExitCode: code(0)})
		}
		return ti
	}
	start := func(run, task string, try int, alloc string) Start {
		return Start{DAG: "chaos", Run: run, Task: task, Try: try, Alloc: alloc}
	}
	tests := map[string]struct {
		ids      []string
		runs     map[string]*api.Run
		starts   []Start
		want     Counts
		problems []string // substrings, one per problem, in order
	}{
		"exactly once": {
			ids:    []string{"r1"},
			runs:   map[string]*api.Run{"r1": run("r1", "success", ok("a", "x"), ok("b", "y1", "y2"))},
			starts: []Start{start("r1", "a", 1, "x"), start("r1", "b", 1, "y1"), start("r1", "b", 2, "y2"), start("other", "a", 1, "z")},
			want:   Counts{Runs: 1, RunsFinished: 1, RunsSucceeded: 1, TaskInstances: 2, Tries: 3, LedgerStarts: 3},
		},
		"a try started twice": {
			ids:      []string{"r1"},
			runs:     map[string]*api.Run{"r1": run("r1", "success", ok("a", "x"))},
			starts:   []Start{start("r1", "a", 1, "x"), start("r1", "a", 1, "x2")},
			want:     Counts{Runs: 1, RunsFinished: 1, RunsSucceeded: 1, TaskInstances: 1, Tries: 1, LedgerStarts: 2, Duplicates: 1},
			problems: []string{"r1 a try 1 started 2 times"},
		},
		"a start of a try dagflow does not know": {
			ids:      []string{"r1"},
			runs:     map[string]*api.Run{"r1": run("r1", "success", ok("a", "x"))},
			starts:   []Start{start("r1", "a", 1, "x"), start("r1", "a", 2, "x2")},
			want:     Counts{Runs: 1, RunsFinished: 1, RunsSucceeded: 1, TaskInstances: 1, Tries: 1, LedgerStarts: 2, Duplicates: 1},
			problems: []string{"r1 a try 2 started (allocations [x2]) but dagflow has no such try"},
		},
		"a try recorded as run that never started": {
			ids:      []string{"r1"},
			runs:     map[string]*api.Run{"r1": run("r1", "success", ok("a", "x"))},
			want:     Counts{Runs: 1, RunsFinished: 1, RunsSucceeded: 1, TaskInstances: 1, Tries: 1, Losses: 1},
			problems: []string{"r1 a try 1 is recorded success"},
		},
		"a try that vanished before it ran may have no start": {
			ids: []string{"r1"},
			runs: map[string]*api.Run{"r1": run("r1", "success", api.TaskInstance{Task: "a", State: "success", Tries: []api.Try{
				{Try: 1, State: "failed", Message: "its Nomad job vanished while it ran"},
				{Try: 2, State: "success", AllocID: "x", ExitCode: code(0)},
			}})},
			starts: []Start{start("r1", "a", 2, "x")},
			want:   Counts{Runs: 1, RunsFinished: 1, RunsSucceeded: 1, TaskInstances: 1, Tries: 2, LedgerStarts: 1},
		},
		"another allocation than recorded": {
			ids:      []string{"r1"},
			runs:     map[string]*api.Run{"r1": run("r1", "success", ok("a", "x"))},
			starts:   []Start{start("r1", "a", 1, "other")},
			want:     Counts{Runs: 1, RunsFinished: 1, RunsSucceeded: 1, TaskInstances: 1, Tries: 1, LedgerStarts: 1},
			problems: []string{"ran as allocation other, but dagflow recorded allocation x"},
		},
		"runs lost, stuck and failed": {
			ids: []string{"gone", "stuck", "bad"},
			runs: map[string]*api.Run{
				"stuck": run("stuck", "running"),
				"bad":   run("bad", "failed", api.TaskInstance{Task: "a", State: "failed", Tries: []api.Try{{Try: 1, State: "failed", AllocID: "x", ExitCode: code(1), Message: "exit code 1"}}}),
			},
			starts:   []Start{start("bad", "a", 1, "x")},
			want:     Counts{Runs: 3, RunsFinished: 1, TaskInstances: 1, Tries: 1, LedgerStarts: 1, Losses: 2},
			problems: []string{"run gone was triggered but never created", "run stuck never finished", "run bad failed: [a failed after 1 tries: exit code 1]"},
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			got, problems := Check("chaos", tt.ids, tt.runs, tt.starts)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("counts (-want +got):\n%s", diff)
			}
			if len(problems) != len(tt.problems) {
				t.Fatalf("problems = %q, want %d", problems, len(tt.problems))
			}
			for i, p := range problems {
				if !strings.Contains(p, tt.problems[i]) {
					t.Errorf("problem %d = %q, want it to say %q", i, p, tt.problems[i])
				}
			}
		})
	}
}

func TestLedger(t *testing.T) {
	l, err := NewLedger(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(l.Path(), []byte("chaos\tmanual__1\tt1[l000]\t2\talloc-1\n"), 0o666); err != nil {
		t.Fatal(err)
	}
	starts, err := l.Starts()
	if err != nil {
		t.Fatal(err)
	}
	want := []Start{{DAG: "chaos", Run: "manual__1", Task: "t1[l000]", Try: 2, Alloc: "alloc-1"}}
	if diff := cmp.Diff(want, starts); diff != "" {
		t.Errorf("starts (-want +got):\n%s", diff)
	}

	f, err := os.OpenFile(l.Path(), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("torn line\n")
	f.Close()
	if _, err := l.Starts(); err == nil || !strings.Contains(err.Error(), "malformed") {
		t.Errorf("Starts of a ledger with a torn line: %v, want an error saying so", err)
	}
}

func TestDAGSource(t *testing.T) {
	l := &Ledger{path: filepath.Join(t.TempDir(), "ledger.tsv")}
	d := DAG{Name: "chaos", Lanes: 3, Depth: 4, Sleep: 1500 * time.Millisecond}
	cfg, diags := spec.NewParser().LoadSource([]byte(d.Source(l)), "chaos.hcl")
	if diags.HasErrors() {
		t.Fatalf("the chaos DAG does not load: %s", diags.Error())
	}
	dag := cfg.DAGs[0]
	if got := len(dag.Tasks); got != d.Tasks() {
		t.Errorf("%d tasks, want %d", got, d.Tasks())
	}
	for _, task := range dag.Tasks {
		if task.Name == "t2[l001]" && (len(task.DependsOn) != 1 || task.DependsOn[0] != "t1[l001]") {
			t.Errorf("t2[l001] depends on %q, want t1[l001]", task.DependsOn)
		}
		if script := task.Args[len(task.Args)-1]; !strings.HasPrefix(script, l.Command()) || !strings.HasSuffix(script, "sleep 1.5") {
			t.Errorf("task %s runs %q: want the ledger command, then sleep 1.5", task.Name, script)
		}
	}
}
