package nomadexec

import (
	"context"
	"errors"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/dagflow/dagflow/internal/devstack"
)

// TestGuard plays the freeze window against a real Nomad: a try runs, its job is purged, and
// the same registration arrives again, as from a leader frozen with it on its way. The guard
// fails the new allocation before the task starts, so the try ran once; a later try under the
// same job ID (its run made again, recorded at another time) runs; old tombstones are swept.
func TestGuard(t *testing.T) {
	n := devstack.StartNomadT(t, nil)
	e, client := testExecutor(t, "http://"+n.HTTPAddr, "")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rec := record(e.Watch(ctx, 0))

	runs := t.TempDir() + "/runs"
	a := testAttempt("guard", "manual__1", "load", 1, "echo ran >> "+runs)
	a.Queued = time.Now()
	id := e.JobID(a)
	ranTimes := func() int {
		b, err := os.ReadFile(runs)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
		return strings.Count(string(b), "ran\n")
	}
	ends := func(after uint64) func(AllocUpdate) bool {
		return func(u AllocUpdate) bool { return u.Terminal() && u.CreateIndex > after }
	}

	if registered, err := e.Submit(ctx, a); err != nil || !registered {
		t.Fatalf("Submit = %v, %v", registered, err)
	}
	first := rec.waitFor(t, id, time.Minute, "the first allocation's end", ends(0))
	if !first.Succeeded() {
		t.Fatalf("the try failed: %+v", first.AllocUpdate)
	}
	if err := e.Purge(ctx, id); err != nil {
		t.Fatal(err)
	}
	v, _, err := client.Variables().Read(GuardPath(id), nil)
	if err != nil {
		t.Fatalf("read the tombstone: %v", err)
	}
	if got, want := v.Items[GuardItem], a.Queued.UTC().Format(time.RFC3339Nano); got != want {
		t.Fatalf("tombstone %s = %q, want %q", GuardItem, got, want)
	}

	t.Run("the same registration again does not run the try", func(t *testing.T) {
		if registered, err := e.Submit(ctx, a); err != nil || !registered {
			t.Fatalf("Submit after the purge = %v, %v; want a new registration, as a deposed leader's", registered, err)
		}
		again := rec.waitFor(t, id, time.Minute, "the second allocation's end", ends(first.CreateIndex))
		if again.ClientStatus != nomadapi.AllocClientStatusFailed {
			t.Errorf("second allocation = %+v, want failed", again.AllocUpdate)
		}
		if !strings.Contains(again.Message, GuardMessage) {
			t.Errorf("second allocation's message %q does not say why (%q)", again.Message, GuardMessage)
		}
		if n := ranTimes(); n != 1 {
			t.Errorf("the task ran %d times, want 1", n)
		}
	})

	t.Run("a later try under the same job ID runs", func(t *testing.T) {
		last := rec.of(id)
		if err := e.Purge(ctx, id); err != nil {
			t.Fatal(err)
		}
		b := a
		b.Queued = a.Queued.Add(time.Hour)
		if registered, err := e.Submit(ctx, b); err != nil || !registered {
			t.Fatalf("Submit = %v, %v", registered, err)
		}
		done := rec.waitFor(t, id, time.Minute, "the third allocation's end", ends(last[len(last)-1].CreateIndex))
		if !done.Succeeded() {
			t.Errorf("the later try failed: %+v", done.AllocUpdate)
		}
		if n := ranTimes(); n != 2 {
			t.Errorf("the task ran %d times, want 2", n)
		}
	})

	t.Run("sweep", func(t *testing.T) {
		if n, err := e.SweepGuards(ctx, time.Now().Add(-time.Hour)); err != nil || n != 0 {
			t.Errorf("SweepGuards(an hour ago) = %d, %v; want 0 deleted", n, err)
		}
		if n, err := e.SweepGuards(ctx, time.Now().Add(time.Second)); err != nil || n != 1 {
			t.Errorf("SweepGuards(now) = %d, %v; want 1 deleted", n, err)
		}
		if _, _, err := client.Variables().Read(GuardPath(id), nil); !errors.Is(err, nomadapi.ErrVariablePathNotFound) {
			t.Errorf("tombstone after the sweep: %v, want not found", err)
		}
	})
}

func TestGuardPath(t *testing.T) {
	valid := regexp.MustCompile(`^[a-zA-Z0-9-_~/]{1,128}$`) // Nomad's rule for variable paths
	short := JobID("", Attempt{DAG: "etl", Task: "load", RunID: "manual__42", Try: 1})
	if got, want := GuardPath(short), "dagflow/purged/dagflow-etl~load~manual__42~1"; got != want {
		t.Errorf("GuardPath(%q) = %q, want %q", short, got, want)
	}
	long := JobID("", Attempt{DAG: strings.Repeat("d", 60), Task: strings.Repeat("t", 60), RunID: "scheduled__2026-11-22T00:00:00Z", Try: 12})
	other := JobID("", Attempt{DAG: strings.Repeat("d", 60), Task: strings.Repeat("t", 60), RunID: "scheduled__2026-11-22T00:00:00Z", Try: 13})
	for _, id := range []string{short, long, other} {
		if p := GuardPath(id); !valid.MatchString(p) || !strings.HasPrefix(p, GuardPath(DefaultPrefix)) {
			t.Errorf("GuardPath(%q) = %q: not a valid variable path under %q", id, p, GuardPath(DefaultPrefix))
		}
	}
	if GuardPath(long) == GuardPath(other) {
		t.Errorf("two long job IDs share the tombstone %q", GuardPath(long))
	}
}
