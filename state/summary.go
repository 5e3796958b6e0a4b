package state

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"sync"

	consulapi "github.com/hashicorp/consul/api"

	"github.com/dagflow/dagflow/internal/bounded"
)

// Summaries let the DAG list show each DAG's latest runs without reading every run record:
//
//	P + "summaries/<dag>"      JSON Summary: the DAG's latest runs, as lists show them
//
// The leader writes a DAG's summary fenced, with the records of its runs that changed (a
// change of task counts alone up to a few seconds later); a new leader rewrites the summaries
// that do not match the records it starts from. Long-polls watch the prefix, whose index a
// read learns without receiving its keys (see Store.read).

// SummaryRuns is how many runs a Summary holds: as many as the DAG list shows.
const SummaryRuns = 5

// Summary is a DAG's latest runs.
type Summary struct {
	DAG    string       `json:"dag"`
	Recent []RunSummary `json:"recent"` // newest logical date first, at most SummaryRuns
}

// RunSummary is a run as lists show it: its record without params, and how many of its task
// instances are in each state ("none" for those not scheduled yet).
type RunSummary struct {
	Run        Run            `json:"run"`
	TaskStates map[string]int `json:"task_states"`
}

// Summarize returns the summary of run record rec.
func Summarize(rec *RunRecord) RunSummary {
	r := rec.Run
	r.Params, r.AssetEvents = nil, nil
	counts := map[string]int{}
	for _, ti := range rec.Tasks {
		st := string(ti.State)
		if st == "" {
			st = "none"
		}
		counts[st]++
	}
	return RunSummary{Run: r, TaskStates: counts}
}

// Add returns recent with run in it (replacing its earlier summary), newest logical date
// first, cut to SummaryRuns.
func Add(recent []RunSummary, run RunSummary) []RunSummary {
	out := make([]RunSummary, 0, len(recent)+1)
	for _, r := range recent {
		if r.Run.ID != run.Run.ID {
			out = append(out, r)
		}
	}
	out = append(out, run)
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i].Run, out[j].Run
		return PageKey(a.LogicalDate, a.DAG, a.ID) > PageKey(b.LogicalDate, b.DAG, b.ID)
	})
	return out[:min(len(out), SummaryRuns)]
}

func (s *Store) summariesPrefix() string { return s.prefix + "summaries/" }

// PutSummaryOp returns the transaction operation that writes sum.
func (s *Store) PutSummaryOp(sum *Summary) (*consulapi.TxnOp, error) {
	b, err := json.Marshal(sum)
	if err != nil {
		return nil, fmt.Errorf("encode summary of DAG %s: %w", sum.DAG, err)
	}
	return &consulapi.TxnOp{KV: &consulapi.KVTxnOp{Verb: consulapi.KVSet, Key: s.summariesPrefix() + esc(sum.DAG), Value: b}}, nil
}

// Summaries reads every DAG's summary, by DAG name, with a blocking query that returns when
// one changed after index (0: at once), and returns the index to pass next.
func (s *Store) Summaries(ctx context.Context, index uint64) (map[string]*Summary, uint64, error) {
	q := (&consulapi.QueryOptions{WaitIndex: index, WaitTime: blockingWait, RequireConsistent: index == 0}).WithContext(ctx)
	pairs, meta, err := s.kv.List(s.summariesPrefix(), q)
	if err != nil {
		return nil, index, fmt.Errorf("read run summaries: %w", err)
	}
	out := make(map[string]*Summary, len(pairs))
	for _, p := range pairs {
		var sum Summary
		if err := json.Unmarshal(p.Value, &sum); err != nil {
			return nil, index, fmt.Errorf("decode run summary %s: %w", p.Key, err)
		}
		out[sum.DAG] = &sum
	}
	return out, meta.LastIndex, nil
}

// summariesPerTxn is how many summaries one read-only transaction reads: Consul takes at
// most 128 operations in a transaction, and 64 summaries of a few KB each keep the answer
// far below its size limits.
const summariesPerTxn = 64

// SummariesOf reads the summaries of DAGs dags, by DAG name, an empty one for a DAG that has
// none: a page of the DAG list. It reads them in read-only transactions of summariesPerTxn,
// one round trip each instead of one per DAG, summariesReads at once, and may be a moment
// stale (not ?consistent): it is for people.
func (s *Store) SummariesOf(ctx context.Context, dags []string) (map[string]*Summary, error) {
	out := make(map[string]*Summary, len(dags))
	var mu sync.Mutex
	var reads []func(context.Context) error
	for chunk := range slices.Chunk(dags, summariesPerTxn) {
		reads = append(reads, func(ctx context.Context) error {
			sums, err := s.summariesTxn(ctx, chunk)
			if err != nil {
				return err
			}
			mu.Lock()
			defer mu.Unlock()
			for i, sum := range sums {
				out[chunk[i]] = sum
			}
			return nil
		})
	}
	if err := bounded.Run(ctx, summariesReads, reads); err != nil {
		return nil, err
	}
	return out, nil
}

// summariesReads is how many transactions SummariesOf has in flight: a DAG list of 10,000
// took 157 round trips one after another.
const summariesReads = 4

// summariesTxn reads the summaries of dags, at most summariesPerTxn, in one read-only
// transaction, in the order of dags.
func (s *Store) summariesTxn(ctx context.Context, dags []string) ([]*Summary, error) {
	ops := make(consulapi.TxnOps, len(dags))
	for i, dag := range dags {
		ops[i] = &consulapi.TxnOp{KV: &consulapi.KVTxnOp{Verb: consulapi.KVGetOrEmpty, Key: s.summariesPrefix() + esc(dag)}}
	}
	ok, resp, _, err := s.txn.Txn(ops, (&consulapi.QueryOptions{AllowStale: true}).WithContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("read run summaries: %w", err)
	}
	if !ok {
		return nil, fmt.Errorf("read run summaries: %v", resp.Errors)
	}
	if len(resp.Results) != len(dags) {
		return nil, fmt.Errorf("read run summaries: %d results for %d keys", len(resp.Results), len(dags))
	}
	out := make([]*Summary, len(dags))
	for i, r := range resp.Results {
		sum := &Summary{DAG: dags[i]}
		if r.KV != nil && len(r.KV.Value) > 0 {
			if err := json.Unmarshal(r.KV.Value, sum); err != nil {
				return nil, fmt.Errorf("decode run summary %s: %w", r.KV.Key, err)
			}
		}
		out[i] = sum
	}
	return out, nil
}
