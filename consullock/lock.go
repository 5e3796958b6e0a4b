package consullock

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	consulapi "github.com/hashicorp/consul/api"
	"github.com/hashicorp/go-hclog"

	"github.com/dagflow/dagflow/internal/wait"
)

const (
	// DefaultLockDelay is the lock-delay of the sessions a Lock creates when Config.LockDelay is
	// zero: after a session holding the key is invalidated, nobody can take the key for this
	// long. Consul's own default is 15 s, meant to protect holders that are not fenced. Here
	// fencing, not lock-delay, makes a deposed leader harmless: its Txn calls are rejected, and
	// its unfenced work (Nomad job registration) is create-only by a deterministic ID. So
	// lock-delay only adds to every failover that is not a clean Release, and it is kept short.
	// It is not zero, so that a holder that is merely slow to notice its loss (one blocking
	// query round trip) usually stops its leader work before a successor starts.
	DefaultLockDelay = 1 * time.Second

	// DefaultUnreachableGrace is how long a Leadership may go without an answer from Consul
	// before it counts as lost, when Config.UnreachableGrace is zero. It is long enough to ride
	// out a Consul server restart or leader election, or a machine so loaded that answers stall
	// for seconds, each of which would otherwise cost a needless failover. It is not longer
	// because a leader cut off from Consul cannot commit a fenced write anyway: waiting longer
	// only prolongs its unfenced work, which may by then overlap a successor's (harmlessly, as
	// long as that work is idempotent, but for nothing).
	DefaultUnreachableGrace = 10 * time.Second

	// MaxTxnOps is the most operations Leadership.Txn takes: Consul accepts 64 in a
	// transaction, and the fence takes one of them.
	MaxTxnOps = 63

	// maxLockDelay is Consul's upper bound for a session's lock-delay.
	maxLockDelay = 60 * time.Second

	// minSessionTTL and maxSessionTTL are Consul's bounds for a session's TTL.
	minSessionTTL = 10 * time.Second
	maxSessionTTL = 24 * time.Hour

	// maxValueSize is Consul's limit on a KV value.
	maxValueSize = 512 * 1024

	// waitTime is how long a blocking query waits for a change before Consul answers anyway.
	// Changes are seen at once whatever its length; it bounds how often an idle watch talks to
	// Consul, which is how a Leadership knows Consul is still reachable (watches use at most a
	// third of the grace period).
	waitTime = 5 * time.Second

	// lockDelayRetry is how soon Acquire tries again when Consul refused it a key that nobody
	// holds: lock-delay is running, and its remaining time is not published.
	lockDelayRetry = 250 * time.Millisecond

	// minBackoff and maxBackoff bound the pause after a failed request to Consul.
	minBackoff = 250 * time.Millisecond
	maxBackoff = 2 * time.Second

	// cleanupTimeout bounds destroying a session when no caller's context applies: after
	// Acquire was cancelled, and in the background after a loss.
	cleanupTimeout = 5 * time.Second

	// serfHealthCheck is the check Consul binds sessions to by default: the node's agent is
	// alive. Naming checks replaces the default, so it is always named too.
	serfHealthCheck = "serfHealth"
)

var (
	// ErrLost is wrapped by the errors of Leadership.Txn and Leadership.Err once the leadership
	// is lost.
	ErrLost = errors.New("leadership lost")

	// ErrTxnFailed is wrapped by the error of Leadership.Txn when Consul rolled the transaction
	// back because one of the caller's operations failed (a cas on a changed index, say). The
	// leadership is intact.
	ErrTxnFailed = errors.New("transaction rolled back")
)

// Config configures a Lock.
type Config struct {
	// Key is the lock key, such as "dagflow/leader". Required.
	Key string

	// Value is what the holder writes into the key, read back by Lock.Leader: the instance ID
	// and address. At most 512 KB.
	Value []byte

	// Checks are the health check IDs the session is bound to besides the node's serfHealth,
	// which is always bound: the instance's own HTTP check, so a killed or hung instance loses
	// the lock within seconds. They must be registered on the agent the client talks to.
	//
	// They must be this instance's own: no other live instance may bind a session to them. A
	// session on the same node, bound to one of them, that holds the key can then only be an
	// earlier process of this instance, which died and was restarted before Consul ran the
	// check again: the new process passes the check, so that session would hold the key for
	// ever. Acquire destroys such a session instead of waiting for it.
	Checks []string

	// LockDelay is the lock-delay of the sessions; zero means DefaultLockDelay. At most 60 s;
	// Consul counts it in whole milliseconds.
	LockDelay time.Duration

	// SessionTTL, when not zero, gives the sessions a TTL (10 s to 24 h) that a background
	// goroutine renews. Zero means none: the checks alone keep the session alive.
	SessionTTL time.Duration

	// UnreachableGrace is how long a Leadership may go without an answer from Consul before it
	// counts as lost; zero means DefaultUnreachableGrace. At least 1 s.
	UnreachableGrace time.Duration

	// Logger receives the Lock's logs; nil discards them.
	Logger hclog.Logger
}

// Lock contends for one Consul lock key on behalf of one instance. Create it with New.
//
// A Lock may be used from several goroutines. It remembers the sessions it failed to destroy
// (Consul unreachable at the time) and destroys them at the start of the next Acquire, so they
// cannot keep holding the key.
type Lock struct {
	client *consulapi.Client
	cfg    Config // defaults filled in
	logger hclog.Logger

	mu      sync.Mutex
	orphans map[string]bool // session IDs whose destruction failed
}

// New returns a Lock for cfg.Key, talking to Consul through client. It checks cfg and fills in
// defaults; it does not contact Consul.
func New(client *consulapi.Client, cfg Config) (*Lock, error) {
	if err := validate(client, &cfg); err != nil {
		return nil, fmt.Errorf("consul lock %q: %w", cfg.Key, err)
	}
	cfg.Value = bytes.Clone(cfg.Value)
	checks := []string{serfHealthCheck}
	for _, c := range cfg.Checks {
		if !slices.Contains(checks, c) {
			checks = append(checks, c)
		}
	}
	cfg.Checks = checks
	if cfg.LockDelay == 0 {
		cfg.LockDelay = DefaultLockDelay
	}
	if cfg.UnreachableGrace == 0 {
		cfg.UnreachableGrace = DefaultUnreachableGrace
	}
	logger := cfg.Logger
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	return &Lock{
		client:  client,
		cfg:     cfg,
		logger:  logger.With("key", cfg.Key),
		orphans: map[string]bool{},
	}, nil
}

// validate reports the first problem with the arguments of New.
func validate(client *consulapi.Client, cfg *Config) error {
	switch {
	case client == nil:
		return errors.New("no consul client")
	case cfg.Key == "":
		return errors.New("no key")
	case strings.HasPrefix(cfg.Key, "/"):
		return errors.New("key must not start with a slash")
	case len(cfg.Value) > maxValueSize:
		return fmt.Errorf("value is %d bytes, more than Consul's limit of %d", len(cfg.Value), maxValueSize)
	case slices.Contains(cfg.Checks, ""):
		return errors.New("empty check ID")
	case cfg.LockDelay < 0 || cfg.LockDelay > maxLockDelay:
		return fmt.Errorf("lock delay %s is not between 0 and %s", cfg.LockDelay, maxLockDelay)
	case cfg.SessionTTL != 0 && (cfg.SessionTTL < minSessionTTL || cfg.SessionTTL > maxSessionTTL):
		return fmt.Errorf("session TTL %s is not between %s and %s", cfg.SessionTTL, minSessionTTL, maxSessionTTL)
	case cfg.UnreachableGrace != 0 && cfg.UnreachableGrace < time.Second:
		return fmt.Errorf("unreachable grace %s is less than 1s", cfg.UnreachableGrace)
	}
	return nil
}

// Acquire blocks until this instance holds the lock, and returns the Leadership, or until ctx
// ends, and returns an error wrapping ctx's. It creates a session bound to the configured
// checks, tries to take the key with it, and while another session holds the key waits for it
// to be released with blocking queries (consistent reads), so it takes a released key within a
// round trip, or once lock-delay has passed after a holder's session was invalidated.
//
// Failures talking to Consul are logged and retried with backoff, not returned: a check that
// is not registered yet, or still critical, keeps Acquire retrying until it passes. When the
// session dies while Acquire waits, it creates a new one. When Acquire returns without the lock
// it destroys its session first, so none is left behind.
//
// The caller must start leader-only work only after Acquire returns, and stop it when the
// Leadership's Lost channel closes.
func (l *Lock) Acquire(ctx context.Context) (_ *Leadership, err error) {
	start := time.Now()
	var s *session
	defer func() {
		if err == nil || s == nil {
			return
		}
		// ctx is done; destroying the session must not depend on it.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
		defer cancel()
		if derr := l.destroy(cctx, s); derr != nil {
			l.logger.Warn("destroy session after giving up acquiring the lock", "session", s.id, "error", derr)
		}
	}()

	var bo backoff
	for {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("acquire lock %q: %w", l.cfg.Key, err)
		}
		if err := l.destroyOrphans(ctx); err != nil {
			bo.wait(ctx, l.logger, "destroy orphaned session", err)
			continue
		}
		if s == nil {
			s, err = l.createSession(ctx)
			if err != nil {
				bo.wait(ctx, l.logger, "create session", err)
				continue
			}
		}
		ok, _, err := l.client.KV().Acquire(&consulapi.KVPair{Key: l.cfg.Key, Value: l.cfg.Value, Session: s.id}, writeOpts(ctx))
		if err != nil {
			if ctx.Err() == nil && l.sessionGone(ctx, s.id) {
				l.logger.Info("session invalidated while acquiring the lock", "session", s.id)
				s.stop()
				s = nil
			}
			bo.wait(ctx, l.logger, "acquire lock key", err)
			continue
		}
		if ok {
			l.logger.Info("lock acquired", "session", s.id, "waited", time.Since(start).Round(time.Millisecond).String())
			return l.lead(s), nil
		}
		if err := l.waitFree(ctx, s.id); err != nil {
			bo.wait(ctx, l.logger, "watch lock key", err)
			continue
		}
		bo.reset()
	}
}

// waitFree returns once the key is not held by another session, watching it with blocking
// queries. When it finds the key free at once, Consul refused it because of lock-delay, and
// waitFree pauses for lockDelayRetry before returning.
func (l *Lock) waitFree(ctx context.Context, id string) error {
	var index uint64
	for {
		q := &consulapi.QueryOptions{RequireConsistent: true, WaitIndex: index, WaitTime: waitTime}
		pair, meta, err := l.client.KV().Get(l.cfg.Key, q.WithContext(ctx))
		if err != nil {
			return err
		}
		if pair == nil || pair.Session == "" || pair.Session == id {
			if index == 0 {
				wait.Sleep(ctx, lockDelayRetry)
			}
			return nil
		}
		if index == 0 {
			if l.reclaim(ctx, id, pair.Session) {
				return nil
			}
			l.logger.Debug("lock held by another session, waiting", "holder", pair.Session)
		}
		index = nextIndex(index, meta.LastIndex)
	}
}

// reclaim destroys the session holder, which holds the key, when it was created by an earlier
// process of this instance: it is on the node of session own and bound to one of the Lock's
// own checks (see Config.Checks). It reports whether it destroyed it; false when unsure.
//
// Such a session outlives its process when the process is restarted within a check interval
// of its death (a supervisor restarting a crashed server at once): the new process registers
// the same check and passes it, so Consul never invalidates the session, and without this the
// key would stay held by a process that is gone, with every instance waiting for it. Should
// the earlier process still be alive after all, destroying its session is safe: it loses the
// leadership, and its fenced writes fail.
func (l *Lock) reclaim(ctx context.Context, own, holder string) bool {
	mine := map[string]bool{}
	for _, c := range l.cfg.Checks {
		if c != serfHealthCheck {
			mine[c] = true
		}
	}
	if len(mine) == 0 {
		return false
	}
	q := &consulapi.QueryOptions{RequireConsistent: true}
	h, _, err := l.client.Session().Info(holder, q.WithContext(ctx))
	if err != nil || h == nil {
		return false
	}
	o, _, err := l.client.Session().Info(own, q.WithContext(ctx))
	if err != nil || o == nil || o.Node != h.Node {
		return false
	}
	bound := slices.Concat(h.Checks, h.NodeChecks)
	for _, sc := range h.ServiceChecks {
		bound = append(bound, sc.ID)
	}
	if !slices.ContainsFunc(bound, func(c string) bool { return mine[c] }) {
		return false
	}
	if _, err := l.client.Session().Destroy(holder, writeOpts(ctx)); err != nil {
		l.logger.Warn("destroy the session of an earlier process of this instance", "holder", holder, "error", err)
		return false
	}
	l.logger.Warn("lock held by an earlier process of this instance, which is gone: destroyed its session", "holder", holder, "node", h.Node, "checks", bound)
	return true
}

// sessionGone reports whether Consul says the session no longer exists; false when unsure.
func (l *Lock) sessionGone(ctx context.Context, id string) bool {
	q := &consulapi.QueryOptions{RequireConsistent: true}
	entry, _, err := l.client.Session().Info(id, q.WithContext(ctx))
	return err == nil && entry == nil
}

// Leader returns the Value written by the current holder of the lock, read with a consistent
// read, or nil when nobody holds it.
func (l *Lock) Leader(ctx context.Context) ([]byte, error) {
	q := &consulapi.QueryOptions{RequireConsistent: true}
	pair, _, err := l.client.KV().Get(l.cfg.Key, q.WithContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("read lock key %q: %w", l.cfg.Key, err)
	}
	if pair == nil || pair.Session == "" {
		return nil, nil
	}
	return pair.Value, nil
}

// nextIndex returns the wait index for the next blocking query after one that returned last:
// last, or 0 when the index went backwards (Consul lost or restored its state), which makes
// the next query answer at once.
func nextIndex(prev, last uint64) uint64 {
	if last < prev {
		return 0
	}
	return last
}

// writeOpts returns write options bound to ctx.
func writeOpts(ctx context.Context) *consulapi.WriteOptions {
	return (&consulapi.WriteOptions{}).WithContext(ctx)
}

// backoff spaces out retries after failed requests: minBackoff, doubling up to maxBackoff.
type backoff struct {
	next time.Duration
}

// wait logs what failed, unless ctx has ended (the failure is then the cancellation), and
// sleeps for the next backoff interval or until ctx ends.
func (b *backoff) wait(ctx context.Context, logger hclog.Logger, what string, err error) {
	if ctx.Err() != nil {
		return
	}
	if b.next == 0 {
		b.next = minBackoff
	}
	logger.Warn(what+" failed, retrying", "error", err, "retry_in", b.next.String())
	wait.Sleep(ctx, b.next)
	b.next = min(2*b.next, maxBackoff)
}

// reset makes the next wait start from minBackoff again.
func (b *backoff) reset() { b.next = 0 }
