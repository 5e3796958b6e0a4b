package consullock

import (
	"context"
	"slices"
	"testing"

	consulapi "github.com/hashicorp/consul/api"
)

// TestAcquireReclaimsEarlierProcess is a leader killed and restarted at once, on the same
// address: its session, bound to the check the new process registers again and passes, is
// never invalidated by Consul. The new process must destroy it and lead, instead of waiting
// for it for ever with every other instance.
func TestAcquireReclaimsEarlierProcess(t *testing.T) {
	t.Parallel()
	env := newEnv(t)
	check := env.passingCheck(t, "service:instance-a")
	crashed := env.holdBehindLock(t, env.lock(t, "a, first process", []string{check}))

	ld := mustAcquire(t, env.lock(t, "a, restarted", []string{check}))
	defer ld.Release(context.Background())
	if got := env.get(t, env.key); got != "a, restarted" {
		t.Errorf("lock key = %q, want the restarted process's", got)
	}
	if slices.Contains(sessionIDs(env.sessions(t)), crashed.id) {
		t.Errorf("the crashed process's session %s still exists", crashed.id)
	}
}

// TestReclaimLeavesOthersAlone: a session of another instance (bound to another check) holding
// the key is waited for, not destroyed.
func TestReclaimLeavesOthersAlone(t *testing.T) {
	t.Parallel()
	env := newEnv(t)
	other := env.holdBehindLock(t, env.lock(t, "b", []string{env.passingCheck(t, "service:instance-b")}))
	a := env.lock(t, "a", []string{env.passingCheck(t, "service:instance-a")})
	own, err := a.createSession(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer a.destroy(context.Background(), own)
	noChecks := env.lock(t, "c", nil)

	if a.reclaim(context.Background(), own.id, other.id) {
		t.Errorf("reclaim destroyed the session of an instance with another check")
	}
	if noChecks.reclaim(context.Background(), own.id, other.id) {
		t.Errorf("reclaim by a lock bound to serfHealth alone destroyed a session")
	}
	if !slices.Contains(sessionIDs(env.sessions(t)), other.id) {
		t.Errorf("the other instance's session %s is gone", other.id)
	}
}

// passingCheck registers a TTL check that stays passing for the whole test.
func (e *env) passingCheck(t *testing.T, id string) string {
	t.Helper()
	reg := &consulapi.AgentCheckRegistration{
		ID:                id,
		Name:              id,
		AgentServiceCheck: consulapi.AgentServiceCheck{TTL: "1h", Status: consulapi.HealthPassing},
	}
	if err := e.client.Agent().CheckRegister(reg); err != nil {
		t.Fatalf("register check: %v", err)
	}
	return id
}
