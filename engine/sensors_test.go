package engine_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	consulapi "github.com/hashicorp/consul/api"

	"github.com/dagflow/dagflow/engine"
	"github.com/dagflow/dagflow/internal/devstack"
	"github.com/dagflow/dagflow/rules"
	"github.com/dagflow/dagflow/state"
)

// waitSensor waits until sensor task of run id of dag waits with a message containing want,
// and returns its instance.
func (s *stack) waitSensor(dag, id, task, want string) *state.TaskInstance {
	s.t.Helper()
	rec := s.waitFor(dag, id, time.Minute, fmt.Sprintf("with sensor %s waiting on %q", task, want), func(r *state.RunRecord) bool {
		ti := r.Tasks[task]
		return ti != nil && ti.State == rules.Scheduled && ti.Sensor != nil && strings.Contains(ti.Sensor.Message, want) &&
			strings.Contains(ti.Waiting, want)
	})
	return rec.Tasks[task]
}

// TestSensorKinds: a sensor of each kind the leader evaluates waits, without a Nomad job,
// while its condition does not hold against real Consul, Nomad and an HTTP server, and
// succeeds once it does; the task after them then runs.
func TestSensorKinds(t *testing.T) {
	t.Parallel()
	consul, nomad := agents(t)
	s := newStack(t, engine.Config{})
	key := s.store.Prefix() + "sensor/ready"
	service := strings.ReplaceAll(s.exec.Prefix(), "-", "") + "svc"
	variable := "sensortest/" + s.exec.Prefix()
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer t0ken" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		if hits.Add(1) <= 3 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()
	s.apply(fmt.Sprintf(`
dag "kinds" {
  sensor "key" {
    poke_interval = "1s"
    consul_key {
      key   = %q
      value = "go"
    }
  }
  sensor "web" {
    poke_interval = "1s"
    http {
      url     = "%s/ready?token=secret"
      headers = { Authorization = "Bearer t0ken" }
    }
  }
  sensor "service" {
    poke_interval = "1s"
    consul_service { name = %q }
  }
  sensor "variable" {
    poke_interval = "1s"
    nomad_variable { path = %q }
  }
  task "after" {
    command    = "/bin/true"
    depends_on = ["key", "web", "service", "variable"]
  }
}
`, key, srv.URL, service, variable))
	id := s.trigger("kinds", nil)

	s.waitSensor("kinds", id, "key", "does not exist")
	s.waitSensor("kinds", id, "service", "has no healthy instance")
	s.waitSensor("kinds", id, "variable", "does not exist")
	if _, err := consul.KV().Put(&consulapi.KVPair{Key: key, Value: []byte("not yet")}, nil); err != nil {
		t.Fatal(err)
	}
	s.waitSensor("kinds", id, "key", "does not hold the expected value")

	check := "service:" + service
	if err := consul.Agent().ServiceRegister(&consulapi.AgentServiceRegistration{
		Name: service, Check: &consulapi.AgentServiceCheck{CheckID: check, TTL: "10m", Status: consulapi.HealthCritical},
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = consul.Agent().ServiceDeregister(service) })
	time.Sleep(2 * time.Second) // registered but critical: still waiting
	if rec, _ := s.store.RunRecord(context.Background(), "kinds", id); rec.Tasks["service"].State != rules.Scheduled {
		t.Fatalf("service sensor with a critical check is %s, want still waiting", rec.Tasks["service"].State)
	}
	if err := consul.Agent().UpdateTTL(check, "ok", consulapi.HealthPassing); err != nil {
		t.Fatal(err)
	}
	if err := devstack.PutVariable(context.Background(), nomad.Address(), "", "", variable, map[string]string{"ready": "yes"}); err != nil {
		t.Fatal(err)
	}
	if _, err := consul.KV().Put(&consulapi.KVPair{Key: key, Value: []byte("go")}, nil); err != nil {
		t.Fatal(err)
	}

	rec := s.waitRun("kinds", id, 2*time.Minute)
	if rec.Run.State != state.RunSuccess {
		t.Fatalf("run: %s", describe(rec))
	}
	for _, name := range []string{"key", "web", "service", "variable"} {
		ti := rec.Tasks[name]
		if ti.State != rules.Success || len(ti.Tries) != 0 || ti.Sensor == nil || ti.Sensor.Pokes < 2 {
			t.Errorf("sensor %s: want success after several pokes and no try; got %s", name, describe(rec))
		}
		if strings.Contains(ti.Message, "secret") || strings.Contains(ti.Message, "t0ken") {
			t.Errorf("sensor %s shows a secret: %q", name, ti.Message)
		}
	}
	if n := hits.Load(); n < 4 {
		t.Errorf("the HTTP server saw %d authorized requests, want at least 4", n)
	}
	if jobs := s.jobAllocs(); len(jobs) != 1 {
		t.Errorf("Nomad jobs %v: want only the one of task after", jobs)
	}
}

// TestSensorTimeout: a sensor whose condition never holds fails at its timeout, and one with
// soft_fail is skipped instead, as in Airflow.
func TestSensorTimeout(t *testing.T) {
	t.Parallel()
	s := newStack(t, engine.Config{})
	s.apply(fmt.Sprintf(`
dag "timeout" {
  sensor "hard" {
    poke_interval = "1s"
    timeout       = "3s"
    consul_key { key = "%[1]snever" }
  }
  sensor "soft" {
    poke_interval = "1s"
    timeout       = "3s"
    soft_fail     = true
    consul_key { key = "%[1]snever" }
  }
}
`, s.store.Prefix()))
	id := s.trigger("timeout", nil)
	rec := s.waitRun("timeout", id, time.Minute)
	hard, soft := rec.Tasks["hard"], rec.Tasks["soft"]
	if rec.Run.State != state.RunFailed || hard.State != rules.Failed || soft.State != rules.Skipped {
		t.Fatalf("want run failed, hard failed, soft skipped; got %s", describe(rec))
	}
	for _, ti := range []*state.TaskInstance{hard, soft} {
		if !strings.Contains(ti.Message, "timed out after 3s") || !strings.Contains(ti.Message, "does not exist") {
			t.Errorf("sensor %s message %q: want the timeout and the last poke's result", ti.Task, ti.Message)
		}
	}
}

// TestSensorDAGRun: a dag_run sensor waits for the other DAG's run of the same logical date,
// and a task-level one for one task of it.
func TestSensorDAGRun(t *testing.T) {
	t.Parallel()
	s := newStack(t, engine.Config{})
	day := time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, -3)
	start := day.AddDate(0, 0, -10).Format(time.RFC3339)
	s.apply(fmt.Sprintf(`
dag "producer" {
  schedule   = "@daily"
  start_date = %[1]q
  task "gate" {
    command = "/bin/sh"
    args    = ["-c", "sleep 4"]
  }
}
dag "consumer" {
  schedule   = "@daily"
  start_date = %[1]q
  sensor "upstream" {
    poke_interval = "1s"
    dag_run { dag = "producer" }
  }
  sensor "gate" {
    poke_interval = "1s"
    dag_run {
      dag  = "producer"
      task = "gate"
    }
  }
}
`, start))
	res := s.request(&state.Request{Kind: state.RequestBackfill, DAG: "consumer", From: day, To: day})
	if res.Error != "" {
		t.Fatal(res.Error)
	}
	id := rules.RunID(rules.RunBackfill, day)
	s.waitSensor("consumer", id, "upstream", "has no run for logical date")
	if res := s.request(&state.Request{Kind: state.RequestBackfill, DAG: "producer", From: day, To: day}); res.Error != "" {
		t.Fatal(res.Error)
	}
	s.waitSensor("consumer", id, "gate", `task "gate" of run `+id+` of DAG "producer" is`)
	rec := s.waitRun("consumer", id, 2*time.Minute)
	producer := s.waitRun("producer", id, time.Minute)
	if rec.Run.State != state.RunSuccess || producer.Run.State != state.RunSuccess {
		t.Fatalf("consumer %s\nproducer %s", describe(rec), describe(producer))
	}
	if !rec.Run.EndedAt.After(producer.Tasks["gate"].Tries[0].EndedAt) {
		t.Errorf("consumer ended at %s, before the producer's task at %s", rec.Run.EndedAt, producer.Tasks["gate"].Tries[0].EndedAt)
	}
}

// TestSensorFailover: a new leader resumes a sensor's wait where the last left it: the wait
// keeps its start, so the timeout is not restarted.
func TestSensorFailover(t *testing.T) {
	t.Parallel()
	s := newStack(t, engine.Config{})
	s.apply(fmt.Sprintf(`
dag "failover" {
  sensor "wait" {
    poke_interval = "1s"
    timeout       = "8s"
    consul_key { key = "%snever" }
  }
}
`, s.store.Prefix()))
	id := s.trigger("failover", nil)
	first := s.waitSensor("failover", id, "wait", "does not exist")
	s.stop()
	time.Sleep(5 * time.Second)
	s.start(engine.Config{})
	rec := s.waitRun("failover", id, time.Minute)
	ti := rec.Tasks["wait"]
	if ti.State != rules.Failed || !ti.Sensor.Started.Equal(first.Sensor.Started) {
		t.Fatalf("want the wait started at %s to fail; got %s", first.Sensor.Started, describe(rec))
	}
	// A restarted timeout would end the run 8 s after the new leader started, at least 13 s
	// after the wait started.
	if took := rec.Run.EndedAt.Sub(ti.Sensor.Started); took > 12*time.Second {
		t.Errorf("the wait ended %s after it started: the new leader restarted its 8s timeout", took)
	}
}
