package api

import (
	"context"
	"encoding/json"
	"io"
	"net/url"
	"strconv"
	"time"
)

// RunStub is one run in a list.
type RunStub struct {
	DAG               string         `json:"dag"`
	ID                string         `json:"id"`
	Type              string         `json:"type"`  // scheduled, manual or backfill
	State             string         `json:"state"` // queued, running, success or failed
	Version           string         `json:"version"`
	LogicalDate       time.Time      `json:"logical_date"`
	DataIntervalStart time.Time      `json:"data_interval_start"`
	DataIntervalEnd   time.Time      `json:"data_interval_end"`
	CreatedAt         time.Time      `json:"created_at"`
	StartedAt         time.Time      `json:"started_at,omitzero"`
	EndedAt           time.Time      `json:"ended_at,omitzero"`
	TaskStates        map[string]int `json:"task_states"` // how many task instances are in each state
	Source            string         `json:"source"`      // RunSourceConsul or RunSourceHistory

	// DeadlineMissedAt is when the run was found past its DAG's deadline; zero: not (yet).
	DeadlineMissedAt time.Time `json:"deadline_missed_at,omitzero"`
}

// Run sources: where a run was read from.
const (
	RunSourceConsul  = "consul"  // the runs the scheduler keeps (retention): it can still be acted on
	RunSourceHistory = "history" // long-term history in PostgreSQL, after Consul let it go: read only
)

// Run is one run in full, with every try of every task instance.
type Run struct {
	RunStub
	Params map[string]json.RawMessage `json:"params,omitempty"`
	Tasks  []TaskInstance             `json:"tasks"` // in the DAG's topological order
}

// TaskInstance is one task of one run.
type TaskInstance struct {
	Task      string    `json:"task"`
	State     string    `json:"state"` // empty until scheduled; see docs/scheduler.md for the states
	DependsOn []string  `json:"depends_on"`
	RetryAt   time.Time `json:"retry_at,omitzero"`
	Tries     []Try     `json:"tries"` // oldest first

	// Of a task mapped over an upstream's outputs: what it maps over (tasks.NAME.outputs.KEY)
	// and, once expanded, the keys of its instances, which follow it in Run.Tasks.
	MapOver string   `json:"map_over,omitempty"`
	MapKeys []string `json:"map_keys,omitempty"`
	// Of an instance of a mapped task: the mapped task.
	Parent string `json:"parent,omitempty"`
	// Why the task instance ended without a try: a mapped task with nothing to map over.
	Message string `json:"message,omitempty"`
	// Why a task instance ready to run (state scheduled) has no try yet: its queue at
	// max_running, or its DAG at max_active_tasks.
	Waiting string `json:"waiting,omitempty"`
	// When the task instance was found past its task's deadline; zero: not (yet).
	DeadlineMissedAt time.Time `json:"deadline_missed_at,omitzero"`
}

// Try is one attempt of a task instance: one Nomad batch job.
type Try struct {
	Try           int       `json:"try"`
	State         string    `json:"state"`
	JobID         string    `json:"job_id"`
	AllocID       string    `json:"alloc_id,omitempty"`
	Node          string    `json:"node,omitempty"`
	ExitCode      *int      `json:"exit_code,omitempty"`
	Message       string    `json:"message,omitempty"`
	ScheduledAt   time.Time `json:"scheduled_at"`
	QueuedAt      time.Time `json:"queued_at"`
	StartedAt     time.Time `json:"started_at,omitzero"`
	EndedAt       time.Time `json:"ended_at,omitzero"`
	NomadJobURL   string    `json:"nomad_job_url,omitempty"`   // the job in the Nomad UI, when known
	NomadAllocURL string    `json:"nomad_alloc_url,omitempty"` // the allocation in the Nomad UI

	// Pending is why Nomad has not placed the queued try's job, from its blocked evaluation:
	// "resources exhausted: memory on 1 node", "constraint ${meta.queues} = gpu filtered 3
	// nodes", ...; empty once it is placed.
	Pending string `json:"pending,omitempty"`

	// Outputs is the JSON object the try published through DAGFLOW_OUTPUT, when it succeeded.
	// Anyone who may view the run may read it: outputs are not for secrets.
	Outputs json.RawMessage `json:"outputs,omitempty"`
}

// RunListOptions filters and pages a run list. Runs come newest logical date first.
type RunListOptions struct {
	DAG       string // only this DAG's runs
	State     string // only runs in this state
	RunID     string // only runs with this ID (one per DAG at most)
	PerPage   int    // zero: the server's default page size
	NextToken string // QueryMeta.NextToken of the previous page
	Wait      Wait
}

// ClearRequest asks for a task instance to run again.
type ClearRequest struct {
	Downstream bool `json:"downstream,omitempty"` // and every task after it
}

// MarkRequest sets a task instance's state by hand.
type MarkRequest struct {
	State      string `json:"state"` // success or failed
	Downstream bool   `json:"downstream,omitempty"`
}

// Log sources: where a try's output was read from.
const (
	LogSourceNomad   = "nomad"   // the allocation's log, live
	LogSourceHistory = "history" // the whole output, as long-term history recorded it
	LogSourceStored  = "stored"  // the tail copied into Consul when the try ended
)

// LogOptions picks what part of a try's output to read.
type LogOptions struct {
	Type   string // stdout (default) or stderr
	Offset int64  // read from this byte on; Logs.Offset of the previous read follows a live log
}

// Logs is a piece of a try's output.
type Logs struct {
	Data      []byte
	Offset    int64  // where the next read starts
	Source    string // LogSourceNomad, LogSourceHistory or LogSourceStored
	Finished  bool   // the try is over: nothing more will be written
	Truncated bool   // only the tail of the output was kept
}

// Runs reaches the run routes.
type Runs struct{ c *Client }

// Runs returns the run routes.
func (c *Client) Runs() *Runs { return &Runs{c} }

func runPath(dag, run string) string { return "/v1/dags/" + esc(dag) + "/runs/" + esc(run) }

// List returns a page of runs.
func (r *Runs) List(ctx context.Context, o *RunListOptions) ([]RunStub, *QueryMeta, error) {
	q := url.Values{}
	if o != nil {
		for k, v := range map[string]string{"dag": o.DAG, "state": o.State, "run_id": o.RunID, "next_token": o.NextToken} {
			if v != "" {
				q.Set(k, v)
			}
		}
		if o.PerPage > 0 {
			q.Set("per_page", itoa(o.PerPage))
		}
		o.Wait.set(q)
	}
	var out []RunStub
	qm, err := r.c.call(ctx, "GET", "/v1/runs", q, nil, &out)
	return out, qm, err
}

// Info returns run id of DAG dag.
func (r *Runs) Info(ctx context.Context, dag, id string) (*Run, *QueryMeta, error) {
	var out Run
	qm, err := r.c.call(ctx, "GET", runPath(dag, id), nil, nil, &out)
	if err != nil {
		return nil, nil, err
	}
	return &out, qm, nil
}

// Logs reads the output of try number try of task in run id of DAG dag.
func (r *Runs) Logs(ctx context.Context, dag, id, task string, try int, o *LogOptions) (*Logs, error) {
	q := url.Values{}
	if o != nil {
		if o.Type != "" {
			q.Set("type", o.Type)
		}
		if o.Offset > 0 {
			q.Set("offset", strconv.FormatInt(o.Offset, 10))
		}
	}
	resp, err := r.c.do(ctx, "GET", runPath(dag, id)+"/tasks/"+esc(task)+"/tries/"+itoa(try)+"/logs", q, nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	l := &Logs{
		Data:      data,
		Source:    resp.Header.Get("X-Dagflow-Log-Source"),
		Finished:  resp.Header.Get("X-Dagflow-Try-Finished") == "true",
		Truncated: resp.Header.Get("X-Dagflow-Log-Truncated") == "true",
	}
	l.Offset, _ = strconv.ParseInt(resp.Header.Get("X-Dagflow-Log-Offset"), 10, 64)
	return l, nil
}

// Clear runs a task instance again, with Downstream everything after it too.
func (r *Runs) Clear(ctx context.Context, dag, id, task string, req *ClearRequest) (*ActionResult, error) {
	return r.c.action(ctx, runPath(dag, id)+"/tasks/"+esc(task)+"/clear", req)
}

// Mark sets a task instance (with Downstream, everything after it too) to success or failed.
func (r *Runs) Mark(ctx context.Context, dag, id, task string, req *MarkRequest) (*ActionResult, error) {
	return r.c.action(ctx, runPath(dag, id)+"/tasks/"+esc(task)+"/mark", req)
}

// Cancel stops a run: tries in flight are stopped, tasks not started are skipped, the run fails.
func (r *Runs) Cancel(ctx context.Context, dag, id string) (*ActionResult, error) {
	return r.c.action(ctx, runPath(dag, id)+"/cancel", nil)
}
