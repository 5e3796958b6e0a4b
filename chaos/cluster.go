package chaos

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	consulapi "github.com/hashicorp/consul/api"
	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/dagflow/dagflow/api"
	"github.com/dagflow/dagflow/hcl/spec"
	"github.com/dagflow/dagflow/internal/devstack"
	"github.com/dagflow/dagflow/internal/serverproc"
	"github.com/dagflow/dagflow/internal/wait"
	"github.com/dagflow/dagflow/rules"
	"github.com/dagflow/dagflow/state"
)

// Stack is the Consul and Nomad every scenario runs against. Both run durable (not in dev
// mode): a dev agent keeps its state in memory, so restarting it would be a loss of all state,
// not the agent restart a real cluster lives through.
type Stack struct {
	Consul *devstack.Consul
	Nomad  *devstack.Nomad
	// Postgres is started by the first scenario that needs it (see StartPostgres).
	Postgres *devstack.Postgres
	Binary   string // the dagflow binary the servers run
	Dir      string // where logs, configurations and ledgers go

	// Agents is the multi-server cluster the cluster scenarios run on (see AgentsStack); nil
	// on the single-agent Stack, and until the first cluster scenario starts it.
	Agents *devstack.Cluster

	consul *consulapi.Client
	logs   []*os.File
	multi  *Stack // the Stack on Agents, once started
}

// nomadGCMaxAllocs is the Nomad client's gc_max_allocs: more than the allocations of every try
// ended within retention.purge_after (10 minutes), as docs/scheduler.md recommends for nodes
// running many short tries. With Nomad's default, 50, the client deletes an allocation the
// moment it ends, and a client restarted before it told the servers runs it again.
const nomadGCMaxAllocs = 5000

// StartStack starts the agents, logging to files in dir, and returns when Nomad's client is
// ready to run tasks.
func StartStack(ctx context.Context, dir, binary string) (*Stack, error) {
	s := &Stack{Binary: binary, Dir: dir}
	clog, err := s.logFile("consul.log")
	if err != nil {
		return nil, err
	}
	if s.Consul, err = devstack.StartConsul(ctx, devstack.ConsulOptions{Durable: true, Logger: clog}); err != nil {
		s.Close()
		return nil, err
	}
	nlog, err := s.logFile("nomad.log")
	if err != nil {
		s.Close()
		return nil, err
	}
	opts := devstack.NomadOptions{Durable: true, ConsulAddr: s.Consul.HTTPAddr, Logger: nlog, GCMaxAllocs: nomadGCMaxAllocs}
	if s.Nomad, err = devstack.StartNomad(ctx, opts); err != nil {
		s.Close()
		return nil, err
	}
	if s.consul, err = consulapi.NewClient(&consulapi.Config{Address: s.Consul.HTTPAddr, Scheme: "http"}); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

func (s *Stack) logFile(name string) (*os.File, error) {
	f, err := os.Create(filepath.Join(s.Dir, name))
	if err != nil {
		return nil, err
	}
	s.logs = append(s.logs, f)
	return f, nil
}

// StartPostgres starts the stack's PostgreSQL, unless it runs already, and creates an empty
// database named db in it, returning its URL.
func (s *Stack) StartPostgres(ctx context.Context, db string) (string, error) {
	if s.Postgres == nil {
		out, err := s.logFile("postgres.log")
		if err != nil {
			return "", err
		}
		if s.Postgres, err = devstack.StartPostgres(ctx, devstack.PostgresOptions{Logger: out}); err != nil {
			return "", err
		}
	}
	return s.Postgres.CreateDatabase(ctx, db)
}

// Close stops the agents. It is safe to call twice.
func (s *Stack) Close() error {
	if s.Agents != nil {
		// A Stack on a cluster: its Consul and Nomad are the cluster's members.
		err := s.Agents.Stop()
		closeLogs(s.logs)
		s.logs = nil
		return err
	}
	var err error
	if s.multi != nil {
		err = s.multi.Close()
	}
	err = errors.Join(err, s.Postgres.Stop(), s.Nomad.Stop(), s.Consul.Stop())
	closeLogs(s.logs)
	s.logs = nil
	return err
}

func closeLogs(logs []*os.File) {
	for _, f := range logs {
		f.Close()
	}
}

// Cluster is one dagflow installation on the stack, for one scenario: its own KV prefix, job
// prefix and service name, its server processes, an admin token, and the ledger its tasks
// write to.
type Cluster struct {
	Name    string
	Stack   *Stack
	Servers []*serverproc.Server
	Ledger  *Ledger
	DAG     DAG
	Token   string
	Dir     string

	mu        sync.Mutex
	paused    map[*serverproc.Server]bool
	triggered []string
}

// NewCluster starts n servers of a new installation named name, with config (HCL) added to
// their configuration files, waits until one leads, bootstraps its ACL and applies dag,
// recording starts in a new ledger. adjust, when not nil, adjusts the options of the i-th
// server (from 0) before it starts.
func (s *Stack) NewCluster(ctx context.Context, name string, n int, config string, dag DAG, adjust func(i int, o *serverproc.Options)) (*Cluster, error) {
	dir := filepath.Join(s.Dir, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	ledger, err := NewLedger(dir)
	if err != nil {
		return nil, err
	}
	c := &Cluster{Name: name, Stack: s, Ledger: ledger, DAG: dag, Dir: dir, paused: map[*serverproc.Server]bool{}}
	opts := serverproc.Options{
		Binary:      s.Binary,
		ConsulAddr:  s.Consul.HTTPAddr,
		NomadAddr:   "http://" + s.Nomad.HTTPAddr,
		KVPrefix:    "chaos-" + name + "/",
		JobPrefix:   "chaos." + name + ".",
		ServiceName: "dagflow-chaos-" + name,
		Config:      config,
		Dir:         dir,
	}
	for i := range n {
		o := opts
		if adjust != nil {
			adjust(i, &o)
		}
		srv, err := serverproc.Start(ctx, o)
		if err != nil {
			c.Close()
			return nil, err
		}
		c.Servers = append(c.Servers, srv)
	}
	if _, err := serverproc.WaitActive(ctx, c.Servers...); err != nil {
		c.Close()
		return nil, err
	}
	client, err := api.NewClient(&api.Config{Address: c.Servers[0].URL()})
	if err != nil {
		c.Close()
		return nil, err
	}
	tok, err := client.ACL().Bootstrap(ctx)
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("acl bootstrap: %w", err)
	}
	c.Token = tok.SecretID
	if err := c.apply(ctx, opts.KVPrefix); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// apply applies the DAG as `dagflow apply` does.
func (c *Cluster) apply(ctx context.Context, prefix string) error {
	cfg, diags := spec.NewParser().LoadSource([]byte(c.DAG.Source(c.Ledger)), "chaos.hcl")
	if diags.HasErrors() {
		return fmt.Errorf("parse chaos DAG: %s", diags.Error())
	}
	store, err := state.New(c.Stack.consul, prefix)
	if err != nil {
		return err
	}
	base, err := store.Catalog(ctx)
	if err != nil {
		return err
	}
	if _, err := store.Apply(ctx, base, cfg.DAGs, cfg.Queues, time.Now().UTC()); err != nil {
		return fmt.Errorf("apply chaos DAG: %w", err)
	}
	return nil
}

// Close kills every server of the installation.
func (c *Cluster) Close() {
	for _, s := range c.Servers {
		s.Close()
	}
}

// setPaused records whether s is paused, so that requests go to the others meanwhile.
func (c *Cluster) setPaused(s *serverproc.Server, paused bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.paused[s] = paused
}

// Live returns the servers that run and are not paused.
func (c *Cluster) Live() []*serverproc.Server {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []*serverproc.Server
	for _, s := range c.Servers {
		if s.Running() && !c.paused[s] {
			out = append(out, s)
		}
	}
	return out
}

// Others returns the live servers but s.
func (c *Cluster) Others(s *serverproc.Server) []*serverproc.Server {
	var out []*serverproc.Server
	for _, o := range c.Live() {
		if o != s {
			out = append(out, o)
		}
	}
	return out
}

// WaitActive waits until exactly one live server reports itself active.
func (c *Cluster) WaitActive(ctx context.Context) (*serverproc.Server, error) {
	return serverproc.WaitActive(ctx, c.Live()...)
}

// client returns an admin API client of server s.
func (c *Cluster) client(s *serverproc.Server) *api.Client {
	cl, err := api.NewClient(&api.Config{Address: s.URL(), Token: c.Token})
	if err != nil {
		panic(err) // the URL is always valid
	}
	return cl
}

// do calls f with an admin client of each live server in turn until one call succeeds, and
// returns the last error when none does.
func (c *Cluster) do(ctx context.Context, f func(*api.Client) error) error {
	err := errNoServer
	for _, s := range c.Live() {
		if err = f(c.client(s)); err == nil || ctx.Err() != nil {
			return err
		}
	}
	return err
}

// Trigger asks for a manual run of the DAG and returns its ID once an instance accepted the
// request (carried out or queued for the leader), retrying other instances, and again after a
// pause, while none does. A trigger that failed on its way may have been queued all the same:
// asking again with the same run ID creates the run once.
func (c *Cluster) Trigger(ctx context.Context) (string, error) {
	id := rules.RunID(rules.RunManual, time.Now())
	for {
		err := c.do(ctx, func(cl *api.Client) error {
			rctx, cancel := context.WithTimeout(ctx, 45*time.Second)
			defer cancel()
			_, err := cl.DAGs().Trigger(rctx, c.DAG.Name, &api.TriggerRequest{RunID: id})
			var apiErr *api.Error
			if errors.As(err, &apiErr) && apiErr.StatusCode == 409 {
				// The run exists: an earlier attempt was carried out after its answer was lost.
				return nil
			}
			return err
		})
		if err == nil {
			c.mu.Lock()
			c.triggered = append(c.triggered, id)
			c.mu.Unlock()
			return id, nil
		}
		select {
		case <-ctx.Done():
			return id, fmt.Errorf("trigger %s: %w (last error: %v)", c.DAG.Name, ctx.Err(), err)
		case <-time.After(time.Second):
		}
	}
}

// Triggered returns the IDs of every run Trigger asked for.
func (c *Cluster) Triggered() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.triggered...)
}

// Run reads run id through any live instance.
func (c *Cluster) Run(ctx context.Context, id string) (*api.Run, error) {
	var out *api.Run
	err := c.do(ctx, func(cl *api.Client) error {
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		r, _, err := cl.Runs().Info(rctx, c.DAG.Name, id)
		out = r
		return err
	})
	return out, err
}

// WaitRun reads run id every 10 ms until ok accepts it, which it returns, or until timeout
// passed; the error then says the run is not what, with the last read's error.
func (c *Cluster) WaitRun(ctx context.Context, id string, timeout time.Duration, what string, ok func(*api.Run) bool) (*api.Run, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		r, err := c.Run(ctx, id)
		if err == nil && ok(r) {
			return r, nil
		}
		if !wait.Sleep(ctx, 10*time.Millisecond) {
			return nil, fmt.Errorf("run %s: %s: %v", id, what, err)
		}
	}
}

// Progress reads the runs ids and returns how many tries of them have ended, and whether every
// run is finished. A run not readable (not created yet, or no instance answers) counts as
// unfinished.
func (c *Cluster) Progress(ctx context.Context, ids []string) (ended int, finished bool) {
	finished = true
	for _, id := range ids {
		r, err := c.Run(ctx, id)
		if err != nil {
			finished = false
			continue
		}
		if r.State != "success" && r.State != "failed" {
			finished = false
		}
		for _, ti := range r.Tasks {
			for _, try := range ti.Tries {
				if !try.EndedAt.IsZero() {
					ended++
				}
			}
		}
	}
	return ended, finished
}

// settle waits until no job of the installation is pending or running in Nomad, so that every
// task that will ever start has written to the ledger; it gives up after timeout.
func (c *Cluster) settle(ctx context.Context, timeout time.Duration) error {
	nc, err := nomadapi.NewClient(&nomadapi.Config{Address: "http://" + c.Stack.Nomad.HTTPAddr, TLSConfig: &nomadapi.TLSConfig{}})
	if err != nil {
		return err
	}
	deadline := time.Now().Add(timeout)
	for {
		q := (&nomadapi.QueryOptions{Prefix: "chaos." + c.Name + ".", Namespace: "*"}).WithContext(ctx)
		jobs, _, err := nc.Jobs().List(q)
		busy := 0
		for _, j := range jobs {
			if j.Status != "dead" {
				busy++
			}
		}
		if err == nil && busy == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("nomad still runs %d jobs of the installation after %s (last error: %v)", busy, timeout, err)
		}
		time.Sleep(500 * time.Millisecond)
	}
}
