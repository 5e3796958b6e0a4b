package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/dagflow/dagflow/internal/wait"
)

// Sensors is the leader's cost of many sensors waiting: its CPU and Consul writes over a
// window in which none of their conditions holds, and how evenly their pokes spread (the
// most pokes counted in any one second of the window, against the mean).
type Sensors struct {
	Sensors        int     `json:"sensors"`
	PokeIntervalS  float64 `json:"poke_interval_s"`
	WindowS        float64 `json:"window_s"`
	Pokes          int     `json:"pokes"`
	PokesPerS      float64 `json:"pokes_per_s"`
	MaxPokesIn1S   int     `json:"max_pokes_in_1s"`
	KVTxnsPerS     float64 `json:"kv_transactions_per_s"`
	KVOpsPerS      float64 `json:"kv_operations_per_s"`
	ServerCPUPct   float64 `json:"server_cpu_percent_of_a_core"`
	ServerCPUMsPer float64 `json:"server_cpu_ms_per_poke"`
}

// sensorsHCL is a DAG of n sensors waiting on Consul keys that do not exist.
func sensorsHCL(name string, n int, interval time.Duration) string {
	var b strings.Builder
	fmt.Fprintf(&b, "dag %q {\n", name)
	for i := range n {
		fmt.Fprintf(&b, "  sensor \"s%d\" {\n    poke_interval = %q\n    consul_key { key = \"bench/never/%d\" }\n  }\n", i, interval.String(), i)
	}
	b.WriteString("}\n")
	return b.String()
}

// sensors runs one run of a DAG of b.opts.sensors sensors on s and measures a window of
// their waiting, sampling the server's metrics every second.
func (b *bench) sensors(ctx context.Context, s *serverProc) error {
	const (
		dag      = "bench_sensors"
		interval = 10 * time.Second
		window   = 30 * time.Second
	)
	n := b.opts.sensors
	say("sensors: %d sensors waiting, poke_interval %s, measured over %s", n, interval, window)
	if err := b.apply(ctx, b.opts.kvPrefix, dag, sensorsHCL(dag, n, interval)); err != nil {
		return err
	}
	client, err := s.Client()
	if err != nil {
		return err
	}
	res, err := client.DAGs().Trigger(ctx, dag, nil)
	if err != nil || len(res.RunIDs) != 1 {
		return fmt.Errorf("trigger %s: %v %v", dag, res, err)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		sm, err := b.sample(ctx, s)
		if err != nil {
			return err
		}
		if int(sm.metrics["dagflow_sensors_waiting"]) == n {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of %d sensors waiting after 2 minutes (server log: %s)", int(sm.metrics["dagflow_sensors_waiting"]), n, s.LogPath)
		}
		wait.Sleep(ctx, time.Second)
	}
	// Let every wait's first write and first poke pass: the window measures the steady state.
	wait.Sleep(ctx, interval+time.Second)
	first, err := b.sample(ctx, s)
	if err != nil {
		return err
	}
	prev, maxPer := first, 0
	start := time.Now()
	for time.Since(start) < window {
		if !wait.Sleep(ctx, time.Second) {
			return ctx.Err()
		}
		cur, err := b.sample(ctx, s)
		if err != nil {
			return err
		}
		maxPer = max(maxPer, int(cur.metrics["dagflow_sensor_pokes_total"]-prev.metrics["dagflow_sensor_pokes_total"]))
		prev = cur
	}
	secs := time.Since(start).Seconds()
	d := func(name string) float64 { return prev.metrics[name] - first.metrics[name] }
	cpuMs := float64(prev.orch-first.orch) / float64(time.Millisecond)
	r := &Sensors{
		Sensors: n, PokeIntervalS: interval.Seconds(), WindowS: round(secs, 1),
		Pokes: int(d("dagflow_sensor_pokes_total")), MaxPokesIn1S: maxPer,
		KVTxnsPerS:   round(d("dagflow_kv_transactions_total")/secs, 2),
		KVOpsPerS:    round(d("dagflow_kv_operations_total")/secs, 2),
		ServerCPUPct: round(cpuMs/secs/10, 1),
	}
	r.PokesPerS = round(float64(r.Pokes)/secs, 1)
	if r.Pokes > 0 {
		r.ServerCPUMsPer = round(cpuMs/float64(r.Pokes), 3)
	}
	b.report.Sensors = r
	_, err = client.Runs().Cancel(ctx, dag, res.RunIDs[0])
	return err
}
