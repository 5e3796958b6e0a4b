package main

import (
	"fmt"
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
` + apiHelp + `

Exit codes:

  0  Paused, or already paused.
  1  Error: the DAG is not applied, or the server cannot be reached or
     refuses the token.
`)
	}
	return strings.TrimSpace(`
Usage: dagflow unpause [options] DAG

  Unpauses DAG: it creates scheduled runs again, catching up on the intervals
  missed while paused as its catchup setting says ("none" skips them).
` + apiHelp + `

Exit codes:

  0  Unpaused, or not paused.
  1  Error: the DAG is not applied, or the server cannot be reached or
     refuses the token.
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
	fs := c.flagSet(c.verb(), c.Help, apiFlags)
	pos, ok := c.parseExactly(fs, args, 1, c.verb()+" takes one DAG name")
	if !ok {
		return exitError
	}
	client, ctx, stop, err := c.connect()
	if err != nil {
		return c.fail(err)
	}
	defer stop()
	if c.pause {
		err = client.DAGs().Pause(ctx, pos[0])
	} else {
		err = client.DAGs().Unpause(ctx, pos[0])
	}
	if err != nil {
		return c.fail(err)
	}
	c.UI.Output(fmt.Sprintf("DAG %s %sd.", pos[0], c.verb()))
	return exitOK
}
