package history

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	consulapi "github.com/hashicorp/consul/api"
	"github.com/hashicorp/go-hclog"

	"github.com/dagflow/dagflow/internal/wait"
	"github.com/dagflow/dagflow/nomadexec"
	"github.com/dagflow/dagflow/state"
)

const (
	// batchRuns bounds the runs one transaction records.
	batchRuns = 64
	// batchLogBytes bounds the log bytes one transaction carries; runs beyond it wait for
	// the next.
	batchLogBytes = 64 << 20
	// pass is the least time between two batches: changes to a busy run within it are
	// recorded together, once.
	pass = 500 * time.Millisecond
	// minBackoff and maxBackoff bound the wait before trying again after a failure.
	minBackoff = time.Second
	maxBackoff = 30 * time.Second
	// callTimeout bounds one call to Consul, Nomad or PostgreSQL.
	callTimeout = 30 * time.Second
	// logAttempts bounds the failed reads of a try's logs from Nomad (the allocation's node
	// down, say) before history settles for the tail Consul keeps.
	logAttempts = 3
)

// Leadership is what the Recorder needs of the leadership: fenced Consul writes to claim an
// epoch, the session for the fence row, and word of its loss. *consullock.Leadership is one.
type Leadership interface {
	Txn(ctx context.Context, ops consulapi.TxnOps) (*consulapi.TxnResponse, error)
	Session() string
	Lost() <-chan struct{}
	Err() error
}

// LogReader reads the last max bytes of an allocation's stdout and stderr; an error wrapping
// nomadexec.ErrNotFound when Nomad no longer has it. *nomadexec.Executor is one.
type LogReader interface {
	Logs(ctx context.Context, allocID string, max int) (stdout, stderr []byte, err error)
}

// RecorderConfig is what a Recorder works with.
type RecorderConfig struct {
	DB          *DB
	Store       *state.Store
	Logs        LogReader
	Logger      hclog.Logger // nil: no logs
	MaxLogBytes int          // of each stream per try; 0: DefaultMaxLogBytes
}

// Recorder records the runs the engine changed into history. It is the leader's: one per
// leadership, told of changes by Changed and asked by the engine's retention, through
// Archived, whether a finished run may leave Consul.
//
// Run does the recording. Changed and Archived are safe to call from any goroutine at any time,
// before and after Run; they never block on Consul, Nomad or PostgreSQL.
//
// # Failure
//
// A batch that fails (PostgreSQL down, Nomad not answering for logs) is tried again after a
// backoff of up to 30 s, with the runs changed meanwhile. Nothing is dropped: the runs waiting
// are names, read again from Consul when their turn comes.
type Recorder struct {
	cfg  RecorderConfig
	log  hclog.Logger
	wake chan struct{}

	mu       sync.Mutex
	dirty    map[RunKey]bool // changed since last recorded
	archived map[RunKey]bool // finished, every try finished, and recorded as Consul holds it
}

// NewRecorder returns a Recorder; Run starts it.
func NewRecorder(cfg RecorderConfig) *Recorder {
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	if cfg.MaxLogBytes == 0 {
		cfg.MaxLogBytes = DefaultMaxLogBytes
	}
	return &Recorder{
		cfg:      cfg,
		log:      cfg.Logger,
		wake:     make(chan struct{}, 1),
		dirty:    map[RunKey]bool{},
		archived: map[RunKey]bool{},
	}
}

// Changed says that run id of dag changed in Consul: it is recorded again, and not archived
// until it is.
func (r *Recorder) Changed(dag, id string) {
	k := RunKey{dag, id}
	r.mu.Lock()
	r.dirty[k] = true
	delete(r.archived, k)
	r.mu.Unlock()
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Archived reports whether history holds the finished run id of dag as Consul does, so Consul
// may let it go. A true answer is given once: the engine deletes the run when it gets it, so
// the Recorder forgets the run then, and holds no more names than Consul holds runs.
func (r *Recorder) Archived(dag, id string) bool {
	k := RunKey{dag, id}
	r.mu.Lock()
	defer r.mu.Unlock()
	ok := r.archived[k]
	delete(r.archived, k)
	return ok
}

// Run records every run Consul holds that history lacks or holds otherwise, then the runs
// Changed names, until ctx ends (it returns nil) or the leadership is lost (it returns the
// loss).
func (r *Recorder) Run(ctx context.Context, ld Leadership) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-ld.Lost():
			cancel()
		case <-ctx.Done():
		}
	}()
	w := &writer{Recorder: r, ld: ld, logFails: map[TryKey]int{}}
	backoff := minBackoff
	failing := false
	var pending []*state.RunRecord
	initial := true
	for ctx.Err() == nil {
		var err error
		if initial {
			// Everything Consul holds, once: what changed while no leader recorded.
			cctx, ccancel := context.WithTimeout(ctx, callTimeout)
			pending, err = r.cfg.Store.AllRuns(cctx)
			ccancel()
			if err == nil {
				initial = false
			}
		}
		if err == nil {
			if len(pending) == 0 {
				pending, err = r.takeDirty(ctx)
			}
		}
		if err == nil && len(pending) > 0 {
			var rest []*state.RunRecord
			rest, err = w.record(ctx, pending)
			pending = rest
		}
		if ld.Err() != nil {
			return ld.Err()
		}
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			if !failing {
				r.log.Warn("history not recorded; scheduling goes on, and history catches up once it can", "error", err)
				failing = true
			} else {
				r.log.Debug("history still not recorded", "error", err, "retry_in", backoff)
			}
			// The runs of a failed batch wait as names: read again when their turn comes.
			for _, rec := range pending {
				r.mark(RunKey{rec.Run.DAG, rec.Run.ID})
			}
			pending = nil
			wait.Sleep(ctx, backoff)
			backoff = min(2*backoff, maxBackoff)
			continue
		}
		if failing {
			r.log.Info("history recording again")
			failing = false
		}
		backoff = minBackoff
		if len(pending) > 0 {
			continue
		}
		wait.Sleep(ctx, pass)
		r.mu.Lock()
		idle := len(r.dirty) == 0
		r.mu.Unlock()
		if idle {
			select {
			case <-ctx.Done():
			case <-r.wake:
			}
		}
	}
	if ld.Err() != nil {
		return ld.Err()
	}
	return nil
}

// mark queues k for recording without touching its archived flag.
func (r *Recorder) mark(k RunKey) {
	r.mu.Lock()
	r.dirty[k] = true
	r.mu.Unlock()
}

// takeDirty takes up to batchRuns changed runs and reads them from Consul. Runs Consul no
// longer holds are skipped: they were recorded before retention let them go.
func (r *Recorder) takeDirty(ctx context.Context) ([]*state.RunRecord, error) {
	r.mu.Lock()
	keys := make([]RunKey, 0, min(len(r.dirty), batchRuns))
	for k := range r.dirty {
		keys = append(keys, k)
		delete(r.dirty, k)
		if len(keys) == batchRuns {
			break
		}
	}
	r.mu.Unlock()
	var recs []*state.RunRecord
	for i, k := range keys {
		cctx, cancel := context.WithTimeout(ctx, callTimeout)
		rec, err := r.cfg.Store.RunRecord(cctx, k.DAG, k.ID)
		cancel()
		if errors.Is(err, state.ErrNotFound) {
			continue
		}
		if err != nil {
			for _, k := range keys[i:] {
				r.mark(k)
			}
			for _, rec := range recs {
				r.mark(RunKey{rec.Run.DAG, rec.Run.ID})
			}
			return nil, err
		}
		recs = append(recs, rec)
	}
	return recs, nil
}

// writer records batches for one Run.
type writer struct {
	*Recorder
	ld       Leadership
	epoch    uint64         // 0 until claimed
	logFails map[TryKey]int // failed reads of a try's logs from Nomad
}

// record writes the runs of recs that history lacks or holds otherwise, with the logs of
// their tries finished since, in one fenced transaction; it returns the runs left for the next
// batch, beyond its size.
func (w *writer) record(ctx context.Context, recs []*state.RunRecord) (rest []*state.RunRecord, err error) {
	if len(recs) > batchRuns {
		recs, rest = recs[:batchRuns], recs[batchRuns:]
	}
	keys := make([]RunKey, len(recs))
	for i, rec := range recs {
		keys[i] = RunKey{rec.Run.DAG, rec.Run.ID}
	}
	cctx, cancel := context.WithTimeout(ctx, callTimeout)
	digests, err := w.cfg.DB.Digests(cctx, keys)
	cancel()
	if err != nil {
		return append(recs, rest...), err
	}
	var changed []Entry
	var done []RunKey // recorded, finished runs
	for i, rec := range recs {
		d := Digest(rec)
		if digests[keys[i]] == d {
			if finished(rec) {
				done = append(done, keys[i])
			}
			continue
		}
		changed = append(changed, Entry{Run: rec, Digest: d})
	}
	if len(changed) > 0 {
		var later []*state.RunRecord
		changed, later, err = w.addLogs(ctx, changed)
		rest = append(later, rest...)
		if err != nil {
			return append(recs, rest...), err
		}
		if err := w.write(ctx, changed); err != nil {
			for _, e := range changed {
				rest = append(rest, e.Run)
			}
			return rest, err
		}
		for _, e := range changed {
			if finished(e.Run) {
				done = append(done, RunKey{e.Run.Run.DAG, e.Run.Run.ID})
			}
		}
	}
	w.mu.Lock()
	for _, k := range done {
		// Changed since it was read: what was recorded is not what Consul holds.
		if !w.dirty[k] {
			w.archived[k] = true
		}
	}
	w.mu.Unlock()
	return rest, nil
}

// addLogs reads the logs of the tries of entries that finished and history lacks the logs of:
// the whole output from Nomad, or the tail Consul keeps when Nomad no longer has the
// allocation. Entries beyond batchLogBytes are returned as later.
func (w *writer) addLogs(ctx context.Context, entries []Entry) (out []Entry, later []*state.RunRecord, err error) {
	keys := make([]RunKey, len(entries))
	for i, e := range entries {
		keys[i] = RunKey{e.Run.Run.DAG, e.Run.Run.ID}
	}
	cctx, cancel := context.WithTimeout(ctx, callTimeout)
	logged, err := w.cfg.DB.LoggedTries(cctx, keys)
	cancel()
	if err != nil {
		return nil, nil, err
	}
	size := 0
	for i, e := range entries {
		if size > batchLogBytes {
			for _, e := range entries[i:] {
				later = append(later, e.Run)
			}
			break
		}
		r := e.Run.Run
		for _, name := range sortedTasks(e.Run) {
			for _, tr := range e.Run.Tasks[name].Tries {
				if !tr.State.Finished() || logged[TryKey{r.DAG, r.ID, name, tr.Try}] {
					continue
				}
				l, err := w.tryLogs(ctx, r.DAG, r.ID, name, tr)
				if err != nil {
					return nil, nil, err
				}
				l.Task, l.Try = name, tr.Try
				e.Logs = append(e.Logs, *l)
				size += len(l.Stdout) + len(l.Stderr)
			}
		}
		out = append(out, e)
	}
	return out, later, nil
}

// tryLogs reads the output of one finished try.
func (w *writer) tryLogs(ctx context.Context, dag, run, task string, tr state.Try) (*TryLogs, error) {
	if tr.AllocID != "" {
		cctx, cancel := context.WithTimeout(ctx, callTimeout)
		// One byte more than kept tells whether the output was longer.
		stdout, stderr, err := w.cfg.Logs.Logs(cctx, tr.AllocID, w.cfg.MaxLogBytes+1)
		cancel()
		if err == nil {
			l := &TryLogs{Stdout: stdout, Stderr: stderr, Source: LogSourceNomad}
			if len(l.Stdout) > w.cfg.MaxLogBytes {
				l.Stdout, l.Truncated = l.Stdout[len(l.Stdout)-w.cfg.MaxLogBytes:], true
			}
			if len(l.Stderr) > w.cfg.MaxLogBytes {
				l.Stderr, l.Truncated = l.Stderr[len(l.Stderr)-w.cfg.MaxLogBytes:], true
			}
			return l, nil
		}
		k := TryKey{dag, run, task, tr.Try}
		if !errors.Is(err, nomadexec.ErrNotFound) {
			if w.logFails[k]++; w.logFails[k] < logAttempts {
				return nil, fmt.Errorf("read logs of %s/%s/%s try %d: %w", dag, run, task, tr.Try, err)
			}
			w.log.Warn("logs not read from nomad; history keeps the tail in consul", "dag", dag, "run_id", run, "task", task, "try", tr.Try, "error", err)
		}
		delete(w.logFails, k)
	}
	// Nomad no longer has the allocation, or the try never had one: what Consul kept is all.
	l := &TryLogs{Source: LogSourceConsul}
	if tr.Logs {
		cctx, cancel := context.WithTimeout(ctx, callTimeout)
		kept, err := w.cfg.Store.Logs(cctx, dag, run, task, tr.Try)
		cancel()
		if err != nil && !errors.Is(err, state.ErrNotFound) {
			return nil, err
		}
		if err == nil {
			l.Stdout, l.Stderr, l.Truncated = kept.Stdout, kept.Stderr, kept.Truncated
		}
	}
	return l, nil
}

// write records entries under this leadership's epoch, claiming one first. Refused because a
// newer epoch wrote, it claims a newer one, with a write fenced by the lock: a deposed leader
// cannot, and stops.
func (w *writer) write(ctx context.Context, entries []Entry) error {
	for attempt := 0; ; attempt++ {
		if w.epoch == 0 {
			if err := w.claim(ctx); err != nil {
				return err
			}
		}
		cctx, cancel := context.WithTimeout(ctx, callTimeout)
		err := w.cfg.DB.Record(cctx, Fence{Epoch: w.epoch, Session: w.ld.Session()}, entries)
		cancel()
		if !errors.Is(err, ErrDeposed) || attempt == 1 {
			return err
		}
		w.epoch = 0
	}
}

// claim raises the epoch in Consul above both Consul's and history's, fenced by the lock.
func (w *writer) claim(ctx context.Context) error {
	cctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	kv, index, err := w.cfg.Store.HistoryEpoch(cctx)
	if err != nil {
		return err
	}
	pg, err := w.cfg.DB.Epoch(cctx)
	if err != nil {
		return err
	}
	next := max(kv, pg) + 1
	if _, err := w.ld.Txn(cctx, consulapi.TxnOps{w.cfg.Store.SetHistoryEpochOp(next, index)}); err != nil {
		return fmt.Errorf("claim history epoch %d: %w", next, err)
	}
	w.epoch = next
	w.log.Debug("claimed history epoch", "epoch", next)
	return nil
}

// finished reports whether rec is over for good, unless cleared: the run finished and every
// try with it.
func finished(rec *state.RunRecord) bool {
	if !rec.Run.State.Finished() {
		return false
	}
	for _, ti := range rec.Tasks {
		for _, tr := range ti.Tries {
			if !tr.State.Finished() {
				return false
			}
		}
	}
	return true
}

func sortedTasks(rec *state.RunRecord) []string {
	names := make([]string, 0, len(rec.Tasks))
	for n := range rec.Tasks {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
