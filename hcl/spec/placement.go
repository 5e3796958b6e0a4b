package spec

import (
	"time"

	"github.com/hashicorp/hcl/v2"
)

// DefaultQueuedTimeout is how long an attempt of a task without queued_timeout may wait for
// Nomad to place it before it fails: Airflow's scheduler.task_queued_timeout (600 s), long
// enough for a node to join or an autoscaler to add one, short enough that a task asking for
// what no node has does not hold its run for ever.
const DefaultQueuedTimeout = 10 * time.Minute

// QueuedLimit returns how long an attempt of t may wait, registered but not placed on a Nomad
// node, before it is stopped and fails (then retried as t allows): its queued_timeout, else
// DefaultQueuedTimeout; 0 for queued_timeout = "0s", which waits for ever.
func (t *Task) QueuedLimit() time.Duration {
	if t.QueuedTimeout == nil {
		return DefaultQueuedTimeout
	}
	return time.Duration(*t.QueuedTimeout)
}

// queuedTimeout evaluates a queued_timeout attribute into t, when there is one.
func (e *evaluator) queuedTimeout(a *hcl.Attribute, s refScope, t *Task) {
	var d Duration
	if e.duration(a, s, &d) {
		t.QueuedTimeout = &d
	}
}
