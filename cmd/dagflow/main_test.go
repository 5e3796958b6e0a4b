package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	consulapi "github.com/hashicorp/consul/api"
	"github.com/rogpeppe/go-internal/testscript"

	"github.com/dagflow/dagflow/api"
	"github.com/dagflow/dagflow/internal/golden"
	"github.com/dagflow/dagflow/internal/testcluster"
	"github.com/dagflow/dagflow/state"
)

func TestMain(m *testing.M) {
	// The scripts run this test binary as the dagflow command: see dagflowBin.
	if filepath.Base(os.Args[0]) == "dagflow" {
		os.Exit(run(os.Args[1:]))
	}
	testcluster.Main(m)
}

// TestScripts runs the CLI scripts in testdata/script. Each script gets a cluster of its own
// (internal/testcluster): real Consul and Nomad agents shared by all, and an installation of
// its own (KV prefix, job prefix) with two dagflow server instances, so scripts run in
// parallel without seeing each other. A script's environment reaches it:
//
//	CONSUL_HTTP_ADDR, NOMAD_ADDR, DAGFLOW_KV_PREFIX   for plan and apply
//	DAGFLOW_ADDR    the active instance; STANDBY_ADDR the other one, which forwards actions
//	DAGFLOW_TOKEN   an operator token; ADMIN_TOKEN and VIEWER_TOKEN have those roles
func TestScripts(t *testing.T) {
	bin := dagflowBin(t)
	consulAddr, nomadAddr := testcluster.Agents(t)
	testscript.Run(t, testscript.Params{
		Dir:           "testdata/script",
		UpdateScripts: *golden.Update,
		Setup: func(env *testscript.Env) error {
			t, ok := env.T().(testing.TB)
			if !ok {
				return fmt.Errorf("testscript.T %T is not a testing.TB", env.T())
			}
			c := testcluster.New(t, testcluster.Options{Instances: 2})
			env.Setenv("PATH", bin+string(filepath.ListSeparator)+env.Getenv("PATH"))
			env.Setenv("CONSUL_HTTP_ADDR", consulAddr)
			env.Setenv("NOMAD_ADDR", nomadAddr)
			env.Setenv("DAGFLOW_KV_PREFIX", c.Store.Prefix())
			env.Setenv("DAGFLOW_ADDR", c.Instances[0].URL)
			env.Setenv("STANDBY_ADDR", c.Standby().URL)
			env.Setenv("DAGFLOW_TOKEN", c.Token(api.RoleOperator))
			env.Setenv("ADMIN_TOKEN", c.AdminToken)
			env.Setenv("VIEWER_TOKEN", c.Token(api.RoleViewer))
			env.Setenv("NO_COLOR", "1")
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"exitcode": exitcode,
			"runs":     runs,
			"waitrun":  waitrun,
			"json":     jsonCmd,
			"kvdelete": kvdelete,
			"capture":  capture,
			"postgres": postgres,
		},
	})
}

// dagflowBin puts this test binary, named dagflow, in a directory of its own and returns the
// directory, for the scripts' PATH. TestMain runs it as the CLI.
func dagflowBin(t *testing.T) string {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	dst := filepath.Join(dir, "dagflow")
	if err := os.Link(exe, dst); err != nil {
		in, err := os.Open(exe)
		if err != nil {
			t.Fatal(err)
		}
		defer in.Close()
		out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE, 0o755)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(out, in); err != nil {
			t.Fatal(err)
		}
		if err := out.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// exitcode runs a command and checks its exact exit status, which `exec` and `! exec` cannot:
//
//	exitcode 2 dagflow plan -detailed-exitcode
func exitcode(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: exitcode CODE COMMAND [ARGS...]")
	}
	want, err := strconv.Atoi(args[0])
	if err != nil {
		ts.Fatalf("exitcode: %q is not a number", args[0])
	}
	got := 0
	var exitErr *exec.ExitError
	if err := ts.Exec(args[1], args[2:]...); errors.As(err, &exitErr) {
		got = exitErr.ExitCode()
	} else if err != nil {
		ts.Fatalf("exitcode: %v", err)
	}
	if got != want {
		ts.Fatalf("%s exited with %d, want %d", args[1], got, want)
	}
}

// runs checks how many runs of a DAG are stored under the script's KV prefix:
//
//	runs etl 0     exactly 0
//	! runs etl 0   any other number
func runs(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 {
		ts.Fatalf("usage: runs DAG COUNT")
	}
	want, err := strconv.Atoi(args[1])
	if err != nil {
		ts.Fatalf("runs: %q is not a number", args[1])
	}
	client, err := consulapi.NewClient(&consulapi.Config{Address: ts.Getenv("CONSUL_HTTP_ADDR")})
	ts.Check(err)
	store, err := state.New(client, ts.Getenv("DAGFLOW_KV_PREFIX"))
	ts.Check(err)
	recs, err := store.Runs(context.Background(), args[0])
	ts.Check(err)
	if got := len(recs); (got == want) == neg {
		ts.Fatalf("DAG %s has %d runs; want %s%d", args[0], got, map[bool]string{true: "not ", false: ""}[neg], want)
	}
}

// waitrun waits up to two minutes for a run, and optionally one of its tasks, to be in one of
// the states given:
//
//	waitrun etl/backfill__2026-01-01T00:00:00Z success failed
//	waitrun etl/backfill__2026-01-01T00:00:00Z task=load running
func waitrun(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: waitrun DAG/RUN_ID [task=TASK] STATE...")
	}
	dag, id, ok := strings.Cut(args[0], "/")
	if !ok {
		ts.Fatalf("waitrun: %q is not DAG/RUN_ID", args[0])
	}
	task, want := "", args[1:]
	if t, ok := strings.CutPrefix(want[0], "task="); ok {
		task, want = t, want[1:]
	}
	client, err := api.NewClient(&api.Config{Address: ts.Getenv("DAGFLOW_ADDR"), Token: ts.Getenv("ADMIN_TOKEN")})
	ts.Check(err)
	deadline := time.Now().Add(2 * time.Minute)
	last := "no answer"
	for time.Now().Before(deadline) {
		r, _, err := client.Runs().Info(context.Background(), dag, id)
		switch {
		case err != nil:
			last = err.Error()
		case task == "":
			last = r.State
		default:
			last = "no such task"
			for _, t := range r.Tasks {
				if t.Task == task {
					last = t.State
				}
			}
		}
		if slices.Contains(want, last) {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	ts.Fatalf("waitrun %s %s: still %q after 2m, want %s", args[0], task, last, strings.Join(want, " or "))
}

// json checks that the last command's standard output is one JSON value and that values in it,
// named by dotted paths with list indexes, equal a text or match a regular expression:
//
//	json                       stdout parses
//	json 0.dag=report          equals (strings unquoted; other values as JSON)
//	json run_ids.0~^manual__   matches
//	json length=2              the top-level array or object has 2 elements
func jsonCmd(ts *testscript.TestScript, neg bool, args []string) {
	if neg {
		ts.Fatalf("usage: json [PATH=VALUE | PATH~REGEXP]...")
	}
	var doc any
	if err := json.Unmarshal([]byte(ts.ReadFile("stdout")), &doc); err != nil {
		ts.Fatalf("stdout is not JSON: %v", err)
	}
	for _, arg := range args {
		i := strings.IndexAny(arg, "=~")
		if i < 0 {
			ts.Fatalf("json: %q is neither PATH=VALUE nor PATH~REGEXP", arg)
		}
		path, op, want := arg[:i], arg[i], arg[i+1:]
		got, err := jsonAt(doc, path)
		if err != nil {
			ts.Fatalf("json %s: %v", arg, err)
		}
		if op == '=' && got != want {
			ts.Fatalf("json %s: got %q", path, got)
		}
		if op == '~' && !regexp.MustCompile(want).MatchString(got) {
			ts.Fatalf("json %s: %q does not match %q", path, got, want)
		}
	}
}

// jsonAt returns the value at a dotted path as text: a string as it is, anything else as JSON.
// The last element "length" is the number of elements of a list or object.
func jsonAt(v any, path string) (string, error) {
	for _, elem := range strings.Split(path, ".") {
		switch x := v.(type) {
		case map[string]any:
			if elem == "length" {
				if _, ok := x["length"]; !ok {
					v = float64(len(x))
					continue
				}
			}
			next, ok := x[elem]
			if !ok {
				return "", fmt.Errorf("no %q", elem)
			}
			v = next
		case []any:
			if elem == "length" {
				v = float64(len(x))
				continue
			}
			n, err := strconv.Atoi(elem)
			if err != nil || n < 0 || n >= len(x) {
				return "", fmt.Errorf("no element %q in a list of %d", elem, len(x))
			}
			v = x[n]
		default:
			return "", fmt.Errorf("cannot take %q of %v", elem, v)
		}
	}
	if s, ok := v.(string); ok {
		return s, nil
	}
	b, err := json.Marshal(v)
	return string(b), err
}

// kvdelete deletes a key under the script's KV prefix, as an operator would with consul kv
// delete:
//
//	kvdelete acl/bootstrap
func kvdelete(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: kvdelete KEY")
	}
	client, err := consulapi.NewClient(&consulapi.Config{Address: ts.Getenv("CONSUL_HTTP_ADDR")})
	ts.Check(err)
	_, err = client.KV().Delete(ts.Getenv("DAGFLOW_KV_PREFIX")+args[0], nil)
	ts.Check(err)
}

// capture sets an environment variable of the script to the first group of a regular
// expression in the last command's standard output:
//
//	capture RUN 'run (manual__\S+)\.$'
func capture(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: capture VAR REGEXP")
	}
	m := regexp.MustCompile("(?m)" + args[1]).FindStringSubmatch(ts.ReadFile("stdout"))
	if len(m) < 2 {
		ts.Fatalf("capture: no match of %q (with a group) in stdout", args[1])
	}
	ts.Setenv(args[0], m[1])
}
