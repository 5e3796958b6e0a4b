package bounded_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dagflow/dagflow/internal/bounded"
)

func TestRun(t *testing.T) {
	var running, most, done atomic.Int64
	var fns []func(context.Context) error
	for range 20 {
		fns = append(fns, func(context.Context) error {
			n := running.Add(1)
			for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
			}
			time.Sleep(5 * time.Millisecond)
			running.Add(-1)
			done.Add(1)
			return nil
		})
	}
	if err := bounded.Run(context.Background(), 3, fns); err != nil {
		t.Fatal(err)
	}
	if done.Load() != 20 || most.Load() > 3 {
		t.Errorf("ran %d of 20, at most %d at once; want all, at most 3", done.Load(), most.Load())
	}

	boom := errors.New("boom")
	err := bounded.Run(context.Background(), 2, []func(context.Context) error{
		func(context.Context) error { return boom },
		func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() },
	})
	if !errors.Is(err, boom) {
		t.Errorf("Run error = %v, want the first failure", err)
	}
}
