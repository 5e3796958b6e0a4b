package engine

import (
	"context"
	"sync"
	"time"
)

// lockCheck shares confirmations that the lock is still held between the job registrations
// that go out close together. Each registration needs one no older than maxFenceAge when it is
// written (see engine.register), but it need not be its own: a confirmation asked at T proves
// the lock was held at T for every registration written before T + maxFenceAge, whoever asked.
// Sharing takes the Consul round trip out of most registrations, which otherwise hold one of
// the Nomad slots (nomadCalls) while they wait for it.
type lockCheck struct {
	mu    sync.Mutex // held while a confirmation is under way, so concurrent askers wait for it
	asked time.Time  // when the last successful confirmation was asked
}

// confirm returns when the lock was last confirmed to be held: the last confirmation if it was
// asked less than reuse ago, else a new one made through fence.
func (c *lockCheck) confirm(ctx context.Context, fence Fence, reuse time.Duration) (time.Time, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if time.Since(c.asked) < reuse {
		return c.asked, nil
	}
	asked := time.Now()
	if _, err := fence.Txn(ctx, nil); err != nil {
		return time.Time{}, err
	}
	c.asked = asked
	return asked, nil
}
