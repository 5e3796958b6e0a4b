package main

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/dagflow/dagflow/api"
)

// AssetEmitCommand records an event of an asset updated outside dagflow.
type AssetEmitCommand struct{ *Meta }

// Help implements cli.Command.
func (c *AssetEmitCommand) Help() string {
	return strings.TrimSpace(`
Usage: dagflow asset emit [options] NAME

  Records an event of asset NAME, updated outside dagflow: the DAGs
  scheduled on it run as their schedule_on says. It needs an operator
  token. The active dagflow server records the event, whichever server
  -address names; emit waits for it and prints its sequence number.

  Give -id to make retries safe: while the asset keeps an event with that
  ID (its latest 100 events), emitting it again records nothing and prints
  the event recorded before.

Options:

  -id=ID              The event's ID, unique for the asset, such as the
                      name of the file that was loaded. Default: chosen
                      by the server.
  -extra=JSON         A JSON object recorded with the event, which the
                      runs it triggers read in run.asset_events.
  -json               Print the event as JSON.
` + apiHelp + `

Exit codes:

  0  The event was recorded, or had been with this ID.
  1  Error: bad options, a server that cannot be reached or refuses the
     token.
  2  No active server recorded the event within 30s. It stays queued, and
     is recorded once a server leads.
`)
}

// Synopsis implements cli.Command.
func (c *AssetEmitCommand) Synopsis() string { return "Record an event of an asset" }

// Run implements cli.Command.
func (c *AssetEmitCommand) Run(args []string) int {
	fs := c.flagSet("asset emit", c.Help, apiFlags)
	id := fs.String("id", "", "")
	extra := fs.String("extra", "", "")
	asJSON := fs.Bool("json", false, "")
	pos, ok := c.parseExactly(fs, args, 1, "asset emit takes one asset name")
	if !ok {
		return exitError
	}
	req := &api.EmitRequest{ID: *id}
	if *extra != "" {
		var obj map[string]json.RawMessage
		if err := json.Unmarshal([]byte(*extra), &obj); err != nil || obj == nil {
			c.UI.Error(`Error: -extra must be a JSON object, such as -extra '{"rows": 42}'`)
			return exitError
		}
		req.Extra = json.RawMessage(*extra)
	}
	client, ctx, stop, err := c.connect()
	if err != nil {
		return c.fail(err)
	}
	defer stop()
	res, err := client.Assets().Emit(ctx, pos[0], req)
	if err != nil {
		return c.fail(err)
	}
	if res.Queued {
		if *asJSON {
			c.printJSON(res)
		} else {
			c.UI.Output(fmt.Sprintf("Queued an event of asset %s.", pos[0]))
		}
		return c.queued("event")
	}
	if *asJSON {
		c.printJSON(res)
		return exitOK
	}
	if res.Duplicate {
		c.UI.Output(fmt.Sprintf("Asset %s has event %s already: #%d, recorded %s. Nothing new was recorded.", pos[0], res.Event.ID, res.Event.Seq, formatTime(res.Event.At)))
		return exitOK
	}
	c.UI.Output(fmt.Sprintf("Recorded event #%d of asset %s (ID %s).", res.Event.Seq, pos[0], res.Event.ID))
	return exitOK
}
