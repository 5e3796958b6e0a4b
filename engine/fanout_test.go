package engine_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	consulapi "github.com/hashicorp/consul/api"
	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/dagflow/dagflow/consullock"
	"github.com/dagflow/dagflow/engine"
	"github.com/dagflow/dagflow/rules"
	"github.com/dagflow/dagflow/state"
)

// TestFanoutRegistersAsRecordsCommit: the tries of a fan-out whose records take more than one
// transaction are registered as soon as the transaction that recorded them as queued
// committed, while the others are written; and no job is registered before its try was
// recorded as queued.
func TestFanoutRegistersAsRecordsCommit(t *testing.T) {
	t.Parallel()
	const n = consullock.MaxTxnOps + 7 // two transactions of try records
	fence := &gatedFence{hold: 10 * time.Second, confirmed: make(chan struct{}), queued: map[string]time.Time{}}
	_, nomad := agents(t)
	s := newStackWith(t, engine.Config{}, nomad, func(ld engine.Fence) engine.Fence {
		fence.Fence = ld
		return fence
	})
	var src strings.Builder
	fmt.Fprintf(&src, "dag \"wide\" {\n  start_date = \"2026-01-01\"\n  max_active_tasks = %d\n  defaults {\n    command = \"/bin/true\"\n  }\n", n)
	for i := range n {
		fmt.Fprintf(&src, "  task \"t%02d\" {}\n", i)
	}
	src.WriteString("}\n")
	s.apply(src.String())

	id := s.trigger("wide", nil)
	rec := s.waitRun("wide", id, 3*time.Minute)
	if rec.Run.State != state.RunSuccess {
		t.Fatalf("run %s, want success:\n%s", rec.Run.State, describe(rec))
	}
	if fence.timedOut() {
		t.Errorf("no registration confirmed the lock within %s of the first transaction of try records: registrations waited for every record", fence.hold)
	}

	stubs, _, err := s.nomad.Jobs().List(&nomadapi.QueryOptions{Namespace: "*", Prefix: s.exec.Prefix()})
	if err != nil {
		t.Fatal(err)
	}
	if len(stubs) != n {
		t.Errorf("%d jobs, want %d", len(stubs), n)
	}
	for _, j := range stubs {
		queued, ok := fence.queuedAt(j.ID)
		switch submitted := time.Unix(0, j.SubmitTime); {
		case !ok:
			t.Errorf("job %s registered, but no transaction recorded its try as queued", j.ID)
		case !submitted.After(queued):
			t.Errorf("job %s registered at %s, before its try was recorded as queued at %s", j.ID, submitted, queued)
		}
	}
}

// gatedFence writes through the leadership, noting when each try was first recorded as
// queued, and holds the second transaction that records tries until a registration confirmed
// the lock (an empty transaction; see engine.register), for at most hold.
type gatedFence struct {
	engine.Fence
	hold      time.Duration
	confirmed chan struct{} // closed by the first empty transaction
	confirm   sync.Once

	mu     sync.Mutex
	writes int                  // transactions that recorded tries as queued
	held   bool                 // a transaction waited hold in vain
	queued map[string]time.Time // job ID -> when its try's record as queued committed
}

func (f *gatedFence) Txn(ctx context.Context, ops consulapi.TxnOps) (*consulapi.TxnResponse, error) {
	if len(ops) == 0 {
		f.confirm.Do(func() { close(f.confirmed) })
		return f.Fence.Txn(ctx, ops)
	}
	var jobs []string
	for _, op := range ops {
		var ti state.TaskInstance
		if op.KV == nil || !strings.Contains(op.KV.Key, "/tasks/") || json.Unmarshal(op.KV.Value, &ti) != nil {
			continue
		}
		if cur := ti.Current(); cur != nil && cur.State == rules.Queued {
			jobs = append(jobs, cur.JobID)
		}
	}
	if len(jobs) > 0 {
		f.mu.Lock()
		f.writes++
		second := f.writes == 2
		f.mu.Unlock()
		if second {
			select {
			case <-f.confirmed:
			case <-ctx.Done():
			case <-time.After(f.hold):
				f.mu.Lock()
				f.held = true
				f.mu.Unlock()
			}
		}
	}
	resp, err := f.Fence.Txn(ctx, ops)
	if err == nil {
		now := time.Now()
		f.mu.Lock()
		for _, id := range jobs {
			if _, seen := f.queued[id]; !seen {
				f.queued[id] = now
			}
		}
		f.mu.Unlock()
	}
	return resp, err
}

func (f *gatedFence) timedOut() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.held
}

func (f *gatedFence) queuedAt(jobID string) (time.Time, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	at, ok := f.queued[jobID]
	return at, ok
}
