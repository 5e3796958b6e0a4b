package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/dagflow/dagflow/internal/devstack"
	"github.com/dagflow/dagflow/internal/golden"
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
