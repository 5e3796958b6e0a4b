package api

import (
	"context"
	"time"
)

// Health is what /v1/health answers: every instance is healthy while it serves, and says
// whether it is the active one.
type Health struct {
	Status string    `json:"status"`
	Role   string    `json:"role"` // active or standby
	Time   time.Time `json:"time"` // the instance's clock when it answered, for dagflow doctor
}

// Leader names the active instance.
type Leader struct {
	ServiceID string `json:"service_id"`
	Address   string `json:"address"` // where it serves the API
}

// HistoryStatus says how far back runs go: what Consul keeps, and whether long-term history
// in PostgreSQL keeps the rest.
type HistoryStatus struct {
	Enabled   bool   `json:"enabled"`         // a history database is configured
	Available bool   `json:"available"`       // and answers now
	Error     string `json:"error,omitempty"` // why it does not, when it does not
	KeepRuns  int    `json:"keep_runs"`       // finished runs per DAG kept in Consul
}

// Status reaches the status routes.
type Status struct{ c *Client }

// Status returns the status routes.
func (c *Client) Status() *Status { return &Status{c} }

// Health asks the instance for its health and role. It needs no token.
func (s *Status) Health(ctx context.Context) (*Health, error) {
	var out Health
	if _, err := s.c.call(ctx, "GET", "/v1/health", nil, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// History says whether runs older than Consul's retention are kept, and can be read now.
func (s *Status) History(ctx context.Context) (*HistoryStatus, error) {
	var out HistoryStatus
	if _, err := s.c.call(ctx, "GET", "/v1/status/history", nil, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Leader returns the active instance; an *Error with status 404 when none leads.
func (s *Status) Leader(ctx context.Context) (*Leader, error) {
	var out Leader
	if _, err := s.c.call(ctx, "GET", "/v1/status/leader", nil, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}
