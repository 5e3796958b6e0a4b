// Package engine is the leader's work: it creates DAG runs on their schedules and on request,
// decides which task instances may run, runs each attempt as a Nomad job, follows the jobs
// through Nomad's event stream and records every outcome in Consul.
//
// # Exactly once
//
// Every record the engine writes (runs, task instances, logs, request results) is written in a
// fenced transaction of the leadership (consullock.Leadership.Txn), and an attempt is recorded
// as queued, under its deterministic Nomad job ID, before its job is submitted, create-only. So
// whichever leader submits an attempt, and however often, Nomad runs it once; and a leader
// whose lock is gone writes nothing more.
//
// A new leader starts from what Consul holds (Run reconciles before it schedules): each attempt
// recorded as queued or running is matched with its Nomad job: adopted when the job exists (the
// event stream's snapshot then says how it fares), submitted when it was recorded as queued but
// never registered, and failed, then retried as its task allows, when it was running and its job
// vanished. Stopping a try (a timeout, a clear, a mark, a cancel) is recorded on it before its
// job is stopped, so a new leader stops the job if the old one did not, and ends the try the
// same way.
//
// # Concurrency and failure
//
// Run owns all its state in one goroutine; Nomad calls and blocking Consul reads happen in
// helpers that report back to it. It returns when its context ends or the leadership is lost
// (either ends the calls in flight at once, and Run returns once its helpers have), and
// returns an error, after which the caller should give the leadership up and contend again,
// when a write to Consul failed for another reason: the engine then no longer knows what Consul
// holds, and a fresh Run starts over from it.
package engine

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	consulapi "github.com/hashicorp/consul/api"
	"github.com/hashicorp/go-hclog"

	"github.com/dagflow/dagflow/consullock"
	"github.com/dagflow/dagflow/hcl/spec"
	"github.com/dagflow/dagflow/internal/wait"
	"github.com/dagflow/dagflow/nomadexec"
	"github.com/dagflow/dagflow/schedule"
	"github.com/dagflow/dagflow/state"
)

// Defaults of Config.
const (
	// DefaultLogTail is how much of the end of a try's stdout, and of its stderr, is copied
	// into Consul when the try ends: enough for a stack trace and the lines before it, while
	// both, JSON-encoded, stay well under Consul's 512 KB value limit.
	DefaultLogTail = 64 << 10

	// MaxLogTail is the largest LogTail: two tails of it, base64-encoded in JSON, still fit in
	// one Consul value.
	MaxLogTail = 160 << 10

	// DefaultPurgeAfter is how long a finished try's Nomad job is kept before it is purged:
	// long enough to look at it with `nomad job status` right after it failed.
	DefaultPurgeAfter = 10 * time.Minute

	// GuardKeep is how long the tombstone of a purged job is kept (see nomadexec/guard.go):
	// a deposed leader's registration sent later than this after the purge would run the try
	// again. A day is beyond any freeze a process survives with its connections intact, and
	// keeps Nomad's state at one small variable per try of the last day.
	GuardKeep = 24 * time.Hour

	// guardSweepEvery is how often the leader deletes tombstones older than GuardKeep.
	guardSweepEvery = time.Hour

	// DefaultKeepRuns is how many finished runs per DAG stay in Consul: a few months of a
	// daily DAG, while a DAG's records stay a few megabytes at most.
	DefaultKeepRuns = 100
)

const (
	// tick is how often the engine looks at the clock: cron ticks, retry delays and timeouts
	// are noticed within it.
	tick = time.Second

	// nomadCalls bounds the Nomad registrations and stops in flight, and logCalls the log
	// reads, so a 500-task fan-out does not open 500 connections at once: Nomad refuses every
	// call from an address with more than 100 open (limits.http_max_conns_per_client), and the
	// event stream needs one too. Log reads have slots of their own so they never wait behind
	// registrations: each registration places an allocation, and a Nomad client over its
	// gc_max_allocs (50 by default) makes room by deleting finished allocations, logs and all.
	nomadCalls = 32
	logCalls   = 16

	// logAttempts bounds the reads of a finished try's logs; logBackoff is the wait before the
	// second, doubled before each further one. A Nomad that refuses calls for a moment (HTTP
	// 429) or a node slow to answer gets about 7 s, which is how much longer the try's outcome
	// then takes to be recorded.
	logAttempts = 4
	logBackoff  = time.Second

	// retryWait is how long the engine waits before repeating a Nomad call that failed.
	retryWait = 2 * time.Second

	// maxFenceWait bounds how old a confirmation of the lock may be when a job registration
	// goes out (see engine.register). Far above what a Consul read takes, far below the
	// default PurgeAfter.
	maxFenceWait = 30 * time.Second

	// blockedSecretGrace is how long a try's template may wait for a Nomad Variable before
	// the try fails. Nomad's client reports a template waiting after 3 s, also when it is
	// only slow to fetch (a busy client or server): ten times that tells a variable that
	// cannot be read from one on its way, and is short beside a task's timeout.
	blockedSecretGrace = 30 * time.Second

	// callTimeout bounds one Nomad or Consul call made for the engine.
	callTimeout = 30 * time.Second

	// requestTTL is how long a carried-out request whose requester never collected the result
	// is kept.
	requestTTL = 10 * time.Minute
)

// Fence is what the engine needs of the leadership: fenced writes, and word of its loss.
// *consullock.Leadership is one.
type Fence interface {
	Txn(ctx context.Context, ops consulapi.TxnOps) (*consulapi.TxnResponse, error)
	Lost() <-chan struct{}
	Err() error
}

// History is told of every run the engine wrote, and asked before a finished run leaves
// Consul, so retention never drops a run long-term history lacks: the engine deletes a run as
// soon as Archived says yes for it, which it says once. *history.Recorder is one. Its methods
// must not block.
type History interface {
	Changed(dag, id string)
	Archived(dag, id string) bool
}

// Config is what Run works with.
type Config struct {
	Store    *state.Store
	Executor *nomadexec.Executor
	Logger   hclog.Logger // nil: no logs
	Metrics  *Metrics     // nil: none
	History  History      // nil: none; finished runs beyond KeepRuns are deleted at once

	LogTail    int           // bytes of stdout, and of stderr, kept per try; 0: DefaultLogTail
	PurgeAfter time.Duration // how long after a try ended its job is purged; 0: DefaultPurgeAfter
	KeepRuns   int           // finished runs kept per DAG; 0: DefaultKeepRuns

	// LockDelay is the lock-delay of the leadership's sessions (consullock.Config.LockDelay):
	// a confirmation that the lock is held, asked at T, proves that no other instance can
	// take it before T + LockDelay, so every job registration is written within LockDelay of
	// one (see engine.register), and a leader cut off from Consul registers nothing once a
	// successor may hold the lock. Zero: not known; registrations are bounded by PurgeAfter
	// alone, which only keeps them from re-creating a purged job.
	LockDelay time.Duration

	// Callback deliveries (deliveries.go): calls of a webhook before its delivery fails, the
	// wait after the first failed call, how long ended deliveries are kept, and the address
	// of the dagflow UI that payloads link to ("": no link). Zero: the Default* values.
	DeliveryAttempts int
	DeliveryBackoff  time.Duration
	DeliveryKeep     time.Duration
	UIAddress        string
}

// ErrConfig is wrapped by errors about a Config Run cannot work with.
var ErrConfig = errors.New("invalid engine config")

// Run does the leader's work until ctx ends (it returns nil) or the leadership is lost (it
// returns the loss). See the package documentation.
//
// The loss ends every call in flight at once, as the end of ctx does: a leader cut off from
// Consul learns of its loss while its writes wait for answers that do not come, and it must
// not go on with its other work (Nomad calls, which do get through) until they time out.
func Run(ctx context.Context, cfg Config, fence Fence) error {
	if cfg.Store == nil || cfg.Executor == nil || fence == nil {
		return fmt.Errorf("%w: store, executor and fence are required", ErrConfig)
	}
	if cfg.LogTail == 0 {
		cfg.LogTail = DefaultLogTail
	}
	if cfg.LogTail < 0 || cfg.LogTail > MaxLogTail {
		return fmt.Errorf("%w: log tail %d bytes: want 1 to %d", ErrConfig, cfg.LogTail, MaxLogTail)
	}
	if cfg.PurgeAfter == 0 {
		cfg.PurgeAfter = DefaultPurgeAfter
	}
	if cfg.KeepRuns == 0 {
		cfg.KeepRuns = DefaultKeepRuns
	}
	cfg.DeliveryAttempts = cmp.Or(cfg.DeliveryAttempts, DefaultDeliveryAttempts)
	cfg.DeliveryBackoff = cmp.Or(cfg.DeliveryBackoff, DefaultDeliveryBackoff)
	cfg.DeliveryKeep = cmp.Or(cfg.DeliveryKeep, DefaultDeliveryKeep)
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	ctx, cancel := context.WithCancel(ctx)
	go func() {
		select {
		case <-fence.Lost():
			cancel()
		case <-ctx.Done():
		}
	}()
	e := &engine{
		cfg:      cfg,
		fence:    fence,
		store:    cfg.Store,
		exec:     cfg.Executor,
		log:      cfg.Logger,
		m:        cfg.Metrics,
		ctx:      ctx,
		paused:   map[string]state.Pause{},
		dags:     map[string]*dagInfo{},
		queues:   map[string]*spec.Queue{},
		versions: map[string]*spec.DAG{},
		runs:     map[runKey]*run{},
		cursor:   map[string]time.Time{},
		done:     map[string][]doneRun{},
		overfull: map[string]bool{},
		handled:  map[string]bool{},
		events:   make(chan func() error, 256),
		calls:    make(chan struct{}, nomadCalls),
		logCalls: make(chan struct{}, logCalls),

		sensorCalls: make(chan struct{}, sensorCalls),
	}
	defer func() {
		cancel()
		e.wg.Wait()
		e.m.setLeader(false)
		e.m.resetGauges()
	}()
	e.m.setLeader(true)
	err := e.run()
	if ctx.Err() != nil && fence.Err() == nil {
		return nil
	}
	if fence.Err() != nil {
		return fence.Err()
	}
	return err
}

// engine is the state of one Run.
type engine struct {
	cfg       Config
	fence     Fence
	lockCheck lockCheck // confirmations of the lock shared by job registrations
	store     *state.Store
	exec      *nomadexec.Executor
	log       hclog.Logger
	m         *Metrics
	ctx       context.Context

	catalog  *state.Catalog
	paused   map[string]state.Pause
	dags     map[string]*dagInfo    // the applied DAGs
	queues   map[string]*spec.Queue // the applied queues
	versions map[string]*spec.DAG   // every DAG version in use, by versionKey

	runs      map[runKey]*run      // runs not finished
	cursor    map[string]time.Time // per DAG: the end of the interval of its latest scheduled run
	done      map[string][]doneRun // per DAG: finished runs, oldest first
	overfull  map[string]bool      // DAGs with finished runs beyond KeepRuns that history lacks
	jobs      map[string]*jobRef   // job ID -> the try it runs, for tries queued or running
	perQueue  map[string]int       // tries in jobs per queue (see track)
	perDAG    map[string]int       // tries in jobs per DAG
	purges    []purge              // finished tries' jobs to purge, oldest first
	nextSweep time.Time            // when sweepGuards runs next
	handled   map[string]bool      // requests carried out in this Run
	polling   bool                 // a look at Nomad's blocked evaluations is under way
	nextPoll  time.Time            // when the next may start
	as        assetState           // assets and their consumers; see assets.go
	dl        deliveries           // callback deliveries; see deliveries.go

	recent map[string][]state.RunSummary // per DAG: its latest runs; see summary.go
	// unsummarized holds the DAGs whose summary changed since it was last written, and
	// summarizedAt when summaries were last written.
	unsummarized map[string]bool
	summarizedAt time.Time

	dirty []*run           // runs with records to write
	extra consulapi.TxnOps // other writes of this step (logs, deletions)
	after []afterWrite     // what to do once this step's writes are done
	now   time.Time        // the time of this step

	events   chan func() error // what helpers report, run in the loop; an error ends Run
	calls    chan struct{}     // a slot per Nomad registration or stop in flight; see nomadCalls
	logCalls chan struct{}     // a slot per log read in flight
	wg       sync.WaitGroup

	sensorCalls chan struct{} // a slot per sensor poke in flight; see sensors.go
}

type runKey struct{ dag, id string }

// run is a run not finished, with its task instances.
type run struct {
	rec   state.Run
	def   *spec.DAG    // the version it is pinned to
	order []*spec.Task // its tasks, upstream before downstream
	down  map[string][]string
	tasks map[string]*task
	isNew bool // not yet written
	// assetOps are written with the run's creation: what its DAG consumed (see assets.go).
	assetOps consulapi.TxnOps
	// deliveryOps are written with the run's record: the deliveries its change causes.
	deliveryOps consulapi.TxnOps
	dirty       bool // the run record needs writing
	queued      bool // in e.dirty
	// indexed is the state its run index entry was last written with ("" for none yet).
	indexed state.RunState
}

// task is one task instance of a run not finished.
type task struct {
	ti        state.TaskInstance
	spec      *spec.Task
	dirty     bool
	readyAt   time.Time        // when the trigger rule or retry delay let it run; in memory only
	finishing bool             // its job ended; the outcome is being collected
	assetOps  consulapi.TxnOps // written with its record: the asset events of its success
	// deliveryOps are written with its record: the deliveries its change causes.
	deliveryOps consulapi.TxnOps

	// Of a mapped task (see mapping.go): its instances, those of its latest expansion by key,
	// and each.value by key, read from its upstream's outputs when first needed.
	instances []*task
	keys      map[string]bool
	values    map[string]json.RawMessage
	mapped    *instanceOf // of an instance of a mapped task: its parent and key

	sensor sensorProgress // of a waiting sensor (see sensors.go)
}

// jobRef names the try a job runs.
type jobRef struct {
	run  *run
	task *task
	try  int

	// Of the try's placement (see placement.go), in memory only: whether Nomad gave its job an
	// allocation, and, if not, the class of the reason its blocked evaluation gave at this
	// leader's last look ("" when there was none).
	placed  bool
	blocked nomadexec.PlacementClass

	// Of a template waiting for a Nomad Variable (nomadexec.BlockedSecret), in memory only:
	// what the try fails with, and since when this leader has seen it wait.
	missing      string
	missingSince time.Time
}

// dagInfo is an applied DAG.
type dagInfo struct {
	entry state.Entry
	def   *spec.DAG
	sched *schedule.Schedule // nil for a DAG without schedule
	due   due                // when its next scheduled run can be due; see due.go
}

// doneRun is a finished run kept in Consul.
type doneRun struct {
	id          string
	logicalDate time.Time
	scheduled   bool
	state       state.RunState // as its index entry holds it
}

type purge struct {
	jobID string
	at    time.Time
}

// afterWrite is what to do once the record of task t is written, or, with a nil t, once every
// record of the step is.
type afterWrite struct {
	t *task
	f func()
}

func versionKey(dag, version string) string { return dag + "@" + version }

// run reconciles, then loops until ctx ends, the leadership is lost or a write fails.
func (e *engine) run() error {
	// A Consul or Nomad that does not answer now is waited for, with the lock held: giving it
	// up would only hand the same wait to a standby.
	for {
		err := e.reconcile()
		if err == nil {
			break
		}
		if e.ctx.Err() != nil || e.fence.Err() != nil {
			return err
		}
		e.m.apiError(apiOf(err))
		e.log.Warn("reconcile failed, retrying", "error", err)
		wait.Sleep(e.ctx, retryWait)
	}
	allocs := e.exec.Watch(e.ctx, 0)
	e.startWatches()
	ticker := time.NewTicker(tick)
	defer ticker.Stop()
	e.log.Info("scheduling", "runs", len(e.runs), "tries", len(e.jobs))
	for {
		if err := e.step(); err != nil {
			return err
		}
		select {
		case <-e.ctx.Done():
			return nil
		case <-e.fence.Lost():
			return e.fence.Err()
		case f := <-e.events:
			if err := f(); err != nil {
				return err
			}
		case u, ok := <-allocs:
			if !ok {
				return nil
			}
			e.onAlloc(u)
		case <-ticker.C:
		}
		// Take what else is waiting, so a burst of events costs one step and one write.
		for drained := false; !drained; {
			select {
			case f := <-e.events:
				if err := f(); err != nil {
					return err
				}
			case u, ok := <-allocs:
				if !ok {
					return nil
				}
				e.onAlloc(u)
			default:
				drained = true
			}
		}
	}
}

// apiOf says which API an error of reconcile came from, for the error metric.
func apiOf(err error) string {
	if errors.Is(err, nomadexec.ErrNomad) {
		return "nomad"
	}
	return "consul"
}

// report hands f to the loop, unless the engine is stopping.
func (e *engine) report(f func() error) {
	select {
	case e.events <- f:
	case <-e.ctx.Done():
	}
}

// acquire takes one of slots for a Nomad call, waiting for one; false when the engine stops
// first. release gives it back.
func (e *engine) acquire(slots chan struct{}) bool {
	select {
	case slots <- struct{}{}:
		return true
	case <-e.ctx.Done():
		return false
	}
}

func release(slots chan struct{}) { <-slots }

// retryLater runs f in the loop after retryWait, unless the engine stops first.
func (e *engine) retryLater(f func()) {
	e.spawn(func() {
		wait.Sleep(e.ctx, retryWait)
		e.report(func() error { f(); return nil })
	})
}

// spawn runs f in a helper goroutine the engine waits for when it stops.
func (e *engine) spawn(f func()) {
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		f()
	}()
}

// step advances everything that can advance now, writes what changed, then does what must
// wait for the write.
func (e *engine) step() error {
	e.now = time.Now().UTC()
	e.triggerOnAssets()
	e.scheduleRuns()
	for _, r := range e.sortedRuns() {
		if r.rec.State == state.RunRunning {
			e.evaluate(r)
		}
	}
	e.dispatch()
	e.pollPlacement()
	e.purgeDue()
	e.sweepGuards()
	e.checkDeadlines()
	e.deliverDue()
	for dag := range e.overfull {
		e.prune(dag)
	}
	if err := e.flush(); err != nil {
		return err
	}
	e.m.observe(e)
	return nil
}

// afterTask does f once the record of task t, which markTask queued, is written: as soon as
// the transaction holding it committed, before the step's further transactions, so that the
// first tries of a large fan-out are registered while the records of the others are written.
func (e *engine) afterTask(t *task, f func()) {
	e.after = append(e.after, afterWrite{t: t, f: f})
}

// afterFlush does f once every record of the step is written.
func (e *engine) afterFlush(f func()) {
	e.after = append(e.after, afterWrite{f: f})
}

// markRun queues run r's record for writing.
func (e *engine) markRun(r *run) {
	r.dirty = true
	e.queue(r)
}

// markTask queues task t of run r for writing.
func (e *engine) markTask(r *run, t *task) {
	t.dirty = true
	e.queue(r)
}

func (e *engine) queue(r *run) {
	if !r.queued {
		r.queued = true
		e.dirty = append(e.dirty, r)
	}
}

// flush writes every queued record in as few fenced transactions as fit Consul's limits, does
// what waited for each record once the transaction holding it committed (see afterTask), and
// the rest once all did, then tells history which runs changed.
func (e *engine) flush() error {
	var ops consulapi.TxnOps
	var changed []runKey
	at := map[*task]int{} // the index in ops of each task's record
	groups := e.as.groups // writes that share a transaction, before the others
	e.as.groups = nil
	for _, r := range e.dirty {
		changed = append(changed, runKey{r.rec.DAG, r.rec.ID})
		r.queued = false
		var err error
		if groups, err = e.deliveryGroups(r, groups); err != nil {
			return err
		}
		if groups, err = e.assetGroups(r, groups); err != nil {
			return err
		}
		if r.dirty || r.isNew {
			rops, err := e.runOps(r)
			if err != nil {
				return err
			}
			ops = append(ops, rops...)
			r.dirty, r.isNew = false, false
		}
		for _, t := range r.order {
			ti := r.tasks[t.Name]
			if !ti.dirty {
				continue
			}
			dropStaleReasons(&ti.ti)
			op, err := e.store.PutTaskOp(&ti.ti)
			if err != nil {
				return err
			}
			at[ti] = len(ops)
			ops = append(ops, op)
			ti.dirty = false
		}
	}
	sums, err := e.summaryOps()
	if err != nil {
		return err
	}
	ops = append(ops, sums...)
	e.dirty = e.dirty[:0]
	ops = append(ops, e.extra...)
	e.extra = nil
	after := e.after
	e.after = nil
	for _, g := range groups {
		if err := e.writeGroup(g); err != nil {
			return err
		}
	}
	err = e.write(ops, func(written int) {
		waiting := after[:0]
		for _, a := range after {
			if i, ok := at[a.t]; ok && i < written {
				a.f()
			} else {
				waiting = append(waiting, a)
			}
		}
		after = waiting
	})
	if err != nil {
		return err
	}
	for _, a := range after {
		a.f()
	}
	if e.cfg.History != nil {
		for _, k := range changed {
			e.cfg.History.Changed(k.dag, k.id)
		}
	}
	return nil
}

// write runs ops, in order, in as few fenced transactions as fit Consul's limits (one
// operation of each goes to the fence), and calls written (unless nil) after each transaction
// with the number of ops committed so far.
func (e *engine) write(ops consulapi.TxnOps, written func(n int)) error {
	n := 0
	for _, batch := range state.SplitTxn(ops, consullock.MaxTxnOps) {
		ctx, cancel := context.WithTimeout(e.ctx, callTimeout)
		_, err := e.fence.Txn(ctx, batch)
		cancel()
		e.m.kvWrite(batch, err)
		if err != nil {
			return fmt.Errorf("write state: %w", err)
		}
		n += len(batch)
		if written != nil {
			written(n)
		}
	}
	return nil
}
