package history

import (
	"context"
	"errors"
	"testing"
	"time"

	consulapi "github.com/hashicorp/consul/api"

	"github.com/dagflow/dagflow/consullock"
	"github.com/dagflow/dagflow/internal/devstack"
	"github.com/dagflow/dagflow/state"
)

// TestDeposedLeaderWritesNothing: a leader that lost its lock without noticing yet writes late
// history. Its write is refused, and it cannot claim a newer epoch, since that write is fenced
// by the lock it lost.
func TestDeposedLeaderWritesNothing(t *testing.T) {
	ctx := context.Background()
	consul := devstack.StartConsulT(t)
	pg := devstack.StartPostgresT(t)
	url, err := pg.CreateDatabase(ctx, "fence")
	if err != nil {
		t.Fatal(err)
	}
	db, err := Open(url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	client, err := consulapi.NewClient(&consulapi.Config{Address: consul.HTTPAddr})
	if err != nil {
		t.Fatal(err)
	}
	store, err := state.New(client, "fence/")
	if err != nil {
		t.Fatal(err)
	}
	lock := func() *consullock.Leadership {
		l, err := consullock.New(client, consullock.Config{Key: "fence/leader", LockDelay: time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		ld, err := l.Acquire(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return ld
	}
	writerOf := func(ld *consullock.Leadership) *writer {
		r := NewRecorder(RecorderConfig{DB: db, Store: store})
		return &writer{Recorder: r, ld: ld, logFails: map[TryKey]int{}}
	}
	run := func(st state.RunState) []Entry {
		rec := &state.RunRecord{Run: state.Run{DAG: "etl", ID: "r1", Version: "v1", State: st, CreatedAt: time.Now()}, Tasks: map[string]*state.TaskInstance{}}
		return []Entry{{Run: rec, Digest: Digest(rec)}}
	}

	old := writerOf(lock())
	if err := old.write(ctx, run(state.RunRunning)); err != nil {
		t.Fatal(err)
	}
	// The old leader's session is destroyed behind its back; another leader takes over and
	// records the run's end.
	if _, err := client.Session().Destroy(old.ld.Session(), nil); err != nil {
		t.Fatal(err)
	}
	next := writerOf(lock())
	if err := next.write(ctx, run(state.RunSuccess)); err != nil {
		t.Fatal(err)
	}
	if next.epoch <= old.epoch {
		t.Fatalf("the new leader's epoch %d is not above the old one's %d", next.epoch, old.epoch)
	}

	err = old.write(ctx, run(state.RunFailed))
	if !errors.Is(err, consullock.ErrLost) {
		t.Fatalf("late write of the deposed leader: %v; want its claim refused with ErrLost", err)
	}
	rec, err := db.Run(ctx, "etl", "r1")
	if err != nil || rec.Run.State != state.RunSuccess {
		t.Fatalf("after the deposed leader's late write, run = %+v, %v; want success as the leader wrote", rec, err)
	}
	if e, err := db.Epoch(ctx); err != nil || e != next.epoch {
		t.Errorf("fence epoch %d, %v; want the leader's %d", e, err, next.epoch)
	}
}
