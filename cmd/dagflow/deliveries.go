package main

import (
	"fmt"
	"strings"

	"github.com/dagflow/dagflow/api"
)

// DeliveriesCommand lists callback deliveries.
type DeliveriesCommand struct{ *Meta }

// Help implements cli.Command.
func (c *DeliveriesCommand) Help() string {
	return strings.TrimSpace(`
Usage: dagflow deliveries [options] [DAG[/RUN_ID]]

  Lists the callback deliveries Consul keeps (on_failure, on_success,
  on_retry and deadline on_miss webhooks and tasks), oldest first: the
  delivery ID, event, run, task and try it is about, where it goes (a
  webhook URL or a Nomad job), its state (pending, delivered or failed),
  its attempts and its last error. Pending ones are kept until they end,
  the others for a day.

Options:

  -state=STATE        Only deliveries in this state: pending, delivered or
                      failed.
  -json               Print the deliveries as a JSON array.
` + apiHelp + `

Exit codes:

  0  Success, also when there are no deliveries.
  1  Error: bad options, or a server that cannot be reached or refuses the
     token.
`)
}

// Synopsis implements cli.Command.
func (c *DeliveriesCommand) Synopsis() string { return "List callback deliveries and how they went" }

// Run implements cli.Command.
func (c *DeliveriesCommand) Run(args []string) int {
	fs := c.flagSet("deliveries", c.Help, apiFlags)
	st := fs.String("state", "", "")
	asJSON := fs.Bool("json", false, "")
	pos, ok := c.parseArgs(fs, args)
	if !ok {
		return exitError
	}
	if len(pos) > 1 {
		c.UI.Error(fmt.Sprintf("Error: deliveries takes at most one DAG or DAG/RUN_ID, got %d: %s\n", len(pos), strings.Join(pos, " ")))
		fs.Usage()
		return exitError
	}
	switch *st {
	case "", "pending", "delivered", "failed":
	default:
		c.UI.Error(fmt.Sprintf("Error: -state is %q; want pending, delivered or failed", *st))
		return exitError
	}
	q := &api.DeliveryQuery{State: *st}
	if len(pos) == 1 {
		q.DAG, q.RunID, _ = strings.Cut(pos[0], "/")
	}
	client, ctx, stop, err := c.connect()
	if err != nil {
		return c.fail(err)
	}
	defer stop()
	list, _, err := client.Deliveries().List(ctx, q)
	if err != nil {
		return c.fail(err)
	}
	if *asJSON {
		c.printJSON(list)
		return exitOK
	}
	if len(list) == 0 {
		c.UI.Output("No deliveries.")
		return exitOK
	}
	rows := make([][]string, 0, len(list))
	for _, d := range list {
		about := d.Payload.DAG + "/" + d.Payload.RunID
		if d.Payload.Task != "" {
			about += fmt.Sprintf(" %s", d.Payload.Task)
			if d.Payload.Try > 0 {
				about += fmt.Sprintf(" try %d", d.Payload.Try)
			}
		}
		target := d.URL
		if d.JobID != "" {
			target = "job " + d.JobID
		}
		lastError := d.LastError
		if lastError == "" {
			lastError = "-"
		}
		rows = append(rows, []string{d.ID[:12], d.Payload.Event, about, target, d.State, fmt.Sprint(d.Attempts), lastError})
	}
	c.UI.Output(c.table([]string{"ID", "EVENT", "ABOUT", "TARGET", "STATE", "ATTEMPTS", "LAST ERROR"}, rows))
	return exitOK
}
