package chaos

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	consulapi "github.com/hashicorp/consul/api"
	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/dagflow/dagflow/api"
	"github.com/dagflow/dagflow/internal/devstack"
)

// AgentsStack returns the Stack of the multi-server cluster (devstack.Cluster: three Consul
// servers behind one client agent, three Nomad servers, two Nomad clients), starting it on the
// first call. Its Consul is the cluster's client agent and its Nomad the first Nomad client,
// which is what the dagflow servers talk to: the faults of the cluster scenarios hit the
// servers and the second client behind them, never those two. Close of s stops it.
func (s *Stack) AgentsStack(ctx context.Context) (*Stack, error) {
	if s.multi != nil {
		return s.multi, nil
	}
	m := &Stack{Binary: s.Binary, Dir: s.Dir}
	var logErr error
	logger := func(name string) io.Writer {
		f, err := m.logFile("cluster-" + name + ".log")
		if err != nil {
			logErr = err
			return nil
		}
		return f
	}
	// The cluster picks its ports up front and fails when one is taken meanwhile (by the
	// other tests of a loaded machine: it happened), so a failed start is tried again.
	var agents *devstack.Cluster
	var err error
	for attempt := 1; attempt <= clusterStarts; attempt++ {
		if agents, err = devstack.StartCluster(ctx, devstack.ClusterOptions{Logger: logger, GCMaxAllocs: nomadGCMaxAllocs}); err == nil {
			break
		}
		closeLogs(m.logs)
		m.logs = nil
	}
	if err != nil {
		return nil, fmt.Errorf("start the cluster (%d attempts): %w", clusterStarts, err)
	}
	m.Agents, m.Consul, m.Nomad = agents, agents.ConsulAgent, agents.NomadClients[0]
	if logErr != nil {
		m.Close()
		return nil, logErr
	}
	if m.consul, err = consulapi.NewClient(&consulapi.Config{Address: agents.ConsulAddr(), Scheme: "http"}); err != nil {
		m.Close()
		return nil, err
	}
	if err := spreadTries(agents); err != nil {
		m.Close()
		return nil, err
	}
	s.multi = m
	return m, nil
}

// clusterStarts is how often AgentsStack tries to start the cluster.
const clusterStarts = 3

// spreadTries sets Nomad's scheduler algorithm to spread: with the default, binpack, the few
// small tries of a short scenario all land on one client, and the faults aimed at the second
// client would find nothing running there.
func spreadTries(agents *devstack.Cluster) error {
	nc, err := nomadapi.NewClient(&nomadapi.Config{Address: agents.NomadAddr(), TLSConfig: &nomadapi.TLSConfig{}})
	if err != nil {
		return err
	}
	cur, _, err := nc.Operator().SchedulerGetConfiguration(nil)
	if err != nil {
		return fmt.Errorf("read nomad scheduler configuration: %w", err)
	}
	conf := cur.SchedulerConfig
	conf.SchedulerAlgorithm = nomadapi.SchedulerAlgorithmSpread
	if _, _, err := nc.Operator().SchedulerSetConfiguration(conf, nil); err != nil {
		return fmt.Errorf("set nomad scheduler algorithm to spread: %w", err)
	}
	return nil
}

// clusterDAG is the DAG of the cluster scenarios: half the lanes of the others, three deep,
// tasks twice as long, so that a fault finds tries running on both Nomad clients while the
// eight agents of the cluster leave the machine's two cores some room.
func clusterDAG(p Params) DAG {
	return DAG{Name: "chaos", Lanes: max(2, p.Lanes/2), Depth: 3, Sleep: 2 * p.Sleep}
}

// drainDeadline is the drain's deadline: far longer than a try (a few seconds), so every try
// running on the drained node finishes before Nomad would stop it.
const drainDeadline = time.Minute

// clusterScenarios returns the scenarios that run on the multi-server cluster.
func clusterScenarios() []Scenario {
	drains := &drainLog{}
	return []Scenario{
		{
			Name:    "consul-leader",
			Title:   "kill -9 the Consul Raft leader server (of 3), restart it once another leads",
			Faults:  2,
			Cluster: true,
			DAG:     clusterDAG,
			Inject: func(ctx context.Context, c *Cluster, _ int) (time.Duration, string, error) {
				return killRaftLeader(ctx, c, "consul")
			},
		},
		{
			Name:    "nomad-leader",
			Title:   "kill -9 the Nomad Raft leader server (of 3), restart it once another leads",
			Faults:  2,
			Cluster: true,
			DAG:     clusterDAG,
			Inject: func(ctx context.Context, c *Cluster, _ int) (time.Duration, string, error) {
				return killRaftLeader(ctx, c, "nomad")
			},
		},
		{
			Name:    "client-kill",
			Title:   "kill -9 the Nomad client running tries (its tasks die with it), restart it once Nomad marked its node down",
			Faults:  1,
			Cluster: true,
			DAG:     clusterDAG,
			Inject:  killClient,
			Verify:  verifyLost,
		},
		{
			Name:    "drain",
			Title:   "drain the Nomad client running tries (deadline 1 min), make it eligible again once drained",
			Faults:  1,
			Cluster: true,
			DAG:     clusterDAG,
			Inject:  drains.inject,
			Verify:  drains.verify,
		},
		partitionScenario(),
	}
}

// killRaftLeader kills -9 the Raft leader of Consul's or Nomad's servers, waits until the
// others elected another and a dagflow server leads, then restarts the killed one. The
// recovery measured is from the kill to a new Raft leader answering and a dagflow leader.
func killRaftLeader(ctx context.Context, c *Cluster, what string) (time.Duration, string, error) {
	agents := c.Stack.Agents
	type member interface {
		Kill() error
		Restart(context.Context) error
	}
	leader := func() (member, error) {
		if what == "consul" {
			return agents.ConsulLeader(ctx)
		}
		return agents.NomadLeader(ctx)
	}
	old, err := leader()
	if err != nil {
		return 0, "", err
	}
	at := time.Now()
	if err := old.Kill(); err != nil {
		return 0, "", err
	}
	wctx, cancel := context.WithTimeout(ctx, recoverTimeout)
	defer cancel()
	for {
		l, err := leader()
		if err == nil && l != old {
			break
		}
		if wctx.Err() != nil {
			return 0, "", fmt.Errorf("no new %s leader %s after killing the old one (last error: %v)", what, recoverTimeout, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	elected := time.Since(at)
	if _, err := waitActive(ctx, c.Live()...); err != nil {
		return 0, "", fmt.Errorf("after killing the %s leader: %w", what, err)
	}
	took := time.Since(at)
	if err := old.Restart(ctx); err != nil {
		return took, "", fmt.Errorf("restart the old %s leader: %w", what, err)
	}
	return took, fmt.Sprintf("new %s leader elected after %s", what, elected.Round(100*time.Millisecond)), nil
}

// victim returns the second Nomad client and its node ID once it runs a try of the
// installation. The first client serves the API dagflow talks to, so it is never the one hit.
func victim(ctx context.Context, c *Cluster) (*devstack.Nomad, string, error) {
	nc, err := nomadapi.NewClient(&nomadapi.Config{Address: "http://" + c.Stack.Nomad.HTTPAddr, TLSConfig: &nomadapi.TLSConfig{}})
	if err != nil {
		return nil, "", err
	}
	target := c.Stack.Agents.NomadClients[1]
	wctx, cancel := context.WithTimeout(ctx, recoverTimeout)
	defer cancel()
	for {
		allocs, _, err := nc.Allocations().List((&nomadapi.QueryOptions{Namespace: "*"}).WithContext(wctx))
		for _, a := range allocs {
			if a.ClientStatus != nomadapi.AllocClientStatusRunning || !strings.HasPrefix(a.JobID, "chaos."+c.Name+".") {
				continue
			}
			if n, err := c.Stack.Agents.NomadNode(wctx, a.NodeID); err == nil && n == target {
				return target, a.NodeID, nil
			}
		}
		if wctx.Err() != nil {
			return nil, "", fmt.Errorf("no try of the installation ran on the second Nomad client within %s (last error: %v)", recoverTimeout, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// waitNode waits until Nomad reports node nodeID with status, through the first client.
func waitNode(ctx context.Context, c *Cluster, nodeID, status string) error {
	nc, err := nomadapi.NewClient(&nomadapi.Config{Address: "http://" + c.Stack.Nomad.HTTPAddr, TLSConfig: &nomadapi.TLSConfig{}})
	if err != nil {
		return err
	}
	wctx, cancel := context.WithTimeout(ctx, recoverTimeout)
	defer cancel()
	for {
		n, _, err := nc.Nodes().Info(nodeID, (&nomadapi.QueryOptions{}).WithContext(wctx))
		if err == nil && n.Status == status {
			return nil
		}
		if wctx.Err() != nil {
			return fmt.Errorf("nomad node %s not %s after %s (last error: %v)", nodeID, status, recoverTimeout, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// killClient kills -9 the second Nomad client once it runs tries, waits until Nomad marks its
// node down (its allocations lost) and a dagflow server leads, then restarts it. The recovery
// measured is from the kill to the node down.
func killClient(ctx context.Context, c *Cluster, _ int) (time.Duration, string, error) {
	n, nodeID, err := victim(ctx, c)
	if err != nil {
		return 0, "", err
	}
	at := time.Now()
	if err := n.Kill(); err != nil {
		return 0, "", err
	}
	if err := waitNode(ctx, c, nodeID, nomadapi.NodeStatusDown); err != nil {
		return 0, "", err
	}
	took := time.Since(at)
	if _, err := waitActive(ctx, c.Live()...); err != nil {
		return took, "", err
	}
	if err := n.Restart(ctx); err != nil {
		return took, "", fmt.Errorf("restart the killed client: %w", err)
	}
	return took, fmt.Sprintf("node %s down %s after the kill", nodeID, took.Round(100*time.Millisecond)), nil
}

// verifyLost checks that the tries the client kill ended say their node was lost, and counts
// them: a lost try is failed with that message and retried (the ledger check has counted it
// once).
func verifyLost(_ context.Context, _ *Cluster, runs map[string]*api.Run, _ Params) (notes, problems []string) {
	lost := 0
	for _, r := range runs {
		for _, ti := range r.Tasks {
			for _, try := range ti.Tries {
				switch {
				case strings.HasPrefix(try.Message, "node lost"):
					lost++
					if try.State != "failed" {
						problems = append(problems, fmt.Sprintf("%s/%s %s try %d: node lost but state %s", r.DAG, r.ID, ti.Task, try.Try, try.State))
					}
				case strings.Contains(try.Message, "stopped outside dagflow"):
					problems = append(problems, fmt.Sprintf("%s/%s %s try %d: %q; a try on a killed node must read as lost", r.DAG, r.ID, ti.Task, try.Try, try.Message))
				}
			}
		}
	}
	if lost == 0 {
		problems = append(problems, "no try was recorded lost, though the client running tries was killed")
	}
	return []string{fmt.Sprintf("%d tries recorded \"node lost\", each retried", lost)}, problems
}

// drainLog remembers the drains the drain scenario made, for its Verify.
type drainLog struct {
	mu     sync.Mutex
	drains []drain
}

// drain is one drain: of which node (by name), from when until it was eligible again.
type drain struct {
	node     string
	from, to time.Time
}

// inject drains the second Nomad client once it runs tries, with drainDeadline, waits until
// the drain is complete (no allocation of the installation left running on it), then makes it
// eligible again.
func (d *drainLog) inject(ctx context.Context, c *Cluster, _ int) (time.Duration, string, error) {
	_, nodeID, err := victim(ctx, c)
	if err != nil {
		return 0, "", err
	}
	nc, err := nomadapi.NewClient(&nomadapi.Config{Address: "http://" + c.Stack.Nomad.HTTPAddr, TLSConfig: &nomadapi.TLSConfig{}})
	if err != nil {
		return 0, "", err
	}
	node, _, err := nc.Nodes().Info(nodeID, nil)
	if err != nil {
		return 0, "", err
	}
	at := time.Now().UTC()
	spec := &nomadapi.DrainSpec{Deadline: drainDeadline, IgnoreSystemJobs: true}
	if _, err := nc.Nodes().UpdateDrainOpts(nodeID, &nomadapi.DrainOptions{DrainSpec: spec}, nil); err != nil {
		return 0, "", fmt.Errorf("drain node %s: %w", nodeID, err)
	}
	wctx, cancel := context.WithTimeout(ctx, drainDeadline+recoverTimeout)
	defer cancel()
	for {
		n, _, err := nc.Nodes().Info(nodeID, (&nomadapi.QueryOptions{}).WithContext(wctx))
		if err == nil && n.DrainStrategy == nil {
			break
		}
		if wctx.Err() != nil {
			return 0, "", fmt.Errorf("drain of node %s not complete after %s (last error: %v)", nodeID, drainDeadline+recoverTimeout, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	took := time.Since(at)
	// The drain's window ends here, before the node is eligible again: a try queued after the
	// next call may rightly land on it.
	d.mu.Lock()
	d.drains = append(d.drains, drain{node: node.Name, from: at, to: time.Now().UTC()})
	d.mu.Unlock()
	if _, err := nc.Nodes().UpdateDrainOpts(nodeID, &nomadapi.DrainOptions{MarkEligible: true}, nil); err != nil {
		return took, "", fmt.Errorf("make node %s eligible again: %w", nodeID, err)
	}
	return took, fmt.Sprintf("node %s drained in %s", node.Name, took.Round(100*time.Millisecond)), nil
}

// verify checks what a drain promises: no try recorded while the node drained started on it
// before the drain ended, and every try that ran on it ended on its own (none stopped by the drain).
func (d *drainLog) verify(_ context.Context, _ *Cluster, runs map[string]*api.Run, _ Params) (notes, problems []string) {
	d.mu.Lock()
	drains := append([]drain(nil), d.drains...)
	d.mu.Unlock()
	finished := 0
	for _, r := range runs {
		for _, ti := range r.Tasks {
			for _, try := range ti.Tries {
				for _, dr := range drains {
					if try.Node != dr.node {
						continue
					}
					k := fmt.Sprintf("%s/%s %s try %d", r.DAG, r.ID, ti.Task, try.Try)
					// Queued after the drain began, so registered while the node was
					// ineligible, and started before the drain ended: placed on it while
					// draining. (One queued as the drain ends may rightly be placed once the
					// node is eligible again: it then starts after dr.to.)
					if try.QueuedAt.After(dr.from) && !try.StartedAt.IsZero() && try.StartedAt.Before(dr.to) {
						problems = append(problems, fmt.Sprintf("%s was queued %s after node %s began draining, and started on it before the drain ended", k, try.QueuedAt.Sub(dr.from).Round(time.Millisecond), dr.node))
					}
					if !try.StartedAt.IsZero() && try.StartedAt.Before(dr.from) && try.EndedAt.After(dr.from) {
						finished++
						if try.State != "success" {
							problems = append(problems, fmt.Sprintf("%s ran on node %s as it drained and ended %s: %q; a drain with a deadline must let it finish", k, dr.node, try.State, try.Message))
						}
					}
				}
			}
		}
	}
	return []string{fmt.Sprintf("%d tries running on the drained node finished there", finished)}, problems
}
