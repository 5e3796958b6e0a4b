package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strings"
)

// PauseCommand pauses or unpauses a DAG.
type PauseCommand struct {
	*Meta
	pause bool
}

func (c *PauseCommand) verb() string {
	if c.pause {
		return "pause"
	}
	return "unpause"
}

// Help implements cli.Command.
func (c *PauseCommand) Help() string {
	if c.pause {
		return strings.TrimSpace(`
Usage: dagflow pause [options] DAG

  Pauses DAG: it creates no scheduled runs until it is unpaused. Runs already
  started go on, and manual triggers and backfills still run. The pause is
  kept in Consul and outlives applies of new versions.

Options:

  -kv-prefix=PREFIX   Consul KV prefix of this dagflow installation.
                      Default "dagflow/", or DAGFLOW_KV_PREFIX.

Exit codes:

  0  Paused.
  1  Error: the DAG is not applied, or Consul could not be reached.
`)
	}
	return strings.TrimSpace(`
Usage: dagflow unpause [options] DAG

  Unpauses DAG: it creates scheduled runs again, catching up on the intervals
  missed while paused as its catchup setting says ("none" skips them).

Options:

  -kv-prefix=PREFIX   Consul KV prefix of this dagflow installation.
                      Default "dagflow/", or DAGFLOW_KV_PREFIX.

Exit codes:

  0  Unpaused.
  1  Error: the DAG is not applied, or Consul could not be reached.
`)
}

// Synopsis implements cli.Command.
func (c *PauseCommand) Synopsis() string {
	if c.pause {
		return "Stop a DAG's scheduled runs"
	}
	return "Resume a DAG's scheduled runs"
}

// Run implements cli.Command.
func (c *PauseCommand) Run(args []string) int {
	fs := c.flagSet(c.verb(), c.Help, clusterFlags)
	pos, ok := c.parseArgs(fs, args)
	if !ok {
		return exitError
	}
	if len(pos) != 1 {
		c.UI.Error(fmt.Sprintf("Error: %s takes one DAG name\n", c.verb()))
		fs.Usage()
		return exitError
	}
	store, err := c.store()
	if err != nil {
		c.UI.Error(fmt.Sprintf("Error: %v", err))
		return exitError
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if _, err := appliedDAG(ctx, store, pos[0]); err != nil {
		c.UI.Error(fmt.Sprintf("Error: %v", err))
		return exitError
	}
	if err := store.SetPaused(ctx, pos[0], c.pause); err != nil {
		c.UI.Error(fmt.Sprintf("Error: %v", err))
		return exitError
	}
	c.UI.Output(fmt.Sprintf("DAG %s %sd.", pos[0], c.verb()))
	return exitOK
}
