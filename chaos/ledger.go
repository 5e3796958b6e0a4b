package chaos

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Ledger is the record, kept outside dagflow, of every time a task started: each task's first
// command appends one line to a file, with what Nomad and dagflow gave it in its environment:
// DAG, run, task, try and Nomad allocation. It is what says whether a try ran once, whatever
// dagflow's own records say.
//
// One line is one write(2) of a few dozen bytes to a file opened with O_APPEND, which Linux
// keeps whole however many tasks append at once.
type Ledger struct {
	path string
}

// Start is one line of the ledger: a task that started.
type Start struct {
	DAG   string
	Run   string
	Task  string
	Try   int
	Alloc string // NOMAD_ALLOC_ID
}

// Key returns the task instance try the start belongs to.
func (s Start) Key() TryKey { return TryKey{DAG: s.DAG, Run: s.Run, Task: s.Task, Try: s.Try} }

// TryKey names one try of one task instance of one run.
type TryKey struct {
	DAG, Run, Task string
	Try            int
}

func (k TryKey) String() string { return fmt.Sprintf("%s/%s %s try %d", k.DAG, k.Run, k.Task, k.Try) }

// NewLedger creates an empty ledger file in dir.
func NewLedger(dir string) (*Ledger, error) {
	path := filepath.Join(dir, "ledger.tsv")
	if err := os.WriteFile(path, nil, 0o666); err != nil {
		return nil, fmt.Errorf("create ledger: %w", err)
	}
	// Tasks may run as another user than this process.
	if err := os.Chmod(path, 0o666); err != nil {
		return nil, fmt.Errorf("create ledger: %w", err)
	}
	return &Ledger{path: path}, nil
}

// Path returns the ledger file.
func (l *Ledger) Path() string { return l.path }

// Command returns the shell command a task runs first to record its start.
func (l *Ledger) Command() string {
	return `printf '%s\t%s\t%s\t%s\t%s\n' "$DAGFLOW_DAG" "$DAGFLOW_RUN_ID" "$DAGFLOW_TASK" "$DAGFLOW_TRY" "$NOMAD_ALLOC_ID" >> '` + l.path + `'`
}

// Starts reads every start recorded so far. A line that does not parse is an error: the ledger
// is only trusted whole.
func (l *Ledger) Starts() ([]Start, error) {
	f, err := os.Open(l.path)
	if err != nil {
		return nil, fmt.Errorf("read ledger: %w", err)
	}
	defer f.Close()
	var out []Start
	var bad []string
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		fields := strings.Split(sc.Text(), "\t")
		if len(fields) != 5 {
			bad = append(bad, fmt.Sprintf("line %d: %q", n, sc.Text()))
			continue
		}
		try, err := strconv.Atoi(fields[3])
		if err != nil || fields[1] == "" || fields[2] == "" || fields[4] == "" {
			bad = append(bad, fmt.Sprintf("line %d: %q", n, sc.Text()))
			continue
		}
		out = append(out, Start{DAG: fields[0], Run: fields[1], Task: fields[2], Try: try, Alloc: fields[4]})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read ledger: %w", err)
	}
	if len(bad) > 0 {
		return out, fmt.Errorf("read ledger %s: %d malformed lines: %s", l.path, len(bad), strings.Join(bad, "; "))
	}
	return out, nil
}

// DAG describes the DAG a scenario runs: Lanes chains of Depth tasks (t1[k] -> t2[k] -> ...),
// each task recording its start in the ledger and then sleeping for Sleep. So a run has
// Lanes × Depth task instances, Lanes of them in flight at a time, and a fault at any moment
// finds tasks done, running and waiting.
type DAG struct {
	Name  string
	Lanes int
	Depth int
	Sleep time.Duration

	// Mapped makes it another DAG: a task that publishes Lanes items, and a task mapped over
	// them (Depth is 1). See mappedSource.
	Mapped bool

	// Callbacks, when set, makes it another DAG: tasks that fail their first try, with
	// callbacks calling this URL. See callbacksSource.
	Callbacks string
}

// Tasks returns the number of task instances of a run.
func (d DAG) Tasks() int { return d.Lanes * d.Depth }

// Source returns the DAG's HCL, recording starts in l.
//
// Tasks have retries: a try can legitimately fail in a fault (an allocation Nomad reports lost,
// a try dagflow finds vanished), and exactly once is about tries, not task instances. Every
// try still counts, and a run must succeed.
func (d DAG) Source(l *Ledger) string {
	if d.Mapped {
		return d.mappedSource(l)
	}
	if d.Callbacks != "" {
		return d.callbacksSource(l)
	}
	keys := make([]string, d.Lanes)
	for i := range keys {
		keys[i] = fmt.Sprintf("%q", fmt.Sprintf("l%03d", i))
	}
	script := l.Command() + "; sleep " + strconv.FormatFloat(d.Sleep.Seconds(), 'f', -1, 64)
	var b strings.Builder
	fmt.Fprintf(&b, `dag %q {
  description      = "chaos: %d lanes of %d tasks"
  max_active_runs  = 16
  max_active_tasks = 1024

  defaults {
    command     = "/bin/sh"
    args        = [%q, %q]
    retries     = 3
    retry_delay = "1s"

    resources {
      cpu    = 20
      memory = 16
    }
  }
`, d.Name, d.Lanes, d.Depth, "-c", script)
	for i := 1; i <= d.Depth; i++ {
		fmt.Fprintf(&b, "\n  task \"t%d\" {\n    for_each = [%s]\n", i, strings.Join(keys, ", "))
		if i > 1 {
			fmt.Fprintf(&b, "    depends_on = [\"t%d[${each.key}]\"]\n", i-1)
		}
		b.WriteString("  }\n")
	}
	b.WriteString("}\n")
	return b.String()
}

var errNoServer = errors.New("no server answers")
