package devstack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"

	consulapi "github.com/hashicorp/consul/api"
)

// ConsulOptions configures StartConsul.
type ConsulOptions struct {
	HTTPPort int       // 0: a free port
	Logger   io.Writer // agent output; nil: discarded

	// Durable runs a single server that is not in dev mode: it keeps its Raft log and
	// snapshots in its data dir, so Restart keeps the KV store, the catalog and sessions, as
	// the restart of a real agent does. It starts a second or two slower than a dev agent.
	Durable bool
}

// Consul is a running Consul agent: by default in dev mode, a single server with an in-memory
// store, ACLs off, that elected itself leader; with ConsulOptions.Durable a single server that
// keeps its state on disk.
//
// Stop and Restart may be called from any goroutine; they are serialized.
type Consul struct {
	HTTPAddr string // "127.0.0.1:PORT"

	agent
	bin     string
	logger  io.Writer
	durable bool

	// member, when set, replaces the durable single server's settings in the config file:
	// the settings of a member of a Cluster (see cluster.go).
	member string
	ports  consulPorts
}

// consulPorts are the ports a Consul dev agent listens on, all on 127.0.0.1.
type consulPorts struct {
	HTTP, DNS, SerfLAN, SerfWAN, Server, GRPC int
}

// StartConsul starts `consul agent -dev` on free ports in a new temp dir and returns when the
// agent has a leader and accepts KV writes, within DefaultConsulStartTimeout.
//
// When the agent exits early or is not ready in time, the error quotes its last lines of output
// and nothing is left running. ctx bounds the start only, not the agent's life: call Stop.
func StartConsul(ctx context.Context, opts ConsulOptions) (*Consul, error) {
	bin, err := Binary("consul")
	if err != nil {
		return nil, err
	}
	sweepStale()
	dir, err := os.MkdirTemp("", "devstack-consul-")
	if err != nil {
		return nil, fmt.Errorf("create consul temp dir: %w", err)
	}
	lock, err := lockDir(dir)
	if err != nil {
		removeDir(dir)
		return nil, fmt.Errorf("start consul agent: %w", err)
	}
	c := &Consul{agent: agent{name: "consul", dir: dir, lock: lock}, bin: bin, logger: opts.Logger, durable: opts.Durable}
	for attempt := 1; ; attempt++ {
		err = c.startOnFreePorts(ctx, opts.HTTPPort)
		if err == nil {
			return c, nil
		}
		// Another process may take a picked port before the agent binds it; fresh ports fix
		// that, unless the caller chose the taken port.
		if !retryable(err, opts.HTTPPort) || attempt == startAttempts {
			break
		}
	}
	removeDir(dir)
	closeLock(lock)
	return nil, err
}

// startOnFreePorts writes a config with fresh ports (http as given unless 0) and starts the agent.
func (c *Consul) startOnFreePorts(ctx context.Context, httpPort int) error {
	free, err := FreePorts(6)
	if err != nil {
		return err
	}
	ports := consulPorts{HTTP: free[0], DNS: free[1], SerfLAN: free[2], SerfWAN: free[3], Server: free[4], GRPC: free[5]}
	if httpPort != 0 {
		ports.HTTP = httpPort
	}
	if err := c.writeConfig(ports); err != nil {
		return err
	}
	c.HTTPAddr = "127.0.0.1:" + strconv.Itoa(ports.HTTP)
	return c.start(ctx)
}

// writeConfig writes the agent's config file. Ports go in the file rather than on the command
// line so Restart reuses them as they are.
func (c *Consul) writeConfig(p consulPorts) error {
	data := filepath.Join(c.dir, "data")
	if err := os.MkdirAll(data, 0o700); err != nil {
		return fmt.Errorf("create consul data dir: %w", err)
	}
	// https and grpc_tls are off (-1): dev mode would otherwise open gRPC TLS on the fixed 8503.
	conf := fmt.Sprintf(`data_dir             = %q
disable_update_check = true

ports {
  http     = %d
  https    = -1
  dns      = %d
  serf_lan = %d
  serf_wan = %d
  server   = %d
  grpc     = %d
  grpc_tls = -1
}
`, data, p.HTTP, p.DNS, p.SerfLAN, p.SerfWAN, p.Server, p.GRPC)
	c.ports = p
	if c.member != "" {
		conf += c.member
	} else if c.durable {
		// A raft_multiplier of 1 is what dev mode uses too: a lone server elects itself in
		// about a second instead of five.
		conf += `
server           = true
bootstrap_expect = 1

performance {
  raft_multiplier = 1
}
`
	}
	if err := os.WriteFile(c.configPath(), []byte(conf), 0o600); err != nil {
		return fmt.Errorf("write consul config: %w", err)
	}
	return nil
}

func (c *Consul) configPath() string { return filepath.Join(c.dir, "consul.hcl") }

// start runs the agent with the config file in place and waits until it is ready.
func (c *Consul) start(ctx context.Context) error {
	args := []string{"agent", "-dev", "-client", "127.0.0.1", "-bind", "127.0.0.1", "-config-file", c.configPath()}
	if c.durable {
		args = slices.Delete(args, 1, 2)
	}
	proc, err := startProcess("consul", c.bin, args, c.dir, c.logger)
	if err != nil {
		return err
	}
	client, err := consulapi.NewClient(&consulapi.Config{Address: c.HTTPAddr, Scheme: "http"})
	if err != nil {
		proc.stop(0)
		return fmt.Errorf("create consul client: %w", err)
	}
	if err := proc.waitReady(ctx, DefaultConsulStartTimeout, func(ctx context.Context) error {
		return consulReady(ctx, client)
	}); err != nil {
		return err
	}
	c.proc = proc
	return nil
}

// consulReady reports whether the agent has a leader and takes a KV write. A leader alone is
// not enough: for a moment after the election, writes still fail with "No cluster leader".
func consulReady(ctx context.Context, client *consulapi.Client) error {
	q := (&consulapi.QueryOptions{}).WithContext(ctx)
	w := (&consulapi.WriteOptions{}).WithContext(ctx)
	leader, err := client.Status().LeaderWithQueryOptions(q)
	if err != nil {
		return fmt.Errorf("get leader: %w", err)
	}
	if leader == "" {
		return errors.New("no leader yet")
	}
	// The probe key is deleted again so tests listing the KV store see it empty.
	const key = "_devstack/ready"
	if _, err := client.KV().Put(&consulapi.KVPair{Key: key, Value: []byte("ok")}, w); err != nil {
		return fmt.Errorf("write kv: %w", err)
	}
	if _, err := client.KV().Delete(key, w); err != nil {
		return fmt.Errorf("delete kv: %w", err)
	}
	return nil
}

// Stop shuts the agent down with SIGINT, kills it if it has not exited after
// DefaultStopTimeout, and removes its temp dir. It is safe to call twice and on nil.
func (c *Consul) Stop() error {
	if c == nil {
		return nil
	}
	return c.stop()
}

// Restart stops the agent and starts it again on the same ports and data dir, returning when it
// is ready again, as StartConsul does. Dev mode keeps its store in memory, so the KV store, the
// catalog and sessions are empty afterwards; the node ID survives. A Durable agent keeps them
// all. It is meant for chaos tests: clients see connection errors while it runs.
//
// When the start fails (a port was taken meanwhile, say), the agent stays down and Stop still
// removes the temp dir. Restart after Stop returns ErrStopped.
func (c *Consul) Restart(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped {
		return fmt.Errorf("restart consul agent: %w", ErrStopped)
	}
	if c.proc != nil {
		if err := c.proc.stop(DefaultStopTimeout); err != nil {
			return fmt.Errorf("restart consul agent: %w", err)
		}
		c.proc = nil
	}
	if err := c.start(ctx); err != nil {
		return fmt.Errorf("restart consul agent: %w", err)
	}
	return nil
}

// Kill ends the agent with SIGKILL, as a crash would, and leaves it down with its data dir
// kept: Restart brings it back. It is meant for chaos tests.
func (c *Consul) Kill() error { return c.kill() }
