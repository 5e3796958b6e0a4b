package engine

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	consulapi "github.com/hashicorp/consul/api"
)

// countingFence counts the lock confirmations asked of it and fails them while err is set.
type countingFence struct {
	calls atomic.Int32
	err   error
}

func (f *countingFence) Txn(context.Context, consulapi.TxnOps) (*consulapi.TxnResponse, error) {
	f.calls.Add(1)
	time.Sleep(5 * time.Millisecond) // a round trip, so concurrent askers overlap
	return &consulapi.TxnResponse{}, f.err
}
func (f *countingFence) Lost() <-chan struct{} { return nil }
func (f *countingFence) Err() error            { return nil }

func TestLockCheckShares(t *testing.T) {
	var c lockCheck
	f := &countingFence{}
	var wg sync.WaitGroup
	asked := make([]time.Time, 32)
	for i := range asked {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var err error
			if asked[i], err = c.confirm(context.Background(), f, time.Minute); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if n := f.calls.Load(); n != 1 {
		t.Fatalf("32 registrations within the reuse window asked %d confirmations, want 1", n)
	}
	for i, a := range asked {
		if !a.Equal(asked[0]) {
			t.Fatalf("registration %d got the confirmation of %v, want the shared one of %v", i, a, asked[0])
		}
	}
}

func TestLockCheckRenews(t *testing.T) {
	var c lockCheck
	f := &countingFence{}
	first, err := c.confirm(context.Background(), f, 0)
	if err != nil {
		t.Fatal(err)
	}
	second, err := c.confirm(context.Background(), f, 0)
	if err != nil {
		t.Fatal(err)
	}
	if f.calls.Load() != 2 || !second.After(first) {
		t.Fatalf("with no reuse window: %d confirmations, asked %v then %v; want 2, the second later", f.calls.Load(), first, second)
	}
}

func TestLockCheckFailureIsNotShared(t *testing.T) {
	var c lockCheck
	f := &countingFence{err: errors.New("lock lost")}
	if _, err := c.confirm(context.Background(), f, time.Minute); err == nil {
		t.Fatal("a failed confirmation confirmed the lock")
	}
	if _, err := c.confirm(context.Background(), f, time.Minute); err == nil || f.calls.Load() != 2 {
		t.Fatalf("after a failed confirmation the next registration got err %v after %d calls; want a new, failing call", err, f.calls.Load())
	}
}

// TestMaxFenceAge: a registration is bounded by the sessions' lock-delay once it is long
// enough to cover a Consul round trip and a Nomad call, else by half of PurgeAfter, and never
// by more than maxFenceWait.
func TestMaxFenceAge(t *testing.T) {
	for _, tt := range []struct {
		lockDelay, purgeAfter, want time.Duration
	}{
		{15 * time.Second, 10 * time.Minute, 15 * time.Second},          // Consul's default
		{minFenceLockDelay, 10 * time.Minute, minFenceLockDelay},        // the shortest that bounds
		{time.Millisecond, 10 * time.Minute, maxFenceWait},              // a test cluster's
		{0, 10 * time.Minute, maxFenceWait},                             // not known
		{time.Millisecond, 20 * time.Second, 10 * time.Second},          // half of PurgeAfter
		{time.Minute, 20 * time.Second, 10 * time.Second},               // PurgeAfter is the tighter
		{5 * time.Minute, 2 * time.Hour, maxFenceWait},                  // at most maxFenceWait
		{minFenceLockDelay - time.Millisecond, time.Hour, maxFenceWait}, // just under the floor
	} {
		e := &engine{cfg: Config{LockDelay: tt.lockDelay, PurgeAfter: tt.purgeAfter}}
		if got := e.maxFenceAge(); got != tt.want {
			t.Errorf("lock-delay %s, PurgeAfter %s: maxFenceAge = %s, want %s", tt.lockDelay, tt.purgeAfter, got, tt.want)
		}
	}
}
