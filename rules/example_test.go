package rules_test

import (
	"fmt"
	"time"

	"github.com/dagflow/dagflow/hcl/spec"
	"github.com/dagflow/dagflow/rules"
)

func ExampleDecide() {
	// A cleanup task after two loads, one of which failed while the other still runs.
	upstream := []rules.State{rules.Failed, rules.Running}

	for _, rule := range []string{"all_success", "all_done", "one_failed", "none_skipped"} {
		fmt.Printf("%-13s %v\n", rule, rules.Decide(rule, upstream))
	}
	// Output:
	// all_success   upstream_fail
	// all_done      wait
	// one_failed    run
	// none_skipped  wait
}

func ExampleRetryDelay() {
	t := &spec.Task{
		Retries:                 6,
		RetryDelay:              spec.Duration(30 * time.Second),
		RetryExponentialBackoff: true,
		MaxRetryDelay:           spec.Duration(5 * time.Minute),
	}
	for try := 1; rules.CanRetry(t, try); try++ {
		fmt.Printf("try %d failed: try %d in %v\n", try, try+1, rules.RetryDelay(t, try+1))
	}
	// Output:
	// try 1 failed: try 2 in 30s
	// try 2 failed: try 3 in 1m0s
	// try 3 failed: try 4 in 2m0s
	// try 4 failed: try 5 in 4m0s
	// try 5 failed: try 6 in 5m0s
	// try 6 failed: try 7 in 5m0s
}

func ExampleRunID() {
	berlin, _ := time.LoadLocation("Europe/Berlin")
	logical := time.Date(2026, 11, 22, 3, 0, 0, 0, berlin)
	fmt.Println(rules.RunID(rules.RunScheduled, logical))

	trigger := time.Date(2026, 11, 22, 9, 13, 27, 481_000_000, time.UTC)
	fmt.Println(rules.RunID(rules.RunManual, trigger))
	// Output:
	// scheduled__2026-11-22T02:00:00Z
	// manual__2026-11-22T09:13:27.481Z
}

func ExampleParseRunID() {
	typ, logical, err := rules.ParseRunID("backfill__2026-11-20T02:00:00Z")
	fmt.Println(typ, logical, err)

	_, _, err = rules.ParseRunID("scheduled__2026-11-22T02:00:00+00:00")
	fmt.Println(err)
	// Output:
	// backfill 2026-11-20 02:00:00 +0000 UTC <nil>
	// invalid run ID "scheduled__2026-11-22T02:00:00+00:00": the date is not written in UTC with "Z" and without trailing zeros; the ID of that run is "scheduled__2026-11-22T02:00:00Z"
}
