package main

import (
	"context"
	"flag"
	"fmt"
	"math"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/hashicorp/go-hclog"

	"github.com/dagflow/dagflow/server"
)

// ServerCommand runs a dagflow server instance.
type ServerCommand struct{ *Meta }

// Help implements cli.Command.
func (c *ServerCommand) Help() string {
	return strings.TrimSpace(`
Usage: dagflow server [options]

  Runs a dagflow server instance: it serves the web UI and the HTTP API,
  registers itself in Consul as the "dagflow" service with an HTTP health
  check, and contends for leadership with the other instances. The leader
  is tagged "active", the others "standby". Stop it with Ctrl-C (SIGINT)
  or SIGTERM: a leader hands over before it exits.

  Settings come from the -config file, over the environment: Consul is
  reached through CONSUL_HTTP_ADDR and CONSUL_HTTP_TOKEN, Nomad through
  NOMAD_ADDR, NOMAD_TOKEN and NOMAD_NAMESPACE. Flags win over both.
  Run as a Nomad task, the Go runtime's soft memory limit is 90% of the
  task's memory (NOMAD_MEMORY_LIMIT) unless memory_limit or GOMEMLIMIT
  sets it.

Options:

  -config=FILE        HCL configuration file; see docs/server.md.
  -listen=ADDR        Address to serve HTTP on. Default 127.0.0.1:8080, or
                      DAGFLOW_LISTEN.
  -kv-prefix=PREFIX   Consul KV prefix of this dagflow installation.
                      Default "dagflow/", or DAGFLOW_KV_PREFIX.
  -log-level=LEVEL    trace, debug, info, warn or error. Default info.
  -log-json           Log JSON lines instead of text.

Exit codes:

  0  Stopped cleanly.
  1  Could not start, or failed while running.
`)
}

// Synopsis implements cli.Command.
func (c *ServerCommand) Synopsis() string {
	return "Run a dagflow server instance (UI, API, scheduler)"
}

// Run implements cli.Command.
func (c *ServerCommand) Run(args []string) int {
	fs := c.flagSet("server", c.Help, 0)
	path := fs.String("config", "", "")
	fs.String("listen", "", "")
	fs.String("kv-prefix", "", "")
	fs.String("log-level", "", "")
	fs.Bool("log-json", false, "")
	if !c.parseFlags(fs, args) {
		return exitError
	}
	if fs.NArg() > 0 {
		c.UI.Error(fmt.Sprintf("Error: server takes no arguments, got %q\n", fs.Args()))
		fs.Usage()
		return exitError
	}
	cfg, ok := c.serverConfig(*path)
	if !ok {
		return exitError
	}
	// Flags given on the command line win over the file.
	fs.Visit(func(f *flag.Flag) {
		v := f.Value.String()
		switch f.Name {
		case "listen":
			cfg.Listen = v
		case "kv-prefix":
			cfg.KVPrefix = v
		case "log-level":
			cfg.LogLevel = v
		case "log-json":
			cfg.LogJSON = v == "true"
		}
	})
	if err := cfg.Check(); err != nil {
		c.UI.Error(fmt.Sprintf("Error: %v", err))
		return exitError
	}
	logger := hclog.New(&hclog.LoggerOptions{
		Name: "dagflow", Level: hclog.LevelFromString(cfg.LogLevel), JSONFormat: cfg.LogJSON, Output: os.Stderr,
	})
	if cfg.MemoryLimit != 0 {
		debug.SetMemoryLimit(cfg.MemoryLimit)
		if cfg.MemoryLimit != math.MaxInt64 {
			logger.Info("soft memory limit set", "limit_mib", cfg.MemoryLimit>>20, "from", cfg.MemoryLimitFrom)
		}
	}
	consul, err := cfg.ConsulClient()
	if err != nil {
		c.UI.Error(fmt.Sprintf("Error: %v", err))
		return exitError
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	srv := server.New(cfg, consul, logger)
	if err := srv.Start(ctx); err != nil {
		c.UI.Error(fmt.Sprintf("Error: %v", err))
		return exitError
	}
	<-ctx.Done()
	logger.Info("shutting down")
	srv.Stop()
	return exitOK
}
