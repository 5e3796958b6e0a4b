package history_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/dagflow/dagflow/api"
	"github.com/dagflow/dagflow/config"
	"github.com/dagflow/dagflow/internal/devstack"
	"github.com/dagflow/dagflow/internal/testcluster"
)

const outageDAG = `
dag "outage" {
  task "extract" {
    command = "/bin/sh"
    args    = ["-c", "echo extract try ${task.try}; echo to stderr >&2; sleep 3"]
  }
  # Fails its first try, succeeds its second.
  task "transform" {
    depends_on  = ["extract"]
    retries     = 1
    retry_delay = "1s"
    command     = "/bin/sh"
    args        = ["-c", "echo transform try ${task.try}; [ ${task.try} -ge 2 ]"]
  }
  task "load" {
    depends_on = ["transform"]
    command    = "/bin/sh"
    args       = ["-c", "echo load try ${task.try}"]
  }
}
`

// TestPostgresOutageMidRun stops PostgreSQL while a run is under way: the run finishes all the
// same, and once PostgreSQL is back history holds exactly one row per try, with its logs.
func TestPostgresOutageMidRun(t *testing.T) {
	ctx := context.Background()
	pg := devstack.StartPostgresT(t)
	url, err := pg.CreateDatabase(ctx, "outage")
	if err != nil {
		t.Fatal(err)
	}
	c := testcluster.New(t, testcluster.Options{Config: func(cfg *config.Server) { cfg.History.URL = url }})
	c.Apply(outageDAG)
	cl := c.Client(0, c.AdminToken)
	res, err := cl.DAGs().Trigger(ctx, "outage", &api.TriggerRequest{})
	if err != nil {
		t.Fatal(err)
	}
	id := res.RunIDs[0]
	c.WaitRun("outage", id, time.Minute, "extracting", func(r *api.Run) bool { return r.Tasks[0].State == "running" })
	if err := pg.Down(); err != nil {
		t.Fatal(err)
	}
	run := c.WaitRun("outage", id, 2*time.Minute, "finished", testcluster.Finished)
	if run.State != "success" {
		t.Fatalf("run ended %s while PostgreSQL was down; want success", run.State)
	}
	if st, err := cl.Status().History(ctx); err != nil || !st.Enabled || st.Available || st.Error == "" {
		t.Errorf("history status with PostgreSQL down = %+v, %v; want enabled, unavailable, with a reason", st, err)
	}
	if err := pg.Up(ctx); err != nil {
		t.Fatal(err)
	}

	conn := connect(t, url)
	want := map[string]bool{} // "task/try" of every try the scheduler ran
	for _, ti := range run.Tasks {
		for _, tr := range ti.Tries {
			want[fmt.Sprintf("%s/%d", ti.Task, tr.Try)] = true
		}
	}
	if len(want) != 4 {
		t.Fatalf("the run had tries %v; want 4 (transform retried once)", want)
	}
	// History catches up on its own once PostgreSQL is back.
	deadline := time.Now().Add(90 * time.Second)
	for {
		var state string
		var logs int
		err := conn.QueryRow(ctx, `SELECT r.state, (SELECT count(*) FROM try_logs) FROM runs r WHERE dag = 'outage' AND run_id = $1`, id).Scan(&state, &logs)
		if err == nil && state == "success" && logs == 2*len(want) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("history did not catch up after PostgreSQL came back: state %q, %d log rows, %v", state, logs, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	rows, err := conn.Query(ctx, `SELECT t.task, t.try, t.state, count(*) OVER (PARTITION BY t.task, t.try),
			convert_from(o.data, 'UTF8'), e.data IS NOT NULL, o.source
		FROM tries t
		JOIN try_logs o ON o.dag = t.dag AND o.run_id = t.run_id AND o.task = t.task AND o.try = t.try AND o.stream = 'stdout'
		JOIN try_logs e ON e.dag = t.dag AND e.run_id = t.run_id AND e.task = t.task AND e.try = t.try AND e.stream = 'stderr'
		WHERE t.dag = 'outage' AND t.run_id = $1`, id)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	var task, state, stdout, source string
	var try, n int
	var hasStderr bool
	_, err = pgx.ForEachRow(rows, []any{&task, &try, &state, &n, &stdout, &hasStderr, &source}, func() error {
		key := fmt.Sprintf("%s/%d", task, try)
		if n != 1 || got[key] {
			t.Errorf("try %s has %d rows; want exactly one", key, n)
		}
		got[key] = true
		if wantOut := fmt.Sprintf("%s try %d", task, try); !strings.Contains(stdout, wantOut) || !hasStderr || source != "nomad" {
			t.Errorf("logs of %s: stdout %q from %s, stderr recorded %v; want %q, read from nomad", key, stdout, source, hasStderr, wantOut)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("history holds tries %v; the scheduler ran %v", got, want)
	}
	var states string
	if err := conn.QueryRow(ctx, `SELECT string_agg(state, ' ' ORDER BY at, state) FROM transitions
		WHERE run_id = $1 AND task = 'transform'`, id).Scan(&states); err != nil || states != "queued running failed queued running success" {
		t.Errorf("transform's transitions: %q, %v; want queued running failed queued running success", states, err)
	}
}

const keptDAG = `
dag "kept" {
  task "only" {
    command = "/bin/sh"
    args    = ["-c", "echo output of ${run.id}"]
  }
}
`

// TestHistoryAfterRetention keeps one run per DAG in Consul: the API pages through the older
// ones from history, shows them with their tries and logs, and refuses to act on them.
func TestHistoryAfterRetention(t *testing.T) {
	ctx := context.Background()
	url := testcluster.Postgres(t)
	c := testcluster.New(t, testcluster.Options{Instances: 2, Config: func(cfg *config.Server) {
		cfg.History.URL = url
		cfg.Retention.KeepRuns = 1
	}})
	c.Apply(keptDAG)
	cl := c.Client(0, c.AdminToken)
	ids := c.TriggerRuns("kept", 4) // oldest first
	// Retention lets the older runs go once history holds them.
	c.WaitKept("kept", 1)

	// A standby serves history as well as the active instance.
	sb := c.Client(1, c.AdminToken)
	if c.Instances[1] != c.Standby() {
		t.Fatal("instance 1 is not the standby")
	}
	var listed []string
	opts := &api.RunListOptions{DAG: "kept", PerPage: 3}
	for page := 0; ; page++ {
		runs, meta, err := sb.Runs().List(ctx, opts)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range runs {
			wantSource := api.RunSourceHistory
			if r.ID == ids[3] {
				wantSource = api.RunSourceConsul
			}
			if r.Source != wantSource || r.State != "success" || r.TaskStates["success"] != 1 {
				t.Errorf("run %s listed from %s as %s with %v; want from %s, success, one task succeeded", r.ID, r.Source, r.State, r.TaskStates, wantSource)
			}
			listed = append(listed, r.ID)
		}
		if meta.NextToken == "" {
			break
		}
		opts.NextToken = meta.NextToken
	}
	if got, want := strings.Join(listed, " "), strings.Join([]string{ids[3], ids[2], ids[1], ids[0]}, " "); got != want {
		t.Errorf("pages list %q; want %q", got, want)
	}

	first := ids[0]
	old, _, err := sb.Runs().Info(ctx, "kept", first)
	if err != nil {
		t.Fatal(err)
	}
	if old.Source != api.RunSourceHistory || len(old.Tasks) != 1 || len(old.Tasks[0].Tries) != 1 || old.Tasks[0].Tries[0].State != "success" {
		t.Fatalf("the first run from history = %+v; want its one successful try", old)
	}
	logs, err := sb.Runs().Logs(ctx, "kept", first, "only", 1, &api.LogOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if logs.Source != api.LogSourceHistory || string(logs.Data) != "output of "+first+"\n" || !logs.Finished {
		t.Errorf("logs of the first run = %q from %s (finished %v); want its output from history", logs.Data, logs.Source, logs.Finished)
	}
	_, err = cl.Runs().Clear(ctx, "kept", first, "only", &api.ClearRequest{})
	if apiErr, ok := err.(*api.Error); !ok || apiErr.StatusCode != http.StatusConflict || !strings.Contains(apiErr.Message, "only in history") {
		t.Errorf("clear of a run only history holds: %v; want 409 saying so", err)
	}
	_, err = cl.DAGs().Trigger(ctx, "kept", &api.TriggerRequest{RunID: first})
	if apiErr, ok := err.(*api.Error); !ok || apiErr.StatusCode != http.StatusConflict || !strings.Contains(apiErr.Message, "in history") {
		t.Errorf("a trigger reusing the ID of a run in history: %v; want 409 saying so", err)
	}
	if st, err := sb.Status().History(ctx); err != nil || !st.Enabled || !st.Available || st.KeepRuns != 1 {
		t.Errorf("history status = %+v, %v; want enabled, available, keep_runs 1", st, err)
	}
}

// TestHistoryStatusWithout: without a history block the API says runs go back as far as
// Consul keeps them.
func TestHistoryStatusWithout(t *testing.T) {
	c := testcluster.New(t, testcluster.Options{})
	st, err := c.Client(0, c.AdminToken).Status().History(context.Background())
	if err != nil || st.Enabled || st.Available || st.KeepRuns != config.Default().Retention.KeepRuns {
		t.Errorf("history status without history = %+v, %v; want disabled, keep_runs %d", st, err, config.Default().Retention.KeepRuns)
	}
	resp, err := http.Get(c.Instances[0].URL + "/v1/status/history")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden && resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("history status without a token: %d %s; want it refused", resp.StatusCode, body)
	}
}

func connect(t *testing.T, url string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}
