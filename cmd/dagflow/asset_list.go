package main

import (
	"fmt"
	"strings"
)

// AssetListCommand lists the assets with their producers and consumers.
type AssetListCommand struct{ *Meta }

// Help implements cli.Command.
func (c *AssetListCommand) Help() string {
	return strings.TrimSpace(`
Usage: dagflow asset list [options]

  Lists every asset an applied DAG names (in a task's outlets or a DAG's
  schedule_on) or an event was recorded for, sorted by name: its latest
  sequence number, when it was last updated (UTC), the tasks that produce
  it (DAG.TASK) and the DAGs scheduled on it.

Options:

  -json               Print the assets as a JSON array.
` + apiHelp + `

Exit codes:

  0  Success, also when there are no assets.
  1  Error: a server that cannot be reached or refuses the token.
`)
}

// Synopsis implements cli.Command.
func (c *AssetListCommand) Synopsis() string { return "List assets, their producers and consumers" }

// Run implements cli.Command.
func (c *AssetListCommand) Run(args []string) int {
	fs := c.flagSet("asset list", c.Help, apiFlags)
	asJSON := fs.Bool("json", false, "")
	if _, ok := c.parseExactly(fs, args, 0, "asset list takes no arguments"); !ok {
		return exitError
	}
	client, ctx, stop, err := c.connect()
	if err != nil {
		return c.fail(err)
	}
	defer stop()
	assets, _, err := client.Assets().List(ctx)
	if err != nil {
		return c.fail(err)
	}
	if *asJSON {
		c.printJSON(assets)
		return exitOK
	}
	if len(assets) == 0 {
		c.UI.Output("No assets: no applied DAG names one in outlets or schedule_on, and no event was emitted.")
		return exitOK
	}
	rows := make([][]string, 0, len(assets))
	for _, a := range assets {
		rows = append(rows, []string{a.Name, fmt.Sprint(a.Seq), formatTime(a.UpdatedAt), orNone(a.Producers), orNone(a.Consumers)})
	}
	c.UI.Output(c.table([]string{"ASSET", "SEQ", "UPDATED", "PRODUCERS", "CONSUMERS"}, rows))
	return exitOK
}

// orNone joins names with commas, or says "-" for none.
func orNone(names []string) string {
	if len(names) == 0 {
		return "-"
	}
	return strings.Join(names, ",")
}
