package nomadexec

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/dagflow/dagflow/hcl/spec"
)

// jobIDRe is what every job ID must look like.
var jobIDRe = regexp.MustCompile(`^[A-Za-z0-9._-]{1,128}$`)

func att(dag, task, run string, try int) Attempt {
	return Attempt{DAG: dag, Task: task, RunID: run, Try: try}
}

func TestJobID(t *testing.T) {
	long := strings.Repeat("r", 300)
	tests := map[string]struct {
		prefix string
		a      Attempt
		want   string // a regexp, anchored
	}{
		"plain":          {"", att("etl", "load", "manual__42", 1), `dagflow-etl\.load\.manual__42\.1`},
		"custom prefix":  {"df-prod-", att("etl", "load", "manual__42", 3), `df-prod-etl\.load\.manual__42\.3`},
		"dot in run":     {"", att("etl", "load", "manual__1.5", 1), `dagflow-etl\.load\.manual__1\.5\.1`},
		"for_each task":  {"", att("etl", "fetch[eu]", "manual__42", 1), `dagflow-etl\.fetch_eu_\.manual__42\.1-[0-9a-f]{12}`},
		"timestamp run":  {"", att("etl", "load", "scheduled__2026-11-22T00:00:00+01:00", 2), `dagflow-etl\.load\.scheduled__2026-11-22T00_00_00_01_00\.2-[0-9a-f]{12}`},
		"unicode":        {"", att("étl", "load", "run ü", 1), `dagflow-_tl\.load\.run__\.1-[0-9a-f]{12}`},
		"dot in dag":     {"", att("a.b", "c", "r", 1), `dagflow-a_b\.c\.r\.1-[0-9a-f]{12}`},
		"empty names":    {"", att("", "", "", 0), `dagflow-\.\.\.0`},
		"negative try":   {"", att("etl", "load", "r", -1), `dagflow-etl\.load\.r\.0-[0-9a-f]{12}`},
		"bad prefix":     {"df:prod/", att("etl", "load", "r", 1), `df_prod_etl\.load\.r\.1-[0-9a-f]{12}`},
		"long run":       {"", att("etl", "load", long, 1), `dagflow-etl\.load\.r{96}\.1-[0-9a-f]{12}`},
		"fits exactly":   {"", att("etl", "load", strings.Repeat("r", 128-len("dagflow-etl.load..1")), 1), `dagflow-etl\.load\.r{109}\.1`},
		"one byte over":  {"", att("etl", "load", strings.Repeat("r", 129-len("dagflow-etl.load..1")), 1), `dagflow-etl\.load\.r{96}\.1-[0-9a-f]{12}`},
		"all long":       {"", att(strings.Repeat("d", 64), strings.Repeat("t", 64)+"["+strings.Repeat("k", 64)+"]", long, 12), `dagflow-d{34}\.t{34}\.r{34}\.12-[0-9a-f]{12}`},
		"long prefix":    {strings.Repeat("p", 40), att("etl", "load", "r", 1), `p{32}etl\.load\.r\.1-[0-9a-f]{12}`},
		"short dag kept": {"", att("a", strings.Repeat("t", 100), long, 1), `dagflow-a\.t{51}\.r{51}\.1-[0-9a-f]{12}`},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			id := JobID(tt.prefix, tt.a)
			if !regexp.MustCompile(`^` + tt.want + `$`).MatchString(id) {
				t.Errorf("JobID = %q (%d bytes), want match for %s", id, len(id), tt.want)
			}
			if !jobIDRe.MatchString(id) {
				t.Errorf("JobID = %q: not 1-128 bytes of [A-Za-z0-9._-]", id)
			}
			if again := JobID(tt.prefix, tt.a); again != id {
				t.Errorf("JobID not deterministic: %q then %q", id, again)
			}
		})
	}
}

// TestJobIDUnique checks that tuples that look alike, or map or shorten to the same text,
// get different IDs.
func TestJobIDUnique(t *testing.T) {
	long := strings.Repeat("x", 200)
	attempts := []Attempt{
		att("etl", "fetch[eu]", "r", 1),
		att("etl", "fetch_eu_", "r", 1),
		att("etl", "fetch(eu)", "r", 1),
		att("etl", "fetch[eu]", "r", 2),
		att("etl", "fetch[us]", "r", 1),
		att("etl", "load", "scheduled__2026-11-22T00:00:00Z", 1),
		att("etl", "load", "scheduled__2026-11-22T00_00_00Z", 1),
		att("etl", "load", "scheduled__2026-11-22T00+00:00Z", 1),
		// Separators: which part a "." belongs to.
		att("a", "b", "c.d", 1),
		att("a", "b.c", "d", 1),
		att("a.b", "c", "d", 1),
		att("a", "b", "c", 11),
		att("a", "b", "c.1", 1),
		att("a", "b", "c.1-0", 1),
		att("a", "b", "c", 1),
		att("a", "b", "c", 0),
		att("a", "b", "c", -1),
		att("a", "b", "c_", 1),
		att("a_", "b", "c", 1),
		// Long runs that differ only past the cut.
		att("etl", "load", long+"1", 1),
		att("etl", "load", long+"2", 1),
		att("etl", "load", long, 1),
		att("etl", "load", long[:120], 1),
		// Unicode that maps to the same number of "_".
		att("etl", "load", "ä", 1),
		att("etl", "load", "ö", 1),
		att("etl", "load", "\xff", 1),
		att("etl", "load", "_", 1),
		// Empty parts.
		att("", "", "", 1),
		att("", "", "_", 1),
	}
	seen := map[string]Attempt{}
	for _, a := range attempts {
		id := JobID("", a)
		if !jobIDRe.MatchString(id) {
			t.Errorf("JobID(%+v) = %q: not 1-128 bytes of [A-Za-z0-9._-]", a, id)
		}
		if prev, ok := seen[id]; ok {
			t.Errorf("JobID(%+v) = JobID(%+v) = %q", a, prev, id)
		}
		seen[id] = a
	}
	if JobID("", att("a", "b", "c", 1)) != JobID(DefaultPrefix, att("a", "b", "c", 1)) ||
		JobID("", att("a", "b[k]", "c", 1)) != JobID(DefaultPrefix, att("a", "b[k]", "c", 1)) {
		t.Errorf(`prefix "" and DefaultPrefix give different IDs`)
	}
}

func FuzzJobID(f *testing.F) {
	f.Add("etl", "fetch[eu]", "scheduled__2026-11-22T00:00:00Z", 1, "etl", "fetch_eu_", "scheduled__2026-11-22T00:00:00Z", 1)
	f.Add("a", "b", "c.d", 1, "a", "b.c", "d", 1)
	f.Add("a", "b", "c", 11, "a", "b", "c.1", 1)
	f.Add("etl", "load", strings.Repeat("r", 200)+"1", 1, "etl", "load", strings.Repeat("r", 200)+"2", 1)
	f.Add("ä", "", "", 0, "ö", "", "", 0)
	f.Fuzz(func(t *testing.T, dag1, task1, run1 string, try1 int, dag2, task2, run2 string, try2 int) {
		a1, a2 := att(dag1, task1, run1, try1), att(dag2, task2, run2, try2)
		id1, id2 := JobID("", a1), JobID("", a2)
		for _, id := range []string{id1, id2} {
			if !jobIDRe.MatchString(id) {
				t.Fatalf("JobID = %q: not 1-128 bytes of [A-Za-z0-9._-]", id)
			}
		}
		if id1 != JobID("", a1) {
			t.Fatalf("JobID(%+v) not deterministic", a1)
		}
		same := dag1 == dag2 && task1 == task2 && run1 == run2 && try1 == try2
		if !same && id1 == id2 {
			t.Fatalf("JobID(%+v) = JobID(%+v) = %q", a1, a2, id1)
		}
	})
}

func TestValidatePrefix(t *testing.T) {
	for _, p := range []string{"dagflow-", "df.prod-", "A_1"} {
		if err := ValidatePrefix(p); err != nil {
			t.Errorf("ValidatePrefix(%q) = %v, want nil", p, err)
		}
	}
	for _, p := range []string{"", "df prod", "df/", "dä", strings.Repeat("p", MaxPrefixLen+1)} {
		if err := ValidatePrefix(p); err == nil {
			t.Errorf("ValidatePrefix(%q) = nil, want an error", p)
		}
	}
}

// testAttempt is an attempt of a raw_exec task running script with /bin/sh.
func testAttempt(dag, run, task string, try int, script string) Attempt {
	return Attempt{
		DAG: dag, RunID: run, Task: task, Try: try,
		Spec: &spec.Task{
			Name:      task,
			Driver:    spec.DriverRawExec,
			Command:   "/bin/sh",
			Args:      []string{"-c", script},
			Env:       map[string]string{"A": "1", "B": "2", "C": "3"},
			Resources: spec.Resources{CPU: 100, MemoryMB: 64},
			Priority:  60,
		},
		Env: map[string]string{"DAGFLOW_DAG": dag, "DAGFLOW_RUN_ID": run, "DAGFLOW_TASK": task, "DAGFLOW_TRY": fmt.Sprint(try), "B": "over"},
	}
}

func TestJob(t *testing.T) {
	a := testAttempt("etl", "manual__1", "fetch[eu]", 2, "echo hi")
	a.Queued = time.Date(2026, 11, 22, 0, 0, 1, 5, time.FixedZone("CET", 3600))
	a.Spec.Config = json.RawMessage(`{"pid_mode": "host", "big": 12345678901234567890, "command": "ignored"}`)
	a.Queue = &spec.Queue{
		Name: "gpu", Namespace: "batch", NodePool: "gpu", Datacenters: []string{"dc1", "dc2"},
		Constraints: []spec.Constraint{{Attribute: "${attr.kernel.name}", Value: "linux"}},
	}
	job, err := Job("", a)
	if err != nil {
		t.Fatal(err)
	}
	first, err := json.Marshal(job)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 20; i++ { // map order differs from build to build
		again, _ := Job("", a)
		b, _ := json.Marshal(again)
		if string(b) != string(first) {
			t.Fatalf("Job is not deterministic:\n%s\n%s", first, b)
		}
	}

	tg := job.TaskGroups[0]
	task := tg.Tasks[0]
	got := map[string]any{
		"id":          *job.ID,
		"type":        *job.Type,
		"namespace":   *job.Namespace,
		"pool":        *job.NodePool,
		"dcs":         job.Datacenters,
		"constraint":  *job.Constraints[0],
		"priority":    *job.Priority,
		"meta":        job.Meta,
		"group":       *tg.Name,
		"count":       *tg.Count,
		"restart":     []any{*tg.RestartPolicy.Attempts, *tg.RestartPolicy.Mode},
		"reschedule":  []any{*tg.ReschedulePolicy.Attempts, *tg.ReschedulePolicy.Unlimited},
		"disconnect":  []any{*tg.Disconnect.StopOnClientAfter, *tg.Disconnect.Replace},
		"task":        task.Name,
		"driver":      task.Driver,
		"config":      fmt.Sprint(task.Config),
		"env":         task.Env,
		"resources":   []int{*task.Resources.CPU, *task.Resources.MemoryMB},
		"killTimeout": *task.KillTimeout,
		"logs":        []int{*task.LogConfig.MaxFiles, *task.LogConfig.MaxFileSizeMB},
		"guard":       []string{*task.Templates[0].DestPath, *task.Templates[0].ChangeMode},
	}
	want := map[string]any{
		"id":         JobID("", a),
		"type":       "batch",
		"namespace":  "batch",
		"pool":       "gpu",
		"dcs":        []string{"dc1", "dc2"},
		"constraint": nomadapi.Constraint{LTarget: "${attr.kernel.name}", Operand: "=", RTarget: "linux"},
		"priority":   60,
		"meta": map[string]string{
			MetaDAG: "etl", MetaRun: "manual__1", MetaTask: "fetch[eu]", MetaTry: "2", MetaPrefix: DefaultPrefix,
			MetaQueued: "2026-11-21T23:00:01.000000005Z",
		},
		"group":       GroupName,
		"count":       1,
		"restart":     []any{0, "fail"},
		"reschedule":  []any{0, false},
		"disconnect":  []any{DefaultStopOnClientAfter, false},
		"task":        TaskName,
		"driver":      "raw_exec",
		"config":      "map[args:[-c echo hi] big:12345678901234567890 command:/bin/sh pid_mode:host]",
		"env":         map[string]string{"A": "1", "B": "over", "C": "3", "DAGFLOW_DAG": "etl", "DAGFLOW_RUN_ID": "manual__1", "DAGFLOW_TASK": "fetch[eu]", "DAGFLOW_TRY": "2"},
		"resources":   []int{100, 64},
		"killTimeout": DefaultKillTimeout,
		"logs":        []int{DefaultLogMaxFiles, DefaultLogMaxFileSizeMB},
		"guard":       []string{GuardFile, "noop"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("job (-want +got):\n%s", diff)
	}
	if !strings.Contains(string(first), `"big":12345678901234567890`) {
		t.Errorf("config number not kept as written: %s", first)
	}
}

func TestJobDefaults(t *testing.T) {
	a := Attempt{DAG: "d", RunID: "r", Task: "t", Try: 1, Spec: &spec.Task{Driver: spec.DriverDocker, Image: "alpine:3"}}
	job, err := Job("", a)
	if err != nil {
		t.Fatal(err)
	}
	task := job.TaskGroups[0].Tasks[0]
	if job.Namespace != nil || job.Priority != nil || task.Resources != nil || task.Env != nil {
		t.Errorf("unset fields set: namespace %v, priority %v, resources %v, env %v", job.Namespace, job.Priority, task.Resources, task.Env)
	}
	if diff := cmp.Diff([]string{"*"}, job.Datacenters); diff != "" {
		t.Errorf("datacenters (-want +got):\n%s", diff)
	}
	if *job.NodePool != "default" {
		t.Errorf("node pool = %q, want default", *job.NodePool)
	}
	if diff := cmp.Diff(map[string]any{"image": "alpine:3"}, task.Config); diff != "" {
		t.Errorf("docker config (-want +got):\n%s", diff)
	}
}

func TestJobErrors(t *testing.T) {
	tests := map[string]struct {
		spec *spec.Task
		want string
	}{
		"no spec":           {nil, "no task spec"},
		"unknown driver":    {&spec.Task{Driver: "podman"}, `unknown driver "podman"`},
		"config not object": {&spec.Task{Driver: "exec", Config: json.RawMessage(`[1]`)}, "not an object"},
		"config not JSON":   {&spec.Task{Driver: "exec", Config: json.RawMessage(`{`)}, "decode driver config"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := Job("", Attempt{DAG: "d", RunID: "r", Task: "t", Try: 1, Spec: tt.spec})
			if !errors.Is(err, ErrInvalidAttempt) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Job error = %v, want ErrInvalidAttempt containing %q", err, tt.want)
			}
		})
	}
}

func ExampleJobID() {
	fmt.Println(JobID("", Attempt{DAG: "etl", Task: "load", RunID: "manual__42", Try: 1}))
	fmt.Println(JobID("", Attempt{DAG: "etl", Task: "fetch[eu]", RunID: "scheduled__2026-11-22T00:00:00Z", Try: 2}))
	// Output:
	// dagflow-etl.load.manual__42.1
	// dagflow-etl.fetch_eu_.scheduled__2026-11-22T00_00_00Z.2-aeca06f74aae
}
