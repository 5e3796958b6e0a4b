package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/dagflow/dagflow/schedule"
	"github.com/dagflow/dagflow/state"
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

  The request is carried out by the active dagflow server; backfill waits
  for it and prints the run IDs created.

Options:

  -from=DATE          First logical date: 2026-11-01 or 2026-11-01T06:00:00Z.
                      Required. Dates without an offset are UTC.
  -to=DATE            Last logical date, same format. Required.
  -wait=DURATION      How long to wait for the active server. Default 30s.
  -json               Print the result as JSON.
  -kv-prefix=PREFIX   Consul KV prefix of this dagflow installation.
                      Default "dagflow/", or DAGFLOW_KV_PREFIX.

Exit codes:

  0  Runs were created.
  1  Error: bad options, an unknown DAG, no interval without a run in the
     range, or no active server answered in time (the request stays
     queued and is carried out when one does).
`)
}

// Synopsis implements cli.Command.
func (c *BackfillCommand) Synopsis() string { return "Run a DAG for past intervals" }

// Run implements cli.Command.
func (c *BackfillCommand) Run(args []string) int {
	fs := c.flagSet("backfill", c.Help, clusterFlags)
	from := fs.String("from", "", "")
	to := fs.String("to", "", "")
	wait := fs.Duration("wait", 30*time.Second, "")
	asJSON := fs.Bool("json", false, "")
	pos, ok := c.parseArgs(fs, args)
	if !ok {
		return exitError
	}
	if len(pos) != 1 {
		c.UI.Error("Error: backfill takes one DAG name\n")
		fs.Usage()
		return exitError
	}
	req := &state.Request{Kind: state.RequestBackfill, DAG: pos[0]}
	var err error
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
	store, err := c.store()
	if err != nil {
		c.UI.Error(fmt.Sprintf("Error: %v", err))
		return exitError
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	res, code := c.request(ctx, store, req, *wait, *asJSON)
	if res == nil {
		return code
	}
	if !*asJSON {
		c.UI.Output(fmt.Sprintf("Backfill of DAG %s: %d runs created.", req.DAG, len(res.RunIDs)))
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
