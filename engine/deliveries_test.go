package engine_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	nomadapi "github.com/hashicorp/nomad/api"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/dagflow/dagflow/engine"
	"github.com/dagflow/dagflow/hcl/spec"
	"github.com/dagflow/dagflow/internal/syncbuf"
	"github.com/dagflow/dagflow/state"
)

// receiver is a webhook receiver: it records every call, and answers 500 to the first
// failFirst calls of each delivery (by its X-Dagflow-Delivery header) on paths that start
// with /flaky, and to every call on /down.
type receiver struct {
	*httptest.Server
	mu        sync.Mutex
	calls     []call
	failFirst int
}

type call struct {
	path    string
	header  http.Header
	payload state.Payload
	ok      bool
}

func newReceiver(t *testing.T, failFirst int) *receiver {
	rc := &receiver{failFirst: failFirst}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		c := call{path: r.URL.Path, header: r.Header.Clone()}
		if err := json.Unmarshal(body, &c.payload); err != nil {
			t.Errorf("payload is not JSON: %v: %s", err, body)
		}
		rc.mu.Lock()
		defer rc.mu.Unlock()
		seen := 0
		for _, o := range rc.calls {
			if o.payload.DeliveryID == c.payload.DeliveryID {
				seen++
			}
		}
		c.ok = r.URL.Path != "/down" && !(strings.HasPrefix(r.URL.Path, "/flaky") && seen < rc.failFirst)
		rc.calls = append(rc.calls, c)
		if !c.ok {
			http.Error(w, "not now", http.StatusInternalServerError)
		}
	}))
	t.Cleanup(rc.Close)
	return rc
}

// received returns the calls answered 2xx, by path.
func (rc *receiver) received() map[string][]call {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	out := map[string][]call{}
	for _, c := range rc.calls {
		if c.ok {
			out[c.path] = append(out[c.path], c)
		}
	}
	return out
}

func (rc *receiver) attempts(path string) int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	n := 0
	for _, c := range rc.calls {
		if c.path == path {
			n++
		}
	}
	return n
}

func (s *stack) deliveries(f state.DeliveryFilter) []*state.Delivery {
	s.t.Helper()
	ds, err := s.store.Deliveries(context.Background(), f)
	if err != nil {
		s.t.Fatal(err)
	}
	return ds
}

// TestCallbacksFailingTask: a task failing twice fires its on_retry and the DAG's on_retry
// for its first try, its on_failure for its second, then the DAG's on_failure for the run; a
// receiver that refuses the first two calls of the run's delivery gets the third; the header
// read from a Nomad Variable arrives and is in no KV value; every delivery is recorded as
// delivered, once per ID.
func TestCallbacksFailingTask(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, 2)
	_, nomad := agents(t)
	secret := fmt.Sprintf("s3cr3t-%d", time.Now().UnixNano())
	varPath := fmt.Sprintf("dagflow/hooktest/%d", time.Now().UnixNano())
	if _, _, err := nomad.Variables().Create(&nomadapi.Variable{Path: varPath, Items: nomadapi.VariableItems{"token": secret}}, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = nomad.Variables().Delete(varPath, nil) })
	reg := prometheus.NewRegistry()
	logs := &syncbuf.Buffer{}
	logger := hclog.New(&hclog.LoggerOptions{Name: t.Name(), Level: hclog.Debug, Output: io.MultiWriter(logs, testWriter{t})})
	s := newStack(t, engine.Config{Metrics: engine.NewMetrics(reg), Logger: logger, DeliveryBackoff: 200 * time.Millisecond, UIAddress: "https://dagflow.example.com/"})
	s.apply(fmt.Sprintf(`
dag "alerting" {
  start_date = "2026-01-01"
  on_failure {
    webhook {
      url     = "%[1]s/flaky/run"
      headers = { "X-Team" = "data" }
      header "Authorization" {
        path = %[2]q
        key  = "token"
      }
    }
  }
  on_success {
    webhook {
      url = "%[1]s/never"
    }
  }
  on_retry {
    webhook {
      url = "%[1]s/dag-retry"
    }
  }
  task "a" {
    command     = "/bin/sh"
    args        = ["-c", "exit 3"]
    retries     = 1
    retry_delay = "1s"
    on_retry {
      webhook {
        url = "%[1]s/task-retry"
      }
    }
    on_failure {
      webhook {
        url = "%[1]s/task-failure"
      }
    }
  }
}
`, rc.URL, varPath))
	id := s.trigger("alerting", nil)
	rec := s.waitRun("alerting", id, 2*time.Minute)
	if rec.Run.State != state.RunFailed {
		t.Fatalf("run: %s", describe(rec))
	}
	s.eventually(30*time.Second, "every delivery delivered", func() bool {
		ds := s.deliveries(state.DeliveryFilter{DAG: "alerting", RunID: id})
		for _, d := range ds {
			if d.State != state.DeliveryDelivered {
				return false
			}
		}
		return len(ds) == 4
	})

	got := rc.received()
	want := map[string]struct {
		event string
		try   int
		task  string
		state string
	}{
		"/task-retry":   {spec.EventRetry, 1, "a", "up_for_retry"},
		"/dag-retry":    {spec.EventRetry, 1, "a", "up_for_retry"},
		"/task-failure": {spec.EventFailure, 2, "a", "failed"},
		"/flaky/run":    {spec.EventFailure, 0, "", "failed"},
	}
	ids := map[string]string{}
	for path, w := range want {
		calls := got[path]
		if len(calls) != 1 {
			t.Errorf("%s: %d calls answered 2xx, want 1", path, len(calls))
			continue
		}
		p := calls[0].payload
		if p.Event != w.event || p.Try != w.try || p.Task != w.task || p.State != w.state || p.DAG != "alerting" || p.RunID != id {
			t.Errorf("%s: payload %+v, want %+v", path, p, w)
		}
		if calls[0].header.Get("X-Dagflow-Delivery") != p.DeliveryID || p.DeliveryID == "" {
			t.Errorf("%s: delivery header %q, payload ID %q", path, calls[0].header.Get("X-Dagflow-Delivery"), p.DeliveryID)
		}
		if prev, dup := ids[p.DeliveryID]; dup {
			t.Errorf("%s and %s share delivery ID %s", path, prev, p.DeliveryID)
		}
		ids[p.DeliveryID] = path
		if wantURL := "https://dagflow.example.com/#/dags/alerting/runs/" + id; p.URL != wantURL {
			t.Errorf("%s: url %q, want %q", path, p.URL, wantURL)
		}
	}
	if len(got["/never"]) != 0 {
		t.Errorf("on_success of a failed run was called: %+v", got["/never"])
	}
	run := got["/flaky/run"]
	if len(run) == 1 {
		if h := run[0].header; h.Get("Authorization") != secret || h.Get("X-Team") != "data" || h.Get("Content-Type") != "application/json" {
			t.Errorf("run delivery headers: %v", h)
		}
		if !strings.Contains(run[0].payload.Message, "a") {
			t.Errorf("run message %q does not name the failed task", run[0].payload.Message)
		}
	}
	if n := rc.attempts("/flaky/run"); n != 3 {
		t.Errorf("run delivery called %d times, want 3 (two refused)", n)
	}
	for _, d := range s.deliveries(state.DeliveryFilter{}) {
		if d.Payload.Task == "" && d.Attempts != 3 {
			t.Errorf("run delivery recorded %d attempts, want 3", d.Attempts)
		}
	}

	// The secret is nowhere in the installation's KV.
	consul, _ := agents(t)
	pairs, _, err := consul.KV().List(s.store.Prefix(), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pairs {
		if strings.Contains(string(p.Value), secret) {
			t.Errorf("KV %s holds the header's secret value", p.Key)
		}
	}
	if strings.Contains(logs.String(), secret) {
		t.Errorf("the engine logged the header's secret value")
	}
	if v := metricValue(t, reg, "dagflow_deliveries_total", "delivered"); v != 4 {
		t.Errorf("dagflow_deliveries_total{result=delivered} = %v, want 4", v)
	}
	if v := metricValue(t, reg, "dagflow_deliveries_total", "retry"); v != 2 {
		t.Errorf("dagflow_deliveries_total{result=retry} = %v, want 2", v)
	}
}

// metricValue returns the value of counter or gauge name, with the label value label when it
// has one (""), from reg.
func metricValue(t *testing.T, reg *prometheus.Registry, name, label string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			if label != "" && (len(m.GetLabel()) == 0 || m.GetLabel()[0].GetValue() != label) {
				continue
			}
			if c := m.GetCounter(); c != nil {
				return c.GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	t.Fatalf("no metric %s{%s}", name, label)
	return 0
}

// TestCallbacksDeliveryFails: a receiver that always refuses leaves the delivery failed after
// its attempts, with the last error, and counted; a succeeding run fires on_success only.
func TestCallbacksDeliveryFails(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, 0)
	reg := prometheus.NewRegistry()
	s := newStack(t, engine.Config{Metrics: engine.NewMetrics(reg), DeliveryAttempts: 3, DeliveryBackoff: 100 * time.Millisecond})
	s.apply(fmt.Sprintf(`
dag "fine" {
  start_date = "2026-01-01"
  on_success {
    webhook {
      url = "%[1]s/down"
    }
  }
  on_failure {
    webhook {
      url = "%[1]s/never"
    }
  }
  task "a" {
    command = "/bin/true"
  }
}
`, rc.URL))
	id := s.trigger("fine", nil)
	if rec := s.waitRun("fine", id, time.Minute); rec.Run.State != state.RunSuccess {
		t.Fatalf("run: %s", describe(rec))
	}
	var d *state.Delivery
	s.eventually(30*time.Second, "the delivery failed", func() bool {
		ds := s.deliveries(state.DeliveryFilter{State: state.DeliveryFailed, DAG: "fine"})
		if len(ds) == 1 {
			d = ds[0]
		}
		return d != nil
	})
	if d.Attempts != 3 || !strings.Contains(d.LastError, "500") || d.Payload.Event != spec.EventSuccess || d.EndedAt.IsZero() {
		t.Errorf("failed delivery: %+v", d)
	}
	if n := rc.attempts("/down"); n != 3 {
		t.Errorf("receiver called %d times, want 3", n)
	}
	if n := rc.attempts("/never"); n != 0 {
		t.Errorf("on_failure of a successful run called %d times", n)
	}
	if v := metricValue(t, reg, "dagflow_deliveries_total", "failed"); v != 1 {
		t.Errorf("dagflow_deliveries_total{result=failed} = %v, want 1", v)
	}
	if v := metricValue(t, reg, "dagflow_deliveries_pending", ""); v != 0 {
		t.Errorf("dagflow_deliveries_pending = %v, want 0", v)
	}
}

// TestCallbacksTakeover: a delivery its leader could not make is made by the next leader,
// with the same ID; one already delivered is not made again.
func TestCallbacksTakeover(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	up := false
	var ids []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		ids = append(ids, r.Header.Get("X-Dagflow-Delivery"))
		if !up {
			http.Error(w, "down", http.StatusServiceUnavailable)
		}
	}))
	t.Cleanup(srv.Close)
	cfg := engine.Config{DeliveryBackoff: 20 * time.Second}
	s := newStack(t, cfg)
	s.apply(fmt.Sprintf(`
dag "handover" {
  start_date = "2026-01-01"
  on_success {
    webhook {
      url = %q
    }
  }
  task "a" {
    command = "/bin/true"
  }
}
`, srv.URL))
	id := s.trigger("handover", nil)
	s.waitRun("handover", id, time.Minute)
	s.eventually(30*time.Second, "a first attempt recorded", func() bool {
		ds := s.deliveries(state.DeliveryFilter{DAG: "handover"})
		return len(ds) == 1 && ds[0].Attempts == 1 && ds[0].State == state.DeliveryPending
	})
	s.stop()
	mu.Lock()
	up = true
	mu.Unlock()
	s.start(engine.Config{DeliveryBackoff: 20 * time.Second})
	s.eventually(30*time.Second, "delivered by the next leader", func() bool {
		ds := s.deliveries(state.DeliveryFilter{DAG: "handover", State: state.DeliveryDelivered})
		return len(ds) == 1
	})
	s.stop()
	s.start(engine.Config{})
	time.Sleep(2 * time.Second)
	mu.Lock()
	defer mu.Unlock()
	if len(ids) != 2 || ids[0] != ids[1] || ids[0] == "" {
		t.Errorf("calls with delivery IDs %q, want two with the same ID", ids)
	}
}

// TestDeadlineMissed: a run still running past its deadline, and its task, are marked once
// and fire their on_miss once each; the metric counts both.
func TestDeadlineMissed(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, 0)
	reg := prometheus.NewRegistry()
	s := newStack(t, engine.Config{Metrics: engine.NewMetrics(reg)})
	s.apply(fmt.Sprintf(`
dag "late" {
  start_date = "2026-01-01"
  deadline {
    after_start = "2s"
    on_miss {
      webhook {
        url = "%[1]s/run-late"
      }
    }
  }
  task "slow" {
    command = "/bin/sleep"
    args    = ["5"]
    deadline {
      after_start = "1s"
      on_miss {
        webhook {
          url = "%[1]s/task-late"
        }
      }
    }
  }
}
dag "prompt" {
  start_date = "2026-01-01"
  deadline {
    after_start = "1h"
    on_miss {
      webhook {
        url = "%[1]s/never"
      }
    }
  }
  task "a" {
    command = "/bin/true"
  }
}
`, rc.URL))
	late, prompt := s.trigger("late", nil), s.trigger("prompt", nil)
	s.waitFor("late", late, time.Minute, "marked late", func(r *state.RunRecord) bool { return !r.Run.DeadlineMissedAt.IsZero() })
	rec := s.waitRun("late", late, time.Minute)
	s.waitRun("prompt", prompt, time.Minute)
	if rec.Run.State != state.RunSuccess || rec.Tasks["slow"].DeadlineMissedAt.IsZero() {
		t.Fatalf("late run: %s", describe(rec))
	}
	s.eventually(30*time.Second, "both on_miss delivered", func() bool {
		got := rc.received()
		return len(got["/run-late"]) == 1 && len(got["/task-late"]) == 1
	})
	time.Sleep(2 * time.Second)
	got := rc.received()
	if len(got["/run-late"]) != 1 || len(got["/task-late"]) != 1 || len(got["/never"]) != 0 {
		t.Errorf("calls: run-late %d, task-late %d, never %d; want 1, 1, 0", len(got["/run-late"]), len(got["/task-late"]), len(got["/never"]))
	}
	if p := got["/task-late"][0].payload; p.Event != spec.EventDeadlineMissed || p.Task != "slow" || !strings.Contains(p.Message, "1s after its start") {
		t.Errorf("task payload: %+v", p)
	}
	if r, _ := s.store.RunRecord(context.Background(), "prompt", prompt); r == nil || !r.Run.DeadlineMissedAt.IsZero() {
		t.Errorf("prompt run marked late: %s", describe(r))
	}
	if v := metricValue(t, reg, "dagflow_deadlines_missed_total", ""); v != 2 {
		t.Errorf("dagflow_deadlines_missed_total = %v, want 2", v)
	}
}

// TestCallbackTask: a failed run's on_failure task runs once as a Nomad job, with the event's
// values as callback.*, and a leader taking over does not run it again.
func TestCallbackTask(t *testing.T) {
	t.Parallel()
	out := t.TempDir() + "/callback.out"
	s := newStack(t, engine.Config{})
	s.apply(fmt.Sprintf(`
dag "paging" {
  start_date = "2026-01-01"
  on_failure {
    task {
      command = "/bin/sh"
      args    = ["-c", "echo \"${callback.event} ${callback.state} ${callback.delivery_id} ${run.id} ${callback.message} $DAGFLOW_DELIVERY_ID\" >> %s"]
      resources {
        memory = 32
      }
    }
  }
  task "a" {
    command = "/bin/sh"
    args    = ["-c", "exit 2"]
  }
}
`, out))
	id := s.trigger("paging", nil)
	s.waitRun("paging", id, time.Minute)
	var d *state.Delivery
	s.eventually(30*time.Second, "the callback task delivered", func() bool {
		ds := s.deliveries(state.DeliveryFilter{DAG: "paging", State: state.DeliveryDelivered})
		if len(ds) == 1 {
			d = ds[0]
		}
		return d != nil
	})
	if d.JobID == "" || d.URL != "" || d.Task == nil || d.Attempts != 1 {
		t.Errorf("delivery: %+v", d)
	}
	want := fmt.Sprintf("failure failed %s %s failed tasks: a %s\n", d.ID, id, d.ID)
	s.eventually(time.Minute, "the callback task wrote its line", func() bool {
		b, _ := os.ReadFile(out)
		return string(b) == want
	})
	s.stop()
	s.start(engine.Config{})
	time.Sleep(3 * time.Second)
	if b, _ := os.ReadFile(out); string(b) != want {
		t.Errorf("after a takeover the callback wrote %q, want %q", b, want)
	}
	if n := s.jobAllocs()[d.JobID]; n != 1 {
		t.Errorf("job %s has %d allocations, want 1 (jobs: %v)", d.JobID, n, s.jobAllocs())
	}
}

// TestDeliveryRetention: a delivered delivery is deleted from Consul once DeliveryKeep has
// passed.
func TestDeliveryRetention(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, 0)
	s := newStack(t, engine.Config{DeliveryKeep: time.Second})
	s.apply(fmt.Sprintf(`
dag "brief" {
  start_date = "2026-01-01"
  on_success {
    webhook {
      url = "%s/ok"
    }
  }
  task "a" {
    command = "/bin/true"
  }
}
`, rc.URL))
	id := s.trigger("brief", nil)
	s.waitRun("brief", id, time.Minute)
	s.eventually(30*time.Second, "delivered", func() bool { return len(rc.received()["/ok"]) == 1 })
	s.eventually(30*time.Second, "the delivered record deleted", func() bool {
		return len(s.deliveries(state.DeliveryFilter{DAG: "brief"})) == 0
	})
}
