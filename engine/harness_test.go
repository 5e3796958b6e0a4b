package engine_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	consulapi "github.com/hashicorp/consul/api"
	"github.com/hashicorp/go-hclog"
	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/dagflow/dagflow/consullock"
	"github.com/dagflow/dagflow/engine"
	"github.com/dagflow/dagflow/hcl/spec"
	"github.com/dagflow/dagflow/internal/devstack"
	"github.com/dagflow/dagflow/nomadexec"
	"github.com/dagflow/dagflow/rules"
	"github.com/dagflow/dagflow/state"
)

// One Consul and one Nomad serve every test of the package; each test has its own KV and job
// prefixes, so tests run in parallel without seeing each other.
var (
	agentsOnce sync.Once
	agentsErr  error
	consulC    *consulapi.Client
	nomadC     *nomadapi.Client
	stopAgents []func() error
	testSeq    atomic.Int64
)

func TestMain(m *testing.M) {
	code := m.Run()
	for i := len(stopAgents) - 1; i >= 0; i-- {
		_ = stopAgents[i]()
	}
	os.Exit(code)
}

func agents(t *testing.T) (*consulapi.Client, *nomadapi.Client) {
	t.Helper()
	agentsOnce.Do(func() {
		c, err := devstack.StartConsul(context.Background(), devstack.ConsulOptions{})
		if err != nil {
			agentsErr = err
			return
		}
		stopAgents = append(stopAgents, c.Stop)
		n, err := devstack.StartNomad(context.Background(), devstack.NomadOptions{ConsulAddr: c.HTTPAddr})
		if err != nil {
			agentsErr = err
			return
		}
		stopAgents = append(stopAgents, n.Stop)
		consulC, _ = consulapi.NewClient(&consulapi.Config{Address: c.HTTPAddr})
		nomadC, _ = nomadapi.NewClient(&nomadapi.Config{Address: "http://" + n.HTTPAddr})
	})
	if agentsErr != nil {
		t.Fatalf("start agents: %v", agentsErr)
	}
	return consulC, nomadC
}

// stack is one installation (KV and job prefix) with an engine leading it.
type stack struct {
	t      *testing.T
	store  *state.Store
	exec   *nomadexec.Executor
	nomad  *nomadapi.Client
	cancel context.CancelFunc
	done   chan error
	ld     *consullock.Leadership
	wrap   func(engine.Fence) engine.Fence // nil: the engine writes through the leadership itself
}

// newStack starts an engine on its own prefixes, with cfg's retention settings.
func newStack(t *testing.T, cfg engine.Config) *stack {
	t.Helper()
	_, nomad := agents(t)
	return newStackWith(t, cfg, nomad, nil)
}

// newStackWith starts an engine on its own prefixes that runs its tries with the Nomad client
// nomad, and, unless wrap is nil, fences its writes through the fence wrap returns for the
// leadership.
func newStackWith(t *testing.T, cfg engine.Config, nomad *nomadapi.Client, wrap func(engine.Fence) engine.Fence) *stack {
	t.Helper()
	consul, _ := agents(t)
	n := testSeq.Add(1)
	store, err := state.New(consul, fmt.Sprintf("enginetest/%d/", n))
	if err != nil {
		t.Fatal(err)
	}
	exec, err := nomadexec.New(&nomadapi.Config{Address: nomad.Address()}, fmt.Sprintf("et%d-", n), nil)
	if err != nil {
		t.Fatal(err)
	}
	s := &stack{t: t, store: store, exec: exec, nomad: nomad, wrap: wrap}
	s.start(cfg)
	return s
}

// start starts an engine on the stack, once it holds the stack's leadership.
func (s *stack) start(cfg engine.Config) {
	t := s.t
	consul, _ := agents(t)
	lock, err := consullock.New(consul, consullock.Config{Key: s.store.Prefix() + "leader", LockDelay: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ld, err := lock.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	cfg.Store, cfg.Executor = s.store, s.exec
	if cfg.Logger == nil {
		cfg.Logger = hclog.New(&hclog.LoggerOptions{Name: t.Name(), Level: hclog.Info, Output: testWriter{t}})
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel, s.done, s.ld = cancel, make(chan error, 1), ld
	var fence engine.Fence = ld
	if s.wrap != nil {
		fence = s.wrap(ld)
	}
	go func() { s.done <- engine.Run(ctx, cfg, fence) }()
	t.Cleanup(func() {
		s.stop()
		_ = ld.Release(context.Background())
	})
}

// stop stops the engine, fails the test if it had stopped with an error, and gives the
// leadership up, so start can start another engine.
func (s *stack) stop() {
	if s.cancel == nil {
		return
	}
	s.cancel()
	if err := <-s.done; err != nil {
		s.t.Errorf("engine stopped with: %v", err)
	}
	s.cancel = nil
	if err := s.ld.Release(context.Background()); err != nil {
		s.t.Errorf("release leadership: %v", err)
	}
}

// testWriter sends the engine's logs to the test log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}

// apply applies the DAG files in src.
func (s *stack) apply(src string) *spec.Config {
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
	return cfg
}

// request queues r and waits for its result.
func (s *stack) request(r *state.Request) *state.Result {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.store.Submit(ctx, r); err != nil {
		s.t.Fatal(err)
	}
	res, err := s.store.Wait(ctx, r.ID)
	if err != nil {
		s.t.Fatalf("request %s: %v", r.Kind, err)
	}
	return res
}

// trigger creates a manual run of dag and returns its ID.
func (s *stack) trigger(dag string, params map[string]any) string {
	s.t.Helper()
	raw := map[string]json.RawMessage{}
	for k, v := range params {
		raw[k], _ = json.Marshal(v)
	}
	id := rules.RunID(rules.RunManual, time.Now())
	res := s.request(&state.Request{Kind: state.RequestTrigger, DAG: dag, RunID: id, Params: raw})
	if res.Error != "" {
		s.t.Fatalf("trigger %s: %s", dag, res.Error)
	}
	return id
}

// waitRun waits until run id of dag is finished and returns it.
func (s *stack) waitRun(dag, id string, timeout time.Duration) *state.RunRecord {
	s.t.Helper()
	return s.waitFor(dag, id, timeout, "finished", func(r *state.RunRecord) bool { return r.Run.State.Finished() })
}

// waitFor waits until run id of dag satisfies ok and returns it.
func (s *stack) waitFor(dag, id string, timeout time.Duration, what string, ok func(*state.RunRecord) bool) *state.RunRecord {
	s.t.Helper()
	deadline := time.Now().Add(timeout)
	var last *state.RunRecord
	for time.Now().Before(deadline) {
		rec, err := s.store.RunRecord(context.Background(), dag, id)
		if err == nil {
			last = rec
			if ok(rec) {
				return rec
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	s.t.Fatalf("run %s of %s not %s after %s; last seen:\n%s", id, dag, what, timeout, describe(last))
	return nil
}

// runs returns the stored runs of dag.
func (s *stack) runs(dag string) []*state.RunRecord {
	s.t.Helper()
	recs, err := s.store.Runs(context.Background(), dag)
	if err != nil {
		s.t.Fatal(err)
	}
	return recs
}

func describe(r *state.RunRecord) string {
	if r == nil {
		return "  (nothing)"
	}
	b, _ := json.MarshalIndent(r, "  ", "  ")
	return "  " + string(b)
}

// states returns the state of every task instance of r.
func states(r *state.RunRecord) map[string]rules.State {
	out := map[string]rules.State{}
	for name, ti := range r.Tasks {
		out[name] = ti.State
	}
	return out
}

// jobAllocs returns the number of allocations of every Nomad job of the stack (job IDs that
// start with its executor's prefix), keyed by job ID.
func (s *stack) jobAllocs() map[string]int {
	s.t.Helper()
	q := &nomadapi.QueryOptions{Namespace: "*", Prefix: s.exec.Prefix()}
	stubs, _, err := s.nomad.Jobs().List(q)
	if err != nil {
		s.t.Fatalf("list jobs: %v", err)
	}
	out := map[string]int{}
	for _, j := range stubs {
		if _, dup := out[j.ID]; dup {
			s.t.Errorf("job %s exists in more than one namespace", j.ID)
		}
		allocs, _, err := s.nomad.Jobs().Allocations(j.ID, true, &nomadapi.QueryOptions{Namespace: j.Namespace})
		if err != nil {
			s.t.Fatalf("allocations of job %s: %v", j.ID, err)
		}
		out[j.ID] += len(allocs)
	}
	return out
}

// eventually waits until ok holds, checking every 100 ms, and fails the test after timeout.
func (s *stack) eventually(timeout time.Duration, what string, ok func() bool) {
	s.t.Helper()
	deadline := time.Now().Add(timeout)
	for !ok() {
		if time.Now().After(deadline) {
			s.t.Fatalf("not %s after %s", what, timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
