package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/cli"
	consulapi "github.com/hashicorp/consul/api"
	nomadapi "github.com/hashicorp/nomad/api"
	"github.com/rogpeppe/go-internal/testscript"

	"github.com/dagflow/dagflow/history"
	"github.com/dagflow/dagflow/internal/devstack"
	"github.com/dagflow/dagflow/internal/testcluster"
	"github.com/dagflow/dagflow/nomadexec"
)

// scriptPostgres holds each script's PostgreSQL server, started by its first postgres start.
var scriptPostgres sync.Map // *testscript.TestScript: *devstack.Postgres

// postgres runs a throwaway PostgreSQL server for the script, stopped when the script ends,
// and points DAGFLOW_HISTORY_URL at a database of it:
//
//	postgres start        start the server
//	postgres createdb DB  create database DB and set DAGFLOW_HISTORY_URL to it
//	postgres migrate      apply history's migrations to DAGFLOW_HISTORY_URL, as a server does
//	postgres down         stop the server, keeping its data (an outage)
//	postgres up           start it again
func postgres(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) == 0 {
		ts.Fatalf("usage: postgres start | createdb DB | migrate | down | up")
	}
	ctx := context.Background()
	server := func() *devstack.Postgres {
		p, ok := scriptPostgres.Load(ts)
		if !ok {
			ts.Fatalf("postgres %s: run postgres start first", args[0])
		}
		return p.(*devstack.Postgres)
	}
	switch {
	case args[0] == "start" && len(args) == 1:
		p, err := devstack.StartPostgres(ctx, devstack.PostgresOptions{Logger: io.Discard})
		ts.Check(err)
		scriptPostgres.Store(ts, p)
		ts.Defer(func() {
			scriptPostgres.Delete(ts)
			_ = p.Stop()
		})
	case args[0] == "createdb" && len(args) == 2:
		url, err := server().CreateDatabase(ctx, args[1])
		ts.Check(err)
		ts.Setenv("DAGFLOW_HISTORY_URL", url)
	case args[0] == "migrate" && len(args) == 1:
		db, err := history.Open(ts.Getenv("DAGFLOW_HISTORY_URL"))
		ts.Check(err)
		defer db.Close()
		ts.Check(db.Migrate(ctx))
	case args[0] == "down" && len(args) == 1:
		ts.Check(server().Down())
	case args[0] == "up" && len(args) == 1:
		ts.Check(server().Up(ctx))
	default:
		ts.Fatalf("postgres: unknown %q", fmt.Sprint(args))
	}
}

// TestDoctorConsulACL checks the Consul token check against a Consul with ACLs on: a token that
// may only read is told which rules to add; one with those rules passes.
func TestDoctorConsulACL(t *testing.T) {
	_, nomadAddr := testcluster.Agents(t)
	addr := startConsulACL(t, "root")
	admin, err := consulapi.NewClient(&consulapi.Config{Address: addr, Token: "root"})
	if err != nil {
		t.Fatal(err)
	}
	token := func(name, rules string) string {
		t.Helper()
		if _, _, err := admin.ACL().PolicyCreate(&consulapi.ACLPolicy{Name: name, Rules: rules}, nil); err != nil {
			t.Fatalf("create policy %s: %v", name, err)
		}
		tok, _, err := admin.ACL().TokenCreate(&consulapi.ACLToken{Policies: []*consulapi.ACLTokenPolicyLink{{Name: name}}}, nil)
		if err != nil {
			t.Fatalf("create token %s: %v", name, err)
		}
		return tok.SecretID
	}
	reader := token("reader", `key_prefix "doctor/" { policy = "read" }
service_prefix "" { policy = "read" }
node_prefix "" { policy = "read" }`)
	writer := token("writer", `key_prefix "doctor/" { policy = "write" }
service "dagflow" { policy = "write" }
service_prefix "" { policy = "read" }
node_prefix "" { policy = "read" }
session_prefix "" { policy = "write" }`)

	doctor := func(token string) (string, int) {
		t.Helper()
		dir := t.TempDir()
		conf := filepath.Join(dir, "server.hcl")
		hcl := fmt.Sprintf("kv_prefix = \"doctor/\"\nconsul {\n  address = %q\n  token = %q\n}\nnomad {\n  address = %q\n}\n", addr, token, nomadAddr)
		if err := os.WriteFile(conf, []byte(hcl), 0o600); err != nil {
			t.Fatal(err)
		}
		ui := cli.NewMockUi()
		code := (&DoctorCommand{Meta: &Meta{UI: ui}}).Run([]string{"-config", conf, "-no-color"})
		return ui.OutputWriter.String(), code
	}

	out, code := doctor(reader)
	want := `✗ Consul token: the token may not do all that dagflow server does
    may not write its state under "doctor/" (key write "doctor/catalog")
    may not take the lock doctor/leader (key write "doctor/leader")
    may not register the service "dagflow" (service write "dagflow")
    may not create its lock session (session write "")
  Fix: Add to a policy of the token (consul acl policy update), then restart the servers that use it:
       key_prefix "doctor/" { policy = "write" }
       service "dagflow" { policy = "write" }
       session_prefix "" { policy = "write" }
`
	if code != exitError || !strings.Contains(out, want) {
		t.Errorf("doctor with a read-only Consul token: exit %d, want %d; output:\n%s\nwant it to contain:\n%s", code, exitError, out, want)
	}

	out, _ = doctor(writer)
	if want := "✓ Consul token: the token may write keys under \"doctor/\", register the service \"dagflow\" and create sessions\n"; !strings.Contains(out, want) {
		t.Errorf("doctor with a token that has every rule; output:\n%s\nwant it to contain:\n%s", out, want)
	}

	out, _ = doctor("00000000-0000-4000-8000-000000000000")
	if want := "✗ Consul token: Consul does not know the token doctor was given\n"; !strings.Contains(out, want) {
		t.Errorf("doctor with an unknown token; output:\n%s\nwant it to contain:\n%s", out, want)
	}
}

// TestDoctorNomadACL checks the Nomad token check against a Nomad with ACLs on: a token that
// may run jobs but not keep the tombstones of purged jobs is told the variables rule to add,
// and nothing it probed is left behind; one with the documented policy passes.
func TestDoctorNomadACL(t *testing.T) {
	consulAddr, _ := testcluster.Agents(t)
	n := devstack.StartNomadWithT(t, devstack.NomadOptions{ACL: true})
	addr := "http://" + n.HTTPAddr
	mgmt, err := nomadapi.NewClient(&nomadapi.Config{Address: addr, SecretID: n.Token, TLSConfig: &nomadapi.TLSConfig{}})
	if err != nil {
		t.Fatal(err)
	}
	token := func(name, rules string) string {
		t.Helper()
		if _, err := mgmt.ACLPolicies().Upsert(&nomadapi.ACLPolicy{Name: name, Rules: rules}, nil); err != nil {
			t.Fatalf("create policy %s: %v", name, err)
		}
		tok, _, err := mgmt.ACLTokens().Create(&nomadapi.ACLToken{Name: name, Type: "client", Policies: []string{name}}, nil)
		if err != nil {
			t.Fatalf("create token %s: %v", name, err)
		}
		return tok.SecretID
	}
	jobsOnly := token("jobs-only", `namespace "*" {
  policy = "write"
}
node {
  policy = "read"
}`)
	documented := token("documented", `namespace "*" {
  policy = "write"
  variables {
    path "dagflow/*" {
      capabilities = ["list"]
    }
    path "dagflow/purged/*" {
      capabilities = ["write", "read", "list", "destroy"]
    }
  }
}
node {
  policy = "read"
}`)
	doctor := func(token string) (string, int) {
		t.Helper()
		conf := filepath.Join(t.TempDir(), "server.hcl")
		hcl := fmt.Sprintf("kv_prefix = \"doctor-nomad/\"\nconsul {\n  address = %q\n}\nnomad {\n  address = %q\n  token = %q\n}\n", consulAddr, addr, token)
		if err := os.WriteFile(conf, []byte(hcl), 0o600); err != nil {
			t.Fatal(err)
		}
		ui := cli.NewMockUi()
		code := (&DoctorCommand{Meta: &Meta{UI: ui}}).Run([]string{"-config", conf, "-no-color"})
		return ui.OutputWriter.String(), code
	}

	out, code := doctor(jobsOnly)
	want := `✗ Nomad token: the token "jobs-only" may not do all that dagflow server does in Nomad
    namespace "default": lacks variables write on dagflow/purged/*, variables read on dagflow/purged/*, variables list on dagflow/purged/*, variables destroy on dagflow/purged/*
  Fix: Add to a policy of the token (nomad acl policy apply), then restart the servers that use it:
       namespace "default" {
         capabilities = ["submit-job", "list-jobs", "read-job", "read-logs"]
         variables {
           path "dagflow/purged/*" { capabilities = ["write", "read", "list", "destroy"] }
         }
       }
`
	if code != exitError || !strings.Contains(out, want) {
		t.Errorf("doctor with a token that may not keep tombstones: exit %d, want %d; output:\n%s\nwant it to contain:\n%s", code, exitError, out, want)
	}

	out, _ = doctor(documented)
	if want := "✓ Nomad token: the token \"documented\" may submit, list and read jobs and read their logs in \"default\", and read nodes\n"; !strings.Contains(out, want) {
		t.Errorf("doctor with the documented policy; output:\n%s\nwant it to contain:\n%s", out, want)
	}
	left, _, err := mgmt.Variables().PrefixList(nomadexec.GuardPrefix, &nomadapi.QueryOptions{Namespace: "*"})
	if err != nil || len(left) != 0 {
		t.Errorf("tombstones left after doctor: %v, %v", left, err)
	}
}

// startConsulACL starts a Consul dev agent with ACLs on, denying by default, whose management
// token is root, and stops it when the test ends. It returns its HTTP address. (devstack's
// agents run with ACLs off.)
func startConsulACL(t *testing.T, root string) string {
	t.Helper()
	bin, err := devstack.Binary("consul")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	ports := freeTCPPorts(t, 4) // http, serf_lan, serf_wan, server
	conf := fmt.Sprintf(`ports {
  http     = %d
  serf_lan = %d
  serf_wan = %d
  server   = %d
  dns      = -1
  grpc     = -1
  grpc_tls = -1
}
acl {
  enabled        = true
  default_policy = "deny"
  tokens {
    initial_management = %q
  }
}
`, ports[0], ports[1], ports[2], ports[3], root)
	path := filepath.Join(dir, "acl.hcl")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(dir, "consul.log")
	out, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "agent", "-dev", "-bind", "127.0.0.1", "-client", "127.0.0.1", "-config-file", path)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		out.Close()
	})
	addr := fmt.Sprintf("127.0.0.1:%d", ports[0])
	client, err := consulapi.NewClient(&consulapi.Config{Address: addr, Token: root})
	if err != nil {
		t.Fatal(err)
	}
	// Ready once the management token works: there is a leader and ACLs are bootstrapped.
	deadline := time.Now().Add(60 * time.Second)
	for {
		_, _, err := client.ACL().TokenReadSelf(nil)
		if err == nil {
			return addr
		}
		select {
		case <-exited:
			b, _ := os.ReadFile(logPath)
			t.Fatalf("consul exited: %s", b)
		default:
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(logPath)
			t.Fatalf("consul with ACLs not ready: %v\n%s", err, b)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// freeTCPPorts returns n ports free on 127.0.0.1 now.
func freeTCPPorts(t *testing.T, n int) []int {
	t.Helper()
	var ports []int
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports
}

// TestNomadRulesAllows pins how doctor reads a Nomad token's namespace rules, which decide the
// read-logs finding: an exact rule wins over globs, as in Nomad, and deny wins.
func TestNomadRulesAllows(t *testing.T) {
	write := []string{"list-jobs", "read-job", "submit-job", "read-logs"}
	read := []string{"list-jobs", "read-job"}
	tests := map[string]struct {
		rules nomadRules
		ns    string
		want  bool
	}{
		"no rules":              {nil, "default", false},
		"exact":                 {nomadRules{{Name: "default", Capabilities: write}}, "default", true},
		"other namespace":       {nomadRules{{Name: "etl", Capabilities: write}}, "default", false},
		"glob":                  {nomadRules{{Name: "*", Capabilities: write}}, "default", true},
		"prefix glob":           {nomadRules{{Name: "team-*", Capabilities: write}}, "team-a", true},
		"exact wins over glob":  {nomadRules{{Name: "*", Capabilities: write}, {Name: "default", Capabilities: read}}, "default", false},
		"exact rules merge":     {nomadRules{{Name: "default", Capabilities: read}, {Name: "default", Capabilities: []string{"read-logs"}}}, "default", true},
		"deny policy":           {nomadRules{{Name: "default", Policy: "deny", Capabilities: write}}, "default", false},
		"deny capability wins":  {nomadRules{{Name: "default", Capabilities: write}, {Name: "default", Capabilities: []string{"deny"}}}, "default", false},
		"lacking the one asked": {nomadRules{{Name: "default", Capabilities: read}}, "default", false},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			if got := tt.rules.allows(tt.ns, "read-logs"); got != tt.want {
				t.Errorf("allows(%q, read-logs) = %v, want %v", tt.ns, got, tt.want)
			}
		})
	}
}

// TestDoctorExitCode pins the exit codes: a failure wins, then a warning; skipped checks
// count for nothing.
func TestDoctorExitCode(t *testing.T) {
	tests := map[string]struct {
		statuses []string
		want     int
	}{
		"all ok":             {[]string{checkOK, checkOK}, exitOK},
		"skipped is not bad": {[]string{checkOK, checkSkip}, exitOK},
		"a warning":          {[]string{checkOK, checkWarn}, exitWarnings},
		"a failure":          {[]string{checkWarn, checkFail, checkSkip}, exitError},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			var checks []doctorCheck
			for _, s := range tt.statuses {
				checks = append(checks, doctorCheck{Status: s})
			}
			if got := doctorExitCode(checks); got != tt.want {
				t.Errorf("exit code %d, want %d", got, tt.want)
			}
			want := map[int]string{exitOK: checkOK, exitWarnings: checkWarn, exitError: checkFail}[tt.want]
			if diff := cmp.Diff(want, doctorReport(checks).Status); diff != "" {
				t.Errorf("report status (-want +got):\n%s", diff)
			}
		})
	}
}
