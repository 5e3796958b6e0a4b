package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	consulapi "github.com/hashicorp/consul/api"
	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/dagflow/dagflow/hcl/spec"
	"github.com/dagflow/dagflow/internal/devstack"
	"github.com/dagflow/dagflow/rules"
	"github.com/dagflow/dagflow/server"
	"github.com/dagflow/dagflow/state"
)

// The failover acceptance tests of the scheduler: real server processes run DAGs on a real
// Nomad, and the leader is killed, frozen or stopped in the middle of a run. Whatever happens
// to it, the run must finish, and every try must have run exactly once: one Nomad job per try
// the record holds, with one allocation, and no job the record does not know.

const (
	// runsPrefix and jobPrefix are the installation the instances of a test form. Every test
	// starts agents of its own, so the tests can share them and still run in parallel.
	runsPrefix = "dagflow-runs/"
	jobPrefix  = "dft-"

	// lockKey is the leader lock of the installation (see server.Server.Start).
	lockKey = runsPrefix + "leader"

	// runTimeout bounds a whole run, failover included. A run below takes some 10 s; the margin
	// is for a loaded, shared machine, as no timing is asserted tightly.
	runTimeout = 2 * time.Minute
)

// chainDAG is a chain of six tasks of a second each, with a fan-out beside it, so a failover
// finds tasks done, running and waiting.
const chainDAG = `
dag "chain" {
  start_date = "2026-01-01"
  defaults {
    command = "/bin/sh"
    args    = ["-c", "sleep 1"]
  }
  task "c1" {}
  task "c2" { depends_on = ["c1"] }
  task "c3" { depends_on = ["c2"] }
  task "c4" { depends_on = ["c3"] }
  task "c5" { depends_on = ["c4"] }
  task "c6" { depends_on = ["c5"] }
  task "fan" {
    for_each   = ["a", "b", "c"]
    depends_on = ["c1"]
  }
  task "join" { depends_on = ["fan", "c6"] }
}
`

// stack is one test's Consul and Nomad agents, the dagflow binary its instances run, and
// clients to look at what they do.
type stack struct {
	t      *testing.T
	bin    string
	consul *devstack.Consul
	nomad  *devstack.Nomad
	client *consulapi.Client
	jobs   *nomadapi.Jobs
	store  *state.Store
}

func newStack(t *testing.T) *stack {
	t.Helper()
	consul := devstack.StartConsulT(t)
	nomad := devstack.StartNomadT(t, consul)
	client := devstack.ConsulClientT(t, consul)
	nc, err := nomadapi.NewClient(&nomadapi.Config{Address: "http://" + nomad.HTTPAddr})
	if err != nil {
		t.Fatalf("nomad client: %v", err)
	}
	store, err := state.New(client, runsPrefix)
	if err != nil {
		t.Fatal(err)
	}
	return &stack{t: t, bin: buildDagflow(t), consul: consul, nomad: nomad, client: client, jobs: nc.Jobs(), store: store}
}

// start starts an instance of the installation, able to run tasks on the stack's Nomad.
func (s *stack) start() *instance {
	s.t.Helper()
	return start(s.t, s.bin, s.consul.HTTPAddr,
		"NOMAD_ADDR=http://"+s.nomad.HTTPAddr, "DAGFLOW_KV_PREFIX="+runsPrefix, "DAGFLOW_JOB_PREFIX="+jobPrefix)
}

// apply applies the DAG files in src, as `dagflow apply` does.
func (s *stack) apply(src string) {
	s.t.Helper()
	cfg, diags := spec.NewParser().LoadSource([]byte(src), "test.hcl")
	if diags.HasErrors() {
		s.t.Fatalf("parse: %v", diags)
	}
	ctx := context.Background()
	base, err := s.store.Catalog(ctx)
	if err != nil {
		s.t.Fatal(err)
	}
	if _, err := s.store.Apply(ctx, base, cfg.DAGs, cfg.Queues, time.Now().UTC()); err != nil {
		s.t.Fatal(err)
	}
}

// trigger asks the leader for a manual run of dag, waits until it is created and returns its ID.
func (s *stack) trigger(dag string) string {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r := &state.Request{Kind: state.RequestTrigger, DAG: dag, RunID: rules.RunID(rules.RunManual, time.Now())}
	if err := s.store.Submit(ctx, r); err != nil {
		s.t.Fatal(err)
	}
	res, err := s.store.Wait(ctx, r.ID)
	if err != nil {
		s.t.Fatalf("trigger %s: %v", dag, err)
	}
	if res.Error != "" {
		s.t.Fatalf("trigger %s: %s", dag, res.Error)
	}
	return r.RunID
}

// waitRun waits until run id of dag satisfies ok, and returns it with how long that took.
func (s *stack) waitRun(dag, id string, timeout time.Duration, what string, ok func(*state.RunRecord) bool) (*state.RunRecord, time.Duration) {
	s.t.Helper()
	start := time.Now()
	var last *state.RunRecord
	for time.Since(start) < timeout {
		if rec, err := s.store.RunRecord(context.Background(), dag, id); err == nil {
			last = rec
			if ok(rec) {
				return rec, time.Since(start)
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.t.Fatalf("run %s of %s not %s after %s; last seen:\n%s", id, dag, what, timeout, describe(last))
	return nil, 0
}

// finished reports whether the run is over.
func finished(r *state.RunRecord) bool { return r.Run.State.Finished() }

// anyTask reports whether a task instance of r is in state st.
func anyTask(r *state.RunRecord, st rules.State) bool {
	for _, ti := range r.Tasks {
		if ti.State == st {
			return true
		}
	}
	return false
}

// midRun reports whether a task of r is running while another is done: the moment to fail
// over at, with work on both sides of it.
func midRun(r *state.RunRecord) bool {
	return anyTask(r, rules.Running) && anyTask(r, rules.Success)
}

func describe(r *state.RunRecord) string {
	if r == nil {
		return "  (nothing)"
	}
	b, _ := json.MarshalIndent(r, "  ", "  ")
	return "  " + string(b)
}

// checkSucceededOnce fails the test unless run rec succeeded with every one of its want task
// instances succeeding at the first try: a failover must not cost a task a retry.
func checkSucceededOnce(t *testing.T, rec *state.RunRecord, want int) {
	t.Helper()
	if rec.Run.State != state.RunSuccess {
		t.Errorf("run %s ended %s, want %s:\n%s", rec.Run.ID, rec.Run.State, state.RunSuccess, describe(rec))
		return
	}
	if len(rec.Tasks) != want {
		t.Errorf("run %s has %d task instances, want %d", rec.Run.ID, len(rec.Tasks), want)
	}
	for _, name := range slices.Sorted(maps.Keys(rec.Tasks)) {
		ti := rec.Tasks[name]
		if ti.State != rules.Success || len(ti.Tries) != 1 {
			t.Errorf("task %s of run %s: state %s after %d tries, want %s after 1:\n%s",
				name, rec.Run.ID, ti.State, len(ti.Tries), rules.Success, describe(rec))
		}
	}
}

// checkExactlyOnce fails the test unless every try stored in recs ran as exactly one Nomad
// job with exactly one allocation, and no job under the installation's prefix is missing from
// them. Finished jobs stay in Nomad until the purge delay (10 minutes by default) has passed,
// so every job submitted during the test is still there to count.
func (s *stack) checkExactlyOnce(recs ...*state.RunRecord) {
	t := s.t
	t.Helper()
	tries := map[string]string{} // job ID: the try it runs
	for _, rec := range recs {
		for _, name := range slices.Sorted(maps.Keys(rec.Tasks)) {
			for _, try := range rec.Tasks[name].Tries {
				what := fmt.Sprintf("run %s task %s try %d", rec.Run.ID, name, try.Try)
				if try.JobID == "" {
					t.Errorf("%s has no job ID", what)
					continue
				}
				if other, ok := tries[try.JobID]; ok {
					t.Errorf("%s and %s are both recorded as job %s", other, what, try.JobID)
				}
				tries[try.JobID] = what
			}
		}
	}
	// Every namespace: a job submitted to another one by mistake must count too.
	stubs, _, err := s.jobs.List(&nomadapi.QueryOptions{Prefix: jobPrefix, Namespace: "*"})
	if err != nil {
		t.Fatalf("list nomad jobs: %v", err)
	}
	jobs := map[string][]*nomadapi.JobListStub{}
	for _, j := range stubs {
		jobs[j.ID] = append(jobs[j.ID], j)
		if _, ok := tries[j.ID]; !ok {
			t.Errorf("nomad job %s (namespace %s, status %s) runs no try stored in the runs", j.ID, j.Namespace, j.Status)
		}
	}
	for _, id := range slices.Sorted(maps.Keys(tries)) {
		if n := len(jobs[id]); n != 1 {
			t.Errorf("%s: %d nomad jobs %s, want 1", tries[id], n, id)
			continue
		}
		j := jobs[id][0]
		allocs, _, err := s.jobs.Allocations(id, true, &nomadapi.QueryOptions{Namespace: j.Namespace})
		if err != nil {
			t.Fatalf("allocations of nomad job %s: %v", id, err)
		}
		if len(allocs) != 1 {
			var desc []string
			for _, a := range allocs {
				desc = append(desc, fmt.Sprintf("%s (%s, desired %s)", a.ID, a.ClientStatus, a.DesiredStatus))
			}
			t.Errorf("%s: nomad job %s has %d allocations, want 1: %s", tries[id], id, len(allocs), strings.Join(desc, ", "))
		}
	}
	t.Logf("exactly once: %d tries stored, %d nomad jobs under %q", len(tries), len(stubs), jobPrefix)
}

// lockHolder returns the session holding the leader lock ("" when none does) and the lock
// key's ModifyIndex.
func (s *stack) lockHolder() (string, uint64) {
	s.t.Helper()
	p, _, err := s.client.KV().Get(lockKey, &consulapi.QueryOptions{RequireConsistent: true})
	if err != nil {
		s.t.Fatalf("read the lock key: %v", err)
	}
	if p == nil {
		return "", 0
	}
	return p.Session, p.ModifyIndex
}

// kvIndexes returns the ModifyIndex of every key of the installation but the lock key.
func (s *stack) kvIndexes() map[string]uint64 {
	s.t.Helper()
	pairs, _, err := s.client.KV().List(runsPrefix, &consulapi.QueryOptions{RequireConsistent: true})
	if err != nil {
		s.t.Fatalf("list keys under %s: %v", runsPrefix, err)
	}
	out := map[string]uint64{}
	for _, p := range pairs {
		if p.Key != lockKey {
			out[p.Key] = p.ModifyIndex
		}
	}
	return out
}

// midRun starts an active and a standby instance, triggers the chain DAG and returns once a
// task of it runs, with the first instance still leading.
func (s *stack) midRun() (active, standby *instance, runID string) {
	s.t.Helper()
	a := s.start()
	waitFor(s.t, "first instance active", func() bool { return a.role() == server.RoleActive })
	b := s.start()
	waitFor(s.t, "second instance standby", func() bool { return b.role() == server.RoleStandby })
	s.apply(chainDAG)
	id := s.trigger("chain")
	s.waitRun("chain", id, runTimeout, "mid-run", midRun)
	if a.role() != server.RoleActive {
		s.t.Fatalf("first instance lost leadership before the failover: %q", a.role())
	}
	return a, b, id
}

// TestKillActiveMidRun kills the leader with SIGKILL while a task runs: the standby takes
// over, adopts the running tries, and the run finishes with every try run once.
func TestKillActiveMidRun(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	a, b, id := s.midRun()

	kill := time.Now()
	if err := a.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	took := waitFor(t, "standby takes over after kill -9", func() bool { return b.role() == server.RoleActive })
	rec, _ := s.waitRun("chain", id, runTimeout, "finished", finished)
	t.Logf("kill -9 mid-run: standby active %s after the kill, run finished %s after it", took, time.Since(kill))

	checkSucceededOnce(t, rec, 10)
	s.checkExactlyOnce(rec)
}

// TestCleanHandoffMidRun stops the leader with SIGINT while a task runs: it hands over, the
// standby adopts the running tries, and the run finishes with every try run once.
func TestCleanHandoffMidRun(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	a, b, id := s.midRun()

	stop := time.Now()
	if err := a.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	took := waitFor(t, "standby takes over after SIGINT", func() bool { return b.role() == server.RoleActive })
	st, err := a.cmd.Process.Wait()
	if err != nil {
		t.Fatalf("interrupted server: %v", err)
	}
	exited := time.Since(stop)
	if code := st.ExitCode(); code != 0 {
		t.Errorf("interrupted server exited %d, want 0", code)
	}
	rec, _ := s.waitRun("chain", id, runTimeout, "finished", finished)
	t.Logf("SIGINT mid-run: standby active %s after the signal, old leader exited after %s, run finished %s after it",
		took, exited, time.Since(stop))

	checkSucceededOnce(t, rec, 10)
	s.checkExactlyOnce(rec)
}

// TestStoppedLeaderWritesNothing freezes the only instance (SIGSTOP) mid-run until Consul has
// invalidated its session, lets Nomad finish a task meanwhile, and thaws it (SIGCONT). The
// thawed instance must write nothing until it holds the lock again: it wakes up believing it
// leads, with news to record, and either notices the loss first (its watches of the lock key
// and the session) or has its writes rejected by the fence. With one instance every write to
// the installation's keys is its own, so the ModifyIndex of each key tells when it was written.
func TestStoppedLeaderWritesNothing(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	a := s.start()
	waitFor(t, "instance active", func() bool { return a.role() == server.RoleActive })

	s.apply(`
dag "sleepy" {
  start_date = "2026-01-01"
  defaults {
    command = "/bin/sh"
    args    = ["-c", "sleep 2"]
  }
  task "a" {}
  task "b" {
    for_each   = ["x", "y"]
    depends_on = ["a"]
  }
  task "c" { depends_on = ["b"] }
}
`)
	id := s.trigger("sleepy")
	s.waitRun("sleepy", id, runTimeout, "running a task", func(r *state.RunRecord) bool { return anyTask(r, rules.Running) })
	old, _ := s.lockHolder()
	if old == "" {
		t.Fatal("the lock is not held while the run goes on")
	}

	stopped := time.Now()
	if err := a.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	// Should the test end early, the cleanup's SIGKILL ends a stopped process all the same.
	gone := waitFor(t, "the frozen leader's session to be invalidated", func() bool {
		holder, _ := s.lockHolder()
		info, _, err := s.client.Session().Info(old, nil)
		return err == nil && info == nil && holder != old
	})
	// Let Nomad finish a try the record still shows unfinished, so the thawed instance has
	// news it would write were it not fenced.
	news := waitFor(t, "a try to end in nomad while the leader is frozen", func() bool { return s.endedUnrecorded(id) })
	before := s.kvIndexes()
	var frozen uint64
	for _, idx := range before {
		frozen = max(frozen, idx)
	}

	thawed := time.Now()
	if err := a.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	var reacquired uint64
	again := waitFor(t, "the instance to lead again", func() bool {
		holder, idx := s.lockHolder()
		if holder != "" && holder != old {
			reacquired = idx
			return true
		}
		return false
	})
	rec, _ := s.waitRun("sleepy", id, runTimeout, "finished", finished)
	t.Logf("SIGSTOP mid-run: session gone %s after the stop, a try ended in nomad %s later; "+
		"after SIGCONT the instance led again in %s, run finished %s after it (stopped %s in all)",
		gone, news, again, time.Since(thawed), thawed.Sub(stopped))
	t.Logf("indexes: last write before the thaw %d, lock re-acquired at %d", frozen, reacquired)

	after := s.kvIndexes()
	for _, key := range slices.Sorted(maps.Keys(after)) {
		if idx := after[key]; idx > frozen && idx <= reacquired {
			t.Errorf("key %s written at index %d, after the session was gone (last write before %d) and before the lock was held again (%d)",
				key, idx, frozen, reacquired)
		}
	}
	log := a.logText(t)
	if !strings.Contains(log, "lost leadership") && !strings.Contains(log, "fenced transaction rejected") {
		t.Errorf("the instance's log does not say it lost the leadership")
	}
	for _, line := range strings.Split(log, "\n") {
		if strings.Contains(line, "leadership") || strings.Contains(line, "fenced") {
			t.Logf("server log: %s", line)
		}
	}

	checkSucceededOnce(t, rec, 4)
	s.checkExactlyOnce(rec)
}

// endedUnrecorded reports whether a try of run id of sleepy that is stored as neither
// succeeded nor failed has an allocation that Nomad reports ended.
func (s *stack) endedUnrecorded(id string) bool {
	s.t.Helper()
	rec, err := s.store.RunRecord(context.Background(), "sleepy", id)
	if err != nil {
		s.t.Fatal(err)
	}
	for _, ti := range rec.Tasks {
		cur := ti.Current()
		if cur == nil || cur.State != rules.Queued && cur.State != rules.Running {
			continue
		}
		allocs, _, err := s.jobs.Allocations(cur.JobID, true, nil)
		if err != nil {
			continue
		}
		for _, a := range allocs {
			if a.ClientStatus == nomadapi.AllocClientStatusComplete || a.ClientStatus == nomadapi.AllocClientStatusFailed {
				return true
			}
		}
	}
	return false
}
