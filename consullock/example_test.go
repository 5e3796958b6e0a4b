package consullock_test

import (
	"context"
	"errors"
	"log"
	"time"

	consulapi "github.com/hashicorp/consul/api"
	"github.com/hashicorp/go-hclog"

	"github.com/dagflow/dagflow/consullock"
)

// This example contends for leadership until ctx ends, runs leader-only work while it leads,
// and makes its writes with fenced transactions.
func ExampleLock_Acquire() {
	client, err := consulapi.NewClient(consulapi.DefaultConfig())
	if err != nil {
		log.Fatal(err)
	}
	lock, err := consullock.New(client, consullock.Config{
		Key:    "dagflow/leader",
		Value:  []byte("dagflow-host-1 http://10.0.0.1:8080"),
		Checks: []string{"service:dagflow-host-1"}, // the instance's own HTTP check
		Logger: hclog.Default(),
	})
	if err != nil {
		log.Fatal(err)
	}

	ctx := context.Background()
	for ctx.Err() == nil {
		ld, err := lock.Acquire(ctx)
		if err != nil {
			continue // ctx ended
		}
		// Leader-only work starts now, and stops when Lost closes.
		workCtx, stopWork := context.WithCancel(ctx)
		go func() {
			select {
			case <-ld.Lost():
			case <-workCtx.Done():
			}
			stopWork()
		}()
		for workCtx.Err() == nil {
			_, err := ld.Txn(workCtx, consulapi.TxnOps{{KV: &consulapi.KVTxnOp{
				Verb:  consulapi.KVSet,
				Key:   "dagflow/runs/nightly/2024-01-01",
				Value: []byte(`{"state":"queued"}`),
			}}})
			if errors.Is(err, consullock.ErrLost) {
				break // someone else leads now: nothing was written
			}
			time.Sleep(time.Second)
		}
		stopWork()
		rctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = ld.Release(rctx) // hands over at once; after a loss, makes sure the session is gone
		cancel()
	}
}
