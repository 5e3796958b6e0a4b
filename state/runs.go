package state

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"

	consulapi "github.com/hashicorp/consul/api"

	"github.com/dagflow/dagflow/internal/bounded"
	"github.com/dagflow/dagflow/rules"
)

// Runs, task instances and logs live beside the catalog:
//
//	P + "runs/<dag>/<run>/run"            JSON Run
//	P + "runs/<dag>/<run>/tasks/<task>"   JSON TaskInstance, with every try
//	P + "logs/<dag>/<run>/<task>/<try>"   JSON Logs: the tail of a finished try's output
//	P + "paused/<dag>"                    "true" or "false": pause set at runtime
//	P + "requests/<id>"                   JSON Request: an action for the leader to carry out
//
// Run and task instance records are written only by the leader, each write one fenced
// transaction (consullock.Leadership.Txn), built from the *Op methods below. Users act through
// requests, which the leader carries out with a fenced write of its own, so the leader's view
// of a run is never changed behind its back. Task and run names are escaped with
// url.PathEscape in keys.

// RunState is the state of a DAG run.
type RunState string

// Run states, with Airflow's names.
const (
	RunQueued  RunState = "queued"  // created; waits for a slot under max_active_runs
	RunRunning RunState = "running" // its tasks are being scheduled
	RunSuccess RunState = "success" // every leaf task succeeded or was skipped
	RunFailed  RunState = "failed"  // a leaf task failed or could not run because of a failure
)

// Finished reports whether the run is over: RunSuccess or RunFailed.
func (s RunState) Finished() bool { return s == RunSuccess || s == RunFailed }

// Run is one run of a DAG, pinned to the DAG version it was created with.
type Run struct {
	DAG               string                     `json:"dag"`
	ID                string                     `json:"id"`
	Type              rules.RunType              `json:"type"`
	Version           string                     `json:"version"` // the DAG version (spec.Hash) it runs
	LogicalDate       time.Time                  `json:"logical_date"`
	DataIntervalStart time.Time                  `json:"data_interval_start"`
	DataIntervalEnd   time.Time                  `json:"data_interval_end"`
	Params            map[string]json.RawMessage `json:"params,omitempty"`
	State             RunState                   `json:"state"`
	CreatedAt         time.Time                  `json:"created_at"`
	StartedAt         time.Time                  `json:"started_at,omitzero"`
	EndedAt           time.Time                  `json:"ended_at,omitzero"`
	CanceledAt        time.Time                  `json:"canceled_at,omitzero"` // set by a cancel: it ends failed once its tries in flight were stopped

	// AssetEvents are the events that started an asset-triggered run: per asset of its
	// schedule_on, the newest MaxTriggerEvents of those since its previous one, by asset then
	// sequence.
	AssetEvents []AssetEvent `json:"asset_events,omitempty"`

	// DeadlineMissedAt is when the leader found the run past its DAG's deadline, unfinished
	// or finished late; it is set once, in the transaction that records the on_miss deliveries.
	DeadlineMissedAt time.Time `json:"deadline_missed_at,omitzero"`
}

// TaskInstance is one task of one run, with every try it has had.
type TaskInstance struct {
	DAG     string      `json:"dag"`
	RunID   string      `json:"run_id"`
	Task    string      `json:"task"`
	State   rules.State `json:"state"`
	RetryAt time.Time   `json:"retry_at,omitzero"` // when UpForRetry: when the next try may start
	Tries   []Try       `json:"tries,omitempty"`   // oldest first; Tries[i].Try == i+1

	// ClearedTries is how many tries it had when it was last cleared. As in Airflow, a clear
	// gives the task its retries again: they count from the tries after it.
	ClearedTries int `json:"cleared_tries,omitempty"`

	// Mapped is set on the record of a task mapped over an upstream's outputs (for_each =
	// tasks.NAME.outputs.KEY) once its upstream succeeded: the keys of its instances, named
	// "TASK[KEY]", in order. It is written once per expansion, in one fenced write, so every
	// leader sees the same instances. Nil before the expansion, and when there was nothing to
	// map over (the task is then skipped).
	MapKeys []string `json:"map_keys,omitempty"`

	// Message says, for people, why a task instance ended without a try of its own: a mapped
	// task whose collection was missing or too large.
	Message string `json:"message,omitempty"`

	// Waiting says, for people, why a task instance ready to run (State Scheduled) has no try
	// yet: `queue "gpu" at max_running (2)`, `DAG "etl" at max_active_tasks (8)`. It is
	// written when it changes, and dropped once the instance leaves Scheduled.
	Waiting string `json:"waiting,omitempty"`

	// DeadlineMissedAt is when the leader found the task instance past its task's deadline;
	// see Run.DeadlineMissedAt.
	DeadlineMissedAt time.Time `json:"deadline_missed_at,omitzero"`

	// Sensor is the waiting state of a sensor's instance, from the start of its wait on; see
	// SensorWait.
	Sensor *SensorWait `json:"sensor,omitempty"`
}

// AttemptsSinceClear returns how many tries it has had since it was last cleared (all of them
// when it never was), but for a command sensor's "not yet" pokes: what its retries are counted
// against.
func (ti *TaskInstance) AttemptsSinceClear() int {
	n := 0
	for _, t := range ti.Tries[min(ti.ClearedTries, len(ti.Tries)):] {
		if !t.NotYet {
			n++
		}
	}
	return n
}

// Try is one attempt of a task instance: one Nomad job.
type Try struct {
	Try         int         `json:"try"`
	JobID       string      `json:"job_id"`
	State       rules.State `json:"state"`        // Queued, Running, Success or Failed
	ScheduledAt time.Time   `json:"scheduled_at"` // when the task became ready to run
	QueuedAt    time.Time   `json:"queued_at"`    // when it was recorded for submission
	StartedAt   time.Time   `json:"started_at,omitzero"`
	EndedAt     time.Time   `json:"ended_at,omitzero"`
	AllocID     string      `json:"alloc_id,omitempty"`
	Node        string      `json:"node,omitempty"`
	ExitCode    *int        `json:"exit_code,omitempty"`
	Message     string      `json:"message,omitempty"` // why it ended as it did, for people
	Logs        bool        `json:"logs,omitempty"`    // its output tail is stored, in Tail or a key of its own
	NotYet      bool        `json:"not_yet,omitempty"` // a command sensor's poke that said "not yet": no attempt against retries
	Tail        *Logs       `json:"tail,omitempty"`    // its output tail, when small enough to ride in this record (see LogsOp)
	Stop        *Stop       `json:"stop,omitempty"`    // set when the scheduler stops its job, before it does

	// Pending says, for people, why Nomad has not placed the try's job: its blocked
	// evaluation's reasons, such as "resources exhausted: memory on 1 node". It is written
	// when it changes, and dropped once Nomad places the job or the try ends.
	Pending string `json:"pending,omitempty"`

	// Outputs is the JSON object a successful try published in the file named by
	// DAGFLOW_OUTPUT, read from its allocation before its job is purged. Only the latest
	// successful try of a task instance keeps it in Consul (history keeps every try's), so a
	// record never holds more than one object of at most the engine's MaxOutputs.
	Outputs json.RawMessage `json:"outputs,omitempty"`
}

// Stop is why the scheduler stopped a try's job, and what becomes of its task instance once
// the job ended. It is recorded before the job is stopped, so a leader taking over stops the
// job if the one before did not get to it, and ends the try the same way.
type Stop struct {
	Reason string      `json:"reason"`          // the try's message: "timed out after 1m0s", "cleared", "canceled", ...
	Retry  bool        `json:"retry,omitempty"` // the try failed like any other: retried if the task has retries left (a timeout)
	State  rules.State `json:"state,omitempty"` // else the task instance's state: None after a clear, so it runs again
}

// Current returns the latest try, or nil before the first.
func (ti *TaskInstance) Current() *Try {
	if len(ti.Tries) == 0 {
		return nil
	}
	return &ti.Tries[len(ti.Tries)-1]
}

// Logs is the stored tail of a finished try's stdout and stderr.
type Logs struct {
	Stdout    []byte `json:"stdout"`
	Stderr    []byte `json:"stderr"`
	Truncated bool   `json:"truncated,omitempty"` // the output was longer than what is kept
}

// RunRecord is a run as stored, with its task instances keyed by task name.
type RunRecord struct {
	Run   Run
	Tasks map[string]*TaskInstance
}

func esc(name string) string { return url.PathEscape(name) }

func (s *Store) runsPrefix() string { return s.prefix + "runs/" }

func (s *Store) runPrefix(dag, run string) string {
	return s.runsPrefix() + esc(dag) + "/" + esc(run) + "/"
}

func (s *Store) logsPrefix(dag, run string) string {
	return s.prefix + "logs/" + esc(dag) + "/" + esc(run) + "/"
}

func (s *Store) logKey(dag, run, task string, try int) string {
	return fmt.Sprintf("%s%s/%d", s.logsPrefix(dag, run), esc(task), try)
}

// CreateRunOp returns the transaction operation that creates run r with the given task
// instances' records; it fails (and with it the transaction) when the run exists, so the same
// run can never be created twice.
func (s *Store) CreateRunOp(r *Run) (*consulapi.TxnOp, error) {
	b, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("encode run %s/%s: %w", r.DAG, r.ID, err)
	}
	return &consulapi.TxnOp{KV: &consulapi.KVTxnOp{Verb: consulapi.KVCAS, Key: s.runPrefix(r.DAG, r.ID) + "run", Value: b, Index: 0}}, nil
}

// PutRunOp returns the transaction operation that writes run r.
func (s *Store) PutRunOp(r *Run) (*consulapi.TxnOp, error) {
	b, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("encode run %s/%s: %w", r.DAG, r.ID, err)
	}
	return &consulapi.TxnOp{KV: &consulapi.KVTxnOp{Verb: consulapi.KVSet, Key: s.runPrefix(r.DAG, r.ID) + "run", Value: b}}, nil
}

// PutTaskOp returns the transaction operation that writes task instance ti.
func (s *Store) PutTaskOp(ti *TaskInstance) (*consulapi.TxnOp, error) {
	b, err := json.Marshal(ti)
	if err != nil {
		return nil, fmt.Errorf("encode task %s/%s/%s: %w", ti.DAG, ti.RunID, ti.Task, err)
	}
	return &consulapi.TxnOp{KV: &consulapi.KVTxnOp{Verb: consulapi.KVSet, Key: s.runPrefix(ti.DAG, ti.RunID) + "tasks/" + esc(ti.Task), Value: b}}, nil
}

// Output tails up to inlineLogs bytes (encoded) ride in their task instance's record, as long as
// the record's tails stay within inlineLogsTotal bytes of output: most tasks print a few lines, and keeping
// those in the record written anyway as the try finishes saves a key per try. Longer ones, and
// the retries of a chatty task, get a key of their own under logs/.
const (
	inlineLogs      = 2 << 10
	inlineLogsTotal = 8 << 10
)

// LogsOp stores l, the output tail of ti's try, when that try finishes: in the try's Tail when
// it is small enough, and then op is nil, else through the operation op returns (PutLogsOp).
func (s *Store) LogsOp(ti *TaskInstance, try *Try, l *Logs) (op *consulapi.TxnOp, err error) {
	if b, err := json.Marshal(l); err == nil && len(b) <= inlineLogs {
		total := len(l.Stdout) + len(l.Stderr)
		for _, t := range ti.Tries {
			if t.Tail != nil && t.Try != try.Try {
				total += len(t.Tail.Stdout) + len(t.Tail.Stderr)
			}
		}
		if total <= inlineLogsTotal {
			try.Tail, try.Logs = l, true
			return nil, nil
		}
	}
	op, err = s.PutLogsOp(ti.DAG, ti.RunID, ti.Task, try.Try, l)
	if err == nil {
		try.Logs = true
	}
	return op, err
}

// PutLogsOp returns the transaction operation that stores the logs of one try in a key of
// their own.
func (s *Store) PutLogsOp(dag, run, task string, try int, l *Logs) (*consulapi.TxnOp, error) {
	b, err := json.Marshal(l)
	if err != nil {
		return nil, fmt.Errorf("encode logs: %w", err)
	}
	if len(b) > maxValueSize {
		return nil, fmt.Errorf("logs of %s/%s/%s try %d: %w", dag, run, task, try, ErrTooLarge)
	}
	return &consulapi.TxnOp{KV: &consulapi.KVTxnOp{Verb: consulapi.KVSet, Key: s.logKey(dag, run, task, try), Value: b}}, nil
}

// DeleteRunOps returns the transaction operations that delete a run of logical date
// logicalDate, its task instances, their logs and its index entry.
func (s *Store) DeleteRunOps(dag, run string, logicalDate time.Time) consulapi.TxnOps {
	return consulapi.TxnOps{
		s.DeleteIndexOp(dag, run, logicalDate),
		{KV: &consulapi.KVTxnOp{Verb: consulapi.KVDeleteTree, Key: s.runPrefix(dag, run)}},
		{KV: &consulapi.KVTxnOp{Verb: consulapi.KVDeleteTree, Key: s.logsPrefix(dag, run)}},
	}
}

// AllRuns reads every stored run of every DAG, with its task instances, in one consistent
// read. It is what a new leader starts from.
func (s *Store) AllRuns(ctx context.Context) ([]*RunRecord, error) {
	return s.readRuns(ctx, s.runsPrefix())
}

// EachDAGRuns reads every stored run, as AllRuns does, one DAG at a time, and calls fn with
// each DAG's runs (oldest logical date first), in no particular order of DAGs and never two
// calls at once. It stops at the first error, fn's or a read's. Each DAG's runs are one
// consistent read, not all of them at once: it is for a leader, the only writer of runs.
//
// A new leader starts from it: with 10,000 runs of 10 tasks, the one list of AllRuns took
// 150 MB to receive and decode, and the process kept that memory after. Here at most
// runReads DAGs' records, and Consul's answers holding them, are in memory at once, besides
// what fn keeps.
func (s *Store) EachDAGRuns(ctx context.Context, fn func(recs []*RunRecord) error) error {
	prefixes, _, err := s.kv.Keys(s.runsPrefix(), "/", s.readOpts(ctx))
	if err != nil {
		return fmt.Errorf("list the DAGs with runs: %w", err)
	}
	var mu sync.Mutex
	failed := false // fn failed: call it no more
	reads := make([]func(context.Context) error, 0, len(prefixes))
	for _, prefix := range prefixes {
		if !strings.HasSuffix(prefix, "/") {
			continue // a key of its own directly under runs/: no DAG's
		}
		reads = append(reads, func(ctx context.Context) error {
			recs, err := s.readRuns(ctx, prefix)
			if err != nil || len(recs) == 0 {
				return err
			}
			mu.Lock()
			defer mu.Unlock()
			if failed {
				return nil
			}
			err = fn(recs)
			failed = err != nil
			return err
		})
	}
	return bounded.Run(ctx, runReads, reads)
}

// runReads is how many DAGs' runs EachDAGRuns reads at once.
const runReads = 4

// Runs reads the stored runs of DAG dag, oldest logical date first.
func (s *Store) Runs(ctx context.Context, dag string) ([]*RunRecord, error) {
	return s.readRuns(ctx, s.runsPrefix()+esc(dag)+"/")
}

// RunRecord reads one run with its task instances; ErrNotFound (wrapped) when it is not stored.
func (s *Store) RunRecord(ctx context.Context, dag, run string) (*RunRecord, error) {
	recs, err := s.readRuns(ctx, s.runPrefix(dag, run))
	if err != nil {
		return nil, err
	}
	if len(recs) == 0 {
		return nil, fmt.Errorf("run %s of DAG %s: %w", run, dag, ErrNotFound)
	}
	return recs[0], nil
}

func (s *Store) readRuns(ctx context.Context, prefix string) ([]*RunRecord, error) {
	pairs, _, err := s.kv.List(prefix, s.readOpts(ctx))
	if err != nil {
		return nil, fmt.Errorf("read runs under %s: %w", prefix, err)
	}
	return s.decodeRuns(pairs)
}

// decodeRuns decodes the run and task instance keys of pairs into run records, ordered by DAG,
// then logical date, then ID.
func (s *Store) decodeRuns(pairs consulapi.KVPairs) ([]*RunRecord, error) {
	byRun := map[string]*RunRecord{}
	var order []*RunRecord
	get := func(key string) *RunRecord {
		if r, ok := byRun[key]; ok {
			return r
		}
		r := &RunRecord{Tasks: map[string]*TaskInstance{}}
		byRun[key] = r
		order = append(order, r)
		return r
	}
	for _, p := range pairs {
		rest := strings.TrimPrefix(p.Key, s.runsPrefix())
		parts := strings.SplitN(rest, "/", 4)
		if len(parts) < 3 {
			continue
		}
		rec := get(parts[0] + "/" + parts[1])
		switch {
		case len(parts) == 3 && parts[2] == "run":
			if err := json.Unmarshal(p.Value, &rec.Run); err != nil {
				return nil, fmt.Errorf("decode run %s: %w", p.Key, err)
			}
		case len(parts) == 4 && parts[2] == "tasks":
			ti := &TaskInstance{}
			if err := json.Unmarshal(p.Value, ti); err != nil {
				return nil, fmt.Errorf("decode task instance %s: %w", p.Key, err)
			}
			rec.Tasks[ti.Task] = ti
		}
	}
	out := order[:0]
	for _, r := range order {
		// Task keys without a run key are the remains of a half-deleted run; skip them.
		if r.Run.ID != "" {
			out = append(out, r)
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i].Run, out[j].Run
		if a.DAG != b.DAG {
			return a.DAG < b.DAG
		}
		if !a.LogicalDate.Equal(b.LogicalDate) {
			return a.LogicalDate.Before(b.LogicalDate)
		}
		return a.ID < b.ID
	})
	return out, nil
}

// Logs reads the stored logs of one try, from its own key or its task instance's record (see
// LogsOp); ErrNotFound (wrapped) when none are stored.
func (s *Store) Logs(ctx context.Context, dag, run, task string, try int) (*Logs, error) {
	key := s.logKey(dag, run, task, try)
	pair, _, err := s.kv.Get(key, s.readOpts(ctx))
	if err != nil {
		return nil, fmt.Errorf("read logs %s: %w", key, err)
	}
	if pair == nil {
		return s.inlineLogs(ctx, dag, run, task, try)
	}
	l := &Logs{}
	if err := json.Unmarshal(pair.Value, l); err != nil {
		return nil, fmt.Errorf("decode logs %s: %w", key, err)
	}
	return l, nil
}

// inlineLogs reads the tail of one try kept in its task instance's record.
func (s *Store) inlineLogs(ctx context.Context, dag, run, task string, try int) (*Logs, error) {
	key := s.runPrefix(dag, run) + "tasks/" + esc(task)
	pair, _, err := s.kv.Get(key, s.readOpts(ctx))
	if err != nil {
		return nil, fmt.Errorf("read task instance %s: %w", key, err)
	}
	if pair != nil {
		ti := &TaskInstance{}
		if err := json.Unmarshal(pair.Value, ti); err != nil {
			return nil, fmt.Errorf("decode task instance %s: %w", key, err)
		}
		for _, t := range ti.Tries {
			if t.Try == try && t.Tail != nil {
				return t.Tail, nil
			}
		}
	}
	return nil, fmt.Errorf("logs of %s/%s/%s try %d: %w", dag, run, task, try, ErrNotFound)
}
