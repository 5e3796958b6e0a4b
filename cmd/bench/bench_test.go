package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestPercentile(t *testing.T) {
	ds := func(ms ...int) []time.Duration {
		var out []time.Duration
		for _, m := range ms {
			out = append(out, time.Duration(m)*time.Millisecond)
		}
		return out
	}
	tests := map[string]struct {
		in       []time.Duration
		p50, p99 time.Duration
	}{
		"one":            {ds(7), 7 * time.Millisecond, 7 * time.Millisecond},
		"two":            {ds(9, 1), time.Millisecond, 9 * time.Millisecond},
		"odd, unsorted":  {ds(5, 1, 4, 2, 3), 3 * time.Millisecond, 5 * time.Millisecond},
		"49 edges":       {ds(seq(1, 49)...), 25 * time.Millisecond, 49 * time.Millisecond},
		"100 values":     {ds(seq(1, 100)...), 50 * time.Millisecond, 99 * time.Millisecond},
		"outlier at top": {ds(append(seq(1, 199), 10000)...), 100 * time.Millisecond, 198 * time.Millisecond},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			in := append([]time.Duration(nil), tc.in...)
			if got := percentile(tc.in, 50); got != tc.p50 {
				t.Errorf("p50 = %v, want %v", got, tc.p50)
			}
			if got := percentile(tc.in, 99); got != tc.p99 {
				t.Errorf("p99 = %v, want %v", got, tc.p99)
			}
			if diff := cmp.Diff(in, tc.in); diff != "" {
				t.Errorf("input modified (-before +after):\n%s", diff)
			}
		})
	}
	if got := summarize(nil); got != (Latency{}) {
		t.Errorf("summarize(nil) = %+v, want zero", got)
	}
	if got := summarize(ds(10, 20, 30)); got != (Latency{N: 3, P50Ms: 20, P99Ms: 30}) {
		t.Errorf("summarize = %+v", got)
	}
}

func seq(from, to int) []int {
	var out []int
	for i := from; i <= to; i++ {
		out = append(out, i)
	}
	return out
}

func TestEdgesAndRates(t *testing.T) {
	t0 := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	times := map[string]*jobTimes{
		"a": {Submit: at(0), Started: at(100), Finished: at(200), Status: "complete"},
		"b": {Submit: at(1200), Started: at(1300), Finished: at(1400), Status: "complete"},
		"c": {Submit: at(2500), Started: at(2600), Finished: at(2700), Status: "complete"},
	}
	reg, started, err := edges(times, []string{"a", "b", "c"})
	if err != nil {
		t.Fatal(err)
	}
	want := []time.Duration{1000 * time.Millisecond, 1100 * time.Millisecond}
	if diff := cmp.Diff(want, reg); diff != "" {
		t.Errorf("registered (-want +got):\n%s", diff)
	}
	want = []time.Duration{1100 * time.Millisecond, 1200 * time.Millisecond}
	if diff := cmp.Diff(want, started); diff != "" {
		t.Errorf("started (-want +got):\n%s", diff)
	}
	if _, _, err := edges(times, []string{"a", "missing"}); err == nil {
		t.Error("edges with a missing job: no error")
	}

	r := rateOf(times, []string{"a", "b", "c"}, at(-500))
	if diff := cmp.Diff(Rate{Jobs: 3, RegisterPerS: 0.8, RegisterS: 2.5, FirstRegisteredS: 0.5, CompleteS: 3.2, CompletePerS: 0.9}, r); diff != "" {
		t.Errorf("rate (-want +got):\n%s", diff)
	}
}

func TestRateIgnoresStragglers(t *testing.T) {
	t0 := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	times := map[string]*jobTimes{}
	var ids []string
	for i := range 20 {
		id := fmt.Sprint(i)
		at := t0.Add(time.Duration(i*10) * time.Millisecond)
		if i == 19 {
			at = t0.Add(5 * time.Second) // one registration stalled
		}
		times[id] = &jobTimes{Submit: at, Finished: at.Add(time.Second)}
		ids = append(ids, id)
	}
	// The 3rd to the 18th registration (10th to 90th percentile): 15 in 150 ms.
	if r := rateOf(times, ids, t0); r.RegisterPerS != 100 || r.RegisterS != 5 {
		t.Errorf("rate %v/s over %v s, want 100/s over 5 s", r.RegisterPerS, r.RegisterS)
	}
}

func TestParseMetrics(t *testing.T) {
	in := `# HELP dagflow_kv_transactions_total Fenced Consul transactions written by the engine.
# TYPE dagflow_kv_transactions_total counter
dagflow_kv_transactions_total 12
dagflow_kv_bytes_total 3.5e+03
dagflow_task_attempts_finished_total{state="failed"} 1
dagflow_task_attempts_finished_total{state="success"} 49
dagflow_edge_handoff_seconds_bucket{le="+Inf"} 49
go_info{version="go1.26 {odd}"} 1
`
	got, err := parseMetrics(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{
		"dagflow_kv_transactions_total":        12,
		"dagflow_kv_bytes_total":               3500,
		"dagflow_task_attempts_finished_total": 50,
		"dagflow_edge_handoff_seconds_bucket":  49,
		"go_info":                              1,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if _, err := parseMetrics(strings.NewReader("broken{ 1\n")); err == nil {
		t.Error("broken line: no error")
	}

	var c costSum
	a := sample{metrics: map[string]float64{"dagflow_task_attempts_finished_total": 10, "dagflow_kv_transactions_total": 5}, orch: time.Second}
	z := sample{metrics: map[string]float64{"dagflow_task_attempts_finished_total": 35, "dagflow_kv_transactions_total": 55,
		"dagflow_kv_operations_total": 100, "dagflow_kv_bytes_total": 25000}, orch: 2 * time.Second}
	c.add(a, z)
	c.add(a, z)
	if diff := cmp.Diff(TryCost{Tries: 50, TxnsPerTry: 2, OpsPerTry: 4, BytesPerTry: 1000, CPUMsPerTry: 40}, c.perTry()); diff != "" {
		t.Errorf("perTry (-want +got):\n%s", diff)
	}
	if got := cpuPerJob(a, z, 100); got != (CPU{OrchestratorMs: 10}) {
		t.Errorf("cpuPerJob = %+v", got)
	}
}

func TestMedian(t *testing.T) {
	for _, tc := range []struct {
		in   []float64
		want float64
	}{{nil, 0}, {[]float64{3}, 3}, {[]float64{5, 1, 3}, 3}, {[]float64{4, 1, 3, 2}, 2.5}} {
		if got := median(tc.in); got != tc.want {
			t.Errorf("median(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
	th := Throughput{Tasks: 500, Rounds: []Round{
		{Raw: Rate{RegisterPerS: 300}, Dagflow: Rate{RegisterPerS: 150}, RegisterRatio: 0.5},
		{Raw: Rate{RegisterPerS: 100}, Dagflow: Rate{RegisterPerS: 90}, RegisterRatio: 0.9},
		{Raw: Rate{RegisterPerS: 200}, Dagflow: Rate{RegisterPerS: 160}, RegisterRatio: 0.8},
	}}
	th.summarize()
	if th.Raw.RegisterPerS != 200 || th.Dagflow.RegisterPerS != 150 || th.RegisterRatio != 0.8 || th.Raw.Jobs != 500 {
		t.Errorf("summarize: raw %v, dagflow %v, ratio %v", th.Raw.RegisterPerS, th.Dagflow.RegisterPerS, th.RegisterRatio)
	}
}

func TestDAGsParse(t *testing.T) {
	for name, src := range map[string]string{
		"chain":  chainHCL("c", 50),
		"fanout": fanoutHCL("f", 500),
		"idle":   idleHCL("i", 10),
	} {
		t.Run(name, func(t *testing.T) {
			dag, err := parseDAG(src)
			if err != nil {
				t.Fatalf("%v\n%s", err, src)
			}
			jobs, err := rawJobs("bfl-", dag, "floor")
			if err != nil {
				t.Fatal(err)
			}
			if len(jobs) != len(dag.Tasks) || *jobs[0].ID != "bfl-"+dag.Name+"."+dag.Tasks[0].Name+".floor.1" {
				t.Errorf("%d jobs, first %q", len(jobs), *jobs[0].ID)
			}
		})
	}
	dag, _ := parseDAG(chainHCL("c", 50))
	if got := dag.Tasks[49].DependsOn; len(got) != 1 || got[0] != "t48" {
		t.Errorf("t49 depends on %v, want [t48]", got)
	}
	mapped, err := parseDAG(mappedHCL("m", 1000))
	if err != nil {
		t.Fatal(err)
	}
	if len(mapped.Tasks) != 2 || mapped.Tasks[0].MapOver == nil || mapped.Tasks[0].MaxMapLength != 1000 {
		t.Errorf("mapped DAG: %+v", mapped.Tasks)
	}
}

// TestReport pins the JSON shape that tools read, and checks the table renders every row.
func TestReport(t *testing.T) {
	r := &Report{
		Schema: 1,
		Handoff: Handoff{Tasks: 50,
			Dagflow: EdgeFigures{Registered: Latency{49, 1020, 1200}, Started: Latency{49, 1100, 1300}, ChainS: 55},
			Floor:   EdgeFigures{Registered: Latency{49, 960, 1100}, Started: Latency{49, 1080, 1250}, ChainS: 52},
		},
		Throughput: Throughput{Tasks: 500, Concurrency: 32, RegisterRatio: 0.8,
			Dagflow: Rate{Jobs: 500, RegisterPerS: 160}, Raw: Rate{Jobs: 500, RegisterPerS: 200}},
		Cost: Cost{Chain: TryCost{Tries: 50, TxnsPerTry: 2.1, OpsPerTry: 3}, Fanout: TryCost{Tries: 500, TxnsPerTry: 1.5, OpsPerTry: 3.9}},
	}
	r.judge()
	met := map[string]bool{}
	for _, tg := range r.Targets {
		met[tg.Name] = tg.Met
	}
	wantMet := map[string]bool{
		"edge hand-off, finished to registered, p50": false, // +60 ms
		"edge hand-off, finished to started, p50":    true,  // +20 ms
		"registration throughput":                    false,
		"Consul KV transactions per task attempt":    true,
		"Consul KV keys written per task attempt":    false,
	}
	if diff := cmp.Diff(wantMet, met); diff != "" {
		t.Errorf("targets met (-want +got):\n%s", diff)
	}

	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var shape map[string]any
	if err := json.Unmarshal(b, &shape); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for k := range shape {
		keys = append(keys, k)
	}
	for _, k := range []string{"schema", "started_at", "duration_s", "machine", "handoff", "throughput", "cost", "failover", "targets"} {
		if _, ok := shape[k]; !ok {
			t.Errorf("JSON has no %q; keys %v", k, keys)
		}
	}
	if shape["failover"] != nil {
		t.Errorf("failover = %v, want null until measured", shape["failover"])
	}
	p50 := shape["handoff"].(map[string]any)["dagflow"].(map[string]any)["finished_to_registered"].(map[string]any)["p50_ms"]
	if p50 != 1020.0 {
		t.Errorf("handoff.dagflow.finished_to_registered.p50_ms = %v", p50)
	}

	var out bytes.Buffer
	r.writeMarkdown(&out)
	table := out.String()
	for _, want := range []string{
		"| edge hand-off (50-task chain), finished → registered, p50 | 1020 ms | 960 ms | +60 ms | 1.06x | ≤ +50 ms: **missed** |",
		"| 500-task fan-out, registration rate (32 in flight; median of 0 rounds) | 160 jobs/s | 200 jobs/s | | 0.80x (rounds: ) | ≥ 0.9x: **missed** |",
		"failover, kill -9 / clean shutdown → new leader's first write | not measured yet",
	} {
		if !strings.Contains(table, want) {
			t.Errorf("table lacks %q:\n%s", want, table)
		}
	}
}
