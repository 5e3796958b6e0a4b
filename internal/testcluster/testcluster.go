// Package testcluster starts what acceptance tests of the API, the UI and the CLI run against:
// one real Consul and one real Nomad agent per test binary, and per test an installation of its
// own (KV and job prefixes) with dagflow server instances serving on free ports and an admin
// token from ACL bootstrap.
//
// A test binary using it calls Main from TestMain, which stops the agents after the tests.
package testcluster

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	consulapi "github.com/hashicorp/consul/api"
	"github.com/hashicorp/go-hclog"
	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/dagflow/dagflow/api"
	"github.com/dagflow/dagflow/config"
	"github.com/dagflow/dagflow/hcl/spec"
	"github.com/dagflow/dagflow/internal/devstack"
	"github.com/dagflow/dagflow/server"
	"github.com/dagflow/dagflow/state"
)

var (
	agentsOnce sync.Once
	agentsErr  error
	consulA    *devstack.Consul
	nomadA     *devstack.Nomad
	seq        atomic.Int64

	postgresOnce sync.Once
	postgresErr  error
	postgresA    *devstack.Postgres
)

// Main runs the tests of m and then stops the agents they started.
func Main(m *testing.M) {
	code := m.Run()
	if postgresA != nil {
		_ = postgresA.Stop()
	}
	if nomadA != nil {
		_ = nomadA.Stop()
	}
	if consulA != nil {
		_ = consulA.Stop()
	}
	os.Exit(code)
}

// Agents returns the Consul and Nomad HTTP addresses ("127.0.0.1:port" and
// "http://127.0.0.1:port"), starting the agents on first use.
func Agents(t testing.TB) (consulAddr, nomadAddr string) {
	t.Helper()
	agentsOnce.Do(func() {
		consulA, agentsErr = devstack.StartConsul(context.Background(), devstack.ConsulOptions{})
		if agentsErr != nil {
			return
		}
		nomadA, agentsErr = devstack.StartNomad(context.Background(), devstack.NomadOptions{ConsulAddr: consulA.HTTPAddr})
	})
	if agentsErr != nil {
		t.Fatalf("start agents: %v", agentsErr)
	}
	return consulA.HTTPAddr, "http://" + nomadA.HTTPAddr
}

// Postgres returns the URL of a new, empty database on the test binary's PostgreSQL server,
// starting the server on first use. Tests that stop PostgreSQL start one of their own
// (devstack.StartPostgresT) instead.
func Postgres(t testing.TB) string {
	t.Helper()
	postgresOnce.Do(func() {
		postgresA, postgresErr = devstack.StartPostgres(context.Background(), devstack.PostgresOptions{})
	})
	if postgresErr != nil {
		t.Fatalf("start postgres: %v", postgresErr)
	}
	url, err := postgresA.CreateDatabase(context.Background(), fmt.Sprintf("tc%d", seq.Add(1)))
	if err != nil {
		t.Fatal(err)
	}
	return url
}

// Cluster is one installation with its server instances.
type Cluster struct {
	t         testing.TB
	Consul    *consulapi.Client
	Nomad     *nomadapi.Client
	Store     *state.Store
	Instances []*Instance
	// AdminToken is the secret of the bootstrap token.
	AdminToken string
	cfg        config.Server
}

// Instance is one dagflow server of a cluster.
type Instance struct {
	Server *server.Server
	URL    string // http://127.0.0.1:port
}

// Options tune a cluster.
type Options struct {
	Instances int // zero: one
	// Config, when set, adjusts each instance's configuration before it starts.
	Config func(*config.Server)
	// ConsulAddr and NomadAddr, when set, are the agents the instances use ("127.0.0.1:port"
	// and "http://127.0.0.1:port", a devstack.Cluster's, say) instead of the test binary's
	// dev agents.
	ConsulAddr, NomadAddr string
	// Log, when set, receives every instance's log at trace level instead of the test's log
	// at warn: for tests that read what a server logged.
	Log io.Writer
}

// New starts a cluster whose first instance is active once New returns, bootstraps its ACL
// and stops everything when the test ends.
func New(t testing.TB, o Options) *Cluster {
	t.Helper()
	consulAddr, nomadAddr := o.ConsulAddr, o.NomadAddr
	if consulAddr == "" || nomadAddr == "" {
		consulAddr, nomadAddr = Agents(t)
	}
	n := seq.Add(1)
	cfg := config.Default()
	cfg.KVPrefix = fmt.Sprintf("tc%d-%d/", os.Getpid(), n)
	cfg.JobPrefix = fmt.Sprintf("tc%d-", n)
	cfg.Consul.Address = consulAddr
	cfg.Nomad.Address = nomadAddr
	cfg.Leader.LockDelay = time.Millisecond
	cfg.Retention.PurgeAfter = time.Minute
	c := &Cluster{t: t, cfg: *cfg}
	var err error
	if c.Consul, err = cfg.ConsulClient(); err != nil {
		t.Fatal(err)
	}
	if c.Nomad, err = cfg.NomadClient(); err != nil {
		t.Fatal(err)
	}
	if c.Store, err = state.New(c.Consul, cfg.KVPrefix); err != nil {
		t.Fatal(err)
	}
	count := max(o.Instances, 1)
	for i := 0; i < count; i++ {
		c.start(o.Config, o.Log)
		if i == 0 {
			c.waitRole(c.Instances[0], server.RoleActive)
		}
	}
	tok, err := c.Client(0, "").ACL().Bootstrap(context.Background())
	if err != nil {
		t.Fatalf("acl bootstrap: %v", err)
	}
	c.AdminToken = tok.SecretID
	return c
}

func (c *Cluster) start(adjust func(*config.Server), log io.Writer) {
	t := c.t
	cfg := c.cfg
	cfg.Listen = freeAddr(t)
	if adjust != nil {
		adjust(&cfg)
	}
	logOpts := &hclog.LoggerOptions{Name: fmt.Sprintf("server%d", len(c.Instances)), Level: hclog.Warn, Output: testWriter{t}}
	if log != nil {
		logOpts.Level, logOpts.Output = hclog.Trace, log
	}
	logger := hclog.New(logOpts)
	s := server.New(&cfg, c.Consul, logger)
	if err := s.Start(context.Background()); err != nil {
		t.Fatalf("start server: %v", err)
	}
	t.Cleanup(s.Stop)
	c.Instances = append(c.Instances, &Instance{Server: s, URL: "http://" + s.Addr()})
}

func (c *Cluster) waitRole(in *Instance, role string) {
	deadline := time.Now().Add(30 * time.Second)
	for in.Server.Role() != role {
		if time.Now().After(deadline) {
			c.t.Fatalf("instance %s did not become %s", in.URL, role)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Standby returns an instance that is not active, failing the test when there is none.
func (c *Cluster) Standby() *Instance {
	for _, in := range c.Instances {
		if in.Server.Role() == server.RoleStandby {
			return in
		}
	}
	c.t.Fatal("no standby instance")
	return nil
}

// Client returns an API client for instance i with token (empty: none).
func (c *Cluster) Client(i int, token string) *api.Client {
	cl, err := api.NewClient(&api.Config{Address: c.Instances[i].URL, Token: token})
	if err != nil {
		c.t.Fatal(err)
	}
	return cl
}

// Token creates a token with role and returns its secret.
func (c *Cluster) Token(role string) string {
	tok, err := c.Client(0, c.AdminToken).ACL().Create(context.Background(), &api.TokenRequest{Name: "test " + role, Role: role})
	if err != nil {
		c.t.Fatalf("create %s token: %v", role, err)
	}
	return tok.SecretID
}

// Apply applies the DAGs and queues in src (HCL) as `dagflow apply` does.
func (c *Cluster) Apply(src string) {
	c.t.Helper()
	cfg, diags := spec.NewParser().LoadSource([]byte(src), "test.hcl")
	if diags.HasErrors() {
		c.t.Fatal(diags.Error())
	}
	ctx := context.Background()
	base, err := c.Store.Catalog(ctx)
	if err != nil {
		c.t.Fatal(err)
	}
	if _, err := c.Store.Apply(ctx, base, cfg.DAGs, cfg.Queues, time.Now()); err != nil {
		c.t.Fatal(err)
	}
}

// WaitRun polls run id of dag until ok accepts it, failing the test after timeout.
func (c *Cluster) WaitRun(dag, id string, timeout time.Duration, what string, ok func(*api.Run) bool) *api.Run {
	c.t.Helper()
	cl := c.Client(0, c.AdminToken)
	deadline := time.Now().Add(timeout)
	var last *api.Run
	for {
		r, _, err := cl.Runs().Info(context.Background(), dag, id)
		if err == nil {
			last = r
			if ok(r) {
				return r
			}
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("run %s of %s: not %s after %s; last: %+v (err %v)", id, dag, what, timeout, last, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TriggerRuns triggers n manual runs of dag one after another, each once the one before
// succeeded, and returns their IDs, oldest first.
func (c *Cluster) TriggerRuns(dag string, n int) []string {
	c.t.Helper()
	cl := c.Client(0, c.AdminToken)
	var ids []string
	for range n {
		res, err := cl.DAGs().Trigger(context.Background(), dag, &api.TriggerRequest{})
		if err != nil {
			c.t.Fatal(err)
		}
		ids = append(ids, res.RunIDs[0])
		c.WaitRun(dag, res.RunIDs[0], time.Minute, "succeeded", func(r *api.Run) bool { return r.State == "success" })
	}
	return ids
}

// WaitKept waits until Consul holds n runs of dag, as retention leaves them, failing the test
// after a minute.
func (c *Cluster) WaitKept(dag string, n int) {
	c.t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		recs, err := c.Store.Runs(context.Background(), dag)
		if err == nil && len(recs) == n {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("Consul still holds %d runs of %s (%v); want %d", len(recs), dag, err, n)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Finished reports whether a run is over.
func Finished(r *api.Run) bool { return r.State == "success" || r.State == "failed" }

func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// testWriter sends log output to the test's log.
type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}
