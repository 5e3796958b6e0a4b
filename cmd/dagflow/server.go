package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/dagflow/dagflow/web"
)

// DefaultListen is where the server listens unless told otherwise: loopback, so that a server
// started by hand exposes nothing until the operator chooses an address.
const DefaultListen = "127.0.0.1:8080"

// shutdownTimeout bounds how long a stopping server waits for requests in flight.
const shutdownTimeout = 10 * time.Second

// ServerCommand runs a dagflow server: the web UI and HTTP API.
type ServerCommand struct{ *Meta }

// Help implements cli.Command.
func (c *ServerCommand) Help() string {
	return strings.TrimSpace(`
Usage: dagflow server [options]

  Runs a dagflow server, which serves the web UI and the HTTP API from the
  state in Consul. Stop it with Ctrl-C (SIGINT) or SIGTERM.

  Consul is reached through CONSUL_HTTP_ADDR and CONSUL_HTTP_TOKEN.

Options:

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
func (c *ServerCommand) Synopsis() string { return "Run the dagflow server (UI and API)" }

// Run implements cli.Command.
func (c *ServerCommand) Run(args []string) int {
	fs := c.flagSet("server", c.Help, clusterFlags)
	listen := fs.String("listen", envOr("DAGFLOW_LISTEN", DefaultListen), "")
	level := fs.String("log-level", "info", "")
	logJSON := fs.Bool("log-json", false, "")
	if !c.parseFlags(fs, args) {
		return exitError
	}
	if fs.NArg() > 0 {
		c.UI.Error(fmt.Sprintf("Error: server takes no arguments, got %q\n", fs.Args()))
		fs.Usage()
		return exitError
	}
	if hclog.LevelFromString(*level) == hclog.NoLevel {
		c.UI.Error(fmt.Sprintf("Error: -log-level %q is not a level; use trace, debug, info, warn or error.", *level))
		return exitError
	}
	logger := hclog.New(&hclog.LoggerOptions{
		Name: "dagflow", Level: hclog.LevelFromString(*level), JSONFormat: *logJSON, Output: os.Stderr,
	})
	store, err := c.store()
	if err != nil {
		c.UI.Error(fmt.Sprintf("Error: %v", err))
		return exitError
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		c.UI.Error(fmt.Sprintf("Error: listen on %s: %v", *listen, err))
		return exitError
	}
	srv := &http.Server{
		Handler:           web.New(store, logger.Named("http")),
		ReadHeaderTimeout: 10 * time.Second,
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	logger.Info("serving", "address", "http://"+ln.Addr().String(), "kv_prefix", c.kvPrefix)

	select {
	case err := <-errc:
		logger.Error("http server failed", "error", err)
		return exitError
	case <-ctx.Done():
	}
	logger.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		logger.Error("shutdown", "error", err)
		return exitError
	}
	return exitOK
}
