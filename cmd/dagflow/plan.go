package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/dagflow/dagflow/plan"
)

// PlanCommand shows what apply would change.
type PlanCommand struct{ *Meta }

// Help implements cli.Command.
func (c *PlanCommand) Help() string {
	return strings.TrimSpace(`
Usage: dagflow plan [options] [PATH]

  Compares the DAG and queue definitions at PATH (default ".") with those
  applied in Consul and shows what apply would change: + add, ~ change,
  - remove, down to the changed task attribute. It also shows the catch-up
  runs that new DAGs would start, and warns about queues that no ready
  Nomad node matches.

  Consul is reached through CONSUL_HTTP_ADDR and CONSUL_HTTP_TOKEN, Nomad
  through NOMAD_ADDR, NOMAD_TOKEN and NOMAD_NAMESPACE.

Options:

  -detailed-exitcode  Exit with 2 when there are changes (see below).
  -json               Print the plan as JSON.
  -kv-prefix=PREFIX   Consul KV prefix of this dagflow installation.
                      Default "dagflow/", or DAGFLOW_KV_PREFIX.
  -var NAME=VALUE     Set a variable declared in the files. Repeatable.
  -no-color           Print without colors.

Exit codes:

  0  Success; with -detailed-exitcode, no changes.
  1  Error.
  2  With -detailed-exitcode: success, and there are changes.
`)
}

// Synopsis implements cli.Command.
func (c *PlanCommand) Synopsis() string { return "Show what apply would change" }

// Run implements cli.Command.
func (c *PlanCommand) Run(args []string) int {
	fs := c.flagSet("plan", c.Help, colorFlags|varFlags|clusterFlags)
	detailed := fs.Bool("detailed-exitcode", false, "")
	asJSON := fs.Bool("json", false, "")
	path, ok := c.parse(fs, args)
	if !ok {
		return exitError
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	p, code := c.buildPlan(ctx, path)
	if p == nil {
		return code
	}
	render := c.human
	if *asJSON {
		render = plan.RenderJSON
	}
	if !c.output(p, render) {
		return exitError
	}
	if *detailed && !p.Empty() {
		return exitChanges
	}
	return exitOK
}

// buildPlan loads the files at path and compares them with the applied state. On failure it
// has printed why and returns nil with the exit code.
func (m *Meta) buildPlan(ctx context.Context, path string) (*plan.Plan, int) {
	cfg := m.load(path)
	if cfg == nil {
		return nil, exitError
	}
	store, err := m.store()
	if err != nil {
		m.UI.Error(fmt.Sprintf("Error: %v", err))
		return nil, exitError
	}
	nomad, err := m.nomad()
	if err != nil {
		m.UI.Error(fmt.Sprintf("Error: %v", err))
		return nil, exitError
	}
	p, err := plan.Build(ctx, cfg, store, nomad, time.Now())
	if err != nil {
		m.UI.Error(fmt.Sprintf("Error: %v\n\nCheck that Consul is reachable at CONSUL_HTTP_ADDR (%s) and that CONSUL_HTTP_TOKEN may read the %q prefix.", err, envOr("CONSUL_HTTP_ADDR", "127.0.0.1:8500"), m.kvPrefix))
		return nil, exitError
	}
	return p, exitOK
}

// human renders the plan for people, in color when standard output is a terminal.
func (m *Meta) human(w io.Writer, p *plan.Plan) error {
	return plan.Render(w, p, m.color(os.Stdout))
}

// output renders the plan through the UI.
func (m *Meta) output(p *plan.Plan, render func(io.Writer, *plan.Plan) error) bool {
	var b strings.Builder
	if err := render(&b, p); err != nil {
		m.UI.Error(fmt.Sprintf("Error: %v", err))
		return false
	}
	m.UI.Output(strings.TrimSuffix(b.String(), "\n"))
	return true
}
