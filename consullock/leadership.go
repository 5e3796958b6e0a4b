package consullock

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	consulapi "github.com/hashicorp/consul/api"
	"github.com/hashicorp/go-hclog"

	"github.com/dagflow/dagflow/internal/wait"
)

// Leadership is the lock held by this instance, from Lock.Acquire until it is lost or released.
//
// Leadership can be lost at any moment, and is noticed afterwards: Lost closes as soon as this
// instance learns of it, and all leader-only work must then stop. A Leadership never comes
// back; call Acquire again to contend anew. See the package documentation for what Consul
// does and when.
//
// A Leadership is safe for concurrent use.
type Leadership struct {
	lock   *Lock
	s      *session
	logger hclog.Logger

	lost     chan struct{} // closed once lost or released
	loseOnce sync.Once
	err      error // why it was lost, wrapping ErrLost; set before lost is closed

	ctx       context.Context // background work; cancelled by Release
	cancel    context.CancelFunc
	watchCtx  context.Context // the watches; cancelled on loss
	stopWatch context.CancelFunc
	contact   chan struct{}  // a watch got an answer from Consul
	wg        sync.WaitGroup // the supervisor and the watches

	errMu   sync.Mutex
	lastErr error // the last failure of a watch, reported when the grace period runs out

	cleanMu sync.Mutex
	cleaned bool // session released and destroyed
}

// lead returns the Leadership of session s, which has just acquired the key, and starts
// watching it.
func (l *Lock) lead(s *session) *Leadership {
	ld := &Leadership{
		lock:    l,
		s:       s,
		logger:  l.logger.With("session", s.id),
		lost:    make(chan struct{}),
		contact: make(chan struct{}, 1),
	}
	ld.ctx, ld.cancel = context.WithCancel(context.Background())
	ld.watchCtx, ld.stopWatch = context.WithCancel(ld.ctx)
	ld.wg.Add(3)
	go ld.supervise()
	go ld.watchKey()
	go ld.watchSession()
	return ld
}

// Session returns the ID of the Consul session holding the lock.
func (ld *Leadership) Session() string { return ld.s.id }

// Lost returns a channel closed when the leadership is lost, for any reason: the session was
// invalidated (a bound check turned critical, the TTL ran out, someone destroyed it), the key
// was taken, released or deleted, a fenced transaction was rejected, Consul did not answer for
// longer than Config.UnreachableGrace, or Release was called.
func (ld *Leadership) Lost() <-chan struct{} { return ld.lost }

// Err returns nil while the leadership is held, and afterwards an error wrapping ErrLost that
// says why it was lost.
func (ld *Leadership) Err() error {
	select {
	case <-ld.lost:
		return ld.err
	default:
		return nil
	}
}

// lose marks the leadership lost for the reason given, once; later calls do nothing.
func (ld *Leadership) lose(reason string, cause error) {
	ld.loseOnce.Do(func() {
		if cause != nil {
			ld.err = fmt.Errorf("%w: %s: %w", ErrLost, reason, cause)
			ld.logger.Warn("leadership lost", "reason", reason, "error", cause)
		} else {
			ld.err = fmt.Errorf("%w: %s", ErrLost, reason)
			if reason == reasonReleased {
				ld.logger.Info("leadership released")
			} else {
				ld.logger.Warn("leadership lost", "reason", reason)
			}
		}
		close(ld.lost)
	})
}

// reasonReleased is the loss reason of Release.
const reasonReleased = "released"

// Txn runs ops in one Consul transaction, fenced: it prepends a check-session operation on the
// lock key, so that Consul rejects the whole transaction when this session no longer holds the
// lock. At most MaxTxnOps operations; none may write the lock key. The response's Results and
// Errors are those of ops: the fence's result is removed and the operation indexes in Errors
// count from the first of ops.
//
// When Consul rejects the fence, the leadership is marked lost (Lost closes) and the error
// wraps ErrLost. Once the leadership is lost, Txn returns an error wrapping ErrLost without
// contacting Consul. When one of ops fails (a cas on a changed index, say), nothing is applied,
// the error wraps ErrTxnFailed and lists the failures, the response holds them, and the
// leadership is intact. Other errors leave the leadership as it is; when the request failed on
// the way (a timeout, a broken connection), the transaction may or may not have been applied,
// so read back before repeating a write that is not idempotent.
func (ld *Leadership) Txn(ctx context.Context, ops consulapi.TxnOps) (*consulapi.TxnResponse, error) {
	if err := ld.Err(); err != nil {
		return nil, fmt.Errorf("fenced txn: %w", err)
	}
	if len(ops) > MaxTxnOps {
		return nil, fmt.Errorf("fenced txn: %d ops, more than the %d allowed", len(ops), MaxTxnOps)
	}
	for i, op := range ops {
		if op == nil {
			return nil, fmt.Errorf("fenced txn: op %d is nil", i)
		}
		if op.KV != nil && writesKey(op.KV, ld.lock.cfg.Key) {
			return nil, fmt.Errorf("fenced txn: op %d (%s %q) would write the lock key", i, op.KV.Verb, op.KV.Key)
		}
	}
	fenced := make(consulapi.TxnOps, 0, len(ops)+1)
	fenced = append(fenced, &consulapi.TxnOp{KV: &consulapi.KVTxnOp{
		Verb:    consulapi.KVCheckSession,
		Key:     ld.lock.cfg.Key,
		Session: ld.s.id,
	}})
	fenced = append(fenced, ops...)
	// Consistent matters only when every op reads: Consul answers those without Raft, and a
	// stale fence check would be no fence.
	q := &consulapi.QueryOptions{RequireConsistent: true}
	ok, resp, _, err := ld.lock.client.Txn().Txn(fenced, q.WithContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("fenced txn: %w", err)
	}
	if ok {
		if len(resp.Results) > 0 && resp.Results[0].KV != nil && resp.Results[0].KV.Key == ld.lock.cfg.Key {
			resp.Results = resp.Results[1:]
		}
		return resp, nil
	}

	var fence string
	var failed consulapi.TxnErrors
	for _, e := range resp.Errors {
		if e.OpIndex == 0 {
			fence = e.What
			continue
		}
		failed = append(failed, &consulapi.TxnError{OpIndex: e.OpIndex - 1, What: e.What})
	}
	if fence != "" {
		ld.lose("fenced transaction rejected", errors.New(fence))
		return nil, fmt.Errorf("fenced txn: %w", ld.err)
	}
	resp.Results = nil
	resp.Errors = failed
	msgs := make([]string, 0, len(failed))
	for _, e := range failed {
		msgs = append(msgs, fmt.Sprintf("op %d: %s", e.OpIndex, e.What))
	}
	if len(msgs) == 0 {
		msgs = append(msgs, "consul gave no reason")
	}
	return resp, fmt.Errorf("fenced txn: %w: %s", ErrTxnFailed, strings.Join(msgs, "; "))
}

// writesKey reports whether op would change key.
func writesKey(op *consulapi.KVTxnOp, key string) bool {
	switch op.Verb {
	case consulapi.KVGet, consulapi.KVGetOrEmpty, consulapi.KVGetTree,
		consulapi.KVCheckSession, consulapi.KVCheckIndex, consulapi.KVCheckNotExists:
		return false
	case consulapi.KVDeleteTree:
		return strings.HasPrefix(key, op.Key)
	default:
		return op.Key == key
	}
}

// Release gives the lock up cleanly: it closes Lost, stops the watches, releases the key (so a
// standby's blocking query returns at once and takes it without lock-delay), then destroys the
// session. Stop leader-only work before calling it.
//
// Release is safe to call twice and after the leadership was lost: once the session is gone it
// returns nil without contacting Consul. When it fails (Consul unreachable, ctx ending), the
// leadership is lost all the same, a later Release tries again, and so does the next Acquire on
// the same Lock.
func (ld *Leadership) Release(ctx context.Context) error {
	ld.lose(reasonReleased, nil)
	ld.cancel()
	ld.wg.Wait()
	if err := ld.cleanup(ctx); err != nil {
		return fmt.Errorf("release lock %q: %w", ld.lock.cfg.Key, err)
	}
	return nil
}

// cleanup releases the key and destroys the session, once it succeeds.
func (ld *Leadership) cleanup(ctx context.Context) error {
	ld.cleanMu.Lock()
	defer ld.cleanMu.Unlock()
	if ld.cleaned {
		return nil
	}
	if err := ld.lock.destroy(ctx, ld.s); err != nil {
		return err
	}
	ld.cleaned = true
	return nil
}

// supervise marks the leadership lost when Consul has not answered for the grace period or the
// session's TTL ran out, and after a loss stops the watches and destroys the session. It
// returns early when Release is called, which does that itself.
func (ld *Leadership) supervise() {
	defer ld.wg.Done()
	grace := ld.lock.cfg.UnreachableGrace
	t := time.NewTimer(grace)
	defer t.Stop()
	expired := ld.s.expired
	for {
		select {
		case <-ld.ctx.Done():
			return
		case <-ld.contact:
			t.Reset(grace)
		case <-t.C:
			ld.lose(fmt.Sprintf("no answer from consul for %s", grace), ld.lastWatchErr())
		case <-expired:
			expired = nil
			ld.lose("session expired", nil)
		case <-ld.lost:
			ld.stopWatch()
			ctx, cancel := context.WithTimeout(ld.ctx, cleanupTimeout)
			err := ld.cleanup(ctx)
			cancel()
			if err != nil && ld.ctx.Err() == nil {
				ld.logger.Warn("destroy session after losing leadership failed; the next acquire retries", "error", err)
			}
			return
		}
	}
}

// touch records that Consul answered.
func (ld *Leadership) touch() {
	select {
	case ld.contact <- struct{}{}:
	default:
	}
}

// watchWait is the wait time of the watches' blocking queries: short enough that an idle
// watch answers several times within the grace period.
func (ld *Leadership) watchWait() time.Duration {
	return min(waitTime, ld.lock.cfg.UnreachableGrace/3)
}

// watchKey watches the lock key with blocking queries and marks the leadership lost as soon as
// the key is deleted or not held by this session.
func (ld *Leadership) watchKey() {
	defer ld.wg.Done()
	ctx := ld.watchCtx
	var index uint64
	for ctx.Err() == nil {
		q := &consulapi.QueryOptions{RequireConsistent: true, WaitIndex: index, WaitTime: ld.watchWait()}
		pair, meta, err := request(ld, ctx, func(ctx context.Context) (*consulapi.KVPair, *consulapi.QueryMeta, error) {
			return ld.lock.client.KV().Get(ld.lock.cfg.Key, q.WithContext(ctx))
		})
		switch {
		case err != nil:
			ld.retryWatch(ctx, "watch lock key", err)
			continue
		case pair == nil:
			ld.lose("lock key deleted", nil)
			return
		case pair.Session == "":
			ld.lose("lock key released", nil)
			return
		case pair.Session != ld.s.id:
			ld.lose("lock key held by session "+pair.Session, nil)
			return
		}
		index = nextIndex(index, meta.LastIndex)
	}
}

// watchSession watches the session with blocking queries and marks the leadership lost as soon
// as it is gone.
func (ld *Leadership) watchSession() {
	defer ld.wg.Done()
	ctx := ld.watchCtx
	var index uint64
	for ctx.Err() == nil {
		q := &consulapi.QueryOptions{RequireConsistent: true, WaitIndex: index, WaitTime: ld.watchWait()}
		entry, meta, err := request(ld, ctx, func(ctx context.Context) (*consulapi.SessionEntry, *consulapi.QueryMeta, error) {
			return ld.lock.client.Session().Info(ld.s.id, q.WithContext(ctx))
		})
		switch {
		case err != nil:
			ld.retryWatch(ctx, "watch session", err)
			continue
		case entry == nil:
			ld.lose("session invalidated", nil)
			return
		}
		index = nextIndex(index, meta.LastIndex)
	}
}

// request runs one blocking query of a watch with a deadline, so a Consul that accepts
// connections but never answers cannot hang the watch, and records the answer as contact.
func request[T any](ld *Leadership, ctx context.Context, do func(context.Context) (T, *consulapi.QueryMeta, error)) (T, *consulapi.QueryMeta, error) {
	wait := ld.watchWait()
	ctx, cancel := context.WithTimeout(ctx, wait+wait/16+ld.lock.cfg.UnreachableGrace)
	defer cancel()
	v, meta, err := do(ctx)
	if err == nil {
		ld.touch()
	}
	return v, meta, err
}

// retryWatch logs a failed watch request, unless the watch is stopping, and pauses before the
// next one. The grace period, not the number of failures, decides when this counts as a loss.
func (ld *Leadership) retryWatch(ctx context.Context, what string, err error) {
	if ctx.Err() != nil {
		return
	}
	ld.errMu.Lock()
	ld.lastErr = fmt.Errorf("%s: %w", what, err)
	ld.errMu.Unlock()
	ld.logger.Debug(what+" failed, retrying", "error", err)
	wait.Sleep(ctx, min(minBackoff*2, ld.lock.cfg.UnreachableGrace/4))
}

// lastWatchErr returns the last failure of a watch, nil if none failed.
func (ld *Leadership) lastWatchErr() error {
	ld.errMu.Lock()
	defer ld.errMu.Unlock()
	return ld.lastErr
}
