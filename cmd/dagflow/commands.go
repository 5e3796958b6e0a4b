package main

import (
	"fmt"
	"os"

	"github.com/hashicorp/cli"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "0.1.0-dev"

// run runs the CLI with args and returns the exit code.
func run(args []string) int {
	ui := &cli.BasicUi{Reader: os.Stdin, Writer: os.Stdout, ErrorWriter: os.Stderr}
	meta := &Meta{UI: ui}
	c := &cli.CLI{
		Name:     "dagflow",
		Version:  version,
		Args:     args,
		HelpFunc: cli.BasicHelpFunc("dagflow"),
		Commands: map[string]cli.CommandFactory{
			"validate":         func() (cli.Command, error) { return &ValidateCommand{Meta: meta}, nil },
			"fmt":              func() (cli.Command, error) { return &FmtCommand{Meta: meta}, nil },
			"plan":             func() (cli.Command, error) { return &PlanCommand{Meta: meta}, nil },
			"apply":            func() (cli.Command, error) { return &ApplyCommand{Meta: meta}, nil },
			"trigger":          func() (cli.Command, error) { return &TriggerCommand{Meta: meta}, nil },
			"backfill":         func() (cli.Command, error) { return &BackfillCommand{Meta: meta}, nil },
			"pause":            func() (cli.Command, error) { return &PauseCommand{Meta: meta, pause: true}, nil },
			"unpause":          func() (cli.Command, error) { return &PauseCommand{Meta: meta}, nil },
			"runs":             func() (cli.Command, error) { return &RunsCommand{Meta: meta}, nil },
			"deliveries":       func() (cli.Command, error) { return &DeliveriesCommand{Meta: meta}, nil },
			"run":              func() (cli.Command, error) { return &RunCommand{Meta: meta}, nil },
			"run status":       func() (cli.Command, error) { return &RunStatusCommand{Meta: meta}, nil },
			"logs":             func() (cli.Command, error) { return &LogsCommand{Meta: meta}, nil },
			"outputs":          func() (cli.Command, error) { return &OutputsCommand{Meta: meta}, nil },
			"clear":            func() (cli.Command, error) { return &ClearCommand{Meta: meta}, nil },
			"mark":             func() (cli.Command, error) { return &MarkCommand{Meta: meta}, nil },
			"cancel":           func() (cli.Command, error) { return &CancelCommand{Meta: meta}, nil },
			"asset":            func() (cli.Command, error) { return &AssetCommand{Meta: meta}, nil },
			"asset emit":       func() (cli.Command, error) { return &AssetEmitCommand{Meta: meta}, nil },
			"asset list":       func() (cli.Command, error) { return &AssetListCommand{Meta: meta}, nil },
			"acl":              func() (cli.Command, error) { return &ACLCommand{Meta: meta}, nil },
			"acl bootstrap":    func() (cli.Command, error) { return &ACLBootstrapCommand{Meta: meta}, nil },
			"acl token":        func() (cli.Command, error) { return &ACLTokenCommand{Meta: meta}, nil },
			"acl token create": func() (cli.Command, error) { return &ACLTokenCreateCommand{Meta: meta}, nil },
			"acl token list":   func() (cli.Command, error) { return &ACLTokenListCommand{Meta: meta}, nil },
			"acl token delete": func() (cli.Command, error) { return &ACLTokenDeleteCommand{Meta: meta}, nil },
			"server":           func() (cli.Command, error) { return &ServerCommand{Meta: meta}, nil },
			"doctor":           func() (cli.Command, error) { return &DoctorCommand{Meta: meta}, nil },
			"version":          func() (cli.Command, error) { return &VersionCommand{Meta: meta}, nil },
		},
	}
	code, err := c.Run()
	if err != nil {
		fmt.Fprintf(os.Stderr, "Error: %v\n", err)
		return 1
	}
	return code
}

// VersionCommand prints the version.
type VersionCommand struct{ *Meta }

// Help implements cli.Command.
func (c *VersionCommand) Help() string {
	return "Usage: dagflow version\n\n  Prints the version of dagflow."
}

// Synopsis implements cli.Command.
func (c *VersionCommand) Synopsis() string { return "Print the dagflow version" }

// Run implements cli.Command.
func (c *VersionCommand) Run([]string) int {
	c.UI.Output("dagflow v" + version)
	return 0
}
