package main

import (
	"fmt"
	"strings"
)

// ACLTokenDeleteCommand revokes an API token.
type ACLTokenDeleteCommand struct{ *Meta }

// Help implements cli.Command.
func (c *ACLTokenDeleteCommand) Help() string {
	return strings.TrimSpace(`
Usage: dagflow acl token delete [options] ACCESSOR_ID

  Deletes the token with accessor ID ACCESSOR_ID (dagflow acl token list
  shows them): calls with its secret are refused from then on. It needs an
  admin token.
` + apiHelp + `

Exit codes:

  0  The token was deleted.
  1  Error: no such token, or a server that cannot be reached or refuses
     the token.
`)
}

// Synopsis implements cli.Command.
func (c *ACLTokenDeleteCommand) Synopsis() string { return "Delete an API token" }

// Run implements cli.Command.
func (c *ACLTokenDeleteCommand) Run(args []string) int {
	fs := c.flagSet("acl token delete", c.Help, apiFlags)
	pos, ok := c.parseExactly(fs, args, 1, "acl token delete takes one accessor ID")
	if !ok {
		return exitError
	}
	client, ctx, stop, err := c.connect()
	if err != nil {
		return c.fail(err)
	}
	defer stop()
	if err := client.ACL().Delete(ctx, pos[0]); err != nil {
		return c.fail(err)
	}
	c.UI.Output(fmt.Sprintf("Token %q deleted.", pos[0]))
	return exitOK
}
