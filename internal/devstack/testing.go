package devstack

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"

	consulapi "github.com/hashicorp/consul/api"
)

// StartConsulT starts a Consul dev agent for the test t and stops it when the test ends. It
// fails the test (never skips it) when the agent cannot start; a missing binary is a failure
// whose message says to run `make tools`.
//
// The agent's output goes to a file in t.TempDir(). When the test fails, its path and last
// lines are logged; the lines are there because t.TempDir() is removed after the test.
func StartConsulT(t testing.TB) *Consul {
	t.Helper()
	out := agentLog(t, "consul")
	c, err := StartConsul(context.Background(), ConsulOptions{Logger: out})
	if err != nil {
		t.Fatalf("start consul: %v\n(agent output: %s)", err, out.Name())
	}
	t.Cleanup(func() {
		if err := c.Stop(); err != nil {
			t.Errorf("stop consul: %v", err)
		}
	})
	return c
}

// StartNomadT starts a Nomad dev agent for the test t, joined to consul unless it is nil, and
// stops it when the test ends. Failures and output are handled as by StartConsulT.
func StartNomadT(t testing.TB, consul *Consul) *Nomad {
	t.Helper()
	opts := NomadOptions{}
	if consul != nil {
		opts.ConsulAddr = consul.HTTPAddr
	}
	return StartNomadWithT(t, opts)
}

// StartNomadWithT starts a Nomad agent with opts for the test t, as StartNomadT does; the
// agent's output goes where StartNomadT sends it, whatever opts.Logger says.
func StartNomadWithT(t testing.TB, opts NomadOptions) *Nomad {
	t.Helper()
	opts.Logger = agentLog(t, "nomad")
	n, err := StartNomad(context.Background(), opts)
	if err != nil {
		t.Fatalf("start nomad: %v\n(agent output: %s)", err, opts.Logger.(*os.File).Name())
	}
	t.Cleanup(func() {
		if err := n.Stop(); err != nil {
			t.Errorf("stop nomad: %v", err)
		}
	})
	return n
}

// StartPostgresT starts a throwaway PostgreSQL server for the test t and stops it when the
// test ends. Failures and output are handled as by StartConsulT.
func StartPostgresT(t testing.TB) *Postgres {
	t.Helper()
	out := agentLog(t, "postgres")
	p, err := StartPostgres(context.Background(), PostgresOptions{Logger: out})
	if err != nil {
		t.Fatalf("start postgres: %v\n(server output: %s)", err, out.Name())
	}
	t.Cleanup(func() {
		if err := p.Stop(); err != nil {
			t.Errorf("stop postgres: %v", err)
		}
	})
	return p
}

// agentLog creates the file an agent's output goes to and arranges for it to be reported if t
// fails. The report runs after the agent is stopped (cleanups run last-in first-out and the
// caller registers Stop later), so it includes the shutdown.
func agentLog(t testing.TB, name string) *os.File {
	t.Helper()
	path := filepath.Join(t.TempDir(), name+".log")
	f, err := os.Create(path)
	if err != nil {
		t.Fatalf("create %s output file: %v", name, err)
	}
	t.Cleanup(func() {
		f.Close()
		if !t.Failed() {
			return
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Logf("%s agent output: %s (unreadable: %v)", name, path, err)
			return
		}
		t.Logf("%s agent output: %s (removed with the test's temp dir); last lines:\n%s",
			name, path, lastLines(b, 40))
	})
	return f
}

// ConsulClientT returns an API client for the agent.
func ConsulClientT(t testing.TB, c *Consul) *consulapi.Client {
	t.Helper()
	client, err := consulapi.NewClient(&consulapi.Config{Address: c.HTTPAddr, Scheme: "http"})
	if err != nil {
		t.Fatalf("consul client: %v", err)
	}
	return client
}

// StartClusterT starts a Cluster for the test t and stops it when the test ends. Failures and
// output are handled as by StartConsulT, with one output file per agent.
func StartClusterT(t testing.TB) *Cluster {
	t.Helper()
	c, err := StartCluster(context.Background(), ClusterOptions{Logger: func(name string) io.Writer { return agentLog(t, name) }})
	if err != nil {
		t.Fatalf("start cluster: %v", err)
	}
	t.Cleanup(func() {
		if err := c.Stop(); err != nil {
			t.Errorf("stop cluster: %v", err)
		}
	})
	return c
}

// StartVaultT starts a Vault dev server for the test t and stops it when the test ends.
func StartVaultT(t testing.TB) *Vault {
	t.Helper()
	out := agentLog(t, "vault")
	v, err := StartVault(context.Background(), out)
	if err != nil {
		t.Fatalf("start vault: %v\n(output: %s)", err, out.Name())
	}
	t.Cleanup(func() {
		if err := v.Stop(); err != nil {
			t.Errorf("stop vault: %v", err)
		}
	})
	return v
}
