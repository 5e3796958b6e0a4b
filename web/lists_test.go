package web_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/dagflow/dagflow/api"
	"github.com/dagflow/dagflow/internal/testcluster"
)

// TestListPagesAndLongPolls: the DAG list pages by name and shows each DAG's latest runs from
// the leader's summaries; both lists answer a long-poll when what they read changes, and when
// the wait is over without a change.
func TestListPagesAndLongPolls(t *testing.T) {
	t.Parallel()
	c := testcluster.New(t, testcluster.Options{})
	src := pipeline
	for _, name := range []string{"b_extra", "c_extra"} {
		src += fmt.Sprintf("dag %q {\n  task \"a\" {\n    command = \"/bin/true\"\n  }\n}\n", name)
	}
	c.Apply(src)
	ctx := context.Background()
	cl := c.Client(0, c.Token(api.RoleOperator))
	res, err := cl.DAGs().Trigger(ctx, "etl", &api.TriggerRequest{})
	if err != nil {
		t.Fatal(err)
	}
	c.WaitRun("etl", res.RunIDs[0], 2*time.Minute, "finished", testcluster.Finished)
	if err := cl.DAGs().Pause(ctx, "c_extra"); err != nil {
		t.Fatal(err)
	}

	t.Run("pages", func(t *testing.T) {
		first, qm, err := cl.DAGs().List(ctx, &api.DAGListOptions{PerPage: 2})
		if err != nil {
			t.Fatal(err)
		}
		if len(first) != 2 || first[0].Name != "b_extra" || first[1].Name != "c_extra" || qm.NextToken != "etl" {
			t.Fatalf("first page %v, next token %q; want b_extra, c_extra and etl next", names(first), qm.NextToken)
		}
		if qm.LastIndex == 0 {
			t.Error("the DAG list answered without X-Dagflow-Index")
		}
		rest, qm, err := cl.DAGs().List(ctx, &api.DAGListOptions{PerPage: 2, NextToken: qm.NextToken})
		if err != nil {
			t.Fatal(err)
		}
		if len(rest) != 1 || rest[0].Name != "etl" || qm.NextToken != "" {
			t.Fatalf("second page %v, next token %q; want etl alone, no next token", names(rest), qm.NextToken)
		}
		recent := rest[0].RecentRuns
		if len(recent) != 1 || recent[0].ID != res.RunIDs[0] || recent[0].State != "success" || recent[0].TaskStates["success"] != 2 {
			t.Errorf("etl's recent runs %+v, want the finished run with 2 successful tasks", recent)
		}
		for _, v := range []string{"per_page=0", "per_page=x", "index=-1", "wait=1h", "wait=soon"} {
			resp, body := call(t, "GET", c.Instances[0].URL+"/v1/dags?"+v, c.AdminToken, "")
			field, _, _ := strings.Cut(v, "=")
			if resp.StatusCode != 400 || !strings.Contains(strings.ReplaceAll(body, " ", ""), `"field":"`+field+`"`) {
				t.Errorf("GET /v1/dags?%s: %d %s, want 400 naming the field", v, resp.StatusCode, body)
			}
		}
	})

	t.Run("DAG list long-poll", func(t *testing.T) {
		_, qm, err := cl.DAGs().List(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan []api.DAGListStub, 1)
		start := time.Now()
		go func() {
			list, next, err := cl.DAGs().List(ctx, &api.DAGListOptions{Wait: api.Wait{Index: qm.LastIndex, Time: 30 * time.Second}})
			if err != nil || next.LastIndex <= qm.LastIndex {
				t.Errorf("long-poll: %v, index %d after %d", err, next.LastIndex, qm.LastIndex)
			}
			done <- list
		}()
		time.Sleep(time.Second)
		if err := cl.DAGs().Unpause(ctx, "c_extra"); err != nil {
			t.Fatal(err)
		}
		select {
		case list := <-done:
			if elapsed := time.Since(start); elapsed < 900*time.Millisecond {
				t.Errorf("the long-poll answered after %v, before anything changed", elapsed)
			}
			if len(list) != 3 || list[1].Name != "c_extra" || list[1].Paused {
				t.Errorf("long-poll answered %+v, want c_extra unpaused", list)
			}
		case <-time.After(20 * time.Second):
			t.Fatal("the long-poll did not answer within 20s of the unpause")
		}

		_, qm, err = cl.DAGs().List(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		start = time.Now()
		_, next, err := cl.DAGs().List(ctx, &api.DAGListOptions{Wait: api.Wait{Index: qm.LastIndex, Time: 2 * time.Second}})
		if err != nil {
			t.Fatal(err)
		}
		if elapsed := time.Since(start); elapsed < 1500*time.Millisecond || elapsed > 10*time.Second {
			t.Errorf("a long-poll of 2s with nothing changing answered after %v", elapsed)
		}
		if next.LastIndex < qm.LastIndex {
			t.Errorf("index went from %d back to %d", qm.LastIndex, next.LastIndex)
		}
	})

	t.Run("run list long-poll", func(t *testing.T) {
		runs, qm, err := cl.Runs().List(ctx, &api.RunListOptions{DAG: "etl"})
		if err != nil {
			t.Fatal(err)
		}
		if len(runs) != 1 || qm.LastIndex == 0 {
			t.Fatalf("etl's runs %+v, index %d", runs, qm.LastIndex)
		}
		resp, body := call(t, "GET", c.Instances[0].URL+"/v1/dags/etl/runs", c.AdminToken, "")
		if resp.StatusCode != 200 || !strings.Contains(body, res.RunIDs[0]) || resp.Header.Get("X-Dagflow-Index") == "" {
			t.Errorf("GET /v1/dags/etl/runs: %d %s (index %q)", resp.StatusCode, body, resp.Header.Get("X-Dagflow-Index"))
		}
		if resp, body := call(t, "GET", c.Instances[0].URL+"/v1/dags/etl/runs?dag=b_extra", c.AdminToken, ""); resp.StatusCode != 400 || !strings.Contains(body, "drop ?dag=") {
			t.Errorf("GET /v1/dags/etl/runs?dag=b_extra: %d %s, want 400", resp.StatusCode, body)
		}

		start := time.Now()
		_, next, err := cl.Runs().List(ctx, &api.RunListOptions{DAG: "etl", Wait: api.Wait{Index: qm.LastIndex, Time: 2 * time.Second}})
		if err != nil {
			t.Fatal(err)
		}
		if elapsed := time.Since(start); elapsed < 1500*time.Millisecond {
			t.Errorf("a long-poll of 2s with no run changing answered after %v", elapsed)
		}

		done := make(chan []api.RunStub, 1)
		go func() {
			runs, _, err := cl.Runs().List(ctx, &api.RunListOptions{DAG: "etl", Wait: api.Wait{Index: next.LastIndex, Time: 30 * time.Second}})
			if err != nil {
				t.Errorf("long-poll: %v", err)
			}
			done <- runs
		}()
		time.Sleep(500 * time.Millisecond)
		if _, err := cl.DAGs().Trigger(ctx, "etl", &api.TriggerRequest{}); err != nil {
			var e *api.Error
			if !errors.As(err, &e) {
				t.Fatal(err)
			}
		}
		select {
		case runs := <-done:
			if len(runs) != 2 {
				t.Errorf("long-poll answered %d runs, want the new one too", len(runs))
			}
		case <-time.After(20 * time.Second):
			t.Fatal("the run list long-poll did not answer within 20s of a trigger")
		}
	})
}

func names(list []api.DAGListStub) []string {
	var out []string
	for _, d := range list {
		out = append(out, d.Name)
	}
	return out
}
