package engine_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/dagflow/dagflow/engine"
	"github.com/dagflow/dagflow/rules"
	"github.com/dagflow/dagflow/state"
)

// TestUnplacedMemory: a try asking for more memory than the Nomad node has shows Nomad's
// reason on its record and in the metric within seconds, then fails at its queued_timeout with
// the reason in its message, and is retried as its task allows.
func TestUnplacedMemory(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	s := newStack(t, engine.Config{Metrics: engine.NewMetrics(reg)})
	s.apply(`
dag "huge" {
  start_date = "2026-01-01"
  task "a" {
    command        = "/bin/true"
    queued_timeout = "8s"
    retries        = 1
    retry_delay    = "1s"
    # The least CPU, so that the node's CPU, which the package's other tests use, is not
    # what is exhausted first: Nomad reports the first dimension that does not fit.
    resources {
      cpu    = 1
      memory = 16777216
    }
  }
}
`)
	id := s.trigger("huge", nil)
	const reason = "resources exhausted: memory on 1 node"
	s.waitFor("huge", id, 20*time.Second, "showing the reason", func(r *state.RunRecord) bool {
		cur := current(r, "a")
		return cur != nil && cur.Pending == reason
	})
	if got := unplacedValue(t, reg, "resources"); got != 1 {
		t.Errorf("dagflow_tries_unplaced{reason=resources} = %v, want 1", got)
	}

	rec := s.waitRun("huge", id, time.Minute)
	ti := rec.Tasks["a"]
	if rec.Run.State != state.RunFailed || ti.State != rules.Failed || len(ti.Tries) != 2 {
		t.Fatalf("want a failed run after two tries:\n%s", describe(rec))
	}
	for _, try := range ti.Tries {
		want := "not placed by Nomad within queued_timeout 8s: " + reason
		if try.Message != want || try.Pending != "" || !try.StartedAt.IsZero() {
			t.Errorf("try %d: message %q (want %q), pending %q, started %s", try.Try, try.Message, want, try.Pending, try.StartedAt)
		}
		if d := try.EndedAt.Sub(try.QueuedAt); d < 8*time.Second || d > 20*time.Second {
			t.Errorf("try %d ended %s after it was queued, want its queued_timeout 8s and a little", try.Try, d)
		}
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "dagflow_tries_unplaced" && len(mf.GetMetric()) > 0 {
			t.Errorf("dagflow_tries_unplaced has %d series after the run ended, want none", len(mf.GetMetric()))
		}
	}
}

// TestUnplacedConstraint: a try whose queue's constraint on a node meta filters the only node
// shows the constraint as its reason; once `nomad node meta apply` gives the node the meta,
// Nomad places it, the reason is dropped, and the try runs and succeeds.
func TestUnplacedConstraint(t *testing.T) {
	t.Parallel()
	s := newStack(t, engine.Config{})
	key := fmt.Sprintf("gate_%d", time.Now().UnixNano())
	s.apply(`
queue "gated" {
  constraint {
    attribute = "${meta.` + key + `}"
    value     = "open"
  }
}
dag "gated" {
  start_date = "2026-01-01"
  task "a" {
    queue   = "gated"
    command = "/bin/true"
  }
}
`)
	id := s.trigger("gated", nil)
	want := "constraint ${meta." + key + "} = open filtered 1 node"
	rec := s.waitFor("gated", id, 20*time.Second, "showing the reason", func(r *state.RunRecord) bool {
		cur := current(r, "a")
		return cur != nil && cur.Pending == want
	})
	if ti := rec.Tasks["a"]; ti.State != rules.Queued {
		t.Fatalf("state %s, want queued:\n%s", ti.State, describe(rec))
	}

	nodes, _, err := s.nomad.Nodes().List(nil)
	if err != nil || len(nodes) != 1 {
		t.Fatalf("nodes: %v %v", nodes, err)
	}
	open := "open"
	applied := time.Now()
	if _, err := s.nomad.Nodes().Meta().Apply(&nomadapi.NodeMetaApplyRequest{NodeID: nodes[0].ID, Meta: map[string]*string{key: &open}}, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = s.nomad.Nodes().Meta().Apply(&nomadapi.NodeMetaApplyRequest{NodeID: nodes[0].ID, Meta: map[string]*string{key: nil}}, nil)
	})
	rec = s.waitRun("gated", id, time.Minute)
	try := rec.Tasks["a"].Tries[0]
	if rec.Run.State != state.RunSuccess || len(rec.Tasks["a"].Tries) != 1 || try.Pending != "" {
		t.Fatalf("want one successful try without a reason:\n%s", describe(rec))
	}
	t.Logf("started %s after the node meta was applied", try.StartedAt.Sub(applied).Round(time.Millisecond))
}

// TestWaitingMaxRunning: a task instance held back by its queue's max_running says so on its
// record while it waits, and no longer once it has a try.
func TestWaitingMaxRunning(t *testing.T) {
	t.Parallel()
	s := newStack(t, engine.Config{})
	s.apply(`
queue "one" {
  max_running = 1
}
dag "serial" {
  start_date = "2026-01-01"
  defaults {
    queue   = "one"
    command = "/bin/sleep"
    args    = ["3"]
  }
  task "a" {}
  task "b" {}
}
`)
	id := s.trigger("serial", nil)
	const want = `queue "one" at max_running (1)`
	var waiting string
	rec := s.waitFor("serial", id, 30*time.Second, "showing a waiting instance", func(r *state.RunRecord) bool {
		for name, ti := range r.Tasks {
			if ti.Waiting != "" {
				waiting = name
				return true
			}
		}
		return false
	})
	ti := rec.Tasks[waiting]
	if ti.Waiting != want || ti.State != rules.Scheduled || len(ti.Tries) != 0 {
		t.Errorf("%s: waiting %q (want %q), state %s, %d tries", waiting, ti.Waiting, want, ti.State, len(ti.Tries))
	}
	rec = s.waitRun("serial", id, time.Minute)
	if rec.Run.State != state.RunSuccess {
		t.Fatalf("run:\n%s", describe(rec))
	}
	for name, ti := range rec.Tasks {
		if ti.Waiting != "" {
			t.Errorf("%s still says it waits: %q", name, ti.Waiting)
		}
	}
}

// unplacedValue returns the value of dagflow_tries_unplaced{reason=class}, failing the test
// when there is no such series.
func unplacedValue(t *testing.T, reg *prometheus.Registry, class string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "dagflow_tries_unplaced" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "reason" && l.GetValue() == class {
					return m.GetGauge().GetValue()
				}
			}
		}
	}
	t.Fatalf("no dagflow_tries_unplaced{reason=%q}", class)
	return 0
}

// TestUnplacedFailover: a new leader keeps the reason the one before recorded, finds Nomad's
// reason itself, and stops the try at its queued_timeout, counted from when it was queued.
func TestUnplacedFailover(t *testing.T) {
	t.Parallel()
	s := newStack(t, engine.Config{})
	s.apply(`
dag "huge" {
  start_date = "2026-01-01"
  task "a" {
    command        = "/bin/true"
    queued_timeout = "12s"
    resources {
      cpu    = 1
      memory = 16777216
    }
  }
}
`)
	id := s.trigger("huge", nil)
	const reason = "resources exhausted: memory on 1 node"
	pending := func(r *state.RunRecord) bool {
		cur := current(r, "a")
		return cur != nil && cur.Pending == reason
	}
	s.waitFor("huge", id, 20*time.Second, "showing the reason", pending)
	s.stop()
	if rec := s.waitFor("huge", id, time.Second, "keeping the reason without a leader", pending); rec.Tasks["a"].State != rules.Queued {
		t.Fatalf("state %s without a leader", rec.Tasks["a"].State)
	}
	s.start(engine.Config{})
	rec := s.waitRun("huge", id, time.Minute)
	ti := rec.Tasks["a"]
	if rec.Run.State != state.RunFailed || len(ti.Tries) != 1 {
		t.Fatalf("want a failed run after one try:\n%s", describe(rec))
	}
	try := ti.Tries[0]
	if want := "not placed by Nomad within queued_timeout 12s: " + reason; try.Message != want || try.Pending != "" {
		t.Errorf("message %q (want %q), pending %q", try.Message, want, try.Pending)
	}
	if d := try.EndedAt.Sub(try.QueuedAt); d < 12*time.Second || d > 25*time.Second {
		t.Errorf("the try ended %s after it was queued, want its queued_timeout 12s and a little", d)
	}
}

// current is the latest try of task of r, nil before the task instance or its first try
// is recorded.
func current(r *state.RunRecord, task string) *state.Try {
	if ti := r.Tasks[task]; ti != nil {
		return ti.Current()
	}
	return nil
}

// TestBlockedTemplate: a try whose template waits for a Nomad Variable that does not exist
// (Nomad holds such an allocation pending for ever) fails with a message naming the
// variable, not at Nomad's first report of the template waiting, which it also makes for a
// template that is only slow, but once it has waited the engine's grace of 30 s.
func TestBlockedTemplate(t *testing.T) {
	t.Parallel()
	s := newStack(t, engine.Config{})
	s.apply(`
dag "blocked" {
  start_date = "2026-01-01"
  task "a" {
    command = "/bin/true"
    template {
      data        = "{{ with nomadVar \"dagflow/blocked/none\" }}{{ .password }}{{ end }}"
      destination = "secrets/db.conf"
    }
  }
}
`)
	id := s.trigger("blocked", nil)
	rec := s.waitRun("blocked", id, 2*time.Minute)
	ti := rec.Tasks["a"]
	if rec.Run.State != state.RunFailed || len(ti.Tries) != 1 {
		t.Fatalf("want a failed run after one try:\n%s", describe(rec))
	}
	try := ti.Tries[0]
	want := `a template block: the try cannot read Nomad variable "dagflow/blocked/none" in namespace "default"`
	if !strings.HasPrefix(try.Message, want) || !try.StartedAt.IsZero() {
		t.Errorf("try message %q (want it to start %q), started %s", try.Message, want, try.StartedAt)
	}
	if d := try.EndedAt.Sub(try.QueuedAt); d < 30*time.Second {
		t.Errorf("the try failed %s after it was queued, before the 30 s grace", d)
	}
}
