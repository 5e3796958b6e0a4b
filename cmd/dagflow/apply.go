package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/dagflow/dagflow/state"
)

// ApplyCommand makes the applied DAGs and queues match the files.
type ApplyCommand struct{ *Meta }

// Help implements cli.Command.
func (c *ApplyCommand) Help() string {
	return strings.TrimSpace(`
Usage: dagflow apply [options] [PATH]

  Shows the same plan as dagflow plan, asks for confirmation, and then
  makes the DAGs and queues applied in Consul match the files at PATH
  (default "."): new ones are added, changed ones get a new version (runs
  already started keep theirs), and ones no longer in the files are
  removed. The change is atomic: all of it is applied, or none.

  If anything else changed the applied DAGs since the plan was computed
  (another apply, say), nothing is written and apply asks you to plan again.

  Consul is reached through CONSUL_HTTP_ADDR and CONSUL_HTTP_TOKEN, Nomad
  through NOMAD_ADDR, NOMAD_TOKEN and NOMAD_NAMESPACE.

Options:

  -auto-approve       Apply without asking for confirmation.
  -kv-prefix=PREFIX   Consul KV prefix of this dagflow installation.
                      Default "dagflow/", or DAGFLOW_KV_PREFIX.
  -var NAME=VALUE     Set a variable declared in the files. Repeatable.
  -no-color           Print without colors.

Exit codes:

  0  Applied, or nothing to apply.
  1  Error, cancelled, or a concurrent change; nothing was applied.
`)
}

// Synopsis implements cli.Command.
func (c *ApplyCommand) Synopsis() string { return "Apply DAG and queue definitions to the cluster" }

// Run implements cli.Command.
func (c *ApplyCommand) Run(args []string) int {
	fs := c.flagSet("apply", c.Help, colorFlags|varFlags|clusterFlags)
	autoApprove := fs.Bool("auto-approve", false, "")
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
	if !c.output(p, c.human) {
		return exitError
	}
	if p.Empty() {
		return exitOK
	}
	if !*autoApprove && !c.confirm("\nDo you want to perform these actions?\n  dagflow will perform the actions described above.") {
		c.UI.Error("Apply cancelled. Nothing was changed; run with -auto-approve to apply without asking.")
		return exitError
	}
	store, err := c.store()
	if err != nil {
		c.UI.Error(fmt.Sprintf("Error: %v", err))
		return exitError
	}
	if _, err := store.Apply(ctx, p.Base, p.Local.DAGs, p.Local.Queues, time.Now()); err != nil {
		if errors.Is(err, state.ErrConflict) {
			c.UI.Error("Error: the applied DAGs changed while this plan was waiting to be applied (another apply?).\nNothing was changed. Run dagflow plan again and review the new plan.")
			return exitError
		}
		c.UI.Error(fmt.Sprintf("Error: apply: %v\n\nNothing was changed.", err))
		return exitError
	}
	add, change, destroy := p.Summary()
	c.UI.Output(fmt.Sprintf("Apply complete! %d added, %d changed, %d destroyed.", add, change, destroy))
	return exitOK
}
