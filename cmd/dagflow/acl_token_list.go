package main

import (
	"sort"
	"strings"

	"github.com/dagflow/dagflow/api"
)

// ACLTokenListCommand lists the API tokens.
type ACLTokenListCommand struct{ *Meta }

// Help implements cli.Command.
func (c *ACLTokenListCommand) Help() string {
	return strings.TrimSpace(`
Usage: dagflow acl token list [options]

  Lists every API token, oldest first: accessor ID, name, role and when it
  was created, never its secret. It needs an admin token.

Options:

  -json               Print the tokens as a JSON array.
` + apiHelp + `

Exit codes:

  0  Success.
  1  Error: a server that cannot be reached or refuses the token.
`)
}

// Synopsis implements cli.Command.
func (c *ACLTokenListCommand) Synopsis() string { return "List the API tokens" }

// Run implements cli.Command.
func (c *ACLTokenListCommand) Run(args []string) int {
	fs := c.flagSet("acl token list", c.Help, apiFlags)
	asJSON := fs.Bool("json", false, "")
	if !c.parseFlags(fs, args) {
		return exitError
	}
	if fs.NArg() > 0 {
		c.UI.Error("Error: acl token list takes no arguments\n")
		fs.Usage()
		return exitError
	}
	client, ctx, stop, err := c.connect()
	if err != nil {
		return c.fail(err)
	}
	defer stop()
	tokens, err := client.ACL().List(ctx)
	if err != nil {
		return c.fail(err)
	}
	// Oldest first, as they were created: the bootstrap token leads.
	sort.SliceStable(tokens, func(i, j int) bool { return tokens[i].CreatedAt.Before(tokens[j].CreatedAt) })
	if *asJSON {
		if tokens == nil {
			tokens = []api.Token{}
		}
		c.printJSON(tokens)
		return exitOK
	}
	blocks := make([]string, 0, len(tokens))
	for i := range tokens {
		blocks = append(blocks, formatToken(&tokens[i]))
	}
	c.UI.Output(strings.Join(blocks, "\n\n"))
	return exitOK
}
