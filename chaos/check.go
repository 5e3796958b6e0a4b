package chaos

import (
	"fmt"
	"maps"
	"slices"

	"github.com/dagflow/dagflow/api"
)

// Counts is what a check found, over one or more repetitions of a scenario.
type Counts struct {
	Runs          int `json:"runs"`           // runs triggered
	RunsFinished  int `json:"runs_finished"`  // of them, finished (success or failed)
	RunsSucceeded int `json:"runs_succeeded"` // of them, succeeded
	TaskInstances int `json:"task_instances"` // task instances of the runs read
	Tries         int `json:"tries"`          // tries dagflow recorded
	LedgerStarts  int `json:"ledger_starts"`  // starts the ledger recorded for the runs

	// Duplicates counts starts beyond the first of one try, and starts of tries dagflow does not
	// know: executions that should not have happened.
	Duplicates int `json:"duplicates"`

	// Losses counts runs triggered but missing or never finished, and tries dagflow recorded as
	// having run (an exit code, or success) that the ledger never saw start.
	Losses int `json:"losses"`
}

func (c *Counts) add(o Counts) {
	c.Runs += o.Runs
	c.RunsFinished += o.RunsFinished
	c.RunsSucceeded += o.RunsSucceeded
	c.TaskInstances += o.TaskInstances
	c.Tries += o.Tries
	c.LedgerStarts += o.LedgerStarts
	c.Duplicates += o.Duplicates
	c.Losses += o.Losses
}

// Check compares the runs dagflow recorded with the ledger's starts. ids are the runs that were
// triggered; runs maps each to what dagflow answered for it (missing: never created, or not
// readable). Every problem is described in the list returned, each one sentence.
//
// A try that ran must have exactly one start in the ledger, from the allocation dagflow
// recorded for it. A try dagflow ended without ever seeing it run (its job vanished, say) may
// have one start or none, never two. Every start must belong to a try dagflow recorded.
func Check(dag string, ids []string, runs map[string]*api.Run, starts []Start) (Counts, []string) {
	var c Counts
	var problems []string
	byKey := map[TryKey][]Start{}
	triggered := map[string]bool{}
	for _, id := range ids {
		triggered[id] = true
	}
	for _, s := range starts {
		if s.DAG == dag && triggered[s.Run] {
			byKey[s.Key()] = append(byKey[s.Key()], s)
			c.LedgerStarts++
		}
	}
	known := map[TryKey]bool{}
	c.Runs = len(ids)
	for _, id := range ids {
		r := runs[id]
		if r == nil {
			c.Losses++
			problems = append(problems, fmt.Sprintf("run %s was triggered but never created (or cannot be read)", id))
			continue
		}
		switch r.State {
		case "success":
			c.RunsFinished++
			c.RunsSucceeded++
		case "failed":
			c.RunsFinished++
			problems = append(problems, fmt.Sprintf("run %s failed: %s", id, failedTasks(r)))
		default:
			c.Losses++
			problems = append(problems, fmt.Sprintf("run %s never finished: state %q, tasks %v", id, r.State, r.TaskStates))
		}
		c.TaskInstances += len(r.Tasks)
		for _, ti := range r.Tasks {
			for _, try := range ti.Tries {
				c.Tries++
				k := TryKey{DAG: dag, Run: id, Task: ti.Task, Try: try.Try}
				known[k] = true
				got := byKey[k]
				ran := try.State == "success" || try.ExitCode != nil
				switch {
				case len(got) > 1:
					c.Duplicates += len(got) - 1
					problems = append(problems, fmt.Sprintf("%s started %d times: allocations %v", k, len(got), allocs(got)))
				case len(got) == 0 && ran:
					c.Losses++
					problems = append(problems, fmt.Sprintf("%s is recorded %s (exit code %v) but never started", k, try.State, exitCode(try)))
				}
				if len(got) > 0 && try.AllocID != "" && got[0].Alloc != try.AllocID {
					problems = append(problems, fmt.Sprintf("%s ran as allocation %s, but dagflow recorded allocation %s", k, got[0].Alloc, try.AllocID))
				}
			}
		}
	}
	for _, k := range slices.SortedFunc(maps.Keys(byKey), func(a, b TryKey) int { return compareKeys(a, b) }) {
		if !known[k] && runs[k.Run] != nil {
			c.Duplicates += len(byKey[k])
			problems = append(problems, fmt.Sprintf("%s started (allocations %v) but dagflow has no such try", k, allocs(byKey[k])))
		}
	}
	return c, problems
}

func compareKeys(a, b TryKey) int {
	switch {
	case a.Run != b.Run:
		return cmpString(a.Run, b.Run)
	case a.Task != b.Task:
		return cmpString(a.Task, b.Task)
	}
	return a.Try - b.Try
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func allocs(ss []Start) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = s.Alloc
	}
	return out
}

func exitCode(t api.Try) any {
	if t.ExitCode == nil {
		return "none"
	}
	return *t.ExitCode
}

// failedTasks describes the task instances of r that did not succeed.
func failedTasks(r *api.Run) string {
	var out []string
	for _, ti := range r.Tasks {
		if ti.State == "success" {
			continue
		}
		msg := ""
		if n := len(ti.Tries); n > 0 {
			msg = ": " + ti.Tries[n-1].Message
		}
		out = append(out, fmt.Sprintf("%s %s after %d tries%s", ti.Task, ti.State, len(ti.Tries), msg))
	}
	if len(out) > 5 {
		out = append(out[:5], fmt.Sprintf("and %d more", len(out)-5))
	}
	return fmt.Sprint(out)
}
