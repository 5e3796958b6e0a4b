package devstack

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	consulapi "github.com/hashicorp/consul/api"
	nomadapi "github.com/hashicorp/nomad/api"
)

// TestDurableRestart restarts a Durable Consul and a Durable Nomad in the middle of a task:
// the KV store and sessions survive Consul's restart, and the task runs on through Nomad's,
// once, as the same allocation, which ends complete.
func TestDurableRestart(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c, err := StartConsul(ctx, ConsulOptions{Durable: true, Logger: agentLog(t, "consul")})
	if err != nil {
		t.Fatalf("start durable consul: %v", err)
	}
	t.Cleanup(func() { c.Stop() })
	n, err := StartNomad(ctx, NomadOptions{Durable: true, ConsulAddr: c.HTTPAddr, Logger: agentLog(t, "nomad")})
	if err != nil {
		t.Fatalf("start durable nomad: %v", err)
	}
	t.Cleanup(func() { n.Stop() })

	cc := consulClient(t, c)
	if _, err := cc.KV().Put(&consulapi.KVPair{Key: "kept", Value: []byte("v")}, nil); err != nil {
		t.Fatalf("put key: %v", err)
	}
	sid, _, err := cc.Session().Create(&consulapi.SessionEntry{TTL: "1h", Checks: []string{}}, nil)
	if err != nil {
		t.Fatalf("create session: %v", err)
	}
	if err := c.Restart(ctx); err != nil {
		t.Fatalf("restart consul: %v", err)
	}
	kv, _, err := cc.KV().Get("kept", nil)
	if err != nil || kv == nil || string(kv.Value) != "v" {
		t.Errorf("key after a durable restart = %+v (%v), want value v", kv, err)
	}
	if s, _, err := cc.Session().Info(sid, nil); err != nil || s == nil {
		t.Errorf("session after a durable restart = %+v (%v), want it kept", s, err)
	}

	// The task appends a line when it starts, sleeps through the restart, and ends.
	marker := filepath.Join(t.TempDir(), "starts")
	nc := nomadClient(t, n)
	job := nomadapi.NewBatchJob("devstack-durable", "devstack-durable", "global", 50)
	job.Datacenters = []string{"*"}
	tg := nomadapi.NewTaskGroup("g", 1)
	tg.RestartPolicy = &nomadapi.RestartPolicy{Attempts: ptr(0), Mode: ptr("fail")}
	tg.ReschedulePolicy = &nomadapi.ReschedulePolicy{Attempts: ptr(0), Unlimited: ptr(false)}
	task := nomadapi.NewTask("t", "raw_exec").
		SetConfig("command", "/bin/sh").
		SetConfig("args", []string{"-c", "echo started >> " + marker + "; sleep 8"})
	task.Resources = &nomadapi.Resources{CPU: ptr(50), MemoryMB: ptr(32)}
	job.AddTaskGroup(tg.AddTask(task))
	if _, _, err := nc.Jobs().Register(job, nil); err != nil {
		t.Fatalf("register job: %v", err)
	}
	waitFor(t, time.Minute, "task started", func() (bool, error) {
		b, err := os.ReadFile(marker)
		return len(b) > 0, err
	})
	if err := n.Restart(ctx); err != nil {
		t.Fatalf("restart nomad: %v", err)
	}
	var allocs []*nomadapi.AllocationListStub
	waitFor(t, time.Minute, "allocation ended", func() (bool, error) {
		allocs, _, err = nc.Jobs().Allocations(*job.ID, true, nil)
		if err != nil {
			return false, err
		}
		for _, a := range allocs {
			if a.ClientStatus == nomadapi.AllocClientStatusRunning || a.ClientStatus == nomadapi.AllocClientStatusPending {
				return false, nil
			}
		}
		return len(allocs) > 0, nil
	})
	if len(allocs) != 1 || allocs[0].ClientStatus != nomadapi.AllocClientStatusComplete {
		for _, a := range allocs {
			t.Logf("allocation %s: %s (%+v)", a.ID, a.ClientStatus, a.TaskStates)
		}
		t.Errorf("%d allocations after the restart, want 1, complete", len(allocs))
	}
	b, _ := os.ReadFile(marker)
	if got := strings.Count(string(b), "started"); got != 1 {
		t.Errorf("the task started %d times, want once", got)
	}
}
