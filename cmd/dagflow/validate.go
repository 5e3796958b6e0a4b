package main

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/hashicorp/hcl/v2"

	"github.com/dagflow/dagflow/hcl/spec"
)

// ValidateCommand checks DAG files without reaching any cluster.
type ValidateCommand struct{ *Meta }

// Help implements cli.Command.
func (c *ValidateCommand) Help() string {
	return strings.TrimSpace(`
Usage: dagflow validate [options] [PATH]

  Checks the DAG files at PATH (a file, or every *.hcl file below a
  directory; default ".") and reports every problem found: syntax errors,
  unknown attributes, duplicate names, unknown dependencies and queues,
  dependency cycles, invalid schedules, time zones, dates, durations and
  trigger rules, params of the wrong type, and unknown runtime values.
  It does not contact Consul or Nomad.

Options:

  -json            Print the result as JSON.
  -var NAME=VALUE  Set a variable declared in the files. Repeatable.
  -no-color        Print diagnostics without colors.

Exit codes:

  0  The files are valid.
  1  The files have errors, or could not be read.
`)
}

// Synopsis implements cli.Command.
func (c *ValidateCommand) Synopsis() string { return "Check DAG files for errors" }

// Run implements cli.Command.
func (c *ValidateCommand) Run(args []string) int {
	fs := c.flagSet("validate", c.Help, colorFlags|varFlags)
	asJSON := fs.Bool("json", false, "")
	path, ok := c.parse(fs, args)
	if !ok {
		return exitError
	}
	restoreGC := loadGC()
	p := spec.NewParser()
	p.Vars = c.vars.values()
	cfg, diags := p.Load(path)
	restoreGC()
	if *asJSON {
		out, err := json.MarshalIndent(validateJSON(cfg, diags), "", "  ")
		if err != nil {
			c.UI.Error(err.Error())
			return exitError
		}
		c.UI.Output(string(out))
	} else {
		if len(diags) > 0 {
			c.printDiagnostics(p, diags)
		}
		if !diags.HasErrors() {
			c.UI.Output(fmt.Sprintf("Success! The configuration is valid: %s, %s.", plural(len(cfg.DAGs), "DAG"), plural(len(cfg.Queues), "queue")))
		}
	}
	if diags.HasErrors() {
		return exitError
	}
	return exitOK
}

// jsonDiagnostic is one diagnostic in -json output; the shape follows `terraform validate -json`.
type jsonDiagnostic struct {
	Severity string     `json:"severity"`
	Summary  string     `json:"summary"`
	Detail   string     `json:"detail,omitempty"`
	Range    *jsonRange `json:"range,omitempty"`
}

type jsonRange struct {
	Filename string  `json:"filename"`
	Start    jsonPos `json:"start"`
	End      jsonPos `json:"end"`
}

type jsonPos struct {
	Line   int `json:"line"`
	Column int `json:"column"`
	Byte   int `json:"byte"`
}

func validateJSON(cfg *spec.Config, diags hcl.Diagnostics) any {
	out := struct {
		Valid        bool             `json:"valid"`
		ErrorCount   int              `json:"error_count"`
		WarningCount int              `json:"warning_count"`
		DAGs         []string         `json:"dags"`
		Queues       []string         `json:"queues"`
		Diagnostics  []jsonDiagnostic `json:"diagnostics"`
	}{Valid: !diags.HasErrors(), DAGs: []string{}, Queues: []string{}, Diagnostics: []jsonDiagnostic{}}
	for _, d := range diags {
		jd := jsonDiagnostic{Severity: "error", Summary: d.Summary, Detail: d.Detail}
		if d.Severity == hcl.DiagWarning {
			jd.Severity = "warning"
			out.WarningCount++
		} else {
			out.ErrorCount++
		}
		if d.Subject != nil {
			s := d.Subject
			jd.Range = &jsonRange{
				Filename: s.Filename,
				Start:    jsonPos{s.Start.Line, s.Start.Column, s.Start.Byte},
				End:      jsonPos{s.End.Line, s.End.Column, s.End.Byte},
			}
		}
		out.Diagnostics = append(out.Diagnostics, jd)
	}
	if cfg != nil && out.Valid {
		for _, d := range cfg.DAGs {
			out.DAGs = append(out.DAGs, d.Name)
		}
		for _, q := range cfg.Queues {
			out.Queues = append(out.Queues, q.Name)
		}
	}
	return out
}

func plural(n int, noun string) string {
	if n == 1 {
		return fmt.Sprintf("1 %s", noun)
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
