package server_test

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	consulapi "github.com/hashicorp/consul/api"

	"github.com/dagflow/dagflow/internal/devstack"
)

// instance is a `dagflow server` process.
type instance struct {
	cmd  *exec.Cmd
	addr string
	log  string
}

func buildDagflow(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "dagflow")
	out, err := exec.Command("go", "build", "-o", bin, "../cmd/dagflow").CombinedOutput()
	if err != nil {
		t.Fatalf("build dagflow: %v\n%s", err, out)
	}
	return bin
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// start starts a `dagflow server` process talking to the Consul agent at consul, on the KV
// prefix "failover/" unless env says otherwise. env holds extra NAME=value settings, which win
// over the test's own environment: NOMAD_ADDR, DAGFLOW_KV_PREFIX, DAGFLOW_JOB_PREFIX, ...
func start(t *testing.T, bin, consul string, env ...string) *instance {
	t.Helper()
	in := &instance{addr: freeAddr(t), log: filepath.Join(t.TempDir(), "server.log")}
	logf, err := os.Create(in.log)
	if err != nil {
		t.Fatal(err)
	}
	in.cmd = exec.Command(bin, "server", "-listen", in.addr, "-log-level", "debug")
	// Of duplicate variables the last counts, so env wins over the defaults before it.
	in.cmd.Env = append(os.Environ(), "CONSUL_HTTP_ADDR="+consul, "DAGFLOW_KV_PREFIX=failover/")
	in.cmd.Env = append(in.cmd.Env, env...)
	in.cmd.Stdout, in.cmd.Stderr = logf, logf
	if err := in.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = in.cmd.Process.Kill()
		_, _ = in.cmd.Process.Wait()
		if t.Failed() {
			b, err := os.ReadFile(in.log)
			t.Logf("server %s log (%v):\n%s", in.addr, err, b)
		}
	})
	return in
}

// logText returns what the instance has logged so far.
func (in *instance) logText(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(in.log)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// role asks the instance's health endpoint; "" when it does not answer.
func (in *instance) role() string {
	c := http.Client{Timeout: time.Second}
	resp, err := c.Get("http://" + in.addr + "/v1/health")
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	var body struct{ Role string }
	if json.NewDecoder(resp.Body).Decode(&body) != nil {
		return ""
	}
	return body.Role
}

// waitFor polls cond until it holds or the generous deadline passes, and returns how long it
// took. Timings are logged for the notes, never asserted tightly: machines are shared.
func waitFor(t *testing.T, what string, cond func() bool) time.Duration {
	t.Helper()
	return waitWithin(t, 30*time.Second, what, cond)
}

// waitWithin is waitFor with a deadline of its own, for what takes longer than a failover,
// such as a whole run.
func waitWithin(t *testing.T, timeout time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > timeout {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Since(start)
}

// tags returns the Consul tags of the dagflow service instances, by port.
func tags(t *testing.T, client *consulapi.Client) map[int]string {
	t.Helper()
	entries, _, err := client.Health().Service("dagflow", "", false, nil)
	if err != nil {
		t.Fatal(err)
	}
	out := map[int]string{}
	for _, e := range entries {
		out[e.Service.Port] = strings.Join(e.Service.Tags, ",")
	}
	return out
}

func port(addr string) int {
	var p int
	_, _ = fmt.Sscanf(addr[strings.LastIndex(addr, ":")+1:], "%d", &p)
	return p
}

// TestFailover runs two server processes: one becomes active and the other standby, in their
// health and in Consul; a clean shutdown hands over, and so does a kill -9.
func TestFailover(t *testing.T) {
	consul := devstack.StartConsulT(t)
	client := devstack.ConsulClientT(t, consul)
	bin := buildDagflow(t)

	a := start(t, bin, consul.HTTPAddr)
	waitFor(t, "first instance active", func() bool { return a.role() == "active" })
	b := start(t, bin, consul.HTTPAddr)
	waitFor(t, "second instance standby", func() bool { return b.role() == "standby" })
	waitFor(t, "consul tags", func() bool {
		tg := tags(t, client)
		return tg[port(a.addr)] == "active" && tg[port(b.addr)] == "standby"
	})
	if a.role() != "active" {
		t.Fatalf("first instance lost leadership to a newcomer: %q", a.role())
	}

	// A clean shutdown releases the lock first: the standby takes over at once.
	if err := a.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	d := waitFor(t, "standby takes over after a clean shutdown", func() bool { return b.role() == "active" })
	t.Logf("clean handoff: standby active %s after SIGINT", d)
	st, err := a.cmd.Process.Wait()
	if err != nil {
		t.Fatalf("interrupted server: %v", err)
	}
	if code := st.ExitCode(); code != 0 {
		t.Fatalf("interrupted server exited %d", code)
	}
	waitFor(t, "deregistered", func() bool { _, ok := tags(t, client)[port(a.addr)]; return !ok })

	// kill -9: the health check turns critical, the session bound to it goes, the lock is free.
	c := start(t, bin, consul.HTTPAddr)
	waitFor(t, "third instance standby", func() bool { return c.role() == "standby" })
	if err := b.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	d = waitFor(t, "standby takes over after kill -9", func() bool { return c.role() == "active" })
	t.Logf("kill -9 failover: standby active %s after the kill", d)
	waitFor(t, "consul tags after failover", func() bool { return tags(t, client)[port(c.addr)] == "active" })
}

// TestRegistersAgain: Consul deregisters an instance whose check stayed critical for
// leader.deregister_after (cut off from its agent for that long: the partition chaos scenario
// found it), which also invalidates the sessions bound to the check. The instance registers
// again and contends: it takes over when the leader stops. Before, every session it created
// was refused ("Missing check") for as long as it ran.
func TestRegistersAgain(t *testing.T) {
	consul := devstack.StartConsulT(t)
	client := devstack.ConsulClientT(t, consul)
	bin := buildDagflow(t)

	a := start(t, bin, consul.HTTPAddr)
	waitFor(t, "first instance active", func() bool { return a.role() == "active" })
	b := start(t, bin, consul.HTTPAddr)
	waitFor(t, "second instance standby", func() bool { return b.role() == "standby" })
	waitFor(t, "second instance registered", func() bool { _, ok := tags(t, client)[port(b.addr)]; return ok })
	services, err := client.Agent().Services()
	if err != nil {
		t.Fatal(err)
	}
	id := ""
	for sid, svc := range services {
		if svc.Service == "dagflow" && svc.Port == port(b.addr) {
			id = sid
		}
	}
	if id == "" {
		t.Fatalf("no service of the second instance among %d", len(services))
	}
	if err := client.Agent().ServiceDeregister(id); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "deregistered", func() bool { _, ok := tags(t, client)[port(b.addr)]; return !ok })
	d := waitFor(t, "the deregistered instance registers again", func() bool { _, ok := tags(t, client)[port(b.addr)]; return ok })
	t.Logf("registered again %s after its deregistration", d)

	if err := a.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	d = waitFor(t, "the instance registered again takes over", func() bool { return b.role() == "active" })
	t.Logf("active %s after the leader's SIGINT", d)
	if !strings.Contains(b.logText(t), "registering it again") {
		t.Error("the instance's log does not say it registered again")
	}
}
