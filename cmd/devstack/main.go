// Command devstack runs what `make dev` promises: a dev Consul, a dev Nomad with raw_exec, a
// throwaway PostgreSQL for long-term history, and a dagflow server against them, with the
// examples applied. Ctrl-C stops everything it started.
package main

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/dagflow/dagflow/api"
	"github.com/dagflow/dagflow/internal/devstack"
)

func main() {
	os.Exit(run())
}

func run() int {
	consulPort := flag.Int("consul-port", 8500, "Consul HTTP port (the Consul UI is served there)")
	nomadPort := flag.Int("nomad-port", 4646, "Nomad HTTP port (the Nomad UI is served there)")
	listen := flag.String("listen", "127.0.0.1:8080", "address of the dagflow server")
	dagflow := flag.String("dagflow", "bin/dagflow", "the dagflow binary")
	examples := flag.String("examples", "examples", "DAG files to apply")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	logs, err := os.MkdirTemp("", "dagflow-dev-")
	if err != nil {
		return fail(err)
	}
	logFile := func(name string) *os.File {
		f, err := os.Create(filepath.Join(logs, name+".log"))
		if err != nil {
			panic(err) // a fresh temp dir is writable; anything else is a broken machine
		}
		return f
	}

	fmt.Println("==> starting Consul")
	consul, err := devstack.StartConsul(ctx, devstack.ConsulOptions{HTTPPort: *consulPort, Logger: logFile("consul")})
	if err != nil {
		return fail(fmt.Errorf("start consul (is port %d free?): %w", *consulPort, err))
	}
	defer consul.Stop()
	fmt.Println("==> starting Nomad")
	nomad, err := devstack.StartNomad(ctx, devstack.NomadOptions{HTTPPort: *nomadPort, ConsulAddr: consul.HTTPAddr, Logger: logFile("nomad")})
	if err != nil {
		return fail(fmt.Errorf("start nomad (is port %d free?): %w", *nomadPort, err))
	}
	defer nomad.Stop()
	fmt.Println("==> putting the examples' Nomad variables")
	if err := devstack.PutExampleVariables(ctx, "http://"+nomad.HTTPAddr, ""); err != nil {
		return fail(err)
	}
	fmt.Println("==> starting PostgreSQL")
	pg, err := devstack.StartPostgres(ctx, devstack.PostgresOptions{Logger: logFile("postgres")})
	if err != nil {
		return fail(fmt.Errorf("start postgres: %w", err))
	}
	defer pg.Stop()
	historyURL, err := pg.CreateDatabase(ctx, "dagflow")
	if err != nil {
		return fail(err)
	}

	env := append(os.Environ(),
		"CONSUL_HTTP_ADDR="+consul.HTTPAddr,
		"NOMAD_ADDR=http://"+nomad.HTTPAddr,
		"DAGFLOW_LISTEN="+*listen,
		"DAGFLOW_HISTORY_URL="+historyURL,
	)
	fmt.Println("==> starting dagflow server")
	server := exec.Command(*dagflow, "server")
	server.Env = env
	server.Stdout, server.Stderr = logFile("dagflow"), logFile("dagflow")
	if err := server.Start(); err != nil {
		return fail(fmt.Errorf("start dagflow server: %w", err))
	}
	exited := make(chan error, 1)
	go func() { exited <- server.Wait() }()
	defer func() {
		_ = server.Process.Signal(os.Interrupt)
		<-exited
	}()
	if err := waitHealthy(ctx, "http://"+*listen+"/v1/health", exited); err != nil {
		return fail(fmt.Errorf("dagflow server did not become healthy (see %s): %w", filepath.Join(logs, "dagflow.log"), err))
	}

	fmt.Printf("==> applying %s\n", *examples)
	apply := exec.CommandContext(ctx, *dagflow, "apply", "-auto-approve", *examples)
	apply.Env, apply.Stdout, apply.Stderr = env, os.Stdout, os.Stderr
	if err := apply.Run(); err != nil {
		return fail(fmt.Errorf("apply %s: %w", *examples, err))
	}

	// The dev Consul keeps its KV in memory, so every dev stack bootstraps afresh.
	client, err := api.NewClient(&api.Config{Address: *listen})
	if err != nil {
		return fail(err)
	}
	token, err := client.ACL().Bootstrap(ctx)
	if err != nil {
		return fail(fmt.Errorf("bootstrap the dagflow ACL: %w", err))
	}

	fmt.Printf(`
dagflow is running.

  dagflow UI:  http://%s   (log in with the admin token below)
  Consul UI:   http://%s/ui
  Nomad UI:    http://%s/ui
  History:     %s   (PostgreSQL; psql works with that URL)
  Logs:        %s

  Admin token: %s

  To use the CLI against this stack:
    export DAGFLOW_ADDR=http://%s DAGFLOW_TOKEN=%s
    export CONSUL_HTTP_ADDR=%s NOMAD_ADDR=http://%s

  The README's "Examples" section walks through the DAGs applied from %s.

Press Ctrl-C to stop everything.
`, *listen, consul.HTTPAddr, nomad.HTTPAddr, historyURL, logs, token.SecretID, *listen, token.SecretID, consul.HTTPAddr, nomad.HTTPAddr, *examples)

	select {
	case <-ctx.Done():
		fmt.Println("\n==> stopping")
		return 0
	case err := <-exited:
		exited <- err
		return fail(fmt.Errorf("dagflow server exited (see %s): %v", filepath.Join(logs, "dagflow.log"), err))
	}
}

// waitHealthy polls the health endpoint until it answers 200, the server exits or ctx ends.
func waitHealthy(ctx context.Context, url string, exited chan error) error {
	deadline := time.After(30 * time.Second)
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case err := <-exited:
			exited <- err
			return fmt.Errorf("server exited: %v", err)
		case <-deadline:
			return fmt.Errorf("no answer from %s within 30s", url)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func fail(err error) int {
	fmt.Fprintf(os.Stderr, "devstack: %v\n", err)
	return 1
}
