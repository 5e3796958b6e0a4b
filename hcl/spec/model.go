// Package spec is the DAG language: it parses directories of HCL files into DAG and queue
// definitions, validates them with diagnostics that point at source, formats files canonically,
// and renders the runtime values (${run.id}, ${params.NAME}, ...) a task's strings refer to.
//
// The HashiCorp HCL library is imported under its own name, hcl; this package is called spec so
// the two never clash.
//
// Definitions are plain data: they serialize to canonical JSON, and the content hash of that JSON
// (Hash) addresses an applied version, so the same definition always has the same version.
package spec

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"time"

	"github.com/hashicorp/hcl/v2"
)

// Catch-up policies: which missed intervals a DAG runs when it is created, unpaused or the
// scheduler was away.
const (
	CatchupAll    = "all"    // every interval since start_date
	CatchupLatest = "latest" // only the most recent missed interval
	CatchupNone   = "none"   // nothing missed; the first run is the next tick
)

// Drivers a task may run with; each is a Nomad task driver.
const (
	DriverRawExec = "raw_exec"
	DriverExec    = "exec"
	DriverDocker  = "docker"
)

// DefaultQueue is the queue of a task that names none. It exists without being declared (any
// node in the default node pool, every datacenter), and a `queue "default"` block replaces it.
const DefaultQueue = "default"

// TriggerRules lists Airflow's trigger rules, which decide when a task may run given the final
// states of its upstream tasks.
var TriggerRules = []string{
	"all_success", "all_failed", "all_done", "one_success", "one_failed",
	"none_failed", "none_failed_min_one_success", "none_skipped", "always",
}

// Config is everything a directory of DAG files declares.
type Config struct {
	DAGs   []*DAG   // sorted by name
	Queues []*Queue // sorted by name; includes the implicit default queue unless declared
}

// DAG is one validated DAG definition, with defaults merged into its tasks and for_each
// expansions resolved.
type DAG struct {
	Name           string    `json:"name"`
	Description    string    `json:"description,omitempty"`
	Tags           []string  `json:"tags,omitempty"`
	Schedule       string    `json:"schedule,omitempty"` // empty: manual triggers only
	Timezone       string    `json:"timezone"`           // IANA name, "UTC" when not set
	StartDate      time.Time `json:"start_date"`
	EndDate        time.Time `json:"end_date,omitzero"`
	Catchup        string    `json:"catchup"`
	MaxActiveRuns  int       `json:"max_active_runs"`
	MaxActiveTasks int       `json:"max_active_tasks"`
	Paused         bool      `json:"paused"`           // paused when first applied; later pause/unpause is runtime state
	Params         []*Param  `json:"params,omitempty"` // in declaration order, which a trigger form follows
	Tasks          []*Task   `json:"tasks"`            // sorted by name

	// ScheduleOn is set on a DAG scheduled on assets: it runs when the condition holds over
	// the assets updated since its last asset-triggered run (see AssetCondition), besides its
	// cron Schedule, if it has one.
	ScheduleOn *AssetCondition `json:"schedule_on,omitempty"`

	// OnFailure and OnSuccess are called when a run ends so; OnRetry when any task of it is
	// up for retry (besides the task's own). Deadline is when a run should be done by.
	// See callbacks.go.
	OnFailure *Callback `json:"on_failure,omitempty"`
	OnSuccess *Callback `json:"on_success,omitempty"`
	OnRetry   *Callback `json:"on_retry,omitempty"`
	Deadline  *Deadline `json:"deadline,omitempty"`

	// Source is the text of the dag block as written, kept with each applied version so users
	// can read what they applied. It is not part of the definition and not hashed.
	Source    string    `json:"-"`
	DeclRange hcl.Range `json:"-"`
}

// Param is a typed parameter that a manual trigger fills in; scheduled runs use the defaults.
type Param struct {
	Name        string          `json:"name"`
	Type        string          `json:"type"` // string, number, bool, list(string), map(string), ...
	Default     json.RawMessage `json:"default,omitempty"`
	Description string          `json:"description,omitempty"`
	Required    bool            `json:"required,omitempty"`

	DeclRange hcl.Range `json:"-"`
}

// Task is one task instance of a DAG. A task block with for_each becomes one Task per key,
// named "block[key]"; one with for_each over an upstream's outputs stays one Task (MapOver),
// whose instances a run creates.
type Task struct {
	Name        string   `json:"name"`
	Group       string   `json:"group,omitempty"`      // the group block the task is in (group.go); Name is then "GROUP.TASK"
	DependsOn   []string `json:"depends_on,omitempty"` // task instance names, sorted
	TriggerRule string   `json:"trigger_rule"`
	Queue       string   `json:"queue"`
	Driver      string   `json:"driver"`

	// Command, Args, Image, Env values and Config may hold runtime values as template
	// sequences (${run.id}); Render resolves them for one attempt.
	Command string            `json:"command,omitempty"`
	Args    []string          `json:"args,omitempty"`
	Image   string            `json:"image,omitempty"`
	Config  json.RawMessage   `json:"config,omitempty"` // extra driver configuration, as JSON
	Env     map[string]string `json:"env,omitempty"`

	Resources Resources `json:"resources"`

	// Secrets, Templates and Vault are rendered by Nomad inside the allocation (secrets.go);
	// no runtime values are rendered into them.
	Secrets   []Secret   `json:"secrets,omitempty"` // sorted by name
	Templates []Template `json:"templates,omitempty"`
	Vault     *Vault     `json:"vault,omitempty"`

	// Artifacts are fetched into the task's directory before it starts; their strings may hold
	// runtime values, as Command does. Volumes are the task's own, sorted by name (its queue's
	// join them when the job is built); VolumeMounts mount them into the task.
	Artifacts    []Artifact    `json:"artifacts,omitempty"`
	Volumes      []Volume      `json:"volumes,omitempty"`
	VolumeMounts []VolumeMount `json:"volume_mounts,omitempty"`

	Retries                 int      `json:"retries"`
	RetryDelay              Duration `json:"retry_delay"`
	RetryExponentialBackoff bool     `json:"retry_exponential_backoff,omitempty"`
	MaxRetryDelay           Duration `json:"max_retry_delay,omitempty"`
	Timeout                 Duration `json:"timeout,omitempty"` // zero: no timeout

	// QueuedTimeout bounds how long an attempt may wait for Nomad to place it; see
	// QueuedLimit. Nil: DefaultQueuedTimeout.
	QueuedTimeout *Duration `json:"queued_timeout,omitempty"`
	Priority      int       `json:"priority"`

	// MapOver is set on a task mapped over an upstream's outputs (for_each =
	// tasks.NAME.outputs.KEY): one Task whose instances, named "name[key]", are created at run
	// time, at most MaxMapLength of them. Its templates may use each.key and each.value.
	MapOver      *MapOver `json:"map_over,omitempty"`
	MaxMapLength int      `json:"max_map_length,omitempty"`

	// Outlets are the assets a successful try of the task updates, sorted: each success
	// records an asset event for each of them.
	Outlets []string `json:"outlets,omitempty"`

	// OnFailure, OnSuccess and OnRetry are called when a try of the task fails for good,
	// succeeds, or fails with a retry left; Deadline is when the task should be done by,
	// counted as the run's is. See callbacks.go.
	OnFailure *Callback `json:"on_failure,omitempty"`
	OnSuccess *Callback `json:"on_success,omitempty"`
	OnRetry   *Callback `json:"on_retry,omitempty"`
	Deadline  *Deadline `json:"deadline,omitempty"`

	// Sensor is set on a task declared with a sensor block (sensor.go): the leader evaluates
	// its condition and it runs no Nomad job, so the job settings above are empty.
	Sensor *Sensor `json:"sensor,omitempty"`

	DeclRange hcl.Range `json:"-"`
}

// Resources are what one attempt reserves on a Nomad node.
type Resources struct {
	CPU      int `json:"cpu"`       // MHz; 0 when Cores is set, as Nomad takes one or the other
	MemoryMB int `json:"memory_mb"` // MiB

	MemoryMaxMB int      `json:"memory_max_mb,omitempty"` // MiB the task may use above MemoryMB; 0: none
	Cores       int      `json:"cores,omitempty"`         // whole CPU cores reserved for the task alone
	Devices     []Device `json:"devices,omitempty"`       // sorted by name
}

// Queue routes tasks to Nomad nodes and bounds how many of its tasks run at once.
type Queue struct {
	Name        string       `json:"name"`
	Description string       `json:"description,omitempty"`
	Namespace   string       `json:"namespace,omitempty"` // empty: the client's namespace
	NodePool    string       `json:"node_pool,omitempty"` // empty: "default"
	Datacenters []string     `json:"datacenters,omitempty"`
	Constraints []Constraint `json:"constraints,omitempty"`
	MaxRunning  int          `json:"max_running,omitempty"` // zero: unbounded
	Volumes     []Volume     `json:"volumes,omitempty"`     // joined to every task of the queue; sorted by name

	Source    string    `json:"-"` // the queue block as written; see DAG.Source
	DeclRange hcl.Range `json:"-"`
}

// Constraint is a Nomad placement constraint, with Nomad's attribute, operator and value.
type Constraint struct {
	Attribute string `json:"attribute,omitempty"`
	Operator  string `json:"operator,omitempty"`
	Value     string `json:"value,omitempty"`
}

// Duration is a time.Duration that serializes as a Go duration string ("1m30s").
type Duration time.Duration

// MarshalJSON implements json.Marshaler.
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

// UnmarshalJSON implements json.Unmarshaler.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// Hash is the content address of a definition: the hex SHA-256 of its canonical JSON.
func Hash(v any) (string, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}
