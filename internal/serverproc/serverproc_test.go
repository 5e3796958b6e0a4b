//go:build unix

package serverproc_test

import (
	"context"
	"errors"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/dagflow/dagflow/internal/devstack"
	"github.com/dagflow/dagflow/internal/serverproc"
)

// TestLifecycle runs two instances of one installation and takes the active one through
// every way of ending: the other takes over each time, and the one brought back stands by.
func TestLifecycle(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	consul := devstack.StartConsulT(t)
	bin, err := serverproc.Build(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	opts := serverproc.Options{
		Binary:     bin,
		ConsulAddr: consul.HTTPAddr,
		// No Nomad: leading needs only Consul; the leader's scheduler retries Nomad meanwhile.
		NomadAddr: "http://" + unusedAddr(t),
		KVPrefix:  "lifecycle/",
		JobPrefix: "lifecycle-",
		Config:    "leader {\n  lock_delay = \"10ms\"\n}\n",
		Dir:       t.TempDir(),
	}
	a := start(t, ctx, opts)
	first, err := serverproc.WaitActive(ctx, a)
	if err != nil || first != a {
		t.Fatalf("WaitActive of the only instance = %v, %v; want it", first, err)
	}
	b := start(t, ctx, opts)
	if a.URL() == b.URL() || a.LogPath() == b.LogPath() {
		t.Fatalf("two instances share %s / %s", a.URL(), a.LogPath())
	}
	if role, err := b.Role(ctx); err != nil || role != "standby" {
		t.Fatalf("second instance role = %q, %v; want standby", role, err)
	}

	// kill -9: the standby takes over once Consul's check finds the leader gone.
	url := a.URL()
	if err := a.Kill(); err != nil {
		t.Fatal(err)
	}
	if a.Running() || a.ExitState() == nil {
		t.Fatalf("killed instance still running")
	}
	if err := a.Kill(); !errors.Is(err, serverproc.ErrNotRunning) {
		t.Errorf("second Kill = %v, want ErrNotRunning", err)
	}
	if next, err := serverproc.WaitActive(ctx, a, b); err != nil || next != b {
		t.Fatalf("after kill -9: active %v, %v; want the second instance", next, err)
	}
	if err := a.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	if a.URL() != url || a.Starts() != 2 {
		t.Errorf("after Restart: URL %s (was %s), %d starts; want the same URL and 2", a.URL(), url, a.Starts())
	}
	waitRole(t, ctx, a, "standby")

	// SIGSTOP: the frozen leader's session goes with its health check; after SIGCONT it
	// finds itself deposed and stands by.
	if err := b.Pause(); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Role(ctx); err == nil {
		t.Errorf("a paused instance answered its health check")
	}
	if next, err := serverproc.WaitActive(ctx, a); err != nil || next != a {
		t.Fatalf("after SIGSTOP: active %v, %v; want the first instance", next, err)
	}
	if err := b.Resume(); err != nil {
		t.Fatal(err)
	}
	waitRole(t, ctx, b, "standby")

	// SIGINT: a clean handover.
	if err := a.Stop(); err != nil {
		t.Fatal(err)
	}
	if code := a.ExitState().ExitCode(); code != 0 {
		t.Errorf("stopped instance exited %d, want 0", code)
	}
	if next, err := serverproc.WaitActive(ctx, a, b); err != nil || next != b {
		t.Fatalf("after SIGINT: active %v, %v; want the second instance", next, err)
	}

	// A paused instance stops too: Stop resumes it to deliver the SIGINT.
	if err := b.Pause(); err != nil {
		t.Fatal(err)
	}
	if err := b.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := serverproc.Active(ctx, a, b); !errors.Is(err, serverproc.ErrNoActive) {
		t.Errorf("Active with both stopped = %v, want ErrNoActive", err)
	}

	log, err := os.ReadFile(a.LogPath())
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(log), "==> serverproc: start"); n != 2 {
		t.Errorf("log of the restarted instance holds %d starts, want 2", n)
	}
	if !strings.Contains(string(log), "acquired leadership") {
		t.Errorf("log of the first instance does not hold its leadership:\n%s", log)
	}
}

func start(t *testing.T, ctx context.Context, o serverproc.Options) *serverproc.Server {
	t.Helper()
	s, err := serverproc.Start(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			b, _ := os.ReadFile(s.LogPath())
			t.Logf("server %s log:\n%s", s.URL(), b)
		}
		if err := s.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return s
}

// waitRole waits until s reports role; leadership settles within seconds, so a minute means
// it never will.
func waitRole(t *testing.T, ctx context.Context, s *serverproc.Server, role string) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		got, err := s.Role(ctx)
		if got == role {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: role %q (%v), want %q", s.URL(), got, err, role)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// unusedAddr returns an address nothing listens on.
func unusedAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
