package chaos

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/dagflow/dagflow/api"
	"github.com/dagflow/dagflow/internal/serverproc"
)

// Params sizes a chaos run.
type Params struct {
	Mode        string // "short" or "long", for the report
	Repetitions int    // repetitions of each scenario
	Lanes       int    // the DAG has 4 × Lanes tasks
	Sleep       time.Duration
	Servers     int // dagflow server instances per scenario

	// FaultScale multiplies each scenario's faults per repetition.
	FaultScale int

	// Stuck is how long the runs may make no progress at all (no try ending) before the
	// scenario counts them as stuck and stops waiting. It bounds a hang; it is not a measure of
	// speed: a healthy cluster ends tries every few seconds.
	Stuck time.Duration
}

// Short is what `go test ./...` runs: one repetition of each scenario on a 40-task DAG.
var Short = Params{Mode: "short", Repetitions: 1, Lanes: 10, Sleep: time.Second, Servers: 3, FaultScale: 1, Stuck: 3 * time.Minute}

// Long is what `make chaos` runs: three repetitions of each scenario on a 100-task DAG, with
// three times the faults.
var Long = Params{Mode: "long", Repetitions: 3, Lanes: 25, Sleep: 2 * time.Second, Servers: 3, FaultScale: 3, Stuck: 5 * time.Minute}

// Scenario is one kind of fault, injected repeatedly while runs of the DAG go on.
type Scenario struct {
	Name   string // short, for test names and prefixes: "kill"
	Title  string // what it does, for the report
	Faults int    // faults per repetition, times Params.FaultScale

	// Config returns HCL added to every server's configuration file; nil: none.
	Config func(ctx context.Context, s *Stack) (string, error)

	// DAG returns the DAG the scenario runs; nil: Lanes chains of four tasks (see DAG).
	DAG func(p Params) DAG

	// Inject injects one fault into c and returns once the cluster leads again (or the fault
	// is over), saying how long leadership took to come back (zero: not measured) and anything
	// worth noting. An error means the fault could not be injected or the cluster did not
	// recover; the scenario fails. It may trigger runs of its own with c.Trigger: they are
	// checked with the others.
	Inject func(ctx context.Context, c *Cluster, n int) (recovery time.Duration, note string, err error)

	// Cluster runs the scenario on the multi-server cluster (Stack.AgentsStack) instead of
	// the single Consul and Nomad agent.
	Cluster bool

	// Prepare, when set, runs before the installation starts, on the stack it runs on: it
	// returns what adjusts the options of the installation's i-th server (from 0) before it
	// starts, and what undoes the preparation once the servers are gone.
	Prepare func(ctx context.Context, s *Stack) (adjust func(i int, o *serverproc.Options), undo func(), err error)

	// Verify, when set, checks what else the scenario promises once every run is finished,
	// given the runs as dagflow answered them, and returns notes and problems.
	Verify func(ctx context.Context, c *Cluster, runs map[string]*api.Run, p Params) (notes, problems []string)
}

// recoverTimeout bounds the wait for a leader after a fault: failover takes seconds; a
// cluster without a leader after this long is stuck.
const recoverTimeout = 2 * time.Minute

// Scenarios returns every scenario, in the order they run.
func Scenarios() []Scenario {
	return append([]Scenario{
		{
			Name:   "kill",
			Title:  "kill -9 the active server, restart it (every other time at once, on the same address)",
			Faults: 3,
			Inject: killActive,
		},
		{
			Name:   "sigstop",
			Title:  "SIGSTOP the active server until another leads and its tasks move on, then SIGCONT it",
			Faults: 2,
			Inject: pauseActive,
		},
		{
			Name: "sigstop-submit",
			Title: "SIGSTOP the active server while it registers a fan-out of Nomad jobs, until the new " +
				"leader has run those tries and purged their jobs, then SIGCONT it",
			Faults: 1,
			// Jobs are purged a second after their try ended, so that the freeze outlasts it
			// (by default it would have to last ten minutes).
			Config: func(context.Context, *Stack) (string, error) {
				return "retention {\n  purge_after = \"1s\"\n}\n", nil
			},
			DAG: func(p Params) DAG {
				// More tries at once than the engine registers at once (32), so some wait.
				return DAG{Name: "chaos", Lanes: 4 * p.Lanes, Depth: 1, Sleep: p.Sleep}
			},
			Inject: pauseWhileSubmitting,
		},
		{
			Name: "kill-map",
			Title: "kill -9 the active server while it expands a task mapped over 500 upstream outputs (100 in the " +
				"short version) and registers its instances, restart it once another leads",
			Faults: 1,
			DAG: func(p Params) DAG {
				return DAG{Name: "chaos", Lanes: mappedInstances(p), Depth: 1, Sleep: p.Sleep, Mapped: true}
			},
			Inject: killWhileExpanding,
			Verify: verifyMapping,
		},
		callbacksScenario(),
		{
			Name:   "consul-restart",
			Title:  "restart the Consul agent (a durable server: its state survives)",
			Faults: 2,
			Inject: func(ctx context.Context, c *Cluster, _ int) (time.Duration, string, error) {
				return restartAgent(ctx, c, "consul", c.Stack.Consul.Restart)
			},
		},
		{
			Name:   "postgres-restart",
			Title:  "stop PostgreSQL (long-term history) until tries end without it, then start it again",
			Faults: 2,
			Config: func(ctx context.Context, s *Stack) (string, error) {
				url, err := s.StartPostgres(ctx, historyDB)
				if err != nil {
					return "", err
				}
				return fmt.Sprintf("history {\n  url = %q\n}\n", url), nil
			},
			Inject: restartPostgres,
			Verify: verifyHistory,
		},
		{
			Name:  "nomad-restart",
			Title: "restart the Nomad agent (a durable server and client: jobs and running tasks survive)",
			// One a repetition: a restarted Nomad 1.11 agent often refuses its own client's
			// registration for its first moments and the client retries 15-30 s later, which
			// holds up every allocation update meanwhile.
			Faults: 1,
			Inject: func(ctx context.Context, c *Cluster, _ int) (time.Duration, string, error) {
				return restartAgent(ctx, c, "nomad", c.Stack.Nomad.Restart)
			},
		},
	}, clusterScenarios()...)
}

// waitActive waits up to recoverTimeout for exactly one of servers to lead.
func waitActive(ctx context.Context, servers ...*serverproc.Server) (*serverproc.Server, error) {
	ctx, cancel := context.WithTimeout(ctx, recoverTimeout)
	defer cancel()
	return serverproc.WaitActive(ctx, servers...)
}

// killActive kills the active server with SIGKILL and brings it back: on odd faults after
// another instance took over, as an operator would; on even ones at once, on the same address,
// as a supervisor restarting a crashed process does.
func killActive(ctx context.Context, c *Cluster, n int) (time.Duration, string, error) {
	a, err := c.WaitActive(ctx)
	if err != nil {
		return 0, "", err
	}
	at := time.Now()
	if err := a.Kill(); err != nil {
		return 0, "", err
	}
	if n%2 == 0 {
		if err := a.Restart(ctx); err != nil {
			return 0, "", err
		}
		if _, err := waitActive(ctx, c.Live()...); err != nil {
			return 0, "", fmt.Errorf("after kill -9 and an immediate restart of %s: %w", a.URL(), err)
		}
		return time.Since(at), "", nil
	}
	if _, err := waitActive(ctx, c.Others(a)...); err != nil {
		return 0, "", fmt.Errorf("after kill -9 of %s: %w", a.URL(), err)
	}
	took := time.Since(at)
	return took, "", a.Restart(ctx)
}

// pauseAfterTakeover is how long a frozen leader stays frozen after another took over: long
// enough for tasks to end and the new leader to record them, so that the old one wakes up
// with news it would write were it not fenced.
const pauseAfterTakeover = 3 * time.Second

// pauseActive freezes the active server with SIGSTOP until another leads, and some more, then
// thaws it with SIGCONT and waits until it stands by. Its log since the thaw must show it
// found its leadership gone; what it says is noted.
func pauseActive(ctx context.Context, c *Cluster, _ int) (time.Duration, string, error) {
	a, err := c.WaitActive(ctx)
	if err != nil {
		return 0, "", err
	}
	at := time.Now()
	if err := a.Pause(); err != nil {
		return 0, "", err
	}
	c.setPaused(a, true)
	next, err := waitActive(ctx, c.Others(a)...)
	if err != nil {
		a.Resume()
		c.setPaused(a, false)
		return 0, "", fmt.Errorf("after SIGSTOP of %s: %w", a.URL(), err)
	}
	took := time.Since(at)
	time.Sleep(pauseAfterTakeover)
	offset := fileSize(a.LogPath())
	if err := a.Resume(); err != nil {
		return took, "", err
	}
	c.setPaused(a, false)
	if err := waitRole(ctx, a, "standby"); err != nil {
		return took, "", fmt.Errorf("after SIGCONT of %s (%s leads): %w", a.URL(), next.URL(), err)
	}
	log := readFrom(a.LogPath(), offset)
	var saw []string
	for _, what := range []string{"fenced transaction rejected", "lost leadership", "leadership lost"} {
		if strings.Contains(log, what) {
			saw = append(saw, fmt.Sprintf("%q", what))
		}
	}
	if len(saw) == 0 {
		return took, "", fmt.Errorf("thawed leader %s stands by, but its log does not say it lost the leadership", a.URL())
	}
	return took, fmt.Sprintf("thawed leader %s stood by; its log says %s", a.URL(), strings.Join(saw, ", ")), nil
}

// purgeWait is how long pauseWhileSubmitting keeps the old leader frozen after the new one
// finished the run: the jobs are purged a second after their tries ended (see the scenario's
// Config), at the engine's next tick.
const purgeWait = 4 * time.Second

// pauseWhileSubmitting triggers a run of the fan-out DAG and freezes the active server as soon
// as the run's tries are recorded, while it registers their jobs; keeps it frozen until
// another instance has run the whole run and purged its jobs; then thaws it and waits until
// it stands by. A registration the frozen leader had not sent yet goes out when it thaws, for a
// job that no longer exists.
func pauseWhileSubmitting(ctx context.Context, c *Cluster, _ int) (time.Duration, string, error) {
	a, err := c.WaitActive(ctx)
	if err != nil {
		return 0, "", err
	}
	id, err := c.Trigger(ctx)
	if err != nil {
		return 0, "", err
	}
	if _, err := c.WaitRun(ctx, id, recoverTimeout, "no try queued", func(r *api.Run) bool { return r.TaskStates["queued"] > 0 }); err != nil {
		return 0, "", err
	}
	others := c.Others(a)
	offsets := make([]int64, len(others))
	for i, o := range others {
		offsets[i] = fileSize(o.LogPath())
	}
	at := time.Now()
	if err := a.Pause(); err != nil {
		return 0, "", err
	}
	c.setPaused(a, true)
	thaw := func() {
		a.Resume()
		c.setPaused(a, false)
	}
	if _, err := waitActive(ctx, c.Others(a)...); err != nil {
		thaw()
		return 0, "", fmt.Errorf("after SIGSTOP of %s: %w", a.URL(), err)
	}
	took := time.Since(at)
	if !waitFinished(ctx, c, []string{id}, recoverTimeout) {
		thaw()
		return took, "", fmt.Errorf("run %s did not finish while %s was frozen", id, a.URL())
	}
	time.Sleep(purgeWait)
	offset := fileSize(a.LogPath())
	thaw()
	if err := waitRole(ctx, a, "standby"); err != nil {
		return took, "", fmt.Errorf("after SIGCONT of %s: %w", a.URL(), err)
	}
	log := readFrom(a.LogPath(), offset)
	answered := strings.Count(log, "nomadexec: registered job")
	held := strings.Count(log, "not registering on that")
	late := strings.Count(log, "deadline passed before it was written")
	pending := 0 // tries the frozen leader had recorded but not registered
	for i, o := range others {
		pending += strings.Count(readFrom(o.LogPath(), offsets[i]), "submitting a try recorded but not registered")
	}
	return took, fmt.Sprintf("frozen with %d tries recorded but not registered (its successor registered them); "+
		"after the thaw %d registrations it had sent were answered, %d were held back by its age check, "+
		"%d were past their deadline and not written",
		pending, answered, held, late), nil
}

// restartAgent restarts an agent with restart and waits for a leader.
func restartAgent(ctx context.Context, c *Cluster, what string, restart func(context.Context) error) (time.Duration, string, error) {
	at := time.Now()
	if err := restart(ctx); err != nil {
		return 0, "", fmt.Errorf("restart %s: %w", what, err)
	}
	if _, err := waitActive(ctx, c.Live()...); err != nil {
		return 0, "", fmt.Errorf("after restarting %s: %w", what, err)
	}
	return time.Since(at), "", nil
}

// waitRole waits up to recoverTimeout until s reports role.
func waitRole(ctx context.Context, s *serverproc.Server, role string) error {
	ctx, cancel := context.WithTimeout(ctx, recoverTimeout)
	defer cancel()
	for {
		got, err := s.Role(ctx)
		if got == role {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s is %q (%v), not %s", s.URL(), got, err, role)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func fileSize(path string) int64 {
	st, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return st.Size()
}

func readFrom(path string, offset int64) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return ""
	}
	b, _ := io.ReadAll(f)
	return string(b)
}

// Logf receives the progress of a chaos run.
type Logf func(format string, args ...any)

// Run runs scenario sc on stack as p says and returns what it found.
func Run(ctx context.Context, stack *Stack, sc Scenario, p Params, logf Logf) *Result {
	start := time.Now()
	res := &Result{Scenario: sc.Name, Title: sc.Title, Repetitions: p.Repetitions}
	defer func() {
		res.Duration = Duration(time.Since(start))
		res.Pass = len(res.Problems) == 0
	}()
	if sc.Cluster {
		var err error
		if stack, err = stack.AgentsStack(ctx); err != nil {
			res.Problems = append(res.Problems, fmt.Sprintf("start the multi-server cluster: %v", err))
			return res
		}
	}
	dag := DAG{Name: "chaos", Lanes: p.Lanes, Depth: 4, Sleep: p.Sleep}
	if sc.DAG != nil {
		dag = sc.DAG(p)
	}
	config := ""
	if sc.Config != nil {
		var err error
		if config, err = sc.Config(ctx, stack); err != nil {
			res.Problems = append(res.Problems, fmt.Sprintf("configure the installation: %v", err))
			return res
		}
	}
	var adjust func(int, *serverproc.Options)
	if sc.Prepare != nil {
		var undo func()
		var err error
		if adjust, undo, err = sc.Prepare(ctx, stack); err != nil {
			res.Problems = append(res.Problems, fmt.Sprintf("prepare the installation: %v", err))
			return res
		}
		defer undo() // after c.Close below: the servers are gone first
	}
	c, err := stack.NewCluster(ctx, sc.Name, p.Servers, config, dag, adjust)
	if err != nil {
		res.Problems = append(res.Problems, fmt.Sprintf("start the installation: %v", err))
		return res
	}
	defer c.Close()

	for rep := 1; rep <= p.Repetitions; rep++ {
		r := repeat(ctx, c, sc, sc.Faults*p.FaultScale, p, logf, rep)
		res.Faults += r.faults
		res.Recovery = max(res.Recovery, Duration(r.recovery))
		res.Problems = append(res.Problems, r.problems...)
		res.Notes = append(res.Notes, r.notes...)
	}

	// Whatever Nomad still runs (a late registration, say) writes to the ledger too.
	if err := c.settle(ctx, p.Stuck); err != nil {
		res.Problems = append(res.Problems, err.Error())
	}
	ids := c.Triggered()
	if !waitFinished(ctx, c, ids, p.Stuck) {
		res.Problems = append(res.Problems, fmt.Sprintf("runs not finished, and no progress for %s", p.Stuck))
	}
	runs := map[string]*api.Run{}
	for _, id := range ids {
		var r *api.Run
		for attempt := 0; attempt < 10; attempt++ {
			if r, err = c.Run(ctx, id); err == nil || api.IsNotFound(err) {
				break
			}
			time.Sleep(time.Second)
		}
		if r != nil {
			runs[id] = r
		}
	}
	starts, err := c.Ledger.Starts()
	if err != nil {
		res.Problems = append(res.Problems, err.Error())
	}
	counts, problems := Check(dag.Name, ids, runs, starts)
	res.Counts = counts
	res.Problems = append(res.Problems, problems...)
	if sc.Verify != nil {
		notes, problems := sc.Verify(ctx, c, runs, p)
		res.Notes = append(res.Notes, notes...)
		res.Problems = append(res.Problems, problems...)
	}
	if res.RunsSucceeded != res.Runs && len(problems) == 0 {
		res.Problems = append(res.Problems, fmt.Sprintf("%d of %d runs succeeded", res.RunsSucceeded, res.Runs))
	}
	logf("%s: %d faults, %d runs, %d task instances, %d tries, %d ledger starts, %d duplicates, %d losses, %d problems",
		sc.Name, res.Faults, res.Runs, res.TaskInstances, res.Tries, res.LedgerStarts, res.Duplicates, res.Losses, len(res.Problems))
	return res
}

// repetition is what one repetition of a scenario did.
type repetition struct {
	ids      []string
	faults   int
	recovery time.Duration
	problems []string
	notes    []string
}

// repeat runs one repetition: it triggers a run, waits until the run is under way, then
// injects faults one after the other, each once the runs made progress since the last, and
// triggers a second run right after the first fault. When the runs finish before every fault
// is in, it triggers another. It returns once every run it triggered is finished, or the runs
// made no progress for p.Stuck.
func repeat(ctx context.Context, c *Cluster, sc Scenario, faults int, p Params, logf Logf, rep int) *repetition {
	r := &repetition{}
	fail := func(format string, args ...any) {
		r.problems = append(r.problems, fmt.Sprintf("repetition %d: ", rep)+fmt.Sprintf(format, args...))
	}
	triggerID := func() (string, error) {
		tctx, cancel := context.WithTimeout(ctx, recoverTimeout)
		defer cancel()
		id, err := c.Trigger(tctx)
		if err == nil {
			logf("%s %d: triggered run %s", sc.Name, rep, id)
		}
		return id, err
	}
	trigger := func() bool {
		id, err := triggerID()
		if err != nil {
			fail("%v", err)
			return false
		}
		r.ids = append(r.ids, id)
		return true
	}
	if !trigger() {
		return r
	}
	// The second run is triggered in the background right after the first fault; its ID joins
	// the others when the trigger returns.
	type triggered struct {
		id  string
		err error
	}
	second := make(chan triggered, 1)
	pending := false
	collect := func(wait bool) {
		if !pending {
			return
		}
		var t triggered
		if wait {
			t = <-second
		} else {
			select {
			case t = <-second:
			default:
				return
			}
		}
		pending = false
		if t.err != nil {
			fail("%v", t.err)
			return
		}
		r.ids = append(r.ids, t.id)
	}
	// Under way: a quarter of the first layer's tries ended.
	step := max(1, p.Lanes/4)
	ended, ok := waitProgress(ctx, c, r.ids, 0, step, p.Stuck)
	if !ok {
		fail("the first run made no progress for %s before any fault", p.Stuck)
		return r
	}
	for n := 1; n <= faults; n++ {
		collect(false)
		if _, finished := c.Progress(ctx, r.ids); finished && !pending {
			// Faults are for runs in flight.
			if !trigger() {
				return r
			}
			if ended, ok = waitProgress(ctx, c, r.ids, ended, step, p.Stuck); !ok {
				fail("a new run made no progress for %s", p.Stuck)
				return r
			}
		}
		took, note, err := sc.Inject(ctx, c, n)
		r.faults++
		if err != nil {
			fail("fault %d: %v", n, err)
			return r
		}
		r.recovery = max(r.recovery, took)
		if note != "" {
			r.notes = append(r.notes, fmt.Sprintf("repetition %d, fault %d: %s", rep, n, note))
		}
		logf("%s %d: fault %d done, leader back after %s %s", sc.Name, rep, n, took.Round(time.Millisecond), note)
		if n == 1 {
			// While the cluster recovers: a trigger that may have to wait for the leader.
			pending = true
			go func() {
				id, err := triggerID()
				second <- triggered{id, err}
			}()
		}
		if ended, ok = waitProgress(ctx, c, r.ids, ended, step, p.Stuck); !ok {
			fail("no progress for %s after fault %d", p.Stuck, n)
			return r
		}
	}
	collect(true)
	if !waitFinished(ctx, c, r.ids, p.Stuck) {
		fail("runs not finished, and no progress for %s", p.Stuck)
	}
	return r
}

// waitProgress waits until the runs ids have step more tries ended than since, or are all
// finished, and returns the count of tries ended. It gives up, returning false, when the count
// does not grow for stuck.
func waitProgress(ctx context.Context, c *Cluster, ids []string, since, step int, stuck time.Duration) (int, bool) {
	last, lastAt := -1, time.Now()
	for {
		ended, finished := c.Progress(ctx, ids)
		if finished || ended >= since+step {
			return ended, true
		}
		if ended > last {
			last, lastAt = ended, time.Now()
		}
		if time.Since(lastAt) > stuck || ctx.Err() != nil {
			return ended, false
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// waitFinished waits until every run of ids is finished; false when they made no progress for
// stuck.
func waitFinished(ctx context.Context, c *Cluster, ids []string, stuck time.Duration) bool {
	last, lastAt := -1, time.Now()
	for {
		ended, finished := c.Progress(ctx, ids)
		if finished {
			return true
		}
		if ended > last {
			last, lastAt = ended, time.Now()
		}
		if time.Since(lastAt) > stuck || ctx.Err() != nil {
			return false
		}
		time.Sleep(500 * time.Millisecond)
	}
}
