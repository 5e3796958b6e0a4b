package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dagflow/dagflow/api"
)

// LogsCommand prints the output of a try of a task.
type LogsCommand struct{ *Meta }

// Help implements cli.Command.
func (c *LogsCommand) Help() string {
	return strings.TrimSpace(`
Usage: dagflow logs [options] RUN TASK

  Prints the standard output of task TASK in run RUN: of its latest try,
  unless -try names another. While the try runs, it prints what the try
  wrote so far. The output comes from Nomad while it keeps the try's
  allocation, and later from the tail of it that dagflow keeps in Consul.

  RUN is DAG/RUN_ID, or RUN_ID alone when no other DAG has a run with that
  ID.

Options:

  -try=N              The try to show, from 1. Default: the latest.
  -stderr             Print the try's standard error instead.
  -f                  Follow the output as the try writes it, until the try
                      ends. A task that has not started yet is waited for.
                      Ctrl-C stops following. A retry is a new try: run
                      dagflow logs again to see it.
  -json               Print the output as a JSON object, with where it came
                      from; with -f, one object per line for each piece.
` + apiHelp + `

Exit codes:

  0  Success, also when the try wrote nothing; with -f, the try ended.
  1  Error: no such run, task or try, or a server that cannot be reached or
     refuses the token.
`)
}

// Synopsis implements cli.Command.
func (c *LogsCommand) Synopsis() string { return "Print the output of a task" }

// followInterval is how often -f asks for more output: often enough to feel live, rarely
// enough that a few followers cost the server and Nomad little.
const followInterval = 500 * time.Millisecond

// logsJSON is what logs prints with -json.
type logsJSON struct {
	DAG       string `json:"dag"`
	RunID     string `json:"run_id"`
	Task      string `json:"task"`
	Try       int    `json:"try"`
	Type      string `json:"type"`   // stdout or stderr
	Source    string `json:"source"` // nomad, or stored: the tail kept in Consul
	Data      string `json:"data"`
	Offset    int64  `json:"offset"` // the byte after Data
	Finished  bool   `json:"finished"`
	Truncated bool   `json:"truncated"` // only the tail of the output was kept
}

// Run implements cli.Command.
func (c *LogsCommand) Run(args []string) int {
	fs := c.flagSet("logs", c.Help, apiFlags)
	try := fs.Int("try", 0, "")
	stderr := fs.Bool("stderr", false, "")
	follow := fs.Bool("f", false, "")
	asJSON := fs.Bool("json", false, "")
	pos, ok := c.parseExactly(fs, args, 2, "logs takes a run (DAG/RUN_ID or RUN_ID) and a task name")
	if !ok {
		return exitError
	}
	tryGiven := false
	fs.Visit(func(f *flag.Flag) { tryGiven = tryGiven || f.Name == "try" })
	if tryGiven && *try < 1 {
		c.UI.Error(fmt.Sprintf("Error: -try is %d; tries count from 1", *try))
		return exitError
	}
	client, ctx, ref, stop, err := c.openRun(pos[0])
	if err != nil {
		return c.fail(err)
	}
	defer stop()
	task := pos[1]
	if *try == 0 {
		n, err := c.latestTry(ctx, client, ref, task, *follow)
		if err != nil {
			if *follow && errors.Is(err, context.Canceled) {
				return exitOK
			}
			return c.fail(err)
		}
		*try = n
	}
	out := logsJSON{DAG: ref.DAG, RunID: ref.ID, Task: task, Try: *try, Type: "stdout"}
	if *stderr {
		out.Type = "stderr"
	}
	var all []byte
	for {
		l, err := client.Runs().Logs(ctx, ref.DAG, ref.ID, task, *try, &api.LogOptions{Type: out.Type, Offset: out.Offset})
		if err != nil {
			if *follow && errors.Is(err, context.Canceled) {
				return exitOK
			}
			return c.fail(err)
		}
		out.Offset, out.Source, out.Finished, out.Truncated = l.Offset, l.Source, l.Finished, l.Truncated
		switch {
		case *asJSON && *follow:
			if len(l.Data) > 0 || l.Finished {
				out.Data = string(l.Data)
				b, _ := json.Marshal(out)
				fmt.Println(string(b))
			}
		case *asJSON:
			all = append(all, l.Data...)
		default:
			_, _ = os.Stdout.Write(l.Data)
		}
		if len(l.Data) > 0 {
			continue // there may be more at once: a read returns at most 1 MiB
		}
		if !*follow || l.Finished {
			break
		}
		select {
		case <-ctx.Done():
			return exitOK
		case <-time.After(followInterval):
		}
	}
	if *asJSON && !*follow {
		out.Data = string(all)
		c.printJSON(out)
	}
	if out.Truncated && !*asJSON {
		c.UI.Warn("\nNote: only the tail of this output was kept; Nomad no longer has the rest.")
	}
	return exitOK
}

// latestTry returns the number of the latest try of task in run ref. With wait, it waits for
// the first try of a task that has none yet.
func (c *LogsCommand) latestTry(ctx context.Context, client *api.Client, ref runRef, task string, wait bool) (int, error) {
	for {
		run, _, err := client.Runs().Info(ctx, ref.DAG, ref.ID)
		if err != nil {
			return 0, err
		}
		var ti *api.TaskInstance
		for i := range run.Tasks {
			if run.Tasks[i].Task == task {
				ti = &run.Tasks[i]
			}
		}
		if ti == nil {
			// The run lists every task of its DAG version, scheduled yet or not.
			names := make([]string, 0, len(run.Tasks))
			for _, t := range run.Tasks {
				names = append(names, t.Task)
			}
			slices.Sort(names)
			return 0, fmt.Errorf("run %s has no task %q; it has %s", ref, task, quoteAll(names))
		}
		if n := len(ti.Tries); n > 0 {
			return n, nil
		}
		state := taskState(ti.State)
		if run.State == "success" || run.State == "failed" {
			return 0, fmt.Errorf("task %q of run %s never ran (state %s), so it has no output", task, ref, state)
		}
		if !wait {
			return 0, fmt.Errorf("task %q of run %s has not started yet (state %s); -f waits for it", task, ref, state)
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(followInterval):
		}
	}
}

// quoteAll quotes names and joins them with commas.
func quoteAll(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = strconv.Quote(n)
	}
	return strings.Join(q, ", ")
}
