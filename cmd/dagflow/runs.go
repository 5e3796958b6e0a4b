package main

import (
	"fmt"
	"strings"

	"github.com/dagflow/dagflow/api"
)

// RunsCommand lists runs.
type RunsCommand struct{ *Meta }

// Help implements cli.Command.
func (c *RunsCommand) Help() string {
	return strings.TrimSpace(`
Usage: dagflow runs [options] [DAG]

  Lists the runs of DAG, or of every DAG, newest logical date first: DAG,
  run ID, type (scheduled, manual or backfill), state, logical date, when
  the run started and how long it took. Times are in UTC.

  dagflow run status DAG/RUN_ID shows one run with its tasks.

Options:

  -state=STATE        Only runs in this state: queued, running, success or
                      failed.
  -limit=N            Show at most N runs. Default 50; 0 shows every run.
  -json               Print the runs as a JSON array.
  -no-color           Print without colors.
` + apiHelp + `

Exit codes:

  0  Success, also when there are no runs.
  1  Error: bad options, a DAG that is not applied, or a server that cannot
     be reached or refuses the token.
`)
}

// Synopsis implements cli.Command.
func (c *RunsCommand) Synopsis() string { return "List the runs of DAGs" }

// pageSize is how many runs one request of runs asks for.
const pageSize = 100

// Run implements cli.Command.
func (c *RunsCommand) Run(args []string) int {
	fs := c.flagSet("runs", c.Help, apiFlags|colorFlags)
	runState := fs.String("state", "", "")
	limit := fs.Int("limit", 50, "")
	asJSON := fs.Bool("json", false, "")
	pos, ok := c.parseArgs(fs, args)
	if !ok {
		return exitError
	}
	if len(pos) > 1 {
		c.UI.Error(fmt.Sprintf("Error: runs takes at most one DAG name, got %d: %s\n", len(pos), strings.Join(pos, " ")))
		fs.Usage()
		return exitError
	}
	switch *runState {
	case "", "queued", "running", "success", "failed":
	default:
		c.UI.Error(fmt.Sprintf("Error: -state is %q; want queued, running, success or failed", *runState))
		return exitError
	}
	if *limit < 0 {
		c.UI.Error(fmt.Sprintf("Error: -limit is %d; want 0 (every run) or more", *limit))
		return exitError
	}
	client, ctx, stop, err := c.connect()
	if err != nil {
		return c.fail(err)
	}
	defer stop()
	opts := &api.RunListOptions{State: *runState}
	if len(pos) == 1 {
		opts.DAG = pos[0]
	}
	runs := []api.RunStub{}
	more := false
	for {
		if *limit > 0 {
			opts.PerPage = min(*limit-len(runs), pageSize)
		} else {
			opts.PerPage = pageSize
		}
		page, qm, err := client.Runs().List(ctx, opts)
		if err != nil {
			return c.fail(err)
		}
		runs = append(runs, page...)
		if qm.NextToken == "" {
			break
		}
		if *limit > 0 && len(runs) >= *limit {
			more = true
			break
		}
		opts.NextToken = qm.NextToken
	}
	if len(runs) == 0 && opts.DAG != "" {
		// No runs of a DAG that does not exist is a mistyped name, not an empty history.
		if _, _, err := client.DAGs().Info(ctx, opts.DAG, ""); api.IsNotFound(err) {
			return c.fail(err)
		}
	}
	if *asJSON {
		c.printJSON(runs)
		return exitOK
	}
	if len(runs) == 0 {
		c.UI.Output("No runs.")
		return exitOK
	}
	rows := make([][]string, 0, len(runs))
	for _, r := range runs {
		rows = append(rows, []string{
			r.DAG, r.ID, r.Type, r.State, formatTime(r.LogicalDate), formatTime(r.StartedAt), formatDuration(r.StartedAt, r.EndedAt),
		})
	}
	c.UI.Output(c.table([]string{"DAG", "RUN ID", "TYPE", "STATE", "LOGICAL DATE", "STARTED", "DURATION"}, rows))
	if more {
		c.UI.Warn(fmt.Sprintf("\nShowing the newest %s; -limit=N shows more, -limit=0 all of them.", plural(len(runs), "run")))
	}
	return exitOK
}
