package state

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	consulapi "github.com/hashicorp/consul/api"
)

// Assets and their consumers live beside the runs:
//
//	P + "assets/<asset>"     JSON Asset: its sequence and latest events
//	P + "consumers/<dag>"    JSON Consumer: per asset, the last sequence the DAG consumed
//
// Both are written only by the leader, in fenced transactions: an asset event produced by a
// task in the transaction that records its try's success, one posted from outside in the
// transaction that records the request's result, and the sequences a DAG consumed in the
// transaction that creates the run they triggered. So an event is recorded once and triggers
// once, across failovers.

// Retention of asset events: an asset keeps its MaxAssetEvents latest events, fewer when they
// would not fit maxAssetBytes; its sequence goes on counting.
const (
	// MaxAssetEvents is how many events an asset keeps: enough to see a day of an hourly
	// producer and to deduplicate retried posts, while the record stays one small KV value.
	MaxAssetEvents = 100

	// maxAssetBytes bounds an asset's record so that it shares a transaction with the task
	// record whose success it follows (about 352 KB of request body, see SplitTxn); events
	// carry their task's outputs (up to 64 KiB each), so big outputs shorten what is kept.
	maxAssetBytes = 160 << 10

	// MaxTriggerEvents is how many events per asset an asset-triggered run records, the
	// newest: what its tasks read as run.asset_events.
	MaxTriggerEvents = 10
)

// AssetEvent is one update of an asset: by a task's successful try (DAG, RunID, Task, Try and
// its Outputs) or posted from outside (Extra).
type AssetEvent struct {
	Asset string    `json:"asset"`
	Seq   uint64    `json:"seq"` // 1 for an asset's first event, one more for each next
	ID    string    `json:"id"`  // unique per asset; a second event with an ID kept is a duplicate
	At    time.Time `json:"at"`

	DAG     string          `json:"dag,omitempty"`
	RunID   string          `json:"run_id,omitempty"`
	Task    string          `json:"task,omitempty"`
	Try     int             `json:"try,omitempty"`
	Outputs json.RawMessage `json:"outputs,omitempty"`
	Extra   json.RawMessage `json:"extra,omitempty"` // a JSON object an outside producer attached
}

// TaskEventID is the ID of the event try of task in run of dag records: the same however often
// a leader records the try's success, so a duplicate is recognized.
func TaskEventID(dag, run, task string, try int) string {
	return fmt.Sprintf("%s/%s/%s/%d", dag, run, task, try)
}

// Asset is an asset's record: its latest sequence and the events kept, oldest first.
type Asset struct {
	Name   string       `json:"name"`
	Seq    uint64       `json:"seq"`
	Events []AssetEvent `json:"events,omitempty"`
}

// Find returns the event with ID id among those kept, or nil.
func (a *Asset) Find(id string) *AssetEvent {
	for i := range a.Events {
		if a.Events[i].ID == id {
			return &a.Events[i]
		}
	}
	return nil
}

// Add records ev as a's next event, giving it its sequence, and drops the oldest events beyond
// the retention. It returns the event as recorded.
func (a *Asset) Add(ev AssetEvent) AssetEvent {
	a.Seq++
	ev.Asset, ev.Seq = a.Name, a.Seq
	a.Events = append(a.Events, ev)
	if n := len(a.Events) - MaxAssetEvents; n > 0 {
		a.Events = slices.Delete(a.Events, 0, n)
	}
	for len(a.Events) > 1 {
		b, _ := json.Marshal(a)
		if len(b) <= maxAssetBytes {
			break
		}
		a.Events = slices.Delete(a.Events, 0, 1)
	}
	return ev
}

// Since returns the events kept with a sequence after seq, at most the newest max.
func (a *Asset) Since(seq uint64, max int) []AssetEvent {
	var out []AssetEvent
	for _, ev := range a.Events {
		if ev.Seq > seq {
			out = append(out, ev)
		}
	}
	if len(out) > max {
		out = out[len(out)-max:]
	}
	return out
}

// Consumer is what a DAG scheduled on assets consumed: per asset, the sequence of the latest
// event that its asset-triggered runs took into account.
type Consumer struct {
	DAG      string            `json:"dag"`
	Consumed map[string]uint64 `json:"consumed"`
}

// CheckAssetName refuses asset names that cannot be keys. The DAG language restricts the
// names of outlets and schedule_on further; this guards names posted from outside.
func CheckAssetName(name string) error {
	if name == "" || len(name) > 200 || strings.ContainsFunc(name, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return fmt.Errorf("asset name %q: want 1 to 200 printable characters without spaces, such as \"warehouse.orders\" or \"s3://bucket/orders\"", name)
	}
	return nil
}

func (s *Store) assetsPrefix() string    { return s.prefix + "assets/" }
func (s *Store) consumersPrefix() string { return s.prefix + "consumers/" }

// PutAssetOp returns the transaction operation that writes asset a.
func (s *Store) PutAssetOp(a *Asset) (*consulapi.TxnOp, error) {
	b, err := json.Marshal(a)
	if err != nil {
		return nil, fmt.Errorf("encode asset %s: %w", a.Name, err)
	}
	if len(b) > maxValueSize {
		return nil, fmt.Errorf("asset %s: %w", a.Name, ErrTooLarge)
	}
	return &consulapi.TxnOp{KV: &consulapi.KVTxnOp{Verb: consulapi.KVSet, Key: s.assetsPrefix() + esc(a.Name), Value: b}}, nil
}

// PutConsumerOp returns the transaction operation that writes what DAG c.DAG consumed.
func (s *Store) PutConsumerOp(c *Consumer) (*consulapi.TxnOp, error) {
	b, err := json.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("encode consumer %s: %w", c.DAG, err)
	}
	return &consulapi.TxnOp{KV: &consulapi.KVTxnOp{Verb: consulapi.KVSet, Key: s.consumersPrefix() + esc(c.DAG), Value: b}}, nil
}

// Assets reads every asset that had an event, by name, in one consistent read.
func (s *Store) Assets(ctx context.Context) (map[string]*Asset, error) {
	out := map[string]*Asset{}
	if err := s.listJSON(ctx, s.assetsPrefix(), func(name string, b []byte) error {
		a := &Asset{}
		if err := json.Unmarshal(b, a); err != nil {
			return fmt.Errorf("decode asset %s: %w", name, err)
		}
		out[a.Name] = a
		return nil
	}); err != nil {
		return nil, fmt.Errorf("read assets: %w", err)
	}
	return out, nil
}

// Consumers reads what every DAG scheduled on assets consumed, by DAG name.
func (s *Store) Consumers(ctx context.Context) (map[string]*Consumer, error) {
	out := map[string]*Consumer{}
	if err := s.listJSON(ctx, s.consumersPrefix(), func(name string, b []byte) error {
		c := &Consumer{}
		if err := json.Unmarshal(b, c); err != nil {
			return fmt.Errorf("decode consumer %s: %w", name, err)
		}
		out[c.DAG] = c
		return nil
	}); err != nil {
		return nil, fmt.Errorf("read asset consumers: %w", err)
	}
	return out, nil
}

func (s *Store) listJSON(ctx context.Context, prefix string, f func(name string, b []byte) error) error {
	pairs, _, err := s.kv.List(prefix, s.readOpts(ctx))
	if err != nil {
		return err
	}
	for _, p := range pairs {
		name, err := url.PathUnescape(strings.TrimPrefix(p.Key, prefix))
		if err != nil {
			name = p.Key
		}
		if err := f(name, p.Value); err != nil {
			return err
		}
	}
	return nil
}
