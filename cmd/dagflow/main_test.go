package main

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	consulapi "github.com/hashicorp/consul/api"
	"github.com/rogpeppe/go-internal/testscript"

	"github.com/dagflow/dagflow/internal/devstack"
	"github.com/dagflow/dagflow/internal/golden"
	"github.com/dagflow/dagflow/state"
)

func TestMain(m *testing.M) {
	os.Exit(testscript.RunMain(m, map[string]func() int{
		"dagflow": func() int { return run(os.Args[1:]) },
	}))
}

// TestScripts runs the CLI scripts in testdata/script against a real Consul and Nomad. Each
// script gets a KV prefix of its own, so scripts run in parallel without seeing each other.
func TestScripts(t *testing.T) {
	consul := devstack.StartConsulT(t)
	nomad := devstack.StartNomadT(t, consul)
	testscript.Run(t, testscript.Params{
		Dir:           "testdata/script",
		UpdateScripts: *golden.Update,
		Setup: func(env *testscript.Env) error {
			env.Setenv("CONSUL_HTTP_ADDR", consul.HTTPAddr)
			env.Setenv("NOMAD_ADDR", "http://"+nomad.HTTPAddr)
			env.Setenv("DAGFLOW_KV_PREFIX", "test/"+filepath.Base(env.WorkDir)+"/")
			env.Setenv("NO_COLOR", "1")
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"exitcode": exitcode,
			"runs":     runs,
		},
	})
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
