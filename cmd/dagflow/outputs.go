package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/dagflow/dagflow/api"
)

// OutputsCommand prints the outputs a task published.
type OutputsCommand struct{ *Meta }

// Help implements cli.Command.
func (c *OutputsCommand) Help() string {
	return strings.TrimSpace(`
Usage: dagflow outputs [options] RUN TASK

  Prints the outputs task TASK published in run RUN: the JSON object its
  latest successful try wrote to the file named by DAGFLOW_OUTPUT, one
  KEY = VALUE line per key, sorted, each value as JSON. For a task mapped
  over an upstream's outputs, it prints those of each of its instances.

  Outputs are visible to every token that may view the run: do not publish
  secrets through them.

  RUN is DAG/RUN_ID, or RUN_ID alone when no other DAG has a run with that
  ID.

Options:

  -try=N              The try whose outputs to show, from 1. Default: the
                      latest successful one.
  -json               Print a JSON object with the run, the task, the try
                      and its outputs; for a mapped task, the outputs of
                      each instance by instance key.
` + apiHelp + `

Exit codes:

  0  Success, also when the task published no outputs.
  1  Error: no such run, task or try, a task that did not succeed, or a
     server that cannot be reached or refuses the token.
`)
}

// Synopsis implements cli.Command.
func (c *OutputsCommand) Synopsis() string { return "Print the outputs a task published" }

// outputsJSON is what outputs prints with -json.
type outputsJSON struct {
	DAG     string                     `json:"dag"`
	RunID   string                     `json:"run_id"`
	Task    string                     `json:"task"`
	Try     int                        `json:"try,omitempty"`     // of a task that is not mapped
	Outputs json.RawMessage            `json:"outputs,omitempty"` // of a task that is not mapped
	Mapped  map[string]json.RawMessage `json:"instances,omitempty"`
}

// Run implements cli.Command.
func (c *OutputsCommand) Run(args []string) int {
	fs := c.flagSet("outputs", c.Help, apiFlags)
	try := fs.Int("try", 0, "")
	asJSON := fs.Bool("json", false, "")
	pos, ok := c.parseExactly(fs, args, 2, "outputs takes a run (DAG/RUN_ID or RUN_ID) and a task name")
	if !ok {
		return exitError
	}
	client, ctx, ref, stop, err := c.openRun(pos[0])
	if err != nil {
		return c.fail(err)
	}
	defer stop()
	run, _, err := client.Runs().Info(ctx, ref.DAG, ref.ID)
	if err != nil {
		return c.fail(err)
	}
	name := pos[1]
	var ti *api.TaskInstance
	names := make([]string, 0, len(run.Tasks))
	for i := range run.Tasks {
		names = append(names, run.Tasks[i].Task)
		if run.Tasks[i].Task == name {
			ti = &run.Tasks[i]
		}
	}
	if ti == nil {
		slices.Sort(names)
		return c.fail(fmt.Errorf("run %s has no task %q; it has %s", ref, name, quoteAll(names)))
	}
	out := outputsJSON{DAG: ref.DAG, RunID: ref.ID, Task: name}
	if ti.MapOver != "" {
		if *try != 0 {
			return c.fail(fmt.Errorf("task %q is mapped over %s: -try applies to one of its instances, such as %s[%s]", name, ti.MapOver, name, first(ti.MapKeys)))
		}
		out.Mapped = map[string]json.RawMessage{}
		for _, inst := range run.Tasks {
			if inst.Parent != name {
				continue
			}
			if t := successful(inst.Tries, 0); t != nil && t.Outputs != nil {
				out.Mapped[strings.TrimSuffix(strings.TrimPrefix(inst.Task, name+"["), "]")] = t.Outputs
			}
		}
		if *asJSON {
			c.printJSON(out)
			return exitOK
		}
		for _, key := range ti.MapKeys {
			if o, ok := out.Mapped[key]; ok {
				fmt.Printf("%s[%s]:\n", name, key)
				printOutputs(o, "  ")
			}
		}
		return exitOK
	}
	t := successful(ti.Tries, *try)
	switch {
	case *try > len(ti.Tries):
		return c.fail(fmt.Errorf("task %q of run %s has %d tries, not %d", name, ref, len(ti.Tries), *try))
	case t == nil && *try > 0:
		return c.fail(fmt.Errorf("try %d of task %q of run %s did not succeed (%s), so it published no outputs", *try, name, ref, ti.Tries[*try-1].State))
	case t == nil:
		return c.fail(fmt.Errorf("task %q of run %s has no successful try (state %s), so it published no outputs", name, ref, taskState(ti.State)))
	}
	out.Try, out.Outputs = t.Try, t.Outputs
	if *asJSON {
		if out.Outputs == nil {
			out.Outputs = json.RawMessage("{}")
		}
		c.printJSON(out)
		return exitOK
	}
	if t.Outputs == nil {
		c.UI.Warn(fmt.Sprintf("Task %q published no outputs in try %d.", name, t.Try))
		return exitOK
	}
	printOutputs(t.Outputs, "")
	return exitOK
}

// successful returns try n (the latest successful one when n is 0) if it succeeded.
func successful(tries []api.Try, n int) *api.Try {
	if n > 0 {
		if n <= len(tries) && tries[n-1].State == "success" {
			return &tries[n-1]
		}
		return nil
	}
	for i := len(tries) - 1; i >= 0; i-- {
		if tries[i].State == "success" {
			return &tries[i]
		}
	}
	return nil
}

// printOutputs prints an outputs object as KEY = VALUE lines, sorted by key.
func printOutputs(raw json.RawMessage, indent string) {
	var obj map[string]json.RawMessage
	if json.Unmarshal(raw, &obj) != nil {
		fmt.Printf("%s%s\n", indent, raw)
		return
	}
	for _, k := range slices.Sorted(maps.Keys(obj)) {
		var v bytes.Buffer
		if json.Compact(&v, obj[k]) != nil {
			v.Reset()
			v.Write(obj[k])
		}
		fmt.Printf("%s%s = %s\n", indent, k, v.Bytes())
	}
}

func first(keys []string) string {
	if len(keys) == 0 {
		return "KEY"
	}
	return keys[0]
}
