package devstack

import (
	"context"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	consulapi "github.com/hashicorp/consul/api"
	nomadapi "github.com/hashicorp/nomad/api"
	"github.com/jackc/pgx/v5"
)

func TestBinary(t *testing.T) {
	for _, name := range []string{"consul", "nomad"} {
		p, err := Binary(name)
		if err != nil {
			t.Fatalf("Binary(%q): %v", name, err)
		}
		if st, err := os.Stat(p); err != nil || st.IsDir() {
			t.Errorf("Binary(%q) = %q, which is not a file (%v)", name, p, err)
		}
	}

	_, err := Binary("devstack-no-such-tool")
	if err == nil || !strings.Contains(err.Error(), "make tools") {
		t.Errorf("Binary of a missing tool: got error %v, want one that says to run `make tools`", err)
	}
}

func TestLastLines(t *testing.T) {
	tests := map[string]struct {
		in   string
		n    int
		want string
	}{
		"empty":          {"", 3, "(no output)"},
		"blank":          {"\n \n", 3, "(no output)"},
		"fewer than n":   {"a\nb\n", 3, "a\nb"},
		"exactly n":      {"a\nb\nc\n", 3, "a\nb\nc"},
		"more than n":    {"a\nb\nc\nd\n", 2, "c\nd"},
		"no final break": {"a\nb\nc", 2, "b\nc"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			if got := lastLines([]byte(tt.in), tt.n); got != tt.want {
				t.Errorf("lastLines(%q, %d) = %q, want %q", tt.in, tt.n, got, tt.want)
			}
		})
	}
}

func TestConsul(t *testing.T) {
	t.Parallel()
	c := StartConsulT(t)
	client := consulClient(t, c)

	if _, err := client.KV().Put(&consulapi.KVPair{Key: "dagflow/test", Value: []byte("round trip")}, nil); err != nil {
		t.Fatalf("put key: %v", err)
	}
	kv, _, err := client.KV().Get("dagflow/test", nil)
	if err != nil {
		t.Fatalf("get key: %v", err)
	}
	if kv == nil || string(kv.Value) != "round trip" {
		t.Fatalf("get key = %+v, want value %q", kv, "round trip")
	}
	// The readiness probe must not leave anything behind.
	keys, _, err := client.KV().Keys("", "", nil)
	if err != nil {
		t.Fatalf("list keys: %v", err)
	}
	if len(keys) != 1 {
		t.Errorf("keys = %q, want only dagflow/test", keys)
	}

	t.Run("restart", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		addr := c.HTTPAddr
		if err := c.Restart(ctx); err != nil {
			t.Fatalf("restart: %v", err)
		}
		if c.HTTPAddr != addr {
			t.Errorf("address after restart = %s, want %s", c.HTTPAddr, addr)
		}
		// Dev mode keeps the store in memory: the key is gone, the agent takes writes again.
		kv, _, err := client.KV().Get("dagflow/test", nil)
		if err != nil {
			t.Fatalf("get key after restart: %v", err)
		}
		if kv != nil {
			t.Errorf("key survived a dev-mode restart: %+v", kv)
		}
		if _, err := client.KV().Put(&consulapi.KVPair{Key: "dagflow/test", Value: []byte("again")}, nil); err != nil {
			t.Fatalf("put key after restart: %v", err)
		}
	})

	dir := c.dir
	if err := c.Stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if err := c.Stop(); err != nil {
		t.Fatalf("second stop: %v", err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("temp dir %s still there after Stop (stat: %v)", dir, err)
	}
	if conn, err := net.DialTimeout("tcp", c.HTTPAddr, time.Second); err == nil {
		conn.Close()
		t.Errorf("%s still accepts connections after Stop", c.HTTPAddr)
	}
	if err := c.Restart(context.Background()); err == nil {
		t.Errorf("Restart after Stop succeeded, want ErrStopped")
	}
}

func TestTwoConsuls(t *testing.T) {
	t.Parallel()
	a, b := StartConsulT(t), StartConsulT(t)
	if a.HTTPAddr == b.HTTPAddr {
		t.Fatalf("both agents on %s", a.HTTPAddr)
	}
	ca, cb := consulClient(t, a), consulClient(t, b)
	if _, err := ca.KV().Put(&consulapi.KVPair{Key: "only/a", Value: []byte("a")}, nil); err != nil {
		t.Fatalf("put on a: %v", err)
	}
	kv, _, err := cb.KV().Get("only/a", nil)
	if err != nil {
		t.Fatalf("get on b: %v", err)
	}
	if kv != nil {
		t.Errorf("b sees a's key: the agents share a cluster")
	}
}

func TestNomad(t *testing.T) {
	t.Parallel()
	c := StartConsulT(t)
	n := StartNomadT(t, c)
	client := nomadClient(t, n)

	// Joined to Consul: the agent registers its own services there.
	waitFor(t, 30*time.Second, "nomad-client service in consul", func() (bool, error) {
		svcs, _, err := consulClient(t, c).Catalog().Services(nil)
		_, ok := svcs["nomad-client"]
		return ok, err
	})

	job := nomadapi.NewBatchJob("devstack-echo", "devstack-echo", "global", 50)
	job.Datacenters = []string{"*"}
	tg := nomadapi.NewTaskGroup("echo", 1)
	// One try only: a failure should show up as "failed", not be retried behind the test's back.
	tg.RestartPolicy = &nomadapi.RestartPolicy{Attempts: ptr(0), Mode: ptr("fail")}
	tg.ReschedulePolicy = &nomadapi.ReschedulePolicy{Attempts: ptr(0), Unlimited: ptr(false)}
	task := nomadapi.NewTask("echo", "raw_exec").
		SetConfig("command", "/bin/sh").
		SetConfig("args", []string{"-c", "echo hi"})
	task.Resources = &nomadapi.Resources{CPU: ptr(50), MemoryMB: ptr(32)}
	job.AddTaskGroup(tg.AddTask(task))
	if _, _, err := client.Jobs().Register(job, nil); err != nil {
		t.Fatalf("register job: %v", err)
	}

	var alloc *nomadapi.AllocationListStub
	waitFor(t, 60*time.Second, "allocation complete", func() (bool, error) {
		allocs, _, err := client.Jobs().Allocations(*job.ID, false, nil)
		if err != nil {
			return false, err
		}
		for _, a := range allocs {
			switch a.ClientStatus {
			case nomadapi.AllocClientStatusComplete:
				alloc = a
				return true, nil
			case nomadapi.AllocClientStatusFailed, nomadapi.AllocClientStatusLost:
				t.Fatalf("allocation %s is %s: %+v", a.ID, a.ClientStatus, a.TaskStates)
			}
		}
		return false, nil
	})
	full, _, err := client.Allocations().Info(alloc.ID, nil)
	if err != nil {
		t.Fatalf("get allocation: %v", err)
	}
	r, err := client.AllocFS().Cat(full, "alloc/logs/echo.stdout.0", nil)
	if err != nil {
		t.Fatalf("read task stdout: %v", err)
	}
	out, _ := io.ReadAll(r)
	r.Close()
	if string(out) != "hi\n" {
		t.Errorf("task stdout = %q, want %q", out, "hi\n")
	}

	// The host volume is declared, writable, at HostVolumeDir.
	stubs, _, err := client.Nodes().List(nil)
	if err != nil || len(stubs) != 1 {
		t.Fatalf("list nodes: %d, %v", len(stubs), err)
	}
	node, _, err := client.Nodes().Info(stubs[0].ID, nil)
	if err != nil {
		t.Fatalf("node info: %v", err)
	}
	if hv := node.HostVolumes[HostVolume]; hv == nil || hv.Path != n.HostVolumeDir || hv.ReadOnly {
		t.Errorf("node host volume %q = %+v, want writable at %s", HostVolume, hv, n.HostVolumeDir)
	}
	if fi, err := os.Stat(n.HostVolumeDir); err != nil || fi.Mode().Perm() != 0o777 {
		t.Errorf("host volume dir: %v, %v; want mode 0777", fi, err)
	}

	if err := n.Stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if err := n.Stop(); err != nil {
		t.Fatalf("second stop: %v", err)
	}
	if _, err := os.Stat(n.dir); !os.IsNotExist(err) {
		t.Errorf("temp dir %s still there after Stop (stat: %v)", n.dir, err)
	}
	if conn, err := net.DialTimeout("tcp", n.HTTPAddr, time.Second); err == nil {
		conn.Close()
		t.Errorf("%s still accepts connections after Stop", n.HTTPAddr)
	}
}

func consulClient(t *testing.T, c *Consul) *consulapi.Client {
	t.Helper()
	client, err := consulapi.NewClient(&consulapi.Config{Address: c.HTTPAddr, Scheme: "http"})
	if err != nil {
		t.Fatalf("create consul client: %v", err)
	}
	return client
}

func nomadClient(t *testing.T, n *Nomad) *nomadapi.Client {
	t.Helper()
	client, err := nomadapi.NewClient(&nomadapi.Config{Address: "http://" + n.HTTPAddr, TLSConfig: &nomadapi.TLSConfig{}})
	if err != nil {
		t.Fatalf("create nomad client: %v", err)
	}
	return client
}

// waitFor polls cond every 200 ms until it holds, failing the test after timeout.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() (bool, error)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var lastErr error
	for time.Now().Before(deadline) {
		ok, err := cond()
		if ok {
			return
		}
		lastErr = err
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("waiting for %s: timed out after %s (last error: %v)", what, timeout, lastErr)
}

func ptr[T any](v T) *T { return &v }

func TestStartErrorQuotesOutput(t *testing.T) {
	t.Parallel()
	// An HTTP port that is taken makes each agent exit at once; the error must say so.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port

	ctx := context.Background()
	c, err := StartConsul(ctx, ConsulOptions{HTTPPort: port})
	if err == nil {
		c.Stop()
		t.Errorf("consul started on a taken port")
	} else if msg := err.Error(); !strings.Contains(msg, "exited before it was ready") || !strings.Contains(msg, "address already in use") {
		t.Errorf("consul error does not explain the failure:\n%s", msg)
	} else {
		t.Logf("consul error:\n%s", firstLine(msg))
	}
	n, err := StartNomad(ctx, NomadOptions{HTTPPort: port})
	if err == nil {
		n.Stop()
		t.Errorf("nomad started on a taken port")
	} else if msg := err.Error(); !strings.Contains(msg, "exited before it was ready") || !strings.Contains(msg, "address already in use") {
		t.Errorf("nomad error does not explain the failure:\n%s", msg)
	} else {
		t.Logf("nomad error:\n%s", firstLine(msg))
	}
}

// firstLine returns s up to its "last output" part, which is long.
func firstLine(s string) string {
	before, _, _ := strings.Cut(s, "\nlast output:")
	return before
}

func TestPostgresDownAndUp(t *testing.T) {
	p := StartPostgresT(t)
	ctx := context.Background()
	url, err := p.CreateDatabase(ctx, "probe")
	if err != nil {
		t.Fatal(err)
	}
	exec := func(sql string) error {
		conn, err := pgx.Connect(ctx, url)
		if err != nil {
			return err
		}
		defer conn.Close(ctx)
		_, err = conn.Exec(ctx, sql)
		return err
	}
	if err := exec("CREATE TABLE kept (v int); INSERT INTO kept VALUES (7)"); err != nil {
		t.Fatal(err)
	}
	if err := p.Down(); err != nil {
		t.Fatal(err)
	}
	if err := exec("SELECT 1"); err == nil {
		t.Fatal("a query succeeded while the server was down")
	}
	if err := p.Up(ctx); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var v int
	if err := conn.QueryRow(ctx, "SELECT v FROM kept").Scan(&v); err != nil || v != 7 {
		t.Fatalf("after Down and Up: v = %d, %v; want the row written before", v, err)
	}
}
