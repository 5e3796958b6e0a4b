package web_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/jackc/pgx/v5"

	"github.com/dagflow/dagflow/api"
	"github.com/dagflow/dagflow/config"
	"github.com/dagflow/dagflow/hcl/spec"
	"github.com/dagflow/dagflow/internal/devstack"
	"github.com/dagflow/dagflow/internal/syncbuf"
	"github.com/dagflow/dagflow/internal/testcluster"
	"github.com/dagflow/dagflow/plan"
)

// secretsDAG has a task that exits 0 only if it received the secret as an environment
// variable and as a file (it compares their SHA-256 with HASH, so the value itself is in no
// spec), and three tasks whose secrets cannot be rendered: a variable and a key that do not
// exist, and a raw template's variable that does not exist (Nomad holds that one pending).
// PATH is the variable's path.
const secretsDAG = `
dag "secrets" {
  defaults {
    command = "/bin/sh"
    secret "DB_PASSWORD" {
      path = "PATH"
      key  = "password"
    }
  }
  task "ok" {
    secret "db_file" {
      path = "PATH"
      key  = "password"
      file = "db/password"
    }
    args = ["-c", <<-EOT
      test "$(printf %s "$DB_PASSWORD" | sha256sum | cut -d' ' -f1)" = HASH &&
      test "$(sha256sum < secrets/db/password | cut -d' ' -f1)" = HASH &&
      echo received
    EOT
    ]
  }
  task "novar" {
    secret "DB_PASSWORD" {
      path = "PATH/nothing"
      key  = "password"
    }
    args = ["-c", "exit 0"]
  }
  task "nokey" {
    secret "DB_PASSWORD" {
      path = "PATH"
      key  = "username"
    }
    args = ["-c", "exit 0"]
  }
  task "rawvar" {
    template {
      data        = "{{ with nomadVar \"PATH/absent\" }}{{ .x }}{{ end }}"
      destination = "secrets/raw.conf"
    }
    args = ["-c", "exit 0"]
  }
}
`

// TestSecretsNeverLeak keeps the promise of docs/language.md: a secret set with the real
// `nomad var put` reaches the task that declares it, and its value is nowhere else: not in a
// full Consul KV export, `nomad job inspect` of the try, the server's trace-level log, the
// PostgreSQL history tables, the API, the UI or the plan. A secret whose variable or key does
// not exist fails its try promptly with a message naming the path and the key.
func TestSecretsNeverLeak(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	token := hex.EncodeToString(b)
	// Spaces, quotes and a $ check that the env file carries the value as it is.
	value := `pa ss "w0rd" $HOME ` + token
	sum := sha256.Sum256([]byte(value))
	path := "dagflow/leaktest/" + token[:8]

	_, nomadAddr := testcluster.Agents(t)
	if err := devstack.PutVariable(ctx, nomadAddr, "", "", path, map[string]string{"password": value, "user": "etl"}); err != nil {
		t.Fatal(err)
	}
	url := testcluster.Postgres(t)
	var logs syncbuf.Buffer
	c := testcluster.New(t, testcluster.Options{Log: &logs, Config: func(cfg *config.Server) { cfg.History.URL = url }})
	src := strings.NewReplacer("PATH", path, "HASH", hex.EncodeToString(sum[:])).Replace(secretsDAG)

	c.Apply(src)
	// The plan of a change to a secret shows where it comes from.
	changed := strings.Replace(src, `file = "db/password"`, `file = "db/pass"`, 1)
	local, diags := spec.NewParser().LoadSource([]byte(changed), "secrets.hcl")
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	p, err := plan.Build(ctx, local, c.Store, c.Nomad, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	var planOut bytes.Buffer
	if err := plan.Render(&planOut, p, false); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(planOut.String(), "db/pass") {
		t.Errorf("the plan does not show the secret's change:\n%s", planOut.String())
	}

	admin := c.Client(0, c.AdminToken)
	res, err := admin.DAGs().Trigger(ctx, "secrets", &api.TriggerRequest{})
	if err != nil {
		t.Fatal(err)
	}
	id := res.RunIDs[0]
	start := time.Now()
	run := c.WaitRun("secrets", id, 2*time.Minute, "finished", testcluster.Finished)
	t.Logf("run finished in %s", time.Since(start))
	tries := map[string]api.Try{}
	for _, ti := range run.Tasks {
		if len(ti.Tries) != 1 {
			t.Fatalf("task %s has %d tries; want 1", ti.Task, len(ti.Tries))
		}
		tries[ti.Task] = ti.Tries[0]
	}
	if tr := tries["ok"]; tr.State != "success" {
		t.Fatalf("the task did not receive the secret: try %+v", tr)
	}
	for task, want := range map[string][]string{
		"novar":  {`"` + path + `/nothing"`, `"password"`, "does not exist"},
		"nokey":  {`"` + path + `"`, `"username"`, "has no key"},
		"rawvar": {"a template block", `"` + path + `/absent"`, "cannot read"},
	} {
		tr := tries[task]
		if tr.State != "failed" {
			t.Errorf("try of %s is %s; want failed", task, tr.State)
		}
		for _, w := range want {
			if !strings.Contains(tr.Message, w) {
				t.Errorf("message of %s %q does not say %s", task, tr.Message, w)
			}
		}
	}
	if tr := tries["novar"]; tr.AllocID != "" {
		t.Errorf("the try of a missing variable was placed (allocation %s); want it refused before registration", tr.AllocID)
	}

	// leaks collects where the value was found.
	var leaks []string
	search := func(where, text string) {
		t.Helper()
		if text == "" {
			t.Errorf("%s: nothing to search", where)
		}
		if strings.Contains(text, token) || strings.Contains(text, hex.EncodeToString([]byte(token))) {
			leaks = append(leaks, where)
		}
	}
	search("plan output", planOut.String())

	// A full Consul KV export, every value decoded.
	consul, err := devstack.Binary("consul")
	if err != nil {
		t.Fatal(err)
	}
	consulAddr, _ := testcluster.Agents(t)
	out, err := exec.Command(consul, "kv", "export", "-http-addr="+consulAddr, "").Output()
	if err != nil {
		t.Fatalf("consul kv export: %v", err)
	}
	var entries []struct {
		Key   string `json:"key"`
		Value string `json:"value"`
	}
	if err := json.Unmarshal(out, &entries); err != nil {
		t.Fatalf("consul kv export: %v", err)
	}
	var kv strings.Builder
	for _, e := range entries {
		v, err := base64.StdEncoding.DecodeString(e.Value)
		if err != nil {
			t.Fatalf("consul kv export: key %s: %v", e.Key, err)
		}
		fmt.Fprintf(&kv, "%s\n%s\n", e.Key, v)
	}
	if !strings.Contains(kv.String(), c.Store.Prefix()) || !strings.Contains(kv.String(), path) {
		t.Fatalf("the KV export holds no record of the run (%d keys)", len(entries))
	}
	search("Consul KV", kv.String())

	// The job Nomad holds for each try.
	nomad, err := devstack.Binary("nomad")
	if err != nil {
		t.Fatal(err)
	}
	for _, task := range []string{"ok", "nokey"} {
		cmd := exec.Command(nomad, "job", "inspect", "-address="+nomadAddr, tries[task].JobID)
		cmd.Env = append(os.Environ(), "NOMAD_NAMESPACE=default")
		out, err := cmd.Output()
		if err != nil {
			var stderr []byte
			if ee, ok := err.(*exec.ExitError); ok {
				stderr = ee.Stderr
			}
			t.Fatalf("nomad job inspect %s: %v: %s", tries[task].JobID, err, stderr)
		}
		if !strings.Contains(string(out), `nomadVar \"`+path+`\"`) {
			t.Fatalf("nomad job inspect %s shows no nomadVar template:\n%s", tries[task].JobID, out)
		}
		search("nomad job inspect "+task, string(out))
	}

	// The API, as every role reads it.
	for _, get := range []string{
		"/v1/dags", "/v1/dags/secrets", "/v1/runs?dag=secrets", "/v1/dags/secrets/runs/" + id,
		"/v1/dags/secrets/runs/" + id + "/tasks/ok/tries/1/logs",
	} {
		search("GET "+get, apiGet(t, c.Instances[0].URL+get, c.AdminToken))
	}

	// History: every table of the database, every row as text (bytea as hex), once the run
	// is written there.
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	deadline := time.Now().Add(time.Minute)
	for {
		var n int
		err := conn.QueryRow(ctx, `SELECT count(*) FROM tries WHERE dag = 'secrets' AND run_id = $1`, id).Scan(&n)
		if err == nil && n == 4 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("history holds %d tries of the run (%v); want 4", n, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	search("PostgreSQL history", dumpTables(t, conn))

	// The UI: the DAG (its source too), the run and each try with its output.
	br := newBrowser(t)
	br.open(c.Instances[0].URL + "/#/dags/secrets/source")
	br.do("sign in",
		chromedp.WaitVisible(chromedp.ID("login-token")),
		chromedp.SendKeys(chromedp.ID("login-token"), c.AdminToken),
		chromedp.Click(chromedp.ID("login-submit")))
	pageText := `document.documentElement.outerHTML + document.body.innerText`
	br.waitJS("the DAG's source is shown", `document.body.innerText.includes(`+jsString(path)+`)`)
	search("UI DAG source", br.eval(pageText))
	br.open(c.Instances[0].URL + "/#/dags/secrets/runs/" + id)
	br.waitJS("the run page shows its tasks", `document.querySelectorAll('#run-tasks tr[data-task]').length === 4`)
	search("UI run", br.eval(pageText))
	for _, task := range []string{"ok", "novar", "nokey", "rawvar"} {
		br.open(c.Instances[0].URL + "/#/dags/secrets/runs/" + id + "/tasks/" + task + "/tries/1")
		br.waitJS("the try page of "+task+" is shown", `document.body.innerText.includes(`+jsString(task+" · try 1")+`)`)
		if task == "ok" {
			br.waitJS("the try's output is shown", `document.getElementById('log-output').textContent.includes('received')`)
		}
		search("UI try of "+task, br.eval(pageText))
	}
	br.checkClean()

	// The servers' trace-level log, last, so it holds all of the above.
	if !strings.Contains(logs.String(), tries["ok"].JobID) {
		t.Fatalf("the servers' log does not name the try's job %s: it is not the log of this run", tries["ok"].JobID)
	}
	search("server log", logs.String())

	if len(leaks) > 0 {
		t.Fatalf("the secret's value was found in: %s", strings.Join(leaks, ", "))
	}
}

// apiGet returns the body of a GET of url with token, failing the test unless it is 200.
func apiGet(t *testing.T, url, token string) string {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Dagflow-Token", token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s %s (%v)", url, resp.Status, body, err)
	}
	return string(body)
}

// dumpTables returns every row of every table of the database's public schema as text.
func dumpTables(t *testing.T, conn *pgx.Conn) string {
	t.Helper()
	ctx := context.Background()
	rows, err := conn.Query(ctx, `SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE'`)
	if err != nil {
		t.Fatal(err)
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	if len(tables) == 0 {
		t.Fatal("the history database has no tables")
	}
	var all strings.Builder
	for _, table := range tables {
		var text *string
		q := fmt.Sprintf(`SELECT string_agg(t::text, E'\n') FROM %s t`, pgx.Identifier{table}.Sanitize())
		if err := conn.QueryRow(ctx, q).Scan(&text); err != nil {
			t.Fatalf("dump %s: %v", table, err)
		}
		if text != nil {
			fmt.Fprintf(&all, "%s\n%s\n", table, *text)
		}
	}
	return all.String()
}
