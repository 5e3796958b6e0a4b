package nomadexec

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/go-hclog"
	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/dagflow/dagflow/hcl/spec"
	"github.com/dagflow/dagflow/internal/devstack"
)

// recorder keeps every update a watch sends, by job ID, with the time it arrived.
type recorder struct {
	mu      sync.Mutex
	updates map[string][]recorded
	closed  chan struct{}
}

type recorded struct {
	AllocUpdate
	at time.Time
}

func record(ch <-chan AllocUpdate) *recorder {
	r := &recorder{updates: map[string][]recorded{}, closed: make(chan struct{})}
	go func() {
		defer close(r.closed)
		for u := range ch {
			r.mu.Lock()
			r.updates[u.JobID] = append(r.updates[u.JobID], recorded{u, time.Now()})
			r.mu.Unlock()
		}
	}()
	return r
}

func (r *recorder) of(jobID string) []recorded {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.updates[jobID])
}

// waitFor waits until an update of jobID satisfies ok and returns it.
func (r *recorder) waitFor(t *testing.T, jobID string, timeout time.Duration, what string, ok func(AllocUpdate) bool) recorded {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		for _, u := range r.of(jobID) {
			if ok(u.AllocUpdate) {
				return u
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no update of job %s with %s after %s; got:\n%s", jobID, what, timeout, r.dump(jobID))
	return recorded{}
}

func (r *recorder) dump(jobID string) string {
	s := ""
	for _, u := range r.of(jobID) {
		s += fmt.Sprintf("  index %d alloc %.8s client %s desired %s task %s failed %v exited %v exit %d snapshot %v msg %q\n",
			u.Index, u.AllocID, u.ClientStatus, u.DesiredStatus, u.TaskState, u.Failed, u.Exited, u.ExitCode, u.Snapshot, u.Message)
	}
	return s
}

func status(s string) func(AllocUpdate) bool {
	return func(u AllocUpdate) bool { return u.ClientStatus == s }
}

// testExecutor returns an Executor on the Nomad at addr, with token secretID unless it is
// "", logging to t at trace level, and a client of that Nomad with the same token.
func testExecutor(t *testing.T, addr, secretID string) (*Executor, *nomadapi.Client) {
	t.Helper()
	nc := &nomadapi.Config{Address: addr, SecretID: secretID, TLSConfig: &nomadapi.TLSConfig{}}
	client, err := nomadapi.NewClient(nc)
	if err != nil {
		t.Fatal(err)
	}
	e, err := New(nc, "", hclog.New(&hclog.LoggerOptions{Name: "test", Level: hclog.Trace, Output: newTestWriter(t)}))
	if err != nil {
		t.Fatal(err)
	}
	return e, client
}

// TestExecutor runs attempts on a real Nomad dev agent, sharing one agent across subtests.
func TestExecutor(t *testing.T) {
	n := devstack.StartNomadT(t, nil)
	nc := &nomadapi.Config{Address: "http://" + n.HTTPAddr, TLSConfig: &nomadapi.TLSConfig{}}
	client, err := nomadapi.NewClient(nc)
	if err != nil {
		t.Fatal(err)
	}
	logger := hclog.New(&hclog.LoggerOptions{Name: "test", Level: hclog.Debug, Output: newTestWriter(t)})
	e, err := New(nc, "", logger)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 80*time.Second)
	defer cancel()

	t.Run("validate", func(t *testing.T) {
		variants := map[string]*spec.Task{
			"raw_exec": {Driver: spec.DriverRawExec, Command: "/bin/sh", Args: []string{"-c", "true"}},
			"exec":     {Driver: spec.DriverExec, Command: "/bin/true", Config: json.RawMessage(`{"pid_mode":"private"}`)},
			"docker": {Driver: spec.DriverDocker, Image: "alpine:3.20", Command: "sh", Args: []string{"-c", "true"},
				Config: json.RawMessage(`{"network_mode":"host","labels":{"team":"data"}}`)},
			"docker without command": {Driver: spec.DriverDocker, Image: "alpine:3.20"},
			"devices and storage":    storageTask(),
		}
		for name, ts := range variants {
			a := Attempt{DAG: "validate", RunID: "manual__1", Task: "t[" + name + "]", Try: 1, Spec: ts,
				Queue: &spec.Queue{Datacenters: []string{"dc*"}, Constraints: []spec.Constraint{{Attribute: "${attr.kernel.name}", Operator: "=", Value: "linux"}}, Volumes: storageQueue().Volumes}}
			job, err := Job("", a)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			resp, _, err := client.Jobs().Validate(job, nil)
			if err != nil {
				t.Fatalf("%s: validate: %v", name, err)
			}
			if resp.Error != "" || len(resp.ValidationErrors) > 0 || resp.Warnings != "" {
				t.Errorf("%s: Nomad refuses the job: %s %v (warnings: %s)", name, resp.Error, resp.ValidationErrors, resp.Warnings)
			}
		}
	})

	// Follow everything from the start; a second watch started later checks the snapshot.
	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	rec := record(e.Watch(watchCtx, 0))

	okAttempt := testAttempt("etl", "manual__1", "echo[ok]", 1, "echo out; echo err >&2; sleep 1; exit 0")
	failAttempt := testAttempt("etl", "manual__1", "fail", 1, "echo failing; exit 3")
	okID, failID := e.JobID(okAttempt), e.JobID(failAttempt)

	t.Run("submit once", func(t *testing.T) {
		start := time.Now()
		registered, err := e.Submit(ctx, okAttempt)
		submitLatency := time.Since(start)
		if err != nil || !registered {
			t.Fatalf("Submit = %v, %v; want true, nil", registered, err)
		}
		if registered, err := e.Submit(ctx, okAttempt); err != nil || registered {
			t.Fatalf("second Submit = %v, %v; want false, nil", registered, err)
		}
		pending := rec.waitFor(t, okID, 10*time.Second, "status pending", status("pending"))
		rec.waitFor(t, okID, 10*time.Second, "status running", status("running"))
		done := rec.waitFor(t, okID, 15*time.Second, "status complete", status("complete"))
		if done.ExitCode != 0 || !done.Exited || done.Failed || done.TaskState != "dead" || done.Snapshot {
			t.Errorf("complete update = %+v, want a dead task that exited 0", done.AllocUpdate)
		}
		t.Logf("submit latency %s; submit -> pending event %s; task finished -> complete event %s",
			submitLatency, pending.at.Sub(start), done.at.Sub(done.FinishedAt))

		st, err := e.Status(ctx, okID)
		if err != nil {
			t.Fatal(err)
		}
		if !st.Exists || len(st.Allocs) != 1 || st.Allocs[0].ClientStatus != "complete" || st.Meta[MetaTask] != "echo[ok]" {
			t.Fatalf("Status = %+v, want one complete allocation", st)
		}
		if a := st.Allocs[0]; !a.Exited || a.ExitCode != 0 || a.AllocID != done.AllocID || a.StartedAt.IsZero() || a.FinishedAt.Before(a.StartedAt) {
			t.Errorf("Status allocation = %+v", a)
		}

		// Nomad keeps the restart and reschedule policies as given.
		job, _, err := client.Jobs().Info(okID, nil)
		if err != nil {
			t.Fatal(err)
		}
		tg := job.TaskGroups[0]
		if *tg.RestartPolicy.Attempts != 0 || *tg.ReschedulePolicy.Attempts != 0 || *tg.ReschedulePolicy.Unlimited {
			t.Errorf("Nomad changed the policies: restart %d, reschedule %d unlimited %v",
				*tg.RestartPolicy.Attempts, *tg.ReschedulePolicy.Attempts, *tg.ReschedulePolicy.Unlimited)
		}

		// Submitting the finished attempt again neither registers nor runs it.
		if registered, err := e.Submit(ctx, okAttempt); err != nil || registered {
			t.Fatalf("Submit after completion = %v, %v; want false, nil", registered, err)
		}
	})

	t.Run("nothing written past the deadline", func(t *testing.T) {
		// A process that wakes from a freeze with the registration about to be written and
		// the context's timer not fired yet: the transport would write it.
		a := testAttempt("etl", "manual__1", "late", 1, "exit 0")
		woke := wokenContext{Context: ctx, deadline: time.Now().Add(-time.Millisecond)}
		if registered, err := e.Submit(woke, a); err == nil || registered || !errors.Is(err, ErrNomad) {
			t.Fatalf("Submit past its deadline = %v, %v; want false, an ErrNomad error", registered, err)
		}
		// Had the late request gone out, this one would find the job there; the connections
		// the refused request left behind serve it.
		if registered, err := e.Submit(ctx, a); err != nil || !registered {
			t.Fatalf("Submit in time = %v, %v; want true, nil (the late request must not have registered it)", registered, err)
		}
	})

	t.Run("logs", func(t *testing.T) {
		st, err := e.Status(ctx, okID)
		if err != nil || len(st.Allocs) != 1 {
			t.Fatalf("Status = %+v, %v", st, err)
		}
		alloc := st.Allocs[0].AllocID
		stdout, stderr, err := e.Logs(ctx, alloc, 1024)
		if err != nil || string(stdout) != "out\n" || string(stderr) != "err\n" {
			t.Errorf("Logs = %q, %q, %v; want \"out\\n\", \"err\\n\"", stdout, stderr, err)
		}
		stdout, stderr, err = e.Logs(ctx, alloc, 2)
		if err != nil || string(stdout) != "t\n" || string(stderr) != "r\n" {
			t.Errorf("Logs(max 2) = %q, %q, %v; want \"t\\n\", \"r\\n\"", stdout, stderr, err)
		}
		if _, _, err := e.Logs(ctx, "00000000-0000-0000-0000-000000000000", 10); !errors.Is(err, ErrNotFound) {
			t.Errorf("Logs of an unknown allocation: error %v, want ErrNotFound", err)
		}
	})

	t.Run("logs in another namespace", func(t *testing.T) {
		// The Executor's client has no namespace set: Logs and ReadLog name the allocation
		// only, and Nomad finds it in its own namespace.
		if _, err := client.Namespaces().Register(&nomadapi.Namespace{Name: "etl-team"}, nil); err != nil {
			t.Fatal(err)
		}
		// A watch of every namespace follows those that existed when it subscribed.
		wctx, stop := context.WithCancel(ctx)
		defer stop()
		nsRec := record(e.Watch(wctx, 0))
		a := testAttempt("etl", "manual__1", "elsewhere", 1, "echo out; echo err >&2")
		a.Queue = &spec.Queue{Name: "team", Namespace: "etl-team"}
		if _, err := e.Submit(ctx, a); err != nil {
			t.Fatal(err)
		}
		done := nsRec.waitFor(t, e.JobID(a), 15*time.Second, "status complete", status("complete"))
		if done.Namespace != "etl-team" {
			t.Errorf("update namespace %q, want etl-team", done.Namespace)
		}
		stdout, stderr, err := e.Logs(ctx, done.AllocID, 1024)
		if err != nil || string(stdout) != "out\n" || string(stderr) != "err\n" {
			t.Errorf("Logs = %q, %q, %v; want \"out\\n\", \"err\\n\"", stdout, stderr, err)
		}
		data, next, err := e.ReadLog(ctx, done.AllocID, "stdout", 1, 100)
		if err != nil || string(data) != "ut\n" || next != 4 {
			t.Errorf("ReadLog from offset 1 = %q, %d, %v; want \"ut\\n\", 4", data, next, err)
		}
	})

	t.Run("failure is not retried by nomad", func(t *testing.T) {
		if registered, err := e.Submit(ctx, failAttempt); err != nil || !registered {
			t.Fatalf("Submit = %v, %v; want true, nil", registered, err)
		}
		failed := rec.waitFor(t, failID, 15*time.Second, "status failed", status("failed"))
		if !failed.Exited || failed.ExitCode != 3 || !failed.Failed || failed.Message == "" {
			t.Errorf("failed update = %+v, want exit code 3", failed.AllocUpdate)
		}
		t.Logf("failed task message: %q", failed.Message)
		time.Sleep(5 * time.Second) // Nomad would restart at once, or reschedule within seconds
		st, err := e.Status(ctx, failID)
		if err != nil {
			t.Fatal(err)
		}
		if len(st.Allocs) != 1 || st.Status != "dead" {
			t.Errorf("Status after failure = %+v, want a dead job with one allocation", st)
		}
		if a := st.Allocs[0]; a.ClientStatus != "failed" || a.ExitCode != 3 {
			t.Errorf("allocation = %+v, want failed with exit code 3", a)
		}
		for _, u := range rec.of(failID) {
			if u.AllocID != failed.AllocID {
				t.Errorf("watch saw a second allocation %s", u.AllocID)
			}
		}
	})

	t.Run("stop and purge", func(t *testing.T) {
		a := testAttempt("etl", "manual__1", "sleep", 1, "sleep 60")
		id := e.JobID(a)
		if _, err := e.Submit(ctx, a); err != nil {
			t.Fatal(err)
		}
		rec.waitFor(t, id, 10*time.Second, "status running", status("running"))
		start := time.Now()
		if err := e.Stop(ctx, id); err != nil {
			t.Fatalf("Stop: %v", err)
		}
		stopped := rec.waitFor(t, id, 15*time.Second, "a terminal status", func(u AllocUpdate) bool { return u.Terminal() })
		t.Logf("stop -> terminal event %s: %s, desired %s, exit %d signal %d, %q",
			stopped.at.Sub(start), stopped.ClientStatus, stopped.DesiredStatus, stopped.ExitCode, stopped.Signal, stopped.Message)
		if stopped.DesiredStatus != "stop" {
			t.Errorf("stopped allocation desired status %q, want stop", stopped.DesiredStatus)
		}
		if err := e.Stop(ctx, id); err != nil {
			t.Errorf("second Stop: %v", err)
		}
		st, err := e.Status(ctx, id)
		if err != nil || !st.Exists || !st.Stopped {
			t.Fatalf("Status after Stop = %+v, %v; want a stopped job", st, err)
		}
		// A stopped attempt is not run again by a re-submission.
		if registered, err := e.Submit(ctx, a); err != nil || registered {
			t.Fatalf("Submit after Stop = %v, %v; want false, nil", registered, err)
		}

		if err := e.Purge(ctx, id); err != nil {
			t.Fatalf("Purge: %v", err)
		}
		st, err = e.Status(ctx, id)
		if err != nil || st.Exists || len(st.Allocs) != 0 {
			t.Fatalf("Status after Purge = %+v, %v; want not found", st, err)
		}
		if err := e.Purge(ctx, id); err != nil {
			t.Errorf("second Purge: %v", err)
		}
		if err := e.Stop(ctx, id); err != nil {
			t.Errorf("Stop of a purged job: %v", err)
		}
	})

	t.Run("snapshot on start", func(t *testing.T) {
		wctx, stop := context.WithCancel(ctx)
		defer stop()
		late := record(e.Watch(wctx, 0))
		u := late.waitFor(t, okID, 10*time.Second, "status complete", status("complete"))
		if !u.Snapshot || u.ExitCode != 0 {
			t.Errorf("late watch update = %+v, want a snapshot of the complete allocation", u.AllocUpdate)
		}
		u = late.waitFor(t, failID, 10*time.Second, "status failed", status("failed"))
		if !u.Snapshot || u.ExitCode != 3 {
			t.Errorf("late watch update = %+v, want a snapshot of the failed allocation", u.AllocUpdate)
		}

		// A watch resuming after the last index reports nothing old.
		var last uint64
		for _, id := range []string{okID, failID} {
			for _, u := range rec.of(id) {
				last = max(last, u.Index)
			}
		}
		resumed := record(e.Watch(wctx, last+1))
		time.Sleep(time.Second)
		for _, id := range []string{okID, failID} {
			if got := resumed.of(id); len(got) != 0 {
				t.Errorf("watch resumed after index %d reported job %s again:\n%s", last, id, resumed.dump(id))
			}
		}

		stop()
		for _, r := range []*recorder{late, resumed} {
			select {
			case <-r.closed:
			case <-time.After(5 * time.Second):
				t.Fatal("watch channel not closed after its context ended")
			}
		}
	})

	t.Run("foreign jobs ignored", func(t *testing.T) {
		other, err := New(nc, "other-", logger)
		if err != nil {
			t.Fatal(err)
		}
		a := testAttempt("etl", "manual__1", "foreign", 1, "exit 0")
		if _, err := other.Submit(ctx, a); err != nil {
			t.Fatal(err)
		}
		wctx, stop := context.WithCancel(ctx)
		defer stop()
		otherRec := record(other.Watch(wctx, 0))
		otherRec.waitFor(t, other.JobID(a), 15*time.Second, "status complete", status("complete"))
		if got := rec.of(other.JobID(a)); len(got) != 0 {
			t.Errorf("watch of prefix %q reported a job of prefix %q:\n%s", e.Prefix(), other.Prefix(), rec.dump(other.JobID(a)))
		}
		if got := otherRec.of(okID); len(got) != 0 {
			t.Errorf("watch of prefix %q reported a job of prefix %q", other.Prefix(), e.Prefix())
		}
	})

	t.Run("driver failure", func(t *testing.T) {
		a := testAttempt("etl", "manual__1", "missing", 1, "")
		a.Spec.Command, a.Spec.Args = "/no/such/program", nil
		id := e.JobID(a)
		if _, err := e.Submit(ctx, a); err != nil {
			t.Fatal(err)
		}
		failed := rec.waitFor(t, id, 15*time.Second, "status failed", status("failed"))
		if !failed.Failed || failed.Exited || failed.Message == "" {
			t.Errorf("failed update = %+v, want a failed task that never exited, with a message", failed.AllocUpdate)
		}
		t.Logf("driver failure message: %q", failed.Message)
		stdout, stderr, err := e.Logs(ctx, failed.AllocID, 100)
		if err != nil || len(stdout)+len(stderr) != 0 {
			t.Errorf("Logs of a task that never started = %q, %q, %v; want empty, nil", stdout, stderr, err)
		}
	})

	t.Run("index backwards", func(t *testing.T) {
		wctx, stop := context.WithCancel(ctx)
		defer stop()
		// An index beyond Nomad's own, as after the cluster was rebuilt: a full snapshot.
		r := record(e.Watch(wctx, 1<<40))
		u := r.waitFor(t, okID, 10*time.Second, "status complete", status("complete"))
		if !u.Snapshot {
			t.Errorf("update = %+v, want a snapshot", u.AllocUpdate)
		}
	})

	t.Run("reconnect", func(t *testing.T) {
		p := startProxy(t, n.HTTPAddr)
		pe, err := New(&nomadapi.Config{Address: "http://" + p.addr(), TLSConfig: &nomadapi.TLSConfig{}}, "", logger)
		if err != nil {
			t.Fatal(err)
		}
		wctx, stop := context.WithCancel(ctx)
		defer stop()
		r := record(pe.Watch(wctx, 0))
		r.waitFor(t, okID, 10*time.Second, "status complete", status("complete"))

		// Cut the stream and keep Nomad unreachable while an attempt runs and ends.
		p.setDown(true)
		a := testAttempt("etl", "manual__2", "while-away", 1, "exit 0")
		id := e.JobID(a)
		if _, err := e.Submit(ctx, a); err != nil {
			t.Fatal(err)
		}
		rec.waitFor(t, id, 15*time.Second, "status complete", status("complete"))
		if got := r.of(id); len(got) != 0 {
			t.Fatalf("watch saw job %s while Nomad was unreachable:\n%s", id, r.dump(id))
		}
		p.setDown(false)
		u := r.waitFor(t, id, 15*time.Second, "status complete", status("complete"))
		if !u.Snapshot {
			t.Errorf("update after reconnect = %+v, want a snapshot", u.AllocUpdate)
		}
		// And the stream works again after the reconnect.
		b := testAttempt("etl", "manual__2", "after", 1, "exit 0")
		if _, err := e.Submit(ctx, b); err != nil {
			t.Fatal(err)
		}
		u = r.waitFor(t, e.JobID(b), 15*time.Second, "status complete", status("complete"))
		if u.Snapshot {
			t.Errorf("update = %+v, want one from the stream", u.AllocUpdate)
		}
	})

	t.Run("events decoded as the Nomad API decodes them", func(t *testing.T) {
		// Every allocation event of the subtests above, still in Nomad's event buffer: exits
		// 0 and 3, a driver failure, a stop, another namespace.
		_, meta, err := client.Allocations().List(&nomadapi.QueryOptions{Namespace: allNamespaces})
		if err != nil {
			t.Fatal(err)
		}
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		body, err := client.Raw().Response("/v1/event/stream", (&nomadapi.QueryOptions{
			Namespace: allNamespaces, Params: map[string]string{"topic": "Allocation:*", "index": "1"},
		}).WithContext(sctx))
		if err != nil {
			t.Fatal(err)
		}
		defer body.Close()
		dec := json.NewDecoder(body)
		compared := 0
		for index := uint64(0); index < meta.LastIndex; {
			var raw json.RawMessage
			if err := dec.Decode(&raw); err != nil {
				t.Fatalf("after index %d of %d: %v", index, meta.LastIndex, err)
			}
			var batch eventBatch
			var want nomadapi.Events
			if err := json.Unmarshal(raw, &batch); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(raw, &want); err != nil {
				t.Fatal(err)
			}
			index = max(index, batch.Index)
			for i := range want.Events {
				alloc, err := want.Events[i].Allocation()
				if err != nil {
					t.Fatal(err)
				}
				got := batch.Events[i].Payload.Allocation.status()
				if diff := cmp.Diff(allocStatusFromStub(alloc.Stub()), got); diff != "" {
					t.Errorf("allocation event at index %d (-Nomad API, +watch):\n%s", batch.Index, diff)
				}
				compared++
			}
		}
		if compared < 18 {
			t.Errorf("compared %d allocation events, want at least the placement and the end of each of the subtests' nine jobs", compared)
		}
	})

	// Order within the first watch: one allocation per job, statuses in a sensible order.
	for _, id := range []string{okID, failID} {
		var seq []string
		for _, u := range rec.of(id) {
			if len(seq) == 0 || seq[len(seq)-1] != u.ClientStatus {
				seq = append(seq, u.ClientStatus)
			}
		}
		t.Logf("job %s: client statuses %v", id, seq)
	}
	stopWatch()
	select {
	case <-rec.closed:
	case <-time.After(5 * time.Second):
		t.Fatal("watch channel not closed after its context ended")
	}
}

// proxy forwards TCP connections to a target and can cut them all and refuse new ones, to
// break the connection between a client and a real agent.
type proxy struct {
	l      net.Listener
	target string

	mu    sync.Mutex
	down  bool
	conns map[net.Conn]bool
}

func startProxy(t *testing.T, target string) *proxy {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{l: l, target: target, conns: map[net.Conn]bool{}}
	t.Cleanup(func() {
		l.Close()
		p.setDown(true)
	})
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go p.serve(c)
		}
	}()
	return p
}

func (p *proxy) addr() string { return p.l.Addr().String() }

func (p *proxy) serve(c net.Conn) {
	p.mu.Lock()
	if p.down {
		p.mu.Unlock()
		c.Close()
		return
	}
	up, err := net.Dial("tcp", p.target)
	if err != nil {
		p.mu.Unlock()
		c.Close()
		return
	}
	p.conns[c], p.conns[up] = true, true
	p.mu.Unlock()
	go func() { io.Copy(up, c); up.Close() }()
	io.Copy(c, up)
	c.Close()
}

// setDown closes every open connection and refuses new ones while down.
func (p *proxy) setDown(down bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = down
	if down {
		for c := range p.conns {
			c.Close()
		}
		clear(p.conns)
	}
}

// testWriter sends log lines to t.Log until the test ends, and drops them afterwards.
type testWriter struct {
	t    *testing.T
	mu   sync.Mutex
	done bool
}

func newTestWriter(t *testing.T) *testWriter {
	w := &testWriter{t: t}
	t.Cleanup(func() {
		w.mu.Lock()
		w.done = true
		w.mu.Unlock()
	})
	return w
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(string(p))
	}
	return len(p), nil
}

// wokenContext is a context whose deadline has passed while its timer has not fired yet, as in
// a process that has just woken from a freeze.
type wokenContext struct {
	context.Context
	deadline time.Time
}

func (c wokenContext) Deadline() (time.Time, bool) { return c.deadline, true }
