package main

import (
	"fmt"
	"strings"

	"github.com/dagflow/dagflow/api"
)

// ClearCommand runs a task of a run again.
type ClearCommand struct{ *Meta }

// Help implements cli.Command.
func (c *ClearCommand) Help() string {
	return strings.TrimSpace(`
Usage: dagflow clear [options] RUN TASK

  Clears task TASK of run RUN so that it runs again, with its retries
  counted afresh, as in Airflow. A try in flight is stopped first. A
  finished run becomes running again. The run keeps the DAG version and
  params it was created with.

  RUN is DAG/RUN_ID, or RUN_ID alone when no other DAG has a run with that
  ID.

  The active dagflow server carries the request out, whichever server
  -address names; clear waits for it.

Options:

  -downstream         Clear every task that depends on TASK, directly or
                      not, too.
` + apiHelp + `

Exit codes:

  0  Cleared.
  1  Error: no such run or task, a request the server refused, or a server
     that cannot be reached or refuses the token.
  2  No active server carried the request out within 30s. It stays queued,
     and is carried out once a server leads.
`)
}

// Synopsis implements cli.Command.
func (c *ClearCommand) Synopsis() string { return "Run a task of a run again" }

// Run implements cli.Command.
func (c *ClearCommand) Run(args []string) int {
	fs := c.flagSet("clear", c.Help, apiFlags)
	downstream := fs.Bool("downstream", false, "")
	pos, ok := c.parseExactly(fs, args, 2, "clear takes a run (DAG/RUN_ID or RUN_ID) and a task name")
	if !ok {
		return exitError
	}
	client, ctx, ref, stop, err := c.openRun(pos[0])
	if err != nil {
		return c.fail(err)
	}
	defer stop()
	task := pos[1]
	res, err := client.Runs().Clear(ctx, ref.DAG, ref.ID, task, &api.ClearRequest{Downstream: *downstream})
	if err != nil {
		return c.fail(err)
	}
	if res.Queued {
		return c.queued("clear")
	}
	if *downstream {
		c.UI.Output(fmt.Sprintf("Cleared task %s and the tasks after it in run %s: they run again.", task, ref))
	} else {
		c.UI.Output(fmt.Sprintf("Cleared task %s in run %s: it runs again.", task, ref))
	}
	return exitOK
}
