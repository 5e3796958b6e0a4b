package web_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/dagflow/dagflow/api"
	"github.com/dagflow/dagflow/config"
	"github.com/dagflow/dagflow/internal/devstack"
	"github.com/dagflow/dagflow/internal/testcluster"
	"github.com/dagflow/dagflow/rules"
)

func TestMain(m *testing.M) { testcluster.Main(m) }

const pipeline = `
dag "etl" {
  description = "extract, then load"
  schedule    = "@daily"
  start_date  = "2026-01-01"
  tags        = ["nightly"]
  param "rows" {
    type    = number
    default = 10
  }
  defaults {
    command = "/bin/sh"
  }
  task "extract" {
    args = ["-c", "echo extracting ${params.rows} rows; echo warn >&2"]
  }
  task "load" {
    depends_on = ["extract"]
    args       = ["-c", "echo loaded"]
  }
}
`

func TestTriggerOnStandby(t *testing.T) {
	t.Parallel()
	c := testcluster.New(t, testcluster.Options{Instances: 2})
	c.Apply(pipeline)
	op := c.Token(api.RoleOperator)
	standby := c.Client(1, op)
	if c.Instances[1].Server.Role() != "standby" {
		t.Fatal("instance 1 is not standby")
	}
	ctx := context.Background()
	res, err := standby.DAGs().Trigger(ctx, "etl", &api.TriggerRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.RunIDs) != 1 {
		t.Fatalf("run IDs = %v", res.RunIDs)
	}
	r := c.WaitRun("etl", res.RunIDs[0], 2*time.Minute, "finished", testcluster.Finished)
	if r.State != "success" {
		t.Fatalf("run = %+v", r)
	}
	logs, err := standby.Runs().Logs(ctx, "etl", r.ID, "extract", 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	if string(logs.Data) != "extracting 10 rows\n" {
		t.Fatalf("logs = %q (%+v)", logs.Data, logs)
	}
}

// TestDAGRoutes covers the DAG list and detail: pause state, recent runs, next run, tasks,
// edges, params, versions and source, and an older version by its hash.
func TestDAGRoutes(t *testing.T) {
	t.Parallel()
	c := testcluster.New(t, testcluster.Options{})
	c.Apply(pipeline)
	ctx := context.Background()
	cl := c.Client(0, c.Token(api.RoleOperator))
	first, _, err := cl.DAGs().Info(ctx, "etl", "")
	if err != nil {
		t.Fatal(err)
	}
	c.Apply(strings.Replace(pipeline, "extract, then load", "extract, then load, v2", 1))

	list, _, err := cl.DAGs().List(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].Name != "etl" || list[0].Paused || list[0].NextRun == nil || list[0].Tasks != 2 {
		t.Fatalf("list = %+v", list)
	}
	if !list[0].NextRun.After(time.Now()) {
		t.Errorf("next run %s is not in the future", list[0].NextRun)
	}
	if err := cl.DAGs().Pause(ctx, "etl"); err != nil {
		t.Fatal(err)
	}
	d, _, err := cl.DAGs().Info(ctx, "etl", "")
	if err != nil {
		t.Fatal(err)
	}
	if !d.Paused || d.NextRun != nil {
		t.Errorf("paused DAG: paused=%v next=%v", d.Paused, d.NextRun)
	}
	if d.Description != "extract, then load, v2" || len(d.Versions) != 2 || d.Versions[0].Version != d.Version || d.Versions[1].Version != first.Version {
		t.Errorf("versions: %+v (current %s, first %s)", d.Versions, d.Version, first.Version)
	}
	if len(d.TaskList) != 2 || len(d.Edges) != 1 || d.Edges[0] != (api.Edge{From: "extract", To: "load"}) {
		t.Errorf("tasks %+v edges %+v", d.TaskList, d.Edges)
	}
	if len(d.Params) != 1 || d.Params[0].Name != "rows" || string(d.Params[0].Default) != "10" {
		t.Errorf("params %+v", d.Params)
	}
	if !strings.Contains(d.Source, `dag "etl"`) || !strings.Contains(d.Source, "v2") {
		t.Errorf("source:\n%s", d.Source)
	}
	old, _, err := cl.DAGs().Info(ctx, "etl", first.Version)
	if err != nil {
		t.Fatal(err)
	}
	if old.Description != "extract, then load" || strings.Contains(old.Source, "v2") {
		t.Errorf("old version: %q", old.Description)
	}
	if err := cl.DAGs().Unpause(ctx, "etl"); err != nil {
		t.Fatal(err)
	}
	if d, _, _ := cl.DAGs().Info(ctx, "etl", ""); d.Paused {
		t.Error("unpause did not stick")
	}
	for _, tc := range []struct {
		name    string
		err     error
		status  int
		message string
	}{
		{"unknown DAG", func() error { _, _, err := cl.DAGs().Info(ctx, "nope", ""); return err }(), 404, `DAG "nope" is not applied`},
		{"unknown version", func() error { _, _, err := cl.DAGs().Info(ctx, "etl", "abc"); return err }(), 404, `has no version "abc"`},
		{"pause unknown DAG", cl.DAGs().Pause(ctx, "nope"), 404, `DAG "nope" is not applied`},
	} {
		var e *api.Error
		if !errors.As(tc.err, &e) || e.StatusCode != tc.status || !strings.Contains(e.Message, tc.message) {
			t.Errorf("%s: %v, want %d %q", tc.name, tc.err, tc.status, tc.message)
		}
	}
}

// TestTriggerValidation refuses bad params per field, before anything is queued.
func TestTriggerValidation(t *testing.T) {
	t.Parallel()
	c := testcluster.New(t, testcluster.Options{})
	c.Apply(pipeline)
	cl := c.Client(0, c.Token(api.RoleOperator))
	_, err := cl.DAGs().Trigger(context.Background(), "etl", &api.TriggerRequest{Params: map[string]json.RawMessage{
		"rows": json.RawMessage(`"many"`), "rowz": json.RawMessage(`1`),
	}})
	var e *api.Error
	if !errors.As(err, &e) || e.StatusCode != 400 || len(e.Fields) != 2 {
		t.Fatalf("err = %#v", err)
	}
	got := map[string]string{}
	for _, f := range e.Fields {
		got[f.Field] = f.Message
	}
	if !strings.Contains(got["params.rows"], "number") || !strings.Contains(got["params.rowz"], `"rows"`) {
		t.Errorf("fields = %v", got)
	}
	runs, _, err := cl.Runs().List(context.Background(), &api.RunListOptions{DAG: "etl"})
	if err != nil || len(runs) != 0 {
		t.Errorf("runs after refused triggers: %v %v", runs, err)
	}
	for name, body := range map[string]string{
		"unknown field": `{"parms":{}}`,
		"not JSON":      `{`,
		"bad run ID":    `{"run_id":"mine"}`,
	} {
		resp, b := call(t, "POST", c.Instances[0].URL+"/v1/dags/etl/runs", c.AdminToken, body)
		if resp.StatusCode != 400 || !strings.Contains(b, "invalid JSON body") && !strings.Contains(b, `"field": "run_id"`) {
			t.Errorf("%s: %d %s", name, resp.StatusCode, b)
		}
	}
	resp, b := call(t, "POST", c.Instances[0].URL+"/v1/dags/etl/runs", c.AdminToken, `{"params":{"rows":"`+strings.Repeat("x", 2<<20)+`"}}`)
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("2 MiB body: %d %s", resp.StatusCode, b)
	}
}

// TestRunsAndLogs lists runs with filters and pages, reads a run with every try, follows a
// live log, and reads the stored copy once Nomad no longer has the allocation.
func TestRunsAndLogs(t *testing.T) {
	t.Parallel()
	// A Nomad agent of its own: the test forces Nomad's garbage collection, which would also
	// collect the finished jobs of the tests beside it (TestSecretsNeverLeak inspects one).
	consulAddr, _ := testcluster.Agents(t)
	nomad := devstack.StartNomadT(t, nil)
	c := testcluster.New(t, testcluster.Options{ConsulAddr: consulAddr, NomadAddr: "http://" + nomad.HTTPAddr,
		Config: func(cfg *config.Server) { cfg.Retention.PurgeAfter = time.Second }})
	c.Apply(pipeline + `
dag "slow" {
  task "tick" {
    command = "/bin/sh"
    args    = ["-c", "for i in 1 2 3 4 5 6; do echo line $i; sleep 0.5; done"]
  }
}
`)
	ctx := context.Background()
	cl := c.Client(0, c.Token(api.RoleOperator))
	var ids []string
	for i := 0; i < 3; i++ {
		res, err := cl.DAGs().Trigger(ctx, "etl", &api.TriggerRequest{RunID: rules.RunID(rules.RunManual, time.Date(2026, 1, 1+i, 0, 0, 0, 0, time.UTC))})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, res.RunIDs...)
	}
	slow, err := cl.DAGs().Trigger(ctx, "slow", &api.TriggerRequest{})
	if err != nil {
		t.Fatal(err)
	}

	// Follow the slow task's log while it runs.
	r := c.WaitRun("slow", slow.RunIDs[0], time.Minute, "running", func(r *api.Run) bool {
		return len(r.Tasks[0].Tries) > 0 && r.Tasks[0].Tries[0].AllocID != ""
	})
	var (
		out      []byte
		offset   int64
		sawLive  bool
		deadline = time.Now().Add(time.Minute)
	)
	for {
		l, err := cl.Runs().Logs(ctx, "slow", r.ID, "tick", 1, &api.LogOptions{Offset: offset})
		if err != nil {
			t.Fatal(err)
		}
		if l.Source != api.LogSourceNomad {
			t.Fatalf("live log source %q", l.Source)
		}
		out, offset = append(out, l.Data...), l.Offset
		if !l.Finished && len(l.Data) > 0 {
			sawLive = true
		}
		if l.Finished {
			// One more read picks up what was written between the last read and the end.
			l, err = cl.Runs().Logs(ctx, "slow", r.ID, "tick", 1, &api.LogOptions{Offset: offset})
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, l.Data...)
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("log never finished")
		}
		time.Sleep(200 * time.Millisecond)
	}
	if want := "line 1\nline 2\nline 3\nline 4\nline 5\nline 6\n"; string(out) != want || !sawLive {
		t.Errorf("followed log %q (saw it live: %v), want %q", out, sawLive, want)
	}

	for _, id := range ids {
		c.WaitRun("etl", id, 2*time.Minute, "finished", testcluster.Finished)
	}
	all, _, err := cl.Runs().List(ctx, nil)
	if err != nil || len(all) != 4 {
		t.Fatalf("all runs: %d %v", len(all), err)
	}
	var paged []string
	next := ""
	for {
		page, qm, err := cl.Runs().List(ctx, &api.RunListOptions{DAG: "etl", PerPage: 2, NextToken: next})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range page {
			paged = append(paged, r.ID)
		}
		if next = qm.NextToken; next == "" {
			break
		}
	}
	if len(paged) != 3 {
		t.Errorf("pages gave %v, want the 3 etl runs once each", paged)
	}
	if ok, _, _ := cl.Runs().List(ctx, &api.RunListOptions{State: "success", RunID: ids[1]}); len(ok) != 1 || ok[0].DAG != "etl" || ok[0].TaskStates["success"] != 2 {
		t.Errorf("filtered: %+v", ok)
	}
	if resp, b := call(t, "GET", c.Instances[0].URL+"/v1/runs?state=nope", c.AdminToken, ""); resp.StatusCode != 400 || !strings.Contains(b, "want queued, running, success or failed") {
		t.Errorf("bad state filter: %d %s", resp.StatusCode, b)
	}

	run, _, err := cl.Runs().Info(ctx, "etl", ids[0])
	if err != nil {
		t.Fatal(err)
	}
	if len(run.Tasks) != 2 || run.Tasks[0].Task != "extract" || run.Tasks[1].Task != "load" || run.Tasks[0].Tries[0].ExitCode == nil || run.Tasks[0].Tries[0].NomadAllocURL == "" {
		t.Errorf("run detail: %+v", run)
	}

	// Once Nomad has purged the job and collected the allocation, the stored tail answers.
	alloc := run.Tasks[0].Tries[0].AllocID
	deadline = time.Now().Add(time.Minute)
	for {
		_ = c.Nomad.System().GarbageCollect()
		if _, _, err := c.Nomad.Allocations().Info(alloc, nil); err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("allocation never collected")
		}
		time.Sleep(500 * time.Millisecond)
	}
	for typ, want := range map[string]string{"stdout": "extracting 10 rows\n", "stderr": "warn\n"} {
		l, err := cl.Runs().Logs(ctx, "etl", ids[0], "extract", 1, &api.LogOptions{Type: typ})
		if err != nil {
			t.Fatal(err)
		}
		if l.Source != api.LogSourceStored || string(l.Data) != want || !l.Finished {
			t.Errorf("stored %s: %+v %q", typ, l, l.Data)
		}
	}
	resp, b := call(t, "GET", c.Instances[0].URL+"/v1/dags/etl/runs/"+ids[0]+"/tasks/extract/tries/1/logs", c.AdminToken, "")
	if resp.Header.Get("Content-Type") != "text/plain; charset=utf-8" || b != "extracting 10 rows\n" {
		t.Errorf("logs served as %q: %q", resp.Header.Get("Content-Type"), b)
	}
	for path, want := range map[string]string{
		"/tasks/extract/tries/2/logs":           "there is no try",
		"/tasks/nope/tries/1/logs":              "has no task",
		"/tasks/extract/tries/1/logs?type=x":    "want stdout or stderr",
		"/tasks/extract/tries/1/logs?offset=-1": "byte offset",
	} {
		resp, b := call(t, "GET", c.Instances[0].URL+"/v1/dags/etl/runs/"+ids[0]+path, c.AdminToken, "")
		if resp.StatusCode < 400 || !strings.Contains(b, want) {
			t.Errorf("%s: %d %s", path, resp.StatusCode, b)
		}
	}
}

// TestClearOnStandby clears a task through a standby instance: the leader runs it again.
func TestClearOnStandby(t *testing.T) {
	t.Parallel()
	c := testcluster.New(t, testcluster.Options{Instances: 2})
	c.Apply(pipeline)
	ctx := context.Background()
	standby := c.Client(1, c.Token(api.RoleOperator))
	res, err := standby.DAGs().Trigger(ctx, "etl", &api.TriggerRequest{})
	if err != nil {
		t.Fatal(err)
	}
	id := res.RunIDs[0]
	c.WaitRun("etl", id, 2*time.Minute, "finished", testcluster.Finished)
	if _, err := standby.Runs().Clear(ctx, "etl", id, "extract", &api.ClearRequest{Downstream: true}); err != nil {
		t.Fatal(err)
	}
	r := c.WaitRun("etl", id, 2*time.Minute, "run again", func(r *api.Run) bool {
		return r.State == "success" && len(r.Tasks[0].Tries) == 2 && len(r.Tasks[1].Tries) == 2
	})
	if r.Tasks[0].Tries[1].State != "success" {
		t.Errorf("second try: %+v", r.Tasks[0].Tries[1])
	}
	var e *api.Error
	if _, err := standby.Runs().Clear(ctx, "etl", "nope", "extract", nil); !errors.As(err, &e) || e.StatusCode != 404 || !strings.Contains(e.Message, `has no run "nope"`) {
		t.Errorf("clear of an unknown run: %v", err)
	}
}

// TestStatusRoutes: both instances are healthy and say their role; the leader route names the
// active one; every response carries the security headers.
func TestStatusRoutes(t *testing.T) {
	t.Parallel()
	c := testcluster.New(t, testcluster.Options{Instances: 2})
	ctx := context.Background()
	for i, want := range []string{"active", "standby"} {
		h, err := c.Client(i, "").Status().Health(ctx)
		if err != nil || h.Role != want || h.Status != "ok" {
			t.Errorf("instance %d health: %+v %v", i, h, err)
		}
	}
	l, err := c.Client(1, c.AdminToken).Status().Leader(ctx)
	if err != nil || l.Address != c.Instances[0].URL {
		t.Errorf("leader = %+v %v, want %s", l, err, c.Instances[0].URL)
	}
	resp, body := call(t, "GET", c.Instances[1].URL+"/metrics", c.AdminToken, "")
	if !strings.Contains(body, "dagflow_leader 0") || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		t.Errorf("metrics: %s", resp.Header.Get("Content-Type"))
	}
	for _, path := range []string{"/", "/static/app.js", "/v1/health", "/v1/dags", "/v1/nope", "/metrics"} {
		resp, _ := call(t, "GET", c.Instances[1].URL+path, "", "")
		h := resp.Header
		if h.Get("Content-Type") == "" || h.Get("X-Content-Type-Options") != "nosniff" || h.Get("X-Frame-Options") != "DENY" {
			t.Errorf("%s: headers %v", path, h)
		}
		if csp := h.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'none'") || strings.Contains(csp, "unsafe-inline") || !strings.Contains(csp, "script-src 'self'") {
			t.Errorf("%s: CSP %q", path, csp)
		}
	}
}

// TestTokens: bootstrap works once; tokens are created, listed without secrets, revoked; only
// a hash of each secret is stored.
func TestTokens(t *testing.T) {
	t.Parallel()
	c := testcluster.New(t, testcluster.Options{})
	ctx := context.Background()
	admin := c.Client(0, c.AdminToken)
	var e *api.Error
	if _, err := c.Client(0, "").ACL().Bootstrap(ctx); !errors.As(err, &e) || e.StatusCode != 403 || !strings.Contains(e.Message, "already done") {
		t.Errorf("second bootstrap: %v", err)
	}
	tok, err := admin.ACL().Create(ctx, &api.TokenRequest{Name: "ci", Role: api.RoleOperator})
	if err != nil {
		t.Fatal(err)
	}
	self, err := c.Client(0, tok.SecretID).ACL().Self(ctx)
	if err != nil || self.Name != "ci" || self.Role != "operator" || self.SecretID != "" {
		t.Errorf("self = %+v %v", self, err)
	}
	list, err := admin.ACL().List(ctx)
	if err != nil || len(list) != 2 {
		t.Fatalf("list = %+v %v", list, err)
	}
	for _, l := range list {
		if l.SecretID != "" {
			t.Errorf("list shows a secret: %+v", l)
		}
	}
	pairs, _, err := c.Consul.KV().List(c.Store.Prefix()+"acl/", nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pairs {
		if strings.Contains(string(p.Value), tok.SecretID) || strings.Contains(p.Key, tok.SecretID) || strings.Contains(string(p.Value), c.AdminToken) {
			t.Errorf("KV %s holds a secret", p.Key)
		}
	}
	if _, err := admin.ACL().Create(ctx, &api.TokenRequest{Name: " ", Role: "root"}); !errors.As(err, &e) || e.StatusCode != 400 || e.Fields[0].Field != "role" {
		t.Errorf("bad role: %v", err)
	}
	if err := admin.ACL().Delete(ctx, tok.AccessorID); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Client(0, tok.SecretID).ACL().Self(ctx); !errors.As(err, &e) || e.StatusCode != 403 {
		t.Errorf("revoked token: %v", err)
	}
}

// TestMarkAndCancel marks a failed task success and cancels a running run, through a standby.
func TestMarkAndCancel(t *testing.T) {
	t.Parallel()
	c := testcluster.New(t, testcluster.Options{Instances: 2})
	c.Apply(`
dag "flaky" {
  task "a" {
    command = "/bin/false"
  }
  task "b" {
    command    = "/bin/true"
    depends_on = ["a"]
  }
}

dag "long" {
  task "sleep" {
    command = "/bin/sleep"
    args    = ["300"]
  }
  task "after" {
    command    = "/bin/true"
    depends_on = ["sleep"]
  }
}
`)
	ctx := context.Background()
	standby := c.Client(1, c.Token(api.RoleOperator))
	res, err := standby.DAGs().Trigger(ctx, "flaky", nil)
	if err != nil {
		t.Fatal(err)
	}
	id := res.RunIDs[0]
	c.WaitRun("flaky", id, 2*time.Minute, "failed", func(r *api.Run) bool { return r.State == "failed" })
	var e *api.Error
	if _, err := standby.Runs().Mark(ctx, "flaky", id, "a", &api.MarkRequest{State: "done"}); !errors.As(err, &e) || e.StatusCode != 400 || e.Fields[0].Field != "state" {
		t.Errorf("bad mark state: %v", err)
	}
	if _, err := standby.Runs().Mark(ctx, "flaky", id, "a", &api.MarkRequest{State: "success", Downstream: true}); err != nil {
		t.Fatal(err)
	}
	r, _, err := standby.Runs().Info(ctx, "flaky", id)
	if err != nil {
		t.Fatal(err)
	}
	if r.Tasks[0].State != "success" || r.Tasks[1].State != "success" || r.State != "success" {
		t.Errorf("after mark success with downstream: run %s, tasks %s %s", r.State, r.Tasks[0].State, r.Tasks[1].State)
	}

	res, err = standby.DAGs().Trigger(ctx, "long", nil)
	if err != nil {
		t.Fatal(err)
	}
	id = res.RunIDs[0]
	r = c.WaitRun("long", id, 2*time.Minute, "running", func(r *api.Run) bool {
		return len(r.Tasks[0].Tries) > 0 && r.Tasks[0].Tries[0].State == "running"
	})
	job := r.Tasks[0].Tries[0].JobID
	if _, err := standby.Runs().Cancel(ctx, "long", id); err != nil {
		t.Fatal(err)
	}
	r = c.WaitRun("long", id, time.Minute, "failed", func(r *api.Run) bool { return r.State == "failed" })
	if r.Tasks[0].State != "failed" || r.Tasks[0].Tries[0].Message != "canceled" || r.Tasks[1].State != "skipped" {
		t.Errorf("after cancel: %+v", r.Tasks)
	}
	j, _, err := c.Nomad.Jobs().Info(job, nil)
	if err != nil || !*j.Stop {
		t.Errorf("job %s after cancel: %v (err %v)", job, j, err)
	}
	if _, err := standby.Runs().Cancel(ctx, "long", id); !errors.As(err, &e) || e.StatusCode != 409 || !strings.Contains(e.Message, "already finished") {
		t.Errorf("second cancel: %v", err)
	}
}
