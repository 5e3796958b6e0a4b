package state

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"time"

	consulapi "github.com/hashicorp/consul/api"

	"github.com/dagflow/dagflow/hcl/spec"
)

// Deliveries of callbacks live beside the runs:
//
//	P + "deliveries/<id>"   JSON Delivery: one webhook call a state change asked for
//
// A delivery is written by the leader in the same fenced transaction as the state change that
// causes it (a try's end, a run's end, a missed deadline), so a leader that dies after the
// change leaves the delivery to the next one, and one that dies before it wrote neither. Its
// ID is derived from its cause (DeliveryID), so recording the same cause again cannot make a
// second delivery. The leader then calls the webhook until it answers 2xx or the attempts run
// out, and records each outcome, fenced; a call made but not recorded before a failover is made
// again by the next leader, with the same ID: delivery is at least once.

// DeliveryState is where a delivery stands.
type DeliveryState string

// Delivery states.
const (
	DeliveryPending   DeliveryState = "pending"   // to be called (again) at NextAt
	DeliveryDelivered DeliveryState = "delivered" // the receiver answered 2xx
	DeliveryFailed    DeliveryState = "failed"    // every attempt failed; LastError says how the last did
)

// Delivery is one webhook call, or one task run, of one callback for one event, with what came
// of it.
type Delivery struct {
	ID      string  `json:"id"`
	Payload Payload `json:"payload"` // what is POSTed, as JSON; a task's callback.* values

	// URL, Headers and SecretHeaders are the webhook's. The values of SecretHeaders are read
	// from Nomad at each attempt and never stored.
	URL           string              `json:"url"`
	Headers       map[string]string   `json:"headers,omitempty"`
	SecretHeaders []spec.SecretHeader `json:"secret_headers,omitempty"`

	// Task is set instead of URL for a callback's task: rendered for the event when the
	// delivery was recorded, it is registered as Nomad job JobID, create-only, so it runs once
	// whichever leader registers it. Delivered means Nomad accepted the job.
	Task  *spec.Task `json:"task,omitempty"`
	JobID string     `json:"job_id,omitempty"`

	State       DeliveryState `json:"state"`
	Attempts    int           `json:"attempts"`
	NextAt      time.Time     `json:"next_at,omitzero"` // when Pending: when the next attempt is due
	LastError   string        `json:"last_error,omitempty"`
	CreatedAt   time.Time     `json:"created_at"`
	DeliveredAt time.Time     `json:"delivered_at,omitzero"`
	EndedAt     time.Time     `json:"ended_at,omitzero"` // when it was delivered or failed for good
}

// Payload is the JSON body of a webhook call; docs/language.md documents it for receivers.
type Payload struct {
	DeliveryID  string    `json:"delivery_id"` // the same for every attempt: receivers drop duplicates by it
	Event       string    `json:"event"`       // spec.EventFailure, EventSuccess, EventRetry or EventDeadlineMissed
	DAG         string    `json:"dag"`
	RunID       string    `json:"run_id"`
	LogicalDate time.Time `json:"logical_date"`
	Task        string    `json:"task,omitempty"` // empty for an event of the run
	Try         int       `json:"try,omitempty"`
	State       string    `json:"state"` // the run's or task instance's state after the event
	Message     string    `json:"message,omitempty"`
	URL         string    `json:"url,omitempty"` // the run's page in the UI, when the server's address is configured
	At          time.Time `json:"at"`            // when the event happened
}

// DeliveryID is the ID of the delivery of webhook index of the callback for event on the cause
// (dag, run, task, try; task empty and try 0 for the run), which happened at at. The same cause
// always gives the same ID; at tells apart two ends of one run, cleared in between.
func DeliveryID(event, dag, run, task string, try, index int, at time.Time) string {
	h := sha256.New()
	for _, part := range []string{event, dag, run, task, strconv.Itoa(try), strconv.Itoa(index), at.UTC().Format(time.RFC3339Nano)} {
		h.Write([]byte(part))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))[:32]
}

func (s *Store) deliveriesPrefix() string { return s.prefix + "deliveries/" }

// PutDeliveryOp returns the transaction operation that writes delivery d.
func (s *Store) PutDeliveryOp(d *Delivery) (*consulapi.TxnOp, error) {
	if err := checkName("delivery", d.ID); err != nil {
		return nil, err
	}
	b, err := json.Marshal(d)
	if err != nil {
		return nil, fmt.Errorf("encode delivery %s: %w", d.ID, err)
	}
	if len(b) > maxValueSize {
		return nil, fmt.Errorf("delivery %s: %w", d.ID, ErrTooLarge)
	}
	return &consulapi.TxnOp{KV: &consulapi.KVTxnOp{Verb: consulapi.KVSet, Key: s.deliveriesPrefix() + d.ID, Value: b}}, nil
}

// DeleteDeliveryOp returns the transaction operation that deletes delivery id.
func (s *Store) DeleteDeliveryOp(id string) *consulapi.TxnOp {
	return &consulapi.TxnOp{KV: &consulapi.KVTxnOp{Verb: consulapi.KVDelete, Key: s.deliveriesPrefix() + id}}
}

// DeliveryFilter selects deliveries; empty fields select all.
type DeliveryFilter struct {
	State DeliveryState
	DAG   string
	RunID string
}

func (f DeliveryFilter) match(d *Delivery) bool {
	return (f.State == "" || d.State == f.State) && (f.DAG == "" || d.Payload.DAG == f.DAG) && (f.RunID == "" || d.Payload.RunID == f.RunID)
}

// Deliveries reads the stored deliveries that f selects, oldest first, in one consistent read.
func (s *Store) Deliveries(ctx context.Context, f DeliveryFilter) ([]*Delivery, error) {
	pairs, _, err := s.kv.List(s.deliveriesPrefix(), s.readOpts(ctx))
	if err != nil {
		return nil, fmt.Errorf("read deliveries: %w", err)
	}
	var out []*Delivery
	for _, p := range pairs {
		d := &Delivery{}
		if err := json.Unmarshal(p.Value, d); err != nil {
			return nil, fmt.Errorf("decode delivery %s: %w", p.Key, err)
		}
		if f.match(d) {
			out = append(out, d)
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		if !out[i].CreatedAt.Equal(out[j].CreatedAt) {
			return out[i].CreatedAt.Before(out[j].CreatedAt)
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}
