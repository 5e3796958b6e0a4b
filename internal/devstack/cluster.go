package devstack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	consulapi "github.com/hashicorp/consul/api"
	nomadapi "github.com/hashicorp/nomad/api"
)

const (
	// clusterServers is how many Consul servers and how many Nomad servers a Cluster runs:
	// the smallest quorum that survives the loss of one, as production clusters are sized.
	clusterServers = 3

	// ClusterHeartbeatGrace is the Nomad servers' heartbeat_grace and min_heartbeat_ttl: a
	// client that misses heartbeats for about this long plus its TTL is marked down and its
	// allocations lost. Nomad's defaults (10 s each) make a node loss take 20 s or more; 5 s
	// keeps chaos tests short while a loaded 2-core machine still heartbeats in time.
	ClusterHeartbeatGrace = "5s"
)

// ClusterNodeQueues is the "queues" node meta of a Cluster's Nomad clients, one entry per
// client: both serve the default queue, and each one queue the other does not, so a queue
// constrained to "cpu" or "gpu" (see docs/language.md, queue block) runs on one node only.
var ClusterNodeQueues = []string{"default,cpu", "default,gpu"}

// ClusterOptions configures StartCluster.
type ClusterOptions struct {
	// Logger returns where the output of the agent named name ("consul-server-1",
	// "nomad-client-2", ...) goes; nil, or a nil writer: discarded.
	Logger func(name string) io.Writer

	// GCMaxAllocs is each Nomad client's gc_max_allocs, as NomadOptions.GCMaxAllocs.
	GCMaxAllocs int
}

// Cluster is a multi-server Consul and Nomad on this machine, joined the way production
// joins: three Consul servers (bootstrap_expect = 3, retry_join), one Consul client agent,
// three Nomad servers (bootstrap_expect = 3, server_join) and two Nomad clients, one per
// entry of ClusterNodeQueues, that find the servers by their RPC addresses. No agent is in
// dev mode: each keeps its Raft log or its allocations in a data dir of its own, so a killed
// agent restarts with its state.
//
// Every Nomad agent, and whatever uses the cluster (dagflow servers), talks to the one Consul
// client agent, as production programs talk to the agent on their machine. One agent instead
// of one per Nomad agent is a choice for a 2-core machine: each Consul agent costs a process
// and gossip, and what the Consul scenarios exercise is the loss of a server behind the agent.
//
// The members are exported so tests can Kill, Restart and Stop one; Stop stops them all.
type Cluster struct {
	ConsulServers []*Consul
	ConsulAgent   *Consul // the client agent that Nomad and dagflow talk to
	NomadServers  []*Nomad
	NomadClients  []*Nomad // in the order of ClusterNodeQueues

	// apiMu guards the API clients ConsulLeader and NomadLeader reuse: a client made per call
	// opens new connections each time, and a test polling for a new leader soon runs into the
	// agents' per-client connection limits (Nomad answers 429).
	apiMu     sync.Mutex
	consulAPI *consulapi.Client
	nomadAPI  *nomadapi.Client
}

// StartCluster starts the agents on free loopback ports and returns when Consul has a leader
// and takes writes through the client agent, Nomad's servers have a leader and a keyring, and
// both Nomad clients are ready with a healthy raw_exec driver. Formation takes about 10 to
// 20 s on an idle 2-core machine. On failure nothing is left running.
func StartCluster(ctx context.Context, opts ClusterOptions) (*Cluster, error) {
	logger := func(name string) io.Writer {
		if opts.Logger == nil {
			return nil
		}
		return opts.Logger(name)
	}
	c := &Cluster{}
	if err := c.startConsul(ctx, logger); err != nil {
		c.Stop()
		return nil, err
	}
	if err := c.startNomad(ctx, logger, opts.GCMaxAllocs); err != nil {
		c.Stop()
		return nil, err
	}
	return c, nil
}

// ConsulAddr is the HTTP address ("127.0.0.1:PORT") of the Consul client agent.
func (c *Cluster) ConsulAddr() string { return c.ConsulAgent.HTTPAddr }

// NomadAddr is the HTTP address ("http://127.0.0.1:PORT") of the first Nomad client, which
// serves the whole API and forwards to whichever server leads, as the agent on an operator's
// machine does. It stays up when a Nomad server is killed.
func (c *Cluster) NomadAddr() string { return "http://" + c.NomadClients[0].HTTPAddr }

// Stop stops every agent, clients first. It is safe to call twice.
func (c *Cluster) Stop() error {
	var errs []error
	for _, group := range [][]*Nomad{c.NomadClients, c.NomadServers} {
		for _, n := range group {
			errs = append(errs, n.Stop())
		}
	}
	errs = append(errs, c.ConsulAgent.Stop())
	for _, s := range c.ConsulServers {
		errs = append(errs, s.Stop())
	}
	return errors.Join(errs...)
}

// newMember creates the temp dir of a cluster member and takes its owner lock.
func newMember(kind string) (bin, dir string, lock *os.File, err error) {
	if bin, err = Binary(kind); err != nil {
		return "", "", nil, err
	}
	sweepStale()
	if dir, err = os.MkdirTemp("", "devstack-"+kind+"-"); err != nil {
		return "", "", nil, fmt.Errorf("create %s temp dir: %w", kind, err)
	}
	if lock, err = lockDir(dir); err != nil {
		removeDir(dir)
		return "", "", nil, fmt.Errorf("start %s agent: %w", kind, err)
	}
	return bin, dir, lock, nil
}

// startAll runs start for each of n members at once and returns every error. Members of a
// quorum must start together: none of them is ready before the others have joined it.
func startAll(n int, start func(i int) error) error {
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { errs[i] = start(i) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// startConsul starts the Consul servers and the client agent. Ports are picked up front,
// because every member's retry_join names the others' Serf LAN ports; a port taken meanwhile
// fails the start rather than being retried.
func (c *Cluster) startConsul(ctx context.Context, logger func(string) io.Writer) error {
	ports := make([]consulPorts, clusterServers+1)
	var join []string
	for i := range ports {
		free, err := FreePorts(6)
		if err != nil {
			return err
		}
		ports[i] = consulPorts{HTTP: free[0], DNS: free[1], SerfLAN: free[2], SerfWAN: free[3], Server: free[4], GRPC: free[5]}
		if i < clusterServers {
			join = append(join, strconv.Quote("127.0.0.1:"+strconv.Itoa(ports[i].SerfLAN)))
		}
	}
	// raft_multiplier 1 is dev mode's timing: a leader is elected, and a lost one replaced, in
	// a second or two instead of five to ten. retry_interval 1s (default 30s) joins members
	// that started a moment before the others without a long wait.
	member := func(name string, server bool) string {
		conf := fmt.Sprintf(`
node_name      = %q
retry_join     = [%s]
retry_interval = "1s"
`, name, strings.Join(join, ", "))
		if server {
			conf += fmt.Sprintf(`
server           = true
bootstrap_expect = %d

performance {
  raft_multiplier = 1
}
`, clusterServers)
		}
		return conf
	}
	agents := make([]*Consul, len(ports))
	for i := range agents {
		name, server := "consul-server-"+strconv.Itoa(i+1), i < clusterServers
		if !server {
			name = "consul-client-1"
		}
		bin, dir, lock, err := newMember("consul")
		if err != nil {
			return err
		}
		a := &Consul{agent: agent{name: "consul", dir: dir, lock: lock}, bin: bin, logger: logger(name), durable: true, member: member(name, server)}
		if server {
			c.ConsulServers = append(c.ConsulServers, a)
		} else {
			c.ConsulAgent = a
		}
		agents[i] = a
		if err := a.writeConfig(ports[i]); err != nil {
			return err
		}
		a.HTTPAddr = "127.0.0.1:" + strconv.Itoa(ports[i].HTTP)
	}
	return startAll(len(agents), func(i int) error {
		a := agents[i]
		a.mu.Lock()
		defer a.mu.Unlock()
		if err := a.start(ctx); err != nil {
			return fmt.Errorf("start consul member %d of the cluster: %w", i+1, err)
		}
		return nil
	})
}

// startNomad starts the Nomad servers, then the clients once the servers have a keyring:
// a client that registers before it exists is refused and tries again only 15 to 30 s later.
func (c *Cluster) startNomad(ctx context.Context, logger func(string) io.Writer, gcMaxAllocs int) error {
	ports := make([]nomadPorts, clusterServers+len(ClusterNodeQueues))
	var serfJoin, rpcJoin []string
	for i := range ports {
		free, err := FreePorts(3)
		if err != nil {
			return err
		}
		ports[i] = nomadPorts{HTTP: free[0], RPC: free[1], Serf: free[2]}
		if i < clusterServers {
			serfJoin = append(serfJoin, strconv.Quote("127.0.0.1:"+strconv.Itoa(ports[i].Serf)))
			rpcJoin = append(rpcJoin, strconv.Quote("127.0.0.1:"+strconv.Itoa(ports[i].RPC)))
		}
	}
	create := func(i int, name, conf string, ready func(context.Context, *nomadapi.Client) error) (*Nomad, error) {
		bin, dir, lock, err := newMember("nomad")
		if err != nil {
			return nil, err
		}
		n := &Nomad{agent: agent{name: "nomad", dir: dir, lock: lock}, bin: bin, logger: logger(name), durable: true, ready: ready, ports: ports[i]}
		n.HTTPAddr = "127.0.0.1:" + strconv.Itoa(ports[i].HTTP)
		data := filepath.Join(dir, "data")
		if err := os.MkdirAll(data, 0o700); err != nil {
			return n, fmt.Errorf("create nomad data dir: %w", err)
		}
		conf = fmt.Sprintf(`name                 = %q
bind_addr            = "127.0.0.1"
data_dir             = %q
disable_update_check = true

ports {
  http = %d
  rpc  = %d
  serf = %d
}

advertise {
  http = "127.0.0.1"
  rpc  = "127.0.0.1"
  serf = "127.0.0.1"
}

# Servers are found by address (server_join, client.servers), not through Consul.
consul {
  address          = %q
  server_auto_join = false
  client_auto_join = false
}
`, name, data, ports[i].HTTP, ports[i].RPC, ports[i].Serf, c.ConsulAgent.HTTPAddr) + conf
		if err := os.WriteFile(n.configPath(), []byte(conf), 0o600); err != nil {
			return n, fmt.Errorf("write nomad config: %w", err)
		}
		return n, nil
	}
	// The servers' heartbeat settings make a lost client's allocations lost within seconds
	// (see ClusterHeartbeatGrace); raft_multiplier 1 gives dev mode's election timing.
	for i := range clusterServers {
		n, err := create(i, "nomad-server-"+strconv.Itoa(i+1), fmt.Sprintf(`
server {
  enabled           = true
  bootstrap_expect  = %d
  raft_multiplier   = 1
  heartbeat_grace   = %q
  min_heartbeat_ttl = %q

  server_join {
    retry_join     = [%s]
    retry_interval = "1s"
  }
}

client {
  enabled = false
}
`, clusterServers, ClusterHeartbeatGrace, ClusterHeartbeatGrace, strings.Join(serfJoin, ", ")), nomadServerReady)
		if n != nil {
			c.NomadServers = append(c.NomadServers, n)
		}
		if err != nil {
			return err
		}
	}
	if err := startAll(clusterServers, func(i int) error {
		n := c.NomadServers[i]
		n.mu.Lock()
		defer n.mu.Unlock()
		if err := n.start(ctx); err != nil {
			return fmt.Errorf("start nomad server %d of the cluster: %w", i+1, err)
		}
		return nil
	}); err != nil {
		return err
	}
	gc := ""
	if gcMaxAllocs > 0 {
		gc = fmt.Sprintf("  gc_max_allocs = %d\n", gcMaxAllocs)
	}
	for j, queues := range ClusterNodeQueues {
		name := "nomad-client-" + strconv.Itoa(j+1)
		n, err := create(clusterServers+j, name, fmt.Sprintf(`
server {
  enabled = false
}

client {
  enabled = true
  servers = [%s]
%s
  options = {
    "fingerprint.denylist" = %q
  }

  meta {
    queues = %q
  }
}

plugin "raw_exec" {
  config {
    enabled = true
  }
}
`, strings.Join(rpcJoin, ", "), gc, fingerprintDenylist, queues), nodeReady(name))
		if n != nil {
			c.NomadClients = append(c.NomadClients, n)
		}
		if err != nil {
			return err
		}
	}
	return startAll(len(c.NomadClients), func(i int) error {
		n := c.NomadClients[i]
		n.mu.Lock()
		defer n.mu.Unlock()
		if err := n.start(ctx); err != nil {
			return fmt.Errorf("start nomad client %d of the cluster: %w", i+1, err)
		}
		return nil
	})
}

// nomadServerReady reports whether the server knows a leader and the cluster has a keyring,
// without which clients cannot register.
func nomadServerReady(ctx context.Context, client *nomadapi.Client) error {
	q := (&nomadapi.QueryOptions{}).WithContext(ctx)
	leader, err := client.Status().Leader()
	if err != nil {
		return fmt.Errorf("get leader: %w", err)
	}
	if leader == "" {
		return errors.New("no leader yet")
	}
	keys, _, err := client.Keyring().List(q)
	if err != nil {
		return fmt.Errorf("list keyring: %w", err)
	}
	if len(keys) == 0 {
		return errors.New("no keyring yet")
	}
	return nil
}

// nodeReady returns a check that the client node named name is ready, eligible and has a
// healthy raw_exec driver.
func nodeReady(name string) func(context.Context, *nomadapi.Client) error {
	return func(ctx context.Context, client *nomadapi.Client) error {
		stubs, _, err := client.Nodes().List((&nomadapi.QueryOptions{}).WithContext(ctx))
		if err != nil {
			return fmt.Errorf("list nodes: %w", err)
		}
		for _, s := range stubs {
			if s.Name != name {
				continue
			}
			d := s.Drivers["raw_exec"]
			switch {
			case s.Status != nomadapi.NodeStatusReady:
				return fmt.Errorf("node %s is %s", name, s.Status)
			case s.SchedulingEligibility != nomadapi.NodeSchedulingEligible:
				return fmt.Errorf("node %s is %s", name, s.SchedulingEligibility)
			case d == nil || !d.Detected || !d.Healthy:
				return fmt.Errorf("node %s is ready but raw_exec is not healthy yet", name)
			}
			return nil
		}
		return fmt.Errorf("node %s not registered among %d", name, len(stubs))
	}
}

// ConsulLeader returns the Consul server that is the Raft leader, as the client agent's
// /v1/status/leader names it.
func (c *Cluster) ConsulLeader(ctx context.Context) (*Consul, error) {
	c.apiMu.Lock()
	if c.consulAPI == nil {
		var err error
		if c.consulAPI, err = consulapi.NewClient(&consulapi.Config{Address: c.ConsulAgent.HTTPAddr, Scheme: "http"}); err != nil {
			c.apiMu.Unlock()
			return nil, fmt.Errorf("create consul client: %w", err)
		}
	}
	client := c.consulAPI
	c.apiMu.Unlock()
	leader, err := client.Status().LeaderWithQueryOptions((&consulapi.QueryOptions{}).WithContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("get consul leader: %w", err)
	}
	for _, s := range c.ConsulServers {
		if leader == "127.0.0.1:"+strconv.Itoa(s.ports.Server) {
			return s, nil
		}
	}
	return nil, fmt.Errorf("consul leader %q is none of the cluster's servers", leader)
}

// NomadLeader returns the Nomad server that is the Raft leader, as /v1/status/leader of the
// first client names it.
func (c *Cluster) NomadLeader(ctx context.Context) (*Nomad, error) {
	client, err := c.nomadClient()
	if err != nil {
		return nil, err
	}
	leader, err := client.Status().Leader()
	if err != nil {
		return nil, fmt.Errorf("get nomad leader: %w", err)
	}
	for _, s := range c.NomadServers {
		if leader == "127.0.0.1:"+strconv.Itoa(s.ports.RPC) {
			return s, nil
		}
	}
	return nil, fmt.Errorf("nomad leader %q is none of the cluster's servers", leader)
}

// NomadNode returns the Nomad client whose node has ID nodeID, looked up through any client
// that answers (the one asked about may be down).
func (c *Cluster) NomadNode(ctx context.Context, nodeID string) (*Nomad, error) {
	var errs []error
	for _, n := range c.NomadClients {
		client, err := nomadapi.NewClient(&nomadapi.Config{Address: "http://" + n.HTTPAddr, TLSConfig: &nomadapi.TLSConfig{}})
		if err != nil {
			return nil, fmt.Errorf("create nomad client: %w", err)
		}
		node, _, err := client.Nodes().Info(nodeID, (&nomadapi.QueryOptions{}).WithContext(ctx))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for i, m := range c.NomadClients {
			if node.Name == "nomad-client-"+strconv.Itoa(i+1) {
				return m, nil
			}
		}
		return nil, fmt.Errorf("nomad node %s (%s) is none of the cluster's clients", nodeID, node.Name)
	}
	return nil, fmt.Errorf("look up nomad node %s: %w", nodeID, errors.Join(errs...))
}

// nomadClient returns the API client of the first Nomad client agent, made on the first call.
func (c *Cluster) nomadClient() (*nomadapi.Client, error) {
	c.apiMu.Lock()
	defer c.apiMu.Unlock()
	if c.nomadAPI == nil {
		client, err := nomadapi.NewClient(&nomadapi.Config{Address: c.NomadAddr(), TLSConfig: &nomadapi.TLSConfig{}})
		if err != nil {
			return nil, fmt.Errorf("create nomad client: %w", err)
		}
		c.nomadAPI = client
	}
	return c.nomadAPI, nil
}
