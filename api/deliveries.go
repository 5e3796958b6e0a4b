package api

import (
	"context"
	"net/url"
	"time"
)

// Delivery is one webhook call a callback asked for (on_failure, on_success, on_retry or a
// deadline's on_miss), with what came of it. Payload is what is POSTed; header values read
// from Nomad Variables are never shown, only where they come from.
type Delivery struct {
	ID            string            `json:"id"`
	State         string            `json:"state"` // pending, delivered or failed
	URL           string            `json:"url"`
	Headers       map[string]string `json:"headers,omitempty"`
	SecretHeaders []SecretHeader    `json:"secret_headers,omitempty"`
	JobID         string            `json:"job_id,omitempty"` // of a callback task: its Nomad job, instead of URL
	Attempts      int               `json:"attempts"`
	NextAt        time.Time         `json:"next_at,omitzero"`
	LastError     string            `json:"last_error,omitempty"`
	CreatedAt     time.Time         `json:"created_at"`
	DeliveredAt   time.Time         `json:"delivered_at,omitzero"`
	EndedAt       time.Time         `json:"ended_at,omitzero"`
	Payload       DeliveryPayload   `json:"payload"`
}

// SecretHeader names a webhook header whose value is read from a Nomad Variable.
type SecretHeader struct {
	Name      string `json:"name"`
	Path      string `json:"path"`
	Key       string `json:"key"`
	Namespace string `json:"namespace,omitempty"`
}

// DeliveryPayload is the JSON body of a webhook call, as docs/language.md documents it.
type DeliveryPayload struct {
	DeliveryID  string    `json:"delivery_id"`
	Event       string    `json:"event"` // failure, success, retry or deadline_missed
	DAG         string    `json:"dag"`
	RunID       string    `json:"run_id"`
	LogicalDate time.Time `json:"logical_date"`
	Task        string    `json:"task,omitempty"`
	Try         int       `json:"try,omitempty"`
	State       string    `json:"state"`
	Message     string    `json:"message,omitempty"`
	URL         string    `json:"url,omitempty"`
	At          time.Time `json:"at"`
}

// DeliveryQuery selects deliveries; empty fields select all.
type DeliveryQuery struct {
	State string // pending, delivered or failed
	DAG   string
	RunID string
}

// Deliveries reaches the delivery routes.
type Deliveries struct{ c *Client }

// Deliveries returns the delivery routes.
func (c *Client) Deliveries() *Deliveries { return &Deliveries{c} }

// List returns the deliveries Consul keeps that q selects, oldest first.
func (d *Deliveries) List(ctx context.Context, q *DeliveryQuery) ([]Delivery, *QueryMeta, error) {
	v := url.Values{}
	if q != nil {
		for k, s := range map[string]string{"state": q.State, "dag": q.DAG, "run_id": q.RunID} {
			if s != "" {
				v.Set(k, s)
			}
		}
	}
	var out []Delivery
	qm, err := d.c.call(ctx, "GET", "/v1/deliveries", v, nil, &out)
	return out, qm, err
}
