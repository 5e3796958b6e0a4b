package rules

import (
	"time"

	"github.com/dagflow/dagflow/hcl/spec"
)

// DefaultMaxRetryDelay caps exponential backoff for a task that sets no max_retry_delay. It is
// Airflow's default for the same cap (the [core] max_task_retry_delay setting, 24 hours): a
// wait longer than a day between attempts is never useful for a scheduled workflow, and
// without a cap, doubling a one-second delay would overflow time.Duration (about 292 years)
// on the 35th retry.
const DefaultMaxRetryDelay = 24 * time.Hour

// RetryDelay returns how long to wait, after try next-1 of t failed, before starting try next;
// next is 2 for the first retry, and a next below 2 counts as 2.
//
// Without exponential backoff the delay is t.RetryDelay. With it, the delay is
// t.RetryDelay * 2^(next-2): the first retry waits retry_delay, the second twice that, and so
// on, as Airflow's retry_exponential_backoff does. The result is capped at t.MaxRetryDelay when
// it is set, and exponential backoff alone is also capped at DefaultMaxRetryDelay when it is
// not (or at t.RetryDelay, if that is longer, so the backoff never shortens the first wait).
// A negative delay counts as zero. The computation cannot overflow, whatever next is.
//
// Airflow adds jitter to exponential backoff, a pseudo-random part derived from a hash of the
// task instance, so that many tasks failing together do not all retry in the same second.
// dagflow's delay is deterministic on purpose: a scheduler that takes over after a failover
// computes the same retry time as the one it replaces, and users can predict when a retry
// starts. Nomad spreads the placements of simultaneous retries anyway.
func RetryDelay(t *spec.Task, next int) time.Duration {
	base := max(time.Duration(t.RetryDelay), 0)
	limit := time.Duration(t.MaxRetryDelay)
	if !t.RetryExponentialBackoff {
		if limit > 0 {
			return min(base, limit)
		}
		return base
	}
	if limit <= 0 {
		limit = max(DefaultMaxRetryDelay, base)
	}
	next = max(next, 2) // also keeps next-2 from wrapping around for the smallest ints
	return min(doubled(base, next-2, limit), limit)
}

// doubled returns d * 2^k, or limit when that is more than limit; it never overflows. A
// negative k counts as zero.
func doubled(d time.Duration, k int, limit time.Duration) time.Duration {
	if k <= 0 || d == 0 {
		return d
	}
	// d<<k <= limit exactly when d <= limit>>k; beyond 62 doublings every positive d exceeds
	// any limit.
	if k > 62 || d > limit>>k {
		return limit
	}
	return d << k
}

// CanRetry reports whether a task t that failed on try try has a retry left. Tries are
// numbered from 1, and a task with retries = N runs tries 1 to N+1, so the answer is
// try <= N. A try below 1 counts as 1, and negative retries as 0. The engine numbers tries
// from a task instance's last clear here, so a clear gives it its retries back.
func CanRetry(t *spec.Task, try int) bool {
	return max(try, 1) <= t.Retries
}
