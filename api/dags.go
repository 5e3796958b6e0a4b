package api

import (
	"context"
	"encoding/json"
	"net/url"
	"time"
)

// DAGListStub is one DAG in the list: what the DAG list page shows.
type DAGListStub struct {
	Name        string     `json:"name"`
	Version     string     `json:"version"`
	Description string     `json:"description,omitempty"`
	Schedule    string     `json:"schedule,omitempty"`
	Timezone    string     `json:"timezone"`
	Tags        []string   `json:"tags"`
	Tasks       int        `json:"tasks"`
	Paused      bool       `json:"paused"`
	NextRun     *time.Time `json:"next_run,omitempty"` // when the next scheduled run is due; nil when none is
	RecentRuns  []RunStub  `json:"recent_runs"`        // newest first, at most RecentRunsShown
	CreatedAt   time.Time  `json:"created_at"`
	UpdatedAt   time.Time  `json:"updated_at"`
}

// RecentRunsShown is how many recent runs the DAG list carries per DAG.
const RecentRunsShown = 5

// DAG is one applied DAG in full: its current version, runtime pause and history of versions.
type DAG struct {
	DAGListStub
	StartDate      time.Time `json:"start_date"`
	EndDate        time.Time `json:"end_date,omitzero"`
	Catchup        string    `json:"catchup"`
	MaxActiveRuns  int       `json:"max_active_runs"`
	MaxActiveTasks int       `json:"max_active_tasks"`
	Params         []Param   `json:"params"`
	TaskList       []Task    `json:"task_list"` // sorted by name
	Edges          []Edge    `json:"edges"`
	Versions       []Version `json:"versions"` // newest first
	Source         string    `json:"source"`   // the dag block of this version as written

	// ScheduleOn is the assets condition the DAG is scheduled on ({"asset": NAME}, {"all":
	// [...]} or {"any": [...]}), and WaitsFor where each of its assets stands; both absent for
	// a DAG not scheduled on assets.
	ScheduleOn json.RawMessage `json:"schedule_on,omitempty"`
	WaitsFor   []AssetWait     `json:"waits_for,omitempty"`
}

// AssetWait is where one asset of a DAG's schedule_on stands: Updated when an event arrived
// since the DAG's last asset-triggered run (Latest past Consumed).
type AssetWait struct {
	Asset    string `json:"asset"`
	Consumed uint64 `json:"consumed"` // the last event's sequence a run of the DAG consumed; 0: none
	Latest   uint64 `json:"latest"`   // the asset's latest event's sequence; 0: none yet
	Updated  bool   `json:"updated"`
}

// Param is a parameter a manual run takes.
type Param struct {
	Name        string          `json:"name"`
	Type        string          `json:"type"`
	Default     json.RawMessage `json:"default,omitempty"`
	Description string          `json:"description,omitempty"`
	Required    bool            `json:"required,omitempty"`
}

// Task is one task of a DAG version.
type Task struct {
	Name        string   `json:"name"`
	Group       string   `json:"group,omitempty"` // the group block it is in; Name is then "GROUP.TASK"
	DependsOn   []string `json:"depends_on"`
	TriggerRule string   `json:"trigger_rule"`
	Queue       string   `json:"queue"`
	Driver      string   `json:"driver"`
	Retries     int      `json:"retries"`
	Timeout     string   `json:"timeout,omitempty"`
}

// Edge is a dependency: To runs after From.
type Edge struct {
	From string `json:"from"`
	To   string `json:"to"`
}

// Version is one applied version of a DAG.
type Version struct {
	Version   string    `json:"version"`
	CreatedAt time.Time `json:"created_at"`
}

// TriggerRequest asks for a manual run.
type TriggerRequest struct {
	Params map[string]json.RawMessage `json:"params,omitempty"` // JSON values, checked against the DAG's params
	RunID  string                     `json:"run_id,omitempty"` // empty: manual__<now>
}

// BackfillRequest asks for runs of every interval whose logical date is within [From, To].
type BackfillRequest struct {
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
}

// ActionResult is what the leader answered to an action.
type ActionResult struct {
	RunIDs []string `json:"run_ids,omitempty"` // runs the action created

	// Queued is set when no active instance carried the action out within the server's wait
	// (202 Accepted): it stays queued and is carried out once one does. RunIDs is empty then,
	// and Message is what the server said.
	Queued  bool   `json:"-"`
	Message string `json:"-"`
}

// DAGs reaches the DAG routes.
type DAGs struct{ c *Client }

// DAGs returns the DAG routes.
func (c *Client) DAGs() *DAGs { return &DAGs{c} }

// List returns the applied DAGs, sorted by name.
func (d *DAGs) List(ctx context.Context, o *DAGListOptions) ([]DAGListStub, *QueryMeta, error) {
	q := url.Values{}
	if o != nil {
		if o.PerPage > 0 {
			q.Set("per_page", itoa(o.PerPage))
		}
		if o.NextToken != "" {
			q.Set("next_token", o.NextToken)
		}
		o.Wait.set(q)
	}
	var out []DAGListStub
	qm, err := d.c.call(ctx, "GET", "/v1/dags", q, nil, &out)
	return out, qm, err
}

// DAGListOptions picks a page of the DAG list, and long-polls it.
type DAGListOptions struct {
	PerPage   int    // zero: every DAG in one answer
	NextToken string // QueryMeta.NextToken of the previous page
	Wait      Wait
}

// Info returns DAG name; version picks an older applied version ("" is the current one).
func (d *DAGs) Info(ctx context.Context, name, version string) (*DAG, *QueryMeta, error) {
	var q url.Values
	if version != "" {
		q = url.Values{"version": {version}}
	}
	var out DAG
	qm, err := d.c.call(ctx, "GET", "/v1/dags/"+esc(name), q, nil, &out)
	if err != nil {
		return nil, nil, err
	}
	return &out, qm, nil
}

// Trigger creates a manual run of DAG name once the leader has carried the request out.
func (d *DAGs) Trigger(ctx context.Context, name string, req *TriggerRequest) (*ActionResult, error) {
	return d.c.action(ctx, "/v1/dags/"+esc(name)+"/runs", req)
}

// Backfill creates the runs of DAG name for the intervals in req.
func (d *DAGs) Backfill(ctx context.Context, name string, req *BackfillRequest) (*ActionResult, error) {
	return d.c.action(ctx, "/v1/dags/"+esc(name)+"/backfill", req)
}

// Pause stops new runs of DAG name from being scheduled; runs in progress finish.
func (d *DAGs) Pause(ctx context.Context, name string) error {
	_, err := d.c.call(ctx, "POST", "/v1/dags/"+esc(name)+"/pause", nil, nil, nil)
	return err
}

// Unpause resumes scheduling DAG name.
func (d *DAGs) Unpause(ctx context.Context, name string) error {
	_, err := d.c.call(ctx, "POST", "/v1/dags/"+esc(name)+"/unpause", nil, nil, nil)
	return err
}
