package rules

import (
	"fmt"
	"slices"
	"strings"

	"github.com/agext/levenshtein"

	"github.com/dagflow/dagflow/hcl/spec"
)

// The trigger rules Decide knows, with the names of spec.TriggerRules.
const (
	allSuccess              = "all_success"
	allFailed               = "all_failed"
	allDone                 = "all_done"
	oneSuccess              = "one_success"
	oneFailed               = "one_failed"
	noneFailed              = "none_failed"
	noneFailedMinOneSuccess = "none_failed_min_one_success"
	noneSkipped             = "none_skipped"
	always                  = "always"
)

// Decision is what a task instance whose trigger rule has been evaluated should do now.
type Decision int

// Decisions. The zero value is Wait, so a Decision nobody set never starts a task.
const (
	Wait         Decision = iota // not yet decidable: evaluate again when an upstream task changes state
	Run                          // the rule is met: schedule the task
	Skip                         // the rule can never be met, and not because of a failure: mark the task Skipped
	UpstreamFail                 // the rule can never be met because of an upstream failure: mark the task UpstreamFailed
)

// String returns the decision's name in lower case, such as "upstream_fail".
func (d Decision) String() string {
	switch d {
	case Wait:
		return "wait"
	case Run:
		return "run"
	case Skip:
		return "skip"
	case UpstreamFail:
		return "upstream_fail"
	}
	return fmt.Sprintf("Decision(%d)", int(d))
}

// Decide says what a task whose upstream tasks (those in its depends_on) are in the given
// states should do now, under the trigger rule rule. The order of upstream does not matter.
//
// The semantics are Apache Airflow's, as its scheduler implements them in
// airflow-core/src/airflow/ti_deps/deps/trigger_rule_dep.py (TriggerRuleDep, read at commit
// 0642ae17dbbab3fe96626b84d7a1d231ed2838ad of apache/airflow) when it evaluates a task with
// flag_upstream_failed set, and as airflow-core/docs/core-concepts/dags.rst ("Trigger Rules")
// describes them. Only finished states (see State.Finished) count as done; None, Scheduled,
// Queued, Running, UpForRetry and any state this package does not know are still pending.
// "Failed" below means Failed or UpstreamFailed, which Airflow counts alike for every rule that
// looks at failures.
//
//   - all_success: UpstreamFail as soon as one upstream failed; otherwise Skip as soon as one
//     was skipped; Run when all succeeded.
//   - all_failed: Skip as soon as one succeeded or was skipped; Run when all failed.
//   - all_done: Run when all are done, whatever their states. It never skips.
//   - one_success: Run as soon as one succeeded, without waiting for the rest. When all are
//     done and none succeeded: Skip if all were skipped, else UpstreamFail.
//   - one_failed: Run as soon as one failed, without waiting for the rest; Skip when all are
//     done and none failed.
//   - none_failed: UpstreamFail as soon as one failed; Run when all succeeded or were skipped,
//     including when all were skipped.
//   - none_failed_min_one_success: UpstreamFail as soon as one failed; Skip when all were
//     skipped; Run when all succeeded or were skipped and at least one succeeded.
//   - none_skipped: Skip as soon as one was skipped; Run when all are done and none was
//     skipped, even if some failed.
//   - always: Run, whatever the upstream states.
//
// Otherwise the decision is Wait. A task with no upstream tasks runs whatever its rule, as in
// Airflow, even under one_success or one_failed, whose condition no upstream task can meet.
//
// Any decision other than Wait is final, and the caller records it (as a state) rather than
// ask again: as more upstream tasks finish, Run stays Run and a decision not to run stays
// one, though Skip can turn into UpstreamFail (all_success after a skip, then a failure).
// Airflow behaves the same way, because it sets the state at the first decision.
//
// An empty rule means spec.DefaultTriggerRule, as in the DAG language. An unknown rule, which
// the DAG language rejects and so only a corrupt stored definition can hold, gives
// UpstreamFail whatever the upstream states: running a task whose condition is unknown is
// unsafe, Wait would keep the run going forever, and Skip would let the run succeed, whereas
// UpstreamFail fails the run where users look. Check rules with ValidRule to report them.
func Decide(rule string, upstream []State) Decision {
	if rule == "" {
		rule = spec.DefaultTriggerRule
	}
	if ValidRule(rule) != nil {
		return UpstreamFail
	}
	if len(upstream) == 0 || rule == always {
		return Run
	}

	var success, skipped, failed, done int
	for _, s := range upstream {
		switch s {
		case Success:
			success++
		case Skipped:
			skipped++
		case Failed, UpstreamFailed:
			failed++
		}
		if s.Finished() {
			done++
		}
	}
	n := len(upstream)
	allDoneNow := done == n

	switch rule {
	case allSuccess:
		switch {
		case failed > 0:
			return UpstreamFail
		case skipped > 0:
			return Skip
		case success == n:
			return Run
		}
	case allFailed:
		switch {
		case success > 0 || skipped > 0:
			return Skip
		case failed == n:
			return Run
		}
	case allDone:
		if allDoneNow {
			return Run
		}
	case oneSuccess:
		switch {
		case success > 0:
			return Run
		case allDoneNow && skipped == n:
			return Skip
		case allDoneNow:
			return UpstreamFail
		}
	case oneFailed:
		switch {
		case failed > 0:
			return Run
		case allDoneNow:
			return Skip
		}
	case noneFailed:
		switch {
		case failed > 0:
			return UpstreamFail
		case success+skipped == n:
			return Run
		}
	case noneFailedMinOneSuccess:
		switch {
		case failed > 0:
			return UpstreamFail
		case skipped == n:
			return Skip
		case success+skipped == n:
			return Run
		}
	case noneSkipped:
		switch {
		case skipped > 0:
			return Skip
		case allDoneNow:
			return Run
		}
	}
	return Wait
}

// ValidRule returns an error if Decide does not know rule, naming the rules it knows and, for
// a near miss, suggesting the one meant. The empty rule is valid: it means
// spec.DefaultTriggerRule.
func ValidRule(rule string) error {
	if rule == "" || slices.Contains(spec.TriggerRules, rule) {
		return nil
	}
	hint := ""
	if s := suggestRule(rule); s != "" {
		hint = fmt.Sprintf(" (did you mean %q?)", s)
	}
	return fmt.Errorf("unknown trigger rule %q%s; use one of %s",
		rule, hint, strings.Join(spec.TriggerRules, ", "))
}

// suggestRule returns the known rule closest to rule when it is close enough to be a typo, or
// "" when none is.
func suggestRule(rule string) string {
	lower := strings.ToLower(rule)
	best, bestDist := "", 3 // a typo is at most a couple of edits
	for _, r := range spec.TriggerRules {
		if d := levenshtein.Distance(lower, r, nil); d < bestDist {
			best, bestDist = r, d
		}
	}
	return best
}
