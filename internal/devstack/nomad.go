package devstack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"

	nomadapi "github.com/hashicorp/nomad/api"
)

// NomadOptions configures StartNomad.
type NomadOptions struct {
	HTTPPort   int       // 0: a free port
	ConsulAddr string    // HTTP address of the Consul agent to join; "": none
	Logger     io.Writer // agent output; nil: discarded

	// Durable runs a server and a client in one agent that is not in dev mode: the server keeps
	// its Raft state and the client its allocations' state in the data dir, so Restart keeps
	// every job, and the client reattaches to the tasks that ran on through the restart, as the
	// restart of a real agent does. It starts a few seconds slower than a dev agent.
	Durable bool

	// ACL enables Nomad's ACL system and bootstraps it once the agent is up: Nomad.Token is
	// then the management token. For dev agents only: a Durable agent's restart would find
	// the ACL bootstrapped already.
	ACL bool

	// ExtraConfig is agent configuration (HCL) in a second config file, merged over the
	// generated one as Nomad merges -config files: a vault block, client template settings.
	ExtraConfig string

	// GCMaxAllocs is the client's gc_max_allocs; 0: Nomad's default, 50. Past it the client
	// deletes finished allocations as soon as they end, which can be before it told the
	// servers they ended: restarted then, it runs them again (see docs/chaos.md).
	GCMaxAllocs int
}

// fingerprintDenylist turns the cloud fingerprinters off: the AWS one aborts the agent when
// AWS_CA_BUNDLE is set, as it is on the project's machines, and the others only add start-up
// latency probing metadata endpoints that do not exist here.
const fingerprintDenylist = "env_aws,env_gce,env_azure,env_digitalocean"

// NodeQueues is the "queues" node meta of every Nomad agent StartNomad starts: the queues of
// examples/queues.hcl and examples/gpu.hcl whose constraints select nodes by that meta, so
// that `make dev` and the tests of the examples, which both start their Nomad here, can run
// every example (gpu.hcl's train task then waits for the GPU the node does not have, as its
// comments show).
const NodeQueues = "reports,gpu"

// HostVolume is the name of the host volume every Nomad agent StartNomad starts declares
// (client { host_volume "scratch" { ... } }): a directory in the agent's temp dir that anyone
// may write (exec tasks run as nobody), created empty with the agent, that tasks mount with volume "NAME" { source = "scratch" } and
// volume_mount blocks, so the tests and `make dev` can run tasks with volumes.
// Nomad.HostVolumeDir is its path.
const HostVolume = "scratch"

// Nomad is a running Nomad agent, one server and one client in one process (in dev mode,
// unless NomadOptions.Durable), with the raw_exec driver enabled, the cloud fingerprinters off,
// the node meta queues = NodeQueues, and the host volume HostVolume.
//
// Stop and Restart may be called from any goroutine; they are serialized.
type Nomad struct {
	HTTPAddr      string // "127.0.0.1:PORT"
	Token         string // the management token, when NomadOptions.ACL
	HostVolumeDir string // the directory of the HostVolume host volume

	agent
	bin     string
	logger  io.Writer
	durable bool
	acl     bool
	extra   string

	// ready, when set, replaces nomadReady: the readiness of a member of a Cluster, which is
	// a server alone or a client alone (see cluster.go).
	ready func(context.Context, *nomadapi.Client) error
	ports nomadPorts
}

// nomadPorts are the ports a Nomad dev agent listens on, all on 127.0.0.1.
type nomadPorts struct {
	HTTP, RPC, Serf int
}

// StartNomad starts `nomad agent -dev` on free ports in a new temp dir and returns when its
// client node is ready, eligible and has a healthy raw_exec driver, within
// DefaultNomadStartTimeout. Waiting for the driver too means a job submitted right after can be
// placed at once instead of being blocked until the next fingerprint.
//
// With ConsulAddr the agent registers its services in that Consul and fingerprints it, but does
// not discover other Nomad servers there: two dev agents on one Consul stay separate clusters.
//
// When the agent exits early or is not ready in time, the error quotes its last lines of output
// and nothing is left running. ctx bounds the start only, not the agent's life: call Stop.
func StartNomad(ctx context.Context, opts NomadOptions) (*Nomad, error) {
	bin, err := Binary("nomad")
	if err != nil {
		return nil, err
	}
	sweepStale()
	dir, err := os.MkdirTemp("", "devstack-nomad-")
	if err != nil {
		return nil, fmt.Errorf("create nomad temp dir: %w", err)
	}
	lock, err := lockDir(dir)
	if err != nil {
		removeDir(dir)
		return nil, fmt.Errorf("start nomad agent: %w", err)
	}
	n := &Nomad{agent: agent{name: "nomad", dir: dir, lock: lock}, bin: bin, logger: opts.Logger, durable: opts.Durable, acl: opts.ACL, extra: opts.ExtraConfig}
	n.HostVolumeDir = filepath.Join(dir, "volumes", HostVolume)
	// Nomad refuses to start with a host volume whose path does not exist.
	if err := errors.Join(os.MkdirAll(n.HostVolumeDir, 0o777), os.Chmod(n.HostVolumeDir, 0o777)); err != nil {
		removeDir(dir)
		closeLock(lock)
		return nil, fmt.Errorf("create nomad host volume dir: %w", err)
	}
	for attempt := 1; ; attempt++ {
		err = n.startOnFreePorts(ctx, opts)
		if err == nil {
			return n, nil
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
func (n *Nomad) startOnFreePorts(ctx context.Context, opts NomadOptions) error {
	free, err := FreePorts(3)
	if err != nil {
		return err
	}
	ports := nomadPorts{HTTP: free[0], RPC: free[1], Serf: free[2]}
	if opts.HTTPPort != 0 {
		ports.HTTP = opts.HTTPPort
	}
	// A previous attempt's data dir may hold state bound to its ports: start clean.
	data := filepath.Join(n.dir, "data")
	if err := removeDir(data); err != nil {
		return fmt.Errorf("clean nomad data dir: %w", err)
	}
	if err := os.MkdirAll(data, 0o700); err != nil {
		return fmt.Errorf("create nomad data dir: %w", err)
	}
	n.HTTPAddr = "127.0.0.1:" + strconv.Itoa(ports.HTTP)
	if n.durable {
		if err := n.initKeyring(ctx, data, ports, opts); err != nil {
			return err
		}
	}
	conf := nomadConfig(data, n.HostVolumeDir, ports, opts, true)
	if err := os.WriteFile(n.configPath(), []byte(conf), 0o600); err != nil {
		return fmt.Errorf("write nomad config: %w", err)
	}
	return n.start(ctx)
}

// initKeyring runs a new durable agent as a server alone until it has elected itself and
// created its keyring, and stops it again. Started with its client at once, the client asks
// to register before the keyring exists, is refused, and tries again only 15 to 30 s later
// (dev mode retries after 1 s; other agents cannot be told to). Once the keyring is in the
// data dir, every later start of the agent registers its client at once.
func (n *Nomad) initKeyring(ctx context.Context, data string, ports nomadPorts, opts NomadOptions) error {
	conf := nomadConfig(data, n.HostVolumeDir, ports, opts, false)
	if err := os.WriteFile(n.configPath(), []byte(conf), 0o600); err != nil {
		return fmt.Errorf("write nomad config: %w", err)
	}
	proc, err := startProcess("nomad", n.bin, []string{"agent", "-config", n.configPath()}, n.dir, n.logger)
	if err != nil {
		return err
	}
	client, err := nomadapi.NewClient(&nomadapi.Config{Address: "http://" + n.HTTPAddr, TLSConfig: &nomadapi.TLSConfig{}})
	if err != nil {
		proc.stop(0)
		return fmt.Errorf("create nomad client: %w", err)
	}
	if err := proc.waitReady(ctx, DefaultNomadStartTimeout, func(ctx context.Context) error {
		keys, _, err := client.Keyring().List((&nomadapi.QueryOptions{}).WithContext(ctx))
		if err != nil {
			return fmt.Errorf("list keyring: %w", err)
		}
		if len(keys) == 0 {
			return fmt.Errorf("no keyring yet")
		}
		return nil
	}); err != nil {
		return err
	}
	return proc.stop(DefaultStopTimeout)
}

func (n *Nomad) configPath() string { return filepath.Join(n.dir, "nomad.hcl") }

// start runs the agent with the config file in place and waits until it is ready.
func (n *Nomad) start(ctx context.Context) error {
	args := []string{"agent", "-dev", "-config", n.configPath()}
	if n.durable {
		args = []string{"agent", "-config", n.configPath()}
	}
	if n.acl || n.extra != "" {
		extra := n.extra
		if n.acl {
			extra += "\nacl {\n  enabled = true\n}\n"
		}
		path := filepath.Join(n.dir, "extra.hcl")
		if err := os.WriteFile(path, []byte(extra), 0o600); err != nil {
			return fmt.Errorf("write nomad config: %w", err)
		}
		args = append(args, "-config", path)
	}
	proc, err := startProcess("nomad", n.bin, args, n.dir, n.logger)
	if err != nil {
		return err
	}
	n.Token = "" // a dev agent starts with no ACL state
	client, err := nomadapi.NewClient(&nomadapi.Config{
		Address:   "http://" + n.HTTPAddr,
		TLSConfig: &nomadapi.TLSConfig{},
	})
	if err != nil {
		proc.stop(0)
		return fmt.Errorf("create nomad client: %w", err)
	}
	ready := nomadReady
	if n.ready != nil {
		ready = n.ready
	}
	if err := proc.waitReady(ctx, DefaultNomadStartTimeout, func(ctx context.Context) error {
		if n.acl && n.Token == "" {
			// A fresh dev agent's ACL is bootstrapped once its server has a leader.
			tok, _, err := client.ACLTokens().Bootstrap((&nomadapi.WriteOptions{}).WithContext(ctx))
			if err != nil {
				return fmt.Errorf("bootstrap acl: %w", err)
			}
			n.Token = tok.SecretID
			client.SetSecretID(tok.SecretID)
		}
		return ready(ctx, client)
	}); err != nil {
		return err
	}
	n.proc = proc
	return nil
}

// nomadConfig renders the agent's config file. A Durable agent gets the server and client
// settings that dev mode implies, with the client enabled only when client is true.
func nomadConfig(dataDir, volumeDir string, p nomadPorts, opts NomadOptions, client bool) string {
	durable, consulAddr := opts.Durable, opts.ConsulAddr
	// A durable agent gets the server and client settings dev mode implies. Its client finds
	// the server by address (auto-join is off, see below), and raft_multiplier 1 lets the lone
	// server elect itself about as fast as in dev mode.
	durableConf := ""
	clientConf := ""
	if durable {
		durableConf = `
advertise {
  http = "127.0.0.1"
  rpc  = "127.0.0.1"
  serf = "127.0.0.1"
}

server {
  enabled          = true
  bootstrap_expect = 1
  raft_multiplier  = 1
}
`
		clientConf = fmt.Sprintf(`
  enabled = %t
  servers = ["127.0.0.1:%d"]
`, client, p.RPC)
	}
	if opts.GCMaxAllocs > 0 {
		clientConf += fmt.Sprintf("  gc_max_allocs = %d\n", opts.GCMaxAllocs)
	}
	conf := fmt.Sprintf(`bind_addr            = "127.0.0.1"
data_dir             = %q
disable_update_check = true

ports {
  http = %d
  rpc  = %d
  serf = %d
}
`+durableConf+`
client {`+clientConf+`
  options = {
    "fingerprint.denylist" = %q
  }

  meta {
    queues = %q
  }

  host_volume %q {
    path      = %q
    read_only = false
  }
}

plugin "raw_exec" {
  config {
    enabled = true
  }
}
`, dataDir, p.HTTP, p.RPC, p.Serf, fingerprintDenylist, NodeQueues, HostVolume, volumeDir)
	// Auto-join stays off either way: with it, dev agents sharing a Consul would discover each
	// other's servers and merge into one cluster.
	if consulAddr != "" {
		conf += fmt.Sprintf(`
consul {
  address          = %q
  server_auto_join = false
  client_auto_join = false
}
`, consulAddr)
	}
	if consulAddr == "" {
		// Without a Consul to join, the agent must not register itself in whatever Consul
		// happens to listen on the default 127.0.0.1:8500.
		conf += `
consul {
  auto_advertise   = false
  server_auto_join = false
  client_auto_join = false
}
`
	}
	return conf
}

// nomadReady reports whether a client node is ready, eligible and has raw_exec healthy.
func nomadReady(ctx context.Context, client *nomadapi.Client) error {
	q := (&nomadapi.QueryOptions{}).WithContext(ctx)
	stubs, _, err := client.Nodes().List(q)
	if err != nil {
		return fmt.Errorf("list nodes: %w", err)
	}
	for _, s := range stubs {
		if s.Status != nomadapi.NodeStatusReady || s.SchedulingEligibility != nomadapi.NodeSchedulingEligible {
			continue
		}
		d := s.Drivers["raw_exec"]
		if d == nil || !d.Detected || !d.Healthy {
			return fmt.Errorf("node %s is ready but raw_exec is not healthy yet", s.Name)
		}
		return nil
	}
	return fmt.Errorf("no ready and eligible node among %d", len(stubs))
}

// Restart stops the agent with SIGINT and starts it again on the same ports and data dir,
// returning when its client node is ready again, as StartNomad does. A dev agent stops its
// allocations on the way out and keeps its state in memory, so jobs, allocations and nodes are
// gone afterwards. A Durable agent leaves its tasks running, keeps every job, and its client
// reattaches to the tasks when it is back. It is meant for chaos tests: clients see connection
// errors while it runs.
//
// When the start fails, the agent stays down and Stop still removes the temp dir. Restart
// after Stop returns ErrStopped.
func (n *Nomad) Restart(ctx context.Context) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.stopped {
		return fmt.Errorf("restart nomad agent: %w", ErrStopped)
	}
	if n.proc != nil {
		if err := n.proc.stop(DefaultStopTimeout); err != nil {
			return fmt.Errorf("restart nomad agent: %w", err)
		}
		n.proc = nil
	}
	if err := n.start(ctx); err != nil {
		return fmt.Errorf("restart nomad agent: %w", err)
	}
	return nil
}

// Stop shuts the agent down with SIGINT, kills it if it has not exited after
// DefaultStopTimeout, and removes its temp dir. A dev agent stops its allocations on the way
// out; removing the temp dir kills the tasks a Durable agent left running. Stop is safe to
// call twice and on nil.
func (n *Nomad) Stop() error {
	if n == nil {
		return nil
	}
	return n.stop()
}

// Kill ends the agent with SIGKILL, and with it every task it runs, as the crash of its
// machine would, and leaves it down with its data dir kept: Restart brings it back. It is
// meant for chaos tests.
func (n *Nomad) Kill() error { return n.kill() }
