package state_test

import (
	"context"
	"testing"
	"time"

	consulapi "github.com/hashicorp/consul/api"

	"github.com/dagflow/dagflow/state"
	"github.com/dagflow/dagflow/state/statetest"
)

// TestWaitChange waits on a real Consul: a prefix that never held a key and a key that
// exists do not answer when other keys are written, but do when a key appears under the
// prefix, when the key is deleted, and when the prefix is emptied by a delete.
func TestWaitChange(t *testing.T) {
	newStore, _, client := statetest.Stores(t)
	s := newStore(t)
	ctx := context.Background()
	kv := client.KV()
	put := func(key string) {
		t.Helper()
		if _, err := kv.Put(&consulapi.KVPair{Key: s.Prefix() + key, Value: []byte("x")}, nil); err != nil {
			t.Fatal(err)
		}
	}
	del := func(key string) {
		t.Helper()
		if _, err := kv.Delete(s.Prefix()+key, nil); err != nil {
			t.Fatal(err)
		}
	}
	// now is the index to wait from: every watch answers with it or less.
	now := func() uint64 {
		t.Helper()
		i, err := s.WaitChange(ctx, 0, time.Second, s.DeliveriesWatch())
		if err != nil {
			t.Fatal(err)
		}
		return i
	}
	// during waits on w from index while change runs, answering what WaitChange returned.
	during := func(w state.Watch, index uint64, change func()) uint64 {
		t.Helper()
		got := make(chan uint64, 1)
		go func() {
			i, err := s.WaitChange(ctx, index, 3*time.Second, w)
			if err != nil {
				t.Error(err)
			}
			got <- i
		}()
		time.Sleep(300 * time.Millisecond)
		change()
		return <-got
	}
	elsewhere := func() { put("elsewhere/a"); put("elsewhere/b") }

	put("catalog/head")
	index := now()
	if got := during(s.DeliveriesWatch(), index, elsewhere); got != index {
		t.Errorf("a prefix that never held a key answered %d after writes elsewhere, want %d (no change)", got, index)
	}
	index = now()
	if got := during(s.CatalogWatch(), index, elsewhere); got != index {
		t.Errorf("an existing key answered %d after writes elsewhere, want %d (no change)", got, index)
	}
	index = now()
	if got := during(s.DeliveriesWatch(), index, func() { put("deliveries/d1") }); got <= index {
		t.Errorf("a prefix a key was written under answered %d, want more than %d", got, index)
	}
	index = now()
	if got := during(s.DeliveriesWatch(), index, func() { del("deliveries/d1") }); got <= index {
		t.Errorf("a prefix emptied by a delete answered %d, want more than %d", got, index)
	}
	index = now()
	if got := during(s.DeliveriesWatch(), index, elsewhere); got != index {
		t.Errorf("a prefix emptied before the wait answered %d after writes elsewhere, want %d", got, index)
	}
	index = now()
	if got := during(s.CatalogWatch(), index, func() { del("catalog/head") }); got <= index {
		t.Errorf("a deleted key answered %d, want more than %d", got, index)
	}
}
