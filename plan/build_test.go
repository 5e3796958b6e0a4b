package plan_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/dagflow/dagflow/hcl/spec"
	"github.com/dagflow/dagflow/internal/devstack"
	"github.com/dagflow/dagflow/plan"
	"github.com/dagflow/dagflow/schedule"
	"github.com/dagflow/dagflow/state"
	"github.com/dagflow/dagflow/state/statetest"
)

// now is fixed so catch-up counts are exact: three whole days after start.
var (
	now   = time.Date(2026, 11, 23, 10, 30, 0, 0, time.UTC)
	start = time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
)

func day(n int) time.Time { return start.AddDate(0, 0, n) }

func mustBuild(t *testing.T, local *spec.Config, s *state.Store, nomad *nomadapi.Client) *plan.Plan {
	t.Helper()
	p, err := plan.Build(context.Background(), local, s, nomad, now)
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	return p
}

func mustApplyPlan(t *testing.T, s *state.Store, p *plan.Plan) *state.Catalog {
	t.Helper()
	c, err := s.Apply(context.Background(), p.Base, p.Local.DAGs, p.Local.Queues, now)
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	return c
}

func scheduled(name, catchup string, edits ...func(*spec.DAG)) *spec.DAG {
	return dag(name, append([]func(*spec.DAG){func(d *spec.DAG) {
		d.StartDate = start
		d.Catchup = catchup
	}}, edits...)...)
}

func TestBuild(t *testing.T) {
	newStore, _, client := statetest.Stores(t)
	ctx := context.Background()

	t.Run("new DAGs and their catch-up runs", func(t *testing.T) {
		s := newStore(t)
		local := config([]*spec.DAG{
			scheduled("daily", spec.CatchupAll),
			scheduled("latest", spec.CatchupLatest),
			scheduled("none", spec.CatchupNone),
			scheduled("paused", spec.CatchupAll, func(d *spec.DAG) { d.Paused = true }),
			scheduled("manual", spec.CatchupAll, func(d *spec.DAG) { d.Schedule = "" }),
			scheduled("ended", spec.CatchupAll, func(d *spec.DAG) { d.EndDate = day(1) }),
		}, queue("default"))
		p := mustBuild(t, local, s, nil)

		var actions []string
		for _, c := range p.Changes {
			actions = append(actions, fmt.Sprintf("%s %s.%s", c.Action, c.Kind, c.Name))
		}
		wantActions := []string{
			"create queue.default",
			"create dag.daily", "create dag.ended", "create dag.latest", "create dag.manual", "create dag.none", "create dag.paused",
		}
		if diff := cmp.Diff(wantActions, actions); diff != "" {
			t.Errorf("changes (-want +got):\n%s", diff)
		}

		iv := func(n int) schedule.Interval { return schedule.Interval{Start: day(n), End: day(n + 1)} }
		wantBacklogs := []plan.Backlog{
			{DAG: "daily", Catchup: spec.CatchupAll, Backlog: schedule.Backlog{Count: 3, First: iv(0), Last: iv(2)}},
			{DAG: "ended", Catchup: spec.CatchupAll, Backlog: schedule.Backlog{Count: 2, First: iv(0), Last: iv(1)}},
			{DAG: "latest", Catchup: spec.CatchupLatest, Backlog: schedule.Backlog{Count: 1, First: iv(2), Last: iv(2)}},
		}
		if diff := cmp.Diff(wantBacklogs, p.Backlogs); diff != "" {
			t.Errorf("backlogs (-want +got):\n%s", diff)
		}
		if len(p.Warnings) != 0 {
			t.Errorf("warnings without a Nomad client: %q", p.Warnings)
		}
		if p.Base == nil || p.Base.Index != 0 {
			t.Errorf("Base = %+v, want the empty catalog", p.Base)
		}
	})

	t.Run("applied plan leaves no changes", func(t *testing.T) {
		s := newStore(t)
		local := config([]*spec.DAG{scheduled("daily", spec.CatchupAll), dag("other")}, queue("default"), queue("gpu"))
		applied := mustApplyPlan(t, s, mustBuild(t, local, s, nil))
		again := mustBuild(t, local, s, nil)
		if !again.Empty() || len(again.Backlogs) != 0 {
			t.Errorf("plan after apply has changes %+v and backlogs %+v", again.Changes, again.Backlogs)
		}
		if again.Base.Index != applied.Index {
			t.Errorf("Base.Index = %d, want the applied catalog's %d", again.Base.Index, applied.Index)
		}
	})

	t.Run("only changed definitions are read", func(t *testing.T) {
		s := newStore(t)
		a, b := dag("a"), dag("b")
		applied := mustApplyPlan(t, s, mustBuild(t, config([]*spec.DAG{a, b}, queue("default")), s, nil))
		// Without b's stored version, planning still works as long as b is unchanged: proof
		// that unchanged definitions are compared by hash, not read.
		if _, err := client.KV().Delete(s.Prefix()+"dags/b/versions/"+applied.DAGs["b"].Version, nil); err != nil {
			t.Fatal(err)
		}
		editedA := dag("a", editTask("load", func(t *spec.Task) { t.Retries = 5 }))
		p := mustBuild(t, config([]*spec.DAG{editedA, b}, queue("default")), s, nil)
		want := []plan.Change{{Kind: "dag", Name: "a", Action: plan.ActionUpdate, Attrs: []plan.AttrChange{
			{Path: []string{"task", "load", "retries"}, Before: 2.0, After: 5.0},
		}}}
		if diff := cmp.Diff(want, p.Changes); diff != "" {
			t.Errorf("changes (-want +got):\n%s", diff)
		}

		// Removing b needs nothing stored either.
		p = mustBuild(t, config([]*spec.DAG{a}, queue("default")), s, nil)
		want = []plan.Change{{Kind: "dag", Name: "b", Action: plan.ActionDelete}}
		if diff := cmp.Diff(want, p.Changes); diff != "" {
			t.Errorf("changes (-want +got):\n%s", diff)
		}

		editedB := dag("b", func(d *spec.DAG) { d.Schedule = "@hourly" })
		if _, err := plan.Build(ctx, config([]*spec.DAG{a, editedB}, queue("default")), s, nil, now); !errors.Is(err, state.ErrNotFound) {
			t.Errorf("Build with b changed and its version missing: error = %v, want ErrNotFound", err)
		}
	})

	t.Run("queue updated and removed", func(t *testing.T) {
		s := newStore(t)
		mustApplyPlan(t, s, mustBuild(t, config(nil, queue("default"), queue("gpu"), queue("old")), s, nil))
		p := mustBuild(t, config(nil, queue("default"), queue("gpu", func(q *spec.Queue) { q.MaxRunning = 1 })), s, nil)
		want := []plan.Change{
			{Kind: "queue", Name: "gpu", Action: plan.ActionUpdate, Attrs: []plan.AttrChange{{Path: []string{"max_running"}, After: 1.0}}},
			{Kind: "queue", Name: "old", Action: plan.ActionDelete},
		}
		if diff := cmp.Diff(want, p.Changes); diff != "" {
			t.Errorf("changes (-want +got):\n%s", diff)
		}
	})

	t.Run("stale plan fails to apply", func(t *testing.T) {
		s := newStore(t)
		p := mustBuild(t, config([]*spec.DAG{dag("a")}, queue("default")), s, nil)
		mustApplyPlan(t, s, mustBuild(t, config([]*spec.DAG{dag("someone-else")}, queue("default")), s, nil))
		_, err := s.Apply(ctx, p.Base, p.Local.DAGs, p.Local.Queues, now)
		if !errors.Is(err, state.ErrConflict) {
			t.Errorf("Apply(stale plan) error = %v, want ErrConflict", err)
		}
	})

	t.Run("bad input", func(t *testing.T) {
		s := newStore(t)
		if _, err := plan.Build(ctx, nil, s, nil, now); err == nil {
			t.Error("Build(nil config) succeeded")
		}
		if _, err := plan.Build(ctx, config(nil), nil, nil, now); err == nil {
			t.Error("Build(nil store) succeeded")
		}
		if _, err := plan.Build(ctx, config([]*spec.DAG{dag("twice"), dag("twice")}), s, nil, now); err == nil {
			t.Error("Build(dag defined twice) succeeded")
		}
		bad := dag("bad", func(d *spec.DAG) { d.Schedule = "not a schedule"; d.Catchup = spec.CatchupAll })
		if _, err := plan.Build(ctx, config([]*spec.DAG{bad}), s, nil, now); err == nil || !strings.Contains(err.Error(), `dag "bad"`) {
			t.Errorf("Build(bad schedule) error = %v, want one naming the DAG", err)
		}
	})
}

func TestBuildNomadQueues(t *testing.T) {
	newStore, consul, _ := statetest.Stores(t)
	nomadAgent := devstack.StartNomadT(t, consul)
	nomad, err := nomadapi.NewClient(&nomadapi.Config{Address: "http://" + nomadAgent.HTTPAddr})
	if err != nil {
		t.Fatal(err)
	}
	down, err := nomadapi.NewClient(&nomadapi.Config{Address: "http://127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	local := config(nil, queue("default"), queue("gpu"))
	refused := queue("refused", func(q *spec.Queue) {
		q.NodePool = ""
		q.Constraints = []spec.Constraint{{Attribute: "${attr.kernel.name}", Operator: "~=", Value: "linux"}}
	})
	elsewhere := queue("elsewhere", func(q *spec.Queue) {
		q.NodePool = ""
		q.Datacenters = []string{"mars"}
		q.Constraints = []spec.Constraint{{Attribute: "${attr.kernel.name}", Value: "linux"}}
	})

	tests := []struct {
		name  string
		local *spec.Config
		nomad *nomadapi.Client
		want  []string
	}{
		{
			name:  "gpu pool has no node",
			local: local,
			nomad: nomad,
			want:  []string{`queue "gpu": no ready Nomad node matches node_pool "gpu"; its tasks would wait until one joins`},
		},
		{
			name:  "datacenter and constraints",
			local: config(nil, queue("default"), elsewhere),
			nomad: nomad,
			want:  []string{`queue "elsewhere": no ready Nomad node matches node_pool "default" in datacenters ["mars"] with 1 constraint; its tasks would wait until one joins`},
		},
		{
			name:  "constraint Nomad would refuse",
			local: config(nil, queue("default"), queue("gpu"), refused),
			nomad: nomad,
			want: []string{
				`queue "gpu": no ready Nomad node matches node_pool "gpu"`,
				`queue "refused": Nomad would refuse its tasks: constraint 1 (${attr.kernel.name} ~= linux): unknown operator "~="`,
			},
		},
		{name: "no nomad client", local: local, nomad: nil},
		{
			name:  "nomad unreachable",
			local: local,
			nomad: down,
			want:  []string{"could not check queues against Nomad at http://127.0.0.1:1, so queues no node serves are not reported: "},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := mustBuild(t, tt.local, newStore(t), tt.nomad)
			t.Logf("warnings: %q", p.Warnings)
			if len(p.Warnings) != len(tt.want) {
				t.Fatalf("warnings = %q, want %q", p.Warnings, tt.want)
			}
			for i, w := range tt.want {
				if !strings.HasPrefix(p.Warnings[i], w) {
					t.Errorf("warning %d = %q, want it to start with %q", i, p.Warnings[i], w)
				}
			}
		})
	}
}
