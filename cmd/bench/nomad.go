package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/dagflow/dagflow/hcl/spec"
	"github.com/dagflow/dagflow/internal/wait"
	"github.com/dagflow/dagflow/nomadexec"
)

// jobTimes is what Nomad recorded of one job and its (only) allocation's task: when the job
// was registered (its SubmitTime, set by the Nomad server that took the registration) and when
// the task started and finished (its task state, set by the Nomad client). All three come
// from the clocks of this one machine.
type jobTimes struct {
	Submit   time.Time
	Started  time.Time
	Finished time.Time
	Status   string // the allocation's client status
}

// terminal reports whether the job's allocation is over.
func (j *jobTimes) terminal() bool {
	switch j.Status {
	case nomadapi.AllocClientStatusComplete, nomadapi.AllocClientStatusFailed, nomadapi.AllocClientStatusLost:
		return true
	}
	return false
}

// nomadTimes returns the times of every job whose ID starts with prefix, keyed by job ID, in
// two requests: a job list and an allocation list.
func nomadTimes(ctx context.Context, nc *nomadapi.Client, prefix string) (map[string]*jobTimes, error) {
	q := (&nomadapi.QueryOptions{Prefix: prefix}).WithContext(ctx)
	stubs, _, err := nc.Jobs().List(q)
	if err != nil {
		return nil, fmt.Errorf("list jobs: %w", err)
	}
	out := make(map[string]*jobTimes, len(stubs))
	for _, s := range stubs {
		out[s.ID] = &jobTimes{Submit: time.Unix(0, s.SubmitTime)}
	}
	filter := `JobID matches "^` + strings.ReplaceAll(prefix, ".", "[.]") + `"`
	aq := (&nomadapi.QueryOptions{Filter: filter}).WithContext(ctx)
	allocs, _, err := nc.Allocations().List(aq)
	if err != nil {
		return nil, fmt.Errorf("list allocations: %w", err)
	}
	for _, a := range allocs {
		j := out[a.JobID]
		if j == nil {
			continue
		}
		j.Status = a.ClientStatus
		if ts := a.TaskStates[nomadexec.TaskName]; ts != nil {
			j.Started, j.Finished = ts.StartedAt, ts.FinishedAt
		}
	}
	return out, nil
}

// pollEvery is how often the bench asks Nomad how a run fares, for dagflow and raw Nomad
// alike. Each poll is a job list and an allocation list: it costs Nomad a little, the same for
// both.
const pollEvery = time.Second

// waitTerminal polls Nomad every pollEvery until every job in ids has a terminal allocation
// with a finish time, and returns their times.
func waitTerminal(ctx context.Context, nc *nomadapi.Client, prefix string, ids []string, timeout time.Duration) (map[string]*jobTimes, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		times, err := nomadTimes(ctx, nc, prefix)
		if err == nil {
			missing := ""
			for _, id := range ids {
				if j := times[id]; j == nil || !j.terminal() || j.Finished.IsZero() {
					missing = id
					break
				}
			}
			if missing == "" {
				return times, nil
			}
			err = fmt.Errorf("job %s not finished", missing)
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("wait for %d jobs to finish: %w (last: %v)", len(ids), ctx.Err(), err)
		case <-time.After(pollEvery):
		}
	}
}

// pollWhile polls Nomad as waitTerminal does until ctx ends, so that a phase driven otherwise
// (the floor's chain) bears the same load of polls as one waited for with waitTerminal.
func pollWhile(ctx context.Context, nc *nomadapi.Client, prefix string) {
	for ctx.Err() == nil {
		_, _ = nomadTimes(ctx, nc, prefix)
		select {
		case <-ctx.Done():
		case <-time.After(pollEvery):
		}
	}
}

// edges returns, for each consecutive pair of jobs in chain, the time from the upstream task's
// finish to the downstream job's registration and to the downstream task's start.
func edges(times map[string]*jobTimes, chain []string) (registered, started []time.Duration, err error) {
	for i := 1; i < len(chain); i++ {
		up, down := times[chain[i-1]], times[chain[i]]
		if up == nil || down == nil || up.Finished.IsZero() || down.Started.IsZero() {
			return nil, nil, fmt.Errorf("no Nomad times for edge %s -> %s", chain[i-1], chain[i])
		}
		registered = append(registered, down.Submit.Sub(up.Finished))
		started = append(started, down.Started.Sub(up.Finished))
	}
	return registered, started, nil
}

// rawJobs builds the Nomad job of every task of dag as dagflow's executor builds it for the
// first try of run runID, under prefix, in the DAG's task order. The floor runs exactly these
// specs, so it differs from dagflow in the orchestrator only.
func rawJobs(prefix string, dag *spec.DAG, runID string) ([]*nomadapi.Job, error) {
	var jobs []*nomadapi.Job
	for _, t := range dag.Tasks {
		rendered, err := dag.Render(t, spec.Runtime{RunID: runID, RunType: "manual", Try: 1})
		if err != nil {
			return nil, err
		}
		job, err := nomadexec.Job(prefix, nomadexec.Attempt{
			DAG: dag.Name, RunID: runID, Task: t.Name, Try: 1, Spec: rendered,
			Env: map[string]string{"DAGFLOW_DAG": dag.Name, "DAGFLOW_RUN_ID": runID, "DAGFLOW_TASK": t.Name, "DAGFLOW_TRY": "1"},
		})
		if err != nil {
			return nil, err
		}
		jobs = append(jobs, job)
	}
	return jobs, nil
}

// register registers job create-only, as dagflow's executor does (EnforceIndex, index 0).
func register(ctx context.Context, nc *nomadapi.Client, job *nomadapi.Job) error {
	_, _, err := nc.Jobs().RegisterOpts(job, &nomadapi.RegisterOptions{EnforceIndex: true}, (&nomadapi.WriteOptions{}).WithContext(ctx))
	if err != nil {
		return fmt.Errorf("register job %q: %w", *job.ID, err)
	}
	return nil
}

// floorChain runs jobs as a linear chain driven by Nomad's event stream alone: it registers
// the first job, and each next one as soon as the allocation event saying the one before it
// completed arrives. It is what an orchestrator that does nothing but react costs.
func floorChain(ctx context.Context, nc *nomadapi.Client, jobs []*nomadapi.Job) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	topics := map[nomadapi.Topic][]string{nomadapi.TopicAllocation: {"*"}}
	events, err := nc.EventStream().Stream(ctx, topics, 0, &nomadapi.QueryOptions{})
	if err != nil {
		return fmt.Errorf("subscribe to events: %w", err)
	}
	if err := register(ctx, nc, jobs[0]); err != nil {
		return err
	}
	next := 1
	for batch := range events {
		if batch.Err != nil {
			return fmt.Errorf("event stream: %w", batch.Err)
		}
		for i := range batch.Events {
			ev := &batch.Events[i]
			payload, _ := ev.Payload["Allocation"].(map[string]any)
			if id, _ := payload["JobID"].(string); ev.Topic != nomadapi.TopicAllocation || id != *jobs[next-1].ID {
				continue
			}
			alloc, err := ev.Allocation()
			if err != nil || alloc == nil {
				continue
			}
			switch alloc.ClientStatus {
			case nomadapi.AllocClientStatusComplete:
			case nomadapi.AllocClientStatusFailed, nomadapi.AllocClientStatusLost:
				return fmt.Errorf("job %s: allocation %s", alloc.JobID, alloc.ClientStatus)
			default:
				continue
			}
			if next == len(jobs) {
				return nil
			}
			if err := register(ctx, nc, jobs[next]); err != nil {
				return err
			}
			next++
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return errors.New("event stream closed")
}

// registerAll registers jobs with n registrations in flight at most, as a plain Nomad client
// loop would.
func registerAll(ctx context.Context, nc *nomadapi.Client, jobs []*nomadapi.Job, n int) error {
	work := make(chan *nomadapi.Job)
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for job := range work {
				if err := register(ctx, nc, job); err != nil {
					mu.Lock()
					first = cmpErr(first, err)
					mu.Unlock()
				}
			}
		}()
	}
	for _, job := range jobs {
		work <- job
	}
	close(work)
	wg.Wait()
	return first
}

func cmpErr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// collectGarbage has Nomad forget every dead job and its allocations, and its client destroy
// them, so each phase starts from the same, nearly empty, Nomad state; then it waits for the
// agents to be quiet again. Without the client's collection, a client over gc_max_allocs
// destroys the previous phase's allocations as the next phase's arrive, and that phase pays.
func (b *bench) collectGarbage(ctx context.Context) error {
	if err := b.nomad.System().GarbageCollect(); err != nil {
		return fmt.Errorf("nomad system gc: %w", err)
	}
	nodes, _, err := b.nomad.Nodes().List((&nomadapi.QueryOptions{}).WithContext(ctx))
	if err != nil {
		return fmt.Errorf("list nomad nodes: %w", err)
	}
	for _, n := range nodes {
		// The API client reads Nomad's empty answer as a JSON value and reports io.EOF.
		if err := b.nomad.Nodes().GC(n.ID, (&nomadapi.QueryOptions{}).WithContext(ctx)); err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("nomad node gc: %w", err)
		}
	}
	b.quiesce(ctx)
	return ctx.Err()
}

// quiesce waits until the Nomad and Consul agents are quiet: less than quietCPU of a core
// each over a second, for quietFor in a row, or quiesceMax at most. After a phase, Nomad's
// client goes on destroying the allocations the servers collected, and the next phase would
// otherwise pay for it.
func (b *bench) quiesce(ctx context.Context) {
	const (
		quietCPU   = 100 * time.Millisecond // per second: 10% of a core
		quietFor   = 2
		quiesceMax = 60 * time.Second
	)
	deadline := time.Now().Add(quiesceMax)
	quiet := 0
	for quiet < quietFor && time.Now().Before(deadline) && ctx.Err() == nil {
		n0, c0 := cpuOf(b.nomadPid), cpuOf(b.consulPid)
		wait.Sleep(ctx, time.Second)
		if cpuOf(b.nomadPid)-n0 < quietCPU && cpuOf(b.consulPid)-c0 < quietCPU {
			quiet++
		} else {
			quiet = 0
		}
	}
}
