package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"slices"
	"strings"
	"time"

	"github.com/dagflow/dagflow/hcl/spec"
	"github.com/dagflow/dagflow/scheduler"
	"github.com/dagflow/dagflow/state"
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

  The request is carried out by the active dagflow server; trigger waits for
  it and prints the run ID.

Options:

  -param NAME=VALUE   A param value. Repeatable. Strings as written; other
                      types in HCL syntax: -param 'regions=["eu","us"]'.
  -wait=DURATION      How long to wait for the active server. Default 30s.
  -json               Print the result as JSON.
  -kv-prefix=PREFIX   Consul KV prefix of this dagflow installation.
                      Default "dagflow/", or DAGFLOW_KV_PREFIX.

Exit codes:

  0  The run was created.
  1  Error: bad options or params, a DAG that is not applied, or no active
     server answered in time (the request stays queued and is carried out
     when one does).
`)
}

// Synopsis implements cli.Command.
func (c *TriggerCommand) Synopsis() string { return "Start a manual run of a DAG" }

// Run implements cli.Command.
func (c *TriggerCommand) Run(args []string) int {
	fs := c.flagSet("trigger", c.Help, clusterFlags)
	var params varList
	fs.Var(&params, "param", "")
	wait := fs.Duration("wait", 30*time.Second, "")
	asJSON := fs.Bool("json", false, "")
	pos, ok := c.parseArgs(fs, args)
	if !ok {
		return exitError
	}
	if len(pos) != 1 {
		c.UI.Error("Error: trigger takes one DAG name\n")
		fs.Usage()
		return exitError
	}
	store, err := c.store()
	if err != nil {
		c.UI.Error(fmt.Sprintf("Error: %v", err))
		return exitError
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	dag, err := appliedDAG(ctx, store, pos[0])
	if err != nil {
		c.UI.Error(fmt.Sprintf("Error: %v", err))
		return exitError
	}
	given, err := parseParams(dag, params)
	if err != nil {
		c.UI.Error(fmt.Sprintf("Error: %v", err))
		return exitError
	}
	req := &state.Request{Kind: state.RequestTrigger, DAG: dag.Name, RunID: scheduler.RunID(scheduler.RunManual, time.Now()), Params: given}
	res, code := c.request(ctx, store, req, *wait, *asJSON)
	if res != nil && !*asJSON {
		c.UI.Output(fmt.Sprintf("Triggered DAG %s: run %s.", dag.Name, req.RunID))
	}
	return code
}

// appliedDAG reads the applied version of DAG name.
func appliedDAG(ctx context.Context, store *state.Store, name string) (*spec.DAG, error) {
	cat, err := store.Catalog(ctx)
	if err != nil {
		return nil, err
	}
	entry, ok := cat.DAGs[name]
	if !ok {
		return nil, fmt.Errorf("DAG %q is not applied; dagflow plan and apply it first", name)
	}
	v, err := store.DAGVersion(ctx, name, entry.Version)
	if err != nil {
		return nil, err
	}
	return v.DAG, nil
}

// parseParams reads -param NAME=VALUE options with the types of dag's params and checks them
// as the server will; every problem is reported.
func parseParams(dag *spec.DAG, list varList) (map[string]json.RawMessage, error) {
	byName := map[string]*spec.Param{}
	for _, p := range dag.Params {
		byName[p.Name] = p
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
	_, err := dag.ResolveParams(given)
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
