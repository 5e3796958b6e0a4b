package engine_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dagflow/dagflow/engine"
	"github.com/dagflow/dagflow/internal/devstack"
	"github.com/dagflow/dagflow/rules"
	"github.com/dagflow/dagflow/state"
)

// TestArtifacts: Nomad fetches a task's artifact from a server the test runs, with the run's
// ID rendered into its source, before the task starts, and the task reads it; an artifact the
// server does not have fails the try with Nomad's reason, and the try is retried like any
// failure.
func TestArtifacts(t *testing.T) {
	t.Parallel()
	var (
		mu       sync.Mutex
		requests []string
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		requests = append(requests, r.URL.Path+" run="+r.URL.Query().Get("run"))
		mu.Unlock()
		if r.URL.Path != "/data.txt" {
			http.NotFound(w, r)
			return
		}
		fmt.Fprint(w, "artifact payload")
	}))
	t.Cleanup(srv.Close)

	s := newStack(t, engine.Config{})
	s.apply(strings.ReplaceAll(`
dag "fetch" {
  task "read" {
    command = "/bin/sh"
    args    = ["-c", "test \"$(cat local/in/data.txt)\" = 'artifact payload'"]
    artifact {
      source      = "SERVER/data.txt?run=${run.id}"
      destination = "local/in/data.txt"
      mode        = "file"
    }
  }
}
dag "missing" {
  task "read" {
    command     = "/bin/true"
    retries     = 1
    retry_delay = "1s"
    artifact {
      source = "SERVER/nothing-here.txt"
    }
  }
}
`, "SERVER", srv.URL))
	fetch, missing := s.trigger("fetch", nil), s.trigger("missing", nil)

	rec := s.waitRun("fetch", fetch, 2*time.Minute)
	if rec.Run.State != state.RunSuccess {
		t.Errorf("fetch: %s", describe(rec))
	}
	mu.Lock()
	got := append([]string(nil), requests...)
	mu.Unlock()
	if want := "/data.txt run=" + fetch; !slices.Contains(got, want) {
		t.Errorf("server saw %q, want a request for %q", got, want)
	}

	rec = s.waitRun("missing", missing, 2*time.Minute)
	tries := rec.Tasks["read"].Tries
	if rec.Run.State != state.RunFailed || len(tries) != 2 {
		t.Fatalf("missing: want a failed run with 2 tries: %s", describe(rec))
	}
	for _, try := range tries {
		if try.State != rules.Failed || !strings.Contains(try.Message, "404") || !strings.Contains(strings.ToLower(try.Message), "artifact") {
			t.Errorf("try %d: state %s, message %q; want failed with Nomad's artifact download error (404)", try.Try, try.State, try.Message)
		}
	}
	if tries[0].JobID == tries[1].JobID {
		t.Errorf("the retry ran under the first try's job ID %s", tries[0].JobID)
	}
}

// TestVolumes: a queue's host volume joins its tasks; one task writes through its mount, the
// next reads the file through a read-only mount of a volume of its own, and cannot write there.
// Both run with the exec driver, as raw_exec cannot mount volumes.
func TestVolumes(t *testing.T) {
	t.Parallel()
	s := newStack(t, engine.Config{})
	s.apply(strings.ReplaceAll(`
queue "disk" {
  volume "shared" {
    source = "VOLUME"
  }
}
dag "volumes" {
  defaults {
    queue  = "disk"
    driver = "exec"
  }
  task "write" {
    command = "/bin/sh"
    args    = ["-c", "echo ${run.id} > /mnt/shared/${run.id}.txt"]
    volume_mount {
      volume      = "shared"
      destination = "/mnt/shared"
    }
  }
  task "read" {
    depends_on = ["write"]
    command    = "/bin/sh"
    args       = ["-c", "test \"$(cat /in/${run.id}.txt)\" = ${run.id} && ! touch /in/${run.id}.denied"]
    volume "mine" {
      source    = "VOLUME"
      read_only = true
    }
    volume_mount {
      volume      = "mine"
      destination = "/in"
      read_only   = true
    }
  }
}
`, "VOLUME", devstack.HostVolume))
	id := s.trigger("volumes", nil)
	rec := s.waitRun("volumes", id, 3*time.Minute)
	if rec.Run.State != state.RunSuccess {
		t.Fatalf("volumes: %s", describe(rec))
	}
	// The file is on the host, in the volume's directory.
	dir := hostVolumeDir(t, s)
	b, err := os.ReadFile(filepath.Join(dir, id+".txt"))
	if err != nil || strings.TrimSpace(string(b)) != id {
		t.Errorf("host volume file: %q, %v; want %q", b, err, id)
	}
	if _, err := os.Stat(filepath.Join(dir, id+".denied")); err == nil {
		t.Errorf("the read-only mount let the task write")
	}
}

// hostVolumeDir is the path of devstack.HostVolume on the stack's Nomad node.
func hostVolumeDir(t *testing.T, s *stack) string {
	t.Helper()
	stubs, _, err := s.nomad.Nodes().List(nil)
	if err != nil || len(stubs) == 0 {
		t.Fatalf("list nodes: %v", err)
	}
	node, _, err := s.nomad.Nodes().Info(stubs[0].ID, nil)
	if err != nil {
		t.Fatal(err)
	}
	hv := node.HostVolumes[devstack.HostVolume]
	if hv == nil {
		t.Fatalf("node %s has no host volume %q", node.Name, devstack.HostVolume)
	}
	return hv.Path
}
