package main

import (
	"fmt"
	"strings"
)

// CancelCommand stops a run.
type CancelCommand struct{ *Meta }

// Help implements cli.Command.
func (c *CancelCommand) Help() string {
	return strings.TrimSpace(`
Usage: dagflow cancel [options] RUN

  Cancels run RUN: its tries in flight are stopped, its tasks that have not
  started are skipped, and the run ends failed. A run that already ended
  cannot be canceled; clear a task to run it again.

  RUN is DAG/RUN_ID, or RUN_ID alone when no other DAG has a run with that
  ID.

  The active dagflow server carries the request out, whichever server
  -address names; cancel waits for it.
` + apiHelp + `

Exit codes:

  0  Canceled.
  1  Error: no such run, a run that already ended, or a server that cannot
     be reached or refuses the token.
  2  No active server carried the request out within 30s. It stays queued,
     and is carried out once a server leads.
`)
}

// Synopsis implements cli.Command.
func (c *CancelCommand) Synopsis() string { return "Stop a run" }

// Run implements cli.Command.
func (c *CancelCommand) Run(args []string) int {
	fs := c.flagSet("cancel", c.Help, apiFlags)
	pos, ok := c.parseExactly(fs, args, 1, "cancel takes one run: DAG/RUN_ID or RUN_ID")
	if !ok {
		return exitError
	}
	client, ctx, ref, stop, err := c.openRun(pos[0])
	if err != nil {
		return c.fail(err)
	}
	defer stop()
	res, err := client.Runs().Cancel(ctx, ref.DAG, ref.ID)
	if err != nil {
		return c.fail(err)
	}
	if res.Queued {
		return c.queued("cancel")
	}
	c.UI.Output(fmt.Sprintf("Canceled run %s: its tries in flight are stopped and it ends failed.", ref))
	return exitOK
}
