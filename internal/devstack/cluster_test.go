package devstack

import (
	"context"
	"slices"
	"testing"
	"time"

	consulapi "github.com/hashicorp/consul/api"
	nomadapi "github.com/hashicorp/nomad/api"
)

// TestCluster forms a Cluster (3 Consul peers, 3 Nomad peers, 2 ready nodes with their queues
// meta), then kills the Raft leader of each: another server leads, writes go on through the
// agents, and the killed server rejoins as a peer once restarted.
func TestCluster(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	start := time.Now()
	c := StartClusterT(t)
	t.Logf("cluster formed in %s", time.Since(start).Round(100*time.Millisecond))

	cc, err := consulapi.NewClient(&consulapi.Config{Address: c.ConsulAddr(), Scheme: "http"})
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nomadapi.NewClient(&nomadapi.Config{Address: c.NomadAddr(), TLSConfig: &nomadapi.TLSConfig{}})
	if err != nil {
		t.Fatal(err)
	}
	if peers, err := cc.Status().Peers(); err != nil || len(peers) != 3 {
		t.Errorf("consul peers = %v (%v), want 3", peers, err)
	}
	if peers, err := nc.Status().Peers(); err != nil || len(peers) != 3 {
		t.Errorf("nomad peers = %v (%v), want 3", peers, err)
	}
	nodes, _, err := nc.Nodes().List(nil)
	if err != nil {
		t.Fatal(err)
	}
	var queues []string
	for _, n := range nodes {
		if n.Status != nomadapi.NodeStatusReady {
			t.Errorf("node %s is %s, want ready", n.Name, n.Status)
		}
		node, _, err := nc.Nodes().Info(n.ID, nil)
		if err != nil {
			t.Fatal(err)
		}
		queues = append(queues, node.Meta["queues"])
		if m, err := c.NomadNode(ctx, n.ID); err != nil || m.HTTPAddr == "" {
			t.Errorf("NomadNode(%s) = %v, %v", n.Name, m, err)
		}
	}
	slices.Sort(queues)
	if !slices.Equal(queues, ClusterNodeQueues) {
		t.Errorf("nodes' queues meta = %q, want %q", queues, ClusterNodeQueues)
	}

	t.Run("kill-nomad-leader", func(t *testing.T) {
		old, err := c.NomadLeader(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := old.Kill(); err != nil {
			t.Fatal(err)
		}
		at := time.Now()
		waitFor(t, time.Minute, "another nomad leader", func() (bool, error) {
			l, err := c.NomadLeader(ctx)
			return err == nil && l != old, err
		})
		t.Logf("nomad leader replaced in %s", time.Since(at).Round(100*time.Millisecond))
		job := nomadapi.NewBatchJob("cluster-after-leader-kill", "cluster-after-leader-kill", "global", 50)
		job.Datacenters = []string{"*"}
		tg := nomadapi.NewTaskGroup("g", 1)
		task := nomadapi.NewTask("t", "raw_exec")
		task.Config = map[string]any{"command": "/bin/true"}
		tg.AddTask(task)
		job.AddTaskGroup(tg)
		if _, _, err := nc.Jobs().Register(job, nil); err != nil {
			t.Errorf("register a job after the leader's loss: %v", err)
		}
		if err := old.Restart(ctx); err != nil {
			t.Fatal(err)
		}
		waitFor(t, time.Minute, "3 nomad peers again", func() (bool, error) {
			peers, err := nc.Status().Peers()
			return err == nil && len(peers) == 3, err
		})
	})

	t.Run("kill-consul-leader", func(t *testing.T) {
		old, err := c.ConsulLeader(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := old.Kill(); err != nil {
			t.Fatal(err)
		}
		at := time.Now()
		waitFor(t, time.Minute, "another consul leader taking writes", func() (bool, error) {
			l, err := c.ConsulLeader(ctx)
			if err != nil || l == old {
				return false, err
			}
			_, err = cc.KV().Put(&consulapi.KVPair{Key: "after-leader-kill", Value: []byte("v")}, nil)
			return err == nil, err
		})
		t.Logf("consul leader replaced in %s", time.Since(at).Round(100*time.Millisecond))
		if err := old.Restart(ctx); err != nil {
			t.Fatal(err)
		}
		kv, _, err := consulClient(t, old).KV().Get("after-leader-kill", &consulapi.QueryOptions{RequireConsistent: true})
		if err != nil || kv == nil {
			t.Errorf("key written while the old leader was down, read through it = %v (%v)", kv, err)
		}
	})
}
