// Package jobs holds the Nomad job files dagflow ships; its tests run them on real agents.
package jobs_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	consulapi "github.com/hashicorp/consul/api"
	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/dagflow/dagflow/history"
	"github.com/dagflow/dagflow/internal/devstack"
)

// TestOrchestratorJob runs jobs/orchestrator.nomad with the real `nomad job run`: two dagflow
// servers come up, exactly one active in Consul, with the history database the job's Nomad
// Variable names; stopping the active allocation makes the other one active.
func TestOrchestratorJob(t *testing.T) {
	consul := devstack.StartConsulT(t)
	nomad := devstack.StartNomadT(t, consul)
	pg := devstack.StartPostgresT(t)
	historyURL, err := pg.CreateDatabase(context.Background(), "jobtest")
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "dagflow")
	if out, err := exec.Command("go", "build", "-o", bin, "../cmd/dagflow").CombinedOutput(); err != nil {
		t.Fatalf("build dagflow: %v\n%s", err, out)
	}
	nomadBin, err := devstack.Binary("nomad")
	if err != nil {
		t.Fatal(err)
	}
	putVar := exec.Command(nomadBin, "var", "put", "nomad/jobs/dagflow", "history_url="+historyURL)
	putVar.Env = append(os.Environ(), "NOMAD_ADDR=http://"+nomad.HTTPAddr)
	if out, err := putVar.CombinedOutput(); err != nil {
		t.Fatalf("nomad var put: %v\n%s", err, out)
	}
	run := exec.Command(nomadBin, "job", "run", "-detach",
		"-var", "dagflow_binary="+bin,
		"-var", "consul_address="+consul.HTTPAddr,
		"-var", "nomad_address=http://"+nomad.HTTPAddr,
		"-var", "kv_prefix=jobtest/",
		"orchestrator.nomad")
	run.Env = append(os.Environ(), "NOMAD_ADDR=http://"+nomad.HTTPAddr)
	if out, err := run.CombinedOutput(); err != nil {
		t.Fatalf("nomad job run: %v\n%s", err, out)
	}
	cc, err := consulapi.NewClient(&consulapi.Config{Address: consul.HTTPAddr})
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nomadapi.NewClient(&nomadapi.Config{Address: "http://" + nomad.HTTPAddr})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _, _ = nc.Jobs().Deregister("dagflow", true, nil) })

	// instances returns the dagflow services whose check passes, by tag.
	instances := func() (active, standby []*consulapi.ServiceEntry) {
		entries, _, err := cc.Health().Service("dagflow", "", true, nil)
		if err != nil {
			return nil, nil
		}
		for _, e := range entries {
			switch {
			case slices.Contains(e.Service.Tags, "active"):
				active = append(active, e)
			case slices.Contains(e.Service.Tags, "standby"):
				standby = append(standby, e)
			}
		}
		return active, standby
	}
	var active, standby []*consulapi.ServiceEntry
	waitFor(t, 2*time.Minute, "two instances, one active", func() bool {
		active, standby = instances()
		return len(active) == 1 && len(standby) == 1
	}, func() string { return allocEvents(nc) })
	// The servers read the history URL from the variable: they migrated the database.
	db, err := history.Open(historyURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	waitFor(t, time.Minute, "the history database migrated", func() bool {
		current, latest, err := db.Schema(context.Background())
		return err == nil && current == latest
	}, func() string { return allocEvents(nc) })

	// Find the allocation of the active instance by its port and stop it.
	allocs, _, err := nc.Jobs().Allocations("dagflow", false, nil)
	if err != nil {
		t.Fatal(err)
	}
	var activeAlloc string
	for _, a := range allocs {
		full, _, err := nc.Allocations().Info(a.ID, nil)
		// The client may report the allocation running only after the server already serves.
		if err != nil || full.DesiredStatus != "run" {
			continue
		}
		for _, n := range full.AllocatedResources.Shared.Networks {
			for _, p := range n.DynamicPorts {
				if p.Value == active[0].Service.Port {
					activeAlloc = a.ID
				}
			}
		}
	}
	if activeAlloc == "" {

		t.Fatalf("no allocation serves the active instance's port %d", active[0].Service.Port)
	}
	// Run by Nomad, each server took 90% of its task's memory as its soft memory limit.
	waitFor(t, 30*time.Second, "the active server logs its memory limit", func() bool {
		return strings.Contains(allocLog(nc, activeAlloc), `soft memory limit set: limit_mib=460 from=NOMAD_MEMORY_LIMIT`)
	}, func() string { return allocLog(nc, activeAlloc) })
	oldStandby := standby[0].Service.ID
	if _, err := nc.Allocations().Stop(&nomadapi.Allocation{ID: activeAlloc}, nil); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	waitFor(t, time.Minute, "the standby takes over", func() bool {
		active, _ = instances()
		return len(active) == 1 && active[0].Service.ID == oldStandby
	}, func() string { return allocEvents(nc) })
	t.Logf("standby active %s after the active allocation was stopped", time.Since(start).Round(10*time.Millisecond))
}

func waitFor(t *testing.T, timeout time.Duration, what string, ok func() bool, explain func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after %s\n%s", what, timeout, explain())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// allocLog is what the dagflow task of allocation id wrote to stderr, or why it cannot be read.
func allocLog(nc *nomadapi.Client, id string) string {
	alloc, _, err := nc.Allocations().Info(id, nil)
	if err != nil {
		return err.Error()
	}
	cancel := make(chan struct{})
	defer close(cancel)
	frames, errs := nc.AllocFS().Logs(alloc, false, "dagflow", "stderr", "start", 0, cancel, nil)
	var b strings.Builder
	for {
		select {
		case f, ok := <-frames:
			if !ok {
				return b.String()
			}
			b.Write(f.Data)
		case err := <-errs:
			return b.String() + err.Error()
		case <-time.After(5 * time.Second):
			return b.String()
		}
	}
}

// allocEvents describes the job's allocations and their task events, for a failure message.
func allocEvents(nc *nomadapi.Client) string {
	allocs, _, err := nc.Jobs().Allocations("dagflow", true, nil)
	if err != nil {
		return err.Error()
	}
	var b strings.Builder
	for _, a := range allocs {
		b.WriteString(a.ID[:8] + " " + a.ClientStatus + "\n")
		for _, ts := range a.TaskStates {
			for _, e := range ts.Events {
				b.WriteString("  " + e.Type + ": " + e.DisplayMessage + "\n")
			}
		}
	}
	return b.String()
}
