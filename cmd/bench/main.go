// Command bench measures dagflow against raw Nomad on dev agents it starts for the purpose
// (`make bench`): edge hand-off on a linear chain, registration and completion throughput on a
// fan-out, and what running costs (Consul KV writes per task attempt, a real server process's
// memory and CPU with many DAGs applied and idle, `dagflow plan` over many files). It prints a
// markdown table to stdout and writes the figures as JSON.
//
// Every latency comes from Nomad's own records for dagflow and the raw floor alike: a job's
// SubmitTime (registered) and its task's StartedAt and FinishedAt. The figures are noisy on a
// shared machine: the table ends with the load average before and after.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/dagflow/dagflow/internal/devstack"
)

// options are the command's flags.
type options struct {
	dagflow     string
	jsonPath    string
	chain       int
	fanout      int
	concurrency int
	rounds      int
	dags        int
	idle        time.Duration
	settle      time.Duration
	kvPrefix    string
	mapped      int
	scaleDAGs   int
	sensors     int
	phases      map[string]bool // which of handoff, throughput, mapping, sensors, cost, scale and failover to run
}

// defaultConcurrency is the engine's bound on Nomad registrations in flight (nomadCalls in
// engine/engine.go), which the raw loop matches.
const defaultConcurrency = 32

func main() {
	os.Exit(run())
}

func run() int {
	var o options
	flag.StringVar(&o.dagflow, "dagflow", "bin/dagflow", "the dagflow binary to measure")
	flag.StringVar(&o.jsonPath, "json", "bin/bench.json", "where to write the figures as JSON")
	flag.IntVar(&o.chain, "chain", 50, "tasks in the linear chain of the edge hand-off")
	flag.IntVar(&o.fanout, "fanout", 500, "tasks in the fan-out of the throughput test")
	flag.IntVar(&o.concurrency, "concurrency", defaultConcurrency, "registrations in flight in the raw loop")
	flag.IntVar(&o.rounds, "rounds", 3, "fan-out rounds, each raw Nomad then dagflow; the table shows medians")
	flag.IntVar(&o.dags, "dags", 1000, "DAGs applied for the idle cost and plan time")
	flag.DurationVar(&o.idle, "idle", 30*time.Second, "how long idle memory and CPU are measured")
	flag.DurationVar(&o.settle, "settle", 10*time.Second, "wait before an idle measurement")
	flag.IntVar(&o.mapped, "mapped", 1000, "instances of the mapped task of the mapping test")
	flag.IntVar(&o.scaleDAGs, "scale-dags", 10000, "DAGs applied in the scale phase")
	flag.IntVar(&o.sensors, "sensors", 1000, "sensors waiting in the sensors phase")
	phases := flag.String("phases", "handoff,throughput,mapping,sensors,cost,scale,failover", "the phases to run, comma-separated")
	flag.Usage = func() {
		fmt.Fprintf(os.Stderr, "Usage: bench [options]\n\n  Measures dagflow against raw Nomad on dev agents it starts; see `make bench`.\n\nOptions:\n\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	o.kvPrefix = "bench/"
	o.phases = map[string]bool{}
	for _, p := range strings.Split(*phases, ",") {
		switch p = strings.TrimSpace(p); p {
		case "handoff", "throughput", "mapping", "sensors", "cost", "scale", "failover":
			o.phases[p] = true
		default:
			fmt.Fprintf(os.Stderr, "bench: unknown phase %q in -phases (want handoff, throughput, mapping, sensors, cost, scale, failover)\n", p)
			return 1
		}
	}
	if o.chain < 2 || o.fanout < 2 || o.concurrency < 1 || o.rounds < 1 || o.dags < 1 || o.scaleDAGs < 1 {
		fmt.Fprintln(os.Stderr, "bench: -chain and -fanout must be at least 2, -concurrency, -rounds, -dags and -scale-dags at least 1")
		return 1
	}
	if _, err := os.Stat(o.dagflow); err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v (run make build)\n", err)
		return 1
	}
	// Server processes run in directories of their own.
	if abs, err := filepath.Abs(o.dagflow); err == nil {
		o.dagflow = abs
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	r, err := measure(ctx, o)
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		return 1
	}
	r.writeMarkdown(os.Stdout)
	b, err := json.MarshalIndent(r, "", "  ")
	if err == nil {
		err = os.WriteFile(o.jsonPath, append(b, '\n'), 0o644)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench: write %s: %v\n", o.jsonPath, err)
		return 1
	}
	fmt.Fprintf(os.Stderr, "==> figures written to %s\n", o.jsonPath)
	return 0
}

// measure starts the agents, runs every phase and stops what it started.
func measure(ctx context.Context, o options) (r *Report, err error) {
	r = &Report{Schema: 1, StartedAt: time.Now().UTC(), Machine: Machine{CPUs: runtime.NumCPU(), LoadAvgStart: loadAvg()}}
	dir, err := os.MkdirTemp("", "dagflow-bench-")
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			fmt.Fprintf(os.Stderr, "bench: agent and server logs kept in %s\n", dir)
		} else {
			os.RemoveAll(dir)
		}
	}()
	logFile := func(name string) *os.File {
		f, ferr := os.Create(filepath.Join(dir, name+".log"))
		if ferr != nil {
			panic(ferr) // a fresh temp dir is writable
		}
		return f
	}

	say("starting Consul and Nomad dev agents")
	consul, err := devstack.StartConsul(ctx, devstack.ConsulOptions{Logger: logFile("consul")})
	if err != nil {
		return nil, err
	}
	defer consul.Stop()
	nomad, err := devstack.StartNomad(ctx, devstack.NomadOptions{ConsulAddr: consul.HTTPAddr, Logger: logFile("nomad")})
	if err != nil {
		return nil, err
	}
	defer nomad.Stop()
	nc, err := nomadapi.NewClient(&nomadapi.Config{Address: "http://" + nomad.HTTPAddr, TLSConfig: &nomadapi.TLSConfig{}})
	if err != nil {
		return nil, err
	}
	b := &bench{opts: o, dir: dir, consulAddr: consul.HTTPAddr, nomadAddr: "http://" + nomad.HTTPAddr, nomad: nc, report: r,
		consulPid: listenerPid(port(consul.HTTPAddr)), nomadPid: listenerPid(port(nomad.HTTPAddr))}

	say("starting a dagflow server process")
	s, err := startServer(ctx, serverOptions{
		Bin: o.dagflow, Dir: dir, ConsulAddr: b.consulAddr, NomadAddr: b.nomadAddr,
		KVPrefix: o.kvPrefix, JobPrefix: dagflowJobPrefix, ServiceName: "bench",
	})
	if err != nil {
		return nil, err
	}
	if o.phases["handoff"] {
		err = errors.Join(b.handoff(ctx, s), ctxErr(ctx))
	}
	if err == nil && o.phases["throughput"] {
		err = errors.Join(b.throughput(ctx, s), ctxErr(ctx))
	}
	if err == nil && o.phases["mapping"] {
		err = errors.Join(b.mapping(ctx, s), ctxErr(ctx))
	}
	if err == nil && o.phases["sensors"] {
		err = errors.Join(b.sensors(ctx, s), ctxErr(ctx))
	}
	s.Stop()
	if err == nil && o.phases["cost"] {
		err = errors.Join(b.idle(ctx), ctxErr(ctx))
	}
	if err == nil && o.phases["scale"] {
		err = errors.Join(b.scale(ctx), ctxErr(ctx))
	}
	if err == nil && o.phases["failover"] {
		err = errors.Join(b.failover(ctx), ctxErr(ctx))
	}
	if err != nil {
		return nil, err
	}
	r.judge()
	r.Machine.LoadAvgEnd = loadAvg()
	r.DurationS = round(time.Since(r.StartedAt).Seconds(), 0)
	say("stopping the agents")
	return r, nil
}

// port returns the port of a "host:port" address, or 0.
func port(addr string) int {
	_, p, _ := strings.Cut(addr, ":")
	n, _ := strconv.Atoi(p)
	return n
}

func ctxErr(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("interrupted: %w", err)
	}
	return nil
}

// loadAvg returns the first three fields of /proc/loadavg, or "" where there is none.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}
