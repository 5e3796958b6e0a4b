package nomadexec

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/dagflow/dagflow/hcl/spec"
)

const (
	// DefaultPrefix starts the ID of every job dagflow submits unless an installation picks its
	// own. It makes dagflow's jobs stand out in `nomad job status` and lets a watch tell them
	// from the cluster's other jobs.
	DefaultPrefix = "dagflow-"

	// MaxJobIDLen bounds the length of a job ID in bytes. Nomad itself only refuses IDs with a
	// space or a NUL byte (Job.Validate in nomad/structs/structs.go, v1.11.3: "Job ID contains a
	// space", "Job ID contains a null character") and sets no length limit, but a job ID
	// travels in URL paths, log lines, terminal columns and alloc names ("<job>.<group>[0]"),
	// and 128 bytes is the bound Nomad puts on the names it does limit (namespaces, ACL
	// policies, variable paths such as nomad/jobs/<job ID>).
	MaxJobIDLen = 128

	// MaxPrefixLen bounds a job ID prefix, so that at least about 60 bytes of every job ID
	// are left for the DAG, task and run names that make it readable.
	MaxPrefixLen = 32

	// GroupName is the name of the one task group of every attempt's job. Names are fixed
	// rather than taken from the task, so that the job ID alone says which task it runs and
	// NOMAD_GROUP_NAME, NOMAD_TASK_NAME and log paths are the same for every task.
	GroupName = "attempt"

	// TaskName is the name of the one task of every attempt's job; see GroupName.
	TaskName = "task"

	// DefaultKillSignal is the signal a stopped task (a timeout, a cancelled run) gets first.
	// SIGTERM rather than Nomad's default SIGINT: it is what schedulers and container runtimes
	// send, so programs and shells handle it as "clean up and exit".
	DefaultKillSignal = "SIGTERM"

	// DefaultKillTimeout is how long Nomad waits after DefaultKillSignal before it kills a
	// stopped task with SIGKILL. It is short so a stopped attempt frees its slot on the node and
	// in its queue quickly; Nomad's default is 5 s as well, and clients cap it at 30 s.
	DefaultKillTimeout = 5 * time.Second

	// DefaultStopOnClientAfter is how long a Nomad client that lost contact with the servers
	// keeps an attempt running before it kills it. A minute rides out a short network blip, and
	// bounds how long an attempt cut off from the cluster can run next to the retry dagflow
	// starts elsewhere. It also delays any replacement Nomad would place for a lost allocation
	// by this long (plus the kill timeout), which leaves dagflow time to stop the job first.
	DefaultStopOnClientAfter = time.Minute

	// DefaultLogMaxFiles and DefaultLogMaxFileSizeMB bound the logs Nomad keeps of one
	// attempt to two 5 MiB files per stream: dagflow copies a tail of them out when the task
	// ends, and the 20 MiB they may take stay well inside Nomad's default 300 MB ephemeral disk.
	DefaultLogMaxFiles      = 2
	DefaultLogMaxFileSizeMB = 5
)

// Meta keys dagflow puts on every job it submits; the values say exactly which attempt the
// job runs, as the job ID may have had to shorten or replace characters of the names.
const (
	MetaDAG    = "dagflow_dag"
	MetaRun    = "dagflow_run"
	MetaTask   = "dagflow_task"
	MetaTry    = "dagflow_try"
	MetaPrefix = "dagflow_prefix" // the job ID prefix, which identifies the installation
)

// Attempt identifies one try of one task instance in one run and carries what its job needs.
type Attempt struct {
	DAG   string // DAG name
	RunID string // run ID, such as "scheduled__2026-11-22T00:00:00Z"
	Task  string // task instance name, such as "load" or "fetch[eu]"
	Try   int    // 1-based

	// Queued is when the scheduler recorded the try: with the job ID, it names this attempt
	// (see MetaQueued and the guard), so every leader must pass the recorded time.
	Queued time.Time

	Spec  *spec.Task  // the task rendered for this attempt (spec.DAG.Render)
	Queue *spec.Queue // the task's queue; nil is the implicit default queue

	// Env is what the scheduler adds to the task's environment (DAGFLOW_DAG, DAGFLOW_RUN_ID,
	// DAGFLOW_TASK, DAGFLOW_TRY, DAGFLOW_LOGICAL_DATE, ...). It wins over Spec.Env.
	Env map[string]string
}

// JobID returns the Nomad job ID of attempt a under prefix ("" is DefaultPrefix). It depends
// on nothing but its arguments, so every leader computes the same ID for the same attempt.
//
// The ID reads PREFIX DAG "." TASK "." RUN "." TRY, for example
// "dagflow-etl.load.manual__42.1", so `nomad job status` shows which attempt a job runs. It
// holds only the bytes [A-Za-z0-9._-] (Nomad accepts more, see MaxJobIDLen, but these need no
// quoting in URLs, shells or Consul keys) and is at most MaxJobIDLen bytes long.
//
// When a name holds another character (each becomes "_"; "." too in the DAG and task names,
// where it would blur where a name ends) or the ID would be too long (the DAG, task and run
// names are shortened, the longest first), the ID ends in "-" and 12 hex digits of a SHA-256
// of the prefix and the exact DAG, task, run and try:
// "dagflow-etl.fetch_eu_.scheduled__2026-11-22T00_00_00Z.2-aeca06f74aae". IDs stay unique per
// attempt: an ID without the hash spells its names out unchanged and can be split back into
// them (the DAG and task names hold no ".", the try is the last part), and no such ID ends in
// "-" and hex digits after its last ".", as a hashed one does.
//
// A prefix with other characters or longer than MaxPrefixLen is mapped and cut the same way
// (see ValidatePrefix); a try below 0 shows as 0 with the hash.
func JobID(prefix string, a Attempt) string {
	p := normalizePrefix(prefix)
	dag, m1 := mapName(a.DAG, false)
	task, m2 := mapName(a.Task, false)
	run, m3 := mapName(a.RunID, true)
	changed := m1 || m2 || m3 || prefix != "" && p != prefix
	try := a.Try
	if try < 0 {
		try, changed = 0, true
	}
	tryStr := strconv.Itoa(try)

	const hashLen = 12
	plainLen := len(p) + len(dag) + len(task) + len(run) + len(tryStr) + 3
	if !changed && plainLen <= MaxJobIDLen {
		return p + dag + "." + task + "." + run + "." + tryStr
	}
	budget := MaxJobIDLen - len(p) - len(tryStr) - 3 - (1 + hashLen)
	parts := shorten([]string{dag, task, run}, budget)
	return p + parts[0] + "." + parts[1] + "." + parts[2] + "." + tryStr + "-" + attemptHash(p, a)[:hashLen]
}

// ValidatePrefix reports whether prefix can start job IDs as it is: at most MaxPrefixLen
// bytes of [A-Za-z0-9._-]. JobID maps and shortens a prefix that is not, so two such prefixes
// may end up the same; configuration should refuse them with this error instead.
//
// Two installations that share a Nomad cluster need prefixes of which neither starts the
// other ("dagflow-" and "dagflow-prod-" do not do): a watch selects jobs by prefix.
func ValidatePrefix(prefix string) error {
	if prefix == "" {
		return fmt.Errorf("job ID prefix is empty")
	}
	if len(prefix) > MaxPrefixLen {
		return fmt.Errorf("job ID prefix %q is %d bytes long, more than %d", prefix, len(prefix), MaxPrefixLen)
	}
	for i := 0; i < len(prefix); i++ {
		if !idByte(prefix[i], true) {
			return fmt.Errorf("job ID prefix %q holds %q: use only letters, digits, \".\", \"_\" and \"-\"", prefix, prefix[i])
		}
	}
	return nil
}

// normalizePrefix returns the prefix JobID uses for prefix.
func normalizePrefix(prefix string) string {
	if prefix == "" {
		return DefaultPrefix
	}
	p, _ := mapName(prefix, true)
	if len(p) > MaxPrefixLen {
		p = p[:MaxPrefixLen]
	}
	return p
}

// idByte reports whether b may appear in a job ID part; dot says whether "." may.
func idByte(b byte, dot bool) bool {
	return 'a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9' ||
		b == '_' || b == '-' || dot && b == '.'
}

// mapName replaces every character of s that may not appear in a job ID part with "_", one
// per character (one per byte of invalid UTF-8), and reports whether it replaced any.
func mapName(s string, dot bool) (string, bool) {
	ok := true
	for i := 0; i < len(s); i++ {
		if !idByte(s[i], dot) {
			ok = false
			break
		}
	}
	if ok {
		return s, false
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		if idByte(s[i], dot) {
			b.WriteByte(s[i])
			i++
			continue
		}
		_, size := utf8.DecodeRuneInString(s[i:])
		b.WriteByte('_')
		i += size
	}
	return b.String(), true
}

// shorten cuts the longest of parts until their lengths add up to at most budget, so that
// short names stay whole and long ones share what is left evenly.
func shorten(parts []string, budget int) []string {
	total := func(limit int) int {
		n := 0
		for _, p := range parts {
			n += min(len(p), limit)
		}
		return n
	}
	longest := 0
	for _, p := range parts {
		longest = max(longest, len(p))
	}
	limit := longest
	for limit > 0 && total(limit) > budget {
		limit--
	}
	out := make([]string, len(parts))
	for i, p := range parts {
		out[i] = p[:min(len(p), limit)]
	}
	return out
}

// attemptHash returns the hex SHA-256 of the (normalized) prefix and the exact DAG, task, run
// and try, each string preceded by its length so that no two tuples encode the same.
func attemptHash(prefix string, a Attempt) string {
	var b strings.Builder
	for _, s := range []string{prefix, a.DAG, a.Task, a.RunID} {
		b.WriteString(strconv.Itoa(len(s)))
		b.WriteByte(':')
		b.WriteString(s)
	}
	b.WriteString(strconv.Itoa(a.Try))
	sum := sha256.Sum256([]byte(b.String()))
	return hex.EncodeToString(sum[:])
}

// Job builds the Nomad job that runs attempt a, under the ID JobID(prefix, a).
//
// The job depends on nothing but its arguments (no clock, no randomness; maps serialize
// sorted), so building it twice gives the same spec byte for byte. That matters: Nomad starts
// a completed batch job again when it is registered with a changed spec.
//
// It is a batch job with one group (GroupName) of one task (TaskName):
//   - Nomad never re-runs it: restart attempts 0 with mode "fail", reschedule attempts 0 and not
//     unlimited. dagflow owns retries and submits each one as a new job.
//   - A node that stops heartbeating does not get the attempt replaced behind dagflow's back:
//     disconnect.replace is false, and disconnect.stop_on_client_after
//     (DefaultStopOnClientAfter) makes a cut-off client kill the task, and delays any
//     replacement Nomad still places for a lost allocation until then. dagflow treats an
//     allocation that turns "unknown" or "lost" as a lost attempt: it stops the job, which
//     rules out a replacement, and retries under a new ID.
//   - Placement comes from the queue: namespace (none: the client's), node pool (none:
//     "default"), datacenters (none: every one, "*") and constraints.
//   - Priority, CPU (or cores), memory, memory_max and devices come from the task when set,
//     else Nomad's defaults apply.
//   - The task's artifacts go on the task; the volumes of its queue and its own go on the
//     group, as Nomad wants them, and its volume mounts on the task.
//   - The driver config is {"command", "args"} for raw_exec and exec, {"image", "command",
//     "args"} for docker (each only when set), with the keys of the task's config added; a
//     key of the config does not replace one set from the task's own fields.
//   - The environment is the task's, overlaid with a.Env.
//   - Meta (MetaDAG, MetaRun, MetaTask, MetaTry, MetaPrefix, MetaQueued) names the attempt
//     exactly.
//   - A guard template fails the task before it starts when the job was purged after its try
//     ended and then registered again (see guard.go).
//   - A stopped task gets DefaultKillSignal, then SIGKILL after DefaultKillTimeout.
//   - Logs are bounded by DefaultLogMaxFiles and DefaultLogMaxFileSizeMB.
//   - The task's secrets, raw templates and vault block become Nomad template and vault
//     blocks (see addSecrets); the spec names variables and keys, never values.
//
// The error wraps ErrInvalidAttempt: a missing spec, an unknown driver, a config that is not
// a JSON object.
func Job(prefix string, a Attempt) (*nomadapi.Job, error) {
	if a.Spec == nil {
		return nil, fmt.Errorf("build job for %s: %w: no task spec", describe(a), ErrInvalidAttempt)
	}
	config, err := driverConfig(a.Spec)
	if err != nil {
		return nil, fmt.Errorf("build job for %s: %w: %w", describe(a), ErrInvalidAttempt, err)
	}
	id := JobID(prefix, a)

	env := maps.Clone(a.Spec.Env)
	if len(a.Env) > 0 && env == nil {
		env = map[string]string{}
	}
	maps.Copy(env, a.Env)

	task := &nomadapi.Task{
		Name:        TaskName,
		Driver:      a.Spec.Driver,
		Config:      config,
		Env:         env,
		KillSignal:  DefaultKillSignal,
		KillTimeout: ptr(DefaultKillTimeout),
		LogConfig: &nomadapi.LogConfig{
			MaxFiles:      ptr(DefaultLogMaxFiles),
			MaxFileSizeMB: ptr(DefaultLogMaxFileSizeMB),
		},
	}
	addSecrets(task, a.Spec)
	queued := a.Queued.UTC().Format(time.RFC3339Nano)
	addGuard(task, id, queued)
	task.Resources = taskResources(a.Spec.Resources)

	group := &nomadapi.TaskGroup{
		Name:  ptr(GroupName),
		Count: ptr(1),
		Tasks: []*nomadapi.Task{task},
		RestartPolicy: &nomadapi.RestartPolicy{
			Attempts: ptr(0),
			Mode:     ptr(nomadapi.RestartPolicyModeFail),
		},
		ReschedulePolicy: &nomadapi.ReschedulePolicy{
			Attempts:  ptr(0),
			Unlimited: ptr(false),
		},
		Disconnect: &nomadapi.DisconnectStrategy{
			StopOnClientAfter: ptr(DefaultStopOnClientAfter),
			Replace:           ptr(false),
		},
	}

	q := a.Queue
	if q == nil {
		q = &spec.Queue{Name: spec.DefaultQueue}
	}
	addStorage(group, task, a.Spec, q)
	job := &nomadapi.Job{
		ID:          ptr(id),
		Name:        ptr(id),
		Type:        ptr(nomadapi.JobTypeBatch),
		Datacenters: []string{"*"},
		NodePool:    ptr(nomadapi.NodePoolDefault),
		TaskGroups:  []*nomadapi.TaskGroup{group},
		Meta: map[string]string{
			MetaDAG:    a.DAG,
			MetaRun:    a.RunID,
			MetaTask:   a.Task,
			MetaTry:    strconv.Itoa(a.Try),
			MetaPrefix: normalizePrefix(prefix),
			MetaQueued: queued,
		},
	}
	if q.Namespace != "" {
		job.Namespace = ptr(q.Namespace)
	}
	if q.NodePool != "" {
		job.NodePool = ptr(q.NodePool)
	}
	if len(q.Datacenters) > 0 {
		job.Datacenters = append([]string(nil), q.Datacenters...)
	}
	for _, c := range q.Constraints {
		op := c.Operator
		if op == "" {
			op = "="
		}
		job.Constraints = append(job.Constraints, nomadapi.NewConstraint(c.Attribute, op, c.Value))
	}
	if a.Spec.Priority > 0 {
		job.Priority = ptr(a.Spec.Priority)
	}
	return job, nil
}

// driverConfig returns the task's driver config: its command, args and image under the keys
// its driver takes, over the keys of its config object.
func driverConfig(t *spec.Task) (map[string]any, error) {
	config := map[string]any{}
	if len(bytes.TrimSpace(t.Config)) > 0 {
		dec := json.NewDecoder(bytes.NewReader(t.Config))
		dec.UseNumber() // numbers go back to Nomad as written, not as float64
		var v any
		if err := dec.Decode(&v); err != nil {
			return nil, fmt.Errorf("decode driver config: %w", err)
		}
		switch v := v.(type) {
		case map[string]any:
			config = v
		case nil:
		default:
			return nil, fmt.Errorf("driver config is a JSON %T, not an object", v)
		}
	}
	switch t.Driver {
	case spec.DriverRawExec, spec.DriverExec:
		if t.Command != "" {
			config["command"] = t.Command
		}
	case spec.DriverDocker:
		if t.Image != "" {
			config["image"] = t.Image
		}
		if t.Command != "" {
			config["command"] = t.Command
		}
	default:
		return nil, fmt.Errorf("unknown driver %q", t.Driver)
	}
	if len(t.Args) > 0 {
		config["args"] = append([]string(nil), t.Args...)
	}
	return config, nil
}

// describe names an attempt in messages.
func describe(a Attempt) string {
	return fmt.Sprintf("attempt %d of task %q in run %q of DAG %q", a.Try, a.Task, a.RunID, a.DAG)
}

func ptr[T any](v T) *T { return &v }
