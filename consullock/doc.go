// Package consullock elects one leader among dagflow server instances with a Consul session
// lock, and fences the leader's writes so that a deposed leader cannot corrupt state.
//
// Every instance calls Lock.Acquire. One of them gets a Leadership; the others block, watching
// the lock key with blocking queries, and the first to see it free takes it. The holder writes
// its Config.Value (instance ID and address) into the key, which Lock.Leader reads back.
//
// # Leadership can be lost at any moment
//
// Holding the lock is a belief, not a fact: Consul can take the lock away at any moment, and the
// holder only learns it afterwards. That happens when a health check the session is bound to
// turns critical (this instance's own HTTP check, or the node's serfHealth), when the session's
// TTL runs out, when an operator deletes the key or destroys the session, when Consul loses its
// state, or when this instance cannot reach Consul for longer than Config.UnreachableGrace.
// A Leadership notices by watching the key and the session with blocking queries, and by the
// answer to every fenced transaction. Either way Leadership.Lost closes, and then:
//
//   - all leader-only work must stop: start it when Acquire returns, stop it when Lost closes;
//   - every later Leadership.Txn returns ErrLost without contacting Consul;
//   - the Leadership destroys its session in the background (releasing the key first when it
//     still holds it), and if that fails the next Acquire on the same Lock, or Release, retries
//     it, so a deposed leader does not keep the key from the others once it can reach Consul;
//   - to lead again, call Acquire again: a Leadership never comes back.
//
// Because Lost closes some time after Consul took the lock away, another instance may already
// lead while this one still believes it does. Only writes made with Leadership.Txn are safe
// then: Txn prepends a check-session operation on the lock key, and Consul rejects the whole
// transaction when this session no longer holds the lock. No write outside Txn is fenced:
// a plain KV put, a Nomad job registration, a message sent elsewhere may happen after another
// instance took over. Such writes must be harmless when repeated or overtaken, as Nomad job
// registrations by a deterministic ID with a create-only index are.
//
// # Failover speed against false failovers
//
// How fast a standby takes over from a leader that died, and how easily a live leader is
// deposed by mistake, are the same settings seen from two sides:
//
//   - The instance's HTTP check (Config.Checks): its interval, its timeout and its
//     failures_before_critical decide how soon a crashed or hung instance's session is
//     invalidated. Short values fail over fast; a leader that pauses (a long GC, a loaded
//     machine) for longer than interval × failures_before_critical + timeout is deposed. A
//     check's deregister_critical_service_after only removes the check later: the session is
//     invalidated as soon as the check turns critical. A check that is critical (a new check
//     starts critical unless registered passing, and success_before_passing delays it) also
//     keeps Acquire from creating a session, which it retries until the check passes.
//   - serfHealth (always bound): a node that dies is noticed by Serf's failure detector, in a
//     few seconds on a LAN with Consul's defaults.
//   - Config.LockDelay (DefaultLockDelay, 1 s): after a session is invalidated, nobody can take
//     the key for this long. It is added to every failover that is not a clean Release.
//   - Config.SessionTTL (none by default): a TTL session that is not renewed is invalidated
//     between TTL and 2×TTL, at least 10-20 s. It only guards against a holder whose checks
//     keep passing although it no longer renews, so it is off unless asked for.
//   - Config.UnreachableGrace (DefaultUnreachableGrace, 10 s): how long the holder goes on
//     believing it leads while it cannot reach Consul. Shorter values make a Consul blip (a
//     server restart, a leader election) cost a failover; longer ones let a cut-off leader do
//     unfenced work longer.
//
// With the defaults and an HTTP check every 1 s with a 1 s timeout, the expected failover
// times (measured against a local dev agent, standby already waiting) are:
//
//   - a clean Release: one blocking-query round trip, about 3 ms;
//   - the lock key deleted: the same, as deletion sets no lock-delay;
//   - the session destroyed by an operator: the 1 s lock-delay, 1.01 s;
//   - a killed instance: up to one check interval until its check is refused and turns
//     critical, plus the lock-delay: 1.8-2.0 s;
//   - a hung instance (estimated): the check interval plus its timeout plus the lock-delay,
//     about 3 s;
//   - a dead node (estimated): Serf's failure detection plus the lock-delay, typically 3-6 s;
//   - a TTL-only session of 10 s (Consul's rule): 11-21 s.
//
// The deposed holder itself notices within milliseconds when the key or session changes
// (a blocking query returns at once), and after UnreachableGrace when it cannot reach Consul.
//
// # Concurrency
//
// A Lock may be shared by goroutines; Lock.Leader may run at any time. Acquire may also run
// concurrently, but each caller then competes for the key with its own session. A Leadership
// is safe for concurrent use: Txn, Lost, Err, Session and Release may be called from any
// goroutine.
package consullock
