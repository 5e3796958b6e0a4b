package main

import (
	"math"
	"slices"
	"time"
)

// Latency summarizes a set of durations: how many, and the 50th and 99th percentiles in
// milliseconds.
type Latency struct {
	N     int     `json:"n"`
	P50Ms float64 `json:"p50_ms"`
	P99Ms float64 `json:"p99_ms"`
}

// summarize returns the Latency of ds; the zero Latency when ds is empty.
func summarize(ds []time.Duration) Latency {
	if len(ds) == 0 {
		return Latency{}
	}
	return Latency{N: len(ds), P50Ms: ms(percentile(ds, 50)), P99Ms: ms(percentile(ds, 99))}
}

// percentile returns the p-th percentile of ds by the nearest-rank method: the smallest value
// that at least p percent of the values are at or below. With few values the 99th percentile
// is the largest one. ds must not be empty; it is not modified.
func percentile(ds []time.Duration, p float64) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	rank := int(math.Ceil(p / 100 * float64(len(s))))
	rank = min(max(rank, 1), len(s))
	return s[rank-1]
}

// ms converts d to milliseconds, rounded to a tenth.
func ms(d time.Duration) float64 {
	return round(float64(d)/float64(time.Millisecond), 1)
}

// round rounds x to n decimals.
func round(x float64, n int) float64 {
	p := math.Pow(10, float64(n))
	return math.Round(x*p) / p
}

// ratio returns a/b rounded to two decimals, or 0 when b is 0.
func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return round(a/b, 2)
}

// median returns the median of xs (the mean of the middle two for an even count), or 0 when
// xs is empty.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// summarize sets t's rates and ratios to the medians over its rounds.
func (t *Throughput) summarize() {
	med := func(f func(Round) float64) float64 {
		var xs []float64
		for _, r := range t.Rounds {
			xs = append(xs, f(r))
		}
		return median(xs)
	}
	rate := func(f func(Round) Rate) Rate {
		g := func(h func(Rate) float64) float64 { return med(func(r Round) float64 { return h(f(r)) }) }
		return Rate{
			Jobs:             t.Tasks,
			RegisterPerS:     round(g(func(r Rate) float64 { return r.RegisterPerS }), 1),
			RegisterS:        round(g(func(r Rate) float64 { return r.RegisterS }), 3),
			FirstRegisteredS: round(g(func(r Rate) float64 { return r.FirstRegisteredS }), 3),
			CompletePerS:     round(g(func(r Rate) float64 { return r.CompletePerS }), 1),
			CompleteS:        round(g(func(r Rate) float64 { return r.CompleteS }), 2),
			CPU: CPU{
				OrchestratorMs: round(g(func(r Rate) float64 { return r.CPU.OrchestratorMs }), 2),
				NomadMs:        round(g(func(r Rate) float64 { return r.CPU.NomadMs }), 2),
				ConsulMs:       round(g(func(r Rate) float64 { return r.CPU.ConsulMs }), 2),
			},
		}
	}
	t.Raw = rate(func(r Round) Rate { return r.Raw })
	t.Dagflow = rate(func(r Round) Rate { return r.Dagflow })
	t.RegisterRatio = round(med(func(r Round) float64 { return r.RegisterRatio }), 2)
	t.CompleteRatio = round(med(func(r Round) float64 { return r.CompleteRatio }), 2)
}
