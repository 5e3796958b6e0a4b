package main

import (
	"strings"
	"testing"
	"time"

	consulapi "github.com/hashicorp/consul/api"
)

func TestReadKVState(t *testing.T) {
	at := time.Unix(100, 0)
	pairs := consulapi.KVPairs{
		{Key: "p/catalog", ModifyIndex: 5},
		{Key: "p/leader", Session: "s1", ModifyIndex: 20},
		{Key: "p/requests/abc", ModifyIndex: 30},
		{Key: "p/runs/d/r1", ModifyIndex: 25},
	}
	got := readKVState(pairs, "p/", at)
	want := kvState{At: at, Session: "s1", LockIndex: 20, WriteIndex: 25}
	if got != want {
		t.Fatalf("readKVState = %+v, want %+v", got, want)
	}
	if got := readKVState(nil, "p/", at); got != (kvState{At: at}) {
		t.Fatalf("readKVState(nil) = %+v", got)
	}
}

func TestFirstWrite(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	states := []kvState{
		{At: at(-10), Session: "old", LockIndex: 10, WriteIndex: 12}, // before t0
		{At: at(5), Session: "old", LockIndex: 10, WriteIndex: 13},   // the old leader, still holding
		{At: at(100), Session: "", LockIndex: 14, WriteIndex: 13},    // released
		{At: at(200), Session: "new", LockIndex: 15, WriteIndex: 13}, // acquired, no write yet
		{At: at(300), Session: "new", LockIndex: 15, WriteIndex: 16}, // the first write
		{At: at(400), Session: "new", LockIndex: 15, WriteIndex: 17},
	}
	s, ok := firstWrite(states, t0, "old")
	if !ok || !s.At.Equal(at(300)) {
		t.Fatalf("firstWrite = %+v, %v; want the state at +300ms", s, ok)
	}
	// A write of the old leader's seen with the new holder, but before the acquisition,
	// is not the new leader's.
	states = []kvState{
		{At: at(50), Session: "new", LockIndex: 20, WriteIndex: 19},
		{At: at(60), Session: "new", LockIndex: 20, WriteIndex: 21},
	}
	if s, ok := firstWrite(states, t0, "old"); !ok || !s.At.Equal(at(60)) {
		t.Fatalf("firstWrite = %+v, %v; want the state at +60ms", s, ok)
	}
	if _, ok := firstWrite(states[:1], t0, "old"); ok {
		t.Fatal("firstWrite found a write before the acquisition")
	}
	if _, ok := firstWrite(nil, t0, "old"); ok {
		t.Fatal("firstWrite found a write in nothing")
	}
}

func TestFirstHolder(t *testing.T) {
	t0 := time.Unix(1000, 0)
	states := []kvState{
		{At: t0.Add(-time.Second), Session: "other"}, // before t0
		{At: t0.Add(time.Millisecond), Session: "old"},
		{At: t0.Add(2 * time.Millisecond), Session: ""},
		{At: t0.Add(3 * time.Millisecond), Session: "new"},
		{At: t0.Add(4 * time.Millisecond), Session: "new"},
	}
	if s, ok := firstHolder(states, t0, "old"); !ok || !s.At.Equal(t0.Add(3*time.Millisecond)) {
		t.Fatalf("firstHolder = %+v, %v", s, ok)
	}
	if _, ok := firstHolder(states[:3], t0, "old"); ok {
		t.Fatal("firstHolder found a holder where the lock was only released")
	}
}

func TestFailoverHCL(t *testing.T) {
	src := failoverHCL(4)
	if !strings.Contains(src, "max_active_runs = 2") {
		t.Fatalf("no max_active_runs in\n%s", src)
	}
	d, err := parseDAG(src)
	if err != nil {
		t.Fatal(err)
	}
	if d.Name != failoverDAG || len(d.Tasks) != 4 || d.MaxActiveRuns != 2 {
		t.Fatalf("parsed %s with %d tasks, max_active_runs %d", d.Name, len(d.Tasks), d.MaxActiveRuns)
	}
}

func TestFailoverReport(t *testing.T) {
	r := &Report{Failover: &Failover{Servers: 3, Kill: Latency{N: 20, P50Ms: 1200, P99Ms: 6000}, Clean: Latency{N: 20, P50Ms: 100, P99Ms: 300}, KillLock: Latency{N: 20, P50Ms: 1000, P99Ms: 1500}}}
	r.judge()
	if r.met("failover, kill -9, p99") != "**missed**" || r.met("failover, clean shutdown, p99") != "met" {
		t.Fatalf("targets %+v", r.Targets)
	}
	var b strings.Builder
	r.writeMarkdown(&b)
	if !strings.Contains(b.String(), "kill -9 → new leader's first write, p50 / p99 (n=20) | 1200 / 6000 ms (lock taken: 1000 / 1500 ms)") {
		t.Fatalf("markdown:\n%s", b.String())
	}
}
