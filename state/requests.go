package state

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strings"
	"time"

	consulapi "github.com/hashicorp/consul/api"
)

// Request kinds: what a user asks the leader to do.
const (
	RequestTrigger  = "trigger"  // create a manual run of DAG with Params
	RequestBackfill = "backfill" // create backfill runs for the intervals from From to To
	RequestClear    = "clear"    // start a new try of Task in RunID (and, with Downstream, of everything after it)
	RequestMark     = "mark"     // set Task in RunID (and, with Downstream, everything after it) to State, stopping a try in flight
	RequestCancel   = "cancel"   // stop RunID: tries in flight fail, tasks not started are skipped, the run fails
	RequestEmit     = "emit"     // record Event, posted from outside, as the next event of asset Asset
)

// Request is an action a user asked for, carried out by whichever instance leads. Any
// instance may write one; the leader carries it out and records the Result in the same
// fenced transaction as its effect, so a request takes effect once, even across a failover.
type Request struct {
	ID        string    `json:"id"`
	Kind      string    `json:"kind"`
	DAG       string    `json:"dag"`
	CreatedAt time.Time `json:"created_at"`

	RunID      string                     `json:"run_id,omitempty"` // trigger: the run to create; clear: the run
	Params     map[string]json.RawMessage `json:"params,omitempty"` // trigger
	From       time.Time                  `json:"from,omitzero"`    // backfill: first logical date, inclusive
	To         time.Time                  `json:"to,omitzero"`      // backfill: last logical date, inclusive
	Task       string                     `json:"task,omitempty"`   // clear, mark
	Downstream bool                       `json:"downstream,omitempty"`
	State      string                     `json:"state,omitempty"` // mark: "success" or "failed"
	Asset      string                     `json:"asset,omitempty"` // emit
	Event      *AssetEvent                `json:"event,omitempty"` // emit: its ID and Extra

	Result *Result `json:"result,omitempty"` // set by the leader once carried out

	index uint64 // ModifyIndex when read
}

// Result is what came of a request.
type Result struct {
	Error  string   `json:"error,omitempty"` // empty when it succeeded
	RunIDs []string `json:"run_ids,omitempty"`

	// Event is the event an emit recorded; Duplicate is set when an event with its ID was
	// recorded before, and Event is that one.
	Event     *AssetEvent `json:"event,omitempty"`
	Duplicate bool        `json:"duplicate,omitempty"`
	DoneAt    time.Time   `json:"done_at"`
}

// ErrRequestTimeout means no leader carried the request out in time: none may be elected, or
// it is busy. The request stays queued and is carried out when a leader gets to it.
var ErrRequestTimeout = errors.New("no leader carried the request out in time; it stays queued")

func (s *Store) requestsPrefix() string { return s.prefix + "requests/" }

// newRequestID returns an ID that sorts by creation time, so requests are carried out in the
// order they were made.
func newRequestID(now time.Time) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%016x-%s", now.UnixNano(), hex.EncodeToString(b[:]))
}

// Submit queues request r for the leader, giving it an ID and creation time.
func (s *Store) Submit(ctx context.Context, r *Request) error {
	if r.Kind == RequestEmit {
		if err := CheckAssetName(r.Asset); err != nil {
			return err
		}
	} else if err := checkName("DAG", r.DAG); err != nil {
		return err
	}
	now := time.Now().UTC()
	r.ID, r.CreatedAt, r.Result = newRequestID(now), now, nil
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("encode request: %w", err)
	}
	p := &consulapi.KVPair{Key: s.requestsPrefix() + r.ID, Value: b}
	if _, err := s.kv.Put(p, s.writeOpts(ctx)); err != nil {
		return fmt.Errorf("queue %s request: %w", r.Kind, err)
	}
	return nil
}

// Wait blocks until the leader has carried request id out, or ctx ends (ErrRequestTimeout),
// and returns the result. It deletes the request once it has the result.
func (s *Store) Wait(ctx context.Context, id string) (*Result, error) {
	key := s.requestsPrefix() + id
	var index uint64
	for {
		q := (&consulapi.QueryOptions{WaitIndex: index, WaitTime: blockingWait}).WithContext(ctx)
		pair, meta, err := s.kv.Get(key, q)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ErrRequestTimeout
			}
			return nil, fmt.Errorf("wait for request %s: %w", id, err)
		}
		if pair == nil {
			return nil, fmt.Errorf("request %s: %w", id, ErrNotFound)
		}
		r := &Request{}
		if err := json.Unmarshal(pair.Value, r); err != nil {
			return nil, fmt.Errorf("decode request %s: %w", id, err)
		}
		if r.Result != nil {
			_, _, _ = s.kv.DeleteCAS(&consulapi.KVPair{Key: key, ModifyIndex: pair.ModifyIndex}, s.writeOpts(ctx))
			return r.Result, nil
		}
		index = meta.LastIndex
	}
}

// Requests reads every queued request, oldest first, with a blocking query that returns when
// something under the requests prefix changed after index (0: at once). It returns the index
// to pass next.
func (s *Store) Requests(ctx context.Context, index uint64) ([]*Request, uint64, error) {
	q := (&consulapi.QueryOptions{WaitIndex: index, WaitTime: blockingWait, RequireConsistent: true}).WithContext(ctx)
	pairs, meta, err := s.kv.List(s.requestsPrefix(), q)
	if err != nil {
		return nil, index, fmt.Errorf("read requests: %w", err)
	}
	out := make([]*Request, 0, len(pairs))
	for _, p := range pairs {
		r := &Request{}
		if err := json.Unmarshal(p.Value, r); err != nil {
			// A request nobody can read can never be carried out; it is kept for a person to
			// look at, and skipped.
			continue
		}
		r.ID, r.index = strings.TrimPrefix(p.Key, s.requestsPrefix()), p.ModifyIndex
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, meta.LastIndex, nil
}

// FinishRequestOp returns the transaction operation that records r's result. It is a
// check-and-set on the request as read, so a request is carried out at most once.
func (s *Store) FinishRequestOp(r *Request, res Result) (*consulapi.TxnOp, error) {
	done := *r
	done.Result = &res
	b, err := json.Marshal(&done)
	if err != nil {
		return nil, fmt.Errorf("encode request: %w", err)
	}
	return &consulapi.TxnOp{KV: &consulapi.KVTxnOp{Verb: consulapi.KVCAS, Key: s.requestsPrefix() + r.ID, Value: b, Index: r.index}}, nil
}

// DeleteRequestOp returns the transaction operation that removes request r, carried out long
// ago and never collected by its requester.
func (s *Store) DeleteRequestOp(r *Request) *consulapi.TxnOp {
	return &consulapi.TxnOp{KV: &consulapi.KVTxnOp{Verb: consulapi.KVDeleteCAS, Key: s.requestsPrefix() + r.ID, Index: r.index}}
}

func (s *Store) pausedPrefix() string { return s.prefix + "paused/" }

// Pause is a pause or unpause set at runtime.
type Pause struct {
	Paused bool      `json:"paused"`
	At     time.Time `json:"at"` // when it was set; catch-up "none" skips what ended before an unpause
}

// SetPaused pauses or unpauses DAG dag. A paused DAG creates no scheduled runs; its running
// runs go on.
func (s *Store) SetPaused(ctx context.Context, dag string, paused bool) error {
	if err := checkName("DAG", dag); err != nil {
		return err
	}
	b, _ := json.Marshal(Pause{Paused: paused, At: time.Now().UTC()})
	p := &consulapi.KVPair{Key: s.pausedPrefix() + esc(dag), Value: b}
	if _, err := s.kv.Put(p, s.writeOpts(ctx)); err != nil {
		return fmt.Errorf("set paused of DAG %s: %w", dag, err)
	}
	return nil
}

// Paused reads the pause set at runtime for every DAG that has one, with a blocking query
// that returns when one changed after index (0: at once). DAGs missing from the map are
// paused as their definition says. It returns the index to pass next.
func (s *Store) Paused(ctx context.Context, index uint64) (map[string]Pause, uint64, error) {
	q := (&consulapi.QueryOptions{WaitIndex: index, WaitTime: blockingWait}).WithContext(ctx)
	pairs, meta, err := s.kv.List(s.pausedPrefix(), q)
	if err != nil {
		return nil, index, fmt.Errorf("read paused DAGs: %w", err)
	}
	out := map[string]Pause{}
	for _, p := range pairs {
		name, err := url.PathUnescape(strings.TrimPrefix(p.Key, s.pausedPrefix()))
		if err != nil {
			continue
		}
		var v Pause
		if json.Unmarshal(p.Value, &v) == nil {
			out[name] = v
		}
	}
	return out, meta.LastIndex, nil
}
