package engine_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	consulapi "github.com/hashicorp/consul/api"
	"github.com/hashicorp/go-hclog"

	"github.com/dagflow/dagflow/consullock"
	"github.com/dagflow/dagflow/engine"
	"github.com/dagflow/dagflow/internal/syncbuf"
	"github.com/dagflow/dagflow/rules"
	"github.com/dagflow/dagflow/state"
)

// TestLostStopsCallsInFlight: a leader cut off from Consul has a fenced write in flight that
// gets no answer (a partition drops its packets; only the call's own timeout, 30 s, would end
// it). When the leadership is lost meanwhile (its Lost channel closes: after
// consullock.Config.UnreachableGrace), the engine stops at once, the write abandoned, rather
// than once the write times out: leader-only work stops when the lost channel closes.
func TestLostStopsCallsInFlight(t *testing.T) {
	t.Parallel()
	fence := &partitionedFence{lost: make(chan struct{}), stalled: make(chan struct{})}
	_, nomad := agents(t)
	s := newStackWith(t, engine.Config{}, nomad, func(ld engine.Fence) engine.Fence {
		fence.Fence = ld
		return fence
	})
	s.apply(`dag "cut" {
  start_date = "2026-01-01"
  task "t" {
    command = "/bin/true"
  }
}
`)
	fence.cut.Store(true)
	id := rules.RunID(rules.RunManual, time.Now())
	if err := s.store.Submit(context.Background(), &state.Request{Kind: state.RequestTrigger, DAG: "cut", RunID: id}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-fence.stalled:
	case <-time.After(30 * time.Second):
		t.Fatal("the engine wrote nothing for the trigger within 30 s")
	}
	at := time.Now()
	fence.lose(fmt.Errorf("%w: no answer from consul for 10s", consullock.ErrLost))
	var err error
	select {
	case err = <-s.done:
	case <-time.After(10 * time.Second):
		t.Fatal("the engine still runs 10 s after its leadership was lost, its write in flight")
	}
	took := time.Since(at)
	s.cancel()
	s.cancel = nil // stopped: the cleanup must not wait for it again
	if !errors.Is(err, consullock.ErrLost) {
		t.Errorf("engine stopped with %v, want an error wrapping ErrLost", err)
	}
	if took > 2*time.Second {
		t.Errorf("the engine stopped %s after its leadership was lost; want at once", took)
	}
}

// partitionedFence writes through the leadership until cut is set; from then on a write gets
// no answer until its context ends, as when a partition drops every packet. The first such
// write closes stalled. lose marks the leadership lost, as consullock does when Consul has not
// answered for its grace period.
type partitionedFence struct {
	engine.Fence
	cut     atomic.Bool
	stalled chan struct{}
	stall   sync.Once

	lost     chan struct{}
	loseOnce sync.Once
	err      error
}

func (f *partitionedFence) Txn(ctx context.Context, ops consulapi.TxnOps) (*consulapi.TxnResponse, error) {
	if !f.cut.Load() {
		return f.Fence.Txn(ctx, ops)
	}
	f.stall.Do(func() { close(f.stalled) })
	<-ctx.Done()
	return nil, fmt.Errorf("txn: %w", ctx.Err())
}

func (f *partitionedFence) lose(err error) {
	f.loseOnce.Do(func() {
		f.err = err
		close(f.lost)
	})
}

func (f *partitionedFence) Lost() <-chan struct{} { return f.lost }

func (f *partitionedFence) Err() error {
	select {
	case <-f.lost:
		return f.err
	default:
		return nil
	}
}

// TestRegistrationWithinLockDelay: with the sessions' lock-delay known, a job registration is
// written only within it of a confirmation that the lock is held, after which no other
// instance can hold it yet. While confirmations take longer than that (a Consul that answers
// late, as to a leader being cut off), no job is registered; once they are quick again, the
// try is registered and runs.
func TestRegistrationWithinLockDelay(t *testing.T) {
	t.Parallel()
	fence := &slowFence{}
	fence.slow.Store(true)
	_, nomad := agents(t)
	logs := &syncbuf.Buffer{}
	cfg := engine.Config{LockDelay: 300 * time.Millisecond, Logger: hclog.New(&hclog.LoggerOptions{Level: hclog.Debug, Output: logs})}
	s := newStackWith(t, cfg, nomad, func(ld engine.Fence) engine.Fence {
		fence.Fence = ld
		return fence
	})
	s.apply(`dag "late" {
  start_date = "2026-01-01"
  task "t" {
    command = "/bin/true"
  }
}
`)
	id := s.trigger("late", nil)
	s.eventually(30*time.Second, "a registration held back", func() bool {
		return strings.Contains(logs.String(), "not registering on that")
	})
	if jobs := s.jobAllocs(); len(jobs) != 0 {
		t.Fatalf("jobs registered on confirmations older than the lock-delay: %v", jobs)
	}
	fence.slow.Store(false)
	if rec := s.waitRun("late", id, time.Minute); rec.Run.State != state.RunSuccess {
		t.Fatalf("run %s once confirmations were quick again, want success:\n%s", rec.Run.State, describe(rec))
	}
}

// slowFence writes through the leadership; while slow is set, a confirmation of the lock (an
// empty transaction) answers only after 400 ms.
type slowFence struct {
	engine.Fence
	slow atomic.Bool
}

func (f *slowFence) Txn(ctx context.Context, ops consulapi.TxnOps) (*consulapi.TxnResponse, error) {
	if len(ops) == 0 && f.slow.Load() {
		time.Sleep(400 * time.Millisecond)
	}
	return f.Fence.Txn(ctx, ops)
}
