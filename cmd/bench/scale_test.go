package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestScaleReport(t *testing.T) {
	r := &Report{Schema: 1, Scale: &Scale{
		DAGs: 10000, TasksPerDAG: 10, RunsDAGs: 100, RunsPerDAG: 100, ApplyS: 12.5, ApplyRaftWrites: 180, PlanNoChangeS: 3.4, PlanAfterApplyS: 5.1,
		WindowS: 30, RSSMiB: 120, PeakRSSMiB: 250, CPUPercent: 1.5, RestartRSSMiB: 150, RestartPeakRSSMiB: 280, RestartCPUPercent: 0.9,
		DAGListPage: Latency{50, 40, 90}, DAGListAll: Latency{10, 900, 1100}, RunList: Latency{50, 60, 130}, AllRunList: Latency{50, 20, 45}, FirstRunS: 1.2,
	}}
	r.judge()
	met := map[string]bool{}
	for _, tg := range r.Targets {
		met[tg.Name] = tg.Met
	}
	want := map[string]bool{
		"scale, idle leader CPU":          true,
		"scale, idle leader RSS":          true,
		"scale, DAG list page p99":        true,
		"scale, run list p99":             false, // 130 ms
		"scale, every DAG's run list p99": true,
		"scale, plan":                     false, // 3.4 s
	}
	if diff := cmp.Diff(want, met); diff != "" {
		t.Errorf("targets met (-want +got):\n%s", diff)
	}
	var out bytes.Buffer
	r.writeMarkdown(&out)
	for _, row := range []string{
		"| scale: `dagflow apply -auto-approve`, 10000 DAGs × 10 tasks | 12.50 s, 180 Consul Raft writes |",
		"| scale: a DAG's run list, 100 runs, p50 / p99 | 60 / 130 ms | | | | p99 ≤ 100 ms: **missed** |",
		"| scale: `GET /v1/runs` (every DAG's, a page of 50 of 10000 runs), p50 / p99 | 20 / 45 ms | | | | p99 ≤ 100 ms: met |",
		"| scale: peak RSS before the idle window (apply, loads, lists) | 250 MiB | | | | |",
		"| scale: idle leader restarted (a new process reads every version, run and summary) | 0.90% of a core, 150 MiB RSS (peak 280 MiB) | | | | |",
		"| scale: `dagflow plan`, 10000 files, no changes, server idle (right after the apply) | 3.40 s (5.10 s) | | | | ≤ 3 s: **missed** |",
	} {
		if !strings.Contains(out.String(), row) {
			t.Errorf("table lacks %q:\n%s", row, out.String())
		}
	}
}
