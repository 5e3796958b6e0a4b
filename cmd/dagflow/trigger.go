package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/dagflow/dagflow/api"
	"github.com/dagflow/dagflow/hcl/spec"
	"github.com/dagflow/dagflow/rules"
)

// TriggerCommand asks the leader to start a manual run.
type TriggerCommand struct{ *Meta }

// Help implements cli.Command.
func (c *TriggerCommand) Help() string {
	return strings.TrimSpace(`
Usage: dagflow trigger [options] DAG

  Starts a manual run of DAG (run ID manual__<now>) with the applied
  version. Params not given take their defaults; every value is checked
  against the DAG's param blocks, and every problem is reported.

  The active dagflow server carries the request out, whichever server
  -address names; trigger waits for it and prints the run ID.

Options:

  -param NAME=VALUE   A param value. Repeatable. Strings as written; other
                      types in HCL syntax: -param 'regions=["eu","us"]'.
  -json               Print the result as JSON.
` + apiHelp + `

Exit codes:

  0  The run was created.
  1  Error: bad options or params, a DAG that is not applied, a server
     that cannot be reached or refuses the token.
  2  No active server carried the request out within 30s. It stays queued,
     and the run is created once a server leads.
`)
}

// Synopsis implements cli.Command.
func (c *TriggerCommand) Synopsis() string { return "Start a manual run of a DAG" }

// actionJSON is what trigger and backfill print with -json.
type actionJSON struct {
	DAG    string   `json:"dag"`
	RunIDs []string `json:"run_ids"`
	Queued bool     `json:"queued"` // no active server carried it out in time; it stays queued
}

// Run implements cli.Command.
func (c *TriggerCommand) Run(args []string) int {
	fs := c.flagSet("trigger", c.Help, apiFlags)
	var params varList
	fs.Var(&params, "param", "")
	asJSON := fs.Bool("json", false, "")
	pos, ok := c.parseExactly(fs, args, 1, "trigger takes one DAG name")
	if !ok {
		return exitError
	}
	client, ctx, stop, err := c.connect()
	if err != nil {
		return c.fail(err)
	}
	defer stop()
	dag, _, err := client.DAGs().Info(ctx, pos[0], "")
	if err != nil {
		return c.fail(err)
	}
	given, err := parseParams(dag, params)
	var perrs spec.ParamErrors
	if errors.As(err, &perrs) {
		msg := fmt.Sprintf("Error: DAG %q cannot run with these params", dag.Name)
		for _, e := range perrs {
			msg += fmt.Sprintf("\n  param %q: %s", e.Param, e.Message)
		}
		c.UI.Error(msg)
		return exitError
	}
	if err != nil {
		return c.fail(err)
	}
	// The run ID is chosen here, so that a request left queued can still say which run it
	// will create.
	runID := rules.RunID(rules.RunManual, time.Now())
	res, err := client.DAGs().Trigger(ctx, dag.Name, &api.TriggerRequest{Params: given, RunID: runID})
	if err != nil {
		return c.fail(err)
	}
	if *asJSON {
		c.printJSON(actionJSON{DAG: dag.Name, RunIDs: []string{runID}, Queued: res.Queued})
	}
	if res.Queued {
		if !*asJSON {
			c.UI.Output(fmt.Sprintf("Queued a trigger of DAG %s: run %s.", dag.Name, runID))
		}
		return c.queued("trigger")
	}
	if !*asJSON {
		c.UI.Output(fmt.Sprintf("Triggered DAG %s: run %s.", dag.Name, runID))
	}
	return exitOK
}

// parseParams reads -param NAME=VALUE options with the types of dag's params and checks them
// as the server will, so that every problem is reported before anything is queued.
func parseParams(dag *api.DAG, list varList) (map[string]json.RawMessage, error) {
	d := &spec.DAG{Name: dag.Name}
	byName := map[string]*spec.Param{}
	for _, p := range dag.Params {
		sp := &spec.Param{Name: p.Name, Type: p.Type, Default: p.Default, Required: p.Required}
		d.Params = append(d.Params, sp)
		byName[p.Name] = sp
	}
	given := map[string]json.RawMessage{}
	var errs spec.ParamErrors
	for _, kv := range list {
		name, text, _ := strings.Cut(kv, "=")
		p := byName[name]
		if p == nil {
			given[name] = json.RawMessage(`null`) // ResolveParams names the params there are
			continue
		}
		v, err := spec.ParseParam(p, text)
		if err != nil {
			errs = append(errs, spec.ParamError{Param: name, Message: err.Error()})
			continue
		}
		given[name] = v
	}
	_, err := d.ResolveParams(given)
	var rerrs spec.ParamErrors
	if errors.As(err, &rerrs) {
		for _, e := range rerrs {
			if !slices.ContainsFunc(errs, func(x spec.ParamError) bool { return x.Param == e.Param }) {
				errs = append(errs, e)
			}
		}
	} else if err != nil {
		return nil, err
	}
	if len(errs) > 0 {
		slices.SortFunc(errs, func(a, b spec.ParamError) int { return strings.Compare(a.Param, b.Param) })
		return nil, errs
	}
	return given, nil
}
