package api

import "context"

// Health is what /v1/health answers: every instance is healthy while it serves, and says
// whether it is the active one.
type Health struct {
	Status string `json:"status"`
	Role   string `json:"role"` // active or standby
}

// Leader names the active instance.
type Leader struct {
	ServiceID string `json:"service_id"`
	Address   string `json:"address"` // where it serves the API
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

// Leader returns the active instance; an *Error with status 404 when none leads.
func (s *Status) Leader(ctx context.Context) (*Leader, error) {
	var out Leader
	if _, err := s.c.call(ctx, "GET", "/v1/status/leader", nil, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}
