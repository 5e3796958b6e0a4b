package nomadexec

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
	nomadapi "github.com/hashicorp/nomad/api"
)

var (
	// ErrNomad is wrapped by every error of a Nomad API call that failed: Nomad was
	// unreachable, refused the request or answered with an error.
	ErrNomad = errors.New("nomad api error")

	// ErrNotFound is wrapped by errors about an allocation, or allocation logs, Nomad does not
	// have: never existed, or garbage-collected.
	ErrNotFound = errors.New("not found")

	// ErrInvalidAttempt is wrapped by errors about an attempt no job can be built for.
	ErrInvalidAttempt = errors.New("invalid attempt")

	// ErrMissingVariable is wrapped by errors about a secret whose Nomad Variable does not
	// exist (MissingVariableError): its try cannot start until someone creates it.
	ErrMissingVariable = errors.New("missing nomad variable")

	// errIndexBackwards ends a watch's stream whose index went backwards.
	errIndexBackwards = errors.New("nomad index went backwards")
)

// allNamespaces is Nomad's wildcard namespace for reads across namespaces.
const allNamespaces = "*"

// Executor runs task attempts as Nomad jobs whose IDs start with its prefix, and reports
// what becomes of them.
//
// An Executor is safe for concurrent use. It keeps no state of its own: everything it reports
// comes from Nomad when asked, so several leaders in turn, or at once, can use Executors with
// the same prefix. Nomad forgets jobs and allocations when it garbage-collects them (4 h after
// a batch job ended, by default): the orchestrator's own record is the truth, and what Nomad
// says is evidence for it.
type Executor struct {
	client    *nomadapi.Client
	prefix    string
	namespace string // the client's namespace, where jobs of queues without one go
	logger    hclog.Logger
}

// New returns an Executor that talks to the Nomad of cfg (its address, token, namespace,
// region and TLS settings; cfg is not changed) with a client of its own, submits jobs under the
// job ID prefix prefix ("": DefaultPrefix; see ValidatePrefix) and logs to a child of logger
// (nil: no logs).
func New(cfg *nomadapi.Config, prefix string, logger hclog.Logger) (*Executor, error) {
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	client, err := newClient(cfg)
	if err != nil {
		return nil, err
	}
	e := &Executor{client: client, prefix: normalizePrefix(prefix), namespace: cfg.Namespace, logger: logger.Named("nomadexec")}
	if e.namespace == "" {
		e.namespace = nomadapi.DefaultNamespace
	}
	if prefix != "" && e.prefix != prefix {
		e.logger.Warn("job ID prefix changed to one Nomad job IDs can hold", "prefix", prefix, "used", e.prefix)
	}
	return e, nil
}

// Prefix returns the job ID prefix of the Executor's jobs.
func (e *Executor) Prefix() string { return e.prefix }

// Nomad returns the executor's Nomad client, for what else the leader asks Nomad (sensors'
// variables).
func (e *Executor) Nomad() *nomadapi.Client { return e.client }

// JobID returns the ID of attempt a's job; see the function JobID.
func (e *Executor) JobID(a Attempt) string { return JobID(e.prefix, a) }

// Submit registers attempt a's job (see Job) if no job with its ID exists. It returns true when
// it registered the job, and false, without error, when a job with that ID already exists: a
// leader got there first, or this is a re-submission after a failover or a lost response.
// Either way the attempt runs once: Submit never changes or restarts an existing job.
//
// Registration is create-only in Nomad itself (EnforceIndex with JobModifyIndex 0), so two
// concurrent Submits of one attempt register it once. A job that was garbage-collected or
// purged no longer exists: Submit then registers it again, and it runs again. Callers decide
// from their own record whether an attempt may still be submitted.
//
// No byte of the registration is written after ctx's deadline, checked by the connection as
// it writes, not only by the context (see newClient): a caller whose right to register ends at
// a known time sets that time as the deadline.
//
// A job whose secrets read a Nomad Variable that does not exist is not registered: the error
// is a *MissingVariableError (see checkSecrets).
//
// Errors wrap ErrInvalidAttempt, ErrMissingVariable or ErrNomad. After an ErrNomad error the
// job may or may not have been registered; submitting again settles it.
func (e *Executor) Submit(ctx context.Context, a Attempt) (registered bool, err error) {
	job, err := Job(e.prefix, a)
	if err != nil {
		return false, err
	}
	id := *job.ID
	wo := &nomadapi.WriteOptions{}
	if job.Namespace != nil {
		wo.Namespace = *job.Namespace
	}
	if err := e.checkSecrets(ctx, a, job, wo.Namespace); err != nil {
		return false, err
	}
	resp, _, err := e.client.Jobs().RegisterOpts(job, &nomadapi.RegisterOptions{EnforceIndex: true, ModifyIndex: 0}, wo.WithContext(withWriteDeadline(ctx)))
	if err != nil {
		if strings.Contains(err.Error(), nomadapi.RegisterEnforceIndexErrPrefix) {
			e.logger.Debug("job already registered", "job_id", id)
			return false, nil
		}
		return false, fmt.Errorf("register job %q: %w: %w", id, ErrNomad, err)
	}
	if resp.Warnings != "" {
		e.logger.Warn("nomad registered job with warnings", "job_id", id, "warnings", resp.Warnings)
	}
	e.logger.Debug("registered job", "job_id", id, "eval_id", resp.EvalID)
	return true, nil
}

// JobStatus is what Nomad knows of one job.
type JobStatus struct {
	JobID     string
	Exists    bool   // false: never registered, purged or garbage-collected; the rest is empty
	Namespace string // where the job is
	Status    string // Nomad's job status: "pending", "running" or "dead"
	Stopped   bool   // the job was stopped (Stop)
	Meta      map[string]string
	Allocs    []AllocStatus // oldest first
}

// AllocStatus is what Nomad knows of one allocation of an attempt's job and of its task.
type AllocStatus struct {
	AllocID   string
	JobID     string
	Namespace string
	NodeID    string
	NodeName  string

	// ClientStatus is "pending", "running", "complete", "failed", "lost" or "unknown" (the
	// node stopped heartbeating). A task stopped by Stop ends "complete", not "failed", with
	// DesiredStatus "stop".
	ClientStatus  string
	DesiredStatus string // "run", "stop" or "evict"

	TaskState  string // the task's state: "pending", "running" or "dead"; "" before it has one
	Failed     bool   // the task failed: non-zero exit, driver or setup failure, ...
	Exited     bool   // the task's process ended; ExitCode and Signal are set
	ExitCode   int    // the task's exit code when Exited
	Signal     int    // the signal that ended the task, when Exited and one did
	Message    string // Nomad's description of what last happened to the task, e.g. "Exit Code: 3"
	StartedAt  time.Time
	FinishedAt time.Time

	CreateIndex uint64
	ModifyIndex uint64
}

// Succeeded reports whether the allocation's task ran to completion and exited 0, without
// anyone stopping it.
func (s *AllocStatus) Succeeded() bool {
	return s.ClientStatus == nomadapi.AllocClientStatusComplete && !s.Failed &&
		s.DesiredStatus == nomadapi.AllocDesiredStatusRun && (!s.Exited || s.ExitCode == 0)
}

// Terminal reports whether the allocation is over: its client status is complete, failed or
// lost.
func (s AllocStatus) Terminal() bool {
	switch s.ClientStatus {
	case nomadapi.AllocClientStatusComplete, nomadapi.AllocClientStatusFailed, nomadapi.AllocClientStatusLost:
		return true
	}
	return false
}

// Status reports what Nomad knows of job jobID, in whichever namespace it is: whether it
// exists, and every allocation it has had. A job Nomad does not know is not an error: the
// result says Exists false. Errors wrap ErrNomad.
//
// It is meant for a new leader's reconciliation of the attempts its record says were
// submitted, and for checks; running attempts are followed with Watch.
func (e *Executor) Status(ctx context.Context, jobID string) (*JobStatus, error) {
	stubs, err := e.findJob(ctx, jobID)
	if err != nil {
		return nil, fmt.Errorf("get status of job %q: %w", jobID, err)
	}
	st := &JobStatus{JobID: jobID}
	if len(stubs) == 0 {
		return st, nil
	}
	// One attempt's job lives in one namespace; should the same ID be found in several (its
	// queue moved between a purge and a resubmission), their allocations are merged.
	st.Exists = true
	st.Namespace, st.Status, st.Stopped, st.Meta = stubs[0].Namespace, stubs[0].Status, stubs[0].Stop, stubs[0].Meta
	for _, stub := range stubs {
		q := (&nomadapi.QueryOptions{Namespace: stub.Namespace}).WithContext(ctx)
		allocs, _, err := e.client.Jobs().Allocations(jobID, true, q)
		if err != nil {
			return nil, fmt.Errorf("list allocations of job %q: %w: %w", jobID, ErrNomad, err)
		}
		for _, a := range allocs {
			st.Allocs = append(st.Allocs, allocStatusFromStub(a))
		}
	}
	sort.Slice(st.Allocs, func(i, j int) bool { return st.Allocs[i].CreateIndex < st.Allocs[j].CreateIndex })
	return st, nil
}

// Stop stops job jobID (a timeout, a cancelled run): Nomad kills its task, waiting up to
// DefaultKillTimeout after SIGINT, and the allocation ends "complete" with DesiredStatus
// "stop". The job stays known to Nomad, stopped, until it is purged or garbage-collected, so
// Submit of the same attempt does not run it again. Stopping a job that does not exist, or is
// stopped already, succeeds. Errors wrap ErrNomad.
func (e *Executor) Stop(ctx context.Context, jobID string) error {
	return e.deregister(ctx, jobID, false)
}

// Purge deregisters job jobID and deletes it from Nomad at once instead of at garbage
// collection, stopping it first if it still runs, after it wrote the job's tombstone (see
// guard.go). Call it only after the attempt's outcome
// and logs were recorded: Nomad forgets the job and its allocations, and a Submit of the same
// attempt would run it again. Purging a job that does not exist succeeds. Errors wrap ErrNomad.
func (e *Executor) Purge(ctx context.Context, jobID string) error {
	return e.deregister(ctx, jobID, true)
}

// deregister stops, and with purge deletes, job jobID in every namespace where it exists.
func (e *Executor) deregister(ctx context.Context, jobID string, purge bool) error {
	what := "stop"
	if purge {
		what = "purge"
	}
	stubs, err := e.findJob(ctx, jobID)
	if err != nil {
		return fmt.Errorf("%s job %q: %w", what, jobID, err)
	}
	if len(stubs) == 0 {
		e.logger.Debug("no job to "+what, "job_id", jobID)
		return nil
	}
	for _, stub := range stubs {
		if stub.Stop && !purge {
			continue
		}
		if purge {
			// The tombstone goes first: once the job is gone, a deposed leader's registration
			// could create it anew (see guard.go).
			if err := e.writeGuard(ctx, stub); err != nil {
				return fmt.Errorf("purge job %q: %w", jobID, err)
			}
		}
		wo := (&nomadapi.WriteOptions{Namespace: stub.Namespace}).WithContext(ctx)
		if _, _, err := e.client.Jobs().DeregisterOpts(jobID, &nomadapi.DeregisterOptions{Purge: purge}, wo); err != nil {
			if isNotFound(err) {
				continue // purged or collected since it was listed
			}
			return fmt.Errorf("%s job %q in namespace %q: %w: %w", what, jobID, stub.Namespace, ErrNomad, err)
		}
		e.logger.Debug("deregistered job", "job_id", jobID, "namespace", stub.Namespace, "purge", purge)
	}
	return nil
}

// findJob returns the job jobID in every namespace where it exists, sorted by namespace.
// Nomad has no lookup by ID across namespaces, so it lists the jobs whose ID starts with jobID.
func (e *Executor) findJob(ctx context.Context, jobID string) ([]*nomadapi.JobListStub, error) {
	stubs, err := e.list(ctx, jobID)
	if err != nil {
		return nil, err
	}
	var found []*nomadapi.JobListStub
	for _, s := range stubs {
		if s.ID == jobID {
			found = append(found, s)
		}
	}
	sort.Slice(found, func(i, j int) bool { return found[i].Namespace < found[j].Namespace })
	return found, nil
}

// Jobs returns Nomad's status ("pending", "running" or "dead") of every job of the Executor
// (IDs starting with its prefix), in every namespace, keyed by job ID. It is one request,
// meant for a new leader's reconciliation. Errors wrap ErrNomad.
func (e *Executor) Jobs(ctx context.Context) (map[string]string, error) {
	stubs, err := e.list(ctx, e.prefix)
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, len(stubs))
	for _, s := range stubs {
		if _, seen := out[s.ID]; !seen || s.Status != "dead" {
			out[s.ID] = s.Status
		}
	}
	return out, nil
}

// list returns the jobs whose ID starts with prefix, in every namespace.
func (e *Executor) list(ctx context.Context, prefix string) ([]*nomadapi.JobListStub, error) {
	q := &nomadapi.QueryOptions{Namespace: allNamespaces, Prefix: prefix, Params: map[string]string{"meta": "true"}}
	stubs, _, err := e.client.Jobs().List(q.WithContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("list jobs: %w: %w", ErrNomad, err)
	}
	return stubs, nil
}

// isNotFound reports whether err is Nomad's answer 404.
func isNotFound(err error) bool {
	var ue nomadapi.UnexpectedResponseError
	return errors.As(err, &ue) && ue.StatusCode() == http.StatusNotFound
}

// allocStatusFromStub converts an allocation list entry as the watch converts an event's
// allocation.
func allocStatusFromStub(a *nomadapi.AllocationListStub) AllocStatus {
	return allocEvent{
		ID: a.ID, JobID: a.JobID, Namespace: a.Namespace, NodeID: a.NodeID, NodeName: a.NodeName,
		ClientStatus: a.ClientStatus, DesiredStatus: a.DesiredStatus, TaskStates: a.TaskStates,
		CreateIndex: a.CreateIndex, ModifyIndex: a.ModifyIndex,
	}.status()
}

// setTask fills in the task's state from the allocation's task states: TaskName's, or the
// only one there is in a job dagflow did not build.
func (s *AllocStatus) setTask(states map[string]*nomadapi.TaskState) {
	ts := states[TaskName]
	if ts == nil && len(states) == 1 {
		for _, only := range states {
			ts = only
		}
	}
	if ts == nil {
		return
	}
	s.TaskState, s.Failed = ts.State, ts.Failed
	s.StartedAt, s.FinishedAt = ts.StartedAt, ts.FinishedAt
	// The message is the exit if there was one, else the last error (a driver or setup
	// failure), else the event that failed the task ("Not Restarting"), else the last event.
	var terminated, failed, errored, last *nomadapi.TaskEvent
	for i := len(ts.Events) - 1; i >= 0; i-- {
		ev := ts.Events[i]
		if ev == nil {
			continue
		}
		if last == nil {
			last = ev
		}
		if terminated == nil && ev.Type == nomadapi.TaskTerminated {
			terminated = ev
		}
		if errored == nil && hasError(ev) {
			errored = ev
		}
		if failed == nil && (ev.FailsTask || ev.Details["fails_task"] == "true") {
			failed = ev
		}
	}
	if terminated != nil {
		s.Exited = true
		s.ExitCode = detailInt(terminated, "exit_code", terminated.ExitCode)
		s.Signal = detailInt(terminated, "signal", terminated.Signal)
	}
	for _, ev := range []*nomadapi.TaskEvent{terminated, errored, failed, last} {
		if ev != nil {
			s.Message = ev.DisplayMessage
			break
		}
	}
}

// hasError reports whether a task event reports an error: driver_error, setup_error,
// download_error, validation_error and the like among its details.
func hasError(ev *nomadapi.TaskEvent) bool {
	for k, v := range ev.Details {
		if strings.HasSuffix(k, "_error") && v != "" {
			return true
		}
	}
	return false
}

// detailInt returns the integer under key in a task event's details, else def.
func detailInt(ev *nomadapi.TaskEvent, key string, def int) int {
	if v, ok := ev.Details[key]; ok {
		if n, err := strconv.Atoi(v); err == nil {
			return n
		}
	}
	return def
}
