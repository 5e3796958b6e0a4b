package examples_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	consulapi "github.com/hashicorp/consul/api"
	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/dagflow/dagflow/api"
	"github.com/dagflow/dagflow/config"
	"github.com/dagflow/dagflow/hcl/spec"
	"github.com/dagflow/dagflow/internal/devstack"
	"github.com/dagflow/dagflow/internal/testcluster"
	"github.com/dagflow/dagflow/nomadexec"
	"github.com/dagflow/dagflow/plan"
)

func TestMain(m *testing.M) { testcluster.Main(m) }

// runTimeout bounds how long a run of an example may take. The longest, nightly_etl, waits
// 10 s for its retry; the rest is a few seconds of sleeps and Nomad placing jobs.
const runTimeout = 2 * time.Minute

// TestExamples applies this directory as `make dev` does, to a dagflow server on real Consul
// and Nomad agents (a Nomad node configured as make dev's, by internal/devstack), and checks
// that each example runs as its comments and the README say.
func TestExamples(t *testing.T) {
	c := testcluster.New(t, testcluster.Options{Config: func(cfg *config.Server) {
		// Keep the tries' Nomad jobs, purged after a minute by default in tests, for the
		// queue test to read their constraints however slow the machine is.
		cfg.Retention.PurgeAfter = config.Default().Retention.PurgeAfter
	}})
	_, nomadAddr := testcluster.Agents(t)
	if err := devstack.PutExampleVariables(context.Background(), nomadAddr, ""); err != nil {
		t.Fatal(err)
	}
	local, p := apply(t, c)
	cl := c.Client(0, c.Token(api.RoleOperator))

	t.Run("nightly_etl", func(t *testing.T) {
		t.Parallel()
		testNightlyETL(t, c, cl, p)
	})
	t.Run("fan_out", func(t *testing.T) {
		t.Parallel()
		testFanOut(t, c, cl)
	})
	t.Run("failure_handling", func(t *testing.T) {
		t.Parallel()
		t.Run("fail=true", func(t *testing.T) {
			t.Parallel()
			testFailureHandling(t, c, cl)
		})
		t.Run("fail=false", func(t *testing.T) {
			t.Parallel()
			testFailureHandlingSuccessPath(t, c, cl)
		})
	})
	t.Run("manual_report", func(t *testing.T) {
		t.Parallel()
		testManualReport(t, c, cl)
	})
	t.Run("queues", func(t *testing.T) {
		t.Parallel()
		testQueues(t, c, cl, local)
	})
	t.Run("map_reduce", func(t *testing.T) {
		t.Parallel()
		testMapReduce(t, c, cl)
	})
	t.Run("secrets", func(t *testing.T) {
		t.Parallel()
		testSecrets(t, c, cl)
	})
	t.Run("assets", func(t *testing.T) {
		t.Parallel()
		testAssets(t, c, cl)
	})
	t.Run("callbacks", func(t *testing.T) {
		t.Parallel()
		testCallbacks(t, c, cl)
	})
	t.Run("gpu", func(t *testing.T) {
		t.Parallel()
		testGPU(t, c, cl)
	})
	t.Run("sensors", func(t *testing.T) {
		t.Parallel()
		testSensors(t, c, cl)
	})
	t.Run("task_groups", func(t *testing.T) {
		t.Parallel()
		r := trigger(t, c, cl, "task_groups", nil)
		wantStates(t, r, "success", map[string]string{
			"start": "success", "load.extract": "success", "load.transform": "success",
			"region[eu].fetch": "success", "region[us].fetch": "success", "report": "success",
		})
		wantLog(t, cl, r, "region[eu].fetch", 1, "fetch eu\n")
	})
}

// testCallbacks checks that a failing run of callbacks, past its deadline, records one
// delivery each for its deadline, extract's retry and the run's failure, and that the leader
// attempts them (nothing may listen on alert_url: then they are retried, not dropped).
func testCallbacks(t *testing.T, c *testcluster.Cluster, cl *api.Client) {
	r := trigger(t, c, cl, "callbacks", nil)
	wantStates(t, r, "failed", map[string]string{"extract": "success", "load": "failed"})
	if r.DeadlineMissedAt.IsZero() {
		t.Errorf("run %s is not marked past its deadline", r.ID)
	}
	var got map[string]int
	deadline := time.Now().Add(runTimeout)
	for {
		list, _, err := cl.Deliveries().List(context.Background(), &api.DeliveryQuery{DAG: "callbacks", RunID: r.ID})
		if err != nil {
			t.Fatal(err)
		}
		got = map[string]int{}
		for _, d := range list {
			if d.Attempts > 0 && d.URL == "http://127.0.0.1:8099/dagflow" {
				got[d.Payload.Event]++
			}
		}
		if len(list) == 3 && got["deadline_missed"] == 1 && got["retry"] == 1 && got["failure"] == 1 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("deliveries attempted by event: %v (of %d), want one each of deadline_missed, retry and failure", got, len(list))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// testGPU checks what the comments of gpu.hcl promise on a node of the gpu queue without a
// GPU: prepare runs, and train waits in queued with Nomad's reason, which says no node has
// the device.
func testGPU(t *testing.T, c *testcluster.Cluster, cl *api.Client) {
	res, err := cl.DAGs().Trigger(context.Background(), "gpu_train", &api.TriggerRequest{})
	if err != nil || len(res.RunIDs) != 1 {
		t.Fatalf("trigger gpu_train: %v, %+v", err, res)
	}
	unplaced := func(r *api.Run) bool {
		for _, ti := range r.Tasks {
			if ti.Task == "train" && len(ti.Tries) == 1 {
				return ti.Tries[0].State == "queued" && ti.Tries[0].Pending != ""
			}
		}
		return false
	}
	r := c.WaitRun("gpu_train", res.RunIDs[0], runTimeout, "waiting for a GPU node", unplaced)
	for _, ti := range r.Tasks {
		switch ti.Task {
		case "prepare":
			if ti.State != "success" {
				t.Errorf("prepare is %s, want success", ti.State)
			}
		case "train":
			if p := ti.Tries[0].Pending; !strings.Contains(p, "no node has the devices asked for") {
				t.Errorf("train's try is pending with %q, want that no node has the devices", p)
			}
		}
	}
}

// testSensors checks that orders_arrival waits on its sensor until the producer's key is put,
// then processes the batch.
func testSensors(t *testing.T, c *testcluster.Cluster, cl *api.Client) {
	res, err := cl.DAGs().Trigger(context.Background(), "orders_arrival", &api.TriggerRequest{Params: map[string]json.RawMessage{"batch": json.RawMessage(`"b7"`)}})
	if err != nil || len(res.RunIDs) != 1 {
		t.Fatalf("trigger orders_arrival: %v %v", res, err)
	}
	id := res.RunIDs[0]
	const waiting = `sensor: Consul key "examples/orders/b7/ready" does not exist`
	c.WaitRun("orders_arrival", id, runTimeout, "waiting on its sensor", func(r *api.Run) bool {
		for _, ti := range r.Tasks {
			if ti.Task == "wait_for_orders" {
				return ti.State == "scheduled" && ti.Waiting == waiting && len(ti.Tries) == 0
			}
		}
		return false
	})
	consulAddr, _ := testcluster.Agents(t)
	consul, err := consulapi.NewClient(&consulapi.Config{Address: consulAddr})
	if err != nil {
		t.Fatal(err)
	}
	if _, err = consul.KV().Put(&consulapi.KVPair{Key: "examples/orders/b7/ready", Value: []byte("yes")}, nil); err != nil {
		t.Fatal(err)
	}
	r := c.WaitRun("orders_arrival", id, runTimeout, "finished", testcluster.Finished)
	wantStates(t, r, "success", map[string]string{"wait_for_orders": "success", "process": "success"})
}

// testSecrets checks that the tasks of warehouse_load receive the secrets make dev puts.
func testSecrets(t *testing.T, c *testcluster.Cluster, cl *api.Client) {
	r := trigger(t, c, cl, "warehouse_load", nil)
	wantStates(t, r, "success", map[string]string{"load": "success", "report": "success"})
	wantLog(t, cl, r, "load", 1, "loaded as loader\n")
	wantLog(t, cl, r, "report", 1, "report sent\n")
}

// testAssets checks that a run of orders_load, whose task updates warehouse.orders, starts one
// asset-triggered run of orders_report, whose task prints the event with load's outputs.
func testAssets(t *testing.T, c *testcluster.Cluster, cl *api.Client) {
	trigger(t, c, cl, "orders_load", nil)
	var report *api.RunStub
	deadline := time.Now().Add(runTimeout)
	for report == nil {
		runs, _, err := cl.Runs().List(context.Background(), &api.RunListOptions{DAG: "orders_report"})
		if err != nil {
			t.Fatal(err)
		}
		if len(runs) > 1 {
			t.Fatalf("orders_report has %d runs after one update: %+v", len(runs), runs)
		}
		if len(runs) == 1 {
			report = &runs[0]
		} else if time.Now().After(deadline) {
			t.Fatalf("orders_report did not run within %s of warehouse.orders being updated", runTimeout)
		} else {
			time.Sleep(100 * time.Millisecond)
		}
	}
	if report.Type != "asset_triggered" {
		t.Errorf("orders_report run %s has type %s", report.ID, report.Type)
	}
	r := c.WaitRun("orders_report", report.ID, runTimeout, "finished", testcluster.Finished)
	wantStates(t, r, "success", map[string]string{"report": "success"})
	logs, err := cl.Runs().Logs(context.Background(), "orders_report", r.ID, "report", 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(logs.Data); !strings.Contains(got, `"asset":"warehouse.orders"`) || !strings.Contains(got, `"outputs":{"rows":120}`) {
		t.Errorf("report printed %q", got)
	}
}

// testMapReduce checks that process gets one instance per file list published, each with its
// own file, and that merge sums the rows every instance published.
func testMapReduce(t *testing.T, c *testcluster.Cluster, cl *api.Client) {
	r := trigger(t, c, cl, "map_reduce", map[string]json.RawMessage{"files": json.RawMessage("3")})
	want := map[string]string{"list": "success", "process": "success", "merge": "success"}
	for i := range 3 {
		want[fmt.Sprintf("process[%d]", i)] = "success"
	}
	wantStates(t, r, "success", want)
	if p := task(t, r, "process"); p.MapOver != "tasks.list.outputs.files" || !slices.Equal(p.MapKeys, []string{"0", "1", "2"}) {
		t.Errorf("process maps over %q with keys %q", p.MapOver, p.MapKeys)
	}
	for i := range 3 {
		name := fmt.Sprintf("process[%d]", i)
		wantLog(t, cl, r, name, 1, fmt.Sprintf("processed part-%d.csv: %d rows\n", i+1, (i+1)*10))
		if p := task(t, r, name); p.Parent != "process" {
			t.Errorf("%s has parent %q", name, p.Parent)
		}
	}
	wantLog(t, cl, r, "merge", 1, `rows per file: {"0":10,"1":20,"2":30}`+"\n")
	var out struct{ Total int }
	if err := json.Unmarshal(task(t, r, "merge").Tries[0].Outputs, &out); err != nil || out.Total != 60 {
		t.Errorf("merge published %s, want a total of 60", task(t, r, "merge").Tries[0].Outputs)
	}
}

// apply plans and applies the example files as `dagflow apply -auto-approve examples` does,
// and checks the plan: everything is created, no queue lacks a Nomad node (plan would warn),
// and only nightly_etl has a catch-up run.
func apply(t *testing.T, c *testcluster.Cluster) (*spec.Config, *plan.Plan) {
	t.Helper()
	parser := spec.NewParser()
	local, diags := parser.Load(".")
	if diags.HasErrors() {
		t.Fatalf("load examples: %s", diags.Error())
	}
	ctx := context.Background()
	now := time.Now()
	p, err := plan.Build(ctx, local, c.Store, c.Nomad, now)
	if err != nil {
		t.Fatalf("plan: %v", err)
	}
	if len(p.Warnings) > 0 {
		t.Fatalf("plan warns: %q", p.Warnings)
	}
	add, change, destroy := p.Summary()
	if want := len(local.DAGs) + len(local.Queues); add != want || change != 0 || destroy != 0 {
		t.Fatalf("plan: %d to add, %d to change, %d to destroy; want %d, 0, 0", add, change, destroy, want)
	}
	var backlogs []string
	for _, b := range p.Backlogs {
		if b.Count > 0 {
			backlogs = append(backlogs, b.DAG)
		}
	}
	if !slices.Equal(backlogs, []string{"nightly_etl"}) {
		t.Fatalf("DAGs with catch-up runs on apply: %q, want only nightly_etl", backlogs)
	}
	if _, err := c.Store.Apply(ctx, p.Base, p.Local.DAGs, p.Local.Queues, now); err != nil {
		t.Fatalf("apply: %v", err)
	}
	return local, p
}

// testNightlyETL checks the catch-up run that applying starts: one run, for the latest night
// that ended, whose extract fails its first try and succeeds on its retry.
func testNightlyETL(t *testing.T, c *testcluster.Cluster, cl *api.Client, p *plan.Plan) {
	var backlog plan.Backlog
	for _, b := range p.Backlogs {
		if b.DAG == "nightly_etl" {
			backlog = b
		}
	}
	if backlog.Count != 1 || backlog.Catchup != "latest" {
		t.Fatalf("nightly_etl backlog = %+v, want 1 run (catchup latest)", backlog)
	}
	// The run is created by the active server once it sees the applied DAG.
	var catchup *api.RunStub
	deadline := time.Now().Add(runTimeout)
	for catchup == nil {
		runs, _, err := cl.Runs().List(context.Background(), &api.RunListOptions{DAG: "nightly_etl"})
		if err != nil {
			t.Fatal(err)
		}
		for i, r := range runs {
			if r.Type == "scheduled" && r.LogicalDate.Equal(backlog.First.Start) {
				catchup = &runs[i]
			}
		}
		// Only one catch-up run: none for the nights before (catchup = "latest").
		for _, r := range runs {
			if r.Type == "scheduled" && r.LogicalDate.Before(backlog.First.Start) {
				t.Fatalf("run %s is for a night before the latest (%s)", r.ID, backlog.First.Start)
			}
		}
		if catchup == nil {
			if time.Now().After(deadline) {
				t.Fatalf("no catch-up run for %s after %s; runs: %+v", backlog.First.Start, runTimeout, runs)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	if ld := catchup.LogicalDate.In(berlin); ld.Hour() != 2 || ld.Minute() != 0 {
		t.Errorf("logical date %s is not 02:00 in Berlin", ld)
	}

	r := c.WaitRun("nightly_etl", catchup.ID, runTimeout, "finished", testcluster.Finished)
	wantStates(t, r, "success", map[string]string{"extract": "success", "transform": "success", "load": "success"})
	extract := task(t, r, "extract")
	if len(extract.Tries) != 2 || extract.Tries[0].State != "failed" || exitCode(extract.Tries[0]) != 1 ||
		extract.Tries[1].State != "success" {
		t.Fatalf("extract tries = %s, want a failed first try (exit 1) and a successful retry", tries(extract))
	}
	for _, name := range []string{"transform", "load"} {
		if ti := task(t, r, name); len(ti.Tries) != 1 {
			t.Errorf("%s tries = %s, want 1", name, tries(ti))
		}
	}
	start := catchup.DataIntervalStart.UTC().Format(time.RFC3339)
	end := catchup.DataIntervalEnd.UTC().Format(time.RFC3339)
	wantLog(t, cl, r, "extract", 1, "extract orders from "+start+" to "+end+" (try 1, logical date "+start+")\norders API not ready yet, failing this try\n")
	wantLog(t, cl, r, "extract", 2, "extract orders from "+start+" to "+end+" (try 2, logical date "+start+")\nextracted 1250 orders\n")
	wantLog(t, cl, r, "transform", 1, "transform orders of "+start+"\n")
	wantLog(t, cl, r, "load", 1, "load into warehouse partition "+start+" (nightly_etl/load, try 1)\n")
}

// testFanOut checks that every fetch ran, that merge started only after all of them ended,
// and that each publish waited for its own region's fetch only.
func testFanOut(t *testing.T, c *testcluster.Cluster, cl *api.Client) {
	r := trigger(t, c, cl, "fan_out", nil)
	regions := []string{"ap", "eu", "us"}
	want := map[string]string{"merge": "success"}
	for _, reg := range regions {
		want["fetch["+reg+"]"] = "success"
		want["publish["+reg+"]"] = "success"
	}
	wantStates(t, r, "success", want)
	merge := task(t, r, "merge")
	if deps := sorted(merge.DependsOn); !slices.Equal(deps, []string{"fetch[ap]", "fetch[eu]", "fetch[us]"}) {
		t.Errorf("merge depends on %q, want every fetch", deps)
	}
	for _, reg := range regions {
		fetch := task(t, r, "fetch["+reg+"]")
		if merge.Tries[0].StartedAt.Before(fetch.Tries[0].EndedAt) {
			t.Errorf("merge started at %s, before fetch[%s] ended at %s", merge.Tries[0].StartedAt, reg, fetch.Tries[0].EndedAt)
		}
		publish := task(t, r, "publish["+reg+"]")
		if !slices.Equal(publish.DependsOn, []string{"fetch[" + reg + "]"}) {
			t.Errorf("publish[%s] depends on %q, want only fetch[%s]", reg, publish.DependsOn, reg)
		}
		if publish.Tries[0].StartedAt.Before(fetch.Tries[0].EndedAt) {
			t.Errorf("publish[%s] started at %s, before fetch[%s] ended at %s", reg, publish.Tries[0].StartedAt, reg, fetch.Tries[0].EndedAt)
		}
		wantLog(t, cl, r, "fetch["+reg+"]", 1, "fetch "+reg+" for "+r.DataIntervalStart.UTC().Format(time.RFC3339)+"\n")
		wantLog(t, cl, r, "publish["+reg+"]", 1, "publish "+reg+" to warehouse-"+reg+"\n")
	}
	wantLog(t, cl, r, "merge", 1, "merge 3 regions\n")
}

// testFailureHandling checks the default path: load fails both its tries, report is
// upstream_failed, alert (one_failed) and cleanup (all_done) run, and the run fails.
func testFailureHandling(t *testing.T, c *testcluster.Cluster, cl *api.Client) {
	r := trigger(t, c, cl, "failure_handling", nil)
	wantStates(t, r, "failed", map[string]string{
		"prepare": "success",
		"load":    "failed",
		"report":  "upstream_failed",
		"alert":   "success",
		"cleanup": "success",
	})
	load := task(t, r, "load")
	if len(load.Tries) != 2 || exitCode(load.Tries[0]) != 1 || exitCode(load.Tries[1]) != 1 {
		t.Errorf("load tries = %s, want 2 that exit with 1", tries(load))
	}
	if report := task(t, r, "report"); len(report.Tries) != 0 {
		t.Errorf("report tries = %s, want none", tries(report))
	}
	wantLog(t, cl, r, "load", 2, "load: attempt 2\nload: failing on purpose\n")
	wantLog(t, cl, r, "alert", 1, "ALERT: failure_handling run "+r.ID+": load failed\n")
	wantLog(t, cl, r, "cleanup", 1, "drop the scratch table of "+r.ID+"\n")
}

// testFailureHandlingSuccessPath checks fail=false: report runs, alert is skipped, cleanup
// still runs, and the run succeeds.
func testFailureHandlingSuccessPath(t *testing.T, c *testcluster.Cluster, cl *api.Client) {
	r := trigger(t, c, cl, "failure_handling", map[string]json.RawMessage{"fail": json.RawMessage(`false`)})
	wantStates(t, r, "success", map[string]string{
		"prepare": "success",
		"load":    "success",
		"report":  "success",
		"alert":   "skipped",
		"cleanup": "success",
	})
	if alert := task(t, r, "alert"); len(alert.Tries) != 0 {
		t.Errorf("alert tries = %s, want none", tries(alert))
	}
	wantLog(t, cl, r, "load", 1, "load: attempt 1\n")
}

// testManualReport checks that bad params are refused with one message per param and start
// no run, and that good ones reach the tasks.
func testManualReport(t *testing.T, c *testcluster.Cluster, cl *api.Client) {
	ctx := context.Background()
	_, err := cl.DAGs().Trigger(ctx, "manual_report", &api.TriggerRequest{Params: map[string]json.RawMessage{
		"top":    json.RawMessage(`"lots"`),
		"regoin": json.RawMessage(`"us"`),
	}})
	var e *api.Error
	if !errors.As(err, &e) || e.StatusCode != http.StatusBadRequest {
		t.Fatalf("trigger with bad params: %v, want a 400", err)
	}
	fields := map[string]string{}
	for _, f := range e.Fields {
		fields[f.Field] = f.Message
	}
	for field, want := range map[string]string{
		"params.publish": "required",
		"params.regoin":  `Did you mean "region"?`,
		"params.top":     "number",
	} {
		if !strings.Contains(fields[field], want) {
			t.Errorf("field %s: %q, want it to say %q", field, fields[field], want)
		}
	}
	if len(fields) != 3 {
		t.Errorf("fields = %q, want publish, regoin and top", fields)
	}
	runs, _, err := cl.Runs().List(ctx, &api.RunListOptions{DAG: "manual_report"})
	if err != nil || len(runs) != 0 {
		t.Fatalf("runs after a refused trigger: %+v (%v), want none", runs, err)
	}

	r := trigger(t, c, cl, "manual_report", map[string]json.RawMessage{
		"region":  json.RawMessage(`"us"`),
		"top":     json.RawMessage(`3`),
		"publish": json.RawMessage(`true`),
	})
	wantStates(t, r, "success", map[string]string{"build": "success", "publish": "success"})
	wantLog(t, cl, r, "build", 1, "build report for us: top 3 products\n")
	wantLog(t, cl, r, "publish", 1, `publish report for us to ["sales@example.com"]`+"\n")

	r = trigger(t, c, cl, "manual_report", map[string]json.RawMessage{"publish": json.RawMessage(`false`)})
	wantStates(t, r, "success", map[string]string{"build": "success", "publish": "success"})
	wantLog(t, cl, r, "build", 1, "build report for eu: top 10 products\n")
	wantLog(t, cl, r, "publish", 1, "publish=false: nothing to do\n")
}

// testQueues checks that the report tasks ran on nodes the reports queue selects, through Nomad
// jobs carrying its constraint, at most two at a time.
func testQueues(t *testing.T, c *testcluster.Cluster, cl *api.Client, local *spec.Config) {
	ctx := context.Background()
	var reportsQueue *spec.Queue
	for _, q := range local.Queues {
		if q.Name == "reports" {
			reportsQueue = q
		}
	}
	if reportsQueue == nil {
		t.Fatal("examples declare no queue reports")
	}
	nodes, err := nomadexec.MatchingNodes(ctx, c.Nomad, reportsQueue)
	if err != nil {
		t.Fatal(err)
	}
	if len(nodes) == 0 {
		t.Fatal("no Nomad node serves the reports queue")
	}
	serving := map[string]bool{}
	for _, n := range nodes {
		serving[n.Name] = true
	}

	r := trigger(t, c, cl, "queued_reports", nil)
	want := map[string]string{"notify": "success"}
	reports := []string{"report[returns]", "report[sales]", "report[stock]", "report[traffic]"}
	for _, name := range reports {
		want[name] = "success"
	}
	wantStates(t, r, "success", want)

	type span struct{ start, end time.Time }
	var spans []span
	for _, name := range reports {
		try := task(t, r, name).Tries[0]
		if !serving[try.Node] {
			t.Errorf("%s ran on node %q, which the reports queue does not select (it selects %v)", name, try.Node, serving)
		}
		job, _, err := c.Nomad.Jobs().Info(try.JobID, nil)
		if err != nil {
			t.Fatalf("%s: read job %s: %v", name, try.JobID, err)
		}
		if !hasConstraint(job, "${meta.queues}", "set_contains", "reports") {
			t.Errorf("%s: job %s has constraints %s, want the reports queue's", name, try.JobID, constraints(job))
		}
		spans = append(spans, span{try.StartedAt, try.EndedAt})
	}
	// max_running = 2: at no moment were more than two report tries running.
	for _, s := range spans {
		running := 0
		for _, o := range spans {
			if !s.start.Before(o.start) && s.start.Before(o.end) {
				running++
			}
		}
		if running > 2 {
			t.Errorf("%d report tries were running at %s; the reports queue allows 2", running, s.start)
		}
	}
	notify := task(t, r, "notify").Tries[0]
	if job, _, err := c.Nomad.Jobs().Info(notify.JobID, nil); err != nil || len(job.Constraints) != 0 {
		t.Errorf("notify runs on the default queue, but its job has constraints %v (%v)", constraints(job), err)
	}
	wantLog(t, cl, r, "notify", 1, "all reports for "+r.LogicalDate.UTC().Format(time.RFC3339)+" are done\n")
}

// trigger starts a manual run of dag with params and waits for it to finish.
func trigger(t *testing.T, c *testcluster.Cluster, cl *api.Client, dag string, params map[string]json.RawMessage) *api.Run {
	t.Helper()
	res, err := cl.DAGs().Trigger(context.Background(), dag, &api.TriggerRequest{Params: params})
	if err != nil {
		t.Fatalf("trigger %s: %v", dag, err)
	}
	if len(res.RunIDs) != 1 {
		t.Fatalf("trigger %s: run IDs %q, want one", dag, res.RunIDs)
	}
	return c.WaitRun(dag, res.RunIDs[0], runTimeout, "finished", testcluster.Finished)
}

// wantStates checks the state of run r and of each of its tasks, which must be exactly those
// of want.
func wantStates(t *testing.T, r *api.Run, state string, want map[string]string) {
	t.Helper()
	got := map[string]string{}
	for _, ti := range r.Tasks {
		got[ti.Task] = ti.State
	}
	if r.State != state || len(got) != len(want) {
		t.Errorf("run %s/%s is %s with tasks %v, want %s with %v", r.DAG, r.ID, r.State, got, state, want)
	}
	for name, st := range want {
		if got[name] != st {
			t.Errorf("run %s/%s: task %s is %q, want %q", r.DAG, r.ID, name, got[name], st)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
}

// task returns task name of run r.
func task(t *testing.T, r *api.Run, name string) *api.TaskInstance {
	t.Helper()
	for i := range r.Tasks {
		if r.Tasks[i].Task == name {
			return &r.Tasks[i]
		}
	}
	t.Fatalf("run %s/%s has no task %s", r.DAG, r.ID, name)
	return nil
}

// wantLog checks the standard output of try of task in run r.
func wantLog(t *testing.T, cl *api.Client, r *api.Run, task string, try int, want string) {
	t.Helper()
	l, err := cl.Runs().Logs(context.Background(), r.DAG, r.ID, task, try, nil)
	if err != nil {
		t.Errorf("logs of %s try %d: %v", task, try, err)
		return
	}
	if string(l.Data) != want {
		t.Errorf("logs of %s try %d = %q, want %q", task, try, l.Data, want)
	}
}

func exitCode(try api.Try) int {
	if try.ExitCode == nil {
		return -1
	}
	return *try.ExitCode
}

// tries describes the tries of ti for failure messages.
func tries(ti *api.TaskInstance) string {
	var parts []string
	for _, try := range ti.Tries {
		parts = append(parts, try.State+" ("+try.Message+")")
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	sort.Strings(s)
	return s
}

func hasConstraint(job *nomadapi.Job, l, op, r string) bool {
	for _, c := range job.Constraints {
		if c.LTarget == l && c.Operand == op && c.RTarget == r {
			return true
		}
	}
	return false
}

func constraints(job *nomadapi.Job) []string {
	if job == nil {
		return nil
	}
	var out []string
	for _, c := range job.Constraints {
		out = append(out, c.LTarget+" "+c.Operand+" "+c.RTarget)
	}
	return out
}
