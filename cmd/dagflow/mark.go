package main

import (
	"fmt"
	"strings"

	"github.com/dagflow/dagflow/api"
)

// MarkCommand sets the state of a task of a run by hand.
type MarkCommand struct{ *Meta }

// Help implements cli.Command.
func (c *MarkCommand) Help() string {
	return strings.TrimSpace(`
Usage: dagflow mark [options] RUN TASK -state=STATE

  Sets task TASK of run RUN to success or failed by hand, as Airflow's
  "mark success" and "mark failed" do; a try in flight is stopped first. A
  run that already ended stays ended, its state computed again from its
  tasks: clear the tasks that should run again.

  RUN is DAG/RUN_ID, or RUN_ID alone when no other DAG has a run with that
  ID.

  The active dagflow server carries the request out, whichever server
  -address names; mark waits for it.

Options:

  -state=STATE        success or failed. Required.
  -downstream         Set every task that depends on TASK, directly or not,
                      too.
` + apiHelp + `

Exit codes:

  0  Marked.
  1  Error: bad options, no such run or task, a request the server refused,
     or a server that cannot be reached or refuses the token.
  2  No active server carried the request out within 30s. It stays queued,
     and is carried out once a server leads.
`)
}

// Synopsis implements cli.Command.
func (c *MarkCommand) Synopsis() string { return "Set a task of a run to success or failed" }

// Run implements cli.Command.
func (c *MarkCommand) Run(args []string) int {
	fs := c.flagSet("mark", c.Help, apiFlags)
	state := fs.String("state", "", "")
	downstream := fs.Bool("downstream", false, "")
	pos, ok := c.parseExactly(fs, args, 2, "mark takes a run (DAG/RUN_ID or RUN_ID) and a task name")
	if !ok {
		return exitError
	}
	if *state != "success" && *state != "failed" {
		c.UI.Error(fmt.Sprintf("Error: -state is %q; want -state=success or -state=failed", *state))
		return exitError
	}
	client, ctx, ref, stop, err := c.openRun(pos[0])
	if err != nil {
		return c.fail(err)
	}
	defer stop()
	task := pos[1]
	res, err := client.Runs().Mark(ctx, ref.DAG, ref.ID, task, &api.MarkRequest{State: *state, Downstream: *downstream})
	if err != nil {
		return c.fail(err)
	}
	if res.Queued {
		return c.queued("mark")
	}
	if *downstream {
		c.UI.Output(fmt.Sprintf("Marked task %s and the tasks after it in run %s %s.", task, ref, *state))
	} else {
		c.UI.Output(fmt.Sprintf("Marked task %s in run %s %s.", task, ref, *state))
	}
	return exitOK
}
