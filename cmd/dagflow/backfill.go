package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/dagflow/dagflow/api"
	"github.com/dagflow/dagflow/schedule"
)

// BackfillCommand asks the leader to run a DAG for past intervals.
type BackfillCommand struct{ *Meta }

// Help implements cli.Command.
func (c *BackfillCommand) Help() string {
	return strings.TrimSpace(`
Usage: dagflow backfill [options] DAG

  Creates a backfill run of DAG for every interval of its schedule that
  starts between -from and -to (both inclusive), except logical dates that
  already have a scheduled or backfill run. The runs use the DAG's applied
  version and default params, and start as max_active_runs allows.

  The active dagflow server carries the request out, whichever server
  -address names; backfill waits for it and prints the run IDs created.

Options:

  -from=DATE          First logical date: 2026-11-01 or 2026-11-01T06:00:00Z.
                      Required. Dates without an offset are UTC.
  -to=DATE            Last logical date, same format. Required.
  -json               Print the result as JSON.
` + apiHelp + `

Exit codes:

  0  Runs were created.
  1  Error: bad options, a DAG that is not applied or has no schedule, no
     interval without a run in the range, a server that cannot be reached
     or refuses the token.
  2  No active server carried the request out within 30s. It stays queued,
     and the runs are created once a server leads.
`)
}

// Synopsis implements cli.Command.
func (c *BackfillCommand) Synopsis() string { return "Run a DAG for past intervals" }

// Run implements cli.Command.
func (c *BackfillCommand) Run(args []string) int {
	fs := c.flagSet("backfill", c.Help, apiFlags)
	from := fs.String("from", "", "")
	to := fs.String("to", "", "")
	asJSON := fs.Bool("json", false, "")
	pos, ok := c.parseExactly(fs, args, 1, "backfill takes one DAG name")
	if !ok {
		return exitError
	}
	var (
		req api.BackfillRequest
		err error
	)
	if req.From, err = date("-from", *from); err != nil {
		c.UI.Error("Error: " + err.Error())
		return exitError
	}
	if req.To, err = date("-to", *to); err != nil {
		c.UI.Error("Error: " + err.Error())
		return exitError
	}
	if req.To.Before(req.From) {
		c.UI.Error(fmt.Sprintf("Error: -to (%s) is before -from (%s)", *to, *from))
		return exitError
	}
	client, ctx, stop, err := c.connect()
	if err != nil {
		return c.fail(err)
	}
	defer stop()
	dag := pos[0]
	res, err := client.DAGs().Backfill(ctx, dag, &req)
	if err != nil {
		return c.fail(err)
	}
	if *asJSON {
		c.printJSON(actionJSON{DAG: dag, RunIDs: append([]string{}, res.RunIDs...), Queued: res.Queued})
	}
	if res.Queued {
		if !*asJSON {
			c.UI.Output(fmt.Sprintf("Queued a backfill of DAG %s from %s to %s.", dag, formatTime(req.From), formatTime(req.To)))
		}
		return c.queued("backfill")
	}
	if !*asJSON {
		c.UI.Output(fmt.Sprintf("Backfill of DAG %s: %s created.", dag, plural(len(res.RunIDs), "run")))
		for _, id := range res.RunIDs {
			c.UI.Output("  " + id)
		}
	}
	return exitOK
}

// date reads the value of a date option.
func date(flag, s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, fmt.Errorf("%s is required, as a date such as 2026-11-01 or 2026-11-01T06:00:00Z", flag)
	}
	t, err := schedule.ParseDate(s, time.UTC)
	if err != nil {
		return time.Time{}, fmt.Errorf("%s: %v", flag, err)
	}
	return t, nil
}
