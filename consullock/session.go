package consullock

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	consulapi "github.com/hashicorp/consul/api"
)

// session is a Consul session a Lock created, with the goroutine renewing its TTL if it has one.
type session struct {
	id string

	// expired is closed when a renewal finds the session gone; nil without a TTL.
	expired <-chan struct{}

	// stop stops the renewals and waits for them to end. It is safe to call twice.
	stop func()
}

// createSession creates a session bound to the configured checks, with release behaviour (an
// invalidated session's keys are released, not deleted), and starts renewing it if it has a TTL.
func (l *Lock) createSession(ctx context.Context) (*session, error) {
	entry := &consulapi.SessionEntry{
		Name:      "consullock " + l.cfg.Key,
		LockDelay: l.cfg.LockDelay,
		Behavior:  consulapi.SessionBehaviorRelease,
		Checks:    l.cfg.Checks,
	}
	if l.cfg.SessionTTL > 0 {
		entry.TTL = l.cfg.SessionTTL.String()
	}
	id, _, err := l.client.Session().Create(entry, writeOpts(ctx))
	if err != nil {
		return nil, err
	}
	l.logger.Debug("session created", "session", id, "checks", l.cfg.Checks)
	s := &session{id: id, stop: func() {}}
	if l.cfg.SessionTTL == 0 {
		return s, nil
	}
	rctx, cancel := context.WithCancel(context.Background())
	expired := make(chan struct{})
	done := make(chan struct{})
	go l.renew(rctx, id, expired, done)
	s.expired = expired
	s.stop = sync.OnceFunc(func() {
		cancel()
		<-done
	})
	return s, nil
}

// renew renews session id every half TTL until ctx ends, closing done when it returns. When
// Consul says the session is gone it closes expired and returns. Failed renewals are retried
// every second: the session survives them for at least one more TTL.
func (l *Lock) renew(ctx context.Context, id string, expired, done chan<- struct{}) {
	defer close(done)
	ttl := l.cfg.SessionTTL
	t := time.NewTimer(ttl / 2)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		entry, _, err := l.client.Session().Renew(id, writeOpts(ctx))
		switch {
		case err != nil:
			if ctx.Err() != nil {
				return
			}
			l.logger.Warn("renew session failed, retrying", "session", id, "error", err)
			t.Reset(time.Second)
		case entry == nil:
			l.logger.Warn("session expired", "session", id)
			close(expired)
			return
		default:
			// Consul may raise the TTL it asked for under load; renew by its figure.
			if d, err := time.ParseDuration(entry.TTL); err == nil && d > 0 {
				ttl = d
			}
			t.Reset(ttl / 2)
		}
	}
}

// destroy stops renewing s and destroys it; see destroySession.
func (l *Lock) destroy(ctx context.Context, s *session) error {
	s.stop()
	return l.destroySession(ctx, s.id)
}

// destroySession releases the key if session id holds it, then destroys the session. Releasing
// first means no lock-delay: a standby's blocking query returns at once and its acquire
// succeeds. Releasing a key the session does not hold changes nothing, and destroying a session
// that is gone succeeds, so this is safe to repeat.
//
// On failure the session is remembered as an orphan, for the next Acquire to destroy.
func (l *Lock) destroySession(ctx context.Context, id string) error {
	_, _, err := l.client.KV().Release(&consulapi.KVPair{Key: l.cfg.Key, Session: id}, writeOpts(ctx))
	if err == nil {
		_, err = l.client.Session().Destroy(id, writeOpts(ctx))
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil {
		l.orphans[id] = true
		return fmt.Errorf("destroy session %s: %w", id, err)
	}
	delete(l.orphans, id)
	l.logger.Debug("session destroyed", "session", id)
	return nil
}

// destroyOrphans destroys the sessions earlier destroy calls failed on.
func (l *Lock) destroyOrphans(ctx context.Context) error {
	l.mu.Lock()
	ids := slices.Sorted(maps.Keys(l.orphans))
	l.mu.Unlock()
	var errs []error
	for _, id := range ids {
		if err := l.destroySession(ctx, id); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
