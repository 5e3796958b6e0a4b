package main

import (
	"fmt"
	"strings"

	"github.com/dagflow/dagflow/api"
)

// ACLTokenCreateCommand creates an API token.
type ACLTokenCreateCommand struct{ *Meta }

// Help implements cli.Command.
func (c *ACLTokenCreateCommand) Help() string {
	return strings.TrimSpace(`
Usage: dagflow acl token create [options] -name=NAME -role=ROLE

  Creates an API token and prints it. Its SecretID is shown only here:
  hand it to whoever uses the token, who sets it as DAGFLOW_TOKEN. It needs
  an admin token.

Options:

  -name=NAME          Who or what uses the token, such as "ci" or
                      "alice". Required.
  -role=ROLE          viewer (read), operator (and act on DAGs and runs)
                      or admin (and manage tokens). Required.
  -json               Print the token as JSON.
` + apiHelp + `

Exit codes:

  0  The token was created.
  1  Error: bad options, or a server that cannot be reached or refuses the
     token.
`)
}

// Synopsis implements cli.Command.
func (c *ACLTokenCreateCommand) Synopsis() string { return "Create an API token" }

// Run implements cli.Command.
func (c *ACLTokenCreateCommand) Run(args []string) int {
	fs := c.flagSet("acl token create", c.Help, apiFlags)
	name := fs.String("name", "", "")
	role := fs.String("role", "", "")
	asJSON := fs.Bool("json", false, "")
	if !c.parseFlags(fs, args) {
		return exitError
	}
	if fs.NArg() > 0 {
		c.UI.Error(fmt.Sprintf("Error: acl token create takes no arguments, got %q; give -name and -role\n", fs.Args()))
		fs.Usage()
		return exitError
	}
	var problems []string
	if strings.TrimSpace(*name) == "" {
		problems = append(problems, "-name is required: say who or what uses the token")
	}
	switch *role {
	case api.RoleViewer, api.RoleOperator, api.RoleAdmin:
	case "":
		problems = append(problems, "-role is required: viewer, operator or admin")
	default:
		problems = append(problems, fmt.Sprintf("-role is %q; want viewer, operator or admin", *role))
	}
	if len(problems) > 0 {
		c.UI.Error("Error: " + strings.Join(problems, "\nError: "))
		return exitError
	}
	client, ctx, stop, err := c.connect()
	if err != nil {
		return c.fail(err)
	}
	defer stop()
	tok, err := client.ACL().Create(ctx, &api.TokenRequest{Name: *name, Role: *role})
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
