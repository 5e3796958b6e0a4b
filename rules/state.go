package rules

// State is the state of one task instance in one run, with Airflow's names and meanings. The
// scheduler moves an instance along
//
//	None -> Scheduled -> Queued -> Running -> Success | Failed | UpForRetry
//
// with UpForRetry going back to Scheduled once the retry delay has passed, and sets
// UpstreamFailed or Skipped instead of Scheduled when the trigger rule says the task cannot run.
type State string

// Task instance states. The string values are Airflow's, so they read the same in the UI, in
// the JSON API and in Consul.
const (
	None           State = ""                // not yet decided: the scheduler has not evaluated the trigger rule
	Scheduled      State = "scheduled"       // set by the scheduler when the trigger rule lets the task run
	Queued         State = "queued"          // set by the scheduler when it submits the attempt to Nomad
	Running        State = "running"         // set by the scheduler when Nomad reports the allocation running
	Success        State = "success"         // set by the scheduler when the attempt exits 0
	Failed         State = "failed"          // set by the scheduler when the last allowed attempt fails or times out
	UpForRetry     State = "up_for_retry"    // set by the scheduler when an attempt fails and CanRetry allows another
	UpstreamFailed State = "upstream_failed" // set by the scheduler when Decide returns UpstreamFail: an upstream failure means it never runs
	Skipped        State = "skipped"         // set by the scheduler when Decide returns Skip: the trigger rule can no longer be met
)

// Finished reports whether s is final for the run: Success, Failed, UpstreamFailed or Skipped.
// These are the states Airflow counts as "done" when it evaluates trigger rules; UpForRetry is
// not among them, because the task will run again.
func (s State) Finished() bool {
	switch s {
	case Success, Failed, UpstreamFailed, Skipped:
		return true
	}
	return false
}
