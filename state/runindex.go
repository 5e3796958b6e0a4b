package state

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"slices"
	"strings"
	"time"

	consulapi "github.com/hashicorp/consul/api"
)

// The run index lets the list of every DAG's runs read a page without reading every run record:
//
//	P + "runindex/<hour>/<page key>"   JSON IndexEntry: the run's DAG, ID, logical date, state
//
// <hour> is the hour of the run's logical date (UTC, "2006-01-02T15"): a page reads the hours
// from the newest down until it holds enough runs, each hour one small list, and then the
// records of those runs only. The leader writes a run's entry in the same list of operations as
// the record that creates the run or changes its state, and deletes it with the run; a new
// leader checks the index an hour at a time against the runs it starts from and rewrites the
// hours that differ (IndexHash).

// IndexEntry is a run as the run index holds it.
type IndexEntry struct {
	DAG         string    `json:"dag"`
	ID          string    `json:"id"`
	LogicalDate time.Time `json:"logical_date"`
	State       RunState  `json:"state"`
}

// Hour is the hour of the run index that holds e.
func (e IndexEntry) Hour() string { return IndexHour(e.LogicalDate) }

// PageKey is where e sorts in run lists (see PageKey).
func (e IndexEntry) PageKey() string { return PageKey(e.LogicalDate, e.DAG, e.ID) }

// IndexHour is the hour of the run index that holds the runs of logical date t.
func IndexHour(t time.Time) string { return t.UTC().Format("2006-01-02T15") }

// IndexHash is the hash of a set of entries, the XOR of each entry's hash, so that a new leader
// compares an hour of the stored index with the runs it holds without keeping either: the same
// entries, in any order, give the same hash.
type IndexHash struct {
	Sum   uint64
	Count int
}

// Add adds e to h.
func (h *IndexHash) Add(e IndexEntry) {
	f := fnv.New64a()
	fmt.Fprintf(f, "%s\x00%s\x00%d\x00%s", e.DAG, e.ID, e.LogicalDate.UnixNano(), e.State)
	h.Sum ^= f.Sum64()
	h.Count++
}

func (s *Store) runIndexPrefix() string { return s.prefix + "runindex/" }

func (s *Store) runIndexKey(dag, id string, logicalDate time.Time) string {
	return s.runIndexPrefix() + IndexHour(logicalDate) + "/" + esc(PageKey(logicalDate, dag, id))
}

// PutIndexOp returns the transaction operation that writes e, the index entry of its run.
func (s *Store) PutIndexOp(e IndexEntry) (*consulapi.TxnOp, error) {
	b, err := json.Marshal(e)
	if err != nil {
		return nil, fmt.Errorf("encode the index entry of run %s/%s: %w", e.DAG, e.ID, err)
	}
	return &consulapi.TxnOp{KV: &consulapi.KVTxnOp{Verb: consulapi.KVSet, Key: s.runIndexKey(e.DAG, e.ID, e.LogicalDate), Value: b}}, nil
}

// DeleteIndexOp returns the transaction operation that deletes the index entry of a run.
func (s *Store) DeleteIndexOp(dag, id string, logicalDate time.Time) *consulapi.TxnOp {
	return &consulapi.TxnOp{KV: &consulapi.KVTxnOp{Verb: consulapi.KVDelete, Key: s.runIndexKey(dag, id, logicalDate)}}
}

// DeleteIndexHourOp returns the transaction operation that deletes every entry of one hour of
// the run index.
func (s *Store) DeleteIndexHourOp(hour string) *consulapi.TxnOp {
	return &consulapi.TxnOp{KV: &consulapi.KVTxnOp{Verb: consulapi.KVDeleteTree, Key: s.runIndexPrefix() + hour + "/"}}
}

// IndexHours lists the hours of the run index that hold runs, newest first.
func (s *Store) IndexHours(ctx context.Context) ([]string, error) {
	keys, _, err := s.kv.Keys(s.runIndexPrefix(), "/", s.readOpts(ctx))
	if err != nil {
		return nil, fmt.Errorf("list the hours of the run index: %w", err)
	}
	hours := make([]string, 0, len(keys))
	for _, k := range keys {
		if h, ok := strings.CutSuffix(strings.TrimPrefix(k, s.runIndexPrefix()), "/"); ok {
			hours = append(hours, h)
		}
	}
	slices.Sort(hours)
	slices.Reverse(hours)
	return hours, nil
}

// IndexHourEntries reads the entries of one hour of the run index, in list order (newest page
// key first).
func (s *Store) IndexHourEntries(ctx context.Context, hour string) ([]IndexEntry, error) {
	prefix := s.runIndexPrefix() + hour + "/"
	pairs, _, err := s.kv.List(prefix, s.readOpts(ctx))
	if err != nil {
		return nil, fmt.Errorf("read the run index of %s: %w", hour, err)
	}
	out := make([]IndexEntry, 0, len(pairs))
	for _, p := range pairs {
		var e IndexEntry
		if err := json.Unmarshal(p.Value, &e); err != nil {
			return nil, fmt.Errorf("decode run index entry %s: %w", p.Key, err)
		}
		out = append(out, e)
	}
	slices.SortFunc(out, func(a, b IndexEntry) int { return strings.Compare(b.PageKey(), a.PageKey()) })
	return out, nil
}

// RunRef names a run.
type RunRef struct{ DAG, ID string }

// runsPerTxn is how many runs RunRecords reads in one read-only transaction: each is one
// get-tree operation, and their answers (a run of 10 tasks is about 10 KB) stay well within
// Consul's limits.
const runsPerTxn = 32

// RunRecords reads the records of runs refs, in the order of refs, leaving out those not
// stored (deleted since they were listed). Each transaction of runsPerTxn runs is one consistent
// read.
func (s *Store) RunRecords(ctx context.Context, refs []RunRef) ([]*RunRecord, error) {
	out := make([]*RunRecord, 0, len(refs))
	for chunk := range slices.Chunk(refs, runsPerTxn) {
		ops := make(consulapi.TxnOps, len(chunk))
		for i, r := range chunk {
			ops[i] = &consulapi.TxnOp{KV: &consulapi.KVTxnOp{Verb: consulapi.KVGetTree, Key: s.runPrefix(r.DAG, r.ID)}}
		}
		ok, resp, _, err := s.txn.Txn(ops, (&consulapi.QueryOptions{RequireConsistent: true}).WithContext(ctx))
		if err != nil {
			return nil, fmt.Errorf("read runs: %w", err)
		}
		if !ok {
			return nil, fmt.Errorf("read runs: %v", resp.Errors)
		}
		pairs := make(consulapi.KVPairs, 0, len(resp.Results))
		for _, r := range resp.Results {
			if r.KV != nil {
				pairs = append(pairs, r.KV)
			}
		}
		recs, err := s.decodeRuns(pairs)
		if err != nil {
			return nil, err
		}
		byRef := make(map[RunRef]*RunRecord, len(recs))
		for _, rec := range recs {
			byRef[RunRef{rec.Run.DAG, rec.Run.ID}] = rec
		}
		for _, r := range chunk {
			if rec := byRef[r]; rec != nil {
				out = append(out, rec)
			}
		}
	}
	return out, nil
}
