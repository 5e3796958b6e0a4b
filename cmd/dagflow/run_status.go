package main

import (
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/hashicorp/cli"

	"github.com/dagflow/dagflow/api"
)

// RunCommand is the parent of the commands about one run.
type RunCommand struct{ *Meta }

// Help implements cli.Command.
func (c *RunCommand) Help() string {
	return strings.TrimSpace(`
Usage: dagflow run <subcommand> [options] [args]

  Shows one run of a DAG. A run is named DAG/RUN_ID, as dagflow runs lists
  them, or by its RUN_ID alone when no other DAG has a run with that ID.

  dagflow logs prints the output of a run's tasks; dagflow clear, mark and
  cancel act on them.
`)
}

// Synopsis implements cli.Command.
func (c *RunCommand) Synopsis() string { return "Show a run of a DAG" }

// Run implements cli.Command.
func (c *RunCommand) Run([]string) int { return cli.RunResultHelp }

// RunStatusCommand shows one run with its tasks.
type RunStatusCommand struct{ *Meta }

// Help implements cli.Command.
func (c *RunStatusCommand) Help() string {
	return strings.TrimSpace(`
Usage: dagflow run status [options] RUN

  Shows run RUN of a DAG: its type, state, logical date, data interval,
  times and params, then a table of its tasks in the order they run, with
  each task's state, number of tries, and the exit code and message of its
  latest try. Times are in UTC.

  A task that does not run says why in its message: "waiting: queue ... at
  max_running" while its queue or DAG has no slot, "not placed: ..." with
  Nomad's reasons while no node can take its try.

  RUN is DAG/RUN_ID, or RUN_ID alone when no other DAG has a run with that
  ID.

Options:

  -json               Print the run as JSON, with every try of every task.
  -no-color           Print without colors.
` + apiHelp + `

Exit codes:

  0  Success, whatever the state of the run.
  1  Error: no such run, a run ID that several DAGs use, or a server that
     cannot be reached or refuses the token.
`)
}

// Synopsis implements cli.Command.
func (c *RunStatusCommand) Synopsis() string { return "Show a run and its tasks" }

// Run implements cli.Command.
func (c *RunStatusCommand) Run(args []string) int {
	fs := c.flagSet("run status", c.Help, apiFlags|colorFlags)
	asJSON := fs.Bool("json", false, "")
	pos, ok := c.parseExactly(fs, args, 1, "run status takes one run: DAG/RUN_ID or RUN_ID")
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
	if *asJSON {
		c.printJSON(run)
		return exitOK
	}
	c.UI.Output(c.runSummary(run))
	return exitOK
}

// runSummary lays a run out for people.
func (c *RunStatusCommand) runSummary(run *api.Run) string {
	state := run.State
	if c.color(os.Stdout) {
		state = stateColor(state)
	}
	var b strings.Builder
	b.WriteString(kv([][2]string{
		{"DAG", run.DAG},
		{"Run ID", run.ID},
		{"Type", run.Type},
		{"State", state},
		{"Version", run.Version},
		{"Logical Date", formatTime(run.LogicalDate)},
		{"Data Interval", formatTime(run.DataIntervalStart) + " to " + formatTime(run.DataIntervalEnd)},
		{"Created", formatTime(run.CreatedAt)},
		{"Started", formatTime(run.StartedAt)},
		{"Ended", formatTime(run.EndedAt)},
		{"Duration", formatDuration(run.StartedAt, run.EndedAt)},
	}))
	if len(run.Params) > 0 {
		names := make([]string, 0, len(run.Params))
		for name := range run.Params {
			names = append(names, name)
		}
		sort.Strings(names)
		pairs := make([][2]string, 0, len(names))
		for _, name := range names {
			pairs = append(pairs, [2]string{name, string(run.Params[name])})
		}
		b.WriteString("\n\nParams\n" + kv(pairs))
	}
	b.WriteString("\n\nTasks\n")
	if len(run.Tasks) == 0 {
		b.WriteString("No task has started yet: the run waits for a slot under max_active_runs.")
		return b.String()
	}
	rows := make([][]string, 0, len(run.Tasks))
	for _, t := range run.Tasks {
		state, exit, message, duration := taskState(t.State), "-", "", "-"
		if n := len(t.Tries); n > 0 {
			last := t.Tries[n-1]
			if last.ExitCode != nil {
				exit = strconv.Itoa(*last.ExitCode)
			}
			message = last.Message
			duration = formatDuration(last.StartedAt, last.EndedAt)
		}
		if t.State == "up_for_retry" && !t.RetryAt.IsZero() {
			message = strings.TrimSpace(message + " (next try at " + formatTime(t.RetryAt) + ")")
		}
		if why := whyNotRunning(t); why != "" {
			message = why
		}
		rows = append(rows, []string{t.Task, state, strconv.Itoa(len(t.Tries)), duration, exit, orDash(message)})
	}
	b.WriteString(c.table([]string{"TASK", "STATE", "TRIES", "DURATION", "EXIT CODE", "MESSAGE"}, rows))
	return b.String()
}

// taskState names a task instance's state; the scheduler leaves it empty until it decides.
func taskState(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// whyNotRunning says why task t does not run, if it is waiting for a slot or its try for
// Nomad to place it: what its message column shows then.
func whyNotRunning(t api.TaskInstance) string {
	if t.Waiting != "" {
		return "waiting: " + t.Waiting
	}
	if n := len(t.Tries); n > 0 && t.Tries[n-1].State == "queued" && t.Tries[n-1].Pending != "" {
		return "not placed: " + t.Tries[n-1].Pending
	}
	return ""
}
