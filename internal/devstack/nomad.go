package devstack

import (
	"context"
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
}

// Nomad is a running Nomad agent in dev mode: one server and one client in one process, with
// the raw_exec driver enabled and the cloud fingerprinters off.
//
// Stop may be called from any goroutine.
type Nomad struct {
	HTTPAddr string // "127.0.0.1:PORT"

	agent
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
	n := &Nomad{agent: agent{name: "nomad", dir: dir, lock: lock}}
	for attempt := 1; ; attempt++ {
		err = n.startOnFreePorts(ctx, bin, opts)
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
func (n *Nomad) startOnFreePorts(ctx context.Context, bin string, opts NomadOptions) error {
	free, err := freePorts(3)
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
	conf := nomadConfig(data, ports, opts.ConsulAddr)
	path := filepath.Join(n.dir, "nomad.hcl")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		return fmt.Errorf("write nomad config: %w", err)
	}
	n.HTTPAddr = "127.0.0.1:" + strconv.Itoa(ports.HTTP)

	proc, err := startProcess("nomad", bin, []string{"agent", "-dev", "-config", path}, n.dir, opts.Logger)
	if err != nil {
		return err
	}
	client, err := nomadapi.NewClient(&nomadapi.Config{
		Address:   "http://" + n.HTTPAddr,
		TLSConfig: &nomadapi.TLSConfig{},
	})
	if err != nil {
		proc.stop(0)
		return fmt.Errorf("create nomad client: %w", err)
	}
	if err := proc.waitReady(ctx, DefaultNomadStartTimeout, func(ctx context.Context) error {
		return nomadReady(ctx, client)
	}); err != nil {
		return err
	}
	n.proc = proc
	return nil
}

// nomadConfig renders the agent's config file.
func nomadConfig(dataDir string, p nomadPorts, consulAddr string) string {
	// The cloud fingerprinters are off because the AWS one aborts the agent when AWS_CA_BUNDLE
	// is set, as it is on the project's machines, and the others only add start-up latency
	// probing metadata endpoints that do not exist here.
	conf := fmt.Sprintf(`bind_addr            = "127.0.0.1"
data_dir             = %q
disable_update_check = true

ports {
  http = %d
  rpc  = %d
  serf = %d
}

client {
  options = {
    "fingerprint.denylist" = "env_aws,env_gce,env_azure,env_digitalocean"
  }
}

plugin "raw_exec" {
  config {
    enabled = true
  }
}
`, dataDir, p.HTTP, p.RPC, p.Serf)
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
	} else {
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

// Stop shuts the agent down with SIGINT, kills it if it has not exited after
// DefaultStopTimeout, and removes its temp dir. A dev agent stops its allocations on the way
// out. Stop is safe to call twice and on nil.
func (n *Nomad) Stop() error {
	if n == nil {
		return nil
	}
	return n.stop()
}
