package engine_test

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dagflow/dagflow/engine"
	"github.com/dagflow/dagflow/rules"
	"github.com/dagflow/dagflow/state"
)

// TestCommandSensor: a command sensor's job exits 75 ("not yet") twice, then 0; each poke is
// a try of its own, the "not yet" ones spend no retry, and the task downstream runs once it is
// met. One that never is met ends at its timeout, skipped with soft_fail; one whose job fails
// otherwise fails at once, as a task without retries does.
func TestCommandSensor(t *testing.T) {
	t.Parallel()
	s := newStack(t, engine.Config{})
	counter := filepath.Join(t.TempDir(), "pokes")
	s.apply(fmt.Sprintf(`
dag "cmd" {
  sensor "ready" {
    poke_interval = "1s"
    command {
      command = "/bin/sh"
      args    = ["-c", "n=$(cat %[1]s 2>/dev/null || echo 0); n=$((n+1)); echo $n > %[1]s; [ $n -ge 3 ] || exit 75"]
    }
  }
  task "after" {
    depends_on = ["ready"]
    command    = "/bin/true"
  }
}
dag "never" {
  sensor "soft" {
    poke_interval = "1s"
    timeout       = "4s"
    soft_fail     = true
    command {
      command = "/bin/sh"
      args    = ["-c", "exit 75"]
    }
  }
  sensor "broken" {
    command {
      command = "/bin/sh"
      args    = ["-c", "exit 3"]
    }
  }
}
`, counter))
	cmd, never := s.trigger("cmd", nil), s.trigger("never", nil)

	rec := s.waitRun("cmd", cmd, 2*time.Minute)
	ready := rec.Tasks["ready"]
	if rec.Run.State != state.RunSuccess || ready.State != rules.Success || rec.Tasks["after"].State != rules.Success {
		t.Fatalf("cmd: %s", describe(rec))
	}
	if len(ready.Tries) != 3 {
		t.Fatalf("ready has %d tries, want 3 (two not yet, one met): %s", len(ready.Tries), describe(rec))
	}
	for i, try := range ready.Tries[:2] {
		if !try.NotYet || !strings.Contains(try.Message, "not yet") {
			t.Errorf("try %d: not_yet %v, message %q; want a not-yet poke", i+1, try.NotYet, try.Message)
		}
		if next := ready.Tries[i+1]; next.JobID == try.JobID || next.ScheduledAt.Sub(try.EndedAt) < time.Second {
			t.Errorf("try %d: poke %d under job %s scheduled %s after it ended, want a new job after the 1s poke interval", i+2, i+1, next.JobID, next.ScheduledAt.Sub(try.EndedAt))
		}
	}

	rec = s.waitRun("never", never, 2*time.Minute)
	soft, broken := rec.Tasks["soft"], rec.Tasks["broken"]
	if soft.State != rules.Skipped || !strings.Contains(soft.Message, "timed out after 4s") {
		t.Errorf("soft: state %s, message %q; want skipped at its timeout", soft.State, soft.Message)
	}
	if len(soft.Tries) < 2 {
		t.Errorf("soft poked %d times in 4s at 1s intervals", len(soft.Tries))
	}
	if broken.State != rules.Failed || len(broken.Tries) != 1 || broken.Tries[0].NotYet {
		t.Errorf("broken: state %s after %d tries; want failed after one, not rescheduled: %s", broken.State, len(broken.Tries), describe(rec))
	}
}
