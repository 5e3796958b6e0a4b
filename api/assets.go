package api

import (
	"context"
	"encoding/json"
	"time"
)

// AssetEvent is one update of an asset: by a task's successful try (DAG, RunID, Task, Try and
// the try's Outputs) or posted from outside (Extra).
type AssetEvent struct {
	Asset   string          `json:"asset"`
	Seq     uint64          `json:"seq"`
	ID      string          `json:"id"`
	At      time.Time       `json:"at"`
	DAG     string          `json:"dag,omitempty"`
	RunID   string          `json:"run_id,omitempty"`
	Task    string          `json:"task,omitempty"`
	Try     int             `json:"try,omitempty"`
	Outputs json.RawMessage `json:"outputs,omitempty"`
	Extra   json.RawMessage `json:"extra,omitempty"`
}

// AssetStub is one asset in a list: every asset a task names in outlets, a DAG in
// schedule_on, or an event was recorded for.
type AssetStub struct {
	Name      string    `json:"name"`
	Seq       uint64    `json:"seq"`                 // the latest event's sequence; 0: none yet
	UpdatedAt time.Time `json:"updated_at,omitzero"` // when the latest event kept was recorded
	Producers []string  `json:"producers"`           // "DAG.TASK" of each task with it in outlets
	Consumers []string  `json:"consumers"`           // DAGs scheduled on it
}

// Asset is one asset with the events kept, newest first.
type Asset struct {
	AssetStub
	Events []AssetEvent `json:"events"`
}

// EmitRequest is the body of POST /v1/assets/{name}/events. ID makes a retried post
// idempotent: while an event with that ID is kept, posting it again records nothing and
// answers with the event recorded before. Without ID the server chooses one.
type EmitRequest struct {
	ID    string          `json:"id,omitempty"`
	Extra json.RawMessage `json:"extra,omitempty"` // a JSON object consumers read with the event
}

// EmitResult is what an emit recorded.
type EmitResult struct {
	Event     *AssetEvent `json:"event,omitempty"`
	Duplicate bool        `json:"duplicate,omitempty"` // Event was recorded before, with the same ID

	// Queued is set when no active instance recorded the event within the server's wait
	// (202 Accepted): it stays queued and is recorded once one does.
	Queued  bool   `json:"-"`
	Message string `json:"-"`
}

// Assets reaches the asset routes.
type Assets struct{ c *Client }

// Assets returns the asset routes.
func (c *Client) Assets() *Assets { return &Assets{c} }

// List returns every known asset, sorted by name.
func (a *Assets) List(ctx context.Context) ([]AssetStub, *QueryMeta, error) {
	var out []AssetStub
	qm, err := a.c.call(ctx, "GET", "/v1/assets", nil, nil, &out)
	return out, qm, err
}

// Info returns asset name with its recent events.
func (a *Assets) Info(ctx context.Context, name string) (*Asset, *QueryMeta, error) {
	var out Asset
	qm, err := a.c.call(ctx, "GET", "/v1/assets/"+esc(name), nil, nil, &out)
	if err != nil {
		return nil, nil, err
	}
	return &out, qm, nil
}

// Emit posts an event of asset name, recorded by the active instance.
func (a *Assets) Emit(ctx context.Context, name string, req *EmitRequest) (*EmitResult, error) {
	path := "/v1/assets/" + esc(name) + "/events"
	resp, err := a.c.do(ctx, "POST", path, nil, req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var out EmitResult
	if resp.StatusCode == 202 {
		var eb ErrorBody
		_ = json.NewDecoder(resp.Body).Decode(&eb)
		out.Queued, out.Message = true, eb.Error
		return &out, nil
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return nil, err
	}
	return &out, nil
}
