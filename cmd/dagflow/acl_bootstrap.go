package main

import "strings"

// ACLBootstrapCommand creates the first admin token.
type ACLBootstrapCommand struct{ *Meta }

// Help implements cli.Command.
func (c *ACLBootstrapCommand) Help() string {
	return strings.TrimSpace(`
Usage: dagflow acl bootstrap [options]

  Creates the first admin token of this dagflow installation and prints it.
  It works once: afterwards it is refused, and admins create tokens with
  dagflow acl token create. Keep the SecretID safe; it is shown only here.
  It needs no token.

Options:

  -json               Print the token as JSON.
  -address=ADDR       Address of a dagflow server, active or standby. Default
                      DAGFLOW_ADDR, or http://127.0.0.1:8080.

Exit codes:

  0  The token was created.
  1  Error: bootstrap was already done, or the server cannot be reached.
`)
}

// Synopsis implements cli.Command.
func (c *ACLBootstrapCommand) Synopsis() string { return "Create the first admin token" }

// Run implements cli.Command.
func (c *ACLBootstrapCommand) Run(args []string) int {
	fs := c.flagSet("acl bootstrap", c.Help, apiFlags)
	asJSON := fs.Bool("json", false, "")
	if !c.parseFlags(fs, args) {
		return exitError
	}
	if fs.NArg() > 0 {
		c.UI.Error("Error: acl bootstrap takes no arguments\n")
		fs.Usage()
		return exitError
	}
	client, ctx, stop, err := c.connect()
	if err != nil {
		return c.fail(err)
	}
	defer stop()
	tok, err := client.ACL().Bootstrap(ctx)
	if err != nil {
		return c.fail(err)
	}
	if *asJSON {
		c.printJSON(tok)
	} else {
		c.UI.Output(formatToken(tok))
	}
	return exitOK
}
