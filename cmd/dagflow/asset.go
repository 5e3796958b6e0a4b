package main

import (
	"strings"

	"github.com/hashicorp/cli"
)

// AssetCommand is the parent of the asset commands.
type AssetCommand struct{ *Meta }

// Help implements cli.Command.
func (c *AssetCommand) Help() string {
	return strings.TrimSpace(`
Usage: dagflow asset <subcommand> [options] [args]

  Lists assets and records asset events. An asset is data a task updates
  (outlets = ["warehouse.orders"]) and DAGs may be scheduled on
  (schedule_on = ["warehouse.orders"]). Producers outside dagflow record
  their updates with emit:

      $ dagflow asset emit -id load-2026-12-07 warehouse.orders
`)
}

// Synopsis implements cli.Command.
func (c *AssetCommand) Synopsis() string { return "List assets and record asset events" }

// Run implements cli.Command.
func (c *AssetCommand) Run([]string) int { return cli.RunResultHelp }
