package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"time"

	consulapi "github.com/hashicorp/consul/api"

	"github.com/dagflow/dagflow/api"
	"github.com/dagflow/dagflow/internal/serverproc"
	"github.com/dagflow/dagflow/internal/wait"
)

// What the failover phase uses: an installation of its own, so that its KV writes are the
// only ones under its prefix.
const (
	failoverKVPrefix = "bench-fo/"
	failoverJobs     = "bfo-"
	failoverService  = "bench-fo"
	failoverDAG      = "bench_failover"
	failoverServers  = 3
	failoverTimeout  = time.Minute // the most one failover may take before the phase fails
)

// kvState is what one answer of the watch on the installation's KV prefix says: who holds the
// lock and the Raft indexes of the lock key and of the last write to any other key.
type kvState struct {
	At         time.Time // when the answer arrived
	Session    string    // the lock key's session; "" when nobody holds the lock
	LockIndex  uint64    // the lock key's ModifyIndex
	WriteIndex uint64    // the highest ModifyIndex of the other keys the engine writes
}

// readKVState summarizes a listing of the installation's prefix. The lock key, which the
// acquisition itself changes, and the requests/ keys, which any instance writes unfenced,
// are not writes of the leader's.
func readKVState(pairs consulapi.KVPairs, prefix string, at time.Time) kvState {
	st := kvState{At: at}
	lock, requests := prefix+"leader", prefix+"requests/"
	for _, p := range pairs {
		switch {
		case p.Key == lock:
			st.Session, st.LockIndex = p.Session, p.ModifyIndex
		case strings.HasPrefix(p.Key, requests):
		default:
			st.WriteIndex = max(st.WriteIndex, p.ModifyIndex)
		}
	}
	return st
}

// firstWrite returns the first state, at or after t0, that shows a write made while a
// session other than old held the lock: a holder other than old, and a write later than the
// lock key's last change (its acquisition). states must be in the order they arrived.
func firstWrite(states []kvState, t0 time.Time, old string) (kvState, bool) {
	for _, s := range states {
		if s.At.Before(t0) || s.Session == "" || s.Session == old {
			continue
		}
		if s.WriteIndex > s.LockIndex {
			return s, true
		}
	}
	return kvState{}, false
}

// firstHolder returns the first state, at or after t0, in which a session other than old
// holds the lock: the new leader's acquisition, as the watch saw it.
func firstHolder(states []kvState, t0 time.Time, old string) (kvState, bool) {
	for _, s := range states {
		if !s.At.Before(t0) && s.Session != "" && s.Session != old {
			return s, true
		}
	}
	return kvState{}, false
}

// kvWatch follows the installation's prefix with blocking queries and keeps every answer
// whose index changed.
type kvWatch struct {
	mu     sync.Mutex
	states []kvState
	err    error
}

func (w *kvWatch) run(ctx context.Context, kv *consulapi.KV, prefix string) {
	var index uint64
	for ctx.Err() == nil {
		q := (&consulapi.QueryOptions{WaitIndex: index, WaitTime: 10 * time.Second}).WithContext(ctx)
		pairs, meta, err := kv.List(prefix, q)
		at := time.Now()
		if err != nil {
			w.mu.Lock()
			w.err = err
			w.mu.Unlock()
			wait.Sleep(ctx, 50*time.Millisecond)
			continue
		}
		if meta.LastIndex == index {
			continue
		}
		if meta.LastIndex < index {
			index = 0 // the index went backwards: start over, as Consul's docs advise
			continue
		}
		index = meta.LastIndex
		w.mu.Lock()
		w.states = append(w.states, readKVState(pairs, prefix, at))
		w.mu.Unlock()
	}
}

// last returns the latest state seen.
func (w *kvWatch) last() (kvState, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.states) == 0 {
		return kvState{}, false
	}
	return w.states[len(w.states)-1], true
}

// waitFirstWrite polls the watch until it has seen the new leader's first write after t0.
func (w *kvWatch) waitFirstWrite(ctx context.Context, t0 time.Time, old string) (acquired, write kvState, err error) {
	ctx, cancel := context.WithTimeout(ctx, failoverTimeout)
	defer cancel()
	for {
		w.mu.Lock()
		// Only what arrived after t0 is looked at; keep the slice from growing without end.
		i := len(w.states)
		for i > 0 && !w.states[i-1].At.Before(t0) {
			i--
		}
		s, ok := firstWrite(w.states[i:], t0, old)
		a, _ := firstHolder(w.states[i:], t0, old)
		werr := w.err
		w.mu.Unlock()
		if ok {
			return a, s, nil
		}
		select {
		case <-ctx.Done():
			return kvState{}, kvState{}, fmt.Errorf("no write by a new leader within %s (last watch error: %v)", failoverTimeout, werr)
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// failoverHCL is a chain of n no-op tasks, run again and again so the leader always has work.
func failoverHCL(n int) string {
	return strings.Replace(chainHCL(failoverDAG, n), "dag \""+failoverDAG+"\" {\n", "dag \""+failoverDAG+"\" {\n  max_active_runs = 2\n", 1)
}

// failover runs failoverServers server processes of one installation while a DAG runs, and
// 20 times kills the active one with SIGKILL, then 20 times stops it with SIGINT, each time
// measuring from the signal to the new leader's first write, as Consul shows it, and
// starting the instance again.
func (b *bench) failover(ctx context.Context) error {
	const rounds = 20
	say("failover: %d dagflow server processes of one installation, a DAG kept running", failoverServers)
	if err := b.apply(ctx, failoverKVPrefix, failoverDAG, failoverHCL(4)); err != nil {
		return err
	}
	var servers []*serverproc.Server
	defer func() {
		for _, s := range servers {
			_ = s.Stop()
			_ = s.Close()
		}
	}()
	for range failoverServers {
		s, err := serverproc.Start(ctx, serverproc.Options{
			Binary: b.opts.dagflow, ConsulAddr: b.consulAddr, NomadAddr: b.nomadAddr,
			KVPrefix: failoverKVPrefix, JobPrefix: failoverJobs, ServiceName: failoverService,
			LogLevel: "info", Config: serverConfig, Dir: filepath.Join(b.dir, failoverService),
		})
		if err != nil {
			return err
		}
		servers = append(servers, s)
	}

	cc, err := consulapi.NewClient(&consulapi.Config{Address: b.consulAddr})
	if err != nil {
		return err
	}
	wctx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	w := &kvWatch{}
	go w.run(wctx, cc.KV(), failoverKVPrefix)
	go b.keepTriggering(wctx, servers)

	// Wait for the first leader to write, so every round starts from a leader at work.
	if _, _, err := w.waitFirstWrite(ctx, time.Now().Add(-time.Hour), "none"); err != nil {
		return fmt.Errorf("failover: first leader: %w", err)
	}
	f := &Failover{Servers: failoverServers}
	for _, clean := range []bool{false, true} {
		how := "kill -9"
		if clean {
			how = "clean shutdown"
		}
		var ds, locks []time.Duration
		for i := 1; i <= rounds; i++ {
			lock, d, err := b.failoverOnce(ctx, w, servers, clean)
			if err != nil {
				return fmt.Errorf("failover, %s %d of %d: %w", how, i, rounds, err)
			}
			say("failover, %s %d of %d: lock taken after %.0f ms, new leader's first write after %.0f ms", how, i, rounds, ms(lock), ms(d))
			ds, locks = append(ds, d), append(locks, lock)
		}
		if clean {
			f.Clean, f.CleanLock = summarize(ds), summarize(locks)
		} else {
			f.Kill, f.KillLock = summarize(ds), summarize(locks)
		}
	}
	b.report.Failover = f
	stopWatch()
	return b.collectGarbage(ctx)
}

// failoverOnce ends the active instance, waits for the new leader's first write, and starts
// the instance again. It returns the times from the signal to the lock taken by another
// session and to the new leader's first write.
func (b *bench) failoverOnce(ctx context.Context, w *kvWatch, servers []*serverproc.Server, clean bool) (lock, write time.Duration, err error) {
	actx, cancel := context.WithTimeout(ctx, failoverTimeout)
	defer cancel()
	active, err := serverproc.WaitActive(actx, servers...)
	if err != nil {
		return 0, 0, err
	}
	// The leader must be at work and the lock's holder known: wait for a write of its since
	// the last change of the lock key.
	var old string
	for {
		if s, ok := w.last(); ok && s.Session != "" && s.WriteIndex > s.LockIndex {
			old = s.Session
			break
		}
		select {
		case <-actx.Done():
			return 0, 0, errors.New("the active instance has not written since it took the lock")
		case <-time.After(20 * time.Millisecond):
		}
	}
	t0 := time.Now()
	if clean {
		err = active.Stop()
	} else {
		err = active.Kill()
	}
	if err != nil {
		return 0, 0, err
	}
	acq, s, err := w.waitFirstWrite(ctx, t0, old)
	if err != nil {
		return 0, 0, fmt.Errorf("%w (server logs: %s)", err, filepath.Dir(active.LogPath()))
	}
	if err := active.Restart(ctx); err != nil {
		return 0, 0, err
	}
	// Let the restarted instance settle into standby before the next round.
	wait.Sleep(ctx, time.Second)
	return acq.At.Sub(t0), s.At.Sub(t0), nil
}

// keepTriggering triggers a run of the failover DAG every 2 s through whichever instance
// answers, so the leader always has tasks to hand off; max_active_runs holds the rest queued.
func (b *bench) keepTriggering(ctx context.Context, servers []*serverproc.Server) {
	for ctx.Err() == nil {
		for _, s := range servers {
			c, err := api.NewClient(&api.Config{Address: s.URL()})
			if err != nil {
				continue
			}
			tctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			_, err = c.DAGs().Trigger(tctx, failoverDAG, &api.TriggerRequest{})
			cancel()
			if err == nil {
				break
			}
		}
		wait.Sleep(ctx, 2*time.Second)
	}
}
