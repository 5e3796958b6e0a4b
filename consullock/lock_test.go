package consullock

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	consulapi "github.com/hashicorp/consul/api"
	"github.com/hashicorp/go-hclog"

	"github.com/dagflow/dagflow/internal/devstack"
	"github.com/dagflow/dagflow/internal/wait"
)

// generous bounds every wait for something that normally takes a second or two: machines are
// shared, so only gross failures fail the test; the times measured are logged.
const generous = 10 * time.Second

func TestNewValidates(t *testing.T) {
	client, err := consulapi.NewClient(consulapi.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	tests := map[string]struct {
		client *consulapi.Client
		cfg    Config
		want   string // substring of the error; "" for none
	}{
		"minimal":                {client, Config{Key: "dagflow/leader"}, ""},
		"everything":             {client, Config{Key: "k", Value: []byte("v"), Checks: []string{"c"}, LockDelay: 60 * time.Second, SessionTTL: 10 * time.Second, UnreachableGrace: time.Second}, ""},
		"no client":              {nil, Config{Key: "k"}, "no consul client"},
		"no key":                 {client, Config{}, "no key"},
		"leading slash":          {client, Config{Key: "/k"}, "must not start with a slash"},
		"value too large":        {client, Config{Key: "k", Value: make([]byte, maxValueSize+1)}, "more than Consul's limit"},
		"empty check":            {client, Config{Key: "k", Checks: []string{""}}, "empty check ID"},
		"negative lock delay":    {client, Config{Key: "k", LockDelay: -time.Second}, "lock delay"},
		"lock delay too long":    {client, Config{Key: "k", LockDelay: 61 * time.Second}, "lock delay"},
		"ttl too short":          {client, Config{Key: "k", SessionTTL: 9 * time.Second}, "session TTL"},
		"ttl too long":           {client, Config{Key: "k", SessionTTL: 25 * time.Hour}, "session TTL"},
		"unreachable grace tiny": {client, Config{Key: "k", UnreachableGrace: 10 * time.Millisecond}, "unreachable grace"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			l, err := New(tt.client, tt.cfg)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				if l.cfg.Checks[0] != serfHealthCheck || l.cfg.LockDelay == 0 || l.cfg.UnreachableGrace == 0 {
					t.Errorf("defaults not filled in: %+v", l.cfg)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New: error %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestAcquireIsExclusive(t *testing.T) {
	t.Parallel()
	env := newEnv(t)
	a, b := env.lock(t, "a", nil), env.lock(t, "b", nil)

	ldA := mustAcquire(t, a)
	if got := leader(t, a); got != "a" {
		t.Errorf("Leader = %q, want %q", got, "a")
	}
	bAcquired := acquireAsync(b)
	select {
	case r := <-bAcquired:
		t.Fatalf("second contender acquired the held lock (err %v)", r.err)
	case <-time.After(time.Second):
	}

	released := time.Now()
	if err := ldA.Release(context.Background()); err != nil {
		t.Fatalf("Release: %v", err)
	}
	ldB := waitAcquired(t, bAcquired, generous)
	t.Logf("failover after a clean release: %s", time.Since(released))
	if got := leader(t, b); got != "b" {
		t.Errorf("Leader = %q, want %q", got, "b")
	}

	if err := ldB.Release(context.Background()); err != nil {
		t.Fatalf("Release: %v", err)
	}
	if got := leader(t, a); got != "" {
		t.Errorf("Leader after release = %q, want empty", got)
	}
	if n := len(env.sessions(t)); n != 0 {
		t.Errorf("%d sessions left after release, want 0", n)
	}
}

func TestTxn(t *testing.T) {
	t.Parallel()
	env := newEnv(t)
	l := env.lock(t, "a", nil)
	ld := mustAcquire(t, l)
	defer ld.Release(context.Background())
	ctx := context.Background()

	resp, err := ld.Txn(ctx, consulapi.TxnOps{kvSet("data/x", "1"), kvSet("data/y", "2")})
	if err != nil {
		t.Fatalf("Txn: %v", err)
	}
	if len(resp.Results) != 2 || resp.Results[0].KV.Key != "data/x" || resp.Results[1].KV.Key != "data/y" {
		t.Errorf("Results are not those of the caller's ops: %s", describeResults(resp))
	}
	if got := env.get(t, "data/x"); got != "1" {
		t.Errorf("data/x = %q, want %q", got, "1")
	}

	// A failing cas rolls everything back and leaves the leadership alone.
	resp, err = ld.Txn(ctx, consulapi.TxnOps{
		kvSet("data/z", "3"),
		{KV: &consulapi.KVTxnOp{Verb: consulapi.KVCAS, Key: "data/x", Value: []byte("2"), Index: 1}},
	})
	if !errors.Is(err, ErrTxnFailed) {
		t.Fatalf("Txn with a stale cas: error %v, want ErrTxnFailed", err)
	}
	t.Logf("stale cas: %v", err)
	if len(resp.Errors) != 1 || resp.Errors[0].OpIndex != 1 {
		t.Errorf("Errors do not point at the cas op (index 1): %+v", resp.Errors)
	}
	if got := env.get(t, "data/z"); got != "" {
		t.Errorf("data/z = %q after a rolled back txn, want it absent", got)
	}
	if ld.Err() != nil {
		t.Errorf("leadership lost after a failed cas: %v", ld.Err())
	}

	refused := map[string]consulapi.TxnOps{
		"too many ops":         make(consulapi.TxnOps, MaxTxnOps+1),
		"nil op":               {nil},
		"set on the lock key":  {kvSet(env.key, "mine")},
		"delete-tree above it": {{KV: &consulapi.KVTxnOp{Verb: consulapi.KVDeleteTree, Key: "test/"}}},
	}
	for name, ops := range refused {
		if _, err := ld.Txn(ctx, ops); err == nil || errors.Is(err, ErrLost) || errors.Is(err, ErrTxnFailed) {
			t.Errorf("%s: error %v, want a refusal", name, err)
		}
	}
	// Reading the lock key is fine.
	if _, err := ld.Txn(ctx, consulapi.TxnOps{{KV: &consulapi.KVTxnOp{Verb: consulapi.KVGet, Key: env.key}}}); err != nil {
		t.Errorf("Txn reading the lock key: %v", err)
	}

	// MaxTxnOps ops fit along with the fence.
	ops := make(consulapi.TxnOps, MaxTxnOps)
	for i := range ops {
		ops[i] = kvSet(fmt.Sprintf("data/many/%d", i), "v")
	}
	if _, err := ld.Txn(ctx, ops); err != nil {
		t.Errorf("Txn with %d ops: %v", MaxTxnOps, err)
	}
}

// TestTxnFence checks Consul's side of the fence, without the watches: the Leadership has not
// noticed the loss when its transaction reaches Consul.
func TestTxnFence(t *testing.T) {
	t.Parallel()
	env := newEnv(t)
	l := env.lock(t, "a", nil)
	ctx := context.Background()
	s := env.holdBehindLock(t, l)
	ld := &Leadership{lock: l, s: s, logger: l.logger, lost: make(chan struct{})}
	if _, err := ld.Txn(ctx, consulapi.TxnOps{kvSet("data/before", "1")}); err != nil {
		t.Fatalf("Txn while holding: %v", err)
	}

	if _, err := env.client.Session().Destroy(s.id, nil); err != nil {
		t.Fatal(err)
	}
	sent := env.txns.Load()
	_, err := ld.Txn(ctx, consulapi.TxnOps{kvSet("data/after", "1")})
	if !errors.Is(err, ErrLost) {
		t.Fatalf("Txn after the session was destroyed: error %v, want ErrLost", err)
	}
	t.Logf("rejected: %v", err)
	if env.txns.Load() != sent+1 {
		t.Errorf("the txn did not reach Consul: the fence was not tested")
	}
	select {
	case <-ld.Lost():
	default:
		t.Errorf("Lost not closed after the fence rejected a txn")
	}
	if got := env.get(t, "data/after"); got != "" {
		t.Errorf("fenced write happened: data/after = %q", got)
	}
}

func TestLoss(t *testing.T) {
	tests := map[string]struct {
		check string                                     // bind A's session to a check ("ttl", "http") that passes until cause
		cause func(t *testing.T, e *env, ld *Leadership) // takes the leadership away
	}{
		"session destroyed": {
			cause: func(t *testing.T, e *env, ld *Leadership) {
				if _, err := e.client.Session().Destroy(ld.Session(), nil); err != nil {
					t.Fatal(err)
				}
			},
		},
		"lock key deleted": {
			cause: func(t *testing.T, e *env, ld *Leadership) {
				if _, err := e.client.KV().Delete(e.key, nil); err != nil {
					t.Fatal(err)
				}
			},
		},
		"ttl check turns critical": {
			check: "ttl",
			cause: func(t *testing.T, e *env, ld *Leadership) { e.stopPassing() },
		},
		"http check turns critical": {
			// As when the instance dies: its HTTP check (every 1 s) is refused.
			check: "http",
			cause: func(t *testing.T, e *env, ld *Leadership) { e.stopPassing() },
		},
		"consul restarted": {
			// A dev agent keeps its state in memory: sessions and keys are gone afterwards.
			cause: func(t *testing.T, e *env, ld *Leadership) {
				if err := e.consul.Restart(context.Background()); err != nil {
					t.Fatal(err)
				}
			},
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			env := newEnv(t)
			var checks []string
			switch tt.check {
			case "ttl":
				checks = []string{env.ttlCheck(t, "dagflow-test-a")}
			case "http":
				checks = []string{env.httpCheck(t, "dagflow-test-a")}
			}
			a, b := env.lock(t, "a", checks), env.lock(t, "b", nil)
			ld := mustAcquire(t, a)
			defer ld.Release(context.Background())
			bAcquired := acquireAsync(b)
			if _, err := ld.Txn(context.Background(), consulapi.TxnOps{kvSet("data/before", "1")}); err != nil {
				t.Fatalf("Txn while holding: %v", err)
			}

			caused := time.Now()
			tt.cause(t, env, ld)
			select {
			case <-ld.Lost():
				t.Logf("loss noticed after %s: %v", time.Since(caused), ld.Err())
			case <-time.After(generous):
				t.Fatalf("Lost not closed %s after the leadership was taken away", generous)
			}
			if !errors.Is(ld.Err(), ErrLost) {
				t.Errorf("Err = %v, want ErrLost", ld.Err())
			}

			// Once lost, Txn refuses without contacting Consul.
			sent := env.txns.Load()
			for range 3 {
				if _, err := ld.Txn(context.Background(), consulapi.TxnOps{kvSet("data/after", "1")}); !errors.Is(err, ErrLost) {
					t.Errorf("Txn after loss: error %v, want ErrLost", err)
				}
			}
			if n := env.txns.Load() - sent; n != 0 {
				t.Errorf("Txn after loss sent %d transactions to Consul, want 0", n)
			}
			if got := env.get(t, "data/after"); got != "" {
				t.Errorf("write after loss happened: data/after = %q", got)
			}

			ldB := waitAcquired(t, bAcquired, generous)
			t.Logf("failover: second contender leads %s after the leadership was taken away", time.Since(caused))
			defer ldB.Release(context.Background())
			if got := leader(t, b); got != "b" {
				t.Errorf("Leader = %q, want %q", got, "b")
			}
			// The lost leadership destroys its session in the background, whatever took the
			// lock away.
			deadline := time.Now().Add(generous)
			for slices.Contains(sessionIDs(env.sessions(t)), ld.Session()) {
				if time.Now().After(deadline) {
					t.Fatalf("session %s of the lost leadership still there after %s", ld.Session(), generous)
				}
				time.Sleep(50 * time.Millisecond)
			}
		})
	}
}

func TestLossWhenConsulUnreachable(t *testing.T) {
	t.Parallel()
	env := newEnv(t)
	l := env.lock(t, "a", nil)
	l.cfg.UnreachableGrace = 2 * time.Second
	ld := mustAcquire(t, l)

	stopped := time.Now()
	if err := env.consul.Stop(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ld.Lost():
		t.Logf("loss noticed %s after consul stopped (grace %s): %v", time.Since(stopped), l.cfg.UnreachableGrace, ld.Err())
	case <-time.After(generous):
		t.Fatalf("Lost not closed %s after consul stopped", generous)
	}
	sent := env.txns.Load()
	if _, err := ld.Txn(context.Background(), consulapi.TxnOps{kvSet("data/after", "1")}); !errors.Is(err, ErrLost) {
		t.Errorf("Txn after loss: error %v, want ErrLost", err)
	}
	if env.txns.Load() != sent {
		t.Errorf("Txn after loss contacted Consul")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := ld.Release(ctx); err == nil {
		t.Errorf("Release with consul down succeeded")
	} else {
		t.Logf("Release with consul down: %v", err)
	}
}

func TestAcquireCancelled(t *testing.T) {
	t.Parallel()
	env := newEnv(t)
	a, b := env.lock(t, "a", nil), env.lock(t, "b", nil)
	ldA := mustAcquire(t, a)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := b.Acquire(ctx)
		done <- err
	}()
	// Let B create its session and start waiting.
	deadline := time.Now().Add(generous)
	for len(env.sessions(t)) < 2 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond)
	cancelled := time.Now()
	cancel()
	select {
	case err := <-done:
		t.Logf("Acquire returned %s after cancel: %v", time.Since(cancelled), err)
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Acquire: error %v, want context.Canceled", err)
		}
	case <-time.After(generous):
		t.Fatalf("Acquire still blocked %s after cancel", generous)
	}
	sessions := env.sessions(t)
	if len(sessions) != 1 || sessions[0].ID != ldA.Session() {
		t.Errorf("sessions after cancelled Acquire: %s, want only the holder's %s", sessionIDs(sessions), ldA.Session())
	}

	// A context that is already done returns at once, without creating a session.
	if _, err := b.Acquire(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Acquire with a done context: error %v, want context.Canceled", err)
	}
	if err := ldA.Release(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := len(env.sessions(t)); n != 0 {
		t.Errorf("%d sessions left, want 0", n)
	}
}

func TestRelease(t *testing.T) {
	tests := map[string]func(t *testing.T, e *env, ld *Leadership){
		"twice": func(t *testing.T, e *env, ld *Leadership) {
			if err := ld.Release(context.Background()); err != nil {
				t.Fatalf("first Release: %v", err)
			}
		},
		"after loss": func(t *testing.T, e *env, ld *Leadership) {
			if _, err := e.client.Session().Destroy(ld.Session(), nil); err != nil {
				t.Fatal(err)
			}
			<-ld.Lost()
		},
		"after a failed release": func(t *testing.T, e *env, ld *Leadership) {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			t.Logf("Release with a done context: %v", ld.Release(ctx))
		},
	}
	for name, before := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			env := newEnv(t)
			l := env.lock(t, "a", nil)
			ld := mustAcquire(t, l)
			before(t, env, ld)
			if err := ld.Release(context.Background()); err != nil {
				t.Errorf("Release: %v", err)
			}
			if ld.Err() == nil {
				t.Errorf("Err = nil after Release")
			}
			if _, err := ld.Txn(context.Background(), consulapi.TxnOps{kvSet("data/x", "1")}); !errors.Is(err, ErrLost) {
				t.Errorf("Txn after Release: error %v, want ErrLost", err)
			}
			if n := len(env.sessions(t)); n != 0 {
				t.Errorf("%d sessions left after Release, want 0", n)
			}
			// The lock can be taken again at once.
			ld2 := mustAcquire(t, l)
			if err := ld2.Release(context.Background()); err != nil {
				t.Errorf("Release: %v", err)
			}
		})
	}
}

// TestOrphanDestroyedByNextAcquire checks that a session the Lock failed to destroy cannot keep
// holding the key: the next Acquire destroys it.
func TestOrphanDestroyedByNextAcquire(t *testing.T) {
	t.Parallel()
	env := newEnv(t)
	l := env.lock(t, "a", nil)
	ctx := context.Background()
	s := env.holdBehindLock(t, l)
	l.orphans[s.id] = true

	start := time.Now()
	ld := mustAcquire(t, l)
	t.Logf("acquired %s after destroying the orphan", time.Since(start))
	defer ld.Release(ctx)
	sessions := env.sessions(t)
	if len(sessions) != 1 || sessions[0].ID != ld.Session() {
		t.Errorf("sessions: %s, want only %s", sessionIDs(sessions), ld.Session())
	}
}

func TestSessionTTLRenewed(t *testing.T) {
	if testing.Short() {
		t.Skip("holds a lock for 2×TTL (22 s)")
	}
	t.Parallel()
	env := newEnv(t)
	l := env.lock(t, "a", nil)
	l.cfg.SessionTTL = 10 * time.Second
	ld := mustAcquire(t, l)
	defer ld.Release(context.Background())
	info, _, err := env.client.Session().Info(ld.Session(), nil)
	if err != nil || info == nil || info.TTL != "10s" {
		t.Fatalf("session info: %+v, %v; want TTL 10s", info, err)
	}
	// Consul invalidates an unrenewed session between TTL and 2×TTL.
	select {
	case <-ld.Lost():
		t.Fatalf("leadership lost although the session is renewed: %v", ld.Err())
	case <-time.After(2*l.cfg.SessionTTL + 2*time.Second):
	}
	if _, err := ld.Txn(context.Background(), consulapi.TxnOps{kvSet("data/x", "1")}); err != nil {
		t.Errorf("Txn after 2×TTL: %v", err)
	}
}

// env is a Consul agent for one test, with a client that counts the transactions it sends.
type env struct {
	consul *devstack.Consul
	client *consulapi.Client
	key    string
	txns   *atomic.Int64

	passMu sync.Mutex
	pass   func() // makes the check fail, if any
}

func newEnv(t *testing.T) *env {
	t.Helper()
	c := devstack.StartConsulT(t)
	e := &env{consul: c, key: "test/leader", txns: new(atomic.Int64)}
	e.client = e.newClient(t)
	return e
}

// newClient returns a client for the agent that counts the /v1/txn requests it sends.
func (e *env) newClient(t *testing.T) *consulapi.Client {
	t.Helper()
	transport := http.DefaultTransport.(*http.Transport).Clone()
	client, err := consulapi.NewClient(&consulapi.Config{
		Address:    e.consul.HTTPAddr,
		Scheme:     "http",
		HttpClient: &http.Client{Transport: countingTransport{transport, e.txns}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return client
}

// lock returns a Lock on the test key whose holder writes value, logging to the test.
func (e *env) lock(t *testing.T, value string, checks []string) *Lock {
	t.Helper()
	l, err := New(e.newClient(t), Config{
		Key:    e.key,
		Value:  []byte(value),
		Checks: checks,
		Logger: testLogger(t, value),
	})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// ttlCheck registers a TTL check of 2 s on the agent and passes it every 500 ms until
// stopPassing is called.
// holdBehindLock makes l's session take the lock key directly, bypassing Acquire and its
// watches, so a test can drive the Leadership's parts one at a time.
func (e *env) holdBehindLock(t *testing.T, l *Lock) *session {
	t.Helper()
	s, err := l.createSession(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if ok, _, err := e.client.KV().Acquire(&consulapi.KVPair{Key: e.key, Session: s.id}, nil); !ok || err != nil {
		t.Fatalf("acquire: %v, %v", ok, err)
	}
	return s
}

func (e *env) ttlCheck(t *testing.T, id string) string {
	t.Helper()
	reg := &consulapi.AgentCheckRegistration{
		ID:                id,
		Name:              id,
		AgentServiceCheck: consulapi.AgentServiceCheck{TTL: "2s", Status: consulapi.HealthPassing},
	}
	if err := e.client.Agent().CheckRegister(reg); err != nil {
		t.Fatalf("register check: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for wait.Sleep(ctx, 500*time.Millisecond) {
			_ = e.client.Agent().PassTTL(id, "")
		}
	}()
	e.passMu.Lock()
	e.pass = sync.OnceFunc(func() { cancel(); <-done })
	e.passMu.Unlock()
	t.Cleanup(e.stopPassing)
	return id
}

// httpCheck registers an HTTP check run every second, with a 1 s timeout, against a server
// that answers 200 until stopPassing is called, and refuses connections afterwards.
func (e *env) httpCheck(t *testing.T, id string) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	reg := &consulapi.AgentCheckRegistration{
		ID:   id,
		Name: id,
		AgentServiceCheck: consulapi.AgentServiceCheck{
			HTTP:     srv.URL,
			Interval: "1s",
			Timeout:  "1s",
			Status:   consulapi.HealthPassing,
		},
	}
	if err := e.client.Agent().CheckRegister(reg); err != nil {
		t.Fatalf("register check: %v", err)
	}
	e.passMu.Lock()
	e.pass = sync.OnceFunc(srv.Close)
	e.passMu.Unlock()
	t.Cleanup(e.stopPassing)
	return id
}

func (e *env) stopPassing() {
	e.passMu.Lock()
	stop := e.pass
	e.passMu.Unlock()
	if stop != nil {
		stop()
	}
}

// sessions lists every session in Consul.
func (e *env) sessions(t *testing.T) []*consulapi.SessionEntry {
	t.Helper()
	s, _, err := e.client.Session().List(&consulapi.QueryOptions{RequireConsistent: true})
	if err != nil {
		t.Fatalf("list sessions: %v", err)
	}
	return s
}

// get returns the value of key, "" when absent.
func (e *env) get(t *testing.T, key string) string {
	t.Helper()
	pair, _, err := e.client.KV().Get(key, &consulapi.QueryOptions{RequireConsistent: true})
	if err != nil {
		t.Fatalf("get %s: %v", key, err)
	}
	if pair == nil {
		return ""
	}
	return string(pair.Value)
}

// countingTransport counts the transactions that go through it.
type countingTransport struct {
	base http.RoundTripper
	txns *atomic.Int64
}

func (c countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Path == "/v1/txn" {
		c.txns.Add(1)
	}
	return c.base.RoundTrip(r)
}

type acquired struct {
	ld  *Leadership
	err error
}

// acquireAsync runs l.Acquire in the background for up to a minute.
func acquireAsync(l *Lock) <-chan acquired {
	ch := make(chan acquired, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		ld, err := l.Acquire(ctx)
		ch <- acquired{ld, err}
	}()
	return ch
}

func waitAcquired(t *testing.T, ch <-chan acquired, within time.Duration) *Leadership {
	t.Helper()
	select {
	case r := <-ch:
		if r.err != nil {
			t.Fatalf("Acquire: %v", r.err)
		}
		return r.ld
	case <-time.After(within):
		t.Fatalf("not acquired within %s", within)
		return nil
	}
}

func mustAcquire(t *testing.T, l *Lock) *Leadership {
	t.Helper()
	return waitAcquired(t, acquireAsync(l), generous)
}

func leader(t *testing.T, l *Lock) string {
	t.Helper()
	v, err := l.Leader(context.Background())
	if err != nil {
		t.Fatalf("Leader: %v", err)
	}
	return string(v)
}

func kvSet(key, value string) *consulapi.TxnOp {
	return &consulapi.TxnOp{KV: &consulapi.KVTxnOp{Verb: consulapi.KVSet, Key: key, Value: []byte(value)}}
}

func describeResults(resp *consulapi.TxnResponse) string {
	var keys []string
	for _, r := range resp.Results {
		if r.KV != nil {
			keys = append(keys, r.KV.Key)
		} else {
			keys = append(keys, "<non-kv>")
		}
	}
	return fmt.Sprintf("%d results %v", len(resp.Results), keys)
}

func sessionIDs(s []*consulapi.SessionEntry) []string {
	ids := make([]string, len(s))
	for i, e := range s {
		ids[i] = e.ID
	}
	return ids
}

// testLogger logs to t until the test ends; later lines (from goroutines still winding down)
// are dropped rather than reported after the test completed.
func testLogger(t *testing.T, name string) hclog.Logger {
	w := &testWriter{t: t}
	t.Cleanup(w.close)
	return hclog.New(&hclog.LoggerOptions{Name: name, Level: hclog.Debug, Output: w})
}

type testWriter struct {
	mu     sync.Mutex
	t      *testing.T
	closed bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.closed {
		w.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

func (w *testWriter) close() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.closed = true
}
