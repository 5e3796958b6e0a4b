package web_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dagflow/dagflow/api"
	"github.com/dagflow/dagflow/internal/testcluster"
)

// TestRunListAcrossDAGs: the list of every DAG's runs reads the run index an hour at a time;
// its pages, with and without a state filter, give every run once, in list order (newest
// logical date first, then DAG and run ID descending), across hours and DAGs; its long-poll
// answers when a run is created.
func TestRunListAcrossDAGs(t *testing.T) {
	t.Parallel()
	c := testcluster.New(t, testcluster.Options{})
	c.Apply(`
dag "a_hourly" {
  schedule   = "@hourly"
  start_date = "2026-02-01"
  end_date   = "2026-02-02"
  task "ok" {
    command = "/bin/true"
  }
}
dag "b_hourly" {
  schedule   = "@hourly"
  start_date = "2026-02-01"
  end_date   = "2026-02-02"
  task "fails" {
    command = "/bin/false"
  }
}
`)
	ctx := context.Background()
	cl := c.Client(0, c.Token(api.RoleOperator))
	from := time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)
	req := &api.BackfillRequest{From: from, To: from.Add(4 * time.Hour)}
	var want, failed []string // "dag run" in list order
	byDAG := map[string][]string{}
	for _, dag := range []string{"a_hourly", "b_hourly"} {
		res, err := cl.DAGs().Backfill(ctx, dag, req)
		if err != nil {
			t.Fatal(err)
		}
		if len(res.RunIDs) != 5 {
			t.Fatalf("backfill of %s made runs %v, want 5", dag, res.RunIDs)
		}
		for _, id := range res.RunIDs {
			c.WaitRun(dag, id, 3*time.Minute, "finished", testcluster.Finished)
		}
		byDAG[dag] = res.RunIDs
	}
	for h := 4; h >= 0; h-- {
		for _, dag := range []string{"b_hourly", "a_hourly"} {
			ids := slices.Clone(byDAG[dag])
			slices.Sort(ids) // backfill run IDs carry their logical date
			want = append(want, dag+" "+ids[h])
			if dag == "b_hourly" {
				failed = append(failed, dag+" "+ids[h])
			}
		}
	}

	pages := func(opts api.RunListOptions) []string {
		t.Helper()
		var got []string
		for range 20 {
			page, qm, err := cl.Runs().List(ctx, &opts)
			if err != nil {
				t.Fatal(err)
			}
			if len(page) > opts.PerPage {
				t.Errorf("a page of %d runs, want at most %d", len(page), opts.PerPage)
			}
			for _, r := range page {
				got = append(got, r.DAG+" "+r.ID)
				if r.Source != api.RunSourceConsul || len(r.TaskStates) != 1 {
					t.Errorf("run %s/%s listed from %q with task states %v, want from Consul with its one task", r.DAG, r.ID, r.Source, r.TaskStates)
				}
			}
			if opts.NextToken = qm.NextToken; opts.NextToken == "" {
				return got
			}
		}
		t.Fatal("more than 20 pages")
		return nil
	}
	if got := pages(api.RunListOptions{PerPage: 3}); !slices.Equal(got, want) {
		t.Errorf("pages of 3 gave\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if got := pages(api.RunListOptions{PerPage: 2, State: "failed"}); !slices.Equal(got, failed) {
		t.Errorf("failed runs, pages of 2, gave\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(failed, "\n"))
	}
	if got := pages(api.RunListOptions{PerPage: 50, RunID: byDAG["a_hourly"][0]}); len(got) != 2 {
		t.Errorf("runs with ID %s: %v, want one of each DAG", byDAG["a_hourly"][0], got)
	}

	url := c.Instances[0].URL + "/v1/runs"
	first := now(t, url, c.AdminToken)
	poll := longPoll(url, c.AdminToken, first.index)
	waiting(t, "every DAG's runs", poll)
	res, err := cl.DAGs().Trigger(ctx, "a_hourly", &api.TriggerRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if a := changed(t, "every DAG's runs", poll, first.index); !strings.Contains(a.body, res.RunIDs[0]) {
		until(t, "every DAG's runs, to list the new run", url, c.AdminToken, a.index, func(a answer) bool {
			return strings.Contains(a.body, res.RunIDs[0])
		})
	}
}
