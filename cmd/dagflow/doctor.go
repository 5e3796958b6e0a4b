package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	consulapi "github.com/hashicorp/consul/api"
	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/dagflow/dagflow/config"
	"github.com/dagflow/dagflow/state"
)

// DoctorCommand checks an installation and explains what to fix.
type DoctorCommand struct{ *Meta }

// defaultDoctorTimeout bounds each check: long enough for a slow Consul or Nomad across a WAN,
// short enough that an unreachable one is reported in seconds, not at the TCP timeout.
const defaultDoctorTimeout = 10 * time.Second

// Exit code of doctor when no check failed but some warned.
const exitWarnings = 2

// Help implements cli.Command.
func (c *DoctorCommand) Help() string {
	return strings.TrimSpace(`
Usage: dagflow doctor [options]

  Checks that a dagflow installation can work, and says how to fix each
  problem it finds: Consul and Nomad answer; their tokens allow what dagflow
  does; a server leads and its lock is healthy; every queue has ready,
  eligible Nomad nodes; the servers' clocks agree; the history database
  answers and is migrated; Nomad is recent enough. It changes nothing.

  It reaches Consul, Nomad and PostgreSQL as dagflow server does: through
  the -config file, over CONSUL_HTTP_ADDR, CONSUL_HTTP_TOKEN, NOMAD_ADDR,
  NOMAD_TOKEN, NOMAD_NAMESPACE, DAGFLOW_KV_PREFIX, DAGFLOW_JOB_PREFIX and
  DAGFLOW_HISTORY_URL. Tokens are checked as doctor holds them: give it
  the servers' configuration file or environment to check theirs.

Options:

  -config=FILE        The servers' HCL configuration file; see docs/server.md.
  -kv-prefix=PREFIX   Consul KV prefix of the installation. Default
                      "dagflow/", or DAGFLOW_KV_PREFIX.
  -address=ADDR       Also check the dagflow server the commands that use
                      the API reach. Default DAGFLOW_ADDR; unchecked when
                      neither is set.
  -token=TOKEN        With -address: also check this API token. Default
                      DAGFLOW_TOKEN.
  -timeout=DURATION   How long each check may take. Default 10s.
  -json               Print the checks as JSON.
  -no-color           Print without colors.

Exit codes:

  0  Every check passed.
  1  At least one check failed, or doctor could not run.
  2  No check failed, and at least one warned.
`)
}

// Synopsis implements cli.Command.
func (c *DoctorCommand) Synopsis() string {
	return "Check the installation and explain what to fix"
}

// Run implements cli.Command.
func (c *DoctorCommand) Run(args []string) int {
	fs := c.flagSet("doctor", c.Help, colorFlags|apiFlags)
	path := fs.String("config", "", "")
	fs.String("kv-prefix", "", "")
	timeout := fs.Duration("timeout", defaultDoctorTimeout, "")
	asJSON := fs.Bool("json", false, "")
	if !c.parseFlags(fs, args) {
		return exitError
	}
	if fs.NArg() > 0 {
		c.UI.Error(fmt.Sprintf("Error: doctor takes no arguments, got %q\n", fs.Args()))
		fs.Usage()
		return exitError
	}
	if *timeout <= 0 {
		c.UI.Error(fmt.Sprintf("Error: -timeout must be positive, got %s\n", *timeout))
		return exitError
	}
	cfg, ok := c.serverConfig(*path)
	if !ok {
		return exitError
	}
	fs.Visit(func(f *flag.Flag) {
		if f.Name == "kv-prefix" {
			cfg.KVPrefix = f.Value.String()
		}
	})
	d, err := c.newDoctor(cfg, *timeout)
	if err != nil {
		c.UI.Error(fmt.Sprintf("Error: %v", err))
		return exitError
	}
	ctx, stop := interruptible()
	defer stop()
	checks := d.run(ctx)
	if ctx.Err() != nil {
		c.UI.Error("Error: interrupted")
		return exitError
	}
	if *asJSON {
		c.printJSON(doctorReport(checks))
	} else {
		c.UI.Output(c.renderChecks(checks))
	}
	return doctorExitCode(checks)
}

// Statuses of a check.
const (
	checkOK   = "ok"
	checkWarn = "warn" // works, but something is likely to go wrong or was not verified
	checkFail = "fail" // dagflow cannot work as it should until this is fixed
	checkSkip = "skip" // not run: a check it depends on failed, or there was nothing to check
)

// doctorCheck is the outcome of one check, as -json prints it.
type doctorCheck struct {
	ID      string   `json:"id"`
	Name    string   `json:"name"`
	Status  string   `json:"status"`
	Message string   `json:"message"`           // the finding, one line
	Details []string `json:"details,omitempty"` // one line per thing checked, when several
	Fix     string   `json:"fix,omitempty"`     // what to do, when the status is not ok
}

// checkResult is what a check function returns; the runner adds the ID and name.
type checkResult struct {
	Status  string
	Message string
	Details []string
	Fix     string
}

func passed(format string, a ...any) checkResult {
	return checkResult{Status: checkOK, Message: fmt.Sprintf(format, a...)}
}

func warned(fix, format string, a ...any) checkResult {
	return checkResult{Status: checkWarn, Message: fmt.Sprintf(format, a...), Fix: fix}
}

func failed(fix, format string, a ...any) checkResult {
	return checkResult{Status: checkFail, Message: fmt.Sprintf(format, a...), Fix: fix}
}

// doctorCheckDef is one check: what it needs to have passed, and how to run it.
type doctorCheckDef struct {
	id, name string
	deps     []string // checks that must have passed or warned, else this one is skipped
	after    []string // checks to wait for whatever their outcome, to read it with outcome
	run      func(ctx context.Context) checkResult
}

// doctor holds what the checks share: the configuration and the clients built from it.
type doctor struct {
	cfg        *config.Server
	timeout    time.Duration
	consul     *consulapi.Client
	consulCfg  *consulapi.Config // completed by consulapi.NewClient
	consulAddr string            // with its scheme, for messages
	nomad      *nomadapi.Client
	store      *state.Store
	apiAddr    string // "" when not to be checked
	apiToken   string

	appliedOnce sync.Once
	applied     *appliedState
	appliedErr  error

	results map[string]*doctorCheck // by ID; a check's is final once its done channel closed
}

// outcome returns the status of a check that the calling check depends on or runs after.
func (d *doctor) outcome(id string) string { return d.results[id].Status }

func (m *Meta) newDoctor(cfg *config.Server, timeout time.Duration) (*doctor, error) {
	d := &doctor{cfg: cfg, timeout: timeout}
	// The Consul client is built as cfg.ConsulClient builds it, keeping its configuration: the
	// token check sends a request the client has no method for, with its HTTP client and token.
	d.consulCfg = consulapi.DefaultConfig()
	if cfg.Consul.Address != "" {
		d.consulCfg.Address = cfg.Consul.Address
	}
	if cfg.Consul.Token != "" {
		d.consulCfg.Token = cfg.Consul.Token
	}
	var err error
	if d.consul, err = consulapi.NewClient(d.consulCfg); err != nil {
		return nil, fmt.Errorf("configure the Consul client: %w", err)
	}
	d.consulAddr = d.consulCfg.Scheme + "://" + d.consulCfg.Address + d.consulCfg.PathPrefix
	if d.nomad, err = cfg.NomadClient(); err != nil {
		return nil, err
	}
	if d.store, err = state.New(d.consul, cfg.KVPrefix); err != nil {
		return nil, fmt.Errorf("kv prefix: %w", err)
	}
	if m.address != "" || os.Getenv("DAGFLOW_ADDR") != "" {
		ac := m.apiConfig()
		d.apiAddr, d.apiToken = ac.Address, ac.Token
	}
	return d, nil
}

// checks returns every check, in the order they are printed.
func (d *doctor) checks() []doctorCheckDef {
	defs := []doctorCheckDef{
		{id: "consul", name: "Consul", run: d.checkConsul},
		{id: "nomad", name: "Nomad", run: d.checkNomad},
		{id: "consul_token", name: "Consul token", deps: []string{"consul"}, run: d.checkConsulToken},
		{id: "nomad_token", name: "Nomad token", deps: []string{"nomad"}, after: []string{"consul"}, run: d.checkNomadToken},
		{id: "nomad_version", name: "Nomad version", deps: []string{"nomad"}, run: d.checkNomadVersion},
		{id: "leader", name: "Leader", deps: []string{"consul"}, run: d.checkLeader},
	}
	if d.apiAddr != "" {
		defs = append(defs, doctorCheckDef{id: "api", name: "API", run: d.checkAPI})
	}
	return append(defs,
		doctorCheckDef{id: "queues", name: "Queues", deps: []string{"consul", "nomad"}, run: d.checkQueues},
		doctorCheckDef{id: "clock", name: "Clocks", deps: []string{"consul"}, run: d.checkClock},
		doctorCheckDef{id: "history", name: "History", run: d.checkHistory},
	)
}

// run runs every check, each as soon as the checks it depends on are done, each bounded by the
// timeout, and returns them in order. A check whose dependency failed or was skipped is skipped.
func (d *doctor) run(ctx context.Context) []doctorCheck {
	defs := d.checks()
	out := make([]doctorCheck, len(defs))
	done := map[string]chan struct{}{}
	d.results = map[string]*doctorCheck{}
	for i, def := range defs {
		out[i] = doctorCheck{ID: def.id, Name: def.name}
		done[def.id] = make(chan struct{})
		d.results[def.id] = &out[i]
	}
	var wg sync.WaitGroup
	for i, def := range defs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer close(done[def.id])
			for _, id := range def.after {
				<-done[id]
			}
			for _, dep := range def.deps {
				<-done[dep]
				if st := d.outcome(dep); st == checkFail || st == checkSkip {
					out[i].Status = checkSkip
					out[i].Message = fmt.Sprintf("skipped: the %s check did not pass", d.results[dep].Name)
					return
				}
			}
			cctx, cancel := context.WithTimeout(ctx, d.timeout)
			defer cancel()
			r := def.run(cctx)
			out[i].Status, out[i].Message, out[i].Details, out[i].Fix = r.Status, r.Message, r.Details, r.Fix
		}()
	}
	wg.Wait()
	return out
}

// doctorExitCode is 1 when a check failed, 2 when none failed and one warned, else 0.
func doctorExitCode(checks []doctorCheck) int {
	code := exitOK
	for _, c := range checks {
		switch c.Status {
		case checkFail:
			return exitError
		case checkWarn:
			code = exitWarnings
		}
	}
	return code
}

// doctorJSON is what -json prints.
type doctorJSON struct {
	Status string         `json:"status"` // ok, warn or fail: the worst status of a check
	Counts map[string]int `json:"counts"` // checks per status
	Checks []doctorCheck  `json:"checks"`
}

func doctorReport(checks []doctorCheck) doctorJSON {
	r := doctorJSON{Status: checkOK, Counts: map[string]int{checkOK: 0, checkWarn: 0, checkFail: 0, checkSkip: 0}, Checks: checks}
	for _, c := range checks {
		r.Counts[c.Status]++
	}
	switch doctorExitCode(checks) {
	case exitError:
		r.Status = checkFail
	case exitWarnings:
		r.Status = checkWarn
	}
	return r
}

// renderChecks lays the checks out as a checklist, then a summary line.
func (m *Meta) renderChecks(checks []doctorCheck) string {
	color := m.color(os.Stdout)
	var b strings.Builder
	for _, c := range checks {
		mark, col := "✓", ansiGreen
		switch c.Status {
		case checkWarn:
			mark, col = "!", ansiYellow
		case checkFail:
			mark, col = "✗", ansiRed
		case checkSkip:
			mark, col = "-", ""
		}
		if color && col != "" {
			mark = col + mark + ansiReset
		}
		fmt.Fprintf(&b, "%s %s: %s\n", mark, c.Name, c.Message)
		for _, d := range c.Details {
			fmt.Fprintf(&b, "    %s\n", d)
		}
		if c.Fix != "" {
			fmt.Fprintf(&b, "  Fix: %s\n", strings.ReplaceAll(c.Fix, "\n", "\n       "))
		}
	}
	b.WriteString("\n" + doctorSummary(checks))
	return b.String()
}

// doctorSummary is the last line of the human output.
func doctorSummary(checks []doctorCheck) string {
	n := map[string]int{}
	for _, c := range checks {
		n[c.Status]++
	}
	if n[checkOK] == len(checks) {
		return fmt.Sprintf("All %d checks passed.", len(checks))
	}
	parts := []string{}
	for _, s := range []struct{ status, word string }{{checkFail, "failed"}, {checkWarn, "warned"}, {checkOK, "passed"}, {checkSkip, "skipped"}} {
		if n[s.status] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n[s.status], s.word))
		}
	}
	return fmt.Sprintf("%d checks: %s.", len(checks), strings.Join(parts, ", "))
}
