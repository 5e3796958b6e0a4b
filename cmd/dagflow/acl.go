package main

import (
	"strings"

	"github.com/hashicorp/cli"

	"github.com/dagflow/dagflow/api"
)

// ACLCommand is the parent of the commands that manage API tokens.
type ACLCommand struct{ *Meta }

// Help implements cli.Command.
func (c *ACLCommand) Help() string {
	return strings.TrimSpace(`
Usage: dagflow acl <subcommand> [options] [args]

  Manages the tokens of the dagflow API. Every call but health and ACL
  bootstrap needs a token, whose role says what it may do:

    viewer     read DAGs, runs and logs
    operator   and trigger, backfill, pause, clear, mark and cancel
    admin      and manage tokens

  Bootstrap creates the first admin token, once per installation:

      $ dagflow acl bootstrap

  An admin then creates a token for each person or system:

      $ dagflow acl token create -name ci -role operator
`)
}

// Synopsis implements cli.Command.
func (c *ACLCommand) Synopsis() string { return "Manage API tokens" }

// Run implements cli.Command.
func (c *ACLCommand) Run([]string) int { return cli.RunResultHelp }

// ACLTokenCommand is the parent of the token commands.
type ACLTokenCommand struct{ *Meta }

// Help implements cli.Command.
func (c *ACLTokenCommand) Help() string {
	return strings.TrimSpace(`
Usage: dagflow acl token <subcommand> [options] [args]

  Creates, lists and deletes API tokens. Each needs an admin token
  (-token or DAGFLOW_TOKEN).
`)
}

// Synopsis implements cli.Command.
func (c *ACLTokenCommand) Synopsis() string { return "Create, list and delete API tokens" }

// Run implements cli.Command.
func (c *ACLTokenCommand) Run([]string) int { return cli.RunResultHelp }

// formatToken lays a token out as consul acl token commands do; the secret only when known.
func formatToken(t *api.Token) string {
	lines := []string{"AccessorID:   " + t.AccessorID}
	if t.SecretID != "" {
		lines = append(lines, "SecretID:     "+t.SecretID)
	}
	lines = append(lines,
		"Name:         "+t.Name,
		"Role:         "+t.Role,
		"Create Time:  "+formatTime(t.CreatedAt),
	)
	return strings.Join(lines, "\n")
}
